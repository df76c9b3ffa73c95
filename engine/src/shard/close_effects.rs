//! What a run's close sends to other executions, recorded in its outbox in the same apply as the
//! close event: the parent-close policy of every pending child, and — for a child workflow whose
//! chain ends here — the report of its close to the parent.

use crate::ids::ExecutionKey;
use crate::shard::draft::Draft;
use crate::shard::outbox::{ChildClosedMessage, OutboxMessage, PolicyMessage};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution, enums::v1::ParentClosePolicy,
    history::v1::history_event::Attributes,
};

/// Called by [`Draft::close`] right after the close event `close_event_id` was appended.
pub(crate) fn on_close(draft: &mut Draft, close_event_id: i64) {
    apply_parent_close_policies(draft);
    report_to_parent(draft, close_event_id);
}

/// Every pending child gets its policy: TERMINATE and REQUEST_CANCEL become outbox messages under
/// the child's initiated event ID (replacing a start that was not delivered yet, so a child that
/// was never started stays unstarted); ABANDON leaves the child, and an undelivered start, alone.
fn apply_parent_close_policies(draft: &mut Draft) {
    let children = std::mem::take(&mut draft.ms.children);
    let parent = WorkflowExecution {
        workflow_id: draft.ms.key.workflow_id.clone(),
        run_id: draft.ms.key.run_id.clone(),
    };
    for (initiated_event_id, child) in children {
        let policy = ParentClosePolicy::try_from(child.parent_close_policy)
            .unwrap_or(ParentClosePolicy::Terminate);
        if !matches!(
            policy,
            ParentClosePolicy::Terminate | ParentClosePolicy::RequestCancel
        ) {
            continue;
        }
        let message = PolicyMessage {
            child: ExecutionKey {
                namespace: child.namespace,
                workflow_id: child.workflow_id,
                run_id: child.run_id,
            },
            policy: policy as i32,
            parent: parent.clone(),
            initiated_event_id,
        };
        draft.ms.outbox.insert(
            initiated_event_id,
            OutboxMessage::ParentClosePolicy(Box::new(message)),
        );
    }
}

/// A child run reports its close to the parent, unless the chain goes on in a new run
/// (continue-as-new, a workflow retry or a cron run): then the last run of the chain reports.
fn report_to_parent(draft: &mut Draft, close_event_id: i64) {
    let Some(parent) = draft.ms.parent.clone() else {
        return;
    };
    let Some(close_event) = draft.events.last().cloned() else {
        return;
    };
    let continues = match &close_event.attributes {
        Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_)) => true,
        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
            !a.new_execution_run_id.is_empty()
        }
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
            !a.new_execution_run_id.is_empty()
        }
        Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
            !a.new_execution_run_id.is_empty()
        }
        _ => false,
    };
    if continues {
        return;
    }
    let message = ChildClosedMessage {
        parent,
        workflow_type: draft.ms.workflow_type.clone(),
        close_event,
    };
    draft.ms.outbox.insert(
        close_event_id,
        OutboxMessage::ChildClosed(Box::new(message)),
    );
}
