//! Connects applied Raft entries to this node's in-memory dispatch and history wake-ups.
//!
//! Every node applies every group, so every node's queues hold every ready task: `TaskReady`
//! adds an entry, `TaskGone` removes it (another node's poller may have started the task). The
//! queues of a group are rebuilt from its replicated ready set when the node starts (after
//! the groups are open) and when it becomes the group's leader; both replay into queues that
//! ignore duplicates, so rebuilding twice costs nothing. A rebuild offers the tasks while it
//! holds the group's state read lock: an entry applied after the read is applied after the
//! offers too, and its notices (which the apply path sends after releasing the lock) arrive
//! after them, so a rebuild never re-adds a task whose `TaskGone` was already processed.

use crate::history_watch::HistoryWatch;
use crate::matching::{Matching, QueuedTask};
use crate::query::{QueryHints, QueryRegistry, QueryRelay};
use crate::workflow_metrics;
use perdura_engine::{GroupId, Notice};
use perdura_raft::{ApplyObserver, MultiRaft};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub struct NodeObserver {
    pub matching: Arc<Matching>,
    pub history: Arc<HistoryWatch>,
    /// Not fed by notices; kept here so that every frontend of the node shares it.
    pub queries: Arc<QueryRelay>,
    raft: OnceLock<Weak<MultiRaft>>,
    /// The groups this node leads, as last reported by [`ApplyObserver::on_leadership`]: only
    /// the leader's apply counts a closed workflow (see [`workflow_metrics`]).
    leading: Mutex<BTreeSet<GroupId>>,
}

impl NodeObserver {
    pub fn new() -> Arc<NodeObserver> {
        let matching = Matching::new();
        // The node ID is set in `attach`, before any query can be registered.
        let registry = QueryRegistry::new(0);
        let hints = QueryHints::new(Arc::clone(&matching));
        Arc::new(NodeObserver {
            queries: QueryRelay::new(registry, hints),
            matching,
            history: HistoryWatch::new(),
            raft: OnceLock::new(),
            leading: Mutex::default(),
        })
    }

    /// Called once the router exists: connects the query relay to the other nodes and queues
    /// every pending task of every group.
    pub fn attach(&self, raft: &Arc<MultiRaft>) {
        let _ = self.raft.set(Arc::downgrade(raft));
        self.queries.registry().set_node_id(raft.node_id());
        crate::query::connect(&self.queries, raft);
        for group in raft.shard_groups() {
            self.rebuild(raft, group);
        }
    }

    /// Whether this node leads `group` (as last reported to this observer).
    pub fn leads(&self, group: GroupId) -> bool {
        self.leading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&group)
    }

    /// After a snapshot install: this node's queue entries of `group` become exactly the
    /// group's ready set, and every history waiter reads again.
    fn resync(&self, raft: &MultiRaft, group: GroupId) {
        raft.read_shard(group, |state| {
            self.matching.resync(
                |task| {
                    raft.group_of(&task.namespace, &task.execution.workflow_id)
                        .ok()
                        == Some(group)
                },
                state.pending_tasks(),
            );
        });
        self.history.wake_all();
    }

    fn rebuild(&self, raft: &MultiRaft, group: GroupId) {
        raft.read_shard(group, |state| {
            for task in state.pending_tasks() {
                self.matching.offer(task);
            }
        });
    }
}

impl ApplyObserver for NodeObserver {
    fn on_applied(&self, group: GroupId, notices: &[Notice]) {
        for notice in notices {
            match notice {
                Notice::TaskReady(task) => self.matching.offer(task.clone()),
                Notice::TaskGone(task) => self.matching.remove(&QueuedTask::Task(task.clone())),
                Notice::HistoryAppended(execution) => self.history.appended(execution),
                // Clients waiting for an update wait on the execution's history watch too.
                Notice::UpdatesChanged(execution) => self.history.appended(execution),
                Notice::WorkflowClosed { execution, status } => {
                    if self.leads(group) {
                        workflow_metrics::record_closed(execution, *status);
                    }
                }
                // The raft layer starts the new group; its tasks are queued when this node
                // becomes its leader (`on_leadership`).
                Notice::TimerArmed { .. } | Notice::OutboxReady(_) | Notice::SlotsMoved { .. } => {}
            }
        }
    }

    fn on_leadership(&self, group: GroupId, is_leader: bool) {
        {
            let mut leading = self
                .leading
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if is_leader {
                leading.insert(group);
            } else {
                leading.remove(&group);
            }
        }
        if !is_leader {
            return;
        }
        if let Some(raft) = self.raft.get().and_then(Weak::upgrade) {
            self.rebuild(&raft, group);
        }
    }

    fn on_snapshot_installed(&self, group: GroupId) {
        if let Some(raft) = self.raft.get().and_then(Weak::upgrade) {
            self.resync(&raft, group);
        }
    }
}
