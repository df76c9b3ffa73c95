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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    pub fn contains(&self, slot: SlotId) -> bool {
        self.start <= slot.0 && slot.0 < self.end
    }

    /// Number of slots in the range.
    pub fn len(&self) -> u16 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the two ranges share a slot.
    pub fn overlaps(&self, other: &SlotRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether every slot of `other` is in this range.
    pub fn covers(&self, other: &SlotRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

impl std::fmt::Display for SlotRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
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

    /// The ranges `group` owns, in slot order.
    pub fn ranges_of(&self, group: GroupId) -> Vec<SlotRange> {
        self.ranges
            .iter()
            .filter(|(_, g)| *g == group)
            .map(|(r, _)| *r)
            .collect()
    }

    /// Gives `range` to `group`. `range` must lie inside one range of the map (the slots of one
    /// group); that range is cut into up to three, so the map still covers every slot exactly
    /// once. Returns `false` (and changes nothing) if no single range covers `range`.
    pub fn assign(&mut self, range: SlotRange, group: GroupId) -> bool {
        if range.is_empty() {
            return false;
        }
        let Some(index) = self.ranges.iter().position(|(r, _)| r.covers(&range)) else {
            return false;
        };
        let (old, owner) = self.ranges[index];
        let pieces = [
            (
                SlotRange {
                    start: old.start,
                    end: range.start,
                },
                owner,
            ),
            (range, group),
            (
                SlotRange {
                    start: range.end,
                    end: old.end,
                },
                owner,
            ),
        ];
        self.ranges.splice(
            index..=index,
            pieces.into_iter().filter(|(r, _)| !r.is_empty()),
        );
        true
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
    fn assign_cuts_one_range_and_keeps_the_cover() {
        let mut map = SlotMap::even(2);
        let upper = SlotRange {
            start: 1024,
            end: 2048,
        };
        assert!(map.assign(upper, GroupId(3)));
        assert_eq!(
            map.ranges_of(GroupId(1)),
            vec![SlotRange {
                start: 0,
                end: 1024
            }]
        );
        assert_eq!(map.ranges_of(GroupId(3)), vec![upper]);
        assert_eq!(map.group_of(SlotId(2047)), Some(GroupId(3)));
        assert_eq!(map.group_of(SlotId(2048)), Some(GroupId(2)));
        assert!(map.assign(SlotRange { start: 10, end: 20 }, GroupId(4)));
        assert_eq!(map.ranges.len(), 5);
        let covered: u32 = map.ranges.iter().map(|(r, _)| u32::from(r.len())).sum();
        assert_eq!(covered, u32::from(SLOT_COUNT));
        // A range across two owners, or an empty one, is refused and changes nothing.
        let before = map.clone();
        assert!(!map.assign(
            SlotRange {
                start: 1000,
                end: 1100
            },
            GroupId(5)
        ));
        assert!(!map.assign(SlotRange { start: 7, end: 7 }, GroupId(5)));
        assert_eq!(map, before);
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
