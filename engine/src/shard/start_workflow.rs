//! StartWorkflowExecution: validation, request-ID deduplication, the workflow-ID conflict and
//! reuse policies, and the first two events of a run.
//!
//! `workflow_start_delay` is ignored (the first workflow task is scheduled at once), and the
//! workflow `retry_policy` is stored but workflow retries are not implemented yet. Cron
//! schedules are rejected.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::mutable_state::{CurrentRun, MutableState};
use crate::shard::time::{duration, duration_ms, duration_opt, timestamp};
use crate::shard::txn::{Committed, ENGINE_IDENTITY, Txn};
use std::collections::BTreeMap;
use temporalio_protos::temporal::api::{
    enums::v1::{
        TaskQueueKind, WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    },
    history::v1::{WorkflowExecutionStartedEventAttributes, history_event::Attributes},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};

/// Termination reason written on a running run replaced by a start with TERMINATE_EXISTING.
pub const TERMINATE_EXISTING_REASON: &str =
    "terminated by new workflow start with TERMINATE_EXISTING";

/// `WorkflowIdReusePolicy::TerminateIfRunning`, which is deprecated in the protos: it means
/// "allow duplicate" plus the TERMINATE_EXISTING conflict policy.
const REUSE_TERMINATE_IF_RUNNING: i32 = 4;

pub(crate) fn handle(
    txn: &mut Txn,
    request: StartWorkflowExecutionRequest,
    run_id: String,
) -> Result<Committed, EngineError> {
    let timeouts = validate(txn, &request, &run_id)?;
    let workflow = WorkflowKey {
        namespace: request.namespace.clone(),
        workflow_id: request.workflow_id.clone(),
    };
    let conflict = conflict_policy(&request);

    if let Some(current) = txn.current_run(&workflow).cloned() {
        if !request.request_id.is_empty() && current.start_request_id == request.request_id {
            return Ok(Ok(ShardReply::WorkflowStarted {
                run_id: current.run_id,
                started: true,
            }));
        }
        if current.is_running() {
            match conflict {
                WorkflowIdConflictPolicy::UseExisting => {
                    return Ok(Ok(ShardReply::WorkflowStarted {
                        run_id: current.run_id,
                        started: false,
                    }));
                }
                WorkflowIdConflictPolicy::TerminateExisting => {
                    let key = ExecutionKey {
                        namespace: workflow.namespace.clone(),
                        workflow_id: workflow.workflow_id.clone(),
                        run_id: current.run_id.clone(),
                    };
                    if let Some(old) = txn.draft(&key) {
                        old.terminate(TERMINATE_EXISTING_REASON, ENGINE_IDENTITY);
                    }
                }
                WorkflowIdConflictPolicy::Fail | WorkflowIdConflictPolicy::Unspecified => {
                    return Err(already_started(&workflow, current));
                }
            }
        } else if !reuse_allowed(request.workflow_id_reuse_policy, current.status) {
            return Err(already_started(&workflow, current));
        }
    }

    let key = ExecutionKey {
        namespace: workflow.namespace.clone(),
        workflow_id: workflow.workflow_id.clone(),
        run_id,
    };
    let start_time_ms = txn.now_ms;
    let ms = new_mutable_state(key.clone(), &request, &timeouts, start_time_ms);
    let started = started_event(&key, &request, &timeouts, start_time_ms);
    let draft = txn.create(ms);
    draft.append(Attributes::WorkflowExecutionStartedEventAttributes(started));
    draft.schedule_workflow_task(1);
    let run = CurrentRun {
        run_id: key.run_id.clone(),
        status: WorkflowExecutionStatus::Running as i32,
        start_request_id: request.request_id.clone(),
        start_time_ms,
    };
    txn.set_current_run(workflow, run);
    Ok(Ok(ShardReply::WorkflowStarted {
        run_id: key.run_id,
        started: true,
    }))
}

/// The three workflow timeouts after defaults and caps, in milliseconds (0 = none).
struct Timeouts {
    execution_ms: i64,
    run_ms: i64,
    task_ms: i64,
}

fn invalid(message: &str) -> EngineError {
    EngineError::InvalidArgument(message.to_string())
}

fn validate(
    txn: &Txn,
    request: &StartWorkflowExecutionRequest,
    run_id: &str,
) -> Result<Timeouts, EngineError> {
    let limits = txn.limits();
    let max_len = limits.max_id_length;
    if request.namespace.is_empty() {
        return Err(invalid("Namespace is not set on request."));
    }
    if request.workflow_id.is_empty() {
        return Err(invalid("WorkflowId is not set on request."));
    }
    if request.workflow_id.len() > max_len {
        return Err(invalid("WorkflowId length exceeds limit."));
    }
    let workflow_type = request
        .workflow_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or("");
    if workflow_type.is_empty() {
        return Err(invalid("WorkflowType is not set on request."));
    }
    if workflow_type.len() > max_len {
        return Err(invalid("WorkflowType length exceeds limit."));
    }
    let task_queue = request
        .task_queue
        .as_ref()
        .map(|q| q.name.as_str())
        .unwrap_or("");
    if task_queue.is_empty() {
        return Err(invalid("TaskQueue is not set on request."));
    }
    if task_queue.len() > max_len {
        return Err(invalid("TaskQueue length exceeds limit."));
    }
    if request.request_id.len() > max_len {
        return Err(invalid("RequestId length exceeds limit."));
    }
    if !request.cron_schedule.is_empty() {
        return Err(invalid("CronSchedule is not supported by this server."));
    }
    if request.workflow_id_reuse_policy == REUSE_TERMINATE_IF_RUNNING
        && request.workflow_id_conflict_policy != WorkflowIdConflictPolicy::Unspecified as i32
    {
        return Err(invalid(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together with a WorkflowIDConflictPolicy.",
        ));
    }
    if WorkflowIdReusePolicy::try_from(request.workflow_id_reuse_policy).is_err() {
        return Err(invalid("Invalid WorkflowIdReusePolicy."));
    }
    if WorkflowIdConflictPolicy::try_from(request.workflow_id_conflict_policy).is_err() {
        return Err(invalid("Invalid WorkflowIdConflictPolicy."));
    }
    if run_id.is_empty() {
        return Err(invalid("RunId is not set on the start command."));
    }
    let key = ExecutionKey {
        namespace: request.namespace.clone(),
        workflow_id: request.workflow_id.clone(),
        run_id: run_id.to_string(),
    };
    if txn.execution(&key).is_some() {
        return Err(EngineError::FailedPrecondition(format!(
            "RunId {run_id} already exists."
        )));
    }
    let execution_ms = duration_ms(request.workflow_execution_timeout.as_ref())
        .map_err(|()| invalid("Invalid WorkflowExecutionTimeout."))?;
    let requested_run_ms = duration_ms(request.workflow_run_timeout.as_ref())
        .map_err(|()| invalid("Invalid WorkflowRunTimeout."))?;
    let requested_task_ms = duration_ms(request.workflow_task_timeout.as_ref())
        .map_err(|()| invalid("Invalid WorkflowTaskTimeout."))?;
    // Temporal's rules: the run timeout defaults to, and is capped by, the execution timeout;
    // the task timeout defaults to 10 s and is capped by the maximum and by the run timeout.
    let run_ms = match (requested_run_ms, execution_ms) {
        (0, exec) => exec,
        (run, 0) => run,
        (run, exec) => run.min(exec),
    };
    let mut task_ms = if requested_task_ms == 0 {
        limits.default_workflow_task_timeout_ms
    } else {
        requested_task_ms
    };
    task_ms = task_ms.min(limits.max_workflow_task_timeout_ms);
    if run_ms > 0 {
        task_ms = task_ms.min(run_ms);
    }
    Ok(Timeouts {
        execution_ms,
        run_ms,
        task_ms,
    })
}

fn conflict_policy(request: &StartWorkflowExecutionRequest) -> WorkflowIdConflictPolicy {
    if request.workflow_id_reuse_policy == REUSE_TERMINATE_IF_RUNNING {
        return WorkflowIdConflictPolicy::TerminateExisting;
    }
    WorkflowIdConflictPolicy::try_from(request.workflow_id_conflict_policy)
        .unwrap_or(WorkflowIdConflictPolicy::Fail)
}

/// Whether a closed run with `status` lets a new run of the same workflow ID start.
fn reuse_allowed(reuse_policy: i32, status: i32) -> bool {
    use WorkflowExecutionStatus as S;
    match WorkflowIdReusePolicy::try_from(reuse_policy) {
        Ok(WorkflowIdReusePolicy::RejectDuplicate) => false,
        Ok(WorkflowIdReusePolicy::AllowDuplicateFailedOnly) => {
            [S::Failed, S::Canceled, S::Terminated, S::TimedOut]
                .iter()
                .any(|s| *s as i32 == status)
        }
        // Unspecified, AllowDuplicate and TerminateIfRunning.
        _ => true,
    }
}

fn already_started(workflow: &WorkflowKey, current: CurrentRun) -> EngineError {
    EngineError::AlreadyStarted {
        workflow_id: workflow.workflow_id.clone(),
        run_id: current.run_id,
        start_request_id: current.start_request_id,
    }
}

fn new_mutable_state(
    key: ExecutionKey,
    request: &StartWorkflowExecutionRequest,
    timeouts: &Timeouts,
    start_time_ms: i64,
) -> MutableState {
    let expiration = |timeout_ms: i64| {
        if timeout_ms > 0 {
            start_time_ms + timeout_ms
        } else {
            0
        }
    };
    MutableState {
        workflow_type: request
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        task_queue: request
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default(),
        status: WorkflowExecutionStatus::Running as i32,
        start_time_ms,
        close_time_ms: 0,
        close_event_id: 0,
        next_event_id: 1,
        last_task_id: 0,
        history_size_bytes: 0,
        start_request_id: request.request_id.clone(),
        start_identity: request.identity.clone(),
        first_execution_run_id: key.run_id.clone(),
        workflow_execution_timeout_ms: timeouts.execution_ms,
        workflow_run_timeout_ms: timeouts.run_ms,
        workflow_task_timeout_ms: timeouts.task_ms,
        execution_expiration_time_ms: expiration(timeouts.execution_ms),
        run_expiration_time_ms: expiration(timeouts.run_ms),
        workflow_task: None,
        previous_started_event_id: 0,
        activities: BTreeMap::new(),
        timers: BTreeMap::new(),
        buffered_events: Vec::new(),
        input: request.input.clone(),
        header: request.header.clone(),
        memo: request.memo.clone(),
        search_attributes: request.search_attributes.clone(),
        retry_policy: request.retry_policy.clone(),
        signal_request_ids: Default::default(),
        updates: Default::default(),
        key,
    }
}

fn started_event(
    key: &ExecutionKey,
    request: &StartWorkflowExecutionRequest,
    timeouts: &Timeouts,
    start_time_ms: i64,
) -> WorkflowExecutionStartedEventAttributes {
    let task_queue = TaskQueue {
        name: request
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    };
    WorkflowExecutionStartedEventAttributes {
        workflow_type: request.workflow_type.clone(),
        task_queue: Some(task_queue),
        input: request.input.clone(),
        workflow_execution_timeout: duration_opt(timeouts.execution_ms),
        workflow_run_timeout: duration_opt(timeouts.run_ms),
        workflow_task_timeout: Some(duration(timeouts.task_ms)),
        original_execution_run_id: key.run_id.clone(),
        first_execution_run_id: key.run_id.clone(),
        identity: request.identity.clone(),
        retry_policy: request.retry_policy.clone(),
        attempt: 1,
        workflow_execution_expiration_time: (timeouts.execution_ms > 0)
            .then(|| timestamp(start_time_ms + timeouts.execution_ms)),
        memo: request.memo.clone(),
        search_attributes: request.search_attributes.clone(),
        header: request.header.clone(),
        workflow_id: key.workflow_id.clone(),
        priority: request.priority.clone(),
        ..Default::default()
    }
}
