//! `AckMessage`: the source side of an outbox delivery. The target applied the message and said
//! what happened; the entry leaves the outbox and, if the run is still open, the result becomes
//! an event (then WFT+). An ack for an entry that is gone, or that now holds another kind of
//! message (a parent-close policy replaced an undelivered start), changes nothing.

#![allow(
    deprecated,
    reason = "`control` and the command `namespace` are deprecated in the protos but still sent and replayed"
)]

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::command::ShardReply;
use crate::shard::draft::Draft;
use crate::shard::outbox::{
    CancelMessage, DeliveryOutcome, OutboxKind, OutboxMessage, SignalMessage, StartChildMessage,
};
use crate::shard::receive_message::record_child_started;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    enums::v1::{
        CancelExternalWorkflowExecutionFailedCause, SignalExternalWorkflowExecutionFailedCause,
        StartChildWorkflowExecutionFailedCause,
    },
    history::v1::{
        ExternalWorkflowExecutionCancelRequestedEventAttributes,
        ExternalWorkflowExecutionSignaledEventAttributes,
        RequestCancelExternalWorkflowExecutionFailedEventAttributes,
        SignalExternalWorkflowExecutionFailedEventAttributes,
        StartChildWorkflowExecutionFailedEventAttributes, history_event::Attributes,
    },
};

pub(crate) fn handle(
    txn: &mut Txn,
    execution: &ExecutionKey,
    outbox_id: i64,
    kind: OutboxKind,
    outcome: DeliveryOutcome,
) -> Result<Committed, EngineError> {
    let Some(draft) = txn.draft(execution) else {
        return Ok(Ok(ShardReply::Done));
    };
    if draft.ms.outbox.get(&outbox_id).map(OutboxMessage::kind) != Some(kind) {
        return Ok(Ok(ShardReply::Done));
    }
    let Some(message) = draft.ms.outbox.remove(&outbox_id) else {
        return Ok(Ok(ShardReply::Done));
    };
    if !draft.ms.is_running() {
        return Ok(Ok(ShardReply::Done));
    }
    let recorded = match message {
        OutboxMessage::StartChild(m) => child_start_result(draft, outbox_id, *m, outcome),
        OutboxMessage::Signal(m) => signal_result(draft, outbox_id, *m, outcome),
        OutboxMessage::Cancel(m) => cancel_result(draft, outbox_id, *m, outcome),
        OutboxMessage::ChildClosed(_) | OutboxMessage::ParentClosePolicy(_) => false,
    };
    if recorded {
        draft.schedule_workflow_task_if_none();
    }
    Ok(Ok(ShardReply::Done))
}

/// ChildWorkflowExecutionStarted, or StartChildWorkflowExecutionFailed (the child is no longer
/// pending). Nothing if the parent no longer waits for this start (the child's close came first).
fn child_start_result(
    draft: &mut Draft,
    initiated_event_id: i64,
    message: StartChildMessage,
    outcome: DeliveryOutcome,
) -> bool {
    let Some(child) = draft.ms.children.get(&initiated_event_id).cloned() else {
        return false;
    };
    if child.started {
        return false;
    }
    let cause = match outcome {
        DeliveryOutcome::ChildStarted { run_id } => {
            let key = ExecutionKey {
                namespace: child.namespace.clone(),
                workflow_id: child.workflow_id.clone(),
                run_id,
            };
            record_child_started(
                draft,
                initiated_event_id,
                &child.namespace,
                &key,
                &child.workflow_type,
                message.request.header,
            );
            return true;
        }
        DeliveryOutcome::AlreadyExists => {
            StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists
        }
        DeliveryOutcome::NotFound => StartChildWorkflowExecutionFailedCause::NamespaceNotFound,
        DeliveryOutcome::Delivered | DeliveryOutcome::Failed { .. } => {
            StartChildWorkflowExecutionFailedCause::Unspecified
        }
    };
    draft.ms.children.remove(&initiated_event_id);
    draft.record(
        Attributes::StartChildWorkflowExecutionFailedEventAttributes(
            StartChildWorkflowExecutionFailedEventAttributes {
                namespace: child.namespace,
                workflow_id: child.workflow_id,
                workflow_type: message.request.workflow_type,
                cause: cause as i32,
                control: message.control,
                initiated_event_id,
                workflow_task_completed_event_id: message.workflow_task_completed_event_id,
                ..Default::default()
            },
        ),
    );
    true
}

fn signal_result(
    draft: &mut Draft,
    initiated_event_id: i64,
    message: SignalMessage,
    outcome: DeliveryOutcome,
) -> bool {
    let request = message.request;
    let attributes = match outcome {
        DeliveryOutcome::Delivered => Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
            ExternalWorkflowExecutionSignaledEventAttributes {
                initiated_event_id,
                namespace: request.namespace,
                workflow_execution: request.workflow_execution,
                control: request.control,
                ..Default::default()
            },
        ),
        _ => Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
            SignalExternalWorkflowExecutionFailedEventAttributes {
                cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                    as i32,
                workflow_task_completed_event_id: message.workflow_task_completed_event_id,
                namespace: request.namespace,
                workflow_execution: request.workflow_execution,
                initiated_event_id,
                control: request.control,
                ..Default::default()
            },
        ),
    };
    draft.record(attributes);
    true
}

fn cancel_result(
    draft: &mut Draft,
    initiated_event_id: i64,
    message: CancelMessage,
    outcome: DeliveryOutcome,
) -> bool {
    let request = message.request;
    let workflow_execution: Option<WorkflowExecution> = request.workflow_execution;
    let attributes = match outcome {
        DeliveryOutcome::Delivered => {
            Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                ExternalWorkflowExecutionCancelRequestedEventAttributes {
                    initiated_event_id,
                    namespace: request.namespace,
                    workflow_execution,
                    ..Default::default()
                },
            )
        }
        _ => Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
            RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                    as i32,
                workflow_task_completed_event_id: message.workflow_task_completed_event_id,
                namespace: request.namespace,
                workflow_execution,
                initiated_event_id,
                control: message.control,
                ..Default::default()
            },
        ),
    };
    draft.record(attributes);
    true
}
