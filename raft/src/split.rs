//! Online group split, node side (`docs/design/005-online-group-split.md`):
//!
//! * [`SplitObserver`] sees a source group apply `SplitOut` (`Notice::SlotsMoved`) and asks the
//!   node to start the new group; at open, every group named by a `moved_slots` record starts too.
//! * [`MultiRaft::start_group`] starts a group at run time — its openraft instance over the
//!   genesis the split wrote, its leadership watcher, timer and outbox drivers.
//! * Routing follows moved slots: `group_of` through the local `moved_slots` records, proposals
//!   through `SlotMoved` replies ([`follow_slot`], `LocalRouter::propose_shard`).
//! * The orchestrator: [`MultiRaft::split_group`] and [`MultiRaft::resume_splits`] run the steps
//!   `BeginSplit` → `SplitOut` → new group led → `FinishSplit`, each idempotent, so running them
//!   again after any crash finishes the split.
//!
//! Invariants: nothing here writes state except through proposals; starting a group twice is a
//! no-op; a split is finished in the slot map only after the new group has a leader.

use crate::error::{ProposeError, RaftError};
use crate::group::{Group, GroupContext, ShardOutboxSource, ShardTimerHost};
use crate::groups::GroupSet;
use crate::multi::MultiRaft;
use crate::observer::ApplyObserver;
use crate::outbox::OutboxDriver;
use crate::records;
use crate::state_machine::GroupState;
use crate::timer::run_timer_driver;
use perdura_engine::ShardState;
use perdura_engine::slots::slot_of;
use perdura_engine::{
    EngineError, GroupId, MetaCommand, MetaReply, Notice, ShardCommandKind, ShardReply, SlotRange,
    SplitRecord,
};
use perdura_storage::Db;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How many moved-slot hops a request follows (a range split again and again).
const MAX_HOPS: usize = 8;
/// Pause between attempts while a new group starts or elects its first leader.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Why a split could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("group {0} has no slot range of two or more slots to split")]
    NotSplittable(GroupId),
    #[error("group {0} is not a workflow group of this node")]
    UnknownGroup(GroupId),
    #[error("the split was refused: {0}")]
    Refused(EngineError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error(transparent)]
    Raft(#[from] RaftError),
    #[error("group {group} has no leader after {waited:?}")]
    NoLeader { group: GroupId, waited: Duration },
}

/// Wraps the node's observer: reports every applied `SlotsMoved` to the group starter.
pub(crate) struct SplitObserver {
    pub inner: Arc<dyn ApplyObserver>,
    pub created: mpsc::UnboundedSender<GroupId>,
}

impl ApplyObserver for SplitObserver {
    fn on_applied(&self, group: GroupId, notices: &[Notice]) {
        for notice in notices {
            if let Notice::SlotsMoved { new_group, .. } = notice {
                // The receiver lives as long as the node; after shutdown nobody needs the group.
                let _ = self.created.send(*new_group);
            }
        }
        self.inner.on_applied(group, notices);
    }

    fn on_leadership(&self, group: GroupId, is_leader: bool) {
        self.inner.on_leadership(group, is_leader);
    }

    fn on_snapshot_installed(&self, group: GroupId) {
        self.inner.on_snapshot_installed(group);
    }
}

/// What the node keeps to start groups after `open`.
pub(crate) struct SplitParts {
    /// The context the open groups were started with (its observer is the [`SplitObserver`]);
    /// taken at shutdown, so that it does not keep the database open.
    pub ctx: std::sync::Mutex<Option<Arc<GroupContext>>>,
    /// The API's observer, told about the new group's leadership.
    pub observer: Arc<dyn ApplyObserver>,
    pub deliver_outbox: bool,
    /// Serializes [`MultiRaft::start_group`].
    pub starting: tokio::sync::Mutex<()>,
    /// Genesis states of split-off groups that do not run here yet, loaded on first read.
    pub genesis: std::sync::Mutex<BTreeMap<GroupId, Arc<ShardState>>>,
}

/// The group that owns `slot` after following the moved-slot records of the local replicas,
/// starting from `group`.
pub(crate) fn follow_slot(shards: &GroupSet, mut group: GroupId, slot: u16) -> GroupId {
    for _ in 0..MAX_HOPS {
        let moved = shards.get(&group).and_then(|g| {
            g.read_state(|state| match state {
                GroupState::Shard(shard) => shard.moved_to(perdura_engine::SlotId(slot)),
                GroupState::Meta(_) => None,
            })
        });
        match moved {
            Some(next) => group = next,
            None => break,
        }
    }
    group
}

/// The groups the meta state says a split created (never `initialize`d; see the design note).
pub(crate) fn split_groups(meta: &Group) -> BTreeSet<GroupId> {
    meta.read_state(|state| match state {
        GroupState::Meta(m) => m.split_groups.clone(),
        GroupState::Shard(_) => BTreeSet::new(),
    })
}

/// Whether `group` has state on this node (a genesis or more).
pub(crate) fn has_genesis(db: &Db, group: GroupId) -> bool {
    records::read_applied(db, group).is_ok_and(|applied| applied.last_applied.is_some())
}

/// The slot of a workflow, for [`follow_slot`].
pub(crate) fn workflow_slot(namespace: &str, workflow_id: &str) -> u16 {
    slot_of(namespace, workflow_id).0
}

/// Whether a running group's `moved_slots` record names `group` (so it will run here soon).
pub(crate) fn is_announced(shards: &GroupSet, group: GroupId) -> bool {
    shards.values().iter().any(|g| {
        g.read_state(|state| match state {
            GroupState::Shard(shard) => shard.moved_slots().iter().any(|(_, to)| *to == group),
            GroupState::Meta(_) => false,
        })
    })
}

/// Waits (up to `timeout`) until `group` runs on this node; `false` if it never did.
pub(crate) async fn wait_started(shards: &GroupSet, group: GroupId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !shards.contains_key(&group) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    true
}

/// The upper half of `source`'s largest slot range, or `None` if it has no range of two slots.
pub fn split_range(map: &perdura_engine::SlotMap, source: GroupId) -> Option<SlotRange> {
    let range = map
        .ranges_of(source)
        .into_iter()
        .filter(|r| r.len() >= 2)
        .max_by_key(|r| (r.len(), std::cmp::Reverse(r.start)))?;
    Some(SlotRange {
        start: range.start + range.len() / 2,
        end: range.end,
    })
}

impl MultiRaft {
    /// Starts the workflow group `id` on this node if it does not run yet: after a split wrote
    /// its genesis here, or (cluster) to receive its snapshot from its leader. Returns whether
    /// it started it now.
    pub(crate) async fn start_group(&self, id: GroupId) -> Result<bool, RaftError> {
        let _starting = self.split.starting.lock().await;
        if self.shards.contains_key(&id) || self.is_closed() {
            return Ok(false);
        }
        let ctx = self
            .split
            .ctx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(ctx) = ctx else {
            return Ok(false);
        };
        let group = Arc::new(Group::start(&ctx, id).await?);
        drop(ctx);
        let shutdown = self.shutdown_tx.subscribe();
        let mut tasks = vec![tokio::spawn(group.clone().watch_leadership(
            self.node_id,
            Some(self.split.observer.clone()),
            shutdown.clone(),
        ))];
        let host = Arc::new(ShardTimerHost {
            group: group.clone(),
            timeout: self.propose_timeout,
        });
        tasks.push(tokio::spawn(run_timer_driver(
            host,
            group.timer.clone(),
            group.is_leader.clone(),
            shutdown.clone(),
        )));
        if self.split.deliver_outbox {
            let driver = OutboxDriver {
                group: id,
                source: Arc::new(ShardOutboxSource {
                    group: group.clone(),
                }),
                router: self.router.clone(),
                signal: group.outbox.clone(),
            };
            tasks.push(tokio::spawn(
                driver.run(group.is_leader.clone(), shutdown.clone()),
            ));
        }
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
        if let Some(cluster) = &self.cluster {
            cluster.host.register(group.clone());
        }
        self.shards.insert(group);
        self.split
            .genesis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        tracing::info!(group = %id, "started a split-off group");
        Ok(true)
    }

    /// The state of a split-off group that does not run here yet (between the source's
    /// `SplitOut` apply and the start of its Raft instance): its genesis, read from storage.
    /// Until the group runs nothing else can change it. `None` if there is no genesis here.
    pub(crate) fn genesis_state(&self, id: GroupId) -> Option<Arc<ShardState>> {
        let mut cache = self.split.genesis.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = cache.get(&id) {
            return Some(state.clone());
        }
        if !has_genesis(&self.db, id) {
            return None;
        }
        match records::load_shard(&self.db, id) {
            Ok(state) => {
                let state = Arc::new(state);
                cache.insert(id, state.clone());
                Some(state)
            }
            Err(e) => {
                tracing::error!(group = %id, error = %e, "reading a split-off group failed");
                None
            }
        }
    }

    /// Starts every group named by a `moved_slots` record of a running group (transitively):
    /// the groups split off before a restart, or whose `FinishSplit` did not happen yet.
    pub(crate) async fn start_moved_groups(&self) -> Result<(), RaftError> {
        loop {
            let running: BTreeSet<GroupId> = self.shards.keys().into_iter().collect();
            let named: BTreeSet<GroupId> = self
                .shards
                .values()
                .iter()
                .flat_map(|g| {
                    g.read_state(|state| match state {
                        GroupState::Shard(shard) => {
                            shard.moved_slots().into_iter().map(|(_, to)| to).collect()
                        }
                        GroupState::Meta(_) => Vec::new(),
                    })
                })
                .collect();
            let missing: Vec<GroupId> = named.difference(&running).copied().collect();
            if missing.is_empty() {
                return Ok(());
            }
            for id in missing {
                self.start_group(id).await?;
            }
        }
    }

    /// The split steps of a cluster node's open: start the groups split off before, then
    /// finish any interrupted split in the background (every step is idempotent, so several
    /// nodes doing it at once is harmless).
    pub(crate) async fn open_cluster_splits(self: &Arc<Self>) {
        if let Err(e) = self.start_moved_groups().await {
            tracing::error!(error = %e, "starting split-off groups failed");
        }
        let node = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let Some(node) = node.upgrade() else { return };
            if node.read_meta(|m| m.splits.is_empty()) {
                return;
            }
            if let Err(e) = node.resume_splits().await {
                tracing::warn!(error = %e, "an interrupted group split could not be finished yet");
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Runs the group starter: every `SlotsMoved` applied here starts its new group.
    pub(crate) fn spawn_group_starter(
        self: &Arc<Self>,
        mut created: mpsc::UnboundedReceiver<GroupId>,
    ) {
        let node: Weak<MultiRaft> = Arc::downgrade(self);
        let mut shutdown = self.shutdown_tx.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let id = tokio::select! {
                    biased;
                    id = created.recv() => match id { Some(id) => id, None => return },
                    _ = shutdown.changed() => return,
                };
                let Some(node) = node.upgrade() else { return };
                if let Err(e) = node.start_group(id).await {
                    tracing::error!(group = %id, error = %e, "starting a split-off group failed");
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// A read barrier ([`MultiRaft::read_barrier`]) for the group that owns a workflow, which it
    /// returns: the group is resolved again after each barrier, since a split applied meanwhile
    /// may have moved the workflow (reading the old group would answer "not found").
    pub async fn read_barrier_for(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> Result<GroupId, ProposeError> {
        let mut group = self.group_of(namespace, workflow_id)?;
        for _ in 0..MAX_HOPS {
            self.read_barrier(group).await?;
            let now = self.group_of(namespace, workflow_id)?;
            if now == group {
                break;
            }
            group = now;
        }
        Ok(group)
    }

    /// Splits the upper half of `source`'s largest slot range off into a new group, while
    /// workflows run, and returns the new group. If a split of `source` is already in progress
    /// (an earlier call crashed), finishes that one instead.
    pub async fn split_group(&self, source: GroupId) -> Result<GroupId, SplitError> {
        if !self.shards.contains_key(&source) {
            return Err(SplitError::UnknownGroup(source));
        }
        let (in_progress, map) = self.read_meta(|meta| {
            let split = meta.splits.values().find(|s| s.source == source).copied();
            (split, meta.slot_map.clone())
        });
        let split = match in_progress {
            Some(split) => split,
            None => {
                let slots = map
                    .as_ref()
                    .and_then(|map| split_range(map, source))
                    .ok_or(SplitError::NotSplittable(source))?;
                match self
                    .propose_meta(MetaCommand::BeginSplit { source, slots })
                    .await?
                {
                    Ok(MetaReply::SplitBegun { split, .. }) => split,
                    Ok(other) => {
                        return Err(SplitError::Refused(EngineError::FailedPrecondition(
                            format!("unexpected reply {other:?}"),
                        )));
                    }
                    Err(e) => return Err(SplitError::Refused(e)),
                }
            }
        };
        self.complete_split(split).await?;
        Ok(split.new_group)
    }

    /// Finishes every split recorded in the meta state (after a crash of its orchestrator).
    pub async fn resume_splits(&self) -> Result<Vec<GroupId>, SplitError> {
        let splits: Vec<SplitRecord> =
            self.read_meta(|meta| meta.splits.values().copied().collect());
        let mut done = Vec::new();
        for split in splits {
            self.complete_split(split).await?;
            done.push(split.new_group);
        }
        Ok(done)
    }

    /// Steps 2–4 of a split; each is idempotent.
    async fn complete_split(&self, split: SplitRecord) -> Result<(), SplitError> {
        let command = ShardCommandKind::SplitOut {
            slots: split.slots,
            new_group: split.new_group,
        };
        match self.propose_retrying(split.source, command).await? {
            Ok(ShardReply::SplitOut {
                executions,
                already,
            }) => {
                tracing::info!(source = %split.source, new_group = %split.new_group, slots = %split.slots, executions, already, "slots split off");
            }
            Ok(other) => {
                return Err(SplitError::Refused(EngineError::FailedPrecondition(
                    format!("unexpected reply {other:?}"),
                )));
            }
            Err(e) => return Err(SplitError::Refused(e)),
        }
        // The notice has usually started it already; starting is idempotent.
        self.start_group(split.new_group).await?;
        self.wait_for_leader(split.new_group).await?;
        match self
            .propose_meta(MetaCommand::FinishSplit {
                new_group: split.new_group,
            })
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) => Err(SplitError::Refused(e)),
        }
    }

    /// Proposes a group-wide command, retrying while the group has no leader (an election).
    async fn propose_retrying(
        &self,
        group: GroupId,
        command: ShardCommandKind,
    ) -> Result<Result<ShardReply, EngineError>, ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        loop {
            match self.propose(group, command.clone()).await {
                Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_PAUSE * 4).await;
                }
                other => return other,
            }
        }
    }

    async fn wait_for_leader(&self, id: GroupId) -> Result<(), SplitError> {
        let group = self.shards.get(&id).ok_or(SplitError::UnknownGroup(id))?;
        let waited = self.propose_timeout;
        group
            .raft
            .wait(Some(waited))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .map(|_| ())
            .map_err(|_| SplitError::NoLeader { group: id, waited })
    }
}

/// Sends `SlotsMoved` of every group to the returned receiver, wrapping `observer`.
pub(crate) fn split_observer(
    observer: Arc<dyn ApplyObserver>,
) -> (Arc<SplitObserver>, mpsc::UnboundedReceiver<GroupId>) {
    let (created, rx) = mpsc::unbounded_channel();
    (
        Arc::new(SplitObserver {
            inner: observer,
            created,
        }),
        rx,
    )
}
