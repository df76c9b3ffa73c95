//! [`PeerHost`]: what the peer server serves, and the node-level facts the peer client needs.
//!
//! It owns the node's registry of open groups (a group becomes reachable by peers once it is
//! registered; a message for an unregistered group is rejected and the sender backs off), the
//! node's cluster id (unknown until the meta bootstrap is applied here), and the record of the
//! first cluster mismatch seen — which makes a starting node refuse to join. It also holds the
//! node's membership handler (the [`AdminHandler`] that serves [`MessageKind::Admin`] calls) and
//! the ids of removed nodes, whose messages it refuses, and the peers' wall clocks as their
//! messages reported them ([`PeerClocks`]).
//!
//! [`MessageKind::Admin`]: crate::peer::proto::MessageKind::Admin
//!
//! Invariants: a forwarded proposal is stamped (by the group's
//! [`GroupClock`](crate::group_clock::GroupClock)) only when this node proposes it to its own
//! openraft instance (so the leader stamps time); it is never forwarded
//! again from here (the origin follows leader hints, so a proposal takes at most one hop).

use super::node_message::NodeHandlers;
use crate::error::ProposeError;
use crate::group::{Clock, Group};
use crate::membership::AdminHandler;
use crate::peer_clocks::PeerClocks;
use crate::types::{Proposal, Written};
use crate::watch;
use openraft::ReadPolicy;
use openraft::error::{LinearizableReadError, RaftError as OpenraftError};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use perdura_engine::{GroupId, MetaCommand, ShardCommandKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// A proposal as the origin node sends it to the leader: a workflow command is not stamped yet
/// (the leader stamps its own time), a meta command carries everything it needs.
// Moved once per forwarded call; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Unstamped {
    Shard(ShardCommandKind),
    Meta(MetaCommand),
}

pub(crate) struct PeerHost {
    pub node_id: u64,
    cluster_id: RwLock<Option<String>>,
    groups: RwLock<BTreeMap<GroupId, Arc<Group>>>,
    mismatch: watch::Sender<Option<String>>,
    /// Handlers of node messages (the layers above Raft).
    pub node_handlers: NodeHandlers,
    /// Serves membership calls; set once the node is open (weak: the node owns the host).
    admin: RwLock<Option<Weak<dyn AdminHandler>>>,
    /// Nodes removed from the cluster (from the meta registry): their messages are refused.
    removed: RwLock<BTreeSet<u64>>,
    /// This node's wall clock, read into every message it sends or answers.
    wall: Arc<dyn Clock>,
    /// The peers' wall clocks as their messages reported them.
    pub peer_clocks: Arc<PeerClocks>,
}

impl PeerHost {
    pub fn new(node_id: u64, cluster_id: Option<String>, wall: Arc<dyn Clock>) -> PeerHost {
        PeerHost {
            wall,
            peer_clocks: Arc::default(),
            node_id,
            cluster_id: RwLock::new(cluster_id),
            groups: RwLock::default(),
            mismatch: watch::channel(None).0,
            node_handlers: NodeHandlers::default(),
            admin: RwLock::default(),
            removed: RwLock::default(),
        }
    }

    /// This node's wall clock now, for a message's `wall_ms`.
    pub fn wall_ms(&self) -> i64 {
        self.wall.now_ms()
    }

    /// Installs the handler of membership calls.
    pub fn set_admin(&self, handler: Weak<dyn AdminHandler>) {
        *self.admin.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    pub fn admin(&self) -> Option<Arc<dyn AdminHandler>> {
        self.admin
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    /// Replaces the set of removed node ids.
    pub fn set_removed(&self, removed: BTreeSet<u64>) {
        *self.removed.write().unwrap_or_else(|p| p.into_inner()) = removed;
    }

    fn is_removed(&self, node: u64) -> bool {
        self.removed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }

    /// Makes a started group reachable by peers.
    pub fn register(&self, group: Arc<Group>) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.id, group);
    }

    /// Forgets every group (at shutdown: breaks the host → group → transport → host cycle).
    pub fn clear(&self) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn group(&self, id: GroupId) -> Option<Arc<Group>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// The cluster id this node belongs to; empty while unknown.
    pub fn cluster_id(&self) -> String {
        self.cluster_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    pub fn set_cluster_id(&self, cluster_id: String) {
        *self.cluster_id.write().unwrap_or_else(|p| p.into_inner()) = Some(cluster_id);
    }

    /// Records a mismatch (another cluster, a misaddressed node); the first one is kept.
    pub fn report_mismatch(&self, detail: String) {
        tracing::error!(%detail, "peer belongs to another cluster or node");
        self.mismatch.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(detail);
                true
            } else {
                false
            }
        });
    }

    pub fn mismatches(&self) -> watch::Receiver<Option<String>> {
        self.mismatch.subscribe()
    }

    /// Checks a request's addressing and cluster id. An empty cluster id on either side is a
    /// node that has not learnt it yet (first start) and is accepted.
    pub fn admit(&self, from: u64, to: u64, cluster_id: &str) -> Result<(), String> {
        if to != self.node_id {
            let detail = format!(
                "node {from} sent a message for node {to} to node {}: check the peer addresses",
                self.node_id
            );
            self.report_mismatch(detail.clone());
            return Err(detail);
        }
        if self.is_removed(from) {
            return Err(format!(
                "node {from} was removed from the cluster; node ids are never reused, start a \
                 fresh node with a new id and add it with `perdura cluster add-node`"
            ));
        }
        let mine = self.cluster_id();
        if !mine.is_empty() && !cluster_id.is_empty() && mine != cluster_id {
            let detail = format!(
                "node {from} belongs to cluster {cluster_id}, node {} to cluster {mine}",
                self.node_id
            );
            self.report_mismatch(detail.clone());
            return Err(detail);
        }
        Ok(())
    }

    /// Proposes to this node's own instance of `group` (no further forwarding); a workflow
    /// command is stamped here, by the group's [`GroupClock`](crate::group_clock::GroupClock).
    pub async fn propose_local(
        &self,
        group: GroupId,
        proposal: Unstamped,
        timeout: Duration,
    ) -> Result<Written, ProposeError> {
        let target = self
            .group(group)
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let proposal = match proposal {
            Unstamped::Shard(kind) => Proposal::Shard(target.stamped(kind)),
            Unstamped::Meta(command) => Proposal::Meta(command),
        };
        target.write_indexed(proposal, timeout).await
    }

    /// The linearizable read index of `group`, if this node leads it (ReadIndex: the leader
    /// confirms its leadership with a quorum first).
    pub async fn read_index(&self, group: GroupId) -> Result<u64, ProposeError> {
        let target = self
            .group(group)
            .ok_or(ProposeError::NotLeader { leader: None })?;
        match target.raft.get_read_log_id(ReadPolicy::ReadIndex).await {
            Ok((read, _applied)) => Ok(read.index()),
            Err(OpenraftError::APIError(LinearizableReadError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            // No quorum (nothing was read, nothing applied): not a leader we can use.
            Err(OpenraftError::APIError(LinearizableReadError::QuorumNotEnough(e))) => {
                tracing::debug!(%group, error = %e, "read index without quorum");
                Err(ProposeError::NotLeader { leader: None })
            }
            Err(e) => Err(ProposeError::Indeterminate(e.to_string())),
        }
    }

    /// The leader of `group` as this node knows it.
    pub fn known_leader(&self, group: GroupId) -> Option<u64> {
        let target = self.group(group)?;
        let metrics = target.raft.metrics();
        metrics.borrow_watched().current_leader
    }

    /// Waits until this node has applied `group` up to `index`; false on timeout.
    pub async fn wait_applied(&self, group: GroupId, index: u64, timeout: Duration) -> bool {
        let Some(target) = self.group(group) else {
            return false;
        };
        target
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "forwarded proposal applied locally")
            .await
            .is_ok()
    }
}
