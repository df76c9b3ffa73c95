//! Continue-as-new: the closing run, its successor in the same command, back-off, inheritance.

use super::*;
use crate::shard::new_run::successor_run_id;
use temporalio_protos::temporal::api::{
    command::v1::ContinueAsNewWorkflowExecutionCommandAttributes,
    common::v1::WorkflowExecution,
    enums::v1::{ContinueAsNewInitiator, WorkflowExecutionStatus},
    history::v1::WorkflowExecutionStartedEventAttributes,
    workflowservice::v1::SignalWorkflowExecutionRequest,
};

pub(crate) fn continue_as_new(input: &str, backoff_ms: i64) -> Command {
    let attributes = ContinueAsNewWorkflowExecutionCommandAttributes {
        input: Some(payloads(input)),
        backoff_start_interval: (backoff_ms > 0).then(|| duration_ms(backoff_ms)),
        ..Default::default()
    };
    Command {
        command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(attributes),
        ),
        ..Default::default()
    }
}

fn started(h: &Harness, key: &ExecutionKey) -> WorkflowExecutionStartedEventAttributes {
    match attrs(h.event(key, 1)) {
        Attributes::WorkflowExecutionStartedEventAttributes(s) => s.clone(),
        other => panic!("first event is {other:?}"),
    }
}

/// Runs one workflow task of the current run of "wf" that continues as new; returns the new key.
fn continue_current(h: &mut Harness, input: &str) -> ExecutionKey {
    let current = h.state.current_run(&key("wf", "").workflow_key()).unwrap();
    let k = key("wf", &current.run_id.clone());
    h.run_workflow_task(&k, vec![continue_as_new(input, 0)]);
    let new_run = h
        .state
        .current_run(&k.workflow_key())
        .unwrap()
        .run_id
        .clone();
    key("wf", &new_run)
}

#[test]
fn continue_as_new_closes_the_run_and_starts_its_successor_atomically() {
    let mut request = start_request("wf", "req");
    request.workflow_execution_timeout = Some(duration_ms(3_600_000));
    let mut h = Harness::new();
    h.start_with(request);
    let first = key("wf", "run-1");
    let applied = h.poll_workflow_task(&first);
    h.advance(1_000);
    let done = h.complete_workflow_task(&applied.token, vec![continue_as_new("round-2", 0)]);
    assert_eq!(done.reply, Some(Ok(ShardReply::Done)));
    let second_id = successor_run_id("run-1", 5);
    let second = key("wf", &second_id);
    // One command wrote both histories and moved the current run.
    assert!(done.changes.events.iter().any(|(k, _)| *k == first));
    assert!(done.changes.events.iter().any(|(k, _)| *k == second));
    assert_eq!(
        h.event_types(&first)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::WorkflowExecutionContinuedAsNew
        ]
    );
    let Attributes::WorkflowExecutionContinuedAsNewEventAttributes(can) = attrs(h.event(&first, 5))
    else {
        panic!()
    };
    assert_eq!(can.new_execution_run_id, second_id);
    assert_eq!(can.workflow_type.as_ref().unwrap().name, "OrderWorkflow");
    assert_eq!(can.task_queue.as_ref().unwrap().name, "orders");
    assert_eq!(can.workflow_task_completed_event_id, 4);
    assert_eq!(
        h.state.execution(&first).unwrap().status,
        WorkflowExecutionStatus::ContinuedAsNew as i32
    );
    let current = h.state.current_run(&first.workflow_key()).unwrap();
    assert_eq!(
        (current.run_id.as_str(), current.is_running()),
        (second_id.as_str(), true)
    );
    assert_eq!(
        h.event_types(&second),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let s = started(&h, &second);
    assert_eq!(s.continued_execution_run_id, "run-1");
    assert_eq!(s.first_execution_run_id, "run-1");
    assert_eq!(s.original_execution_run_id, second_id);
    assert_eq!(s.attempt, 1);
    assert_eq!(s.initiator, ContinueAsNewInitiator::Workflow as i32);
    assert_eq!(s.input, Some(payloads("round-2")));
    // The execution timeout spans the chain: same deadline, not restarted.
    assert_eq!(
        s.workflow_execution_expiration_time,
        Some(crate::shard::time::timestamp(T0 + 3_600_000))
    );
    assert_eq!(
        h.state
            .execution(&second)
            .unwrap()
            .execution_expiration_time_ms,
        T0 + 3_600_000
    );
    let pending = h.state.pending_tasks();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].execution, second);
}

#[test]
fn a_chain_keeps_its_first_run_id() {
    let mut h = Harness::new();
    h.start("wf");
    let mut k = key("wf", "run-1");
    for round in 2..=4 {
        k = continue_current(&mut h, &format!("round-{round}"));
        assert_eq!(started(&h, &k).first_execution_run_id, "run-1");
    }
    h.run_workflow_task(&k, vec![complete_workflow("final")]);
    let runs: Vec<_> = h.state.executions().map(|ms| ms.status).collect();
    assert_eq!(runs.len(), 4);
    assert_eq!(
        h.state.current_run(&k.workflow_key()).unwrap().status,
        WorkflowExecutionStatus::Completed as i32
    );
}

#[test]
fn backoff_delays_the_first_task_and_signals_wait_for_it() {
    let mut h = Harness::new();
    let first = h.start("wf");
    h.run_workflow_task(&first, vec![continue_as_new("later", 5_000)]);
    let second = key("wf", &successor_run_id("run-1", 5));
    assert_eq!(
        h.event_types(&second),
        [EventType::WorkflowExecutionStarted]
    );
    assert_eq!(
        started(&h, &second).first_workflow_task_backoff,
        Some(duration_ms(5_000))
    );
    assert!(h.state.pending_tasks().is_empty());
    // A signal during the back-off is recorded but schedules no task.
    let signal = SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "wf".into(),
            run_id: String::new(),
        }),
        signal_name: "poke".into(),
        request_id: "s-1".into(),
        ..Default::default()
    };
    h.apply(ShardCommandKind::SignalWorkflow { request: signal });
    assert_eq!(
        h.event_types(&second),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowExecutionSignaled
        ]
    );
    h.advance(4_999);
    assert_eq!(h.fire_timers(), 0);
    h.advance(1);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(
        h.event_types(&second)[2..],
        [EventType::WorkflowTaskScheduled]
    );
    h.run_workflow_task(&second, vec![complete_workflow("done")]);
}

#[test]
fn unset_fields_are_inherited_and_set_ones_win() {
    let mut request = start_request("wf", "req");
    request.workflow_run_timeout = Some(duration_ms(60_000));
    request.workflow_task_timeout = Some(duration_ms(7_000));
    let mut h = Harness::new();
    h.start_with(request);
    let first = key("wf", "run-1");
    let mut command = continue_as_new("x", 0);
    if let Some(command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(a)) =
        &mut command.attributes
    {
        a.task_queue = Some(TaskQueue {
            name: "other-queue".into(),
            ..Default::default()
        });
    }
    h.run_workflow_task(&first, vec![command]);
    let second = key("wf", &successor_run_id("run-1", 5));
    let ms = h.state.execution(&second).unwrap();
    assert_eq!(ms.task_queue, "other-queue");
    assert_eq!(ms.workflow_type, "OrderWorkflow");
    assert_eq!(ms.workflow_run_timeout_ms, 60_000);
    assert_eq!(ms.workflow_task_timeout_ms, 7_000);
    assert_eq!(ms.run_expiration_time_ms, h.now_ms + 60_000);
    assert_eq!(h.state.pending_tasks()[0].task_queue, "other-queue");
}

#[test]
fn continue_as_new_with_buffered_events_is_an_unhandled_command() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    h.apply(super::cancel::request_cancel("wf", "", "c"));
    let applied = h.complete_workflow_task(&info.token, vec![continue_as_new("x", 0)]);
    assert_eq!(applied.reply, Some(Err(EngineError::UnhandledCommand)));
    assert_eq!(h.state.executions().count(), 1, "no successor was created");
}
