//! Workflow retry policy: a run that fails (FailWorkflowExecution) or times out (run timeout)
//! while its retry policy allows another attempt closes with retry state IN_PROGRESS and names
//! its successor: the same workflow, attempt + 1, started after the computed back-off, with the
//! failure as `continued_failure` and initiator RETRY. The chain's execution timeout bounds the
//! retries. The decision follows Temporal (`retry.go`), shared with activities in `retry`.

use crate::shard::draft::Draft;
use crate::shard::new_run::{NextRun, RunChain, chain_request, successor_run_id};
use crate::shard::retry::{RetryDecision, decide_attempt, effective_policy};
use temporalio_protos::temporal::api::{
    enums::v1::{ContinueAsNewInitiator, RetryState},
    failure::v1::Failure,
};

/// What a failing run does: its close event's retry state and, when retried, its successor.
pub(crate) struct RetryOutcome {
    pub retry_state: RetryState,
    pub next_run: Option<NextRun>,
}

/// Decides the retry of the run in `draft`, which fails with `failure` now (before its close
/// event is appended).
pub(crate) fn decide(draft: &Draft, failure: &Failure) -> RetryOutcome {
    let ms = &draft.ms;
    let Some(policy) = ms.retry_policy.as_ref() else {
        return final_state(RetryState::RetryPolicyNotSet);
    };
    let Ok(policy) = effective_policy(Some(policy)) else {
        return final_state(RetryState::NonRetryableFailure);
    };
    let decision = decide_attempt(
        &policy,
        ms.attempt,
        failure,
        draft.now_ms,
        ms.execution_expiration_time_ms,
    );
    let backoff_ms = match decision {
        RetryDecision::Final(state) => return final_state(state),
        RetryDecision::Retry { backoff_ms } => backoff_ms,
    };
    let (request, timeouts) = chain_request(ms);
    let chain = RunChain {
        continued_execution_run_id: ms.key.run_id.clone(),
        first_execution_run_id: ms.first_execution_run_id.clone(),
        attempt: ms.attempt + 1,
        initiator: ContinueAsNewInitiator::Retry as i32,
        continued_failure: Some(failure.clone()),
        last_completion_result: ms.last_completion_result.clone(),
        first_workflow_task_backoff_ms: backoff_ms,
        execution_expiration_time_ms: ms.execution_expiration_time_ms,
        parent: ms.parent.clone(),
    };
    RetryOutcome {
        retry_state: RetryState::InProgress,
        next_run: Some(NextRun {
            run_id: successor_run_id(&ms.key.run_id, ms.next_event_id),
            request,
            timeouts,
            chain,
        }),
    }
}

fn final_state(retry_state: RetryState) -> RetryOutcome {
    RetryOutcome {
        retry_state,
        next_run: None,
    }
}
