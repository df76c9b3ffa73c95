//! ScheduleActivityTask → ActivityTaskScheduled, with Temporal's timeout deduction and retry
//! policy defaults written into the event; the activity becomes ready for dispatch.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::mutable_state::{ActivityPhase, ActivityState};
use crate::shard::retry::effective_policy;
use crate::shard::time::{duration_ms, duration_opt};
use temporalio_protos::temporal::api::{
    command::v1::ScheduleActivityTaskCommandAttributes,
    enums::v1::{TaskQueueKind, WorkflowTaskFailedCause as Cause},
    history::v1::{ActivityTaskScheduledEventAttributes, history_event::Attributes},
    taskqueue::v1::TaskQueue,
};

/// The four activity timeouts in milliseconds, 0 = none.
struct ActivityTimeouts {
    schedule_to_close_ms: i64,
    schedule_to_start_ms: i64,
    start_to_close_ms: i64,
    heartbeat_ms: i64,
}

pub(super) fn apply(
    draft: &mut Draft,
    command: &ScheduleActivityTaskCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let bad = |message: &str| CommandRejection::new(Cause::BadScheduleActivityAttributes, message);
    let max_len = ctx.limits.max_id_length;
    let activity_id = &command.activity_id;
    if activity_id.is_empty() {
        return Err(bad(
            "ActivityId is not set on ScheduleActivityTask command.",
        ));
    }
    if activity_id.len() > max_len {
        return Err(bad("ActivityId exceeds length limit."));
    }
    let activity_type = command
        .activity_type
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    if activity_type.is_empty() {
        return Err(bad(
            "ActivityType is not set on ScheduleActivityTask command.",
        ));
    }
    if activity_type.len() > max_len {
        return Err(bad("ActivityType exceeds length limit."));
    }
    let task_queue = match command.task_queue.as_ref().map(|q| q.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => draft.ms.task_queue.clone(),
    };
    if task_queue.len() > max_len {
        return Err(bad("TaskQueue exceeds length limit."));
    }
    if draft
        .ms
        .activities
        .values()
        .any(|a| &a.activity_id == activity_id)
    {
        return Err(CommandRejection::new(
            Cause::ScheduleActivityDuplicateId,
            format!("Activity with ID {activity_id} is already pending."),
        ));
    }
    let timeouts =
        deduce_timeouts(command, draft.ms.workflow_run_timeout_ms).map_err(|m| bad(&m))?;
    let retry_policy = effective_policy(command.retry_policy.as_ref()).map_err(|m| bad(&m))?;

    let attributes = ActivityTaskScheduledEventAttributes {
        activity_id: activity_id.clone(),
        activity_type: command.activity_type.clone(),
        task_queue: Some(TaskQueue {
            name: task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        header: command.header.clone(),
        input: command.input.clone(),
        schedule_to_close_timeout: duration_opt(timeouts.schedule_to_close_ms),
        schedule_to_start_timeout: duration_opt(timeouts.schedule_to_start_ms),
        start_to_close_timeout: duration_opt(timeouts.start_to_close_ms),
        heartbeat_timeout: duration_opt(timeouts.heartbeat_ms),
        workflow_task_completed_event_id: ctx.completed_event_id,
        retry_policy: Some(retry_policy.clone()),
        priority: command.priority.clone(),
        ..Default::default()
    };
    let scheduled_event_id =
        draft.append(Attributes::ActivityTaskScheduledEventAttributes(attributes));
    let now_ms = draft.now_ms;
    let activity = ActivityState {
        scheduled_event_id,
        activity_id: activity_id.clone(),
        activity_type,
        task_queue,
        header: command.header.clone(),
        input: command.input.clone(),
        schedule_to_close_timeout_ms: timeouts.schedule_to_close_ms,
        schedule_to_start_timeout_ms: timeouts.schedule_to_start_ms,
        start_to_close_timeout_ms: timeouts.start_to_close_ms,
        heartbeat_timeout_ms: timeouts.heartbeat_ms,
        retry_policy,
        scheduled_time_ms: now_ms,
        attempt: 1,
        current_attempt_scheduled_time_ms: now_ms,
        phase: ActivityPhase::Ready,
        started_time_ms: 0,
        started_identity: String::new(),
        started_request_id: String::new(),
        last_heartbeat_time_ms: 0,
        last_failure: None,
        last_heartbeat_details: None,
        cancel_requested_event_id: 0,
    };
    draft.ms.activities.insert(scheduled_event_id, activity);
    Ok(())
}

/// Temporal's deduction (`command_checker.go`): start-to-close and schedule-to-start default to
/// schedule-to-close; without schedule-to-close, it becomes the run timeout (or infinite); one
/// of schedule-to-close and start-to-close must be set. Every timeout is capped by the run
/// timeout, and heartbeat by start-to-close.
fn deduce_timeouts(
    command: &ScheduleActivityTaskCommandAttributes,
    run_timeout_ms: i64,
) -> Result<ActivityTimeouts, String> {
    let read = |d, name: &str| {
        duration_ms(d).map_err(|()| format!("Invalid {name}Timeout on ScheduleActivityTask."))
    };
    let mut schedule_to_close_ms = read(
        command.schedule_to_close_timeout.as_ref(),
        "ScheduleToClose",
    )?;
    let mut schedule_to_start_ms = read(
        command.schedule_to_start_timeout.as_ref(),
        "ScheduleToStart",
    )?;
    let mut start_to_close_ms = read(command.start_to_close_timeout.as_ref(), "StartToClose")?;
    let mut heartbeat_ms = read(command.heartbeat_timeout.as_ref(), "Heartbeat")?;
    if schedule_to_close_ms > 0 {
        schedule_to_start_ms = if schedule_to_start_ms > 0 {
            schedule_to_start_ms.min(schedule_to_close_ms)
        } else {
            schedule_to_close_ms
        };
        start_to_close_ms = if start_to_close_ms > 0 {
            start_to_close_ms.min(schedule_to_close_ms)
        } else {
            schedule_to_close_ms
        };
    } else if start_to_close_ms > 0 {
        schedule_to_close_ms = run_timeout_ms;
        if schedule_to_start_ms == 0 {
            schedule_to_start_ms = run_timeout_ms;
        }
    } else {
        return Err("A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTask command.".into());
    }
    if run_timeout_ms > 0 {
        let cap = |ms: i64| {
            if ms == 0 || ms > run_timeout_ms {
                run_timeout_ms
            } else {
                ms
            }
        };
        schedule_to_close_ms = cap(schedule_to_close_ms);
        schedule_to_start_ms = cap(schedule_to_start_ms);
        start_to_close_ms = cap(start_to_close_ms);
        if heartbeat_ms > run_timeout_ms {
            heartbeat_ms = run_timeout_ms;
        }
    }
    if heartbeat_ms > start_to_close_ms {
        heartbeat_ms = start_to_close_ms;
    }
    Ok(ActivityTimeouts {
        schedule_to_close_ms,
        schedule_to_start_ms,
        start_to_close_ms,
        heartbeat_ms,
    })
}
