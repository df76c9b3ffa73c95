//! # perdura — the server binary
//!
//! `perdura dev` starts a single-node server (every Raft group on this node) for development;
//! `perdura server start …` starts one node of a multi-node cluster ([`server_config`] says
//! where its settings come from); `perdura server start-dev …` accepts the Temporal CLI's dev-server form so SDK test
//! environments that launch a dev-server binary can launch Perdura instead; `perdura cluster …`
//! is the operator's client of a node's admin service.
//!
//! This crate only parses the command line, wires the crates together and handles signals; it
//! holds no workflow logic.

mod cli;
mod cluster_cmd;
mod health;
mod metrics;
mod serve;
mod serve_cluster;
mod server_config;
mod server_start_args;
mod start_dev_args;

use clap::Parser;
use cli::Launch;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let launch = cli.into_launch(std::env::vars_os())?;
    let log_level = match &launch {
        Launch::PrintConfig(config) => {
            print!("{}", config.to_toml());
            return Ok(());
        }
        Launch::Health(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(health::check(args.clone()));
        }
        Launch::Cluster(_) => return run_cluster_command(launch),
        Launch::Dev(options) => options.log_level.clone(),
        Launch::Node(config) => config.log_level.clone(),
    };
    serve::init_logging(&log_level);
    // A failed log write or fsync ends the server at once (fail-stop, see
    // perdura_storage::fail_stop): it must never serve on from a state it could not persist.
    perdura_storage::fail_stop::exit_on_disk_failure();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match launch {
        Launch::Dev(options) => runtime.block_on(serve::run(options)),
        Launch::Node(config) => runtime.block_on(serve_cluster::run(config)),
        Launch::PrintConfig(_) | Launch::Health(_) | Launch::Cluster(_) => Ok(()),
    }
}

/// `perdura cluster …`: a client command; an error is one line on stderr and exit status 1.
fn run_cluster_command(launch: Launch) -> anyhow::Result<()> {
    let Launch::Cluster(args) = launch else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Err(error) = runtime.block_on(cluster_cmd::run(args)) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
    Ok(())
}
