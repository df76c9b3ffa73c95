//! Helpers for tests that drive replicas of the meta group directly (openraft instances over
//! the loopback transport, no `MultiRaft`): namespace registrations are the writes, and the
//! registered names are the state the tests compare.

use crate::log_store::GroupLogStore;
use crate::network::{GroupNetworkFactory, LoopbackTransport};
use crate::observer::NoopObserver;
use crate::state_machine::{ApplyHooks, GroupState, GroupStateMachine, SharedState};
use crate::types::{GroupRaft, Proposal};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use perdura_engine::{GroupId, MetaCommand, NamespaceRecord};
use perdura_storage::{Db, LogWriter};
use std::sync::Arc;
use std::time::Duration;

/// Fast elections, and a snapshot (with the log purged) every 10 entries.
pub(crate) fn fast_snapshotting_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(10),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

/// Starts `node`'s replica of the meta group on `db` and makes it reachable on `transport`;
/// its Raft handle and its applied state.
pub(crate) async fn start_meta_replica(
    node: u64,
    db: Arc<Db>,
    config: Arc<openraft::Config>,
    transport: &Arc<LoopbackTransport>,
) -> (GroupRaft, SharedState) {
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
    let raft = openraft::Raft::new(node, config, network, log, sm)
        .await
        .expect("raft");
    transport.register(node, GroupId::META, raft.clone());
    (raft, state)
}

/// A meta-group write: register namespace `name`.
pub(crate) fn register_namespace(name: impl Into<String>) -> Proposal {
    Proposal::Meta(MetaCommand::RegisterNamespace(NamespaceRecord {
        name: name.into(),
        id: String::new(),
        description: String::new(),
        owner_email: String::new(),
        retention_ms: 1,
        registered_at_ms: 1,
    }))
}

/// Writes through `raft`, retrying while a fresh leader is not writable yet (lease, blank
/// entry); the entry's log index.
pub(crate) async fn write_retrying(raft: &GroupRaft, proposal: Proposal) -> u64 {
    for _ in 0..100 {
        match raft.client_write(proposal.clone()).await {
            Ok(reply) => return reply.log_id.index,
            Err(e) => tracing::debug!(error = %e, "write not accepted yet"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the leader never accepted the write");
}

/// The namespaces registered in a meta-group state, in name order.
pub(crate) fn namespaces_in(state: &SharedState) -> Vec<String> {
    match &*state.read().expect("lock") {
        GroupState::Meta(meta) => meta.namespaces.keys().cloned().collect(),
        GroupState::Shard(_) => unreachable!("meta group"),
    }
}

/// The leader `raft` knows, once it knows one that `is_member` accepts (10 s at most).
pub(crate) async fn known_leader(
    raft: &GroupRaft,
    is_member: impl Fn(u64) -> bool + Send + Sync,
) -> u64 {
    let m = raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader.is_some_and(&is_member),
            "leader elected",
        )
        .await
        .expect("leader");
    m.current_leader.expect("leader")
}

/// The leader `raft` currently names, without waiting.
pub(crate) fn current_leader(raft: &GroupRaft) -> Option<u64> {
    raft.metrics().borrow_watched().current_leader
}
