//! Time in the simulation: [`SimClock`], the runtime's virtual time (the harness clock every
//! operation is recorded by), and [`NodeClocks`], each node's wall clock as virtual time plus
//! that node's skew, which the nemesis moves.
//!
//! A node's clock is what its leaders stamp into commands and what its peer messages carry
//! ([`perdura_raft::peer_clocks`] readings, through the simulated network). Nothing here reads
//! the host's clock: a seed replays to the same trace.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Milliseconds since the Unix epoch at virtual time zero (2026-01-01): event times look real.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// The runtime's virtual time: timers fire when the virtual clock says, never by the host's.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    start: tokio::time::Instant,
}

impl SimClock {
    pub fn new() -> SimClock {
        SimClock {
            start: tokio::time::Instant::now(),
        }
    }

    /// Virtual time since the run began.
    pub fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.start)
    }
}

impl Default for SimClock {
    fn default() -> SimClock {
        SimClock::new()
    }
}

impl perdura_raft::Clock for SimClock {
    fn now_ms(&self) -> i64 {
        EPOCH_MS + i64::try_from(self.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// Every node's wall clock: the virtual clock plus the node's skew (0 unless skewed).
#[derive(Debug)]
pub struct NodeClocks {
    base: SimClock,
    skew_ms: Mutex<BTreeMap<u64, i64>>,
}

impl NodeClocks {
    pub fn new(base: SimClock) -> Arc<NodeClocks> {
        Arc::new(NodeClocks {
            base,
            skew_ms: Mutex::new(BTreeMap::new()),
        })
    }

    /// `node`'s clock reading now.
    pub fn now_ms(&self, node: u64) -> i64 {
        let skew = self
            .skew_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .copied()
            .unwrap_or(0);
        perdura_raft::Clock::now_ms(&self.base).saturating_add(skew)
    }

    /// Sets `node`'s clock `skew_ms` away from the virtual clock (a jump, as NTP stepping it).
    pub fn set_skew(&self, node: u64, skew_ms: i64) {
        self.skew_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, skew_ms);
    }

    /// Every clock back on virtual time.
    pub fn reset(&self) {
        self.skew_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The clock of `node`, as its Raft groups read it.
    pub fn of(self: &Arc<Self>, node: u64) -> NodeClock {
        NodeClock {
            clocks: self.clone(),
            node,
        }
    }
}

/// One node's wall clock (see [`NodeClocks`]).
#[derive(Clone, Debug)]
pub struct NodeClock {
    clocks: Arc<NodeClocks>,
    node: u64,
}

impl perdura_raft::Clock for NodeClock {
    fn now_ms(&self) -> i64 {
        self.clocks.now_ms(self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_node_clock_is_virtual_time_plus_its_skew() {
        let base = SimClock::new();
        let clocks = NodeClocks::new(base);
        let start = perdura_raft::Clock::now_ms(&base);
        assert_eq!(start, EPOCH_MS);
        clocks.set_skew(2, 300_000);
        clocks.set_skew(3, -5_000);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(perdura_raft::Clock::now_ms(&clocks.of(1)), start + 1_500);
        assert_eq!(perdura_raft::Clock::now_ms(&clocks.of(2)), start + 301_500);
        assert_eq!(clocks.now_ms(3), start - 3_500);
        clocks.reset();
        assert_eq!(clocks.now_ms(2), start + 1_500);
    }
}
