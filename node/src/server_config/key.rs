//! [`Key`]: the settings of `perdura server start` and their three spellings — command-line flag,
//! environment variable, config-file key. This table is the single source of those names: the
//! help text, the error messages and the loaders all read it.

use super::host_port::HostPort;
use std::fmt;

/// One setting of `perdura server start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    NodeId,
    DataDir,
    GrpcAddr,
    PeerAddr,
    InitialCluster,
    Groups,
    MetricsAddr,
    LogLevel,
    /// Peer address of a member of a running cluster that a fresh node joins through.
    Join,
}

/// The shape of a value in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Integer,
    Text,
    /// A `1=HOST:PORT,…` string or a table of node ID → address.
    Cluster,
}

impl Key {
    pub const ALL: [Key; 9] = [
        Key::NodeId,
        Key::DataDir,
        Key::GrpcAddr,
        Key::PeerAddr,
        Key::InitialCluster,
        Key::Groups,
        Key::MetricsAddr,
        Key::LogLevel,
        Key::Join,
    ];

    /// The config-file key, also the flag and variable name's stem.
    pub fn file_key(self) -> &'static str {
        match self {
            Key::NodeId => "node_id",
            Key::DataDir => "data_dir",
            Key::GrpcAddr => "grpc_addr",
            Key::PeerAddr => "peer_addr",
            Key::InitialCluster => "initial_cluster",
            Key::Groups => "groups",
            Key::MetricsAddr => "metrics_addr",
            Key::LogLevel => "log_level",
            Key::Join => "join",
        }
    }

    pub fn flag(self) -> String {
        format!("--{}", self.file_key().replace('_', "-"))
    }

    pub fn env_var(self) -> String {
        format!("PERDURA_{}", self.file_key().to_ascii_uppercase())
    }

    pub fn from_file_key(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.file_key() == name)
    }

    /// What the operator reads in "missing …" errors.
    pub fn description(self) -> &'static str {
        match self {
            Key::NodeId => "node ID",
            Key::DataDir => "data directory",
            Key::GrpcAddr => "gRPC (client) address",
            Key::PeerAddr => "peer address",
            Key::InitialCluster => "initial cluster",
            Key::Groups => "number of workflow groups",
            Key::MetricsAddr => "metrics address",
            Key::LogLevel => "log level",
            Key::Join => "peer address of a member to join",
        }
    }

    pub fn value_kind(self) -> ValueKind {
        match self {
            Key::NodeId | Key::Groups => ValueKind::Integer,
            Key::InitialCluster => ValueKind::Cluster,
            Key::DataDir
            | Key::GrpcAddr
            | Key::PeerAddr
            | Key::MetricsAddr
            | Key::LogLevel
            | Key::Join => ValueKind::Text,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_key())
    }
}

/// Parses a node ID (1 or more). Shared by the flag, the variable and the file.
pub fn parse_node_id(text: &str) -> Result<u64, String> {
    // At most i64::MAX: the TOML form (and `--print-config`) must be able to hold it.
    match text.trim().parse::<i64>() {
        Ok(id @ 1..) => Ok(id as u64),
        _ => Err(format!(
            "{text:?} is not a node ID; expected a whole number of 1 or more (at most 2^63-1)"
        )),
    }
}

/// Parses a workflow-group count, 1 to [`perdura_engine::SLOT_COUNT`] (each group owns at least
/// one hash slot).
pub fn parse_groups(text: &str) -> Result<u32, String> {
    let max = u32::from(perdura_engine::SLOT_COUNT);
    match text.trim().parse::<u32>() {
        Ok(groups) if (1..=max).contains(&groups) => Ok(groups),
        _ => Err(format!(
            "{text:?} is not a group count; expected a whole number from 1 to {max}"
        )),
    }
}

/// Parses a `HOST:PORT`.
pub fn parse_address(text: &str) -> Result<HostPort, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// Checks a log filter (`error`…`trace` or an env-filter directive such as
/// `info,perdura_raft=debug`).
pub fn parse_log_level(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(
            "empty log level; expected error, warn, info, debug, trace or a filter directive"
                .into(),
        );
    }
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("{text:?} is not a log level or filter directive: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_follow_the_file_key() {
        assert_eq!(Key::NodeId.flag(), "--node-id");
        assert_eq!(Key::InitialCluster.env_var(), "PERDURA_INITIAL_CLUSTER");
        assert_eq!(Key::MetricsAddr.file_key(), "metrics_addr");
        for key in Key::ALL {
            assert_eq!(Key::from_file_key(key.file_key()), Some(key));
        }
        assert_eq!(Key::from_file_key("nodeid"), None);
    }

    #[test]
    fn value_parsers_accept_good_and_reject_bad_values() {
        assert_eq!(parse_node_id("3"), Ok(3));
        assert!(parse_node_id("0").is_err());
        assert!(parse_node_id("-2").is_err());
        assert!(parse_node_id("three").is_err());
        assert_eq!(parse_groups("16"), Ok(16));
        assert_eq!(parse_groups("4096"), Ok(4096));
        assert!(parse_groups("0").is_err());
        assert!(parse_groups("4097").unwrap_err().contains("1 to 4096"));
        assert_eq!(
            parse_log_level("info,perdura_raft=debug").as_deref(),
            Ok("info,perdura_raft=debug")
        );
        assert!(parse_log_level("").is_err());
        assert!(parse_log_level("info,perdura_raft=loud").is_err());
    }
}
