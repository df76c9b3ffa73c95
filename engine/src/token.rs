//! Task tokens: the opaque handle a worker echoes back when it completes a task.

use crate::codec::versioned;
use crate::ids::ExecutionKey;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    Workflow,
    Activity,
    /// A direct ("legacy") workflow query. It is not replicated state: the node that received
    /// the QueryWorkflow call holds it in memory and dispatches it to a workflow-task poller.
    /// New variants go at the end (the token encoding uses variant indexes).
    Query,
}

/// Identifies one started attempt of a task. A token whose attempt is no longer the started one is
/// stale: the engine answers `NotFound` and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskToken {
    pub kind: TaskKind,
    pub execution: ExecutionKey,
    /// Event ID of the WorkflowTaskScheduled / ActivityTaskScheduled event. Queries: the
    /// query's number on its origin node.
    pub scheduled_event_id: i64,
    /// Workflow tasks: ID of the WorkflowTaskStarted event. Activities: 0. Queries: the ID of
    /// the node that holds the query (its origin), where the answer must go.
    pub started_event_id: i64,
    pub attempt: i32,
}

impl TaskToken {
    pub fn encode(&self) -> Vec<u8> {
        versioned::encode(self).expect("a task token always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<TaskToken, versioned::CodecError> {
        versioned::decode(bytes)
    }
}
