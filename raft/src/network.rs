//! The transport seam between Raft groups on different nodes.
//!
//! openraft talks to peers through [`RaftNetworkFactory`] / [`RaftNetworkV2`]; this module adapts
//! those per-group, per-peer clients onto one node-level [`RaftTransport`], which carries every
//! group's RPCs to a peer node (so a gRPC transport can multiplex all groups over one connection
//! per node pair). A single-node cluster uses [`NoPeers`].

use crate::peer_clocks::PeerClocks;
use crate::timer::BoxFuture;
use crate::types::{Snapshot, SnapshotData, TypeConfig, Vote};
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use perdura_engine::GroupId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type Rpc<'a, T> = BoxFuture<'a, Result<T, RPCError<TypeConfig>>>;

/// Delivers one group's Raft RPCs to a peer node. Implementations own connection management;
/// errors use openraft's classification (`Unreachable` asks openraft to back off).
pub trait RaftTransport: Send + Sync + 'static {
    fn append_entries(
        &self,
        target: u64,
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Rpc<'_, AppendEntriesResponse<TypeConfig>>;

    fn vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>>;

    /// Sends a whole snapshot (`snapshot.snapshot` is the encoded blob).
    fn full_snapshot(
        &self,
        target: u64,
        group: GroupId,
        vote: Vote,
        snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>>;

    /// A Pre-Vote round. The default grants, as openraft does for a network without Pre-Vote.
    fn pre_vote(
        &self,
        _target: u64,
        _group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move { Ok(VoteResponse::new(rpc.vote, None, true)) })
    }

    /// Asks `target` to take over the group's leadership. The default cannot deliver it.
    fn transfer_leader(
        &self,
        target: u64,
        _group: GroupId,
        _rpc: TransferLeaderRequest<TypeConfig>,
    ) -> Rpc<'_, TransferLeaderResponse<TypeConfig>> {
        Box::pin(async move { Err(RPCError::Unreachable(unreachable(target))) })
    }

    /// openraft met `node` with address `addr` in a membership config; a transport that has no
    /// address for it yet may use this one.
    fn learn_addr(&self, _node: u64, _addr: &str) {}

    /// A group of this node started: an in-process transport (the simulation's) learns its
    /// handle, so peers reach it. Network transports ignore it.
    fn group_started(&self, _node: u64, _group: GroupId, _raft: &crate::types::GroupRaft) {}

    /// The peers' wall clocks as this transport's messages reported them
    /// ([`crate::peer_clocks`]). `None` (the default): the transport carries no readings, as
    /// for one node or for nodes of one process that share one clock; leaders then trust
    /// their own clock.
    fn peer_clocks(&self) -> Option<Arc<PeerClocks>> {
        None
    }
}

/// The transport of a single-node cluster: there is nobody to talk to.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPeers;

fn unreachable(target: u64) -> Unreachable<TypeConfig> {
    Unreachable::from_string(format!("node {target}: this node has no peer transport"))
}

impl RaftTransport for NoPeers {
    fn append_entries(
        &self,
        target: u64,
        _group: GroupId,
        _rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Rpc<'_, AppendEntriesResponse<TypeConfig>> {
        Box::pin(async move { Err(RPCError::Unreachable(unreachable(target))) })
    }

    fn vote(
        &self,
        target: u64,
        _group: GroupId,
        _rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move { Err(RPCError::Unreachable(unreachable(target))) })
    }

    fn full_snapshot(
        &self,
        target: u64,
        _group: GroupId,
        _vote: Vote,
        _snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        Box::pin(async move { Err(StreamingError::Unreachable(unreachable(target))) })
    }
}

/// openraft's network factory for one group.
#[derive(Clone)]
pub struct GroupNetworkFactory {
    group: GroupId,
    transport: Arc<dyn RaftTransport>,
}

impl GroupNetworkFactory {
    pub fn new(group: GroupId, transport: Arc<dyn RaftTransport>) -> GroupNetworkFactory {
        GroupNetworkFactory { group, transport }
    }
}

/// openraft's client for one (group, peer) pair.
pub struct GroupNetwork {
    group: GroupId,
    target: u64,
    transport: Arc<dyn RaftTransport>,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetworkFactory {
    type Network = GroupNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GroupNetwork {
        self.transport.learn_addr(target, &node.addr);
        GroupNetwork {
            group: self.group,
            target,
            transport: self.transport.clone(),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for GroupNetwork {
    type SnapshotData = SnapshotData;

    /// After an `Unreachable` error openraft waits these delays between attempts to replicate
    /// to the peer (until one succeeds): 100 ms doubling to 2 s, instead of retrying at every
    /// heartbeat in every group while a peer is down.
    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(unreachable_peer_delays()))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.transport
            .append_entries(self.target, self.group, rpc)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.transport.vote(self.target, self.group, rpc).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.transport.pre_vote(self.target, self.group, rpc).await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.transport
            .transfer_leader(self.target, self.group, rpc)
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = self.transport.full_snapshot(self.target, self.group, vote, snapshot) => r,
        }
    }
}

/// 100 ms, 200 ms, … doubling up to [`MAX_UNREACHABLE_BACKOFF`], then constant.
fn unreachable_peer_delays() -> impl Iterator<Item = Duration> + Send + 'static {
    (0u32..).map(|attempt| {
        Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)))
            .min(MAX_UNREACHABLE_BACKOFF)
    })
}

/// The longest wait between replication attempts to an unreachable peer: a peer that comes
/// back is caught up within this, well below any client timeout.
const MAX_UNREACHABLE_BACKOFF: Duration = Duration::from_secs(2);

/// An in-process transport: every registered (node, group) is reachable by direct calls. For
/// multi-node tests and simulations; `unregister` models a crashed or partitioned node.
#[derive(Default)]
pub struct LoopbackTransport {
    peers: std::sync::RwLock<std::collections::BTreeMap<(u64, GroupId), crate::types::GroupRaft>>,
}

impl LoopbackTransport {
    pub fn register(&self, node: u64, group: GroupId, raft: crate::types::GroupRaft) {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((node, group), raft);
    }

    pub fn unregister(&self, node: u64, group: GroupId) {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(node, group));
    }

    fn peer(
        &self,
        node: u64,
        group: GroupId,
    ) -> Result<crate::types::GroupRaft, Unreachable<TypeConfig>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers
            .get(&(node, group))
            .cloned()
            .ok_or_else(|| unreachable(node))
    }
}

impl RaftTransport for LoopbackTransport {
    fn append_entries(
        &self,
        target: u64,
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Rpc<'_, AppendEntriesResponse<TypeConfig>> {
        Box::pin(async move {
            let raft = self.peer(target, group)?;
            raft.append_entries(rpc)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
        })
    }

    fn vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            let raft = self.peer(target, group)?;
            raft.vote(rpc)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
        })
    }

    fn pre_vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            let raft = self.peer(target, group)?;
            raft.pre_vote(rpc)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
        })
    }

    fn transfer_leader(
        &self,
        target: u64,
        group: GroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
    ) -> Rpc<'_, TransferLeaderResponse<TypeConfig>> {
        Box::pin(async move {
            let raft = self.peer(target, group)?;
            raft.handle_transfer_leader(rpc)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
        })
    }

    fn full_snapshot(
        &self,
        target: u64,
        group: GroupId,
        vote: Vote,
        snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        Box::pin(async move {
            let raft = self.peer(target, group)?;
            raft.install_full_snapshot(vote, snapshot)
                .await
                .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
        })
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn unreachable_peers_are_retried_with_doubling_delays_up_to_two_seconds() {
        let delays: Vec<u64> = unreachable_peer_delays()
            .take(8)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }
}
