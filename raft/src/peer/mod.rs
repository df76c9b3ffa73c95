//! The peer transport of a multi-node cluster: one gRPC connection per node pair carries every
//! group's Raft RPCs (AppendEntries, votes, whole snapshots, leader transfer) and the
//! node-to-node calls (forwarded proposals, read index).
//!
//! * [`proto`] — the wire envelope (hand-written prost) and the bincode payload encoding.
//! * [`client`] — [`GrpcTransport`], the [`crate::RaftTransport`] over lazily connected tonic
//!   channels, and the classification of call failures.
//! * [`server`] — [`PeerService`], the tonic service that admits requests (protocol version,
//!   addressee, cluster id) and hands them to the groups.
//! * `host` — the node's registry of open groups and its cluster id, shared by both sides.
//! * `forward` — proposals and read barriers from any node, served by the group leader.
//! * [`node_message`] — opaque node-to-node messages of the layers above (the query relay).
//! * [`stats`] — messages and bytes per group and kind.
//! * [`reachability`] — one log line per peer going away or coming back.
//!
//! [`crate::MultiRaft::open_cluster`] starts all of it on the node's peer address; nothing else
//! has to serve the peer service.

pub mod client;
pub(crate) mod forward;
pub(crate) mod host;
pub mod node_message;
pub mod proto;
pub mod reachability;
pub mod server;
pub mod stats;

pub use client::{CallError, GrpcTransport, PeerTimeouts};
pub use host::Unstamped;
pub use node_message::{NodeCallError, NodeMessageHandler, QUERY_RELAY_SERVICE};
pub use server::{PeerService, serve};
pub use stats::{Traffic, TrafficTable};
