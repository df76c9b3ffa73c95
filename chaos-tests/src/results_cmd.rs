//! `perdura-chaos results <run dir>…`: reads each run directory of a campaign (`summary.json`,
//! `history.jsonl`, `rc.txt`) and prints the tables of [`perdura_chaos::results`].

use clap::Args;
use perdura_chaos::history::{History, read_history};
use perdura_chaos::results::{RunResult, render};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct ResultsArgs {
    /// Run directories (each written by `perdura-chaos run --out`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

fn read_run(dir: &Path) -> Result<RunResult, String> {
    let summary_path = dir.join("summary.json");
    let summary: serde_json::Value = serde_json::from_reader(BufReader::new(
        File::open(&summary_path).map_err(|e| format!("{}: {e}", summary_path.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", summary_path.display()))?;
    let history_path = dir.join("history.jsonl");
    let records = read_history(BufReader::new(
        File::open(&history_path).map_err(|e| format!("{}: {e}", history_path.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", history_path.display()))?;
    let history =
        History::from_records(records).map_err(|e| format!("{}: {e}", history_path.display()))?;
    let exit = std::fs::read_to_string(dir.join("rc.txt"))
        .ok()
        .and_then(|rc| rc.trim().parse().ok());
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    Ok(RunResult::from_run(&name, &summary, &history, exit))
}

/// Exit 0: tables printed, every run valid; 1: some run not valid or unreadable.
pub fn results(args: ResultsArgs) -> ExitCode {
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for dir in &args.runs {
        match read_run(dir) {
            Ok(run) => runs.push(run),
            Err(e) => unreadable.push(e),
        }
    }
    print!("{}", render(&runs));
    for e in &unreadable {
        println!("\nUNREADABLE RUN (the harness did not finish it): {e}");
    }
    if unreadable.is_empty() && runs.iter().all(|r| r.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
