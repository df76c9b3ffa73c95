//! Three MultiRaft nodes in one process over real gRPC on 127.0.0.1: bootstrap, forwarding,
//! read barriers, failover (also after a leader's forward clock skew), catch-up, leader
//! balancing and identity checks.

mod common;

use common::{Recorder, SkewedClock, register};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use perdura_engine::{ExecutionKey, GroupId, MetaReply, ShardCommandKind, ShardReply};
use perdura_raft::cluster::identity;
use perdura_raft::peer::TrafficTable;
use perdura_raft::{
    Clock, ClusterConfig, MultiRaft, RaftError, RaftTiming, RaftTuning, SystemClock,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;
use tokio::net::TcpListener;

const GROUPS: u32 = 6;

fn tuning() -> RaftTuning {
    RaftTuning {
        propose_timeout: Duration::from_secs(10),
        startup_timeout: Duration::from_secs(20),
        timing: Some(RaftTiming {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
        }),
        balance_interval: Duration::from_millis(300),
        // Small, so that a node that was down must catch up from a snapshot.
        snapshot_every_logs: 20,
        logs_kept_after_snapshot: 0,
        ..RaftTuning::default()
    }
}

fn config(node: u64, dir: &Path, addrs: &BTreeMap<u64, String>) -> ClusterConfig {
    ClusterConfig {
        node_id: node,
        data_dir: dir.to_path_buf(),
        shard_groups: GROUPS,
        peer_addr: addrs[&node].parse().expect("socket address"),
        initial_cluster: addrs.clone(),
    }
}

/// Binds `addr` again after its node stopped (the port may linger for a moment).
async fn rebind(addr: &str) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr} again");
}

async fn open(
    node: u64,
    dir: &Path,
    addrs: &BTreeMap<u64, String>,
    listener: TcpListener,
) -> Result<Arc<MultiRaft>, RaftError> {
    open_with(node, dir, addrs, listener, tuning()).await
}

async fn open_with(
    node: u64,
    dir: &Path,
    addrs: &BTreeMap<u64, String>,
    listener: TcpListener,
    tuning: RaftTuning,
) -> Result<Arc<MultiRaft>, RaftError> {
    MultiRaft::open_cluster_on(
        config(node, dir, addrs),
        listener,
        Arc::new(Recorder::default()),
        tuning,
    )
    .await
}

struct Cluster {
    addrs: BTreeMap<u64, String>,
    dirs: BTreeMap<u64, tempfile::TempDir>,
    nodes: BTreeMap<u64, Arc<MultiRaft>>,
}

impl Cluster {
    /// Starts three nodes concurrently (each waits for a quorum to join).
    async fn start() -> Cluster {
        Cluster::start_with(tuning()).await
    }

    async fn start_with(tuning: RaftTuning) -> Cluster {
        Cluster::start_each(|_| tuning.clone()).await
    }

    /// Starts three nodes, node `n` tuned by `tuning(n)`.
    async fn start_each(tuning: impl Fn(u64) -> RaftTuning) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for node in 1..=3u64 {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addrs.insert(node, listener.local_addr().expect("local addr").to_string());
            listeners.insert(node, listener);
        }
        let dirs: BTreeMap<u64, tempfile::TempDir> = (1..=3)
            .map(|n| (n, tempfile::tempdir().expect("tempdir")))
            .collect();
        let mut opening = Vec::new();
        for (node, listener) in listeners {
            let dir = dirs[&node].path().to_path_buf();
            let addrs = addrs.clone();
            let tuning = tuning(node);
            opening.push(tokio::spawn(async move {
                (node, open_with(node, &dir, &addrs, listener, tuning).await)
            }));
        }
        let mut nodes = BTreeMap::new();
        for task in opening {
            let (node, raft) = task.await.expect("open task");
            nodes.insert(node, raft.expect("node opens"));
        }
        Cluster { addrs, dirs, nodes }
    }

    async fn restart(&mut self, node: u64) {
        let listener = rebind(&self.addrs[&node]).await;
        let raft = open(node, self.dirs[&node].path(), &self.addrs, listener)
            .await
            .expect("node reopens");
        self.nodes.insert(node, raft);
    }

    async fn stop(&mut self, node: u64) {
        let raft = self.nodes.remove(&node).expect("running node");
        raft.shutdown().await;
    }

    /// The leader of `group` once every running node agrees on one that is running.
    async fn leader(&self, group: GroupId) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let seen: Vec<Option<u64>> = self.nodes.values().map(|n| n.leader_of(group)).collect();
            if let Some(Some(leader)) = seen.first()
                && self.nodes.contains_key(leader)
                && seen.iter().all(|l| *l == Some(*leader))
            {
                return *leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader of {group}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(self) {
        for node in self.nodes.values() {
            node.shutdown().await;
        }
    }
}

fn start(workflow_id: &str) -> ShardCommandKind {
    start_timed(workflow_id, None)
}

/// A start whose run times out after `run_timeout_ms` (a timer of the group).
fn start_timed(workflow_id: &str, run_timeout_ms: Option<i64>) -> ShardCommandKind {
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
        workflow_run_timeout: run_timeout_ms.map(|ms| prost_wkt_types::Duration {
            seconds: ms / 1000,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        }),
        ..Default::default()
    };
    ShardCommandKind::StartWorkflow {
        request,
        run_id: format!("run-{workflow_id}"),
    }
}

fn key(workflow_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: format!("run-{workflow_id}"),
    }
}

fn started(workflow_id: &str) -> Result<ShardReply, perdura_engine::EngineError> {
    Ok(ShardReply::WorkflowStarted {
        run_id: format!("run-{workflow_id}"),
        started: true,
    })
}

/// A follower of `group` among the running nodes.
fn follower(cluster: &Cluster, leader: u64) -> u64 {
    *cluster
        .nodes
        .keys()
        .find(|n| **n != leader)
        .expect("a follower")
}

/// Every running node has applied the same state of `group` (waits for the followers).
async fn assert_same_digest(cluster: &Cluster, group: GroupId) {
    for node in cluster.nodes.values() {
        node.read_barrier(group).await.expect("read barrier");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let digests: Vec<_> = cluster
            .nodes
            .values()
            .map(|n| n.group_digest(group).expect("digest"))
            .collect();
        if digests.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas of {group} differ: {digests:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn leader_counts(cluster: &Cluster) -> BTreeMap<u64, usize> {
    let any = cluster.nodes.values().next().expect("a node");
    let mut counts = BTreeMap::new();
    for group in any.shard_groups() {
        if let Some(leader) = any.leader_of(group) {
            *counts.entry(leader).or_default() += 1;
        }
    }
    counts
}

async fn wait_balanced(cluster: &Cluster) -> BTreeMap<u64, usize> {
    let cap = (GROUPS as usize).div_ceil(3) + 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts = leader_counts(cluster);
        let all_led = counts.values().sum::<usize>() == GROUPS as usize;
        if all_led && counts.len() == 3 && counts.values().all(|c| *c <= cap) {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "leaders not balanced: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_bootstrap_forward_fail_over_and_catch_up() {
    // On the heap: the scenario's future is large in a debug build, and the test thread's stack
    // is 2 MiB.
    Box::pin(bootstrap_forward_fail_over_and_catch_up()).await;
}

async fn bootstrap_forward_fail_over_and_catch_up() {
    let mut cluster = Cluster::start().await;

    // One bootstrap: every node has the same cluster id, in its identity file too.
    let ids: Vec<Option<String>> = cluster
        .nodes
        .values()
        .map(|n| n.read_meta(|m| m.cluster_id.clone()))
        .collect();
    assert!(ids[0].is_some(), "not bootstrapped");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for (node, dir) in &cluster.dirs {
        let identity = identity::read(dir.path()).expect("read").expect("identity");
        assert_eq!(identity.node_id, *node);
        assert_eq!(identity.cluster_id, ids[0]);
    }
    for node in cluster.nodes.values() {
        assert_eq!(node.shard_groups().len(), GROUPS as usize);
    }

    // A meta proposal on a follower of the meta group is applied on all three.
    let meta_leader = cluster.leader(GroupId::META).await;
    let meta_follower = follower(&cluster, meta_leader);
    let reply = cluster.nodes[&meta_follower]
        .propose_meta(register("from-follower"))
        .await
        .expect("forwarded");
    assert_eq!(reply, Ok(MetaReply::NamespaceRegistered));
    // The forwarding node has applied its own write when the call returns.
    assert!(cluster.nodes[&meta_follower].read_meta(|m| m.namespace("from-follower").is_some()));

    // A workflow proposal on a follower of its group is applied on all three.
    let group = cluster.nodes[&1]
        .group_of("default", "wf-1")
        .expect("routed by the slot map");
    let leader = cluster.leader(group).await;
    let other = follower(&cluster, leader);
    let reply = cluster.nodes[&other]
        .propose(group, start("wf-1"))
        .await
        .expect("forwarded");
    assert_eq!(reply, started("wf-1"));
    // A read barrier on the third node sees the write acknowledged on `other`.
    let third = *cluster
        .nodes
        .keys()
        .find(|n| **n != leader && **n != other)
        .expect("third node");
    cluster.nodes[&third]
        .read_barrier(group)
        .await
        .expect("read barrier");
    let seen = cluster.nodes[&third].read_shard(group, |s| s.execution(&key("wf-1")).is_some());
    assert_eq!(
        seen,
        Some(true),
        "the follower read missed an acknowledged write"
    );
    assert_same_digest(&cluster, group).await;
    assert_same_digest(&cluster, GroupId::META).await;

    // Leaders spread over the three nodes.
    let counts = wait_balanced(&cluster).await;
    println!("leaders per node after bootstrap: {counts:?}");

    // The leader of the group fails: a new leader is elected and proposals from any remaining
    // node still succeed through forwarding.
    let killed = cluster.leader(group).await;
    let killed_meta_index = {
        let metrics = cluster.nodes[&killed]
            .raft(GroupId::META)
            .expect("meta")
            .metrics();
        let applied = metrics.borrow_watched().last_applied;
        applied.map_or(0, |l| l.index)
    };
    cluster.stop(killed).await;
    let failed_at = Instant::now();
    let new_leader = cluster.leader(group).await;
    println!("new leader of {group} after {:?}", failed_at.elapsed());
    assert_ne!(new_leader, killed);
    for (i, node) in cluster
        .nodes
        .keys()
        .copied()
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        let id = format!("wf-after-{i}");
        let g = cluster.nodes[&node]
            .group_of("default", &id)
            .expect("routed by the slot map");
        let reply = cluster.nodes[&node]
            .propose(g, start(&id))
            .await
            .expect("proposal after failover");
        assert_eq!(reply, started(&id));
    }
    cluster.nodes[&new_leader]
        .propose_meta(register("during-outage"))
        .await
        .expect("meta proposal after failover")
        .expect("registered");
    // Enough meta writes that the meta leader snapshots and purges its log past what the killed
    // node has: it can only catch up from a snapshot sent over the peer connection.
    let meta_leader = cluster.leader(GroupId::META).await;
    for i in 0..45 {
        cluster.nodes[&meta_leader]
            .propose_meta(register(&format!("outage-{i}")))
            .await
            .expect("committed")
            .expect("registered");
    }
    let purged = {
        cluster.nodes[&meta_leader]
            .raft(GroupId::META)
            .expect("meta")
            .wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| {
                    m.purged
                        .as_ref()
                        .is_some_and(|p| p.index > killed_meta_index)
                },
                "the meta leader purged its log",
            )
            .await
            .expect("purged")
            .purged
    };
    println!("meta log purged up to {purged:?} while node {killed} was down");

    // The killed node restarts on its data dir, catches up, and the leaders spread again.
    cluster.restart(killed).await;
    for g in cluster.nodes[&killed].shard_groups() {
        assert_same_digest(&cluster, g).await;
    }
    assert_same_digest(&cluster, GroupId::META).await;
    assert!(
        cluster.nodes[&killed].read_meta(|m| m.namespace("during-outage").is_some()),
        "the restarted node missed a write"
    );
    assert!(
        cluster.nodes[&killed].read_meta(|m| m.namespace("outage-44").is_some()),
        "the restarted node missed the writes behind the snapshot"
    );
    let metrics = cluster.nodes[&killed]
        .raft(GroupId::META)
        .expect("meta")
        .metrics();
    let installed = metrics.borrow_watched().snapshot;
    assert!(
        installed.is_some_and(|s| s.index > killed_meta_index),
        "node {killed} caught up without a snapshot: {installed:?}"
    );
    let counts = wait_balanced(&cluster).await;
    println!("leaders per node after the restart: {counts:?}");

    // A data dir of another cluster is refused: a one-node cluster's node 3 cannot join.
    cluster.stop(3).await;
    let foreign = tempfile::tempdir().expect("tempdir");
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let alone = BTreeMap::from([(3, listener.local_addr().expect("addr").to_string())]);
        let node = open(3, foreign.path(), &alone, listener)
            .await
            .expect("a one-node cluster opens");
        node.shutdown().await;
    }
    let listener = rebind(&cluster.addrs[&3]).await;
    let refused = open(3, foreign.path(), &cluster.addrs, listener).await;
    match refused {
        Err(RaftError::ClusterMismatch(detail)) => println!("refused: {detail}"),
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a node of another cluster joined"),
    }
    cluster.shutdown().await;
}

/// Regression (chaos run n3-s105): a leader whose clock ran 60 s ahead (here every clock, so a
/// majority vouches for the skewed time) stamped a command and failed; the next leader (a
/// correct clock) stamped its own wall clock, clamped to the group's time, and compared due
/// times with its wall clock, so a 1 s timer it armed fired 61 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_after_a_forward_skewed_one_fires_new_timers_on_time() {
    let clock = Arc::new(SkewedClock::default());
    let mut cluster = Cluster::start_with(RaftTuning {
        clock: clock.clone(),
        ..tuning()
    })
    .await;
    let group = cluster.nodes[&1]
        .group_of("default", "skewed")
        .expect("routed by the slot map");
    let skewed = cluster.leader(group).await;
    // Every node's clock (they share one) jumps ahead; the leader stamps the time of a majority
    // of the voters' clocks, which it learns from the next messages (heartbeats every 100 ms).
    clock.set_offset_ms(60_000);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let reply = cluster.nodes[&skewed]
        .propose(group, start("skewed"))
        .await
        .expect("committed");
    assert_eq!(reply, started("skewed"));
    clock.set_offset_ms(0);
    cluster.stop(skewed).await;

    let leader = cluster.leader(group).await;
    let group_ms = cluster.nodes[&leader]
        .read_shard(group, |s| s.clock_ms())
        .expect("group");
    let wall_ms = SystemClock.now_ms();
    assert!(group_ms >= wall_ms + 55_000, "group time is ahead");
    // Through the follower: forwarded, stamped by the new leader.
    let armed = Instant::now();
    let reply = cluster.nodes[&follower(&cluster, leader)]
        .propose(group, start_timed("short", Some(1_000)))
        .await
        .expect("committed");
    assert_eq!(reply, started("short"));
    let fired_after = timed_out_after(&cluster.nodes[&leader], group, "short", armed).await;
    assert!(fired_after >= Duration::from_secs(1), "fired early");
    cluster.shutdown().await;
}

/// Waits (up to 15 s after `armed`) until `workflow_id`'s run times out on `node`; how long
/// after `armed` it was seen closed.
async fn timed_out_after(
    node: &MultiRaft,
    group: GroupId,
    workflow_id: &str,
    armed: Instant,
) -> Duration {
    loop {
        let status = node
            .read_shard(group, |s| s.execution(&key(workflow_id)).map(|m| m.status))
            .flatten()
            .expect("execution");
        if status != WorkflowExecutionStatus::Running as i32 {
            assert_eq!(status, WorkflowExecutionStatus::TimedOut as i32);
            return armed.elapsed();
        }
        assert!(
            armed.elapsed() < Duration::from_secs(15),
            "the run timeout of {workflow_id} has not fired after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Regression (the gap the fix above left): a leader whose clock jumped 60 s ahead *while it
/// led* stamped its own clock, so at its timer driver's next wake it fired every pending timer
/// of the group due within the skew — a 5 s run timeout fired with the 1 s one. A leader now
/// caps its clock by the majority bound of the voters' clocks, at most one reply round trip
/// above real time: that much early is allowed here (a loopback round trip, well under
/// [`ROUND_TRIP_ALLOWANCE`]).
/// How early a leader whose clock runs ahead may fire a timer: its peers' reply round trip.
const ROUND_TRIP_ALLOWANCE: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_clock_jumps_ahead_while_it_leads_fires_no_timer_early() {
    let clocks: BTreeMap<u64, Arc<SkewedClock>> = (1..=3)
        .map(|node| (node, Arc::new(SkewedClock::default())))
        .collect();
    let cluster = Cluster::start_each(|node| RaftTuning {
        clock: clocks[&node].clone(),
        // Leadership stays where it is: the skewed node must keep leading.
        balance_interval: Duration::from_secs(3600),
        ..tuning()
    })
    .await;
    let group = cluster.nodes[&1]
        .group_of("default", "long")
        .expect("routed by the slot map");
    let short = (0..)
        .map(|i| format!("short-{i}"))
        .find(|id| {
            cluster.nodes[&1]
                .group_of("default", id)
                .expect("routed by the slot map")
                == group
        })
        .expect("a workflow id of the same group");
    let leader = cluster.leader(group).await;
    let armed = Instant::now();
    for (id, timeout_ms) in [("long", 5_000), (short.as_str(), 1_000)] {
        let reply = cluster.nodes[&leader]
            .propose(group, start_timed(id, Some(timeout_ms)))
            .await
            .expect("committed");
        assert_eq!(reply, started(id));
    }
    clocks[&leader].set_offset_ms(60_000);

    // The 1 s timeout wakes the leader's timer driver, whose clock now reads 61 s.
    let node = &cluster.nodes[&leader];
    let short_after = timed_out_after(node, group, &short, armed).await;
    assert!(
        short_after >= Duration::from_secs(1) - ROUND_TRIP_ALLOWANCE,
        "the 1 s timeout fired after {short_after:?}"
    );
    assert_eq!(
        cluster.leader(group).await,
        leader,
        "the skewed node still leads"
    );
    let long_after = timed_out_after(node, group, "long", armed).await;
    assert!(
        long_after >= Duration::from_secs(5) - ROUND_TRIP_ALLOWANCE,
        "the 5 s run timeout fired after {long_after:?}, by the skewed leader's clock"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_node_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    identity::claim(dir.path(), 1).expect("node 1 claims the dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addrs = BTreeMap::from([
        (1, "127.0.0.1:1".to_string()),
        (2, listener.local_addr().expect("addr").to_string()),
    ]);
    let result = open(2, dir.path(), &addrs, listener).await;
    match result {
        Err(RaftError::Identity(detail)) => {
            assert!(detail.contains("belongs to node 1"), "{detail}")
        }
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("node 2 opened node 1's data dir"),
    }
}

/// Heartbeats of the whole cluster while idle, per group and second: (messages, bytes).
fn idle_rate(before: &[TrafficTable], after: &[TrafficTable], secs: f64) -> (f64, f64) {
    let total = |tables: &[TrafficTable]| {
        tables
            .iter()
            .flat_map(|t| t.iter())
            .filter(|((_, kind), _)| *kind == "heartbeat")
            .fold((0u64, 0u64), |(m, b), (_, t)| (m + t.messages, b + t.bytes))
    };
    let (m0, b0) = total(before);
    let (m1, b1) = total(after);
    let groups = f64::from(GROUPS + 1);
    (
        (m1 - m0) as f64 / groups / secs,
        (b1 - b0) as f64 / groups / secs,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_send_few_heartbeats() {
    // The production cluster timing (heartbeat every 250 ms).
    let cluster = Cluster::start_with(RaftTuning {
        timing: None,
        ..tuning()
    })
    .await;
    wait_balanced(&cluster).await;
    // Let the balancing and the blank entries of new leaders settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let traffic = |c: &Cluster| {
        c.nodes
            .values()
            .map(|n| n.peer_traffic())
            .collect::<Vec<_>>()
    };
    let before = traffic(&cluster);
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let after = traffic(&cluster);
    let (messages, bytes) = idle_rate(&before, &after, window.as_secs_f64());
    println!("idle heartbeats per group per second: {messages:.1} messages, {bytes:.0} bytes");
    // One leader, two followers, one heartbeat each per 250 ms: 8/s (plus one tick of jitter).
    assert!(messages > 4.0, "no heartbeats measured: {messages}");
    assert!(
        messages <= 10.0,
        "too many idle heartbeats: {messages}/s per group"
    );
    cluster.shutdown().await;
}
