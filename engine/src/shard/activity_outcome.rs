//! The two ways an activity attempt ends: it is retried (no event), or the activity ends with
//! ActivityTaskStarted (if the attempt was started) plus its terminal event, then WFT+.

use crate::shard::draft::Draft;
use crate::shard::mutable_state::ActivityPhase;
use temporalio_protos::temporal::api::{
    common::v1::Payloads,
    failure::v1::Failure,
    history::v1::{ActivityTaskStartedEventAttributes, history_event::Attributes},
};

/// Ends the activity scheduled at `scheduled_event_id`: writes ActivityTaskStarted for a started
/// attempt, then the event `terminal(started_event_id)` builds, removes the activity and
/// schedules a workflow task unless one is pending. While a workflow task is started both
/// events are buffered; the terminal event then gets `started_event_id` 0, which the flush
/// replaces with the Started event's final ID.
pub(crate) fn finish(
    draft: &mut Draft,
    scheduled_event_id: i64,
    terminal: impl FnOnce(i64) -> Attributes,
) {
    let Some(activity) = draft.ms.activities.remove(&scheduled_event_id) else {
        return;
    };
    let mut started_event_id = 0;
    if activity.phase == ActivityPhase::Started {
        let started = ActivityTaskStartedEventAttributes {
            scheduled_event_id,
            identity: activity.started_identity,
            request_id: activity.started_request_id,
            attempt: activity.attempt,
            last_failure: activity.last_failure,
            ..Default::default()
        };
        started_event_id = draft
            .record(Attributes::ActivityTaskStartedEventAttributes(started))
            .unwrap_or(0);
    }
    draft.record(terminal(started_event_id));
    draft.schedule_workflow_task_if_none();
}

/// Schedules the next attempt after `backoff_ms`: attempt + 1, the failure kept as the last
/// failure, the last heartbeat details kept (or replaced when new ones are given). No event.
pub(crate) fn retry(
    draft: &mut Draft,
    scheduled_event_id: i64,
    backoff_ms: i64,
    failure: Failure,
    heartbeat_details: Option<Payloads>,
) {
    let now_ms = draft.now_ms;
    let Some(activity) = draft.ms.activities.get_mut(&scheduled_event_id) else {
        return;
    };
    activity.attempt += 1;
    activity.current_attempt_scheduled_time_ms = now_ms.saturating_add(backoff_ms);
    activity.phase = if backoff_ms > 0 {
        ActivityPhase::Backoff
    } else {
        ActivityPhase::Ready
    };
    activity.started_time_ms = 0;
    activity.started_identity.clear();
    activity.started_request_id.clear();
    activity.last_heartbeat_time_ms = 0;
    activity.last_failure = Some(failure);
    if heartbeat_details.is_some() {
        activity.last_heartbeat_details = heartbeat_details;
    }
}
