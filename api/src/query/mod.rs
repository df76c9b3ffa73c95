//! Workflow queries (QueryWorkflow) across the cluster: the relay.
//!
//! Queries are read-only and never written to history, so they live only in memory
//! (TEMPORAL-WIRE.md §1.8): losing one — a restart, a client that gave up — loses nothing
//! durable; the client sees an error and may retry. In a cluster the client's call arrives at
//! one node and the worker that must answer polls another, so a query travels
//! (`docs/design/006-query-relay.md`):
//!
//! 1. **Origin.** The node that received QueryWorkflow keeps the query and the waiting call in
//!    its [`QueryRegistry`] and decides its route from the run's (linearized) state:
//!    * *attach*: a workflow task of the run is scheduled or started — the query rides on the
//!      next workflow task that starts, in the poll response's `queries` map, and is answered
//!      in RespondWorkflowTaskCompleted `query_results`;
//!    * *direct*: the run is closed or has no workflow task pending — the query becomes a
//!      query task of its own on the run's task queue, answered by RespondQueryTaskCompleted.
//!
//!    Each routing has a generation; the origin announces it to every node ([`QueryRelay`]).
//!    It re-routes as the run's history moves on (a task ended without answering it, the run
//!    became idle), which it sees because every node applies every group.
//! 2. **Hints.** Every node (the origin too) records the announcement in its [`QueryHints`];
//!    a direct routing is also an entry of its task queue.
//! 3. **Claim.** A node about to hand a query to its poller — a direct query task, or the
//!    attached queries of a workflow task it starts — first claims it from the origin. Only
//!    the first claim of the current generation wins, so exactly one worker gets each
//!    routing. The winner's routing is withdrawn everywhere.
//! 4. **Answer.** The worker's answer arrives at whichever node it talks to; the answer names
//!    the origin ([`QueryId`] is the attached query's key and is inside the direct query
//!    task's token), which that node forwards it to. The origin answers the client and
//!    withdraws the query everywhere; hints also expire with the query's deadline.
//!
//! Everything here is a hint or a wait: no message of the relay changes replicated state.

mod answer;
mod hints;
mod id;
mod peer;
mod registry;
mod relay;
mod transport;

pub use answer::QueryAnswer;
pub use hints::{Claimable, QueryHints};
pub use id::QueryId;
pub use peer::connect;
pub use registry::{Announcement, QueryRegistry, QueryTicket, Route, Stage};
pub use relay::QueryRelay;
pub use transport::{InProcessRelays, NoRelayPeers, RelayError, RelayFuture, RelayTransport};

use serde::{Deserialize, Serialize};

/// How a query is handed to a worker, hence which answer the origin expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimKind {
    /// As a direct query task.
    Direct,
    /// Attached to the workflow task whose WorkflowTaskStarted event has this ID.
    Attached { started_event_id: i64 },
}

#[cfg(test)]
mod tests;
