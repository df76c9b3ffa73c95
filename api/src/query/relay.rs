//! [`QueryRelay`]: the node-to-node half of queries — announcing a query's routing to every
//! node, claiming a hinted query from its origin, carrying answers back to the origin — and
//! the handler of those messages when they arrive from another node.
//!
//! Every operation on a query held by this node itself short-cuts the network; every message
//! is safe to lose or repeat (see [`super::transport::RelayTransport`]).

use super::hints::{Claimable, QueryHints};
use super::registry::{Announcement, QueryRegistry, Route};
use super::transport::{NoRelayPeers, RelayError, RelayTransport};
use super::{ClaimKind, QueryAnswer, QueryId};
use perdura_engine::ExecutionKey;
use perdura_engine::codec::versioned;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use tracing::debug;

/// How long a claim or an answer waits for the origin.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an announcement or a withdrawal waits for each node.
const BROADCAST_TIMEOUT: Duration = Duration::from_secs(2);

/// A message of the relay.
#[derive(Debug, Serialize, Deserialize)]
enum RelayRequest {
    /// Origin → every node: a new routing of a query.
    Announce(Box<Announcement>),
    /// Origin → every node: drop routings up to `generation`.
    Withdraw { id: QueryId, generation: u64 },
    /// A node → origin: may my poller have this routing of the query?
    Claim {
        id: QueryId,
        generation: u64,
        execution: ExecutionKey,
        kind: ClaimKind,
    },
    /// A node → origin: I won a direct claim but could not hand the task out.
    Unclaim {
        id: QueryId,
        generation: u64,
        task_queue: String,
    },
    /// A node → origin: a worker's answer.
    Answer {
        id: QueryId,
        execution: ExecutionKey,
        kind: ClaimKind,
        answer: QueryAnswer,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum RelayReply {
    Done,
    Claimed(#[serde(with = "perdura_engine::codec::proto_opt")] Option<WorkflowQuery>),
    Answered(bool),
}

/// The query relay of one node.
pub struct QueryRelay {
    registry: Arc<QueryRegistry>,
    hints: Arc<QueryHints>,
    transport: RwLock<Arc<dyn RelayTransport>>,
}

impl QueryRelay {
    pub fn new(registry: Arc<QueryRegistry>, hints: Arc<QueryHints>) -> Arc<QueryRelay> {
        Arc::new(QueryRelay {
            registry,
            hints,
            transport: RwLock::new(Arc::new(NoRelayPeers)),
        })
    }

    /// Connects the relay to the other nodes.
    pub fn set_transport(&self, transport: Arc<dyn RelayTransport>) {
        *self.transport.write().unwrap_or_else(|p| p.into_inner()) = transport;
    }

    fn transport(&self) -> Arc<dyn RelayTransport> {
        Arc::clone(&self.transport.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn registry(&self) -> &Arc<QueryRegistry> {
        &self.registry
    }

    pub fn hints(&self) -> &Arc<QueryHints> {
        &self.hints
    }

    fn is_mine(&self, id: QueryId) -> bool {
        id.origin == self.registry.node_id()
    }

    /// Origin: routes a query held here and tells every node.
    pub fn route(&self, id: QueryId, route: Route) {
        if let Some(announcement) = self.registry.route(id, route) {
            self.publish(announcement);
        }
    }

    /// Origin: the query is over (answered, or its caller gave up): every node drops it.
    pub fn abandon(&self, id: QueryId) {
        self.withdraw_everywhere(id, u64::MAX);
    }

    fn publish(&self, announcement: Announcement) {
        self.hints.announce(announcement.clone());
        self.broadcast(RelayRequest::Announce(Box::new(announcement)));
    }

    fn withdraw_everywhere(&self, id: QueryId, generation: u64) {
        self.hints.withdraw(id, generation);
        self.broadcast(RelayRequest::Withdraw { id, generation });
    }

    /// Sends `request` to every other node without waiting; a node that misses it loses
    /// nothing (its hint is claimed in vain or expires).
    fn broadcast(&self, request: RelayRequest) {
        let transport = self.transport();
        let peers = transport.peers();
        if peers.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bytes = match versioned::encode(&request) {
            Ok(bytes) => bytes,
            Err(error) => {
                debug!(%error, "relay message does not encode");
                return;
            }
        };
        for node in peers {
            let (transport, bytes) = (Arc::clone(&transport), bytes.clone());
            runtime.spawn(async move {
                if let Err(error) = transport.call(node, bytes, BROADCAST_TIMEOUT).await {
                    debug!(node, %error, "relay broadcast not delivered");
                }
            });
        }
    }

    async fn call(&self, node: u64, request: &RelayRequest) -> Result<RelayReply, RelayError> {
        let bytes = versioned::encode(request).map_err(|e| RelayError::Protocol(e.to_string()))?;
        let reply = self.transport().call(node, bytes, CALL_TIMEOUT).await?;
        versioned::decode(&reply).map_err(|e| RelayError::Protocol(e.to_string()))
    }

    /// Claims a hinted query for this node's poller: the query if this node won it. A lost
    /// claim (or an unreachable origin) retires the hint here.
    pub async fn claim(&self, hint: &Claimable, kind: ClaimKind) -> Option<WorkflowQuery> {
        let won = if self.is_mine(hint.id) {
            self.accept_claim(hint.id, hint.generation, &hint.execution, kind)
        } else {
            let request = RelayRequest::Claim {
                id: hint.id,
                generation: hint.generation,
                execution: hint.execution.clone(),
                kind,
            };
            match self.call(hint.id.origin, &request).await {
                Ok(RelayReply::Claimed(query)) => query,
                Ok(other) => {
                    debug!(?other, "unexpected reply to a query claim");
                    None
                }
                Err(error) => {
                    debug!(id = %hint.id, %error, "query claim failed");
                    None
                }
            }
        };
        if won.is_none() {
            self.hints.withdraw(hint.id, hint.generation);
        }
        won
    }

    /// Origin: decides a claim; a winner retires the routing on every node.
    fn accept_claim(
        &self,
        id: QueryId,
        generation: u64,
        execution: &ExecutionKey,
        kind: ClaimKind,
    ) -> Option<WorkflowQuery> {
        let won = self.registry.claim(id, generation, execution, kind)?;
        self.withdraw_everywhere(id, generation);
        Some(won)
    }

    /// The winner of a direct claim could not hand the task out: the origin offers it again.
    pub async fn unclaim(&self, hint: &Claimable, task_queue: String) {
        if self.is_mine(hint.id) {
            self.accept_unclaim(hint.id, hint.generation, task_queue);
            return;
        }
        let request = RelayRequest::Unclaim {
            id: hint.id,
            generation: hint.generation,
            task_queue,
        };
        if let Err(error) = self.call(hint.id.origin, &request).await {
            debug!(id = %hint.id, %error, "query unclaim failed");
        }
    }

    fn accept_unclaim(&self, id: QueryId, generation: u64, task_queue: String) {
        if let Some(announcement) = self.registry.unclaim(id, generation, task_queue) {
            self.publish(announcement);
        }
    }

    /// Delivers a worker's answer to the query's origin. `Ok(false)`: the origin does not
    /// wait for this answer (any more).
    pub async fn answer(
        &self,
        id: QueryId,
        execution: &ExecutionKey,
        kind: ClaimKind,
        answer: QueryAnswer,
    ) -> Result<bool, RelayError> {
        if self.is_mine(id) {
            return Ok(self.registry.answer(id, execution, kind, answer));
        }
        // The origin comes from a task token, which a client can forge: a node that is not in
        // the cluster holds no query, so nobody waits for this answer (and a retry would not
        // find one either).
        if !self.transport().peers().contains(&id.origin) {
            return Ok(false);
        }
        let request = RelayRequest::Answer {
            id,
            execution: execution.clone(),
            kind,
            answer,
        };
        match self.call(id.origin, &request).await? {
            RelayReply::Answered(taken) => Ok(taken),
            other => Err(RelayError::Protocol(format!(
                "unexpected reply to an answer: {other:?}"
            ))),
        }
    }

    /// Handles a relay message from another node; the encoded reply.
    pub fn handle(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let request: RelayRequest = versioned::decode(request).map_err(|e| e.to_string())?;
        let reply = match request {
            RelayRequest::Announce(announcement) => {
                self.hints.announce(*announcement);
                RelayReply::Done
            }
            RelayRequest::Withdraw { id, generation } => {
                self.hints.withdraw(id, generation);
                RelayReply::Done
            }
            RelayRequest::Claim {
                id,
                generation,
                execution,
                kind,
            } => RelayReply::Claimed(self.accept_claim(id, generation, &execution, kind)),
            RelayRequest::Unclaim {
                id,
                generation,
                task_queue,
            } => {
                self.accept_unclaim(id, generation, task_queue);
                RelayReply::Done
            }
            RelayRequest::Answer {
                id,
                execution,
                kind,
                answer,
            } => RelayReply::Answered(self.registry.answer(id, &execution, kind, answer)),
        };
        versioned::encode(&reply).map_err(|e| e.to_string())
    }
}
