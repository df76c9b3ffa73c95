//! Cluster status and node records as admin protobuf messages. Absent indexes become 0 (proto3
//! scalars), except `matched_index` / `lag`, which stay optional: "unknown" and "0" differ there.

use crate::pb::admin::{
    ClusterStatusResponse, GroupStatus, NodeStatus, ReplicaStatus, SlotRange as SlotRangeMessage,
};
use perdura_engine::{NodeRecord, SlotRange};
use perdura_raft::membership::{ClusterStatus, GroupView, NodeView, ReplicaView};

pub fn cluster_status(status: &ClusterStatus) -> ClusterStatusResponse {
    ClusterStatusResponse {
        cluster_id: status.cluster_id.clone().unwrap_or_default(),
        answered_by: status.answered_by,
        highest_node_id: status.highest_node_id,
        nodes: status.nodes.iter().map(node).collect(),
        groups: status.groups.iter().map(group).collect(),
    }
}

pub fn slot_range(range: &SlotRange) -> SlotRangeMessage {
    SlotRangeMessage {
        start: u32::from(range.start),
        end: u32::from(range.end),
    }
}

pub fn node_record(record: &NodeRecord) -> NodeStatus {
    node(&NodeView::of_record(record))
}

fn node(view: &NodeView) -> NodeStatus {
    NodeStatus {
        id: view.id,
        peer_addr: view.peer_addr.clone(),
        state: view.state.clone(),
        reachable: view.reachable,
        error: view.error.clone().unwrap_or_default(),
    }
}

fn group(view: &GroupView) -> GroupStatus {
    GroupStatus {
        group: view.group.0,
        leader: view.leader.unwrap_or(0),
        term: view.term,
        leader_last_log_index: view.leader_last_log_index.unwrap_or(0),
        replicas: view.replicas.iter().map(replica).collect(),
        voters: view.voters.clone(),
        learners: view.learners.clone(),
    }
}

fn replica(view: &ReplicaView) -> ReplicaStatus {
    ReplicaStatus {
        node: view.node,
        role: view.role.clone(),
        voter: view.voter,
        applied_index: view.applied_index.unwrap_or(0),
        last_log_index: view.last_log_index.unwrap_or(0),
        snapshot_index: view.snapshot_index.unwrap_or(0),
        purged_index: view.purged_index.unwrap_or(0),
        term: view.term.unwrap_or(0),
        matched_index: view.matched_index,
        lag: view.lag,
        digest: view.digest.clone().unwrap_or_default(),
        reachable: view.reachable,
    }
}
