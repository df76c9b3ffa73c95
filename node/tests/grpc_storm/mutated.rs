//! Well-formed requests with a few bytes changed: unlike random bytes, most of them still
//! decode, so they carry odd field values (wrong wire types, truncated strings, huge varints,
//! unknown fields) past tonic's decoder into the handlers.

use crate::input::{Name, Size, payloads, queue, workflow_type};
use proptest::prelude::*;
use prost::Message;
use temporalio_protos::temporal::api::command::v1::{
    Command, ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes,
    command::Attributes,
};
use temporalio_protos::temporal::api::common::v1::{ActivityType, WorkflowExecution};
use temporalio_protos::temporal::api::enums::v1::CommandType;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

/// Which request to start from, and what to do to its encoding.
#[derive(Clone, Debug)]
pub struct Mutation {
    pub seed: u8,
    /// (position, xor mask) pairs; positions wrap around the encoding.
    pub flips: Vec<(u16, u8)>,
    /// Cut the encoding at this position (wrapping), if set.
    pub cut: Option<u16>,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    (
        any::<u8>(),
        proptest::collection::vec((any::<u16>(), 1u8..=255), 1..4),
        proptest::option::weighted(0.2, any::<u16>()),
    )
        .prop_map(|(seed, flips, cut)| Mutation { seed, flips, cut })
}

fn execution() -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: "wf-1".into(),
        run_id: String::new(),
    })
}

/// The method and the well-formed encoding a mutation starts from; `token` is a task token
/// the server handed out (or anything).
fn seed(seed: u8, token: Vec<u8>) -> (&'static str, Vec<u8>) {
    let known = Name::Known(1);
    match seed % 7 {
        0 => (
            "StartWorkflowExecution",
            ws::StartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: "wf-1".into(),
                workflow_type: workflow_type(&known),
                task_queue: queue(&known),
                input: payloads(&Size::Small(12)),
                request_id: "mutated".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        1 => (
            "SignalWorkflowExecution",
            ws::SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: execution(),
                signal_name: "poke".into(),
                input: payloads(&Size::Small(8)),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        2 => {
            let activity = Command {
                command_type: CommandType::ScheduleActivityTask as i32,
                attributes: Some(Attributes::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes {
                        activity_id: "act-1".into(),
                        activity_type: Some(ActivityType { name: "Act".into() }),
                        task_queue: queue(&known),
                        start_to_close_timeout: Some(prost_wkt_types::Duration {
                            seconds: 10,
                            nanos: 0,
                        }),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            let timer = Command {
                command_type: CommandType::StartTimer as i32,
                attributes: Some(Attributes::StartTimerCommandAttributes(
                    StartTimerCommandAttributes {
                        timer_id: "timer-1".into(),
                        start_to_fire_timeout: Some(prost_wkt_types::Duration {
                            seconds: 1,
                            nanos: 0,
                        }),
                    },
                )),
                ..Default::default()
            };
            (
                "RespondWorkflowTaskCompleted",
                ws::RespondWorkflowTaskCompletedRequest {
                    task_token: token,
                    commands: vec![activity, timer],
                    namespace: "default".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        }
        3 => (
            "GetWorkflowExecutionHistory",
            ws::GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: execution(),
                maximum_page_size: 10,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        4 => (
            "RespondActivityTaskCompleted",
            ws::RespondActivityTaskCompletedRequest {
                task_token: token,
                result: payloads(&Size::Small(4)),
                namespace: "default".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        5 => (
            "QueryWorkflow",
            ws::QueryWorkflowRequest {
                namespace: "default".into(),
                execution: execution(),
                query: Some(WorkflowQuery {
                    query_type: "q".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        _ => (
            "PollWorkflowTaskQueue",
            ws::PollWorkflowTaskQueueRequest {
                namespace: "default".into(),
                task_queue: queue(&known),
                identity: "mutated".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    }
}

/// The method and the mutated body.
pub fn body(mutation: &Mutation, token: Vec<u8>) -> (&'static str, Vec<u8>) {
    let (method, mut bytes) = seed(mutation.seed, token);
    if bytes.is_empty() {
        return (method, bytes);
    }
    for (at, mask) in &mutation.flips {
        let at = usize::from(*at) % bytes.len();
        bytes[at] ^= mask;
    }
    if let Some(cut) = mutation.cut {
        bytes.truncate(usize::from(cut) % bytes.len());
    }
    (method, bytes)
}
