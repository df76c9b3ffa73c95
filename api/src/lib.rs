//! # perdura-api — the Temporal gRPC frontend
//!
//! Serves `temporal.api.workflowservice.v1.WorkflowService` (and an `OperatorService` stub) over
//! tonic, with server traits generated in our build from the protos shipped in
//! `temporalio-protos` (see `build.rs`) and that crate's message types.
//!
//! What it owns:
//! * input validation and the mapping of every typed error to the gRPC status and details the
//!   Temporal SDKs decode ([`status`]) — the only place that knows about gRPC status codes;
//! * matching ([`matching`]): in-memory task queues and long-polling pollers, rebuilt from the
//!   replicated pending-task index; a task is handed to a poller only after its "started" record
//!   is committed through Raft, so it goes to exactly one poller;
//! * history long polls ([`history_watch`]);
//! * workflow queries, which live only in memory ([`query`]);
//! * the workflows started/completed counters ([`workflow_metrics`]), the gRPC latency layer
//!   ([`rpc_metrics`]) and the layer that answers a panicking call INTERNAL ([`panic_guard`]).
//! * the cluster operator API `perdura.admin.v1.ClusterAdmin` ([`admin`]).
//!
//! Invariants:
//! * Every state change is a proposal to a Raft group ([`perdura_raft::MultiRaft::propose`]); this
//!   crate writes nothing itself and answers a client only after the proposal was applied.
//! * In-memory queues are hints: losing them loses no task.

pub mod admin;
pub mod frontend;
pub mod history_watch;
pub mod limits;
pub mod matching;
pub mod observer;
pub mod operator;
pub mod panic_guard;
pub mod pb;
pub mod query;
mod rpc;
pub mod rpc_metrics;
pub mod status;
pub mod validate;
pub mod workflow_metrics;

pub use frontend::Frontend;
pub use observer::NodeObserver;
