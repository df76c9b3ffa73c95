//! What this node has applied, read locally: no forwarding to a leader and no read barrier. The
//! chaos harness's end-of-run read compares these reads across nodes (log matching, equal
//! digests at equal applied indexes, identical histories), so each must show the node's own
//! replica, not the cluster's view.
//!
//! Invariant: within one [`ReplicaRead`], the applied index, the state digest and the runs'
//! histories belong to the same applied state — they are read under the group's state lock, so
//! no apply runs in between. The log entries are read after the lock is released; they are the
//! entries at or below that applied index that the node still holds (committed, since only
//! committed entries are applied; a purged prefix is absent).

use crate::error::RaftError;
use crate::group::Group;
use crate::multi::MultiRaft;
use crate::records;
use crate::state_machine::GroupState;
use crate::types::{Entry, LogId};
use openraft::entry::RaftEntry;
use perdura_engine::{ExecutionKey, GroupId};
use std::sync::Arc;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// One group's replica on this node.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaRead {
    pub group: GroupId,
    /// The last applied log id (`None`: nothing applied yet).
    pub applied: Option<LogId>,
    /// [`MultiRaft::group_digest`]'s hash of the applied state.
    pub digest: u64,
    /// The committed log entries still held, ascending by index (empty unless asked for).
    pub log: Vec<LogEntryDigest>,
    /// Every run of the group with its whole history (empty for the meta group and unless asked
    /// for), ordered by namespace, workflow ID, run ID.
    pub runs: Vec<RunRead>,
}

/// One log entry as log matching compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntryDigest {
    pub index: u64,
    pub term: u64,
    /// 64-bit FNV-1a of the entry's stored encoding (log id and payload). Equal entries hash
    /// equal as long as their payload encodes deterministically (Temporal payload metadata is a
    /// map: entries carrying payloads with several metadata keys may encode in another order
    /// on another node).
    pub hash: u64,
}

/// One run's whole history on this node.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRead {
    pub key: ExecutionKey,
    pub events: Vec<HistoryEvent>,
}

/// How much of a group to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaDepth {
    /// Applied index and digest only.
    Summary,
    /// Also the committed log entries and every run's history.
    Full,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

fn entry_digest(entry: &Entry) -> Result<LogEntryDigest, RaftError> {
    let bytes = records::encode_record(entry)?;
    let log_id = entry.log_id();
    Ok(LogEntryDigest {
        index: log_id.index,
        term: log_id.leader_id.term,
        hash: fnv1a(&bytes),
    })
}

impl MultiRaft {
    /// Every group this node hosts: the meta group, then the workflow groups ascending
    /// (split-off ones included once they started here).
    pub fn replica_groups(&self) -> Vec<GroupId> {
        std::iter::once(GroupId::META)
            .chain(self.shard_groups())
            .collect()
    }

    fn hosted_group(&self, group: GroupId) -> Result<Arc<Group>, RaftError> {
        if group == GroupId::META {
            Ok(self.meta.clone())
        } else {
            self.shards
                .get(&group)
                .ok_or(RaftError::UnknownGroup(group))
        }
    }

    /// Reads this node's replica of `group` (see the module docs). An unknown group is
    /// [`RaftError::UnknownGroup`].
    pub fn read_replica(
        &self,
        group: GroupId,
        depth: ReplicaDepth,
    ) -> Result<ReplicaRead, RaftError> {
        let target = self.hosted_group(group)?;
        let (applied, digest, runs) = target.read_state(|state| {
            let (applied, digest) = crate::digest::group_digest(&self.db, group)?;
            let mut runs = Vec::new();
            if let (ReplicaDepth::Full, GroupState::Shard(shard)) = (depth, state) {
                let mut keys: Vec<ExecutionKey> =
                    shard.executions().map(|ms| ms.key.clone()).collect();
                keys.sort();
                for key in keys {
                    let events = records::read_history(&self.db, group, &key, 1, usize::MAX)?;
                    runs.push(RunRead { key, events });
                }
            }
            Ok::<_, RaftError>((applied, digest, runs))
        })?;
        let log = match (depth, applied) {
            (ReplicaDepth::Full, Some(applied)) => crate::log_store::GroupLogStore::sharing(
                group,
                self.db.clone(),
                self.writer.clone(),
                target.log_overlay.clone(),
            )
            .read_local(0, Some(applied.index.saturating_add(1)))?
            .iter()
            .map(entry_digest)
            .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        Ok(ReplicaRead {
            group,
            applied,
            digest,
            log,
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
