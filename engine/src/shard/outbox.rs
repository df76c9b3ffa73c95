//! The replicated outbox of an execution: effects this run must have in another execution
//! (possibly in another Raft group), recorded in the same apply as the command that caused them
//! and delivered at least once by the group leader's outbox driver. See
//! `docs/design/003-cross-shard-outbox.md`.
//!
//! This module owns the message types, the records a parent keeps of its children
//! ([`ChildState`]) and a child of its parent ([`ParentInfo`]), and the derived IDs that make every
//! receiver idempotent.

use crate::codec;
use crate::ids::{ExecutionKey, WorkflowKey};
use serde::{Deserialize, Serialize};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    history::v1::HistoryEvent,
    workflowservice::v1::{
        RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
        StartWorkflowExecutionRequest,
    },
};

/// Identity written on effects the engine delivers on a workflow's behalf (as Temporal does).
pub const HISTORY_SERVICE_IDENTITY: &str = "history-service";
/// Reason on a child terminated by its parent's close policy.
pub const PARENT_CLOSE_POLICY_REASON: &str = "by parent close policy";

/// One pending cross-execution effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutboxMessage {
    /// Start a child workflow (StartChildWorkflowExecution command).
    StartChild(Box<StartChildMessage>),
    /// Signal another workflow (SignalExternalWorkflowExecution command).
    Signal(Box<SignalMessage>),
    /// Ask another workflow to cancel (RequestCancelExternalWorkflowExecution command).
    Cancel(Box<CancelMessage>),
    /// Tell the parent that this child closed.
    ChildClosed(Box<ChildClosedMessage>),
    /// Apply a parent-close policy (TERMINATE or REQUEST_CANCEL) to a child.
    ParentClosePolicy(Box<PolicyMessage>),
}

/// Which kind of message an ack is for; an ack applies only to an entry of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxKind {
    StartChild,
    Signal,
    Cancel,
    ChildClosed,
    ParentClosePolicy,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartChildMessage {
    /// The child's start, with the derived request ID.
    #[serde(with = "codec::proto")]
    pub request: StartWorkflowExecutionRequest,
    /// The child's run ID, derived from the parent run and the initiated event.
    pub run_id: String,
    pub parent: ParentInfo,
    pub control: String,
    /// The WorkflowTaskCompleted event of the initiating command.
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalMessage {
    /// The signal, with the derived request ID the target deduplicates on.
    #[serde(with = "codec::proto")]
    pub request: SignalWorkflowExecutionRequest,
    /// The signalling run, written on the target's WorkflowExecutionSignaled.
    #[serde(with = "codec::proto")]
    pub initiator: WorkflowExecution,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelMessage {
    #[serde(with = "codec::proto")]
    pub request: RequestCancelWorkflowExecutionRequest,
    /// The requesting run and its initiated event, copied onto the target's CancelRequested.
    #[serde(with = "codec::proto")]
    pub initiator: WorkflowExecution,
    pub initiated_event_id: i64,
    pub control: String,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildClosedMessage {
    pub parent: ParentInfo,
    pub workflow_type: String,
    /// The child's close event (Completed, Failed, Canceled, TimedOut or Terminated).
    #[serde(with = "codec::proto")]
    pub close_event: HistoryEvent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyMessage {
    /// The child run the parent started.
    pub child: ExecutionKey,
    /// A `ParentClosePolicy` value: TERMINATE or REQUEST_CANCEL.
    pub policy: i32,
    /// The closing parent, written on the child's CancelRequested.
    #[serde(with = "codec::proto")]
    pub parent: WorkflowExecution,
    pub initiated_event_id: i64,
}

/// A child's record of its parent, set on every run of a child workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentInfo {
    pub execution: ExecutionKey,
    /// ID of the parent's StartChildWorkflowExecutionInitiated event.
    pub initiated_event_id: i64,
    /// The root of the parent chain (the parent itself if it has no parent).
    pub root: ExecutionKey,
}

/// A child workflow that its parent still waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildState {
    pub initiated_event_id: i64,
    pub namespace: String,
    pub workflow_id: String,
    pub workflow_type: String,
    /// The run ID the child gets if this parent starts it (derived, see [`derived_id`]).
    pub run_id: String,
    /// Whether ChildWorkflowExecutionStarted was recorded.
    pub started: bool,
    /// Its event ID; 0 while not started or while the event is buffered.
    pub started_event_id: i64,
    /// A `ParentClosePolicy` value (UNSPECIFIED is stored as TERMINATE, the default).
    pub parent_close_policy: i32,
}

/// What the target of a message did; the source writes its event from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// The effect happened (now or at an earlier delivery).
    Delivered,
    /// The child runs (or ran) with this run ID.
    ChildStarted { run_id: String },
    /// The child's workflow ID is in use by another run.
    AlreadyExists,
    /// The target workflow does not exist (or, for a signal, is closed).
    NotFound,
    /// The target refused the message for another reason.
    Failed { message: String },
}

impl OutboxMessage {
    pub fn kind(&self) -> OutboxKind {
        match self {
            OutboxMessage::StartChild(_) => OutboxKind::StartChild,
            OutboxMessage::Signal(_) => OutboxKind::Signal,
            OutboxMessage::Cancel(_) => OutboxKind::Cancel,
            OutboxMessage::ChildClosed(_) => OutboxKind::ChildClosed,
            OutboxMessage::ParentClosePolicy(_) => OutboxKind::ParentClosePolicy,
        }
    }

    /// The workflow the message is for: the driver proposes it to that workflow's group.
    pub fn target(&self) -> WorkflowKey {
        let named = |namespace: &str, execution: Option<&WorkflowExecution>| WorkflowKey {
            namespace: namespace.to_string(),
            workflow_id: execution.map(|e| e.workflow_id.clone()).unwrap_or_default(),
        };
        match self {
            OutboxMessage::StartChild(m) => WorkflowKey {
                namespace: m.request.namespace.clone(),
                workflow_id: m.request.workflow_id.clone(),
            },
            OutboxMessage::Signal(m) => {
                named(&m.request.namespace, m.request.workflow_execution.as_ref())
            }
            OutboxMessage::Cancel(m) => {
                named(&m.request.namespace, m.request.workflow_execution.as_ref())
            }
            OutboxMessage::ChildClosed(m) => m.parent.execution.workflow_key(),
            OutboxMessage::ParentClosePolicy(m) => m.child.workflow_key(),
        }
    }
}

/// A deterministic, UUID-shaped ID derived from a run ID and an event ID: the child run ID and the
/// request IDs of delivered messages. Two FNV-1a hashes with different offsets give 128 bits; the
/// version nibble says "8" (custom), so it never equals a random v4 run ID.
pub fn derived_id(run_id: &str, event_id: i64) -> String {
    let hash = |offset: u64| {
        let mut hash = offset;
        for byte in run_id.bytes().chain([0u8]).chain(event_id.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    };
    let hi = hash(0xcbf2_9ce4_8422_2325);
    let lo = hash(0x8422_2325_cbf2_9ce4) ^ hi.rotate_left(29);
    let bytes = (u128::from(hi) << 64) | u128::from(lo);
    let bytes = (bytes & !(0xf_u128 << 76)) | (0x8_u128 << 76);
    let bytes = (bytes & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    let hex = format!("{bytes:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::derived_id;

    #[test]
    fn derived_ids_are_stable_uuid_shaped_and_distinct() {
        let a = derived_id("run-1", 5);
        assert_eq!(a, derived_id("run-1", 5));
        assert_ne!(a, derived_id("run-1", 6));
        assert_ne!(a, derived_id("run-2", 5));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
