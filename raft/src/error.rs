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
}

/// Why a proposal has no engine reply, classified the way a Jepsen checker needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
