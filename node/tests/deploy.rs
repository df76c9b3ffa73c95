//! Checks the deployment files in `deploy/` against the real `perdura` binary (these machines run
//! no container engine or Kubernetes): every YAML file parses; the Dockerfile's entrypoint and
//! environment, each docker-compose node, the Kubernetes StatefulSet's entrypoint snippet (run by
//! `sh` for each pod name) and the systemd unit with its example config all resolve, through
//! `perdura server start --print-config`, to the configuration they are meant to give; every
//! `PERDURA_*` variable they set is one the binary documents.

use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs the binary with exactly `env` (nothing inherited).
fn perdura(args: &[String], env: &BTreeMap<String, String>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perdura"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run perdura")
}

/// `args` (which start with `server start`) plus `--print-config`, parsed back as TOML.
fn resolved_config(args: &[String], env: &BTreeMap<String, String>) -> toml::Table {
    let mut args = args.to_vec();
    args.push("--print-config".into());
    let output = perdura(&args, env);
    assert!(
        output.status.success(),
        "perdura {args:?} with {env:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .parse()
        .expect("--print-config prints TOML")
}

fn text<'a>(config: &'a toml::Table, key: &str) -> &'a str {
    config
        .get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {config:?}"))
}

fn integer(config: &toml::Table, key: &str) -> i64 {
    config
        .get(key)
        .and_then(toml::Value::as_integer)
        .unwrap_or_else(|| panic!("no {key} in {config:?}"))
}

fn cluster(config: &toml::Table) -> BTreeMap<String, String> {
    config["initial_cluster"]
        .as_table()
        .expect("initial_cluster table")
        .iter()
        .map(|(id, address)| (id.clone(), address.as_str().expect("address").to_string()))
        .collect()
}

/// The `PERDURA_*` variables `perdura server start --help` documents.
fn documented_variables() -> BTreeSet<String> {
    let output = perdura(&strings(&["server", "start", "--help"]), &BTreeMap::new());
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let variables: BTreeSet<String> = help
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|word| word.starts_with("PERDURA_") && word.len() > "PERDURA_".len())
        .map(String::from)
        .collect();
    assert_eq!(variables.len(), 9, "{variables:?}");
    variables
}

fn assert_known_variables(env: &BTreeMap<String, String>, source: &str) {
    let known = documented_variables();
    for name in env.keys().filter(|name| name.starts_with("PERDURA_")) {
        assert!(
            known.contains(name),
            "{source} sets unknown variable {name}"
        );
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let mut value: Value = serde::Deserialize::deserialize(document)
            .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"));
        value
            .apply_merge()
            .unwrap_or_else(|e| panic!("{relative}: merge keys: {e}"));
        if !value.is_null() {
            documents.push(value);
        }
    }
    assert!(!documents.is_empty(), "{relative} has no document");
    documents
}

fn yaml_one(relative: &str) -> Value {
    let mut documents = yaml_documents(relative);
    assert_eq!(documents.len(), 1, "{relative}: one document expected");
    documents.remove(0)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |node, key| {
        node.get(key)
            .unwrap_or_else(|| panic!("missing {key} (path {path:?})"))
    })
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .expect("a mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("value of {k:?} is {other:?}"),
            };
            (k.as_str().expect("string key").to_string(), value)
        })
        .collect()
}

/// The Dockerfile's `ENV` settings (the `KEY=VALUE \` continuation form it uses).
fn dockerfile_env() -> BTreeMap<String, String> {
    let dockerfile = read("Dockerfile");
    let joined = dockerfile.replace("\\\n", " ");
    let env: BTreeMap<String, String> = joined
        .lines()
        .filter_map(|line| line.strip_prefix("ENV "))
        .flat_map(|rest| rest.split_whitespace())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
            (key.to_string(), value.to_string())
        })
        .collect();
    assert!(!env.is_empty(), "the Dockerfile sets PERDURA_* defaults");
    env
}

/// A Dockerfile instruction in exec (JSON array) form, e.g. `ENTRYPOINT ["perdura", …]`.
fn dockerfile_exec_form(instruction: &str) -> Vec<String> {
    let dockerfile = read("Dockerfile").replace("\\\n", " ");
    let line = dockerfile
        .lines()
        .find(|line| line.starts_with(instruction))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    let array = &line[line.find('[').expect("exec form")..];
    serde_norway::from_str(array).expect("a JSON array")
}

/// Runs a health-check command line with its address replaced by a port where nothing listens:
/// the flags must be accepted (a usage error exits 2) and the check must fail (exit 1).
fn assert_health_command_accepted(command: &[String]) {
    assert_eq!(
        &command[..3],
        ["perdura", "server", "health"],
        "{command:?}"
    );
    let closed = format!("127.0.0.1:{}", closed_port());
    let mut args: Vec<String> = command[1..].to_vec();
    let addr = args.iter().position(|arg| arg == "--addr").expect("--addr");
    args[addr + 1] = closed;
    args.extend(strings(&["--timeout-ms", "500"]));
    let output = perdura(&args, &BTreeMap::new());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn every_yaml_file_parses() {
    let mut count = 0;
    let mut pending = vec![deploy_dir()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read deploy dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let is_yaml = path
                .extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml");
            if !is_yaml {
                continue;
            }
            let relative = path
                .strip_prefix(deploy_dir())
                .expect("under deploy")
                .to_str()
                .expect("utf-8")
                .to_string();
            for document in yaml_documents(&relative) {
                if relative.starts_with("k8s/") {
                    for key in ["apiVersion", "kind"] {
                        assert!(document.get(key).is_some(), "{relative}: no {key}");
                    }
                }
            }
            count += 1;
        }
    }
    assert!(count >= 7, "only {count} YAML files under deploy/");
}

#[test]
fn dockerfile_entrypoint_and_environment_start_a_node() {
    let mut env = dockerfile_env();
    assert_known_variables(&env, "Dockerfile");
    let entrypoint = dockerfile_exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, strings(&["perdura", "server", "start"]));
    env.insert("PERDURA_NODE_ID".into(), "2".into());
    env.insert(
        "PERDURA_INITIAL_CLUSTER".into(),
        "1=a:7234,2=b:7234,3=c:7234".into(),
    );
    let config = resolved_config(&entrypoint[1..], &env);
    assert_eq!(integer(&config, "node_id"), 2);
    assert_eq!(text(&config, "data_dir"), "/var/lib/perdura");
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("VOLUME [\"/var/lib/perdura\"]"));
    let exposed: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().map(String::from))
        .collect();
    for key in ["grpc_addr", "peer_addr", "metrics_addr"] {
        let port = text(&config, key).rsplit_once(':').expect("port").1;
        assert!(exposed.contains(port), "{key} port {port} not exposed");
    }
    assert!(dockerfile.contains("USER 10001"), "runs as non-root");
    assert_health_command_accepted(&dockerfile_exec_form("HEALTHCHECK"));
}

#[test]
fn docker_compose_gives_three_distinct_nodes() {
    let compose = yaml_one("docker-compose.yml");
    let services = at(&compose, &["services"]).as_mapping().expect("services");
    assert_eq!(services.len(), 3);
    let mut volumes = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().expect("service name");
        let env = string_map(at(service, &["environment"]));
        assert_known_variables(&env, name);
        let mut full = dockerfile_env();
        full.extend(env);
        let config = resolved_config(&strings(&["server", "start"]), &full);
        let node_id = integer(&config, "node_id");
        assert_eq!(name, format!("perdura-{node_id}"), "service name = node ID");
        let peer = &cluster(&config)[&node_id.to_string()];
        assert_eq!(
            peer,
            &format!("{}:7234", str_at(service, &["hostname"])),
            "{name}'s own cluster entry is its hostname"
        );
        let volume = at(service, &["volumes"])[0].as_str().expect("volume");
        assert!(
            volume.ends_with(":/var/lib/perdura"),
            "{name} mounts {volume}"
        );
        volumes.insert(volume.to_string());
        let test: Vec<String> = at(service, &["healthcheck", "test"])
            .as_sequence()
            .expect("test")
            .iter()
            .map(|arg| arg.as_str().expect("arg").to_string())
            .collect();
        assert_eq!(test[0], "CMD");
        assert_health_command_accepted(&test[1..]);
    }
    assert_eq!(volumes.len(), 3, "every node has its own volume");
}

fn kubernetes_env() -> BTreeMap<String, String> {
    let configmap = yaml_one("k8s/configmap.yaml");
    let data = string_map(at(&configmap, &["data"]));
    assert_known_variables(&data, "k8s/configmap.yaml");
    data
}

#[test]
fn statefulset_entrypoint_derives_node_ids_from_pod_ordinals() {
    let statefulset = yaml_one("k8s/statefulset.yaml");
    assert_eq!(str_at(&statefulset, &["kind"]), "StatefulSet");
    let replicas = at(&statefulset, &["spec", "replicas"])
        .as_u64()
        .expect("replicas");
    assert_eq!(replicas, 3);
    assert_eq!(
        str_at(&statefulset, &["spec", "podManagementPolicy"]),
        "Parallel"
    );
    let service_name = str_at(&statefulset, &["spec", "serviceName"]);
    let container = &at(&statefulset, &["spec", "template", "spec", "containers"])[0];
    let command: Vec<String> = at(container, &["command"])
        .as_sequence()
        .expect("command")
        .iter()
        .map(|arg| arg.as_str().expect("arg").to_string())
        .collect();
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    let binary_dir = Path::new(env!("CARGO_BIN_EXE_perdura"))
        .parent()
        .expect("bin dir")
        .to_str()
        .expect("utf-8");
    let mut env = dockerfile_env();
    env.extend(kubernetes_env());
    env.insert("PATH".into(), format!("{binary_dir}:/usr/bin:/bin"));
    for ordinal in 0..replicas {
        env.insert("POD_NAME".into(), format!("perdura-{ordinal}"));
        let output = Command::new(&command[0])
            .args(&command[1..])
            .arg("--print-config")
            .env_clear()
            .envs(&env)
            .output()
            .expect("run sh");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "pod {ordinal}: {stderr}");
        let config: toml::Table = String::from_utf8_lossy(&output.stdout)
            .parse()
            .expect("TOML");
        let node_id = integer(&config, "node_id");
        assert_eq!(node_id as u64, ordinal + 1, "node IDs start at 1");
        let members = cluster(&config);
        assert_eq!(members.len() as u64, replicas, "one member per replica");
        assert!(
            members[&node_id.to_string()]
                .starts_with(&format!("perdura-{ordinal}.{service_name}:")),
            "node {node_id}'s peer address is its pod's stable name: {members:?}"
        );
    }
    env.insert("POD_NAME".into(), "perdura".into());
    let output = Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .envs(&env)
        .output()
        .expect("run sh");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot derive a node ID"));

    // Probes, ports and the data volume line up with the configuration.
    let ports: BTreeMap<String, u64> = at(container, &["ports"])
        .as_sequence()
        .expect("ports")
        .iter()
        .map(|port| {
            (
                str_at(port, &["name"]).to_string(),
                at(port, &["containerPort"]).as_u64().expect("port"),
            )
        })
        .collect();
    let data = kubernetes_env();
    for (name, key) in [
        ("grpc", "PERDURA_GRPC_ADDR"),
        ("peer", "PERDURA_PEER_ADDR"),
        ("metrics", "PERDURA_METRICS_ADDR"),
    ] {
        let port = data[key].rsplit_once(':').expect("port").1;
        assert_eq!(ports[name].to_string(), port, "{name}");
    }
    assert_eq!(
        at(container, &["readinessProbe", "grpc", "port"]).as_u64(),
        Some(ports["grpc"])
    );
    let mount = &at(container, &["volumeMounts"])[0];
    assert_eq!(str_at(mount, &["mountPath"]), data["PERDURA_DATA_DIR"]);
    let claim = &at(&statefulset, &["spec", "volumeClaimTemplates"])[0];
    assert_eq!(
        str_at(claim, &["metadata", "name"]),
        str_at(mount, &["name"])
    );
}

#[test]
fn kubernetes_services_and_disruption_budget() {
    let statefulset = yaml_one("k8s/statefulset.yaml");
    let labels = at(&statefulset, &["spec", "template", "metadata", "labels"]).clone();
    let peer = yaml_one("k8s/service-peer.yaml");
    assert_eq!(
        str_at(&peer, &["metadata", "name"]),
        str_at(&statefulset, &["spec", "serviceName"])
    );
    assert_eq!(str_at(&peer, &["spec", "clusterIP"]), "None");
    assert_eq!(
        at(&peer, &["spec", "publishNotReadyAddresses"]).as_bool(),
        Some(true)
    );
    assert_eq!(at(&peer, &["spec", "selector"]), &labels);
    let client = yaml_one("k8s/service.yaml");
    assert_eq!(at(&client, &["spec", "selector"]), &labels);
    assert_eq!(
        at(&client, &["spec", "ports"])[0]
            .get("port")
            .and_then(Value::as_u64),
        Some(7233)
    );
    let pdb = yaml_one("k8s/pdb.yaml");
    assert_eq!(str_at(&pdb, &["kind"]), "PodDisruptionBudget");
    assert_eq!(at(&pdb, &["spec", "maxUnavailable"]).as_u64(), Some(1));
    assert_eq!(at(&pdb, &["spec", "selector", "matchLabels"]), &labels);
    let kustomization = yaml_one("k8s/kustomization.yaml");
    let resources: BTreeSet<&str> = at(&kustomization, &["resources"])
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("name"))
        .collect();
    for file in std::fs::read_dir(deploy_dir().join("k8s")).expect("k8s dir") {
        let name = file.expect("entry").file_name();
        let name = name.to_str().expect("utf-8");
        if name != "kustomization.yaml" {
            assert!(resources.contains(name), "kustomization misses {name}");
        }
    }
}

#[test]
fn systemd_unit_starts_the_example_config() {
    let unit = read("systemd/perdura.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect();
    let value = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("perdura.service has no {key}="))
    };
    assert_eq!(value("Restart"), "on-failure");
    assert!(value("LimitNOFILE").parse::<u64>().expect("number") >= 65536);
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
    ] {
        assert_ne!(value(hardening), "no", "{hardening}");
    }
    let exec: Vec<String> = value("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(exec[0].ends_with("/perdura"), "{exec:?}");
    let mut args = exec[1..].to_vec();
    let config_at = args.iter().position(|a| a == "--config").expect("--config") + 1;
    assert_eq!(args[config_at], "/etc/perdura/perdura.toml");
    let example = deploy_dir().join("systemd/perdura.toml");
    args[config_at] = example.to_str().expect("utf-8").to_string();
    let config = resolved_config(&args, &BTreeMap::new());
    assert_eq!(integer(&config, "node_id"), 1);
    assert_eq!(
        text(&config, "data_dir"),
        format!("/var/lib/{}", value("StateDirectory"))
    );
    assert_eq!(text(&config, "grpc_addr"), "0.0.0.0:7233");
    assert_eq!(text(&config, "peer_addr"), "0.0.0.0:7234");
    assert_eq!(text(&config, "metrics_addr"), "0.0.0.0:9090");
    assert_eq!(integer(&config, "groups"), 16);
    assert_eq!(text(&config, "log_level"), "info");
    assert_eq!(
        cluster(&config).into_values().collect::<Vec<_>>(),
        ["10.0.0.1:7234", "10.0.0.2:7234", "10.0.0.3:7234"]
    );
    // A drop-in's Environment= overrides the file.
    let env = BTreeMap::from([("PERDURA_NODE_ID".to_string(), "3".to_string())]);
    assert_eq!(integer(&resolved_config(&args, &env), "node_id"), 3);
}
