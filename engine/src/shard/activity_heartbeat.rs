//! RecordActivityTaskHeartbeat: keeps the details for the next attempt and restarts the
//! heartbeat timeout. No event. A stale token gets NotFound, which makes the SDK cancel the
//! activity. The reply's `cancel_requested` tells the worker the workflow asked to cancel it.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::task_token::{ACTIVITY_TASK_NOT_FOUND, started_activity};
use crate::shard::txn::{Committed, Txn};
use crate::token::TaskToken;
use temporalio_protos::temporal::api::workflowservice::v1::RecordActivityTaskHeartbeatRequest;

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RecordActivityTaskHeartbeatRequest,
) -> Result<Committed, EngineError> {
    started_activity(txn, token)?;
    let not_found = || EngineError::NotFound(ACTIVITY_TASK_NOT_FOUND.into());
    let draft = txn.draft(&token.execution).ok_or_else(not_found)?;
    let now_ms = draft.now_ms;
    let activity = draft
        .ms
        .activities
        .get_mut(&token.scheduled_event_id)
        .ok_or_else(not_found)?;
    activity.last_heartbeat_time_ms = now_ms;
    if request.details.is_some() {
        activity.last_heartbeat_details = request.details;
    }
    Ok(Ok(ShardReply::ActivityHeartbeat {
        cancel_requested: activity.is_cancel_requested(),
    }))
}
