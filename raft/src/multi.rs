//! [`MultiRaft`]: every Raft group of this node, behind one router.

use crate::error::{ProposeError, RaftError};
use crate::group::{
    Clock, Group, GroupContext, LocalRouter, ShardOutboxSource, ShardTimerHost, SystemClock,
};
use crate::groups::GroupSet;
use crate::network::{NoPeers, RaftTransport};
use crate::observer::ApplyObserver;
use crate::outbox::OutboxDriver;
use crate::peer::client::{CallError, GrpcTransport, PeerTimeouts};
use crate::peer::forward::Forwarder;
use crate::peer::host::{PeerHost, Unstamped};
use crate::peer::node_message::{NodeCall, NodeCallError, NodeMessageHandler};
use crate::peer::proto::MessageKind;
use crate::peer::stats::{PeerStats, TrafficTable};
use crate::records;
use crate::split::{self, SplitParts};
use crate::state_machine::GroupState;
use crate::timer::run_timer_driver;
use crate::types::{LogId, Proposal, ProposalReply};
use crate::watch;
use openraft::SnapshotPolicy;
use perdura_engine::{
    EngineError, ExecutionKey, GroupId, MetaCommand, MetaReply, MetaState, NamespaceRecord,
    ShardCommandKind, ShardReply, ShardState, SlotMap,
};
use perdura_storage::{Db, LogWriter, LogWriterCounts, StorageBackend};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use tokio::task::JoinHandle;

/// Workflow groups of a new development cluster.
pub const DEFAULT_SHARD_GROUPS: u32 = 4;
/// Retention of the `default` namespace created at bootstrap.
pub const DEFAULT_NAMESPACE_RETENTION_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// What a node needs to open its groups.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// Workflow groups of a *new* cluster (default [`DEFAULT_SHARD_GROUPS`]); on restart the
    /// stored slot map decides.
    pub shard_groups: u32,
}

impl RaftConfig {
    /// A config with [`DEFAULT_SHARD_GROUPS`].
    pub fn new(node_id: u64, data_dir: impl Into<PathBuf>) -> RaftConfig {
        RaftConfig {
            node_id,
            data_dir: data_dir.into(),
            shard_groups: DEFAULT_SHARD_GROUPS,
        }
    }
}

/// Raft timing in milliseconds (openraft's heartbeat interval and election timeout range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
}

impl RaftTiming {
    /// A single node: nobody to send heartbeats to, so short timeouts cost nothing.
    pub const DEV: RaftTiming = RaftTiming {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
    };
    /// A cluster: 4 heartbeats/s per idle group and follower; a dead leader is replaced within
    /// 1–2 s plus one election round (see `docs/design/004-multi-raft-transport.md`).
    pub const CLUSTER: RaftTiming = RaftTiming {
        heartbeat_interval_ms: 250,
        election_timeout_min_ms: 1000,
        election_timeout_max_ms: 2000,
    };
}

/// Knobs with production defaults; tests shrink them.
#[derive(Clone)]
pub struct RaftTuning {
    /// Build a snapshot every this many applied entries.
    pub snapshot_every_logs: u64,
    /// Log entries kept after a snapshot (for slow followers).
    pub logs_kept_after_snapshot: u64,
    /// A proposal with no reply after this long is reported [`ProposeError::Indeterminate`].
    pub propose_timeout: Duration,
    /// How long `open_single_node` waits for each group to elect this node.
    pub startup_timeout: Duration,
    /// The leader's clock: stamps commands and drives timers.
    pub clock: Arc<dyn Clock>,
    /// Peer transport (none for a single node).
    pub transport: Arc<dyn RaftTransport>,
    /// Run the outbox drivers (cross-execution delivery). Tests turn it off to stage a delivery
    /// that stopped half-way.
    pub deliver_outbox: bool,
    /// Raft timing; `None` = [`RaftTiming::DEV`] for a single node, [`RaftTiming::CLUSTER`] for a
    /// cluster.
    pub timing: Option<RaftTiming>,
    /// How often each node of a cluster checks whether it leads more than its share of the
    /// workflow groups (and hands one over).
    pub balance_interval: Duration,
    /// Timeouts of the peer client (cluster only).
    pub peer_timeouts: PeerTimeouts,
    /// Where the node's database lives: RocksDB, or the simulation's in-memory disks.
    pub storage: StorageBackend,
}

impl Default for RaftTuning {
    fn default() -> RaftTuning {
        RaftTuning {
            snapshot_every_logs: 10_000,
            logs_kept_after_snapshot: 1_000,
            propose_timeout: Duration::from_secs(30),
            startup_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            transport: Arc::new(NoPeers),
            deliver_outbox: true,
            timing: None,
            balance_interval: Duration::from_secs(3),
            peer_timeouts: PeerTimeouts::default(),
            storage: StorageBackend::RocksDb,
        }
    }
}

/// Every Raft group of this node: group 0 (meta) and the workflow groups.
pub struct MultiRaft {
    pub(crate) node_id: u64,
    pub(crate) db: Arc<Db>,
    pub(crate) writer: Arc<LogWriter>,
    pub(crate) meta: Arc<Group>,
    /// The workflow groups; grows when a split creates one.
    pub(crate) shards: Arc<GroupSet>,
    pub(crate) router: Arc<LocalRouter>,
    pub(crate) propose_timeout: Duration,
    pub(crate) closed: AtomicBool,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The peer side of a cluster node; `None` on a single node.
    pub(crate) cluster: Option<ClusterParts>,
    /// What starting a split-off group at run time needs.
    pub(crate) split: SplitParts,
}

/// What a cluster node has beyond a single node.
pub(crate) struct ClusterParts {
    pub host: Arc<PeerHost>,
    pub forward: Arc<Forwarder>,
    pub transport: Arc<GrpcTransport>,
    pub stats: Arc<PeerStats>,
    pub peer_addr: std::net::SocketAddr,
    /// The peer server; stopped (gracefully, then aborted) at shutdown.
    pub server: Mutex<Option<JoinHandle<()>>>,
    pub server_stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl ClusterParts {
    /// Stops the peer service (closing peer connections, so peers reconnect to whatever serves
    /// the address next) and forgets the groups.
    pub async fn stop_server(&self) {
        let stop = self
            .server_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut server) = server
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
            let _ = server.await;
        }
        self.host.clear();
    }
}

/// Cluster-mode openraft settings on top of the timing: heartbeats suppressed while replication
/// traffic already proves liveness, and Pre-Vote, so a returning node does not depose a healthy
/// leader.
pub(crate) struct ClusterRaftOptions;

pub(crate) fn openraft_config(
    tuning: &RaftTuning,
    cluster: Option<ClusterRaftOptions>,
) -> Result<Arc<openraft::Config>, RaftError> {
    let default_timing = if cluster.is_some() {
        RaftTiming::CLUSTER
    } else {
        RaftTiming::DEV
    };
    let timing = tuning.timing.unwrap_or(default_timing);
    let mut config = openraft::Config {
        cluster_name: "perdura".into(),
        heartbeat_interval: timing.heartbeat_interval_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_every_logs),
        max_in_snapshot_log_to_keep: tuning.logs_kept_after_snapshot,
        // A restarted leader must win a new election (and commit a blank entry) before it
        // serves. Restoring leadership from the persisted vote would make its read index the
        // committed index on disk, which is written unsynced (`save_committed`), as the state
        // machine's applies are: after a power loss that index can be older than writes the
        // node acknowledged before the crash, and a linearizable read would miss them.
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    if cluster.is_some() {
        // heartbeat + min interval + one tick must stay below the election timeout.
        let spare = timing
            .election_timeout_min_ms
            .saturating_sub(timing.heartbeat_interval_ms * 3 / 2);
        config.heartbeat_min_interval = Some(timing.heartbeat_interval_ms.min(spare));
        config.enable_pre_vote = Some(true);
    }
    let config = config.validate().map_err(|e| RaftError::Raft {
        group: GroupId::META,
        detail: e.to_string(),
    })?;
    Ok(Arc::new(config))
}

/// A node's storage and started groups, before their drivers run.
pub(crate) struct NodeParts {
    pub node_id: u64,
    pub db: Arc<Db>,
    pub writer: Arc<LogWriter>,
    pub meta: Arc<Group>,
    pub shards: BTreeMap<GroupId, Arc<Group>>,
    /// The context the groups were started with; its observer reports splits to `created`.
    pub ctx: GroupContext,
    pub created: tokio::sync::mpsc::UnboundedReceiver<GroupId>,
}

impl MultiRaft {
    /// Open (or create) the node's RocksDB, start group 0 (meta) and every shard group,
    /// initialize a single-node cluster on first start, and bootstrap the meta state (slot map =
    /// `SlotMap::even(shard_groups)`, namespace `default` with retention 3 days, cluster id = a
    /// fresh UUID) if absent. A restart on the same data dir resumes everything. `shard_groups`
    /// on restart is taken from the stored slot map, not the flag.
    pub async fn open_single_node(
        config: RaftConfig,
        observer: Arc<dyn ApplyObserver>,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        MultiRaft::open_single_node_with(config, observer, RaftTuning::default()).await
    }

    /// [`MultiRaft::open_single_node`] with explicit tuning.
    pub async fn open_single_node_with(
        config: RaftConfig,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let db = Arc::new(tuning.storage.open(config.data_dir.join("rocksdb"))?);
        let writer = Arc::new(LogWriter::start(db.clone()));
        let (split_observer, created) = split::split_observer(observer.clone());
        let ctx = GroupContext {
            node_id: config.node_id,
            db: db.clone(),
            writer: writer.clone(),
            config: openraft_config(&tuning, None)?,
            transport: tuning.transport.clone(),
            observer: split_observer,
            clock: tuning.clock.clone(),
        };
        let meta = Arc::new(Group::start(&ctx, GroupId::META).await?);
        meta.initialize_single_node(config.node_id).await?;
        meta.wait_ready_leader(config.node_id, tuning.startup_timeout)
            .await?;
        bootstrap_meta(&meta, &config, &tuning).await?;
        let slot_map = meta.read_state(|state| match state {
            GroupState::Meta(m) => m.slot_map.clone(),
            GroupState::Shard(_) => None,
        });
        let slot_map = slot_map
            .ok_or_else(|| RaftError::Bootstrap("the meta state has no slot map".into()))?;
        let split_groups = split::split_groups(&meta);

        let mut shards = BTreeMap::new();
        for id in slot_map.groups() {
            let group = Arc::new(Group::start(&ctx, id).await?);
            if !split_groups.contains(&id) {
                group.initialize_single_node(config.node_id).await?;
            }
            shards.insert(id, group);
        }
        let parts = NodeParts {
            node_id: config.node_id,
            db,
            writer,
            meta,
            shards,
            ctx,
            created,
        };
        let raft = MultiRaft::assemble(parts, observer, &tuning, None);
        raft.start_moved_groups().await?;
        // Every workflow group has told the observer it is led here before `open` returns.
        for group in raft.shards.values() {
            group.wait_reported_leader(tuning.startup_timeout).await?;
        }
        if let Err(e) = raft.resume_splits().await {
            tracing::warn!(error = %e, "an interrupted group split could not be finished yet");
        }
        Ok(raft)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Starts the drivers of every group (leadership watchers, timer and outbox drivers; the
    /// leader balancer in a cluster) and builds the router.
    pub(crate) fn assemble(
        parts: NodeParts,
        observer: Arc<dyn ApplyObserver>,
        tuning: &RaftTuning,
        cluster: Option<ClusterParts>,
    ) -> Arc<MultiRaft> {
        let NodeParts {
            node_id,
            db,
            writer,
            meta,
            shards,
            ctx,
            created,
        } = parts;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(meta.clone().watch_leadership(
            node_id,
            None,
            shutdown_rx.clone(),
        )));
        for group in shards.values() {
            let watcher = group.clone().watch_leadership(
                node_id,
                Some(observer.clone()),
                shutdown_rx.clone(),
            );
            tasks.push(tokio::spawn(watcher));
            let host = Arc::new(ShardTimerHost {
                group: group.clone(),
                timeout: tuning.propose_timeout,
            });
            let driver = run_timer_driver(
                host,
                group.timer.clone(),
                group.is_leader.clone(),
                shutdown_rx.clone(),
            );
            tasks.push(tokio::spawn(driver));
        }
        let shard_set = Arc::new(GroupSet::new(shards.clone()));
        let router = Arc::new(LocalRouter {
            meta: meta.clone(),
            shards: shard_set.clone(),
            timeout: tuning.propose_timeout,
            forward: cluster.as_ref().map(|c| c.forward.clone()),
        });
        if tuning.deliver_outbox {
            for group in shards.values() {
                let driver = OutboxDriver {
                    group: group.id,
                    source: Arc::new(ShardOutboxSource {
                        group: group.clone(),
                    }),
                    router: router.clone(),
                    signal: group.outbox.clone(),
                };
                tasks.push(tokio::spawn(
                    driver.run(group.is_leader.clone(), shutdown_rx.clone()),
                ));
            }
        }
        if cluster.is_some() {
            let balancer = crate::cluster::balance::LeaderBalancer {
                node_id,
                meta: meta.clone(),
                shards: shard_set.clone(),
                interval: tuning.balance_interval,
            };
            tasks.push(tokio::spawn(balancer.run(shutdown_rx.clone())));
        }
        let raft = Arc::new(MultiRaft {
            node_id,
            db,
            writer,
            meta,
            shards: shard_set,
            router,
            propose_timeout: tuning.propose_timeout,
            closed: AtomicBool::new(false),
            shutdown_tx,
            tasks: Mutex::new(tasks),
            cluster,
            split: SplitParts {
                ctx: Mutex::new(Some(Arc::new(ctx))),
                observer,
                deliver_outbox: tuning.deliver_outbox,
                starting: tokio::sync::Mutex::new(()),
                genesis: Mutex::default(),
            },
        });
        raft.spawn_group_starter(created);
        raft
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The workflow group that owns `workflow_id` in `namespace` (slot hash + stored slot map);
    /// [`ProposeError::NoSlotMap`] while this node has not applied the slot map.
    pub fn group_of(&self, namespace: &str, workflow_id: &str) -> Result<GroupId, ProposeError> {
        self.router.group_of_slot(namespace, workflow_id)
    }

    /// The workflow groups hosted by this node, ascending.
    pub fn shard_groups(&self) -> Vec<GroupId> {
        self.shards.keys()
    }

    /// Stamps `now_ms` (leader time, the group's hybrid clock) into a `ShardCommand`, proposes it,
    /// waits until committed + applied, returns the engine's reply. An unknown group is
    /// `NotLeader { leader: None }` (definitely not applied).
    pub async fn propose(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> Result<Result<ShardReply, EngineError>, ProposeError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ProposeError::Shutdown);
        }
        self.router.propose_shard(group, kind).await
    }

    /// Proposes a meta-group command and returns the applied reply.
    pub async fn propose_meta(
        &self,
        command: MetaCommand,
    ) -> Result<Result<MetaReply, EngineError>, ProposeError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ProposeError::Shutdown);
        }
        let Some(cluster) = &self.cluster else {
            return propose_meta_to(&self.meta, command, self.propose_timeout).await;
        };
        // Boxed: the forwarding future is large, and API handlers await it inline.
        let forwarded = Box::pin(
            cluster
                .forward
                .propose(GroupId::META, Unstamped::Meta(command)),
        );
        match forwarded.await? {
            ProposalReply::Meta(reply) => Ok(reply),
            other => Err(ProposeError::Indeterminate(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Makes the next local read of `group` linearizable: when it returns `Ok`, every write
    /// acknowledged by any node before the call is applied on this node. On a single node
    /// (always the leader, and a reply is sent only after the local apply) it returns at once.
    /// In a cluster it is ReadIndex: the leader — this node or the one it asks over the peer
    /// connection — confirms its leadership with a quorum, and this node waits until it has
    /// applied up to the leader's read index. Errors (no leader, no quorum within the propose
    /// timeout) mean nothing may be read; the API answers them UNAVAILABLE.
    pub async fn read_barrier(&self, group: GroupId) -> Result<(), ProposeError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ProposeError::Shutdown);
        }
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if group != GroupId::META
            && !self.shards.contains_key(&group)
            && split::is_announced(&self.shards, group)
        {
            // A group a split created a moment ago: wait for it to start here.
            split::wait_started(&self.shards, group, self.propose_timeout).await;
        }
        if group != GroupId::META && !self.shards.contains_key(&group) {
            return Err(ProposeError::NotLeader { leader: None });
        }
        Box::pin(cluster.forward.read_barrier(group)).await
    }

    /// A digest of a group's applied state: its last applied log id and a 64-bit FNV-1a hash of
    /// every state record of the group (keys and values, in key order; the applied record
    /// itself excluded), read under the state lock so the two belong together. Replicas that
    /// applied the same log id have the same hash.
    pub fn group_digest(&self, group: GroupId) -> Result<(Option<LogId>, u64), RaftError> {
        let target = if group == GroupId::META {
            self.meta.clone()
        } else {
            self.shards
                .get(&group)
                .ok_or(RaftError::UnknownGroup(group))?
        };
        let _state = target
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(crate::digest::group_digest(&self.db, group)?)
    }

    /// Peer messages and bytes this node sent, by group and kind (empty on a single node).
    pub fn peer_traffic(&self) -> TrafficTable {
        self.cluster
            .as_ref()
            .map(|c| c.stats.snapshot())
            .unwrap_or_default()
    }

    /// The address the peer service listens on (cluster only).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.cluster.as_ref().map(|c| c.peer_addr)
    }

    /// Sets or changes the peer address of `node` (for membership changes; cluster only).
    pub fn set_peer_addr(&self, node: u64, addr: String) {
        if let Some(cluster) = &self.cluster {
            cluster.transport.set_peer_addr(node, addr);
        }
    }

    /// The peer addresses this node knows (cluster only; empty on a single node).
    pub fn peer_addrs(&self) -> BTreeMap<u64, String> {
        self.cluster
            .as_ref()
            .map(|c| c.transport.peer_addrs())
            .unwrap_or_default()
    }

    /// Registers the handler of node messages for `service` (see
    /// [`crate::peer::node_message`]); a later registration replaces it. No-op on a single
    /// node, which has no peers.
    pub fn set_node_handler(&self, service: u32, handler: Arc<dyn NodeMessageHandler>) {
        if let Some(cluster) = &self.cluster {
            cluster.host.node_handlers.set(service, handler);
        }
    }

    /// The other members this node can reach (cluster only; empty on a single node).
    pub fn peer_nodes(&self) -> Vec<u64> {
        self.peer_addrs()
            .into_keys()
            .filter(|node| *node != self.node_id)
            .collect()
    }

    /// Sends a node message of `service` to `node` over the peer connection; its reply.
    pub async fn call_node(
        &self,
        node: u64,
        service: u32,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, NodeCallError> {
        let Some(cluster) = &self.cluster else {
            return Err(NodeCallError::NotSent {
                node,
                detail: "a single node has no peers".into(),
            });
        };
        let call = crate::peer::proto::encode(&NodeCall { service, payload })
            .map_err(|detail| NodeCallError::NotSent { node, detail })?;
        let reply = cluster
            .transport
            .call(node, GroupId::META, MessageKind::Node, call, timeout)
            .await
            .map_err(|error| match error {
                CallError::NotSent { node, detail } => NodeCallError::NotSent { node, detail },
                CallError::Unknown { node, detail } => NodeCallError::Unknown { node, detail },
            })?;
        let answer: Result<Vec<u8>, String> = crate::peer::proto::decode(&reply)
            .map_err(|detail| NodeCallError::Unknown { node, detail })?;
        answer.map_err(|detail| NodeCallError::Refused { node, detail })
    }

    /// The current leader of a group as this node knows it.
    pub fn leader_of(&self, group: GroupId) -> Option<u64> {
        let raft = self.raft(group)?;
        let metrics = raft.metrics();
        openraft::type_config::async_runtime::watch::WatchReceiver::borrow_watched(&metrics)
            .current_leader
    }

    /// Reads a workflow group's applied state; `None` = unknown group.
    pub fn read_shard<R>(&self, group: GroupId, f: impl FnOnce(&ShardState) -> R) -> Option<R> {
        match self.shards.get(&group) {
            Some(running) => running.read_state(|state| match state {
                GroupState::Shard(shard) => Some(f(shard)),
                GroupState::Meta(_) => None,
            }),
            // A group a split created a moment ago, whose Raft instance is still starting.
            None => self.genesis_state(group).map(|state| f(&state)),
        }
    }

    /// Reads the meta group's applied state.
    pub fn read_meta<R>(&self, f: impl FnOnce(&MetaState) -> R) -> R {
        self.meta.read_state(|state| match state {
            GroupState::Meta(meta) => f(meta),
            GroupState::Shard(_) => unreachable!("group 0 is always opened with the meta state"),
        })
    }

    /// Events `[first_event_id, ..]` of an execution, at most `max_events`, from storage
    /// (applied state).
    pub fn read_history(
        &self,
        group: GroupId,
        execution: &ExecutionKey,
        first_event_id: i64,
        max_events: usize,
    ) -> Result<Vec<HistoryEvent>, RaftError> {
        // A history asked of the group a split moved the workflow out of is read where it went.
        let slot = split::workflow_slot(&execution.namespace, &execution.workflow_id);
        let group = split::follow_slot(&self.shards, group, slot);
        if !self.shards.contains_key(&group) && !split::has_genesis(&self.db, group) {
            return Err(RaftError::UnknownGroup(group));
        }
        Ok(records::read_history(
            &self.db,
            group,
            execution,
            first_event_id,
            max_events,
        )?)
    }

    /// Group-commit counters of this node's log writer.
    pub fn log_writer_counts(&self) -> LogWriterCounts {
        self.writer.stats().counts()
    }

    /// The openraft handle of a group (metrics, snapshots, tests).
    pub fn raft(&self, group: GroupId) -> Option<crate::types::GroupRaft> {
        if group == GroupId::META {
            Some(self.meta.raft.clone())
        } else {
            self.shards.get(&group).map(|g| g.raft.clone())
        }
    }

    /// Clean stop of all groups and the log writer. Idempotent. When it returns, only this
    /// `MultiRaft` still holds the database: dropping it closes the database.
    pub async fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shutdown_tx.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "a group task failed");
            }
        }
        for group in self
            .shards
            .values()
            .iter()
            .chain(std::iter::once(&self.meta))
        {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = %group.id, error = %e, "raft shutdown failed");
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.stop_server().await;
        }
        self.split
            .ctx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.writer.shutdown();
        // openraft drops its storage handles on its own tasks, shortly after `shutdown` returns.
        // Wait for them, so that dropping this `MultiRaft` closes the database (and releases its
        // lock: a restart in the same process can open it again at once). The deadline is on the
        // runtime's clock: the simulation's virtual one, so how long it waits never depends on
        // how fast the host runs it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.db) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&self.db) > 1 {
            tracing::warn!("storage handles still in use 10 s after shutdown");
        }
    }
}

async fn propose_meta_to(
    meta: &Group,
    command: MetaCommand,
    timeout: Duration,
) -> Result<Result<MetaReply, EngineError>, ProposeError> {
    match meta.write(Proposal::Meta(command), timeout).await? {
        ProposalReply::Meta(reply) => Ok(reply),
        other => Err(ProposeError::Indeterminate(format!(
            "unexpected reply {other:?}"
        ))),
    }
}

/// Writes the cluster's first metadata if it is absent. Idempotent in the engine too: a second
/// `Bootstrap` (e.g. after a crash between commit and apply) changes nothing.
pub(crate) async fn bootstrap_meta(
    meta: &Group,
    config: &RaftConfig,
    tuning: &RaftTuning,
) -> Result<(), RaftError> {
    let bootstrapped =
        meta.read_state(|state| matches!(state, GroupState::Meta(m) if m.cluster_id.is_some()));
    if bootstrapped {
        return Ok(());
    }
    let command = MetaCommand::Bootstrap {
        cluster_id: uuid::Uuid::new_v4().to_string(),
        slot_map: SlotMap::even(config.shard_groups.max(1)),
        default_namespace: NamespaceRecord {
            name: "default".into(),
            id: uuid::Uuid::new_v4().to_string(),
            description: String::new(),
            owner_email: String::new(),
            retention_ms: DEFAULT_NAMESPACE_RETENTION_MS,
            registered_at_ms: tuning.clock.now_ms(),
        },
    };
    match propose_meta_to(meta, command, tuning.propose_timeout).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RaftError::Bootstrap(e.to_string())),
        Err(e) => Err(RaftError::Bootstrap(e.to_string())),
    }
}
