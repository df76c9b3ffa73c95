//! Signals, termination and heartbeats: requests from outside the workflow task.

use super::*;
use crate::shard::Notice;
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    enums::v1::{WorkflowExecutionStatus, WorkflowTaskFailedCause},
    workflowservice::v1::{
        RecordActivityTaskHeartbeatRequest, SignalWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest,
    },
};

fn signal(workflow_id: &str, run_id: &str, request_id: &str) -> ShardCommandKind {
    ShardCommandKind::SignalWorkflow {
        request: SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: run_id.into(),
            }),
            signal_name: "finish".into(),
            input: Some(payloads("ok")),
            identity: "client".into(),
            request_id: request_id.into(),
            ..Default::default()
        },
    }
}

fn terminate(workflow_id: &str) -> ShardCommandKind {
    ShardCommandKind::TerminateWorkflow {
        request: TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            reason: "operator".into(),
            identity: "admin".into(),
            ..Default::default()
        },
    }
}

#[test]
fn signal_appends_and_schedules_a_task_or_is_buffered() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![]);
    // No task pending: Signaled + WorkflowTaskScheduled.
    let applied = h.apply(signal("wf", "", "sig-1"));
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[4..],
        [
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowExecutionSignaledEventAttributes(s) = attrs(h.event(&k, 5)) else {
        panic!()
    };
    assert_eq!(
        (
            s.signal_name.as_str(),
            s.identity.as_str(),
            s.request_id.as_str()
        ),
        ("finish", "client", "sig-1")
    );
    // The same signal again is acknowledged without an event.
    let again = h.apply(signal("wf", "run-1", "sig-1"));
    assert_eq!(again.reply, Some(Ok(ShardReply::Done)));
    assert!(again.changes.is_empty());
    // During a started task the signal is buffered; a close command then is unhandled.
    let info = h.poll_workflow_task(&k);
    h.apply(signal("wf", "", "sig-2"));
    assert_eq!(h.state.execution(&k).unwrap().buffered_events.len(), 1);
    let applied = h.complete_workflow_task(&info.token, vec![complete_workflow("done")]);
    assert_eq!(applied.reply, Some(Err(EngineError::UnhandledCommand)));
    let n = h.history(&k).len();
    assert_eq!(
        h.event_types(&k)[n - 3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowTaskFailedEventAttributes(f) = attrs(&h.history(&k)[n - 3]) else {
        panic!()
    };
    assert_eq!(f.cause, WorkflowTaskFailedCause::UnhandledCommand as i32);
}

#[test]
fn signal_and_terminate_of_unknown_or_closed_workflows_are_not_found() {
    let mut h = Harness::new();
    let unknown = h.apply(signal("nope", "", "s"));
    assert_eq!(
        unknown.reply,
        Some(Err(EngineError::NotFound(
            "Workflow execution not found.".into()
        )))
    );
    let k = h.start("wf");
    let applied = h.apply(terminate("wf"));
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    let last = h.history(&k).last().unwrap();
    let Attributes::WorkflowExecutionTerminatedEventAttributes(t) = attrs(last) else {
        panic!()
    };
    assert_eq!(
        (t.reason.as_str(), t.identity.as_str()),
        ("operator", "admin")
    );
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Terminated as i32
    );
    assert!(h.state.pending_tasks().is_empty());
    for command in [signal("wf", "", "s2"), terminate("wf")] {
        let applied = h.apply(command);
        assert_eq!(
            applied.reply,
            Some(Err(EngineError::NotFound(
                "Workflow execution already completed.".into()
            )))
        );
        assert!(applied.changes.is_empty());
    }
}

#[test]
fn terminate_fails_a_started_task_first() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    h.apply(terminate("wf"));
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionTerminated
        ]
    );
    let late = h.complete_workflow_task(&info.token, vec![]);
    assert_eq!(
        late.reply,
        Some(Err(EngineError::NotFound(
            "Workflow execution already completed.".into()
        )))
    );
}

#[test]
fn heartbeats_restart_the_heartbeat_timeout_and_keep_details() {
    let mut command = schedule_activity("long", 60_000, None);
    if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
        &mut command.attributes
    {
        a.heartbeat_timeout = Some(duration_ms(5_000));
    }
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![command]);
    let a = h.clone_poll(&k, 5);
    for _ in 0..3 {
        h.advance(4_000);
        let request = RecordActivityTaskHeartbeatRequest {
            details: Some(payloads("50%")),
            ..Default::default()
        };
        let applied = h.apply(ShardCommandKind::RecordActivityTaskHeartbeat {
            token: a.token.clone(),
            request,
        });
        assert_eq!(
            applied.reply,
            Some(Ok(ShardReply::ActivityHeartbeat {
                cancel_requested: false
            }))
        );
        assert!(applied.notices.contains(&Notice::TimerArmed {
            fire_at_ms: h.now_ms + 5_000
        }));
        assert_eq!(h.fire_timers(), 0);
    }
    assert_eq!(
        h.state.execution(&k).unwrap().activities[&5].attempt,
        1,
        "12 s of heartbeats, no timeout"
    );
    h.advance(5_000);
    assert_eq!(h.fire_timers(), 1);
    let retry = h.state.execution(&k).unwrap().activities[&5].clone();
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.last_heartbeat_details, Some(payloads("50%")));
    // The next attempt starts with the last heartbeat details; the old token is stale.
    h.advance(1_000);
    h.fire_timers();
    assert_eq!(h.clone_poll(&k, 5).heartbeat_details, Some(payloads("50%")));
    let request = RecordActivityTaskHeartbeatRequest::default();
    let stale = h.apply(ShardCommandKind::RecordActivityTaskHeartbeat {
        token: a.token,
        request,
    });
    assert_eq!(
        stale.reply,
        Some(Err(EngineError::NotFound(
            "Activity task not found.".into()
        )))
    );
}
