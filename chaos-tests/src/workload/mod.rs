//! The workload client: a Rust client of Perdura's Temporal gRPC API that is both starter and
//! worker, recording every operation into the JSONL history ([`crate::history::Recorder`]), and
//! the end-of-run final read through each node's `ReadReplica` admin RPC ([`replica`]).
//!
//! * [`run_processes`] — `concurrency` logical processes ([`process`]), each pinned to a node and
//!   moving to the next after an unknown outcome, run a seeded mix: start workflows (new IDs,
//!   duplicate IDs, retried request IDs), poll and answer workflow tasks ([`plan`]: activities,
//!   timers, children, complete / fail / continue-as-new), poll activities and complete or fail
//!   them, signal (with request IDs, retried with the same ID and value), read histories,
//!   describe, wait for results, read the node's applied indexes. Then a drain phase of polls
//!   only lets started workflows finish ([`phases`]). [`run_workload`] runs them stand-alone
//!   for a duration (`perdura-chaos workload`); the harness runs them inside `perdura-chaos run`
//!   through [`crate::harness::grpc_workload`], following member changes.
//! * Recording follows chaos-tests/README.md: invoke before the call, completion after; a
//!   definite refusal is `fail`, anything that may have happened is `info` ([`classify`]).
//! * Conventions the checkers rely on: activity and timer IDs unique within a run, one value
//!   per signal request ID, unique activity results, a start's request ID as its input
//!   ([`events`]), fresh request IDs per logical start.
//!
//! Determinism: every choice comes from the seed (per-process generators, plans seeded by run
//! IDs); the servers' answers and timing still vary between runs.

pub mod classify;
pub mod events;
pub mod nodes;
pub mod payload;
pub mod phases;
pub mod plan;
pub mod process;
pub mod registry;
pub mod replica;

use crate::harness::clock::{HarnessClock, SharedRecorder};
use crate::harness::workload::{Targets, WorkloadReport};
use crate::history::RecorderError;
use crate::ids::ProcessId;
use nodes::{NodeAddr, NodeAddrError};
use phases::Phases;
use process::{NodeClients, Process, Shared};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// The namespace the workload uses (every Perdura node has it).
pub const NAMESPACE: &str = "default";

#[derive(Debug, Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Address(#[from] NodeAddrError),
    #[error("recording the history: {0}")]
    Record(#[from] RecorderError),
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a workload process stopped: {0}")]
    Join(String),
}

/// What one workload run is made of, wherever it runs.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    pub seed: u64,
    /// At most this many operations in the main phase (`None`: no bound).
    pub max_ops: Option<u64>,
    /// Logical client processes.
    pub concurrency: u64,
    /// Polls only, after the main phase, so started workflows finish.
    pub drain: Duration,
}

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub nodes: Vec<NodeAddr>,
    pub processes: ProcessConfig,
    /// How long the main phase runs.
    pub duration: Duration,
    /// Where the JSONL history goes.
    pub out: PathBuf,
}

/// Runs the workload stand-alone, on the absolute harness clock; the history is in
/// `config.out` when it returns.
pub async fn run_workload(config: &WorkloadConfig) -> Result<WorkloadReport, WorkloadError> {
    let file = File::create(&config.out).map_err(|source| WorkloadError::Create {
        path: config.out.clone(),
        source,
    })?;
    let recorder = SharedRecorder::new(file, HarnessClock::absolute());
    let (stop_tx, stop) = watch::channel(false);
    let duration = config.duration;
    let timer = tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        stop_tx.send_replace(true);
    });
    let report = run_processes(&config.nodes, None, &config.processes, recorder, stop).await;
    timer.abort();
    report
}

/// Runs `config.concurrency` processes over `nodes` (followed through `targets` when given),
/// recording into `recorder`, until `stop` turns true and the drain is over.
pub async fn run_processes(
    nodes: &[NodeAddr],
    targets: Option<Targets>,
    config: &ProcessConfig,
    recorder: SharedRecorder,
    stop: watch::Receiver<bool>,
) -> Result<WorkloadReport, WorkloadError> {
    let mut clients = Vec::with_capacity(nodes.len());
    for node in nodes {
        clients.push(NodeClients::new(node)?);
    }
    let shared = Shared {
        recorder,
        registry: Mutex::default(),
        seed: config.seed,
        task_queue: format!("chaos-{}", config.seed),
        budget: AtomicU64::new(config.max_ops.unwrap_or(u64::MAX)),
        targets,
        ok: AtomicU64::new(0),
        fail: AtomicU64::new(0),
        info: AtomicU64::new(0),
    };
    let phases = Phases::new(stop, config.drain);
    let processes = (0..config.concurrency.max(1)).map(|p| {
        let process = Process::new(ProcessId(p), clients.clone(), &shared);
        process::run_process(process, &phases)
    });
    // Polled together on this task: the processes share `Shared` by reference.
    let results = futures::future::join_all(processes).await;
    for result in results {
        result?;
    }
    Ok(shared.report())
}
