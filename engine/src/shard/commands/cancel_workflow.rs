//! CancelWorkflowExecution → WorkflowExecutionCanceled{details}; the run closes with status
//! CANCELED. Temporal accepts the command whether or not cancellation was requested.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    command::v1::CancelWorkflowExecutionCommandAttributes,
    enums::v1::WorkflowExecutionStatus,
    history::v1::{WorkflowExecutionCanceledEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &CancelWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let attributes = WorkflowExecutionCanceledEventAttributes {
        workflow_task_completed_event_id: ctx.completed_event_id,
        details: command.details.clone(),
    };
    draft.close(
        WorkflowExecutionStatus::Canceled,
        Attributes::WorkflowExecutionCanceledEventAttributes(attributes),
    );
    Ok(())
}
