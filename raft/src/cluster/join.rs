//! Joining an existing cluster as a fresh node (`perdura server start --join PEER_ADDR`).
//!
//! [`MultiRaft::join_cluster`] claims the data dir for the node id, asks the member at
//! `join` (over the peer protocol, [`PeerAdminCall::Join`]) for the cluster id, the groups and
//! the members' peer addresses, records the cluster id in the identity file, and opens every
//! group **empty and uninitialized**: the node never bootstraps or campaigns on its own. It
//! becomes a replica only when an operator adds it (`perdura cluster add-node`), which makes each
//! group's leader replicate to it — by snapshot when the leader purged the entries it needs.
//!
//! A member refuses the handshake for a node id that was removed (ids are never reused) or
//! that is below the highest id ever used; a removed node's messages are refused by every peer.
//! Restarting a joined node with `--join` again is fine: its groups already have their state.

use crate::cluster::identity;
use crate::error::RaftError;
use crate::group::{Group, GroupContext};
use crate::membership::{JoinInfo, PeerAdminCall, PeerAdminReply};
use crate::multi::{
    ClusterParts, ClusterRaftOptions, MultiRaft, NodeParts, RaftTuning, openraft_config,
};
use crate::observer::ApplyObserver;
use crate::peer::client::GrpcTransport;
use crate::peer::forward::Forwarder;
use crate::peer::host::PeerHost;
use crate::peer::proto::{self, MessageKind};
use crate::peer::server::{PeerService, serve};
use crate::peer::stats::PeerStats;
use perdura_engine::GroupId;
use perdura_storage::LogWriter;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What a fresh node needs to join a running cluster.
#[derive(Clone, Debug)]
pub struct JoinConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// Where this node's peer service listens (`--peer-addr`).
    pub peer_addr: SocketAddr,
    /// The peer address (`host:port`) of any member (`--join`).
    pub join: String,
}

/// The pseudo node id of the member at the `--join` address, until its real id is known.
const JOIN_TARGET: u64 = 0;

impl MultiRaft {
    /// Joins a running cluster as a fresh (or restarted, already joined) node. See the module
    /// docs.
    pub async fn join_cluster(
        config: JoinConfig,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        let listener = TcpListener::bind(config.peer_addr).await.map_err(|e| {
            RaftError::Transport(format!(
                "cannot listen on the peer address {}: {e}",
                config.peer_addr
            ))
        })?;
        MultiRaft::join_cluster_on(config, listener, observer, tuning).await
    }

    /// [`MultiRaft::join_cluster`] on an already bound peer listener.
    pub async fn join_cluster_on(
        config: JoinConfig,
        listener: TcpListener,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let identity = identity::claim(&config.data_dir, config.node_id)?;
        let peer_addr = listener.local_addr()?;
        let host = Arc::new(PeerHost::new(
            config.node_id,
            identity.cluster_id.clone(),
            tuning.clock.clone(),
        ));
        let stats = Arc::new(PeerStats::default());
        let transport = Arc::new(GrpcTransport::new(
            host.clone(),
            BTreeMap::from([(JOIN_TARGET, config.join.clone())]),
            stats.clone(),
            tuning.peer_timeouts,
        ));
        let info = handshake(&transport, &host, &config, tuning.startup_timeout).await;
        transport.forget_peer(JOIN_TARGET);
        let info = info?;
        match &identity.cluster_id {
            Some(known) if *known != info.cluster_id => {
                return Err(RaftError::ClusterMismatch(format!(
                    "the data dir {} belongs to cluster {known}, but node {} at {} is in cluster \
                     {}",
                    config.data_dir.display(),
                    info.answered_by,
                    config.join,
                    info.cluster_id
                )));
            }
            Some(_) => {}
            None => identity::write(
                &config.data_dir,
                &identity::NodeIdentity {
                    node_id: config.node_id,
                    cluster_id: Some(info.cluster_id.clone()),
                },
            )?,
        }
        host.set_cluster_id(info.cluster_id.clone());
        for (node, addr) in &info.members {
            if *node != config.node_id && !addr.is_empty() {
                transport.set_peer_addr(*node, addr.clone());
            }
        }
        let parts =
            open_empty_groups(&config, &info, &host, &transport, observer.clone(), &tuning).await?;
        let forward = Arc::new(Forwarder {
            host: host.clone(),
            client: transport.clone(),
            timeout: tuning.propose_timeout,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let service = PeerService::new(host.clone(), tuning.propose_timeout);
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = stop_rx.await;
            };
            if let Err(e) = serve(service, listener, stop).await {
                tracing::error!(error = %e, "the peer service stopped");
            }
        });
        let cluster = ClusterParts {
            host,
            forward,
            transport,
            stats,
            peer_addr,
            server: Mutex::new(Some(server)),
            server_stop: Mutex::new(Some(stop_tx)),
        };
        tracing::info!(
            node = config.node_id,
            cluster = %info.cluster_id,
            via = info.answered_by,
            groups = info.groups.len(),
            "joined; waiting to be added with `perdura cluster add-node`"
        );
        let raft = MultiRaft::assemble(parts, observer, &tuning, Some(cluster));
        raft.open_cluster_splits().await;
        crate::membership::sync::start(&raft);
        Ok(raft)
    }
}

/// Asks the member at `config.join` for [`JoinInfo`], retrying while it is unreachable or not
/// joined itself, until `timeout`. A refusal (removed id, another cluster) fails at once.
async fn handshake(
    transport: &GrpcTransport,
    host: &PeerHost,
    config: &JoinConfig,
    timeout: Duration,
) -> Result<JoinInfo, RaftError> {
    let deadline = Instant::now() + timeout;
    let call = PeerAdminCall::Join {
        node_id: config.node_id,
    };
    let payload = proto::encode(&call).map_err(RaftError::Transport)?;
    let mut mismatches = host.mismatches();
    loop {
        let answer = transport
            .call(
                JOIN_TARGET,
                GroupId::META,
                MessageKind::Admin,
                payload.clone(),
                Duration::from_secs(3),
            )
            .await;
        if let Some(detail) = mismatches.borrow_and_update().clone() {
            return Err(RaftError::ClusterMismatch(detail));
        }
        let last = match answer {
            Ok(bytes) => match proto::decode::<PeerAdminReply>(&bytes) {
                Ok(PeerAdminReply::Join(Ok(info))) => return Ok(info),
                Ok(PeerAdminReply::Join(Err(refused))) => {
                    return Err(RaftError::ClusterMismatch(refused));
                }
                Ok(other) => format!("unexpected reply {other:?}"),
                Err(e) => e,
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(RaftError::Transport(format!(
                "node {} could not join through {} within {timeout:?}: {last}",
                config.node_id, config.join
            )));
        }
        tracing::debug!(join = %config.join, error = %last, "join handshake not answered yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts every group of `info` without initializing it and makes it reachable by peers.
async fn open_empty_groups(
    config: &JoinConfig,
    info: &JoinInfo,
    host: &Arc<PeerHost>,
    transport: &Arc<GrpcTransport>,
    observer: Arc<dyn ApplyObserver>,
    tuning: &RaftTuning,
) -> Result<NodeParts, RaftError> {
    let db = Arc::new(tuning.storage.open(config.data_dir.join("rocksdb"))?);
    let writer = Arc::new(LogWriter::start(db.clone()));
    let (split_observer, created) = crate::split::split_observer(observer);
    let ctx = GroupContext {
        node_id: config.node_id,
        db: db.clone(),
        writer: writer.clone(),
        config: openraft_config(tuning, Some(ClusterRaftOptions))?,
        transport: transport.clone(),
        observer: split_observer,
    };
    let mut meta = None;
    let mut shards = BTreeMap::new();
    let mut opened: Vec<Arc<Group>> = Vec::new();
    for id in &info.groups {
        match Group::start(&ctx, *id).await {
            Ok(group) => {
                let group = Arc::new(group);
                opened.push(group.clone());
                host.register(group.clone());
                if *id == GroupId::META {
                    meta = Some(group);
                } else {
                    shards.insert(*id, group);
                }
            }
            Err(e) => {
                for group in opened {
                    if let Err(stop) = group.raft.shutdown().await {
                        tracing::warn!(group = %group.id, error = %stop, "raft shutdown failed");
                    }
                }
                host.clear();
                writer.shutdown();
                return Err(e);
            }
        }
    }
    let meta = meta.ok_or_else(|| RaftError::Bootstrap("the member listed no group 0".into()))?;
    Ok(NodeParts {
        node_id: config.node_id,
        db,
        writer,
        meta,
        shards,
        ctx,
        created,
    })
}
