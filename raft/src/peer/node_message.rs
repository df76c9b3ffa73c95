//! Node-to-node messages of the layers above Raft (e.g. the API's query relay): opaque bytes
//! to a handler registered under a service number, its bytes back, over the same peer
//! connection as the Raft traffic ([`MessageKind::Node`](super::proto::MessageKind::Node)).
//!
//! The Raft layer neither reads nor orders these messages: a handler gets each call as it
//! arrives and must itself tolerate loss, repetition and reordering (a call that fails may or
//! may not have been handled, see [`NodeCallError`]).

use crate::timer::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Service number of the API's query relay.
pub const QUERY_RELAY_SERVICE: u32 = 1;

/// Handles the node messages of one service.
pub trait NodeMessageHandler: Send + Sync + 'static {
    /// One message from node `from`; the reply bytes, or an error the caller gets as
    /// [`NodeCallError::Refused`].
    fn handle(&self, from: u64, payload: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>>;
}

/// The payload of a [`MessageKind::Node`](super::proto::MessageKind::Node) request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NodeCall {
    pub service: u32,
    pub payload: Vec<u8>,
}

/// Why a node call has no reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeCallError {
    /// Definitely not handled: no connection, no such peer, or this is a single node.
    #[error("not delivered to node {node}: {detail}")]
    NotSent { node: u64, detail: String },
    /// Maybe handled: timeout or connection lost after sending.
    #[error("no answer from node {node}: {detail}")]
    Unknown { node: u64, detail: String },
    /// The peer has no handler for the service, or its handler failed.
    #[error("node {node} refused: {detail}")]
    Refused { node: u64, detail: String },
}

/// The handlers of this node, by service number.
#[derive(Default)]
pub(crate) struct NodeHandlers {
    handlers: RwLock<BTreeMap<u32, Arc<dyn NodeMessageHandler>>>,
}

impl NodeHandlers {
    pub fn set(&self, service: u32, handler: Arc<dyn NodeMessageHandler>) {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service, handler);
    }

    /// Handles an encoded [`NodeCall`]; the encoded `Result<Vec<u8>, String>` reply.
    pub async fn dispatch(&self, from: u64, call: NodeCall) -> Result<Vec<u8>, String> {
        let handler = self
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&call.service)
            .cloned()
            .ok_or_else(|| format!("no handler for node service {}", call.service))?;
        handler.handle(from, call.payload).await
    }
}
