//! RespondActivityTaskFailed: the server retries per the activity's retry policy (no event) or
//! ends the activity with ActivityTaskStarted + ActivityTaskFailed{failure, retry_state}.

use crate::error::EngineError;
use crate::shard::activity_outcome;
use crate::shard::command::ShardReply;
use crate::shard::retry::{RetryDecision, decide};
use crate::shard::task_token::{ACTIVITY_TASK_NOT_FOUND, started_activity};
use crate::shard::txn::{Committed, Txn};
use crate::token::TaskToken;
use temporalio_protos::temporal::api::{
    failure::v1::Failure,
    history::v1::{ActivityTaskFailedEventAttributes, history_event::Attributes},
    workflowservice::v1::RespondActivityTaskFailedRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    token: &TaskToken,
    request: RespondActivityTaskFailedRequest,
) -> Result<Committed, EngineError> {
    let activity = started_activity(txn, token)?;
    // A failure without details is still a failure: treat it as a retryable application error.
    let failure = request.failure.unwrap_or_else(|| Failure {
        message: "activity failed".into(),
        ..Default::default()
    });
    let decision = decide(activity, &failure, txn.now_ms);
    let draft = txn
        .draft(&token.execution)
        .ok_or_else(|| EngineError::NotFound(ACTIVITY_TASK_NOT_FOUND.into()))?;
    let scheduled_event_id = token.scheduled_event_id;
    match decision {
        RetryDecision::Retry { backoff_ms } => {
            activity_outcome::retry(
                draft,
                scheduled_event_id,
                backoff_ms,
                failure,
                request.last_heartbeat_details,
            );
        }
        RetryDecision::Final(retry_state) => {
            if let Some(activity) = draft.ms.activities.get_mut(&scheduled_event_id)
                && request.last_heartbeat_details.is_some()
            {
                activity.last_heartbeat_details = request.last_heartbeat_details;
            }
            activity_outcome::finish(draft, scheduled_event_id, |started_event_id| {
                Attributes::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id,
                    started_event_id,
                    identity: request.identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                })
            });
        }
    }
    Ok(Ok(ShardReply::Done))
}
