//! Turns a [`Garbage`] description into the concrete [`ShardCommandKind`], resolved against the
//! state it is about to be applied to (live tokens to bend, real run IDs to aim at).

#![allow(
    deprecated,
    reason = "the deprecated `namespace` fields of external commands are still sent by old SDKs"
)]

use super::garbage::{
    BadCommand, BadMessage, Bend, Garbage, Name, Retry, RunPick, Span, Target, Token,
};
use crate::ids::ExecutionKey;
use crate::shard::outbox::{DeliveryOutcome, OutboxKind};
use crate::shard::{ShardCommandKind, ShardState};
use crate::token::{TaskKind, TaskToken};
use std::collections::HashMap;
use temporalio_protos::temporal::api::{
    command::v1::{
        CancelTimerCommandAttributes, Command, CompleteWorkflowExecutionCommandAttributes,
        ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
        ProtocolMessageCommandAttributes, RecordMarkerCommandAttributes,
        RequestCancelActivityTaskCommandAttributes,
        RequestCancelExternalWorkflowExecutionCommandAttributes,
        ScheduleActivityTaskCommandAttributes, SignalExternalWorkflowExecutionCommandAttributes,
        StartChildWorkflowExecutionCommandAttributes, StartTimerCommandAttributes,
        UpsertWorkflowSearchAttributesCommandAttributes, command::Attributes,
    },
    common::v1::{
        ActivityType, Payload, Payloads, RetryPolicy, SearchAttributes, WorkflowExecution,
        WorkflowType,
    },
    enums::v1::CommandType,
    failure::v1::Failure,
    protocol::v1::Message,
    taskqueue::v1::{StickyExecutionAttributes, TaskQueue},
    update::v1::{Acceptance, Input, Meta, Rejection, Request, Response},
    workflowservice::v1::{
        RecordActivityTaskHeartbeatRequest, RequestCancelWorkflowExecutionRequest,
        RespondActivityTaskCanceledRequest, RespondActivityTaskCompletedRequest,
        RespondActivityTaskFailedRequest, RespondWorkflowTaskCompletedRequest,
        RespondWorkflowTaskFailedRequest, SignalWithStartWorkflowExecutionRequest,
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest, UpdateWorkflowExecutionRequest,
    },
};

/// The string a [`Name`] stands for; `family` prefixes the known ones (`wf`, `act`, …).
pub(super) fn text(name: &Name, family: &str) -> String {
    match name {
        Name::Empty => String::new(),
        Name::Known(n) if family == "ns" => {
            ["default", "default", "other", ""][usize::from(*n % 4)].into()
        }
        Name::Known(n) => format!("{family}-{n}"),
        Name::Huge(len) => "x".repeat(usize::from(*len)),
        Name::Odd(seed) => format!("{family}\0\u{7f}\n é ☃ {seed}\u{10ffff}"),
    }
}

fn duration(span: &Span) -> Option<prost_wkt_types::Duration> {
    use prost_wkt_types::Duration;
    match span {
        Span::Unset => None,
        Span::Millis(ms) => Some(crate::shard::time::duration(i64::from(*ms))),
        Span::NegativeSeconds(seconds) => Some(Duration {
            seconds: *seconds,
            nanos: 0,
        }),
        Span::NegativeNanos => Some(Duration {
            seconds: 1,
            nanos: -5,
        }),
        Span::NanosOverflow => Some(Duration {
            seconds: 1,
            nanos: i32::MAX,
        }),
        Span::Max => Some(Duration {
            seconds: i64::MAX,
            nanos: 999_999_999,
        }),
    }
}

fn retry_policy(retry: &Retry) -> RetryPolicy {
    RetryPolicy {
        initial_interval: duration(&retry.initial),
        maximum_interval: duration(&retry.maximum),
        backoff_coefficient: retry.coefficient,
        maximum_attempts: retry.maximum_attempts,
        non_retryable_error_types: vec![String::new()],
    }
}

fn payloads(len: u32) -> Option<Payloads> {
    (len > 0).then(|| Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_string(), b"binary/plain".to_vec())]),
            data: vec![0xA5; len as usize],
            ..Default::default()
        }],
    })
}

fn queue(name: &Name) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: text(name, "orders"),
        ..Default::default()
    })
}

fn workflow_type(name: &Name) -> Option<WorkflowType> {
    Some(WorkflowType {
        name: text(name, "Type"),
    })
}

/// The n-th execution of the state, if any.
fn existing(state: &ShardState, pick: u8) -> Option<ExecutionKey> {
    let keys: Vec<&ExecutionKey> = state.executions().map(|ms| &ms.key).collect();
    (!keys.is_empty()).then(|| keys[usize::from(pick) % keys.len()].clone())
}

fn execution(state: &ShardState, target: &Target) -> (String, Option<WorkflowExecution>) {
    let namespace = text(&target.namespace, "ns");
    let mut workflow_id = text(&target.workflow, "wf");
    let run_id = match &target.run {
        RunPick::Current => String::new(),
        RunPick::Made(name) => text(name, "run"),
        RunPick::Existing(pick) => match existing(state, *pick) {
            Some(key) => {
                workflow_id = key.workflow_id;
                key.run_id
            }
            None => String::new(),
        },
    };
    (
        namespace,
        Some(WorkflowExecution {
            workflow_id,
            run_id,
        }),
    )
}

/// Every task token the state would accept right now, workflow tasks first.
pub(super) fn live_tokens(state: &ShardState) -> Vec<TaskToken> {
    let mut tokens = Vec::new();
    for ms in state.executions().filter(|ms| ms.is_running()) {
        if let Some(wft) = ms.started_workflow_task() {
            tokens.push(TaskToken {
                kind: TaskKind::Workflow,
                execution: ms.key.clone(),
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: wft.started_event_id,
                attempt: wft.attempt,
            });
        }
        for (scheduled_event_id, activity) in &ms.activities {
            tokens.push(TaskToken {
                kind: TaskKind::Activity,
                execution: ms.key.clone(),
                scheduled_event_id: *scheduled_event_id,
                started_event_id: 0,
                attempt: activity.attempt,
            });
        }
    }
    tokens
}

fn token(state: &ShardState, token: &Token, kind: TaskKind) -> TaskToken {
    match token {
        Token::Made {
            workflow,
            run,
            activity,
            scheduled_event_id,
            started_event_id,
            attempt,
        } => TaskToken {
            kind: if *activity {
                TaskKind::Activity
            } else {
                TaskKind::Workflow
            },
            execution: ExecutionKey {
                namespace: "default".into(),
                workflow_id: text(workflow, "wf"),
                run_id: text(run, "run"),
            },
            scheduled_event_id: *scheduled_event_id,
            started_event_id: *started_event_id,
            attempt: *attempt,
        },
        Token::Bent { pick, bend } => {
            let live: Vec<TaskToken> = live_tokens(state)
                .into_iter()
                .filter(|t| t.kind == kind)
                .collect();
            let mut token = if live.is_empty() {
                TaskToken {
                    kind,
                    execution: ExecutionKey {
                        namespace: "default".into(),
                        workflow_id: "wf-0".into(),
                        run_id: "run-1".into(),
                    },
                    scheduled_event_id: 2,
                    started_event_id: 3,
                    attempt: 1,
                }
            } else {
                live[usize::from(*pick) % live.len()].clone()
            };
            match bend {
                Bend::None => {}
                Bend::ScheduledEventId(id) => token.scheduled_event_id = *id,
                Bend::StartedEventId(id) => token.started_event_id = *id,
                Bend::Attempt(attempt) => token.attempt = *attempt,
                Bend::Kind => {
                    token.kind = match token.kind {
                        TaskKind::Workflow => TaskKind::Activity,
                        _ => TaskKind::Workflow,
                    }
                }
                Bend::Namespace => token.execution.namespace = "other".into(),
            }
            token
        }
    }
}

fn any_of<M: prost::Message + prost::Name>(message: &M) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: message.encode_to_vec(),
    }
}

fn message(bad: &BadMessage) -> Message {
    let id = text(&bad.id, "u");
    let instance = text(&bad.instance, "u");
    let body = match bad.body % 5 {
        0 => None,
        1 => Some(any_of(&Acceptance {
            accepted_request_message_id: format!("{instance}/request"),
            accepted_request_sequencing_event_id: -7,
            accepted_request: None,
        })),
        2 => Some(any_of(&Response {
            meta: Some(Meta {
                update_id: instance.clone(),
                identity: String::new(),
            }),
            outcome: None,
        })),
        3 => Some(any_of(&Rejection {
            rejected_request_message_id: id.clone(),
            failure: None,
            ..Default::default()
        })),
        _ => Some(prost_wkt_types::Any {
            type_url: "type.googleapis.com/temporal.api.update.v1.Acceptance".into(),
            value: vec![0xFF, 0xFF, bad.body, 0x01],
        }),
    };
    Message {
        id,
        protocol_instance_id: instance,
        body,
        ..Default::default()
    }
}

fn command(state: &ShardState, bad: &BadCommand) -> Command {
    let (command_type, attributes) = match bad {
        BadCommand::Mismatched {
            command_type,
            variant,
        } => {
            let attributes = match variant % 4 {
                0 => None,
                1 => Some(Attributes::StartTimerCommandAttributes(
                    StartTimerCommandAttributes::default(),
                )),
                2 => Some(Attributes::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes::default(),
                )),
                _ => Some(Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes::default(),
                )),
            };
            (*command_type, attributes)
        }
        BadCommand::Activity {
            id,
            activity_type,
            task_queue,
            schedule_to_close,
            start_to_close,
            heartbeat,
            retry,
            input_len,
        } => (
            CommandType::ScheduleActivityTask as i32,
            Some(Attributes::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_id: text(id, "act"),
                    activity_type: Some(ActivityType {
                        name: text(activity_type, "Act"),
                    }),
                    task_queue: queue(task_queue),
                    input: payloads(*input_len),
                    schedule_to_close_timeout: duration(schedule_to_close),
                    start_to_close_timeout: duration(start_to_close),
                    heartbeat_timeout: duration(heartbeat),
                    retry_policy: retry.as_ref().map(retry_policy),
                    ..Default::default()
                },
            )),
        ),
        BadCommand::Timer { id, after } => (
            CommandType::StartTimer as i32,
            Some(Attributes::StartTimerCommandAttributes(
                StartTimerCommandAttributes {
                    timer_id: text(id, "timer"),
                    start_to_fire_timeout: duration(after),
                },
            )),
        ),
        BadCommand::CancelTimer(id) => (
            CommandType::CancelTimer as i32,
            Some(Attributes::CancelTimerCommandAttributes(
                CancelTimerCommandAttributes {
                    timer_id: text(id, "timer"),
                },
            )),
        ),
        BadCommand::CancelActivity(scheduled_event_id) => (
            CommandType::RequestCancelActivityTask as i32,
            Some(Attributes::RequestCancelActivityTaskCommandAttributes(
                RequestCancelActivityTaskCommandAttributes {
                    scheduled_event_id: *scheduled_event_id,
                },
            )),
        ),
        BadCommand::Complete { result_len } => (
            CommandType::CompleteWorkflowExecution as i32,
            Some(Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes {
                    result: payloads(*result_len),
                },
            )),
        ),
        BadCommand::Fail {
            failure,
            message_len,
        } => (
            CommandType::FailWorkflowExecution as i32,
            Some(Attributes::FailWorkflowExecutionCommandAttributes(
                FailWorkflowExecutionCommandAttributes {
                    failure: failure.then(|| Failure {
                        message: "m".repeat(*message_len as usize),
                        ..Default::default()
                    }),
                },
            )),
        ),
        BadCommand::Cancel => (CommandType::CancelWorkflowExecution as i32, None),
        BadCommand::ContinueAsNew {
            workflow_type: name,
            task_queue,
            backoff,
            run_timeout,
            input_len,
        } => (
            CommandType::ContinueAsNewWorkflowExecution as i32,
            Some(Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: workflow_type(name),
                    task_queue: queue(task_queue),
                    input: payloads(*input_len),
                    workflow_run_timeout: duration(run_timeout),
                    backoff_start_interval: duration(backoff),
                    ..Default::default()
                },
            )),
        ),
        BadCommand::Child {
            namespace,
            id,
            workflow_type: name,
            policy,
            run_timeout,
            retry,
        } => (
            CommandType::StartChildWorkflowExecution as i32,
            Some(Attributes::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    namespace: text(namespace, "ns"),
                    workflow_id: text(id, "child"),
                    workflow_type: workflow_type(name),
                    workflow_run_timeout: duration(run_timeout),
                    parent_close_policy: *policy,
                    retry_policy: retry.as_ref().map(retry_policy),
                    ..Default::default()
                },
            )),
        ),
        BadCommand::SignalExternal {
            target,
            name,
            input_len,
        } => {
            let (namespace, execution) = execution(state, target);
            (
                CommandType::SignalExternalWorkflowExecution as i32,
                Some(
                    Attributes::SignalExternalWorkflowExecutionCommandAttributes(
                        SignalExternalWorkflowExecutionCommandAttributes {
                            namespace,
                            execution,
                            signal_name: text(name, "signal"),
                            input: payloads(*input_len),
                            ..Default::default()
                        },
                    ),
                ),
            )
        }
        BadCommand::CancelExternal(target) => {
            let (namespace, execution) = execution(state, target);
            let execution = execution.unwrap_or_default();
            (
                CommandType::RequestCancelExternalWorkflowExecution as i32,
                Some(
                    Attributes::RequestCancelExternalWorkflowExecutionCommandAttributes(
                        RequestCancelExternalWorkflowExecutionCommandAttributes {
                            namespace,
                            workflow_id: execution.workflow_id,
                            run_id: execution.run_id,
                            ..Default::default()
                        },
                    ),
                ),
            )
        }
        BadCommand::Marker { name, details_len } => {
            let mut details = HashMap::new();
            if let Some(p) = payloads(*details_len) {
                details.insert(String::new(), p);
            }
            (
                CommandType::RecordMarker as i32,
                Some(Attributes::RecordMarkerCommandAttributes(
                    RecordMarkerCommandAttributes {
                        marker_name: text(name, "marker"),
                        details,
                        ..Default::default()
                    },
                )),
            )
        }
        BadCommand::Upsert {
            key,
            data_len,
            typed,
        } => {
            let mut payload = Payload {
                data: vec![b'{'; *data_len as usize],
                ..Default::default()
            };
            if *typed {
                payload
                    .metadata
                    .insert("type".into(), b"NoSuchType".to_vec());
            }
            (
                CommandType::UpsertWorkflowSearchAttributes as i32,
                Some(Attributes::UpsertWorkflowSearchAttributesCommandAttributes(
                    UpsertWorkflowSearchAttributesCommandAttributes {
                        search_attributes: Some(SearchAttributes {
                            indexed_fields: HashMap::from([(text(key, "Attr"), payload)]),
                        }),
                    },
                )),
            )
        }
        BadCommand::Protocol(id) => (
            CommandType::ProtocolMessage as i32,
            Some(Attributes::ProtocolMessageCommandAttributes(
                ProtocolMessageCommandAttributes {
                    message_id: text(id, "u"),
                },
            )),
        ),
    };
    Command {
        command_type,
        attributes,
        ..Default::default()
    }
}

fn start_request(garbage: &Garbage) -> Option<StartWorkflowExecutionRequest> {
    let Garbage::Start {
        namespace,
        workflow,
        workflow_type: name,
        task_queue,
        request_id,
        input_len,
        run_timeout,
        execution_timeout,
        task_timeout,
        start_delay,
        conflict,
        reuse,
        cron,
        retry,
    } = garbage
    else {
        return None;
    };
    let cron_schedule = match cron % 8 {
        0 => "@every 1s",
        1 => "* * * * *",
        2 => "not a schedule",
        3 => "99 99 99 99 99",
        _ => "",
    };
    Some(StartWorkflowExecutionRequest {
        namespace: text(namespace, "ns"),
        workflow_id: text(workflow, "wf"),
        workflow_type: workflow_type(name),
        task_queue: queue(task_queue),
        input: payloads(*input_len),
        workflow_execution_timeout: duration(execution_timeout),
        workflow_run_timeout: duration(run_timeout),
        workflow_task_timeout: duration(task_timeout),
        workflow_start_delay: duration(start_delay),
        request_id: text(request_id, "req"),
        workflow_id_conflict_policy: *conflict,
        workflow_id_reuse_policy: *reuse,
        cron_schedule: cron_schedule.into(),
        retry_policy: retry.as_ref().map(retry_policy),
        ..Default::default()
    })
}

fn update_request(
    state: &ShardState,
    target: &Target,
    update_id: &Name,
    name: &Name,
    first_execution_run: &Name,
) -> UpdateWorkflowExecutionRequest {
    let (namespace, workflow_execution) = execution(state, target);
    UpdateWorkflowExecutionRequest {
        namespace,
        workflow_execution,
        first_execution_run_id: text(first_execution_run, "run"),
        request: Some(Request {
            meta: Some(Meta {
                update_id: text(update_id, "u"),
                identity: String::new(),
            }),
            input: Some(Input {
                name: text(name, "upd"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The command `garbage` stands for in `state`; `run_id` is the fresh run ID a start would use.
pub(super) fn command_of(
    state: &ShardState,
    garbage: &Garbage,
    run_id: String,
) -> ShardCommandKind {
    match garbage {
        Garbage::Start { .. } => ShardCommandKind::StartWorkflow {
            request: start_request(garbage).expect("a start"),
            run_id,
        },
        Garbage::RecordTaskStarted {
            activity,
            run,
            scheduled_event_id,
        } => {
            let execution = match run {
                RunPick::Existing(pick) => existing(state, *pick),
                RunPick::Made(name) => Some(ExecutionKey {
                    namespace: "default".into(),
                    workflow_id: "wf-0".into(),
                    run_id: text(name, "run"),
                }),
                RunPick::Current => None,
            }
            .unwrap_or_else(|| ExecutionKey {
                namespace: "default".into(),
                workflow_id: "wf-0".into(),
                run_id: String::new(),
            });
            let (identity, poll_request_id) = ("garbage".to_string(), String::new());
            if *activity {
                ShardCommandKind::RecordActivityTaskStarted {
                    execution,
                    scheduled_event_id: *scheduled_event_id,
                    identity,
                    poll_request_id,
                }
            } else {
                ShardCommandKind::RecordWorkflowTaskStarted {
                    execution,
                    scheduled_event_id: *scheduled_event_id,
                    identity,
                    poll_request_id,
                }
            }
        }
        Garbage::CompleteWorkflowTask {
            token: bad,
            commands,
            messages,
            sticky,
        } => ShardCommandKind::RespondWorkflowTaskCompleted {
            token: token(state, bad, TaskKind::Workflow),
            request: RespondWorkflowTaskCompletedRequest {
                commands: commands.iter().map(|c| command(state, c)).collect(),
                messages: messages.iter().map(message).collect(),
                sticky_attributes: sticky.as_ref().map(|(name, timeout)| {
                    StickyExecutionAttributes {
                        worker_task_queue: queue(name),
                        schedule_to_start_timeout: duration(timeout),
                    }
                }),
                return_new_workflow_task: sticky.is_some(),
                ..Default::default()
            },
        },
        Garbage::FailWorkflowTask { token: bad, cause } => {
            ShardCommandKind::RespondWorkflowTaskFailed {
                token: token(state, bad, TaskKind::Workflow),
                request: RespondWorkflowTaskFailedRequest {
                    cause: *cause,
                    ..Default::default()
                },
            }
        }
        Garbage::ActivityRespond {
            token: bad,
            how,
            payload_len,
            retry_delay,
        } => {
            let token = token(state, bad, TaskKind::Activity);
            let details = payloads(*payload_len);
            match how % 4 {
                0 => ShardCommandKind::RespondActivityTaskCompleted {
                    token,
                    request: RespondActivityTaskCompletedRequest {
                        result: details,
                        ..Default::default()
                    },
                },
                1 => {
                    use temporalio_protos::temporal::api::failure::v1::{
                        ApplicationFailureInfo, failure::FailureInfo,
                    };
                    let failure = Failure {
                        failure_info: Some(FailureInfo::ApplicationFailureInfo(
                            ApplicationFailureInfo {
                                next_retry_delay: duration(retry_delay),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    };
                    ShardCommandKind::RespondActivityTaskFailed {
                        token,
                        request: RespondActivityTaskFailedRequest {
                            failure: (*payload_len % 2 == 0).then_some(failure),
                            last_heartbeat_details: details,
                            ..Default::default()
                        },
                    }
                }
                2 => ShardCommandKind::RespondActivityTaskCanceled {
                    token,
                    request: RespondActivityTaskCanceledRequest {
                        details,
                        ..Default::default()
                    },
                },
                _ => ShardCommandKind::RecordActivityTaskHeartbeat {
                    token,
                    request: RecordActivityTaskHeartbeatRequest {
                        details,
                        ..Default::default()
                    },
                },
            }
        }
        Garbage::Signal {
            target,
            name,
            request_id,
            input_len,
        } => {
            let (namespace, workflow_execution) = execution(state, target);
            ShardCommandKind::SignalWorkflow {
                request: SignalWorkflowExecutionRequest {
                    namespace,
                    workflow_execution,
                    signal_name: text(name, "signal"),
                    input: payloads(*input_len),
                    request_id: text(request_id, "sig"),
                    ..Default::default()
                },
            }
        }
        Garbage::Terminate(target) => {
            let (namespace, workflow_execution) = execution(state, target);
            ShardCommandKind::TerminateWorkflow {
                request: TerminateWorkflowExecutionRequest {
                    namespace,
                    workflow_execution,
                    ..Default::default()
                },
            }
        }
        Garbage::RequestCancel {
            target,
            first_execution_run,
        } => {
            let (namespace, workflow_execution) = execution(state, target);
            ShardCommandKind::RequestCancelWorkflow {
                request: RequestCancelWorkflowExecutionRequest {
                    namespace,
                    workflow_execution,
                    first_execution_run_id: text(first_execution_run, "run"),
                    ..Default::default()
                },
                external_initiated_event_id: 0,
                external_workflow_execution: None,
            }
        }
        Garbage::Update {
            target,
            update_id,
            name,
            first_execution_run,
        } => ShardCommandKind::UpdateWorkflow {
            request: update_request(state, target, update_id, name, first_execution_run),
        },
        Garbage::SignalWithStart {
            namespace,
            workflow,
            workflow_type: name,
            task_queue,
            signal,
            request_id,
            input_len,
            conflict,
        } => ShardCommandKind::SignalWithStartWorkflow {
            request: SignalWithStartWorkflowExecutionRequest {
                namespace: text(namespace, "ns"),
                workflow_id: text(workflow, "wf"),
                workflow_type: workflow_type(name),
                task_queue: queue(task_queue),
                signal_name: text(signal, "signal"),
                signal_input: payloads(*input_len),
                request_id: text(request_id, "sws"),
                workflow_id_conflict_policy: *conflict,
                ..Default::default()
            },
            run_id,
        },
        Garbage::StartWithUpdate {
            workflow,
            task_queue,
            update_id,
            conflict,
            update_target,
        } => {
            let start = StartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: text(workflow, "wf"),
                workflow_type: workflow_type(&Name::Known(0)),
                task_queue: queue(task_queue),
                workflow_id_conflict_policy: *conflict,
                ..Default::default()
            };
            let target = Target {
                namespace: Name::Known(0),
                workflow: update_target.clone(),
                run: RunPick::Current,
            };
            ShardCommandKind::StartWorkflowWithUpdate {
                start,
                run_id,
                update: update_request(state, &target, update_id, &Name::Known(0), &Name::Empty),
            }
        }
        Garbage::ShutdownWorker { namespace, queue } => ShardCommandKind::ShutdownWorker {
            namespace: text(namespace, "ns"),
            sticky_task_queue: text(queue, "sticky"),
        },
        Garbage::BogusAck {
            run,
            outbox_id,
            kind,
            outcome,
        } => {
            let execution = match run {
                RunPick::Existing(pick) => existing(state, *pick),
                _ => None,
            }
            .unwrap_or_else(|| ExecutionKey {
                namespace: "default".into(),
                workflow_id: "wf-1".into(),
                run_id: "run-404".into(),
            });
            let kind = [
                OutboxKind::StartChild,
                OutboxKind::Signal,
                OutboxKind::Cancel,
                OutboxKind::ChildClosed,
                OutboxKind::ParentClosePolicy,
            ][usize::from(*kind % 5)];
            let outcome = match outcome % 5 {
                0 => DeliveryOutcome::Delivered,
                1 => DeliveryOutcome::ChildStarted {
                    run_id: String::new(),
                },
                2 => DeliveryOutcome::AlreadyExists,
                3 => DeliveryOutcome::NotFound,
                _ => DeliveryOutcome::Failed {
                    message: String::new(),
                },
            };
            ShardCommandKind::AckMessage {
                execution,
                outbox_id: *outbox_id,
                kind,
                outcome,
            }
        }
        Garbage::ClockJump(_) => ShardCommandKind::FireTimers,
    }
}
