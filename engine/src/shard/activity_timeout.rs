//! Activity timer-index entries: the end of a retry back-off (the attempt becomes ready), and the
//! four timeouts. Start-to-close and heartbeat timeouts are retried like failures carrying a
//! TimeoutFailure; schedule-to-start and schedule-to-close timeouts are final (RETRY_STATE_TIMEOUT).

use crate::shard::activity_outcome;
use crate::shard::draft::Draft;
use crate::shard::mutable_state::{ActivityPhase, ActivityState};
use crate::shard::retry::{RetryDecision, decide};
use temporalio_protos::temporal::api::{
    enums::v1::{RetryState, TimeoutType},
    failure::v1::{Failure, TimeoutFailureInfo, failure::FailureInfo},
    history::v1::{ActivityTaskTimedOutEventAttributes, history_event::Attributes},
};

/// The back-off of attempt `attempt` elapsed: the activity is ready for dispatch again.
pub(crate) fn backoff_elapsed(draft: &mut Draft, scheduled_event_id: i64, attempt: i32) -> bool {
    let now_ms = draft.now_ms;
    match draft.ms.activities.get_mut(&scheduled_event_id) {
        Some(activity)
            if activity.phase == ActivityPhase::Backoff
                && activity.attempt == attempt
                && activity.current_attempt_scheduled_time_ms <= now_ms =>
        {
            activity.phase = ActivityPhase::Ready;
            true
        }
        _ => false,
    }
}

/// An activity timeout entry fired. Returns whether it took effect.
pub(crate) fn fire(
    draft: &mut Draft,
    scheduled_event_id: i64,
    attempt: i32,
    timeout_type: TimeoutType,
) -> bool {
    let now_ms = draft.now_ms;
    let Some(activity) = draft.ms.activities.get(&scheduled_event_id) else {
        return false;
    };
    if deadline_ms(activity, attempt, timeout_type).is_none_or(|deadline| deadline > now_ms) {
        return false;
    }
    let failure = timeout_failure(activity, timeout_type);
    let decision = match timeout_type {
        TimeoutType::StartToClose | TimeoutType::Heartbeat => decide(activity, &failure, now_ms),
        _ => RetryDecision::Final(RetryState::Timeout),
    };
    match decision {
        RetryDecision::Retry { backoff_ms } => {
            activity_outcome::retry(draft, scheduled_event_id, backoff_ms, failure, None);
        }
        RetryDecision::Final(retry_state) => {
            let mut failure = failure;
            failure.cause = activity.last_failure.clone().map(Box::new);
            activity_outcome::finish(draft, scheduled_event_id, |started_event_id| {
                Attributes::ActivityTaskTimedOutEventAttributes(
                    ActivityTaskTimedOutEventAttributes {
                        failure: Some(failure),
                        scheduled_event_id,
                        started_event_id,
                        retry_state: retry_state as i32,
                    },
                )
            });
        }
    }
    true
}

/// When the timeout is due for the activity's current state, or `None` if it does not apply
/// (wrong phase or attempt: the entry is obsolete).
fn deadline_ms(activity: &ActivityState, attempt: i32, timeout_type: TimeoutType) -> Option<i64> {
    let current = activity.attempt == attempt;
    let positive = |ms: i64| (ms > 0).then_some(ms);
    match timeout_type {
        TimeoutType::ScheduleToStart if current && activity.phase == ActivityPhase::Ready => {
            positive(activity.schedule_to_start_timeout_ms)
                .map(|t| activity.current_attempt_scheduled_time_ms + t)
        }
        TimeoutType::StartToClose if current && activity.phase == ActivityPhase::Started => {
            positive(activity.start_to_close_timeout_ms).map(|t| activity.started_time_ms + t)
        }
        TimeoutType::Heartbeat if current && activity.phase == ActivityPhase::Started => {
            let last_beat = activity
                .started_time_ms
                .max(activity.last_heartbeat_time_ms);
            positive(activity.heartbeat_timeout_ms).map(|t| last_beat + t)
        }
        TimeoutType::ScheduleToClose => {
            positive(activity.schedule_to_close_timeout_ms).map(|t| activity.scheduled_time_ms + t)
        }
        _ => None,
    }
}

/// The TimeoutFailure of an attempt: "activity StartToClose timeout" with the last heartbeat
/// details, as Temporal writes it.
fn timeout_failure(activity: &ActivityState, timeout_type: TimeoutType) -> Failure {
    let name = match timeout_type {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    };
    Failure {
        message: format!("activity {name} timeout"),
        source: String::new(),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: timeout_type as i32,
            last_heartbeat_details: activity.last_heartbeat_details.clone(),
        })),
        ..Default::default()
    }
}
