//! Cluster membership: the operator's view of the cluster and the changes to it.
//!
//! * [`report`] — one node's own view of every group it hosts ([`NodeReport`]): role, term,
//!   applied / last / snapshot / purged index, the membership it knows and, on a leader, what it
//!   replicated to each replica.
//! * [`status`] — [`ClusterStatus`]: the node registry plus every node's report merged into one
//!   view per group (leader, term, and per replica applied index, matched index, lag, digest).
//! * [`group_change`] — one membership step on one group's leader (add a learner and wait until
//!   it caught up, make a learner a voter, remove a node), with the safety checks.
//! * [`orchestrate`] — [`Membership`]: `add_node` / `remove_node` across all groups and the meta
//!   registry, and the node-to-node calls ([`PeerAdminCall`]) that reach each group's leader.
//! * [`seed`] — registers the initial cluster's nodes in the meta registry.
//! * [`peer_relay`] — the calls over the peer connection; `sync` keeps the peer layer in step
//!   with the registry (addresses of new nodes, removed nodes refused).
//!
//! ## Invariants
//! * The meta registry ([`perdura_engine::NodeRegistry`]) is the record of which node ids were
//!   ever used; a node is registered *before* it is added to any group, so an id can never be a
//!   member of a group without being retired forever once removed.
//! * Every step is idempotent and checks the group's current membership first, so an operator
//!   can simply retry a change that failed half-way (leader change, timeout).
//! * Membership changes run on the group's leader and go through openraft's joint consensus; a
//!   removal that would leave fewer reachable voters than a majority of the new configuration is
//!   refused instead of attempted.

pub mod error;
pub mod group_change;
pub mod orchestrate;
pub mod peer_relay;
pub mod report;
pub mod seed;
pub mod status;
pub(crate) mod sync;
#[cfg(test)]
mod tests;

pub use error::MembershipError;
pub use group_change::{ChangeOutcome, GroupChange, GroupChangeError};
pub use orchestrate::{
    AdminHandler, AdminRelay, JoinInfo, LocalRelay, Membership, NodeChangeSummary, PeerAdminCall,
    PeerAdminReply, serve_call,
};
pub use report::{NodeReport, ReplicaReport, Role};
pub use status::{ClusterStatus, GroupView, NodeView, ReplicaView};
