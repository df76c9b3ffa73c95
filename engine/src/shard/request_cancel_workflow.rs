//! RequestCancelWorkflowExecution: WorkflowExecutionCancelRequested{cause, identity, external
//! initiator}, buffered while a workflow task runs, then WFT+. The workflow decides what to do;
//! it usually ends with the CancelWorkflowExecution command (`commands/cancel_workflow.rs`).
//!
//! As in Temporal, the request is idempotent: a run that is already closed, or was already asked
//! to cancel, acknowledges without a new event. Only an unknown workflow or run is NotFound.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::task_token::EXECUTION_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    history::v1::{WorkflowExecutionCancelRequestedEventAttributes, history_event::Attributes},
    workflowservice::v1::RequestCancelWorkflowExecutionRequest,
};

/// Who asked, when the request comes from another workflow.
pub(crate) struct ExternalInitiator {
    pub initiated_event_id: i64,
    pub execution: Option<WorkflowExecution>,
}

pub(crate) fn handle(
    txn: &mut Txn,
    request: RequestCancelWorkflowExecutionRequest,
    external: ExternalInitiator,
) -> Result<Committed, EngineError> {
    let key = target(txn, &request)?;
    let draft = txn
        .draft(&key)
        .ok_or_else(|| EngineError::NotFound(EXECUTION_NOT_FOUND.into()))?;
    if !draft.ms.is_running() || draft.ms.cancel_requested {
        return Ok(Ok(ShardReply::Done));
    }
    draft.ms.cancel_requested = true;
    draft.ms.cancel_request_id = request.request_id;
    draft.record(Attributes::WorkflowExecutionCancelRequestedEventAttributes(
        WorkflowExecutionCancelRequestedEventAttributes {
            cause: request.reason,
            identity: request.identity,
            external_initiated_event_id: external.initiated_event_id,
            external_workflow_execution: external.execution,
        },
    ));
    draft.schedule_workflow_task_if_none();
    Ok(Ok(ShardReply::Done))
}

/// The run the request names: its run ID, or the current run (which must belong to the chain
/// `first_execution_run_id` when that is set). Closed runs are returned too.
fn target(
    txn: &Txn,
    request: &RequestCancelWorkflowExecutionRequest,
) -> Result<ExecutionKey, EngineError> {
    let not_found = || EngineError::NotFound(EXECUTION_NOT_FOUND.into());
    let execution = request.workflow_execution.as_ref();
    let workflow_id = execution.map(|e| e.workflow_id.as_str()).unwrap_or("");
    if workflow_id.is_empty() {
        return Err(EngineError::InvalidArgument(
            "WorkflowId is not set on request.".into(),
        ));
    }
    let run_id = execution.map(|e| e.run_id.as_str()).unwrap_or("");
    let run_id = if run_id.is_empty() || !request.first_execution_run_id.is_empty() {
        let workflow = WorkflowKey {
            namespace: request.namespace.clone(),
            workflow_id: workflow_id.to_string(),
        };
        txn.current_run(&workflow)
            .ok_or_else(not_found)?
            .run_id
            .clone()
    } else {
        run_id.to_string()
    };
    let key = ExecutionKey {
        namespace: request.namespace.clone(),
        workflow_id: workflow_id.to_string(),
        run_id,
    };
    let ms = txn.execution(&key).ok_or_else(not_found)?;
    if !request.first_execution_run_id.is_empty()
        && ms.is_running()
        && ms.first_execution_run_id != request.first_execution_run_id
    {
        return Err(not_found());
    }
    Ok(key)
}
