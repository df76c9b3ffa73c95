//! The cluster status: the meta registry and every node's [`NodeReport`] merged into one view
//! per node and per group. Pure: the caller gathers the reports.
//!
//! A group's leader is the replica that reports itself leader in the highest term; its
//! membership and replication progress are the authoritative ones (a follower's may be stale).
//! Without a reachable leader the answering node's own view of the membership is used.

use crate::membership::report::{NodeReport, ReplicaReport, Role};
use perdura_engine::{GroupId, NodeRegistry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The whole cluster as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_id: Option<String>,
    pub answered_by: u64,
    pub highest_node_id: u64,
    pub nodes: Vec<NodeView>,
    pub groups: Vec<GroupView>,
}

/// One node: its registry record and whether it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u64,
    pub peer_addr: String,
    /// `joining`, `active`, `removed`, or `unregistered` (in a group's membership but not in
    /// the registry).
    pub state: String,
    pub reachable: bool,
    pub error: Option<String>,
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub group: GroupId,
    pub leader: Option<u64>,
    pub term: u64,
    pub leader_last_log_index: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub replicas: Vec<ReplicaView>,
}

/// One replica of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub node: u64,
    /// The replica's own role, or `unknown` when it could not be asked.
    pub role: String,
    pub voter: bool,
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub term: Option<u64>,
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
    pub digest: Option<String>,
    pub reachable: bool,
}

/// Merges the registry and the reports (`Err` = why a node could not be asked).
pub fn merge(
    answered_by: u64,
    cluster_id: Option<String>,
    registry: &NodeRegistry,
    reports: &BTreeMap<u64, Result<NodeReport, String>>,
) -> ClusterStatus {
    let reached: BTreeMap<u64, &NodeReport> = reports
        .iter()
        .filter_map(|(id, r)| r.as_ref().ok().map(|r| (*id, r)))
        .collect();
    let mut group_ids = BTreeSet::new();
    for report in reached.values() {
        group_ids.extend(report.groups.iter().map(|g| g.group));
    }
    let groups: Vec<GroupView> = group_ids
        .into_iter()
        .map(|group| group_view(group, answered_by, &reached))
        .collect();

    let mut nodes: BTreeMap<u64, NodeView> = registry
        .nodes
        .values()
        .map(|record| {
            (
                record.id,
                NodeView {
                    id: record.id,
                    peer_addr: record.peer_addr.clone(),
                    state: record.state.as_str().to_string(),
                    reachable: false,
                    error: None,
                },
            )
        })
        .collect();
    for view in &groups {
        for replica in &view.replicas {
            nodes.entry(replica.node).or_insert_with(|| NodeView {
                id: replica.node,
                peer_addr: addr_of(replica.node, &reached).unwrap_or_default(),
                state: "unregistered".into(),
                reachable: false,
                error: None,
            });
        }
    }
    for (id, node) in nodes.iter_mut() {
        match reports.get(id) {
            Some(Ok(_)) => node.reachable = true,
            Some(Err(e)) => node.error = Some(e.clone()),
            None if node.state == "removed" => {}
            None => node.error = Some("not asked".into()),
        }
    }
    ClusterStatus {
        cluster_id,
        answered_by,
        highest_node_id: registry.highest_node_id,
        nodes: nodes.into_values().collect(),
        groups,
    }
}

fn addr_of(node: u64, reached: &BTreeMap<u64, &NodeReport>) -> Option<String> {
    reached
        .values()
        .flat_map(|r| r.groups.iter())
        .find_map(|g| g.addrs.get(&node).cloned())
}

fn group_view(group: GroupId, answered_by: u64, reached: &BTreeMap<u64, &NodeReport>) -> GroupView {
    let replicas_of: BTreeMap<u64, &ReplicaReport> = reached
        .iter()
        .filter_map(|(id, r)| Some((*id, r.groups.iter().find(|g| g.group == group)?)))
        .collect();
    let leader_entry = replicas_of
        .iter()
        .filter(|(_, r)| r.role == Role::Leader)
        .max_by_key(|(_, r)| r.term);
    let leader_report = leader_entry.map(|(_, r)| *r);
    let term = replicas_of.values().map(|r| r.term).max().unwrap_or(0);
    // Without a reachable leader, the leader the replicas of the newest term name.
    let leader = leader_entry.map(|(id, _)| *id).or_else(|| {
        replicas_of
            .values()
            .filter(|r| r.term == term)
            .find_map(|r| r.leader)
    });
    let membership_source = leader_report
        .or_else(|| replicas_of.get(&answered_by).copied())
        .or_else(|| replicas_of.values().next().copied());
    let voters = membership_source
        .map(|r| r.voters.clone())
        .unwrap_or_default();
    let learners = membership_source
        .map(|r| r.learners.clone())
        .unwrap_or_default();
    let leader_last = leader_report.and_then(|r| r.last_log_index);

    let mut members: BTreeSet<u64> = voters.iter().chain(learners.iter()).copied().collect();
    members.extend(replicas_of.keys().copied());
    let replicas = members
        .into_iter()
        .map(|node| {
            let own = replicas_of.get(&node);
            let matched_index = match (leader, leader_report) {
                (Some(l), Some(report)) if l == node => report.last_log_index,
                (_, Some(report)) => report
                    .matched
                    .as_ref()
                    .and_then(|m| m.get(&node).copied().flatten()),
                _ => None,
            };
            ReplicaView {
                node,
                role: own.map_or("unknown", |r| r.role.as_str()).to_string(),
                voter: voters.contains(&node),
                applied_index: own.and_then(|r| r.applied_index),
                last_log_index: own.and_then(|r| r.last_log_index),
                snapshot_index: own.and_then(|r| r.snapshot_index),
                purged_index: own.and_then(|r| r.purged_index),
                term: own.map(|r| r.term),
                matched_index,
                lag: leader_last
                    .zip(matched_index)
                    .map(|(last, matched)| last.saturating_sub(matched)),
                digest: own.and_then(|r| r.digest.clone()),
                reachable: own.is_some(),
            }
        })
        .collect();
    GroupView {
        group,
        leader,
        term,
        leader_last_log_index: leader_last,
        voters,
        learners,
        replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(
        group: u32,
        role: Role,
        term: u64,
        leader: Option<u64>,
        applied: u64,
    ) -> ReplicaReport {
        ReplicaReport {
            group: GroupId(group),
            role,
            term,
            leader,
            last_log_index: Some(applied),
            applied_index: Some(applied),
            snapshot_index: None,
            purged_index: None,
            voters: vec![1, 2, 3],
            learners: vec![],
            addrs: (1..=3).map(|n| (n, format!("n{n}:7000"))).collect(),
            matched: None,
            digest: Some(format!("d{applied}")),
        }
    }

    fn registry() -> NodeRegistry {
        let mut registry = NodeRegistry::default();
        for id in 1..=3 {
            registry.add(id, format!("n{id}:7000"), true).expect("add");
        }
        registry
    }

    #[test]
    fn the_leaders_view_gives_matched_index_and_lag_and_unreachable_nodes_are_marked() {
        let mut leader = replica(1, Role::Leader, 5, Some(2), 100);
        leader.matched = Some(BTreeMap::from([
            (1, Some(90)),
            (2, Some(100)),
            (3, Some(80)),
        ]));
        let follower = replica(1, Role::Follower, 5, Some(2), 90);
        let reports = BTreeMap::from([
            (
                1,
                Ok(NodeReport {
                    node_id: 1,
                    cluster_id: Some("c".into()),
                    groups: vec![follower],
                }),
            ),
            (
                2,
                Ok(NodeReport {
                    node_id: 2,
                    cluster_id: Some("c".into()),
                    groups: vec![leader],
                }),
            ),
            (3, Err("connection refused".to_string())),
        ]);
        let status = merge(1, Some("c".into()), &registry(), &reports);
        assert_eq!(status.groups.len(), 1);
        let group = &status.groups[0];
        assert_eq!(group.leader, Some(2));
        assert_eq!(group.term, 5);
        assert_eq!(group.leader_last_log_index, Some(100));
        let by_node: BTreeMap<u64, &ReplicaView> =
            group.replicas.iter().map(|r| (r.node, r)).collect();
        assert_eq!(by_node[&1].lag, Some(10));
        assert_eq!(by_node[&1].applied_index, Some(90));
        assert_eq!(by_node[&1].digest.as_deref(), Some("d90"));
        assert_eq!(by_node[&2].lag, Some(0));
        assert_eq!(by_node[&2].role, "leader");
        assert_eq!(by_node[&3].lag, Some(20));
        assert_eq!(by_node[&3].role, "unknown");
        assert!(!by_node[&3].reachable);
        assert_eq!(by_node[&3].applied_index, None);
        let node3 = status.nodes.iter().find(|n| n.id == 3).expect("node 3");
        assert!(!node3.reachable);
        assert_eq!(node3.error.as_deref(), Some("connection refused"));
        assert_eq!(node3.state, "active");
    }

    #[test]
    fn without_a_reachable_leader_the_newest_term_names_it_and_unknown_members_show() {
        let mut report = replica(0, Role::Follower, 7, Some(3), 10);
        report.voters = vec![1, 3, 9];
        report.addrs.insert(9, "n9:7000".into());
        let reports = BTreeMap::from([(
            1,
            Ok(NodeReport {
                node_id: 1,
                cluster_id: None,
                groups: vec![report, replica(1, Role::Follower, 2, None, 4)],
            }),
        )]);
        let status = merge(1, None, &registry(), &reports);
        assert_eq!(status.groups[0].leader, Some(3));
        assert_eq!(status.groups[0].leader_last_log_index, None);
        assert!(status.groups[0].replicas.iter().all(|r| r.lag.is_none()));
        assert_eq!(status.groups[1].leader, None);
        let node9 = status.nodes.iter().find(|n| n.id == 9).expect("node 9");
        assert_eq!(node9.state, "unregistered");
        assert_eq!(node9.peer_addr, "n9:7000");
        let node2 = status.nodes.iter().find(|n| n.id == 2).expect("node 2");
        assert_eq!(node2.error.as_deref(), Some("not asked"));
    }
}
