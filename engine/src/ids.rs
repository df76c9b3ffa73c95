//! Domain identifiers: groups, slots, workflow and execution keys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Raft group. Group 0 holds cluster metadata (namespaces, slot map); groups 1.. hold workflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u32);

impl GroupId {
    /// The group that holds namespaces and the slot map.
    pub const META: GroupId = GroupId(0);
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// A position in the fixed slot space onto which (namespace, workflow ID) hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotId(pub u16);

/// A workflow ID within its namespace: the unit of sharding and of ID-reuse policies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkflowKey {
    pub namespace: String,
    pub workflow_id: String,
}

/// One run of a workflow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExecutionKey {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
}

impl ExecutionKey {
    pub fn workflow_key(&self) -> WorkflowKey {
        WorkflowKey {
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
        }
    }
}

impl fmt::Display for ExecutionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.workflow_id, self.run_id)
    }
}
