use super::*;
use crate::shard::{Notice, TERMINATE_EXISTING_REASON};
use crate::token::TaskKind;
use temporalio_protos::temporal::api::enums::v1::{
    WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};

fn assert_rejected(applied: &Applied) -> EngineError {
    assert!(
        applied.changes.is_empty(),
        "a rejected start changed {:?}",
        applied.changes
    );
    match &applied.reply {
        Some(Err(e)) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn start_writes_started_and_scheduled_and_dispatches() {
    let mut h = Harness::new();
    let mut request = start_request("order-1", "req-1");
    request.workflow_run_timeout = Some(duration_ms(60_000));
    let applied = h.start_with(request);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted {
            run_id: "run-1".into(),
            started: true
        }))
    );
    let k = key("order-1", "run-1");
    assert_eq!(
        h.event_types(&k),
        vec![
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowExecutionStartedEventAttributes(started) = attrs(h.event(&k, 1)) else {
        panic!()
    };
    assert_eq!(
        started.workflow_type.as_ref().map(|t| t.name.as_str()),
        Some("OrderWorkflow")
    );
    assert_eq!(started.original_execution_run_id, "run-1");
    assert_eq!(started.first_execution_run_id, "run-1");
    assert_eq!(started.attempt, 1);
    assert_eq!(started.workflow_id, "order-1");
    assert_eq!(started.workflow_task_timeout, Some(duration_ms(10_000)));
    assert_eq!(started.workflow_run_timeout, Some(duration_ms(60_000)));
    assert_eq!(started.input, Some(payloads("input")));
    let Attributes::WorkflowTaskScheduledEventAttributes(scheduled) = attrs(h.event(&k, 2)) else {
        panic!()
    };
    assert_eq!(scheduled.attempt, 1);
    assert_eq!(scheduled.start_to_close_timeout, Some(duration_ms(10_000)));
    assert_eq!(
        scheduled.task_queue.as_ref().map(|q| q.name.as_str()),
        Some("orders")
    );

    assert!(applied.changes.executions.contains(&k));
    assert!(applied.changes.current_runs.contains(&k.workflow_key()));
    let ready: Vec<_> = applied
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::TaskReady(_)))
        .collect();
    assert_eq!(ready.len(), 1);
    assert!(
        applied
            .notices
            .contains(&Notice::HistoryAppended(k.clone()))
    );
    assert!(
        applied.notices.contains(&Notice::TimerArmed {
            fire_at_ms: T0 + 60_000
        }),
        "run timeout armed"
    );
    let pending = h.state.pending_tasks();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].kind,
            pending[0].task_queue.as_str(),
            pending[0].scheduled_event_id
        ),
        (TaskKind::Workflow, "orders", 2)
    );
    let run = h.state.current_run(&k.workflow_key()).expect("current run");
    assert_eq!(
        (run.run_id.as_str(), run.start_request_id.as_str()),
        ("run-1", "req-1")
    );
    assert_eq!(run.status, WorkflowExecutionStatus::Running as i32);
}

#[test]
fn invalid_start_requests_change_nothing() {
    let mut h = Harness::new();
    let cases: Vec<(StartWorkflowExecutionRequest, &str)> = vec![
        (start_request("", "r"), "WorkflowId is not set"),
        (start_request(&"x".repeat(1001), "r"), "WorkflowId length"),
        (
            StartWorkflowExecutionRequest {
                workflow_type: None,
                ..start_request("a", "r")
            },
            "WorkflowType",
        ),
        (
            StartWorkflowExecutionRequest {
                task_queue: None,
                ..start_request("a", "r")
            },
            "TaskQueue",
        ),
        (
            StartWorkflowExecutionRequest {
                namespace: String::new(),
                ..start_request("a", "r")
            },
            "Namespace",
        ),
        (
            StartWorkflowExecutionRequest {
                workflow_run_timeout: Some(prost_wkt_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..start_request("a", "r")
            },
            "WorkflowRunTimeout",
        ),
        (
            StartWorkflowExecutionRequest {
                workflow_id_reuse_policy: 4,
                workflow_id_conflict_policy: WorkflowIdConflictPolicy::Fail as i32,
                ..start_request("a", "r")
            },
            "TERMINATE_IF_RUNNING",
        ),
    ];
    for (request, expected) in cases {
        match assert_rejected(&h.start_with(request)) {
            EngineError::InvalidArgument(message) => {
                assert!(message.contains(expected), "{message} ~ {expected}")
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(h.state.executions().count(), 0);
    assert_eq!(h.state.current_runs().count(), 0);
}

#[test]
fn same_request_id_returns_the_same_run_without_events() {
    let mut h = Harness::new();
    h.start_with(start_request("wf", "req-1"));
    let again = h.start_with(start_request("wf", "req-1"));
    assert_eq!(
        again.reply,
        Some(Ok(ShardReply::WorkflowStarted {
            run_id: "run-1".into(),
            started: true
        }))
    );
    assert!(again.changes.is_empty());
    assert_eq!(h.state.executions().count(), 1);
}

#[test]
fn running_workflow_id_conflicts_follow_the_policy() {
    let mut h = Harness::new();
    h.start_with(start_request("wf", "req-1"));
    let duplicate = h.start_with(start_request("wf", "req-2"));
    assert_eq!(
        assert_rejected(&duplicate),
        EngineError::AlreadyStarted {
            workflow_id: "wf".into(),
            run_id: "run-1".into(),
            start_request_id: "req-1".into()
        }
    );

    let mut use_existing = start_request("wf", "req-3");
    use_existing.workflow_id_conflict_policy = WorkflowIdConflictPolicy::UseExisting as i32;
    let applied = h.start_with(use_existing);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted {
            run_id: "run-1".into(),
            started: false
        }))
    );
    assert!(applied.changes.is_empty());

    let mut terminate = start_request("wf", "req-4");
    terminate.workflow_id_conflict_policy = WorkflowIdConflictPolicy::TerminateExisting as i32;
    let applied = h.start_with(terminate);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted {
            run_id: "run-4".into(),
            started: true
        }))
    );
    let old = key("wf", "run-1");
    assert_eq!(
        h.event_types(&old).last(),
        Some(&EventType::WorkflowExecutionTerminated)
    );
    let Attributes::WorkflowExecutionTerminatedEventAttributes(t) =
        attrs(h.history(&old).last().unwrap())
    else {
        panic!()
    };
    assert_eq!(t.reason, TERMINATE_EXISTING_REASON);
    let old_ms = h.state.execution(&old).unwrap();
    assert_eq!(old_ms.status, WorkflowExecutionStatus::Terminated as i32);
    assert_eq!(old_ms.close_time_ms, T0);
    assert_eq!(
        h.state.current_run(&old.workflow_key()).unwrap().run_id,
        "run-4"
    );
    assert!(
        applied.changes.executions.contains(&old)
            && applied.changes.executions.contains(&key("wf", "run-4"))
    );
    // Only the new run's workflow task remains dispatchable.
    assert_eq!(h.state.pending_tasks().len(), 1);
    assert_eq!(h.state.pending_tasks()[0].execution.run_id, "run-4");
}

#[test]
fn terminate_if_running_reuse_policy_replaces_a_running_run() {
    let mut h = Harness::new();
    h.start_with(start_request("wf", "req-1"));
    let mut request = start_request("wf", "req-2");
    request.workflow_id_reuse_policy = 4;
    let applied = h.start_with(request);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted {
            run_id: "run-2".into(),
            started: true
        }))
    );
    assert_eq!(
        h.state.execution(&key("wf", "run-1")).unwrap().status,
        WorkflowExecutionStatus::Terminated as i32
    );
}

/// Closes run-1 of "wf" with the given final command.
fn closed_run(final_command: Command) -> Harness {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![final_command]);
    assert!(!h.state.execution(&k).unwrap().is_running());
    assert!(!h.state.current_run(&k.workflow_key()).unwrap().is_running());
    h
}

#[test]
fn closed_workflow_id_reuse_follows_the_policy() {
    let reuse = |policy: WorkflowIdReusePolicy| {
        let mut request = start_request("wf", "again");
        request.workflow_id_reuse_policy = policy as i32;
        request
    };
    // Completed run.
    let mut h = closed_run(complete_workflow("done"));
    assert!(matches!(
        assert_rejected(&h.start_with(reuse(WorkflowIdReusePolicy::RejectDuplicate))),
        EngineError::AlreadyStarted { .. }
    ));
    assert!(matches!(
        assert_rejected(&h.start_with(reuse(WorkflowIdReusePolicy::AllowDuplicateFailedOnly))),
        EngineError::AlreadyStarted { .. }
    ));
    let applied = h.start_with(reuse(WorkflowIdReusePolicy::Unspecified));
    assert!(matches!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted { started: true, .. }))
    ));
    // Failed run.
    let mut h = closed_run(fail_workflow("boom"));
    let applied = h.start_with(reuse(WorkflowIdReusePolicy::AllowDuplicateFailedOnly));
    assert!(matches!(
        applied.reply,
        Some(Ok(ShardReply::WorkflowStarted { started: true, .. }))
    ));
}

#[test]
fn workflow_timeouts_get_temporal_defaults_and_caps() {
    let mut h = Harness::new();
    let mut request = start_request("a", "r1");
    request.workflow_execution_timeout = Some(duration_ms(30_000));
    request.workflow_task_timeout = Some(duration_ms(600_000));
    h.start_with(request);
    let ms = h.state.execution(&key("a", "run-1")).unwrap();
    assert_eq!(
        (
            ms.workflow_execution_timeout_ms,
            ms.workflow_run_timeout_ms,
            ms.workflow_task_timeout_ms
        ),
        (30_000, 30_000, 30_000)
    );
    assert_eq!(ms.execution_expiration_time_ms, T0 + 30_000);

    let mut request = start_request("b", "r2");
    request.workflow_task_timeout = Some(duration_ms(600_000));
    h.start_with(request);
    assert_eq!(
        h.state
            .execution(&key("b", "run-2"))
            .unwrap()
            .workflow_task_timeout_ms,
        120_000
    );
}

#[test]
fn run_timeout_times_the_workflow_out() {
    let mut h = Harness::new();
    let mut request = start_request("wf", "r");
    request.workflow_run_timeout = Some(duration_ms(5_000));
    h.start_with(request);
    let k = key("wf", "run-1");
    h.advance(1);
    let info = h.poll_workflow_task(&k);
    h.advance(4_998);
    h.fire_timers();
    assert!(h.state.execution(&k).unwrap().is_running());
    h.advance(1);
    assert!(h.fire_timers() >= 1);
    assert_eq!(
        h.event_types(&k)[2..],
        [
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionTimedOut
        ]
    );
    assert_eq!(
        h.state.execution(&k).unwrap().status,
        WorkflowExecutionStatus::TimedOut as i32
    );
    assert_eq!(h.state.next_timer_ms(), None);
    // The worker's late completion is refused.
    let late = h.complete_workflow_task(&info.token, vec![complete_workflow("late")]);
    assert_eq!(
        late.reply,
        Some(Err(EngineError::NotFound(
            "Workflow execution already completed.".into()
        )))
    );
    assert!(late.changes.is_empty());
}
