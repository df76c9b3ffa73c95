//! One Raft group on this node: its openraft instance, shared state, leadership watch and timer
//! driver host.

use crate::error::{ProposeError, RaftError};
use crate::group_clock::GroupClock;
use crate::groups::GroupSet;
use crate::log_store::GroupLogStore;
use crate::network::{GroupNetworkFactory, RaftTransport};
use crate::observer::ApplyObserver;
use crate::outbox::{MessageRouter, OutboxSource};
use crate::peer::forward::Forwarder;
use crate::peer::host::Unstamped;
use crate::split;
use crate::state_machine::{ApplyHooks, GroupState, GroupStateMachine, SharedState};
use crate::timer::{BoxFuture, Fired, TimerHost, TimerSignal};
use crate::types::{GroupRaft, Proposal, ProposalReply, TypeConfig, Written};
use crate::watch;
use openraft::error::{ClientWriteError, RaftError as OpenraftError};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, RaftMetrics, ServerState};
use perdura_engine::slots::slot_of;
use perdura_engine::{
    EngineError, GroupId, OutboxEntry, OutboxMessage, ShardCommand, ShardCommandKind, ShardReply,
    WorkflowKey,
};
use perdura_storage::{Db, LogWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The node's wall clock. A seam for simulation; the apply path never reads it. Commands are
/// stamped through each group's [`GroupClock`], never with this clock alone.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // A clock before 1970 is broken; the engine clamps time so it never goes back.
            Err(_) => 0,
        }
    }
}

/// The voters of `raft`'s effective membership (both configurations while joint).
pub(crate) fn voters_of(raft: &GroupRaft) -> BTreeSet<u64> {
    raft.metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

/// Everything a group needs at start.
pub(crate) struct GroupContext {
    pub node_id: u64,
    pub db: Arc<Db>,
    pub writer: Arc<LogWriter>,
    pub config: Arc<openraft::Config>,
    pub transport: Arc<dyn RaftTransport>,
    pub observer: Arc<dyn ApplyObserver>,
    /// The node's wall clock, under every group's [`GroupClock`].
    pub clock: Arc<dyn Clock>,
}

/// How many `SlotMoved` redirections one proposal follows.
const MAX_SLOT_HOPS: usize = 8;

/// A running group.
pub(crate) struct Group {
    pub id: GroupId,
    pub raft: GroupRaft,
    pub state: SharedState,
    pub timer: Arc<TimerSignal>,
    /// Notified when the group's outbox gains a message (see [`crate::outbox`]).
    pub outbox: Arc<tokio::sync::Notify>,
    pub is_leader: watch::Receiver<bool>,
    is_leader_tx: watch::Sender<bool>,
    /// The unflushed overlay of the group's Raft log (shared with openraft's store), for local
    /// reads of the log ([`crate::replica_read`]). Not the store itself: a store holds the
    /// database open, and shutdown waits for every such handle to be dropped.
    pub log_overlay: crate::log_store::Unflushed,
    /// The time this node stamps into the group's commands when it leads.
    clock: GroupClock,
}

impl Group {
    /// Opens the group's storage and starts its openraft instance.
    pub async fn start(ctx: &GroupContext, id: GroupId) -> Result<Group, RaftError> {
        let timer = Arc::new(TimerSignal::default());
        let outbox = Arc::new(tokio::sync::Notify::new());
        let hooks = ApplyHooks {
            observer: ctx.observer.clone(),
            timer: timer.clone(),
            outbox: outbox.clone(),
        };
        let sm = GroupStateMachine::open(id, ctx.db.clone(), hooks)?;
        let state = sm.state();
        let log = GroupLogStore::new(id, ctx.db.clone(), ctx.writer.clone());
        let network = GroupNetworkFactory::new(id, ctx.transport.clone());
        let log_overlay = log.unflushed_overlay();
        // openraft's tracing spans carry `cluster_name`: naming the group there lets a node's
        // log (and the simulation's, where all nodes share one) tell the groups apart.
        let config = Arc::new(openraft::Config {
            cluster_name: format!("g{}", id.0),
            ..(*ctx.config).clone()
        });
        let raft = openraft::Raft::new(ctx.node_id, config, network, log, sm)
            .await
            .map_err(|e| RaftError::Raft {
                group: id,
                detail: e.to_string(),
            })?;
        ctx.transport.group_started(ctx.node_id, id, &raft);
        let (is_leader_tx, is_leader) = watch::channel(false);
        metrics::gauge!("perdura_raft_is_leader", "group" => id.0.to_string()).set(0.0);
        Ok(Group {
            id,
            raft,
            state,
            timer,
            outbox,
            is_leader,
            is_leader_tx,
            log_overlay,
            clock: GroupClock::new(
                id,
                ctx.node_id,
                ctx.clock.clone(),
                ctx.transport.peer_clocks(),
            ),
        })
    }

    /// The time to stamp into a command of this group (leader time; see [`GroupClock`]).
    pub fn stamp_ms(&self) -> i64 {
        let applied_ms = self.read_state(|state| match state {
            GroupState::Shard(shard) => shard.clock_ms(),
            // The meta group's commands carry no time.
            GroupState::Meta(_) => 0,
        });
        // Only a clock that reads its peers' clocks asks for the voters (a metrics borrow and a
        // set per proposal, which a single node need not pay).
        let voters = if self.clock.reads_peer_clocks() {
            voters_of(&self.raft)
        } else {
            BTreeSet::new()
        };
        self.clock.stamp_ms(applied_ms, &voters)
    }

    /// `kind` stamped with [`Group::stamp_ms`].
    pub fn stamped(&self, kind: ShardCommandKind) -> ShardCommand {
        ShardCommand {
            now_ms: self.stamp_ms(),
            kind,
        }
    }

    /// Makes this node the only voter of the group if the group was never initialized.
    pub async fn initialize_single_node(&self, node_id: u64) -> Result<(), RaftError> {
        let err = |detail: String| RaftError::Raft {
            group: self.id,
            detail,
        };
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| err(e.to_string()))?
        {
            return Ok(());
        }
        let members = BTreeMap::from([(node_id, BasicNode::default())]);
        self.raft
            .initialize(members)
            .await
            .map_err(|e| err(e.to_string()))
    }

    /// Waits until this node leads the group and has applied everything committed before.
    pub async fn wait_ready_leader(
        &self,
        node_id: u64,
        timeout: Duration,
    ) -> Result<(), RaftError> {
        self.raft
            .wait(Some(timeout))
            .metrics(|m| is_ready_leader(m, node_id), "ready leader")
            .await
            .map(|_| ())
            .map_err(|e| RaftError::Raft {
                group: self.id,
                detail: e.to_string(),
            })
    }

    /// Is this node the group's leader with everything committed applied?
    pub fn is_ready_leader(&self, node_id: u64) -> bool {
        is_ready_leader(&self.raft.metrics().borrow_watched(), node_id)
    }

    /// Proposes and waits for the applied reply.
    pub async fn write(
        &self,
        proposal: Proposal,
        timeout: Duration,
    ) -> Result<ProposalReply, ProposeError> {
        self.write_indexed(proposal, timeout)
            .await
            .map(|written| written.reply)
    }

    /// [`Group::write`], also answering the log index the proposal was applied at.
    pub async fn write_indexed(
        &self,
        proposal: Proposal,
        timeout: Duration,
    ) -> Result<Written, ProposeError> {
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.raft.client_write(proposal)).await;
        metrics::histogram!("perdura_raft_commit_seconds", "group" => self.id.0.to_string())
            .record(started.elapsed().as_secs_f64());
        match result {
            Err(_) => Err(ProposeError::Indeterminate(format!(
                "no reply within {timeout:?}"
            ))),
            Ok(Ok(response)) => Ok(Written {
                reply: response.data,
                index: response.log_id.index,
            }),
            Ok(Err(OpenraftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Ok(Err(e)) => Err(ProposeError::Indeterminate(e.to_string())),
        }
    }

    /// Watches openraft's metrics and reports leadership changes until `shutdown` (reporting a
    /// last `false` if this node was leading).
    pub async fn watch_leadership(
        self: Arc<Self>,
        node_id: u64,
        observer: Option<Arc<dyn ApplyObserver>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut metrics = self.raft.metrics();
        // The term this node leads in, once it became the ready leader.
        let mut leading: Option<u64> = None;
        let mut leader = None;
        loop {
            let (observed, ready_in) = {
                let m = metrics.borrow_watched();
                let ready_in = match leading {
                    // A ready leader stays leader for its whole term: between an entry's
                    // commit and its apply `is_ready_leader` is briefly false, and that is no
                    // leadership change (reporting it would restart the leader's drivers and
                    // rebuild its queues on every write).
                    Some(term) => leads_in_term(&m, node_id, term).then_some(term),
                    None => is_ready_leader(&m, node_id).then_some(m.current_term),
                };
                (m.current_leader, ready_in)
            };
            if observed.is_some() && observed != leader {
                // A new leader as seen by this node (etcd's "leader changes seen").
                leader = observed;
                metrics::counter!("perdura_raft_leader_changes_total", "group" => self.id.0.to_string())
                    .increment(1);
            }
            let stopping = *shutdown.borrow_and_update();
            let ready_in = ready_in.filter(|_| !stopping);
            if ready_in.is_some() != leading.is_some() {
                self.report_leadership(ready_in.is_some(), observer.as_deref());
            }
            leading = ready_in;
            if stopping {
                return;
            }
            tokio::select! {
                biased;
                r = metrics.changed() => if r.is_err() {
                    // The group stopped.
                    if leading.is_some() {
                        self.report_leadership(false, observer.as_deref());
                    }
                    return;
                },
                // A dropped sender stops the watcher too (it would spin otherwise).
                r = shutdown.changed() => if r.is_err() {
                    if leading.is_some() {
                        self.report_leadership(false, observer.as_deref());
                    }
                    return;
                },
            }
        }
    }

    fn report_leadership(&self, is_leader: bool, observer: Option<&dyn ApplyObserver>) {
        metrics::gauge!("perdura_raft_is_leader", "group" => self.id.0.to_string())
            .set(if is_leader { 1.0 } else { 0.0 });
        tracing::info!(group = %self.id, is_leader, "leadership changed");
        if let Some(observer) = observer {
            observer.on_leadership(self.id, is_leader);
        }
        // After the observer: whoever waits on this watch knows the observer has been told.
        self.is_leader_tx.send_replace(is_leader);
    }

    /// Waits until the leadership watcher has reported this node as the group's ready leader.
    pub async fn wait_reported_leader(&self, timeout: Duration) -> Result<(), RaftError> {
        let mut rx = self.is_leader.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|leading| *leading)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(RaftError::Raft {
                group: self.id,
                detail: "leadership watcher stopped".into(),
            }),
            Err(_) => Err(RaftError::Raft {
                group: self.id,
                detail: format!("not leader after {timeout:?}"),
            }),
        }
    }

    pub fn read_state<R>(&self, f: impl FnOnce(&GroupState) -> R) -> R {
        // A poisoned lock means an apply panicked mid-way; openraft has stopped the group, and
        // readers still get the last state (no worse than a stale read).
        let guard = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }
}

/// Leader of the group, an entry of its own term is applied and everything it knows committed is
/// applied: every entry committed by earlier leaders (or before a restart) is in the state.
pub(crate) fn is_ready_leader(m: &RaftMetrics<TypeConfig>, node_id: u64) -> bool {
    let Some(applied) = m.last_applied.as_ref() else {
        return false;
    };
    m.state == ServerState::Leader
        && m.current_leader == Some(node_id)
        && applied.leader_id.term == m.current_term
        && applied.leader_id.node_id == node_id
        && m.local_committed
            .as_ref()
            .is_none_or(|committed| applied.index >= committed.index)
}

/// Still the leader in `term` (the term in which this node became the ready leader).
fn leads_in_term(m: &RaftMetrics<TypeConfig>, node_id: u64, term: u64) -> bool {
    m.state == ServerState::Leader && m.current_leader == Some(node_id) && m.current_term == term
}

/// A shard group as seen by its timer driver.
pub(crate) struct ShardTimerHost {
    pub group: Arc<Group>,
    pub timeout: Duration,
}

impl TimerHost for ShardTimerHost {
    fn next_timer_ms(&self) -> Option<i64> {
        self.group.read_state(|state| match state {
            GroupState::Shard(shard) => shard.next_timer_ms(),
            GroupState::Meta(_) => None,
        })
    }

    fn now_ms(&self) -> i64 {
        self.group.stamp_ms()
    }

    fn fire_timers(&self) -> BoxFuture<'_, Result<Fired, String>> {
        Box::pin(async move {
            let command = self.group.stamped(ShardCommandKind::FireTimers);
            let now_ms = command.now_ms;
            let proposal = Proposal::Shard(command);
            match self.group.write(proposal, self.timeout).await {
                Ok(ProposalReply::Shard(Ok(ShardReply::TimersFired { fired }))) => {
                    tracing::debug!(group = %self.group.id, fired, "timers fired");
                    Ok(Fired {
                        stamped_ms: now_ms,
                        fired,
                    })
                }
                Ok(other) => Err(format!("unexpected FireTimers reply {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// A shard group as seen by its outbox driver.
pub(crate) struct ShardOutboxSource {
    pub group: Arc<Group>,
}

impl OutboxSource for ShardOutboxSource {
    fn pending(&self) -> Vec<(OutboxEntry, OutboxMessage)> {
        self.group.read_state(|state| match state {
            GroupState::Shard(shard) => shard
                .pending_outbox()
                .into_iter()
                .filter_map(|entry| {
                    let message = shard
                        .outbox_message(&entry.execution, entry.outbox_id)?
                        .clone();
                    Some((entry, message))
                })
                .collect(),
            GroupState::Meta(_) => Vec::new(),
        })
    }
}

/// Proposes to the workflow groups: on a single node directly, in a cluster through the
/// [`Forwarder`] (to wherever the group's leader is). The outbox drivers' [`MessageRouter`].
pub(crate) struct LocalRouter {
    pub meta: Arc<Group>,
    pub shards: Arc<GroupSet>,
    pub timeout: Duration,
    /// Set in a cluster.
    pub forward: Option<Arc<Forwarder>>,
}

impl LocalRouter {
    pub fn group_of_slot(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> Result<GroupId, ProposeError> {
        let slot = slot_of(namespace, workflow_id);
        // The slot map covers every slot (checked when it is written); without one (not applied
        // here yet) nothing is routed.
        let mapped = self
            .meta
            .read_state(|state| match state {
                GroupState::Meta(meta) => meta.slot_map.as_ref().and_then(|map| map.group_of(slot)),
                GroupState::Shard(_) => None,
            })
            .ok_or(ProposeError::NoSlotMap)?;
        // Between a split and its slot-map update the source's record says where the slot went.
        Ok(split::follow_slot(&self.shards, mapped, slot.0))
    }

    /// Proposes to `group`, following `SlotMoved` replies to the group a split moved the
    /// workflow to (waiting briefly for that group to start and elect its first leader).
    pub async fn propose_shard(
        &self,
        mut group: GroupId,
        kind: ShardCommandKind,
    ) -> Result<Result<ShardReply, EngineError>, ProposeError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut hops = 0;
        loop {
            if !self.shards.contains_key(&group) && split::is_announced(&self.shards, group) {
                // A group a split created a moment ago: wait for it to start here.
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                split::wait_started(&self.shards, group, left).await;
            }
            let reply = self.propose_once(group, kind.clone()).await;
            let follow = match &reply {
                Ok(Err(EngineError::SlotMoved { group: to, .. })) if hops < MAX_SLOT_HOPS => {
                    hops += 1;
                    Some(*to)
                }
                // A group a split created, still electing its first leader, or (single node,
                // no forwarding) any election in progress: not applied, wait. (In a cluster the
                // forwarder has already retried; its NotLeader is the answer.)
                Err(ProposeError::NotLeader { leader: None })
                    if (hops > 0 || self.never_led(group) || self.forward.is_none())
                        && tokio::time::Instant::now() < deadline =>
                {
                    Some(group)
                }
                _ => None,
            };
            match follow {
                None => return reply,
                Some(next) => {
                    if next == group {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    group = next;
                }
            }
        }
    }

    /// A running group that never had an election (a group a split just created).
    fn never_led(&self, group: GroupId) -> bool {
        self.shards
            .get(&group)
            .is_some_and(|g| g.raft.metrics().borrow_watched().current_term == 0)
    }

    async fn propose_once(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> Result<Result<ShardReply, EngineError>, ProposeError> {
        let target = self
            .shards
            .get(&group)
            .ok_or(ProposeError::NotLeader { leader: None })?;
        if let Some(forward) = &self.forward {
            // Boxed: the forwarding future is large, and API handlers await it inline.
            let forwarded = Box::pin(forward.propose(group, Unstamped::Shard(kind)));
            return match forwarded.await? {
                ProposalReply::Shard(reply) => Ok(reply),
                other => Err(ProposeError::Indeterminate(format!(
                    "unexpected reply {other:?}"
                ))),
            };
        }
        let command = target.stamped(kind);
        match target.write(Proposal::Shard(command), self.timeout).await? {
            ProposalReply::Shard(reply) => Ok(reply),
            other => Err(ProposeError::Indeterminate(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }
}

impl MessageRouter for LocalRouter {
    fn group_of(&self, workflow: &WorkflowKey) -> Result<GroupId, ProposeError> {
        self.group_of_slot(&workflow.namespace, &workflow.workflow_id)
    }

    fn propose(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> BoxFuture<'_, Result<Result<ShardReply, EngineError>, ProposeError>> {
        Box::pin(self.propose_shard(group, kind))
    }
}
