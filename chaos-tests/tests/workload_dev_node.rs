//! The workload against the real `perdura dev --ephemeral`: a short seeded run, the final read
//! through ReadReplica, then every checker — zero violations, and every invariant the workload
//! targets judged something.
//!
//! Needs the `perdura` binary of this workspace (built by `cargo test --workspace`, or
//! `cargo build -p perdura-node`).

mod common;

use common::dev_node::{built_perdura_binary, free_port};
use perdura_chaos::checker::{CheckConfig, Invariant, check_all};
use perdura_chaos::harness::clock::HarnessClock;
use perdura_chaos::history::{History, read_history};
use perdura_chaos::workload::nodes::NodeAddr;
use perdura_chaos::workload::{ProcessConfig, WorkloadConfig, replica, run_workload};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct DevNode(Child);

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(node: &NodeAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = replica::admin_client(node.channel().expect("channel"));
    while replica::applied_indexes(&mut client, node, Duration::from_secs(2))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the dev node did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_workload_on_a_dev_node_is_valid_and_judges_every_invariant() {
    let port = free_port();
    let _node = DevNode(
        Command::new(built_perdura_binary())
            .args(["dev", "--ephemeral", "--log-level", "warn", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn perdura dev"),
    );
    let nodes = NodeAddr::numbered(&[format!("127.0.0.1:{port}")]).expect("nodes");
    wait_ready(&nodes[0]).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = WorkloadConfig {
        nodes: nodes.clone(),
        processes: ProcessConfig {
            seed: 42,
            max_ops: None,
            concurrency: 6,
            drain: Duration::from_secs(6),
        },
        duration: Duration::from_secs(12),
        out: dir.path().join("history.jsonl"),
    };
    let report = run_workload(&config).await.expect("workload");
    assert!(report.ok > 0, "no operation succeeded: {report:?}");
    replica::wait_converged(&nodes, Duration::from_secs(30))
        .await
        .expect("converged");
    let final_read = replica::read_cluster(&nodes, HarnessClock::absolute().now())
        .await
        .expect("final read");

    let file = std::fs::File::open(&config.out).expect("history file");
    let records = read_history(std::io::BufReader::new(file)).expect("history parses");
    let history = History::from_records(records).expect("history pairs");
    let summary = check_all(&history, &final_read, &CheckConfig::default());
    assert!(summary.valid, "{summary}");
    for invariant in [
        Invariant::AckedStartsSurvive,
        Invariant::HistoryShape,
        Invariant::ActivityCompletion,
        Invariant::TimersNotEarly,
        Invariant::SignalsExactlyOnce,
        Invariant::ResultsStable,
        Invariant::RaftSafety,
    ] {
        let judged = summary.of(invariant).map_or(0, |s| s.judged);
        assert!(judged > 0, "{invariant:?} judged nothing:\n{summary}");
    }
}
