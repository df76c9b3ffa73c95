//! The peer gRPC service: one unary method (`perdura.peer.v1.Peer/Call`) that admits a
//! [`PeerRequest`] (protocol version, addressee, cluster id), finds the group in the
//! [`PeerHost`] and hands the decoded payload to openraft or to the host's forwarding handlers.
//!
//! A request rejected before any group saw it answers a status marked with
//! [`REJECTED_KEY`] (the sender knows it had no effect): FAILED_PRECONDITION for another cluster
//! or node, UNAVAILABLE for a group this node has not opened (yet), INVALID_ARGUMENT for an
//! undecodable request. Outcomes of forwarded proposals travel inside the reply payload, never
//! as a status.

use super::client::MAX_MESSAGE_BYTES;
use super::host::{PeerHost, Unstamped};
use super::node_message::NodeCall;
use super::proto::{self, MessageKind, PROTOCOL_VERSION, PeerReply, PeerRequest, REJECTED_KEY};
use crate::error::ProposeError;
use crate::types::{Snapshot, SnapshotMeta, TypeConfig, Vote, Written};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use perdura_engine::GroupId;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::{Code, Status};

/// The tonic service of the peer protocol. Add it to a `tonic::transport::Server` on the node's
/// peer address (see [`crate::peer::serve`]).
#[derive(Clone)]
pub struct PeerService {
    host: Arc<PeerHost>,
    propose_timeout: Duration,
}

impl PeerService {
    pub(crate) fn new(host: Arc<PeerHost>, propose_timeout: Duration) -> PeerService {
        PeerService {
            host,
            propose_timeout,
        }
    }
}

impl tonic::server::NamedService for PeerService {
    const NAME: &'static str = proto::SERVICE_NAME;
}

fn rejected(code: Code, message: String) -> Status {
    let mut status = Status::new(code, message);
    status.metadata_mut().insert(
        REJECTED_KEY,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    status
}

fn encode_reply<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    proto::encode(value).map_err(|e| Status::internal(format!("encoding the reply: {e}")))
}

fn decode_request<T: serde::de::DeserializeOwned>(
    kind: MessageKind,
    bytes: &[u8],
) -> Result<T, Status> {
    proto::decode(bytes).map_err(|e| {
        rejected(
            Code::InvalidArgument,
            format!("undecodable {} request: {e}", kind.label()),
        )
    })
}

/// A fatal openraft error (the group stopped): the sender treats it as unreachable.
fn fatal(group: GroupId, e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("group {group} stopped: {e}"))
}

struct CallSvc(PeerService);

impl tonic::server::UnaryService<PeerRequest> for CallSvc {
    type Response = PeerReply;
    type Future = BoxFuture<tonic::Response<PeerReply>, Status>;

    fn call(&mut self, request: tonic::Request<PeerRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            let payload = service.handle(request.into_inner()).await?;
            Ok(tonic::Response::new(PeerReply {
                cluster_id: service.host.cluster_id(),
                payload,
                wall_ms: service.host.wall_ms(),
            }))
        })
    }
}

impl PeerService {
    async fn handle(&self, request: PeerRequest) -> Result<Vec<u8>, Status> {
        if request.version != PROTOCOL_VERSION {
            return Err(rejected(
                Code::FailedPrecondition,
                format!(
                    "peer protocol version {} from node {}, this node speaks {PROTOCOL_VERSION}",
                    request.version, request.from_node
                ),
            ));
        }
        let kind = MessageKind::from_wire(request.kind).ok_or_else(|| {
            rejected(
                Code::InvalidArgument,
                format!("unknown peer message kind {}", request.kind),
            )
        })?;
        // A joining node addresses its first membership call to node 0: whoever answers here.
        let to_node = if kind == MessageKind::Admin && request.to_node == 0 {
            self.host.node_id
        } else {
            request.to_node
        };
        self.host
            .admit(request.from_node, to_node, &request.cluster_id)
            .map_err(|detail| rejected(Code::FailedPrecondition, detail))?;
        if kind == MessageKind::Hello {
            // Admitted: the reply envelope carries this node's cluster id.
            return Ok(Vec::new());
        }
        if kind == MessageKind::Node {
            let call: NodeCall = decode_request(kind, &request.payload)?;
            let reply: Result<Vec<u8>, String> = self
                .host
                .node_handlers
                .dispatch(request.from_node, call)
                .await;
            return encode_reply(&reply);
        }
        if kind == MessageKind::Admin {
            let call: crate::membership::PeerAdminCall = decode_request(kind, &request.payload)?;
            let handler = self.host.admin().ok_or_else(|| {
                rejected(
                    Code::Unavailable,
                    format!("node {} is not open yet", self.host.node_id),
                )
            })?;
            let reply = handler.serve(call).await;
            return encode_reply(&reply);
        }
        let group = GroupId(request.group);
        let target = self.host.group(group).ok_or_else(|| {
            rejected(
                Code::Unavailable,
                format!(
                    "group {group} is not open on node {} (yet)",
                    self.host.node_id
                ),
            )
        })?;
        let raft = &target.raft;
        let bytes = &request.payload;
        match kind {
            MessageKind::Append | MessageKind::Heartbeat => {
                let rpc: AppendEntriesRequest<TypeConfig> = decode_request(kind, bytes)?;
                let reply = raft
                    .append_entries(rpc)
                    .await
                    .map_err(|e| fatal(group, e))?;
                encode_reply(&reply)
            }
            MessageKind::Vote => {
                let rpc: VoteRequest<TypeConfig> = decode_request(kind, bytes)?;
                let reply = raft.vote(rpc).await.map_err(|e| fatal(group, e))?;
                encode_reply(&reply)
            }
            MessageKind::PreVote => {
                let rpc: VoteRequest<TypeConfig> = decode_request(kind, bytes)?;
                let reply = raft.pre_vote(rpc).await.map_err(|e| fatal(group, e))?;
                encode_reply(&reply)
            }
            MessageKind::Snapshot => {
                let (vote, meta, data): (Vote, SnapshotMeta, Vec<u8>) =
                    decode_request(kind, bytes)?;
                let snapshot = Snapshot {
                    meta,
                    snapshot: std::io::Cursor::new(data),
                };
                let reply = raft
                    .install_full_snapshot(vote, snapshot)
                    .await
                    .map_err(|e| fatal(group, e))?;
                encode_reply(&reply)
            }
            MessageKind::TransferLeader => {
                let rpc: TransferLeaderRequest<TypeConfig> = decode_request(kind, bytes)?;
                let reply = raft
                    .handle_transfer_leader(rpc)
                    .await
                    .map_err(|e| fatal(group, e))?;
                encode_reply(&reply)
            }
            MessageKind::Propose => {
                let proposal: Unstamped = decode_request(kind, bytes)?;
                let reply: Result<Written, ProposeError> = self
                    .host
                    .propose_local(group, proposal, self.propose_timeout)
                    .await;
                encode_reply(&reply)
            }
            MessageKind::ReadIndex => {
                let reply: Result<u64, ProposeError> = self.host.read_index(group).await;
                encode_reply(&reply)
            }
            MessageKind::Hello | MessageKind::Node | MessageKind::Admin => Ok(Vec::new()),
        }
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for PeerService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != proto::CALL_PATH {
            return Box::pin(async move {
                Ok(Status::unimplemented("unknown peer method").into_http())
            });
        }
        let service = self.clone();
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<PeerReply, PeerRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_max_message_size_config(Some(MAX_MESSAGE_BYTES), Some(MAX_MESSAGE_BYTES));
            Ok(grpc.unary(CallSvc(service), req).await)
        })
    }
}

/// Serves the peer protocol on `listener` until `shutdown` resolves.
pub async fn serve(
    service: PeerService,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
