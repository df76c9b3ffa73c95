//! `Notice::TaskGone`: every node drops the queue entry of a task that left the ready set, so
//! the in-memory queues of nodes whose pollers lost the race do not keep stale entries.

use super::*;
use crate::shard::{Notice, PendingTask};

fn gone(applied: &Applied) -> Vec<PendingTask> {
    applied
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::TaskGone(task) => Some(task.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn starting_a_workflow_task_reports_it_gone_and_a_refused_start_reports_nothing() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let pending = h.state.pending_tasks();
    assert_eq!(pending.len(), 1);
    let started = h.apply(ShardCommandKind::RecordWorkflowTaskStarted {
        execution: k.clone(),
        scheduled_event_id: pending[0].scheduled_event_id,
        identity: "node-1-poller".into(),
        poll_request_id: "poll-a".into(),
    });
    assert!(matches!(
        started.reply,
        Some(Ok(ShardReply::WorkflowTaskStarted(_)))
    ));
    assert_eq!(gone(&started), pending);
    assert!(!h.state.is_task_pending(&pending[0]));

    // Another node's poller lost the race: refused, and no notice at all.
    let lost = h.apply(ShardCommandKind::RecordWorkflowTaskStarted {
        execution: k.clone(),
        scheduled_event_id: pending[0].scheduled_event_id,
        identity: "node-2-poller".into(),
        poll_request_id: "poll-b".into(),
    });
    assert_eq!(
        lost.reply,
        Some(Err(EngineError::NotFound(
            "Workflow task not found.".into()
        )))
    );
    assert!(lost.notices.is_empty());
}

#[test]
fn an_activity_started_then_retried_is_gone_then_ready_again_under_the_same_identity() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let policy = RetryPolicy {
        initial_interval: Some(duration_ms(100)),
        backoff_coefficient: 2.0,
        maximum_attempts: 3,
        ..Default::default()
    };
    h.run_workflow_task(&k, vec![schedule_activity("charge", 30_000, Some(policy))]);
    let ready = h.state.pending_tasks();
    assert_eq!(ready.len(), 1);
    let task = ready[0].clone();

    let started = h.apply(ShardCommandKind::RecordActivityTaskStarted {
        execution: k.clone(),
        scheduled_event_id: task.scheduled_event_id,
        identity: "w".into(),
        poll_request_id: "p1".into(),
    });
    let Some(Ok(ShardReply::ActivityTaskStarted(info))) = started.reply.clone() else {
        panic!("start refused: {:?}", started.reply)
    };
    assert_eq!(gone(&started), vec![task.clone()]);

    h.fail_activity(
        &info.token,
        Failure {
            message: "try again".into(),
            ..Default::default()
        },
    );
    assert!(h.state.pending_tasks().is_empty(), "backing off");
    h.advance(100);
    let retried = h.apply(ShardCommandKind::FireTimers);
    assert!(retried.notices.contains(&Notice::TaskReady(task.clone())));
    assert!(h.state.is_task_pending(&task));
}

#[test]
fn closing_the_run_reports_its_ready_activity_gone() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![schedule_activity("charge", 30_000, None)]);
    let task = h.state.pending_tasks().remove(0);
    let terminated = h.apply(ShardCommandKind::TerminateWorkflow {
        request: temporalio_protos::temporal::api::workflowservice::v1::TerminateWorkflowExecutionRequest {
            namespace: k.namespace.clone(),
            workflow_execution: Some(temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                workflow_id: k.workflow_id.clone(),
                run_id: k.run_id.clone(),
            }),
            reason: "stop".into(),
            ..Default::default()
        },
    });
    assert!(
        matches!(terminated.reply, Some(Ok(_))),
        "{:?}",
        terminated.reply
    );
    assert_eq!(gone(&terminated), vec![task]);
    assert!(h.state.pending_tasks().is_empty());
}
