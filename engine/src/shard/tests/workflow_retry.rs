//! Workflow retry policy: failures and run timeouts start the next attempt.

use super::*;
use temporalio_protos::temporal::api::enums::v1::{
    ContinueAsNewInitiator, RetryState, WorkflowExecutionStatus,
};

fn retried_start(max_attempts: i32) -> StartWorkflowExecutionRequest {
    let mut request = start_request("wf", "req");
    request.retry_policy = Some(RetryPolicy {
        initial_interval: Some(duration_ms(1_000)),
        backoff_coefficient: 2.0,
        maximum_attempts: max_attempts,
        non_retryable_error_types: vec!["Fatal".into()],
        ..Default::default()
    });
    request
}

fn current(h: &Harness) -> ExecutionKey {
    let run = h.state.current_run(&key("wf", "").workflow_key()).unwrap();
    key("wf", &run.run_id)
}

fn close_attrs(h: &Harness, k: &ExecutionKey) -> (i32, String) {
    match attrs(h.history(k).last().unwrap()) {
        Attributes::WorkflowExecutionFailedEventAttributes(f) => {
            (f.retry_state, f.new_execution_run_id.clone())
        }
        Attributes::WorkflowExecutionTimedOutEventAttributes(t) => {
            (t.retry_state, t.new_execution_run_id.clone())
        }
        other => panic!("not a failure close event: {other:?}"),
    }
}

#[test]
fn failures_are_retried_with_backoff_until_maximum_attempts() {
    let mut h = Harness::new();
    h.start_with(retried_start(3));
    for (attempt, backoff_ms) in [(1, 1_000), (2, 2_000)] {
        let k = current(&h);
        h.run_workflow_task(&k, vec![fail_workflow("boom")]);
        let (state, next) = close_attrs(&h, &k);
        assert_eq!(state, RetryState::InProgress as i32, "attempt {attempt}");
        let next_key = key("wf", &next);
        assert_eq!(current(&h), next_key);
        let Attributes::WorkflowExecutionStartedEventAttributes(s) = attrs(h.event(&next_key, 1))
        else {
            panic!()
        };
        assert_eq!(s.attempt, attempt + 1);
        assert_eq!(s.initiator, ContinueAsNewInitiator::Retry as i32);
        assert_eq!(s.first_execution_run_id, "run-1");
        assert_eq!(s.continued_execution_run_id, k.run_id);
        assert_eq!(s.continued_failure.as_ref().unwrap().message, "boom");
        assert_eq!(s.first_workflow_task_backoff, Some(duration_ms(backoff_ms)));
        assert_eq!(s.input, Some(payloads("input")));
        assert!(h.state.pending_tasks().is_empty(), "the retry waits");
        h.advance(backoff_ms);
        h.fire_timers();
        assert_eq!(h.state.pending_tasks().len(), 1);
    }
    let k = current(&h);
    h.run_workflow_task(&k, vec![fail_workflow("boom")]);
    assert_eq!(
        close_attrs(&h, &k),
        (RetryState::MaximumAttemptsReached as i32, String::new())
    );
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Failed as i32
    );
}

#[test]
fn non_retryable_failures_and_no_policy_end_the_chain() {
    let mut h = Harness::new();
    h.start_with(retried_start(0));
    let k = current(&h);
    let mut command = fail_workflow("fatal");
    if let Some(command::Attributes::FailWorkflowExecutionCommandAttributes(a)) =
        &mut command.attributes
        && let Some(FailureInfo::ApplicationFailureInfo(info)) =
            a.failure.as_mut().and_then(|f| f.failure_info.as_mut())
    {
        info.r#type = "Fatal".into();
    }
    h.run_workflow_task(&k, vec![command]);
    assert_eq!(
        close_attrs(&h, &k),
        (RetryState::NonRetryableFailure as i32, String::new())
    );

    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![fail_workflow("boom")]);
    assert_eq!(
        close_attrs(&h, &k),
        (RetryState::RetryPolicyNotSet as i32, String::new())
    );
}

#[test]
fn run_timeouts_are_retried_within_the_execution_timeout() {
    let mut request = retried_start(0);
    request.workflow_run_timeout = Some(duration_ms(10_000));
    request.workflow_execution_timeout = Some(duration_ms(25_000));
    let mut h = Harness::new();
    h.start_with(request);
    let first = current(&h);
    h.advance(10_000);
    h.fire_timers();
    let (state, next) = close_attrs(&h, &first);
    assert_eq!(state, RetryState::InProgress as i32);
    let second = key("wf", &next);
    let ms = h.state.execution(&second).unwrap();
    assert_eq!(ms.attempt, 2);
    assert_eq!(ms.execution_expiration_time_ms, T0 + 25_000);
    // Back-off 1 s, then a 10 s run: times out at T0 + 21 s; the next back-off (2 s) plus the
    // execution deadline at T0 + 25 s still allows attempt 3, which the execution timeout ends.
    h.advance(11_000);
    h.fire_timers();
    let (state, next) = close_attrs(&h, &second);
    assert_eq!(state, RetryState::InProgress as i32);
    let third = key("wf", &next);
    h.advance(4_000);
    h.fire_timers();
    assert_eq!(
        h.state.execution(&third).unwrap().status,
        WorkflowExecutionStatus::TimedOut as i32
    );
    assert_eq!(
        close_attrs(&h, &third),
        (RetryState::Timeout as i32, String::new())
    );
}
