//! # perdura-raft — openraft wiring and the multi-group router
//!
//! Every node runs many Raft groups over one RocksDB ([`perdura_storage::Db`]): group 0 holds
//! the cluster metadata ([`perdura_engine::MetaState`]), groups `1..=G` hold workflows
//! ([`perdura_engine::ShardState`]). [`MultiRaft`] opens them, routes proposals and reads, and
//! runs one timer driver and one outbox driver ([`outbox`]) per led workflow group.
//!
//! A single node (`perdura dev`) opens with [`MultiRaft::open_single_node`]; a node of a
//! multi-node cluster with [`MultiRaft::open_cluster`] ([`cluster`]: identity, bootstrap, join,
//! leader balancing), which also serves the peer protocol ([`peer`]: one gRPC connection per node
//! pair, forwarding of proposals to the group leader, read barriers).
//!
//! Main types: [`MultiRaft`] (the router the API layer uses), [`ApplyObserver`] (notices and
//! leadership to the API), [`TypeConfig`] / [`Proposal`] / [`ProposalReply`] (openraft types),
//! [`GroupLogStore`] and [`GroupStateMachine`] (openraft storage), [`RaftTransport`] (the peer
//! network seam).
//!
//! ## Invariants
//! * **Apply and applied index are one WriteBatch.** The records an entry changes and the
//!   group's applied log id + membership are written by one atomic write
//!   ([`state_machine`]); a crash never leaves one without the other.
//! * **A client is answered only after its entry is fsynced and applied.** Log appends are
//!   acknowledged to openraft only from the group-commit writer after the fsync that carried
//!   them; openraft commits only acknowledged entries; the reply is sent after the apply write.
//! * **The apply path reads no clock.** Time enters the log in `ShardCommand::now_ms`, stamped by
//!   the proposing leader ([`MultiRaft::propose`], the timer driver) through the group's one
//!   stamping clock (`group_clock`: a hybrid of the leader's clock capped by the majority bound
//!   of the voters' clocks ([`peer_clocks`], read off every peer reply) and group time carried
//!   forward at real rate, so that neither a leader's clock running ahead fires timers early
//!   nor its past forward skew stalls them); replicas only apply it.
//! * **Purged logs are never needed**: a snapshot's records are fsynced before it is reported
//!   built, and installing one is a single synced write of the group's whole range.
//! * All writes of one group's log go through one FIFO writer, in openraft's order.
//! * **Seams for the simulation** (`perdura-chaos sim`): the clock ([`Clock`]), the transport
//!   ([`RaftTransport`]), the storage backend ([`RaftTuning::storage`]), openraft's randomness
//!   ([`runtime`]); every `select!` here is `biased` (a fixed branch order, so a seeded run
//!   replays the same choices), every watch channel (openraft's too) is [`watch`]'s, whose
//!   waiters wake in a fixed order, and [`MultiRaft::open_simulated`] opens a node of an
//!   in-process cluster.

pub mod cluster;
mod digest;
pub mod error;
pub mod fork;
mod group;
mod group_clock;
mod groups;
pub mod log_size;
pub mod log_store;
pub mod membership;
pub mod multi;
pub mod network;
pub mod observer;
pub mod outbox;
pub mod peer;
pub mod peer_clocks;
pub mod records;
pub mod replica_read;
pub mod runtime;
pub mod simulated;
pub mod snapshot;
pub mod split;
pub mod state_machine;
pub mod timer;
pub mod types;
pub mod watch;

pub use cluster::{ClusterConfig, JoinConfig};
pub use error::{ProposeError, RaftError};
pub use group::{Clock, SystemClock};
pub use log_store::GroupLogStore;
pub use multi::{
    DEFAULT_NAMESPACE_RETENTION_MS, DEFAULT_SHARD_GROUPS, MultiRaft, RaftConfig, RaftTiming,
    RaftTuning,
};
pub use network::{LoopbackTransport, NoPeers, RaftTransport};
pub use observer::{ApplyObserver, NoopObserver};
pub use peer::{NodeCallError, NodeMessageHandler, QUERY_RELAY_SERVICE};
pub use simulated::SimulatedNodeConfig;
pub use split::SplitError;
pub use state_machine::{GroupState, GroupStateMachine};
pub use types::{Proposal, ProposalReply, TypeConfig};

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod meta_test_support;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod restart_read_tests;
