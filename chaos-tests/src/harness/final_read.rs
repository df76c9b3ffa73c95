//! The end-of-run read hook and its fallback.
//!
//! After heal and convergence the run asks a [`FinalReader`] for every node's groups and run
//! histories. The intended reader asks each node for its *own replica* (the `ReadReplica` admin
//! RPC of the final-read work, `perdura-chaos final-read`), which fills committed log ids, Raft
//! indexes and every attribute; it plugs in through this trait.
//!
//! [`super::replica_final_read::ReplicaFinalReader`] is that reader (the default of
//! `perdura-chaos run`). [`FrontendFinalReader`] is the fallback (`--final-read frontend`), and
//! says so in the summary:
//! * groups: each node's applied index and state digest per group from `perdura cluster status`
//!   (no committed log ids);
//! * runs: per node, every workflow ID the history started, through that node's frontend
//!   (DescribeWorkflowExecution for the current run, then GetWorkflowExecutionHistory). A
//!   frontend may answer from the leader rather than its own replica, so this does not compare
//!   replicas. Runs are filed under the pseudo group [`FRONTEND_GROUP`]; event 1's request ID is
//!   taken from the start's identity (`chaos-request:<id>`, set by the built-in workload), and no
//!   other attribute is filled.

use super::status::ClusterStatus;
use super::workload::{NAMESPACE, REQUEST_IDENTITY_PREFIX};
use crate::history::{
    EventAttributes, EventType, FinalRead, GroupRead, NodeRead, ObservedEvent, RunHistory,
};
use crate::ids::{EventId, GroupId, HarnessNanos, NodeId, RaftIndex, RequestId, RunId, WorkflowId};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::EventType as ProtoEventType;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use thiserror::Error;
use tonic::transport::{Channel, Endpoint};

/// The pseudo group the fallback files frontend-read runs under.
pub const FRONTEND_GROUP: GroupId = GroupId(u32::MAX);

#[derive(Debug, Error)]
pub enum FinalReadError {
    #[error(transparent)]
    Replica(#[from] crate::workload::replica::ReplicaError),
    #[error("node {node}: {what}: {status}")]
    Rpc {
        node: NodeId,
        what: String,
        status: tonic::Status,
    },
    #[error("node {node}: bad endpoint {url}")]
    Endpoint { node: NodeId, url: String },
    #[error("node {node}: no answer within {seconds}s reading {what}")]
    Timeout {
        node: NodeId,
        what: String,
        seconds: u64,
    },
}

/// What the reader gets: the members and their endpoints, the converged status, and every
/// workflow ID the history tried to start.
pub struct FinalReadInput {
    pub endpoints: Vec<(NodeId, String)>,
    pub status: ClusterStatus,
    pub workflow_ids: Vec<WorkflowId>,
    pub read_at: HarnessNanos,
}

pub type FinalReadFuture = Pin<Box<dyn Future<Output = Result<FinalRead, FinalReadError>> + Send>>;

pub trait FinalReader: Send + Sync {
    /// For the summary: which reader produced the final read.
    fn name(&self) -> &'static str;
    fn read(&self, input: FinalReadInput) -> FinalReadFuture;
}

pub struct FrontendFinalReader;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent reads per node (each reads a slice of the workflow IDs).
const READERS_PER_NODE: usize = 8;

impl FinalReader for FrontendFinalReader {
    fn name(&self) -> &'static str {
        "frontend (fallback: status digests + histories through each node's frontend)"
    }

    fn read(&self, input: FinalReadInput) -> FinalReadFuture {
        Box::pin(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (node, url) in input.endpoints.clone() {
                let ids = input.workflow_ids.clone();
                let mut groups: Vec<GroupRead> = input
                    .status
                    .replica_states(node)
                    .into_iter()
                    .map(|(group, applied, digest)| GroupRead {
                        group: GroupId(group),
                        applied_index: RaftIndex(applied),
                        state_digest: digest,
                        committed: Vec::new(),
                        runs: Vec::new(),
                    })
                    .collect();
                tasks.spawn(async move {
                    let mut readers = tokio::task::JoinSet::new();
                    let chunk = ids.len().div_ceil(READERS_PER_NODE).max(1);
                    for part in ids.chunks(chunk) {
                        let (url, part) = (url.clone(), part.to_vec());
                        readers.spawn(async move { read_runs(node, &url, &part).await });
                    }
                    let mut runs = Vec::new();
                    while let Some(joined) = readers.join_next().await {
                        let part = joined.map_err(|e| FinalReadError::Timeout {
                            node,
                            what: format!("a reader task: {e}"),
                            seconds: 0,
                        })?;
                        runs.extend(part?);
                    }
                    runs.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
                    groups.push(GroupRead {
                        group: FRONTEND_GROUP,
                        applied_index: RaftIndex(0),
                        state_digest: "frontend-read".into(),
                        committed: Vec::new(),
                        runs,
                    });
                    Ok::<_, FinalReadError>(NodeRead { node, groups })
                });
            }
            let mut nodes = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(read) => nodes.push(read?),
                    Err(e) => {
                        return Err(FinalReadError::Timeout {
                            node: NodeId(0),
                            what: format!("a reader task: {e}"),
                            seconds: 0,
                        });
                    }
                }
            }
            nodes.sort_by_key(|n| n.node);
            Ok(FinalRead {
                read_at_ns: input.read_at,
                nodes,
            })
        })
    }
}

async fn read_runs(
    node: NodeId,
    url: &str,
    workflow_ids: &[WorkflowId],
) -> Result<Vec<RunHistory>, FinalReadError> {
    let channel: Channel = Endpoint::from_shared(url.to_owned())
        .map_err(|_| FinalReadError::Endpoint {
            node,
            url: url.to_owned(),
        })?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let mut client = WorkflowServiceClient::new(channel);
    let mut runs = Vec::new();
    for workflow_id in workflow_ids {
        let what = format!("workflow {workflow_id}");
        let describe = ws::DescribeWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.0.clone(),
                run_id: String::new(),
            }),
        };
        let described = call(node, &what, client.describe_workflow_execution(describe)).await?;
        let Some(described) = described else { continue };
        let Some(run_id) = described
            .workflow_execution_info
            .and_then(|info| info.execution)
            .map(|execution| execution.run_id)
        else {
            continue;
        };
        let mut events = Vec::new();
        let mut page = Vec::new();
        loop {
            let request = ws::GetWorkflowExecutionHistoryRequest {
                namespace: NAMESPACE.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: workflow_id.0.clone(),
                    run_id: run_id.clone(),
                }),
                next_page_token: page,
                ..Default::default()
            };
            let Some(reply) =
                call(node, &what, client.get_workflow_execution_history(request)).await?
            else {
                break;
            };
            events.extend(
                reply
                    .history
                    .map(|h| h.events)
                    .unwrap_or_default()
                    .iter()
                    .map(observed),
            );
            if reply.next_page_token.is_empty() {
                break;
            }
            page = reply.next_page_token;
        }
        runs.push(RunHistory {
            workflow_id: workflow_id.clone(),
            run_id: RunId(run_id),
            events,
        });
    }
    Ok(runs)
}

/// One unary call with a deadline; `None` for NOT_FOUND.
async fn call<T>(
    node: NodeId,
    what: &str,
    rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<Option<T>, FinalReadError> {
    match tokio::time::timeout(CALL_TIMEOUT, rpc).await {
        Ok(Ok(reply)) => Ok(Some(reply.into_inner())),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => Ok(None),
        Ok(Err(status)) => Err(FinalReadError::Rpc {
            node,
            what: what.to_owned(),
            status,
        }),
        Err(_) => Err(FinalReadError::Timeout {
            node,
            what: what.to_owned(),
            seconds: CALL_TIMEOUT.as_secs(),
        }),
    }
}

/// A proto event reduced to what the fallback can know.
pub fn observed(event: &HistoryEvent) -> ObservedEvent {
    let event_type = ProtoEventType::try_from(event.event_type)
        .map(|t| EventType::from(t.as_str_name().to_owned()))
        .unwrap_or_else(|_| EventType::Other(format!("EventType({})", event.event_type)));
    let mut attributes = EventAttributes::default();
    if let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) = &event.attributes {
        attributes.request_id = started
            .identity
            .strip_prefix(REQUEST_IDENTITY_PREFIX)
            .map(|id| RequestId(id.to_owned()));
    }
    ObservedEvent {
        event_id: EventId(u64::try_from(event.event_id).unwrap_or(0)),
        event_type,
        attributes,
        event_time_ms: None,
        raft_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;

    #[test]
    fn the_started_event_carries_the_request_id_of_its_identity() {
        let event = HistoryEvent {
            event_id: 1,
            event_type: ProtoEventType::WorkflowExecutionStarted as i32,
            attributes: Some(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    identity: "chaos-request:w1-r".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let seen = observed(&event);
        assert_eq!(seen.event_type, EventType::WorkflowExecutionStarted);
        assert_eq!(seen.attributes.request_id, Some(RequestId("w1-r".into())));
        let task = HistoryEvent {
            event_id: 2,
            event_type: ProtoEventType::WorkflowTaskScheduled as i32,
            ..Default::default()
        };
        assert_eq!(observed(&task).event_type.name(), "WorkflowTaskScheduled");
    }
}
