//! `perdura cluster read-replica` against the real binary: a dev node's own replicas (applied
//! index, digest, committed log, every run's history) in the chaos final-read node format.

mod common;

use perdura_chaos::checker::{CheckConfig, check_all};
use perdura_chaos::history::{EventType, FinalRead, History, NodeRead};
use perdura_chaos::ids::{GroupId, NodeId, RequestId};
use std::process::{Command, Output};

fn cluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perdura"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("run perdura cluster")
}

fn read_replica(addr: &str, extra: &[&str]) -> NodeRead {
    let mut args = vec!["read-replica", "--addr", addr, "--json"];
    args.extend_from_slice(extra);
    let out = cluster(&args);
    assert!(out.status.success(), "read-replica failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("read-replica --json is a final-read node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_node_reads_its_replicas_as_a_chaos_final_read_node() {
    let server = common::ephemeral();
    let mut client = server.client().await;
    let addr = format!("127.0.0.1:{}", server.port);
    let started = client
        .start_workflow_execution(common::start_request("rr-1", "rr-request-1"))
        .await
        .expect("start")
        .into_inner();

    let read = read_replica(&addr, &[]);
    assert_eq!(read.node, NodeId(1));
    assert_eq!(
        read.groups.iter().map(|g| g.group).collect::<Vec<_>>(),
        (0..=4).map(GroupId).collect::<Vec<_>>(),
        "the meta group and the four dev workflow groups"
    );
    for group in &read.groups {
        assert!(group.applied_index.0 >= 1, "{group:?}");
        assert_eq!(group.state_digest.len(), 16, "hex digest: {group:?}");
        let last = group.committed.last().expect("the log is not purged yet");
        assert_eq!(last.index, group.applied_index, "committed up to applied");
        assert!(group.committed.windows(2).all(|w| w[0].index < w[1].index));
        // openraft's initial membership entry is (term 0, index 0); terms never decrease.
        assert!(group.committed.windows(2).all(|w| w[0].term <= w[1].term));
        assert!(last.term.0 >= 1, "{group:?}");
    }
    assert!(
        read.groups[0].runs.is_empty(),
        "the meta group holds no runs"
    );
    let runs: Vec<_> = read
        .groups
        .iter()
        .flat_map(|g| &g.runs)
        .filter(|run| run.workflow_id.as_str() == "rr-1")
        .collect();
    assert_eq!(runs.len(), 1, "{read:#?}");
    assert_eq!(runs[0].run_id.as_str(), started.run_id);
    let first = runs[0]
        .started_event()
        .expect("event 1 is WorkflowExecutionStarted");
    assert_eq!(first.event_id.0, 1);
    assert_eq!(
        first.attributes.request_id, None::<RequestId>,
        "no input: no request ID"
    );
    assert!(
        runs[0]
            .events
            .iter()
            .any(|e| e.event_type == EventType::Other("WorkflowTaskScheduled".into()))
    );

    // The digests are the ones cluster status reports for the same applied indexes.
    let status = cluster(&["status", "--addr", &addr, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    for group in &read.groups {
        let replica = &status["groups"][group.group.0 as usize]["replicas"][0];
        if replica["applied_index"] == group.applied_index.0 {
            assert_eq!(replica["digest"], group.state_digest.as_str(), "{group:?}");
        }
    }

    // The read of one node passes every checker on its own (an empty history).
    let history = History::from_records(Vec::new()).expect("empty history");
    let final_read = FinalRead {
        read_at_ns: Default::default(),
        nodes: vec![read.clone()],
    };
    let summary = check_all(&history, &final_read, &CheckConfig::default());
    assert!(summary.valid, "{summary}");

    // One group; an unknown group is refused.
    let only = read_replica(&addr, &["--group", "0"]);
    assert_eq!(only.groups.len(), 1);
    assert_eq!(only.groups[0].group, GroupId(0));
    let unknown = cluster(&["read-replica", "--addr", &addr, "--group", "99", "--json"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("NotFound"),
        "{unknown:?}"
    );

    // After a snapshot that purges the log, the purged prefix is no longer held; the applied
    // state is unchanged.
    let out = cluster(&["snapshot", "--addr", &addr, "--purge"]);
    assert!(out.status.success(), "snapshot failed: {out:?}");
    let after = read_replica(&addr, &[]);
    for (before, now) in read.groups.iter().zip(&after.groups) {
        assert!(now.applied_index >= before.applied_index);
        assert!(
            now.committed.iter().all(|e| e.index == now.applied_index),
            "at most the entry at the snapshot is held: {now:?}"
        );
        if now.applied_index == before.applied_index {
            assert_eq!(now.state_digest, before.state_digest);
        }
    }
}
