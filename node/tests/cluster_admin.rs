//! `perdura cluster …` against the real binary: the admin service of a single dev node (status
//! JSON and table, snapshot trigger, refused membership changes).

mod common;

use std::process::{Command, Output};

fn cluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perdura"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("run perdura cluster")
}

fn status_json(addr: &str) -> serde_json::Value {
    let out = cluster(&["status", "--addr", addr, "--json"]);
    assert!(out.status.success(), "status failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_snapshot_and_refused_changes_on_a_dev_node() {
    let server = common::ephemeral();
    let _client = server.client().await;
    let addr = format!("127.0.0.1:{}", server.port);

    let status = status_json(&addr);
    assert_eq!(status["answered_by"], 1);
    assert_eq!(status["highest_node_id"], 1);
    let nodes = status["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{status:#}");
    assert_eq!(nodes[0]["id"], 1);
    assert_eq!(nodes[0]["state"], "active");
    assert_eq!(nodes[0]["reachable"], true);
    let groups = status["groups"].as_array().expect("groups");
    assert_eq!(
        groups
            .iter()
            .map(|g| g["group"].as_u64())
            .collect::<Vec<_>>(),
        (0..=4).map(Some).collect::<Vec<_>>(),
        "group 0 and the four dev workflow groups"
    );
    for group in groups {
        assert_eq!(group["leader"], 1, "{group:#}");
        assert_eq!(group["voters"], serde_json::json!([1]));
        let replica = &group["replicas"][0];
        assert_eq!(replica["role"], "leader");
        assert_eq!(replica["lag"], 0);
        assert!(replica["applied_index"].as_u64().is_some_and(|i| i >= 1));
    }

    // A snapshot of every group, with the log purged up to it.
    let out = cluster(&["snapshot", "--addr", &addr, "--purge"]);
    assert!(out.status.success(), "snapshot failed: {out:?}");
    let status = status_json(&addr);
    for group in status["groups"].as_array().expect("groups") {
        let replica = &group["replicas"][0];
        assert_eq!(
            replica["snapshot_index"], replica["applied_index"],
            "{group:#}"
        );
        assert_eq!(
            replica["purged_index"], replica["applied_index"],
            "{group:#}"
        );
    }

    // Node id 1 is in use: adding it again is refused, with the next free id.
    let out = cluster(&[
        "add-node",
        "--addr",
        &addr,
        "--node-id",
        "1",
        "--peer-addr",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already in use") && stderr.contains("next free node id is 2"),
        "{stderr}"
    );

    // The only voter cannot be removed.
    let out = cluster(&["remove-node", "--addr", &addr, "--node-id", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only voter"), "{stderr}");
    assert_eq!(status_json(&addr)["nodes"][0]["state"], "active");

    // The table form lists every group.
    let out = cluster(&["status", "--addr", &addr]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("GROUP") && table.contains("leader"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" leader ")).count(),
        5,
        "{table}"
    );
}

#[test]
fn an_unreachable_node_is_a_clear_error() {
    let port = common::free_port();
    let out = cluster(&["status", "--addr", &format!("127.0.0.1:{port}")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connect to"), "{stderr}");
}
