//! RequestCancelExternalWorkflowExecution → RequestCancelExternalWorkflowExecutionInitiated; the
//! request goes into the outbox (answered by ExternalWorkflowExecutionCancelRequested or
//! RequestCancelExternalWorkflowExecutionFailed — see `shard/ack_message.rs`).

#![allow(
    deprecated,
    reason = "`control` and the command `namespace` are deprecated in the protos but still sent and replayed"
)]

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::outbox::{CancelMessage, OutboxMessage, derived_id};
use temporalio_protos::temporal::api::{
    command::v1::RequestCancelExternalWorkflowExecutionCommandAttributes,
    common::v1::WorkflowExecution,
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{
        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes, history_event::Attributes,
    },
    workflowservice::v1::RequestCancelWorkflowExecutionRequest,
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &RequestCancelExternalWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let bad = |message: &str| {
        CommandRejection::new(
            Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
            message,
        )
    };
    if command.workflow_id.is_empty() {
        return Err(bad(
            "WorkflowId is not set on RequestCancelExternalWorkflowExecution command.",
        ));
    }
    if command.workflow_id.len() > ctx.limits.max_id_length {
        return Err(bad(
            "WorkflowId on RequestCancelExternalWorkflowExecution command exceeds length limit.",
        ));
    }
    let namespace = if command.namespace.is_empty() {
        draft.ms.key.namespace.clone()
    } else {
        command.namespace.clone()
    };
    let target = WorkflowExecution {
        workflow_id: command.workflow_id.clone(),
        run_id: command.run_id.clone(),
    };
    let initiated = RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
        workflow_task_completed_event_id: ctx.completed_event_id,
        namespace: namespace.clone(),
        workflow_execution: Some(target.clone()),
        control: command.control.clone(),
        child_workflow_only: command.child_workflow_only,
        reason: command.reason.clone(),
        ..Default::default()
    };
    let initiated_event_id = draft.append(
        Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(initiated),
    );
    let source = &draft.ms.key;
    let request = RequestCancelWorkflowExecutionRequest {
        namespace,
        workflow_execution: Some(target),
        identity: crate::shard::outbox::HISTORY_SERVICE_IDENTITY.into(),
        request_id: derived_id(&source.run_id, initiated_event_id),
        reason: command.reason.clone(),
        ..Default::default()
    };
    let message = CancelMessage {
        request,
        initiator: WorkflowExecution {
            workflow_id: source.workflow_id.clone(),
            run_id: source.run_id.clone(),
        },
        initiated_event_id,
        control: command.control.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
    };
    draft
        .ms
        .outbox
        .insert(initiated_event_id, OutboxMessage::Cancel(Box::new(message)));
    Ok(())
}
