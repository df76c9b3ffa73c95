//! StartChildWorkflowExecution → StartChildWorkflowExecutionInitiated; the child becomes pending
//! in the parent and its start goes into the outbox (delivered to the child's shard, answered by
//! ChildWorkflowExecutionStarted or StartChildWorkflowExecutionFailed — see
//! `shard/ack_message.rs`).

#![allow(
    deprecated,
    reason = "`control` and the command `namespace` are deprecated in the protos but still sent and replayed"
)]

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::outbox::{ChildState, OutboxMessage, ParentInfo, StartChildMessage, derived_id};
use crate::shard::retry::effective_policy;
use crate::shard::start_workflow::effective_timeouts;
use crate::shard::time::{duration, duration_opt};
use temporalio_protos::temporal::api::{
    command::v1::StartChildWorkflowExecutionCommandAttributes,
    enums::v1::{
        ParentClosePolicy, TaskQueueKind, WorkflowIdReusePolicy, WorkflowTaskFailedCause as Cause,
    },
    history::v1::{StartChildWorkflowExecutionInitiatedEventAttributes, history_event::Attributes},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &StartChildWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let bad =
        |message: &str| CommandRejection::new(Cause::BadStartChildExecutionAttributes, message);
    let max_len = ctx.limits.max_id_length;
    if command.workflow_id.is_empty() {
        return Err(bad(
            "Required field WorkflowId is not set on StartChildWorkflowExecution command.",
        ));
    }
    if command.workflow_id.len() > max_len {
        return Err(bad(
            "WorkflowId on StartChildWorkflowExecution command exceeds length limit.",
        ));
    }
    let workflow_type = command
        .workflow_type
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    if workflow_type.is_empty() {
        return Err(bad(
            "Required field WorkflowType is not set on StartChildWorkflowExecution command.",
        ));
    }
    if workflow_type.len() > max_len {
        return Err(bad(
            "WorkflowType on StartChildWorkflowExecution command exceeds length limit.",
        ));
    }
    if !command.cron_schedule.is_empty() {
        return Err(bad(
            "CronSchedule on child workflows is not supported by this server.",
        ));
    }
    if WorkflowIdReusePolicy::try_from(command.workflow_id_reuse_policy).is_err() {
        return Err(bad(
            "Invalid WorkflowIdReusePolicy on StartChildWorkflowExecution command.",
        ));
    }
    // As for a started workflow and a continue-as-new: the child's retry policy is what its
    // failed runs will be retried by, so a policy that cannot be applied is refused here.
    if let Some(retry) = &command.retry_policy {
        effective_policy(Some(retry)).map_err(|e| {
            bad(&format!(
                "Invalid WorkflowRetryPolicy on StartChildWorkflowExecution command: {e}"
            ))
        })?;
    }
    let policy = match ParentClosePolicy::try_from(command.parent_close_policy) {
        Ok(ParentClosePolicy::Unspecified) => ParentClosePolicy::Terminate,
        Ok(policy) => policy,
        Err(_) => {
            return Err(bad(
                "Invalid ParentClosePolicy on StartChildWorkflowExecution command.",
            ));
        }
    };
    let namespace = if command.namespace.is_empty() {
        draft.ms.key.namespace.clone()
    } else {
        command.namespace.clone()
    };
    let task_queue = match command.task_queue.as_ref().map(|q| q.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => draft.ms.task_queue.clone(),
    };
    if task_queue.len() > max_len {
        return Err(bad(
            "TaskQueue on StartChildWorkflowExecution command exceeds length limit.",
        ));
    }
    let timeouts = effective_timeouts(
        ctx.limits,
        command.workflow_execution_timeout.as_ref(),
        command.workflow_run_timeout.as_ref(),
        command.workflow_task_timeout.as_ref(),
    )
    .map_err(|e| bad(&e.to_string()))?;
    let task_queue = TaskQueue {
        name: task_queue,
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    };

    // An empty memo is no memo (as Temporal stores it).
    let memo = command.memo.clone().filter(|m| !m.fields.is_empty());
    let initiated = StartChildWorkflowExecutionInitiatedEventAttributes {
        namespace: namespace.clone(),
        workflow_id: command.workflow_id.clone(),
        workflow_type: command.workflow_type.clone(),
        task_queue: Some(task_queue.clone()),
        input: command.input.clone(),
        workflow_execution_timeout: duration_opt(timeouts.execution_ms),
        // Temporal writes the run timeout of a child even when it is unlimited (0 s).
        workflow_run_timeout: Some(duration(timeouts.run_ms)),
        workflow_task_timeout: Some(duration(timeouts.task_ms)),
        parent_close_policy: policy as i32,
        control: command.control.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
        workflow_id_reuse_policy: command.workflow_id_reuse_policy,
        retry_policy: command.retry_policy.clone(),
        header: command.header.clone(),
        memo: memo.clone(),
        search_attributes: command.search_attributes.clone(),
        inherit_build_id: command.inherit_build_id,
        priority: command.priority.clone(),
        ..Default::default()
    };
    let initiated_event_id =
        draft.append(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(initiated));

    let parent_key = draft.ms.key.clone();
    let root = draft
        .ms
        .parent
        .as_ref()
        .map(|p| p.root.clone())
        .unwrap_or_else(|| parent_key.clone());
    let run_id = derived_id(&parent_key.run_id, initiated_event_id);
    let request = StartWorkflowExecutionRequest {
        namespace: namespace.clone(),
        workflow_id: command.workflow_id.clone(),
        workflow_type: command.workflow_type.clone(),
        task_queue: Some(task_queue),
        input: command.input.clone(),
        workflow_execution_timeout: duration_opt(timeouts.execution_ms),
        workflow_run_timeout: duration_opt(timeouts.run_ms),
        workflow_task_timeout: Some(duration(timeouts.task_ms)),
        request_id: run_id.clone(),
        workflow_id_reuse_policy: command.workflow_id_reuse_policy,
        retry_policy: command.retry_policy.clone(),
        memo,
        search_attributes: command.search_attributes.clone(),
        header: command.header.clone(),
        priority: command.priority.clone(),
        ..Default::default()
    };
    let message = StartChildMessage {
        request,
        run_id: run_id.clone(),
        parent: ParentInfo {
            execution: parent_key,
            initiated_event_id,
            root,
        },
        control: command.control.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
    };
    draft.ms.children.insert(
        initiated_event_id,
        ChildState {
            initiated_event_id,
            namespace,
            workflow_id: command.workflow_id.clone(),
            workflow_type,
            run_id,
            started: false,
            started_event_id: 0,
            parent_close_policy: policy as i32,
        },
    );
    draft.ms.outbox.insert(
        initiated_event_id,
        OutboxMessage::StartChild(Box::new(message)),
    );
    Ok(())
}
