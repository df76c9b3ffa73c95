//! Why a membership change did not (fully) happen.

use crate::error::ProposeError;
use perdura_engine::{EngineError, GroupId};

/// The failure of an operator's membership command. Every variant leaves the cluster in a state
/// from which the same command can simply be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The meta registry refused the change (a reused node id, an unknown node…).
    #[error("{0}")]
    Refused(EngineError),
    /// The change would leave a group without a reachable majority of voters.
    #[error("unsafe: {0}")]
    Unsafe(String),
    /// The node did not catch up in time; it stays a learner (retry to resume).
    #[error("timed out: {0}")]
    Timeout(String),
    /// No leader of the group could be reached to make the change.
    #[error("group {group}: no reachable leader ({detail})")]
    NoLeader { group: GroupId, detail: String },
    /// The proposal to the meta group has no applied answer.
    #[error("meta proposal: {0}")]
    Propose(ProposeError),
    /// openraft refused or failed the change.
    #[error("group {group}: {detail}")]
    Raft { group: GroupId, detail: String },
}
