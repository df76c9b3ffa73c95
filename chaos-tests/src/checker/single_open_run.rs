//! Invariant 2: at most one open run per workflow ID, and one request ID names one run.
//!
//! * On each node, a workflow's runs sorted by the Raft index of their start event must each be
//!   closed, by an event at a lower Raft index, before the next one starts. Runs whose start has
//!   no Raft index are not judged (the server did not expose it).
//! * Every `ok` start with the same `(workflow ID, request ID)` returned the same run ID.
//!
//! A violation found on several nodes is reported once, on the lowest node.

use super::{CheckInput, Invariant, InvariantReport, Violation, WitnessEvent};
use crate::history::{Op, OpValue, Operation, RunHistory};
use crate::ids::{GroupId, NodeId, RaftIndex, RequestId, RunId, WorkflowId};
use std::collections::{BTreeMap, BTreeSet};

const INVARIANT: Invariant = Invariant::SingleOpenRun;

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    check_runs_do_not_overlap(input, &mut report);
    check_request_ids_name_one_run(input, &mut report);
    report
}

/// A run placed by the Raft indexes of its start and close.
struct PlacedRun<'a> {
    group: GroupId,
    run: &'a RunHistory,
    start: RaftIndex,
    close: Option<RaftIndex>,
}

fn check_runs_do_not_overlap(input: &CheckInput<'_>, report: &mut InvariantReport) {
    let mut judged_runs: BTreeSet<(&WorkflowId, &RunId)> = BTreeSet::new();
    let mut reported: BTreeSet<(&WorkflowId, &RunId, &RunId)> = BTreeSet::new();
    for node in &input.final_read.nodes {
        let mut by_workflow: BTreeMap<&WorkflowId, Vec<PlacedRun<'_>>> = BTreeMap::new();
        for group in &node.groups {
            for run in &group.runs {
                let Some(start) = run.started_event().and_then(|e| e.raft_index) else {
                    continue;
                };
                judged_runs.insert((&run.workflow_id, &run.run_id));
                let close = run.terminal_event().and_then(|e| e.raft_index);
                by_workflow
                    .entry(&run.workflow_id)
                    .or_default()
                    .push(PlacedRun {
                        group: group.group,
                        run,
                        start,
                        close,
                    });
            }
        }
        for (workflow_id, mut runs) in by_workflow {
            runs.sort_by_key(|placed| placed.start);
            for pair in runs.windows(2) {
                let (earlier, later) = (&pair[0], &pair[1]);
                if earlier.close.is_some_and(|close| close < later.start) {
                    continue;
                }
                if !reported.insert((workflow_id, &earlier.run.run_id, &later.run.run_id)) {
                    continue;
                }
                report
                    .violations
                    .push(overlap_violation(node.node, workflow_id, earlier, later));
            }
        }
    }
    report.judged += judged_runs.len() as u64;
}

fn overlap_violation(
    node: NodeId,
    workflow_id: &WorkflowId,
    earlier: &PlacedRun<'_>,
    later: &PlacedRun<'_>,
) -> Violation {
    let what = match earlier.close {
        None => format!(
            "{workflow_id}: run {} was still open when run {} started",
            earlier.run.run_id, later.run.run_id
        ),
        Some(close) => format!(
            "{workflow_id}: run {} closed at {close}, after run {} started at {}",
            earlier.run.run_id, later.run.run_id, later.start
        ),
    };
    let witness = |placed: &PlacedRun<'_>, event| {
        WitnessEvent::in_final_read(node, placed.group, workflow_id, &placed.run.run_id, event)
    };
    let mut violation = Violation::new(INVARIANT, what);
    for event in earlier
        .run
        .started_event()
        .into_iter()
        .chain(earlier.run.terminal_event())
    {
        violation = violation.event(witness(earlier, event));
    }
    if let Some(event) = later.run.started_event() {
        violation = violation.event(witness(later, event));
    }
    violation
}

fn check_request_ids_name_one_run(input: &CheckInput<'_>, report: &mut InvariantReport) {
    let mut first: BTreeMap<(&WorkflowId, &RequestId), (&RunId, &Operation)> = BTreeMap::new();
    for op in &input.history.operations {
        let (
            Op::StartWorkflow {
                workflow_id,
                request_id,
                ..
            },
            Some(OpValue::Started { run_id }),
        ) = (&op.f, op.ok_value())
        else {
            continue;
        };
        report.judged += 1;
        match first.get(&(workflow_id, request_id)) {
            None => {
                first.insert((workflow_id, request_id), (run_id, op));
            }
            Some((first_run, first_op)) if *first_run != run_id => report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!("request {request_id} of {workflow_id} returned runs {first_run} and {run_id}"),
                )
                .op(first_op)
                .op(op),
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::history::EventType;
    use crate::ids::EventId;

    fn closed(start_raft: u64, close_raft: u64, req: &str) -> Vec<crate::history::ObservedEvent> {
        vec![
            at_raft(started_ev(1, req), start_raft),
            at_raft(completed_ev(2, "done"), close_raft),
        ]
    }

    #[test]
    fn runs_that_close_before_the_next_starts_are_accepted() {
        let f = FinalReadBuilder::new(&[1, 2])
            .run("w1", "R1", closed(10, 20, "r1"))
            .run("w1", "R2", closed(30, 40, "r2"))
            .run("w1", "R3", vec![at_raft(started_ev(1, "r3"), 50)])
            .run("w2", "R9", vec![at_raft(started_ev(1, "r9"), 15)])
            .build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        assert_valid(&report);
        assert_eq!(report.judged, 4);
    }

    #[test]
    fn a_second_run_started_while_the_first_is_open_is_reported_once_with_both_starts() {
        let f = FinalReadBuilder::new(&[1, 2])
            .run("w1", "R1", vec![at_raft(started_ev(1, "r1"), 10)])
            .run("w1", "R2", vec![at_raft(started_ev(1, "r2"), 30)])
            .build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.event_ids(), vec![EventId(1), EventId(1)]);
        assert_eq!(violation.events[0].run_id, RunId::from("R1"));
        assert_eq!(violation.events[1].run_id, RunId::from("R2"));
        assert!(violation.what.contains("still open"), "{violation}");
    }

    #[test]
    fn a_run_closed_after_the_next_started_is_reported_with_its_close_event() {
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", closed(10, 40, "r1"))
            .run("w1", "R2", closed(30, 50, "r2"))
            .build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        let violation = single_violation(&report);
        assert_eq!(
            violation.event_ids(),
            vec![EventId(1), EventId(2), EventId(1)]
        );
        assert!(
            violation.events[1]
                .description
                .contains(EventType::WorkflowExecutionCompleted.name())
        );
    }

    #[test]
    fn one_request_id_returning_two_run_ids_is_reported_with_both_ops() {
        let mut h = HistoryBuilder::new();
        let a = h.ok(1, start("w1", "r1"), started("R1"), 1, (10, 20));
        h.ok(2, start("w1", "r1"), started("R1"), 2, (15, 25));
        let b = h.ok(3, start("w1", "r1"), started("R2"), 3, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &FinalReadBuilder::new(&[1]).build());
        assert_eq!(single_violation(&report).op_ids(), vec![a, b]);
    }
}
