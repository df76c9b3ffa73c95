//! Opening a node of a multi-node cluster: identity, peer service, bootstrap and join.
//!
//! [`MultiRaft::open_cluster`] does, in order:
//! 1. checks the data dir's identity ([`identity`]): a dir of another node id is refused;
//! 2. binds the peer address and serves the peer protocol ([`crate::peer`]) on it;
//! 3. starts the meta group and, on a first start (an uninitialized group), initializes it with
//!    every `initial_cluster` member as a voter. Every node does this with the identical
//!    membership, which openraft documents as safe (the vote decides one leader), so the
//!    cluster forms with whichever majority starts first; no node is special;
//! 4. joins: waits until the meta group has a leader and this node's replica has applied the
//!    bootstrap (the meta leader proposes it once: cluster id, slot map, default namespace),
//!    then confirms with a read barrier that a quorum answers and exchanges cluster ids with
//!    every reachable peer ("hello"). A peer that reports another cluster id fails the start
//!    with [`RaftError::ClusterMismatch`]; no quorum within `startup_timeout` fails it with
//!    [`RaftError::Transport`];
//! 5. records the cluster id in the identity file (first start) or checks it (restart);
//! 6. starts every workflow group of the slot map the same way (initialized with all members on
//!    a first start), then the drivers and the leader balancer ([`balance`]).
//!
//! A restart with the same data dir skips the initialization (the groups have logs) and rejoins.
//!
//! ## For the `perdura server start` command
//! ```ignore
//! let config = ClusterConfig {
//!     node_id, data_dir, shard_groups: groups,
//!     peer_addr: "0.0.0.0:7001".parse()?,            // --peer-addr (listen address)
//!     initial_cluster,                               // {1: "n1:7001", 2: "n2:7001", 3: "n3:7001"}
//! };
//! let raft = MultiRaft::open_cluster(config, observer, RaftTuning::default()).await?;
//! // serve the API on --grpc-addr as in dev mode; the peer service already runs.
//! // …at exit: raft.shutdown().await;
//! ```

pub(crate) mod balance;
pub mod identity;
pub mod join;

pub use join::JoinConfig;

use crate::error::RaftError;
use crate::group::{Group, GroupContext};
use crate::multi::{
    ClusterParts, ClusterRaftOptions, MultiRaft, NodeParts, RaftTuning, bootstrap_meta,
    openraft_config,
};
use crate::observer::ApplyObserver;
use crate::peer::client::GrpcTransport;
use crate::peer::forward::Forwarder;
use crate::peer::host::PeerHost;
use crate::peer::server::{PeerService, serve};
use crate::peer::stats::PeerStats;
use crate::state_machine::GroupState;
use openraft::BasicNode;
use openraft::error::{InitializeError, RaftError as OpenraftError};
use perdura_engine::{GroupId, SlotMap};
use perdura_storage::LogWriter;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What a node of a cluster needs to open its groups.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// Workflow groups of a *new* cluster; afterwards the replicated slot map decides.
    pub shard_groups: u32,
    /// Where this node's peer service listens (`--peer-addr`).
    pub peer_addr: SocketAddr,
    /// Every member's peer address `host:port` by node id, this node included; identical on
    /// every node (`--initial-cluster`). Used to initialize a new cluster and to reach peers.
    pub initial_cluster: BTreeMap<u64, String>,
}

impl MultiRaft {
    /// Opens this node of a cluster: binds `config.peer_addr`, serves the peer protocol on it,
    /// bootstraps the cluster on a first start and joins it. Returns once the meta group is
    /// joined and every workflow group runs (a majority of the members must be up; not all).
    /// `tuning.transport` is ignored: the cluster talks gRPC. See the module docs.
    pub async fn open_cluster(
        config: ClusterConfig,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        let listener = TcpListener::bind(config.peer_addr).await.map_err(|e| {
            RaftError::Transport(format!(
                "cannot listen on the peer address {}: {e}",
                config.peer_addr
            ))
        })?;
        MultiRaft::open_cluster_on(config, listener, observer, tuning).await
    }

    /// [`MultiRaft::open_cluster`] on an already bound peer listener (`config.peer_addr` is
    /// then ignored). Tests bind port 0 first to learn every node's address.
    pub async fn open_cluster_on(
        config: ClusterConfig,
        listener: TcpListener,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        if !config.initial_cluster.contains_key(&config.node_id) {
            return Err(RaftError::Identity(format!(
                "node {} is not in the initial cluster {:?}",
                config.node_id, config.initial_cluster
            )));
        }
        std::fs::create_dir_all(&config.data_dir)?;
        let identity = identity::claim(&config.data_dir, config.node_id)?;
        let started = Instant::now();
        let peer_addr = listener.local_addr()?;

        let host = Arc::new(PeerHost::new(
            config.node_id,
            identity.cluster_id.clone(),
            tuning.clock.clone(),
        ));
        let stats = Arc::new(PeerStats::default());
        let peers: BTreeMap<u64, String> = config
            .initial_cluster
            .iter()
            .filter(|(id, _)| **id != config.node_id)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        let transport = Arc::new(GrpcTransport::new(
            host.clone(),
            peers,
            stats.clone(),
            tuning.peer_timeouts,
        ));
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
            host: host.clone(),
            forward: forward.clone(),
            transport: transport.clone(),
            stats,
            peer_addr,
            server: Mutex::new(Some(server)),
            server_stop: Mutex::new(Some(stop_tx)),
        };
        // From here on, a failure must stop the peer service again.
        match open_groups(
            &config,
            &identity,
            &cluster,
            observer.clone(),
            &tuning,
            started,
        )
        .await
        {
            Ok(parts) => {
                let raft = MultiRaft::assemble(parts, observer, &tuning, Some(cluster));
                raft.open_cluster_splits().await;
                crate::membership::sync::start(&raft);
                Ok(raft)
            }
            Err(e) => {
                cluster.stop_server().await;
                Err(e)
            }
        }
    }
}

async fn open_groups(
    config: &ClusterConfig,
    identity: &identity::NodeIdentity,
    cluster: &ClusterParts,
    observer: Arc<dyn ApplyObserver>,
    tuning: &RaftTuning,
    started: Instant,
) -> Result<NodeParts, RaftError> {
    let db = Arc::new(tuning.storage.open(config.data_dir.join("rocksdb"))?);
    let writer = Arc::new(LogWriter::start(db.clone()));
    let (split_observer, created) = crate::split::split_observer(observer);
    let ctx = GroupContext {
        node_id: config.node_id,
        db: db.clone(),
        writer: writer.clone(),
        config: openraft_config(tuning, Some(ClusterRaftOptions))?,
        transport: cluster.transport.clone(),
        observer: split_observer,
        clock: tuning.clock.clone(),
    };
    let mut opened = Vec::new();
    match start_and_join(
        &ctx,
        config,
        identity,
        cluster,
        tuning,
        started,
        &mut opened,
    )
    .await
    {
        Ok((meta, shards)) => Ok(NodeParts {
            node_id: config.node_id,
            db,
            writer,
            meta,
            shards,
            ctx,
            created,
        }),
        Err(e) => {
            // Stop whatever started, so that the database closes.
            for group in opened {
                if let Err(stop) = group.raft.shutdown().await {
                    tracing::warn!(group = %group.id, error = %stop, "raft shutdown failed");
                }
            }
            cluster.host.clear();
            writer.shutdown();
            Err(e)
        }
    }
}

type Groups = (Arc<Group>, BTreeMap<GroupId, Arc<Group>>);

/// Steps 3–6 of the module docs. Every group started is pushed to `opened`.
async fn start_and_join(
    ctx: &GroupContext,
    config: &ClusterConfig,
    identity: &identity::NodeIdentity,
    cluster: &ClusterParts,
    tuning: &RaftTuning,
    started: Instant,
    opened: &mut Vec<Arc<Group>>,
) -> Result<Groups, RaftError> {
    let members: BTreeMap<u64, BasicNode> = config
        .initial_cluster
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect();
    let meta = Arc::new(Group::start(ctx, GroupId::META).await?);
    opened.push(meta.clone());
    cluster.host.register(meta.clone());
    initialize(&meta, &members).await?;
    join(config, &meta, cluster, tuning, started).await?;
    let cluster_id = meta
        .read_state(|state| match state {
            GroupState::Meta(m) => m.cluster_id.clone(),
            GroupState::Shard(_) => None,
        })
        .ok_or_else(|| RaftError::Bootstrap("joined, but no cluster id".into()))?;
    record_cluster_id(config, identity, &cluster_id)?;
    cluster.host.set_cluster_id(cluster_id);
    let slot_map: SlotMap = meta
        .read_state(|state| match state {
            GroupState::Meta(m) => m.slot_map.clone(),
            GroupState::Shard(_) => None,
        })
        .ok_or_else(|| RaftError::Bootstrap("the meta state has no slot map".into()))?;
    let split_groups = crate::split::split_groups(&meta);
    let mut shards = BTreeMap::new();
    for id in slot_map.groups() {
        let group = Arc::new(Group::start(ctx, id).await?);
        opened.push(group.clone());
        cluster.host.register(group.clone());
        // A group a split created starts from its genesis or its leader's snapshot; initializing
        // it here would give it a second, empty history.
        if !split_groups.contains(&id) {
            initialize(&group, &members).await?;
        }
        shards.insert(id, group);
    }
    let left = tuning.startup_timeout.saturating_sub(started.elapsed());
    wait_for_leaders(&shards, left).await;
    Ok((meta, shards))
}

/// Initializes an uninitialized group with every member as a voter. Every node does this with
/// the same membership; a group that already has a log (restart, or a peer's leader reached it
/// first) is left alone.
async fn initialize(group: &Group, members: &BTreeMap<u64, BasicNode>) -> Result<(), RaftError> {
    let err = |detail: String| RaftError::Raft {
        group: group.id,
        detail,
    };
    if group
        .raft
        .is_initialized()
        .await
        .map_err(|e| err(e.to_string()))?
    {
        return Ok(());
    }
    match group.raft.initialize(members.clone()).await {
        Ok(()) => Ok(()),
        Err(OpenraftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Waits until the meta group is bootstrapped and confirmed by a quorum of this cluster.
async fn join(
    config: &ClusterConfig,
    meta: &Group,
    cluster: &ClusterParts,
    tuning: &RaftTuning,
    started: Instant,
) -> Result<(), RaftError> {
    let deadline = started + tuning.startup_timeout;
    let mut mismatches = cluster.host.mismatches();
    loop {
        if let Some(detail) = mismatches.borrow_and_update().clone() {
            return Err(RaftError::ClusterMismatch(detail));
        }
        learn_registered_peers(meta, config.node_id, &cluster.transport);
        if Instant::now() >= deadline {
            return Err(RaftError::Transport(format!(
                "node {} could not join within {:?}: is a majority of the cluster up and \
                 reachable (the initial cluster {:?}, or on a restart the meta group's current \
                 voters)?",
                config.node_id, tuning.startup_timeout, config.initial_cluster
            )));
        }
        let bootstrapped =
            meta.read_state(|state| matches!(state, GroupState::Meta(m) if m.cluster_id.is_some()));
        if !bootstrapped {
            if meta.is_ready_leader(config.node_id) {
                let meta_config = crate::multi::RaftConfig {
                    node_id: config.node_id,
                    data_dir: config.data_dir.clone(),
                    shard_groups: config.shard_groups,
                };
                if let Err(e) = bootstrap_meta(meta, &meta_config, tuning).await {
                    tracing::warn!(error = %e, "meta bootstrap not done yet");
                }
            }
        } else {
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                cluster.forward.read_barrier(GroupId::META),
            )
            .await;
            match attempt {
                Ok(Ok(())) => {
                    // A quorum of this group's members answered, but a data dir of another
                    // cluster can be its own quorum: ask every peer of the initial cluster.
                    cluster.transport.hello_all(Duration::from_secs(1)).await;
                    if let Some(detail) = mismatches.borrow_and_update().clone() {
                        return Err(RaftError::ClusterMismatch(detail));
                    }
                    return Ok(());
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "joining: no read barrier yet"),
                Err(_) => tracing::debug!("joining: read barrier timed out"),
            }
        }
        tokio::select! {
            biased;
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = mismatches.changed() => {}
        }
    }
}

/// Gives the transport the peer address of every registered member the meta replica knows so
/// far. On a restart after membership changes the members that joined later are in the node
/// registry only, not in `--initial-cluster`, and the meta leader may be one of them: without
/// their addresses the read barrier below could never reach it (found by the chaos campaign, 5
/// nodes, seed 201: initial members restarting under a joined leader gave up after 30 s). The
/// registry is re-read on every pass, as the meta log catches up.
fn learn_registered_peers(meta: &Group, node_id: u64, transport: &GrpcTransport) {
    let members: Vec<(u64, String)> = meta.read_state(|state| match state {
        GroupState::Meta(m) => m
            .node_registry
            .members()
            .filter(|n| n.id != node_id && !n.peer_addr.is_empty())
            .map(|n| (n.id, n.peer_addr.clone()))
            .collect(),
        GroupState::Shard(_) => Vec::new(),
    });
    for (node, addr) in members {
        transport.set_peer_addr(node, addr);
    }
}

/// Writes the cluster id into the identity file on the first join; on a restart checks it.
fn record_cluster_id(
    config: &ClusterConfig,
    identity: &identity::NodeIdentity,
    cluster_id: &str,
) -> Result<(), RaftError> {
    match &identity.cluster_id {
        Some(known) if known != cluster_id => Err(RaftError::ClusterMismatch(format!(
            "the data dir {} belongs to cluster {known}, but its meta group says {cluster_id}",
            config.data_dir.display()
        ))),
        Some(_) => Ok(()),
        None => identity::write(
            &config.data_dir,
            &identity::NodeIdentity {
                node_id: config.node_id,
                cluster_id: Some(cluster_id.to_string()),
            },
        ),
    }
}

/// Waits (bounded) until every workflow group knows a leader; a timeout is only logged, the
/// groups keep electing in the background.
async fn wait_for_leaders(shards: &BTreeMap<GroupId, Arc<Group>>, timeout: Duration) {
    for group in shards.values() {
        let known = group
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "group leader known")
            .await;
        if known.is_err() {
            tracing::warn!(group = %group.id, "no leader known yet; continuing");
            return;
        }
    }
}
