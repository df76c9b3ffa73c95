//! Regression (fsync errors, PostgreSQL's fsyncgate): a log write whose write or fsync fails is
//! never acknowledged, and the writer runs its disk-failure action — the server's exits the
//! process — once, before any callback of the failed batch, then refuses every later write.
//! Before the fix a node whose fsync failed kept running with its writer poisoned, serving
//! nothing it could persist and never recovering until restarted by hand.

use perdura_storage::fail_stop::DiskFailureAction;
use perdura_storage::{Batch, Cf, Db, LogWriter, MemoryDisk, StorageError};
use std::sync::{Arc, Mutex};

fn put(key: &[u8]) -> Batch {
    let mut batch = Batch::new();
    batch.put(Cf::RaftLog, key.to_vec(), vec![1]);
    batch
}

#[test]
fn a_failed_log_write_runs_the_failure_action_once_before_its_callback_and_poisons_the_writer() {
    let disk = MemoryDisk::new();
    let db = Arc::new(Db::open_memory("/sim/n1", disk.clone()));
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = events.clone();
    let action: DiskFailureAction = Arc::new(move |error: &StorageError| {
        seen.lock().expect("lock").push(format!("action: {error}"));
    });
    let writer = LogWriter::start_with(db, Some(action));
    writer
        .write_blocking(put(b"a"), 1)
        .expect("a healthy write");
    assert!(events.lock().expect("lock").is_empty());

    // The disk goes away under the writer (the simulation's stand-in for a failed fsync).
    disk.crash();
    let log = events.clone();
    writer
        .submit(
            put(b"b"),
            1,
            Box::new(move |result| {
                log.lock()
                    .expect("lock")
                    .push(format!("callback ok={}", result.is_ok()));
            }),
        )
        .expect("submit");
    let after = writer.write_blocking(put(b"c"), 1);
    assert!(
        matches!(after, Err(StorageError::WriterClosed)),
        "a poisoned writer refuses later writes: {after:?}"
    );
    let events = events.lock().expect("lock").clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("action: "), "{events:?}");
    assert_eq!(events[1], "callback ok=false", "{events:?}");
}
