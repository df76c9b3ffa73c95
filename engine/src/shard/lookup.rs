//! Which execution an API request names: a workflow ID plus an optional run ID (empty ⇒ the
//! workflow's current run).

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::task_token::{EXECUTION_COMPLETED, EXECUTION_NOT_FOUND};
use crate::shard::txn::Txn;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;

/// The running execution named by `namespace` and `execution`. NotFound if it does not exist
/// ("Workflow execution not found.") or is closed ("Workflow execution already completed.").
pub(crate) fn running_execution(
    txn: &Txn,
    namespace: &str,
    execution: Option<&WorkflowExecution>,
) -> Result<ExecutionKey, EngineError> {
    let key = execution_key(txn, namespace, execution)?;
    match txn.execution(&key) {
        Some(ms) if !ms.is_running() => Err(EngineError::NotFound(EXECUTION_COMPLETED.into())),
        _ => Ok(key),
    }
}

/// The execution (open or closed) named by `namespace` and `execution`; NotFound if it does
/// not exist.
pub(crate) fn execution_key(
    txn: &Txn,
    namespace: &str,
    execution: Option<&WorkflowExecution>,
) -> Result<ExecutionKey, EngineError> {
    let workflow_id = execution.map(|e| e.workflow_id.as_str()).unwrap_or("");
    if workflow_id.is_empty() {
        return Err(EngineError::InvalidArgument(
            "WorkflowId is not set on request.".into(),
        ));
    }
    let run_id = match execution.map(|e| e.run_id.as_str()).unwrap_or("") {
        "" => {
            let workflow = WorkflowKey {
                namespace: namespace.to_string(),
                workflow_id: workflow_id.to_string(),
            };
            let current = txn
                .current_run(&workflow)
                .ok_or_else(|| EngineError::NotFound(EXECUTION_NOT_FOUND.into()))?;
            current.run_id.clone()
        }
        run_id => run_id.to_string(),
    };
    let key = ExecutionKey {
        namespace: namespace.to_string(),
        workflow_id: workflow_id.to_string(),
        run_id,
    };
    match txn.execution(&key) {
        None => Err(EngineError::NotFound(EXECUTION_NOT_FOUND.into())),
        Some(_) => Ok(key),
    }
}
