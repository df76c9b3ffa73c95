//! Connects applied Raft entries to this node's in-memory dispatch and history wake-ups.

use crate::history_watch::HistoryWatch;
use crate::matching::Matching;
use crate::query::QueryRegistry;
use crate::workflow_metrics;
use perdura_engine::{GroupId, Notice};
use perdura_raft::{ApplyObserver, MultiRaft};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub struct NodeObserver {
    pub matching: Arc<Matching>,
    pub history: Arc<HistoryWatch>,
    /// Not fed by notices; kept here so that every frontend of the node shares it.
    pub queries: Arc<QueryRegistry>,
    raft: OnceLock<Weak<MultiRaft>>,
    /// The groups this node leads, as last reported by [`ApplyObserver::on_leadership`]: only
    /// the leader's apply counts a closed workflow (see [`workflow_metrics`]).
    leading: Mutex<BTreeSet<GroupId>>,
}

impl NodeObserver {
    pub fn new() -> Arc<NodeObserver> {
        Arc::new(NodeObserver {
            matching: Matching::new(),
            history: HistoryWatch::new(),
            queries: QueryRegistry::new(),
            raft: OnceLock::new(),
            leading: Mutex::default(),
        })
    }

    /// Called once the router exists: queues every pending task of every group it leads.
    pub fn attach(&self, raft: &Arc<MultiRaft>) {
        let _ = self.raft.set(Arc::downgrade(raft));
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

    fn rebuild(&self, raft: &MultiRaft, group: GroupId) {
        for task in raft
            .read_shard(group, |state| state.pending_tasks())
            .unwrap_or_default()
        {
            self.matching.offer(task);
        }
    }
}

impl ApplyObserver for NodeObserver {
    fn on_applied(&self, group: GroupId, notices: &[Notice]) {
        for notice in notices {
            match notice {
                Notice::TaskReady(task) => self.matching.offer(task.clone()),
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
}
