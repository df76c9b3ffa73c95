//! CompleteWorkflowExecution → WorkflowExecutionCompleted{result}; the run closes.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    command::v1::CompleteWorkflowExecutionCommandAttributes,
    enums::v1::WorkflowExecutionStatus,
    history::v1::{WorkflowExecutionCompletedEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &CompleteWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let attributes = WorkflowExecutionCompletedEventAttributes {
        result: command.result.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
        new_execution_run_id: String::new(),
    };
    draft.close(
        WorkflowExecutionStatus::Completed,
        Attributes::WorkflowExecutionCompletedEventAttributes(attributes),
    );
    Ok(())
}
