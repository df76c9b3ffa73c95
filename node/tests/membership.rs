//! Membership through the real binary: three `perdura server start` processes; node 3 is killed
//! and removed; a fresh node 4 started with `--join` is added with `perdura cluster add-node`
//! after every node snapshotted and purged its logs, so it can only catch up by snapshot; a
//! workflow started through node 4 afterwards completes, and node 4's state digests equal the
//! others'. Reusing node id 3 is refused.

mod common;

use common::{Server, free_port, poll_workflow_request, start_request};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::enums::v1::{CommandType, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

struct Member {
    id: u64,
    grpc_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

impl Member {
    fn new(id: u64, root: &Path) -> Member {
        Member {
            id,
            grpc_port: free_port(),
            peer_port: free_port(),
            data_dir: root.join(format!("n{id}")),
        }
    }

    fn grpc(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    fn peer(&self) -> String {
        format!("127.0.0.1:{}", self.peer_port)
    }

    /// `--initial-cluster CLUSTER` or `--join PEER`.
    fn start(&self, how: &[&str]) -> Server {
        let id = self.id.to_string();
        let (grpc, peer) = (self.grpc(), self.peer());
        let mut args = vec![
            "server",
            "start",
            "--node-id",
            &id,
            "--data-dir",
            self.data_dir.to_str().expect("utf-8 path"),
            "--grpc-addr",
            &grpc,
            "--peer-addr",
            &peer,
            "--groups",
            "3",
            "--log-level",
            "warn",
        ];
        args.extend_from_slice(how);
        Server::start(&args, self.grpc_port)
    }
}

fn cluster(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_perdura"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("run perdura cluster")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "perdura cluster failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(addr: &str) -> serde_json::Value {
    serde_json::from_str(&ok(cluster(&["status", "--addr", addr, "--json"]))).expect("JSON")
}

/// Polls `perdura cluster status --json` on `addr` until `check` holds.
async fn wait_status(
    addr: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status(addr);
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn groups(status: &serde_json::Value) -> &Vec<serde_json::Value> {
    status["groups"].as_array().expect("groups")
}

/// Every group has `voters`, all of them reachable, with equal applied index and digest.
fn converged(status: &serde_json::Value, voters: &[u64]) -> bool {
    groups(status).iter().all(|group| {
        let replicas = group["replicas"].as_array().expect("replicas");
        let states: Vec<_> = replicas
            .iter()
            .map(|r| (r["applied_index"].clone(), r["digest"].clone()))
            .collect();
        group["voters"] == serde_json::json!(voters)
            && replicas.len() == voters.len()
            && replicas
                .iter()
                .all(|r| r["reachable"] == true && r["digest"].is_string())
            && states.windows(2).all(|w| w[0] == w[1])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_node_and_add_a_fresh_one_that_catches_up_by_snapshot_and_serves() {
    let root = tempfile::tempdir().expect("tempdir");
    let members: Vec<Member> = (1..=3).map(|id| Member::new(id, root.path())).collect();
    let initial = members
        .iter()
        .map(|m| format!("{}={}", m.id, m.peer()))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers: Vec<Option<Server>> = members
        .iter()
        .map(|m| Some(m.start(&["--initial-cluster", &initial])))
        .collect();
    let mut client1 = servers[0].as_ref().expect("node 1").client().await;
    let addr1 = members[0].grpc();
    let before = wait_status(&addr1, "three active nodes", |s| {
        s["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.len() == 3 && nodes.iter().all(|n| n["state"] == "active"))
            && converged(s, &[1, 2, 3])
    })
    .await;
    assert_eq!(before["highest_node_id"], 3);

    // Some history, then a snapshot and a purged log on every node.
    for i in 0..10 {
        client1
            .start_workflow_execution(start_request(&format!("before-{i}"), &format!("b-{i}")))
            .await
            .expect("start");
    }
    for member in &members {
        ok(cluster(&["snapshot", "--addr", &member.grpc(), "--purge"]));
    }

    // Node 3 dies (kill -9) and is removed.
    drop(servers[2].take());
    let out = ok(cluster(&[
        "remove-node",
        "--addr",
        &addr1,
        "--node-id",
        "3",
    ]));
    assert!(out.contains("node 3 is removed"), "{out}");

    // Its id is retired: adding id 3 again is refused.
    let refused = cluster(&[
        "add-node",
        "--addr",
        &addr1,
        "--node-id",
        "3",
        "--peer-addr",
        &members[2].peer(),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("never reused"), "{stderr}");

    // A fresh node 4 joins through node 2's peer address and is added through node 1.
    let node4 = Member::new(4, root.path());
    let server4 = node4.start(&["--join", &members[1].peer()]);
    let out = ok(cluster(&[
        "add-node",
        "--addr",
        &addr1,
        "--node-id",
        "4",
        "--peer-addr",
        &node4.peer(),
    ]));
    assert!(out.contains("node 4 is active"), "{out}");
    let addr4 = node4.grpc();
    let after = wait_status(&addr4, "node 4 caught up", |s| converged(s, &[1, 2, 4])).await;
    for group in groups(&after) {
        let replica4 = group["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .find(|r| r["node"] == 4)
            .expect("node 4 replicates every group");
        assert!(
            replica4["snapshot_index"].as_u64().is_some_and(|i| i > 0),
            "node 4 got group {} by snapshot: {group:#}",
            group["group"]
        );
    }
    let states: Vec<(u64, String)> = after["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().unwrap_or(0),
                n["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (1, "active".to_string()),
            (2, "active".to_string()),
            (3, "removed".to_string()),
            (4, "active".to_string())
        ]
    );

    // Node 4 serves: a workflow started, run and completed through it.
    let mut client4 = server4.client().await;
    let started = client4
        .start_workflow_execution(start_request("after-join", "after-join"))
        .await
        .expect("start through node 4")
        .into_inner();
    let task = loop {
        let task = client4
            .poll_workflow_task_queue(poll_workflow_request("probe-tq"))
            .await
            .expect("poll node 4")
            .into_inner();
        if !task.task_token.is_empty()
            && task
                .workflow_execution
                .as_ref()
                .is_some_and(|e| e.workflow_id == "after-join")
        {
            break task;
        }
    };
    let complete = Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            ),
        ),
        ..Default::default()
    };
    client4
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            commands: vec![complete],
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("complete through node 4");
    let described = client4
        .describe_workflow_execution(common::describe_request("after-join", &started.run_id))
        .await
        .expect("describe through node 4")
        .into_inner();
    assert_eq!(
        described.workflow_execution_info.map(|info| info.status),
        Some(WorkflowExecutionStatus::Completed as i32)
    );
    // Every replica, node 4 included, ends with the same state.
    wait_status(&addr4, "replicas converged after the workflow", |s| {
        converged(s, &[1, 2, 4])
    })
    .await;
    drop(server4);
    drop(servers);
}
