//! Replicated commands of a workflow group and their replies.

use crate::codec;
use crate::ids::{ExecutionKey, GroupId};
use crate::shard::outbox::{DeliveryOutcome, OutboxKind, OutboxMessage};
use crate::slots::SlotRange;
use crate::token::TaskToken;
use serde::{Deserialize, Serialize};
use temporalio_protos::temporal::api::{
    common::v1::{Header, Payloads, RetryPolicy, WorkflowExecution},
    workflowservice::v1::{
        RecordActivityTaskHeartbeatRequest, RequestCancelWorkflowExecutionRequest,
        RespondActivityTaskCanceledRequest, RespondActivityTaskCompletedRequest,
        RespondActivityTaskFailedRequest, RespondWorkflowTaskCompletedRequest,
        RespondWorkflowTaskFailedRequest, SignalWithStartWorkflowExecutionRequest,
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest, UpdateWorkflowExecutionRequest,
    },
};
use temporalio_protos::temporal::api::{
    history::v1::HistoryEvent, protocol::v1::Message, update::v1::Outcome,
};

/// One entry of a workflow group's log: a command plus the leader's wall-clock time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardCommand {
    /// Milliseconds since the Unix epoch, read by the leader when it proposed the command. The
    /// engine clamps it so that a group's time never goes backwards.
    pub now_ms: i64,
    pub kind: ShardCommandKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "commands are built once per log entry and moved, rarely copied; boxing would change the contract"
)]
pub enum ShardCommandKind {
    /// StartWorkflowExecution. `run_id` is a fresh UUID chosen by the proposer; it is used only if
    /// a new run is created.
    StartWorkflow {
        #[serde(with = "codec::proto")]
        request: StartWorkflowExecutionRequest,
        run_id: String,
    },
    /// A poller wants the scheduled workflow task: write WorkflowTaskStarted and hand it out.
    RecordWorkflowTaskStarted {
        execution: ExecutionKey,
        scheduled_event_id: i64,
        identity: String,
        poll_request_id: String,
    },
    RespondWorkflowTaskCompleted {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RespondWorkflowTaskCompletedRequest,
    },
    RespondWorkflowTaskFailed {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RespondWorkflowTaskFailedRequest,
    },
    /// A poller wants the scheduled activity task: mark this attempt started and hand it out.
    RecordActivityTaskStarted {
        execution: ExecutionKey,
        scheduled_event_id: i64,
        identity: String,
        poll_request_id: String,
    },
    RespondActivityTaskCompleted {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RespondActivityTaskCompletedRequest,
    },
    RespondActivityTaskFailed {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RespondActivityTaskFailedRequest,
    },
    /// Fire every timer-index entry due at or before `now_ms` (user timers, retry back-offs and
    /// every timeout). Proposed by the group leader when its clock passes the earliest entry.
    FireTimers,
    // Variants below were added after the first contract; new ones go at the end so that the
    // encodings of existing ones (bincode variant indexes) never change.
    /// SignalWorkflowExecution: WorkflowExecutionSignaled + WFT+. An empty run ID in
    /// `request.workflow_execution` names the current run. Deduplicated by `request_id`.
    SignalWorkflow {
        #[serde(with = "codec::proto")]
        request: SignalWorkflowExecutionRequest,
    },
    /// TerminateWorkflowExecution: WorkflowExecutionTerminated{reason, details, identity}. An
    /// empty run ID names the current run.
    TerminateWorkflow {
        #[serde(with = "codec::proto")]
        request: TerminateWorkflowExecutionRequest,
    },
    /// RecordActivityTaskHeartbeat: records the details and restarts the heartbeat timeout. No event.
    RecordActivityTaskHeartbeat {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RecordActivityTaskHeartbeatRequest,
    },
    /// RespondActivityTaskCanceled: ActivityTaskStarted + ActivityTaskCanceled, then WFT+.
    RespondActivityTaskCanceled {
        token: TaskToken,
        #[serde(with = "codec::proto")]
        request: RespondActivityTaskCanceledRequest,
    },
    /// UpdateWorkflowExecution: admits the update (deduplicated by update ID) and, if the run
    /// has no workflow task, schedules a speculative one to carry it. No event.
    UpdateWorkflow {
        #[serde(with = "codec::proto")]
        request: UpdateWorkflowExecutionRequest,
    },
    /// RequestCancelWorkflowExecution: WorkflowExecutionCancelRequested + WFT+. An empty run ID
    /// names the current run; a set `first_execution_run_id` names the current run of that chain.
    /// Idempotent: a run that is closed or already asked to cancel acknowledges without an event.
    /// `external_*` are set when another workflow asked (RequestCancelExternal, parent close
    /// policy); they are copied onto the CancelRequested event.
    RequestCancelWorkflow {
        #[serde(with = "codec::proto")]
        request: RequestCancelWorkflowExecutionRequest,
        external_initiated_event_id: i64,
        #[serde(with = "codec::proto_opt")]
        external_workflow_execution: Option<WorkflowExecution>,
    },
    /// SignalWithStartWorkflowExecution: signals the running run, or starts a new one (with
    /// `run_id`) whose history begins Started, Signaled, WorkflowTaskScheduled.
    SignalWithStartWorkflow {
        #[serde(with = "codec::proto")]
        request: SignalWithStartWorkflowExecutionRequest,
        run_id: String,
    },
    /// Update-with-start (ExecuteMultiOperation): `StartWorkflow` then `UpdateWorkflow` on the
    /// run it names, atomically. `run_id` as in `StartWorkflow`.
    StartWorkflowWithUpdate {
        #[serde(with = "codec::proto")]
        start: StartWorkflowExecutionRequest,
        run_id: String,
        #[serde(with = "codec::proto")]
        update: UpdateWorkflowExecutionRequest,
    },
    /// Outbox delivery, target side: apply `source`'s message `outbox_id` (idempotent) and reply
    /// `Delivered(outcome)`. Proposed by the source group's outbox driver to the target's group.
    ReceiveMessage {
        source: ExecutionKey,
        outbox_id: i64,
        message: OutboxMessage,
    },
    /// Outbox delivery, source side: the target applied message `outbox_id` of `execution` with
    /// `outcome`; drop the entry (if it is still of `kind`) and record the result event.
    AckMessage {
        execution: ExecutionKey,
        outbox_id: i64,
        kind: OutboxKind,
        outcome: DeliveryOutcome,
    },
    /// ShutdownWorker with a sticky queue: every run of this group that is sticky to it falls
    /// back to its normal queue at once (a task waiting on the sticky queue moves there). No
    /// event. Proposed to every workflow group.
    ShutdownWorker {
        namespace: String,
        sticky_task_queue: String,
    },
    /// Online split: every execution (open or closed) whose slot is in `slots` leaves this
    /// group, with its current-run pointer, history, timers, pending tasks, outbox and updates,
    /// and becomes the initial state of `new_group`. From then on this group rejects every
    /// command for those slots with `SlotMoved`. Idempotent: repeating it changes nothing. See
    /// `docs/design/005-online-group-split.md`.
    SplitOut {
        slots: SlotRange,
        new_group: GroupId,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one reply per applied command, moved once to the proposer; the common workflow-task reply stays unboxed"
)]
pub enum ShardReply {
    WorkflowStarted {
        run_id: String,
        started: bool,
    },
    WorkflowTaskStarted(WorkflowTaskInfo),
    ActivityTaskStarted(Box<ActivityTaskInfo>),
    /// The command was applied; nothing to return.
    Done,
    TimersFired {
        fired: u32,
    },
    /// Reply to `RecordActivityTaskHeartbeat`.
    ActivityHeartbeat {
        cancel_requested: bool,
    },
    /// Reply to `UpdateWorkflow`.
    Update(Box<UpdateStatus>),
    /// A speculative workflow task was completed without writing anything: the worker must
    /// forget it and go back to the state after this WorkflowTaskStarted event (the reply's
    /// `reset_history_event_id`).
    WorkflowTaskDiscarded {
        reset_history_event_id: i64,
    },
    /// Reply to `StartWorkflowWithUpdate`.
    StartedWithUpdate {
        run_id: String,
        started: bool,
        update: Box<UpdateStatus>,
    },
    /// Reply to `ReceiveMessage`.
    Delivered(DeliveryOutcome),
    /// Reply to a `RespondWorkflowTaskCompleted` with `return_new_workflow_task` that created a
    /// new workflow task: the task, already started for the same worker.
    NewWorkflowTask(WorkflowTaskInfo),
    /// Reply to `SplitOut`: how many executions moved; `already` if the slots had moved before.
    SplitOut {
        executions: u64,
        already: bool,
    },
}

/// Everything a PollWorkflowTaskQueueResponse needs except the history, which the caller reads
/// from storage: events `1..=started_event_id` of `token.execution`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskInfo {
    pub token: TaskToken,
    pub workflow_type: String,
    pub task_queue: String,
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    /// Started event ID of the last completed workflow task (the replay boundary), 0 if none.
    pub previous_started_event_id: i64,
    pub attempt: i32,
    pub scheduled_time_ms: i64,
    pub started_time_ms: i64,
    /// A speculative task's unwritten WorkflowTaskScheduled and WorkflowTaskStarted events: the
    /// history shown to the worker is the stored events followed by these.
    #[serde(with = "codec::proto_vec")]
    pub speculative_events: Vec<HistoryEvent>,
    /// Protocol messages for the worker: the requests of the updates this task delivers.
    #[serde(with = "codec::proto_vec")]
    pub messages: Vec<Message>,
    /// The sticky queue the task was dispatched to, empty for the normal queue. A task started
    /// from its sticky queue carries only the events after `previous_started_event_id`.
    pub sticky_task_queue: String,
}

/// Where an update stands: the reply to UpdateWorkflow, and what waiting clients read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatus {
    pub run_id: String,
    /// An `UpdateWorkflowExecutionLifecycleStage`: ADMITTED, ACCEPTED or COMPLETED.
    pub stage: i32,
    /// Set once the stage is COMPLETED.
    #[serde(with = "codec::proto_opt")]
    pub outcome: Option<Outcome>,
    /// The run closed before the update was accepted; the client gets NotFound.
    pub aborted: bool,
}

/// Everything a PollActivityTaskQueueResponse needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskInfo {
    pub token: TaskToken,
    pub workflow_type: String,
    pub activity_id: String,
    pub activity_type: String,
    #[serde(with = "codec::proto_opt")]
    pub header: Option<Header>,
    #[serde(with = "codec::proto_opt")]
    pub input: Option<Payloads>,
    #[serde(with = "codec::proto_opt")]
    pub heartbeat_details: Option<Payloads>,
    pub scheduled_time_ms: i64,
    pub current_attempt_scheduled_time_ms: i64,
    pub started_time_ms: i64,
    pub attempt: i32,
    pub schedule_to_close_timeout_ms: i64,
    pub start_to_close_timeout_ms: i64,
    pub heartbeat_timeout_ms: i64,
    #[serde(with = "codec::proto_opt")]
    pub retry_policy: Option<RetryPolicy>,
}
