//! The simulated cluster: N Perdura nodes (MultiRaft + engine) in one process, each on its own
//! in-memory disk, talking through the [`SimNetwork`], stamping time from its own clock
//! ([`NodeClocks`]: virtual time plus the node's skew).
//!
//! A crash is a power loss: the node's disk drops every unsynced write and detaches the
//! handles of the dying node (whose tasks then fail their I/O), the network forgets the node,
//! and its `MultiRaft` is shut down. A restart opens the node again on what its disk kept.

use super::clock::{NodeClocks, SimClock};
use super::network::SimNetwork;
use perdura_raft::{
    MultiRaft, NoopObserver, RaftError, RaftTiming, RaftTuning, SimulatedNodeConfig,
};
use perdura_storage::{MemoryDisks, StorageBackend};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Every node of the simulated cluster, up or down.
pub struct SimCluster {
    pub members: Vec<u64>,
    pub shard_groups: u32,
    pub net: Arc<SimNetwork>,
    pub disks: Arc<MemoryDisks>,
    pub clock: SimClock,
    /// Each node's wall clock (virtual time plus its skew).
    pub clocks: Arc<NodeClocks>,
    nodes: BTreeMap<u64, Arc<MultiRaft>>,
}

pub fn data_dir(node: u64) -> PathBuf {
    PathBuf::from(format!("/sim/node-{node}"))
}

impl SimCluster {
    pub fn new(
        nodes: u64,
        shard_groups: u32,
        net: Arc<SimNetwork>,
        clocks: Arc<NodeClocks>,
        clock: SimClock,
    ) -> SimCluster {
        SimCluster {
            members: (1..=nodes).collect(),
            shard_groups,
            net,
            disks: MemoryDisks::new(),
            clock,
            clocks,
            nodes: BTreeMap::new(),
        }
    }

    fn tuning(&self, node: u64) -> RaftTuning {
        RaftTuning {
            propose_timeout: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(20),
            clock: Arc::new(self.clocks.of(node)),
            transport: self.net.transport(node),
            timing: Some(RaftTiming {
                heartbeat_interval_ms: 100,
                election_timeout_min_ms: 500,
                election_timeout_max_ms: 1000,
            }),
            snapshot_every_logs: 64,
            logs_kept_after_snapshot: 16,
            storage: StorageBackend::Memory(self.disks.clone()),
            ..RaftTuning::default()
        }
    }

    /// Starts (or restarts) `node` on its disk.
    pub async fn start(&mut self, node: u64) -> Result<(), RaftError> {
        self.net.set_down(node, false);
        let config = SimulatedNodeConfig {
            node_id: node,
            data_dir: data_dir(node),
            members: self.members.clone(),
            shard_groups: self.shard_groups,
        };
        let raft =
            MultiRaft::open_simulated(config, Arc::new(NoopObserver), self.tuning(node)).await?;
        self.nodes.insert(node, raft);
        Ok(())
    }

    /// Power loss of `node`: unsynced writes are lost; returns how many write operations were.
    pub async fn crash(&mut self, node: u64) -> usize {
        self.net.set_down(node, true);
        let lost = self
            .disks
            .disk(&data_dir(node).join("rocksdb"))
            .crash()
            .lost_ops;
        if let Some(raft) = self.nodes.remove(&node) {
            raft.shutdown().await;
        }
        lost
    }

    /// Makes `node`'s disk acknowledge syncs without making anything durable (a broken
    /// configuration, to prove the simulation catches what it causes).
    pub fn break_sync(&self, node: u64) {
        self.disks
            .disk(&data_dir(node).join("rocksdb"))
            .set_ack_before_sync(true);
    }

    pub fn node(&self, node: u64) -> Option<&Arc<MultiRaft>> {
        self.nodes.get(&node)
    }

    pub fn up(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn down(&self) -> Vec<u64> {
        self.members
            .iter()
            .copied()
            .filter(|n| !self.nodes.contains_key(n))
            .collect()
    }

    /// Clean stop of every node (end of run).
    pub async fn shutdown(&mut self) {
        for (_, raft) in std::mem::take(&mut self.nodes) {
            raft.shutdown().await;
        }
    }
}
