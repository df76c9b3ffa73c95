//! `--metrics-addr`: the real binary serves Prometheus text on `GET /metrics`. On `perdura dev`
//! a small workflow run through raw gRPC shows up in every required series; on a three-node
//! `perdura server start` cluster each workflow is counted once, not once per replica.

mod common;

use common::{Server, free_port, poll_workflow_request, start_request};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::CommandType;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One sample of the text exposition: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses `name{k="v",…} value` lines (comments skipped; values here never contain `",`).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once("=\"").expect("label pair");
                        (key.to_string(), value.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample `name` whose labels are exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// `GET /metrics` as a plain HTTP/1.1 request; returns the body.
async fn scrape(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the metrics listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let response = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    body.to_string()
}

fn complete_command() -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            ),
        ),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_raft_rpc_and_workflow_series() {
    let (port, metrics_port) = (free_port(), free_port());
    let (port_arg, metrics_arg) = (port.to_string(), format!("127.0.0.1:{metrics_port}"));
    let args = [
        "dev",
        "--ephemeral",
        "--port",
        &port_arg,
        "--log-level",
        "warn",
        "--metrics-addr",
        &metrics_arg,
    ];
    let server = Server::start(&args, port);
    let mut client = server.client().await;

    // One workflow runs to completion; its start is retried once with the same request ID.
    let first = client
        .start_workflow_execution(start_request("metrics-1", "req-1"))
        .await
        .expect("start")
        .into_inner();
    let retry = client
        .start_workflow_execution(start_request("metrics-1", "req-1"))
        .await
        .expect("retried start")
        .into_inner();
    assert_eq!(retry.run_id, first.run_id, "the retry is deduplicated");
    let task = client
        .poll_workflow_task_queue(poll_workflow_request("probe-tq"))
        .await
        .expect("poll")
        .into_inner();
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            commands: vec![complete_command()],
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("complete");
    // A second workflow is terminated.
    client
        .start_workflow_execution(start_request("metrics-2", "req-2"))
        .await
        .expect("start");
    client
        .terminate_workflow_execution(ws::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "metrics-2".into(),
                run_id: String::new(),
            }),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .expect("terminate");
    // A failing call: its status code is a label of the RPC histogram.
    let missing = client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "no-such-namespace".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown namespace");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let text = scrape(metrics_port).await;
    let samples = parse(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} in\n{text}"))
    };

    // Workflows: two client starts (the deduplicated retry is not one), two closes.
    let ns = ("namespace", "default");
    assert_eq!(get("perdura_workflows_started_total", &[ns]), 2.0);
    let closed = |status| {
        get(
            "perdura_workflows_completed_total",
            &[ns, ("status", status)],
        )
    };
    assert_eq!(closed("completed"), 1.0);
    assert_eq!(closed("terminated"), 1.0);

    // RPC latency by method and code, as a histogram with latency buckets.
    let start = [
        ("service", "WorkflowService"),
        ("method", "StartWorkflowExecution"),
        ("code", "OK"),
    ];
    assert_eq!(get("perdura_rpc_seconds_count", &start), 3.0);
    let mut bucket = start.to_vec();
    bucket.push(("le", "+Inf"));
    assert_eq!(get("perdura_rpc_seconds_bucket", &bucket), 3.0);
    bucket.pop();
    bucket.push(("le", "0.001"));
    assert!(get("perdura_rpc_seconds_bucket", &bucket) <= 3.0);
    let not_found = [
        ("service", "WorkflowService"),
        ("method", "DescribeNamespace"),
        ("code", "NotFound"),
    ];
    assert_eq!(get("perdura_rpc_seconds_count", &not_found), 1.0);
    assert!(
        text.contains("# TYPE perdura_rpc_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("# HELP perdura_rpc_seconds "), "{text}");

    // Raft, per group: dev mode runs the meta group 0 and workflow groups 1..=4 on this node.
    for group in ["0", "1", "2", "3", "4"] {
        let g = [("group", group)];
        assert!(get("perdura_raft_applied_index", &g) > 0.0, "group {group}");
        assert_eq!(get("perdura_raft_is_leader", &g), 1.0, "group {group}");
        assert!(get("perdura_raft_leader_changes_total", &g) >= 1.0);
        assert!(get("perdura_raft_log_entries", &g) > 0.0, "group {group}");
    }
    // Every workflow proposal was timed on some workflow group.
    let commits: f64 = ["1", "2", "3", "4"]
        .iter()
        .filter_map(|g| {
            value(
                &samples,
                "perdura_raft_commit_seconds_count",
                &[("group", g)],
            )
        })
        .sum();
    assert!(
        commits >= 6.0,
        "start, start, WFT started, completed, start, terminate"
    );

    // Group commit: fsyncs happened, each carrying at least one entry.
    let fsyncs = get("perdura_log_entries_per_fsync_count", &[]);
    assert!(fsyncs > 0.0);
    assert!(get("perdura_log_entries_per_fsync_bucket", &[("le", "4096")]) <= fsyncs);
    assert!(get("perdura_log_batches_per_fsync_count", &[]) > 0.0);

    let version = ("version", env!("CARGO_PKG_VERSION"));
    assert_eq!(get("perdura_build_info", &[version]), 1.0);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_metrics_address_stops_the_start() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let metrics_arg = busy.local_addr().expect("addr").to_string();
    let port = free_port();
    let port_arg = port.to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_perdura"))
        .args([
            "dev",
            "--ephemeral",
            "--port",
            &port_arg,
            "--metrics-addr",
            &metrics_arg,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn perdura");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("perdura kept running with a busy metrics address");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(stderr.contains(&metrics_arg), "{stderr}");
    drop(busy);
}

/// Which node (index) leads each group, from every node's `perdura_raft_is_leader`; `None` if
/// a group has no single leader right now.
async fn leaders(metrics_ports: &[u16]) -> Option<BTreeMap<String, usize>> {
    let mut leaders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (node, port) in metrics_ports.iter().enumerate() {
        for sample in parse(&scrape(*port).await) {
            if sample.name == "perdura_raft_is_leader" {
                let group = sample.labels.get("group").cloned().unwrap_or_default();
                let entry = leaders.entry(group).or_default();
                if sample.value == 1.0 {
                    entry.push(node);
                }
            }
        }
    }
    leaders
        .into_iter()
        .map(|(group, nodes)| (nodes.len() == 1).then(|| (group, nodes[0])))
        .collect()
}

/// Sum over the nodes of the sample `name` with exactly `labels` (absent counts 0).
async fn cluster_sum(metrics_ports: &[u16], name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let mut values = Vec::new();
    for port in metrics_ports {
        values.push(value(&parse(&scrape(*port).await), name, labels).unwrap_or(0.0));
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_counts_each_workflow_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer, _))| format!("{}=127.0.0.1:{peer}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::new();
    for (i, (grpc, peer, metrics)) in ports.iter().enumerate() {
        let data_dir = root.path().join(format!("n{}", i + 1));
        let args = [
            "server".to_string(),
            "start".into(),
            "--node-id".into(),
            (i + 1).to_string(),
            "--data-dir".into(),
            data_dir.to_str().expect("utf-8 path").into(),
            "--grpc-addr".into(),
            format!("127.0.0.1:{grpc}"),
            "--peer-addr".into(),
            format!("127.0.0.1:{peer}"),
            "--initial-cluster".into(),
            cluster.clone(),
            "--groups".into(),
            "4".into(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{metrics}"),
            "--log-level".into(),
            "warn".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        servers.push(Server::start(&args, *grpc));
    }
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(server.client().await);
    }
    let metrics_ports: Vec<u16> = ports.iter().map(|p| p.2).collect();

    // Wait for settled leadership (the balancer moves leaders every few seconds at first), so
    // that no leader change falls between the close below and its count.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous = None;
    loop {
        let now = leaders(&metrics_ports).await;
        if now.as_ref().is_some_and(|l| l.len() == 5) && now == previous {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leadership never settled: {now:?}"
        );
        previous = now;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }

    // Started through node 1, terminated through node 2.
    clients[0]
        .start_workflow_execution(start_request("cluster-metrics-1", "req-1"))
        .await
        .expect("start through node 1");
    clients[1]
        .terminate_workflow_execution(ws::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "cluster-metrics-1".into(),
                run_id: String::new(),
            }),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .expect("terminate through node 2");

    // Every replica applies the close; wait until all applied indexes agree.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut agree = true;
        for group in ["0", "1", "2", "3", "4"] {
            let applied = cluster_sum(
                &metrics_ports,
                "perdura_raft_applied_index",
                &[("group", group)],
            )
            .await;
            agree &= applied[0] > 0.0 && applied.iter().all(|a| *a == applied[0]);
        }
        if agree {
            break;
        }
        assert!(Instant::now() < deadline, "replicas never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ns = ("namespace", "default");
    let started = cluster_sum(&metrics_ports, "perdura_workflows_started_total", &[ns]).await;
    assert_eq!(
        started,
        [1.0, 0.0, 0.0],
        "counted by the node that answered"
    );
    let closed = cluster_sum(
        &metrics_ports,
        "perdura_workflows_completed_total",
        &[ns, ("status", "terminated")],
    )
    .await;
    assert_eq!(
        closed.iter().sum::<f64>(),
        1.0,
        "three replicas applied the close, one counted it: {closed:?}"
    );
    let terminate = [
        ("service", "WorkflowService"),
        ("method", "TerminateWorkflowExecution"),
        ("code", "OK"),
    ];
    let terminated = cluster_sum(&metrics_ports, "perdura_rpc_seconds_count", &terminate).await;
    assert_eq!(terminated, [0.0, 1.0, 0.0]);
    for server in servers {
        assert!(server.terminate().success());
    }
}
