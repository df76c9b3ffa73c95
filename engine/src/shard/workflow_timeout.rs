//! The run or execution timeout of a workflow passed: WorkflowExecutionTimedOut; the run closes.
//! A run timeout is retried by the workflow retry policy like a failure (retry state
//! IN_PROGRESS and a successor run, see `workflow_retry`); the execution timeout ends the chain
//! with TIMEOUT.

use crate::shard::draft::Draft;
use crate::shard::workflow_retry::{self, RetryOutcome};
use temporalio_protos::temporal::api::{
    enums::v1::{RetryState, TimeoutType, WorkflowExecutionStatus},
    failure::v1::{Failure, TimeoutFailureInfo, failure::FailureInfo},
    history::v1::{WorkflowExecutionTimedOutEventAttributes, history_event::Attributes},
};

/// Which workflow timeout fired.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WorkflowTimeout {
    Run,
    Execution,
}

/// Returns whether the entry took effect (false if it is obsolete or not yet due).
pub(crate) fn fire(draft: &mut Draft, timeout: WorkflowTimeout) -> bool {
    let deadline_ms = match timeout {
        WorkflowTimeout::Run => draft.ms.run_expiration_time_ms,
        WorkflowTimeout::Execution => draft.ms.execution_expiration_time_ms,
    };
    if !draft.ms.is_running() || deadline_ms == 0 || deadline_ms > draft.now_ms {
        return false;
    }
    let retry = match timeout {
        WorkflowTimeout::Run => workflow_retry::decide(draft, &run_timeout_failure()),
        WorkflowTimeout::Execution => RetryOutcome {
            retry_state: RetryState::Timeout,
            next_run: None,
        },
    };
    let attributes = WorkflowExecutionTimedOutEventAttributes {
        retry_state: retry.retry_state as i32,
        new_execution_run_id: retry
            .next_run
            .as_ref()
            .map(|next| next.run_id.clone())
            .unwrap_or_default(),
    };
    draft.close(
        WorkflowExecutionStatus::TimedOut,
        Attributes::WorkflowExecutionTimedOutEventAttributes(attributes),
    );
    draft.next_run = retry.next_run;
    true
}

/// The failure a run timeout is retried with (Temporal's start-to-close timeout failure).
fn run_timeout_failure() -> Failure {
    Failure {
        message: "workflow run timed out".into(),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: TimeoutType::StartToClose as i32,
            last_heartbeat_details: None,
        })),
        ..Default::default()
    }
}
