//! Updates: admission, speculative workflow tasks, accept/complete/reject, dedupe, unprocessed
//! updates, and updates in flight when the run closes.

use super::*;
use crate::shard::mutable_state::UpdatePhase;
use crate::shard::{UpdateStatus, update_status};
use prost::Message as _;
use temporalio_protos::temporal::api::{
    command::v1::ProtocolMessageCommandAttributes,
    common::v1::WorkflowExecution,
    enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage,
    protocol::v1::Message,
    update::v1::{Acceptance, Input, Meta, Outcome, Rejection, Request, Response, outcome},
    workflowservice::v1::{SignalWorkflowExecutionRequest, UpdateWorkflowExecutionRequest},
};

pub(crate) fn update_request(
    key: &ExecutionKey,
    update_id: &str,
) -> UpdateWorkflowExecutionRequest {
    UpdateWorkflowExecutionRequest {
        namespace: key.namespace.clone(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: key.workflow_id.clone(),
            run_id: String::new(),
        }),
        request: Some(Request {
            meta: Some(Meta {
                update_id: update_id.into(),
                identity: "client".into(),
            }),
            input: Some(Input {
                name: "approve".into(),
                args: Some(payloads("yes")),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn update(
    h: &mut Harness,
    key: &ExecutionKey,
    update_id: &str,
) -> Result<UpdateStatus, EngineError> {
    let applied = h.apply(ShardCommandKind::UpdateWorkflow {
        request: update_request(key, update_id),
    });
    match applied.reply {
        Some(Ok(ShardReply::Update(status))) => Ok(*status),
        Some(Err(e)) => Err(e),
        other => panic!("unexpected update reply {other:?}"),
    }
}

fn any<M: prost::Message + prost::Name>(m: &M) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: m.encode_to_vec(),
    }
}

pub(crate) fn accept(update_id: &str) -> Message {
    Message {
        id: format!("{update_id}/request/accept"),
        protocol_instance_id: update_id.into(),
        body: Some(any(&Acceptance {
            accepted_request_message_id: format!("{update_id}/request"),
            accepted_request_sequencing_event_id: 1,
            accepted_request: None,
        })),
        ..Default::default()
    }
}

pub(crate) fn respond(update_id: &str, result: &str) -> Message {
    Message {
        id: format!("{update_id}/request/complete"),
        protocol_instance_id: update_id.into(),
        body: Some(any(&Response {
            meta: Some(Meta {
                update_id: update_id.into(),
                identity: "worker-1".into(),
            }),
            outcome: Some(Outcome {
                value: Some(outcome::Value::Success(payloads(result))),
            }),
        })),
        ..Default::default()
    }
}

pub(crate) fn reject(update_id: &str) -> Message {
    Message {
        id: format!("{update_id}/request/reject"),
        protocol_instance_id: update_id.into(),
        body: Some(any(&Rejection {
            rejected_request_message_id: format!("{update_id}/request"),
            failure: Some(app_failure("invalid amount", true)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(crate) fn protocol_command(message: &Message) -> Command {
    Command {
        command_type: CommandType::ProtocolMessage as i32,
        attributes: Some(command::Attributes::ProtocolMessageCommandAttributes(
            ProtocolMessageCommandAttributes {
                message_id: message.id.clone(),
            },
        )),
        ..Default::default()
    }
}

fn complete_with(
    h: &mut Harness,
    token: &TaskToken,
    commands: Vec<Command>,
    messages: Vec<Message>,
) -> ShardReply {
    let request = RespondWorkflowTaskCompletedRequest {
        commands,
        messages,
        identity: "worker-1".into(),
        ..Default::default()
    };
    let applied = h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: token.clone(),
        request,
    });
    match applied.reply {
        Some(Ok(reply)) => reply,
        other => panic!("completion failed: {other:?}"),
    }
}

/// A started workflow with its first task completed and no task pending.
fn idle_workflow(h: &mut Harness, id: &str) -> ExecutionKey {
    let key = h.start(id);
    h.run_workflow_task(&key, vec![]);
    key
}

fn status(h: &Harness, key: &ExecutionKey, update_id: &str) -> UpdateStatus {
    let ms = h.state.execution(key).expect("execution");
    update_status(ms, update_id).expect("known update")
}

#[test]
fn an_update_on_an_idle_run_rides_a_speculative_task_and_is_accepted_and_completed() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    let next = h.state.execution(&key).unwrap().next_event_id;
    let admitted = update(&mut h, &key, "u1").unwrap();
    assert_eq!(admitted.stage, Stage::Admitted as i32);
    // Nothing is written: the task is speculative.
    assert_eq!(h.state.execution(&key).unwrap().next_event_id, next);
    let wft = h
        .state
        .execution(&key)
        .unwrap()
        .workflow_task
        .clone()
        .unwrap();
    assert!(wft.speculative);
    assert_eq!(wft.scheduled_event_id, next);
    assert_eq!(h.state.pending_tasks().len(), 1);

    let info = h.poll_workflow_task(&key);
    assert_eq!(h.state.execution(&key).unwrap().next_event_id, next);
    assert_eq!(
        (info.scheduled_event_id, info.started_event_id),
        (next, next + 1)
    );
    let synthesized: Vec<(i64, i32)> = info
        .speculative_events
        .iter()
        .map(|e| (e.event_id, e.event_type))
        .collect();
    assert_eq!(
        synthesized,
        vec![
            (next, EventType::WorkflowTaskScheduled as i32),
            (next + 1, EventType::WorkflowTaskStarted as i32)
        ]
    );
    assert_eq!(info.messages.len(), 1);
    let message = &info.messages[0];
    assert_eq!(message.id, "u1/request");
    assert_eq!(message.protocol_instance_id, "u1");
    assert_eq!(
        message.sequencing_id,
        Some(temporalio_protos::temporal::api::protocol::v1::message::SequencingId::EventId(next))
    );
    let body = message.body.as_ref().unwrap();
    assert_eq!(
        body.type_url,
        "type.googleapis.com/temporal.api.update.v1.Request"
    );
    let request = Request::decode(body.value.as_slice()).unwrap();
    assert_eq!(request.input.unwrap().name, "approve");

    let (a, r) = (accept("u1"), respond("u1", "approved"));
    complete_with(
        &mut h,
        &info.token,
        vec![protocol_command(&a), protocol_command(&r)],
        vec![a, r],
    );
    let types = h.event_types(&key);
    assert_eq!(
        types[(next - 1) as usize..].to_vec(),
        vec![
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskCompleted,
            EventType::WorkflowExecutionUpdateAccepted,
            EventType::WorkflowExecutionUpdateCompleted,
        ]
    );
    // The written events are the ones the worker was shown.
    assert_eq!(
        h.event(&key, next).event_time,
        info.speculative_events[0].event_time
    );
    assert_eq!(
        h.event(&key, next + 1).attributes,
        info.speculative_events[1].attributes
    );
    match attrs(h.event(&key, next + 3)) {
        Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
            assert_eq!(a.protocol_instance_id, "u1");
            assert_eq!(a.accepted_request_message_id, "u1/request");
            assert_eq!(
                a.accepted_request
                    .as_ref()
                    .unwrap()
                    .input
                    .as_ref()
                    .unwrap()
                    .name,
                "approve"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match attrs(h.event(&key, next + 4)) {
        Attributes::WorkflowExecutionUpdateCompletedEventAttributes(c) => {
            assert_eq!(c.accepted_event_id, next + 3);
            assert_eq!(c.meta.as_ref().unwrap().update_id, "u1");
        }
        other => panic!("unexpected {other:?}"),
    }
    let done = status(&h, &key, "u1");
    assert_eq!(done.stage, Stage::Completed as i32);
    assert_eq!(
        done.outcome,
        Some(Outcome {
            value: Some(outcome::Value::Success(payloads("approved")))
        })
    );
    assert!(h.state.execution(&key).unwrap().workflow_task.is_none());
}

#[test]
fn a_rejected_update_writes_nothing_and_is_deduplicated() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    let before = h.state.execution(&key).unwrap().clone();
    update(&mut h, &key, "u1").unwrap();
    let info = h.poll_workflow_task(&key);
    let reply = complete_with(&mut h, &info.token, vec![], vec![reject("u1")]);
    // The worker is told to forget the task: back to the last task really completed.
    assert_eq!(
        reply,
        ShardReply::WorkflowTaskDiscarded {
            reset_history_event_id: before.previous_started_event_id
        }
    );
    let after = h.state.execution(&key).unwrap();
    assert_eq!(after.next_event_id, before.next_event_id);
    assert_eq!(
        after.previous_started_event_id,
        before.previous_started_event_id
    );
    assert!(after.workflow_task.is_none());
    assert_eq!(h.history(&key).len() as i64, before.next_event_id - 1);
    let rejected = status(&h, &key, "u1");
    assert_eq!(rejected.stage, Stage::Completed as i32);
    assert!(matches!(
        rejected.outcome.as_ref().and_then(|o| o.value.as_ref()),
        Some(outcome::Value::Failure(f)) if f.message == "invalid amount"
    ));
    // The same update ID again: the same outcome, no new task.
    assert_eq!(update(&mut h, &key, "u1").unwrap(), rejected);
    assert!(h.state.execution(&key).unwrap().workflow_task.is_none());

    // The next update reuses the reserved IDs of the discarded task.
    update(&mut h, &key, "u2").unwrap();
    let again = h.poll_workflow_task(&key);
    assert_eq!(again.started_event_id, info.started_event_id);
}

#[test]
fn a_duplicate_update_id_while_in_flight_changes_nothing() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    update(&mut h, &key, "u1").unwrap();
    let state = h.state.execution(&key).unwrap().clone();
    let applied = h.apply(ShardCommandKind::UpdateWorkflow {
        request: update_request(&key, "u1"),
    });
    assert!(applied.changes.is_empty());
    assert_eq!(h.state.execution(&key).unwrap(), &state);
    let info = h.poll_workflow_task(&key);
    let a = accept("u1");
    complete_with(&mut h, &info.token, vec![protocol_command(&a)], vec![a]);
    assert_eq!(
        update(&mut h, &key, "u1").unwrap().stage,
        Stage::Accepted as i32
    );
    let accepted = h
        .event_types(&key)
        .iter()
        .filter(|t| **t == EventType::WorkflowExecutionUpdateAccepted)
        .count();
    assert_eq!(accepted, 1);
}

#[test]
fn an_update_the_worker_ignores_is_rejected_by_the_server() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    let next = h.state.execution(&key).unwrap().next_event_id;
    update(&mut h, &key, "u1").unwrap();
    let info = h.poll_workflow_task(&key);
    complete_with(&mut h, &info.token, vec![], vec![]);
    assert_eq!(h.state.execution(&key).unwrap().next_event_id, next);
    let rejected = status(&h, &key, "u1");
    assert!(matches!(
        rejected.outcome.and_then(|o| o.value),
        Some(outcome::Value::Failure(f)) if f.message.contains("wasn't processed by worker")
    ));
}

#[test]
fn an_update_during_a_started_task_gets_the_next_task() {
    let mut h = Harness::new();
    let key = h.start("wf");
    let first = h.poll_workflow_task(&key);
    update(&mut h, &key, "u1").unwrap();
    assert!(first.messages.is_empty());
    h.complete_workflow_task(&first.token, vec![]);
    let ms = h.state.execution(&key).unwrap();
    let wft = ms
        .workflow_task
        .clone()
        .expect("a task for the admitted update");
    assert!(wft.speculative);
    assert_eq!(wft.scheduled_event_id, ms.next_event_id);
    let second = h.poll_workflow_task(&key);
    assert_eq!(second.messages.len(), 1);
}

#[test]
fn a_signal_while_the_speculative_task_is_scheduled_makes_it_normal() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    let next = h.state.execution(&key).unwrap().next_event_id;
    update(&mut h, &key, "u1").unwrap();
    let applied = h.apply(ShardCommandKind::SignalWorkflow {
        request: SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf".into(),
                run_id: String::new(),
            }),
            signal_name: "go".into(),
            ..Default::default()
        },
    });
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    let types = h.event_types(&key);
    assert_eq!(
        types[(next - 1) as usize..].to_vec(),
        vec![
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled
        ]
    );
    let wft = h
        .state
        .execution(&key)
        .unwrap()
        .workflow_task
        .clone()
        .unwrap();
    assert!(!wft.speculative);
    assert_eq!(wft.scheduled_event_id, next + 1);
    let info = h.poll_workflow_task(&key);
    assert!(info.speculative_events.is_empty());
    assert_eq!(info.messages.len(), 1);
}

#[test]
fn a_timed_out_speculative_task_is_written_and_retried_as_a_normal_task() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    let next = h.state.execution(&key).unwrap().next_event_id;
    update(&mut h, &key, "u1").unwrap();
    h.poll_workflow_task(&key);
    h.advance(10_001);
    assert_eq!(h.fire_timers(), 1);
    let types = h.event_types(&key);
    assert_eq!(
        types[(next - 1) as usize..].to_vec(),
        vec![
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskTimedOut,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let info = h.poll_workflow_task(&key);
    assert_eq!(info.attempt, 2);
    assert_eq!(info.messages.len(), 1, "the update is delivered again");
}

#[test]
fn closing_the_run_aborts_updates_not_yet_accepted_and_fails_accepted_ones() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    update(&mut h, &key, "accepted").unwrap();
    let info = h.poll_workflow_task(&key);
    let a = accept("accepted");
    complete_with(&mut h, &info.token, vec![protocol_command(&a)], vec![a]);
    update(&mut h, &key, "waiting").unwrap();
    let info = h.poll_workflow_task(&key);
    complete_with(&mut h, &info.token, vec![complete_workflow("done")], vec![]);
    assert!(!h.state.execution(&key).unwrap().is_running());
    let waiting = status(&h, &key, "waiting");
    assert!(waiting.aborted);
    let accepted = status(&h, &key, "accepted");
    assert!(matches!(
        accepted.outcome.and_then(|o| o.value),
        Some(outcome::Value::Failure(f)) if f.message.contains("Workflow completed before the Update completed")
    ));
    // A new update on the closed run is refused; a known one still answers.
    assert!(matches!(
        update(&mut h, &key, "late"),
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(update(&mut h, &key, "waiting").unwrap(), waiting);
    let ms = h.state.execution(&key).unwrap();
    assert_eq!(ms.updates["waiting"].phase, UpdatePhase::Aborted);
}

#[test]
fn a_response_for_an_update_never_accepted_fails_the_task() {
    let mut h = Harness::new();
    let key = idle_workflow(&mut h, "wf");
    update(&mut h, &key, "u1").unwrap();
    let info = h.poll_workflow_task(&key);
    let r = respond("u1", "x");
    let request = RespondWorkflowTaskCompletedRequest {
        commands: vec![protocol_command(&r)],
        messages: vec![r],
        identity: "worker-1".into(),
        ..Default::default()
    };
    let applied = h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: info.token.clone(),
        request,
    });
    assert!(matches!(
        applied.reply,
        Some(Ok(_)) | Some(Err(EngineError::InvalidArgument(_)))
    ));
    let types = h.event_types(&key);
    assert_eq!(
        types[types.len() - 4..].to_vec(),
        vec![
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled,
        ]
    );
}

#[test]
fn update_with_start_is_atomic_and_names_the_failed_operation() {
    let mut h = Harness::new();
    let start = start_request("uws", "req-1");
    let applied = h.apply(ShardCommandKind::StartWorkflowWithUpdate {
        start: start.clone(),
        run_id: "run-a".into(),
        update: update_request(&key("uws", ""), "u1"),
    });
    let Some(Ok(ShardReply::StartedWithUpdate {
        run_id,
        started: true,
        update,
    })) = applied.reply
    else {
        panic!("unexpected reply {:?}", applied.reply);
    };
    assert_eq!(run_id, "run-a");
    assert_eq!(update.stage, Stage::Admitted as i32);
    let key = key("uws", "run-a");
    // The first (normal) task of the new run carries the update.
    let info = h.poll_workflow_task(&key);
    assert_eq!(info.messages.len(), 1);
    assert!(info.speculative_events.is_empty());

    // The same request again (the SDK retries until accepted): same run, same update.
    let applied = h.apply(ShardCommandKind::StartWorkflowWithUpdate {
        start,
        run_id: "run-b".into(),
        update: update_request(&key, "u1"),
    });
    assert!(matches!(
        applied.reply,
        Some(Ok(ShardReply::StartedWithUpdate { ref run_id, .. })) if run_id == "run-a"
    ));

    // A second start that fails (running, FAIL policy) applies neither operation.
    let before = h.state.execution(&key).unwrap().clone();
    let applied = h.apply(ShardCommandKind::StartWorkflowWithUpdate {
        start: start_request("uws", "req-2"),
        run_id: "run-c".into(),
        update: update_request(&key, "u2"),
    });
    match applied.reply {
        Some(Err(EngineError::MultiOperation { index: 0, error })) => {
            assert!(matches!(*error, EngineError::AlreadyStarted { .. }));
        }
        other => panic!("unexpected reply {other:?}"),
    }
    assert!(applied.changes.is_empty());
    assert_eq!(h.state.execution(&key).unwrap(), &before);
}
