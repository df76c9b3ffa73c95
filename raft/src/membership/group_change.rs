//! One membership step on one group, run by the group's leader.
//!
//! Each step first looks at the leader's current membership and does nothing if the step is
//! already done, so a retried command converges. Removing a voter is checked for safety first:
//! the new configuration (and, during the joint phase, the old one) must keep a majority of
//! voters that the leader heard from recently, or the change could never commit and the group
//! would be stuck in a joint configuration.

use crate::types::{GroupRaft, TypeConfig};
use openraft::error::{ClientWriteError, RaftError as OpenraftError};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ChangeMembers, Instant, RaftMetrics, ServerState};
use perdura_engine::GroupId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// A replica the leader has not heard from for this long counts as unreachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(3);

/// One step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupChange {
    /// Add `node` as a learner and wait until it caught up with the leader's log (openraft
    /// sends a snapshot when the entries it needs were purged).
    AddLearner { node: u64, addr: String },
    /// Make a caught-up learner a voter.
    AddVoter { node: u64 },
    /// Remove `node` (voter or learner) from the membership entirely.
    Remove { node: u64 },
}

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOutcome {
    Changed,
    /// The membership already was as asked.
    Already,
}

/// Why a step did not happen. Serializable: it answers a node-to-node call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum GroupChangeError {
    /// This node does not lead the group; `leader` is the one it knows of.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("{0}")]
    Unsafe(String),
    /// The learner was added but did not catch up within the time allowed.
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs `change` on this node's replica of `group`, which must be its leader.
pub async fn execute(
    group: GroupId,
    raft: &GroupRaft,
    change: GroupChange,
    catch_up_timeout: Duration,
) -> Result<ChangeOutcome, GroupChangeError> {
    let metrics = raft.metrics().borrow_watched().clone();
    if metrics.state != ServerState::Leader {
        return Err(GroupChangeError::NotLeader {
            leader: metrics.current_leader,
        });
    }
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let learners: BTreeSet<u64> = membership.learner_ids().collect();
    match change {
        GroupChange::AddLearner { node, addr } => {
            if voters.contains(&node) {
                return Ok(ChangeOutcome::Already);
            }
            let already = learners.contains(&node);
            // Blocking: returns once the leader believes the learner's log is up to date. On a
            // timeout the learner stays in the membership and keeps catching up.
            let added = tokio::time::timeout(
                catch_up_timeout,
                Box::pin(raft.add_learner(node, BasicNode { addr }, true)),
            )
            .await
            .map_err(|_| {
                GroupChangeError::Timeout(format!(
                    "node {node} did not catch up in group {group} within {catch_up_timeout:?}; \
                     it stays a learner (retry add-node to resume)"
                ))
            })?;
            added.map_err(write_error)?;
            Ok(if already {
                ChangeOutcome::Already
            } else {
                ChangeOutcome::Changed
            })
        }
        GroupChange::AddVoter { node } => {
            if voters.contains(&node) {
                return Ok(ChangeOutcome::Already);
            }
            if !learners.contains(&node) {
                return Err(GroupChangeError::Failed(format!(
                    "node {node} is not a learner of group {group}; add it as a learner first"
                )));
            }
            Box::pin(
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node])), false),
            )
            .await
            .map_err(write_error)?;
            Ok(ChangeOutcome::Changed)
        }
        GroupChange::Remove { node } => {
            if learners.contains(&node) {
                Box::pin(
                    raft.change_membership(
                        ChangeMembers::RemoveNodes(BTreeSet::from([node])),
                        false,
                    ),
                )
                .await
                .map_err(write_error)?;
                return Ok(ChangeOutcome::Changed);
            }
            if !voters.contains(&node) {
                return Ok(ChangeOutcome::Already);
            }
            // Idle groups heartbeat rarely: ask for a round of acknowledgements first, and give
            // the voters a moment to answer before judging who is reachable.
            let _ = raft.trigger().heartbeat().await;
            let fresh = raft
                .wait(Some(Duration::from_secs(2)))
                .metrics(
                    |m| check_removal_is_safe(group, node, &voters, m).is_ok(),
                    "voters acknowledge",
                )
                .await
                .unwrap_or(metrics);
            check_removal_is_safe(group, node, &voters, &fresh)?;
            Box::pin(
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node])), false),
            )
            .await
            .map_err(write_error)?;
            Ok(ChangeOutcome::Changed)
        }
    }
}

/// Refuses a removal after which the group could not commit: no voter left, or fewer
/// reachable voters than a majority of the old or of the new configuration (joint consensus
/// needs both).
pub fn check_removal_is_safe(
    group: GroupId,
    node: u64,
    voters: &BTreeSet<u64>,
    metrics: &RaftMetrics<TypeConfig>,
) -> Result<(), GroupChangeError> {
    let remaining: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != node).collect();
    if remaining.is_empty() {
        return Err(GroupChangeError::Unsafe(format!(
            "node {node} is the only voter of group {group}; removing it would leave the group \
             without voters"
        )));
    }
    let reachable = reachable_voters(metrics);
    for (name, config) in [("current", voters), ("new", &remaining)] {
        let up = config.iter().filter(|v| reachable.contains(v)).count();
        let majority = config.len() / 2 + 1;
        if up < majority {
            return Err(GroupChangeError::Unsafe(format!(
                "removing node {node} from group {group}: only {up} of the {} voters of the \
                 {name} configuration {config:?} are reachable, a majority ({majority}) is needed \
                 to commit the change; bring a node back first",
                config.len()
            )));
        }
    }
    Ok(())
}

/// The leader itself and every replica it heard from within [`REACHABLE_WITHIN`].
fn reachable_voters(metrics: &RaftMetrics<TypeConfig>) -> BTreeSet<u64> {
    let mut up = BTreeSet::from([metrics.id]);
    if let Some(heartbeat) = &metrics.heartbeat {
        for (node, acked) in heartbeat {
            if acked
                .as_ref()
                .is_some_and(|t| t.elapsed() < REACHABLE_WITHIN)
            {
                up.insert(*node);
            }
        }
    }
    up
}

fn write_error(e: OpenraftError<TypeConfig, ClientWriteError<TypeConfig>>) -> GroupChangeError {
    match e {
        OpenraftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            GroupChangeError::NotLeader {
                leader: forward.leader_id,
            }
        }
        other => GroupChangeError::Failed(other.to_string()),
    }
}
