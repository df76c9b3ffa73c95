//! Partition shapes as Jepsen "grudges": for each receiving node, the set of nodes whose packets
//! it drops. Pure functions of the node list (and the caller's seeded choices); `net` applies a
//! grudge with nft on each receiver's input hook.
//!
//! Invariants: a grudge never names a node as dropping itself, and every node it names is one of
//! the nodes it was built from.

use crate::ids::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Receiver → the sources whose packets it drops.
pub type Grudge = BTreeMap<NodeId, BTreeSet<NodeId>>;

/// The partition shapes the nemesis draws from (CHAOS.md §A1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionShape {
    /// One node cut off from every other node (both directions).
    Isolate,
    /// The node leading the most groups cut off (resolved from cluster status at injection).
    IsolateLeader,
    /// A minority and a majority that cannot reach each other.
    Halves,
    /// One node drops another's packets; the other direction still delivers.
    OneWay,
    /// Two halves that cannot reach each other but both reach one bridge node.
    Bridge,
    /// Every node sees a different majority (for three nodes: each node drops one peer).
    MajoritiesRing,
}

impl PartitionShape {
    pub const ALL: [PartitionShape; 6] = [
        PartitionShape::Isolate,
        PartitionShape::IsolateLeader,
        PartitionShape::Halves,
        PartitionShape::OneWay,
        PartitionShape::Bridge,
        PartitionShape::MajoritiesRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::Isolate => "isolate",
            PartitionShape::IsolateLeader => "isolate-leader",
            PartitionShape::Halves => "halves",
            PartitionShape::OneWay => "one-way",
            PartitionShape::Bridge => "bridge",
            PartitionShape::MajoritiesRing => "majorities-ring",
        }
    }
}

/// Every node in `a` drops every node in `b` and vice versa.
pub fn cut(a: &[NodeId], b: &[NodeId]) -> Grudge {
    let mut grudge = Grudge::new();
    for &x in a {
        for &y in b {
            if x != y {
                grudge.entry(x).or_default().insert(y);
                grudge.entry(y).or_default().insert(x);
            }
        }
    }
    grudge
}

/// `node` cut off from all of `nodes`.
pub fn isolate(node: NodeId, nodes: &[NodeId]) -> Grudge {
    let others: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != node).collect();
    cut(&[node], &others)
}

/// `ordered` split after its first `len / 2` nodes: that minority against the rest.
pub fn halves(ordered: &[NodeId]) -> Grudge {
    let (minority, majority) = ordered.split_at(ordered.len() / 2);
    cut(minority, majority)
}

/// `receiver` drops `source`'s packets only.
pub fn one_way(receiver: NodeId, source: NodeId) -> Grudge {
    let mut grudge = Grudge::new();
    if receiver != source {
        grudge.entry(receiver).or_default().insert(source);
    }
    grudge
}

/// The middle node of `ordered` is the bridge: the nodes before it and the nodes after it cannot
/// reach each other, and both reach the bridge.
pub fn bridge(ordered: &[NodeId]) -> Grudge {
    let middle = ordered.len() / 2;
    match (ordered.get(..middle), ordered.get(middle + 1..)) {
        (Some(left), Some(right)) => cut(left, right),
        _ => Grudge::new(),
    }
}

/// Each node keeps the next `majority - 1` nodes of the ring `ordered` and drops the rest, so
/// each sees a majority (itself included) and no two see the same one.
pub fn majorities_ring(ordered: &[NodeId]) -> Grudge {
    let n = ordered.len();
    let majority = n / 2 + 1;
    let mut grudge = Grudge::new();
    for (position, &receiver) in ordered.iter().enumerate() {
        for step in majority..n {
            let source = ordered[(position + step) % n];
            grudge.entry(receiver).or_default().insert(source);
        }
    }
    grudge
}

/// The nodes a grudge touches (receivers and sources), for the history.
pub fn nodes_of(grudge: &Grudge) -> Vec<NodeId> {
    let mut nodes: BTreeSet<NodeId> = grudge.keys().copied().collect();
    nodes.extend(grudge.values().flatten().copied());
    nodes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().copied().map(NodeId).collect()
    }

    fn drops(grudge: &Grudge, receiver: u64) -> Vec<u64> {
        grudge
            .get(&NodeId(receiver))
            .map(|set| set.iter().map(|n| n.0).collect())
            .unwrap_or_default()
    }

    #[test]
    fn isolate_cuts_one_node_both_ways() {
        let grudge = isolate(NodeId(2), &ids(&[1, 2, 3]));
        assert_eq!(drops(&grudge, 2), vec![1, 3]);
        assert_eq!(drops(&grudge, 1), vec![2]);
        assert_eq!(drops(&grudge, 3), vec![2]);
    }

    #[test]
    fn halves_of_five_are_two_against_three() {
        let grudge = halves(&ids(&[4, 1, 5, 2, 3]));
        assert_eq!(drops(&grudge, 4), vec![2, 3, 5]);
        assert_eq!(drops(&grudge, 1), vec![2, 3, 5]);
        assert_eq!(drops(&grudge, 5), vec![1, 4]);
        assert_eq!(drops(&grudge, 3), vec![1, 4]);
    }

    #[test]
    fn one_way_drops_one_direction_only() {
        let grudge = one_way(NodeId(1), NodeId(3));
        assert_eq!(drops(&grudge, 1), vec![3]);
        assert!(drops(&grudge, 3).is_empty());
        assert!(one_way(NodeId(1), NodeId(1)).is_empty());
    }

    #[test]
    fn bridge_node_sees_both_sides() {
        let grudge = bridge(&ids(&[1, 2, 3]));
        assert_eq!(drops(&grudge, 1), vec![3]);
        assert_eq!(drops(&grudge, 3), vec![1]);
        assert!(drops(&grudge, 2).is_empty());
    }

    #[test]
    fn majorities_ring_gives_every_node_a_different_majority() {
        for n in [3u64, 5] {
            let nodes: Vec<u64> = (1..=n).collect();
            let grudge = majorities_ring(&ids(&nodes));
            let mut views = BTreeSet::new();
            for &node in &nodes {
                let dropped = drops(&grudge, node);
                assert!(!dropped.contains(&node));
                let sees = n as usize - dropped.len();
                assert_eq!(sees, n as usize / 2 + 1, "node {node} sees a majority");
                views.insert(dropped);
            }
            assert_eq!(views.len(), n as usize);
        }
    }
}
