//! `perdura-chaos` — the chaos tool's command line.
//! * `perdura-chaos check <history.jsonl> <final-read.json>` runs the nine checkers, prints the
//!   summary (a table and every violation's witness, or JSON with `--json`) and exits 0 when the
//!   history is valid, 1 when an invariant is violated, 2 when the input cannot be read.
//! * `perdura-chaos run …` runs a cluster under the nemesis and checks it (`harness::cli`);
//!   `perdura-chaos cleanup` removes what an interrupted run left (namespaces, bridges).
//! * `perdura-chaos sim …` runs the deterministic simulation (`sim::cli`).
//! * `perdura-chaos workload | final-read` run the gRPC workload / final read stand-alone.
//! * `perdura-chaos results <run dir>…` tabulates a campaign (RESULTS.md).
//! * `perdura-chaos lazyfs mount|clear-cache|sync|held` serves or commands our lazyfs
//!   (`lazyfs::cli`).

use clap::{Args, Parser, Subcommand};
use perdura_chaos::checker::{CheckConfig, CheckSummary, check_all};
use perdura_chaos::history::{History, JsonlError, PairingError, read_final_read, read_history};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thiserror::Error;

#[derive(Parser)]
#[command(
    name = "perdura-chaos",
    about = "Jepsen-style chaos testing for Perdura"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a recorded history and final read against the nine invariants.
    Check(CheckArgs),
    /// Run a cluster in network namespaces under a seeded nemesis and check the history.
    Run(perdura_chaos::harness::cli::RunArgs),
    /// Remove the namespaces and bridges of interrupted runs.
    Cleanup(perdura_chaos::harness::cli::CleanupArgs),
    /// Run the deterministic simulation for one seed or a range of seeds.
    Sim(perdura_chaos::sim::cli::SimArgs),
    /// Run the gRPC workload (starter + worker) against the nodes, recording the history.
    Workload(workload_cmd::WorkloadArgs),
    /// Read every node's replicas (ReadReplica) into the final-read document.
    FinalRead(workload_cmd::FinalReadArgs),
    /// Tabulate a campaign: fault types × runs × operations × violations, per invariant, per run.
    Results(results_cmd::ResultsArgs),
    /// Our lazyfs: a FUSE mount that loses un-fsynced writes on command.
    Lazyfs(perdura_chaos::lazyfs::cli::LazyFsArgs),
}

mod results_cmd;
mod workload_cmd;

#[derive(Args)]
struct CheckArgs {
    /// The JSONL operation history.
    history: PathBuf,
    /// The end-of-run final read (JSON).
    final_read: PathBuf,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Invariant 9: the bound within which an operation must complete (ms).
    #[arg(long, default_value_t = CheckConfig::default().liveness_bound_ms)]
    liveness_bound_ms: u64,
    /// Invariant 9: calm time required before an operation is judged (ms).
    #[arg(long, default_value_t = CheckConfig::default().recovery_grace_ms)]
    recovery_grace_ms: u64,
    /// Invariant 9: nodes that may be down while liveness is still expected.
    #[arg(long, default_value_t = CheckConfig::default().fault_tolerance)]
    fault_tolerance: usize,
    /// Invariant 5: how late after its deadline a live timer may fire (ms).
    #[arg(long, default_value_t = CheckConfig::default().timer_fire_bound_ms)]
    timer_fire_bound_ms: u64,
}

#[derive(Debug, Error)]
enum InputError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: JsonlError },
    #[error("{path}: {source}")]
    Pair { path: PathBuf, source: PairingError },
    #[error("encoding the summary: {0}")]
    Encode(#[from] serde_json::Error),
}

fn open(path: &Path) -> Result<BufReader<File>, InputError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| InputError::Open {
            path: path.to_owned(),
            source,
        })
}

fn check(args: &CheckArgs) -> Result<CheckSummary, InputError> {
    let parse = |source| InputError::Parse {
        path: args.history.clone(),
        source,
    };
    let records = read_history(open(&args.history)?).map_err(parse)?;
    let history = History::from_records(records).map_err(|source| InputError::Pair {
        path: args.history.clone(),
        source,
    })?;
    let final_read =
        read_final_read(open(&args.final_read)?).map_err(|source| InputError::Parse {
            path: args.final_read.clone(),
            source,
        })?;
    let config = CheckConfig {
        liveness_bound_ms: args.liveness_bound_ms,
        recovery_grace_ms: args.recovery_grace_ms,
        fault_tolerance: args.fault_tolerance,
        timer_fire_bound_ms: args.timer_fire_bound_ms,
    };
    Ok(check_all(&history, &final_read, &config))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => perdura_chaos::harness::cli::run_command(args),
        Command::Cleanup(args) => perdura_chaos::harness::cli::cleanup_command(args),
        Command::Sim(args) => perdura_chaos::sim::cli::main(&args),
        Command::Workload(args) => workload_cmd::workload(args),
        Command::FinalRead(args) => workload_cmd::final_read(args),
        Command::Results(args) => results_cmd::results(args),
        Command::Lazyfs(args) => perdura_chaos::lazyfs::cli::main(args),
        Command::Check(args) => {
            let printed = check(&args).and_then(|summary| {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    print!("{summary}");
                }
                Ok(summary.valid)
            });
            match printed {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(error) => {
                    eprintln!("perdura-chaos check: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
