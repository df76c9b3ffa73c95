//! RequestCancelActivityTask → ActivityTaskCancelRequested{scheduled_event_id,
//! workflow_task_completed_event_id}.
//!
//! As in Temporal (`handleCommandRequestCancelActivity`): an activity whose current attempt is not
//! started (ready, or waiting out a retry back-off) is canceled at once — ActivityTaskCanceled
//! with `started_event_id` 0 and a new workflow task after the completion. A started attempt is
//! only marked: its heartbeat reply says `cancel_requested`, it is no longer retried, and the
//! worker ends it with RespondActivityTaskCanceled. An activity that finished while the workflow
//! task ran (its terminal event is buffered) gets the request event and nothing else.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::mutable_state::ActivityPhase;
use temporalio_protos::temporal::api::{
    command::v1::RequestCancelActivityTaskCommandAttributes,
    common::v1::{Payload, Payloads},
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{
        ActivityTaskCancelRequestedEventAttributes, ActivityTaskCanceledEventAttributes,
        history_event::Attributes,
    },
};

/// The details Temporal writes on an activity canceled before it started.
const NOT_STARTED_DETAILS: &str = "ACTIVITY_ID_NOT_STARTED";

pub(super) fn apply(
    draft: &mut Draft,
    command: &RequestCancelActivityTaskCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let scheduled_event_id = command.scheduled_event_id;
    let pending = draft
        .ms
        .activities
        .get(&scheduled_event_id)
        .map(|a| a.phase);
    if pending.is_none() && !finished_during_task(draft, scheduled_event_id) {
        return Err(CommandRejection::new(
            Cause::BadRequestCancelActivityAttributes,
            format!(
                "RequestCancelActivityTask names ScheduledEventID {scheduled_event_id}, which is not a pending activity."
            ),
        ));
    }
    let requested = ActivityTaskCancelRequestedEventAttributes {
        scheduled_event_id,
        workflow_task_completed_event_id: ctx.completed_event_id,
    };
    let requested_event_id = draft.append(Attributes::ActivityTaskCancelRequestedEventAttributes(
        requested,
    ));
    match pending {
        None => {}
        Some(ActivityPhase::Started) => {
            if let Some(activity) = draft.ms.activities.get_mut(&scheduled_event_id) {
                activity.cancel_requested_event_id = requested_event_id;
            }
        }
        Some(ActivityPhase::Ready | ActivityPhase::Backoff) => {
            draft.ms.activities.remove(&scheduled_event_id);
            let canceled = ActivityTaskCanceledEventAttributes {
                details: Some(json_string(NOT_STARTED_DETAILS)),
                latest_cancel_requested_event_id: requested_event_id,
                scheduled_event_id,
                started_event_id: 0,
                identity: ctx.identity.to_string(),
                ..Default::default()
            };
            draft.append(Attributes::ActivityTaskCanceledEventAttributes(canceled));
            ctx.new_workflow_task.set(true);
        }
    }
    Ok(())
}

/// Whether the activity's terminal event is among the events buffered during this task.
fn finished_during_task(draft: &Draft, scheduled_event_id: i64) -> bool {
    draft.ms.buffered_events.iter().any(|event| {
        let id = match &event.attributes {
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => a.scheduled_event_id,
            Some(Attributes::ActivityTaskFailedEventAttributes(a)) => a.scheduled_event_id,
            Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => a.scheduled_event_id,
            Some(Attributes::ActivityTaskCanceledEventAttributes(a)) => a.scheduled_event_id,
            _ => return false,
        };
        id == scheduled_event_id
    })
}

/// A payload holding a JSON string, as the Go SDK's default converter encodes one.
fn json_string(text: &str) -> Payloads {
    let mut payload = Payload {
        data: format!("\"{text}\"").into_bytes(),
        ..Default::default()
    };
    payload
        .metadata
        .insert("encoding".into(), b"json/plain".to_vec());
    Payloads {
        payloads: vec![payload],
    }
}
