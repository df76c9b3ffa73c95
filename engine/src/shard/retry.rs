//! Activity retry policy: defaults, validation and the server-side retry decision, following
//! Temporal (`service/history/workflow/retry.go`).

use crate::shard::mutable_state::ActivityState;
use crate::shard::time::{MAX_DURATION_MS, duration, duration_ms};
use temporalio_protos::temporal::api::{
    common::v1::RetryPolicy,
    enums::v1::{RetryState, TimeoutType},
    failure::v1::{Failure, failure::FailureInfo},
};

/// Prefix of the `non_retryable_error_types` entries that stop retries of timeouts
/// ("TemporalTimeout:StartToClose", "TemporalTimeout:Heartbeat").
const TIMEOUT_TYPE_PREFIX: &str = "TemporalTimeout:";

/// The effective activity retry policy: the command's, with Temporal's defaults filled in
/// (initial interval 1 s, coefficient 2, maximum interval 100 × initial, unlimited attempts).
pub(crate) fn effective_policy(policy: Option<&RetryPolicy>) -> Result<RetryPolicy, String> {
    let mut policy = policy.cloned().unwrap_or_default();
    let initial_ms = duration_ms(policy.initial_interval.as_ref())
        .map_err(|()| "InitialInterval cannot be negative on retry policy.".to_string())?;
    let initial_ms = if initial_ms == 0 { 1_000 } else { initial_ms };
    if policy.backoff_coefficient == 0.0 {
        policy.backoff_coefficient = 2.0;
    }
    if !policy.backoff_coefficient.is_finite() || policy.backoff_coefficient < 1.0 {
        return Err("BackoffCoefficient cannot be less than 1 on retry policy.".into());
    }
    let maximum_ms = duration_ms(policy.maximum_interval.as_ref())
        .map_err(|()| "MaximumInterval cannot be negative on retry policy.".to_string())?;
    let maximum_ms = if maximum_ms == 0 {
        initial_ms.saturating_mul(100).min(MAX_DURATION_MS)
    } else {
        maximum_ms
    };
    if maximum_ms < initial_ms {
        return Err("MaximumInterval cannot be less than InitialInterval on retry policy.".into());
    }
    if policy.maximum_attempts < 0 {
        return Err("MaximumAttempts cannot be negative on retry policy.".into());
    }
    policy.initial_interval = Some(duration(initial_ms));
    policy.maximum_interval = Some(duration(maximum_ms));
    Ok(policy)
}

/// What happens after an attempt failed or timed out.
#[derive(Debug, PartialEq)]
pub(crate) enum RetryDecision {
    /// Schedule attempt + 1 after this back-off; no event is written.
    Retry { backoff_ms: i64 },
    /// The activity ends; its terminal event carries this retry state.
    Final(RetryState),
}

/// Decides whether the failed attempt of `activity` is retried at `now_ms`.
pub(crate) fn decide(activity: &ActivityState, failure: &Failure, now_ms: i64) -> RetryDecision {
    let policy = &activity.retry_policy;
    // Temporal does not retry an activity the workflow asked to cancel.
    if activity.is_cancel_requested() {
        return RetryDecision::Final(RetryState::CancelRequested);
    }
    let expiration_ms = if activity.schedule_to_close_timeout_ms > 0 {
        activity.scheduled_time_ms + activity.schedule_to_close_timeout_ms
    } else {
        0
    };
    decide_attempt(policy, activity.attempt, failure, now_ms, expiration_ms)
}

/// Decides whether failed `attempt` under the effective `policy` is retried at `now_ms`; a retry
/// must start before `expiration_ms` (0 = no deadline). Shared by activities and workflows.
pub(crate) fn decide_attempt(
    policy: &RetryPolicy,
    attempt: i32,
    failure: &Failure,
    now_ms: i64,
    expiration_ms: i64,
) -> RetryDecision {
    if !is_retryable(failure, &policy.non_retryable_error_types) {
        return RetryDecision::Final(RetryState::NonRetryableFailure);
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return RetryDecision::Final(RetryState::MaximumAttemptsReached);
    }
    let backoff_ms = match next_retry_delay_ms(failure) {
        Some(delay_ms) => delay_ms,
        None => exponential_backoff_ms(policy, attempt),
    };
    if expiration_ms > 0 && now_ms.saturating_add(backoff_ms) > expiration_ms {
        return RetryDecision::Final(RetryState::Timeout);
    }
    RetryDecision::Retry { backoff_ms }
}

/// min(initial · coefficient^(attempt − 1), maximum interval).
fn exponential_backoff_ms(policy: &RetryPolicy, attempt: i32) -> i64 {
    let initial_ms = duration_ms(policy.initial_interval.as_ref()).unwrap_or(1_000);
    let maximum_ms = duration_ms(policy.maximum_interval.as_ref()).unwrap_or(MAX_DURATION_MS);
    let exponent = attempt.saturating_sub(1).max(0);
    let interval = initial_ms as f64 * policy.backoff_coefficient.powi(exponent);
    // Float-to-int `as` saturates (and maps NaN to 0), so huge intervals clamp to the maximum.
    (interval as i64).clamp(0, maximum_ms)
}

/// An application failure's `next_retry_delay`, which overrides the policy's back-off.
fn next_retry_delay_ms(failure: &Failure) -> Option<i64> {
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            duration_ms(info.next_retry_delay.as_ref())
                .ok()
                .filter(|ms| *ms > 0)
        }
        _ => None,
    }
}

fn is_retryable(failure: &Failure, non_retryable_types: &[String]) -> bool {
    match &failure.failure_info {
        Some(FailureInfo::TerminatedFailureInfo(_)) | Some(FailureInfo::CanceledFailureInfo(_)) => {
            false
        }
        Some(FailureInfo::TimeoutFailureInfo(info)) => {
            let name = match TimeoutType::try_from(info.timeout_type) {
                Ok(TimeoutType::StartToClose) => "StartToClose",
                Ok(TimeoutType::Heartbeat) => "Heartbeat",
                _ => return false,
            };
            let listed = format!("{TIMEOUT_TYPE_PREFIX}{name}");
            !non_retryable_types.contains(&listed)
        }
        Some(FailureInfo::ServerFailureInfo(info)) => !info.non_retryable,
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            !info.non_retryable && !non_retryable_types.contains(&info.r#type)
        }
        _ => true,
    }
}
