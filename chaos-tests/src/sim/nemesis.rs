//! The seeded fault schedule: power loss of a node (its unsynced writes lost) and its restart,
//! isolating a node, one-way link cuts, packet loss, slow links, clock skew (a random node's
//! clock, or the clock of the node leading the most groups, jumps 5–300 s ahead or up to 60 s
//! back), and heals. At most `f = 1` node is down at a time in a normal run, so the cluster
//! keeps a majority. Every step is recorded as a nemesis operation of process
//! [`NEMESIS_PROCESS`].

use super::client::Client;
use super::cluster::SimCluster;
use crate::history::{FaultKind, NemesisAction, NemesisOp, Op, OpCompletion};
use crate::ids::{NodeId, ProcessId};

/// The nemesis's process ID in the history.
pub const NEMESIS_PROCESS: u64 = 1_000;

pub struct Nemesis {
    client: Client,
    /// Keep a majority up (normal runs); the broken-disk run crashes everyone.
    keep_majority: bool,
    faults: u64,
    /// A network fault (isolation, cut link, loss, delay) is active: the next step heals it.
    network_faulted: bool,
    /// Skew clocks too.
    clock_faults: bool,
    /// A clock is skewed: healed with the network.
    clock_skewed: bool,
}

/// The up node that believes it leads the most groups (the lowest ID among equals).
fn busiest_leader(cluster: &SimCluster) -> Option<u64> {
    let mut busiest: Option<(usize, u64)> = None;
    for node in cluster.up() {
        let Some(raft) = cluster.node(node) else {
            continue;
        };
        let led = raft
            .shard_groups()
            .into_iter()
            .filter(|group| raft.leader_of(*group) == Some(node))
            .count();
        if busiest.is_none_or(|(most, _)| led > most) {
            busiest = Some((led, node));
        }
    }
    busiest.map(|(_, node)| node)
}

impl Nemesis {
    pub fn new(client: Client, keep_majority: bool, clock_faults: bool) -> Nemesis {
        Nemesis {
            client,
            keep_majority,
            faults: 0,
            network_faulted: false,
            clock_faults,
            clock_skewed: false,
        }
    }

    /// Fault episodes injected so far.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    fn record(&mut self, action: NemesisAction, fault: Option<FaultKind>, nodes: &[u64]) {
        if action == NemesisAction::Inject {
            self.faults += 1;
        }
        let op = Op::Nemesis(NemesisOp {
            action,
            fault,
            nodes: nodes.iter().map(|n| NodeId(*n)).collect(),
        });
        let now = self.client.now();
        let mut recorder = self
            .client
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Ok(pending) = recorder.invoke(ProcessId(NEMESIS_PROCESS), op, None, now) {
            let _ = recorder.complete(pending, OpCompletion::Ok(None), now);
        }
    }

    /// One seeded step.
    pub async fn act(&mut self, cluster: &mut SimCluster) {
        let rng = self.client.rng.clone();
        let members = cluster.members.clone();
        // One network fault at a time, healed by the next step that is not a crash or restart:
        // runs stay short, and most of the time a majority can make progress.
        // A clock skew may last across network faults (a skewed node that becomes leader when
        // the leader is cut off); the next clock step heals it.
        let choice = rng.below(if self.clock_faults { 8 } else { 6 });
        if self.network_faulted && (2..6).contains(&choice) {
            self.heal_network(cluster);
            return;
        }
        if self.clock_skewed && choice >= 6 {
            self.heal_clocks(cluster);
            return;
        }
        if (2..6).contains(&choice) {
            self.network_faulted = true;
        }
        match choice {
            0 | 1 => {
                let down = cluster.down();
                if !down.is_empty() {
                    return self.restart(cluster, &down).await;
                }
                if let Some(&node) = rng.pick(&cluster.up()) {
                    self.record(
                        NemesisAction::Inject,
                        Some(FaultKind::LoseUnsyncedWrites),
                        &[node],
                    );
                    cluster.crash(node).await;
                }
            }
            2 => {
                if let Some(&node) = rng.pick(&members) {
                    self.record(NemesisAction::Inject, Some(FaultKind::Isolate), &[node]);
                    cluster.net.partition(&[node], &members);
                }
            }
            3 => {
                let (Some(&from), Some(&to)) = (rng.pick(&members), rng.pick(&members)) else {
                    return;
                };
                if from != to {
                    self.record(
                        NemesisAction::Inject,
                        Some(FaultKind::Partition),
                        &[from, to],
                    );
                    cluster.net.cut_one_way(from, to);
                }
            }
            4 => {
                self.record(NemesisAction::Inject, Some(FaultKind::PacketLoss), &[]);
                cluster.net.set_loss_percent(rng.range(5, 40) as u32);
            }
            5 => {
                self.record(NemesisAction::Inject, Some(FaultKind::Delay), &[]);
                let min = rng.range(10, 200);
                cluster.net.set_delay_ms(min, min * 3);
            }
            6 => {
                if let Some(&node) = rng.pick(&cluster.up()) {
                    let skew_ms = if rng.chance(70) {
                        rng.range(5_000, 300_001) as i64
                    } else {
                        -(rng.range(5_000, 60_001) as i64)
                    };
                    self.skew(cluster, node, skew_ms);
                }
            }
            _ => {
                if let Some(node) = busiest_leader(cluster) {
                    let skew_ms = rng.range(5_000, 300_001) as i64;
                    self.skew(cluster, node, skew_ms);
                }
            }
        }
        if self.keep_majority {
            // Never more than f = 1 node down: restart the others.
            let down = cluster.down();
            if down.len() > 1 {
                self.restart(cluster, &down[1..]).await;
            }
        }
    }

    fn heal_network(&mut self, cluster: &SimCluster) {
        self.network_faulted = false;
        self.record(NemesisAction::Heal, Some(FaultKind::Isolate), &[]);
        self.record(NemesisAction::Heal, Some(FaultKind::Partition), &[]);
        self.record(NemesisAction::Heal, Some(FaultKind::PacketLoss), &[]);
        self.record(NemesisAction::Heal, Some(FaultKind::Delay), &[]);
        cluster.net.heal();
    }

    fn heal_clocks(&mut self, cluster: &SimCluster) {
        self.clock_skewed = false;
        self.record(NemesisAction::Heal, Some(FaultKind::ClockSkew), &[]);
        cluster.clocks.reset();
    }

    fn skew(&mut self, cluster: &SimCluster, node: u64, skew_ms: i64) {
        self.record(NemesisAction::Inject, Some(FaultKind::ClockSkew), &[node]);
        cluster.clocks.set_skew(node, skew_ms);
        self.clock_skewed = true;
    }

    async fn restart(&mut self, cluster: &mut SimCluster, nodes: &[u64]) {
        for &node in nodes {
            if cluster.start(node).await.is_ok() {
                self.record(
                    NemesisAction::Heal,
                    Some(FaultKind::LoseUnsyncedWrites),
                    &[node],
                );
            }
        }
    }

    /// Power loss of every node at once, then every node restarts.
    pub async fn crash_all(&mut self, cluster: &mut SimCluster) {
        let up = cluster.up();
        self.record(
            NemesisAction::Inject,
            Some(FaultKind::LoseUnsyncedWrites),
            &up,
        );
        for node in &up {
            cluster.crash(*node).await;
        }
    }

    /// The end of the faults: the network healed, every down node restarted.
    pub async fn heal_all(&mut self, cluster: &mut SimCluster) {
        cluster.net.heal();
        cluster.clocks.reset();
        self.clock_skewed = false;
        let down = cluster.down();
        self.restart(cluster, &down).await;
        self.record(NemesisAction::HealAll, None, &[]);
    }
}
