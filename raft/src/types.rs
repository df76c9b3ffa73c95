//! The openraft type configuration and the replicated payloads.

use perdura_engine::{EngineError, MetaCommand, MetaReply, ShardCommand, ShardReply};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One replicated command: a meta-group command (group 0) or a workflow-group command.
// One proposal per client call, moved into the log once: boxing the large variant would only add
// an allocation per workflow command.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Proposal {
    Meta(MetaCommand),
    Shard(ShardCommand),
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the command's name: payloads can be large and carry user data.
        match self {
            Proposal::Meta(MetaCommand::Bootstrap { .. }) => write!(f, "Meta(Bootstrap)"),
            Proposal::Meta(MetaCommand::RegisterNamespace(r)) => {
                write!(f, "Meta(RegisterNamespace {})", r.name)
            }
            Proposal::Meta(MetaCommand::BeginSplit { source, slots }) => {
                write!(f, "Meta(BeginSplit {source} {slots})")
            }
            Proposal::Meta(MetaCommand::FinishSplit { new_group }) => {
                write!(f, "Meta(FinishSplit {new_group})")
            }
            Proposal::Meta(MetaCommand::AddNode { id, voter, .. }) => {
                write!(f, "Meta(AddNode {id} voter={voter})")
            }
            Proposal::Meta(MetaCommand::RemoveNode { id }) => write!(f, "Meta(RemoveNode {id})"),
            Proposal::Meta(MetaCommand::PromoteNode { id }) => write!(f, "Meta(PromoteNode {id})"),
            Proposal::Shard(cmd) => {
                let debug = format!("{:?}", cmd.kind);
                let name = debug.split([' ', '(', '{']).next().unwrap_or("?");
                write!(f, "Shard({name} @{})", cmd.now_ms)
            }
        }
    }
}

/// What applying one log entry answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProposalReply {
    Meta(Result<MetaReply, EngineError>),
    Shard(Result<ShardReply, EngineError>),
    /// A blank or membership entry (written by Raft itself): nothing to answer.
    Blank,
}

/// An applied proposal: the reply and the log index it was applied at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub reply: ProposalReply,
    pub index: u64,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of every Perdura group.
    pub TypeConfig:
        D = Proposal,
        R = ProposalReply,
        NodeId = u64,
        Node = openraft::BasicNode,
        AsyncRuntime = crate::runtime::PerduraRuntime,
);

/// A Raft group handle of this crate.
pub type GroupRaft = openraft::Raft<TypeConfig, crate::state_machine::GroupStateMachine>;
/// A log entry.
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// A log id.
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// Last membership, with the log id that carried it.
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot's data: the versioned encoding of [`crate::snapshot::SnapshotBlob`].
pub type SnapshotData = std::io::Cursor<Vec<u8>>;
/// A snapshot with its data.
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
