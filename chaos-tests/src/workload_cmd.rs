//! `perdura-chaos workload` and `perdura-chaos final-read`: the command lines of
//! [`perdura_chaos::workload`].

use clap::Args;
use perdura_chaos::harness::clock::HarnessClock;
use perdura_chaos::workload::nodes::NodeAddr;
use perdura_chaos::workload::{ProcessConfig, WorkloadConfig, replica, run_workload};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected e.g. 30s, 500ms, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?}: unit must be ms, s or m")),
    }
}

#[derive(Args)]
pub struct WorkloadArgs {
    /// gRPC addresses of the nodes, comma-separated; node N is the N-th.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long the main phase runs (e.g. 30s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    duration: Duration,
    /// At most this many operations in the main phase.
    #[arg(long)]
    ops: Option<u64>,
    /// Logical client processes.
    #[arg(long, default_value_t = 6)]
    concurrency: u64,
    /// Polls only after the main phase, so started workflows finish.
    #[arg(long, value_parser = parse_duration, default_value = "8s")]
    drain: Duration,
    /// The JSONL history.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct FinalReadArgs {
    /// gRPC addresses of the nodes, comma-separated, in the order given to `workload`.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Wait at most this long for equal applied indexes everywhere before reading (0: do not
    /// wait).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    converge_timeout: Duration,
    /// The final-read JSON document.
    #[arg(long)]
    out: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

pub fn workload(args: WorkloadArgs) -> ExitCode {
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let config = WorkloadConfig {
            nodes: NodeAddr::numbered(&args.nodes)?,
            processes: ProcessConfig {
                seed: args.seed,
                max_ops: args.ops,
                concurrency: args.concurrency.max(1),
                drain: args.drain,
            },
            duration: args.duration,
            out: args.out.clone(),
        };
        let report = runtime()?.block_on(run_workload(&config))?;
        println!(
            "workload: {} ok, {} fail, {} info",
            report.ok, report.fail, report.info
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("perdura-chaos workload: {error}");
            ExitCode::from(2)
        }
    }
}

pub fn final_read(args: FinalReadArgs) -> ExitCode {
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let nodes = NodeAddr::numbered(&args.nodes)?;
        let read = runtime()?.block_on(async {
            if !args.converge_timeout.is_zero() {
                replica::wait_converged(&nodes, args.converge_timeout).await?;
            }
            replica::read_cluster(&nodes, HarnessClock::absolute().now()).await
        })?;
        let file = std::fs::File::create(&args.out)?;
        serde_json::to_writer(std::io::BufWriter::new(file), &read)?;
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("perdura-chaos final-read: {error}");
            ExitCode::from(2)
        }
    }
}
