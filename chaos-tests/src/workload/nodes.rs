//! The nodes under test as the workload and the final read address them: node `N` is the `N`-th
//! address of `--nodes` (1-based, as the harness numbers its network namespaces), so a history
//! and a final read made from the same list name nodes alike.

use crate::ids::NodeId;
use std::time::Duration;
use thiserror::Error;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Error)]
pub enum NodeAddrError {
    #[error("no node addresses given")]
    Empty,
    #[error("invalid node address {addr:?}: {detail}")]
    Invalid { addr: String, detail: String },
}

/// One node: its harness number and its gRPC address (`HOST:PORT` or a URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    pub id: NodeId,
    pub addr: String,
}

impl NodeAddr {
    /// Numbers `addrs` 1, 2, … in order.
    pub fn numbered(addrs: &[String]) -> Result<Vec<NodeAddr>, NodeAddrError> {
        if addrs.is_empty() {
            return Err(NodeAddrError::Empty);
        }
        Ok(addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| NodeAddr {
                id: NodeId(i as u64 + 1),
                addr: addr.trim().to_owned(),
            })
            .collect())
    }

    fn url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// A channel that connects on first use (an unreachable node fails its calls, not this).
    pub fn channel(&self) -> Result<Channel, NodeAddrError> {
        let endpoint =
            Endpoint::from_shared(self.url()).map_err(|error| NodeAddrError::Invalid {
                addr: self.addr.clone(),
                detail: error.to_string(),
            })?;
        Ok(endpoint
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy())
    }
}
