//! FailWorkflowExecution → WorkflowExecutionFailed{failure, retry_state}; the run closes. When
//! the workflow retry policy allows another attempt, the event says IN_PROGRESS and names the
//! next run, which is created in the same command (see `workflow_retry`); otherwise a cron
//! workflow names its next scheduled run.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::new_run::next_cron_run;
use crate::shard::workflow_retry;
use temporalio_protos::temporal::api::{
    command::v1::FailWorkflowExecutionCommandAttributes,
    enums::v1::WorkflowExecutionStatus,
    history::v1::{WorkflowExecutionFailedEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &FailWorkflowExecutionCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let failure = command.failure.clone().unwrap_or_default();
    let mut retry = workflow_retry::decide(draft, &failure);
    if retry.next_run.is_none() {
        // Not retried: a cron workflow still runs again at its next scheduled time.
        retry.next_run = next_cron_run(&draft.ms, draft.now_ms, None, Some(failure.clone()));
    }
    let attributes = WorkflowExecutionFailedEventAttributes {
        failure: command.failure.clone(),
        retry_state: retry.retry_state as i32,
        workflow_task_completed_event_id: ctx.completed_event_id,
        new_execution_run_id: retry
            .next_run
            .as_ref()
            .map(|next| next.run_id.clone())
            .unwrap_or_default(),
    };
    draft.close(
        WorkflowExecutionStatus::Failed,
        Attributes::WorkflowExecutionFailedEventAttributes(attributes),
    );
    draft.next_run = retry.next_run;
    Ok(())
}
