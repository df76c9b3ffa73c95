//! FailWorkflowExecution → WorkflowExecutionFailed{failure}; the run closes. Workflow retries are
//! not implemented, so the retry state is RETRY_POLICY_NOT_SET.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    command::v1::FailWorkflowExecutionCommandAttributes,
    enums::v1::{RetryState, WorkflowExecutionStatus},
    history::v1::{WorkflowExecutionFailedEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &FailWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let attributes = WorkflowExecutionFailedEventAttributes {
        failure: command.failure.clone(),
        retry_state: RetryState::RetryPolicyNotSet as i32,
        workflow_task_completed_event_id: ctx.completed_event_id,
        new_execution_run_id: String::new(),
    };
    draft.close(
        WorkflowExecutionStatus::Failed,
        Attributes::WorkflowExecutionFailedEventAttributes(attributes),
    );
    Ok(())
}
