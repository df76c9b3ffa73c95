//! RespondWorkflowTaskFailed: WorkflowTaskFailed{cause, failure}, the buffered events, and a new
//! attempt of the workflow task.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::task_token::started_workflow_task;
use crate::shard::txn::{Committed, Txn};
use crate::shard::workflow_task_started::WORKFLOW_TASK_NOT_FOUND;
use crate::token::TaskToken;
use temporalio_protos::temporal::api::{
    enums::v1::WorkflowTaskFailedCause, workflowservice::v1::RespondWorkflowTaskFailedRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RespondWorkflowTaskFailedRequest,
) -> Result<Committed, EngineError> {
    started_workflow_task(txn, token)?;
    let not_found = || EngineError::NotFound(WORKFLOW_TASK_NOT_FOUND.into());
    let draft = txn.draft(&token.execution).ok_or_else(not_found)?;
    let cause = WorkflowTaskFailedCause::try_from(request.cause)
        .unwrap_or(WorkflowTaskFailedCause::Unspecified);
    let failed = draft
        .fail_workflow_task(cause, request.failure, request.identity)
        .ok_or_else(not_found)?;
    draft.schedule_workflow_task(failed.attempt + 1);
    Ok(Ok(ShardReply::Done))
}
