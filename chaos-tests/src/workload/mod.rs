//! The workload client: a Rust client of Perdura's Temporal gRPC API that is both starter and
//! worker, recording every operation into the JSONL history ([`crate::history::Recorder`]), and
//! the end-of-run final read through each node's `ReadReplica` admin RPC ([`replica`]).
//!
//! * [`run_workload`] — `concurrency` logical processes ([`process`]), each pinned to a node and
//!   moving to the next after an unknown outcome, run a seeded mix: start workflows (new IDs,
//!   duplicate IDs, retried request IDs), poll and answer workflow tasks ([`plan`]: activities,
//!   timers, children, complete / fail / continue-as-new), poll activities and complete or fail
//!   them, signal (with request IDs, retried with the same ID and value), read histories,
//!   describe, wait for results, read the node's applied indexes. Then a drain phase of polls
//!   only lets started workflows finish.
//! * Recording follows chaos-tests/README.md: invoke before the call, completion after; a
//!   definite refusal is `fail`, anything that may have happened is `info` ([`classify`]).
//! * Conventions the checkers rely on: activity and timer IDs unique within a run, one value
//!   per signal request ID, unique activity results, a start's request ID as its input
//!   ([`events`]), fresh request IDs per logical start.
//!
//! Determinism: every choice comes from the seed (per-process generators, plans seeded by run
//! IDs); the servers' answers and timing still vary between runs.

pub mod classify;
pub mod clock;
pub mod events;
pub mod nodes;
pub mod payload;
pub mod plan;
pub mod process;
pub mod registry;
pub mod replica;

use crate::history::{Recorder, RecorderError};
use crate::ids::ProcessId;
use nodes::{NodeAddr, NodeAddrError};
use process::{NodeClients, Process, Shared};
use std::fs::File;
use std::io::LineWriter;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use thiserror::Error;

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

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub nodes: Vec<NodeAddr>,
    pub seed: u64,
    /// How long the main phase runs.
    pub duration: Duration,
    /// At most this many operations in the main phase (`None`: no bound).
    pub max_ops: Option<u64>,
    /// Logical client processes.
    pub concurrency: u64,
    /// Polls only, after the main phase, so started workflows finish.
    pub drain: Duration,
    /// Where the JSONL history goes.
    pub out: PathBuf,
}

/// Runs the workload; the history is in `config.out` when it returns.
pub async fn run_workload(config: &WorkloadConfig) -> Result<(), WorkloadError> {
    let file = File::create(&config.out).map_err(|source| WorkloadError::Create {
        path: config.out.clone(),
        source,
    })?;
    let mut clients = Vec::with_capacity(config.nodes.len());
    for node in &config.nodes {
        clients.push(NodeClients::new(node)?);
    }
    let shared = Shared {
        recorder: Mutex::new(Recorder::new(LineWriter::new(file))),
        registry: Mutex::default(),
        seed: config.seed,
        task_queue: format!("chaos-{}", config.seed),
        budget: AtomicU64::new(config.max_ops.unwrap_or(u64::MAX)),
    };
    let main_until = Instant::now() + config.duration;
    let drain_until = main_until + config.drain;
    let processes = (0..config.concurrency).map(|p| {
        let process = Process::new(ProcessId(p), clients.clone(), &shared);
        process::run_process(process, main_until, drain_until)
    });
    // Polled together on this task: the processes share `Shared` by reference.
    let results = futures::future::join_all(processes).await;
    for result in results {
        result?;
    }
    let recorder = shared
        .recorder
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    recorder.into_inner()?;
    Ok(())
}
