//! `perdura-chaos sim`: runs seeds, prints one line per seed, and for every seed with a
//! violation its witnesses and the one command that reproduces it.

use super::{SimConfig, SimReport, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// One seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Cluster size (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Workload rounds per seed.
    #[arg(long, default_value_t = SimConfig::new(0, 3).rounds)]
    pub rounds: u64,
    /// Deliberately broken disks (syncs acknowledged, nothing made durable) and a crash of
    /// every node: the run must report violations.
    #[arg(long)]
    pub ack_before_sync: bool,
    /// No clock skew and no run timeouts: the schedule of the runs before clock faults.
    #[arg(long)]
    pub no_clock_faults: bool,
    /// Leaders stamp their own clock, not their clock capped by the majority bound: the runs must report run
    /// timeouts fired early by a skewed leader.
    #[arg(long)]
    pub leaders_stamp_own_clock: bool,
    /// Run every seed twice and compare the trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Where to write the history and final read of every seed run.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_seeds(args: &SimArgs) -> Result<std::ops::Range<u64>, String> {
    if let Some(range) = &args.seeds {
        let (a, b) = range
            .split_once("..")
            .ok_or_else(|| format!("--seeds {range}: expected A..B"))?;
        let a = a
            .parse::<u64>()
            .map_err(|e| format!("--seeds {range}: {e}"))?;
        let b = b
            .parse::<u64>()
            .map_err(|e| format!("--seeds {range}: {e}"))?;
        return Ok(a..b);
    }
    let seed = args.seed.unwrap_or(1);
    Ok(seed..seed + 1)
}

fn write_artifacts(out: &std::path::Path, report: &SimReport) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let seed = report.config.seed;
    std::fs::write(
        out.join(format!("sim-{seed}-history.jsonl")),
        &report.history_jsonl,
    )?;
    let read = serde_json::to_vec_pretty(&report.final_read).map_err(std::io::Error::other)?;
    std::fs::write(out.join(format!("sim-{seed}-final-read.json")), read)
}

/// Runs the subcommand. Exit 0: every seed clean (and deterministic, if checked); 1: a
/// violation or a nondeterministic seed; 2: bad arguments or a run that could not complete.
pub fn main(args: &SimArgs) -> ExitCode {
    // `PERDURA_SIM_LOG=openraft=debug,perdura_raft=debug`: the cluster's own logs, for
    // following a failing seed (off by default: thousands of lines per seed).
    if let Ok(filter) = std::env::var("PERDURA_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let seeds = match parse_seeds(args) {
        Ok(seeds) => seeds,
        Err(e) => {
            eprintln!("perdura-chaos sim: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut failed = false;
    let mut count = 0u64;
    let (mut operations, mut faults, mut violating) = (0u64, 0u64, 0u64);
    for seed in seeds {
        let config = SimConfig {
            rounds: args.rounds,
            ack_before_sync: args.ack_before_sync,
            clock_faults: !args.no_clock_faults,
            leaders_stamp_own_clock: args.leaders_stamp_own_clock,
            ..SimConfig::new(seed, args.nodes)
        };
        let report = match run(config) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("seed {seed}: the run did not complete: {e}");
                eprintln!("reproduce: {}", config.reproduce_command());
                return ExitCode::from(2);
            }
        };
        count += 1;
        operations += report.summary.operations as u64;
        faults += report.faults;
        if !report.summary.valid {
            violating += 1;
        }
        if let Some(out) = &args.out
            && let Err(e) = write_artifacts(out, &report)
        {
            eprintln!("writing the artifacts: {e}");
        }
        let mut line = format!(
            "seed {seed}: {} ops, {} faults, {} virtual ms, trace {:016x}, {}",
            report.summary.operations,
            report.faults,
            report.virtual_ms,
            report.trace_hash,
            if report.summary.valid {
                "ok"
            } else {
                "VIOLATION"
            }
        );
        if args.check_determinism {
            match run(config) {
                Ok(again) if again.trace_hash == report.trace_hash => {
                    line.push_str(", deterministic")
                }
                Ok(again) => {
                    line.push_str(&format!(
                        ", NOT deterministic (second trace {:016x})",
                        again.trace_hash
                    ));
                    failed = true;
                }
                Err(e) => line.push_str(&format!(", second run failed: {e}")),
            }
        }
        println!("{line}");
        if !report.summary.valid {
            failed = true;
            print!("{}", report.summary);
            println!("reproduce: {}", config.reproduce_command());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{count} seeds in {secs:.1} s ({:.2} seeds/s): {operations} operations, {faults} fault episodes, {violating} seeds with violations",
        count as f64 / secs.max(1e-9)
    );
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
