//! The commands of a workflow task completion, one file each. Every handler validates its
//! command and appends exactly one event (one event per command, in command order), or rejects
//! the command; a rejection fails the whole workflow task.

mod cancel_external;
mod cancel_workflow;
mod complete_workflow;
mod continue_as_new;
mod fail_workflow;
mod modify_properties;
mod protocol_message;
mod record_marker;
mod request_cancel_activity;
mod schedule_activity;
mod signal_external;
mod start_child;
mod timers;
mod upsert_search_attributes;

use crate::error::EngineError;
use crate::shard::draft::Draft;
use crate::shard::limits::EngineLimits;
use temporalio_protos::temporal::api::{
    command::v1::{Command, command::Attributes as C},
    enums::v1::{CommandType, WorkflowTaskFailedCause as Cause},
    protocol::v1::Message,
};

/// What every command handler may need besides its attributes.
pub(crate) struct CommandContext<'a> {
    /// ID of the WorkflowTaskCompleted event the command events refer to.
    pub completed_event_id: i64,
    /// Identity of the completing worker.
    pub identity: &'a str,
    pub limits: &'a EngineLimits,
    /// Set by a command whose event needs the workflow to see it in a new workflow task right
    /// after this completion (e.g. an activity canceled before it started).
    pub new_workflow_task: std::cell::Cell<bool>,
    /// The completion's protocol messages, which PROTOCOL_MESSAGE commands point to.
    pub messages: &'a [Message],
}

/// Why a completion was refused. The engine writes WorkflowTaskFailed{cause, failure{message}}
/// instead of the completion and schedules a new workflow task.
#[derive(Debug)]
pub(crate) struct CommandRejection {
    pub cause: Cause,
    pub message: String,
}

impl CommandRejection {
    pub fn new(cause: Cause, message: impl Into<String>) -> CommandRejection {
        CommandRejection {
            cause,
            message: message.into(),
        }
    }

    /// The reply to the worker: `UnhandledCommand` (which the SDKs recognize by its exact text)
    /// or InvalidArgument with the failure message.
    pub fn reply_error(&self) -> EngineError {
        if self.cause == Cause::UnhandledCommand {
            EngineError::UnhandledCommand
        } else {
            EngineError::InvalidArgument(self.message.clone())
        }
    }
}

/// Whether the command closes the workflow (must be the last command).
pub(crate) fn is_close_command(command: &Command) -> bool {
    [
        CommandType::CompleteWorkflowExecution,
        CommandType::FailWorkflowExecution,
        CommandType::CancelWorkflowExecution,
        CommandType::ContinueAsNewWorkflowExecution,
    ]
    .iter()
    .any(|t| *t as i32 == command.command_type)
}

/// Validates one command and appends its event.
pub(crate) fn apply(
    draft: &mut Draft,
    command: &Command,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let command_type =
        CommandType::try_from(command.command_type).unwrap_or(CommandType::Unspecified);
    let missing = |cause: Cause, name: &str| {
        CommandRejection::new(
            cause,
            format!("{name}CommandAttributes is not set on {name} command."),
        )
    };
    match (command_type, &command.attributes) {
        (CommandType::ScheduleActivityTask, Some(C::ScheduleActivityTaskCommandAttributes(a))) => {
            schedule_activity::apply(draft, a, ctx)
        }
        (CommandType::ScheduleActivityTask, _) => Err(missing(
            Cause::BadScheduleActivityAttributes,
            "ScheduleActivityTask",
        )),
        (CommandType::StartTimer, Some(C::StartTimerCommandAttributes(a))) => {
            timers::start(draft, a, ctx)
        }
        (CommandType::StartTimer, _) => Err(missing(Cause::BadStartTimerAttributes, "StartTimer")),
        (CommandType::CancelTimer, Some(C::CancelTimerCommandAttributes(a))) => {
            timers::cancel(draft, a, ctx)
        }
        (CommandType::CancelTimer, _) => {
            Err(missing(Cause::BadCancelTimerAttributes, "CancelTimer"))
        }
        (CommandType::RecordMarker, Some(C::RecordMarkerCommandAttributes(a))) => {
            record_marker::apply(draft, a, ctx)
        }
        (CommandType::RecordMarker, _) => {
            Err(missing(Cause::BadRecordMarkerAttributes, "RecordMarker"))
        }
        (
            CommandType::CompleteWorkflowExecution,
            Some(C::CompleteWorkflowExecutionCommandAttributes(a)),
        ) => complete_workflow::apply(draft, a, ctx),
        (CommandType::CompleteWorkflowExecution, _) => Err(missing(
            Cause::BadCompleteWorkflowExecutionAttributes,
            "CompleteWorkflowExecution",
        )),
        (
            CommandType::FailWorkflowExecution,
            Some(C::FailWorkflowExecutionCommandAttributes(a)),
        ) => fail_workflow::apply(draft, a, ctx),
        (CommandType::FailWorkflowExecution, _) => Err(missing(
            Cause::BadFailWorkflowExecutionAttributes,
            "FailWorkflowExecution",
        )),
        (
            CommandType::RequestCancelActivityTask,
            Some(C::RequestCancelActivityTaskCommandAttributes(a)),
        ) => request_cancel_activity::apply(draft, a, ctx),
        (CommandType::RequestCancelActivityTask, _) => Err(missing(
            Cause::BadRequestCancelActivityAttributes,
            "RequestCancelActivityTask",
        )),
        (CommandType::ProtocolMessage, Some(C::ProtocolMessageCommandAttributes(a))) => {
            protocol_message::apply(draft, a, ctx)
        }
        (CommandType::ProtocolMessage, _) => Err(missing(
            Cause::BadUpdateWorkflowExecutionMessage,
            "ProtocolMessage",
        )),
        (
            CommandType::CancelWorkflowExecution,
            Some(C::CancelWorkflowExecutionCommandAttributes(a)),
        ) => cancel_workflow::apply(draft, a, ctx),
        (CommandType::CancelWorkflowExecution, _) => Err(missing(
            Cause::BadCancelWorkflowExecutionAttributes,
            "CancelWorkflowExecution",
        )),
        (
            CommandType::ContinueAsNewWorkflowExecution,
            Some(C::ContinueAsNewWorkflowExecutionCommandAttributes(a)),
        ) => continue_as_new::apply(draft, a, ctx),
        (CommandType::ContinueAsNewWorkflowExecution, _) => Err(missing(
            Cause::BadContinueAsNewAttributes,
            "ContinueAsNewWorkflowExecution",
        )),
        (
            CommandType::UpsertWorkflowSearchAttributes,
            Some(C::UpsertWorkflowSearchAttributesCommandAttributes(a)),
        ) => upsert_search_attributes::apply(draft, a, ctx),
        (CommandType::UpsertWorkflowSearchAttributes, _) => Err(missing(
            Cause::BadSearchAttributes,
            "UpsertWorkflowSearchAttributes",
        )),
        (
            CommandType::ModifyWorkflowProperties,
            Some(C::ModifyWorkflowPropertiesCommandAttributes(a)),
        ) => modify_properties::apply(draft, a, ctx),
        (CommandType::ModifyWorkflowProperties, _) => Err(missing(
            Cause::BadModifyWorkflowPropertiesAttributes,
            "ModifyWorkflowProperties",
        )),
        (
            CommandType::StartChildWorkflowExecution,
            Some(C::StartChildWorkflowExecutionCommandAttributes(a)),
        ) => start_child::apply(draft, a, ctx),
        (CommandType::StartChildWorkflowExecution, _) => Err(missing(
            Cause::BadStartChildExecutionAttributes,
            "StartChildWorkflowExecution",
        )),
        (
            CommandType::SignalExternalWorkflowExecution,
            Some(C::SignalExternalWorkflowExecutionCommandAttributes(a)),
        ) => signal_external::apply(draft, a, ctx),
        (CommandType::SignalExternalWorkflowExecution, _) => Err(missing(
            Cause::BadSignalWorkflowExecutionAttributes,
            "SignalExternalWorkflowExecution",
        )),
        (
            CommandType::RequestCancelExternalWorkflowExecution,
            Some(C::RequestCancelExternalWorkflowExecutionCommandAttributes(a)),
        ) => cancel_external::apply(draft, a, ctx),
        (CommandType::RequestCancelExternalWorkflowExecution, _) => Err(missing(
            Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
            "RequestCancelExternalWorkflowExecution",
        )),
        (CommandType::Unspecified, _) => Err(CommandRejection::new(
            Cause::Unspecified,
            format!("Unknown command type: {}.", command.command_type),
        )),
        (other, _) => Err(CommandRejection::new(
            Cause::FeatureDisabled,
            format!(
                "Command type {} is not supported by this server yet.",
                other.as_str_name()
            ),
        )),
    }
}
