//! Typed storage errors.

/// Everything that can go wrong below the Raft layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error (I/O, corruption detected by RocksDB itself, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A record read from disk does not decode: the data is corrupt or from an unknown version.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The log writer has stopped (shutdown, or a previous write failed and it refuses more).
    #[error("log writer is closed")]
    WriterClosed,
    /// A required column family is missing from an opened database.
    #[error("missing column family {0}")]
    MissingColumnFamily(&'static str),
    /// The in-memory disk under this handle was crashed (simulation): its process is gone.
    #[error("the simulated disk was crashed under this handle")]
    Detached,
}

impl StorageError {
    /// A corrupt-record error for `what`.
    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StorageError {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<StorageError> for std::io::Error {
    fn from(e: StorageError) -> std::io::Error {
        let kind = match &e {
            StorageError::Corrupt { .. } => std::io::ErrorKind::InvalidData,
            StorageError::WriterClosed => std::io::ErrorKind::BrokenPipe,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
