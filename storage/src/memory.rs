//! An in-memory disk that knows which writes are synced: the storage of the deterministic
//! simulation (`perdura-chaos sim`).
//!
//! A [`MemoryDisk`] holds two copies of the four column families: the *live* one every read
//! sees, and the *durable* one a power loss would leave. A write with `sync = true` (or a
//! [`crate::Db::sync_wal`]) makes everything written before it durable, as an fsync of
//! RocksDB's WAL does: writes reach the WAL in order, so one fsync carries all earlier ones. A
//! write with `sync = false` changes only the live copy until then.
//!
//! [`MemoryDisk::crash`] is the power loss: the live copy goes back to the durable one, the
//! unsynced writes are gone, and every [`crate::Db`] opened on the disk before is *detached*:
//! its reads and writes fail with [`crate::StorageError::Detached`], as the storage of a killed
//! process would vanish under it. A restarted node opens the disk again ([`MemoryDisks`] keeps
//! one disk per data directory) and reads what survived.
//!
//! ## Invariants
//! * The durable copy is always the live copy as it was after some prefix of the writes (the
//!   prefix up to the last synced write); batches are atomic in both.
//! * `ack_before_sync` (a deliberately broken disk, for tests that prove the simulation can
//!   fail) treats every sync as a no-op: a crash then loses writes that were acknowledged as
//!   durable.

use crate::db::{Cf, KeyValue, Op};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// One column family: key → value, in key order.
type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// The four column families, indexed like [`Cf::ALL`].
#[derive(Clone, Debug, Default)]
struct Tables([Table; 4]);

fn cf_index(cf: Cf) -> usize {
    match cf {
        Cf::RaftLog => 0,
        Cf::RaftMeta => 1,
        Cf::State => 2,
        Cf::Snapshot => 3,
    }
}

impl Tables {
    fn table(&self, cf: Cf) -> &Table {
        &self.0[cf_index(cf)]
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Put { cf, key, value } => {
                self.0[cf_index(*cf)].insert(key.clone(), value.clone());
            }
            Op::Delete { cf, key } => {
                self.0[cf_index(*cf)].remove(key);
            }
            Op::DeleteRange { cf, start, end } => {
                if start >= end {
                    return;
                }
                let table = &mut self.0[cf_index(*cf)];
                let doomed: Vec<Vec<u8>> = table
                    .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    table.remove(&key);
                }
            }
        }
    }
}

/// What one crash of a [`MemoryDisk`] threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced write operations that were lost.
    pub lost_ops: usize,
}

#[derive(Debug, Default)]
struct DiskState {
    live: Tables,
    durable: Tables,
    /// Operations applied to `live` but not yet to `durable`, in write order.
    unsynced: Vec<Op>,
    /// Bumped by every crash; a `Db` opened at an older generation is detached.
    generation: u64,
    ack_before_sync: bool,
}

impl DiskState {
    fn make_durable(&mut self) {
        if self.ack_before_sync {
            return;
        }
        for op in std::mem::take(&mut self.unsynced) {
            self.durable.apply(&op);
        }
    }
}

/// One node's in-memory disk. See the module docs.
#[derive(Debug, Default)]
pub struct MemoryDisk {
    state: Mutex<DiskState>,
}

/// A [`MemoryDisk`] was crashed after this handle was opened: the handle is gone with its
/// process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detached;

impl MemoryDisk {
    pub fn new() -> Arc<MemoryDisk> {
        Arc::new(MemoryDisk::default())
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic while the lock is held cannot leave the tables half-changed in a way that
        // matters more than the panic itself (the simulation fails on it anyway).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation a newly opened handle belongs to.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn attached(&self, generation: u64) -> Result<MutexGuard<'_, DiskState>, Detached> {
        let state = self.lock();
        if state.generation == generation {
            Ok(state)
        } else {
            Err(Detached)
        }
    }

    pub(crate) fn get(
        &self,
        generation: u64,
        cf: Cf,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, Detached> {
        Ok(self.attached(generation)?.live.table(cf).get(key).cloned())
    }

    /// Applies `ops` atomically; with `sync`, everything written so far becomes durable.
    pub(crate) fn write<'a>(
        &self,
        generation: u64,
        ops: impl Iterator<Item = &'a Op>,
        sync: bool,
    ) -> Result<(), Detached> {
        let mut state = self.attached(generation)?;
        for op in ops {
            state.live.apply(op);
            state.unsynced.push(op.clone());
        }
        if sync {
            state.make_durable();
        }
        Ok(())
    }

    pub(crate) fn sync(&self, generation: u64) -> Result<(), Detached> {
        self.attached(generation)?.make_durable();
        Ok(())
    }

    /// The live key/values of `cf` in `[start, end)`, in key order.
    pub(crate) fn range(
        &self,
        generation: u64,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<KeyValue>, Detached> {
        let state = self.attached(generation)?;
        let upper = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Ok(state
            .live
            .table(cf)
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(k, v)| (k.clone().into_boxed_slice(), v.clone().into_boxed_slice()))
            .collect())
    }

    /// The last live key/value of `cf` in `[start, end)`.
    pub(crate) fn last_in_range(
        &self,
        generation: u64,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<KeyValue>, Detached> {
        let state = self.attached(generation)?;
        let upper = match end {
            Some(end) if end <= start => return Ok(None),
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Ok(state
            .live
            .table(cf)
            .range::<[u8], _>((Bound::Included(start), upper))
            .next_back()
            .map(|(k, v)| (k.clone().into_boxed_slice(), v.clone().into_boxed_slice())))
    }

    /// Power loss: drops every unsynced write and detaches every open handle.
    pub fn crash(&self) -> CrashReport {
        let mut state = self.lock();
        let lost_ops = state.unsynced.len();
        state.live = state.durable.clone();
        state.unsynced.clear();
        state.generation += 1;
        CrashReport { lost_ops }
    }

    /// Write operations not yet durable.
    pub fn unsynced_ops(&self) -> usize {
        self.lock().unsynced.len()
    }

    /// A broken disk that acknowledges syncs without making anything durable (tests only:
    /// it proves that the simulation catches acknowledged-but-lost writes).
    pub fn set_ack_before_sync(&self, broken: bool) {
        self.lock().ack_before_sync = broken;
    }
}

/// The in-memory disks of a simulated cluster, one per data directory, so that a node
/// restarted on the same directory finds what its previous incarnation made durable.
#[derive(Debug, Default)]
pub struct MemoryDisks {
    disks: Mutex<BTreeMap<PathBuf, Arc<MemoryDisk>>>,
}

impl MemoryDisks {
    pub fn new() -> Arc<MemoryDisks> {
        Arc::new(MemoryDisks::default())
    }

    /// The disk of `path`, created empty on first use.
    pub fn disk(&self, path: &Path) -> Arc<MemoryDisk> {
        self.disks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path.to_path_buf())
            .or_default()
            .clone()
    }
}
