//! RespondActivityTaskCompleted: ActivityTaskStarted + ActivityTaskCompleted{result}, then WFT+.

use crate::error::EngineError;
use crate::shard::activity_outcome;
use crate::shard::command::ShardReply;
use crate::shard::task_token::{ACTIVITY_TASK_NOT_FOUND, started_activity};
use crate::shard::txn::{Committed, Txn};
use crate::token::TaskToken;
use temporalio_protos::temporal::api::{
    history::v1::{ActivityTaskCompletedEventAttributes, history_event::Attributes},
    workflowservice::v1::RespondActivityTaskCompletedRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RespondActivityTaskCompletedRequest,
) -> Result<Committed, EngineError> {
    started_activity(txn, token)?;
    let draft = txn
        .draft(&token.execution)
        .ok_or_else(|| EngineError::NotFound(ACTIVITY_TASK_NOT_FOUND.into()))?;
    let scheduled_event_id = token.scheduled_event_id;
    activity_outcome::finish(draft, scheduled_event_id, |started_event_id| {
        Attributes::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
            result: request.result,
            scheduled_event_id,
            started_event_id,
            identity: request.identity,
            ..Default::default()
        })
    });
    Ok(Ok(ShardReply::Done))
}
