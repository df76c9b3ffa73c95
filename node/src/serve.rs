//! Wires storage, Raft, the engine and the gRPC frontend into a running server.

use crate::cli::ServeOptions;
use anyhow::Context;
use perdura_api::admin::ClusterAdminService;
use perdura_api::operator::Operator;
use perdura_api::panic_guard::PanicGuardLayer;
use perdura_api::pb::admin::cluster_admin_server::ClusterAdminServer;
use perdura_api::pb::operatorservice::operator_service_server::OperatorServiceServer;
use perdura_api::pb::workflowservice::workflow_service_server::WorkflowServiceServer;
use perdura_api::rpc_metrics::RpcMetricsLayer;
use perdura_api::{Frontend, NodeObserver, limits};
use perdura_engine::{EngineError, MetaCommand, NamespaceRecord};
use perdura_raft::membership::seed;
use perdura_raft::{MultiRaft, RaftConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tracing::{info, warn};

/// How long a graceful shutdown waits for open connections before stopping anyway.
pub(crate) const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// openraft logs every failed heartbeat and replication to a peer that is down (per group, per
/// attempt) and its election steps at INFO; the peer transport logs each peer going away and
/// coming back once, and `perdura_raft::group` each leadership change. Unless the operator's
/// filter names openraft itself, openraft logs only warnings, and not the per-attempt ones.
const QUIET_OPENRAFT: &str = "openraft=warn,openraft::replication=error,\
     openraft::engine::handler::replication_handler=error,openraft::core::heartbeat=error";

/// The log filter: `RUST_LOG` if set, else `--log-level` (plus [`QUIET_OPENRAFT`] unless it
/// mentions openraft).
fn log_filter(level: &str) -> String {
    if level.contains("openraft") {
        level.to_string()
    } else {
        format!("{level},{QUIET_OPENRAFT}")
    }
}

pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(log_filter(level)))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald, `docker logs` and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// The Temporal services a node serves on its client address (gzip both ways, message size
/// limit), shared by dev and cluster mode.
pub fn temporal_services(
    frontend: &Frontend,
) -> (
    WorkflowServiceServer<Frontend>,
    OperatorServiceServer<Operator>,
) {
    let workflow_service = WorkflowServiceServer::new(frontend.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limits::MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(limits::MAX_GRPC_MESSAGE_BYTES);
    let operator_service = OperatorServiceServer::new(Operator)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    (workflow_service, operator_service)
}

pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    // An ephemeral data dir lives as long as this guard.
    let (data_dir, _ephemeral) = match &options.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("perdura-")
                .tempdir()
                .context("create a temporary data dir")?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("create data dir {}", data_dir.display()))?;
    let address = SocketAddr::new(options.ip, options.port);
    // Bind before opening storage so a busy port fails fast and leaves the data dir untouched.
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen on {address}"))?;
    if let Some(metrics_addr) = options.metrics_addr {
        crate::metrics::install(metrics_addr)?;
        info!(%metrics_addr, "serving Prometheus metrics at /metrics");
    }

    let observer = NodeObserver::new();
    let config = RaftConfig {
        node_id: 1,
        data_dir: data_dir.clone(),
        shard_groups: options.groups,
    };
    let raft = MultiRaft::open_single_node(config, observer.clone())
        .await
        .context("open the node's Raft groups")?;
    observer.attach(&raft);
    for name in &options.namespaces {
        register_namespace(&raft, name).await?;
    }
    // The single node enters the node registry (idempotent on every start).
    if let Err(error) = seed::seed_initial_nodes(&raft).await {
        warn!(%error, "could not register the node in the node registry");
    }
    let frontend = Frontend::new(Arc::clone(&raft), &observer);
    let admin = ClusterAdminService::new(Arc::clone(&raft));

    info!(%address, data_dir = %data_dir.display(), groups = ?raft.shard_groups(), "Perdura dev server ready");
    eprintln!(
        "Perdura dev server listening on {address} (data dir {})",
        data_dir.display()
    );

    let (workflow_service, operator_service) = temporal_services(&frontend);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            // One place times every call of both services.
            .layer(RpcMetricsLayer)
            // Inside the timing: a panicking call is timed as INTERNAL.
            .layer(PanicGuardLayer)
            .add_service(workflow_service)
            .add_service(operator_service)
            .add_service(
                ClusterAdminServer::new(admin)
                    .max_encoding_message_size(perdura_api::admin::MAX_ADMIN_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(incoming(listener), async move {
                let _ = stop_rx.await;
            }),
    );
    shutdown_signal().await;
    info!("shutting down");
    // End every long poll first, then let in-flight calls finish; a client that keeps its
    // connection open cannot hold the server past the grace period.
    frontend.close();
    let _ = stop_tx.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result.context("gRPC server")?,
        Ok(Err(join)) => warn!(error = %join, "gRPC server task failed"),
        Err(_) => warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them"),
    }
    raft.shutdown().await;
    info!("stopped cleanly");
    Ok(())
}

/// Accepted connections with Nagle's algorithm off: every gRPC reply is a small write that must
/// leave at once (with Nagle and delayed ACKs each round trip can stall for tens of ms).
pub(crate) fn incoming(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

async fn register_namespace(raft: &MultiRaft, name: &str) -> anyhow::Result<()> {
    let record = NamespaceRecord {
        name: name.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
        owner_email: String::new(),
        retention_ms: 3 * 24 * 3600 * 1000,
        registered_at_ms: 0,
    };
    match raft
        .propose_meta(MetaCommand::RegisterNamespace(record))
        .await
    {
        Ok(Ok(_)) | Ok(Err(EngineError::NamespaceAlreadyExists(_))) => Ok(()),
        Ok(Err(error)) => Err(anyhow::anyhow!("register namespace {name}: {error}")),
        Err(error) => Err(anyhow::anyhow!("register namespace {name}: {error}")),
    }
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_quiets_openraft_replication_unless_asked_for() {
        assert_eq!(log_filter("info"), format!("info,{QUIET_OPENRAFT}"));
        assert_eq!(log_filter("debug,openraft=trace"), "debug,openraft=trace");
        assert!(tracing_subscriber::EnvFilter::try_new(log_filter("warn")).is_ok());
    }
}
