//! The value an `ok` completion returns; which kind fits which operation is checked when a history
//! is paired (see [`super::History`]).

use super::event::ObservedEvent;
use crate::ids::{ActivityId, GroupId, RaftIndex, RunId, WorkflowId};
use serde::{Deserialize, Serialize};

/// Serialized with the kind in `"kind"`: `{"kind":"started","run_id":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpValue {
    /// start_workflow: the run the server started or returned.
    Started { run_id: RunId },
    /// read_history: the run's events as that node served them.
    Events { events: Vec<ObservedEvent> },
    /// A read found no such workflow or run.
    NotFound,
    /// poll_activity: the activity task handed out.
    ActivityTask {
        workflow_id: WorkflowId,
        run_id: RunId,
        activity_id: ActivityId,
        #[serde(default)]
        attempt: u32,
    },
    /// poll_workflow_task: the task and the events it delivered (possibly only the new ones).
    WorkflowTask {
        workflow_id: WorkflowId,
        run_id: RunId,
        events: Vec<ObservedEvent>,
    },
    /// A poll that ended without a task.
    NoTask,
    /// describe / get_result: the run's status and, once closed, its close.
    Outcome {
        run_id: RunId,
        status: RunStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    /// raft_status: applied index per group on the node.
    RaftStatus { groups: Vec<GroupApplied> },
}

impl OpValue {
    /// The kind name, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            OpValue::Started { .. } => "started",
            OpValue::Events { .. } => "events",
            OpValue::NotFound => "not_found",
            OpValue::ActivityTask { .. } => "activity_task",
            OpValue::WorkflowTask { .. } => "workflow_task",
            OpValue::NoTask => "no_task",
            OpValue::Outcome { .. } => "outcome",
            OpValue::RaftStatus { .. } => "raft_status",
        }
    }
}

/// A run's status as describe/get_result report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    ContinuedAsNew,
    TimedOut,
}

impl RunStatus {
    pub fn is_closed(self) -> bool {
        self != RunStatus::Running
    }
}

/// One group's applied index on one node at the time of a raft_status read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupApplied {
    pub group: GroupId,
    pub applied_index: RaftIndex,
}
