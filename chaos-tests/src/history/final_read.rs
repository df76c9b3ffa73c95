//! The end-of-run read: after heal and convergence the harness reads, from every node, every
//! group's Raft state and every run's history. One JSON document.

use super::event::ObservedEvent;
use crate::ids::{GroupId, HarnessNanos, NodeId, RaftIndex, RaftTerm, RunId, WorkflowId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    /// Harness time when the final read began (after convergence).
    pub read_at_ns: HarnessNanos,
    pub nodes: Vec<NodeRead>,
}

/// Everything one node holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRead {
    pub node: NodeId,
    pub groups: Vec<GroupRead>,
}

/// One group's replica on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRead {
    pub group: GroupId,
    pub applied_index: RaftIndex,
    /// A digest of the replica's state-machine state at `applied_index` (the server's choice of
    /// hash; only equality matters).
    pub state_digest: String,
    /// The committed log the node still holds (after purges, a suffix), by index.
    #[serde(default)]
    pub committed: Vec<LogEntryId>,
    /// Every run of every workflow in this group on this node.
    #[serde(default)]
    pub runs: Vec<RunHistory>,
}

/// One committed log entry, identified as Raft's log-matching property compares them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryId {
    pub index: RaftIndex,
    pub term: RaftTerm,
    /// A hash of the entry's payload (only equality matters).
    pub hash: String,
}

/// One run's whole history on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHistory {
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub events: Vec<ObservedEvent>,
}

impl RunHistory {
    /// The first event, if it is `WorkflowExecutionStarted`.
    pub fn started_event(&self) -> Option<&ObservedEvent> {
        self.events
            .first()
            .filter(|event| event.event_type == super::EventType::WorkflowExecutionStarted)
    }

    /// The terminal event, if the run is closed (the last event, if it is terminal).
    pub fn terminal_event(&self) -> Option<&ObservedEvent> {
        self.events
            .last()
            .filter(|event| event.event_type.is_terminal())
    }
}
