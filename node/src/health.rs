//! The standard gRPC health check (`grpc.health.v1.Health`) of a cluster node, and
//! `perdura server health`, its client for container health checks and readiness probes.
//!
//! A node reports SERVING for the overall service `""` only once it has joined its cluster and
//! its frontend listens, and then only while it reaches a quorum ([`track_quorum`]); from the
//! start of a shutdown, NOT_SERVING.

use crate::server_config::{HostPort, parse_address};
use anyhow::{Context, bail};
use clap::Args;
use perdura_engine::GroupId;
use perdura_raft::MultiRaft;
use std::sync::Arc;
use std::time::Duration;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

/// `perdura server health`.
#[derive(Args, Debug, Clone)]
pub struct HealthArgs {
    /// The node's gRPC address (its --grpc-addr as seen from here).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7233", value_parser = parse_address)]
    addr: HostPort,
    /// Give up after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    timeout_ms: u64,
}

/// Asks the node; succeeds (exit status 0) only if it answers SERVING.
pub async fn check(args: HealthArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let endpoint = format!("http://{}", args.addr);
    let status = tokio::time::timeout(timeout, async {
        let channel = tonic::transport::Endpoint::from_shared(endpoint)?
            .connect_timeout(timeout)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", args.addr))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .with_context(|| format!("health check of {} failed", args.addr))?;
        anyhow::Ok(reply.into_inner().status())
    })
    .await
    .with_context(|| format!("no answer from {} within {timeout:?}", args.addr))??;
    if status != HealthStatus::Serving {
        bail!("{} is {}", args.addr, status.as_str_name());
    }
    println!("{} is SERVING", args.addr);
    Ok(())
}

/// How often a serving node re-checks that it reaches a quorum.
const QUORUM_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A quorum check that takes longer than this counts as failed.
const QUORUM_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps the overall health status in step with whether this node reaches a quorum of its
/// cluster: SERVING while a read barrier on the meta group succeeds (its leader — this node or
/// another — confirms its leadership with a majority), NOT_SERVING while it fails, e.g. on a
/// node cut off from the others. Runs until the task is aborted.
pub async fn track_quorum(raft: Arc<MultiRaft>, reporter: HealthReporter) {
    let mut serving = true;
    loop {
        tokio::time::sleep(QUORUM_PROBE_INTERVAL).await;
        let reached = tokio::time::timeout(QUORUM_PROBE_TIMEOUT, raft.read_barrier(GroupId::META))
            .await
            .map_err(|_| format!("no answer within {QUORUM_PROBE_TIMEOUT:?}"))
            .and_then(|result| result.map_err(|e| e.to_string()));
        match (&reached, serving) {
            (Ok(()), false) => info!("quorum reached again; health SERVING"),
            (Err(error), true) => warn!(%error, "cannot reach a quorum; health NOT_SERVING"),
            _ => {}
        }
        serving = reached.is_ok();
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
    }
}
