//! [`RelayTransport`]: how the query relay reaches other nodes — opaque request bytes to one
//! node, its reply bytes back. A cluster node uses the peer connection (see
//! `raft/src/peer/`); a single node has no peers ([`NoRelayPeers`]); tests wire several
//! in-process nodes together ([`InProcessRelays`]).

use super::relay::QueryRelay;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub type RelayFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, RelayError>> + Send + 'a>>;

/// Why a relay call has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The node could not be reached, or did not answer in time.
    #[error("node {node} did not answer: {detail}")]
    Unreachable { node: u64, detail: String },
    /// The node answered something this node cannot read.
    #[error("unreadable relay message: {0}")]
    Protocol(String),
}

/// Delivers relay requests to other nodes.
///
/// # Correctness
/// A call may or may not have been processed when it fails; the relay's messages are all safe
/// to lose or repeat (announcements and withdrawals carry generations, a repeated claim loses,
/// a repeated answer is refused).
pub trait RelayTransport: Send + Sync + 'static {
    /// The other nodes of the cluster.
    fn peers(&self) -> Vec<u64>;
    /// Sends one encoded request to `node`; its encoded reply.
    fn call(&self, node: u64, request: Vec<u8>, timeout: Duration) -> RelayFuture<'_>;
}

/// A single node: nobody else to tell.
pub struct NoRelayPeers;

impl RelayTransport for NoRelayPeers {
    fn peers(&self) -> Vec<u64> {
        Vec::new()
    }

    fn call(&self, node: u64, _request: Vec<u8>, _timeout: Duration) -> RelayFuture<'_> {
        Box::pin(async move {
            Err(RelayError::Unreachable {
                node,
                detail: "this node has no peers".into(),
            })
        })
    }
}

/// Several nodes' relays in one process, for tests; a node can be cut off.
#[derive(Default)]
pub struct InProcessRelays {
    nodes: Mutex<BTreeMap<u64, Weak<QueryRelay>>>,
    down: Mutex<BTreeSet<u64>>,
}

impl InProcessRelays {
    pub fn new() -> Arc<InProcessRelays> {
        Arc::new(InProcessRelays::default())
    }

    /// Connects `relay` (of node `node`) to every node that joined.
    pub fn join(self: &Arc<Self>, node: u64, relay: &Arc<QueryRelay>) {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, Arc::downgrade(relay));
        relay.set_transport(Arc::new(InProcessLink {
            net: Arc::clone(self),
            me: node,
        }));
    }

    /// Makes calls to and from `node` fail (a crashed or partitioned node).
    pub fn set_down(&self, node: u64, down: bool) {
        let mut set = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down {
            set.insert(node);
        } else {
            set.remove(&node);
        }
    }
}

struct InProcessLink {
    net: Arc<InProcessRelays>,
    me: u64,
}

impl RelayTransport for InProcessLink {
    fn peers(&self) -> Vec<u64> {
        let nodes = self.net.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.keys().copied().filter(|n| *n != self.me).collect()
    }

    fn call(&self, node: u64, request: Vec<u8>, _timeout: Duration) -> RelayFuture<'_> {
        Box::pin(async move {
            let unreachable = |detail: &str| RelayError::Unreachable {
                node,
                detail: detail.into(),
            };
            let down = {
                let down = self.net.down.lock().unwrap_or_else(|p| p.into_inner());
                down.contains(&node) || down.contains(&self.me)
            };
            if down {
                return Err(unreachable("node is down"));
            }
            let relay = self
                .net
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&node)
                .and_then(Weak::upgrade)
                .ok_or_else(|| unreachable("no such node"))?;
            // Yield once, as a network hop would.
            tokio::task::yield_now().await;
            relay.handle(&request).map_err(RelayError::Protocol)
        })
    }
}
