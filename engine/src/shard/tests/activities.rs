use super::*;
use crate::shard::Notice;
use crate::token::TaskKind;
use temporalio_protos::temporal::api::enums::v1::{RetryState, TimeoutType};

fn retry_policy(initial_ms: i64, maximum_attempts: i32) -> RetryPolicy {
    RetryPolicy {
        initial_interval: Some(duration_ms(initial_ms)),
        backoff_coefficient: 2.0,
        maximum_attempts,
        ..Default::default()
    }
}

/// A running workflow whose first task scheduled `command` (event 5); the activity is ready.
fn with_activity(command: Command) -> (Harness, ExecutionKey) {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![command]);
    assert_eq!(h.event_types(&k)[4], EventType::ActivityTaskScheduled);
    (h, k)
}

fn terminal_events(h: &Harness, k: &ExecutionKey) -> Vec<EventType> {
    h.event_types(k)[5..].to_vec()
}

#[test]
fn poll_hands_out_the_attempt_without_an_event() {
    let (mut h, k) = with_activity(schedule_activity(
        "charge",
        30_000,
        Some(retry_policy(200, 0)),
    ));
    let pending = h.state.pending_tasks();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].kind,
            pending[0].task_queue.as_str(),
            pending[0].scheduled_event_id
        ),
        (TaskKind::Activity, "orders", 5)
    );
    h.advance(7);
    let applied_len = h.history(&k).len();
    let info = h.clone_poll(&k, 5);
    assert_eq!(h.history(&k).len(), applied_len, "no event at start");
    assert_eq!(info.token.kind, TaskKind::Activity);
    assert_eq!(
        (
            info.token.scheduled_event_id,
            info.token.started_event_id,
            info.token.attempt
        ),
        (5, 0, 1)
    );
    assert_eq!(
        (info.activity_id.as_str(), info.activity_type.as_str()),
        ("charge", "charge_type")
    );
    assert_eq!(info.workflow_type, "OrderWorkflow");
    assert_eq!(info.input, Some(payloads("charge")));
    assert_eq!(
        (
            info.scheduled_time_ms,
            info.current_attempt_scheduled_time_ms,
            info.started_time_ms
        ),
        (T0, T0, T0 + 7)
    );
    assert_eq!(
        (
            info.start_to_close_timeout_ms,
            info.schedule_to_close_timeout_ms,
            info.heartbeat_timeout_ms
        ),
        (30_000, 0, 0)
    );
    assert_eq!(
        info.retry_policy.as_ref().map(|p| p.maximum_interval),
        Some(Some(duration_ms(20_000)))
    );
    assert!(h.state.pending_tasks().is_empty());
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 7 + 30_000));
    // A second poller does not get it.
    assert_eq!(
        h.poll_activity(&k, 5),
        Err(EngineError::NotFound("Activity task not found.".into()))
    );
}

#[test]
fn failed_attempts_are_retried_with_backoff_then_completed_with_started_attempt_3() {
    let (mut h, k) = with_activity(schedule_activity(
        "charge",
        30_000,
        Some(retry_policy(200, 0)),
    ));
    // Attempt 1 fails: no event, back-off 200 ms.
    let a1 = h.clone_poll(&k, 5);
    h.advance(10);
    let applied = h.fail_activity(&a1.token, app_failure("gateway down on attempt 1", false));
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert!(applied.changes.events.is_empty());
    assert!(applied.notices.contains(&Notice::TimerArmed {
        fire_at_ms: T0 + 10 + 200
    }));
    assert!(
        h.state.pending_tasks().is_empty(),
        "not dispatchable during back-off"
    );
    assert_eq!(
        h.poll_activity(&k, 5),
        Err(EngineError::NotFound("Activity task not found.".into()))
    );
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 210));
    h.advance(199);
    assert_eq!(h.fire_timers(), 0);
    h.advance(1);
    let applied = h.apply(ShardCommandKind::FireTimers);
    assert!(
        applied
            .notices
            .iter()
            .any(|n| matches!(n, Notice::TaskReady(t) if t.scheduled_event_id == 5))
    );
    // Attempt 2 carries the previous failure; it fails too: back-off 400 ms.
    let a2 = h.clone_poll(&k, 5);
    assert_eq!(a2.attempt, 2);
    assert_eq!(a2.current_attempt_scheduled_time_ms, T0 + 210);
    assert_eq!(a2.scheduled_time_ms, T0);
    // The stale attempt-1 token is refused.
    let stale = h.complete_activity(&a1.token, "late");
    assert_eq!(
        stale.reply,
        Some(Err(EngineError::NotFound(
            "Activity task not found.".into()
        )))
    );
    assert!(stale.changes.is_empty());
    h.fail_activity(&a2.token, app_failure("gateway down on attempt 2", false));
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 210 + 400));
    h.advance(399);
    h.fire_timers();
    assert!(h.state.pending_tasks().is_empty());
    h.advance(1);
    h.fire_timers();
    let a3 = h.clone_poll(&k, 5);
    assert_eq!(a3.attempt, 3);
    h.complete_activity(&a3.token, "charged");
    assert_eq!(
        terminal_events(&h, &k),
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskCompleted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskStartedEventAttributes(s) = attrs(h.event(&k, 6)) else {
        panic!()
    };
    assert_eq!(s.attempt, 3);
    assert_eq!(
        s.last_failure.as_ref().map(|f| f.message.as_str()),
        Some("gateway down on attempt 2")
    );
    let Attributes::ActivityTaskCompletedEventAttributes(c) = attrs(h.event(&k, 7)) else {
        panic!()
    };
    assert_eq!((c.scheduled_event_id, c.started_event_id), (5, 6));
    assert_eq!(c.result, Some(payloads("charged")));
    assert!(h.state.execution(&k).unwrap().activities.is_empty());
}

fn final_failure(h: &Harness, k: &ExecutionKey) -> (RetryState, i32) {
    assert_eq!(
        terminal_events(h, k),
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskStartedEventAttributes(s) = attrs(h.event(k, 6)) else {
        panic!()
    };
    let Attributes::ActivityTaskFailedEventAttributes(f) = attrs(h.event(k, 7)) else {
        panic!()
    };
    assert_eq!((f.scheduled_event_id, f.started_event_id), (5, 6));
    (RetryState::try_from(f.retry_state).unwrap(), s.attempt)
}

#[test]
fn non_retryable_failures_end_the_activity_at_once() {
    // The failure says so.
    let (mut h, k) = with_activity(schedule_activity("charge", 30_000, None));
    let a = h.clone_poll(&k, 5);
    h.fail_activity(&a.token, app_failure("card declined", true));
    assert_eq!(final_failure(&h, &k), (RetryState::NonRetryableFailure, 1));
    // The policy lists its type.
    let mut policy = retry_policy(100, 0);
    policy.non_retryable_error_types = vec!["AppError".into()];
    let (mut h, k) = with_activity(schedule_activity("charge", 30_000, Some(policy)));
    let a = h.clone_poll(&k, 5);
    h.fail_activity(&a.token, app_failure("no such account", false));
    assert_eq!(final_failure(&h, &k), (RetryState::NonRetryableFailure, 1));
}

#[test]
fn maximum_attempts_end_the_activity() {
    let (mut h, k) = with_activity(schedule_activity(
        "charge",
        30_000,
        Some(retry_policy(100, 2)),
    ));
    let a = h.clone_poll(&k, 5);
    h.fail_activity(&a.token, app_failure("one", false));
    h.advance(100);
    h.fire_timers();
    let a = h.clone_poll(&k, 5);
    h.fail_activity(&a.token, app_failure("two", false));
    assert_eq!(
        final_failure(&h, &k),
        (RetryState::MaximumAttemptsReached, 2)
    );
}

#[test]
fn next_retry_delay_overrides_and_schedule_to_close_stops_retries() {
    let mut command = schedule_activity("charge", 1_000, Some(retry_policy(100, 0)));
    if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
        &mut command.attributes
    {
        a.schedule_to_close_timeout = Some(duration_ms(10_000));
    }
    let (mut h, k) = with_activity(command);
    let a = h.clone_poll(&k, 5);
    let mut failure = app_failure("slow down", false);
    if let Some(FailureInfo::ApplicationFailureInfo(info)) = &mut failure.failure_info {
        info.next_retry_delay = Some(duration_ms(3_000));
    }
    h.fail_activity(&a.token, failure);
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 3_000));
    h.advance(3_000);
    h.fire_timers();
    let a = h.clone_poll(&k, 5);
    h.advance(500);
    let mut failure = app_failure("slow down more", false);
    if let Some(FailureInfo::ApplicationFailureInfo(info)) = &mut failure.failure_info {
        info.next_retry_delay = Some(duration_ms(7_000));
    }
    h.fail_activity(&a.token, failure);
    assert_eq!(final_failure(&h, &k), (RetryState::Timeout, 2));
}

#[test]
fn start_to_close_timeout_is_retried_then_final() {
    let (mut h, k) = with_activity(schedule_activity(
        "charge",
        1_000,
        Some(retry_policy(100, 2)),
    ));
    h.clone_poll(&k, 5);
    h.advance(999);
    assert_eq!(h.fire_timers(), 0);
    h.advance(1);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(h.history(&k).len(), 5, "a retried timeout writes no event");
    h.advance(100);
    h.fire_timers();
    let a2 = h.clone_poll(&k, 5);
    assert_eq!(a2.attempt, 2);
    h.advance(1_000);
    h.fire_timers();
    assert_eq!(
        terminal_events(&h, &k),
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskTimedOut,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskStartedEventAttributes(s) = attrs(h.event(&k, 6)) else {
        panic!()
    };
    assert_eq!(s.attempt, 2);
    assert_eq!(
        s.last_failure.as_ref().map(|f| f.message.as_str()),
        Some("activity StartToClose timeout")
    );
    let Attributes::ActivityTaskTimedOutEventAttributes(t) = attrs(h.event(&k, 7)) else {
        panic!()
    };
    assert_eq!(
        (t.scheduled_event_id, t.started_event_id, t.retry_state),
        (5, 6, RetryState::MaximumAttemptsReached as i32)
    );
    let failure = t.failure.as_ref().unwrap();
    let Some(FailureInfo::TimeoutFailureInfo(info)) = &failure.failure_info else {
        panic!()
    };
    assert_eq!(info.timeout_type, TimeoutType::StartToClose as i32);
    // The worker of the timed-out attempt gets NotFound.
    let late = h.complete_activity(&a2.token, "late");
    assert_eq!(
        late.reply,
        Some(Err(EngineError::NotFound(
            "Activity task not found.".into()
        )))
    );
}

#[test]
fn heartbeat_timeout_is_retried() {
    let mut command = schedule_activity("charge", 10_000, Some(retry_policy(100, 0)));
    if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
        &mut command.attributes
    {
        a.heartbeat_timeout = Some(duration_ms(2_000));
    }
    let (mut h, k) = with_activity(command);
    h.clone_poll(&k, 5);
    h.advance(2_000);
    assert_eq!(h.fire_timers(), 1);
    let activity = &h.state.execution(&k).unwrap().activities[&5];
    assert_eq!(activity.attempt, 2);
    assert_eq!(
        activity.last_failure.as_ref().map(|f| f.message.as_str()),
        Some("activity Heartbeat timeout")
    );
}

#[test]
fn schedule_to_start_timeout_is_final_without_started() {
    let mut command = schedule_activity("charge", 10_000, None);
    if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
        &mut command.attributes
    {
        a.schedule_to_start_timeout = Some(duration_ms(3_000));
    }
    let (mut h, k) = with_activity(command);
    h.advance(3_000);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(
        terminal_events(&h, &k),
        [
            EventType::ActivityTaskTimedOut,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskTimedOutEventAttributes(t) = attrs(h.event(&k, 6)) else {
        panic!()
    };
    assert_eq!(
        (t.started_event_id, t.retry_state),
        (0, RetryState::Timeout as i32)
    );
    assert!(
        h.state
            .pending_tasks()
            .iter()
            .all(|t| t.kind == TaskKind::Workflow)
    );
}

#[test]
fn schedule_to_close_timeout_ends_a_started_attempt() {
    let mut command = schedule_activity("charge", 0, None);
    if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
        &mut command.attributes
    {
        a.start_to_close_timeout = None;
        a.schedule_to_close_timeout = Some(duration_ms(4_000));
    }
    let (mut h, k) = with_activity(command);
    let Attributes::ActivityTaskScheduledEventAttributes(s) = attrs(h.event(&k, 5)) else {
        panic!()
    };
    assert_eq!(
        (s.start_to_close_timeout, s.schedule_to_start_timeout),
        (Some(duration_ms(4_000)), Some(duration_ms(4_000)))
    );
    h.advance(1_000);
    h.clone_poll(&k, 5);
    h.advance(3_000);
    h.fire_timers();
    assert_eq!(
        terminal_events(&h, &k),
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskTimedOut,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskTimedOutEventAttributes(t) = attrs(h.event(&k, 7)) else {
        panic!()
    };
    let Some(FailureInfo::TimeoutFailureInfo(info)) =
        t.failure.as_ref().and_then(|f| f.failure_info.clone())
    else {
        panic!()
    };
    assert_eq!(
        (info.timeout_type, t.retry_state),
        (
            TimeoutType::ScheduleToClose as i32,
            RetryState::Timeout as i32
        )
    );
}

#[test]
fn activity_timeouts_are_deduced_and_capped_by_the_run_timeout() {
    let mut h = Harness::new();
    let mut request = start_request("wf", "r");
    request.workflow_run_timeout = Some(duration_ms(60_000));
    h.start_with(request);
    let k = key("wf", "run-1");
    h.run_workflow_task(&k, vec![schedule_activity("a", 120_000, None)]);
    let Attributes::ActivityTaskScheduledEventAttributes(s) = attrs(h.event(&k, 5)) else {
        panic!()
    };
    assert_eq!(s.schedule_to_close_timeout, Some(duration_ms(60_000)));
    assert_eq!(s.schedule_to_start_timeout, Some(duration_ms(60_000)));
    assert_eq!(s.start_to_close_timeout, Some(duration_ms(60_000)));
}

#[test]
fn activity_responses_after_the_workflow_closed_are_not_found() {
    let (mut h, k) = with_activity(schedule_activity("charge", 30_000, None));
    let a = h.clone_poll(&k, 5);
    let mut request = start_request("wf", "replace");
    request.workflow_id_conflict_policy =
        temporalio_protos::temporal::api::enums::v1::WorkflowIdConflictPolicy::TerminateExisting
            as i32;
    h.start_with(request);
    let late = h.complete_activity(&a.token, "late");
    assert_eq!(
        late.reply,
        Some(Err(EngineError::NotFound(
            "Workflow execution already completed.".into()
        )))
    );
    assert!(late.changes.is_empty());
    assert!(
        h.state
            .pending_tasks()
            .iter()
            .all(|t| t.execution.run_id != "run-1")
    );
}
