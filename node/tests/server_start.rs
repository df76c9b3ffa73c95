//! `perdura server start` through the real binary: bad configurations fail before anything is
//! created, with a message that says what to fix.

mod common;

use common::run_to_exit;
use std::time::Duration;

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
