//! The node's Prometheus exporter: `GET /metrics` (text format) on `--metrics-addr`.
//!
//! The crates record through the `metrics` facade (a no-op until a recorder is installed);
//! [`install`] installs the Prometheus recorder as the process-wide recorder, binds its HTTP
//! listener, sets histogram buckets and describes every series. Without `--metrics-addr`
//! nothing is installed and recording costs next to nothing.
//!
//! Series (see the README's "Metrics" section for the full table): per-group Raft commit
//! latency, leader changes, leadership, applied index and log size; group-commit batching per
//! fsync; gRPC latency by method and code; workflows started and completed by namespace.

use anyhow::Context;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use perdura_api::{rpc_metrics, workflow_metrics};
use perdura_raft::log_size;
use std::net::SocketAddr;
use tracing::warn;

/// Latency buckets in seconds: sub-millisecond fsyncs up to long polls (about a minute).
const LATENCY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 90.0,
];

/// Batch-size buckets: powers of two up to the writer's largest merged write (4096 requests).
const BATCH_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Installs the Prometheus recorder and serves it on `addr`. Call once, inside the Tokio
/// runtime and before the Raft groups open (so their first samples are recorded). Fails if
/// `addr` cannot be bound.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_per_fsync".into()), &BATCH_BUCKETS)?
        .build()
        .with_context(|| format!("serve metrics on {addr}"))?;
    metrics::set_global_recorder(recorder)
        .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
    tokio::spawn(async move {
        if let Err(error) = exporter.await {
            warn!(?error, "the metrics listener stopped");
        }
    });
    describe();
    metrics::gauge!("perdura_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(())
}

/// Registers the help text and unit of every series the node exports.
fn describe() {
    describe_gauge!(
        "perdura_build_info",
        "Always 1; the `version` label is the running Perdura version."
    );
    describe_histogram!(
        "perdura_raft_commit_seconds",
        Unit::Seconds,
        "Time from proposing an entry to its group until it is committed and applied."
    );
    describe_counter!(
        "perdura_raft_leader_changes_total",
        "Leader changes of the group seen by this node (including the first election)."
    );
    describe_gauge!(
        "perdura_raft_is_leader",
        "1 while this node is the group's ready leader, else 0."
    );
    describe_gauge!(
        "perdura_raft_applied_index",
        "Index of the last log entry this node applied to the group's state."
    );
    describe_gauge!(
        log_size::LOG_ENTRIES,
        Unit::Count,
        "Entries in the group's Raft log on this node (appended and not yet purged)."
    );
    describe_histogram!(
        "perdura_log_entries_per_fsync",
        Unit::Count,
        "Raft log entries (proposals, all groups) made durable by one group-commit fsync."
    );
    describe_histogram!(
        "perdura_log_batches_per_fsync",
        Unit::Count,
        "Log write requests (appends, votes, truncations; all groups) merged into one fsync."
    );
    describe_histogram!(
        rpc_metrics::RPC_SECONDS,
        Unit::Seconds,
        "gRPC call latency on this node by service, method and status code (long polls included)."
    );
    describe_counter!(
        workflow_metrics::WORKFLOWS_STARTED,
        "Workflow runs started by client calls this node answered, by namespace."
    );
    describe_counter!(
        workflow_metrics::WORKFLOWS_COMPLETED,
        "Workflow runs closed while this node led their group, by namespace and close status."
    );
}
