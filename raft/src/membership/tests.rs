//! Membership steps on one group of real openraft replicas over the loopback transport: a fresh
//! node catches up by snapshot and becomes a voter, a dead node is removed, and a removal that
//! would leave no reachable majority is refused.

use crate::membership::group_change::{self, ChangeOutcome, GroupChange, GroupChangeError};
use crate::meta_test_support::{
    fast_snapshotting_config, known_leader, namespaces_in, register_namespace, start_meta_replica,
    write_retrying,
};
use crate::network::LoopbackTransport;
use crate::state_machine::SharedState;
use crate::types::GroupRaft;
use openraft::BasicNode;
use openraft::type_config::async_runtime::watch::WatchReceiver;
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

async fn write(raft: &GroupRaft, name: String) -> u64 {
    write_retrying(raft, register_namespace(name)).await
}

async fn leader_of(replicas: &BTreeMap<u64, Replica>) -> u64 {
    let any = &replicas.values().next().expect("a replica").raft;
    known_leader(any, |l| replicas.contains_key(&l)).await
}

fn addr(node: u64) -> String {
    format!("node-{node}:7000")
}

/// Runs a step on the current leader (following leadership like the orchestrator does).
async fn on_leader(
    replicas: &BTreeMap<u64, Replica>,
    change: GroupChange,
) -> Result<ChangeOutcome, GroupChangeError> {
    for _ in 0..50 {
        let leader = leader_of(replicas).await;
        match group_change::execute(
            GroupId::META,
            &replicas[&leader].raft,
            change.clone(),
            Duration::from_secs(20),
        )
        .await
        {
            Err(GroupChangeError::NotLeader { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
    panic!("no leader accepted {change:?}");
}

fn voters(replica: &Replica) -> BTreeSet<u64> {
    crate::group::voters_of(&replica.raft)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_a_dead_node_with_a_fresh_one_that_catches_up_by_snapshot() {
    let transport = Arc::new(LoopbackTransport::default());
    let mut replicas = BTreeMap::new();
    for node in 1..=3 {
        replicas.insert(node, replica(node, &transport).await);
    }
    let members = (1..=3)
        .map(|n| (n, BasicNode { addr: addr(n) }))
        .collect::<BTreeMap<_, _>>();
    replicas[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialize");
    let leader = leader_of(&replicas).await;
    for i in 0..30 {
        write(&replicas[&leader].raft, format!("before-{i}")).await;
    }
    replicas[&leader]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.is_some(), "log purged")
        .await
        .expect("the leader purged its log");

    // Node 3 dies (not the leader, so the test stays deterministic about who changes what).
    let dead = (1..=3).find(|n| *n != leader).expect("a follower");
    transport.unregister(dead, GroupId::META);
    replicas
        .remove(&dead)
        .expect("replica")
        .raft
        .shutdown()
        .await
        .expect("shutdown");
    // Let the leader notice it (heartbeats stop being acknowledged).
    tokio::time::sleep(group_change::REACHABLE_WITHIN + Duration::from_millis(500)).await;

    let removed = on_leader(&replicas, GroupChange::Remove { node: dead })
        .await
        .expect("remove the dead node");
    assert_eq!(removed, ChangeOutcome::Changed);
    let again = on_leader(&replicas, GroupChange::Remove { node: dead })
        .await
        .expect("remove again");
    assert_eq!(again, ChangeOutcome::Already);

    // A fresh node 4 joins: learner (caught up by snapshot, the log is purged), then voter.
    replicas.insert(4, replica(4, &transport).await);
    let change = GroupChange::AddLearner {
        node: 4,
        addr: addr(4),
    };
    assert_eq!(
        on_leader(&replicas, change.clone()).await,
        Ok(ChangeOutcome::Changed)
    );
    assert_eq!(
        on_leader(&replicas, change).await,
        Ok(ChangeOutcome::Already)
    );
    assert_eq!(
        on_leader(&replicas, GroupChange::AddVoter { node: 4 }).await,
        Ok(ChangeOutcome::Changed)
    );
    let leader = leader_of(&replicas).await;
    let index = write(&replicas[&leader].raft, "after-join".into()).await;
    for replica in replicas.values() {
        replica
            .raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "replicated")
            .await
            .expect("caught up");
    }
    let fresh = &replicas[&4];
    assert!(
        fresh.raft.metrics().borrow_watched().snapshot.is_some(),
        "node 4 caught up through a snapshot"
    );
    assert_eq!(namespaces(fresh), namespaces(&replicas[&leader]));
    let expected = BTreeSet::from_iter(replicas.keys().copied());
    assert_eq!(voters(&replicas[&leader]), expected);

    // Node 4 dies too: removing the other follower would leave {leader, 4} with one reachable
    // voter, which is no majority. Refused, and nothing changes.
    transport.unregister(4, GroupId::META);
    let node4 = replicas.remove(&4).expect("node 4");
    node4.raft.shutdown().await.expect("shutdown");
    tokio::time::sleep(group_change::REACHABLE_WITHIN + Duration::from_millis(500)).await;
    let other = *replicas
        .keys()
        .find(|n| **n != leader)
        .expect("the other live node");
    let refused = on_leader(&replicas, GroupChange::Remove { node: other }).await;
    assert!(
        matches!(&refused, Err(GroupChangeError::Unsafe(detail)) if detail.contains("majority")),
        "{refused:?}"
    );
    assert_eq!(voters(&replicas[&leader]), expected);
    for replica in replicas.values() {
        replica.raft.shutdown().await.expect("shutdown");
    }
}
