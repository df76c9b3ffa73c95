//! [`MultiRaft`]: every Raft group of this node, behind one router.

use crate::error::{ProposeError, RaftError};
use crate::group::{
    Clock, Group, GroupContext, LocalRouter, ShardOutboxSource, ShardTimerHost, SystemClock,
};
use crate::network::{NoPeers, RaftTransport};
use crate::observer::ApplyObserver;
use crate::outbox::OutboxDriver;
use crate::records;
use crate::state_machine::GroupState;
use crate::timer::run_timer_driver;
use crate::types::{Proposal, ProposalReply};
use openraft::SnapshotPolicy;
use perdura_engine::{
    EngineError, ExecutionKey, GroupId, MetaCommand, MetaReply, MetaState, NamespaceRecord,
    ShardCommandKind, ShardReply, ShardState, SlotMap,
};
use perdura_storage::{Db, LogWriter, LogWriterCounts};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use tokio::sync::watch;
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
        }
    }
}

/// Every Raft group of this node: group 0 (meta) and the workflow groups.
pub struct MultiRaft {
    node_id: u64,
    db: Arc<Db>,
    writer: Arc<LogWriter>,
    meta: Arc<Group>,
    shards: BTreeMap<GroupId, Arc<Group>>,
    router: Arc<LocalRouter>,
    propose_timeout: Duration,
    closed: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn openraft_config(tuning: &RaftTuning) -> Result<Arc<openraft::Config>, RaftError> {
    let config = openraft::Config {
        cluster_name: "perdura".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_every_logs),
        max_in_snapshot_log_to_keep: tuning.logs_kept_after_snapshot,
        ..Default::default()
    };
    let config = config.validate().map_err(|e| RaftError::Raft {
        group: GroupId::META,
        detail: e.to_string(),
    })?;
    Ok(Arc::new(config))
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
        let db = Arc::new(Db::open(config.data_dir.join("rocksdb"))?);
        let writer = Arc::new(LogWriter::start(db.clone()));
        let ctx = GroupContext {
            node_id: config.node_id,
            db: db.clone(),
            writer: writer.clone(),
            config: openraft_config(&tuning)?,
            transport: tuning.transport.clone(),
            observer: observer.clone(),
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

        let mut shards = BTreeMap::new();
        for id in slot_map.groups() {
            let group = Arc::new(Group::start(&ctx, id).await?);
            group.initialize_single_node(config.node_id).await?;
            shards.insert(id, group);
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(meta.clone().watch_leadership(
            config.node_id,
            None,
            shutdown_rx.clone(),
        )));
        for group in shards.values() {
            let watcher = group.clone().watch_leadership(
                config.node_id,
                Some(observer.clone()),
                shutdown_rx.clone(),
            );
            tasks.push(tokio::spawn(watcher));
            let host = Arc::new(ShardTimerHost {
                group: group.clone(),
                clock: tuning.clock.clone(),
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
        let router = Arc::new(LocalRouter {
            meta: meta.clone(),
            shards: shards.clone(),
            clock: tuning.clock.clone(),
            timeout: tuning.propose_timeout,
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
        // Every workflow group has told the observer it is led here before `open` returns.
        for group in shards.values() {
            group.wait_reported_leader(tuning.startup_timeout).await?;
        }
        Ok(Arc::new(MultiRaft {
            node_id: config.node_id,
            db,
            writer,
            meta,
            shards,
            router,
            propose_timeout: tuning.propose_timeout,
            closed: AtomicBool::new(false),
            shutdown_tx,
            tasks: Mutex::new(tasks),
        }))
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The workflow group that owns `workflow_id` in `namespace` (slot hash + stored slot map).
    pub fn group_of(&self, namespace: &str, workflow_id: &str) -> GroupId {
        self.router.group_of_slot(namespace, workflow_id)
    }

    /// The workflow groups hosted by this node, ascending.
    pub fn shard_groups(&self) -> Vec<GroupId> {
        self.shards.keys().copied().collect()
    }

    /// Stamps `now_ms` from this node's clock (leader time) into a `ShardCommand`, proposes it,
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
        propose_meta_to(&self.meta, command, self.propose_timeout).await
    }

    /// Reads a workflow group's applied state; `None` = unknown group.
    pub fn read_shard<R>(&self, group: GroupId, f: impl FnOnce(&ShardState) -> R) -> Option<R> {
        self.shards.get(&group)?.read_state(|state| match state {
            GroupState::Shard(shard) => Some(f(shard)),
            GroupState::Meta(_) => None,
        })
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
        if !self.shards.contains_key(&group) {
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
    pub fn raft(&self, group: GroupId) -> Option<&crate::types::GroupRaft> {
        if group == GroupId::META {
            Some(&self.meta.raft)
        } else {
            self.shards.get(&group).map(|g| &g.raft)
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
        for group in self.shards.values().chain(std::iter::once(&self.meta)) {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = %group.id, error = %e, "raft shutdown failed");
            }
        }
        self.writer.shutdown();
        // openraft drops its storage handles on its own tasks, shortly after `shutdown` returns.
        // Wait for them, so that dropping this `MultiRaft` closes the database (and releases its
        // lock: a restart in the same process can open it again at once).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.db) > 1 && std::time::Instant::now() < deadline {
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
async fn bootstrap_meta(
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
