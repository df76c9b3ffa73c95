//! Command line: `perdura dev` and `perdura server start-dev`.

use crate::start_dev_args;
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "perdura",
    version,
    about = "Durable-execution workflow server that speaks the Temporal API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a single-node development server (data in ./perdura-data unless told otherwise).
    Dev(DevArgs),
    /// Temporal-CLI-compatible server commands.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ServerCommand {
    /// `temporal server start-dev` compatible form; unknown dev-server flags are ignored.
    #[command(name = "start-dev", disable_help_flag = true)]
    StartDev {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct DevArgs {
    /// Data directory (embedded RocksDB).
    #[arg(long, default_value = "perdura-data")]
    data_dir: PathBuf,
    /// Use a fresh temporary data directory, deleted on exit.
    #[arg(long, conflicts_with = "data_dir")]
    ephemeral: bool,
    /// gRPC port of the Temporal frontend.
    #[arg(long, default_value_t = 7233)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Number of workflow Raft groups (shards) on this node, fixed when the data dir is created.
    #[arg(long, default_value_t = 4)]
    groups: u32,
    /// Extra namespaces to create at start (`default` always exists).
    #[arg(long = "namespace")]
    namespaces: Vec<String>,
    /// Log filter (error, warn, info, debug, trace, or an env-filter directive).
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// What the server needs to start, whichever command line form gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    /// `None` means ephemeral: a temporary directory removed on exit.
    pub data_dir: Option<PathBuf>,
    pub ip: IpAddr,
    pub port: u16,
    pub groups: u32,
    pub namespaces: Vec<String>,
    pub log_level: String,
}

impl Cli {
    pub fn into_options(self) -> anyhow::Result<ServeOptions> {
        match self.command {
            Command::Dev(args) => Ok(ServeOptions {
                data_dir: (!args.ephemeral).then_some(args.data_dir),
                ip: args.ip,
                port: args.port,
                groups: args.groups,
                namespaces: args.namespaces,
                log_level: args.log_level,
            }),
            Command::Server {
                command: ServerCommand::StartDev { args },
            } => start_dev_args::parse(&args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_defaults() {
        let options = Cli::parse_from(["perdura", "dev"])
            .into_options()
            .expect("parse");
        assert_eq!(options.data_dir, Some(PathBuf::from("perdura-data")));
        assert_eq!(options.port, 7233);
        assert_eq!(options.groups, 4);
        let ephemeral = Cli::parse_from(["perdura", "dev", "--ephemeral", "--port", "9000"])
            .into_options()
            .expect("parse");
        assert_eq!(ephemeral.data_dir, None);
        assert_eq!(ephemeral.port, 9000);
    }
}
