//! # perdura-bench — a raw-gRPC load generator
//!
//! Starts `--workflows` workflows, at most `--concurrency` in flight, each of which runs one
//! activity and completes. The same process is the worker: workflow-task and activity pollers
//! speak WorkflowService directly (no SDK), so the numbers measure the server. Latency is from
//! the StartWorkflowExecution call to the acknowledged completion of the workflow.

mod load;
mod worker;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "perdura-bench")]
pub struct Options {
    /// Frontend address.
    #[arg(long, default_value = "http://127.0.0.1:7233")]
    pub addr: String,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Total workflows to run.
    #[arg(long, default_value_t = 1000)]
    pub workflows: usize,
    /// Workflows in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Workflow-task pollers and activity pollers (each).
    #[arg(long, default_value_t = 16)]
    pub pollers: usize,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(load::run(options.clone()))?;
    println!("{report}");
    Ok(())
}
