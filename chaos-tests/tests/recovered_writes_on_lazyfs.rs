//! A write a crashed process left unsynced, which the next process recovered and used, must
//! survive a later power loss. After a process crash the kernel still holds what the dead
//! process wrote and did not fsync; the next process reads it as stored (a Raft node reports
//! recovered log entries to its leader as held), so a power loss after that must not take it
//! back. RocksDB makes what it recovers durable when it opens (this test checks that it still
//! does, on our lazyfs); had it not, a node could lose entries a quorum counted. Checked while
//! chasing the campaign's n5 seed 402 (whose real cause was an operator's `umount -l` of its
//! live lazyfs mounts, see RESULTS.md). Needs root and /dev/fuse (lazyfs); skipped otherwise.

mod common;

use common::lazyfs_dir::mount_lazyfs;
use perdura_chaos::lazyfs::can_mount;
use perdura_chaos::lazyfs::control::ControlCommand;
use perdura_storage::{Batch, Cf, Db};
use std::path::Path;
use std::process::Command;

const CHILD_DIR: &str = "PERDURA_RECOVERED_WRITES_CHILD_DIR";

fn put(db: &Db, key: &[u8], sync: bool) {
    let mut batch = Batch::new();
    batch.put(Cf::RaftLog, key.to_vec(), b"entry".to_vec());
    db.write(&batch, sync).expect("write");
}

fn has(dir: &Path, key: &[u8]) -> bool {
    let db = Db::open(dir).expect("open");
    db.get(Cf::RaftLog, key).expect("read").is_some()
}

/// The crashing process: one synced write, one unsynced, then it dies without closing
/// anything (only run as the child of the test below).
#[test]
fn child_writes_then_dies() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let db = Db::open(&dir).expect("open");
    put(&db, b"synced", true);
    put(&db, b"unsynced", false);
    std::process::abort();
}

#[test]
fn a_write_recovered_after_a_process_crash_survives_a_later_power_loss() {
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (lazyfs, mountpoint) = mount_lazyfs(dir.path());
    let db_dir = mountpoint.join("db");

    let status = Command::new(std::env::current_exe().expect("test exe"))
        .args(["--exact", "child_writes_then_dies", "--nocapture"])
        .env(CHILD_DIR, &db_dir)
        .status()
        .expect("run the child");
    assert!(!status.success(), "the child was meant to die");

    // The next process recovers both writes (the unsynced one from the kernel's cache) and may
    // act on them: a Raft node reports such log entries to its leader as stored.
    assert!(has(&db_dir, b"synced"));
    assert!(
        has(&db_dir, b"unsynced"),
        "the unsynced write was not recovered: this run proves nothing"
    );
    // A power loss after that takes nothing back.
    let dropped = lazyfs
        .command(ControlCommand::ClearCache)
        .expect("clear-cache");
    eprintln!("power loss dropped {dropped:?}");
    assert!(has(&db_dir, b"synced"));
    assert!(
        has(&db_dir, b"unsynced"),
        "a write the restarted process had recovered and used was lost in a power loss"
    );
}
