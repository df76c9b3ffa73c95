//! [`ConfigLayer`]: the settings one source gives (flags, environment, config file) — every field
//! optional — and how layers stack: a value set in a higher layer wins, field by field.

use super::host_port::HostPort;
use super::initial_cluster::InitialCluster;
use super::key::{Key, parse_address, parse_groups, parse_log_level, parse_node_id};
use std::path::PathBuf;

/// What one source says; `None` = this source does not set the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigLayer {
    pub node_id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub grpc_addr: Option<HostPort>,
    pub peer_addr: Option<HostPort>,
    pub initial_cluster: Option<InitialCluster>,
    pub groups: Option<u32>,
    pub metrics_addr: Option<HostPort>,
    pub log_level: Option<String>,
    pub join: Option<HostPort>,
}

impl ConfigLayer {
    /// `self` on top of `lower`: each key comes from `self` if set there, else from `lower`.
    pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            node_id: self.node_id.or(lower.node_id),
            data_dir: self.data_dir.or(lower.data_dir),
            grpc_addr: self.grpc_addr.or(lower.grpc_addr),
            peer_addr: self.peer_addr.or(lower.peer_addr),
            initial_cluster: self.initial_cluster.or(lower.initial_cluster),
            groups: self.groups.or(lower.groups),
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            log_level: self.log_level.or(lower.log_level),
            join: self.join.or(lower.join),
        }
    }

    /// Sets `key` from its text form (an environment value, a file string, a number's digits).
    pub fn set_from_text(&mut self, key: Key, text: &str) -> Result<(), String> {
        match key {
            Key::NodeId => self.node_id = Some(parse_node_id(text)?),
            Key::DataDir => {
                if text.trim().is_empty() {
                    return Err("empty path".into());
                }
                self.data_dir = Some(PathBuf::from(text));
            }
            Key::GrpcAddr => self.grpc_addr = Some(parse_address(text)?),
            Key::PeerAddr => self.peer_addr = Some(parse_address(text)?),
            Key::InitialCluster => {
                self.initial_cluster = Some(text.parse().map_err(|e| format!("{e}"))?)
            }
            Key::Groups => self.groups = Some(parse_groups(text)?),
            Key::MetricsAddr => self.metrics_addr = Some(parse_address(text)?),
            Key::LogLevel => self.log_level = Some(parse_log_level(text)?),
            Key::Join => self.join = Some(parse_address(text)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_layer_wins_key_by_key() {
        let mut upper = ConfigLayer::default();
        upper.set_from_text(Key::NodeId, "2").expect("id");
        upper.set_from_text(Key::LogLevel, "debug").expect("level");
        let mut lower = ConfigLayer::default();
        lower.set_from_text(Key::NodeId, "1").expect("id");
        lower.set_from_text(Key::Groups, "8").expect("groups");
        lower
            .set_from_text(Key::DataDir, "/var/lib/perdura")
            .expect("dir");
        let merged = upper.over(lower);
        assert_eq!(merged.node_id, Some(2));
        assert_eq!(merged.log_level.as_deref(), Some("debug"));
        assert_eq!(merged.groups, Some(8));
        assert_eq!(merged.data_dir, Some(PathBuf::from("/var/lib/perdura")));
        assert_eq!(merged.grpc_addr, None);
    }

    #[test]
    fn every_key_parses_its_text_form() {
        let mut layer = ConfigLayer::default();
        for (key, text) in [
            (Key::NodeId, "3"),
            (Key::DataDir, "d"),
            (Key::GrpcAddr, "0.0.0.0:7233"),
            (Key::PeerAddr, "n3:7234"),
            (Key::InitialCluster, "1=n1:7234,2=n2:7234,3=n3:7234"),
            (Key::Groups, "32"),
            (Key::MetricsAddr, "0.0.0.0:9090"),
            (Key::LogLevel, "warn"),
            (Key::Join, "n1:7234"),
        ] {
            layer
                .set_from_text(key, text)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        assert_eq!(layer.groups, Some(32));
        assert_eq!(layer.metrics_addr.as_ref().map(HostPort::port), Some(9090));
        assert!(layer.set_from_text(Key::DataDir, " ").is_err());
        assert!(layer.set_from_text(Key::PeerAddr, "n3").is_err());
    }
}
