//! The vocabulary of the storm's requests: names, durations, payload sizes, task and page
//! tokens, and the workflow commands of a task completion — each mixing the plausible (names
//! the storm's own workflows use, tokens the server handed out) with the malformed.

use perdura_engine::{ExecutionKey, TaskKind, TaskToken};
use proptest::prelude::*;
use std::collections::HashMap;
use temporalio_protos::temporal::api::command::v1::{self as cmd, Command, command::Attributes};
use temporalio_protos::temporal::api::common::v1::{
    ActivityType, Payload, Payloads, SearchAttributes, WorkflowExecution, WorkflowType,
};
use temporalio_protos::temporal::api::enums::v1::CommandType;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

/// Over the server's 2 MiB blob limit.
pub const OVER_BLOB_LIMIT: usize = 2 * 1024 * 1024 + 1024;

#[derive(Clone, Debug)]
pub enum Name {
    Empty,
    Known(u8),
    /// Past the 1,000-byte ID limit.
    Huge(u16),
    Odd(u8),
}

/// The string of `name`; known names per family are the ones the storm's workflows use.
pub fn text(name: &Name, family: &str) -> String {
    match name {
        Name::Empty => String::new(),
        Name::Known(n) => match family {
            "ns" => {
                ["default", "default", "default", "nope", "storm-ns"][usize::from(*n % 5)].into()
            }
            "wf" if n % 5 == 4 => crate::BEFORE_WORKFLOW.into(),
            "tq" => format!("storm-tq-{}", n % 3),
            _ => format!("{family}-{}", n % 4),
        },
        Name::Huge(len) => "w".repeat(usize::from(*len)),
        Name::Odd(seed) => format!("{family}\0\u{1}\r\n ü ☃ {seed}\u{10ffff}"),
    }
}

pub fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        1 => Just(Name::Empty),
        12 => any::<u8>().prop_map(Name::Known),
        1 => (1_001u16..4_000).prop_map(Name::Huge),
        1 => any::<u8>().prop_map(Name::Odd),
    ]
}

pub fn namespace() -> impl Strategy<Value = Name> {
    prop_oneof![5 => Just(Name::Known(0)), 1 => name()]
}

#[derive(Clone, Debug)]
pub enum Span {
    Unset,
    Millis(u32),
    Negative,
    BadNanos,
    Max,
}

pub fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        6 => Just(Span::Unset),
        6 => (0u32..30_000).prop_map(Span::Millis),
        1 => Just(Span::Negative),
        1 => Just(Span::BadNanos),
        1 => Just(Span::Max),
    ]
}

pub fn duration(span: &Span) -> Option<prost_wkt_types::Duration> {
    let (seconds, nanos) = match span {
        Span::Unset => return None,
        Span::Millis(ms) => (i64::from(*ms / 1000), (*ms % 1000) as i32 * 1_000_000),
        Span::Negative => (-30, 0),
        Span::BadNanos => (1, -1_000_000_000),
        Span::Max => (i64::MAX, i32::MAX),
    };
    Some(prost_wkt_types::Duration { seconds, nanos })
}

/// A payload size: small, or past the blob limit.
#[derive(Clone, Debug)]
pub enum Size {
    Small(u8),
    OverLimit,
}

pub fn size() -> impl Strategy<Value = Size> {
    prop_oneof![30 => any::<u8>().prop_map(Size::Small), 1 => Just(Size::OverLimit)]
}

pub fn payloads(size: &Size) -> Option<Payloads> {
    let len = match size {
        Size::Small(0) => return None,
        Size::Small(n) => usize::from(*n),
        Size::OverLimit => OVER_BLOB_LIMIT,
    };
    Some(Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_string(), b"binary/plain".to_vec())]),
            data: vec![0x5A; len],
            ..Default::default()
        }],
    })
}

pub fn queue(name: &Name) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: text(name, "tq"),
        ..Default::default()
    })
}

pub fn workflow_type(name: &Name) -> Option<WorkflowType> {
    Some(WorkflowType {
        name: text(name, "Storm"),
    })
}

/// A workflow and run a call aims at.
#[derive(Clone, Debug)]
pub struct Target {
    pub workflow: Name,
    /// None: the current run; else a made-up run ID.
    pub run: Option<Name>,
}

pub fn target() -> impl Strategy<Value = Target> {
    (name(), proptest::option::weighted(0.3, name()))
        .prop_map(|(workflow, run)| Target { workflow, run })
}

pub fn execution(target: &Target) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: text(&target.workflow, "wf"),
        run_id: target
            .run
            .as_ref()
            .map_or(String::new(), |r| text(r, "run")),
    })
}

/// A task token (or a history page token).
#[derive(Clone, Debug)]
pub enum TokenBytes {
    Empty,
    Random(Vec<u8>),
    /// The n-th token the server handed out in this storm, with byte `flip` inverted.
    Seen {
        pick: u8,
        flip: Option<u16>,
    },
    /// A well-encoded token with made-up fields.
    Crafted {
        kind: u8,
        workflow: Name,
        scheduled_event_id: i64,
        started_event_id: i64,
        attempt: i32,
    },
}

pub fn token() -> impl Strategy<Value = TokenBytes> {
    let event_id = prop_oneof![4 => -1i64..12, 1 => any::<i64>()];
    prop_oneof![
        1 => Just(TokenBytes::Empty),
        2 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(TokenBytes::Random),
        4 => (any::<u8>(), proptest::option::weighted(0.4, any::<u16>()))
            .prop_map(|(pick, flip)| TokenBytes::Seen { pick, flip }),
        2 => (0u8..3, name(), event_id.clone(), event_id, -1i32..3).prop_map(
            |(kind, workflow, scheduled_event_id, started_event_id, attempt)| TokenBytes::Crafted {
                kind, workflow, scheduled_event_id, started_event_id, attempt,
            }
        ),
    ]
}

pub fn token_bytes(token: &TokenBytes, seen: &[Vec<u8>]) -> Vec<u8> {
    match token {
        TokenBytes::Empty => Vec::new(),
        TokenBytes::Random(bytes) => bytes.clone(),
        TokenBytes::Seen { pick, flip } => {
            let Some(bytes) = (!seen.is_empty()).then(|| &seen[usize::from(*pick) % seen.len()])
            else {
                return vec![1, 2, 3];
            };
            let mut bytes = bytes.clone();
            if let Some(at) = flip.filter(|_| !bytes.is_empty()) {
                let at = usize::from(at) % bytes.len();
                bytes[at] = !bytes[at];
            }
            bytes
        }
        TokenBytes::Crafted {
            kind,
            workflow,
            scheduled_event_id,
            started_event_id,
            attempt,
        } => TaskToken {
            kind: [TaskKind::Workflow, TaskKind::Activity, TaskKind::Query][usize::from(*kind % 3)],
            execution: ExecutionKey {
                namespace: "default".into(),
                workflow_id: text(workflow, "wf"),
                run_id: String::new(),
            },
            scheduled_event_id: *scheduled_event_id,
            started_event_id: *started_event_id,
            attempt: *attempt,
        }
        .encode(),
    }
}

/// One command of a workflow task completion.
#[derive(Clone, Debug)]
pub enum Cmd {
    Activity {
        id: Name,
        task_queue: Name,
        start_to_close: Span,
        schedule_to_close: Span,
        input: Size,
    },
    Timer {
        id: Name,
        after: Span,
    },
    CancelTimer(Name),
    Complete(Size),
    Fail,
    ContinueAsNew {
        backoff: Span,
        task_queue: Name,
    },
    Child {
        id: Name,
        policy: i32,
    },
    SignalExternal {
        target: Target,
        signal: Name,
    },
    Marker(Name),
    Upsert(Name),
    Protocol(Name),
    /// A command type with no or mismatched attributes.
    Mismatched {
        command_type: i32,
        with_timer: bool,
    },
}

pub fn command() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        3 => (name(), name(), span(), span(), size()).prop_map(|(id, task_queue, start_to_close, schedule_to_close, input)| Cmd::Activity { id, task_queue, start_to_close, schedule_to_close, input }),
        2 => (name(), span()).prop_map(|(id, after)| Cmd::Timer { id, after }),
        1 => name().prop_map(Cmd::CancelTimer),
        1 => size().prop_map(Cmd::Complete),
        1 => Just(Cmd::Fail),
        1 => (span(), name()).prop_map(|(backoff, task_queue)| Cmd::ContinueAsNew { backoff, task_queue }),
        1 => (name(), -1i32..5).prop_map(|(id, policy)| Cmd::Child { id, policy }),
        1 => (target(), name()).prop_map(|(target, signal)| Cmd::SignalExternal { target, signal }),
        1 => name().prop_map(Cmd::Marker),
        1 => name().prop_map(Cmd::Upsert),
        1 => name().prop_map(Cmd::Protocol),
        1 => (any::<i32>(), any::<bool>()).prop_map(|(command_type, with_timer)| Cmd::Mismatched { command_type, with_timer }),
    ]
}

pub fn concrete(command: &Cmd) -> Command {
    let (command_type, attributes) = match command {
        Cmd::Activity {
            id,
            task_queue,
            start_to_close,
            schedule_to_close,
            input,
        } => (
            CommandType::ScheduleActivityTask,
            Attributes::ScheduleActivityTaskCommandAttributes(
                cmd::ScheduleActivityTaskCommandAttributes {
                    activity_id: text(id, "act"),
                    activity_type: Some(ActivityType {
                        name: text(id, "Act"),
                    }),
                    task_queue: queue(task_queue),
                    start_to_close_timeout: duration(start_to_close),
                    schedule_to_close_timeout: duration(schedule_to_close),
                    input: payloads(input),
                    ..Default::default()
                },
            ),
        ),
        Cmd::Timer { id, after } => (
            CommandType::StartTimer,
            Attributes::StartTimerCommandAttributes(cmd::StartTimerCommandAttributes {
                timer_id: text(id, "timer"),
                start_to_fire_timeout: duration(after),
            }),
        ),
        Cmd::CancelTimer(id) => (
            CommandType::CancelTimer,
            Attributes::CancelTimerCommandAttributes(cmd::CancelTimerCommandAttributes {
                timer_id: text(id, "timer"),
            }),
        ),
        Cmd::Complete(result) => (
            CommandType::CompleteWorkflowExecution,
            Attributes::CompleteWorkflowExecutionCommandAttributes(
                cmd::CompleteWorkflowExecutionCommandAttributes {
                    result: payloads(result),
                },
            ),
        ),
        Cmd::Fail => (
            CommandType::FailWorkflowExecution,
            Attributes::FailWorkflowExecutionCommandAttributes(
                cmd::FailWorkflowExecutionCommandAttributes { failure: None },
            ),
        ),
        Cmd::ContinueAsNew {
            backoff,
            task_queue,
        } => (
            CommandType::ContinueAsNewWorkflowExecution,
            Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
                cmd::ContinueAsNewWorkflowExecutionCommandAttributes {
                    backoff_start_interval: duration(backoff),
                    task_queue: queue(task_queue),
                    ..Default::default()
                },
            ),
        ),
        Cmd::Child { id, policy } => (
            CommandType::StartChildWorkflowExecution,
            Attributes::StartChildWorkflowExecutionCommandAttributes(
                cmd::StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: text(id, "wf"),
                    workflow_type: workflow_type(id),
                    parent_close_policy: *policy,
                    ..Default::default()
                },
            ),
        ),
        Cmd::SignalExternal { target, signal } => (
            CommandType::SignalExternalWorkflowExecution,
            Attributes::SignalExternalWorkflowExecutionCommandAttributes(
                cmd::SignalExternalWorkflowExecutionCommandAttributes {
                    execution: execution(target),
                    signal_name: text(signal, "signal"),
                    ..Default::default()
                },
            ),
        ),
        Cmd::Marker(name) => (
            CommandType::RecordMarker,
            Attributes::RecordMarkerCommandAttributes(cmd::RecordMarkerCommandAttributes {
                marker_name: text(name, "marker"),
                ..Default::default()
            }),
        ),
        Cmd::Upsert(key) => (
            CommandType::UpsertWorkflowSearchAttributes,
            Attributes::UpsertWorkflowSearchAttributesCommandAttributes(
                cmd::UpsertWorkflowSearchAttributesCommandAttributes {
                    search_attributes: Some(SearchAttributes {
                        indexed_fields: HashMap::from([(
                            text(key, "Attr"),
                            Payload {
                                data: b"{not json".to_vec(),
                                ..Default::default()
                            },
                        )]),
                    }),
                },
            ),
        ),
        Cmd::Protocol(id) => (
            CommandType::ProtocolMessage,
            Attributes::ProtocolMessageCommandAttributes(cmd::ProtocolMessageCommandAttributes {
                message_id: text(id, "msg"),
            }),
        ),
        Cmd::Mismatched {
            command_type,
            with_timer,
        } => {
            return Command {
                command_type: *command_type,
                attributes: with_timer.then(|| {
                    Attributes::StartTimerCommandAttributes(
                        cmd::StartTimerCommandAttributes::default(),
                    )
                }),
                ..Default::default()
            };
        }
    };
    Command {
        command_type: command_type as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}
