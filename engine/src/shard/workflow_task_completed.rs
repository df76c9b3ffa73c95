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
use crate::shard::txn::{Committed, Txn};
use crate::shard::workflow_task_started::WORKFLOW_TASK_NOT_FOUND;
use crate::token::TaskToken;
use temporalio_protos::temporal::api::{
    enums::v1::{WorkerVersioningMode, WorkflowTaskFailedCause},
    failure::v1::Failure,
    history::v1::{WorkflowTaskCompletedEventAttributes, history_event::Attributes},
    workflowservice::v1::RespondWorkflowTaskCompletedRequest,
};

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
        Ok(()) => Ok(Ok(ShardReply::Done)),
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

fn complete(
    draft: &mut Draft,
    request: &RespondWorkflowTaskCompletedRequest,
    limits: &EngineLimits,
) -> Result<(), CommandRejection> {
    if !draft.ms.buffered_events.is_empty() && request.commands.iter().any(is_close_command) {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::UnhandledCommand,
            "UnhandledCommand: new events arrived while the workflow task ran; the close command is refused.",
        ));
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

    let ctx = CommandContext {
        completed_event_id,
        identity: &request.identity,
        limits,
        new_workflow_task: std::cell::Cell::new(false),
    };
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
        let flushed = draft.flush_buffer();
        if flushed || request.force_create_new_workflow_task || ctx.new_workflow_task.get() {
            draft.schedule_workflow_task(1);
        }
    }
    Ok(())
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
