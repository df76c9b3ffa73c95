//! `ReceiveMessage`: the target side of an outbox delivery. Every message is applied idempotently
//! (see `docs/design/003-cross-shard-outbox.md`): delivering the same message again changes
//! nothing and replies the same outcome, so at-least-once delivery has exactly-once effects.
//! Receiving never fails the command: whatever the target says is a [`DeliveryOutcome`] for the
//! source to record.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::draft::Draft;
use crate::shard::outbox::{
    CancelMessage, ChildClosedMessage, DeliveryOutcome, HISTORY_SERVICE_IDENTITY, OutboxMessage,
    PARENT_CLOSE_POLICY_REASON, PolicyMessage, SignalMessage, StartChildMessage,
};
use crate::shard::txn::{Committed, Txn};
use crate::shard::{request_cancel_workflow, signal_workflow, start_workflow};
use temporalio_protos::temporal::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{ParentClosePolicy, WorkflowExecutionStatus},
    history::v1::{
        ChildWorkflowExecutionCanceledEventAttributes,
        ChildWorkflowExecutionCompletedEventAttributes,
        ChildWorkflowExecutionFailedEventAttributes, ChildWorkflowExecutionStartedEventAttributes,
        ChildWorkflowExecutionTerminatedEventAttributes,
        ChildWorkflowExecutionTimedOutEventAttributes, WorkflowExecutionTerminatedEventAttributes,
        history_event::Attributes,
    },
};

pub(crate) fn handle(
    txn: &mut Txn,
    source: &ExecutionKey,
    message: OutboxMessage,
) -> Result<Committed, EngineError> {
    let outcome = match message {
        OutboxMessage::StartChild(m) => start_child(txn, *m),
        OutboxMessage::Signal(m) => signal(txn, *m),
        OutboxMessage::Cancel(m) => cancel(txn, *m),
        OutboxMessage::ChildClosed(m) => child_closed(txn, source, *m),
        OutboxMessage::ParentClosePolicy(m) => parent_close_policy(txn, *m),
    };
    Ok(Ok(ShardReply::Delivered(outcome)))
}

/// Starts the child with its derived run ID; that run existing already means an earlier
/// delivery started it.
fn start_child(txn: &mut Txn, message: StartChildMessage) -> DeliveryOutcome {
    let key = ExecutionKey {
        namespace: message.request.namespace.clone(),
        workflow_id: message.request.workflow_id.clone(),
        run_id: message.run_id.clone(),
    };
    if txn.execution(&key).is_some() {
        return DeliveryOutcome::ChildStarted {
            run_id: message.run_id,
        };
    }
    match start_workflow::start(
        txn,
        message.request,
        message.run_id,
        None,
        Some(message.parent),
    ) {
        Ok(Ok(ShardReply::WorkflowStarted { run_id, .. })) => {
            DeliveryOutcome::ChildStarted { run_id }
        }
        Err(EngineError::AlreadyStarted { .. }) => DeliveryOutcome::AlreadyExists,
        Ok(Ok(other)) => DeliveryOutcome::Failed {
            message: format!("unexpected start reply {other:?}"),
        },
        Ok(Err(e)) | Err(e) => DeliveryOutcome::Failed {
            message: e.to_string(),
        },
    }
}

/// Signals the target unless it already got this request ID — checked before whether it is
/// running, so a redelivery to a target that closed since reports the first delivery.
fn signal(txn: &mut Txn, message: SignalMessage) -> DeliveryOutcome {
    let request = message.request;
    if let Some(key) = resolve(txn, &request.namespace, request.workflow_execution.as_ref())
        && txn
            .execution(&key)
            .is_some_and(|ms| ms.signal_request_ids.contains(&request.request_id))
    {
        return DeliveryOutcome::Delivered;
    }
    match signal_workflow::signal_execution(txn, request, Some(message.initiator)) {
        Ok(Ok(_)) => DeliveryOutcome::Delivered,
        Err(EngineError::NotFound(_)) => DeliveryOutcome::NotFound,
        Ok(Err(e)) | Err(e) => DeliveryOutcome::Failed {
            message: e.to_string(),
        },
    }
}

fn cancel(txn: &mut Txn, message: CancelMessage) -> DeliveryOutcome {
    let initiator = request_cancel_workflow::ExternalInitiator {
        initiated_event_id: message.initiated_event_id,
        execution: Some(message.initiator),
    };
    match request_cancel_workflow::handle(txn, message.request, initiator) {
        Ok(Ok(_)) => DeliveryOutcome::Delivered,
        Err(EngineError::NotFound(_)) => DeliveryOutcome::NotFound,
        Ok(Err(e)) | Err(e) => DeliveryOutcome::Failed {
            message: e.to_string(),
        },
    }
}

/// The parent records the child's close if it still waits for that child (and, if the child's
/// start was not acknowledged yet, ChildWorkflowExecutionStarted first).
fn child_closed(
    txn: &mut Txn,
    child: &ExecutionKey,
    message: ChildClosedMessage,
) -> DeliveryOutcome {
    let initiated_event_id = message.parent.initiated_event_id;
    let Some(draft) = txn.draft(&message.parent.execution) else {
        return DeliveryOutcome::Delivered;
    };
    if !draft.ms.is_running() {
        return DeliveryOutcome::Delivered;
    }
    let Some(state) = draft.ms.children.remove(&initiated_event_id) else {
        return DeliveryOutcome::Delivered;
    };
    let namespace = state.namespace.clone();
    let workflow_execution = Some(WorkflowExecution {
        workflow_id: child.workflow_id.clone(),
        run_id: child.run_id.clone(),
    });
    let workflow_type = Some(WorkflowType {
        name: message.workflow_type.clone(),
    });
    let mut started_event_id = state.started_event_id;
    if !state.started {
        if matches!(
            draft.ms.outbox.get(&initiated_event_id),
            Some(OutboxMessage::StartChild(_))
        ) {
            draft.ms.outbox.remove(&initiated_event_id);
        }
        started_event_id = record_child_started(
            draft,
            initiated_event_id,
            &namespace,
            child,
            &message.workflow_type,
            None,
        );
    }
    let attributes = match message.close_event.attributes {
        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                ChildWorkflowExecutionCompletedEventAttributes {
                    result: a.result,
                    namespace,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            )
        }
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
            Attributes::ChildWorkflowExecutionFailedEventAttributes(
                ChildWorkflowExecutionFailedEventAttributes {
                    failure: a.failure,
                    namespace,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: a.retry_state,
                    ..Default::default()
                },
            )
        }
        Some(Attributes::WorkflowExecutionCanceledEventAttributes(a)) => {
            Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                ChildWorkflowExecutionCanceledEventAttributes {
                    details: a.details,
                    namespace,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            )
        }
        Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
            Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                ChildWorkflowExecutionTimedOutEventAttributes {
                    namespace,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: a.retry_state,
                    ..Default::default()
                },
            )
        }
        _ => Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
            ChildWorkflowExecutionTerminatedEventAttributes {
                namespace,
                workflow_execution,
                workflow_type,
                initiated_event_id,
                started_event_id,
                ..Default::default()
            },
        ),
    };
    draft.record(attributes);
    draft.schedule_workflow_task_if_none();
    DeliveryOutcome::Delivered
}

/// Records ChildWorkflowExecutionStarted (buffered during a started workflow task) and marks the
/// child started. Returns the event's ID, 0 while it is buffered.
pub(crate) fn record_child_started(
    draft: &mut Draft,
    initiated_event_id: i64,
    namespace: &str,
    child: &ExecutionKey,
    workflow_type: &str,
    header: Option<temporalio_protos::temporal::api::common::v1::Header>,
) -> i64 {
    let attributes = ChildWorkflowExecutionStartedEventAttributes {
        namespace: namespace.to_string(),
        initiated_event_id,
        workflow_execution: Some(WorkflowExecution {
            workflow_id: child.workflow_id.clone(),
            run_id: child.run_id.clone(),
        }),
        workflow_type: Some(WorkflowType {
            name: workflow_type.to_string(),
        }),
        header,
        ..Default::default()
    };
    let id = draft
        .record(Attributes::ChildWorkflowExecutionStartedEventAttributes(
            attributes,
        ))
        .unwrap_or(0);
    if let Some(state) = draft.ms.children.get_mut(&initiated_event_id) {
        state.started = true;
        state.started_event_id = id;
    }
    id
}

/// TERMINATE closes the child's run if it still runs; REQUEST_CANCEL asks it to cancel. Both are
/// no-ops on a run that is closed or does not exist (a start that was never delivered).
fn parent_close_policy(txn: &mut Txn, message: PolicyMessage) -> DeliveryOutcome {
    match ParentClosePolicy::try_from(message.policy) {
        Ok(ParentClosePolicy::Terminate) => {
            if let Some(draft) = txn.draft(&message.child)
                && draft.ms.is_running()
            {
                draft.close(
                    WorkflowExecutionStatus::Terminated,
                    Attributes::WorkflowExecutionTerminatedEventAttributes(
                        WorkflowExecutionTerminatedEventAttributes {
                            reason: PARENT_CLOSE_POLICY_REASON.into(),
                            details: None,
                            identity: HISTORY_SERVICE_IDENTITY.into(),
                        },
                    ),
                );
            }
            DeliveryOutcome::Delivered
        }
        Ok(ParentClosePolicy::RequestCancel) => {
            if txn.execution(&message.child).is_none() {
                return DeliveryOutcome::Delivered;
            }
            let request = temporalio_protos::temporal::api::workflowservice::v1::RequestCancelWorkflowExecutionRequest {
                namespace: message.child.namespace.clone(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: message.child.workflow_id.clone(),
                    run_id: message.child.run_id.clone(),
                }),
                identity: HISTORY_SERVICE_IDENTITY.into(),
                ..Default::default()
            };
            let initiator = request_cancel_workflow::ExternalInitiator {
                initiated_event_id: message.initiated_event_id,
                execution: Some(message.parent),
            };
            match request_cancel_workflow::handle(txn, request, initiator) {
                Ok(Ok(_)) | Err(EngineError::NotFound(_)) => DeliveryOutcome::Delivered,
                Ok(Err(e)) | Err(e) => DeliveryOutcome::Failed {
                    message: e.to_string(),
                },
            }
        }
        _ => DeliveryOutcome::Delivered,
    }
}

/// The execution a namespace + (workflow ID, optional run ID) names, open or closed.
fn resolve(
    txn: &Txn,
    namespace: &str,
    execution: Option<&WorkflowExecution>,
) -> Option<ExecutionKey> {
    let execution = execution?;
    let run_id = if execution.run_id.is_empty() {
        let workflow = WorkflowKey {
            namespace: namespace.to_string(),
            workflow_id: execution.workflow_id.clone(),
        };
        txn.current_run(&workflow)?.run_id.clone()
    } else {
        execution.run_id.clone()
    };
    Some(ExecutionKey {
        namespace: namespace.to_string(),
        workflow_id: execution.workflow_id.clone(),
        run_id,
    })
}
