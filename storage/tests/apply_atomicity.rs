//! An entry is never reported applied unless its records and the applied index were written by
//! the same atomic write. The state machine in `perdura-raft` builds exactly this kind of batch.

use perdura_storage::keys::{self, ExecutionRef};
use perdura_storage::{Batch, Cf, Db};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GROUP: u32 = 3;
const EXEC: ExecutionRef<'static> = ExecutionRef {
    namespace: "default",
    workflow_id: "wf",
    run_id: "run-1",
};

/// The batch applying entry `n`: its event record, and the applied index `n`, together.
fn apply_batch(n: u64) -> Batch {
    let mut batch = Batch::new();
    batch.put(
        Cf::State,
        keys::event_key(GROUP, EXEC, n as i64),
        n.to_be_bytes().to_vec(),
    );
    batch.put(
        Cf::State,
        keys::applied_key(GROUP),
        n.to_be_bytes().to_vec(),
    );
    batch
}

fn applied(db: &Db) -> u64 {
    match db
        .get(Cf::State, &keys::applied_key(GROUP))
        .expect("read applied")
    {
        None => 0,
        Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().expect("8 bytes")),
    }
}

fn event_ids(db: &Db) -> Vec<u64> {
    db.scan_prefix(Cf::State, &keys::events_prefix(GROUP, EXEC))
        .expect("scan")
        .map(|kv| {
            let (_, value) = kv.expect("read");
            u64::from_be_bytes((*value).try_into().expect("8 bytes"))
        })
        .collect()
}

fn assert_consistent(db: &Db) -> u64 {
    let applied = applied(db);
    assert_eq!(
        event_ids(db),
        (1..=applied).collect::<Vec<_>>(),
        "records disagree with applied index {applied}"
    );
    applied
}

#[test]
fn a_batch_dropped_before_its_write_leaves_neither_records_nor_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path()).expect("open");
        db.write(&apply_batch(1), false).expect("write 1");
        let second = apply_batch(2);
        drop(second); // "crash" between building the batch and writing it
    }
    let db = Db::open(dir.path()).expect("reopen");
    assert_eq!(assert_consistent(&db), 1);
}

/// Child mode of the crash test: apply entries forever (until killed), never syncing.
fn child_loop(dir: &str) {
    let db = Db::open(dir).expect("child open");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 1;
    while Instant::now() < deadline {
        db.write(&apply_batch(n), false).expect("child write");
        n += 1;
    }
}

#[test]
fn killing_the_writer_process_mid_stream_keeps_records_and_index_in_agreement() {
    if let Ok(dir) = std::env::var("PERDURA_CRASH_CHILD_DIR") {
        child_loop(&dir);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "killing_the_writer_process_mid_stream_keeps_records_and_index_in_agreement",
                "--exact",
            ])
            .env("PERDURA_CRASH_CHILD_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(700));
        child.kill().expect("kill child"); // SIGKILL: no destructors, no flush
        child.wait().expect("reap child");
        let db = Db::open(dir.path()).expect("reopen after kill");
        let applied = assert_consistent(&db);
        assert!(applied > 0, "round {round}: the child applied nothing");
        // The next child continues from a consistent state: rewrite from scratch each round.
        let mut reset = Batch::new();
        let (start, end) = keys::group_range(GROUP);
        reset.delete_range(Cf::State, start, end.expect("not the last group"));
        db.write(&reset, true).expect("reset");
    }
}
