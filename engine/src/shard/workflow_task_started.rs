//! RecordWorkflowTaskStarted: a poller takes the scheduled workflow task.
//!
//! A retry of the same poll (same `poll_request_id`) gets the same task again without new
//! events; every other mismatch answers NotFound "Workflow task not found." and changes nothing.

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::command::{ShardReply, WorkflowTaskInfo};
use crate::shard::draft::Draft;
use crate::shard::limits::EngineLimits;
use crate::shard::mutable_state::{MutableState, WorkflowTaskState};
use crate::shard::speculative::{speculative_events, started_attributes};
use crate::shard::txn::{Committed, Txn};
use crate::shard::updates::request_messages;
use crate::token::{TaskKind, TaskToken};
use temporalio_protos::temporal::api::enums::v1::SuggestContinueAsNewReason;

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

    let limits = txn.limits().clone();
    let draft = txn.draft(execution).ok_or_else(not_found)?;
    let info = start(draft, identity, poll_request_id, &limits).ok_or_else(not_found)?;
    Ok(Ok(ShardReply::WorkflowTaskStarted(info)))
}

/// Starts the scheduled workflow task for a worker: WorkflowTaskStarted (with the history size
/// and the continue-as-new suggestion; unwritten for a speculative task) and the delivery of
/// pending update requests. `None` if no task is waiting to start.
pub(crate) fn start(
    draft: &mut Draft,
    identity: String,
    request_id: String,
    limits: &EngineLimits,
) -> Option<WorkflowTaskInfo> {
    let suggest_events = limits
        .suggest_continue_as_new_events
        .min(limits.warn_history_events);
    let suggest_bytes = limits
        .suggest_continue_as_new_bytes
        .min(limits.warn_history_size_bytes);
    let now_ms = draft.now_ms;
    let history_size_bytes = draft.ms.history_size_bytes;
    let mut wft = draft
        .ms
        .workflow_task
        .clone()
        .filter(|wft| !wft.is_started())?;
    // A speculative task's Started event takes the ID after its reserved Scheduled ID.
    let started_event_id = if wft.speculative {
        wft.scheduled_event_id + 1
    } else {
        draft.ms.next_event_id
    };
    let mut reasons = Vec::new();
    if history_size_bytes >= suggest_bytes {
        reasons.push(SuggestContinueAsNewReason::HistorySizeTooLarge as i32);
    }
    if started_event_id >= suggest_events {
        reasons.push(SuggestContinueAsNewReason::TooManyHistoryEvents as i32);
    }
    wft.started_time_ms = now_ms;
    wft.identity = identity;
    wft.request_id = request_id;
    wft.started_history_size_bytes = history_size_bytes;
    wft.suggest_continue_as_new_reasons = reasons;
    if !wft.speculative {
        draft.append(started_attributes(&wft));
    }
    wft.started_event_id = started_event_id;
    draft.ms.workflow_task = Some(wft.clone());
    draft.send_updates(started_event_id);
    Some(task_info(&draft.ms, &wft))
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
        speculative_events: speculative_events(ms),
        messages: request_messages(ms, wft.started_event_id),
        sticky_task_queue: wft.sticky_task_queue.clone(),
    }
}
