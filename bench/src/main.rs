//! # perdura-bench — a raw-gRPC load generator
//!
//! Starts `--workflows` workflows, at most `--concurrency` in flight, each of which runs one
//! activity and completes. The same process is the worker: workflow-task and activity pollers
//! speak WorkflowService directly (no SDK), so the numbers measure the server. Latency is from
//! the StartWorkflowExecution call to the acknowledged completion of the workflow.
//!
//! Against a cluster, give every node's frontend (`--addr A --addr B` or `--addr A,B`): the
//! starts go to the nodes in turn and the pollers are spread evenly over them, so every node
//! both receives starts and hands out tasks.

mod load;
mod worker;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "perdura-bench")]
pub struct Options {
    /// Frontend address(es): repeat the flag or give a comma list to spread the load over the
    /// nodes of a cluster. `HOST:PORT` means `http://HOST:PORT`.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        default_value = "http://127.0.0.1:7233"
    )]
    pub addr: Vec<String>,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Total workflows to run.
    #[arg(long, default_value_t = 1000)]
    pub workflows: usize,
    /// Workflows in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Workflow-task pollers and activity pollers (each), spread over the addresses.
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

#[cfg(test)]
mod tests {
    use super::Options;
    use clap::Parser;

    #[test]
    fn addr_takes_repeated_flags_and_comma_lists() {
        let options = Options::parse_from([
            "perdura-bench",
            "--addr",
            "127.0.0.1:1,127.0.0.1:2",
            "--addr",
            "http://127.0.0.1:3",
        ]);
        assert_eq!(
            options.addr,
            ["127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:3"]
        );
        let default = Options::parse_from(["perdura-bench"]);
        assert_eq!(default.addr, ["http://127.0.0.1:7233"]);
    }
}
