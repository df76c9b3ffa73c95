//! Checks that a task token names the attempt that is started right now. A stale token gets
//! NotFound (the SDKs evict the run, or drop the activity result) and changes nothing.

use crate::error::EngineError;
use crate::shard::mutable_state::{ActivityPhase, ActivityState, MutableState, WorkflowTaskState};
use crate::shard::txn::Txn;
use crate::shard::workflow_task_started::WORKFLOW_TASK_NOT_FOUND;
use crate::token::{TaskKind, TaskToken};

pub(crate) const EXECUTION_NOT_FOUND: &str = "Workflow execution not found.";
pub(crate) const EXECUTION_COMPLETED: &str = "Workflow execution already completed.";
pub(crate) const ACTIVITY_TASK_NOT_FOUND: &str = "Activity task not found.";

fn not_found(message: &str) -> EngineError {
    EngineError::NotFound(message.to_string())
}

/// The running execution a token names.
fn running_execution<'t>(txn: &'t Txn, token: &TaskToken) -> Result<&'t MutableState, EngineError> {
    let ms = txn
        .execution(&token.execution)
        .ok_or_else(|| not_found(EXECUTION_NOT_FOUND))?;
    if !ms.is_running() {
        return Err(not_found(EXECUTION_COMPLETED));
    }
    Ok(ms)
}

/// The started workflow task a workflow-task token names.
pub(crate) fn started_workflow_task<'t>(
    txn: &'t Txn,
    token: &TaskToken,
) -> Result<&'t WorkflowTaskState, EngineError> {
    if token.kind != TaskKind::Workflow {
        return Err(not_found(WORKFLOW_TASK_NOT_FOUND));
    }
    let ms = running_execution(txn, token)?;
    ms.started_workflow_task()
        .filter(|wft| {
            wft.scheduled_event_id == token.scheduled_event_id
                && wft.started_event_id == token.started_event_id
                && wft.attempt == token.attempt
        })
        .ok_or_else(|| not_found(WORKFLOW_TASK_NOT_FOUND))
}

/// The started activity attempt an activity-task token names.
pub(crate) fn started_activity<'t>(
    txn: &'t Txn,
    token: &TaskToken,
) -> Result<&'t ActivityState, EngineError> {
    if token.kind != TaskKind::Activity {
        return Err(not_found(ACTIVITY_TASK_NOT_FOUND));
    }
    let ms = running_execution(txn, token)?;
    ms.activities
        .get(&token.scheduled_event_id)
        .filter(|a| a.phase == ActivityPhase::Started && a.attempt == token.attempt)
        .ok_or_else(|| not_found(ACTIVITY_TASK_NOT_FOUND))
}
