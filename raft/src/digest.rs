//! A deterministic digest of one group's applied state, for comparing replicas.
//!
//! The hash is 64-bit FNV-1a over every `state` record of the group in key order — each key
//! (without the group prefix) and value, both length-prefixed — except the applied record (which
//! holds the membership log id, written identically but not part of the workflow state). It
//! depends only on the bytes the apply path wrote, so replicas that applied the same log prefix
//! have equal digests. The caller holds the group's state lock so no apply runs meanwhile.

use crate::records;
use crate::types::LogId;
use perdura_engine::GroupId;
use perdura_storage::{Cf, Db, StorageError, keys};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

pub(crate) fn group_digest(db: &Db, group: GroupId) -> Result<(Option<LogId>, u64), StorageError> {
    let applied = records::read_applied(db, group)?.last_applied;
    let (start, end) = keys::group_range(group.0);
    let applied_key = keys::applied_key(group.0);
    let mut hash = Fnv(FNV_OFFSET);
    for kv in db.scan(Cf::State, &start, end.as_deref())? {
        let (key, value) = kv?;
        if *key == *applied_key {
            continue;
        }
        hash.write(&key[start.len()..]);
        hash.write(&value);
    }
    Ok((applied, hash.0))
}
