//! Replacing a node in a three-node cluster in one process over real gRPC: node 3 dies and is
//! removed, a fresh node 4 joins through `--join`, is added (catching up by snapshot in every
//! group, the logs having been purged), serves forwarded writes, and ends with the same state
//! digests as the others. Removed and used ids are refused. A joined node restarts without the
//! member it joined through.

mod common;

use common::{Recorder, register};
use perdura_engine::{GroupId, NodeState, ShardCommandKind, ShardReply};
use perdura_raft::membership::{ClusterStatus, Membership, MembershipError, seed};
use perdura_raft::{ClusterConfig, JoinConfig, MultiRaft, RaftError, RaftTiming, RaftTuning};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;
use tokio::net::TcpListener;

const GROUPS: u32 = 3;

fn tuning() -> RaftTuning {
    RaftTuning {
        propose_timeout: Duration::from_secs(10),
        startup_timeout: Duration::from_secs(20),
        timing: Some(RaftTiming {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
        }),
        ..RaftTuning::default()
    }
}

fn start(workflow_id: &str) -> ShardCommandKind {
    let request = StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "OrderWorkflow".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "orders".into(),
            ..Default::default()
        }),
        identity: "test".into(),
        request_id: format!("req-{workflow_id}"),
        ..Default::default()
    };
    ShardCommandKind::StartWorkflow {
        request,
        run_id: format!("run-{workflow_id}"),
    }
}

async fn start_workflows(node: &MultiRaft, prefix: &str, count: usize) {
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        let group = node
            .group_of("default", &id)
            .expect("routed by the slot map");
        let reply = node.propose(group, start(&id)).await.expect("proposed");
        assert!(
            matches!(reply, Ok(ShardReply::WorkflowStarted { .. })),
            "{reply:?}"
        );
    }
}

async fn open(
    node: u64,
    dir: &Path,
    addrs: &BTreeMap<u64, String>,
    listener: TcpListener,
) -> Arc<MultiRaft> {
    let config = ClusterConfig {
        node_id: node,
        data_dir: dir.to_path_buf(),
        shard_groups: GROUPS,
        peer_addr: addrs[&node].parse().expect("socket address"),
        initial_cluster: addrs.clone(),
    };
    MultiRaft::open_cluster_on(config, listener, Arc::new(Recorder::default()), tuning())
        .await
        .expect("node opens")
}

async fn join(node: u64, dir: &Path, via: &str) -> Result<Arc<MultiRaft>, RaftError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    join_on(node, dir, via, listener).await
}

async fn join_on(
    node: u64,
    dir: &Path,
    via: &str,
    listener: TcpListener,
) -> Result<Arc<MultiRaft>, RaftError> {
    let config = JoinConfig {
        node_id: node,
        data_dir: dir.to_path_buf(),
        peer_addr: listener.local_addr().expect("addr"),
        join: via.to_string(),
    };
    let tuning = RaftTuning {
        startup_timeout: Duration::from_secs(5),
        ..tuning()
    };
    MultiRaft::join_cluster_on(config, listener, Arc::new(Recorder::default()), tuning).await
}

/// Waits until `check` holds for the status node `from` reports.
async fn wait_status(
    membership: &Membership,
    what: &str,
    check: impl Fn(&ClusterStatus) -> bool,
) -> ClusterStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = membership.status().await;
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Nodes 1–3 of a fresh cluster over real gRPC (data dirs for ids 1–4), opened together.
async fn three_node_cluster() -> (
    BTreeMap<u64, Arc<MultiRaft>>,
    BTreeMap<u64, String>,
    BTreeMap<u64, tempfile::TempDir>,
) {
    let mut listeners = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for node in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.insert(node, listener.local_addr().expect("addr").to_string());
        listeners.insert(node, listener);
    }
    let dirs: BTreeMap<u64, tempfile::TempDir> = (1..=4)
        .map(|n| (n, tempfile::tempdir().expect("tempdir")))
        .collect();
    let mut opening = Vec::new();
    for (node, listener) in listeners {
        let dir = dirs[&node].path().to_path_buf();
        let addrs = addrs.clone();
        opening.push(tokio::spawn(async move {
            (node, open(node, &dir, &addrs, listener).await)
        }));
    }
    let mut nodes = BTreeMap::new();
    for task in opening {
        let (node, raft) = task.await.expect("open task");
        nodes.insert(node, raft);
    }
    (nodes, addrs, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_a_dead_node_by_a_fresh_one_that_catches_up_by_snapshot() {
    // On a worker (heap-allocated task): the scenario's future is too large for the test
    // thread's stack in debug builds.
    tokio::spawn(replace_scenario()).await.expect("scenario");
}

async fn replace_scenario() {
    let (nodes, addrs, dirs) = three_node_cluster().await;
    let mut nodes = nodes;
    seed::seed_initial_nodes(&nodes[&1]).await.expect("seed");
    let admin = Membership::new(nodes[&1].clone());
    wait_status(&admin, "three active, reachable nodes", |s| {
        s.nodes.len() == 3 && s.nodes.iter().all(|n| n.state == "active" && n.reachable)
    })
    .await;

    start_workflows(&nodes[&1], "before", 20).await;
    nodes[&1]
        .propose_meta(register("before"))
        .await
        .expect("proposed")
        .expect("registered");
    // Snapshots and purged logs on every node, so that a new replica can catch up by snapshot
    // only. A purge waits until no replication stream reads the entries any more, which on a
    // loaded machine took longer than `trigger_snapshot` waits (a CI run beside a chaos
    // campaign): ask again until every log is purged up to its snapshot.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for node in nodes.values() {
        loop {
            let groups = Membership::new(node.clone())
                .trigger_snapshot(true)
                .await
                .expect("snapshot");
            if groups
                .iter()
                .all(|(_, snapshot, purged)| purged >= snapshot)
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {} never purged its logs: {groups:?}",
                node.node_id()
            );
        }
    }

    // Node 3 dies and is removed.
    nodes.remove(&3).expect("node 3").shutdown().await;
    let removed = admin.remove_node(3).await.expect("remove node 3");
    assert_eq!(removed.node.state, NodeState::Removed);
    assert!(removed.groups_changed >= 1);
    // Its id is never reused: neither added again nor allowed to join.
    let refused = admin
        .add_node(3, addrs[&3].clone(), Duration::from_secs(5))
        .await
        .expect_err("id 3 is retired");
    assert!(
        matches!(refused, MembershipError::Refused(_)),
        "{refused:?}"
    );
    let refused = join(3, tempfile::tempdir().expect("dir").path(), &addrs[&1])
        .await
        .err()
        .expect("a removed node cannot join");
    assert!(refused.to_string().contains("removed"), "{refused}");

    // A fresh node 4 joins through node 2 and is added through node 1.
    let node4 = join(4, dirs[&4].path(), &addrs[&2])
        .await
        .expect("node 4 joins");
    let addr4 = node4.peer_addr().expect("peer addr").to_string();
    let added = admin
        .add_node(4, addr4, Duration::from_secs(30))
        .await
        .expect("add node 4");
    assert_eq!(added.node.state, NodeState::Active);
    assert_eq!(added.groups_changed, 1 + GROUPS);
    nodes.insert(4, node4.clone());
    for group in std::iter::once(GroupId::META).chain(node4.shard_groups()) {
        let metrics = node4.raft(group).expect("group").metrics();
        let snapshot =
            openraft::type_config::async_runtime::watch::WatchReceiver::borrow_watched(&metrics)
                .snapshot;
        assert!(snapshot.is_some(), "node 4 caught up {group} by snapshot");
    }

    // Node 4 serves: a write through it (forwarded to the leaders) and its reads.
    start_workflows(&node4, "after", 10).await;
    assert!(node4.read_meta(|m| m.namespaces.contains_key("before")));

    let status = wait_status(&Membership::new(node4.clone()), "replicas converged", |s| {
        s.groups.iter().all(|g| {
            let digests: Vec<_> = g
                .replicas
                .iter()
                .map(|r| (r.applied_index, r.digest.clone()))
                .collect();
            g.voters == [1, 2, 4]
                && g.replicas.len() == 3
                && g.replicas.iter().all(|r| r.reachable && r.digest.is_some())
                && digests.windows(2).all(|w| w[0] == w[1])
        })
    })
    .await;
    assert_eq!(status.highest_node_id, 4);
    let states: BTreeMap<u64, String> = status
        .nodes
        .iter()
        .map(|n| (n.id, n.state.clone()))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            (1, "active".to_string()),
            (2, "active".to_string()),
            (3, "removed".to_string()),
            (4, "active".to_string())
        ])
    );

    for node in nodes.values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joined_node_restarts_while_the_member_it_joined_through_is_down() {
    tokio::spawn(joined_node_restart_scenario())
        .await
        .expect("scenario");
}

/// Found by the chaos campaign (3 nodes, seed 101): after membership changes, the joined nodes
/// waited at restart for the member they had joined through while that member waited for them,
/// and the cluster never came back. A joined node restarted with the same `--join` must start
/// from its own replica.
async fn joined_node_restart_scenario() {
    let (nodes, addrs, dirs) = three_node_cluster().await;
    let mut nodes = nodes;
    seed::seed_initial_nodes(&nodes[&1]).await.expect("seed");
    let admin = Membership::new(nodes[&1].clone());
    let node4 = join(4, dirs[&4].path(), &addrs[&2])
        .await
        .expect("node 4 joins through node 2");
    let addr4 = node4.peer_addr().expect("peer addr");
    admin
        .add_node(4, addr4.to_string(), Duration::from_secs(30))
        .await
        .expect("add node 4");
    start_workflows(&node4, "joined", 5).await;

    // Node 2, the member node 4 joined through, is down while node 4 restarts.
    nodes.remove(&2).expect("node 2").shutdown().await;
    node4.shutdown().await;
    drop(node4);
    let listener = TcpListener::bind(addr4)
        .await
        .expect("node 4's address again");
    let node4 = join_on(4, dirs[&4].path(), &addrs[&2], listener)
        .await
        .expect("node 4 restarts from its own replica while node 2 is down");
    // Nodes 1, 3 and 4 are a majority of {1, 2, 3, 4}: writes through node 4 commit.
    start_workflows(&node4, "restarted", 5).await;
    assert_eq!(node4.shard_groups().len(), GROUPS as usize);
    node4.shutdown().await;
    for node in nodes.values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_initial_member_restarts_while_a_node_that_joined_later_leads_the_meta_group() {
    tokio::spawn(initial_member_restart_scenario())
        .await
        .expect("scenario");
}

/// Found by the chaos campaign (5 nodes, seed 201): members of `--initial-cluster` restarted
/// while a node that had joined later led the meta group, knew only the initial members'
/// addresses, could not reach the leader for their start-up read barrier and gave up.
async fn initial_member_restart_scenario() {
    let (nodes, addrs, dirs) = three_node_cluster().await;
    let mut nodes = nodes;
    seed::seed_initial_nodes(&nodes[&1]).await.expect("seed");
    let admin = Membership::new(nodes[&1].clone());
    let node4 = join(4, dirs[&4].path(), &addrs[&2])
        .await
        .expect("node 4 joins");
    admin
        .add_node(
            4,
            node4.peer_addr().expect("addr").to_string(),
            Duration::from_secs(30),
        )
        .await
        .expect("add node 4");
    nodes.insert(4, node4.clone());

    // Node 4 leads the meta group.
    let deadline = Instant::now() + Duration::from_secs(30);
    while node4.leader_of(GroupId::META) != Some(4) {
        assert!(Instant::now() < deadline, "node 4 never led the meta group");
        if let Some(leader) = node4.leader_of(GroupId::META) {
            let _ = nodes[&leader]
                .raft(GroupId::META)
                .expect("meta")
                .trigger()
                .transfer_leader(4)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Node 1 restarts with its `--initial-cluster` (nodes 1–3 only): it must reach node 4.
    let node1 = nodes.remove(&1).expect("node 1");
    node1.shutdown().await;
    drop(node1);
    drop(admin);
    let listener = TcpListener::bind(addrs[&1].as_str())
        .await
        .expect("node 1's address again");
    let node1 = open(1, dirs[&1].path(), &addrs, listener).await;
    start_workflows(&node1, "restarted", 3).await;
    node1.shutdown().await;
    for node in nodes.values() {
        node.shutdown().await;
    }
}
