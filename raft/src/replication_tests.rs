//! Three replicas of one group over the loopback transport: replication, failover, and a
//! snapshot installed on a node that joins after the log was purged.

use crate::meta_test_support::{
    fast_snapshotting_config, known_leader, namespaces_in, register_namespace, start_meta_replica,
    write_retrying,
};
use crate::network::LoopbackTransport;
use crate::state_machine::SharedState;
use crate::types::GroupRaft;
use openraft::BasicNode;
use perdura_engine::GroupId;
use perdura_storage::Db;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

struct Replica {
    raft: GroupRaft,
    state: SharedState,
    _dir: tempfile::TempDir,
}

async fn replica(node: u64, transport: &Arc<LoopbackTransport>) -> Replica {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path()).expect("open"));
    let (raft, state) = start_meta_replica(node, db, fast_snapshotting_config(), transport).await;
    Replica {
        raft,
        state,
        _dir: dir,
    }
}

fn namespaces(replica: &Replica) -> Vec<String> {
    namespaces_in(&replica.state)
}

async fn wait_applied(replica: &Replica, index: u64) {
    replica
        .raft
        .wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(index), "replicated")
        .await
        .expect("replica catches up");
}

async fn leader_of(replicas: &BTreeMap<u64, Replica>) -> u64 {
    let any = &replicas.values().next().expect("a replica").raft;
    known_leader(any, |l| replicas.contains_key(&l)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_replicate_fail_over_and_install_snapshots() {
    let transport = Arc::new(LoopbackTransport::default());
    let mut replicas = BTreeMap::new();
    for node in [1, 2] {
        replicas.insert(node, replica(node, &transport).await);
    }
    let members = BTreeMap::from([(1, BasicNode::default()), (2, BasicNode::default())]);
    replicas[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialize");
    let leader = leader_of(&replicas).await;
    let mut last = 0;
    for i in 0..25 {
        last = write_retrying(
            &replicas[&leader].raft,
            register_namespace(format!("a-{i}")),
        )
        .await;
    }
    for replica in replicas.values() {
        wait_applied(replica, last).await;
    }
    assert_eq!(namespaces(&replicas[&1]), namespaces(&replicas[&2]));

    // Node 3 joins after the leader purged its log: it can only catch up from a snapshot.
    replicas[&leader]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.is_some(), "log purged")
        .await
        .expect("the leader purged its log");
    replicas.insert(3, replica(3, &transport).await);
    let leader_raft = replicas[&leader].raft.clone();
    leader_raft
        .add_learner(3, BasicNode::default(), true)
        .await
        .expect("add learner");
    leader_raft
        .change_membership(BTreeSet::from([1, 2, 3]), false)
        .await
        .expect("change membership");
    let index = write_retrying(&leader_raft, register_namespace("after-join")).await;
    for replica in replicas.values() {
        wait_applied(replica, index).await;
    }
    let snapshot = replicas[&3].raft.metrics();
    let snapshot =
        openraft::type_config::async_runtime::watch::WatchReceiver::borrow_watched(&snapshot)
            .snapshot;
    assert!(snapshot.is_some(), "node 3 caught up through a snapshot");
    assert_eq!(namespaces(&replicas[&3]), namespaces(&replicas[&leader]));

    // The leader fails: the other two elect a new one and keep committing.
    transport.unregister(leader, GroupId::META);
    let old = replicas.remove(&leader).expect("leader replica");
    old.raft.shutdown().await.expect("shutdown");
    let new_leader = leader_of(&replicas).await;
    assert_ne!(new_leader, leader);
    let index = write_retrying(
        &replicas[&new_leader].raft,
        register_namespace("after-failover"),
    )
    .await;
    for replica in replicas.values() {
        wait_applied(replica, index).await;
        assert!(namespaces(replica).contains(&"after-failover".to_string()));
    }
    for replica in replicas.values() {
        replica.raft.shutdown().await.expect("shutdown");
    }
}
