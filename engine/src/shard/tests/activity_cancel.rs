//! Activity cancellation: RequestCancelActivityTask, the heartbeat reply, and
//! RespondActivityTaskCanceled.

use super::*;
use crate::shard::mutable_state::ActivityPhase;
use crate::token::TaskKind;
use temporalio_protos::temporal::api::{
    command::v1::RequestCancelActivityTaskCommandAttributes,
    common::v1::WorkflowExecution,
    enums::v1::{RetryState, WorkflowTaskFailedCause},
    workflowservice::v1::{
        RecordActivityTaskHeartbeatRequest, RespondActivityTaskCanceledRequest,
        SignalWorkflowExecutionRequest,
    },
};

pub(crate) fn request_cancel_activity(scheduled_event_id: i64) -> Command {
    Command {
        command_type: CommandType::RequestCancelActivityTask as i32,
        attributes: Some(
            command::Attributes::RequestCancelActivityTaskCommandAttributes(
                RequestCancelActivityTaskCommandAttributes { scheduled_event_id },
            ),
        ),
        ..Default::default()
    }
}

fn heartbeat(h: &mut Harness, token: &TaskToken) -> Result<bool, EngineError> {
    let request = RecordActivityTaskHeartbeatRequest {
        details: Some(payloads("tick")),
        ..Default::default()
    };
    let applied = h.apply(ShardCommandKind::RecordActivityTaskHeartbeat {
        token: token.clone(),
        request,
    });
    match applied.reply {
        Some(Ok(ShardReply::ActivityHeartbeat { cancel_requested })) => Ok(cancel_requested),
        Some(Err(e)) => Err(e),
        other => panic!("unexpected heartbeat reply {other:?}"),
    }
}

fn respond_canceled(h: &mut Harness, token: &TaskToken) -> Applied {
    let request = RespondActivityTaskCanceledRequest {
        details: Some(payloads("cleaned up")),
        identity: "activity-worker".into(),
        ..Default::default()
    };
    h.apply(ShardCommandKind::RespondActivityTaskCanceled {
        token: token.clone(),
        request,
    })
}

/// A workflow whose first task scheduled activity 5 (events 1–5).
fn with_activity(retry: Option<RetryPolicy>) -> (Harness, ExecutionKey) {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![schedule_activity("charge", 30_000, retry)]);
    (h, k)
}

/// Wakes the workflow with a signal, so that a new workflow task is scheduled.
fn signal(h: &mut Harness, k: &ExecutionKey, request_id: &str) {
    let request = SignalWorkflowExecutionRequest {
        namespace: k.namespace.clone(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: k.workflow_id.clone(),
            run_id: k.run_id.clone(),
        }),
        signal_name: "wake".into(),
        request_id: request_id.into(),
        ..Default::default()
    };
    let applied = h.apply(ShardCommandKind::SignalWorkflow { request });
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
}

/// Polls the scheduled workflow task and completes it with `commands`.
fn next_task_with(h: &mut Harness, k: &ExecutionKey, commands: Vec<Command>) -> Applied {
    let info = h.poll_workflow_task(k);
    h.complete_workflow_task(&info.token, commands)
}

fn cancel_via_next_task(h: &mut Harness, k: &ExecutionKey) {
    signal(h, k, "wake-1"); // Signaled 6, WorkflowTaskScheduled 7 (Started 8)
    let applied = next_task_with(h, k, vec![request_cancel_activity(5)]);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
}

#[test]
fn an_activity_not_yet_started_is_canceled_at_once() {
    let (mut h, k) = with_activity(None);
    cancel_via_next_task(&mut h, &k);
    assert_eq!(
        h.event_types(&k)[8..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::ActivityTaskCancelRequested,
            EventType::ActivityTaskCanceled,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let Attributes::ActivityTaskCancelRequestedEventAttributes(r) = attrs(h.event(&k, 10)) else {
        panic!()
    };
    assert_eq!(
        (r.scheduled_event_id, r.workflow_task_completed_event_id),
        (5, 9)
    );
    let Attributes::ActivityTaskCanceledEventAttributes(c) = attrs(h.event(&k, 11)) else {
        panic!()
    };
    assert_eq!(
        (
            c.scheduled_event_id,
            c.started_event_id,
            c.latest_cancel_requested_event_id
        ),
        (5, 0, 10)
    );
    assert_eq!(c.identity, "worker-1");
    assert!(c.details.is_some());
    assert!(h.state.execution(&k).unwrap().activities.is_empty());
    assert!(
        h.state
            .pending_tasks()
            .iter()
            .all(|t| t.kind == TaskKind::Workflow),
        "the activity task left its queue"
    );
    assert_eq!(
        h.poll_activity(&k, 5),
        Err(EngineError::NotFound("Activity task not found.".into()))
    );
}

#[test]
fn an_activity_in_retry_backoff_is_canceled_at_once() {
    let policy = RetryPolicy {
        initial_interval: Some(duration_ms(60_000)),
        ..Default::default()
    };
    let (mut h, k) = with_activity(Some(policy));
    let a = h.clone_poll(&k, 5);
    h.fail_activity(&a.token, app_failure("flaky", false));
    assert_eq!(
        h.state.execution(&k).unwrap().activities[&5].phase,
        ActivityPhase::Backoff
    );
    cancel_via_next_task(&mut h, &k);
    assert_eq!(
        h.event_types(&k)[9..],
        [
            EventType::ActivityTaskCancelRequested,
            EventType::ActivityTaskCanceled,
            EventType::WorkflowTaskScheduled,
        ]
    );
    assert!(h.state.execution(&k).unwrap().activities.is_empty());
    assert_eq!(h.state.next_timer_ms(), None, "the retry timer is gone");
    // The failed attempt's worker cannot resurrect it.
    assert!(matches!(
        h.complete_activity(&a.token, "late").reply,
        Some(Err(EngineError::NotFound(_)))
    ));
}

#[test]
fn a_started_activity_learns_of_the_request_by_heartbeat_and_reports_canceled() {
    let (mut h, k) = with_activity(None);
    let a = h.clone_poll(&k, 5);
    assert_eq!(heartbeat(&mut h, &a.token), Ok(false));
    // Reporting a cancellation nobody requested is refused, as by Temporal.
    let unrequested = respond_canceled(&mut h, &a.token);
    assert!(matches!(
        unrequested.reply,
        Some(Err(EngineError::InvalidArgument(_)))
    ));
    assert!(unrequested.changes.is_empty());
    cancel_via_next_task(&mut h, &k);
    assert_eq!(
        h.event_types(&k)[8..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::ActivityTaskCancelRequested
        ],
        "no new workflow task: the activity is still running"
    );
    assert_eq!(
        h.state.execution(&k).unwrap().activities[&5].cancel_requested_event_id,
        10
    );
    assert_eq!(heartbeat(&mut h, &a.token), Ok(true));
    assert_eq!(
        heartbeat(&mut h, &a.token),
        Ok(true),
        "and on every later heartbeat"
    );
    h.advance(5);
    let applied = respond_canceled(&mut h, &a.token);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[10..],
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskCanceled,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let Attributes::ActivityTaskCanceledEventAttributes(c) = attrs(h.event(&k, 12)) else {
        panic!()
    };
    assert_eq!(
        (
            c.scheduled_event_id,
            c.started_event_id,
            c.latest_cancel_requested_event_id
        ),
        (5, 11, 10)
    );
    assert_eq!(c.details, Some(payloads("cleaned up")));
    assert_eq!(c.identity, "activity-worker");
    // The activity is gone: heartbeats and completions of it are NotFound.
    assert_eq!(
        heartbeat(&mut h, &a.token),
        Err(EngineError::NotFound("Activity task not found.".into()))
    );
    let late = h.complete_activity(&a.token, "late");
    assert!(matches!(late.reply, Some(Err(EngineError::NotFound(_)))));
    assert!(late.changes.is_empty());
}

#[test]
fn canceled_during_a_started_workflow_task_is_buffered_with_its_started_event() {
    let (mut h, k) = with_activity(None);
    let a = h.clone_poll(&k, 5);
    cancel_via_next_task(&mut h, &k);
    signal(&mut h, &k, "wake-2"); // Signaled 11, WorkflowTaskScheduled 12
    let info = h.poll_workflow_task(&k); // Started 13
    respond_canceled(&mut h, &a.token);
    assert_eq!(h.history(&k).len(), 13, "buffered while the task runs");
    h.complete_workflow_task(&info.token, vec![]);
    assert_eq!(
        h.event_types(&k)[13..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskCanceled,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let Attributes::ActivityTaskCanceledEventAttributes(c) = attrs(h.event(&k, 16)) else {
        panic!()
    };
    assert_eq!(
        (c.started_event_id, c.latest_cancel_requested_event_id),
        (15, 10)
    );
}

#[test]
fn a_cancel_requested_attempt_that_fails_is_not_retried() {
    let (mut h, k) = with_activity(Some(RetryPolicy::default()));
    let a = h.clone_poll(&k, 5);
    cancel_via_next_task(&mut h, &k);
    h.fail_activity(&a.token, app_failure("interrupted", false));
    assert_eq!(
        h.event_types(&k)[10..],
        [
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskFailed,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let Attributes::ActivityTaskFailedEventAttributes(f) = attrs(h.event(&k, 12)) else {
        panic!()
    };
    assert_eq!(f.retry_state, RetryState::CancelRequested as i32);
}

#[test]
fn cancel_of_an_activity_that_finished_during_the_task_records_only_the_request() {
    let (mut h, k) = with_activity(None);
    let a = h.clone_poll(&k, 5);
    signal(&mut h, &k, "wake-1"); // Signaled 6, WorkflowTaskScheduled 7
    let info = h.poll_workflow_task(&k); // Started 8
    h.complete_activity(&a.token, "done"); // buffered
    let applied = h.complete_workflow_task(&info.token, vec![request_cancel_activity(5)]);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[8..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::ActivityTaskCancelRequested,
            EventType::ActivityTaskStarted,
            EventType::ActivityTaskCompleted,
            EventType::WorkflowTaskScheduled,
        ]
    );
}

#[test]
fn cancel_of_an_unknown_activity_fails_the_workflow_task() {
    let (mut h, k) = with_activity(None);
    signal(&mut h, &k, "wake-1");
    let applied = next_task_with(&mut h, &k, vec![request_cancel_activity(4)]);
    assert!(matches!(
        applied.reply,
        Some(Err(EngineError::InvalidArgument(_)))
    ));
    let last_two = &h.history(&k)[8..];
    let Attributes::WorkflowTaskFailedEventAttributes(f) = attrs(&last_two[0]) else {
        panic!("{:?}", h.event_types(&k))
    };
    assert_eq!(
        f.cause,
        WorkflowTaskFailedCause::BadRequestCancelActivityAttributes as i32
    );
    assert!(h.state.execution(&k).unwrap().activities.contains_key(&5));
}
