//! The node's database (RocksDB, or an in-memory disk in simulation): column families,
//! batched writes and range scans.

use crate::error::StorageError;
use crate::memory::{MemoryDisk, MemoryDisks};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, IteratorMode, Options, ReadOptions,
    WriteOptions,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The column families of the node's database. See the crate docs for their key layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cf {
    /// Raft log entries of every group.
    RaftLog,
    /// Per-group vote, committed and last-purged log ids.
    RaftMeta,
    /// Per-group state-machine records.
    State,
    /// The last built or installed snapshot of each group.
    Snapshot,
}

impl Cf {
    pub const ALL: [Cf; 4] = [Cf::RaftLog, Cf::RaftMeta, Cf::State, Cf::Snapshot];

    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftMeta => "raft_meta",
            Cf::State => "state",
            Cf::Snapshot => "snapshot",
        }
    }
}

/// One write operation of a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        cf: Cf,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// An ordered list of writes that reach the disk atomically: all or none, after a crash too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete {
            cf,
            key: key.into(),
        });
    }

    pub fn delete_range(&mut self, cf: Cf, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.ops.push(Op::DeleteRange {
            cf,
            start: start.into(),
            end: end.into(),
        });
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Moves every operation of `other` to the end of `self`.
    pub fn append(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }
}

/// A key/value pair read from a scan.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// The node's database, shared by every Raft group: RocksDB in production, or a simulated
/// [`MemoryDisk`] (see [`crate::memory`]) chosen at open.
pub struct Db {
    backend: Backend,
    path: PathBuf,
}

enum Backend {
    Rocks(rocksdb::DB),
    /// A handle on an in-memory disk, valid until the disk's next crash.
    Memory {
        disk: Arc<MemoryDisk>,
        generation: u64,
    },
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Rocks(_) => "rocksdb",
            Backend::Memory { .. } => "memory",
        };
        f.debug_struct("Db")
            .field("path", &self.path)
            .field("backend", &backend)
            .finish()
    }
}

/// Which storage a node opens: RocksDB (production) or in-memory disks (simulation).
#[derive(Clone, Debug, Default)]
pub enum StorageBackend {
    #[default]
    RocksDb,
    /// The simulation's disks, one per data directory.
    Memory(Arc<MemoryDisks>),
}

impl StorageBackend {
    /// Opens the database at `path` on this backend.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Db, StorageError> {
        match self {
            StorageBackend::RocksDb => Db::open(path),
            StorageBackend::Memory(disks) => {
                let path = path.as_ref();
                Ok(Db::open_memory(path, disks.disk(path)))
            }
        }
    }
}

fn detached(_: crate::memory::Detached) -> StorageError {
    StorageError::Detached
}

impl Db {
    /// Opens (or creates) the RocksDB database at `path` with every column family.
    pub fn open(path: impl AsRef<Path>) -> Result<Db, StorageError> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let descriptors = Cf::ALL.iter().map(|cf| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(cf.name(), cf_opts)
        });
        let inner = rocksdb::DB::open_cf_descriptors(&opts, &path, descriptors)?;
        for cf in Cf::ALL {
            inner
                .cf_handle(cf.name())
                .ok_or(StorageError::MissingColumnFamily(cf.name()))?;
        }
        Ok(Db {
            backend: Backend::Rocks(inner),
            path,
        })
    }

    /// Opens a handle on an in-memory disk (simulation). `path` only names it.
    pub fn open_memory(path: impl AsRef<Path>, disk: Arc<MemoryDisk>) -> Db {
        let generation = disk.generation();
        Db {
            backend: Backend::Memory { disk, generation },
            path: path.as_ref().to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Is this an in-memory (simulated) database?
    pub fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory { .. })
    }

    fn handle(db: &rocksdb::DB, cf: Cf) -> Result<&ColumnFamily, StorageError> {
        db.cf_handle(cf.name())
            .ok_or(StorageError::MissingColumnFamily(cf.name()))
    }

    /// Reads one value.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match &self.backend {
            Backend::Rocks(db) => Ok(db.get_cf(Db::handle(db, cf)?, key)?),
            Backend::Memory { disk, generation } => {
                disk.get(*generation, cf, key).map_err(detached)
            }
        }
    }

    /// Writes `batch` atomically; with `sync`, returns only after the WAL is fsynced.
    pub fn write(&self, batch: &Batch, sync: bool) -> Result<(), StorageError> {
        self.write_all(std::slice::from_ref(batch), sync)
    }

    /// Writes several batches as ONE write batch (one atomic write, at most one fsync).
    pub fn write_all(&self, batches: &[Batch], sync: bool) -> Result<(), StorageError> {
        let ops = batches.iter().flat_map(|b| b.ops.iter());
        let db = match &self.backend {
            Backend::Rocks(db) => db,
            Backend::Memory { disk, generation } => {
                return disk.write(*generation, ops, sync).map_err(detached);
            }
        };
        let mut wb = rocksdb::WriteBatch::default();
        for op in ops {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(Db::handle(db, *cf)?, key, value),
                Op::Delete { cf, key } => wb.delete_cf(Db::handle(db, *cf)?, key),
                Op::DeleteRange { cf, start, end } => {
                    wb.delete_range_cf(Db::handle(db, *cf)?, start, end)
                }
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        Ok(db.write_opt(wb, &opts)?)
    }

    /// Fsyncs the WAL: every write that returned before this call is durable when it returns.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Rocks(db) => Ok(db.flush_wal(true)?),
            Backend::Memory { disk, generation } => disk.sync(*generation).map_err(detached),
        }
    }

    /// Iterates `[start, end)` (to the end of the column family if `end` is `None`) in key order.
    /// (The in-memory backend copies the range when the scan starts.)
    pub fn scan<'a>(
        &'a self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<impl Iterator<Item = Result<KeyValue, StorageError>> + use<'a>, StorageError> {
        let db = match &self.backend {
            Backend::Rocks(db) => db,
            Backend::Memory { disk, generation } => {
                let pairs = disk.range(*generation, cf, start, end).map_err(detached)?;
                return Ok(Scan::Memory(pairs.into_iter()));
            }
        };
        let mut read = ReadOptions::default();
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        let mode = IteratorMode::From(start, rocksdb::Direction::Forward);
        Ok(Scan::Rocks(db.iterator_cf_opt(
            Db::handle(db, cf)?,
            read,
            mode,
        )))
    }

    /// Iterates every key that starts with `prefix`.
    pub fn scan_prefix<'a>(
        &'a self,
        cf: Cf,
        prefix: &[u8],
    ) -> Result<impl Iterator<Item = Result<KeyValue, StorageError>> + use<'a>, StorageError> {
        let end = crate::keys::prefix_successor(prefix);
        self.scan(cf, prefix, end.as_deref())
    }

    /// The last key/value in `[start, end)`, if any.
    pub fn last_in_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<KeyValue>, StorageError> {
        let db = match &self.backend {
            Backend::Rocks(db) => db,
            Backend::Memory { disk, generation } => {
                return disk
                    .last_in_range(*generation, cf, start, end)
                    .map_err(detached);
            }
        };
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(start.to_vec());
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        let mut iter = db.iterator_cf_opt(Db::handle(db, cf)?, read, IteratorMode::End);
        Ok(iter.next().transpose()?)
    }
}

/// A forward scan over either backend.
enum Scan<'a> {
    Rocks(rocksdb::DBIteratorWithThreadMode<'a, rocksdb::DB>),
    Memory(std::vec::IntoIter<KeyValue>),
}

impl Iterator for Scan<'_> {
    type Item = Result<KeyValue, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Scan::Rocks(iter) => iter.next().map(|r| r.map_err(StorageError::from)),
            Scan::Memory(iter) => iter.next().map(Ok),
        }
    }
}
