//! The seeded fault schedule: power loss of a node (its unsynced writes lost) and its restart,
//! isolating a node, one-way link cuts, packet loss, slow links, and heals. At most `f = 1`
//! node is down at a time in a normal run, so the cluster keeps a majority. Every step is
//! recorded as a nemesis operation of process [`NEMESIS_PROCESS`].

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
}

impl Nemesis {
    pub fn new(client: Client, keep_majority: bool) -> Nemesis {
        Nemesis {
            client,
            keep_majority,
            faults: 0,
            network_faulted: false,
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
        let choice = rng.below(6);
        if self.network_faulted && choice >= 2 {
            self.network_faulted = false;
            self.record(NemesisAction::Heal, Some(FaultKind::Isolate), &[]);
            self.record(NemesisAction::Heal, Some(FaultKind::Partition), &[]);
            self.record(NemesisAction::Heal, Some(FaultKind::PacketLoss), &[]);
            self.record(NemesisAction::Heal, Some(FaultKind::Delay), &[]);
            cluster.net.heal();
            return;
        }
        if choice >= 2 {
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
            _ => {
                self.record(NemesisAction::Inject, Some(FaultKind::Delay), &[]);
                let min = rng.range(10, 200);
                cluster.net.set_delay_ms(min, min * 3);
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
        let down = cluster.down();
        self.restart(cluster, &down).await;
        self.record(NemesisAction::HealAll, None, &[]);
    }
}
