//! The meta group's state: namespaces, the slot map and the node registry. Replicated through
//! group 0.

use crate::error::EngineError;
use crate::ids::GroupId;
use crate::nodes::{NodeChanged, NodeRegistry};
use crate::slots::{SlotMap, SlotRange};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A registered namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub name: String,
    /// Stable UUID, chosen by the proposer (the engine has no randomness).
    pub id: String,
    pub description: String,
    pub owner_email: String,
    /// How long closed workflows are kept, in milliseconds.
    pub retention_ms: i64,
    pub registered_at_ms: i64,
}

/// Commands of the meta group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Written once when the cluster is created: the slot map and the `default` namespace.
    /// Idempotent: a second bootstrap changes nothing.
    Bootstrap {
        cluster_id: String,
        slot_map: SlotMap,
        default_namespace: NamespaceRecord,
    },
    RegisterNamespace(NamespaceRecord),
    // New variants go at the end (bincode variant indexes).
    /// Online split, step 1: records that `slots` of `source` will move to a new group and
    /// allocates its ID (one more than every group ever named). Idempotent: the same split while
    /// it is in progress answers the same group. See `docs/design/005-online-group-split.md`.
    BeginSplit {
        source: GroupId,
        slots: SlotRange,
    },
    /// Online split, last step: the slot map gives the split's slots to `new_group` and the
    /// split record is dropped. Idempotent.
    FinishSplit {
        new_group: GroupId,
    },
    /// Registers a node (see [`NodeRegistry::add`]): `voter` for a member of the initial
    /// cluster (registered `Active`), otherwise the node is `Joining` until [`Self::PromoteNode`].
    AddNode {
        id: u64,
        peer_addr: String,
        voter: bool,
    },
    /// Marks a node removed; its id is never used again.
    RemoveNode {
        id: u64,
    },
    /// A joining node became a voter of every group.
    PromoteNode {
        id: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaReply {
    Bootstrapped {
        already: bool,
    },
    NamespaceRegistered,
    /// Reply to `BeginSplit`.
    SplitBegun {
        split: SplitRecord,
        already: bool,
    },
    /// Reply to `FinishSplit`.
    SplitFinished {
        already: bool,
    },
    /// Reply to `AddNode`, `RemoveNode` and `PromoteNode`: the node's record after the command.
    NodeChanged(NodeChanged),
}

/// An online split that has begun and not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub source: GroupId,
    pub slots: SlotRange,
    pub new_group: GroupId,
}

/// State of the meta group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub cluster_id: Option<String>,
    pub slot_map: Option<SlotMap>,
    pub namespaces: BTreeMap<String, NamespaceRecord>,
    // Online group split (issue 4).
    /// Splits in progress, by new group. A split stays here from `BeginSplit` until
    /// `FinishSplit`, so an orchestrator that crashed can resume it.
    pub splits: BTreeMap<GroupId, SplitRecord>,
    /// Every group a split allocated. Such a group starts from the genesis its source's
    /// `SplitOut` wrote (or from its leader's snapshot) and must never be `initialize`d.
    pub split_groups: BTreeSet<GroupId>,
    // Membership (issue 4).
    /// Every node that ever joined; ids are never reused.
    pub node_registry: NodeRegistry,
}

impl MetaState {
    pub fn apply(&mut self, command: MetaCommand) -> Result<MetaReply, EngineError> {
        match command {
            MetaCommand::Bootstrap {
                cluster_id,
                slot_map,
                default_namespace,
            } => {
                if self.cluster_id.is_some() {
                    return Ok(MetaReply::Bootstrapped { already: true });
                }
                self.cluster_id = Some(cluster_id);
                self.slot_map = Some(slot_map);
                self.namespaces
                    .insert(default_namespace.name.clone(), default_namespace);
                Ok(MetaReply::Bootstrapped { already: false })
            }
            MetaCommand::RegisterNamespace(record) => {
                if record.name.is_empty() {
                    return Err(EngineError::InvalidArgument(
                        "Namespace name is empty.".into(),
                    ));
                }
                if self.namespaces.contains_key(&record.name) {
                    return Err(EngineError::NamespaceAlreadyExists(record.name));
                }
                self.namespaces.insert(record.name.clone(), record);
                Ok(MetaReply::NamespaceRegistered)
            }
            MetaCommand::BeginSplit { source, slots } => self.begin_split(source, slots),
            MetaCommand::FinishSplit { new_group } => self.finish_split(new_group),
            MetaCommand::AddNode {
                id,
                peer_addr,
                voter,
            } => self
                .node_registry
                .add(id, peer_addr, voter)
                .map(MetaReply::NodeChanged),
            MetaCommand::RemoveNode { id } => {
                self.node_registry.remove(id).map(MetaReply::NodeChanged)
            }
            MetaCommand::PromoteNode { id } => {
                self.node_registry.promote(id).map(MetaReply::NodeChanged)
            }
        }
    }

    fn begin_split(&mut self, source: GroupId, slots: SlotRange) -> Result<MetaReply, EngineError> {
        let map = self
            .slot_map
            .as_ref()
            .ok_or_else(|| EngineError::FailedPrecondition("the cluster has no slot map".into()))?;
        if let Some(split) = self
            .splits
            .values()
            .find(|s| s.source == source || s.slots.overlaps(&slots))
        {
            if split.source == source && split.slots == slots {
                return Ok(MetaReply::SplitBegun {
                    split: *split,
                    already: true,
                });
            }
            return Err(EngineError::FailedPrecondition(format!(
                "group {} is already splitting {} off to group {}",
                split.source, split.slots, split.new_group
            )));
        }
        if slots.is_empty() || !map.ranges_of(source).iter().any(|r| r.covers(&slots)) {
            return Err(EngineError::InvalidArgument(format!(
                "group {source} does not own every slot of {slots}"
            )));
        }
        let last = map
            .groups()
            .into_iter()
            .chain(self.split_groups.iter().copied())
            .max()
            .unwrap_or(GroupId::META);
        let split = SplitRecord {
            source,
            slots,
            new_group: GroupId(last.0 + 1),
        };
        self.splits.insert(split.new_group, split);
        self.split_groups.insert(split.new_group);
        Ok(MetaReply::SplitBegun {
            split,
            already: false,
        })
    }

    fn finish_split(&mut self, new_group: GroupId) -> Result<MetaReply, EngineError> {
        let Some(split) = self.splits.get(&new_group).copied() else {
            let known = self
                .slot_map
                .as_ref()
                .is_some_and(|map| map.groups().contains(&new_group));
            return if known {
                Ok(MetaReply::SplitFinished { already: true })
            } else {
                Err(EngineError::NotFound(format!(
                    "no split to group {new_group}"
                )))
            };
        };
        let map = self
            .slot_map
            .as_mut()
            .ok_or_else(|| EngineError::FailedPrecondition("the cluster has no slot map".into()))?;
        if !map.assign(split.slots, new_group) {
            return Err(EngineError::FailedPrecondition(format!(
                "slots {} are no longer one range of the slot map",
                split.slots
            )));
        }
        self.splits.remove(&new_group);
        Ok(MetaReply::SplitFinished { already: false })
    }

    pub fn namespace(&self, name: &str) -> Option<&NamespaceRecord> {
        self.namespaces.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> NamespaceRecord {
        NamespaceRecord {
            name: name.into(),
            id: format!("id-{name}"),
            description: String::new(),
            owner_email: String::new(),
            retention_ms: 86_400_000,
            registered_at_ms: 1,
        }
    }

    #[test]
    fn bootstrap_is_idempotent_and_register_rejects_duplicates() {
        let mut state = MetaState::default();
        let boot = MetaCommand::Bootstrap {
            cluster_id: "c".into(),
            slot_map: SlotMap::even(4),
            default_namespace: ns("default"),
        };
        assert_eq!(
            state.apply(boot.clone()),
            Ok(MetaReply::Bootstrapped { already: false })
        );
        assert_eq!(
            state.apply(boot),
            Ok(MetaReply::Bootstrapped { already: true })
        );
        assert!(
            state
                .apply(MetaCommand::RegisterNamespace(ns("other")))
                .is_ok()
        );
        assert_eq!(
            state.apply(MetaCommand::RegisterNamespace(ns("other"))),
            Err(EngineError::NamespaceAlreadyExists("other".into()))
        );
        assert_eq!(state.namespaces.len(), 2);
    }

    #[test]
    fn a_split_begins_once_allocates_a_new_group_and_finishes_into_the_slot_map() {
        let mut state = MetaState::default();
        let boot = MetaCommand::Bootstrap {
            cluster_id: "c".into(),
            slot_map: SlotMap::even(2),
            default_namespace: ns("default"),
        };
        assert!(state.apply(boot).is_ok());
        let upper = SlotRange {
            start: 1024,
            end: 2048,
        };
        let begin = MetaCommand::BeginSplit {
            source: GroupId(1),
            slots: upper,
        };
        let split = SplitRecord {
            source: GroupId(1),
            slots: upper,
            new_group: GroupId(3),
        };
        assert_eq!(
            state.apply(begin.clone()),
            Ok(MetaReply::SplitBegun {
                split,
                already: false
            })
        );
        assert_eq!(
            state.apply(begin),
            Ok(MetaReply::SplitBegun {
                split,
                already: true
            })
        );
        // A second split of the same source waits for the first; a range it does not own fails.
        let lower = SlotRange { start: 0, end: 10 };
        assert!(matches!(
            state.apply(MetaCommand::BeginSplit {
                source: GroupId(1),
                slots: lower
            }),
            Err(EngineError::FailedPrecondition(_))
        ));
        assert!(matches!(
            state.apply(MetaCommand::BeginSplit {
                source: GroupId(2),
                slots: lower
            }),
            Err(EngineError::InvalidArgument(_))
        ));
        let finish = MetaCommand::FinishSplit {
            new_group: GroupId(3),
        };
        assert_eq!(
            state.apply(finish.clone()),
            Ok(MetaReply::SplitFinished { already: false })
        );
        assert_eq!(
            state.apply(finish),
            Ok(MetaReply::SplitFinished { already: true })
        );
        assert!(state.splits.is_empty());
        assert_eq!(state.split_groups, BTreeSet::from([GroupId(3)]));
        let map = state.slot_map.as_ref().expect("bootstrapped");
        assert_eq!(map.ranges_of(GroupId(3)), vec![upper]);
        assert_eq!(
            map.ranges_of(GroupId(1)),
            vec![SlotRange {
                start: 0,
                end: 1024
            }]
        );
        // The next split gets the next group ID.
        let next = state.apply(MetaCommand::BeginSplit {
            source: GroupId(2),
            slots: SlotRange {
                start: 3000,
                end: 4096,
            },
        });
        assert!(matches!(
            next,
            Ok(MetaReply::SplitBegun { split, .. }) if split.new_group == GroupId(4)
        ));
    }

    #[test]
    fn node_commands_go_through_the_registry_and_rejections_change_nothing() {
        let mut state = MetaState::default();
        for id in 1..=3 {
            let added = state.apply(MetaCommand::AddNode {
                id,
                peer_addr: format!("n{id}:7000"),
                voter: true,
            });
            assert!(matches!(added, Ok(MetaReply::NodeChanged(c)) if !c.already));
        }
        assert!(matches!(
            state.apply(MetaCommand::RemoveNode { id: 3 }),
            Ok(MetaReply::NodeChanged(c)) if c.node.state == crate::NodeState::Removed
        ));
        let before = state.clone();
        assert!(
            state
                .apply(MetaCommand::AddNode {
                    id: 3,
                    peer_addr: "n3:7000".into(),
                    voter: false,
                })
                .is_err()
        );
        assert_eq!(state, before, "a rejected command changes nothing");
        assert!(matches!(
            state.apply(MetaCommand::AddNode {
                id: 4,
                peer_addr: "n4:7000".into(),
                voter: false,
            }),
            Ok(MetaReply::NodeChanged(c)) if c.node.state == crate::NodeState::Joining
        ));
        assert!(matches!(
            state.apply(MetaCommand::PromoteNode { id: 4 }),
            Ok(MetaReply::NodeChanged(c)) if c.node.state == crate::NodeState::Active
        ));
        assert_eq!(state.node_registry.highest_node_id, 4);
        assert_eq!(
            state
                .node_registry
                .members()
                .map(|n| n.id)
                .collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
    }
}
