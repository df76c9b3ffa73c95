//! `perdura cluster status --json` as the harness reads it (the subset it needs; the format only
//! ever gains fields, docs/design/007), and what it decides from it: who leads the most groups,
//! and whether every replica of every group has caught up (equal applied indexes).

use crate::ids::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Deserialize)]
pub struct ClusterStatus {
    pub answered_by: u64,
    pub highest_node_id: u64,
    pub nodes: Vec<StatusNode>,
    pub groups: Vec<StatusGroup>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StatusNode {
    pub id: u64,
    pub peer_addr: String,
    pub state: String,
    pub reachable: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StatusGroup {
    pub group: u32,
    pub leader: Option<u64>,
    /// The last log index of the replica that reports itself leader (none if none does).
    #[serde(default)]
    pub leader_last_log_index: Option<u64>,
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
    #[serde(default)]
    pub replicas: Vec<StatusReplica>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StatusReplica {
    pub node: u64,
    /// The replica's own role (`leader`, `follower`, …; `unknown` when it was not asked).
    #[serde(default)]
    pub role: String,
    pub reachable: bool,
    pub applied_index: Option<u64>,
    pub digest: Option<String>,
}

impl ClusterStatus {
    /// The node that leads the most groups (lowest id on ties), if any group has a leader.
    pub fn busiest_leader(&self) -> Option<NodeId> {
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for leader in self.groups.iter().filter_map(|g| g.leader) {
            *counts.entry(leader).or_default() += 1;
        }
        let most = counts.values().copied().max()?;
        counts
            .into_iter()
            .find(|&(_, count)| count == most)
            .map(|(node, _)| NodeId(node))
    }

    /// Why the cluster has not converged on `members`, or `None` when it has: every group has a
    /// leader, its voters are exactly `members`, and every member's replica answered with the
    /// same applied index (and, where reported, the same digest).
    pub fn not_converged(&self, members: &[NodeId]) -> Option<String> {
        if self.groups.is_empty() {
            return Some("no groups reported".into());
        }
        let mut wanted: Vec<u64> = members.iter().map(|n| n.0).collect();
        wanted.sort_unstable();
        for group in &self.groups {
            let Some(leader) = group.leader else {
                return Some(format!("group {} has no leader", group.group));
            };
            // The leader must lead by its own account and have applied its whole log (an entry
            // of its own term at least, so everything committed before is applied there):
            // followers keep naming a restarted leader, which no longer leads, until their
            // election timeout, and entries it committed before its crash may be applied
            // nowhere else yet.
            let leads = group
                .replicas
                .iter()
                .find(|r| r.node == leader)
                .filter(|r| r.role == "leader");
            let Some(leader_replica) = leads else {
                return Some(format!(
                    "group {}: node {leader} is named leader but does not report leading",
                    group.group
                ));
            };
            if leader_replica.applied_index != group.leader_last_log_index {
                return Some(format!(
                    "group {}: leader {leader} applied {:?} of its log up to {:?}",
                    group.group, leader_replica.applied_index, group.leader_last_log_index
                ));
            }
            let mut voters = group.voters.clone();
            voters.sort_unstable();
            if voters != wanted {
                return Some(format!(
                    "group {} voters {:?}, expected {:?}",
                    group.group, voters, wanted
                ));
            }
            let mut applied = None;
            let mut digest: Option<&str> = None;
            for &node in &wanted {
                let Some(replica) = group.replicas.iter().find(|r| r.node == node) else {
                    return Some(format!("group {}: no replica on node {node}", group.group));
                };
                let Some(index) = replica.applied_index.filter(|_| replica.reachable) else {
                    return Some(format!("group {}: node {node} did not answer", group.group));
                };
                match applied {
                    None => applied = Some(index),
                    Some(first) if first != index => {
                        return Some(format!(
                            "group {}: applied indexes differ ({first} vs {index} on node {node})",
                            group.group
                        ));
                    }
                    Some(_) => {}
                }
                if let Some(d) = replica.digest.as_deref() {
                    match digest {
                        None => digest = Some(d),
                        Some(first) if first != d => {
                            return Some(format!(
                                "group {}: digests differ at applied index {index}",
                                group.group
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        None
    }

    /// `(group, applied_index, digest)` of every group's replica on `node`.
    pub fn replica_states(&self, node: NodeId) -> Vec<(u32, u64, String)> {
        self.groups
            .iter()
            .filter_map(|group| {
                let replica = group.replicas.iter().find(|r| r.node == node.0)?;
                Some((
                    group.group,
                    replica.applied_index?,
                    replica.digest.clone().unwrap_or_default(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> ClusterStatus {
        serde_json::from_str(json).unwrap()
    }

    const TWO_GROUPS: &str = r#"{"cluster_id":"c","answered_by":1,"highest_node_id":3,
      "nodes":[{"id":1,"peer_addr":"a","state":"active","reachable":true,"error":null}],
      "groups":[
        {"group":0,"leader":2,"term":3,"leader_last_log_index":7,"voters":[1,2,3],"learners":[],"replicas":[
          {"node":1,"role":"follower","voter":true,"reachable":true,"applied_index":7,"digest":"d7"},
          {"node":2,"role":"leader","voter":true,"reachable":true,"applied_index":7,"digest":"d7"},
          {"node":3,"role":"follower","voter":true,"reachable":true,"applied_index":7,"digest":"d7"}]},
        {"group":1,"leader":2,"term":3,"leader_last_log_index":9,"voters":[1,2,3],"learners":[],"replicas":[
          {"node":1,"role":"follower","voter":true,"reachable":true,"applied_index":9,"digest":"d9"},
          {"node":2,"role":"leader","voter":true,"reachable":true,"applied_index":9,"digest":"d9"},
          {"node":3,"role":"follower","voter":true,"reachable":false,"applied_index":null,"digest":null}]}]}"#;

    #[test]
    fn an_unreachable_replica_is_not_converged() {
        let status = status(TWO_GROUPS);
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let why = status.not_converged(&members).unwrap();
        assert!(why.contains("node 3 did not answer"), "{why}");
        assert_eq!(status.busiest_leader(), Some(NodeId(2)));
    }

    #[test]
    fn equal_applied_indexes_on_every_member_converge() {
        let json = TWO_GROUPS.replace(
            r#""reachable":false,"applied_index":null,"digest":null"#,
            r#""reachable":true,"applied_index":9,"digest":"d9""#,
        );
        let status = status(&json);
        assert_eq!(
            status.not_converged(&[NodeId(1), NodeId(2), NodeId(3)]),
            None
        );
        let lagging = json.replacen(
            r#""applied_index":9,"digest":"d9""#,
            r#""applied_index":8,"digest":"d8""#,
            1,
        );
        assert!(
            status_of(&lagging)
                .not_converged(&[NodeId(1), NodeId(2), NodeId(3)])
                .is_some()
        );
        assert!(
            status
                .not_converged(&[NodeId(1), NodeId(2), NodeId(4)])
                .is_some(),
            "a replaced member must show up in the voters"
        );
    }

    /// Followers still name a restarted leader that no longer leads (it must win a new
    /// election), and a leader that has not applied its whole log may hold committed entries
    /// nobody else applied yet: neither is converged, even with equal applied indexes.
    #[test]
    fn a_leader_that_does_not_lead_or_lags_its_own_log_is_not_converged() {
        let all_up = TWO_GROUPS.replace(
            r#""reachable":false,"applied_index":null,"digest":null"#,
            r#""reachable":true,"applied_index":9,"digest":"d9""#,
        );
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let demoted = all_up.replace(
            r#""node":2,"role":"leader""#,
            r#""node":2,"role":"follower""#,
        );
        let why = status_of(&demoted).not_converged(&members).unwrap();
        assert!(why.contains("does not report leading"), "{why}");
        let behind = all_up.replace(
            r#""leader_last_log_index":9"#,
            r#""leader_last_log_index":11"#,
        );
        let why = status_of(&behind).not_converged(&members).unwrap();
        assert!(
            why.contains("applied Some(9) of its log up to Some(11)"),
            "{why}"
        );
    }

    fn status_of(json: &str) -> ClusterStatus {
        status(json)
    }
}
