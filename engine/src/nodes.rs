//! The cluster's node registry, part of the meta state (group 0): every node that ever joined,
//! its peer address and its lifecycle state, and the highest node id ever used.
//!
//! ## Invariants
//! * **Node ids are never reused.** A removed node stays in the registry as a tombstone, and
//!   `highest_node_id` only grows: a new node must take an id above every id ever used, so even
//!   a registry whose tombstones were lost could not hand out an old id again.
//! * Lifecycle: `Joining` (a learner in every group, catching up) → `Active` (a voter in every
//!   group) → `Removed` (in no group's membership; refused if it comes back). Nodes of the
//!   initial cluster enter as `Active`. There is no way back from `Removed`.
//! * Every command is idempotent: re-proposing the same change (an operator retry, a command
//!   whose first outcome was unknown) answers `already: true` and changes nothing.

use crate::error::EngineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a node is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NodeState {
    /// Added as a learner to the groups; not a voter yet.
    Joining,
    /// A voter in every group.
    Active,
    /// Removed from every group; its id is retired.
    Removed,
}

impl NodeState {
    /// The lower-case name used in status output (`joining`, `active`, `removed`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Active => "active",
            NodeState::Removed => "removed",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node of the cluster, as the meta group knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u64,
    /// The node's `--peer-addr` (Raft and node-to-node traffic).
    pub peer_addr: String,
    pub state: NodeState,
}

/// Every node that ever belonged to the cluster, by id, and the highest id ever used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistry {
    pub nodes: BTreeMap<u64, NodeRecord>,
    /// The highest node id ever registered; only grows.
    pub highest_node_id: u64,
}

/// The answer of a registry command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChanged {
    pub node: NodeRecord,
    /// The registry already had this change; nothing was written.
    pub already: bool,
}

impl NodeRegistry {
    pub fn get(&self, id: u64) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    /// The smallest id a new node may take.
    pub fn next_node_id(&self) -> u64 {
        self.highest_node_id.saturating_add(1)
    }

    /// Nodes that are not removed, by id.
    pub fn members(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes
            .values()
            .filter(|n| n.state != NodeState::Removed)
    }

    /// `id` was removed from the cluster (and must be refused if it comes back).
    pub fn is_removed(&self, id: u64) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.state == NodeState::Removed)
    }

    /// Registers a node: `Active` for a member of the initial cluster (`voter`), else `Joining`.
    /// Re-adding a registered, not removed node with the same address is a no-op (an `Active`
    /// node stays `Active`); a removed id, an id below the highest one ever used, or id 0 is
    /// refused.
    pub fn add(
        &mut self,
        id: u64,
        peer_addr: String,
        voter: bool,
    ) -> Result<NodeChanged, EngineError> {
        if id == 0 {
            return Err(EngineError::InvalidArgument(
                "node id 0 is not valid; node ids start at 1".into(),
            ));
        }
        if peer_addr.trim().is_empty() && !voter {
            return Err(EngineError::InvalidArgument(format!(
                "node {id} needs a peer address"
            )));
        }
        if let Some(existing) = self.nodes.get_mut(&id) {
            return match existing.state {
                NodeState::Removed => Err(EngineError::FailedPrecondition(format!(
                    "node id {id} belonged to a removed node and is never reused; the next \
                     free node id is {}",
                    self.highest_node_id.saturating_add(1)
                ))),
                _ if existing.peer_addr != peer_addr => {
                    Err(EngineError::FailedPrecondition(format!(
                        "node id {id} is already in use by the node at {}; the next free node \
                         id is {}",
                        existing.peer_addr,
                        self.highest_node_id.saturating_add(1)
                    )))
                }
                _ => Ok(NodeChanged {
                    node: existing.clone(),
                    already: true,
                }),
            };
        }
        if id <= self.highest_node_id {
            return Err(EngineError::FailedPrecondition(format!(
                "node id {id} is not above the highest node id ever used ({}); node ids are \
                 never reused, the next free one is {}",
                self.highest_node_id,
                self.highest_node_id.saturating_add(1)
            )));
        }
        let node = NodeRecord {
            id,
            peer_addr,
            state: if voter {
                NodeState::Active
            } else {
                NodeState::Joining
            },
        };
        self.highest_node_id = id;
        self.nodes.insert(id, node.clone());
        Ok(NodeChanged {
            node,
            already: false,
        })
    }

    /// `Joining` → `Active` once the node is a voter of every group.
    pub fn promote(&mut self, id: u64) -> Result<NodeChanged, EngineError> {
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| EngineError::NotFound(format!("node {id} is not registered")))?;
        match node.state {
            NodeState::Removed => Err(EngineError::FailedPrecondition(format!(
                "node {id} was removed and cannot become a voter again"
            ))),
            NodeState::Active => Ok(NodeChanged {
                node: node.clone(),
                already: true,
            }),
            NodeState::Joining => {
                node.state = NodeState::Active;
                Ok(NodeChanged {
                    node: node.clone(),
                    already: false,
                })
            }
        }
    }

    /// Marks a node `Removed` (its record stays as a tombstone). Removing the last member is
    /// refused: the cluster would have no node left.
    pub fn remove(&mut self, id: u64) -> Result<NodeChanged, EngineError> {
        let members = self.members().count();
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| EngineError::NotFound(format!("node {id} is not registered")))?;
        if node.state == NodeState::Removed {
            return Ok(NodeChanged {
                node: node.clone(),
                already: true,
            });
        }
        if members <= 1 {
            return Err(EngineError::FailedPrecondition(format!(
                "node {id} is the last member of the cluster and cannot be removed"
            )));
        }
        node.state = NodeState::Removed;
        Ok(NodeChanged {
            node: node.clone(),
            already: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> NodeRegistry {
        let mut registry = NodeRegistry::default();
        for id in 1..=3 {
            registry
                .add(id, format!("127.0.0.1:{}", 7000 + id), true)
                .expect("initial node");
        }
        registry
    }

    #[test]
    fn initial_nodes_are_active_and_ids_grow() {
        let registry = three_nodes();
        assert_eq!(registry.highest_node_id, 3);
        assert_eq!(registry.next_node_id(), 4);
        assert!(
            registry
                .nodes
                .values()
                .all(|n| n.state == NodeState::Active)
        );
    }

    #[test]
    fn added_node_joins_then_is_promoted_idempotently() {
        let mut registry = three_nodes();
        let added = registry
            .add(4, "127.0.0.1:7004".into(), false)
            .expect("add");
        assert_eq!(added.node.state, NodeState::Joining);
        assert!(!added.already);
        let again = registry
            .add(4, "127.0.0.1:7004".into(), false)
            .expect("retry");
        assert!(again.already);
        assert_eq!(
            registry.promote(4).expect("promote").node.state,
            NodeState::Active
        );
        assert!(registry.promote(4).expect("promote again").already);
        // A retried add after the promotion leaves the node active.
        let late = registry
            .add(4, "127.0.0.1:7004".into(), false)
            .expect("late retry");
        assert!(late.already);
        assert_eq!(registry.get(4).map(|n| n.state), Some(NodeState::Active));
    }

    #[test]
    fn removed_ids_are_never_reused() {
        let mut registry = three_nodes();
        let removed = registry.remove(3).expect("remove");
        assert_eq!(removed.node.state, NodeState::Removed);
        assert!(registry.remove(3).expect("remove again").already);
        assert!(registry.is_removed(3));
        let err = registry
            .add(3, "127.0.0.1:7003".into(), false)
            .expect_err("reuse of a removed id");
        assert!(err.to_string().contains("never reused"), "{err}");
        assert!(err.to_string().contains("next free node id is 4"), "{err}");
        assert_eq!(registry.promote(3).map(|c| c.already).ok(), None);
        assert_eq!(registry.get(3).map(|n| n.state), Some(NodeState::Removed));
    }

    #[test]
    fn ids_below_the_highest_ever_used_are_refused_even_without_a_tombstone() {
        let mut registry = three_nodes();
        registry
            .add(7, "127.0.0.1:7007".into(), false)
            .expect("add 7");
        let err = registry
            .add(5, "127.0.0.1:7005".into(), false)
            .expect_err("below the highest id");
        assert!(err.to_string().contains("next free one is 8"), "{err}");
        assert_eq!(registry.highest_node_id, 7);
    }

    #[test]
    fn a_used_id_with_another_address_is_refused() {
        let mut registry = three_nodes();
        let err = registry
            .add(2, "10.0.0.9:7002".into(), false)
            .expect_err("id in use");
        assert!(err.to_string().contains("already in use"), "{err}");
        assert_eq!(
            registry.get(2).map(|n| n.peer_addr.as_str()),
            Some("127.0.0.1:7002")
        );
    }

    #[test]
    fn invalid_adds_and_the_last_member_are_refused() {
        let mut registry = NodeRegistry::default();
        assert!(matches!(
            registry.add(0, "a:1".into(), true),
            Err(EngineError::InvalidArgument(_))
        ));
        assert!(matches!(
            registry.add(2, " ".into(), false),
            Err(EngineError::InvalidArgument(_))
        ));
        registry.add(1, String::new(), true).expect("single node");
        assert!(matches!(
            registry.remove(1),
            Err(EngineError::FailedPrecondition(_))
        ));
        assert!(matches!(registry.remove(9), Err(EngineError::NotFound(_))));
        assert!(matches!(registry.promote(9), Err(EngineError::NotFound(_))));
        assert_eq!(registry, {
            let mut expected = NodeRegistry::default();
            expected.add(1, String::new(), true).expect("single node");
            expected
        });
    }
}
