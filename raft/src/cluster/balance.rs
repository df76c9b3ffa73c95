//! The leader balancer: spreads workflow-group leaders evenly over the live voters.
//!
//! Every node runs one. Each round (every `interval`) it counts, from its own replicas' view,
//! how many workflow groups each node leads. A node that leads more than `ceil(G / live)` groups
//! — `live` being itself plus the followers that acknowledged it within two election timeouts —
//! hands ONE of its groups to the live, fully caught-up follower that leads the fewest, with
//! openraft's leader transfer. One transfer per node per round keeps it from oscillating; after a
//! failed node returns, the overloaded nodes give it groups round by round until no node is
//! above the cap. The meta group is not balanced (it carries little traffic).

use crate::group::{Group, is_ready_leader};
use crate::groups::GroupSet;
use crate::types::TypeConfig;
use crate::watch;
use openraft::type_config::async_runtime::watch::WatchReceiver;
use openraft::{Instant as _, RaftMetrics};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct LeaderBalancer {
    pub node_id: u64,
    pub meta: Arc<Group>,
    /// The node's workflow groups, read each round (a split may add one).
    pub shards: Arc<GroupSet>,
    pub interval: Duration,
}

impl LeaderBalancer {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.round().await;
        }
    }

    /// One balancing round: at most one leader transfer.
    async fn round(&self) {
        let metrics: Vec<(Arc<Group>, RaftMetrics<TypeConfig>)> = self
            .shards
            .values()
            .into_iter()
            .map(|g| {
                let m = g.raft.metrics().borrow_watched().clone();
                (g, m)
            })
            .collect();
        let mut led: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, m) in &metrics {
            if let Some(leader) = m.current_leader {
                *led.entry(leader).or_default() += 1;
            }
        }
        let mine: Vec<&(Arc<Group>, RaftMetrics<TypeConfig>)> = metrics
            .iter()
            .filter(|(_, m)| is_ready_leader(m, self.node_id))
            .collect();
        let Some((_, sample)) = mine.first() else {
            return;
        };
        let live = self.live_voters(sample);
        let cap = metrics.len().div_ceil(live.len().max(1));
        let my_count = led.get(&self.node_id).copied().unwrap_or(0);
        if my_count <= cap {
            return;
        }
        let Some(to) = live
            .iter()
            .filter(|n| **n != self.node_id)
            .min_by_key(|n| (led.get(n).copied().unwrap_or(0), **n))
            .copied()
        else {
            return;
        };
        if led.get(&to).copied().unwrap_or(0) + 1 >= my_count {
            return;
        }
        // A group whose log `to` has fully replicated: the transfer then completes at once.
        let group = mine.iter().find(|(_, m)| {
            let last = m.last_log_index;
            m.replication
                .as_ref()
                .and_then(|r| r.get(&to).cloned().flatten())
                .is_some_and(|matched| Some(matched.index) == last)
        });
        let Some((group, _)) = group else {
            return;
        };
        tracing::info!(group = %group.id, from = self.node_id, to, my_count, cap, "transferring group leadership to balance leaders");
        metrics::counter!("perdura_raft_leader_transfers_total", "group" => group.id.0.to_string())
            .increment(1);
        if let Err(e) = group.raft.trigger().transfer_leader(to).await {
            tracing::warn!(group = %group.id, error = %e, "leader transfer failed");
        }
    }

    /// This node and the voters that acknowledged its heartbeats recently (leader view).
    fn live_voters(&self, leader_metrics: &RaftMetrics<TypeConfig>) -> Vec<u64> {
        let fresh = Duration::from_millis(2 * self.election_timeout_max_ms());
        let voters: Vec<u64> = leader_metrics
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        let heartbeat = leader_metrics.heartbeat.as_ref();
        voters
            .into_iter()
            .filter(|id| {
                *id == self.node_id
                    || heartbeat
                        .and_then(|h| h.get(id).cloned().flatten())
                        .is_some_and(|acked| acked.elapsed() < fresh)
            })
            .collect()
    }

    fn election_timeout_max_ms(&self) -> u64 {
        self.meta.raft.config().election_timeout_max
    }
}
