//! Keeps a cluster node's peer layer in step with the meta registry: every registered node's
//! peer address is known to the transport (so forwarding and status reach nodes added after
//! this one started), and removed nodes are refused by the peer service.

use crate::membership::orchestrate::AdminHandler;
use crate::multi::MultiRaft;
use perdura_engine::{GroupId, NodeState};
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

/// Installs the node's membership handler on its peer service and starts the registry sync.
/// Does nothing on a single node.
pub(crate) fn start(raft: &Arc<MultiRaft>) {
    let Some(cluster) = &raft.cluster else {
        return;
    };
    let handler: Weak<dyn AdminHandler> = Arc::downgrade(raft) as Weak<dyn AdminHandler>;
    cluster.host.set_admin(handler);
    let Some(meta) = raft.raft(GroupId::META) else {
        return;
    };
    let mut metrics = meta.metrics();
    let weak = Arc::downgrade(raft);
    tokio::spawn(async move {
        loop {
            {
                let Some(raft) = weak.upgrade() else { return };
                apply_registry(&raft);
            }
            // Ends when the meta group stops.
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

fn apply_registry(raft: &MultiRaft) {
    let Some(cluster) = &raft.cluster else {
        return;
    };
    let registry = raft.read_meta(|meta| meta.node_registry.clone());
    let mut removed = BTreeSet::new();
    let known = cluster.transport.peer_addrs();
    for node in registry.nodes.values() {
        if node.state == NodeState::Removed {
            removed.insert(node.id);
            continue;
        }
        if node.id != raft.node_id()
            && !node.peer_addr.is_empty()
            && known.get(&node.id) != Some(&node.peer_addr)
        {
            cluster
                .transport
                .set_peer_addr(node.id, node.peer_addr.clone());
        }
    }
    cluster.host.set_removed(removed);
}
