//! StartTimer → TimerStarted (the timer becomes a timer-index entry) and CancelTimer →
//! TimerCanceled.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::mutable_state::UserTimerState;
use crate::shard::time::duration_ms;
use temporalio_protos::temporal::api::{
    command::v1::{CancelTimerCommandAttributes, StartTimerCommandAttributes},
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{
        TimerCanceledEventAttributes, TimerStartedEventAttributes, history_event::Attributes,
    },
};

pub(super) fn start(
    draft: &mut Draft,
    command: &StartTimerCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let bad = |message: String| CommandRejection::new(Cause::BadStartTimerAttributes, message);
    let timer_id = &command.timer_id;
    if timer_id.is_empty() {
        return Err(bad("TimerId is not set on StartTimer command.".into()));
    }
    if timer_id.len() > ctx.limits.max_id_length {
        return Err(bad("TimerId exceeds length limit.".into()));
    }
    let fire_after_ms = duration_ms(command.start_to_fire_timeout.as_ref()).unwrap_or(0);
    if fire_after_ms <= 0 {
        return Err(bad(format!(
            "A valid StartToFireTimeout is not set on StartTimer command {timer_id}."
        )));
    }
    if draft.ms.timers.contains_key(timer_id) {
        return Err(CommandRejection::new(
            Cause::StartTimerDuplicateId,
            format!("Timer with ID {timer_id} is already running."),
        ));
    }
    let attributes = TimerStartedEventAttributes {
        timer_id: timer_id.clone(),
        start_to_fire_timeout: command.start_to_fire_timeout,
        workflow_task_completed_event_id: ctx.completed_event_id,
    };
    let started_event_id = draft.append(Attributes::TimerStartedEventAttributes(attributes));
    let timer = UserTimerState {
        timer_id: timer_id.clone(),
        started_event_id,
        fire_time_ms: draft.now_ms.saturating_add(fire_after_ms),
    };
    draft.ms.timers.insert(timer_id.clone(), timer);
    Ok(())
}

pub(super) fn cancel(
    draft: &mut Draft,
    command: &CancelTimerCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let timer_id = &command.timer_id;
    let Some(timer) = draft.ms.timers.remove(timer_id) else {
        return Err(CommandRejection::new(
            Cause::BadCancelTimerAttributes,
            format!("CancelTimer command names timer {timer_id:?}, which is not running."),
        ));
    };
    let attributes = TimerCanceledEventAttributes {
        timer_id: timer_id.clone(),
        started_event_id: timer.started_event_id,
        workflow_task_completed_event_id: ctx.completed_event_id,
        identity: ctx.identity.to_string(),
    };
    draft.append(Attributes::TimerCanceledEventAttributes(attributes));
    Ok(())
}
