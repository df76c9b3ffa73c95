//! The `run` and `cleanup` subcommands of `perdura-chaos` (arguments and exit statuses), kept
//! here so `main.rs` only dispatches.

use super::nemesis::{Pace, parse_faults};
use super::net;
use super::run::{FinalReadChoice, RunConfig, WorkloadChoice, run};
use crate::checker::CheckConfig;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Cluster size (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Seeds the nemesis schedule and the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long the workload and the nemesis run: `60s`, `2m`, or seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Comma list of kill, pause, partition, isolate, isolate-leader, loss, delay, skew, strobe,
    /// skew-leader, membership, split, rolling-restart, lose-unsynced, fsync-error; `all`;
    /// `none`.
    #[arg(long, default_value = "kill,pause,partition,loss")]
    pub faults: String,
    /// Output directory (history.jsonl, final-read.json, summary.json, repro.txt, node logs).
    #[arg(long)]
    pub out: PathBuf,
    /// The perdura binary (default: $PERDURA_BIN, else $CARGO_TARGET_DIR/debug/perdura).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Workflow groups per node (`perdura server start --groups`).
    #[arg(long, default_value_t = 4)]
    pub groups: u32,
    /// Use subnet 10.77.K.0/24 and names pdcK… (default: the first free K from 77).
    #[arg(long)]
    pub net_id: Option<u8>,
    /// Seconds the healed cluster may take to converge.
    #[arg(long, default_value_t = 120)]
    pub converge_timeout: u64,
    /// Episode density: `normal` (holds 3–8 s, gaps 1.5–4 s) or `fast` (holds 1.5–4 s, gaps
    /// 0.5–1.5 s).
    #[arg(long, default_value = "normal", value_parser = Pace::parse)]
    pub pace: Pace,
    /// `grpc` (starter + worker: activities, timers, signals, children, continue-as-new) or
    /// `starts` (the built-in start-only client).
    #[arg(long, default_value = "grpc")]
    pub workload: String,
    /// Client processes of the `grpc` workload.
    #[arg(long, default_value_t = 6)]
    pub concurrency: u64,
    /// `replica` (every member's own replica through ReadReplica) or `frontend` (the fallback).
    #[arg(long, default_value = "replica")]
    pub final_read: String,
    /// Invariant 9 bound (ms).
    #[arg(long, default_value_t = CheckConfig::default().liveness_bound_ms)]
    pub liveness_bound_ms: u64,
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// Only this net id (default: every `pdc*` namespace and bridge).
    #[arg(long)]
    pub net_id: Option<u8>,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (e.g. 60s, 2m)"))?;
    match unit {
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        "ms" => Ok(Duration::from_millis(value)),
        _ => Err(format!("bad duration unit in {text:?} (s, m, ms)")),
    }
}

/// The default server binary.
pub fn default_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PERDURA_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/perdura-target"));
    target.join("debug").join("perdura")
}

/// Exit status: 0 every invariant held, 1 a violation or no convergence, 2 the harness failed.
pub fn run_command(args: RunArgs) -> ExitCode {
    let faults = if args.faults.trim() == "none" {
        Ok(Vec::new())
    } else {
        parse_faults(&args.faults)
    };
    let faults = match faults {
        Ok(faults) => faults,
        Err(e) => {
            eprintln!("perdura-chaos run: {e}");
            return ExitCode::from(2);
        }
    };
    let workload = match args.workload.trim() {
        "grpc" => WorkloadChoice::Grpc {
            concurrency: args.concurrency.max(1),
        },
        "starts" => WorkloadChoice::Starts,
        other => {
            eprintln!("perdura-chaos run: unknown workload {other:?} (grpc, starts)");
            return ExitCode::from(2);
        }
    };
    let final_read = match args.final_read.trim() {
        "replica" => FinalReadChoice::Replica,
        "frontend" => FinalReadChoice::Frontend,
        other => {
            eprintln!("perdura-chaos run: unknown final read {other:?} (replica, frontend)");
            return ExitCode::from(2);
        }
    };
    let config = RunConfig {
        workload,
        final_read,
        pace: args.pace,
        nodes: args.nodes,
        seed: args.seed,
        duration: args.duration,
        faults,
        out: args.out,
        binary: args.binary.unwrap_or_else(default_binary),
        groups: args.groups,
        net_id: args.net_id,
        converge_timeout: Duration::from_secs(args.converge_timeout),
        check: CheckConfig {
            liveness_bound_ms: args.liveness_bound_ms,
            ..CheckConfig::default()
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("perdura-chaos run: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let reproduction = config.reproduction();
    match runtime.block_on(run(config)) {
        Ok(summary) if summary.valid => {
            println!("VALID. reproduce: {reproduction}");
            ExitCode::SUCCESS
        }
        Ok(_) => {
            println!("INVALID. reproduce: {reproduction}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("perdura-chaos run: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn cleanup_command(args: CleanupArgs) -> ExitCode {
    for mount in crate::lazyfs::unmount_dead_mounts() {
        println!("detached the dead lazyfs mount {}", mount.display());
    }
    let removed = net::cleanup(args.net_id);
    if removed.is_empty() {
        println!("nothing to clean up");
    } else {
        println!("removed the namespaces and bridges of net ids {removed:?}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_minutes_and_bare_numbers() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
