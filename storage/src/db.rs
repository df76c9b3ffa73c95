//! The node's RocksDB: column families, batched writes and range scans.

use crate::error::StorageError;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, IteratorMode, Options, ReadOptions,
    WriteOptions,
};
use std::path::{Path, PathBuf};

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

/// One RocksDB per node, shared by every Raft group.
pub struct Db {
    inner: rocksdb::DB,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (or creates) the database at `path` with every column family.
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
        let db = Db { inner, path };
        for cf in Cf::ALL {
            db.handle(cf)?;
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn handle(&self, cf: Cf) -> Result<&ColumnFamily, StorageError> {
        self.inner
            .cf_handle(cf.name())
            .ok_or(StorageError::MissingColumnFamily(cf.name()))
    }

    /// Reads one value.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.get_cf(self.handle(cf)?, key)?)
    }

    /// Writes `batch` atomically; with `sync`, returns only after the WAL is fsynced.
    pub fn write(&self, batch: &Batch, sync: bool) -> Result<(), StorageError> {
        self.write_all(std::slice::from_ref(batch), sync)
    }

    /// Writes several batches as ONE RocksDB write batch (one atomic write, at most one fsync).
    pub fn write_all(&self, batches: &[Batch], sync: bool) -> Result<(), StorageError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batches.iter().flat_map(|b| b.ops.iter()) {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(self.handle(*cf)?, key, value),
                Op::Delete { cf, key } => wb.delete_cf(self.handle(*cf)?, key),
                Op::DeleteRange { cf, start, end } => {
                    wb.delete_range_cf(self.handle(*cf)?, start, end)
                }
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        Ok(self.inner.write_opt(wb, &opts)?)
    }

    /// Fsyncs the WAL: every write that returned before this call is durable when it returns.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        Ok(self.inner.flush_wal(true)?)
    }

    /// Iterates `[start, end)` (to the end of the column family if `end` is `None`) in key order.
    pub fn scan<'a>(
        &'a self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<impl Iterator<Item = Result<KeyValue, StorageError>> + use<'a>, StorageError> {
        let mut read = ReadOptions::default();
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        let mode = IteratorMode::From(start, rocksdb::Direction::Forward);
        Ok(self
            .inner
            .iterator_cf_opt(self.handle(cf)?, read, mode)
            .map(|r| r.map_err(StorageError::from)))
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
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(start.to_vec());
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        let mut iter = self
            .inner
            .iterator_cf_opt(self.handle(cf)?, read, IteratorMode::End);
        Ok(iter.next().transpose()?)
    }
}
