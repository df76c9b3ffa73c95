//! The one place where typed errors become gRPC statuses, with the details the SDKs decode
//! (TEMPORAL-WIRE.md §1.5).

use perdura_engine::EngineError;
use perdura_raft::membership::MembershipError;
use perdura_raft::{ProposeError, SplitError};
use prost::Message;
use temporalio_protos::google::rpc::Status as RpcStatus;
use temporalio_protos::temporal::api::errordetails::v1::{
    MultiOperationExecutionFailure, multi_operation_execution_failure::OperationStatus,
};
use temporalio_protos::temporal::api::errordetails::v1::{
    NamespaceAlreadyExistsFailure, NamespaceNotFoundFailure, QueryFailedFailure,
    WorkflowExecutionAlreadyStartedFailure, WorkflowNotReadyFailure,
};
use temporalio_protos::temporal::api::failure::v1::{Failure, MultiOperationExecutionAborted};
use tonic::{Code, Status};

const DETAILS_PREFIX: &str = "type.googleapis.com/";

/// A status carrying one typed detail in `grpc-status-details-bin`.
fn with_detail<M: Message + prost::Name>(code: Code, message: String, detail: M) -> Status {
    let any = prost_wkt_types::Any {
        type_url: format!("{DETAILS_PREFIX}{}", M::full_name()),
        value: detail.encode_to_vec(),
    };
    let rpc = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![any],
    };
    Status::with_details(code, message, rpc.encode_to_vec().into())
}

pub fn engine(error: EngineError) -> Status {
    let message = error.to_string();
    match error {
        EngineError::NotFound(_) => Status::not_found(message),
        EngineError::AlreadyStarted {
            run_id,
            start_request_id,
            ..
        } => with_detail(
            Code::AlreadyExists,
            message,
            WorkflowExecutionAlreadyStartedFailure {
                start_request_id,
                run_id,
                ..Default::default()
            },
        ),
        EngineError::InvalidArgument(_) | EngineError::UnhandledCommand => {
            Status::invalid_argument(message)
        }
        EngineError::FailedPrecondition(_) => Status::failed_precondition(message),
        EngineError::NamespaceAlreadyExists(_) => with_detail(
            Code::AlreadyExists,
            message,
            NamespaceAlreadyExistsFailure {},
        ),
        EngineError::ResourceExhausted(_) => Status::resource_exhausted(message),
        // The router follows a moved slot to its new group; one that reaches a client means the
        // new group could not be reached yet: definitely not applied, so the SDK retries.
        EngineError::SlotMoved { .. } => Status::unavailable(message),
        EngineError::MultiOperation { index, error } => {
            multi_operation(message, index as usize, engine(*error))
        }
    }
}

/// The operations of an update-with-start: two.
const MULTI_OPERATIONS: usize = 2;

/// A failed multi-operation request: the failed operation's status, the others aborted, all
/// in MultiOperationExecutionFailure; the call's own code is the failed operation's code (as
/// the real server sends it).
pub fn multi_operation(message: String, failed_index: usize, failed: Status) -> Status {
    let aborted_detail = prost_wkt_types::Any {
        type_url: format!(
            "{DETAILS_PREFIX}{}",
            <MultiOperationExecutionAborted as prost::Name>::full_name()
        ),
        value: MultiOperationExecutionAborted {}.encode_to_vec(),
    };
    let statuses = (0..MULTI_OPERATIONS)
        .map(|i| {
            if i == failed_index {
                let details = RpcStatus::decode(failed.details())
                    .map(|s| s.details)
                    .unwrap_or_default();
                OperationStatus {
                    code: failed.code() as i32,
                    message: failed.message().to_string(),
                    details,
                }
            } else {
                OperationStatus {
                    code: Code::Aborted as i32,
                    message: "Operation was aborted.".into(),
                    details: vec![aborted_detail.clone()],
                }
            }
        })
        .collect();
    with_detail(
        failed.code(),
        message,
        MultiOperationExecutionFailure { statuses },
    )
}

/// Replication failures. Every one is UNAVAILABLE, which the SDKs retry; retrying is safe because
/// every command is idempotent by request ID or guarded by a task token.
///
/// In a cluster a proposal travels to the group's leader (the Raft layer follows leader hints
/// and retries a proposal that was definitely not applied until its timeout); what is left to
/// report here is why that did not work out.
pub fn propose(error: ProposeError) -> Status {
    let message = match error {
        ProposeError::NotLeader { leader: None } => {
            "no leader of this workflow's shard is known right now (an election may be under \
             way); nothing was applied; retry"
                .to_string()
        }
        ProposeError::NotLeader { leader: Some(node) } => format!(
            "the leader of this workflow's shard (node {node}) could not be reached; nothing was \
             applied; retry"
        ),
        ProposeError::Indeterminate(detail) => {
            format!("the outcome is unknown ({detail}); retry — the request is idempotent")
        }
        ProposeError::Shutdown => "this node is shutting down; retry".to_string(),
        ProposeError::NoSlotMap => "this node has not loaded the cluster's slot map yet (it is \
             starting or catching up), so it cannot route the workflow; nothing was applied; retry"
            .to_string(),
    };
    Status::unavailable(message)
}

/// A query relay message found no answer from the node that holds the query.
pub fn relay(error: crate::query::RelayError) -> Status {
    Status::unavailable(format!("{error}; retry"))
}

/// Operator membership commands (`perdura.admin.v1.ClusterAdmin`): a refusal by the registry
/// keeps its engine status; an unsafe change is FAILED_PRECONDITION (retrying will not help
/// until the cluster changes); a timeout or a missing leader is UNAVAILABLE / DEADLINE_EXCEEDED
/// (the command is idempotent: retry to resume).
pub fn membership(error: MembershipError) -> Status {
    let message = error.to_string();
    match error {
        MembershipError::Refused(engine_error) => engine(engine_error),
        MembershipError::Unsafe(_) => Status::failed_precondition(message),
        MembershipError::Timeout(_) => Status::deadline_exceeded(message),
        MembershipError::NoLeader { .. } => Status::unavailable(message),
        MembershipError::Propose(e) => propose(e),
        MembershipError::Raft { .. } => Status::aborted(message),
    }
}

/// `perdura cluster split-group`: an unknown group is NOT_FOUND, a group with no range of two
/// slots FAILED_PRECONDITION; a missing leader or replication failure UNAVAILABLE (the split is
/// idempotent per source group: retrying finishes it).
pub fn split(error: SplitError) -> Status {
    let message = error.to_string();
    match error {
        SplitError::UnknownGroup(_) => Status::not_found(message),
        SplitError::NotSplittable(_) => Status::failed_precondition(message),
        SplitError::Refused(engine_error) => engine(engine_error),
        SplitError::Propose(e) => propose(e),
        SplitError::NoLeader { .. } => Status::unavailable(message),
        SplitError::Raft(_) => Status::aborted(message),
    }
}

/// `ReadReplica`: a group this node does not host is NOT_FOUND; a storage failure INTERNAL.
pub fn replica_read(error: perdura_raft::RaftError) -> Status {
    match error {
        perdura_raft::RaftError::UnknownGroup(group) => {
            Status::not_found(format!("this node hosts no group {}", group.0))
        }
        other => Status::internal(format!("reading the replica: {other}")),
    }
}

pub fn namespace_not_found(name: &str) -> Status {
    with_detail(
        Code::NotFound,
        format!("Namespace {name} is not found."),
        NamespaceNotFoundFailure {
            namespace: name.to_string(),
        },
    )
}

pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

pub fn internal(message: impl std::fmt::Display) -> Status {
    Status::internal(message.to_string())
}

/// The worker answered a query with FAILED. INVALID_ARGUMENT is what the SDKs turn into their
/// query-failed error (Python `WorkflowQueryFailedError`), as the real server sends it.
pub fn query_failed(message: String, failure: Option<Failure>) -> Status {
    with_detail(
        Code::InvalidArgument,
        message,
        QueryFailedFailure { failure },
    )
}

/// The workflow cannot serve the request yet (no workflow task started, or its task keeps
/// failing): FAILED_PRECONDITION with WorkflowNotReadyFailure, as the real server sends it.
pub fn workflow_not_ready(message: &str) -> Status {
    with_detail(
        Code::FailedPrecondition,
        message.to_string(),
        WorkflowNotReadyFailure {},
    )
}

/// No worker answered before the deadline.
pub fn deadline_exceeded(message: &str) -> Status {
    Status::deadline_exceeded(message.to_string())
}

/// The run closed before the update was accepted (the real server's error for it).
pub fn update_aborted() -> Status {
    Status::not_found("update aborted by closing workflow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replication_failure_is_unavailable_and_says_why() {
        let cases = [
            (ProposeError::NotLeader { leader: None }, "no leader"),
            (ProposeError::NotLeader { leader: Some(2) }, "node 2"),
            (
                ProposeError::Indeterminate("connection lost".into()),
                "connection lost",
            ),
            (ProposeError::Shutdown, "shutting down"),
            (ProposeError::NoSlotMap, "slot map"),
        ];
        for (error, says) in cases {
            let status = propose(error);
            assert_eq!(status.code(), Code::Unavailable);
            assert!(status.message().contains(says), "{}", status.message());
            assert!(status.message().contains("retry"), "{}", status.message());
        }
    }
}
