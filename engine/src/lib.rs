//! # perdura-engine — the deterministic workflow state machine
//!
//! This crate owns the *meaning* of every replicated command: given the current state of one Raft
//! group and a command stamped by the group leader, it produces the reply, the history events to
//! append, the records to persist and the notices for in-memory dispatch. It is a sans-I/O core.
//!
//! Main types:
//! * [`ShardState`] — the state of one workflow group (many workflow executions) and its
//!   [`ShardState::apply`] function; [`MetaState`] — namespaces, the slot map and the node
//!   registry ([`NodeRegistry`]) (group 0).
//! * [`ShardCommand`] / [`ShardReply`] — what goes into the log and what comes back.
//! * [`MutableState`] — one workflow execution (everything but its history events).
//! * [`SlotMap`] — data that maps the fixed slot space onto Raft groups.
//!
//! ## Invariants
//! * The engine performs no I/O, reads no clock and no random source, never awaits or spawns.
//!   Time comes from the command (`now_ms`, stamped by the leader; clamped so it never goes back).
//! * Iteration order that reaches state or output is explicit: `BTreeMap`/`BTreeSet`/`Vec` only.
//! * Event IDs of an execution are contiguous from 1; one event per command, in command order.
//! * Applying the same command sequence to two fresh states gives byte-identical encodings.

pub mod canonical;
pub mod codec;
pub mod error;
pub mod ids;
pub mod meta;
pub mod nodes;
pub mod slots;
pub mod token;

pub use error::EngineError;
pub use ids::{ExecutionKey, GroupId, SlotId, WorkflowKey};
pub use meta::{MetaCommand, MetaReply, MetaState, NamespaceRecord, SplitRecord};
pub use nodes::{NodeChanged, NodeRecord, NodeRegistry, NodeState};
pub use slots::{SLOT_COUNT, SlotMap, SlotRange};
pub use token::{TaskKind, TaskToken};
pub mod shard;

pub use shard::{
    ActivityTaskInfo, Applied, CurrentRun, DeliveryOutcome, EngineLimits, MutableState, Notice,
    OutboxEntry, OutboxKind, OutboxMessage, PendingTask, ShardCommand, ShardCommandKind,
    ShardReply, ShardState, SplitOff, StateChanges, UpdatePhase, UpdateStatus, WorkflowTaskInfo,
    speculative_events, update_status,
};
