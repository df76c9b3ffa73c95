//! Invariant 9: while faults are within what the cluster tolerates, requests finish.
//!
//! The nemesis operations give a fault timeline. An inject that was installed or may have been
//! (`ok`, `info`) is active from its invoke; it ends only when a heal of it completes `ok` (a
//! heal that failed or is unknown leaves it active). At any instant the cluster is *calm* when no
//! fault of class [`FaultClass::NotHealed`] is active and at most `f` nodes are down.
//!
//! A client operation (not a long poll, not a nemesis step) is judged when the cluster is calm,
//! with the same nodes up, throughout `[invoke − recovery grace, invoke + bound]`, the node it
//! talks to is up throughout, and the history reaches `invoke + bound` (or the op completed). It
//! must then complete — `ok` or `fail`, both are answers — within the bound; `info` or no answer
//! is a violation.

use super::{CheckInput, Invariant, InvariantReport, Violation};
use crate::history::{FaultClass, FaultKind, NemesisAction, Op, OpType, Operation, Outcome};
use crate::ids::{HarnessNanos, NodeId};
use std::collections::BTreeSet;

const INVARIANT: Invariant = Invariant::Liveness;
const NANOS_PER_MS: u64 = 1_000_000;

/// The faults in force over one stretch of time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FaultState {
    /// Active faults: kind and node (`None` = cluster-wide).
    active: BTreeSet<(FaultKind, Option<NodeId>)>,
}

impl FaultState {
    fn down_nodes(&self) -> BTreeSet<NodeId> {
        self.active
            .iter()
            .filter(|(kind, _)| kind.class() == FaultClass::NodeDown)
            .filter_map(|(_, node)| *node)
            .collect()
    }

    /// A fault that stops liveness outright: the network is not healed, or a node fault hit the
    /// whole cluster.
    fn not_healed(&self) -> bool {
        self.active.iter().any(|(kind, node)| match kind.class() {
            FaultClass::NotHealed => true,
            FaultClass::NodeDown => node.is_none(),
            FaultClass::Tolerated => false,
        })
    }

    fn describe(&self) -> String {
        if self.active.is_empty() {
            return "no faults".to_owned();
        }
        let faults: Vec<String> = self
            .active
            .iter()
            .map(|(kind, node)| match node {
                Some(node) => format!("{kind:?} {node}"),
                None => format!("{kind:?} (cluster)"),
            })
            .collect();
        faults.join(", ")
    }
}

/// A stretch of the timeline starting at `start` and lasting until the next segment's start.
struct Segment {
    start: HarnessNanos,
    state: FaultState,
}

/// The fault timeline from the nemesis operations.
fn timeline(operations: &[Operation]) -> Vec<Segment> {
    let mut changes: Vec<(HarnessNanos, usize, &Operation)> = Vec::new();
    for (position, op) in operations.iter().enumerate() {
        let Op::Nemesis(nemesis) = &op.f else {
            continue;
        };
        let at = match (nemesis.action, op.outcome()) {
            (NemesisAction::Inject, Outcome::Ok | Outcome::Unknown) => Some(op.invoke_ns),
            (NemesisAction::Heal | NemesisAction::HealAll, Outcome::Ok) => op.complete_ns(),
            _ => None,
        };
        if let Some(at) = at {
            changes.push((at, position, op));
        }
    }
    changes.sort_by_key(|(at, position, _)| (*at, *position));
    let mut segments = vec![Segment {
        start: HarnessNanos(0),
        state: FaultState::default(),
    }];
    for (at, _, op) in changes {
        let Op::Nemesis(nemesis) = &op.f else {
            continue;
        };
        let mut state = segments.last().map(|s| s.state.clone()).unwrap_or_default();
        let fault = nemesis.fault.unwrap_or(FaultKind::Unknown);
        let nodes: Vec<Option<NodeId>> = if nemesis.nodes.is_empty() {
            vec![None]
        } else {
            nemesis.nodes.iter().copied().map(Some).collect()
        };
        match nemesis.action {
            NemesisAction::Inject => state
                .active
                .extend(nodes.into_iter().map(|node| (fault, node))),
            NemesisAction::Heal if nemesis.nodes.is_empty() => {
                state.active.retain(|(kind, _)| *kind != fault)
            }
            NemesisAction::Heal => state
                .active
                .retain(|(kind, node)| *kind != fault || !nodes.contains(node)),
            NemesisAction::HealAll => state.active.clear(),
        }
        segments.push(Segment { start: at, state });
    }
    segments
}

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let config = input.config;
    let bound_ns = config.liveness_bound_ms.saturating_mul(NANOS_PER_MS);
    let grace_ns = config.recovery_grace_ms.saturating_mul(NANOS_PER_MS);
    let segments = timeline(&input.history.operations);
    let observed_until = input.history.end_ns().max(input.final_read.read_at_ns);
    for op in &input.history.operations {
        if op.f.is_nemesis() || op.f.is_long_poll() {
            continue;
        }
        let deadline = op.invoke_ns.plus(bound_ns);
        let answered_in_time = op.completion.as_ref().is_some_and(|c| {
            matches!(c.op_type, OpType::Ok | OpType::Fail) && c.time_ns <= deadline
        });
        if !answered_in_time && observed_until < deadline {
            continue; // The run ended before the bound: no verdict either way.
        }
        let window_start = HarnessNanos(op.invoke_ns.0.saturating_sub(grace_ns));
        let Some(calm) = calm_throughout(
            &segments,
            window_start,
            deadline,
            op.node,
            config.fault_tolerance,
        ) else {
            continue;
        };
        report.judged += 1;
        if answered_in_time {
            continue;
        }
        let how = match op.outcome() {
            Outcome::Unknown if op.completion.is_some() => "ended indeterminate (info)",
            Outcome::Unknown => "never completed",
            Outcome::Ok | Outcome::Fail => "completed too late",
        };
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!("an operation {how} while faults were within tolerance"),
            )
            .op(op)
            .fact(format!(
                "bound {} ms: answer due by {deadline}",
                config.liveness_bound_ms
            ))
            .fact(format!(
                "faults from {window_start} to {deadline}: {}",
                calm.describe()
            )),
        );
    }
    report
}

/// The fault state, if it was calm and unchanged over the whole window with `node` up.
fn calm_throughout(
    segments: &[Segment],
    from: HarnessNanos,
    to: HarnessNanos,
    node: Option<NodeId>,
    fault_tolerance: usize,
) -> Option<FaultState> {
    let first = segments
        .partition_point(|s| s.start <= from)
        .checked_sub(1)?;
    let overlapping = segments[first..].iter().take_while(|s| s.start <= to);
    let mut state: Option<&FaultState> = None;
    for segment in overlapping {
        let down = segment.state.down_nodes();
        let calm = !segment.state.not_healed()
            && down.len() <= fault_tolerance
            && node.is_none_or(|node| !down.contains(&node));
        if !calm || state.is_some_and(|s| s.down_nodes() != down) {
            return None;
        }
        state = Some(&segment.state);
    }
    state.cloned()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::history::RunStatus;

    const S: u64 = 1_000 * MS;

    fn final_read() -> crate::history::FinalRead {
        FinalReadBuilder::new(&[1, 2, 3]).read_at(1_000 * S).build()
    }

    fn op() -> Op {
        describe("w1", "R1")
    }

    fn answered() -> Option<crate::history::OpValue> {
        outcome("R1", RunStatus::Running, None)
    }

    #[test]
    fn operations_answered_within_the_bound_with_one_node_down_are_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            9,
            nemesis(NemesisAction::Inject, FaultKind::Kill, &[3]),
            None,
            0,
            (S, S),
        );
        h.ok(1, op(), answered(), 1, (10 * S, 11 * S));
        h.fail(1, op(), 2, (20 * S, 21 * S));
        // To the down node: not judged.
        h.info(2, op(), 3, (20 * S, 30 * S));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_valid(&report);
        assert_eq!(report.judged, 2);
    }

    #[test]
    fn an_operation_unanswered_in_a_calm_period_is_reported_with_the_fault_state() {
        let mut h = HistoryBuilder::new();
        h.ok(
            9,
            nemesis(NemesisAction::Inject, FaultKind::Pause, &[3]),
            None,
            0,
            (S, S),
        );
        let stuck = h.info(1, op(), 1, (10 * S, 40 * S));
        let late = h.ok(1, op(), answered(), 2, (50 * S, 65 * S));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
        assert_eq!(report.violations[0].op_ids(), vec![stuck]);
        assert!(
            report.violations[0].to_string().contains("Pause n3"),
            "{}",
            report.violations[0]
        );
        assert_eq!(report.violations[1].op_ids(), vec![late]);
        assert!(report.violations[1].what.contains("too late"));
    }

    #[test]
    fn operations_during_partitions_two_nodes_down_or_recovery_are_not_judged() {
        let mut h = HistoryBuilder::new();
        h.ok(
            9,
            nemesis(NemesisAction::Inject, FaultKind::Partition, &[]),
            None,
            0,
            (S, S),
        );
        h.info(1, op(), 1, (10 * S, 40 * S));
        h.ok(
            9,
            nemesis(NemesisAction::Heal, FaultKind::Partition, &[]),
            None,
            0,
            (100 * S, 101 * S),
        );
        // Within the recovery grace after the heal.
        h.info(1, op(), 1, (102 * S, 140 * S));
        h.ok(
            9,
            nemesis(NemesisAction::Inject, FaultKind::Kill, &[2, 3]),
            None,
            0,
            (200 * S, 200 * S),
        );
        h.info(1, op(), 1, (210 * S, 240 * S));
        // A heal whose outcome is unknown leaves the faults active.
        h.info(
            9,
            Op::Nemesis(crate::history::NemesisOp {
                action: NemesisAction::HealAll,
                fault: None,
                nodes: vec![],
            }),
            0,
            (300 * S, 301 * S),
        );
        h.info(1, op(), 1, (310 * S, 340 * S));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_valid(&report);
        assert_eq!(report.judged, 0);
    }

    #[test]
    fn after_a_heal_and_the_grace_period_operations_are_judged_again() {
        let mut h = HistoryBuilder::new();
        h.ok(
            9,
            nemesis(NemesisAction::Inject, FaultKind::Isolate, &[1]),
            None,
            0,
            (S, S),
        );
        h.ok(
            9,
            Op::Nemesis(crate::history::NemesisOp {
                action: NemesisAction::HealAll,
                fault: None,
                nodes: vec![],
            }),
            None,
            0,
            (100 * S, 101 * S),
        );
        let stuck = h.info(1, op(), 1, (110 * S, 140 * S));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_eq!(single_violation(&report).op_ids(), vec![stuck]);
    }

    #[test]
    fn an_operation_whose_bound_outlasts_the_history_is_not_judged() {
        let mut h = HistoryBuilder::new();
        h.invoke(1, op(), 1, 10 * S);
        let short = FinalReadBuilder::new(&[1]).read_at(12 * S).build();
        assert_eq!(check_one(INVARIANT, &h.build(), &short).judged, 0);
        let long = FinalReadBuilder::new(&[1]).read_at(100 * S).build();
        assert!(
            single_violation(&check_one(INVARIANT, &h.build(), &long))
                .what
                .contains("never completed")
        );
    }
}
