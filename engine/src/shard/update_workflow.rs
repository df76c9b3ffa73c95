//! UpdateWorkflowExecution: admits an update to a run. No event is written: the update rides
//! on the run's next workflow task — a speculative one if the run has none (see
//! `speculative`). A request whose update ID the run already knows changes nothing and gets
//! the update's current status, so a retried request never runs an update twice.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::lookup::execution_key;
use crate::shard::task_token::{EXECUTION_COMPLETED, EXECUTION_NOT_FOUND};
use crate::shard::txn::{Committed, Txn};
use crate::shard::updates::{MAX_IN_FLIGHT_UPDATES, MAX_TOTAL_UPDATES, update_status};
use temporalio_protos::temporal::api::workflowservice::v1::UpdateWorkflowExecutionRequest;

pub(crate) fn handle(
    txn: &mut Txn,
    request: UpdateWorkflowExecutionRequest,
) -> Result<Committed, EngineError> {
    let invalid = |m: &str| EngineError::InvalidArgument(m.to_string());
    let update = request
        .request
        .ok_or_else(|| invalid("Update request is not set on request."))?;
    let update_id = update
        .meta
        .as_ref()
        .map(|m| m.update_id.clone())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("Update ID is not set on request."))?;
    if update.input.as_ref().is_none_or(|i| i.name.is_empty()) {
        return Err(invalid("Update name is not set on request."));
    }
    let key = execution_key(txn, &request.namespace, request.workflow_execution.as_ref())?;
    let not_found = || EngineError::NotFound(EXECUTION_NOT_FOUND.into());
    let ms = txn.execution(&key).ok_or_else(not_found)?;
    if !request.first_execution_run_id.is_empty()
        && request.first_execution_run_id != ms.first_execution_run_id
    {
        return Err(not_found());
    }
    if let Some(status) = update_status(ms, &update_id) {
        return Ok(Ok(ShardReply::Update(Box::new(status))));
    }
    if !ms.is_running() {
        return Err(EngineError::NotFound(EXECUTION_COMPLETED.into()));
    }
    let in_flight = ms.updates.values().filter(|u| u.in_flight()).count();
    if in_flight >= MAX_IN_FLIGHT_UPDATES {
        return Err(EngineError::ResourceExhausted(format!(
            "limit on number of concurrent in-flight updates has been reached ({MAX_IN_FLIGHT_UPDATES})"
        )));
    }
    if ms.updates.len() >= MAX_TOTAL_UPDATES {
        return Err(EngineError::FailedPrecondition(format!(
            "limit on number of total updates has been reached ({MAX_TOTAL_UPDATES})"
        )));
    }
    let draft = txn.draft(&key).ok_or_else(not_found)?;
    draft.admit_update(update_id.clone(), update);
    draft.schedule_speculative_task_if_none();
    let status = update_status(&draft.ms, &update_id).ok_or_else(not_found)?;
    Ok(Ok(ShardReply::Update(Box::new(status))))
}
