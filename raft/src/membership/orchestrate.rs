//! [`Membership`]: the operator's commands across the meta registry and every group, and the
//! node-to-node calls that run a step on whichever node leads a group.
//!
//! `add_node`: register the id in the meta registry (refused if it was ever used), add the node
//! as a learner to every group (group 0 first; openraft sends a snapshot when the entries the
//! node needs were purged) waiting until it caught up, make it a voter everywhere, mark it
//! active. `remove_node`: check that every group keeps a reachable majority, remove the node
//! from every group (group 0 last), mark it removed. Both are idempotent and resumable.

use crate::membership::error::MembershipError;
use crate::membership::group_change::{self, ChangeOutcome, GroupChange, GroupChangeError};
use crate::membership::report::NodeReport;
use crate::membership::status::{self, ClusterStatus, NodeView};
use crate::multi::MultiRaft;
use crate::timer::BoxFuture;
use openraft::type_config::async_runtime::watch::WatchReceiver;
use perdura_engine::{GroupId, MetaCommand, MetaReply, NodeChanged, NodeRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a status waits for each node's report.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time a new node has to catch up in one group.
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra time to find a group's leader (elections, leader changes) around one step.
const LEADER_SEARCH: Duration = Duration::from_secs(15);

/// A node-to-node membership call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerAdminCall {
    /// The receiver's [`NodeReport`].
    Report,
    /// Run a step on the receiver's replica of `group` (it must lead it).
    Change {
        group: GroupId,
        change: GroupChange,
        catch_up_timeout_ms: u64,
    },
    /// A node starting with `--join` asks a member what to open.
    Join { node_id: u64 },
}

/// What a joining node learns from a member: enough to open its groups empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinInfo {
    pub cluster_id: String,
    /// The member that answered.
    pub answered_by: u64,
    /// Group 0 and every workflow group.
    pub groups: Vec<GroupId>,
    /// Peer addresses of the registered (not removed) nodes.
    pub members: BTreeMap<u64, String>,
}

/// The answer to a [`PeerAdminCall`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerAdminReply {
    Report(NodeReport),
    Change(Result<ChangeOutcome, GroupChangeError>),
    /// `Err`: why the node may not join (a removed id, an unbootstrapped member).
    Join(Result<JoinInfo, String>),
}

/// Serves [`PeerAdminCall`]s arriving over the peer connection (implemented by [`MultiRaft`]).
pub trait AdminHandler: Send + Sync + 'static {
    fn serve(&self, call: PeerAdminCall) -> BoxFuture<'_, PeerAdminReply>;
}

impl AdminHandler for MultiRaft {
    fn serve(&self, call: PeerAdminCall) -> BoxFuture<'_, PeerAdminReply> {
        Box::pin(serve_call(self, call))
    }
}

/// Delivers [`PeerAdminCall`]s to other nodes (the peer transport in a cluster).
pub trait AdminRelay: Send + Sync + 'static {
    fn call(&self, node: u64, call: PeerAdminCall)
    -> BoxFuture<'_, Result<PeerAdminReply, String>>;
}

/// The relay of a node without peers: every other node is unreachable.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalRelay;

impl AdminRelay for LocalRelay {
    fn call(
        &self,
        node: u64,
        _call: PeerAdminCall,
    ) -> BoxFuture<'_, Result<PeerAdminReply, String>> {
        Box::pin(async move { Err(format!("node {node}: this node has no peer transport")) })
    }
}

/// Serves a [`PeerAdminCall`] on this node.
pub async fn serve_call(raft: &MultiRaft, call: PeerAdminCall) -> PeerAdminReply {
    match call {
        PeerAdminCall::Report => PeerAdminReply::Report(NodeReport::collect(raft)),
        PeerAdminCall::Change {
            group,
            change,
            catch_up_timeout_ms,
        } => {
            let Some(handle) = raft.raft(group) else {
                return PeerAdminReply::Change(Err(GroupChangeError::Failed(format!(
                    "node {} does not host group {group}",
                    raft.node_id()
                ))));
            };
            let timeout = Duration::from_millis(catch_up_timeout_ms);
            PeerAdminReply::Change(group_change::execute(group, &handle, change, timeout).await)
        }
        PeerAdminCall::Join { node_id } => PeerAdminReply::Join(join_info(raft, node_id)),
    }
}

fn join_info(raft: &MultiRaft, node_id: u64) -> Result<JoinInfo, String> {
    raft.read_meta(|meta| {
        let registry = &meta.node_registry;
        if registry.is_removed(node_id) {
            return Err(format!(
                "node {node_id} was removed from the cluster and node ids are never reused; start \
                 a fresh node with id {} or above (empty data dir) and add it with `perdura \
                 cluster add-node`",
                registry.next_node_id()
            ));
        }
        if node_id <= registry.highest_node_id && registry.get(node_id).is_none() {
            return Err(format!(
                "node id {node_id} is below the highest id ever used ({}); use {} or above",
                registry.highest_node_id,
                registry.next_node_id()
            ));
        }
        let cluster_id = meta
            .cluster_id
            .clone()
            .ok_or_else(|| format!("node {} has not joined its cluster yet", raft.node_id()))?;
        let slot_map = meta
            .slot_map
            .as_ref()
            .ok_or("the cluster has no slot map yet")?;
        Ok(JoinInfo {
            cluster_id,
            answered_by: raft.node_id(),
            groups: std::iter::once(GroupId::META)
                .chain(slot_map.groups())
                .collect(),
            members: registry
                .members()
                .map(|n| (n.id, n.peer_addr.clone()))
                .collect(),
        })
    })
}

/// What an add or remove did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChangeSummary {
    pub node: NodeRecord,
    /// Groups whose membership this call changed.
    pub groups_changed: u32,
}

/// The operator's membership commands, run from any node.
#[derive(Clone)]
pub struct Membership {
    raft: Arc<MultiRaft>,
    relay: Arc<dyn AdminRelay>,
}

impl Membership {
    /// Membership commands run from this node: over the peer connection in a cluster, with no
    /// other node to reach on a single node.
    pub fn new(raft: Arc<MultiRaft>) -> Membership {
        let relay: Arc<dyn AdminRelay> = match &raft.cluster {
            Some(cluster) => Arc::new(crate::membership::peer_relay::PeerRelay {
                transport: cluster.transport.clone(),
            }),
            None => Arc::new(LocalRelay),
        };
        Membership { raft, relay }
    }

    /// With an explicit relay (tests, simulations).
    pub fn with_relay(raft: Arc<MultiRaft>, relay: Arc<dyn AdminRelay>) -> Membership {
        Membership { raft, relay }
    }

    async fn call(&self, node: u64, call: PeerAdminCall) -> Result<PeerAdminReply, String> {
        if node == self.raft.node_id() {
            // Boxed: openraft's membership futures are large (debug builds overflow the stack).
            return Ok(Box::pin(serve_call(&self.raft, call)).await);
        }
        self.relay.call(node, call).await
    }

    /// Every node's report (registry members and every member of a group this node knows),
    /// merged.
    pub async fn status(&self) -> ClusterStatus {
        let own = NodeReport::collect(&self.raft);
        let registry = self.raft.read_meta(|meta| meta.node_registry.clone());
        let mut nodes: BTreeSet<u64> = registry.members().map(|n| n.id).collect();
        for group in &own.groups {
            nodes.extend(group.voters.iter().chain(group.learners.iter()).copied());
        }
        nodes.remove(&own.node_id);
        let asks = nodes.into_iter().map(|node| async move {
            let reply =
                tokio::time::timeout(REPORT_TIMEOUT, self.call(node, PeerAdminCall::Report))
                    .await
                    .unwrap_or_else(|_| Err(format!("no report within {REPORT_TIMEOUT:?}")));
            let report = match reply {
                Ok(PeerAdminReply::Report(report)) => Ok(report),
                Ok(other) => Err(format!("unexpected reply {other:?}")),
                Err(e) => Err(e),
            };
            (node, report)
        });
        let mut reports: BTreeMap<u64, Result<NodeReport, String>> =
            futures::future::join_all(asks).await.into_iter().collect();
        let cluster_id = own.cluster_id.clone();
        let answered_by = own.node_id;
        reports.insert(answered_by, Ok(own));
        status::merge(answered_by, cluster_id, &registry, &reports)
    }

    /// Adds a fresh node (see the module docs).
    pub async fn add_node(
        &self,
        node: u64,
        peer_addr: String,
        catch_up_timeout: Duration,
    ) -> Result<NodeChangeSummary, MembershipError> {
        self.propose(MetaCommand::AddNode {
            id: node,
            peer_addr: peer_addr.clone(),
            voter: false,
        })
        .await?;
        let groups = self.groups();
        let mut changed = BTreeSet::new();
        for group in &groups {
            let change = GroupChange::AddLearner {
                node,
                addr: peer_addr.clone(),
            };
            if self.on_leader(*group, change, catch_up_timeout).await? == ChangeOutcome::Changed {
                changed.insert(*group);
            }
        }
        for group in &groups {
            let change = GroupChange::AddVoter { node };
            if self.on_leader(*group, change, catch_up_timeout).await? == ChangeOutcome::Changed {
                changed.insert(*group);
            }
        }
        let promoted = self.propose(MetaCommand::PromoteNode { id: node }).await?;
        Ok(NodeChangeSummary {
            node: promoted.node,
            groups_changed: u32::try_from(changed.len()).unwrap_or(u32::MAX),
        })
    }

    /// Removes a node from every group and retires its id (see the module docs).
    pub async fn remove_node(&self, node: u64) -> Result<NodeChangeSummary, MembershipError> {
        let registered = self
            .raft
            .read_meta(|meta| meta.node_registry.get(node).cloned());
        if registered.is_none() {
            return Err(MembershipError::Refused(
                perdura_engine::EngineError::NotFound(format!("node {node} is not registered")),
            ));
        }
        self.check_removal(node).await?;
        let mut groups = self.groups();
        // Group 0 last: the registry and the other groups stay reachable through it meanwhile.
        groups.rotate_left(1);
        let mut changed = 0u32;
        for group in groups {
            let change = GroupChange::Remove { node };
            if self
                .on_leader(group, change, DEFAULT_CATCH_UP_TIMEOUT)
                .await?
                == ChangeOutcome::Changed
            {
                changed += 1;
            }
        }
        let removed = self.propose(MetaCommand::RemoveNode { id: node }).await?;
        Ok(NodeChangeSummary {
            node: removed.node,
            groups_changed: changed,
        })
    }

    /// Refuses early (before any group changed) a removal that would leave a group without a
    /// reachable majority of voters. The group leaders check again when they make the change.
    async fn check_removal(&self, node: u64) -> Result<(), MembershipError> {
        let status = self.status().await;
        let reachable: BTreeSet<u64> = status
            .nodes
            .iter()
            .filter(|n| n.reachable)
            .map(|n| n.id)
            .collect();
        for group in &status.groups {
            if !group.voters.contains(&node) {
                continue;
            }
            let remaining: Vec<u64> = group
                .voters
                .iter()
                .copied()
                .filter(|v| *v != node)
                .collect();
            if remaining.is_empty() {
                return Err(MembershipError::Unsafe(format!(
                    "node {node} is the only voter of group {}; it cannot be removed",
                    group.group
                )));
            }
            let up = remaining.iter().filter(|v| reachable.contains(v)).count();
            let majority = remaining.len() / 2 + 1;
            if up < majority {
                return Err(MembershipError::Unsafe(format!(
                    "removing node {node} would leave group {} with voters {remaining:?}, of \
                     which only {up} are reachable; a majority ({majority}) is needed",
                    group.group
                )));
            }
        }
        Ok(())
    }

    /// Group 0 and every workflow group, ascending.
    fn groups(&self) -> Vec<GroupId> {
        std::iter::once(GroupId::META)
            .chain(self.raft.shard_groups())
            .collect()
    }

    async fn propose(&self, command: MetaCommand) -> Result<NodeChanged, MembershipError> {
        match self.raft.propose_meta(command).await {
            Ok(Ok(MetaReply::NodeChanged(changed))) => Ok(changed),
            Ok(Ok(other)) => Err(MembershipError::Propose(
                crate::error::ProposeError::Indeterminate(format!("unexpected reply {other:?}")),
            )),
            Ok(Err(e)) => Err(MembershipError::Refused(e)),
            Err(e) => Err(MembershipError::Propose(e)),
        }
    }

    /// Runs one step on the group's leader, following leader hints and retrying while the
    /// group elects one.
    async fn on_leader(
        &self,
        group: GroupId,
        change: GroupChange,
        catch_up_timeout: Duration,
    ) -> Result<ChangeOutcome, MembershipError> {
        let deadline = Instant::now() + catch_up_timeout + LEADER_SEARCH;
        let mut hint = None;
        let mut last_error = String::from("no leader known");
        while Instant::now() < deadline {
            let Some(leader) = hint.take().or_else(|| self.known_leader(group)) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let call = PeerAdminCall::Change {
                group,
                change: change.clone(),
                catch_up_timeout_ms: u64::try_from(catch_up_timeout.as_millis())
                    .unwrap_or(u64::MAX),
            };
            match self.call(leader, call).await {
                Ok(PeerAdminReply::Change(Ok(outcome))) => {
                    tracing::info!(%group, ?change, ?outcome, "membership step done");
                    return Ok(outcome);
                }
                Ok(PeerAdminReply::Change(Err(GroupChangeError::NotLeader { leader: next }))) => {
                    last_error = format!("node {leader} is not the leader");
                    hint = next.filter(|n| *n != leader);
                }
                Ok(PeerAdminReply::Change(Err(GroupChangeError::Unsafe(detail)))) => {
                    return Err(MembershipError::Unsafe(detail));
                }
                Ok(PeerAdminReply::Change(Err(GroupChangeError::Timeout(detail)))) => {
                    return Err(MembershipError::Timeout(detail));
                }
                Ok(PeerAdminReply::Change(Err(GroupChangeError::Failed(detail)))) => {
                    return Err(MembershipError::Raft { group, detail });
                }
                Ok(other) => last_error = format!("unexpected reply {other:?}"),
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(MembershipError::NoLeader {
            group,
            detail: last_error,
        })
    }

    fn known_leader(&self, group: GroupId) -> Option<u64> {
        let raft = self.raft.raft(group)?;
        raft.metrics().borrow_watched().current_leader
    }

    /// Builds a snapshot of every group on this node and, with `purge`, purges the log it
    /// covers. Returns per group the snapshot and purged index reached.
    pub async fn trigger_snapshot(
        &self,
        purge: bool,
    ) -> Result<Vec<(GroupId, Option<u64>, Option<u64>)>, MembershipError> {
        let mut out = Vec::new();
        for group in self.groups() {
            let Some(raft) = self.raft.raft(group) else {
                continue;
            };
            let fatal =
                |e: openraft::error::Fatal<crate::types::TypeConfig>| MembershipError::Raft {
                    group,
                    detail: e.to_string(),
                };
            let applied = raft
                .metrics()
                .borrow_watched()
                .last_applied
                .map(|l| l.index);
            raft.trigger().snapshot().await.map_err(fatal)?;
            let wait = raft.wait(Some(Duration::from_secs(30)));
            let snapshot = match applied {
                Some(index) => wait
                    .metrics(
                        |m| m.snapshot.is_some_and(|s| s.index >= index),
                        "snapshot built",
                    )
                    .await
                    .map_err(|e| MembershipError::Timeout(format!("group {group}: {e}")))?
                    .snapshot
                    .map(|s| s.index),
                None => None,
            };
            let mut purged = raft.metrics().borrow_watched().purged.map(|l| l.index);
            if let (true, Some(index)) = (purge, snapshot) {
                raft.trigger().purge_log(index).await.map_err(fatal)?;
                // The leader purges only once no replication still reads those entries.
                purged = raft
                    .wait(Some(Duration::from_secs(10)))
                    .metrics(|m| m.purged.is_some_and(|p| p.index >= index), "log purged")
                    .await
                    .map(|m| m.purged.map(|p| p.index))
                    .unwrap_or(purged);
            }
            out.push((group, snapshot, purged));
        }
        Ok(out)
    }
}

impl NodeView {
    /// A node record as a status entry (for answers that carry one node).
    pub fn of_record(record: &NodeRecord) -> NodeView {
        NodeView {
            id: record.id,
            peer_addr: record.peer_addr.clone(),
            state: record.state.as_str().to_string(),
            reachable: false,
            error: None,
        }
    }
}
