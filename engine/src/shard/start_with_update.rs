//! Update-with-start (ExecuteMultiOperation): StartWorkflowExecution and UpdateWorkflowExecution
//! applied atomically in one command. The start follows its own rules (request-ID dedupe, the
//! conflict policy — USE_EXISTING sends the update to the running run); the update is then
//! admitted to the run the start names. If either fails, neither is applied, and the error says
//! which operation failed.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::txn::{Committed, Txn};
use crate::shard::{start_workflow, update_workflow};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    workflowservice::v1::{StartWorkflowExecutionRequest, UpdateWorkflowExecutionRequest},
};

pub(crate) fn handle(
    txn: &mut Txn,
    start: StartWorkflowExecutionRequest,
    run_id: String,
    mut update: UpdateWorkflowExecutionRequest,
) -> Result<Committed, EngineError> {
    let failed = |index: u32, error: EngineError| EngineError::MultiOperation {
        index,
        error: Box::new(error),
    };
    let workflow_id = start.workflow_id.clone();
    let (run_id, started) = match start_workflow::handle(txn, start, run_id) {
        Ok(Ok(ShardReply::WorkflowStarted { run_id, started })) => (run_id, started),
        Ok(Ok(other)) => {
            return Err(failed(
                0,
                EngineError::InvalidArgument(format!("unexpected start reply {other:?}")),
            ));
        }
        Ok(Err(error)) | Err(error) => return Err(failed(0, error)),
    };
    update.workflow_execution = Some(WorkflowExecution {
        workflow_id,
        run_id: run_id.clone(),
    });
    match update_workflow::handle(txn, update) {
        Ok(Ok(ShardReply::Update(update))) => Ok(Ok(ShardReply::StartedWithUpdate {
            run_id,
            started,
            update,
        })),
        Ok(Ok(other)) => Err(failed(
            1,
            EngineError::InvalidArgument(format!("unexpected update reply {other:?}")),
        )),
        Ok(Err(error)) | Err(error) => Err(failed(1, error)),
    }
}
