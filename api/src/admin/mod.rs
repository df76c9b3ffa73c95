//! `perdura.admin.v1.ClusterAdmin`: the operator API every node serves next to the Temporal
//! WorkflowService (`perdura cluster …` is its client).
//!
//! A thin layer over [`perdura_raft::membership::Membership`] and
//! [`MultiRaft::split_group`]: it validates the request, runs the command and converts the
//! answer ([`convert`]); failures become gRPC statuses only in [`crate::status`]. It changes nothing itself: every change is a Raft proposal or
//! an openraft membership change made by the group leaders.

mod convert;
mod replica;

use crate::pb::admin::cluster_admin_server::ClusterAdmin;
use crate::pb::admin::{
    AddNodeRequest, AddNodeResponse, ClusterStatusRequest, ClusterStatusResponse, GroupSnapshot,
    ReadReplicaRequest, ReadReplicaResponse, RemoveNodeRequest, RemoveNodeResponse,
    SplitGroupRequest, SplitGroupResponse, TriggerSnapshotRequest, TriggerSnapshotResponse,
};
use crate::status;
use perdura_engine::GroupId;
use perdura_raft::MultiRaft;
use perdura_raft::membership::Membership;
use perdura_raft::membership::orchestrate::DEFAULT_CATCH_UP_TIMEOUT;
use perdura_raft::replica_read::ReplicaDepth;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The largest admin message a node sends or a client accepts: a `ReadReplica` of one group
/// carries every history of the group (tonic's default limit is 4 MiB).
pub const MAX_ADMIN_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The ClusterAdmin service of one node.
#[derive(Clone)]
pub struct ClusterAdminService {
    membership: Membership,
    raft: Arc<MultiRaft>,
}

impl ClusterAdminService {
    pub fn new(raft: Arc<MultiRaft>) -> ClusterAdminService {
        ClusterAdminService {
            membership: Membership::new(Arc::clone(&raft)),
            raft,
        }
    }
}

#[tonic::async_trait]
impl ClusterAdmin for ClusterAdminService {
    async fn cluster_status(
        &self,
        _request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        let status = self.membership.status().await;
        Ok(Response::new(convert::cluster_status(&status)))
    }

    async fn add_node(
        &self,
        request: Request<AddNodeRequest>,
    ) -> Result<Response<AddNodeResponse>, Status> {
        let request = request.into_inner();
        if request.node_id == 0 {
            return Err(status::invalid("node_id must be 1 or more"));
        }
        let peer_addr = request.peer_addr.trim().to_string();
        if peer_addr.is_empty() {
            return Err(status::invalid(
                "peer_addr is required (the new node's --peer-addr)",
            ));
        }
        let timeout = match request.catch_up_timeout_ms {
            0 => DEFAULT_CATCH_UP_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        let summary = self
            .membership
            .add_node(request.node_id, peer_addr, timeout)
            .await
            .map_err(status::membership)?;
        Ok(Response::new(AddNodeResponse {
            node: Some(convert::node_record(&summary.node)),
            groups_changed: summary.groups_changed,
        }))
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        let node_id = request.into_inner().node_id;
        if node_id == 0 {
            return Err(status::invalid("node_id must be 1 or more"));
        }
        let summary = self
            .membership
            .remove_node(node_id)
            .await
            .map_err(status::membership)?;
        Ok(Response::new(RemoveNodeResponse {
            node: Some(convert::node_record(&summary.node)),
            groups_changed: summary.groups_changed,
        }))
    }

    async fn trigger_snapshot(
        &self,
        request: Request<TriggerSnapshotRequest>,
    ) -> Result<Response<TriggerSnapshotResponse>, Status> {
        let purge = request.into_inner().purge;
        let groups = self
            .membership
            .trigger_snapshot(purge)
            .await
            .map_err(status::membership)?
            .into_iter()
            .map(|(group, snapshot, purged)| GroupSnapshot {
                group: group.0,
                snapshot_index: snapshot.unwrap_or(0),
                purged_index: purged.unwrap_or(0),
            })
            .collect();
        Ok(Response::new(TriggerSnapshotResponse { groups }))
    }

    async fn split_group(
        &self,
        request: Request<SplitGroupRequest>,
    ) -> Result<Response<SplitGroupResponse>, Status> {
        let source = request.into_inner().group;
        if source == 0 {
            return Err(status::invalid(
                "group 0 is the meta group; only workflow groups (1 or more) can be split",
            ));
        }
        let new_group = self
            .raft
            .split_group(GroupId(source))
            .await
            .map_err(status::split)?;
        let (source_slots, new_group_slots) = self.raft.read_meta(|meta| {
            let ranges = |group| {
                meta.slot_map
                    .as_ref()
                    .map(|map| map.ranges_of(group))
                    .unwrap_or_default()
            };
            (ranges(GroupId(source)), ranges(new_group))
        });
        Ok(Response::new(SplitGroupResponse {
            source,
            new_group: new_group.0,
            source_slots: source_slots.iter().map(convert::slot_range).collect(),
            new_group_slots: new_group_slots.iter().map(convert::slot_range).collect(),
        }))
    }

    async fn read_replica(
        &self,
        request: Request<ReadReplicaRequest>,
    ) -> Result<Response<ReadReplicaResponse>, Status> {
        let request = request.into_inner();
        let depth = if request.summary_only {
            ReplicaDepth::Summary
        } else {
            ReplicaDepth::Full
        };
        let raft = Arc::clone(&self.raft);
        // RocksDB scans: off the async workers.
        let groups = tokio::task::spawn_blocking(move || {
            let groups = match request.group {
                Some(group) => vec![GroupId(group)],
                None => raft.replica_groups(),
            };
            groups
                .into_iter()
                .map(|group| raft.read_replica(group, depth))
                .map(|read| read.map(|read| replica::replica_group(&read)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(status::internal)?
        .map_err(status::replica_read)?;
        Ok(Response::new(ReadReplicaResponse {
            node_id: self.raft.node_id(),
            groups,
        }))
    }
}
