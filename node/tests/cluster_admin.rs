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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_group_moves_running_workflows_to_a_new_group() {
    let server = common::ephemeral();
    let mut client = server.client().await;
    let addr = format!("127.0.0.1:{}", server.port);

    // Workflows spread over every group before the split.
    let mut runs = Vec::new();
    for i in 0..40 {
        let id = format!("split-wf-{i}");
        let run_id = client
            .start_workflow_execution(common::start_request(&id, &format!("req-{i}")))
            .await
            .expect("start")
            .into_inner()
            .run_id;
        runs.push((id, run_id));
    }

    let out = cluster(&["split-group", "--addr", &addr, "--group", "1", "--json"]);
    assert!(out.status.success(), "split-group failed: {out:?}");
    let split: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(split["source"], 1, "{split:#}");
    assert_eq!(
        split["new_group"], 5,
        "the dev node has groups 1..=4: {split:#}"
    );
    let source_slots = split["source_slots"].as_array().expect("source slots");
    let new_slots = split["new_group_slots"].as_array().expect("new slots");
    assert_eq!(source_slots.len(), 1, "{split:#}");
    assert_eq!(new_slots.len(), 1, "{split:#}");
    assert_eq!(
        source_slots[0][1], new_slots[0][0],
        "the new group takes the upper half of the source's range: {split:#}"
    );

    // The new group is in the status, led and applied.
    let status = status_json(&addr);
    let group5 = status["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == 5)
        .unwrap_or_else(|| panic!("group 5 listed: {status:#}"))
        .clone();
    assert_eq!(group5["leader"], 1, "{group5:#}");

    // Every workflow is still found, with its run, wherever it lives now; and new starts with
    // the old IDs are refused as duplicates (none was lost or duplicated by the move).
    for (id, run_id) in &runs {
        let described = client
            .describe_workflow_execution(common::describe_request(id, ""))
            .await
            .unwrap_or_else(|e| panic!("describe {id} after the split: {e}"))
            .into_inner();
        let execution = described
            .workflow_execution_info
            .and_then(|info| info.execution)
            .expect("execution");
        assert_eq!(&execution.run_id, run_id, "{id}");
        let again = client
            .start_workflow_execution(common::start_request(id, "another-request"))
            .await;
        assert_eq!(
            again.expect_err("a running workflow ID is taken").code(),
            tonic::Code::AlreadyExists,
            "{id}"
        );
    }

    // Bad requests get clear statuses.
    let out = cluster(&["split-group", "--addr", &addr, "--group", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("meta group"),
        "{stderr}"
    );
    let out = cluster(&["split-group", "--addr", &addr, "--group", "99"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");

    // The table form names both groups and their slots.
    let out = cluster(&["split-group", "--addr", &addr, "--group", "2"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("group 2 split") && text.contains("group 6 owns slots"),
        "{text}"
    );
}
