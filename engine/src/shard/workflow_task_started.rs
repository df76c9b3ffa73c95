//! RecordWorkflowTaskStarted: a poller takes the scheduled workflow task.
//!
//! A retry of the same poll (same `poll_request_id`) gets the same task again without new
//! events; every other mismatch answers NotFound "Workflow task not found." and changes nothing.

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::command::{ShardReply, WorkflowTaskInfo};
use crate::shard::mutable_state::{MutableState, WorkflowTaskState};
use crate::shard::txn::{Committed, Txn};
use crate::token::{TaskKind, TaskToken};
use temporalio_protos::temporal::api::{
    enums::v1::SuggestContinueAsNewReason,
    history::v1::{WorkflowTaskStartedEventAttributes, history_event::Attributes},
};

pub(crate) const WORKFLOW_TASK_NOT_FOUND: &str = "Workflow task not found.";

pub(crate) fn handle(
    txn: &mut Txn,
    execution: &ExecutionKey,
    scheduled_event_id: i64,
    identity: String,
    poll_request_id: String,
) -> Result<Committed, EngineError> {
    let not_found = || EngineError::NotFound(WORKFLOW_TASK_NOT_FOUND.into());
    let ms = txn.execution(execution).ok_or_else(not_found)?;
    let wft = ms
        .workflow_task
        .as_ref()
        .filter(|w| w.scheduled_event_id == scheduled_event_id);
    let wft = match wft {
        Some(wft) if ms.is_running() => wft,
        _ => return Err(not_found()),
    };
    if wft.is_started() {
        if !poll_request_id.is_empty() && wft.request_id == poll_request_id {
            return Ok(Ok(ShardReply::WorkflowTaskStarted(task_info(ms, wft))));
        }
        return Err(not_found());
    }

    let suggest_events = txn.limits().suggest_continue_as_new_events;
    let suggest_bytes = txn.limits().suggest_continue_as_new_bytes;
    let draft = txn.draft(execution).ok_or_else(not_found)?;
    let started_event_id = draft.ms.next_event_id;
    let history_size_bytes = draft.ms.history_size_bytes;
    let mut reasons = Vec::new();
    if history_size_bytes >= suggest_bytes {
        reasons.push(SuggestContinueAsNewReason::HistorySizeTooLarge as i32);
    }
    if started_event_id >= suggest_events {
        reasons.push(SuggestContinueAsNewReason::TooManyHistoryEvents as i32);
    }
    let attributes = WorkflowTaskStartedEventAttributes {
        scheduled_event_id,
        identity: identity.clone(),
        request_id: poll_request_id.clone(),
        suggest_continue_as_new: !reasons.is_empty(),
        suggest_continue_as_new_reasons: reasons,
        history_size_bytes,
        ..Default::default()
    };
    draft.append(Attributes::WorkflowTaskStartedEventAttributes(attributes));
    let now_ms = draft.now_ms;
    let mut wft = draft.ms.workflow_task.take().ok_or_else(not_found)?;
    wft.started_event_id = started_event_id;
    wft.started_time_ms = now_ms;
    wft.identity = identity;
    wft.request_id = poll_request_id;
    let info = task_info(&draft.ms, &wft);
    draft.ms.workflow_task = Some(wft);
    Ok(Ok(ShardReply::WorkflowTaskStarted(info)))
}

/// The reply for a started workflow task.
fn task_info(ms: &MutableState, wft: &WorkflowTaskState) -> WorkflowTaskInfo {
    WorkflowTaskInfo {
        token: TaskToken {
            kind: TaskKind::Workflow,
            execution: ms.key.clone(),
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id: wft.started_event_id,
            attempt: wft.attempt,
        },
        workflow_type: ms.workflow_type.clone(),
        task_queue: ms.task_queue.clone(),
        scheduled_event_id: wft.scheduled_event_id,
        started_event_id: wft.started_event_id,
        previous_started_event_id: ms.previous_started_event_id,
        attempt: wft.attempt,
        scheduled_time_ms: wft.scheduled_time_ms,
        started_time_ms: wft.started_time_ms,
    }
}
