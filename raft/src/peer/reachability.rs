//! Which peers answered their last call: one log line when a peer stops answering and one when
//! it answers again, instead of one per failed Raft message (with a peer down, every group's
//! replication fails several times a second).

use std::collections::BTreeSet;
use std::sync::Mutex;

/// The peers whose last call failed before reaching them.
#[derive(Default)]
pub struct PeerReachability {
    down: Mutex<BTreeSet<u64>>,
}

impl PeerReachability {
    /// A call to `node` got an answer. Returns whether this is a change (it was down).
    pub fn answered(&self, node: u64) -> bool {
        let back = self
            .down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        if back {
            tracing::info!(node, "peer answers again");
        }
        back
    }

    /// A call to `node` could not reach it. Returns whether this is a change (it was up).
    pub fn unreachable(&self, node: u64, detail: &str) -> bool {
        let lost = self
            .down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node);
        if lost {
            tracing::warn!(
                node,
                error = detail,
                "peer unreachable; retrying with backoff"
            );
        }
        lost
    }

    pub fn is_down(&self, node: u64) -> bool {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_transition_once() {
        let peers = PeerReachability::default();
        assert!(!peers.answered(2), "up at start: no change");
        assert!(peers.unreachable(2, "connect: refused"));
        assert!(!peers.unreachable(2, "connect: refused"), "already down");
        assert!(peers.is_down(2));
        assert!(!peers.is_down(3));
        assert!(peers.answered(2));
        assert!(!peers.answered(2));
        assert!(!peers.is_down(2));
    }
}
