//! # perdura-storage — the node's RocksDB: layout, key codecs and group commit
//!
//! One RocksDB per node holds the Raft logs and the state machines of every Raft group on it.
//! This crate knows byte layouts and durability, not meaning: values are opaque bytes, encoded by
//! `perdura-raft` (with the engine's versioned codec, or prost for history events).
//!
//! Main types: [`Db`] (open, atomic [`Batch`] writes, range scans), [`LogWriter`] (group commit),
//! [`keys`] (every key encoding), [`StorageError`].
//!
//! ## Layout
//! Integers are big-endian and strings length-prefixed (`u32` BE length + UTF-8 bytes), so every
//! group's records, and every execution's events, are one contiguous key range.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log` | group `u32` ++ index `u64` | one encoded log entry |
//! | `raft_meta` | group `u32` ++ `1` | vote |
//! | | group `u32` ++ `2` | committed log id |
//! | | group `u32` ++ `3` | last purged log id |
//! | `state` | group `u32` ++ `0x01` | applied log id + last membership |
//! | | group `u32` ++ `0x02` | shard clock (ms) |
//! | | group `u32` ++ `0x03` | the meta-group state, as one record (group 0) |
//! | | group `u32` ++ `0x05` | the shard's last event task ID |
//! | | group `u32` ++ `0x10` ++ namespace ++ workflow id ++ run id | `MutableState` |
//! | | group `u32` ++ `0x11` ++ namespace ++ workflow id | `CurrentRun` |
//! | | group `u32` ++ `0x12` ++ namespace ++ workflow id ++ run id ++ event id | `HistoryEvent` (prost) |
//! | `snapshot` | group `u32` | the group's last snapshot (meta + all its `state` records) |
//!
//! Event IDs are stored as `i64` with the sign bit flipped, so the bytes sort like the integers.
//!
//! ## Invariants
//! * **Apply and applied index are one WriteBatch.** The caller puts an entry's state records
//!   and the group's applied record in one [`Batch`]; RocksDB writes a batch atomically, after a
//!   crash too (tested by killing a writer process: `tests/apply_atomicity.rs`).
//! * **Log appends are durable before they are acknowledged.** [`LogWriter`] runs a completion
//!   callback only after the batch carrying it was written with `sync = true`.
//! * **The simulation's disk keeps the same promises.** [`MemoryDisk`] (chosen at open through
//!   [`StorageBackend`]) makes a write durable only when it or a later write is synced, and a
//!   crash drops the rest — so the simulation can lose exactly what a power loss loses.
//! * **A failed log write or fsync stops the node.** The writer never retries and never
//!   acknowledges it; with [`fail_stop::exit_on_disk_failure`] installed (the server does) the
//!   process exits at once (fail-stop, see [`fail_stop`]).
//! * **Corrupt data is an error, never a panic**: every decoder returns [`StorageError::Corrupt`].

pub mod db;
pub mod error;
pub mod fail_stop;
pub mod keys;
pub mod log_writer;
pub mod memory;

pub use db::{Batch, Cf, Db, KeyValue, Op, StorageBackend};
pub use error::StorageError;
pub use log_writer::{Completion, LogWriter, LogWriterCounts, LogWriterStats};
pub use memory::{CrashReport, MemoryDisk, MemoryDisks};
