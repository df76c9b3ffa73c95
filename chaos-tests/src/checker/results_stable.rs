//! Invariant 7: a run's result, once read, never changes.
//!
//! Each run is a write-once register. Over the `ok` describe/get_result reads of one run:
//! * every read that saw the run closed saw the same status and result;
//! * no read invoked after a closed read completed saw the run running;
//! * the final read's terminal event agrees with what the reads saw.
//!
//! Only the first violation of each kind per run is reported: once a result flips, every later
//! read disagrees, and the first pair is the witness.

use super::{CheckInput, Invariant, InvariantReport, Violation, WitnessEvent};
use crate::history::{EventType, Op, OpValue, Operation, RunStatus};
use crate::ids::{RunId, WorkflowId};
use std::collections::BTreeMap;

const INVARIANT: Invariant = Invariant::ResultsStable;

/// One read of a run's outcome.
struct ResultRead<'a> {
    op: &'a Operation,
    status: RunStatus,
    result: Option<&'a str>,
}

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let mut reads: BTreeMap<(&WorkflowId, &RunId), Vec<ResultRead<'_>>> = BTreeMap::new();
    for op in &input.history.operations {
        let (
            Op::Describe { workflow_id, .. } | Op::GetResult { workflow_id, .. },
            Some(OpValue::Outcome {
                run_id,
                status,
                result,
            }),
        ) = (&op.f, op.ok_value())
        else {
            continue;
        };
        report.judged += 1;
        reads
            .entry((workflow_id, run_id))
            .or_default()
            .push(ResultRead {
                op,
                status: *status,
                result: result.as_deref(),
            });
    }
    for ((workflow_id, run_id), mut run_reads) in reads {
        run_reads.sort_by_key(|read| read.op.complete_ns());
        let Some(first_closed) = run_reads.iter().find(|read| read.status.is_closed()) else {
            continue;
        };
        let Some(closed_at) = first_closed.op.complete_ns() else {
            continue;
        };
        let changed = run_reads.iter().find(|read| {
            read.status.is_closed()
                && (read.status, read.result) != (first_closed.status, first_closed.result)
        });
        if let Some(changed) = changed {
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!("{workflow_id}/{run_id} was read closed with two different outcomes"),
                )
                .op(first_closed.op)
                .op(changed.op),
            );
        }
        let reopened = run_reads
            .iter()
            .find(|read| !read.status.is_closed() && read.op.invoke_ns > closed_at);
        if let Some(reopened) = reopened {
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!("{workflow_id}/{run_id} was read running after it was read closed"),
                )
                .op(first_closed.op)
                .op(reopened.op),
            );
        }
        check_final_close_agrees(input, workflow_id, run_id, first_closed, &mut report);
    }
    report
}

/// The status a terminal event gives its run.
fn status_of(event_type: &EventType) -> Option<RunStatus> {
    Some(match event_type {
        EventType::WorkflowExecutionCompleted => RunStatus::Completed,
        EventType::WorkflowExecutionFailed => RunStatus::Failed,
        EventType::WorkflowExecutionTimedOut => RunStatus::TimedOut,
        EventType::WorkflowExecutionCanceled => RunStatus::Canceled,
        EventType::WorkflowExecutionTerminated => RunStatus::Terminated,
        EventType::WorkflowExecutionContinuedAsNew => RunStatus::ContinuedAsNew,
        _ => return None,
    })
}

fn check_final_close_agrees(
    input: &CheckInput<'_>,
    workflow_id: &WorkflowId,
    run_id: &RunId,
    read: &ResultRead<'_>,
    report: &mut InvariantReport,
) {
    let Some(replica) = input.index.reference(workflow_id, run_id) else {
        return; // Invariant 1 reports a run that was read but is missing.
    };
    let violation = Violation::new(
        INVARIANT,
        format!("{workflow_id}/{run_id}: the final history disagrees with a read result"),
    )
    .op(read.op);
    let Some(terminal) = replica.run.terminal_event() else {
        report.violations.push(violation.fact(format!(
            "the run is open in the final read on {}",
            replica.node
        )));
        return;
    };
    let status_agrees = status_of(&terminal.event_type) == Some(read.status);
    let result_agrees =
        read.status != RunStatus::Completed || terminal.attributes.result.as_deref() == read.result;
    if !(status_agrees && result_agrees) {
        report
            .violations
            .push(violation.event(WitnessEvent::in_final_read(
                replica.node,
                replica.group,
                workflow_id,
                run_id,
                terminal,
            )));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::ids::EventId;

    fn completed_run(result: &str) -> crate::history::FinalRead {
        FinalReadBuilder::new(&[1])
            .run(
                "w1",
                "R1",
                vec![started_ev(1, "r1"), completed_ev(2, result)],
            )
            .build()
    }

    #[test]
    fn reads_that_see_running_then_one_result_are_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Running, None),
            1,
            (10, 20),
        );
        h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("x")),
            1,
            (30, 40),
        );
        // Concurrent with the first closed read: may still see it running.
        h.ok(
            2,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Running, None),
            2,
            (35, 45),
        );
        h.ok(
            2,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("x")),
            3,
            (50, 60),
        );
        let report = check_one(INVARIANT, &h.build(), &completed_run("x"));
        assert_valid(&report);
        assert_eq!(report.judged, 4);
    }

    #[test]
    fn a_result_that_changes_between_reads_is_reported_with_the_first_pair() {
        let mut h = HistoryBuilder::new();
        let first = h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("x")),
            1,
            (10, 20),
        );
        let changed = h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("y")),
            2,
            (30, 40),
        );
        h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("z")),
            2,
            (50, 60),
        );
        let report = check_one(INVARIANT, &h.build(), &completed_run("x"));
        assert_eq!(single_violation(&report).op_ids(), vec![first, changed]);
    }

    #[test]
    fn a_run_read_running_after_it_was_read_closed_is_reported() {
        let mut h = HistoryBuilder::new();
        let closed = h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("x")),
            1,
            (10, 20),
        );
        let reopened = h.ok(
            2,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Running, None),
            3,
            (30, 40),
        );
        let report = check_one(INVARIANT, &h.build(), &completed_run("x"));
        assert_eq!(single_violation(&report).op_ids(), vec![closed, reopened]);
    }

    #[test]
    fn a_final_history_that_disagrees_with_the_read_result_is_reported_with_its_close() {
        let mut h = HistoryBuilder::new();
        let read_op = h.ok(
            1,
            describe("w1", "R1"),
            outcome("R1", RunStatus::Completed, Some("x")),
            1,
            (10, 20),
        );
        let report = check_one(INVARIANT, &h.build(), &completed_run("other"));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![read_op]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
        let open = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r1")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &open);
        assert!(single_violation(&report).facts[0].contains("open in the final read"));
    }
}
