//! RecordActivityTaskStarted: a poller takes a ready activity attempt. No event is written now;
//! ActivityTaskStarted is written when the attempt's outcome is final (as Temporal does for
//! retried activities), so the history holds one Started per activity.
//!
//! A retry of the same poll (same `poll_request_id`) gets the same task again; every other
//! mismatch answers NotFound "Activity task not found." and changes nothing.

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::command::{ActivityTaskInfo, ShardReply};
use crate::shard::mutable_state::{ActivityPhase, ActivityState, MutableState};
use crate::shard::task_token::ACTIVITY_TASK_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use crate::token::{TaskKind, TaskToken};

pub(crate) fn handle(
    txn: &mut Txn,
    execution: &ExecutionKey,
    scheduled_event_id: i64,
    identity: String,
    poll_request_id: String,
) -> Result<Committed, EngineError> {
    let not_found = || EngineError::NotFound(ACTIVITY_TASK_NOT_FOUND.into());
    let ms = txn
        .execution(execution)
        .filter(|ms| ms.is_running())
        .ok_or_else(not_found)?;
    let activity = ms
        .activities
        .get(&scheduled_event_id)
        .ok_or_else(not_found)?;
    match activity.phase {
        ActivityPhase::Ready => {}
        ActivityPhase::Started
            if !poll_request_id.is_empty() && activity.started_request_id == poll_request_id =>
        {
            return Ok(Ok(ShardReply::ActivityTaskStarted(Box::new(task_info(
                ms, activity,
            )))));
        }
        ActivityPhase::Started | ActivityPhase::Backoff => return Err(not_found()),
    }
    let draft = txn.draft(execution).ok_or_else(not_found)?;
    let now_ms = draft.now_ms;
    let mut activity = draft
        .ms
        .activities
        .remove(&scheduled_event_id)
        .ok_or_else(not_found)?;
    activity.phase = ActivityPhase::Started;
    activity.started_time_ms = now_ms;
    activity.started_identity = identity;
    activity.started_request_id = poll_request_id;
    activity.last_heartbeat_time_ms = 0;
    let info = task_info(&draft.ms, &activity);
    draft.ms.activities.insert(scheduled_event_id, activity);
    Ok(Ok(ShardReply::ActivityTaskStarted(Box::new(info))))
}

fn task_info(ms: &MutableState, activity: &ActivityState) -> ActivityTaskInfo {
    ActivityTaskInfo {
        token: TaskToken {
            kind: TaskKind::Activity,
            execution: ms.key.clone(),
            scheduled_event_id: activity.scheduled_event_id,
            started_event_id: 0,
            attempt: activity.attempt,
        },
        workflow_type: ms.workflow_type.clone(),
        activity_id: activity.activity_id.clone(),
        activity_type: activity.activity_type.clone(),
        header: activity.header.clone(),
        input: activity.input.clone(),
        heartbeat_details: activity.last_heartbeat_details.clone(),
        scheduled_time_ms: activity.scheduled_time_ms,
        current_attempt_scheduled_time_ms: activity.current_attempt_scheduled_time_ms,
        started_time_ms: activity.started_time_ms,
        attempt: activity.attempt,
        schedule_to_close_timeout_ms: activity.schedule_to_close_timeout_ms,
        start_to_close_timeout_ms: activity.start_to_close_timeout_ms,
        heartbeat_timeout_ms: activity.heartbeat_timeout_ms,
        retry_policy: Some(activity.retry_policy.clone()),
    }
}
