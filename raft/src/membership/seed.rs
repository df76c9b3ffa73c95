//! Registers the initial cluster's nodes in the meta registry.
//!
//! The nodes a cluster was bootstrapped with are the voters of group 0's first membership; they
//! enter the registry as `Active`, with the peer address that membership carries. Run on every
//! start (any node: meta proposals reach the leader); each `AddNode` is idempotent, and a node
//! that was removed meanwhile is refused by the registry, never re-added.

use crate::membership::error::MembershipError;
use crate::multi::MultiRaft;
use openraft::type_config::async_runtime::watch::WatchReceiver;
use perdura_engine::{EngineError, GroupId, MetaCommand};
use std::collections::BTreeMap;

/// Proposes `AddNode { voter: true }` for every voter of group 0's committed membership that
/// the registry does not know yet. Returns how many were added.
pub async fn seed_initial_nodes(raft: &MultiRaft) -> Result<usize, MembershipError> {
    let Some(meta) = raft.raft(GroupId::META) else {
        return Ok(0);
    };
    let voters: BTreeMap<u64, String> = {
        let metrics = meta.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.committed_membership_config.membership();
        membership
            .voter_ids()
            .map(|id| {
                let addr = membership
                    .get_node(&id)
                    .map(|n| n.addr.clone())
                    .unwrap_or_default();
                (id, addr)
            })
            .collect()
    };
    let mut added = 0;
    for (id, peer_addr) in voters {
        if raft.read_meta(|m| m.node_registry.get(id).is_some()) {
            continue;
        }
        let command = MetaCommand::AddNode {
            id,
            peer_addr,
            voter: true,
        };
        match raft.propose_meta(command).await {
            Ok(Ok(_)) => added += 1,
            // A node removed meanwhile, or registered concurrently with another address: the
            // registry decides; nothing to seed.
            Ok(Err(EngineError::FailedPrecondition(detail))) => {
                tracing::info!(node = id, %detail, "not seeding node");
            }
            Ok(Err(e)) => return Err(MembershipError::Refused(e)),
            Err(e) => return Err(MembershipError::Propose(e)),
        }
    }
    Ok(added)
}
