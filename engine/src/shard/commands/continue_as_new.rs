//! ContinueAsNewWorkflowExecution → WorkflowExecutionContinuedAsNew; the run closes with status
//! CONTINUED_AS_NEW and names its successor, which `Txn::finish` creates in the same command
//! (see `new_run`). Unset fields are inherited as in Temporal: workflow type, task queue, run
//! and task timeouts come from this run; the execution timeout and its deadline span the chain.
//! Memo, search attributes, retry policy and cron schedule come from the command only.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::new_run::{NextRun, RunChain, Timeouts, successor_run_id};
use crate::shard::retry::effective_policy;
use crate::shard::time::{duration, duration_ms};
use temporalio_protos::temporal::api::{
    command::v1::ContinueAsNewWorkflowExecutionCommandAttributes,
    common::v1::WorkflowType,
    enums::v1::{
        ContinueAsNewInitiator, TaskQueueKind, WorkflowExecutionStatus,
        WorkflowTaskFailedCause as Cause,
    },
    history::v1::{WorkflowExecutionContinuedAsNewEventAttributes, history_event::Attributes},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};

fn bad(message: impl Into<String>) -> CommandRejection {
    CommandRejection::new(Cause::BadContinueAsNewAttributes, message)
}

pub(super) fn apply(
    draft: &mut Draft,
    command: &ContinueAsNewWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let ms = &draft.ms;
    let max_len = ctx.limits.max_id_length;
    let workflow_type = match command.workflow_type.as_ref().map(|t| t.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => ms.workflow_type.clone(),
    };
    if workflow_type.len() > max_len {
        return Err(bad(
            "WorkflowType on ContinueAsNewWorkflowExecutionCommand exceeds length limit.",
        ));
    }
    let task_queue = match command.task_queue.as_ref().map(|q| q.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => ms.task_queue.clone(),
    };
    if task_queue.len() > max_len {
        return Err(bad(
            "TaskQueue on ContinueAsNewWorkflowExecutionCommand exceeds length limit.",
        ));
    }
    let invalid = |field: &str| {
        bad(format!(
            "Invalid {field} on ContinueAsNewWorkflowExecutionCommand."
        ))
    };
    let run_ms = duration_ms(command.workflow_run_timeout.as_ref())
        .map_err(|()| invalid("WorkflowRunTimeout"))?;
    let task_ms = duration_ms(command.workflow_task_timeout.as_ref())
        .map_err(|()| invalid("WorkflowTaskTimeout"))?;
    let backoff_ms = duration_ms(command.backoff_start_interval.as_ref())
        .map_err(|()| invalid("BackoffStartInterval"))?;
    if let Some(policy) = &command.retry_policy {
        effective_policy(Some(policy)).map_err(|e| {
            bad(format!(
                "Invalid WorkflowRetryPolicy on ContinueAsNewWorkflowExecutionCommand: {e}"
            ))
        })?;
    }
    let timeouts = chain_timeouts(draft, run_ms, task_ms, ctx);
    let ms = &draft.ms;
    let initiator = match ContinueAsNewInitiator::try_from(command.initiator) {
        Ok(ContinueAsNewInitiator::Unspecified) | Err(_) => ContinueAsNewInitiator::Workflow,
        Ok(initiator) => initiator,
    };
    let run_id = successor_run_id(&ms.key.run_id, ms.next_event_id);
    let task_queue = TaskQueue {
        name: task_queue,
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    };
    let workflow_type = WorkflowType {
        name: workflow_type,
    };
    let request = StartWorkflowExecutionRequest {
        namespace: ms.key.namespace.clone(),
        workflow_id: ms.key.workflow_id.clone(),
        workflow_type: Some(workflow_type.clone()),
        task_queue: Some(task_queue.clone()),
        input: command.input.clone(),
        header: command.header.clone(),
        memo: command.memo.clone(),
        search_attributes: command.search_attributes.clone(),
        retry_policy: command.retry_policy.clone(),
        cron_schedule: command.cron_schedule.clone(),
        ..Default::default()
    };
    let chain = RunChain {
        continued_execution_run_id: ms.key.run_id.clone(),
        first_execution_run_id: ms.first_execution_run_id.clone(),
        attempt: if initiator == ContinueAsNewInitiator::Retry {
            ms.attempt + 1
        } else {
            1
        },
        initiator: initiator as i32,
        continued_failure: command.failure.clone(),
        last_completion_result: command.last_completion_result.clone(),
        first_workflow_task_backoff_ms: backoff_ms,
        execution_expiration_time_ms: ms.execution_expiration_time_ms,
        parent: ms.parent.clone(),
    };
    #[allow(
        deprecated,
        reason = "inherit_build_id is deprecated but still sent and replayed"
    )]
    let attributes = WorkflowExecutionContinuedAsNewEventAttributes {
        new_execution_run_id: run_id.clone(),
        workflow_type: Some(workflow_type),
        task_queue: Some(task_queue),
        input: command.input.clone(),
        workflow_run_timeout: (timeouts.run_ms > 0).then(|| duration(timeouts.run_ms)),
        workflow_task_timeout: Some(duration(timeouts.task_ms)),
        workflow_task_completed_event_id: ctx.completed_event_id,
        backoff_start_interval: command.backoff_start_interval,
        initiator: command.initiator,
        failure: command.failure.clone(),
        last_completion_result: command.last_completion_result.clone(),
        header: command.header.clone(),
        memo: command.memo.clone(),
        search_attributes: command.search_attributes.clone(),
        inherit_build_id: command.inherit_build_id,
        initial_versioning_behavior: command.initial_versioning_behavior,
    };
    draft.close(
        WorkflowExecutionStatus::ContinuedAsNew,
        Attributes::WorkflowExecutionContinuedAsNewEventAttributes(attributes),
    );
    draft.next_run = Some(NextRun {
        run_id,
        request,
        timeouts,
        chain,
    });
    Ok(())
}

/// The new run's timeouts: unset run and task timeouts are inherited; the run timeout is capped
/// by the (inherited) execution timeout and the task timeout by the maximum and the run timeout.
fn chain_timeouts(draft: &Draft, run_ms: i64, task_ms: i64, ctx: &CommandContext) -> Timeouts {
    let ms = &draft.ms;
    let execution_ms = ms.workflow_execution_timeout_ms;
    let run_ms = if run_ms == 0 {
        ms.workflow_run_timeout_ms
    } else {
        run_ms
    };
    let run_ms = match (run_ms, execution_ms) {
        (0, exec) => exec,
        (run, 0) => run,
        (run, exec) => run.min(exec),
    };
    let mut task_ms = if task_ms == 0 {
        ms.workflow_task_timeout_ms
    } else {
        task_ms
    };
    task_ms = task_ms.min(ctx.limits.max_workflow_task_timeout_ms);
    if run_ms > 0 {
        task_ms = task_ms.min(run_ms);
    }
    Timeouts {
        execution_ms,
        run_ms,
        task_ms,
    }
}
