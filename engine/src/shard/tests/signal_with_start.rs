//! SignalWithStartWorkflowExecution.

use super::*;
use temporalio_protos::temporal::api::{
    enums::v1::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy},
    workflowservice::v1::SignalWithStartWorkflowExecutionRequest,
};

fn signal_with_start(h: &mut Harness, request_id: &str, run_id: &str) -> Applied {
    let request = SignalWithStartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: "wf".into(),
        workflow_type: Some(WorkflowType {
            name: "OrderWorkflow".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "orders".into(),
            ..Default::default()
        }),
        input: Some(payloads("input")),
        identity: "client".into(),
        request_id: request_id.into(),
        signal_name: "add".into(),
        signal_input: Some(payloads(request_id)),
        ..Default::default()
    };
    h.apply(ShardCommandKind::SignalWithStartWorkflow {
        request,
        run_id: run_id.into(),
    })
}

fn reply(applied: &Applied) -> (String, bool) {
    match &applied.reply {
        Some(Ok(ShardReply::WorkflowStarted { run_id, started })) => (run_id.clone(), *started),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn starts_with_the_signal_then_signals_the_running_run() {
    let mut h = Harness::new();
    let first = signal_with_start(&mut h, "sws-1", "run-a");
    assert_eq!(reply(&first), ("run-a".to_string(), true));
    let k = key("wf", "run-a");
    assert_eq!(
        h.event_types(&k),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowExecutionSignaledEventAttributes(s) = attrs(h.event(&k, 2)) else {
        panic!()
    };
    assert_eq!(
        (s.signal_name.as_str(), s.input.clone()),
        ("add", Some(payloads("sws-1")))
    );
    // A retry of the same request changes nothing.
    let retry = signal_with_start(&mut h, "sws-1", "run-b");
    assert_eq!(reply(&retry).0, "run-a");
    assert!(retry.changes.is_empty());
    // Another request signals the running run: WFT+ is a no-op, a task is already scheduled.
    let second = signal_with_start(&mut h, "sws-2", "run-c");
    assert_eq!(reply(&second), ("run-a".to_string(), false));
    assert_eq!(
        h.event_types(&k)[3..],
        [EventType::WorkflowExecutionSignaled]
    );
    // Once the run is closed, a new run starts (reuse policy allows it).
    h.run_workflow_task(&k, vec![complete_workflow("done")]);
    let third = signal_with_start(&mut h, "sws-3", "run-d");
    assert_eq!(reply(&third), ("run-d".to_string(), true));
    assert_eq!(h.event_types(&key("wf", "run-d")).len(), 3);
}

#[test]
fn conflict_and_reuse_policies_apply_as_for_a_start() {
    let mut h = Harness::new();
    h.start("wf");
    let mut fail = start_request("wf", "");
    fail.workflow_id_conflict_policy = WorkflowIdConflictPolicy::Fail as i32;
    let request = SignalWithStartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: "wf".into(),
        workflow_type: fail.workflow_type.clone(),
        task_queue: fail.task_queue.clone(),
        request_id: "sws".into(),
        signal_name: "add".into(),
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::Fail as i32,
        ..Default::default()
    };
    let refused = h.apply(ShardCommandKind::SignalWithStartWorkflow {
        request: request.clone(),
        run_id: "run-x".into(),
    });
    assert!(matches!(
        refused.reply,
        Some(Err(EngineError::AlreadyStarted { .. }))
    ));
    assert!(refused.changes.is_empty());
    h.apply(ShardCommandKind::TerminateWorkflow {
        request: temporalio_protos::temporal::api::workflowservice::v1::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                workflow_id: "wf".into(),
                run_id: String::new(),
            }),
            ..Default::default()
        },
    });
    let closed = h.apply(ShardCommandKind::SignalWithStartWorkflow {
        request: SignalWithStartWorkflowExecutionRequest {
            workflow_id_reuse_policy: WorkflowIdReusePolicy::RejectDuplicate as i32,
            ..request
        },
        run_id: "run-y".into(),
    });
    assert!(matches!(
        closed.reply,
        Some(Err(EngineError::AlreadyStarted { .. }))
    ));
}
