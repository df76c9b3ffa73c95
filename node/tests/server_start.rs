//! `perdura server start` through the real binary: bad configurations fail before anything is
//! created, with a message that says what to fix; a one-member cluster starts, logs plain text
//! (no terminal colours) saying which node of which cluster is ready, and stops on SIGTERM.

mod common;

use common::{free_port, run_to_exit};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn bad_configurations_fail_before_anything_starts() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_arg = root.path().join("d");
    let data = data_arg.to_str().expect("utf-8 path");
    let common = [
        "server",
        "start",
        "--data-dir",
        data,
        "--grpc-addr",
        "127.0.0.1:7999",
        "--peer-addr",
        "127.0.0.1:7998",
    ];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--initial-cluster", "1=127.0.0.1:7998"],
            "missing node ID: set --node-id, PERDURA_NODE_ID or `node_id`",
        ),
        (
            &[
                "--node-id",
                "4",
                "--initial-cluster",
                "1=127.0.0.1:7998,2=127.0.0.1:7997",
            ],
            "node ID 4 is not a member of the initial cluster",
        ),
        (
            &[
                "--node-id",
                "1",
                "--initial-cluster",
                "1=127.0.0.1:7998;2=x:1",
            ],
            "invalid value '1=127.0.0.1:7998;2=x:1' for '--initial-cluster",
        ),
        (
            &["--node-id", "1", "--initial-cluster", "1=localhost"],
            "has no port",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        let (status, stderr) = run_to_exit(&args, Duration::from_secs(10));
        assert!(!status.success(), "{args:?} started");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let file = root.path().join("perdura.toml");
    std::fs::write(&file, "node-id = 1\n").expect("write config");
    let (status, stderr) = run_to_exit(
        &["server", "start", "--config", file.to_str().expect("utf-8")],
        Duration::from_secs(10),
    );
    assert!(!status.success());
    assert!(stderr.contains("`node-id`: unknown key"), "{stderr}");
    assert!(!root.path().join("d").exists(), "nothing was created");
}

#[test]
fn a_one_member_cluster_starts_logs_plain_text_and_stops_on_sigterm() {
    let root = tempfile::tempdir().expect("tempdir");
    let log_path = root.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (grpc, peer) = (free_port(), free_port());
    let data = root.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_perdura"))
        .args(["server", "start", "--node-id", "7", "--groups", "2"])
        .env("PERDURA_DATA_DIR", &data)
        .env("PERDURA_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("PERDURA_PEER_ADDR", format!("127.0.0.1:{peer}"))
        .env("PERDURA_INITIAL_CLUSTER", format!("7=127.0.0.1:{peer}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn perdura");
    let health = || {
        Command::new(env!("CARGO_BIN_EXE_perdura"))
            .args(["server", "health", "--addr", &format!("127.0.0.1:{grpc}")])
            .output()
            .expect("health")
            .status
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !health() {
        assert!(child.try_wait().expect("wait").is_none(), "the node exited");
        assert!(Instant::now() < deadline, "the node never became SERVING");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}");
    let stderr = std::fs::read_to_string(&log_path).expect("read log");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a non-terminal log"
    );
    assert!(
        stderr.contains("Perdura node ready node_id=7 cluster_id="),
        "{stderr}"
    );
    assert!(stderr.contains("stopped cleanly node_id=7"), "{stderr}");
    assert!(
        data.join("identity").exists(),
        "the data dir came from PERDURA_DATA_DIR"
    );
}
