//! RespondWorkflowTaskCompleted: WorkflowTaskCompleted, one event per command in command order,
//! then the events buffered during the task and, if there were any, a new workflow task.
//!
//! A completion with an invalid or unsupported command is not applied at all (as in Temporal,
//! the partial work is discarded): the task ends with WorkflowTaskFailed{cause, failure} and a
//! new attempt is scheduled, and the worker gets InvalidArgument. A completion that closes the
//! workflow while events arrived during the task gets WorkflowTaskFailed(UNHANDLED_COMMAND) and
//! the reply `UnhandledCommand`, so the worker sees the new events first.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::commands::{self, CommandContext, CommandRejection, is_close_command};
use crate::shard::draft::Draft;
use crate::shard::limits::EngineLimits;
use crate::shard::task_token::started_workflow_task;
use crate::shard::time::duration_ms;
use crate::shard::txn::{Committed, Txn};
use crate::shard::updates::UpdateMessage;
use crate::shard::workflow_task_started::{self, WORKFLOW_TASK_NOT_FOUND};
use crate::token::TaskToken;
use std::collections::BTreeSet;
use temporalio_protos::temporal::api::{
    command::v1::command,
    enums::v1::{WorkerVersioningMode, WorkflowTaskFailedCause},
    failure::v1::Failure,
    history::v1::{WorkflowTaskCompletedEventAttributes, history_event::Attributes},
    protocol::v1::Message,
    workflowservice::v1::RespondWorkflowTaskCompletedRequest,
};

/// `request_id` of a WorkflowTaskStarted written for a task returned inline (Temporal's value).
const INLINE_REQUEST_ID: &str = "request-from-RespondWorkflowTaskCompleted";

/// Sticky schedule-to-start timeout when the worker sends none (the SDKs' default).
const DEFAULT_STICKY_SCHEDULE_TO_START_MS: i64 = 10_000;

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RespondWorkflowTaskCompletedRequest,
) -> Result<Committed, EngineError> {
    started_workflow_task(txn, token)?;
    let limits = txn.limits().clone();
    let draft = txn
        .draft(&token.execution)
        .ok_or_else(|| EngineError::NotFound(WORKFLOW_TASK_NOT_FOUND.into()))?;
    let before = draft.clone();
    match complete(draft, &request, &limits) {
        Ok(Completion::Written) => Ok(Ok(return_new_task(draft, &request, &limits))),
        Ok(Completion::Discarded) => Ok(Ok(ShardReply::WorkflowTaskDiscarded {
            reset_history_event_id: draft.ms.previous_started_event_id,
        })),
        Err(rejection) => {
            *draft = before;
            let failure = Failure {
                message: rejection.message.clone(),
                ..Default::default()
            };
            let failed =
                draft.fail_workflow_task(rejection.cause, Some(failure), request.identity.clone());
            // Unhandled commands are not the worker's fault: the next attempt starts over at 1.
            let next_attempt = match failed {
                Some(wft) if rejection.cause != WorkflowTaskFailedCause::UnhandledCommand => {
                    wft.attempt + 1
                }
                _ => 1,
            };
            draft.schedule_workflow_task(next_attempt);
            Ok(Err(rejection.reply_error()))
        }
    }
}

/// What a completion did to history.
enum Completion {
    Written,
    /// A speculative task left no trace.
    Discarded,
}

fn complete(
    draft: &mut Draft,
    request: &RespondWorkflowTaskCompletedRequest,
    limits: &EngineLimits,
) -> Result<Completion, CommandRejection> {
    if !draft.ms.buffered_events.is_empty() && request.commands.iter().any(is_close_command) {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::UnhandledCommand,
            "UnhandledCommand: new events arrived while the workflow task ran; the close command is refused.",
        ));
    }
    let messages = decode_messages(request)?;
    if draft.has_speculative_task() {
        let writes = !request.commands.is_empty()
            || !draft.ms.buffered_events.is_empty()
            || request.force_create_new_workflow_task
            || messages.iter().any(|(_, body)| body.writes_event());
        if !writes {
            return discard_speculative_task(draft, messages);
        }
        draft.materialize_speculative_task();
    }
    let Some(wft) = draft.ms.workflow_task.take() else {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::Unspecified,
            WORKFLOW_TASK_NOT_FOUND,
        ));
    };
    let completed = completed_event(request, wft.scheduled_event_id, wft.started_event_id);
    let completed_event_id =
        draft.append(Attributes::WorkflowTaskCompletedEventAttributes(completed));
    draft.ms.previous_started_event_id = wft.started_event_id;
    set_stickiness(draft, request);

    let ctx = CommandContext {
        completed_event_id,
        identity: &request.identity,
        limits,
        new_workflow_task: std::cell::Cell::new(false),
        messages: &request.messages,
    };
    let referenced: BTreeSet<&str> = request
        .commands
        .iter()
        .filter_map(|c| match &c.attributes {
            Some(command::Attributes::ProtocolMessageCommandAttributes(a)) => {
                Some(a.message_id.as_str())
            }
            _ => None,
        })
        .collect();
    for (index, command) in request.commands.iter().enumerate() {
        if !draft.ms.is_running() {
            return Err(CommandRejection::new(
                WorkflowTaskFailedCause::BadCompleteWorkflowExecutionAttributes,
                format!(
                    "invalid command sequence: command {index} follows the command that closed the workflow; a close command must be the last command."
                ),
            ));
        }
        commands::apply(draft, command, &ctx)?;
    }
    if draft.ms.is_running() {
        // Messages no command points to (rejections) apply after the commands.
        for (message, body) in messages {
            if !referenced.contains(message.id.as_str()) {
                draft.apply_update_message(message, body)?;
            }
        }
        draft.reject_unprocessed_updates(wft.started_event_id);
        let flushed = draft.flush_buffer();
        if flushed || request.force_create_new_workflow_task || ctx.new_workflow_task.get() {
            draft.schedule_workflow_task(1);
        } else if draft.has_admitted_updates() {
            draft.schedule_speculative_task_if_none();
        }
    }
    Ok(Completion::Written)
}

/// The worker's update messages with their decoded bodies; messages of other protocols are
/// ignored.
fn decode_messages(
    request: &RespondWorkflowTaskCompletedRequest,
) -> Result<Vec<(&Message, UpdateMessage)>, CommandRejection> {
    let mut decoded = Vec::new();
    for message in &request.messages {
        if let Some(body) = UpdateMessage::decode(message)? {
            decoded.push((message, body));
        }
    }
    Ok(decoded)
}

/// A speculative task whose completion writes nothing (it only rejects updates) leaves no
/// trace in history: the rejections are recorded on the updates, and updates that arrived
/// meanwhile get a new speculative task.
fn discard_speculative_task(
    draft: &mut Draft,
    messages: Vec<(&Message, UpdateMessage)>,
) -> Result<Completion, CommandRejection> {
    let Some(wft) = draft.ms.workflow_task.take() else {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::Unspecified,
            WORKFLOW_TASK_NOT_FOUND,
        ));
    };
    for (message, body) in messages {
        draft.apply_update_message(message, body)?;
    }
    draft.reject_unprocessed_updates(wft.started_event_id);
    if draft.has_admitted_updates() {
        draft.schedule_speculative_task_if_none();
    }
    Ok(Completion::Discarded)
}

/// With `return_new_workflow_task`, a workflow task this completion created is started at once
/// for the same worker and returned inline (as Temporal does), saving the worker a poll.
fn return_new_task(
    draft: &mut Draft,
    request: &RespondWorkflowTaskCompletedRequest,
    limits: &EngineLimits,
) -> ShardReply {
    if !request.return_new_workflow_task || !draft.ms.is_running() {
        return ShardReply::Done;
    }
    let identity = request.identity.clone();
    match workflow_task_started::start(draft, identity, INLINE_REQUEST_ID.into(), limits) {
        Some(info) => ShardReply::NewWorkflowTask(info),
        None => ShardReply::Done,
    }
}

/// Honours `sticky_attributes`: the run's next workflow tasks go to the worker's sticky queue
/// (with partial history); a completion without them ends stickiness, as in Temporal.
fn set_stickiness(draft: &mut Draft, request: &RespondWorkflowTaskCompletedRequest) {
    let sticky = request
        .sticky_attributes
        .as_ref()
        .and_then(|a| a.worker_task_queue.as_ref().map(|q| (q, a)))
        .filter(|(queue, _)| !queue.name.is_empty());
    match sticky {
        Some((queue, attributes)) => {
            let timeout_ms = duration_ms(attributes.schedule_to_start_timeout.as_ref())
                .ok()
                .filter(|ms| *ms > 0)
                .unwrap_or(DEFAULT_STICKY_SCHEDULE_TO_START_MS);
            draft.ms.sticky_task_queue = queue.name.clone();
            draft.ms.sticky_schedule_to_start_timeout_ms = timeout_ms;
        }
        None => draft.ms.clear_sticky(),
    }
}

/// WorkflowTaskCompleted with everything core reads back on replay: identity, checksum, SDK
/// metadata (its flags only apply if persisted), metering and versioning fields.
#[allow(
    deprecated,
    reason = "binary_checksum and worker_version are deprecated but still sent and replayed"
)]
fn completed_event(
    request: &RespondWorkflowTaskCompletedRequest,
    scheduled_event_id: i64,
    started_event_id: i64,
) -> WorkflowTaskCompletedEventAttributes {
    let versioned = request
        .deployment_options
        .as_ref()
        .filter(|o| o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32);
    WorkflowTaskCompletedEventAttributes {
        scheduled_event_id,
        started_event_id,
        identity: request.identity.clone(),
        binary_checksum: request.binary_checksum.clone(),
        worker_version: request.worker_version_stamp.clone(),
        sdk_metadata: request.sdk_metadata.clone(),
        metering_metadata: request.metering_metadata,
        versioning_behavior: request.versioning_behavior,
        worker_deployment_name: versioned
            .map(|o| o.deployment_name.clone())
            .unwrap_or_default(),
        deployment_version: versioned.map(|o| {
            temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentVersion {
                build_id: o.build_id.clone(),
                deployment_name: o.deployment_name.clone(),
            }
        }),
        ..Default::default()
    }
}
