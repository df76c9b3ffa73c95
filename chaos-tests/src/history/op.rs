//! The operation a history line is about (`f` in Jepsen's terms) with its arguments. The invoke
//! line and the completion line of one operation carry the same `f`.

use crate::ids::{ActivityId, NodeId, RequestId, RunId, TimerId, WorkflowId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a client (or the nemesis) asked for. Serialized with the operation name in `"name"`:
/// `{"name":"start_workflow","workflow_id":"w1","request_id":"r1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Op {
    /// StartWorkflowExecution. Ok value: [`super::OpValue::Started`].
    StartWorkflow {
        workflow_id: WorkflowId,
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_type: Option<String>,
        /// The request may attach to an already running run (conflict policy USE_EXISTING);
        /// then the returned run's first event need not carry this request ID.
        #[serde(default, skip_serializing_if = "is_false")]
        attach_to_existing: bool,
        /// The run timeout the request asked for (`WorkflowExecutionTimedOut` is due that long
        /// after the run started); `None`: no run timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_timeout_ms: Option<u64>,
    },
    /// SignalWorkflowExecution. Ok value: none. The workload keeps `value` unique per request.
    Signal {
        workflow_id: WorkflowId,
        /// `None` signals the current run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal_name: Option<String>,
        value: String,
    },
    /// PollActivityTaskQueue. Ok value: [`super::OpValue::ActivityTask`] or
    /// [`super::OpValue::NoTask`].
    PollActivity { task_queue: String },
    /// RespondActivityTaskCompleted. Ok value: none. The workload keeps `result` unique per call.
    CompleteActivity {
        workflow_id: WorkflowId,
        run_id: RunId,
        activity_id: ActivityId,
        result: String,
    },
    /// PollWorkflowTaskQueue. Ok value: [`super::OpValue::WorkflowTask`] or
    /// [`super::OpValue::NoTask`].
    PollWorkflowTask { task_queue: String },
    /// RespondWorkflowTaskCompleted carrying a StartTimer command; the invoke time is the
    /// command's send time `t_cmd`. Ok value: none.
    StartTimer {
        workflow_id: WorkflowId,
        run_id: RunId,
        timer_id: TimerId,
        duration_ms: u64,
    },
    /// GetWorkflowExecutionHistory of one run from the node in the record.
    /// Ok value: [`super::OpValue::Events`] or [`super::OpValue::NotFound`].
    ReadHistory {
        workflow_id: WorkflowId,
        run_id: RunId,
    },
    /// DescribeWorkflowExecution. Ok value: [`super::OpValue::Outcome`] or
    /// [`super::OpValue::NotFound`].
    Describe {
        workflow_id: WorkflowId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
    },
    /// A long poll for the run's close event (what an SDK's `result()` does).
    /// Ok value: [`super::OpValue::Outcome`] or [`super::OpValue::NotFound`].
    GetResult {
        workflow_id: WorkflowId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
    },
    /// The node's Raft status (applied index per group). Ok value: [`super::OpValue::RaftStatus`].
    RaftStatus,
    /// A fault injected or healed. Ok = installed, fail = skipped, info = indeterminate.
    Nemesis(NemesisOp),
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Op {
    /// The workflow run the operation names, where it names one.
    pub fn workflow_id(&self) -> Option<&WorkflowId> {
        match self {
            Op::StartWorkflow { workflow_id, .. }
            | Op::Signal { workflow_id, .. }
            | Op::CompleteActivity { workflow_id, .. }
            | Op::StartTimer { workflow_id, .. }
            | Op::ReadHistory { workflow_id, .. }
            | Op::Describe { workflow_id, .. }
            | Op::GetResult { workflow_id, .. } => Some(workflow_id),
            Op::PollActivity { .. }
            | Op::PollWorkflowTask { .. }
            | Op::RaftStatus
            | Op::Nemesis(_) => None,
        }
    }

    /// Long polls may legitimately wait for as long as nothing is ready, so liveness does not
    /// judge them.
    pub fn is_long_poll(&self) -> bool {
        matches!(
            self,
            Op::PollActivity { .. } | Op::PollWorkflowTask { .. } | Op::GetResult { .. }
        )
    }

    pub fn is_nemesis(&self) -> bool {
        matches!(self, Op::Nemesis(_))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::StartWorkflow {
                workflow_id,
                request_id,
                ..
            } => {
                write!(f, "start_workflow({workflow_id}, request {request_id})")
            }
            Op::Signal {
                workflow_id,
                run_id,
                request_id,
                value,
                ..
            } => {
                let run = run_id
                    .as_ref()
                    .map_or("current".to_owned(), ToString::to_string);
                write!(
                    f,
                    "signal({workflow_id}/{run}, request {request_id}, value {value:?})"
                )
            }
            Op::PollActivity { task_queue } => write!(f, "poll_activity({task_queue})"),
            Op::CompleteActivity {
                workflow_id,
                run_id,
                activity_id,
                result,
            } => write!(
                f,
                "complete_activity({workflow_id}/{run_id}, activity {activity_id}, result {result:?})"
            ),
            Op::PollWorkflowTask { task_queue } => write!(f, "poll_workflow_task({task_queue})"),
            Op::StartTimer {
                workflow_id,
                run_id,
                timer_id,
                duration_ms,
            } => write!(
                f,
                "start_timer({workflow_id}/{run_id}, timer {timer_id}, {duration_ms}ms)"
            ),
            Op::ReadHistory {
                workflow_id,
                run_id,
            } => {
                write!(f, "read_history({workflow_id}/{run_id})")
            }
            Op::Describe {
                workflow_id,
                run_id,
            } => {
                let run = run_id
                    .as_ref()
                    .map_or("current".to_owned(), ToString::to_string);
                write!(f, "describe({workflow_id}/{run})")
            }
            Op::GetResult {
                workflow_id,
                run_id,
            } => {
                let run = run_id
                    .as_ref()
                    .map_or("current".to_owned(), ToString::to_string);
                write!(f, "get_result({workflow_id}/{run})")
            }
            Op::RaftStatus => f.write_str("raft_status"),
            Op::Nemesis(nemesis) => write!(f, "{nemesis}"),
        }
    }
}

/// One nemesis step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NemesisOp {
    pub action: NemesisAction,
    /// The fault kind; for [`NemesisAction::HealAll`] it is ignored and may be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
    /// The nodes it affects; empty = cluster-wide (for a heal: every node with this fault).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeId>,
}

impl fmt::Display for NemesisOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            NemesisAction::Inject => "inject",
            NemesisAction::Heal => "heal",
            NemesisAction::HealAll => "heal_all",
        };
        write!(f, "nemesis {action}")?;
        if let Some(fault) = self.fault {
            write!(f, " {fault:?}")?;
        }
        for node in &self.nodes {
            write!(f, " {node}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisAction {
    Inject,
    Heal,
    /// Heal every active fault (the end-of-run heal).
    HealAll,
}

/// The kinds of fault the harness injects (CHAOS.md §A3). Names the harness writes that this
/// version does not know read as [`FaultKind::Unknown`], which liveness treats as a network fault
/// (conservatively: while it is active no operation is judged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL (restart is its heal).
    Kill,
    /// SIGSTOP (SIGCONT is its heal).
    Pause,
    /// Every link of the node dropped: the node is as good as down.
    Isolate,
    /// Grudge partitions between nodes (halves, ring, bridge, one-way drops).
    Partition,
    PacketLoss,
    Delay,
    ClockSkew,
    ClockStrobe,
    LoseUnsyncedWrites,
    FsyncError,
    MembershipChange,
    GroupSplit,
    RollingRestart,
    #[serde(other)]
    Unknown,
}

/// How a fault bears on liveness (invariant 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultClass {
    /// The nodes it names count as down; up to `f` of them are tolerated.
    NodeDown,
    /// The network (or the cluster as a whole) is not healed: liveness is not expected.
    NotHealed,
    /// Liveness is expected regardless (clock faults: timers may be late, requests not).
    Tolerated,
}

impl FaultKind {
    pub fn class(self) -> FaultClass {
        match self {
            FaultKind::Kill
            | FaultKind::Pause
            | FaultKind::Isolate
            | FaultKind::LoseUnsyncedWrites
            | FaultKind::FsyncError
            | FaultKind::RollingRestart => FaultClass::NodeDown,
            FaultKind::ClockSkew | FaultKind::ClockStrobe => FaultClass::Tolerated,
            FaultKind::Partition
            | FaultKind::PacketLoss
            | FaultKind::Delay
            | FaultKind::MembershipChange
            | FaultKind::GroupSplit
            | FaultKind::Unknown => FaultClass::NotHealed,
        }
    }
}
