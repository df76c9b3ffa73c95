//! [`GrpcTransport`]: the client side of the peer protocol, one lazily connected tonic
//! [`Channel`] (one HTTP/2 connection) per peer node, shared by every group.
//!
//! Implements [`RaftTransport`] for openraft's traffic and offers [`GrpcTransport::call`] for the
//! node-to-node calls (forwarded proposals, read index). Failures are classified by what they
//! mean for the request: [`CallError::NotSent`] (refused before any peer code saw it: connection
//! refused, unknown address, rejected by the peer's admission check) versus
//! [`CallError::Unknown`] (the request may have been processed: timeout, connection lost after
//! sending). openraft gets every failure as `Unreachable`, so it backs off.

use super::host::PeerHost;
use super::proto::{
    self, CALL_PATH, MessageKind, PROTOCOL_VERSION, PeerReply, PeerRequest, REJECTED_KEY,
};
use super::reachability::PeerReachability;
use super::stats::PeerStats;
use crate::network::RaftTransport;
use crate::peer_clocks::PeerClocks;
use crate::timer::BoxFuture;
use crate::types::{SnapshotMeta, TypeConfig, Vote};
use openraft::error::{RPCError, StreamingError, Unreachable};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use perdura_engine::GroupId;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Largest peer message (a snapshot travels whole).
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Timeouts of the peer client.
#[derive(Clone, Copy, Debug)]
pub struct PeerTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// AppendEntries, votes, leader transfer.
    pub raft_rpc: Duration,
    /// A whole snapshot.
    pub snapshot: Duration,
}

impl Default for PeerTimeouts {
    fn default() -> PeerTimeouts {
        PeerTimeouts {
            connect: Duration::from_secs(1),
            raft_rpc: Duration::from_secs(5),
            snapshot: Duration::from_secs(120),
        }
    }
}

/// Why a peer call has no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Definitely not processed by the peer.
    #[error("not delivered to node {node}: {detail}")]
    NotSent { node: u64, detail: String },
    /// Maybe processed.
    #[error("no answer from node {node}: {detail}")]
    Unknown { node: u64, detail: String },
}

/// The gRPC peer client. See the module docs.
pub struct GrpcTransport {
    host: Arc<PeerHost>,
    addrs: RwLock<BTreeMap<u64, String>>,
    channels: Mutex<BTreeMap<u64, Channel>>,
    stats: Arc<PeerStats>,
    timeouts: PeerTimeouts,
    reachability: PeerReachability,
}

impl GrpcTransport {
    pub(crate) fn new(
        host: Arc<PeerHost>,
        addrs: BTreeMap<u64, String>,
        stats: Arc<PeerStats>,
        timeouts: PeerTimeouts,
    ) -> GrpcTransport {
        GrpcTransport {
            host,
            addrs: RwLock::new(addrs),
            channels: Mutex::default(),
            stats,
            timeouts,
            reachability: PeerReachability::default(),
        }
    }

    /// Sets (or changes) a peer's `host:port`; a changed address gets a new connection.
    pub fn set_peer_addr(&self, node: u64, addr: String) {
        let mut addrs = self.addrs.write().unwrap_or_else(|p| p.into_inner());
        if addrs.get(&node) != Some(&addr) {
            addrs.insert(node, addr);
            self.channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node);
        }
    }

    /// Forgets a peer's address and connection.
    pub fn forget_peer(&self, node: u64) {
        self.addrs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }

    /// The known peer addresses.
    pub fn peer_addrs(&self) -> BTreeMap<u64, String> {
        self.addrs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn channel(&self, node: u64) -> Result<Channel, CallError> {
        let not_sent = |detail: String| CallError::NotSent { node, detail };
        if let Some(channel) = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
        {
            return Ok(channel.clone());
        }
        let addr = self
            .addrs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
            .ok_or_else(|| not_sent("no peer address known".into()))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| not_sent(format!("bad peer address {addr:?}: {e}")))?
            .connect_timeout(self.timeouts.connect)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, channel.clone());
        Ok(channel)
    }

    /// One peer call: sends `payload` (an encoded request of `kind`) for `group` to `node`,
    /// answers the encoded reply.
    pub(crate) async fn call(
        &self,
        node: u64,
        group: GroupId,
        kind: MessageKind,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let result = self.call_once(node, group, kind, payload, timeout).await;
        match &result {
            Ok(_) => {
                self.reachability.answered(node);
            }
            Err(CallError::NotSent { detail, .. }) if detail.starts_with("connect") => {
                self.reachability.unreachable(node, detail);
            }
            Err(CallError::Unknown { detail, .. }) if detail.contains("timed out") => {
                self.reachability.unreachable(node, detail);
            }
            Err(_) => {}
        }
        result
    }

    async fn call_once(
        &self,
        node: u64,
        group: GroupId,
        kind: MessageKind,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let channel = self.channel(node)?;
        // Before the request leaves: the peer reads the clock it answers with after this.
        let sent = tokio::time::Instant::now();
        let request = PeerRequest {
            version: PROTOCOL_VERSION,
            cluster_id: self.host.cluster_id(),
            from_node: self.host.node_id,
            to_node: node,
            group: group.0,
            kind: kind as i32,
            payload,
            wall_ms: self.host.wall_ms(),
        };
        let request_len = request.encoded_len();
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let codec = tonic_prost::ProstCodec::<PeerRequest, PeerReply>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(CALL_PATH);
        let mut request = tonic::Request::new(request);
        request.set_timeout(timeout);
        let call = async {
            grpc.ready().await.map_err(|e| CallError::NotSent {
                node,
                detail: format!("connection not ready: {e}"),
            })?;
            grpc.unary(request, path, codec)
                .await
                .map_err(|status| self.classify(node, status))
        };
        let reply = match tokio::time::timeout(timeout, call).await {
            Ok(reply) => reply?.into_inner(),
            Err(_) => {
                return Err(CallError::Unknown {
                    node,
                    detail: format!("{} timed out after {timeout:?}", kind.label()),
                });
            }
        };
        self.stats
            .record(group, kind, request_len + reply.encoded_len());
        let theirs = &reply.cluster_id;
        let mine = self.host.cluster_id();
        if !theirs.is_empty() && !mine.is_empty() && *theirs != mine {
            let detail = format!("node {node} belongs to cluster {theirs}, this node to {mine}");
            self.host.report_mismatch(detail.clone());
            // The peer processed the request although it is of another cluster: its answer is
            // not ours to use.
            return Err(CallError::Unknown { node, detail });
        }
        self.host
            .peer_clocks
            .observe_reply(node, reply.wall_ms, sent);
        Ok(reply.payload)
    }

    fn classify(&self, node: u64, status: tonic::Status) -> CallError {
        if status.metadata().get(REJECTED_KEY).is_some() {
            if status.code() == tonic::Code::FailedPrecondition {
                self.host.report_mismatch(status.message().to_string());
            }
            return CallError::NotSent {
                node,
                detail: status.message().to_string(),
            };
        }
        if is_connect_error(&status) {
            return CallError::NotSent {
                node,
                detail: format!("connect: {}", status.message()),
            };
        }
        CallError::Unknown {
            node,
            detail: format!("{}: {}", status.code(), status.message()),
        }
    }

    /// Exchanges cluster ids with every known peer at once (each bounded by `timeout`). A peer of
    /// another cluster is reported to the host; an unreachable one is skipped.
    pub(crate) async fn hello_all(&self, timeout: Duration) {
        let peers: Vec<u64> = self.peer_addrs().into_keys().collect();
        let calls = peers.into_iter().map(|node| async move {
            let result = self
                .call(node, GroupId::META, MessageKind::Hello, Vec::new(), timeout)
                .await;
            if let Err(e) = result {
                tracing::debug!(node, error = %e, "hello not answered");
            }
        });
        futures::future::join_all(calls).await;
    }

    async fn raft_call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        node: u64,
        group: GroupId,
        kind: MessageKind,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, Unreachable<TypeConfig>> {
        let payload = proto::encode(request).map_err(Unreachable::from_string)?;
        let reply = self
            .call(node, group, kind, payload, timeout)
            .await
            .map_err(|e| Unreachable::from_string(e.to_string()))?;
        proto::decode(&reply).map_err(|e| {
            Unreachable::from_string(format!("{} reply from node {node}: {e}", kind.label()))
        })
    }
}

/// Was the request refused before it left this node (no connection could be made)?
fn is_connect_error(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::NotFound
            )
        {
            return true;
        }
        if error.to_string().contains("tcp connect error") {
            return true;
        }
        source = error.source();
    }
    false
}

type Rpc<'a, T> = BoxFuture<'a, Result<T, RPCError<TypeConfig>>>;

impl RaftTransport for GrpcTransport {
    fn peer_clocks(&self) -> Option<Arc<PeerClocks>> {
        Some(self.host.peer_clocks.clone())
    }

    fn append_entries(
        &self,
        target: u64,
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Rpc<'_, AppendEntriesResponse<TypeConfig>> {
        Box::pin(async move {
            let kind = if rpc.entries.is_empty() {
                MessageKind::Heartbeat
            } else {
                MessageKind::Append
            };
            self.raft_call(target, group, kind, &rpc, self.timeouts.raft_rpc)
                .await
                .map_err(RPCError::Unreachable)
        })
    }

    fn vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            self.raft_call(
                target,
                group,
                MessageKind::Vote,
                &rpc,
                self.timeouts.raft_rpc,
            )
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn pre_vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            self.raft_call(
                target,
                group,
                MessageKind::PreVote,
                &rpc,
                self.timeouts.raft_rpc,
            )
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn full_snapshot(
        &self,
        target: u64,
        group: GroupId,
        vote: Vote,
        snapshot: crate::types::Snapshot,
    ) -> BoxFuture<'_, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        Box::pin(async move {
            let request: (Vote, SnapshotMeta, Vec<u8>) =
                (vote, snapshot.meta, snapshot.snapshot.into_inner());
            self.raft_call(
                target,
                group,
                MessageKind::Snapshot,
                &request,
                self.timeouts.snapshot,
            )
            .await
            .map_err(StreamingError::Unreachable)
        })
    }

    fn transfer_leader(
        &self,
        target: u64,
        group: GroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
    ) -> Rpc<'_, TransferLeaderResponse<TypeConfig>> {
        Box::pin(async move {
            self.raft_call(
                target,
                group,
                MessageKind::TransferLeader,
                &rpc,
                self.timeouts.raft_rpc,
            )
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn learn_addr(&self, node: u64, addr: &str) {
        let known = self
            .addrs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&node);
        if !known && !addr.is_empty() {
            self.set_peer_addr(node, addr.to_string());
        }
    }
}
