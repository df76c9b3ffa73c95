//! [`GroupSet`]: the workflow groups running on this node. It grows at run time when an online
//! split creates a group (`docs/design/005-online-group-split.md`); groups are never removed
//! while the node runs.

use crate::group::Group;
use perdura_engine::GroupId;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The running workflow groups, shared by the router, the API's reads and the split driver.
#[derive(Default)]
pub(crate) struct GroupSet {
    groups: RwLock<BTreeMap<GroupId, Arc<Group>>>,
}

impl GroupSet {
    pub fn new(groups: BTreeMap<GroupId, Arc<Group>>) -> GroupSet {
        GroupSet {
            groups: RwLock::new(groups),
        }
    }

    // The lock guards a map of `Arc`s and is never held across a call that can panic, so a
    // poisoned lock still holds a consistent map.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<GroupId, Arc<Group>>> {
        self.groups.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &GroupId) -> Option<Arc<Group>> {
        self.read().get(id).cloned()
    }

    pub fn contains_key(&self, id: &GroupId) -> bool {
        self.read().contains_key(id)
    }

    /// Group IDs, ascending.
    pub fn keys(&self) -> Vec<GroupId> {
        self.read().keys().copied().collect()
    }

    /// Groups in ID order.
    pub fn values(&self) -> Vec<Arc<Group>> {
        self.read().values().cloned().collect()
    }

    /// Adds a group; `false` (and no change) if one with that ID runs already.
    pub fn insert(&self, group: Arc<Group>) -> bool {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        if groups.contains_key(&group.id) {
            return false;
        }
        groups.insert(group.id, group);
        true
    }
}
