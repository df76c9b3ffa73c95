//! A node of an in-process cluster, for the deterministic simulation (`perdura-chaos sim`).
//!
//! [`MultiRaft::open_simulated`] opens a node whose peers are reached only through
//! `tuning.transport` (the simulation's network: every group registers itself there through
//! [`crate::RaftTransport::group_started`]) and whose database is `tuning.storage` (the
//! simulation's in-memory disks). There is no peer service and no forwarding: a proposal on a
//! node that does not lead the group answers `NotLeader { leader }`, and the simulated client
//! goes to that leader, as a client of a real cluster would after a redirect.
//!
//! On a first start every group (meta and `1..=shard_groups`) is initialized with all
//! `members` as voters — every node does it with the same membership, which openraft allows —
//! and [`MultiRaft::bootstrap_simulated`] writes the meta state with a caller-chosen cluster
//! id, so that nothing in the replicated state is random. A restart finds everything on its
//! disk and initializes nothing.

use crate::error::{ProposeError, RaftError};
use crate::group::{Group, GroupContext};
use crate::multi::{ClusterRaftOptions, MultiRaft, NodeParts, RaftTuning, openraft_config};
use crate::observer::ApplyObserver;
use crate::split;
use crate::state_machine::GroupState;
use crate::types::{Proposal, ProposalReply};
use openraft::BasicNode;
use perdura_engine::{GroupId, MetaCommand, NamespaceRecord, SlotMap};
use perdura_storage::LogWriter;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a simulated node needs to open.
#[derive(Clone, Debug)]
pub struct SimulatedNodeConfig {
    pub node_id: u64,
    /// Names the node's disk (the simulation keys its in-memory disks by it).
    pub data_dir: PathBuf,
    /// Every voter of every group, this node included.
    pub members: Vec<u64>,
    /// Workflow groups (fixed: the simulation does not split).
    pub shard_groups: u32,
}

impl MultiRaft {
    /// Opens (or reopens after a crash) a simulated node. See the module docs. Returns once
    /// every group's Raft instance runs; leaders are elected later, over the transport.
    pub async fn open_simulated(
        config: SimulatedNodeConfig,
        observer: Arc<dyn ApplyObserver>,
        tuning: RaftTuning,
    ) -> Result<Arc<MultiRaft>, RaftError> {
        let db = Arc::new(tuning.storage.open(config.data_dir.join("rocksdb"))?);
        let writer = Arc::new(LogWriter::start(db.clone()));
        let (split_observer, created) = split::split_observer(observer.clone());
        let ctx = GroupContext {
            node_id: config.node_id,
            db: db.clone(),
            writer: writer.clone(),
            config: openraft_config(&tuning, Some(ClusterRaftOptions))?,
            transport: tuning.transport.clone(),
            observer: split_observer,
            clock: tuning.clock.clone(),
        };
        let members: BTreeMap<u64, BasicNode> = config
            .members
            .iter()
            .map(|id| (*id, BasicNode::new(format!("sim-node-{id}"))))
            .collect();
        let meta = Arc::new(Group::start(&ctx, GroupId::META).await?);
        initialize(&meta, &members).await?;
        let mut shards = BTreeMap::new();
        for id in SlotMap::even(config.shard_groups.max(1)).groups() {
            let group = Arc::new(Group::start(&ctx, id).await?);
            initialize(&group, &members).await?;
            shards.insert(id, group);
        }
        let parts = NodeParts {
            node_id: config.node_id,
            db,
            writer,
            meta,
            shards,
            ctx,
            created,
        };
        Ok(MultiRaft::assemble(parts, observer, &tuning, None))
    }

    /// Writes the first meta state (slot map over `shard_groups`, namespace `default`) if it is
    /// absent, proposing on this node. `NotLeader` if this node does not lead the meta group.
    pub async fn bootstrap_simulated(
        &self,
        cluster_id: &str,
        shard_groups: u32,
        now_ms: i64,
    ) -> Result<(), ProposeError> {
        let bootstrapped = self
            .meta
            .read_state(|state| matches!(state, GroupState::Meta(m) if m.cluster_id.is_some()));
        if bootstrapped {
            return Ok(());
        }
        let command = MetaCommand::Bootstrap {
            cluster_id: cluster_id.to_string(),
            slot_map: SlotMap::even(shard_groups.max(1)),
            default_namespace: NamespaceRecord {
                name: "default".into(),
                id: format!("{cluster_id}-default"),
                description: String::new(),
                owner_email: String::new(),
                retention_ms: crate::multi::DEFAULT_NAMESPACE_RETENTION_MS,
                registered_at_ms: now_ms,
            },
        };
        match self
            .meta
            .write(Proposal::Meta(command), self.propose_timeout)
            .await?
        {
            ProposalReply::Meta(Ok(_)) => Ok(()),
            other => Err(ProposeError::Indeterminate(format!(
                "bootstrap answered {other:?}"
            ))),
        }
    }

    /// Is the meta state bootstrapped on this node (applied here)?
    pub fn is_bootstrapped(&self) -> bool {
        self.meta
            .read_state(|state| matches!(state, GroupState::Meta(m) if m.cluster_id.is_some()))
    }
}

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
    group
        .raft
        .initialize(members.clone())
        .await
        .map_err(|e| err(e.to_string()))
}
