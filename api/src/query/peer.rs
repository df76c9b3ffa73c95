//! The relay over the cluster's peer connection: [`PeerRelay`] sends relay messages as node
//! messages of [`QUERY_RELAY_SERVICE`] and hands the ones that arrive to the node's
//! [`QueryRelay`].

use super::relay::QueryRelay;
use super::transport::{RelayError, RelayFuture, RelayTransport};
use perdura_raft::timer::BoxFuture;
use perdura_raft::{MultiRaft, NodeCallError, NodeMessageHandler, QUERY_RELAY_SERVICE};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Connects `relay` to the other nodes of `raft`'s cluster (nothing to do on a single node).
pub fn connect(relay: &Arc<QueryRelay>, raft: &Arc<MultiRaft>) {
    if raft.peer_nodes().is_empty() {
        return;
    }
    raft.set_node_handler(
        QUERY_RELAY_SERVICE,
        Arc::new(Inbound {
            relay: Arc::downgrade(relay),
        }),
    );
    relay.set_transport(Arc::new(PeerRelay {
        raft: Arc::downgrade(raft),
    }));
}

/// Outgoing relay messages. Holds the router weakly: the router holds the inbound handler,
/// which holds the relay, which holds this.
struct PeerRelay {
    raft: Weak<MultiRaft>,
}

impl RelayTransport for PeerRelay {
    fn peers(&self) -> Vec<u64> {
        self.raft
            .upgrade()
            .map(|raft| raft.peer_nodes())
            .unwrap_or_default()
    }

    fn call(&self, node: u64, request: Vec<u8>, timeout: Duration) -> RelayFuture<'_> {
        Box::pin(async move {
            let raft = self.raft.upgrade().ok_or_else(|| RelayError::Unreachable {
                node,
                detail: "the node is shutting down".into(),
            })?;
            raft.call_node(node, QUERY_RELAY_SERVICE, request, timeout)
                .await
                .map_err(|error| match error {
                    NodeCallError::Refused { detail, .. } => RelayError::Protocol(detail),
                    other => RelayError::Unreachable {
                        node,
                        detail: other.to_string(),
                    },
                })
        })
    }
}

/// Incoming relay messages.
struct Inbound {
    relay: Weak<QueryRelay>,
}

impl NodeMessageHandler for Inbound {
    fn handle(&self, _from: u64, payload: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        let relay = self.relay.upgrade();
        Box::pin(async move {
            relay
                .ok_or_else(|| "the query relay is gone".to_string())?
                .handle(&payload)
        })
    }
}
