//! The WorkflowService implementation: shared plumbing here, one RPC family per file in `rpc/`.

use crate::history_watch::HistoryWatch;
use crate::matching::Matching;
use crate::observer::NodeObserver;
use crate::pb::workflowservice::workflow_service_server::WorkflowService;
use crate::query::QueryRelay;
use crate::{status, validate};
use perdura_engine::{
    ExecutionKey, GroupId, NamespaceRecord, ShardCommandKind, ShardReply, WorkflowKey,
};
use perdura_raft::MultiRaft;
use std::sync::Arc;
use std::time::Duration;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::{Request, Response, Status};

/// The frontend of one node.
#[derive(Clone)]
pub struct Frontend {
    pub(crate) raft: Arc<MultiRaft>,
    pub(crate) matching: Arc<Matching>,
    pub(crate) history: Arc<HistoryWatch>,
    pub(crate) queries: Arc<QueryRelay>,
}

impl Frontend {
    pub fn new(raft: Arc<MultiRaft>, observer: &NodeObserver) -> Frontend {
        Frontend {
            raft,
            matching: Arc::clone(&observer.matching),
            history: Arc::clone(&observer.history),
            queries: Arc::clone(&observer.queries),
        }
    }

    /// Ends every long poll so that a graceful shutdown is quick.
    pub fn close(&self) {
        self.matching.close();
        self.history.close();
    }

    /// The namespace `name`. One registered through another node may not be applied here yet:
    /// a miss is asked again after a read barrier on the meta group, so "not found" is never
    /// a stale answer.
    pub(crate) async fn namespace(&self, name: &str) -> Result<NamespaceRecord, Status> {
        validate::required_id("Namespace", name)?;
        let read = || self.raft.read_meta(|meta| meta.namespace(name).cloned());
        if let Some(record) = read() {
            return Ok(record);
        }
        self.linearize(GroupId::META).await?;
        read().ok_or_else(|| status::namespace_not_found(name))
    }

    /// Makes the next local reads of `group` linearizable (see
    /// [`perdura_raft::MultiRaft::read_barrier`]): a client that talks to a follower sees
    /// every write acknowledged before its call, wherever it was made.
    pub(crate) async fn linearize(&self, group: GroupId) -> Result<(), Status> {
        self.raft.read_barrier(group).await.map_err(status::propose)
    }

    /// Makes the next read of the meta state (namespaces) linearizable; see `resolve_execution`.
    pub(crate) async fn meta_read_barrier(&self) -> Result<(), Status> {
        self.raft
            .read_barrier(GroupId::META)
            .await
            .map_err(status::propose)
    }

    /// The group that owns the workflow; UNAVAILABLE while this node has no slot map.
    pub(crate) fn group_of(&self, namespace: &str, workflow_id: &str) -> Result<GroupId, Status> {
        self.raft
            .group_of(namespace, workflow_id)
            .map_err(status::propose)
    }

    /// Proposes a command to a group and returns the engine's reply, mapping both failure layers.
    pub(crate) async fn propose(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> Result<ShardReply, Status> {
        match self.raft.propose(group, kind).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(status::engine(error)),
            Err(error) => Err(status::propose(error)),
        }
    }

    /// The execution a request names: the given run, or the workflow's current run. Every read
    /// path resolves its execution here first, so this is where a read becomes linearizable: the
    /// read barrier makes this node's replica of the group include every write acknowledged
    /// anywhere in the cluster before the request (a no-op on a single node).
    pub(crate) async fn resolve_execution(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<(GroupId, ExecutionKey), Status> {
        // The group is resolved after the barrier: a split applied meanwhile may have moved it.
        let group = self
            .raft
            .read_barrier_for(namespace, workflow_id)
            .await
            .map_err(status::propose)?;
        let key = WorkflowKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
        };
        let run_id = if run_id.is_empty() {
            self.raft
                .read_shard(group, |state| {
                    state
                        .current_run(&key)
                        .map(|current| current.run_id.clone())
                })
                .flatten()
                .ok_or_else(|| workflow_not_found(workflow_id))?
        } else {
            run_id.to_string()
        };
        let execution = ExecutionKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
            run_id,
        };
        let exists = self
            .raft
            .read_shard(group, |state| state.execution(&execution).is_some())
            .unwrap_or(false);
        if !exists {
            return Err(workflow_not_found(workflow_id));
        }
        Ok((group, execution))
    }
}

pub(crate) fn workflow_not_found(workflow_id: &str) -> Status {
    Status::not_found(format!("workflow not found for ID: {workflow_id}"))
}

/// How long a long poll may wait: the server's limit, shortened to end before the client's
/// `grpc-timeout` so the client gets an empty reply rather than DEADLINE_EXCEEDED.
/// How long a call that waits for a worker (a query) may wait: the client's own deadline, so
/// the client sees its own timeout (as with the real server), else the long-poll limit.
pub(crate) fn client_wait<T>(request: &Request<T>) -> Duration {
    request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(crate::limits::LONG_POLL, |d| {
            d.saturating_add(Duration::from_secs(1))
        })
}

pub(crate) fn long_poll_wait<T>(request: &Request<T>) -> Duration {
    let client = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|d| d.saturating_sub(Duration::from_millis(1500)));
    client.map_or(crate::limits::LONG_POLL, |c| {
        c.min(crate::limits::LONG_POLL)
    })
}

/// A `grpc-timeout` header value. The gRPC spec allows at most 8 digits; a longer or
/// otherwise malformed value is ignored (no client deadline), as tonic's own timeout layer
/// ignores it — it reaches us unchanged, and `u64::MAX` hours must not overflow.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl WorkflowService for Frontend {
    async fn get_system_info(
        &self,
        _: Request<ws::GetSystemInfoRequest>,
    ) -> Rpc<ws::GetSystemInfoResponse> {
        Ok(Response::new(crate::rpc::system::system_info()))
    }

    async fn register_namespace(
        &self,
        r: Request<ws::RegisterNamespaceRequest>,
    ) -> Rpc<ws::RegisterNamespaceResponse> {
        self.rpc_register_namespace(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn describe_namespace(
        &self,
        r: Request<ws::DescribeNamespaceRequest>,
    ) -> Rpc<ws::DescribeNamespaceResponse> {
        self.meta_read_barrier().await?;
        self.rpc_describe_namespace(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_namespaces(
        &self,
        r: Request<ws::ListNamespacesRequest>,
    ) -> Rpc<ws::ListNamespacesResponse> {
        self.meta_read_barrier().await?;
        self.rpc_list_namespaces(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn start_workflow_execution(
        &self,
        r: Request<ws::StartWorkflowExecutionRequest>,
    ) -> Rpc<ws::StartWorkflowExecutionResponse> {
        self.rpc_start_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn poll_workflow_task_queue(
        &self,
        r: Request<ws::PollWorkflowTaskQueueRequest>,
    ) -> Rpc<ws::PollWorkflowTaskQueueResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_poll_workflow_task(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn poll_activity_task_queue(
        &self,
        r: Request<ws::PollActivityTaskQueueRequest>,
    ) -> Rpc<ws::PollActivityTaskQueueResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_poll_activity_task(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn respond_workflow_task_completed(
        &self,
        r: Request<ws::RespondWorkflowTaskCompletedRequest>,
    ) -> Rpc<ws::RespondWorkflowTaskCompletedResponse> {
        self.rpc_workflow_task_completed(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_workflow_task_failed(
        &self,
        r: Request<ws::RespondWorkflowTaskFailedRequest>,
    ) -> Rpc<ws::RespondWorkflowTaskFailedResponse> {
        self.rpc_workflow_task_failed(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_completed(
        &self,
        r: Request<ws::RespondActivityTaskCompletedRequest>,
    ) -> Rpc<ws::RespondActivityTaskCompletedResponse> {
        self.rpc_activity_task_completed(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_failed(
        &self,
        r: Request<ws::RespondActivityTaskFailedRequest>,
    ) -> Rpc<ws::RespondActivityTaskFailedResponse> {
        self.rpc_activity_task_failed(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_workflow_execution_history(
        &self,
        r: Request<ws::GetWorkflowExecutionHistoryRequest>,
    ) -> Rpc<ws::GetWorkflowExecutionHistoryResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_get_history(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn describe_workflow_execution(
        &self,
        r: Request<ws::DescribeWorkflowExecutionRequest>,
    ) -> Rpc<ws::DescribeWorkflowExecutionResponse> {
        self.rpc_describe_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_activity_task_heartbeat(
        &self,
        r: Request<ws::RecordActivityTaskHeartbeatRequest>,
    ) -> Rpc<ws::RecordActivityTaskHeartbeatResponse> {
        self.rpc_activity_heartbeat(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_canceled(
        &self,
        r: Request<ws::RespondActivityTaskCanceledRequest>,
    ) -> Rpc<ws::RespondActivityTaskCanceledResponse> {
        self.rpc_activity_task_canceled(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        r: Request<ws::RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Rpc<ws::RecordActivityTaskHeartbeatByIdResponse> {
        self.rpc_activity_heartbeat_by_id(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        r: Request<ws::RespondActivityTaskCompletedByIdRequest>,
    ) -> Rpc<ws::RespondActivityTaskCompletedByIdResponse> {
        self.rpc_activity_task_completed_by_id(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        r: Request<ws::RespondActivityTaskFailedByIdRequest>,
    ) -> Rpc<ws::RespondActivityTaskFailedByIdResponse> {
        self.rpc_activity_task_failed_by_id(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        r: Request<ws::RespondActivityTaskCanceledByIdRequest>,
    ) -> Rpc<ws::RespondActivityTaskCanceledByIdResponse> {
        self.rpc_activity_task_canceled_by_id(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn signal_workflow_execution(
        &self,
        r: Request<ws::SignalWorkflowExecutionRequest>,
    ) -> Rpc<ws::SignalWorkflowExecutionResponse> {
        self.rpc_signal_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn terminate_workflow_execution(
        &self,
        r: Request<ws::TerminateWorkflowExecutionRequest>,
    ) -> Rpc<ws::TerminateWorkflowExecutionResponse> {
        self.rpc_terminate_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn query_workflow(
        &self,
        r: Request<ws::QueryWorkflowRequest>,
    ) -> Rpc<ws::QueryWorkflowResponse> {
        let wait = client_wait(&r);
        self.rpc_query_workflow(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn respond_query_task_completed(
        &self,
        r: Request<ws::RespondQueryTaskCompletedRequest>,
    ) -> Rpc<ws::RespondQueryTaskCompletedResponse> {
        self.rpc_query_task_completed(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn update_workflow_execution(
        &self,
        r: Request<ws::UpdateWorkflowExecutionRequest>,
    ) -> Rpc<ws::UpdateWorkflowExecutionResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_update_workflow(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn poll_workflow_execution_update(
        &self,
        r: Request<ws::PollWorkflowExecutionUpdateRequest>,
    ) -> Rpc<ws::PollWorkflowExecutionUpdateResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_poll_update(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn signal_with_start_workflow_execution(
        &self,
        r: Request<ws::SignalWithStartWorkflowExecutionRequest>,
    ) -> Rpc<ws::SignalWithStartWorkflowExecutionResponse> {
        self.rpc_signal_with_start_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn request_cancel_workflow_execution(
        &self,
        r: Request<ws::RequestCancelWorkflowExecutionRequest>,
    ) -> Rpc<ws::RequestCancelWorkflowExecutionResponse> {
        self.rpc_request_cancel_workflow(r.into_inner())
            .await
            .map(Response::new)
    }

    async fn execute_multi_operation(
        &self,
        r: Request<ws::ExecuteMultiOperationRequest>,
    ) -> Rpc<ws::ExecuteMultiOperationResponse> {
        let wait = long_poll_wait(&r);
        self.rpc_execute_multi_operation(r.into_inner(), wait)
            .await
            .map(Response::new)
    }

    async fn shutdown_worker(
        &self,
        r: Request<ws::ShutdownWorkerRequest>,
    ) -> Rpc<ws::ShutdownWorkerResponse> {
        self.rpc_shutdown_worker(r.into_inner())
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_units() {
        assert_eq!(parse_grpc_timeout("70S"), Some(Duration::from_secs(70)));
        assert_eq!(
            parse_grpc_timeout("69999m"),
            Some(Duration::from_millis(69_999))
        );
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    /// Found by the gRPC storm (node/tests/grpc_storm): a query with `grpc-timeout:
    /// 18446744073709551615S` panicked the handler (`d + 1 s` overflowed), and `999…H`
    /// overflowed `n * 3600` in debug builds.
    #[test]
    fn grpc_timeout_header_past_eight_digits_is_ignored_not_a_panic() {
        for value in [
            "18446744073709551615S",
            "99999999999999H",
            "123456789m",
            "+5S",
            "-5S",
        ] {
            assert_eq!(parse_grpc_timeout(value), None, "{value}");
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert("grpc-timeout", value.parse().expect("ascii"));
            assert_eq!(client_wait(&request), crate::limits::LONG_POLL, "{value}");
            assert_eq!(
                long_poll_wait(&request),
                crate::limits::LONG_POLL,
                "{value}"
            );
        }
        assert_eq!(
            parse_grpc_timeout("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3_600))
        );
    }
}
