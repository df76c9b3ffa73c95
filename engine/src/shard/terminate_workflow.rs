//! TerminateWorkflowExecution: the run closes at once with WorkflowExecutionTerminated{reason,
//! details, identity}; its started workflow task (if any) is failed first, and later task
//! completions get NotFound.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::lookup::running_execution;
use crate::shard::task_token::EXECUTION_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    enums::v1::WorkflowExecutionStatus,
    history::v1::{WorkflowExecutionTerminatedEventAttributes, history_event::Attributes},
    workflowservice::v1::TerminateWorkflowExecutionRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    request: TerminateWorkflowExecutionRequest,
) -> Result<Committed, EngineError> {
    let key = running_execution(txn, &request.namespace, request.workflow_execution.as_ref())?;
    let draft = txn
        .draft(&key)
        .ok_or_else(|| EngineError::NotFound(EXECUTION_NOT_FOUND.into()))?;
    let attributes = WorkflowExecutionTerminatedEventAttributes {
        reason: request.reason,
        details: request.details,
        identity: request.identity,
    };
    draft.close(
        WorkflowExecutionStatus::Terminated,
        Attributes::WorkflowExecutionTerminatedEventAttributes(attributes),
    );
    Ok(Ok(ShardReply::Done))
}
