//! Group commit: one fsync carries the log appends of many entries from many groups.
//!
//! Callers [`LogWriter::submit`] a [`Batch`] with a completion callback. A dedicated thread takes
//! the first queued request, drains everything else already queued, writes all of it as ONE
//! RocksDB write batch with `sync = true`, and only then runs every callback, in submission order.
//!
//! ## Correctness
//! * A callback reports `Ok` only after its batch is fsynced.
//! * Requests are written in submission order (one FIFO queue, one writer thread), so a caller that
//!   submits an append and then a truncation of the same group sees them applied in that order.
//! * On an in-memory (simulated) database there is no thread: [`LogWriter::submit`] writes and
//!   runs the callback before it returns, so the simulation's scheduling stays on its one
//!   thread and deterministic. The promises above hold unchanged.
//! * After a failed write the writer is *poisoned*: it fails every later request. An fsync error
//!   leaves the page cache state unknown, so retrying could report data durable that is not.
//! * The first failed write runs the writer's [`DiskFailureAction`] (by default the process-wide
//!   one of [`crate::fail_stop`]: the server exits) before any callback of the failed batch.

use crate::db::{Batch, Db};
use crate::error::StorageError;
use crate::fail_stop::{self, DiskFailureAction};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Completion callback of a submitted batch: runs on the writer thread after the fsync (keep it
/// short: hand off to a channel).
pub type Completion = Box<dyn FnOnce(Result<(), StorageError>) + Send + 'static>;

struct Request {
    batch: Batch,
    entries: u64,
    done: Completion,
}

/// Most requests merged into one write (bounds the size of one write batch).
const MAX_REQUESTS_PER_WRITE: usize = 4096;

/// Counters of the group commit, readable by tests and diagnostics.
#[derive(Debug, Default)]
pub struct LogWriterStats {
    fsyncs: AtomicU64,
    requests: AtomicU64,
    entries: AtomicU64,
    max_entries_per_fsync: AtomicU64,
    max_requests_per_fsync: AtomicU64,
}

/// A point-in-time copy of [`LogWriterStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogWriterCounts {
    pub fsyncs: u64,
    pub requests: u64,
    pub entries: u64,
    pub max_entries_per_fsync: u64,
    pub max_requests_per_fsync: u64,
}

impl LogWriterStats {
    pub fn counts(&self) -> LogWriterCounts {
        LogWriterCounts {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
            max_entries_per_fsync: self.max_entries_per_fsync.load(Ordering::Relaxed),
            max_requests_per_fsync: self.max_requests_per_fsync.load(Ordering::Relaxed),
        }
    }

    fn record(&self, requests: u64, entries: u64) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.entries.fetch_add(entries, Ordering::Relaxed);
        self.max_entries_per_fsync
            .fetch_max(entries, Ordering::Relaxed);
        self.max_requests_per_fsync
            .fetch_max(requests, Ordering::Relaxed);
        metrics::histogram!("perdura_log_entries_per_fsync").record(entries as f64);
        metrics::histogram!("perdura_log_batches_per_fsync").record(requests as f64);
    }
}

/// The group-commit writer of one node. See the module docs.
pub struct LogWriter {
    tx: Mutex<Option<Sender<Request>>>,
    /// In-memory database: writes happen inline in `submit` (no thread).
    inline: Option<InlineWriter>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<LogWriterStats>,
}

impl LogWriter {
    /// Starts the writer thread over `db` (none over an in-memory database: see the module docs).
    /// A failed write runs the process-wide [`DiskFailureAction`], if one is installed.
    pub fn start(db: Arc<Db>) -> LogWriter {
        LogWriter::start_with(db, fail_stop::process_action())
    }

    /// [`LogWriter::start`] with this writer's own action on a failed write.
    pub fn start_with(db: Arc<Db>, on_failure: Option<DiskFailureAction>) -> LogWriter {
        let stats = Arc::new(LogWriterStats::default());
        if db.is_memory() {
            return LogWriter {
                tx: Mutex::new(None),
                inline: Some(InlineWriter {
                    db: Mutex::new(Some(db)),
                    poisoned: AtomicBool::new(false),
                    on_failure,
                }),
                thread: Mutex::new(None),
                stats,
            };
        }
        let (tx, rx) = mpsc::channel();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("perdura-log-writer".into())
            .spawn(move || run(db, rx, thread_stats, on_failure))
            .expect("spawning the log writer thread");
        LogWriter {
            tx: Mutex::new(Some(tx)),
            inline: None,
            thread: Mutex::new(Some(thread)),
            stats,
        }
    }

    /// Queues `batch` (carrying `entries` log entries, for statistics); `done` runs after it is
    /// fsynced (or failed). Fails at once, without calling `done`, if the writer is shut down.
    pub fn submit(&self, batch: Batch, entries: u64, done: Completion) -> Result<(), StorageError> {
        if let Some(inline) = &self.inline {
            return inline.write(batch, entries, done, &self.stats);
        }
        let guard = self
            .tx
            .lock()
            .expect("log writer sender lock is never poisoned");
        let tx = guard.as_ref().ok_or(StorageError::WriterClosed)?;
        tx.send(Request {
            batch,
            entries,
            done,
        })
        .map_err(|_| StorageError::WriterClosed)
    }

    /// Submits `batch` and blocks the calling thread until it is fsynced.
    pub fn write_blocking(&self, batch: Batch, entries: u64) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(batch, entries, Box::new(move |r| drop(tx.send(r))))?;
        rx.recv().map_err(|_| StorageError::WriterClosed)?
    }

    pub fn stats(&self) -> &Arc<LogWriterStats> {
        &self.stats
    }

    /// Stops accepting requests, writes what is queued, and joins the thread. Idempotent.
    pub fn shutdown(&self) {
        if let Some(inline) = &self.inline {
            // Dropping the handle as the writer thread would: the database can close.
            inline.db.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        drop(
            self.tx
                .lock()
                .expect("log writer sender lock is never poisoned")
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .expect("log writer thread lock is never poisoned")
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("log writer thread panicked");
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread-less writer over an in-memory database.
struct InlineWriter {
    /// `None` once shut down.
    db: Mutex<Option<Arc<Db>>>,
    poisoned: AtomicBool,
    on_failure: Option<DiskFailureAction>,
}

impl InlineWriter {
    fn write(
        &self,
        batch: Batch,
        entries: u64,
        done: Completion,
        stats: &LogWriterStats,
    ) -> Result<(), StorageError> {
        let db = self
            .db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StorageError::WriterClosed)?;
        let result = if self.poisoned.load(Ordering::Acquire) {
            Err(StorageError::WriterClosed)
        } else {
            let result = db.write(&batch, true);
            if let Err(error) = &result {
                self.poisoned.store(true, Ordering::Release);
                if let Some(action) = &self.on_failure {
                    action(error);
                }
            }
            result
        };
        if result.is_ok() {
            stats.record(1, entries);
        }
        done(result);
        Ok(())
    }
}

fn run(
    db: Arc<Db>,
    rx: Receiver<Request>,
    stats: Arc<LogWriterStats>,
    on_failure: Option<DiskFailureAction>,
) {
    let poisoned = AtomicBool::new(false);
    while let Ok(first) = rx.recv() {
        let mut requests = vec![first];
        while requests.len() < MAX_REQUESTS_PER_WRITE {
            match rx.try_recv() {
                Ok(r) => requests.push(r),
                Err(_) => break,
            }
        }
        let mut batches = Vec::with_capacity(requests.len());
        let mut dones = Vec::with_capacity(requests.len());
        let mut entries = 0;
        for r in requests {
            entries += r.entries;
            batches.push(r.batch);
            dones.push(r.done);
        }
        let result = if poisoned.load(Ordering::Relaxed) {
            Err(StorageError::WriterClosed)
        } else {
            let result = db.write_all(&batches, true);
            if let Err(e) = &result {
                tracing::error!(error = %e, "log write failed; refusing further writes");
                poisoned.store(true, Ordering::Relaxed);
                // Before any callback: nothing acts on the state the disk refused.
                if let Some(action) = &on_failure {
                    action(e);
                }
            }
            result
        };
        if result.is_ok() {
            stats.record(dones.len() as u64, entries);
        }
        for done in dones {
            done(match &result {
                Ok(()) => Ok(()),
                Err(StorageError::Rocks(e)) => Err(StorageError::Rocks(e.clone())),
                Err(_) => Err(StorageError::WriterClosed),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Cf;
    use crate::keys::log_key;
    use std::sync::Barrier;

    #[test]
    fn queued_requests_share_one_fsync_and_complete_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::open(dir.path()).expect("open"));
        let writer = LogWriter::start(db.clone());
        // The first completion blocks the writer thread until every other request is queued, so
        // the second write deterministically carries all of them.
        let gate = Arc::new(Barrier::new(2));
        let order = Arc::new(Mutex::new(Vec::new()));
        let total = 200u64;
        for i in 0..total {
            let mut batch = Batch::new();
            batch.put(
                Cf::RaftLog,
                log_key(1 + (i % 3) as u32, i).to_vec(),
                vec![1],
            );
            let gate = gate.clone();
            let order = order.clone();
            let done: Completion = Box::new(move |r| {
                r.expect("write succeeds");
                order.lock().expect("lock").push(i);
                if i == 0 {
                    gate.wait();
                }
            });
            writer.submit(batch, 1, done).expect("submit");
        }
        gate.wait();
        writer
            .write_blocking(Batch::new(), 0)
            .expect("barrier write");
        let counts = writer.stats().counts();
        assert_eq!(counts.entries, total);
        // Either the first or the second write carries at least half of the burst.
        assert!(counts.max_entries_per_fsync >= total / 2, "{counts:?}");
        assert!(counts.fsyncs <= 3, "{counts:?}");
        assert_eq!(*order.lock().expect("lock"), (0..total).collect::<Vec<_>>());
        assert_eq!(
            db.get(Cf::RaftLog, &log_key(2, 199)).expect("get"),
            Some(vec![1])
        );
    }

    #[test]
    fn submit_after_shutdown_fails_without_callback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::open(dir.path()).expect("open"));
        let writer = LogWriter::start(db);
        writer.shutdown();
        let result = writer.submit(Batch::new(), 0, Box::new(|_| panic!("must not be called")));
        assert!(matches!(result, Err(StorageError::WriterClosed)));
    }
}
