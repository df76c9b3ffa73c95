//! The nemesis: a seeded schedule of fault episodes (inject → hold → heal, one at a time) and
//! its execution against the cluster, each step recorded in the history as a `nemesis`
//! operation (`ok` installed, `fail` skipped, `info` indeterminate) with the fault kind names the
//! liveness checker classifies.
//!
//! Invariants: the schedule is a pure function of (seed, faults, duration); targets are drawn
//! when an episode runs from the then-current members by the episode's own random number, so a
//! seed reproduces the same choices as long as the cluster answers the same; at most one episode
//! is active at a time, and every injected fault is healed before the next starts (or by the
//! run's final heal if the run is interrupted).

use super::clock::SharedRecorder;
use super::cluster::Cluster;
use super::delay::{self, DelayProxy, DelaySpec};
use super::disk::DiskFaults;
use super::grudge::{self, Grudge, PartitionShape};
use super::node::{NodeError, NodeProcess};
use super::workload::Targets;
use crate::history::{FaultKind, NemesisAction, NemesisOp, Op, OpCompletion, RecorderError};
use crate::ids::{NodeId, ProcessId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{Mutex, watch};

/// The process id of the nemesis in the history.
pub const NEMESIS_PROCESS: ProcessId = ProcessId(1_000_000);

/// The faults `--faults` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultSpec {
    /// SIGKILL one node; heal restarts it.
    Kill,
    /// SIGSTOP one node; heal SIGCONTs it.
    Pause,
    /// A grudge: halves, one-way, bridge or majorities ring.
    Partition,
    /// One node cut off from the others.
    Isolate,
    /// The node leading the most groups cut off.
    IsolateLeader,
    /// Random packet loss on one node's or every node's input.
    Loss,
    /// One node's or every node's links to the others slowed by 20–300 ms (userspace proxy).
    Delay,
    /// One node's wall clock jumps by up to ±300 s.
    Skew,
    /// One node's wall clock flips between real and skewed every second.
    Strobe,
    /// The wall clock of the node leading the most groups jumps 5–300 s ahead: the one clock
    /// whose skew could fire its groups' pending timers early.
    SkewLeader,
    /// Remove a node and add a fresh one that joins.
    Membership,
    /// Split a workflow group.
    Split,
    /// Restart every node in turn (SIGTERM, start, ready).
    RollingRestart,
    /// Power loss of one node: SIGKILL, drop every byte it did not fsync (its data dir is on
    /// its own lazyfs), restart at heal.
    LoseUnsynced,
    /// Every fsync/fdatasync of one node fails with EIO (strace) for the hold; a node that
    /// stopped (fail-stop) is restarted at heal.
    FsyncError,
}

impl FaultSpec {
    pub const ALL: [FaultSpec; 15] = [
        FaultSpec::Kill,
        FaultSpec::Pause,
        FaultSpec::Partition,
        FaultSpec::Isolate,
        FaultSpec::IsolateLeader,
        FaultSpec::Loss,
        FaultSpec::Delay,
        FaultSpec::Skew,
        FaultSpec::Strobe,
        FaultSpec::SkewLeader,
        FaultSpec::Membership,
        FaultSpec::Split,
        FaultSpec::RollingRestart,
        FaultSpec::LoseUnsynced,
        FaultSpec::FsyncError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultSpec::Kill => "kill",
            FaultSpec::Pause => "pause",
            FaultSpec::Partition => "partition",
            FaultSpec::Isolate => "isolate",
            FaultSpec::IsolateLeader => "isolate-leader",
            FaultSpec::Loss => "loss",
            FaultSpec::Delay => "delay",
            FaultSpec::Skew => "skew",
            FaultSpec::Strobe => "strobe",
            FaultSpec::SkewLeader => "skew-leader",
            FaultSpec::Membership => "membership",
            FaultSpec::Split => "split",
            FaultSpec::RollingRestart => "rolling-restart",
            FaultSpec::LoseUnsynced => "lose-unsynced",
            FaultSpec::FsyncError => "fsync-error",
        }
    }

    /// The history's fault kind.
    pub fn kind(self) -> FaultKind {
        match self {
            FaultSpec::Kill => FaultKind::Kill,
            FaultSpec::Pause => FaultKind::Pause,
            FaultSpec::Partition => FaultKind::Partition,
            FaultSpec::Isolate | FaultSpec::IsolateLeader => FaultKind::Isolate,
            FaultSpec::Loss => FaultKind::PacketLoss,
            FaultSpec::Delay => FaultKind::Delay,
            FaultSpec::Skew | FaultSpec::SkewLeader => FaultKind::ClockSkew,
            FaultSpec::Strobe => FaultKind::ClockStrobe,
            FaultSpec::Membership => FaultKind::MembershipChange,
            FaultSpec::Split => FaultKind::GroupSplit,
            FaultSpec::RollingRestart => FaultKind::RollingRestart,
            FaultSpec::LoseUnsynced => FaultKind::LoseUnsyncedWrites,
            FaultSpec::FsyncError => FaultKind::FsyncError,
        }
    }

    /// Whether the servers must run under libfaketime for this fault.
    pub fn needs_faketime(self) -> bool {
        matches!(
            self,
            FaultSpec::Skew | FaultSpec::Strobe | FaultSpec::SkewLeader
        )
    }
}

/// What the nodes of a run with `faults` need from their disks.
pub fn disk_faults(faults: &[FaultSpec]) -> DiskFaults {
    DiskFaults {
        lazyfs: faults.contains(&FaultSpec::LoseUnsynced),
        fsync_errors: faults.contains(&FaultSpec::FsyncError),
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Error)]
#[error(
    "unknown fault {0:?} (known: kill, pause, partition, isolate, isolate-leader, loss, delay, skew, strobe, skew-leader, membership, split, rolling-restart, lose-unsynced, fsync-error, all)"
)]
pub struct UnknownFault(pub String);

impl FromStr for FaultSpec {
    type Err = UnknownFault;
    fn from_str(name: &str) -> Result<FaultSpec, UnknownFault> {
        let name = name.trim();
        let alias = match name {
            "leader" => "isolate-leader",
            "clock" => "skew",
            "packet-loss" => "loss",
            "power-loss" | "lazyfs" => "lose-unsynced",
            "fsync" => "fsync-error",
            other => other,
        };
        FaultSpec::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .ok_or_else(|| UnknownFault(name.to_owned()))
    }
}

/// `kill,pause,…` (or `all`), deduplicated in a stable order.
pub fn parse_faults(list: &str) -> Result<Vec<FaultSpec>, UnknownFault> {
    let mut faults = Vec::new();
    for name in list.split(',').filter(|s| !s.trim().is_empty()) {
        if name.trim() == "all" {
            faults.extend(FaultSpec::ALL);
        } else {
            faults.push(name.parse()?);
        }
    }
    faults.sort();
    faults.dedup();
    Ok(faults)
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// When to inject, from the start of the nemesis.
    pub at: Duration,
    pub fault: FaultSpec,
    pub hold: Duration,
    /// The episode's own random number: picks targets, shapes, percentages, offsets.
    pub pick: u64,
}

/// How densely episodes follow each other: each holds its fault for a time drawn from `hold_ms`,
/// then the cluster gets a fault-free gap drawn from `gap_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Holds of 3–8 s, gaps of 1.5–4 s: every fault lasts past elections and retries.
    Normal,
    /// Holds of 1.5–4 s, gaps of 0.5–1.5 s: more episodes per minute, faults overlapping
    /// recoveries (many of them still in progress when the next fault lands).
    Fast,
}

impl Pace {
    pub fn name(self) -> &'static str {
        match self {
            Pace::Normal => "normal",
            Pace::Fast => "fast",
        }
    }

    pub fn parse(text: &str) -> Result<Pace, String> {
        match text.trim() {
            "normal" => Ok(Pace::Normal),
            "fast" => Ok(Pace::Fast),
            other => Err(format!("unknown pace {other:?} (normal, fast)")),
        }
    }

    fn hold_ms(self) -> std::ops::RangeInclusive<u64> {
        match self {
            Pace::Normal => 3_000..=8_000,
            Pace::Fast => 1_500..=4_000,
        }
    }

    fn gap_ms(self) -> std::ops::RangeInclusive<u64> {
        match self {
            Pace::Normal => 1_500..=4_000,
            Pace::Fast => 500..=1_500,
        }
    }
}

/// The schedule of a run: episodes one after the other, from `warmup` until `duration - calm`;
/// the first `faults.len()` episodes use each fault once.
pub fn schedule(seed: u64, faults: &[FaultSpec], duration: Duration, pace: Pace) -> Vec<Episode> {
    let mut rng = StdRng::seed_from_u64(seed);
    let warmup = Duration::from_secs(3);
    let calm = Duration::from_secs(5);
    let mut episodes = Vec::new();
    if faults.is_empty() {
        return episodes;
    }
    let end = duration.saturating_sub(calm);
    let mut at = warmup;
    // Every enabled fault once first (in a seeded order), then seeded random choices, so a short
    // run still exercises each fault it was asked for.
    let mut first_round = faults.to_vec();
    first_round.shuffle(&mut rng);
    first_round.reverse();
    loop {
        let fault = first_round
            .pop()
            .unwrap_or_else(|| faults[rng.random_range(0..faults.len())]);
        let hold = Duration::from_millis(rng.random_range(pace.hold_ms()));
        let pick = rng.random();
        if at + hold > end {
            break;
        }
        episodes.push(Episode {
            at,
            fault,
            hold,
            pick,
        });
        at += hold + Duration::from_millis(rng.random_range(pace.gap_ms()));
    }
    episodes
}

/// How a nemesis step went (Jepsen/openraft: installed, skipped, indeterminate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Installed,
    Skipped(String),
    Indeterminate(String),
}

impl StepOutcome {
    fn completion(&self) -> OpCompletion {
        match self {
            StepOutcome::Installed => OpCompletion::Ok(None),
            StepOutcome::Skipped(why) => OpCompletion::Fail(why.clone()),
            StepOutcome::Indeterminate(why) => OpCompletion::Info(why.clone()),
        }
    }
}

/// What an episode did, for the run's summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpisodeLog {
    pub at_ms: u64,
    pub fault: String,
    pub detail: String,
    pub nodes: Vec<u64>,
    pub inject: String,
    pub heal: String,
}

/// The active fault of an episode, remembered between inject and heal.
enum Active {
    /// Nothing was installed (the inject was skipped): no heal is recorded.
    Nothing,
    /// A one-shot change (membership, split): done at inject; its heal marks the end of the
    /// episode so liveness is judged again afterwards.
    Settled,
    Killed(NodeId),
    Paused(NodeId),
    Grudge,
    Loss(Vec<NodeId>),
    Clock(NodeId),
    Delay(DelayProxy),
    /// Killed and its unsynced writes dropped: heal restarts it.
    PowerLost(NodeId),
    /// strace injects EIO into its fsyncs: heal detaches it and restarts the node if it stopped.
    FsyncFailing(NodeId),
}

pub struct Nemesis {
    pub cluster: Arc<Mutex<Cluster>>,
    pub recorder: SharedRecorder,
    pub targets: Targets,
    pub groups: u32,
    pub log: Vec<EpisodeLog>,
}

impl Nemesis {
    /// Runs the episodes until done or `stop` turns true; returns after healing the last one.
    pub async fn run(
        &mut self,
        episodes: &[Episode],
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), RecorderError> {
        let origin = Instant::now();
        for episode in episodes {
            let due = origin + episode.at;
            let wait = due.saturating_duration_since(Instant::now());
            if *stop.borrow() {
                break;
            }
            if tokio::time::timeout(wait, stop.wait_for(|s| *s))
                .await
                .is_ok()
            {
                break;
            }
            self.episode(episode, &mut stop).await?;
        }
        Ok(())
    }

    async fn episode(
        &mut self,
        episode: &Episode,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), RecorderError> {
        let mut rng = StdRng::seed_from_u64(episode.pick);
        let kind = episode.fault.kind();
        if episode.fault == FaultSpec::RollingRestart {
            return self.rolling_restart(episode).await;
        }
        let (nodes, detail, plan) = self.plan(episode, &mut rng).await;
        let inject = self.record(NemesisAction::Inject, kind, &nodes, async {
            match plan {
                Some(plan) => self.inject(plan).await,
                None => (Active::Nothing, StepOutcome::Skipped(detail.clone())),
            }
        });
        let (active, inject_outcome) = inject.await?;
        let strobe = matches!(active, Active::Clock(_)) && episode.fault == FaultSpec::Strobe;
        let hold_until = Instant::now() + episode.hold;
        if strobe {
            if let Active::Clock(node) = active {
                let offset = strobe_offset(&mut rng);
                let mut skewed = true;
                while Instant::now() < hold_until && !*stop.borrow() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    skewed = !skewed;
                    let mut cluster = self.cluster.lock().await;
                    if let Ok(process) = cluster.node(node) {
                        let _ = process.set_clock_offset(if skewed { offset } else { 0 });
                    }
                }
            }
        } else {
            let left = hold_until.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, stop.wait_for(|s| *s)).await;
        }
        let heal_outcome = if matches!(active, Active::Nothing) {
            None
        } else {
            let (note, outcome) = self
                .record(NemesisAction::Heal, kind, &nodes, self.heal_noted(active))
                .await?;
            Some((outcome, note))
        };
        self.log.push(EpisodeLog {
            at_ms: episode.at.as_millis() as u64,
            fault: episode.fault.name().to_owned(),
            detail,
            nodes: nodes.iter().map(|n| n.0).collect(),
            inject: describe(&inject_outcome),
            heal: heal_outcome
                .as_ref()
                .map_or("-".to_owned(), |(outcome, note)| match note {
                    Some(note) => format!("{} ({note})", describe(outcome)),
                    None => describe(outcome),
                }),
        });
        Ok(())
    }

    /// Invokes the nemesis op, runs `step`, completes the op with the step's outcome.
    async fn record<T>(
        &self,
        action: NemesisAction,
        kind: FaultKind,
        nodes: &[NodeId],
        step: impl std::future::Future<Output = (T, StepOutcome)>,
    ) -> Result<(T, StepOutcome), RecorderError> {
        let op = Op::Nemesis(NemesisOp {
            action,
            fault: Some(kind),
            nodes: nodes.to_vec(),
        });
        let pending = self.recorder.invoke(NEMESIS_PROCESS, op, None)?;
        let (value, outcome) = step.await;
        self.recorder.complete(pending, outcome.completion())?;
        Ok((value, outcome))
    }

    /// Chooses the episode's targets from the current members.
    async fn plan(
        &self,
        episode: &Episode,
        rng: &mut StdRng,
    ) -> (Vec<NodeId>, String, Option<Plan>) {
        let mut cluster = self.cluster.lock().await;
        let mut members = cluster.members();
        let Some(&one) = members.get(rng.random_range(0..members.len().max(1))) else {
            return (Vec::new(), "no members".into(), None);
        };
        members.shuffle(rng);
        match episode.fault {
            FaultSpec::Kill => (
                vec![one],
                format!("kill -9 node {}", one.0),
                Some(Plan::Kill(one)),
            ),
            FaultSpec::Pause => (
                vec![one],
                format!("SIGSTOP node {}", one.0),
                Some(Plan::Pause(one)),
            ),
            FaultSpec::Isolate => {
                let g = grudge::isolate(one, &cluster.members());
                (
                    vec![one],
                    format!("isolate node {}", one.0),
                    Some(Plan::Grudge(g)),
                )
            }
            FaultSpec::IsolateLeader => {
                match cluster.status().await.ok().and_then(|s| s.busiest_leader()) {
                    Some(leader) => {
                        let g = grudge::isolate(leader, &cluster.members());
                        (
                            vec![leader],
                            format!("isolate node {} (leads the most groups)", leader.0),
                            Some(Plan::Grudge(g)),
                        )
                    }
                    None => (Vec::new(), "no leader known".into(), None),
                }
            }
            FaultSpec::Partition => {
                let shapes = [
                    PartitionShape::Halves,
                    PartitionShape::OneWay,
                    PartitionShape::Bridge,
                    PartitionShape::MajoritiesRing,
                ];
                let shape = shapes[rng.random_range(0..shapes.len())];
                let g = match shape {
                    PartitionShape::OneWay => {
                        grudge::one_way(members[0], members[members.len() - 1])
                    }
                    PartitionShape::Bridge => grudge::bridge(&members),
                    PartitionShape::MajoritiesRing => grudge::majorities_ring(&members),
                    _ => grudge::halves(&members),
                };
                let detail = format!("{} {}", shape.name(), describe_grudge(&g));
                (grudge::nodes_of(&g), detail, Some(Plan::Grudge(g)))
            }
            FaultSpec::Loss => {
                let percent = rng.random_range(10..=40u8);
                let targets = if rng.random_bool(0.5) {
                    vec![one]
                } else {
                    cluster.members()
                };
                let detail = format!(
                    "{percent}% loss into nodes {:?}",
                    targets.iter().map(|n| n.0).collect::<Vec<_>>()
                );
                (targets.clone(), detail, Some(Plan::Loss(targets, percent)))
            }
            FaultSpec::Delay => {
                let spec = delay::choose_spec(rng);
                let delayed: BTreeSet<NodeId> = if rng.random_bool(0.5) {
                    BTreeSet::from([one])
                } else {
                    cluster.members().into_iter().collect()
                };
                let detail = format!(
                    "links of nodes {:?} delayed {} ms + up to {} ms",
                    delayed.iter().map(|n| n.0).collect::<Vec<_>>(),
                    spec.delay.as_millis(),
                    spec.jitter.as_millis()
                );
                (
                    delayed.iter().copied().collect(),
                    detail,
                    Some(Plan::Delay(delayed, spec, rng.random())),
                )
            }
            FaultSpec::Skew | FaultSpec::Strobe => {
                if cluster.config.libfaketime.is_none() {
                    return (vec![one], "libfaketime not available".into(), None);
                }
                let offset = strobe_offset(rng);
                (
                    vec![one],
                    format!("wall clock of node {} {offset:+}s", one.0),
                    Some(Plan::Clock(one, offset)),
                )
            }
            FaultSpec::SkewLeader => {
                if cluster.config.libfaketime.is_none() {
                    return (vec![one], "libfaketime not available".into(), None);
                }
                match cluster.status().await.ok().and_then(|s| s.busiest_leader()) {
                    Some(leader) => {
                        let offset = rng.random_range(5..=300i64);
                        (
                            vec![leader],
                            format!(
                                "wall clock of node {} {offset:+}s (leads the most groups)",
                                leader.0
                            ),
                            Some(Plan::Clock(leader, offset)),
                        )
                    }
                    None => (Vec::new(), "no leader known".into(), None),
                }
            }
            FaultSpec::Membership => {
                let next = NodeId(cluster.members().iter().map(|n| n.0).max().unwrap_or(0) + 1);
                (
                    vec![one, next],
                    format!("replace node {} by node {}", one.0, next.0),
                    Some(Plan::Replace(one)),
                )
            }
            FaultSpec::Split => {
                let group = rng.random_range(1..=self.groups.max(1));
                (
                    Vec::new(),
                    format!("split group {group}"),
                    Some(Plan::Split(group)),
                )
            }
            FaultSpec::RollingRestart => (Vec::new(), "rolling restart".into(), None),
            FaultSpec::LoseUnsynced => (
                vec![one],
                format!(
                    "power loss of node {}: kill -9, drop its unsynced writes",
                    one.0
                ),
                Some(Plan::LoseUnsynced(one)),
            ),
            FaultSpec::FsyncError => {
                let from_call = rng.random_range(1..=3u32);
                (
                    vec![one],
                    format!(
                        "EIO on fsync/fdatasync of node {} from call {from_call} per thread",
                        one.0
                    ),
                    Some(Plan::FsyncError(one, from_call)),
                )
            }
        }
    }

    async fn inject(&self, plan: Plan) -> (Active, StepOutcome) {
        let mut cluster = self.cluster.lock().await;
        match plan {
            Plan::Kill(node) => match cluster.node(node) {
                Ok(process) => {
                    if process.is_running() {
                        process.kill();
                        (Active::Killed(node), StepOutcome::Installed)
                    } else {
                        (
                            Active::Nothing,
                            StepOutcome::Skipped(format!("node {} not running", node.0)),
                        )
                    }
                }
                Err(e) => (Active::Nothing, StepOutcome::Skipped(e.to_string())),
            },
            Plan::LoseUnsynced(node) => match cluster.node(node) {
                Ok(process) => {
                    if !process.is_running() {
                        return (
                            Active::Nothing,
                            StepOutcome::Skipped(format!("node {} not running", node.0)),
                        );
                    }
                    process.kill();
                    match process.lose_unsynced() {
                        Ok(dropped) => {
                            println!(
                                "  power loss of node {}: dropped {} unsynced bytes in {} files",
                                node.0, dropped.bytes, dropped.files
                            );
                            (Active::PowerLost(node), StepOutcome::Installed)
                        }
                        Err(e) => (
                            Active::PowerLost(node),
                            StepOutcome::Indeterminate(e.to_string()),
                        ),
                    }
                }
                Err(e) => (Active::Nothing, StepOutcome::Skipped(e.to_string())),
            },
            Plan::FsyncError(node, from_call) => match cluster.node(node) {
                Ok(process) => match process.inject_fsync_errors(from_call) {
                    Ok(()) => (Active::FsyncFailing(node), StepOutcome::Installed),
                    Err(NodeError::NotRunning(_)) => (
                        Active::Nothing,
                        StepOutcome::Skipped(format!("node {} not running", node.0)),
                    ),
                    Err(e) => (
                        Active::FsyncFailing(node),
                        StepOutcome::Indeterminate(e.to_string()),
                    ),
                },
                Err(e) => (Active::Nothing, StepOutcome::Skipped(e.to_string())),
            },
            Plan::Pause(node) => match cluster.node(node) {
                Ok(process) => {
                    if process.pause() {
                        (Active::Paused(node), StepOutcome::Installed)
                    } else {
                        (
                            Active::Nothing,
                            StepOutcome::Skipped(format!("node {} not running", node.0)),
                        )
                    }
                }
                Err(e) => (Active::Nothing, StepOutcome::Skipped(e.to_string())),
            },
            Plan::Grudge(g) => match cluster.net.set_grudge(g) {
                Ok(()) => (Active::Grudge, StepOutcome::Installed),
                Err(e) => (Active::Grudge, StepOutcome::Indeterminate(e.to_string())),
            },
            Plan::Loss(nodes, percent) => {
                let mut outcome = StepOutcome::Installed;
                for &node in &nodes {
                    if let Err(e) = cluster.net.set_loss(node, percent) {
                        outcome = StepOutcome::Indeterminate(e.to_string());
                    }
                }
                (Active::Loss(nodes), outcome)
            }
            Plan::Delay(delayed, spec, seed) => {
                let members = cluster.members();
                let routes = delay::routes(&cluster.net, &members);
                let proxy = match DelayProxy::start(&routes, spec, seed).await {
                    Ok(proxy) => proxy,
                    Err(e) => {
                        return (
                            Active::Nothing,
                            StepOutcome::Skipped(format!("starting the delay proxy: {e}")),
                        );
                    }
                };
                match delay::install(&cluster.net, &members, &delayed) {
                    Ok(()) => (Active::Delay(proxy), StepOutcome::Installed),
                    Err(e) => (
                        Active::Delay(proxy),
                        StepOutcome::Indeterminate(e.to_string()),
                    ),
                }
            }
            Plan::Clock(node, offset) => {
                match cluster.node(node).map(|p| p.set_clock_offset(offset)) {
                    Ok(Ok(())) => (Active::Clock(node), StepOutcome::Installed),
                    Ok(Err(e)) => (
                        Active::Clock(node),
                        StepOutcome::Indeterminate(e.to_string()),
                    ),
                    Err(e) => (Active::Nothing, StepOutcome::Skipped(e.to_string())),
                }
            }
            Plan::Replace(node) => {
                let outcome = match cluster.replace_node(node).await {
                    Ok(_) => StepOutcome::Installed,
                    Err(e) => StepOutcome::Indeterminate(e.to_string()),
                };
                self.targets.set(cluster.endpoints());
                (Active::Settled, outcome)
            }
            Plan::Split(group) => match cluster.split_group(group).await {
                Ok(_) => (Active::Settled, StepOutcome::Installed),
                Err(e) => (Active::Settled, StepOutcome::Indeterminate(e.to_string())),
            },
        }
    }

    async fn heal(&self, active: Active) -> StepOutcome {
        self.heal_noted(active).await.1
    }

    /// Heals `active`; the outcome and, for disk faults, what the node did (for the log).
    async fn heal_noted(&self, active: Active) -> (Option<String>, StepOutcome) {
        let mut cluster = self.cluster.lock().await;
        let mut note = None;
        let result = match active {
            Active::Nothing | Active::Settled => Ok(()),
            Active::Killed(node) | Active::PowerLost(node) => match cluster.node(node) {
                Ok(process) => restart(process).await,
                Err(e) => Err(e.to_string()),
            },
            Active::FsyncFailing(node) => match cluster.node(node) {
                Ok(process) => {
                    process.heal_fsync_errors();
                    // A node that hit the EIO is exiting (fail-stop); let it finish.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if process.is_running() {
                        note = Some("kept running: no fsync failed, or it survived".to_owned());
                        Ok(())
                    } else {
                        note = Some("had stopped (fail-stop): restarted".to_owned());
                        restart(process).await
                    }
                }
                Err(e) => Err(e.to_string()),
            },
            Active::Paused(node) => {
                if let Ok(process) = cluster.node(node) {
                    process.resume();
                }
                Ok(())
            }
            Active::Grudge => cluster
                .net
                .set_grudge(Grudge::new())
                .map_err(|e| e.to_string()),
            Active::Loss(nodes) => nodes
                .into_iter()
                .try_for_each(|node| cluster.net.set_loss(node, 0))
                .map_err(|e| e.to_string()),
            Active::Delay(proxy) => {
                // Rules first, then the proxy: its connections close and the nodes reconnect
                // directly.
                let removed = delay::install(&cluster.net, &cluster.members(), &BTreeSet::new())
                    .map_err(|e| e.to_string());
                proxy.stop();
                removed
            }
            Active::Clock(node) => match cluster.node(node) {
                Ok(process) => process.set_clock_offset(0).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let outcome = match result {
            Ok(()) => StepOutcome::Installed,
            Err(why) => StepOutcome::Indeterminate(why),
        };
        (note, outcome)
    }

    /// Restarts every member in turn; each restart is one inject/heal pair.
    async fn rolling_restart(&mut self, episode: &Episode) -> Result<(), RecorderError> {
        let members = self.cluster.lock().await.members();
        let mut outcomes = Vec::new();
        for node in &members {
            let nodes = [*node];
            let (_, down) = self
                .record(
                    NemesisAction::Inject,
                    FaultKind::RollingRestart,
                    &nodes,
                    async {
                        let mut cluster = self.cluster.lock().await;
                        match cluster.node(*node) {
                            Ok(process) => {
                                process.stop(Duration::from_secs(10)).await;
                                ((), StepOutcome::Installed)
                            }
                            Err(e) => ((), StepOutcome::Skipped(e.to_string())),
                        }
                    },
                )
                .await?;
            let (_, up) = self
                .record(
                    NemesisAction::Heal,
                    FaultKind::RollingRestart,
                    &nodes,
                    async {
                        let active = Active::Killed(*node);
                        ((), self.heal(active).await)
                    },
                )
                .await?;
            outcomes.push(format!(
                "node {}: {} / {}",
                node.0,
                describe(&down),
                describe(&up)
            ));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        self.log.push(EpisodeLog {
            at_ms: episode.at.as_millis() as u64,
            fault: episode.fault.name().to_owned(),
            detail: outcomes.join("; "),
            nodes: members.iter().map(|n| n.0).collect(),
            inject: "see detail".into(),
            heal: "see detail".into(),
        });
        Ok(())
    }
}

enum Plan {
    Kill(NodeId),
    LoseUnsynced(NodeId),
    /// The node and the per-thread fsync call from which on they fail.
    FsyncError(NodeId, u32),
    Pause(NodeId),
    Grudge(Grudge),
    Loss(Vec<NodeId>, u8),
    Delay(BTreeSet<NodeId>, DelaySpec, u64),
    Clock(NodeId, i64),
    Replace(NodeId),
    Split(u32),
}

/// Starts a stopped node and waits until it accepts connections.
async fn restart(process: &mut NodeProcess) -> Result<(), String> {
    process.start().map_err(|e| e.to_string())?;
    process
        .wait_ready(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())
}

/// A wall-clock offset in seconds: ±(1..=300), Jepsen's bump range scaled to a short run.
fn strobe_offset(rng: &mut StdRng) -> i64 {
    let magnitude = rng.random_range(1..=300i64);
    if rng.random_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

fn describe(outcome: &StepOutcome) -> String {
    match outcome {
        StepOutcome::Installed => "ok".into(),
        StepOutcome::Skipped(why) => format!("skipped: {why}"),
        StepOutcome::Indeterminate(why) => format!("indeterminate: {why}"),
    }
}

fn describe_grudge(grudge: &Grudge) -> String {
    grudge
        .iter()
        .map(|(receiver, sources)| {
            let list: Vec<String> = sources.iter().map(|s| s.0.to_string()).collect();
            format!("{}⊘{{{}}}", receiver.0, list.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_with_aliases_and_reject_unknown_names() {
        let faults = parse_faults("kill,partition,pause,loss,kill,leader").unwrap();
        assert_eq!(
            faults,
            vec![
                FaultSpec::Kill,
                FaultSpec::Pause,
                FaultSpec::Partition,
                FaultSpec::IsolateLeader,
                FaultSpec::Loss
            ]
        );
        assert_eq!(parse_faults("all").unwrap().len(), FaultSpec::ALL.len());
        assert!(parse_faults("kill,meteor").is_err());
        assert_eq!(
            parse_faults("skew-leader,skew").unwrap(),
            vec![FaultSpec::Skew, FaultSpec::SkewLeader]
        );
        assert!(FaultSpec::SkewLeader.needs_faketime());
        assert_eq!(
            parse_faults("lose-unsynced,fsync-error,kill").unwrap(),
            vec![
                FaultSpec::Kill,
                FaultSpec::LoseUnsynced,
                FaultSpec::FsyncError
            ]
        );
        assert_eq!(
            disk_faults(&parse_faults("power-loss,fsync").unwrap()),
            DiskFaults {
                lazyfs: true,
                fsync_errors: true
            }
        );
        assert_eq!(disk_faults(&[FaultSpec::Kill]), DiskFaults::default());
    }

    #[test]
    fn a_seed_gives_one_schedule_of_sequential_episodes_within_the_run() {
        let faults = parse_faults("kill,pause,partition,loss").unwrap();
        let duration = Duration::from_secs(90);
        let a = schedule(7, &faults, duration, Pace::Normal);
        assert_eq!(a, schedule(7, &faults, duration, Pace::Normal));
        assert_ne!(a, schedule(8, &faults, duration, Pace::Normal));
        assert!(a.len() >= 5, "{} episodes", a.len());
        for pair in a.windows(2) {
            assert!(pair[0].at + pair[0].hold < pair[1].at, "episodes overlap");
        }
        let last = a.last().unwrap();
        assert!(last.at + last.hold <= duration - Duration::from_secs(5));
        let first: std::collections::BTreeSet<_> =
            a.iter().take(faults.len()).map(|e| e.fault).collect();
        assert_eq!(
            first.len(),
            faults.len(),
            "each fault comes once first: {a:?}"
        );
        assert!(schedule(7, &[], duration, Pace::Normal).is_empty());
        let fast = schedule(7, &faults, duration, Pace::Fast);
        assert!(
            fast.len() > a.len(),
            "a fast pace packs more episodes: {} vs {}",
            fast.len(),
            a.len()
        );
    }

    #[test]
    fn fault_kinds_are_the_names_the_liveness_checker_classifies() {
        use crate::history::FaultClass;
        assert_eq!(FaultSpec::Kill.kind().class(), FaultClass::NodeDown);
        assert_eq!(
            FaultSpec::IsolateLeader.kind().class(),
            FaultClass::NodeDown
        );
        assert_eq!(FaultSpec::Partition.kind().class(), FaultClass::NotHealed);
        assert_eq!(FaultSpec::Loss.kind().class(), FaultClass::NotHealed);
        assert_eq!(FaultSpec::Strobe.kind().class(), FaultClass::Tolerated);
        assert_eq!(FaultSpec::SkewLeader.kind().class(), FaultClass::Tolerated);
        assert_eq!(FaultSpec::LoseUnsynced.kind().class(), FaultClass::NodeDown);
        assert_eq!(FaultSpec::FsyncError.kind().class(), FaultClass::NodeDown);
        for fault in FaultSpec::ALL {
            assert_ne!(fault.kind(), FaultKind::Unknown, "{fault}");
        }
    }
}
