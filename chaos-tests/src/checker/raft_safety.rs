//! Invariant 8: Raft safety per shard.
//!
//! * Log matching across nodes: two nodes that both hold a committed index hold the same
//!   `(term, hash)` there; within one node, terms never decrease along the log.
//! * Applied indexes never move backwards, across restarts too: a raft_status read invoked after
//!   another of the same node completed reports no lower applied index, and the final read
//!   reports no lower index than any status read.
//! * Replicas at the same applied index have the same state digest.

use super::{CheckInput, Invariant, InvariantReport, Violation};
use crate::history::{GroupRead, OpValue, Operation};
use crate::ids::{GroupId, HarnessNanos, NodeId, RaftIndex, RaftTerm};
use std::collections::BTreeMap;

const INVARIANT: Invariant = Invariant::RaftSafety;

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let mut replicas: BTreeMap<GroupId, Vec<(NodeId, &GroupRead)>> = BTreeMap::new();
    for node in &input.final_read.nodes {
        for group in &node.groups {
            report.judged += 1;
            replicas
                .entry(group.group)
                .or_default()
                .push((node.node, group));
        }
    }
    for (group, replicas) in &replicas {
        check_log_matching(*group, replicas, &mut report);
        check_digests(*group, replicas, &mut report);
    }
    check_applied_monotonic(input, &replicas, &mut report);
    report
}

fn check_log_matching(
    group: GroupId,
    replicas: &[(NodeId, &GroupRead)],
    report: &mut InvariantReport,
) {
    let mut first_seen: BTreeMap<RaftIndex, (RaftTerm, &str, NodeId)> = BTreeMap::new();
    for (node, replica) in replicas {
        let mut previous_term: Option<(RaftIndex, RaftTerm)> = None;
        let mut diverged = false;
        for entry in &replica.committed {
            if let Some((index, term)) = previous_term
                && (entry.term < term || entry.index <= index)
            {
                report.violations.push(
                    Violation::new(
                        INVARIANT,
                        format!("{group} on {node}: the committed log goes backwards"),
                    )
                    .fact(format!("{index} has {term}"))
                    .fact(format!("{} has {}", entry.index, entry.term)),
                );
            }
            previous_term = Some((entry.index, entry.term));
            match first_seen.get(&entry.index) {
                None => {
                    first_seen.insert(entry.index, (entry.term, &entry.hash, *node));
                }
                Some((term, hash, other))
                    if !diverged && (*term != entry.term || *hash != entry.hash) =>
                {
                    diverged = true; // Later indexes follow from the first divergence.
                    report.violations.push(
                        Violation::new(
                            INVARIANT,
                            format!(
                                "{group}: committed entry {} differs between {other} and {node}",
                                entry.index
                            ),
                        )
                        .fact(format!("{other}: {}, {term}, hash {hash}", entry.index))
                        .fact(format!(
                            "{node}: {}, {}, hash {}",
                            entry.index, entry.term, entry.hash
                        )),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

fn check_digests(group: GroupId, replicas: &[(NodeId, &GroupRead)], report: &mut InvariantReport) {
    let mut by_applied: BTreeMap<RaftIndex, (NodeId, &str)> = BTreeMap::new();
    for (node, replica) in replicas {
        match by_applied.get(&replica.applied_index) {
            None => {
                by_applied.insert(replica.applied_index, (*node, &replica.state_digest));
            }
            Some((other, digest)) if *digest != replica.state_digest => report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!(
                        "{group}: {other} and {node} differ in state at the same applied index {}",
                        replica.applied_index
                    ),
                )
                .fact(format!("{other}: digest {digest}"))
                .fact(format!("{node}: digest {}", replica.state_digest)),
            ),
            Some(_) => {}
        }
    }
}

/// One status read of one group's applied index on one node.
struct AppliedRead<'a> {
    op: &'a Operation,
    completed: HarnessNanos,
    applied: RaftIndex,
}

fn check_applied_monotonic(
    input: &CheckInput<'_>,
    replicas: &BTreeMap<GroupId, Vec<(NodeId, &GroupRead)>>,
    report: &mut InvariantReport,
) {
    let mut reads: BTreeMap<(NodeId, GroupId), Vec<AppliedRead<'_>>> = BTreeMap::new();
    for op in &input.history.operations {
        let (Some(node), Some(OpValue::RaftStatus { groups }), Some(completed)) =
            (op.node, op.ok_value(), op.complete_ns())
        else {
            continue;
        };
        report.judged += 1;
        for group in groups {
            reads
                .entry((node, group.group))
                .or_default()
                .push(AppliedRead {
                    op,
                    completed,
                    applied: group.applied_index,
                });
        }
    }
    for ((node, group), mut reads) in reads {
        reads.sort_by_key(|read| read.completed);
        // highest[i]: the read with the highest applied index among the first i+1 completions.
        let mut highest: Vec<&AppliedRead<'_>> = Vec::with_capacity(reads.len());
        for read in &reads {
            let best = match highest.last() {
                Some(previous) if previous.applied > read.applied => previous,
                _ => read,
            };
            highest.push(best);
        }
        for later in &reads {
            let before = reads.partition_point(|read| read.completed < later.op.invoke_ns);
            if let Some(earlier) = before.checked_sub(1).and_then(|i| highest.get(i))
                && earlier.applied > later.applied
            {
                report.violations.push(
                    Violation::new(
                        INVARIANT,
                        format!(
                            "{group} on {node}: applied index went back from {} to {}",
                            earlier.applied, later.applied
                        ),
                    )
                    .op(earlier.op)
                    .op(later.op),
                );
            }
        }
        let final_applied = replicas
            .get(&group)
            .and_then(|r| r.iter().find(|(n, _)| *n == node))
            .map(|(_, read)| read.applied_index);
        if let (Some(last), Some(final_applied)) = (highest.last(), final_applied)
            && last.applied > final_applied
        {
            report.violations.push(
                Violation::new(INVARIANT, format!("{group} on {node}: the final read's applied index {final_applied} is below {}", last.applied))
                    .op(last.op),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::history::{LogEntryId, Op};

    fn entry(index: u64, term: u64, hash: &str) -> LogEntryId {
        LogEntryId {
            index: RaftIndex(index),
            term: RaftTerm(term),
            hash: hash.into(),
        }
    }

    fn cluster(logs: &[(u64, u64, Vec<LogEntryId>, &str)]) -> crate::history::FinalRead {
        let nodes: Vec<u64> = logs.iter().map(|l| l.0).collect();
        let mut f = FinalReadBuilder::new(&nodes);
        for (node, applied, log, digest) in logs {
            let group = f.group_mut(*node);
            group.applied_index = RaftIndex(*applied);
            group.committed = log.clone();
            group.state_digest = (*digest).to_owned();
        }
        f.build()
    }

    fn agreeing_log() -> Vec<LogEntryId> {
        vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")]
    }

    #[test]
    fn agreeing_logs_digests_and_rising_applied_indexes_are_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(1, Op::RaftStatus, raft_status(&[(1, 2)]), 1, (10, 20));
        // Concurrent with the first status read.
        h.ok(2, Op::RaftStatus, raft_status(&[(1, 1)]), 1, (15, 25));
        h.ok(1, Op::RaftStatus, raft_status(&[(1, 3)]), 1, (30, 40));
        // A purged prefix on n3 is fine.
        let f = cluster(&[
            (1, 3, agreeing_log(), "s"),
            (2, 3, agreeing_log(), "s"),
            (3, 3, agreeing_log()[1..].to_vec(), "s"),
        ]);
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_valid(&report);
        assert_eq!(report.judged, 6);
    }

    #[test]
    fn a_committed_entry_that_differs_between_nodes_is_reported_once_at_the_first_index() {
        let mut diverged = agreeing_log();
        diverged[1] = entry(2, 2, "x");
        diverged[2] = entry(3, 2, "y");
        let f = cluster(&[(1, 3, agreeing_log(), "s"), (2, 3, diverged, "s2")]);
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        // The divergence, and the different states at the same applied index.
        assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
        assert!(
            report.violations[0]
                .what
                .contains("committed entry raft@2 differs between n1 and n2")
        );
        assert!(report.violations[1].what.contains("differ in state"));
    }

    #[test]
    fn a_log_whose_terms_go_backwards_is_reported() {
        let f = cluster(&[(1, 2, vec![entry(1, 3, "a"), entry(2, 2, "b")], "s")]);
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        assert!(single_violation(&report).what.contains("goes backwards"));
    }

    #[test]
    fn an_applied_index_that_goes_back_after_a_restart_is_reported() {
        let mut h = HistoryBuilder::new();
        let before = h.ok(1, Op::RaftStatus, raft_status(&[(1, 7)]), 2, (10, 20));
        h.ok(
            9,
            crate::checker::testkit::nemesis(
                crate::history::NemesisAction::Inject,
                crate::history::FaultKind::Kill,
                &[2],
            ),
            None,
            0,
            (25, 26),
        );
        let after = h.ok(1, Op::RaftStatus, raft_status(&[(1, 5)]), 2, (30, 40));
        let f = cluster(&[(1, 9, agreeing_log(), "s"), (2, 9, agreeing_log(), "s")]);
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_eq!(single_violation(&report).op_ids(), vec![before, after]);
    }

    #[test]
    fn a_final_applied_index_below_a_status_read_is_reported() {
        let mut h = HistoryBuilder::new();
        let read = h.ok(1, Op::RaftStatus, raft_status(&[(1, 7)]), 2, (10, 20));
        let f = cluster(&[(1, 3, agreeing_log(), "s"), (2, 3, agreeing_log(), "s")]);
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_eq!(single_violation(&report).op_ids(), vec![read]);
    }
}
