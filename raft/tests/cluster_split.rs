//! Online group split on three in-process nodes over real gRPC: a group is split while a
//! workload runs through all three nodes; afterwards every node has the new group, every
//! workflow is exactly once in the group the slot map names, with a complete history, and the
//! new group's replicas are identical.

mod common;

use common::Recorder;
use common::workload::{Anomalies, check_placement, run_workflow};
use perdura_engine::slots::slot_of;
use perdura_engine::{GroupId, SlotRange};
use perdura_raft::{ClusterConfig, MultiRaft, RaftTiming, RaftTuning};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const GROUPS: u32 = 2;
const WORKFLOWS: usize = 36;

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
        ..RaftTuning::default()
    }
}

async fn start_cluster(dirs: &BTreeMap<u64, tempfile::TempDir>) -> BTreeMap<u64, Arc<MultiRaft>> {
    let mut listeners = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for node in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.insert(node, listener.local_addr().expect("local addr").to_string());
        listeners.insert(node, listener);
    }
    let mut opening = Vec::new();
    for (node, listener) in listeners {
        let config = ClusterConfig {
            node_id: node,
            data_dir: dirs[&node].path().to_path_buf(),
            shard_groups: GROUPS,
            peer_addr: addrs[&node].parse().expect("socket address"),
            initial_cluster: addrs.clone(),
        };
        opening.push(tokio::spawn(async move {
            let raft = MultiRaft::open_cluster_on(
                config,
                listener,
                Arc::new(Recorder::default()),
                tuning(),
            )
            .await;
            (node, raft)
        }));
    }
    let mut nodes = BTreeMap::new();
    for task in opening {
        let (node, raft) = task.await.expect("open task");
        nodes.insert(node, raft.expect("node opens"));
    }
    nodes
}

/// Every node has applied the same state of `group`.
async fn assert_same_digest(nodes: &BTreeMap<u64, Arc<MultiRaft>>, group: GroupId) {
    for node in nodes.values() {
        node.read_barrier(group).await.expect("read barrier");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let digests: Vec<_> = nodes
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_split_under_load_on_three_nodes_loses_and_duplicates_nothing() {
    let dirs: BTreeMap<u64, tempfile::TempDir> = (1..=3)
        .map(|n| (n, tempfile::tempdir().expect("tempdir")))
        .collect();
    let nodes = start_cluster(&dirs).await;
    let anomalies = Arc::new(Anomalies::default());
    let moving = SlotRange {
        start: 1024,
        end: 2048,
    };
    let first = nodes[&1].clone();
    let ids: Vec<String> = (0..)
        .map(|i| format!("order-{i}"))
        .filter(|id| {
            first
                .group_of("default", id)
                .expect("routed by the slot map")
                == GroupId(1)
        })
        .take(WORKFLOWS)
        .collect();
    assert!(
        ids.iter()
            .filter(|id| moving.contains(slot_of("default", id)))
            .count()
            >= WORKFLOWS / 4
    );
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Each workflow is driven through one of the three nodes.
        let node = nodes[&(1 + (i as u64 % 3))].clone();
        tasks.push(tokio::spawn(run_workflow(
            node,
            anomalies.clone(),
            id.clone(),
        )));
        if i == WORKFLOWS / 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let splitter = {
        let node = nodes[&2].clone();
        tokio::spawn(async move { node.split_group(GroupId(1)).await })
    };
    let new_group = splitter.await.expect("task").expect("split");
    assert_eq!(new_group, GroupId(3));
    for task in tasks {
        task.await.expect("a workflow failed");
    }
    assert_eq!(anomalies.slot_moved.load(Ordering::Relaxed), 0);

    // Every node runs the new group, sees the same slot map and the same placement.
    let mut placements = Vec::new();
    for (id, node) in &nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node.shard_groups().contains(&new_group) {
            assert!(Instant::now() < deadline, "node {id} has no {new_group}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for group in node.shard_groups() {
            node.read_barrier(group).await.expect("read barrier");
        }
        node.read_barrier(GroupId::META)
            .await
            .expect("read barrier");
        let map = node.read_meta(|m| m.slot_map.clone()).expect("slot map");
        assert_eq!(map.ranges_of(new_group), vec![moving], "node {id}");
        placements.push(check_placement(node, &ids));
    }
    assert!(
        placements.windows(2).all(|w| w[0] == w[1]),
        "{placements:?}"
    );
    assert!(placements[0].get(&new_group).is_some_and(|n| *n > 0));
    for group in [GroupId(1), new_group] {
        assert_same_digest(&nodes, group).await;
    }
    for node in nodes.values() {
        node.shutdown().await;
    }
}
