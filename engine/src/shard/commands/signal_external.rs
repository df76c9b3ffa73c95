//! SignalExternalWorkflowExecution → SignalExternalWorkflowExecutionInitiated; the signal goes
//! into the outbox with a request ID derived from this run and the initiated event, which the
//! target deduplicates (answered by ExternalWorkflowExecutionSignaled or
//! SignalExternalWorkflowExecutionFailed — see `shard/ack_message.rs`).

#![allow(
    deprecated,
    reason = "`control` and the command `namespace` are deprecated in the protos but still sent and replayed"
)]

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::outbox::{HISTORY_SERVICE_IDENTITY, OutboxMessage, SignalMessage, derived_id};
use temporalio_protos::temporal::api::{
    command::v1::SignalExternalWorkflowExecutionCommandAttributes,
    common::v1::WorkflowExecution,
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{
        SignalExternalWorkflowExecutionInitiatedEventAttributes, history_event::Attributes,
    },
    workflowservice::v1::SignalWorkflowExecutionRequest,
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &SignalExternalWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let bad =
        |message: &str| CommandRejection::new(Cause::BadSignalWorkflowExecutionAttributes, message);
    let target = command.execution.clone().unwrap_or_default();
    if target.workflow_id.is_empty() {
        return Err(bad(
            "WorkflowId is not set on SignalExternalWorkflowExecution command.",
        ));
    }
    if target.workflow_id.len() > ctx.limits.max_id_length {
        return Err(bad(
            "WorkflowId on SignalExternalWorkflowExecution command exceeds length limit.",
        ));
    }
    if command.signal_name.is_empty() {
        return Err(bad(
            "SignalName is not set on SignalExternalWorkflowExecution command.",
        ));
    }
    let namespace = if command.namespace.is_empty() {
        draft.ms.key.namespace.clone()
    } else {
        command.namespace.clone()
    };
    let initiated = SignalExternalWorkflowExecutionInitiatedEventAttributes {
        workflow_task_completed_event_id: ctx.completed_event_id,
        namespace: namespace.clone(),
        workflow_execution: Some(target.clone()),
        signal_name: command.signal_name.clone(),
        input: command.input.clone(),
        control: command.control.clone(),
        child_workflow_only: command.child_workflow_only,
        header: command.header.clone(),
        ..Default::default()
    };
    let initiated_event_id = draft
        .append(Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(initiated));
    let source = &draft.ms.key;
    let request = SignalWorkflowExecutionRequest {
        namespace,
        workflow_execution: Some(target),
        signal_name: command.signal_name.clone(),
        input: command.input.clone(),
        request_id: derived_id(&source.run_id, initiated_event_id),
        identity: HISTORY_SERVICE_IDENTITY.into(),
        control: command.control.clone(),
        header: command.header.clone(),
        ..Default::default()
    };
    let message = SignalMessage {
        request,
        initiator: WorkflowExecution {
            workflow_id: source.workflow_id.clone(),
            run_id: source.run_id.clone(),
        },
        workflow_task_completed_event_id: ctx.completed_event_id,
    };
    draft
        .ms
        .outbox
        .insert(initiated_event_id, OutboxMessage::Signal(Box::new(message)));
    Ok(())
}
