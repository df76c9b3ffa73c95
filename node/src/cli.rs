//! Command line: `perdura dev`, `perdura server start-dev`, `perdura server start` and the
//! `perdura cluster` client.

use crate::cluster_cmd::ClusterArgs;
use crate::health::HealthArgs;
use crate::server_config::ServerConfig;
use crate::server_start_args::ServerStartArgs;
use crate::start_dev_args;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
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
    /// Operator commands against a running cluster (any node's admin service).
    Cluster(ClusterArgs),
}

#[derive(Subcommand, Debug)]
enum ServerCommand {
    /// Start a node of a multi-node cluster.
    Start(Box<ServerStartArgs>),
    /// Check that a node answers the gRPC health check with SERVING (exit status 0) — for
    /// container health checks and readiness probes.
    Health(HealthArgs),
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
    /// Serve Prometheus metrics at `http://HOST:PORT/metrics` (off unless given).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
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
    /// Where to serve `/metrics`; `None` exports nothing.
    pub metrics_addr: Option<SocketAddr>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Launch {
    /// A single-node server (`dev`, `server start-dev`).
    Dev(ServeOptions),
    /// A cluster node (`server start`).
    Node(ServerConfig),
    /// `server start --print-config`: show the resolved configuration and exit.
    PrintConfig(ServerConfig),
    /// `server health`: ask a node whether it serves.
    Health(HealthArgs),
    /// `cluster …`: an operator command against a node's admin service.
    Cluster(ClusterArgs),
}

impl Cli {
    /// Resolves the command line; `env` is the process environment (`PERDURA_*` settings of
    /// `server start`).
    pub fn into_launch(
        self,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> anyhow::Result<Launch> {
        match self.command {
            Command::Dev(args) => Ok(Launch::Dev(ServeOptions {
                data_dir: (!args.ephemeral).then_some(args.data_dir),
                ip: args.ip,
                port: args.port,
                groups: args.groups,
                namespaces: args.namespaces,
                log_level: args.log_level,
                metrics_addr: args.metrics_addr,
            })),
            Command::Server {
                command: ServerCommand::StartDev { args },
            } => start_dev_args::parse(&args).map(Launch::Dev),
            Command::Server {
                command: ServerCommand::Health(args),
            } => Ok(Launch::Health(args)),
            Command::Cluster(args) => Ok(Launch::Cluster(args)),
            Command::Server {
                command: ServerCommand::Start(args),
            } => {
                let print = args.print_config();
                let config = args.resolve(env)?;
                Ok(if print {
                    Launch::PrintConfig(config)
                } else {
                    Launch::Node(config)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::server_config::Key;
    use clap::CommandFactory;

    fn dev_options(args: &[&str]) -> ServeOptions {
        match Cli::parse_from(args).into_launch([]).expect("parse") {
            Launch::Dev(options) => options,
            other => panic!("expected a dev server, got {other:?}"),
        }
    }

    fn node_config(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Launch> {
        let env = env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        Cli::try_parse_from(args)?.into_launch(env)
    }

    #[test]
    fn dev_defaults() {
        let options = dev_options(&["perdura", "dev"]);
        assert_eq!(options.data_dir, Some(PathBuf::from("perdura-data")));
        assert_eq!(options.port, 7233);
        assert_eq!(options.groups, 4);
        assert_eq!(options.metrics_addr, None);
        let ephemeral = dev_options(&["perdura", "dev", "--ephemeral", "--port", "9000"]);
        assert_eq!(ephemeral.data_dir, None);
        assert_eq!(ephemeral.port, 9000);
        let metrics = dev_options(&["perdura", "dev", "--metrics-addr", "127.0.0.1:9464"]);
        assert_eq!(
            metrics.metrics_addr,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        assert!(
            Cli::try_parse_from(["perdura", "dev", "--metrics-addr", "no-port"]).is_err(),
            "an address without a port is refused"
        );
    }

    const NODE_ARGS: [&str; 13] = [
        "perdura",
        "server",
        "start",
        "--node-id",
        "2",
        "--data-dir",
        "d2",
        "--grpc-addr",
        "127.0.0.1:7243",
        "--peer-addr",
        "127.0.0.1:7244",
        "--initial-cluster",
        "1=127.0.0.1:7234,2=127.0.0.1:7244,3=127.0.0.1:7254",
    ];

    #[test]
    fn server_start_flags() {
        let Launch::Node(config) = node_config(&NODE_ARGS, &[]).expect("parse") else {
            panic!("expected a node");
        };
        assert_eq!(config.node_id, 2);
        assert_eq!(config.data_dir, PathBuf::from("d2"));
        assert_eq!(config.grpc_addr.as_str(), "127.0.0.1:7243");
        assert_eq!(config.initial_cluster.members().len(), 3);
        assert_eq!(config.groups, 16);
        let mut with_all = NODE_ARGS.to_vec();
        with_all.extend([
            "--groups",
            "8",
            "--metrics-addr",
            "127.0.0.1:9090",
            "--log-level",
            "debug",
            "--print-config",
        ]);
        let Launch::PrintConfig(config) = node_config(&with_all, &[]).expect("parse") else {
            panic!("expected --print-config");
        };
        assert_eq!(config.groups, 8);
        assert_eq!(config.metrics_addr.map(|a| a.port()), Some(9090));
        assert_eq!(config.log_level, "debug");
    }

    #[test]
    fn server_start_flags_override_the_environment() {
        let env = [("PERDURA_NODE_ID", "3"), ("PERDURA_GROUPS", "2")];
        let Launch::Node(config) = node_config(&NODE_ARGS, &env).expect("parse") else {
            panic!("expected a node");
        };
        assert_eq!(config.node_id, 2, "the flag wins");
        assert_eq!(config.groups, 2, "the variable fills in");
    }

    #[test]
    fn server_start_rejects_bad_flags_clearly() {
        for (flag, value, needle) in [
            ("--node-id", "0", "1 or more"),
            ("--groups", "0", "1 to 4096"),
            ("--grpc-addr", "localhost", "no port"),
            ("--peer-addr", "http://x:1", "scheme"),
            ("--initial-cluster", "1=a:1,2", "not ID=HOST:PORT"),
            ("--log-level", "info,x=loud", "filter"),
        ] {
            let mut args = NODE_ARGS.to_vec();
            args.extend([flag, value]);
            let error = node_config(&args, &[]).expect_err(flag).to_string();
            assert!(
                error.contains(needle) && error.contains(flag),
                "{flag}: {error}"
            );
        }
        let mut outsider = NODE_ARGS.to_vec();
        outsider.extend(["--node-id", "9"]);
        let error = node_config(&outsider, &[])
            .expect_err("outsider")
            .to_string();
        assert!(error.contains("node ID 9"), "{error}");
        let error = node_config(&["perdura", "server", "start"], &[])
            .expect_err("nothing")
            .to_string();
        assert!(error.contains("missing node ID"), "{error}");
    }

    #[test]
    fn server_start_help_documents_every_key() {
        let mut command = Cli::command();
        let start = command
            .find_subcommand_mut("server")
            .and_then(|server| server.find_subcommand_mut("start"))
            .expect("server start exists");
        let help = start.render_long_help().to_string();
        for key in Key::ALL {
            for needle in [
                key.flag(),
                key.env_var(),
                format!("file: {}", key.file_key()),
            ] {
                assert!(help.contains(&needle), "help lacks {needle}:\n{help}");
            }
        }
        for needle in [
            "--config",
            "--print-config",
            "flag > environment > file > default",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
}
