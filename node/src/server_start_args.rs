//! The flags of `perdura server start` (a cluster node) and their help text. Values are parsed
//! by the same functions as the environment and the config file ([`crate::server_config`]), so a
//! value means the same thing wherever it is written.

use crate::server_config::{
    self, ConfigError, ConfigLayer, HostPort, InitialCluster, ServerConfig, parse_address,
    parse_groups, parse_log_level, parse_node_id,
};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Every setting can also come from an environment variable or a key of the TOML file given with
--config (names in brackets). Precedence: flag > environment > file > default. Unknown keys in
the file are an error; an empty environment variable counts as unset.

Example (node 1 of three on one machine):
  perdura server start --node-id 1 --data-dir data/n1 \\
    --grpc-addr 127.0.0.1:7233 --peer-addr 127.0.0.1:7234 \\
    --initial-cluster 1=127.0.0.1:7234,2=127.0.0.1:7244,3=127.0.0.1:7254

The same as a config file:
  node_id = 1
  data_dir = \"data/n1\"
  grpc_addr = \"127.0.0.1:7233\"
  peer_addr = \"127.0.0.1:7234\"
  initial_cluster = \"1=127.0.0.1:7234,2=127.0.0.1:7244,3=127.0.0.1:7254\"
  # or: [initial_cluster] with lines 1 = \"127.0.0.1:7234\" …
  groups = 16                     # default 16
  metrics_addr = \"127.0.0.1:9090\" # optional
  log_level = \"info\"              # default info

See deploy/README.md for Docker, Kubernetes and systemd.";

/// `perdura server start`. A flag given twice takes its last value, so wrapper scripts can
/// append overrides.
#[derive(Args, Debug, Default)]
#[command(after_help = AFTER_HELP, args_override_self = true)]
pub struct ServerStartArgs {
    /// This node's ID, 1 or more; must be one of the IDs in the initial cluster. A data dir
    /// belongs to one node ID for good. [env: PERDURA_NODE_ID] [file: node_id]
    #[arg(long, value_name = "N", value_parser = parse_node_id)]
    node_id: Option<u64>,
    /// Data directory (RocksDB, Raft logs, the node's identity); created if missing.
    /// [env: PERDURA_DATA_DIR] [file: data_dir]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address of the Temporal gRPC API (clients, workers, the CLI).
    /// [env: PERDURA_GRPC_ADDR] [file: grpc_addr]
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address)]
    grpc_addr: Option<HostPort>,
    /// Listen address of the node-to-node peer service (Raft traffic, forwarded requests).
    /// [env: PERDURA_PEER_ADDR] [file: peer_addr]
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address)]
    peer_addr: Option<HostPort>,
    /// Members of a new cluster as ID=HOST:PORT pairs of PEER addresses, comma-separated; used
    /// once, when the cluster is first created. In the file also a table of ID = "HOST:PORT".
    /// [env: PERDURA_INITIAL_CLUSTER] [file: initial_cluster]
    #[arg(long, value_name = "ID=HOST:PORT,…", value_parser = parse_initial_cluster)]
    initial_cluster: Option<InitialCluster>,
    /// Number of workflow Raft groups (shards) of a new cluster [default: 16]; a restart keeps
    /// the stored count. [env: PERDURA_GROUPS] [file: groups]
    #[arg(long, value_name = "G", value_parser = parse_groups)]
    groups: Option<u32>,
    /// Listen address of the Prometheus /metrics endpoint (off unless set).
    /// [env: PERDURA_METRICS_ADDR] [file: metrics_addr]
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address)]
    metrics_addr: Option<HostPort>,
    /// Log filter: error, warn, info, debug, trace or an env-filter directive [default: info];
    /// RUST_LOG, if set, wins. [env: PERDURA_LOG_LEVEL] [file: log_level]
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    log_level: Option<String>,
    /// Join a running cluster as a fresh node through the PEER address of any member (instead
    /// of --initial-cluster); then add it with `perdura cluster add-node`. Node IDs are never
    /// reused. [env: PERDURA_JOIN] [file: join]
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address)]
    join: Option<HostPort>,
    /// TOML config file with any of the keys above.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Resolve and validate the configuration, print it as a TOML config file and exit without
    /// starting (nothing is created or opened).
    #[arg(long)]
    print_config: bool,
}

fn parse_initial_cluster(text: &str) -> Result<InitialCluster, String> {
    text.parse().map_err(|e| format!("{e}"))
}

impl ServerStartArgs {
    pub fn print_config(&self) -> bool {
        self.print_config
    }

    /// The full configuration: these flags over `env` over the config file over the defaults.
    pub fn resolve(
        self,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<ServerConfig, ConfigError> {
        let flags = ConfigLayer {
            node_id: self.node_id,
            data_dir: self.data_dir,
            grpc_addr: self.grpc_addr,
            peer_addr: self.peer_addr,
            initial_cluster: self.initial_cluster,
            groups: self.groups,
            metrics_addr: self.metrics_addr,
            log_level: self.log_level,
            join: self.join,
        };
        server_config::load(flags, self.config.as_deref(), env)
    }
}
