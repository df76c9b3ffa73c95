//! Three replicas of one group over the loopback transport: replication, failover, and a
//! snapshot installed on a node that joins after the log was purged.

use crate::log_store::GroupLogStore;
use crate::network::{GroupNetworkFactory, LoopbackTransport};
use crate::observer::NoopObserver;
use crate::state_machine::{ApplyHooks, GroupState, GroupStateMachine, SharedState};
use crate::types::{GroupRaft, Proposal};
use openraft::{BasicNode, Config, SnapshotPolicy};
use perdura_engine::{GroupId, MetaCommand, NamespaceRecord};
use perdura_storage::{Db, LogWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

struct Replica {
    raft: GroupRaft,
    state: SharedState,
    _dir: tempfile::TempDir,
}

fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

async fn replica(node: u64, transport: &Arc<LoopbackTransport>) -> Replica {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path()).expect("open"));
    let writer = Arc::new(LogWriter::start(db.clone()));
    let hooks = ApplyHooks {
        observer: Arc::new(NoopObserver),
        timer: Arc::default(),
        outbox: Arc::default(),
    };
    let sm = GroupStateMachine::open(GroupId::META, db.clone(), hooks).expect("state machine");
    let state = sm.state();
    let log = GroupLogStore::new(GroupId::META, db, writer);
    let network = GroupNetworkFactory::new(GroupId::META, transport.clone());
    let raft = openraft::Raft::new(node, config(), network, log, sm)
        .await
        .expect("raft");
    transport.register(node, GroupId::META, raft.clone());
    Replica {
        raft,
        state,
        _dir: dir,
    }
}

fn namespaces(replica: &Replica) -> Vec<String> {
    match &*replica.state.read().expect("lock") {
        GroupState::Meta(meta) => meta.namespaces.keys().cloned().collect(),
        GroupState::Shard(_) => unreachable!("meta group"),
    }
}

fn register(name: String) -> Proposal {
    Proposal::Meta(MetaCommand::RegisterNamespace(NamespaceRecord {
        name,
        id: String::new(),
        description: String::new(),
        owner_email: String::new(),
        retention_ms: 1,
        registered_at_ms: 1,
    }))
}

/// Writes through `raft`, retrying while a fresh leader is not writable yet (lease, blank entry).
async fn write(raft: &GroupRaft, proposal: Proposal) -> u64 {
    for _ in 0..100 {
        match raft.client_write(proposal.clone()).await {
            Ok(reply) => return reply.log_id.index,
            Err(e) => tracing::debug!(error = %e, "write not accepted yet"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the leader never accepted the write");
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
    let any = replicas.values().next().expect("a replica");
    let m = any
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| replicas.contains_key(&l)),
            "leader elected",
        )
        .await
        .expect("leader");
    m.current_leader.expect("leader")
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
        last = write(&replicas[&leader].raft, register(format!("a-{i}"))).await;
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
    let index = write(&leader_raft, register("after-join".into())).await;
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
    let index = write(
        &replicas[&new_leader].raft,
        register("after-failover".into()),
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
