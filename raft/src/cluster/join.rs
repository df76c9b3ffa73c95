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
//! Restarting a joined node with `--join` again is fine, and needs no answer from the member at
//! `--join`: a node whose data dir already belongs to a cluster and whose own meta replica knows
//! the groups and members starts from that ([`local_join_info`]), like a node of the initial
//! cluster restarts from its log. Asking the join address again would tie the restart to that
//! one member being up — after a whole-cluster restart, or when that member is the one being
//! replaced, the nodes would wait on each other and none would start.

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
use crate::state_machine::GroupState;
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
        let store = open_store(&config, &transport, observer.clone(), &tuning)?;
        let mut opened: Vec<Arc<Group>> = Vec::new();
        let result = async {
            let meta = Arc::new(Group::start(&store.ctx, GroupId::META).await?);
            opened.push(meta.clone());
            let local = identity
                .cluster_id
                .as_ref()
                .and_then(|known| local_join_info(&meta, config.node_id, known));
            let info = match local {
                Some(info) => {
                    tracing::info!(
                        node = config.node_id,
                        groups = info.groups.len(),
                        "restarting a joined node from its own meta replica (no handshake)"
                    );
                    info
                }
                None => {
                    let info = handshake(&transport, &host, &config, tuning.startup_timeout).await;
                    transport.forget_peer(JOIN_TARGET);
                    let info = info?;
                    check_and_record_cluster(&config, &identity, &info)?;
                    info
                }
            };
            host.set_cluster_id(info.cluster_id.clone());
            for (node, addr) in &info.members {
                if *node != config.node_id && !addr.is_empty() {
                    transport.set_peer_addr(*node, addr.clone());
                }
            }
            host.register(meta.clone());
            let mut shards = BTreeMap::new();
            for id in info.groups.iter().filter(|id| **id != GroupId::META) {
                let group = Arc::new(Group::start(&store.ctx, *id).await?);
                opened.push(group.clone());
                host.register(group.clone());
                shards.insert(*id, group);
            }
            Ok::<_, RaftError>((info, meta, shards))
        }
        .await;
        let (info, meta, shards) = match result {
            Ok(done) => done,
            Err(e) => {
                for group in opened {
                    if let Err(stop) = group.raft.shutdown().await {
                        tracing::warn!(group = %group.id, error = %stop, "raft shutdown failed");
                    }
                }
                host.clear();
                store.writer.shutdown();
                return Err(e);
            }
        };
        transport.forget_peer(JOIN_TARGET);
        let parts = NodeParts {
            node_id: config.node_id,
            db: store.db,
            writer: store.writer,
            meta,
            shards,
            ctx: store.ctx,
            created: store.created,
        };
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

/// The node's storage and the context its groups start in.
struct Store {
    db: Arc<perdura_storage::Db>,
    writer: Arc<LogWriter>,
    ctx: GroupContext,
    created: tokio::sync::mpsc::UnboundedReceiver<GroupId>,
}

fn open_store(
    config: &JoinConfig,
    transport: &Arc<GrpcTransport>,
    observer: Arc<dyn ApplyObserver>,
    tuning: &RaftTuning,
) -> Result<Store, RaftError> {
    let db = Arc::new(tuning.storage.open(config.data_dir.join("rocksdb"))?);
    let writer = Arc::new(LogWriter::start(db.clone()));
    let (split_observer, created) = crate::split::split_observer(observer);
    let raft_config = match openraft_config(tuning, Some(ClusterRaftOptions)) {
        Ok(raft_config) => raft_config,
        Err(e) => {
            writer.shutdown();
            return Err(e);
        }
    };
    let ctx = GroupContext {
        node_id: config.node_id,
        db: db.clone(),
        writer: writer.clone(),
        config: raft_config,
        transport: transport.clone(),
        observer: split_observer,
        clock: tuning.clock.clone(),
    };
    Ok(Store {
        db,
        writer,
        ctx,
        created,
    })
}

/// What a restarted joined node knows by itself: its meta replica's cluster id (which must be
/// `known`, the identity file's), slot map and node registry. `None` when the replica has not
/// got that far (a node that joined but was never added): then the join address is asked.
fn local_join_info(meta: &Group, node_id: u64, known: &str) -> Option<JoinInfo> {
    meta.read_state(|state| {
        let GroupState::Meta(m) = state else {
            return None;
        };
        if m.cluster_id.as_deref() != Some(known) {
            return None;
        }
        let slot_map = m.slot_map.as_ref()?;
        Some(JoinInfo {
            cluster_id: known.to_owned(),
            answered_by: node_id,
            groups: std::iter::once(GroupId::META)
                .chain(slot_map.groups())
                .collect(),
            members: m
                .node_registry
                .members()
                .map(|n| (n.id, n.peer_addr.clone()))
                .collect(),
        })
    })
}

/// A first join records the cluster id; a data dir of another cluster is refused.
fn check_and_record_cluster(
    config: &JoinConfig,
    identity: &identity::NodeIdentity,
    info: &JoinInfo,
) -> Result<(), RaftError> {
    match &identity.cluster_id {
        Some(known) if *known != info.cluster_id => Err(RaftError::ClusterMismatch(format!(
            "the data dir {} belongs to cluster {known}, but node {} at {} is in cluster {}",
            config.data_dir.display(),
            info.answered_by,
            config.join,
            info.cluster_id
        ))),
        Some(_) => Ok(()),
        None => identity::write(
            &config.data_dir,
            &identity::NodeIdentity {
                node_id: config.node_id,
                cluster_id: Some(info.cluster_id.clone()),
            },
        ),
    }
}
