//! The standard gRPC health check (`grpc.health.v1.Health`) of a cluster node, and
//! `perdura server health`, its client for container health checks and readiness probes.
//!
//! A node reports SERVING for the overall service `""` only once it has opened its Raft groups
//! and its frontend listens; before that, and from the start of a shutdown, NOT_SERVING.

use crate::server_config::{HostPort, parse_address};
use anyhow::{Context, bail};
use clap::Args;
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

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
    if status != ServingStatus::Serving {
        bail!("{} is {}", args.addr, status.as_str_name());
    }
    println!("{} is SERVING", args.addr);
    Ok(())
}
