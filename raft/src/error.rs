//! Typed errors of the Raft layer.

use perdura_engine::GroupId;
use perdura_storage::StorageError;

/// Failures to open, run or read the node's groups.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// openraft refused to start, initialize or serve a group.
    #[error("raft group {group}: {detail}")]
    Raft { group: GroupId, detail: String },
    #[error("unknown group {0}")]
    UnknownGroup(GroupId),
    /// Creating the cluster's metadata failed.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    /// The data dir belongs to another node, or its identity file is unreadable.
    #[error("node identity: {0}")]
    Identity(String),
    /// Peers belong to another cluster than this data dir (or answer for another node id).
    #[error("cluster mismatch: {0}")]
    ClusterMismatch(String),
    /// The peer address could not be served or a peer could not be reached in time.
    #[error("peer transport: {0}")]
    Transport(String),
}

/// Why a proposal has no engine reply, classified the way a Jepsen checker needs it. Also the
/// answer of a read barrier that could not be established (then nothing was applied at all).
/// Serializable: a leader answers a forwarded proposal with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProposeError {
    /// Definitely not applied: this node is not the group's leader (or does not host the group).
    /// `leader` is the leader this node knows of, if any.
    #[error("not the leader of the group (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// May or may not be applied (timeout, leadership lost after the entry was appended, node
    /// stopped mid-flight). A retry must be idempotent (request ids) to be safe.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    /// Definitely not applied: the node was shut down before the proposal was submitted.
    #[error("the node is shutting down")]
    Shutdown,
    /// Definitely not applied: this node has not applied the cluster's slot map yet (a node
    /// starting, or one that lost the unsynced apply of the bootstrap in a power loss), so it
    /// cannot tell which group owns a workflow. Guessing would put the workflow in a group
    /// that does not own it.
    #[error("this node has not applied the cluster's slot map yet")]
    NoSlotMap,
}
