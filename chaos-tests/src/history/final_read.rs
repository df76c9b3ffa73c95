//! The end-of-run read: after heal and convergence the harness reads, from every node, every
//! group's Raft state and every run's history. One JSON document.

use super::event::ObservedEvent;
use crate::ids::{GroupId, HarnessNanos, NodeId, RaftIndex, RaftTerm, RunId, WorkflowId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

impl FinalRead {
    /// The groups whose replicas were read at different applied indexes on different nodes: the
    /// group applied an entry between two nodes' reads (a timer fired after the convergence
    /// check), so their replicas are no one cut and must be read again.
    pub fn groups_read_at_different_indexes(&self) -> BTreeSet<GroupId> {
        let mut indexes: BTreeMap<GroupId, BTreeSet<RaftIndex>> = BTreeMap::new();
        for node in &self.nodes {
            for group in &node.groups {
                indexes
                    .entry(group.group)
                    .or_default()
                    .insert(group.applied_index);
            }
        }
        indexes
            .into_iter()
            .filter(|(_, at)| at.len() > 1)
            .map(|(group, _)| group)
            .collect()
    }
}

impl NodeRead {
    /// Replaces this node's read of `fresh.group` (or adds it) by `fresh`.
    pub fn replace_group(&mut self, fresh: GroupRead) {
        match self.groups.iter_mut().find(|g| g.group == fresh.group) {
            Some(read) => *read = fresh,
            None => self.groups.push(fresh),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group(group: u32, applied: u64) -> GroupRead {
        GroupRead {
            group: GroupId(group),
            applied_index: RaftIndex(applied),
            state_digest: format!("d{applied}"),
            committed: Vec::new(),
            runs: Vec::new(),
        }
    }

    #[test]
    fn groups_read_at_different_applied_indexes_are_found_and_replaced() {
        let node = |id: u64, groups: Vec<GroupRead>| NodeRead {
            node: NodeId(id),
            groups,
        };
        let mut read = FinalRead {
            read_at_ns: HarnessNanos(0),
            nodes: vec![
                node(1, vec![group(1, 10), group(4, 804)]),
                node(2, vec![group(1, 10), group(4, 804)]),
                node(3, vec![group(1, 10), group(4, 805)]),
            ],
        };
        assert_eq!(
            read.groups_read_at_different_indexes(),
            BTreeSet::from([GroupId(4)])
        );
        for node in &mut read.nodes[..2] {
            node.replace_group(group(4, 805));
        }
        assert!(read.groups_read_at_different_indexes().is_empty());
        assert_eq!(read.nodes[0].groups, vec![group(1, 10), group(4, 805)]);
        read.nodes[0].replace_group(group(7, 1));
        assert_eq!(read.nodes[0].groups.len(), 3);
    }
}
