//! # perdura — the server binary
//!
//! `perdura dev` starts a single-node server (every Raft group on this node) for development;
//! `perdura server start-dev …` accepts the Temporal CLI's dev-server form so SDK test
//! environments that launch a dev-server binary can launch Perdura instead.
//!
//! This crate only parses the command line, wires the crates together and handles signals; it
//! holds no workflow logic.

mod cli;
mod serve;
mod start_dev_args;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let options = cli.into_options()?;
    serve::init_logging(&options.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve::run(options))
}
