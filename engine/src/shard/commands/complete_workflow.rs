//! CompleteWorkflowExecution → WorkflowExecutionCompleted{result}; the run closes. A cron
//! workflow names its next run (`new_execution_run_id`), which starts at the next scheduled
//! time with this result as its `last_completion_result`.

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::new_run::next_cron_run;
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
    let next_run = next_cron_run(&draft.ms, draft.now_ms, command.result.clone(), None);
    let attributes = WorkflowExecutionCompletedEventAttributes {
        result: command.result.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
        new_execution_run_id: next_run
            .as_ref()
            .map(|next| next.run_id.clone())
            .unwrap_or_default(),
    };
    draft.close(
        WorkflowExecutionStatus::Completed,
        Attributes::WorkflowExecutionCompletedEventAttributes(attributes),
    );
    draft.next_run = next_run;
    Ok(())
}
