//! The peer protocol's wire messages: one hand-written prost envelope per direction, and the
//! bincode/serde encoding of the payloads inside it.
//!
//! Every request names its sender, its intended receiver and the sender's cluster id, so that a
//! node can reject a message from another cluster (or one sent to the wrong address) before it
//! reaches a Raft group. Payloads are the openraft / Perdura types themselves, bincode-encoded:
//! both ends run the same binary, so the encoding needs no schema evolution beyond the
//! [`PROTOCOL_VERSION`] check.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The one gRPC method of the peer service.
pub const CALL_PATH: &str = "/perdura.peer.v1.Peer/Call";
/// The peer service's gRPC name.
pub const SERVICE_NAME: &str = "perdura.peer.v1.Peer";
/// Bumped whenever a payload encoding changes; a mismatch is rejected.
pub const PROTOCOL_VERSION: u32 = 1;
/// Metadata key on a status the peer *server* produced on purpose (a rejection before any group
/// saw the message): the request definitely had no effect.
pub const REJECTED_KEY: &str = "perdura-peer-rejected";

/// One message to a peer node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerRequest {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The sender's cluster id; empty while the sender does not know it yet (first start).
    #[prost(string, tag = "2")]
    pub cluster_id: String,
    #[prost(uint64, tag = "3")]
    pub from_node: u64,
    /// The node the sender believes it is talking to.
    #[prost(uint64, tag = "4")]
    pub to_node: u64,
    #[prost(uint32, tag = "5")]
    pub group: u32,
    /// A [`MessageKind`].
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// The bincode encoding of the kind's request type.
    #[prost(bytes = "vec", tag = "7")]
    pub payload: Vec<u8>,
    /// The sender's wall clock (ms since the Unix epoch) when it sent this; 0 if it did not
    /// say. Sent, not used: a request's reading bounds its sender's clock from below only,
    /// and leaders cap their clock by upper bounds, which replies give
    /// ([`crate::peer_clocks`]).
    #[prost(int64, tag = "8")]
    pub wall_ms: i64,
}

/// The answer to a [`PeerRequest`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerReply {
    /// The answering node's cluster id (empty if unknown).
    #[prost(string, tag = "1")]
    pub cluster_id: String,
    /// The bincode encoding of the kind's reply type.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    /// The answering node's wall clock when it answered; 0 if it did not say. With the instant
    /// its request was sent, an upper bound of that clock ([`crate::peer_clocks`]).
    #[prost(int64, tag = "3")]
    pub wall_ms: i64,
}

/// What a [`PeerRequest`] carries. The numbers are the wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageKind {
    /// openraft AppendEntries with entries.
    Append = 1,
    /// openraft AppendEntries without entries (a heartbeat).
    Heartbeat = 2,
    Vote = 3,
    PreVote = 4,
    /// A whole snapshot: `(vote, snapshot meta, data)`.
    Snapshot = 5,
    TransferLeader = 6,
    /// A proposal forwarded to the group leader ([`crate::peer::Unstamped`]).
    Propose = 7,
    /// A follower asks the leader for a linearizable read index.
    ReadIndex = 8,
    /// Exchanges cluster ids only (no group, empty payload): a joining node asks every peer.
    Hello = 9,
    /// A node-to-node message of a layer above Raft (no group): a
    /// [`crate::peer::node_message::NodeCall`] for the handler its service names.
    Node = 10,
    /// A membership call ([`crate::membership::PeerAdminCall`]): a node's report, a membership
    /// step on a group leader, or a joining node's handshake. `to_node` 0 means "whoever
    /// answers at this address" (a joining node does not know the ids of its peers yet).
    Admin = 11,
}

impl MessageKind {
    pub fn from_wire(value: i32) -> Option<MessageKind> {
        Some(match value {
            1 => MessageKind::Append,
            2 => MessageKind::Heartbeat,
            3 => MessageKind::Vote,
            4 => MessageKind::PreVote,
            5 => MessageKind::Snapshot,
            6 => MessageKind::TransferLeader,
            7 => MessageKind::Propose,
            8 => MessageKind::ReadIndex,
            9 => MessageKind::Hello,
            10 => MessageKind::Node,
            11 => MessageKind::Admin,
            _ => return None,
        })
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Append => "append",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Vote => "vote",
            MessageKind::PreVote => "pre_vote",
            MessageKind::Snapshot => "snapshot",
            MessageKind::TransferLeader => "transfer_leader",
            MessageKind::Propose => "propose",
            MessageKind::ReadIndex => "read_index",
            MessageKind::Hello => "hello",
            MessageKind::Node => "node",
            MessageKind::Admin => "admin",
        }
    }
}

/// Encodes a payload.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Decodes a payload; trailing bytes are an error (a truncated or mixed-up message).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}
