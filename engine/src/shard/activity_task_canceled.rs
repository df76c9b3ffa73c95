//! RespondActivityTaskCanceled: the worker ended a started attempt as canceled (normally after
//! its heartbeat reply said `cancel_requested`). ActivityTaskStarted + ActivityTaskCanceled{details,
//! latest_cancel_requested_event_id, scheduled/started IDs, identity}, then WFT+. Like Temporal,
//! it is refused (InvalidArgument, nothing changes) unless the workflow requested the cancel.

use crate::error::EngineError;
use crate::shard::activity_outcome;
use crate::shard::command::ShardReply;
use crate::shard::task_token::{ACTIVITY_TASK_NOT_FOUND, started_activity};
use crate::shard::txn::{Committed, Txn};
use crate::token::TaskToken;
use temporalio_protos::temporal::api::{
    history::v1::{ActivityTaskCanceledEventAttributes, history_event::Attributes},
    workflowservice::v1::RespondActivityTaskCanceledRequest,
};

/// Temporal's message for a cancellation report nobody asked for.
const NOT_CANCEL_REQUESTED: &str =
    "unable to mark activity as canceled without activity being request canceled first";

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RespondActivityTaskCanceledRequest,
) -> Result<Committed, EngineError> {
    let latest_cancel_requested_event_id = started_activity(txn, token)?.cancel_requested_event_id;
    if latest_cancel_requested_event_id == 0 {
        return Err(EngineError::InvalidArgument(NOT_CANCEL_REQUESTED.into()));
    }
    let draft = txn
        .draft(&token.execution)
        .ok_or_else(|| EngineError::NotFound(ACTIVITY_TASK_NOT_FOUND.into()))?;
    let scheduled_event_id = token.scheduled_event_id;
    activity_outcome::finish(draft, scheduled_event_id, |started_event_id| {
        Attributes::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
            details: request.details,
            latest_cancel_requested_event_id,
            scheduled_event_id,
            started_event_id,
            identity: request.identity,
            ..Default::default()
        })
    });
    Ok(Ok(ShardReply::Done))
}
