//! Regression (fsync errors, PostgreSQL's fsyncgate): when its disk fails an fsync, a real
//! `perdura server start-dev` never acknowledges the write and stops at once with exit status
//! `EXIT_DISK_FAILURE` (fail-stop) instead of serving on from a state it could not persist;
//! restarted on the same data dir it still has what it acknowledged before and serves again.
//! The fault: `strace -e inject=fsync,fdatasync:error=EIO` attached to the node. Before the fix
//! the node kept running with a poisoned log writer and never recovered. Needs root and strace;
//! skipped otherwise.

mod common;

use common::dev_node::{Server, built_perdura_binary, client, describe, free_port, start};
use perdura_storage::fail_stop::EXIT_DISK_FAILURE;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_fsync_fails_acknowledges_nothing_and_exits() {
    if !perdura_chaos::harness::exec::is_root() || !strace_available() {
        eprintln!("skipped: needs root and strace (apt-get install strace)");
        return;
    }
    let binary = built_perdura_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let log = dir.path().join("node.log");
    let port = free_port();
    let mut server = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(server.addr).await;
    let mut before = None;
    for _ in 0..50 {
        before = start(&mut grpc, "fsync-before").await;
        if before.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = before.expect("the healthy node acknowledges a start");

    let mut strace = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-p"])
        .arg(server.pid().to_string())
        .args([
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            "inject=fsync,fdatasync:error=EIO:when=1+",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strace");
    let stderr = strace.stderr.take().expect("strace stderr");
    let mut attached = String::new();
    BufReader::new(stderr)
        .read_line(&mut attached)
        .expect("strace reports attaching");
    assert!(attached.contains("attached"), "strace: {attached}");

    let during = tokio::time::timeout(Duration::from_secs(10), start(&mut grpc, "fsync-during"))
        .await
        .ok()
        .flatten();
    let exited = server.wait_exit(Duration::from_secs(20));
    let _ = strace.kill();
    let _ = strace.wait();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        during, None,
        "a start was acknowledged although every fsync failed\nnode log:\n{log_text}"
    );
    let status = exited.unwrap_or_else(|| {
        panic!("the node kept running after its fsync failed (no fail-stop)\nnode log:\n{log_text}")
    });
    assert_eq!(
        status.code(),
        Some(EXIT_DISK_FAILURE),
        "exit status {status:?} (signal {:?})\nnode log:\n{log_text}",
        status.signal()
    );

    let restarted = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(restarted.addr).await;
    let mut found = None;
    for _ in 0..50 {
        found = describe(&mut grpc, "fsync-before").await;
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        found.as_deref(),
        Some(before.as_str()),
        "the acknowledged start survived"
    );
    assert!(
        start(&mut grpc, "fsync-after").await.is_some(),
        "the restarted node serves"
    );
}
