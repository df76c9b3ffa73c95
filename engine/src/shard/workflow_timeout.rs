//! The run or execution timeout of a workflow passed: WorkflowExecutionTimedOut; the run closes.
//! Workflow retries are not implemented: a run timeout reports RETRY_POLICY_NOT_SET when the
//! workflow has no retry policy and TIMEOUT otherwise; the execution timeout reports TIMEOUT.

use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    enums::v1::{RetryState, WorkflowExecutionStatus},
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
    let (deadline_ms, retry_state) = match timeout {
        WorkflowTimeout::Run if draft.ms.retry_policy.is_none() => (
            draft.ms.run_expiration_time_ms,
            RetryState::RetryPolicyNotSet,
        ),
        WorkflowTimeout::Run => (draft.ms.run_expiration_time_ms, RetryState::Timeout),
        WorkflowTimeout::Execution => (draft.ms.execution_expiration_time_ms, RetryState::Timeout),
    };
    if !draft.ms.is_running() || deadline_ms == 0 || deadline_ms > draft.now_ms {
        return false;
    }
    let attributes = WorkflowExecutionTimedOutEventAttributes {
        retry_state: retry_state as i32,
        new_execution_run_id: String::new(),
    };
    draft.close(
        WorkflowExecutionStatus::TimedOut,
        Attributes::WorkflowExecutionTimedOutEventAttributes(attributes),
    );
    true
}
