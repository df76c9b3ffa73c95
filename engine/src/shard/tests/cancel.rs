//! RequestCancelWorkflowExecution and the CancelWorkflowExecution command.

use super::*;
use temporalio_protos::temporal::api::{
    command::v1::CancelWorkflowExecutionCommandAttributes, common::v1::WorkflowExecution,
    enums::v1::WorkflowExecutionStatus, workflowservice::v1::RequestCancelWorkflowExecutionRequest,
};

pub(crate) fn request_cancel(
    workflow_id: &str,
    run_id: &str,
    request_id: &str,
) -> ShardCommandKind {
    ShardCommandKind::RequestCancelWorkflow {
        request: RequestCancelWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: run_id.into(),
            }),
            identity: "client".into(),
            request_id: request_id.into(),
            reason: "user asked".into(),
            ..Default::default()
        },
        external_initiated_event_id: 0,
        external_workflow_execution: None,
    }
}

pub(crate) fn cancel_workflow(details: &str) -> Command {
    Command {
        command_type: CommandType::CancelWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CancelWorkflowExecutionCommandAttributes(
                CancelWorkflowExecutionCommandAttributes {
                    details: Some(payloads(details)),
                },
            ),
        ),
        ..Default::default()
    }
}

#[test]
fn cancel_request_schedules_a_task_and_the_cancel_command_closes_the_run() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![start_timer("t", 60_000)]);
    let applied = h.apply(request_cancel("wf", "", "c-1"));
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k)[5..],
        [
            EventType::WorkflowExecutionCancelRequested,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowExecutionCancelRequestedEventAttributes(c) = attrs(h.event(&k, 6))
    else {
        panic!()
    };
    assert_eq!(
        (c.cause.as_str(), c.identity.as_str()),
        ("user asked", "client")
    );
    // A second request (another request ID, or a retry) writes nothing.
    for again in [
        request_cancel("wf", "", "c-2"),
        request_cancel("wf", "run-1", "c-1"),
    ] {
        let applied = h.apply(again);
        assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
        assert!(applied.changes.is_empty());
    }
    h.run_workflow_task(&k, vec![cancel_timer("t"), cancel_workflow("bye")]);
    let types = h.event_types(&k);
    assert_eq!(
        types[types.len() - 2..],
        [
            EventType::TimerCanceled,
            EventType::WorkflowExecutionCanceled
        ]
    );
    let last = h.history(&k).last().unwrap();
    let Attributes::WorkflowExecutionCanceledEventAttributes(done) = attrs(last) else {
        panic!()
    };
    assert_eq!(done.details, Some(payloads("bye")));
    assert_eq!(done.workflow_task_completed_event_id, last.event_id - 2);
    let ms = h.state.execution(&k).unwrap();
    assert_eq!(ms.status, WorkflowExecutionStatus::Canceled as i32);
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Canceled as i32
    );
    assert!(h.state.pending_tasks().is_empty() && h.state.next_timer_ms().is_none());
    // Cancelling a closed run succeeds without an event, as in Temporal.
    let closed = h.apply(request_cancel("wf", "", "c-3"));
    assert_eq!(closed.reply, Some(Ok(ShardReply::Done)));
    assert!(closed.changes.is_empty());
}

#[test]
fn cancel_request_during_a_started_task_is_buffered() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    h.apply(request_cancel("wf", "", "c-1"));
    assert_eq!(h.history(&k).len(), 3, "buffered, no event yet");
    h.complete_workflow_task(&info.token, vec![]);
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::WorkflowExecutionCancelRequested,
            EventType::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn cancel_of_unknown_workflow_or_other_chain_is_not_found() {
    let mut h = Harness::new();
    let unknown = h.apply(request_cancel("nope", "", "c"));
    assert_eq!(
        unknown.reply,
        Some(Err(EngineError::NotFound(
            "Workflow execution not found.".into()
        )))
    );
    h.start("wf");
    let mut command = request_cancel("wf", "", "c");
    if let ShardCommandKind::RequestCancelWorkflow { request, .. } = &mut command {
        request.first_execution_run_id = "another-chain".into();
    }
    let applied = h.apply(command);
    assert!(matches!(applied.reply, Some(Err(EngineError::NotFound(_)))));
    assert!(applied.changes.is_empty());
}

#[test]
fn external_cancel_request_names_its_initiator() {
    let mut h = Harness::new();
    let k = h.start("child");
    let mut command = request_cancel("child", "", "c");
    let parent = WorkflowExecution {
        workflow_id: "parent".into(),
        run_id: "parent-run".into(),
    };
    if let ShardCommandKind::RequestCancelWorkflow {
        external_initiated_event_id,
        external_workflow_execution,
        ..
    } = &mut command
    {
        *external_initiated_event_id = 7;
        *external_workflow_execution = Some(parent.clone());
    }
    h.apply(command);
    let Attributes::WorkflowExecutionCancelRequestedEventAttributes(c) = attrs(h.event(&k, 3))
    else {
        panic!()
    };
    assert_eq!(c.external_initiated_event_id, 7);
    assert_eq!(c.external_workflow_execution, Some(parent));
}
