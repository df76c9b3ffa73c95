//! Child workflows, external signals and parent-close policies: both sides of every outbox
//! message, with the parent and the child on two different shards (two [`Harness`]es), and every
//! delivery repeated to show that a redelivery changes nothing.

#![allow(
    deprecated,
    reason = "the command `namespace` is deprecated but still sent"
)]

use super::*;
use crate::shard::outbox::{DeliveryOutcome, OutboxMessage, PARENT_CLOSE_POLICY_REASON};
use temporalio_protos::temporal::api::{
    command::v1::{
        SignalExternalWorkflowExecutionCommandAttributes,
        StartChildWorkflowExecutionCommandAttributes,
    },
    common::v1::{RetryPolicy, WorkflowExecution},
    enums::v1::{
        ParentClosePolicy, StartChildWorkflowExecutionFailedCause, WorkflowExecutionStatus,
    },
    workflowservice::v1::SignalWorkflowExecutionRequest,
};

fn start_child(workflow_id: &str, policy: ParentClosePolicy) -> Command {
    Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: workflow_id.into(),
                    workflow_type: Some(WorkflowType {
                        name: "ChildWorkflow".into(),
                    }),
                    input: Some(payloads(workflow_id)),
                    parent_close_policy: policy as i32,
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

fn signal_external(workflow_id: &str) -> Command {
    Command {
        command_type: CommandType::SignalExternalWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::SignalExternalWorkflowExecutionCommandAttributes(
                SignalExternalWorkflowExecutionCommandAttributes {
                    execution: Some(WorkflowExecution {
                        workflow_id: workflow_id.into(),
                        run_id: String::new(),
                    }),
                    signal_name: "poke".into(),
                    input: Some(payloads("poke")),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

/// The only pending outbox message of the shard.
fn only_message(h: &Harness) -> (ExecutionKey, i64, OutboxMessage) {
    let pending = h.state.pending_outbox();
    assert_eq!(pending.len(), 1, "outbox: {pending:?}");
    let entry = &pending[0];
    let message = h
        .state
        .outbox_message(&entry.execution, entry.outbox_id)
        .expect("an indexed message exists")
        .clone();
    (entry.execution.clone(), entry.outbox_id, message)
}

/// Applies `message` on the target shard and returns the outcome.
fn receive(
    target: &mut Harness,
    source: &ExecutionKey,
    outbox_id: i64,
    message: &OutboxMessage,
) -> DeliveryOutcome {
    let applied = target.apply(ShardCommandKind::ReceiveMessage {
        source: source.clone(),
        outbox_id,
        message: message.clone(),
    });
    match applied.reply {
        Some(Ok(ShardReply::Delivered(outcome))) => outcome,
        other => panic!("unexpected receive reply {other:?}"),
    }
}

fn ack(
    source: &mut Harness,
    execution: &ExecutionKey,
    outbox_id: i64,
    message: &OutboxMessage,
    outcome: DeliveryOutcome,
) -> Applied {
    source.apply(ShardCommandKind::AckMessage {
        execution: execution.clone(),
        outbox_id,
        kind: message.kind(),
        outcome,
    })
}

/// Delivers the only pending message of `source` to `target` twice (a redelivery after a lost
/// ack), then acks it twice; checks that the repeats change nothing. Returns the outcome.
fn deliver_twice(source: &mut Harness, target: &mut Harness) -> DeliveryOutcome {
    let (execution, outbox_id, message) = only_message(source);
    let outcome = receive(target, &execution, outbox_id, &message);
    let target_before = target.histories.clone();
    let again = receive(target, &execution, outbox_id, &message);
    assert_eq!(again, outcome, "a redelivery replies the same outcome");
    assert_eq!(
        target.histories, target_before,
        "a redelivery writes nothing"
    );
    ack(source, &execution, outbox_id, &message, outcome.clone());
    let source_before = source.histories.clone();
    let applied = ack(source, &execution, outbox_id, &message, outcome.clone());
    assert!(applied.changes.is_empty(), "a repeated ack changes nothing");
    assert_eq!(source.histories, source_before);
    assert!(source.state.pending_outbox().is_empty());
    outcome
}

/// Starts "parent" on `a` and runs its first task with one StartChild command for "child".
fn parent_with_child(a: &mut Harness, policy: ParentClosePolicy) -> ExecutionKey {
    let parent = a.start("parent");
    a.run_workflow_task(&parent, vec![start_child("child", policy)]);
    parent
}

fn child_key(b: &Harness) -> ExecutionKey {
    let run = b
        .state
        .current_run(&crate::ids::WorkflowKey {
            namespace: "default".into(),
            workflow_id: "child".into(),
        })
        .expect("the child exists");
    key("child", &run.run_id)
}

#[test]
fn child_starts_on_another_shard_and_its_completion_reaches_the_parent_once() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    assert_eq!(
        a.event_types(&parent)[4..],
        [EventType::StartChildWorkflowExecutionInitiated]
    );
    let outcome = deliver_twice(&mut a, &mut b);
    let child = child_key(&b);
    assert_eq!(
        outcome,
        DeliveryOutcome::ChildStarted {
            run_id: child.run_id.clone()
        }
    );
    // The child's start event names its parent and root.
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) =
        &b.event(&child, 1).attributes
    else {
        panic!("no start event");
    };
    assert_eq!(started.parent_workflow_namespace, "default");
    let parent_execution = WorkflowExecution {
        workflow_id: "parent".into(),
        run_id: parent.run_id.clone(),
    };
    assert_eq!(
        started.parent_workflow_execution,
        Some(parent_execution.clone())
    );
    assert_eq!(started.parent_initiated_event_id, 5);
    assert_eq!(started.root_workflow_execution, Some(parent_execution));
    assert_eq!(
        started.task_queue.as_ref().map(|q| q.name.as_str()),
        Some("orders")
    );
    // The parent records the start and gets a workflow task.
    assert_eq!(
        a.event_types(&parent)[5..],
        [
            EventType::ChildWorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled
        ]
    );
    a.run_workflow_task(&parent, vec![]);

    // The child completes: its shard reports to the parent's.
    b.run_workflow_task(&child, vec![complete_workflow("child done")]);
    assert_eq!(deliver_twice(&mut b, &mut a), DeliveryOutcome::Delivered);
    let types = a.event_types(&parent);
    assert_eq!(
        types[types.len() - 2..],
        [
            EventType::ChildWorkflowExecutionCompleted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let completed = &a.history(&parent)[types.len() - 2];
    let Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(c)) = &completed.attributes
    else {
        panic!("no completion");
    };
    assert_eq!(c.initiated_event_id, 5);
    assert_eq!(c.started_event_id, 6);
    assert_eq!(c.result, Some(payloads("child done")));
    assert_eq!(
        c.workflow_execution.as_ref().map(|e| e.run_id.as_str()),
        Some(child.run_id.as_str())
    );
    assert!(
        a.state
            .execution(&parent)
            .expect("parent")
            .children
            .is_empty()
    );
}

#[test]
fn a_failed_child_reaches_the_parent_as_child_workflow_execution_failed() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    deliver_twice(&mut a, &mut b);
    let child = child_key(&b);
    b.run_workflow_task(&child, vec![fail_workflow("child broke")]);
    deliver_twice(&mut b, &mut a);
    let failed = a
        .history(&parent)
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ChildWorkflowExecutionFailedEventAttributes(f)) => Some(f.clone()),
            _ => None,
        })
        .expect("ChildWorkflowExecutionFailed");
    assert_eq!(
        failed.failure.map(|f| f.message),
        Some("child broke".into())
    );
    assert_eq!(failed.started_event_id, 6);
}

#[test]
fn a_child_id_in_use_fails_the_start_with_workflow_already_exists() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let other = b.start("child");
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    assert_eq!(
        deliver_twice(&mut a, &mut b),
        DeliveryOutcome::AlreadyExists
    );
    assert_eq!(
        a.event_types(&parent)[4..],
        [
            EventType::StartChildWorkflowExecutionInitiated,
            EventType::StartChildWorkflowExecutionFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Some(Attributes::StartChildWorkflowExecutionFailedEventAttributes(f)) =
        &a.event(&parent, 6).attributes
    else {
        panic!("no failure event");
    };
    assert_eq!(
        f.cause,
        StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32
    );
    assert_eq!(
        (f.initiated_event_id, f.workflow_task_completed_event_id),
        (5, 4)
    );
    assert_eq!(
        b.event_types(&other).len(),
        2,
        "the running workflow is untouched"
    );
}

#[test]
fn a_child_that_closes_before_the_start_ack_is_recorded_started_then_closed() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    let (source, outbox_id, start) = only_message(&a);
    let outcome = receive(&mut b, &source, outbox_id, &start);
    let child = child_key(&b);
    b.run_workflow_task(&child, vec![complete_workflow("fast")]);
    // The close report arrives first.
    let (child_exec, close_id, closed) = only_message(&b);
    assert_eq!(
        receive(&mut a, &child_exec, close_id, &closed),
        DeliveryOutcome::Delivered
    );
    assert_eq!(
        a.event_types(&parent)[5..],
        [
            EventType::ChildWorkflowExecutionStarted,
            EventType::ChildWorkflowExecutionCompleted,
            EventType::WorkflowTaskScheduled
        ]
    );
    assert!(
        a.state.pending_outbox().is_empty(),
        "the start entry is settled"
    );
    // The late start ack changes nothing.
    let applied = ack(&mut a, &source, outbox_id, &start, outcome);
    assert!(applied.changes.is_empty());
}

#[test]
fn started_event_buffered_during_a_task_links_the_close_event() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    let (source, outbox_id, start) = only_message(&a);
    let outcome = receive(&mut b, &source, outbox_id, &start);
    // A workflow task is running when the start ack and the close report arrive.
    a.apply(signal_request("parent"));
    let info = a.poll_workflow_task(&parent);
    ack(&mut a, &source, outbox_id, &start, outcome);
    let child = child_key(&b);
    b.run_workflow_task(&child, vec![complete_workflow("ok")]);
    deliver_twice(&mut b, &mut a);
    let applied = a.complete_workflow_task(&info.token, vec![]);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    let history = a.history(&parent);
    let started_id = history
        .iter()
        .find(|e| e.event_type == EventType::ChildWorkflowExecutionStarted as i32)
        .map(|e| e.event_id)
        .expect("started");
    let completed = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(c)) => Some(c),
            _ => None,
        })
        .expect("completed");
    assert_eq!(completed.started_event_id, started_id);
}

fn signal_request(workflow_id: &str) -> ShardCommandKind {
    ShardCommandKind::SignalWorkflow {
        request: SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            signal_name: "wake".into(),
            request_id: format!("wake-{workflow_id}"),
            ..Default::default()
        },
    }
}

#[test]
fn parent_close_terminate_terminates_the_running_child_once() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Unspecified);
    deliver_twice(&mut a, &mut b);
    let child = child_key(&b);
    a.run_workflow_task(&parent, vec![complete_workflow("parent done")]);
    let (_, _, message) = only_message(&a);
    assert!(matches!(message, OutboxMessage::ParentClosePolicy(_)));
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::Delivered);
    let ms = b.state.execution(&child).expect("child");
    assert_eq!(ms.status, WorkflowExecutionStatus::Terminated as i32);
    let Some(Attributes::WorkflowExecutionTerminatedEventAttributes(t)) =
        &b.history(&child).last().expect("events").attributes
    else {
        panic!("not terminated");
    };
    assert_eq!(t.reason, PARENT_CLOSE_POLICY_REASON);
    // The child's close report reaches a closed parent: ignored, but delivered.
    assert_eq!(deliver_twice(&mut b, &mut a), DeliveryOutcome::Delivered);
    assert_eq!(
        a.history(&parent).last().map(|e| e.event_type),
        Some(EventType::WorkflowExecutionCompleted as i32)
    );
}

#[test]
fn parent_close_abandon_leaves_the_child_running() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Abandon);
    deliver_twice(&mut a, &mut b);
    let child = child_key(&b);
    a.run_workflow_task(&parent, vec![complete_workflow("parent done")]);
    assert!(a.state.pending_outbox().is_empty());
    assert!(b.state.execution(&child).expect("child").is_running());
}

#[test]
fn parent_close_before_the_start_was_delivered_never_starts_the_child() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = a.start("parent");
    a.run_workflow_task(
        &parent,
        vec![
            start_child("child", ParentClosePolicy::Terminate),
            complete_workflow("done at once"),
        ],
    );
    let (_, _, message) = only_message(&a);
    assert!(matches!(message, OutboxMessage::ParentClosePolicy(_)));
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::Delivered);
    assert!(
        b.state.executions().next().is_none(),
        "no child was started"
    );
}

#[test]
fn external_signal_reaches_the_target_once_and_the_source_records_it() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let target = b.start("target");
    b.run_workflow_task(&target, vec![]);
    let source = a.start("source");
    a.run_workflow_task(&source, vec![signal_external("target")]);
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::Delivered);
    let signaled: Vec<_> = b
        .history(&target)
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionSignaledEventAttributes(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(signaled.len(), 1);
    assert_eq!(signaled[0].signal_name, "poke");
    assert_eq!(
        signaled[0].external_workflow_execution,
        Some(WorkflowExecution {
            workflow_id: "source".into(),
            run_id: source.run_id.clone()
        })
    );
    assert_eq!(
        a.event_types(&source)[4..],
        [
            EventType::SignalExternalWorkflowExecutionInitiated,
            EventType::ExternalWorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn a_redelivered_signal_to_a_target_that_closed_since_still_reports_delivered() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let target = b.start("target");
    b.run_workflow_task(&target, vec![]);
    let source = a.start("source");
    a.run_workflow_task(&source, vec![signal_external("target")]);
    let (execution, outbox_id, message) = only_message(&a);
    assert_eq!(
        receive(&mut b, &execution, outbox_id, &message),
        DeliveryOutcome::Delivered
    );
    b.run_workflow_task(&target, vec![complete_workflow("done")]);
    assert_eq!(
        receive(&mut b, &execution, outbox_id, &message),
        DeliveryOutcome::Delivered
    );
}

#[test]
fn a_signal_to_a_missing_workflow_fails_with_not_found() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let source = a.start("source");
    a.run_workflow_task(&source, vec![signal_external("nobody")]);
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::NotFound);
    assert_eq!(
        a.event_types(&source)[5..],
        [
            EventType::SignalExternalWorkflowExecutionFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn a_start_child_without_workflow_id_fails_the_workflow_task() {
    let mut a = Harness::new();
    let parent = a.start("parent");
    let info = a.poll_workflow_task(&parent);
    let applied = a.complete_workflow_task(
        &info.token,
        vec![start_child("", ParentClosePolicy::Abandon)],
    );
    assert!(matches!(
        applied.reply,
        Some(Err(EngineError::InvalidArgument(_)))
    ));
    assert!(a.state.pending_outbox().is_empty());
    assert_eq!(
        a.event_types(&parent)[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
}

/// Found by the hostile-command property test: a child's retry policy with a NaN backoff
/// coefficient was written into the parent's history (the policy is the child's, applied when
/// a run of it fails). Like Temporal, such a command fails the workflow task.
#[test]
fn a_start_child_with_a_retry_policy_that_cannot_apply_fails_the_workflow_task() {
    for coefficient in [f64::NAN, f64::INFINITY, 0.5] {
        let mut a = Harness::new();
        let parent = a.start("parent");
        let info = a.poll_workflow_task(&parent);
        let mut command = start_child("child", ParentClosePolicy::Abandon);
        if let Some(command::Attributes::StartChildWorkflowExecutionCommandAttributes(child)) =
            command.attributes.as_mut()
        {
            child.retry_policy = Some(RetryPolicy {
                backoff_coefficient: coefficient,
                ..Default::default()
            });
        }
        let applied = a.complete_workflow_task(&info.token, vec![command]);
        assert!(
            matches!(&applied.reply, Some(Err(EngineError::InvalidArgument(m))) if m.contains("BackoffCoefficient")),
            "coefficient {coefficient}: {:?}",
            applied.reply
        );
        assert!(a.state.pending_outbox().is_empty());
        assert_eq!(
            a.event_types(&parent)[3..],
            [
                EventType::WorkflowTaskFailed,
                EventType::WorkflowTaskScheduled
            ]
        );
    }
}

#[test]
fn restore_rebuilds_the_outbox_index() {
    let (mut a, _) = (Harness::new(), ());
    parent_with_child(&mut a, ParentClosePolicy::Terminate);
    let executions: Vec<_> = a.state.executions().cloned().collect();
    let current: Vec<_> = a
        .state
        .current_runs()
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    let restored = ShardState::restore(a.state.clock_ms(), executions, current);
    assert_eq!(restored.pending_outbox(), a.state.pending_outbox());
}

fn cancel_external(workflow_id: &str) -> Command {
    Command {
        command_type: CommandType::RequestCancelExternalWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::RequestCancelExternalWorkflowExecutionCommandAttributes(
                temporalio_protos::temporal::api::command::v1::RequestCancelExternalWorkflowExecutionCommandAttributes {
                    workflow_id: workflow_id.into(),
                    reason: "no longer needed".into(),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

#[test]
fn external_cancel_reaches_the_target_once_and_the_source_records_it() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let target = b.start("target");
    b.run_workflow_task(&target, vec![]);
    let source = a.start("source");
    a.run_workflow_task(&source, vec![cancel_external("target")]);
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::Delivered);
    let requested: Vec<_> = b
        .history(&target)
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(requested.len(), 1, "{:?}", b.event_types(&target));
    assert_eq!(requested[0].external_initiated_event_id, 5);
    assert_eq!(
        requested[0]
            .external_workflow_execution
            .as_ref()
            .map(|e| e.workflow_id.as_str()),
        Some("source")
    );
    assert_eq!(
        a.event_types(&source)[4..],
        [
            EventType::RequestCancelExternalWorkflowExecutionInitiated,
            EventType::ExternalWorkflowExecutionCancelRequested,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn external_cancel_of_a_missing_workflow_fails_with_not_found() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let source = a.start("source");
    a.run_workflow_task(&source, vec![cancel_external("nobody")]);
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::NotFound);
    assert_eq!(
        a.event_types(&source)[5..],
        [
            EventType::RequestCancelExternalWorkflowExecutionFailed,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn parent_close_request_cancel_asks_the_child_to_cancel_once() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::RequestCancel);
    deliver_twice(&mut a, &mut b);
    let child = child_key(&b);
    b.run_workflow_task(&child, vec![]);
    a.run_workflow_task(&parent, vec![complete_workflow("parent done")]);
    assert_eq!(deliver_twice(&mut a, &mut b), DeliveryOutcome::Delivered);
    let ms = b.state.execution(&child).expect("child");
    assert!(
        ms.is_running(),
        "a cancel request leaves the decision to the child"
    );
    let types = b.event_types(&child);
    assert_eq!(
        types[types.len() - 2..],
        [
            EventType::WorkflowExecutionCancelRequested,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(c)) =
        &b.history(&child)[types.len() - 2].attributes
    else {
        panic!("no cancel request");
    };
    assert_eq!(c.external_initiated_event_id, 5);
}

#[test]
fn a_child_that_continues_as_new_reports_only_when_its_last_run_closes() {
    let (mut a, mut b) = (Harness::new(), Harness::new());
    let parent = parent_with_child(&mut a, ParentClosePolicy::Terminate);
    deliver_twice(&mut a, &mut b);
    let first = child_key(&b);
    b.run_workflow_task(
        &first,
        vec![super::continue_as_new::continue_as_new("again", 0)],
    );
    assert!(
        b.state.pending_outbox().is_empty(),
        "no report for a run that continues"
    );
    let second = child_key(&b);
    assert_ne!(second, first);
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) =
        &b.event(&second, 1).attributes
    else {
        panic!("no start event");
    };
    assert_eq!(
        started
            .parent_workflow_execution
            .as_ref()
            .map(|e| e.run_id.as_str()),
        Some(parent.run_id.as_str()),
        "the new run carries the parent"
    );
    assert_eq!(started.parent_initiated_event_id, 5);
    b.run_workflow_task(&second, vec![complete_workflow("last")]);
    assert_eq!(deliver_twice(&mut b, &mut a), DeliveryOutcome::Delivered);
    let completed = a
        .history(&parent)
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(c)) => Some(c.clone()),
            _ => None,
        })
        .expect("the parent hears of the last run");
    assert_eq!(
        completed.workflow_execution.map(|e| e.run_id),
        Some(second.run_id.clone())
    );
    assert_eq!(completed.result, Some(payloads("last")));
}
