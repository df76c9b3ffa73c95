//! The deterministic simulation (`perdura-chaos sim`): a whole Perdura cluster (3 or 5 nodes of
//! MultiRaft + engine, each on an in-memory disk that tracks synced vs unsynced writes) in one
//! process, on one thread, under virtual time, driven by ONE seed.
//!
//! * [`cluster`] — the nodes and their disks; crash = power loss.
//! * [`clock`] — virtual time, and each node's clock: virtual time plus its skew.
//! * [`network`] — openraft's transport seam, simulated: delays, loss, partitions, and the
//!   clock reading every message carries.
//! * [`client`] / [`workload`] — seeded operations recorded with the crate's `Recorder`.
//! * [`nemesis`] — the seeded fault schedule.
//! * [`final_read`] — the end-of-run read of every node, for `check_all`.
//!
//! ## Determinism
//! One seed gives one trace (history + final read, hashed into [`SimReport::trace_hash`]): a
//! violating seed replays exactly. The seed drives the network, the nemesis, the workload and
//! openraft's election timeouts (`perdura_raft::runtime::seed_thread_rng`). The runtime is
//! tokio's current-thread scheduler with paused time, so tasks run in the order they are woken
//! and time advances only when every task waits; no thread is spawned (the in-memory disks
//! write inline). What keeps the wake order fixed: Perdura's `select!`s are `biased`, openraft's
//! selects are biased too, and every watch channel — openraft's and Perdura's — is
//! `perdura_raft::watch`, whose waiters wake first-come first-served. (tokio's own `watch`
//! parks each waiter on one of eight queues picked by tokio's per-thread generator, so the
//! receivers of one send woke in a random order — openraft's replication streams of a leader,
//! say — and seed 1019 gave three traces in three runs; tokio lets a runtime seed that generator
//! only under `--cfg tokio_unstable`, where [`run`] also does.) Deadlines on the sim's path read
//! the runtime's clock (`tokio::time::Instant`), never the host's. `tests/sim.rs`
//! `a_seed_replays_to_the_same_trace` and `--check-determinism` check it.

pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod convert;
pub mod final_read;
pub mod nemesis;
pub mod network;
pub mod rng;
pub mod workload;

use crate::checker::{CheckConfig, CheckSummary, check_all};
use crate::history::{FinalRead, History, JsonlError, PairingError, Recorder, read_history};
use client::Client;
use clock::{NodeClocks, SimClock};
use cluster::SimCluster;
use network::SimNetwork;
use rng::SimRng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use workload::Workload;

/// One simulation run.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    /// Workload rounds (each: every client process runs one operation, or the nemesis acts).
    pub rounds: u64,
    pub clients: u64,
    /// A broken disk that acknowledges syncs without making anything durable, and a crash of
    /// every node at once before the final read: the checkers must report lost starts.
    pub ack_before_sync: bool,
    /// Clock faults, and timeouts they could fire early: the nemesis skews a node's clock (a
    /// random node's, or the clock of the node leading the most groups) and one fresh start in
    /// three asks for a 1–4 s run timeout. Off: the runs of the seeds before clock faults.
    pub clock_faults: bool,
    /// Leaders stamp their own clock, not their clock capped by the majority bound (messages carry no clock
    /// readings): the behaviour before the majority bound, kept to prove that the simulation
    /// catches the run timeouts a skewed leader fires early.
    pub leaders_stamp_own_clock: bool,
}

impl SimConfig {
    pub fn new(seed: u64, nodes: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            rounds: 60,
            clients: 3,
            ack_before_sync: false,
            clock_faults: true,
            leaders_stamp_own_clock: false,
        }
    }

    /// The command that reproduces this run.
    pub fn reproduce_command(&self) -> String {
        let mut command = format!(
            "cargo run -p perdura-chaos -- sim --seed {} --nodes {} --rounds {}",
            self.seed, self.nodes, self.rounds
        );
        if self.ack_before_sync {
            command.push_str(" --ack-before-sync");
        }
        if !self.clock_faults {
            command.push_str(" --no-clock-faults");
        }
        if self.leaders_stamp_own_clock {
            command.push_str(" --leaders-stamp-own-clock");
        }
        command
    }
}

#[derive(Debug, Error)]
pub enum SimError {
    #[error("the simulated cluster did not start: {0}")]
    Start(String),
    #[error("the simulated cluster never elected a meta leader to bootstrap it")]
    Bootstrap,
    #[error("the recorded history does not read back: {0}")]
    History(#[from] JsonlError),
    #[error("the recorded history does not pair: {0}")]
    Pairing(#[from] PairingError),
    #[error("building the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What a run produced.
pub struct SimReport {
    pub config: SimConfig,
    pub summary: CheckSummary,
    /// FNV-1a of the history and the final read: equal for two deterministic runs of a seed.
    pub trace_hash: u64,
    pub history_jsonl: Vec<u8>,
    pub final_read: FinalRead,
    pub faults: u64,
    pub virtual_ms: u128,
}

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Runs one seed on a fresh current-thread runtime with paused (virtual) time.
pub fn run(config: SimConfig) -> Result<SimReport, SimError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    // tokio's own generator (the branch order of an unbiased select!, the queue a waiter of
    // tokio's watch parks on) can be seeded only in a `--cfg tokio_unstable` build. Nothing on
    // the simulation's path uses it (see the module docs); seeding it too costs nothing.
    #[cfg(tokio_unstable)]
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(
        &config.seed.to_le_bytes(),
    ));
    let runtime = builder.build()?;
    perdura_raft::runtime::seed_thread_rng(config.seed ^ 0x005e_ed0f_0af7);
    let result = runtime.block_on(run_async(config));
    perdura_raft::runtime::clear_thread_rng();
    result
}

async fn bootstrap(cluster: &SimCluster, seed: u64) -> Result<(), SimError> {
    for _ in 0..600 {
        for node in cluster.up() {
            if let Some(raft) = cluster.node(node) {
                if raft.is_bootstrapped() {
                    return Ok(());
                }
                let now = perdura_raft::Clock::now_ms(&cluster.clock);
                let _ = raft
                    .bootstrap_simulated(&format!("sim-{seed}"), cluster.shard_groups, now)
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(SimError::Bootstrap)
}

/// Waits (virtual time) until every group is led and caught up, twice in a row: an up node
/// that is Leader by its own metrics has applied its whole log (so an entry of its own term,
/// its blank entry at least, is committed: everything committed before it is too), and every
/// up node applied the same index.
///
/// A leader named only by followers is not enough: a restarted leader no longer leads (it must
/// win a new election), while its followers still name it until their election timeout; with
/// entries committed before the crash but applied only on the crashed node, every up node
/// then shows the same, older applied index (seed 12 of 3 nodes read that as converged and
/// reported an acknowledged start as lost).
async fn converge(cluster: &SimCluster) {
    use openraft::ServerState;
    use openraft::async_runtime::WatchReceiver;
    let mut stable = 0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut same = true;
        let up = cluster.up();
        let Some(first) = up.first().and_then(|n| cluster.node(*n)) else {
            return;
        };
        for group in first.shard_groups() {
            let mut applied = Vec::new();
            let mut led = false;
            for node in &up {
                let Some(raft) = cluster.node(*node).and_then(|r| r.raft(group)) else {
                    continue;
                };
                let metrics = raft.metrics().borrow_watched().clone();
                let applied_index = metrics.last_applied.map(|l| l.index);
                led |=
                    metrics.state == ServerState::Leader && applied_index == metrics.last_log_index;
                applied.push(applied_index);
            }
            same &= led && applied.windows(2).all(|w| w[0] == w[1]);
        }
        stable = if same { stable + 1 } else { 0 };
        if stable >= 2 {
            return;
        }
    }
}

async fn run_async(config: SimConfig) -> Result<SimReport, SimError> {
    let rng = SimRng::new(config.seed);
    let clock = SimClock::new();
    let clocks = NodeClocks::new(clock);
    let net = SimNetwork::new(rng.clone(), clocks.clone(), !config.leaders_stamp_own_clock);
    let mut cluster = SimCluster::new(config.nodes, 2, net.clone(), clocks, clock);
    for node in 1..=config.nodes {
        if config.ack_before_sync {
            cluster.break_sync(node);
        }
        cluster
            .start(node)
            .await
            .map_err(|e| SimError::Start(e.to_string()))?;
    }
    bootstrap(&cluster, config.seed).await?;
    let recorder = Arc::new(Mutex::new(Recorder::new(Vec::new())));
    let client = Client {
        recorder: recorder.clone(),
        rng: rng.clone(),
        clock,
    };
    let workload = Workload::new(client.clone(), 8, config.clock_faults);
    let mut nemesis =
        nemesis::Nemesis::new(client.clone(), !config.ack_before_sync, config.clock_faults);
    for _ in 0..config.rounds {
        if rng.chance(20) {
            nemesis.act(&mut cluster).await;
        } else {
            let steps = (0..config.clients).map(|p| workload.step(&cluster, p));
            futures::future::join_all(steps).await;
        }
    }
    if config.ack_before_sync {
        nemesis.crash_all(&mut cluster).await;
    }
    nemesis.heal_all(&mut cluster).await;
    let _ = bootstrap(&cluster, config.seed).await;
    converge(&cluster).await;
    let read = final_read::final_read(&cluster, client.now());
    let virtual_ms = clock.elapsed().as_millis();
    cluster.shutdown().await;
    drop(workload);
    let faults = nemesis.faults();
    drop(nemesis);
    drop(client);
    let history_jsonl = match Arc::try_unwrap(recorder) {
        Ok(mutex) => mutex
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_inner()
            .map_err(|e| SimError::Start(e.to_string()))?,
        Err(_) => return Err(SimError::Start("the recorder is still shared".into())),
    };
    let records = read_history(&history_jsonl[..])?;
    let history = History::from_records(records)?;
    let check = CheckConfig {
        // Virtual time: elections take ≤ 1 s, proposals time out after 2 s.
        liveness_bound_ms: 15_000,
        recovery_grace_ms: 5_000,
        fault_tolerance: 1,
        ..CheckConfig::default()
    };
    let summary = check_all(&history, &read, &check);
    let final_json = serde_json::to_vec(&read).unwrap_or_default();
    let trace_hash = fnv1a(&final_json, fnv1a(&history_jsonl, 0xcbf2_9ce4_8422_2325));
    Ok(SimReport {
        config,
        summary,
        trace_hash,
        history_jsonl,
        final_read: read,
        faults,
        virtual_ms,
    })
}
