//! `perdura-chaos run`: one chaos run, start to verdict.
//!
//! Network and cluster up → converged → workload and nemesis concurrently for the duration →
//! stop both (the nemesis heals its open episode) → `heal_all` (network healed, paused nodes
//! resumed, clocks reset, dead nodes restarted) → wait until every group has equal applied
//! indexes on every member → final read → the nine checkers. Into `--out`: `history.jsonl`,
//! `final-read.json`, `summary.json`, `repro.txt` (the one-line command that replays the seed),
//! and `nodes/n<i>/node.log`.
//!
//! Invariants: the cluster and the network are torn down whatever happens (Drop guards; Ctrl-C
//! stops the run and tears down); a run whose cluster does not converge after healing is a
//! failed run, not a skipped check.

use super::clock::{HarnessClock, SharedRecorder};
use super::cluster::{Cluster, ClusterConfig, ClusterError};
use super::exec::ExecError;
use super::final_read::{FinalReadError, FinalReadInput, FinalReader, FrontendFinalReader};
use super::grpc_workload::GrpcWorkload;
use super::nemesis::{EpisodeLog, FaultSpec, NEMESIS_PROCESS, Nemesis, Pace, schedule};
use super::net;
use super::node::find_libfaketime;
use super::replica_final_read::ReplicaFinalReader;
use super::workload::{
    StartWorkflows, Targets, Workload, WorkloadContext, WorkloadError, WorkloadReport,
};
use crate::checker::{CheckConfig, CheckSummary, check_all};
use crate::history::{
    History, JsonlError, NemesisAction, NemesisOp, Op, OpCompletion, PairingError, RecorderError,
    read_history, write_final_read,
};
use crate::ids::WorkflowId;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Mutex, watch};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the harness needs root (network namespaces, nft)")]
    NotRoot,
    #[error("no free net id (10.77.K.0/24) on this host")]
    NoFreeNet,
    #[error("the server binary {0} does not exist (cargo build -p perdura-node, or --binary)")]
    NoBinary(PathBuf),
    #[error("faults {0} need libfaketime (apt-get install faketime, or PERDURA_CHAOS_LIBFAKETIME)")]
    NoFaketime(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Record(#[from] RecorderError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("final read: {0}")]
    FinalRead(#[from] FinalReadError),
    #[error("reading back the history: {0}")]
    History(#[from] JsonlError),
    #[error("pairing the history: {0}")]
    Pairing(#[from] PairingError),
    #[error("writing summary.json: {0}")]
    Summary(#[from] serde_json::Error),
    #[error("interrupted (Ctrl-C); the cluster and network were torn down")]
    Interrupted,
    #[error("a harness task panicked: {0}")]
    Task(String),
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub nodes: u64,
    pub seed: u64,
    pub duration: Duration,
    pub faults: Vec<FaultSpec>,
    pub out: PathBuf,
    pub binary: PathBuf,
    pub groups: u32,
    /// The `K` of `10.77.K.0/24`; `None` picks a free one.
    pub net_id: Option<u8>,
    /// How long the healed cluster may take to converge.
    pub converge_timeout: Duration,
    pub check: CheckConfig,
    pub workload: WorkloadChoice,
    pub final_read: FinalReadChoice,
    pub pace: Pace,
}

/// Which workload a run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadChoice {
    /// The full gRPC starter + worker ([`GrpcWorkload`]) with this many client processes.
    Grpc { concurrency: u64 },
    /// The built-in start-only workload ([`StartWorkflows`]).
    Starts,
}

impl WorkloadChoice {
    pub fn arg(self) -> String {
        match self {
            WorkloadChoice::Grpc { concurrency } => format!("grpc --concurrency {concurrency}"),
            WorkloadChoice::Starts => "starts".to_owned(),
        }
    }

    fn build(self) -> Arc<dyn Workload> {
        match self {
            WorkloadChoice::Grpc { concurrency } => Arc::new(GrpcWorkload {
                concurrency,
                ..GrpcWorkload::default()
            }),
            WorkloadChoice::Starts => Arc::new(StartWorkflows::default()),
        }
    }
}

/// How the run reads the healed cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalReadChoice {
    /// Every member's own replica ([`ReplicaFinalReader`]).
    Replica,
    /// Status digests + histories through each frontend ([`FrontendFinalReader`]).
    Frontend,
}

impl FinalReadChoice {
    pub fn name(self) -> &'static str {
        match self {
            FinalReadChoice::Replica => "replica",
            FinalReadChoice::Frontend => "frontend",
        }
    }

    fn build(self) -> Arc<dyn FinalReader> {
        match self {
            FinalReadChoice::Replica => Arc::new(ReplicaFinalReader),
            FinalReadChoice::Frontend => Arc::new(FrontendFinalReader),
        }
    }
}

impl RunConfig {
    /// The command line that repeats this run.
    pub fn reproduction(&self) -> String {
        let faults: Vec<&str> = self.faults.iter().map(|f| f.name()).collect();
        format!(
            "perdura-chaos run --nodes {} --seed {} --duration {}s --pace {} --workload {} --final-read {} --faults {} --groups {} --binary {} --out {}",
            self.nodes,
            self.seed,
            self.duration.as_secs(),
            self.pace.name(),
            self.workload.arg(),
            self.final_read.name(),
            if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join(",")
            },
            self.groups,
            self.binary.display(),
            self.out.display()
        )
    }
}

/// `summary.json`.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub reproduction: String,
    pub seed: u64,
    pub nodes: u64,
    pub net_id: u8,
    pub duration_s: u64,
    pub faults: Vec<String>,
    pub workload: String,
    pub workload_ok: u64,
    pub workload_fail: u64,
    pub workload_info: u64,
    pub episodes: Vec<EpisodeLog>,
    /// `None` when the healed cluster converged; else why not (a failed run).
    pub not_converged: Option<String>,
    pub final_read: String,
    pub members_at_end: Vec<u64>,
    pub check: Option<CheckSummary>,
    pub valid: bool,
}

/// Runs one chaos run with the workload and final read `config` chooses.
pub async fn run(config: RunConfig) -> Result<RunSummary, RunError> {
    let workload = config.workload.build();
    let reader = config.final_read.build();
    run_with(config, workload, reader).await
}

/// Runs one chaos run with `workload` and `reader` (the hooks the workload and final-read work
/// plug into).
pub async fn run_with(
    config: RunConfig,
    workload: Arc<dyn Workload>,
    reader: Arc<dyn FinalReader>,
) -> Result<RunSummary, RunError> {
    preflight(&config)?;
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| RunError::Io { what, path, source }
    };
    fs::create_dir_all(&config.out).map_err(io("creating", &config.out))?;
    let history_path = config.out.join("history.jsonl");
    let history_file = File::create(&history_path).map_err(io("creating", &history_path))?;
    let repro = config.out.join("repro.txt");
    fs::write(&repro, config.reproduction() + "\n").map_err(io("writing", &repro))?;

    let mut net_id = match config.net_id {
        Some(id) => id,
        None => net::free_net_id(77).ok_or(RunError::NoFreeNet)?,
    };
    let libfaketime = if config.faults.iter().any(|f| f.needs_faketime()) {
        Some(find_libfaketime().ok_or_else(|| {
            RunError::NoFaketime(
                config
                    .faults
                    .iter()
                    .filter(|f| f.needs_faketime())
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })?)
    } else {
        None
    };
    let cluster_config = ClusterConfig {
        binary: config.binary.clone(),
        dir: config.out.clone(),
        groups: config.groups,
        libfaketime,
        disk_faults: super::nemesis::disk_faults(&config.faults),
    };
    let mut cluster = loop {
        match Cluster::create(cluster_config.clone(), net_id, config.nodes) {
            // Two harnesses starting at once can pick the same free id; the lock decides, and
            // the one that lost takes the next free id.
            Err(ClusterError::Exec(ExecError::NetInUse { .. })) if config.net_id.is_none() => {
                net_id = net::free_net_id(net_id.saturating_add(1)).ok_or(RunError::NoFreeNet)?;
            }
            created => break created?,
        }
    };
    println!(
        "chaos run: {} nodes on 10.77.{net_id}.0/24, seed {}, {}s, faults [{}], out {}",
        config.nodes,
        config.seed,
        config.duration.as_secs(),
        config
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(","),
        config.out.display()
    );
    cluster.start_all(Duration::from_secs(60)).await?;
    cluster.wait_converged(Duration::from_secs(90)).await?;
    println!("cluster up: members {:?}", ids(&cluster.members()));

    let clock = HarnessClock::start();
    let recorder = SharedRecorder::new(history_file, clock);
    let targets = Targets::new(cluster.endpoints());
    let cluster = Arc::new(Mutex::new(cluster));
    let (stop_tx, stop_rx) = watch::channel(false);

    let workload_task = tokio::spawn(workload.run(WorkloadContext {
        recorder: recorder.clone(),
        targets: targets.clone(),
        seed: config.seed,
        stop: stop_rx.clone(),
    }));
    let episodes = schedule(config.seed, &config.faults, config.duration, config.pace);
    println!("nemesis: {} episodes scheduled", episodes.len());
    let mut nemesis = Nemesis {
        cluster: cluster.clone(),
        recorder: recorder.clone(),
        targets: targets.clone(),
        groups: config.groups,
        log: Vec::new(),
    };
    let nemesis_stop = stop_rx.clone();
    let nemesis_task = tokio::spawn(async move {
        let result = nemesis.run(&episodes, nemesis_stop).await;
        (nemesis.log, result)
    });

    let interrupted = tokio::select! {
        _ = tokio::time::sleep(config.duration) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    let _ = stop_tx.send(true);
    let (episode_log, nemesis_result) = nemesis_task
        .await
        .map_err(|e| RunError::Task(e.to_string()))?;
    let report: WorkloadReport = workload_task
        .await
        .map_err(|e| RunError::Task(e.to_string()))??;
    nemesis_result?;
    for episode in &episode_log {
        println!(
            "  {:>6.1}s {:<15} {:<45} inject {} / heal {}",
            episode.at_ms as f64 / 1000.0,
            episode.fault,
            episode.detail,
            episode.inject,
            episode.heal
        );
    }
    println!(
        "workload {}: {} ok, {} fail, {} info",
        workload.name(),
        report.ok,
        report.fail,
        report.info
    );

    let mut cluster = cluster.lock().await;
    let heal = recorder.invoke(
        NEMESIS_PROCESS,
        Op::Nemesis(NemesisOp {
            action: NemesisAction::HealAll,
            fault: None,
            nodes: Vec::new(),
        }),
        None,
    )?;
    let healed = cluster.heal_all(Duration::from_secs(60)).await;
    recorder.complete(
        heal,
        match &healed {
            Ok(()) => OpCompletion::Ok(None),
            Err(e) => OpCompletion::Info(e.to_string()),
        },
    )?;
    if interrupted {
        cluster.shutdown();
        return Err(RunError::Interrupted);
    }
    let converged = match healed {
        Ok(()) => cluster.wait_converged(config.converge_timeout).await,
        Err(e) => Err(e),
    };
    let members = cluster.members();
    let mut summary = RunSummary {
        reproduction: config.reproduction(),
        seed: config.seed,
        nodes: config.nodes,
        net_id,
        duration_s: config.duration.as_secs(),
        faults: config.faults.iter().map(|f| f.name().to_owned()).collect(),
        workload: workload.name().to_owned(),
        workload_ok: report.ok,
        workload_fail: report.fail,
        workload_info: report.info,
        episodes: episode_log,
        not_converged: None,
        final_read: reader.name().to_owned(),
        members_at_end: ids(&members),
        check: None,
        valid: false,
    };
    // A cluster that did not converge is read and judged all the same: the checkers name what
    // differs between the replicas (a run that only says "digests differ" cannot be diagnosed),
    // and the verdict stays invalid.
    let status = match converged {
        Ok(status) => {
            println!(
                "converged at {:.1}s: every group has equal applied indexes on {:?}",
                clock.now().0 as f64 / 1e9,
                ids(&members)
            );
            status
        }
        Err(e) => {
            println!("NOT CONVERGED after healing: {e}");
            summary.not_converged = Some(e.to_string());
            match cluster.status().await {
                Ok(status) => status,
                Err(_) => {
                    cluster.shutdown();
                    write_summary(&config.out, &summary)?;
                    return Ok(summary);
                }
            }
        }
    };

    let records = read_history(BufReader::new(
        File::open(&history_path).map_err(io("reading", &history_path))?,
    ))?;
    let workflow_ids: BTreeSet<WorkflowId> = records
        .iter()
        .filter_map(|r| match &r.record.f {
            Op::StartWorkflow { workflow_id, .. } => Some(workflow_id.clone()),
            _ => None,
        })
        .collect();
    let final_read_ids = workflow_ids.len();
    let final_read = reader
        .read(FinalReadInput {
            endpoints: cluster.endpoints(),
            status,
            workflow_ids: workflow_ids.into_iter().collect(),
            read_at: clock.now(),
        })
        .await;
    let final_read = match final_read {
        Ok(read) => read,
        Err(e) if summary.not_converged.is_some() => {
            println!("no final read of the unconverged cluster: {e}");
            cluster.shutdown();
            write_summary(&config.out, &summary)?;
            return Ok(summary);
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "final read done at {:.1}s ({} workflow IDs per node)",
        clock.now().0 as f64 / 1e9,
        final_read_ids
    );
    cluster.shutdown();
    drop(cluster);
    let final_path = config.out.join("final-read.json");
    let final_file = File::create(&final_path).map_err(io("creating", &final_path))?;
    write_final_read(std::io::BufWriter::new(final_file), &final_read)?;

    let history = History::from_records(records)?;
    let check = check_all(&history, &final_read, &config.check);
    print!("{check}");
    summary.valid = check.valid && summary.not_converged.is_none();
    summary.check = Some(check);
    write_summary(&config.out, &summary)?;
    Ok(summary)
}

fn write_summary(out: &Path, summary: &RunSummary) -> Result<(), RunError> {
    let path = out.join("summary.json");
    let json = serde_json::to_string_pretty(summary)?;
    fs::write(&path, json + "\n").map_err(|source| RunError::Io {
        what: "writing",
        path,
        source,
    })
}

fn preflight(config: &RunConfig) -> Result<(), RunError> {
    if !super::exec::is_root() {
        return Err(RunError::NotRoot);
    }
    if !config.binary.exists() {
        return Err(RunError::NoBinary(config.binary.clone()));
    }
    Ok(())
}

fn ids(nodes: &[crate::ids::NodeId]) -> Vec<u64> {
    nodes.iter().map(|n| n.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reproduction_line_names_every_knob() {
        let config = RunConfig {
            nodes: 3,
            seed: 42,
            duration: Duration::from_secs(60),
            faults: vec![FaultSpec::Kill, FaultSpec::Partition],
            out: PathBuf::from("/tmp/out"),
            binary: PathBuf::from("/bin/perdura"),
            groups: 4,
            net_id: None,
            converge_timeout: Duration::from_secs(60),
            check: CheckConfig::default(),
            workload: WorkloadChoice::Grpc { concurrency: 6 },
            final_read: FinalReadChoice::Replica,
            pace: Pace::Fast,
        };
        assert_eq!(
            config.reproduction(),
            "perdura-chaos run --nodes 3 --seed 42 --duration 60s --pace fast --workload grpc --concurrency 6 --final-read replica --faults kill,partition --groups 4 --binary /bin/perdura --out /tmp/out"
        );
    }
}
