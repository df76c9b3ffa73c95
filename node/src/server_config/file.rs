//! The config-file layer: a TOML file with the keys of [`Key`] at top level
//! (`node_id = 1`, `data_dir = "/var/lib/perdura"`, `initial_cluster = "1=…,2=…"` or an
//! `[initial_cluster]` table `1 = "host:7234"`).
//!
//! Invariant: a key this server does not know is an error, not silently ignored — a misspelt
//! `node-id` must not start a node with the wrong settings.

use super::ConfigError;
use super::initial_cluster::InitialCluster;
use super::key::{Key, ValueKind};
use super::layer::ConfigLayer;
use std::path::Path;

/// Reads and parses the file at `path`.
pub fn layer_from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    layer_from_toml(&text, path)
}

/// Parses TOML `text`; `path` only names the file in errors.
pub fn layer_from_toml(text: &str, path: &Path) -> Result<ConfigLayer, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut layer = ConfigLayer::default();
    for (name, value) in &table {
        let invalid = |reason: String| ConfigError::Invalid {
            origin: format!("config file {}, key `{name}`", path.display()),
            reason,
        };
        let Some(key) = Key::from_file_key(name) else {
            let known: Vec<&str> = Key::ALL.iter().map(|k| k.file_key()).collect();
            return Err(invalid(format!(
                "unknown key; the known keys are {}",
                known.join(", ")
            )));
        };
        match (key.value_kind(), value) {
            (ValueKind::Integer, toml::Value::Integer(number)) => {
                layer.set_from_text(key, &number.to_string())
            }
            (ValueKind::Text | ValueKind::Cluster, toml::Value::String(text)) => {
                layer.set_from_text(key, text)
            }
            (ValueKind::Cluster, toml::Value::Table(members)) => {
                cluster_from_table(members).map(|cluster| layer.initial_cluster = Some(cluster))
            }
            (ValueKind::Integer, other) => Err(format!("expected a number, found {}", other.type_str())),
            (ValueKind::Text, other) => Err(format!("expected a string, found {}", other.type_str())),
            (ValueKind::Cluster, other) => Err(format!(
                "expected a \"1=HOST:PORT,…\" string or a table of node ID = \"HOST:PORT\", found {}",
                other.type_str()
            )),
        }
        .map_err(invalid)?;
    }
    Ok(layer)
}

fn cluster_from_table(members: &toml::Table) -> Result<InitialCluster, String> {
    let mut pairs = Vec::with_capacity(members.len());
    for (id, address) in members {
        let Some(address) = address.as_str() else {
            return Err(format!(
                "node {id}: expected a \"HOST:PORT\" string, found {}",
                address.type_str()
            ));
        };
        pairs.push((id.as_str(), address));
    }
    InitialCluster::from_pairs(pairs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(text: &str) -> Result<ConfigLayer, ConfigError> {
        layer_from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn reads_every_key_with_a_table_cluster() {
        let layer = parse(
            r#"
            node_id = 3
            data_dir = "/var/lib/perdura"
            grpc_addr = "0.0.0.0:7233"
            peer_addr = "10.0.0.3:7234"
            groups = 32
            metrics_addr = "0.0.0.0:9090"
            log_level = "info,perdura_raft=debug"

            [initial_cluster]
            1 = "10.0.0.1:7234"
            2 = "10.0.0.2:7234"
            3 = "10.0.0.3:7234"
            "#,
        )
        .expect("parse");
        assert_eq!(layer.node_id, Some(3));
        assert_eq!(layer.data_dir, Some(PathBuf::from("/var/lib/perdura")));
        assert_eq!(layer.groups, Some(32));
        assert_eq!(layer.log_level.as_deref(), Some("info,perdura_raft=debug"));
        let cluster = layer.initial_cluster.expect("cluster");
        assert_eq!(
            cluster.to_string(),
            "1=10.0.0.1:7234,2=10.0.0.2:7234,3=10.0.0.3:7234"
        );
    }

    #[test]
    fn the_cluster_may_be_a_string_and_keys_may_be_absent() {
        let layer = parse(r#"initial_cluster = "1=a:7234,2=b:7234""#).expect("parse");
        assert_eq!(layer.initial_cluster.map(|c| c.members().len()), Some(2));
        assert_eq!(layer.node_id, None);
        assert_eq!(parse("").expect("empty file"), ConfigLayer::default());
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected() {
        let message = parse("node-id = 1").expect_err("unknown").to_string();
        assert!(
            message.contains("`node-id`") && message.contains("unknown key"),
            "{message}"
        );
        assert!(message.contains("node_id, data_dir"), "{message}");
        assert!(
            parse("[server]\nnode_id = 1").is_err(),
            "sections are not keys"
        );
        for (text, needle) in [
            ("node_id = \"1\"", "expected a number"),
            ("node_id = 0", "1 or more"),
            ("node_id = -4", "1 or more"),
            ("groups = 1.5", "expected a number"),
            ("data_dir = 7", "expected a string"),
            ("peer_addr = \"nohost\"", "no port"),
            ("initial_cluster = 3", "table of node ID"),
            ("initial_cluster = { 1 = 7234 }", "node 1"),
            ("initial_cluster = { one = \"a:1\" }", "node ID"),
        ] {
            let message = parse(text).expect_err(text).to_string();
            assert!(message.contains(needle), "{text}: {message}");
            assert!(message.contains("test.toml"), "{text}: {message}");
        }
    }

    #[test]
    fn syntax_errors_and_missing_files_name_the_file() {
        let message = parse("node_id = ").expect_err("syntax").to_string();
        assert!(message.contains("test.toml"), "{message}");
        let missing = layer_from_file(Path::new("/nonexistent/perdura.toml")).expect_err("missing");
        assert!(
            missing.to_string().contains("/nonexistent/perdura.toml"),
            "{missing}"
        );
    }
}
