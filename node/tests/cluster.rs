//! Three real `perdura server start` processes on 127.0.0.1: they form a cluster, a workflow
//! started through one node is visible through another, a restarted node rejoins with its data
//! dir, a node refuses a data dir that belongs to another node, and a node without a quorum
//! reports NOT_SERVING.

mod common;

use common::{Server, describe_request, free_port, run_to_exit, start_request};
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::transport::Channel;

/// One member of the test cluster.
struct Member {
    id: u64,
    grpc_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

impl Member {
    fn args(&self, cluster: &str) -> Vec<String> {
        [
            "server",
            "start",
            "--node-id",
            &self.id.to_string(),
            "--data-dir",
            self.data_dir.to_str().expect("utf-8 path"),
            "--grpc-addr",
            &format!("127.0.0.1:{}", self.grpc_port),
            "--peer-addr",
            &format!("127.0.0.1:{}", self.peer_port),
            "--initial-cluster",
            cluster,
            "--groups",
            "4",
            "--log-level",
            "warn",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    fn start(&self, cluster: &str) -> Server {
        let args = self.args(cluster);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(&args, self.grpc_port)
    }
}

fn members(root: &Path) -> (Vec<Member>, String) {
    let members: Vec<Member> = (1..=3)
        .map(|id| Member {
            id,
            grpc_port: free_port(),
            peer_port: free_port(),
            data_dir: root.join(format!("n{id}")),
        })
        .collect();
    let cluster = members
        .iter()
        .map(|m| format!("{}=127.0.0.1:{}", m.id, m.peer_port))
        .collect::<Vec<_>>()
        .join(",");
    (members, cluster)
}

/// Describes `workflow_id` through `client` until the node has applied its start. Reads on a
/// follower are served from its local replica; until the API layer puts a read barrier in front
/// of them (ReadIndex), a follower may lag the leader by a few milliseconds, so this waits up to
/// ten seconds for the replica — it never accepts a wrong answer, only an early NOT_FOUND.
async fn describe_eventually(
    client: &mut WorkflowServiceClient<Channel>,
    workflow_id: &str,
) -> ws::DescribeWorkflowExecutionResponse {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client
            .describe_workflow_execution(describe_request(workflow_id, ""))
            .await
        {
            Ok(reply) => return reply.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("describe {workflow_id}: {status}"),
        }
    }
}

fn run_id(reply: ws::DescribeWorkflowExecutionResponse) -> Option<String> {
    reply
        .workflow_execution_info
        .and_then(|info| info.execution)
        .map(|execution| execution.run_id)
}

fn health(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_perdura"))
        .args(["server", "health", "--addr", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run perdura server health")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_any_request_and_a_restarted_node_rejoins() {
    let root = tempfile::tempdir().expect("tempdir");
    let (members, cluster) = members(root.path());
    let mut servers: Vec<Option<Server>> =
        members.iter().map(|m| Some(m.start(&cluster))).collect();
    let mut clients = Vec::new();
    for server in servers.iter().flatten() {
        clients.push(server.client().await);
    }
    for member in &members {
        assert!(health(member.grpc_port), "node {} is SERVING", member.id);
    }

    // Started through node 1, described through node 3.
    let started = clients[0]
        .start_workflow_execution(start_request("cluster-wf-1", "req-1"))
        .await
        .expect("start through node 1")
        .into_inner();
    let described = describe_eventually(&mut clients[2], "cluster-wf-1").await;
    assert_eq!(run_id(described), Some(started.run_id));

    // Node 2 stops cleanly, restarts on its data dir and rejoins: it sees what happened while
    // it was down and serves new requests.
    let stopped = servers[1].take().expect("node 2").terminate();
    assert!(stopped.success(), "node 2 exited with {stopped}");
    let during = clients[0]
        .start_workflow_execution(start_request("cluster-wf-2", "req-2"))
        .await
        .expect("two of three nodes keep serving")
        .into_inner();
    servers[1] = Some(members[1].start(&cluster));
    let mut node2 = servers[1].as_ref().expect("node 2").client().await;
    // The restarted node catches up on what happened while it was down.
    let seen = describe_eventually(&mut node2, "cluster-wf-2").await;
    assert_eq!(run_id(seen), Some(during.run_id));
    let after = node2
        .start_workflow_execution(start_request("cluster-wf-3", "req-3"))
        .await
        .expect("start through the restarted node")
        .into_inner();
    let seen = describe_eventually(&mut clients[0], "cluster-wf-3").await;
    assert_eq!(run_id(seen), Some(after.run_id));
    assert!(
        health(members[1].grpc_port),
        "the restarted node is SERVING"
    );

    // A data dir belongs to its node: node 3's dir refuses to start as node 1.
    let stopped = servers[2].take().expect("node 3").terminate();
    assert!(stopped.success(), "node 3 exited with {stopped}");
    let impostor = Member {
        id: 1,
        grpc_port: members[2].grpc_port,
        peer_port: members[2].peer_port,
        data_dir: members[2].data_dir.clone(),
    };
    let args = impostor.args(&cluster);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stderr) = run_to_exit(&args, Duration::from_secs(30));
    assert!(!status.success(), "started on another node's data dir");
    assert!(
        stderr.contains("belongs to node 3, not node 1"),
        "unclear message: {stderr}"
    );

    // Two of three still form a quorum; one alone does not, and says so through its health.
    assert!(health(members[0].grpc_port), "nodes 1 and 2 keep a quorum");
    let stopped = servers[1].take().expect("node 2").terminate();
    assert!(stopped.success(), "node 2 exited with {stopped}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(members[0].grpc_port) {
        assert!(
            Instant::now() < deadline,
            "node 1 alone still reports SERVING"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for server in servers.into_iter().flatten() {
        let status = server.terminate();
        assert!(status.success(), "exit {status}");
    }
}
