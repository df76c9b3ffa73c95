//! Workflow task timeouts.
//!
//! * A started workflow task passed its start-to-close timeout (its worker died or stalled):
//!   WorkflowTaskTimedOut{START_TO_CLOSE}, the buffered events, and the next attempt — so the
//!   task is redelivered. Core never reports failures of attempts > 1, so this is what retries
//!   them.
//! * A task waited on its sticky queue longer than the sticky schedule-to-start timeout (the
//!   sticky worker is gone): WorkflowTaskTimedOut{SCHEDULE_TO_START, started_event_id 0} and the
//!   same attempt again on the normal queue, as Temporal does.
//!
//!   A speculative task (an update's) has no written events: it just moves to the normal queue.
//!
//! Both end the run's stickiness.

use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    enums::v1::TimeoutType,
    history::v1::{WorkflowTaskTimedOutEventAttributes, history_event::Attributes},
};

/// Returns whether the entry took effect (false if it is obsolete or not yet due).
pub(crate) fn fire(draft: &mut Draft, scheduled_event_id: i64, attempt: i32) -> bool {
    let due = draft.ms.started_workflow_task().is_some_and(|wft| {
        wft.scheduled_event_id == scheduled_event_id
            && wft.attempt == attempt
            && wft.started_time_ms.saturating_add(wft.timeout_ms) <= draft.now_ms
    });
    if !due {
        return false;
    }
    draft.materialize_speculative_task();
    let Some(wft) = draft.ms.workflow_task.take() else {
        return false;
    };
    draft.ms.clear_sticky();
    draft.append(Attributes::WorkflowTaskTimedOutEventAttributes(
        WorkflowTaskTimedOutEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id: wft.started_event_id,
            timeout_type: TimeoutType::StartToClose as i32,
        },
    ));
    draft.flush_buffer();
    draft.schedule_workflow_task(wft.attempt + 1);
    true
}

/// The sticky schedule-to-start timeout of a scheduled task fired. Returns whether it took effect.
pub(crate) fn fire_sticky_schedule_to_start(
    draft: &mut Draft,
    scheduled_event_id: i64,
    attempt: i32,
) -> bool {
    let due = draft.ms.workflow_task.as_ref().is_some_and(|wft| {
        !wft.is_started()
            && wft.is_sticky()
            && wft.scheduled_event_id == scheduled_event_id
            && wft.attempt == attempt
            && wft
                .scheduled_time_ms
                .saturating_add(wft.sticky_schedule_to_start_timeout_ms)
                <= draft.now_ms
    });
    if !due {
        return false;
    }
    draft.ms.clear_sticky();
    // A speculative task has no written events to time out: it just moves to the normal queue.
    if let Some(wft) = draft.ms.workflow_task.as_mut().filter(|w| w.speculative) {
        wft.sticky_task_queue.clear();
        wft.sticky_schedule_to_start_timeout_ms = 0;
        return true;
    }
    let Some(wft) = draft.ms.workflow_task.take() else {
        return false;
    };
    draft.append(Attributes::WorkflowTaskTimedOutEventAttributes(
        WorkflowTaskTimedOutEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id: 0,
            timeout_type: TimeoutType::ScheduleToStart as i32,
        },
    ));
    draft.schedule_workflow_task(wft.attempt);
    true
}
