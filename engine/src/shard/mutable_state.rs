//! The persisted record of one workflow run ([`MutableState`]) and of a workflow ID's latest run
//! ([`CurrentRun`]). History events are not part of them: they are appended to storage as they
//! are produced (see [`crate::StateChanges::events`]).

use crate::codec;
use crate::ids::ExecutionKey;
use crate::shard::outbox::{ChildState, OutboxMessage, ParentInfo};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use temporalio_protos::temporal::api::{
    common::v1::{Header, Memo, Payloads, RetryPolicy, SearchAttributes},
    enums::v1::WorkflowExecutionStatus,
    failure::v1::Failure,
    history::v1::HistoryEvent,
    update::v1::{Outcome, Request},
};

/// One workflow run, without its history events.
///
/// Times are milliseconds since the Unix epoch; durations are milliseconds with 0 meaning "not
/// set / infinite".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MutableState {
    pub key: ExecutionKey,
    pub workflow_type: String,
    /// The workflow's (normal) task queue; workflow tasks are dispatched there.
    pub task_queue: String,
    /// A `WorkflowExecutionStatus` value.
    pub status: i32,
    pub start_time_ms: i64,
    /// 0 while the run is open.
    pub close_time_ms: i64,
    /// Event ID of the close event (Completed, Failed, TimedOut, Terminated), 0 while open.
    pub close_event_id: i64,
    /// ID the next appended event gets; the history holds events `1..next_event_id`.
    pub next_event_id: i64,
    /// Task ID of the last event appended to this run (event task IDs increase shard-wide).
    pub last_task_id: i64,
    /// Sum of the encoded sizes of the appended events (task IDs excluded).
    pub history_size_bytes: i64,
    /// `request_id` of the StartWorkflowExecution that created the run (deduplication).
    pub start_request_id: String,
    pub start_identity: String,
    pub first_execution_run_id: String,
    pub workflow_execution_timeout_ms: i64,
    pub workflow_run_timeout_ms: i64,
    pub workflow_task_timeout_ms: i64,
    /// Start + execution timeout, 0 if none.
    pub execution_expiration_time_ms: i64,
    /// Start + run timeout, 0 if none.
    pub run_expiration_time_ms: i64,
    /// The workflow task that is scheduled or started, if any.
    pub workflow_task: Option<WorkflowTaskState>,
    /// Started event ID of the last completed workflow task (the replay boundary), 0 if none.
    pub previous_started_event_id: i64,
    /// Pending activities by the event ID of their ActivityTaskScheduled event.
    pub activities: BTreeMap<i64, ActivityState>,
    /// Running user timers by timer ID.
    pub timers: BTreeMap<String, UserTimerState>,
    /// Events that arrived while a workflow task was started. They have no event ID or task ID
    /// yet; both are assigned when the buffer is flushed after that task ends.
    #[serde(with = "codec::proto_vec")]
    pub buffered_events: Vec<HistoryEvent>,
    #[serde(with = "codec::proto_opt")]
    pub input: Option<Payloads>,
    #[serde(with = "codec::proto_opt")]
    pub header: Option<Header>,
    #[serde(with = "codec::proto_opt")]
    pub memo: Option<Memo>,
    #[serde(with = "codec::proto_opt")]
    pub search_attributes: Option<SearchAttributes>,
    /// The workflow retry policy of the chain (as requested; defaults are filled in when a run
    /// fails, see `workflow_retry`).
    #[serde(with = "codec::proto_opt")]
    pub retry_policy: Option<RetryPolicy>,
    /// `request_id`s of the signals delivered to this run (deduplication of retried signals).
    pub signal_request_ids: BTreeSet<String>,
    // Updates (UpdateWorkflowExecution).
    /// Every update admitted to this run, by update ID: in flight, or with its final outcome,
    /// so that a retried request with the same ID never runs the update twice.
    pub updates: BTreeMap<String, UpdateState>,
    // Cancellation.
    /// Whether WorkflowExecutionCancelRequested was written (further requests are no-ops).
    pub cancel_requested: bool,
    /// `request_id` of the cancel request that was recorded.
    pub cancel_request_id: String,
    // Run chains: continue-as-new, workflow retry, cron.
    /// Workflow retry attempt of this run, from 1.
    pub attempt: i32,
    /// Cron schedule of the chain ("" if none).
    pub cron_schedule: String,
    /// When the first workflow task is due if it is delayed (continue-as-new back-off, retry
    /// back-off, cron); 0 once it is scheduled or if it never was delayed.
    pub first_workflow_task_time_ms: i64,
    /// The last completion result of the chain, handed to the next cron run.
    #[serde(with = "codec::proto_opt")]
    pub last_completion_result: Option<Payloads>,
    // Child workflows and external commands (docs/design/003-cross-shard-outbox.md).
    /// Child workflows this run waits for, by the ID of their StartChildWorkflowExecutionInitiated.
    pub children: BTreeMap<i64, ChildState>,
    /// Effects on other executions not yet confirmed by their targets, by outbox ID (the ID of
    /// the event that caused them).
    pub outbox: BTreeMap<i64, OutboxMessage>,
    /// Set when this run is (a run of) a child workflow: where to report its close.
    pub parent: Option<ParentInfo>,
    // Sticky execution.
    /// The sticky queue of the worker that completed the last workflow task with
    /// `sticky_attributes`; empty when the run is not sticky. New workflow tasks go there.
    pub sticky_task_queue: String,
    /// How long a task may wait on the sticky queue before it moves to the normal queue.
    pub sticky_schedule_to_start_timeout_ms: i64,
}

impl MutableState {
    pub fn is_running(&self) -> bool {
        self.status == WorkflowExecutionStatus::Running as i32
    }

    /// The workflow task if it is started (handed to a worker).
    pub fn started_workflow_task(&self) -> Option<&WorkflowTaskState> {
        self.workflow_task.as_ref().filter(|wft| wft.is_started())
    }

    /// Ends stickiness: later workflow tasks go to the normal queue with full history.
    pub fn clear_sticky(&mut self) {
        self.sticky_task_queue.clear();
        self.sticky_schedule_to_start_timeout_ms = 0;
    }
}

/// The current workflow task of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowTaskState {
    pub scheduled_event_id: i64,
    /// 0 until a worker picks the task up.
    pub started_event_id: i64,
    pub attempt: i32,
    pub scheduled_time_ms: i64,
    pub started_time_ms: i64,
    /// Start-to-close timeout of this attempt.
    pub timeout_ms: i64,
    /// Identity and poll request ID of the worker that started the task.
    pub identity: String,
    pub request_id: String,
    // Updates.
    /// A speculative task (scheduled for an update): its Scheduled and Started events are not
    /// written. `scheduled_event_id` and `started_event_id` are reserved IDs; the events are
    /// shown to the worker and written only if the task's completion writes anything.
    pub speculative: bool,
    /// History size and continue-as-new suggestion of the WorkflowTaskStarted event, kept so
    /// that a speculative task's Started event can be rebuilt exactly.
    pub started_history_size_bytes: i64,
    pub suggest_continue_as_new_reasons: Vec<i32>,
    // Sticky execution.
    /// The sticky queue this task was dispatched to; empty for the run's normal queue.
    pub sticky_task_queue: String,
    /// How long the task may wait on the sticky queue before it times out (SCHEDULE_TO_START)
    /// and moves to the normal queue.
    pub sticky_schedule_to_start_timeout_ms: i64,
}

impl WorkflowTaskState {
    pub fn is_started(&self) -> bool {
        self.started_event_id != 0
    }

    pub fn is_sticky(&self) -> bool {
        !self.sticky_task_queue.is_empty()
    }
}

/// Where an activity's current attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityPhase {
    /// In its task queue, waiting for a poller.
    Ready,
    /// Waiting for its retry back-off to elapse (until `current_attempt_scheduled_time_ms`).
    Backoff,
    /// Handed to a worker; no event is written until the attempt ends.
    Started,
}

/// A pending activity: everything needed to dispatch it, time it out and retry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityState {
    pub scheduled_event_id: i64,
    pub activity_id: String,
    pub activity_type: String,
    pub task_queue: String,
    #[serde(with = "codec::proto_opt")]
    pub header: Option<Header>,
    #[serde(with = "codec::proto_opt")]
    pub input: Option<Payloads>,
    pub schedule_to_close_timeout_ms: i64,
    pub schedule_to_start_timeout_ms: i64,
    pub start_to_close_timeout_ms: i64,
    pub heartbeat_timeout_ms: i64,
    /// The effective retry policy (defaults filled in).
    #[serde(with = "codec::proto")]
    pub retry_policy: RetryPolicy,
    /// When the first attempt was scheduled.
    pub scheduled_time_ms: i64,
    pub attempt: i32,
    /// When the current attempt was (or, during back-off, will be) scheduled.
    pub current_attempt_scheduled_time_ms: i64,
    pub phase: ActivityPhase,
    /// Set while `phase` is `Started`.
    pub started_time_ms: i64,
    pub started_identity: String,
    pub started_request_id: String,
    /// Last time the worker heartbeated this attempt, 0 if never.
    pub last_heartbeat_time_ms: i64,
    /// Failure of the previous attempt.
    #[serde(with = "codec::proto_opt")]
    pub last_failure: Option<Failure>,
    #[serde(with = "codec::proto_opt")]
    pub last_heartbeat_details: Option<Payloads>,
    // Activity cancellation.
    /// Event ID of the latest ActivityTaskCancelRequested of this activity, 0 if none. A started
    /// attempt learns of the request through its heartbeat reply and is not retried any more.
    pub cancel_requested_event_id: i64,
}

impl ActivityState {
    pub fn is_cancel_requested(&self) -> bool {
        self.cancel_requested_event_id != 0
    }
}

/// A running user timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTimerState {
    pub timer_id: String,
    /// Event ID of its TimerStarted event.
    pub started_event_id: i64,
    pub fire_time_ms: i64,
}

/// The pointer from a workflow ID to its latest run; used by the ID reuse and conflict policies
/// and by API calls that name no run ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentRun {
    pub run_id: String,
    /// A `WorkflowExecutionStatus` value, kept equal to the run's [`MutableState::status`].
    pub status: i32,
    /// `request_id` of the start that created the run.
    pub start_request_id: String,
    pub start_time_ms: i64,
}

impl CurrentRun {
    pub fn is_running(&self) -> bool {
        self.status == WorkflowExecutionStatus::Running as i32
    }
}

/// One update of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateState {
    /// Admission order within the run; requests reach the worker in this order.
    pub seq: u64,
    pub phase: UpdatePhase,
    /// The request as admitted; dropped once the update is accepted or rejected.
    #[serde(with = "codec::proto_opt")]
    pub request: Option<Request>,
}

/// Where an update stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "phases live in the run's update map and are replaced in place, rarely moved"
)]
pub enum UpdatePhase {
    /// Waits for a workflow task to carry it to the worker.
    Admitted,
    /// Delivered on the workflow task that started with this event ID; that task's completion
    /// must accept or reject it (else the server rejects it).
    Sent { started_event_id: i64 },
    /// WorkflowExecutionUpdateAccepted was written with this ID.
    Accepted { accepted_event_id: i64 },
    /// Final. Completed by the worker (`accepted_event_id` > 0), rejected (no event), or failed
    /// by the server because the run closed after accepting it.
    Completed {
        accepted_event_id: i64,
        #[serde(with = "codec::proto")]
        outcome: Outcome,
    },
    /// Final: the run closed before the update was accepted.
    Aborted,
}

impl UpdateState {
    /// Still needs the worker: admitted, sent or accepted.
    pub fn in_flight(&self) -> bool {
        matches!(
            self.phase,
            UpdatePhase::Admitted | UpdatePhase::Sent { .. } | UpdatePhase::Accepted { .. }
        )
    }
}
