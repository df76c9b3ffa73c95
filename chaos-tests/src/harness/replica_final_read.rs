//! The harness's final read through each member's `ReadReplica` admin RPC
//! ([`crate::workload::replica`]): per node and group, the applied index, the state digest, the
//! committed log entries the node holds and every run's history, all read from the node's own
//! replica. The checkers can then compare replicas (invariants 2 and 8), which the frontend
//! fallback cannot.

use super::final_read::{FinalReadFuture, FinalReadInput, FinalReader};
use crate::workload::nodes::NodeAddr;
use crate::workload::replica::read_cluster;

pub struct ReplicaFinalReader;

impl FinalReader for ReplicaFinalReader {
    fn name(&self) -> &'static str {
        "replica (ReadReplica of every member: logs, digests, histories)"
    }

    fn read(&self, input: FinalReadInput) -> FinalReadFuture {
        Box::pin(async move {
            let nodes: Vec<NodeAddr> = input
                .endpoints
                .iter()
                .map(|(id, addr)| NodeAddr {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect();
            Ok(read_cluster(&nodes, input.read_at).await?)
        })
    }
}
