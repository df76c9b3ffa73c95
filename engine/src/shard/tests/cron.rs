//! Cron schedules: delayed first task, next run on completion and failure.

use super::*;
use temporalio_protos::temporal::api::enums::v1::ContinueAsNewInitiator;

fn current(h: &Harness) -> ExecutionKey {
    let run = h.state.current_run(&key("wf", "").workflow_key()).unwrap();
    key("wf", &run.run_id)
}

#[test]
fn cron_runs_wait_for_the_schedule_and_carry_the_last_result() {
    let mut request = start_request("wf", "req");
    request.cron_schedule = "* * * * *".into();
    let mut h = Harness::new();
    h.start_with(request);
    let first = current(&h);
    // T0 is 22:13:20 UTC: the first run waits 40 s for the next minute.
    assert_eq!(h.event_types(&first), [EventType::WorkflowExecutionStarted]);
    h.advance(39_999);
    h.fire_timers();
    assert!(h.state.pending_tasks().is_empty());
    h.advance(1);
    h.fire_timers();
    h.run_workflow_task(&first, vec![complete_workflow("run-1 result")]);
    let Attributes::WorkflowExecutionCompletedEventAttributes(done) =
        attrs(h.history(&first).last().unwrap())
    else {
        panic!()
    };
    let second = key("wf", &done.new_execution_run_id);
    assert_eq!(current(&h), second);
    let Attributes::WorkflowExecutionStartedEventAttributes(s) = attrs(h.event(&second, 1)) else {
        panic!()
    };
    assert_eq!(s.initiator, ContinueAsNewInitiator::CronSchedule as i32);
    assert_eq!(s.cron_schedule, "* * * * *");
    assert_eq!(s.last_completion_result, Some(payloads("run-1 result")));
    assert_eq!(s.first_workflow_task_backoff, Some(duration_ms(60_000)));
    // A failed cron run (no retry policy) still schedules the next one, carrying the last
    // successful result and the failure.
    h.advance(60_000);
    h.fire_timers();
    h.run_workflow_task(&second, vec![fail_workflow("bad minute")]);
    let Attributes::WorkflowExecutionFailedEventAttributes(failed) =
        attrs(h.history(&second).last().unwrap())
    else {
        panic!()
    };
    let third = key("wf", &failed.new_execution_run_id);
    let Attributes::WorkflowExecutionStartedEventAttributes(s) = attrs(h.event(&third, 1)) else {
        panic!()
    };
    assert_eq!(s.last_completion_result, Some(payloads("run-1 result")));
    assert_eq!(s.continued_failure.as_ref().unwrap().message, "bad minute");
}

#[test]
fn an_invalid_cron_schedule_is_rejected() {
    let mut request = start_request("wf", "req");
    request.cron_schedule = "every day".into();
    let mut h = Harness::new();
    let applied = h.start_with(request);
    assert!(matches!(
        applied.reply,
        Some(Err(EngineError::InvalidArgument(ref m))) if m.contains("CronSchedule")
    ));
    assert!(applied.changes.is_empty());
}
