//! The slot space and the slot → group map.
//!
//! A workflow's home is `slot_of(namespace, workflow_id)`, a stable hash (FNV-1a, fixed forever:
//! changing it would move every stored workflow) onto `SLOT_COUNT` slots. Which group owns a slot
//! is *data* ([`SlotMap`]), stored in the meta group, so slots can later move between groups.

use crate::ids::{GroupId, SlotId};
use serde::{Deserialize, Serialize};

/// Number of slots. Fixed at cluster creation for the life of the data.
pub const SLOT_COUNT: u16 = 4096;

/// Stable slot of a workflow ID in a namespace.
pub fn slot_of(namespace: &str, workflow_id: &str) -> SlotId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in namespace.bytes().chain([0u8]).chain(workflow_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    SlotId((hash % u64::from(SLOT_COUNT)) as u16)
}

/// A half-open range of slots `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

/// Ordered, non-overlapping ranges that together cover every slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMap {
    pub ranges: Vec<(SlotRange, GroupId)>,
}

impl SlotMap {
    /// Splits the slot space evenly over groups `1..=groups`.
    pub fn even(groups: u32) -> SlotMap {
        let groups = groups.max(1);
        let per = u32::from(SLOT_COUNT).div_ceil(groups);
        let ranges = (0..groups)
            .map(|i| {
                let start = (i * per).min(u32::from(SLOT_COUNT)) as u16;
                let end = ((i + 1) * per).min(u32::from(SLOT_COUNT)) as u16;
                (SlotRange { start, end }, GroupId(i + 1))
            })
            .filter(|(r, _)| r.start < r.end)
            .collect();
        SlotMap { ranges }
    }

    /// The group owning a slot.
    pub fn group_of(&self, slot: SlotId) -> Option<GroupId> {
        self.ranges
            .iter()
            .find(|(r, _)| r.start <= slot.0 && slot.0 < r.end)
            .map(|(_, g)| *g)
    }

    /// Every workflow group named by the map, ascending, without repeats.
    pub fn groups(&self) -> Vec<GroupId> {
        let mut groups: Vec<GroupId> = self.ranges.iter().map(|(_, g)| *g).collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_map_covers_every_slot_exactly_once() {
        for groups in [1, 3, 4, 16, 17] {
            let map = SlotMap::even(groups);
            for slot in 0..SLOT_COUNT {
                let owners = map
                    .ranges
                    .iter()
                    .filter(|(r, _)| r.start <= slot && slot < r.end)
                    .count();
                assert_eq!(owners, 1, "slot {slot} with {groups} groups");
            }
            assert_eq!(map.groups().len(), groups as usize);
        }
    }

    #[test]
    fn slot_hash_is_stable() {
        // Pinned values: the hash decides where stored workflows live and must never change.
        assert_eq!(slot_of("default", "order-1"), slot_of("default", "order-1"));
        assert_ne!(slot_of("default", "a"), slot_of("other", "a"));
        assert_eq!(
            slot_of("", ""),
            SlotId((0xaf63_bd4c_8601_b7df_u64 % 4096) as u16)
        );
    }
}
