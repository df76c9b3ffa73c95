//! Configuration of `perdura server start` (a cluster node): where each setting comes from and
//! what a valid one is.
//!
//! Every setting ([`Key`]) can be given as a flag (`--node-id 1`), an environment variable
//! (`PERDURA_NODE_ID=1`) or a key of the TOML file named by `--config` (`node_id = 1`). Sources
//! stack as [`ConfigLayer`]s, highest first: **flag > environment > file > default**. Only
//! `groups` (16) and `log_level` (`info`) have defaults; `metrics_addr` is optional; everything
//! else must be set somewhere.
//!
//! Invariants of a [`ServerConfig`]: the node ID is one of the initial cluster's members (unless
//! the node joins a running cluster with `join`, then the initial cluster may be empty); every
//! address is a valid `HOST:PORT`; the gRPC, peer and metrics listeners do not collide.

mod env;
mod file;
mod host_port;
mod initial_cluster;
mod key;
mod layer;

pub use env::layer_from_env;
pub use file::layer_from_file;
pub use host_port::HostPort;
pub use initial_cluster::InitialCluster;
pub use key::{Key, parse_address, parse_groups, parse_log_level, parse_node_id};
pub use layer::ConfigLayer;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Workflow groups of a new cluster unless told otherwise.
pub const DEFAULT_GROUPS: u32 = 16;
/// Log filter unless told otherwise.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// A complete, validated node configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// Listen address of the Temporal frontend (clients, workers, the CLI).
    pub grpc_addr: HostPort,
    /// Listen address of the node-to-node service (Raft and forwarded calls).
    pub peer_addr: HostPort,
    /// The members a new cluster bootstraps with: node ID → the peer address others dial.
    pub initial_cluster: InitialCluster,
    /// Workflow groups of a new cluster; a restart keeps the stored count.
    pub groups: u32,
    /// Listen address of the Prometheus `/metrics` endpoint, if any.
    pub metrics_addr: Option<HostPort>,
    pub log_level: String,
    /// Membership (issue 4): a fresh node joins a running cluster through this member's peer
    /// address instead of bootstrapping from `initial_cluster`.
    pub join: Option<HostPort>,
}

/// Why no configuration could be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "missing {}: set {}, {} or `{}` in the --config file",
        .0.description(), .0.flag(), .0.env_var(), .0.file_key()
    )]
    Missing(Key),
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {} is not valid TOML: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    #[error(
        "node ID {node_id} is not a member of the initial cluster ({cluster}); each node's ID must be one of the IDs listed there"
    )]
    NodeNotInCluster {
        node_id: u64,
        cluster: InitialCluster,
    },
    #[error(
        "{first} ({first_address}) and {second} ({second_address}) would listen on the same port"
    )]
    ListenerClash {
        first: Key,
        first_address: HostPort,
        second: Key,
        second_address: HostPort,
    },
}

/// Assembles the configuration from the flags, the environment and the `config_file` (if any).
pub fn load(
    flags: ConfigLayer,
    config_file: Option<&Path>,
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ServerConfig, ConfigError> {
    let env = layer_from_env(env)?;
    let file = match config_file {
        Some(path) => layer_from_file(path)?,
        None => ConfigLayer::default(),
    };
    resolve(flags.over(env).over(file))
}

/// Applies the defaults to the merged layers and validates the result.
pub fn resolve(layer: ConfigLayer) -> Result<ServerConfig, ConfigError> {
    let config = ServerConfig {
        node_id: layer.node_id.ok_or(ConfigError::Missing(Key::NodeId))?,
        data_dir: layer.data_dir.ok_or(ConfigError::Missing(Key::DataDir))?,
        grpc_addr: layer.grpc_addr.ok_or(ConfigError::Missing(Key::GrpcAddr))?,
        peer_addr: layer.peer_addr.ok_or(ConfigError::Missing(Key::PeerAddr))?,
        initial_cluster: match (layer.initial_cluster, &layer.join) {
            (Some(cluster), _) => cluster,
            (None, Some(_)) => InitialCluster::default(),
            (None, None) => return Err(ConfigError::Missing(Key::InitialCluster)),
        },
        groups: layer.groups.unwrap_or(DEFAULT_GROUPS),
        metrics_addr: layer.metrics_addr,
        log_level: layer
            .log_level
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string()),
        join: layer.join,
    };
    if config.join.is_none() && config.initial_cluster.peer_of(config.node_id).is_none() {
        return Err(ConfigError::NodeNotInCluster {
            node_id: config.node_id,
            cluster: config.initial_cluster,
        });
    }
    check_listeners(&config)?;
    Ok(config)
}

/// Two listeners clash when they share a port and a host, or one of them listens on every
/// interface (`0.0.0.0`, `[::]`).
fn check_listeners(config: &ServerConfig) -> Result<(), ConfigError> {
    let mut listeners = vec![
        (Key::GrpcAddr, &config.grpc_addr),
        (Key::PeerAddr, &config.peer_addr),
    ];
    if let Some(metrics) = &config.metrics_addr {
        listeners.push((Key::MetricsAddr, metrics));
    }
    for (i, (first, a)) in listeners.iter().enumerate() {
        for (second, b) in &listeners[i + 1..] {
            let overlap = a.host() == b.host() || a.is_wildcard() || b.is_wildcard();
            if a.port() == b.port() && overlap {
                return Err(ConfigError::ListenerClash {
                    first: *first,
                    first_address: (*a).clone(),
                    second: *second,
                    second_address: (*b).clone(),
                });
            }
        }
    }
    Ok(())
}

impl ServerConfig {
    /// The configuration as a TOML config file (what `--print-config` shows); loading it back
    /// gives the same configuration.
    pub fn to_toml(&self) -> String {
        let mut table = toml::Table::new();
        let text = |s: &str| toml::Value::String(s.to_string());
        table.insert("node_id".into(), toml::Value::Integer(self.node_id as i64));
        table.insert("data_dir".into(), text(&self.data_dir.to_string_lossy()));
        table.insert("grpc_addr".into(), text(self.grpc_addr.as_str()));
        table.insert("peer_addr".into(), text(self.peer_addr.as_str()));
        table.insert(
            "groups".into(),
            toml::Value::Integer(i64::from(self.groups)),
        );
        if let Some(metrics) = &self.metrics_addr {
            table.insert("metrics_addr".into(), text(metrics.as_str()));
        }
        table.insert("log_level".into(), text(&self.log_level));
        let members = self
            .initial_cluster
            .members()
            .iter()
            .map(|(id, address)| (id.to_string(), text(address.as_str())))
            .collect();
        if !self.initial_cluster.members().is_empty() {
            table.insert("initial_cluster".into(), toml::Value::Table(members));
        }
        if let Some(join) = &self.join {
            table.insert("join".into(), text(join.as_str()));
        }
        toml::to_string(&table).expect("a table of strings and integers always serializes")
    }
}

#[cfg(test)]
mod tests;
