//! Resolution across sources: precedence, defaults, cross-field validation, round trip.

use super::*;
use std::io::Write;

const CLUSTER: &str = "1=127.0.0.1:7301,2=127.0.0.1:7302,3=127.0.0.1:7303";

fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(name, value)| (OsString::from(name), OsString::from(value)))
        .collect()
}

fn layer(pairs: &[(Key, &str)]) -> ConfigLayer {
    let mut layer = ConfigLayer::default();
    for (key, text) in pairs {
        layer.set_from_text(*key, text).expect("valid test value");
    }
    layer
}

fn complete() -> ConfigLayer {
    layer(&[
        (Key::NodeId, "1"),
        (Key::DataDir, "/data/1"),
        (Key::GrpcAddr, "127.0.0.1:7233"),
        (Key::PeerAddr, "127.0.0.1:7301"),
        (Key::InitialCluster, CLUSTER),
    ])
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

#[test]
fn flags_alone_with_defaults() {
    let config = load(complete(), None, env(&[])).expect("load");
    assert_eq!(config.node_id, 1);
    assert_eq!(config.data_dir, PathBuf::from("/data/1"));
    assert_eq!(config.grpc_addr.as_str(), "127.0.0.1:7233");
    assert_eq!(config.peer_addr.as_str(), "127.0.0.1:7301");
    assert_eq!(config.initial_cluster.to_string(), CLUSTER);
    assert_eq!(config.groups, DEFAULT_GROUPS);
    assert_eq!(config.groups, 16);
    assert_eq!(config.metrics_addr, None);
    assert_eq!(config.log_level, "info");
}

#[test]
fn environment_alone() {
    let config = load(
        ConfigLayer::default(),
        None,
        env(&[
            ("PERDURA_NODE_ID", "2"),
            ("PERDURA_DATA_DIR", "/data/2"),
            ("PERDURA_GRPC_ADDR", "0.0.0.0:7233"),
            ("PERDURA_PEER_ADDR", "0.0.0.0:7302"),
            ("PERDURA_INITIAL_CLUSTER", CLUSTER),
            ("PERDURA_GROUPS", "4"),
            ("PERDURA_METRICS_ADDR", "0.0.0.0:9090"),
            ("PERDURA_LOG_LEVEL", "warn"),
        ]),
    )
    .expect("load");
    assert_eq!(config.node_id, 2);
    assert_eq!(config.groups, 4);
    assert_eq!(config.metrics_addr.map(|a| a.port()), Some(9090));
    assert_eq!(config.log_level, "warn");
}

#[test]
fn file_alone() {
    let file = config_file(&format!(
        "node_id = 3\ndata_dir = \"/data/3\"\ngrpc_addr = \"127.0.0.1:7235\"\n\
         peer_addr = \"127.0.0.1:7303\"\ninitial_cluster = \"{CLUSTER}\"\ngroups = 8\n"
    ));
    let config = load(ConfigLayer::default(), Some(file.path()), env(&[])).expect("load");
    assert_eq!(config.node_id, 3);
    assert_eq!(config.groups, 8);
    assert_eq!(config.log_level, "info");
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let file = config_file(&format!(
        "node_id = 3\ndata_dir = \"/file\"\ngrpc_addr = \"127.0.0.1:1001\"\n\
         peer_addr = \"127.0.0.1:1002\"\ninitial_cluster = \"{CLUSTER}\"\n\
         log_level = \"error\"\n"
    ));
    let flags = layer(&[(Key::NodeId, "1")]);
    let environment = env(&[
        ("PERDURA_NODE_ID", "2"),
        ("PERDURA_DATA_DIR", "/env"),
        ("PERDURA_LOG_LEVEL", "debug"),
    ]);
    let config = load(flags, Some(file.path()), environment).expect("load");
    assert_eq!(config.node_id, 1, "flag over env and file");
    assert_eq!(config.data_dir, PathBuf::from("/env"), "env over file");
    assert_eq!(config.log_level, "debug", "env over file");
    assert_eq!(
        config.grpc_addr.as_str(),
        "127.0.0.1:1001",
        "file when nothing else"
    );
    assert_eq!(config.groups, 16, "default when nobody sets it");
}

#[test]
fn a_bad_lower_source_is_reported_even_when_overridden() {
    // Every source is validated on its own: a broken file is a broken deployment even if a flag
    // happens to mask the key today.
    let file = config_file("groups = 0\n");
    let error = load(complete(), Some(file.path()), env(&[])).expect_err("bad file");
    assert!(error.to_string().contains("`groups`"), "{error}");
    let error = load(complete(), None, env(&[("PERDURA_GROUPS", "x")])).expect_err("bad env");
    assert!(error.to_string().contains("PERDURA_GROUPS"), "{error}");
}

#[test]
fn each_required_key_has_a_missing_message_naming_all_three_spellings() {
    for (key, flag, variable, file_key) in [
        (Key::NodeId, "--node-id", "PERDURA_NODE_ID", "node_id"),
        (Key::DataDir, "--data-dir", "PERDURA_DATA_DIR", "data_dir"),
        (
            Key::GrpcAddr,
            "--grpc-addr",
            "PERDURA_GRPC_ADDR",
            "grpc_addr",
        ),
        (
            Key::PeerAddr,
            "--peer-addr",
            "PERDURA_PEER_ADDR",
            "peer_addr",
        ),
        (
            Key::InitialCluster,
            "--initial-cluster",
            "PERDURA_INITIAL_CLUSTER",
            "initial_cluster",
        ),
    ] {
        let mut partial = complete();
        match key {
            Key::NodeId => partial.node_id = None,
            Key::DataDir => partial.data_dir = None,
            Key::GrpcAddr => partial.grpc_addr = None,
            Key::PeerAddr => partial.peer_addr = None,
            Key::InitialCluster => partial.initial_cluster = None,
            _ => unreachable!("only required keys are listed"),
        }
        let error = resolve(partial).expect_err("missing");
        assert!(
            matches!(error, ConfigError::Missing(k) if k == key),
            "{error:?}"
        );
        let message = error.to_string();
        for needle in [flag, variable, file_key] {
            assert!(message.contains(needle), "{message}");
        }
    }
    let message = resolve(ConfigLayer::default())
        .expect_err("empty")
        .to_string();
    assert!(message.starts_with("missing node ID"), "{message}");
}

#[test]
fn the_node_must_be_a_member_of_the_initial_cluster() {
    let mut outsider = complete();
    outsider.node_id = Some(4);
    let message = resolve(outsider).expect_err("not a member").to_string();
    assert!(
        message.contains("node ID 4") && message.contains(CLUSTER),
        "{message}"
    );
}

#[test]
fn listeners_may_not_share_a_port() {
    let mut same = complete();
    same.peer_addr = Some("127.0.0.1:7233".parse().expect("addr"));
    let message = resolve(same).expect_err("clash").to_string();
    assert!(
        message.contains("grpc_addr") && message.contains("peer_addr"),
        "{message}"
    );
    let mut wildcard = complete();
    wildcard.metrics_addr = Some("0.0.0.0:7301".parse().expect("addr"));
    assert!(resolve(wildcard).is_err(), "0.0.0.0 overlaps every host");
    let mut apart = complete();
    apart.metrics_addr = Some("127.0.0.2:7233".parse().expect("addr"));
    assert!(
        resolve(apart).is_ok(),
        "same port on two distinct hosts is fine"
    );
}

#[test]
fn printed_config_loads_back_identically() {
    let mut full = complete();
    full.metrics_addr = Some("[::]:9090".parse().expect("addr"));
    full.log_level = Some("info,perdura_raft=debug".into());
    full.data_dir = Some(PathBuf::from("/data/with \"quotes\""));
    let config = resolve(full).expect("resolve");
    let file = config_file(&config.to_toml());
    let reloaded = load(ConfigLayer::default(), Some(file.path()), env(&[])).expect("reload");
    assert_eq!(reloaded, config);
}

#[test]
fn join_replaces_the_initial_cluster_and_round_trips() {
    let joining = layer(&[
        (Key::NodeId, "4"),
        (Key::DataDir, "/data/4"),
        (Key::GrpcAddr, "127.0.0.1:7234"),
        (Key::PeerAddr, "127.0.0.1:7304"),
    ]);
    let config = load(
        joining.clone(),
        None,
        env(&[("PERDURA_JOIN", "127.0.0.1:7301")]),
    )
    .expect("a joining node needs no initial cluster");
    assert_eq!(
        config.join.as_ref().map(HostPort::as_str),
        Some("127.0.0.1:7301")
    );
    assert!(config.initial_cluster.members().is_empty());
    let file = config_file(&config.to_toml());
    let again = load(ConfigLayer::default(), Some(file.path()), env(&[])).expect("reload");
    assert_eq!(again, config);
    // Without --join the initial cluster is required, and must name the node.
    assert!(matches!(
        load(joining, None, env(&[])),
        Err(ConfigError::Missing(Key::InitialCluster))
    ));
}
