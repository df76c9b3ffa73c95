//! One node's own view of the groups it hosts, as reported to whoever builds the cluster status.

use crate::multi::MultiRaft;
use crate::types::{GroupRaft, TypeConfig};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use openraft::{RaftMetrics, ServerState};
use perdura_engine::GroupId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A replica's Raft role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Leader,
    Follower,
    Learner,
    Candidate,
    Shutdown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::Candidate => "candidate",
            Role::Shutdown => "shutdown",
        }
    }
}

/// One group as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    pub group: GroupId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// The effective membership this node knows: voters (of every joint config) and learners.
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Peer addresses in that membership.
    pub addrs: BTreeMap<u64, String>,
    /// On the leader only: the last log index known replicated to each replica.
    pub matched: Option<BTreeMap<u64, Option<u64>>>,
    /// Digest of the applied state (hex), when this node can compute it.
    pub digest: Option<String>,
}

impl ReplicaReport {
    /// The report of one group from its openraft metrics.
    pub fn from_metrics(group: GroupId, m: &RaftMetrics<TypeConfig>) -> ReplicaReport {
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let addrs = membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect();
        let matched = m.replication.as_ref().map(|replication| {
            replication
                .iter()
                .map(|(node, log_id)| (*node, log_id.as_ref().map(|l| l.index)))
                .collect()
        });
        ReplicaReport {
            group,
            role: match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Learner => Role::Learner,
                ServerState::Candidate => Role::Candidate,
                ServerState::Shutdown => Role::Shutdown,
            },
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.as_ref().map(|l| l.index),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index),
            purged_index: m.purged.as_ref().map(|l| l.index),
            voters,
            learners,
            addrs,
            matched,
            digest: None,
        }
    }

    /// The current report of one group's openraft instance.
    pub fn of(group: GroupId, raft: &GroupRaft) -> ReplicaReport {
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();
        ReplicaReport::from_metrics(group, &metrics)
    }
}

/// Everything one node reports about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node_id: u64,
    pub cluster_id: Option<String>,
    /// Group 0 first, then the workflow groups ascending.
    pub groups: Vec<ReplicaReport>,
}

impl NodeReport {
    /// This node's report: every group it hosts.
    pub fn collect(raft: &MultiRaft) -> NodeReport {
        let groups = std::iter::once(GroupId::META)
            .chain(raft.shard_groups())
            .filter_map(|group| {
                let handle = raft.raft(group)?;
                let mut report = ReplicaReport::of(group, &handle);
                if let Some((applied, digest)) = digest_of(raft, group) {
                    // The digest and the index it belongs to were read together.
                    report.applied_index = applied;
                    report.digest = Some(digest);
                }
                Some(report)
            })
            .collect();
        NodeReport {
            node_id: raft.node_id(),
            cluster_id: raft.read_meta(|meta| meta.cluster_id.clone()),
            groups,
        }
    }
}

/// The digest of a group's applied state on this node, hex-encoded, with the applied index it
/// belongs to.
fn digest_of(raft: &MultiRaft, group: GroupId) -> Option<(Option<u64>, String)> {
    match raft.group_digest(group) {
        Ok((applied, hash)) => Some((applied.map(|l| l.index), format!("{hash:016x}"))),
        Err(e) => {
            tracing::warn!(%group, error = %e, "no digest");
            None
        }
    }
}
