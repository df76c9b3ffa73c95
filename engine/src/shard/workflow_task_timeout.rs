//! A started workflow task passed its start-to-close timeout (its worker died or stalled):
//! WorkflowTaskTimedOut{START_TO_CLOSE}, the buffered events, and the next attempt — so the task
//! is redelivered. Core never reports failures of attempts > 1, so this is what retries them.

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
