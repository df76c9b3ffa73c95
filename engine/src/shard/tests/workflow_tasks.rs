use super::*;
use crate::shard::{EngineLimits, HISTORY_LENGTH_LIMIT_REASON, Notice};
use crate::token::TaskKind;
use temporalio_protos::temporal::api::{
    enums::v1::{
        RetryState, SuggestContinueAsNewReason, TimeoutType, WorkflowExecutionStatus,
        WorkflowTaskFailedCause,
    },
    sdk::v1::WorkflowTaskCompletedMetadata,
};

fn wft_failed_cause(
    h: &Harness,
    k: &ExecutionKey,
    event_id: i64,
) -> (WorkflowTaskFailedCause, String) {
    let Attributes::WorkflowTaskFailedEventAttributes(a) = attrs(h.event(k, event_id)) else {
        panic!("event {event_id} is {:?}", h.event(k, event_id).event_type)
    };
    let cause = WorkflowTaskFailedCause::try_from(a.cause).unwrap();
    (
        cause,
        a.failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default(),
    )
}

fn scheduled_attempt(h: &Harness, k: &ExecutionKey, event_id: i64) -> i32 {
    let Attributes::WorkflowTaskScheduledEventAttributes(a) = attrs(h.event(k, event_id)) else {
        panic!()
    };
    a.attempt
}

#[test]
fn poll_writes_started_and_returns_the_task() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.advance(5);
    let info = h.poll_workflow_task(&k);
    assert_eq!(info.token.kind, TaskKind::Workflow);
    assert_eq!(
        (info.scheduled_event_id, info.started_event_id, info.attempt),
        (2, 3, 1)
    );
    assert_eq!(
        (
            info.token.scheduled_event_id,
            info.token.started_event_id,
            info.token.attempt
        ),
        (2, 3, 1)
    );
    assert_eq!(
        (info.workflow_type.as_str(), info.task_queue.as_str()),
        ("OrderWorkflow", "orders")
    );
    assert_eq!(
        (
            info.scheduled_time_ms,
            info.started_time_ms,
            info.previous_started_event_id
        ),
        (T0, T0 + 5, 0)
    );
    let Attributes::WorkflowTaskStartedEventAttributes(started) = attrs(h.event(&k, 3)) else {
        panic!()
    };
    assert_eq!(
        (
            started.scheduled_event_id,
            started.identity.as_str(),
            started.request_id.as_str()
        ),
        (2, "worker-1", "poll-2")
    );
    assert!(started.history_size_bytes > 0);
    assert!(!started.suggest_continue_as_new);
    assert!(
        h.state.pending_tasks().is_empty(),
        "a started task is not pending"
    );
    assert_eq!(
        h.state.next_timer_ms(),
        Some(T0 + 5 + 10_000),
        "start-to-close timeout armed"
    );

    // The same poll again (a retried proposal) gets the same task; another poller gets NotFound.
    let retry = h.apply(ShardCommandKind::RecordWorkflowTaskStarted {
        execution: k.clone(),
        scheduled_event_id: 2,
        identity: "worker-1".into(),
        poll_request_id: "poll-2".into(),
    });
    assert_eq!(
        retry.reply,
        Some(Ok(ShardReply::WorkflowTaskStarted(info.clone())))
    );
    assert!(retry.changes.is_empty());
    for (scheduled_event_id, request) in [(2, "other-poll"), (7, "poll-7")] {
        let other = h.apply(ShardCommandKind::RecordWorkflowTaskStarted {
            execution: k.clone(),
            scheduled_event_id,
            identity: "worker-2".into(),
            poll_request_id: request.into(),
        });
        assert_eq!(
            other.reply,
            Some(Err(EngineError::NotFound(
                "Workflow task not found.".into()
            )))
        );
        assert!(other.changes.is_empty());
    }
}

#[test]
#[allow(
    deprecated,
    reason = "binary_checksum is deprecated but still sent by the SDKs"
)]
fn completion_writes_one_event_per_command_in_order() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let sdk_metadata = WorkflowTaskCompletedMetadata {
        core_used_flags: vec![1, 2, 3],
        ..Default::default()
    };
    let request = RespondWorkflowTaskCompletedRequest {
        commands: vec![
            schedule_activity("a1", 5_000, None),
            start_timer("t1", 2_000),
            record_marker("core_patch"),
            start_timer("t2", 1_000),
        ],
        identity: "worker-1".into(),
        binary_checksum: "sum".into(),
        sdk_metadata: Some(sdk_metadata.clone()),
        ..Default::default()
    };
    let applied = h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: info.token.clone(),
        request,
    });
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::ActivityTaskScheduled,
            EventType::TimerStarted,
            EventType::MarkerRecorded,
            EventType::TimerStarted
        ]
    );
    let Attributes::WorkflowTaskCompletedEventAttributes(c) = attrs(h.event(&k, 4)) else {
        panic!()
    };
    assert_eq!(
        (
            c.scheduled_event_id,
            c.started_event_id,
            c.identity.as_str()
        ),
        (2, 3, "worker-1")
    );
    assert_eq!(c.sdk_metadata, Some(sdk_metadata));
    assert_eq!(c.binary_checksum, "sum");
    let Attributes::ActivityTaskScheduledEventAttributes(a) = attrs(h.event(&k, 5)) else {
        panic!()
    };
    assert_eq!(a.workflow_task_completed_event_id, 4);
    assert_eq!(
        a.task_queue.as_ref().map(|q| q.name.as_str()),
        Some("orders"),
        "defaults to the workflow's queue"
    );
    assert_eq!(a.start_to_close_timeout, Some(duration_ms(5_000)));
    assert_eq!(
        a.schedule_to_close_timeout, None,
        "no run timeout: infinite"
    );
    let policy = a.retry_policy.clone().expect("retry policy filled in");
    assert_eq!(policy.initial_interval, Some(duration_ms(1_000)));
    assert_eq!(policy.backoff_coefficient, 2.0);
    assert_eq!(policy.maximum_interval, Some(duration_ms(100_000)));
    assert_eq!(policy.maximum_attempts, 0);
    let Attributes::MarkerRecordedEventAttributes(m) = attrs(h.event(&k, 7)) else {
        panic!()
    };
    assert_eq!(
        (m.marker_name.as_str(), m.workflow_task_completed_event_id),
        ("core_patch", 4)
    );
    assert_eq!(m.details.get("data"), Some(&payloads("core_patch")));

    let ms = h.state.execution(&k).unwrap();
    assert_eq!(ms.previous_started_event_id, 3);
    assert!(
        ms.workflow_task.is_none(),
        "no new events, no new workflow task"
    );
    assert_eq!(ms.timers.len(), 2);
    assert_eq!(h.state.pending_tasks().len(), 1, "the activity is ready");
    assert!(applied.notices.contains(&Notice::TimerArmed {
        fire_at_ms: T0 + 1_000
    }));
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 1_000));

    // Cancel t1, then complete the workflow: it closes and drops its pending work.
    let info = {
        h.advance(1_000);
        h.fire_timers();
        h.poll_workflow_task(&k)
    };
    assert_eq!(info.previous_started_event_id, 3);
    h.complete_workflow_task(
        &info.token,
        vec![cancel_timer("t1"), complete_workflow("done")],
    );
    let n = h.history(&k).len() as i64;
    assert_eq!(
        h.event_types(&k)[(n - 2) as usize..],
        [
            EventType::TimerCanceled,
            EventType::WorkflowExecutionCompleted
        ]
    );
    let Attributes::TimerCanceledEventAttributes(tc) = attrs(h.event(&k, n - 1)) else {
        panic!()
    };
    assert_eq!((tc.timer_id.as_str(), tc.started_event_id), ("t1", 6));
    let ms = h.state.execution(&k).unwrap();
    assert_eq!(ms.status, WorkflowExecutionStatus::Completed as i32);
    assert_eq!(ms.close_event_id, n);
    assert!(ms.activities.is_empty() && ms.timers.is_empty());
    assert!(h.state.pending_tasks().is_empty());
    assert_eq!(h.state.next_timer_ms(), None);
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Completed as i32
    );
}

#[test]
fn fail_workflow_command_closes_with_failure() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![fail_workflow("bad order")]);
    let Attributes::WorkflowExecutionFailedEventAttributes(f) =
        attrs(h.history(&k).last().unwrap())
    else {
        panic!()
    };
    assert_eq!(
        f.failure.as_ref().map(|f| f.message.as_str()),
        Some("bad order")
    );
    assert_eq!(f.retry_state, RetryState::RetryPolicyNotSet as i32);
    assert_eq!(f.workflow_task_completed_event_id, 4);
    assert_eq!(
        h.state.execution(&k).unwrap().status,
        WorkflowExecutionStatus::Failed as i32
    );
}

#[test]
fn bad_or_unsupported_commands_fail_the_task_and_discard_the_completion() {
    let cases: Vec<(Command, WorkflowTaskFailedCause)> = vec![
        (
            Command {
                command_type: CommandType::ScheduleNexusOperation as i32,
                ..Default::default()
            },
            WorkflowTaskFailedCause::FeatureDisabled,
        ),
        (
            Command {
                command_type: CommandType::ScheduleActivityTask as i32,
                attributes: None,
                ..Default::default()
            },
            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
        ),
        (
            schedule_activity("", 1_000, None),
            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
        ),
        (
            schedule_activity("a", 0, None),
            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
        ),
        (
            schedule_activity("dup", 1_000, None),
            WorkflowTaskFailedCause::ScheduleActivityDuplicateId,
        ),
        (
            start_timer("t", 0),
            WorkflowTaskFailedCause::BadStartTimerAttributes,
        ),
        (
            start_timer("dup", 5_000),
            WorkflowTaskFailedCause::StartTimerDuplicateId,
        ),
        (
            cancel_timer("nope"),
            WorkflowTaskFailedCause::BadCancelTimerAttributes,
        ),
        (
            record_marker(""),
            WorkflowTaskFailedCause::BadRecordMarkerAttributes,
        ),
    ];
    for (bad, expected_cause) in cases {
        let mut h = Harness::new();
        let k = h.start("wf");
        let first = vec![
            schedule_activity("dup", 1_000, None),
            start_timer("dup", 5_000),
            schedule_activity("other", 1_000, None),
        ];
        h.run_workflow_task(&k, first);
        h.advance(1);
        // The other activity's completion makes the next task; the bad completion schedules an
        // activity before its bad command.
        let other = h.clone_poll(&k, 7);
        h.complete_activity(&other.token, "ok");
        let info = h.poll_workflow_task(&k);
        let before = h.history(&k).len() as i64;
        let applied = h.complete_workflow_task(
            &info.token,
            vec![schedule_activity("fresh", 1_000, None), bad],
        );
        assert!(
            matches!(applied.reply, Some(Err(EngineError::InvalidArgument(_)))),
            "{:?}",
            applied.reply
        );
        assert_eq!(
            h.event_types(&k)[before as usize..],
            [
                EventType::WorkflowTaskFailed,
                EventType::WorkflowTaskScheduled
            ],
            "the partial completion (ActivityTaskScheduled for 'fresh') is discarded"
        );
        let (cause, message) = wft_failed_cause(&h, &k, before + 1);
        assert_eq!(cause, expected_cause, "{message}");
        assert!(!message.is_empty());
        assert_eq!(scheduled_attempt(&h, &k, before + 2), 2);
        assert!(
            !h.state
                .execution(&k)
                .unwrap()
                .activities
                .values()
                .any(|a| a.activity_id == "fresh")
        );
        // The new attempt is dispatchable and completes normally.
        let retry = h.poll_workflow_task(&k);
        assert_eq!(retry.attempt, 2);
        assert_eq!(
            h.complete_workflow_task(&retry.token, vec![complete_workflow("ok")])
                .reply,
            Some(Ok(ShardReply::Done))
        );
    }
}

impl Harness {
    /// Polls the activity scheduled at `scheduled_event_id`; it must be ready.
    pub fn clone_poll(&mut self, key: &ExecutionKey, scheduled_event_id: i64) -> ActivityTaskInfo {
        self.poll_activity(key, scheduled_event_id)
            .expect("activity is ready")
    }
}

#[test]
fn stale_tokens_are_not_found_and_change_nothing() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let mut wrong_attempt = info.token.clone();
    wrong_attempt.attempt = 2;
    let mut wrong_started = info.token.clone();
    wrong_started.started_event_id = 9;
    let mut wrong_kind = info.token.clone();
    wrong_kind.kind = TaskKind::Activity;
    let mut unknown = info.token.clone();
    unknown.execution.run_id = "nope".into();
    for (token, message) in [
        (wrong_attempt, "Workflow task not found."),
        (wrong_started, "Workflow task not found."),
        (wrong_kind, "Workflow task not found."),
        (unknown, "Workflow execution not found."),
    ] {
        let applied = h.complete_workflow_task(&token, vec![complete_workflow("x")]);
        assert_eq!(
            applied.reply,
            Some(Err(EngineError::NotFound(message.into())))
        );
        assert!(applied.changes.is_empty() && applied.notices.is_empty());
        let applied = h.fail_workflow_task(&token);
        assert_eq!(
            applied.reply,
            Some(Err(EngineError::NotFound(message.into())))
        );
        assert!(applied.changes.is_empty());
    }
    assert_eq!(
        h.complete_workflow_task(&info.token, vec![]).reply,
        Some(Ok(ShardReply::Done))
    );
    let twice = h.complete_workflow_task(&info.token, vec![]);
    assert_eq!(
        twice.reply,
        Some(Err(EngineError::NotFound(
            "Workflow task not found.".into()
        )))
    );
    assert!(twice.changes.is_empty());
}

#[test]
fn respond_failed_schedules_the_next_attempt() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let applied = h.fail_workflow_task(&info.token);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
    let (cause, message) = wft_failed_cause(&h, &k, 4);
    assert_eq!(
        (cause, message.as_str()),
        (
            WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
            "workflow code panicked"
        )
    );
    assert_eq!(scheduled_attempt(&h, &k, 5), 2);
    assert!(
        applied
            .notices
            .iter()
            .any(|n| matches!(n, Notice::TaskReady(t) if t.scheduled_event_id == 5))
    );
    assert_eq!(h.poll_workflow_task(&k).attempt, 2);
}

#[test]
fn workflow_task_timeout_redelivers_with_the_next_attempt_never_early() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    h.advance(9_999);
    assert_eq!(h.fire_timers(), 0);
    assert_eq!(h.history(&k).len(), 3);
    h.advance(1);
    let applied = h.apply(ShardCommandKind::FireTimers);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::TimersFired { fired: 1 }))
    );
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskTimedOut,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowTaskTimedOutEventAttributes(t) = attrs(h.event(&k, 4)) else {
        panic!()
    };
    assert_eq!(
        (t.scheduled_event_id, t.started_event_id, t.timeout_type),
        (2, 3, TimeoutType::StartToClose as i32)
    );
    assert_eq!(scheduled_attempt(&h, &k, 5), 2);
    assert!(
        applied
            .notices
            .iter()
            .any(|n| matches!(n, Notice::TaskReady(t) if t.scheduled_event_id == 5))
    );
    // The dead worker's late completion is stale.
    let late = h.complete_workflow_task(&info.token, vec![complete_workflow("late")]);
    assert_eq!(
        late.reply,
        Some(Err(EngineError::NotFound(
            "Workflow task not found.".into()
        )))
    );
    let retry = h.poll_workflow_task(&k);
    assert_eq!(
        (
            retry.attempt,
            retry.scheduled_event_id,
            retry.started_event_id
        ),
        (2, 5, 6)
    );
}

#[test]
fn events_during_a_started_task_are_buffered_then_flushed_with_back_references() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(
        &k,
        vec![
            schedule_activity("a1", 5_000, None),
            start_timer("t1", 1_000),
        ],
    );
    // Timer fires: WFT scheduled (7) and started (8).
    h.advance(1_000);
    h.fire_timers();
    let info = h.poll_workflow_task(&k);
    assert_eq!(info.started_event_id, 9);
    // While that task runs, the activity completes: both events are buffered.
    let activity = h.clone_poll(&k, 5);
    let applied = h.complete_activity(&activity.token, "paid");
    assert!(applied.changes.events.is_empty(), "buffered, no events yet");
    assert!(applied.changes.executions.contains(&k));
    assert_eq!(h.state.execution(&k).unwrap().buffered_events.len(), 2);
    // The completion with a non-close command flushes the buffer and schedules a new task.
    h.complete_workflow_task(&info.token, vec![start_timer("t2", 5_000)]);
    assert_eq!(
        h.event_types(&k)[9..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::TimerStarted,
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskCompleted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::ActivityTaskCompletedEventAttributes(c) = attrs(h.event(&k, 13)) else {
        panic!()
    };
    assert_eq!((c.scheduled_event_id, c.started_event_id), (5, 12));
    let Attributes::ActivityTaskStartedEventAttributes(s) = attrs(h.event(&k, 12)) else {
        panic!()
    };
    assert_eq!(
        (s.scheduled_event_id, s.attempt, s.identity.as_str()),
        (5, 1, "activity-worker")
    );
    assert!(h.state.execution(&k).unwrap().buffered_events.is_empty());
}

#[test]
fn close_command_with_buffered_events_is_an_unhandled_command() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![start_timer("t1", 1_000), start_timer("t2", 3_000)]);
    h.advance(1_000);
    h.fire_timers();
    let info = h.poll_workflow_task(&k);
    h.advance(2_000);
    assert_eq!(h.fire_timers(), 1, "t2 fires while the task runs");
    let before = h.history(&k).len() as i64;
    let applied = h.complete_workflow_task(&info.token, vec![complete_workflow("done")]);
    assert_eq!(applied.reply, Some(Err(EngineError::UnhandledCommand)));
    assert_eq!(
        h.event_types(&k)[before as usize..],
        [
            EventType::WorkflowTaskFailed,
            EventType::TimerFired,
            EventType::WorkflowTaskScheduled
        ]
    );
    assert_eq!(
        wft_failed_cause(&h, &k, before + 1).0,
        WorkflowTaskFailedCause::UnhandledCommand
    );
    assert_eq!(scheduled_attempt(&h, &k, before + 3), 1);
    assert!(h.state.execution(&k).unwrap().is_running());
    let next = h.poll_workflow_task(&k);
    h.complete_workflow_task(&next.token, vec![complete_workflow("done")]);
    assert_eq!(
        h.event_types(&k).last(),
        Some(&EventType::WorkflowExecutionCompleted)
    );
}

#[test]
fn force_create_new_workflow_task_schedules_one() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let request = RespondWorkflowTaskCompletedRequest {
        commands: vec![record_marker("core_local_activity")],
        force_create_new_workflow_task: true,
        ..Default::default()
    };
    h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: info.token,
        request,
    });
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::MarkerRecorded,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn history_length_limit_terminates_the_run() {
    let limits = EngineLimits {
        max_history_events: 12,
        suggest_continue_as_new_events: 7,
        ..EngineLimits::default()
    };
    let mut h = Harness::with_state(ShardState::with_limits(limits));
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![start_timer("t1", 10)]);
    h.advance(10);
    h.fire_timers();
    let info = h.poll_workflow_task(&k);
    let Attributes::WorkflowTaskStartedEventAttributes(s) =
        attrs(h.event(&k, info.started_event_id))
    else {
        panic!()
    };
    assert!(s.suggest_continue_as_new);
    assert_eq!(
        s.suggest_continue_as_new_reasons,
        vec![SuggestContinueAsNewReason::TooManyHistoryEvents as i32]
    );
    h.complete_workflow_task(
        &info.token,
        vec![
            start_timer("t2", 10),
            start_timer("t3", 10),
            start_timer("t4", 10),
        ],
    );
    let last = h.history(&k).last().unwrap();
    let Attributes::WorkflowExecutionTerminatedEventAttributes(t) = attrs(last) else {
        panic!("{last:?}")
    };
    assert_eq!(t.reason, HISTORY_LENGTH_LIMIT_REASON);
    assert_eq!(last.event_id, 13);
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Terminated as i32
    );
}

#[test]
fn history_size_limit_terminates_the_run_and_the_warning_suggests_continue_as_new() {
    let limits = EngineLimits {
        warn_history_size_bytes: 1_500,
        max_history_size_bytes: 3_000,
        ..EngineLimits::default()
    };
    let mut h = Harness::with_state(ShardState::with_limits(limits));
    let k = h.start("wf");
    // Markers with ~1 KiB of details each.
    let mut big = record_marker("big");
    if let Some(command::Attributes::RecordMarkerCommandAttributes(a)) = &mut big.attributes {
        a.details
            .insert("blob".into(), payloads(&"x".repeat(1_000)));
    }
    h.run_workflow_task(&k, vec![big.clone()]);
    h.apply(ShardCommandKind::SignalWorkflow {
        request:
            temporalio_protos::temporal::api::workflowservice::v1::SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(
                    temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                        workflow_id: "wf".into(),
                        run_id: String::new(),
                    },
                ),
                signal_name: "more".into(),
                ..Default::default()
            },
    });
    let info = h.poll_workflow_task(&k);
    let Attributes::WorkflowTaskStartedEventAttributes(s) =
        attrs(h.event(&k, info.started_event_id))
    else {
        panic!()
    };
    assert!(s.history_size_bytes > 1_500);
    assert_eq!(
        s.suggest_continue_as_new_reasons,
        vec![SuggestContinueAsNewReason::HistorySizeTooLarge as i32]
    );
    h.complete_workflow_task(&info.token, vec![big.clone(), big]);
    let last = h.history(&k).last().unwrap();
    let Attributes::WorkflowExecutionTerminatedEventAttributes(t) = attrs(last) else {
        panic!("expected termination, got {last:?}")
    };
    assert_eq!(t.reason, crate::shard::HISTORY_SIZE_LIMIT_REASON);
}
