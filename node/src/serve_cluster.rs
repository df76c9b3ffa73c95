//! Runs one node of a multi-node cluster (`perdura server start`): joins the cluster through
//! [`MultiRaft::open_cluster`] (which serves the peer service on `peer_addr`) — or, with
//! `--join`, as a fresh node through [`MultiRaft::join_cluster`] — then serves the Temporal
//! frontend, the cluster admin service (`perdura cluster …`) and the standard gRPC health
//! service on `grpc_addr` until SIGTERM/SIGINT.
//!
//! Health: NOT_SERVING until the node has joined and serves, then SERVING while it reaches a
//! quorum ([`health::track_quorum`]), and NOT_SERVING from the moment a shutdown begins (so load
//! balancers stop sending before connections close).

use crate::health;
use crate::serve::{SHUTDOWN_GRACE, incoming, shutdown_signal, temporal_services};
use crate::server_config::{HostPort, ServerConfig};
use anyhow::Context;
use perdura_api::admin::ClusterAdminService;
use perdura_api::panic_guard::PanicGuardLayer;
use perdura_api::pb::admin::cluster_admin_server::ClusterAdminServer;
use perdura_api::rpc_metrics::RpcMetricsLayer;
use perdura_api::{Frontend, NodeObserver};
use perdura_raft::cluster::identity;
use perdura_raft::membership::seed;
use perdura_raft::{ClusterConfig, JoinConfig, MultiRaft, RaftTuning};
use std::net::SocketAddr;
use std::sync::Arc;
use tonic_health::ServingStatus;
use tracing::{info, warn};

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let node_id = config.node_id;
    // Bind the client listener before opening storage: a busy port fails fast and leaves the
    // data dir untouched.
    let grpc_addr = resolve(&config.grpc_addr).await?;
    let listener = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("listen on --grpc-addr {grpc_addr}"))?;
    let peer_addr = resolve(&config.peer_addr).await?;
    if let Some(metrics) = &config.metrics_addr {
        let metrics_addr = resolve(metrics).await?;
        crate::metrics::install(metrics_addr)?;
        info!(%metrics_addr, "serving Prometheus metrics at /metrics");
    }
    info!(
        node_id,
        cluster = %config.initial_cluster,
        data_dir = %config.data_dir.display(),
        "Perdura node starting; waiting for a quorum of the cluster"
    );

    let observer = NodeObserver::new();
    let cluster = ClusterConfig {
        node_id,
        data_dir: config.data_dir.clone(),
        shard_groups: config.groups,
        peer_addr,
        initial_cluster: config
            .initial_cluster
            .members()
            .iter()
            .map(|(id, address)| (*id, address.to_string()))
            .collect(),
    };
    let raft = match &config.join {
        Some(member) => {
            let join = JoinConfig {
                node_id,
                data_dir: config.data_dir.clone(),
                peer_addr,
                join: member.to_string(),
            };
            MultiRaft::join_cluster(join, observer.clone(), RaftTuning::default())
                .await
                .with_context(|| format!("node {node_id}: join the cluster through {member}"))?
        }
        None => MultiRaft::open_cluster(cluster, observer.clone(), RaftTuning::default())
            .await
            .with_context(|| format!("node {node_id}: join the cluster"))?,
    };
    observer.attach(&raft);
    tokio::spawn(register_initial_nodes(Arc::clone(&raft)));
    let admin = ClusterAdminService::new(Arc::clone(&raft));
    let frontend = Frontend::new(Arc::clone(&raft), &observer);
    let cluster_id = identity::read(&config.data_dir)
        .ok()
        .flatten()
        .and_then(|identity| identity.cluster_id)
        .unwrap_or_else(|| "?".into());

    let (health, health_service) = tonic_health::server::health_reporter();
    let (workflow_service, operator_service) = temporal_services(&frontend);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            // One place times every call (health checks are labelled method "unknown").
            .layer(RpcMetricsLayer)
            // Inside the timing: a panicking call is timed as INTERNAL.
            .layer(PanicGuardLayer)
            .add_service(health_service)
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
    health.set_service_status("", ServingStatus::Serving).await;
    let quorum_watch = tokio::spawn(health::track_quorum(Arc::clone(&raft), health.clone()));
    info!(
        node_id,
        %cluster_id,
        %grpc_addr,
        %peer_addr,
        groups = ?raft.shard_groups(),
        "Perdura node ready"
    );
    eprintln!(
        "Perdura node {node_id} of cluster {cluster_id} serving on {grpc_addr} (peers on {peer_addr}, data dir {})",
        config.data_dir.display()
    );

    shutdown_signal().await;
    info!(node_id, "shutting down");
    quorum_watch.abort();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    frontend.close();
    let _ = stop_tx.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result.context("gRPC server")?,
        Ok(Err(join)) => warn!(error = %join, "gRPC server task failed"),
        Err(_) => warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them"),
    }
    raft.shutdown().await;
    info!(node_id, "stopped cleanly");
    Ok(())
}

/// Registers the initial cluster's nodes in the meta registry (idempotent; retried while the
/// meta group has no leader).
async fn register_initial_nodes(raft: Arc<MultiRaft>) {
    for _ in 0..60 {
        match seed::seed_initial_nodes(&raft).await {
            Ok(_) => return,
            Err(error) => {
                tracing::debug!(%error, "node registry not seeded yet");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    warn!("could not register the initial nodes in the node registry");
}

/// The socket address a listener binds: an IP literal as is, a host name through DNS (first
/// answer).
async fn resolve(address: &HostPort) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(address.as_str())
        .await
        .with_context(|| format!("resolve {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to no address"))
}
