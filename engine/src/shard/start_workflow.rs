//! StartWorkflowExecution: validation, request-ID deduplication, the workflow-ID conflict and
//! reuse policies, and the first two events of a run.
//!
//! `workflow_start_delay` is ignored (the first workflow task is scheduled at once). The workflow
//! `retry_policy` is validated here and applied when a run fails (`workflow_retry`). A cron
//! schedule delays the first workflow task to the first scheduled time (`cron`).

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::cron;
use crate::shard::limits::EngineLimits;
use crate::shard::mutable_state::CurrentRun;
use crate::shard::new_run::{self, RunChain, Timeouts};
use crate::shard::outbox::ParentInfo;
use crate::shard::retry::effective_policy;
use crate::shard::time::duration_ms;
use crate::shard::txn::{Committed, ENGINE_IDENTITY, Txn};
use prost_wkt_types::Duration;
use temporalio_protos::temporal::api::{
    enums::v1::{WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy},
    history::v1::WorkflowExecutionSignaledEventAttributes,
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
    start(txn, request, run_id, None, None)
}

/// StartWorkflowExecution, or the start half of SignalWithStartWorkflowExecution: a new run gets
/// `signal` right after its WorkflowExecutionStarted event.
/// `parent` is set when a parent workflow starts the run as its child.
pub(crate) fn start(
    txn: &mut Txn,
    request: StartWorkflowExecutionRequest,
    run_id: String,
    signal: Option<WorkflowExecutionSignaledEventAttributes>,
    parent: Option<ParentInfo>,
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
    let mut chain = RunChain {
        parent,
        ..RunChain::first()
    };
    if !request.cron_schedule.is_empty() {
        // A cron workflow's first run waits for the first scheduled time.
        chain.first_workflow_task_backoff_ms =
            cron::backoff_ms(&request.cron_schedule, txn.now_ms).unwrap_or(0);
    }
    new_run::create(txn, key.clone(), &request, &timeouts, &chain, signal);
    Ok(Ok(ShardReply::WorkflowStarted {
        run_id: key.run_id,
        started: true,
    }))
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
    if let Some(policy) = &request.retry_policy {
        effective_policy(Some(policy))
            .map_err(|e| EngineError::InvalidArgument(format!("Invalid RetryPolicy: {e}")))?;
    }
    if !request.cron_schedule.is_empty() {
        cron::validate(&request.cron_schedule).map_err(EngineError::InvalidArgument)?;
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
    effective_timeouts(
        limits,
        request.workflow_execution_timeout.as_ref(),
        request.workflow_run_timeout.as_ref(),
        request.workflow_task_timeout.as_ref(),
    )
}

/// The three workflow timeouts after Temporal's defaults and caps (also used for the timeouts a
/// StartChildWorkflowExecution command writes on its Initiated event).
pub(crate) fn effective_timeouts(
    limits: &EngineLimits,
    execution: Option<&Duration>,
    run: Option<&Duration>,
    task: Option<&Duration>,
) -> Result<Timeouts, EngineError> {
    let execution_ms =
        duration_ms(execution).map_err(|()| invalid("Invalid WorkflowExecutionTimeout."))?;
    let requested_run_ms = duration_ms(run).map_err(|()| invalid("Invalid WorkflowRunTimeout."))?;
    let requested_task_ms =
        duration_ms(task).map_err(|()| invalid("Invalid WorkflowTaskTimeout."))?;
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
