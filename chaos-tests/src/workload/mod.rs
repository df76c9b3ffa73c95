//! The chaos harness's side of Perdura's APIs: the end-of-run final read through each node's
//! `ReadReplica` admin RPC ([`replica`]), with Temporal events reduced to what the checkers read
//! ([`events`], [`payload`]) and the harness clock ([`clock`]).

pub mod clock;
pub mod events;
pub mod nodes;
pub mod payload;
pub mod replica;
