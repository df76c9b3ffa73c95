//! Lookups over the final read: the replicas of each run, by workflow and run ID.

use crate::history::{FinalRead, RunHistory};
use crate::ids::{GroupId, NodeId, RunId, WorkflowId};
use std::collections::BTreeMap;

/// A run, by workflow and run ID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunKey {
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
}

impl RunKey {
    pub fn new(workflow_id: &WorkflowId, run_id: &RunId) -> Self {
        RunKey {
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
        }
    }
}

/// One node's copy of one run.
#[derive(Clone, Copy, Debug)]
pub struct RunReplica<'a> {
    pub node: NodeId,
    pub group: GroupId,
    pub run: &'a RunHistory,
}

pub struct FinalIndex<'a> {
    /// Every node in the final read, ascending.
    pub nodes: Vec<NodeId>,
    /// Replicas of each run, by ascending node.
    runs: BTreeMap<RunKey, Vec<RunReplica<'a>>>,
}

impl<'a> FinalIndex<'a> {
    pub fn new(final_read: &'a FinalRead) -> Self {
        let mut nodes: Vec<NodeId> = final_read.nodes.iter().map(|n| n.node).collect();
        nodes.sort();
        nodes.dedup();
        let mut runs: BTreeMap<RunKey, Vec<RunReplica<'a>>> = BTreeMap::new();
        for node in &final_read.nodes {
            for group in &node.groups {
                for run in &group.runs {
                    runs.entry(RunKey::new(&run.workflow_id, &run.run_id))
                        .or_default()
                        .push(RunReplica {
                            node: node.node,
                            group: group.group,
                            run,
                        });
                }
            }
        }
        for replicas in runs.values_mut() {
            replicas.sort_by_key(|replica| (replica.node, replica.group));
        }
        FinalIndex { nodes, runs }
    }

    /// Every replica of the run, by ascending node.
    pub fn replicas(&self, key: &RunKey) -> &[RunReplica<'a>] {
        self.runs.get(key).map_or(&[], Vec::as_slice)
    }

    /// The replica the checkers judge a run's contents by: the lowest node holding it.
    pub fn reference(&self, workflow_id: &WorkflowId, run_id: &RunId) -> Option<RunReplica<'a>> {
        self.runs
            .get(&RunKey::new(workflow_id, run_id))
            .and_then(|r| r.first().copied())
    }

    /// The reference replicas of every run of a workflow.
    pub fn runs_of(&self, workflow_id: &WorkflowId) -> Vec<RunReplica<'a>> {
        self.runs
            .range(RunKey::new(workflow_id, &RunId(String::new()))..)
            .take_while(|(key, _)| &key.workflow_id == workflow_id)
            .filter_map(|(_, replicas)| replicas.first().copied())
            .collect()
    }

    /// Every run with all its replicas.
    pub fn all_runs(&self) -> impl Iterator<Item = (&RunKey, &[RunReplica<'a>])> {
        self.runs
            .iter()
            .map(|(key, replicas)| (key, replicas.as_slice()))
    }
}
