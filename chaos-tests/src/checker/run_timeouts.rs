//! Invariant 5 for run timeouts: a `WorkflowExecutionTimedOut` is never seen before the run's
//! timeout has passed by the harness clock.
//!
//! A run is created by one start request; the retries of that request (same request ID) return
//! the same run, so the run cannot have started before the earliest invoke `t_req` of a
//! non-failed start carrying its request ID. With a run timeout `R` its timeout is due no
//! earlier than `t_req + R`: an operation that completed before that and saw the run's
//! `WorkflowExecutionTimedOut` saw it early — whatever the servers' clocks said.
//!
//! A run is tied to its request by its first event's request ID, or, where the event does not
//! carry one, by an ok start (not attached to an existing run) that returned the run.

use super::timers::observed_events;
use super::{CheckInput, Invariant, InvariantReport, Violation, WitnessEvent};
use crate::history::{EventType, Op, OpValue, Operation, Outcome};
use crate::ids::{HarnessNanos, RequestId, RunId, WorkflowId};
use std::collections::BTreeMap;

const INVARIANT: Invariant = Invariant::TimersNotEarly;
const NANOS_PER_MS: u64 = 1_000_000;

/// The earliest start that may have created a run with a run timeout.
struct Due<'a> {
    command: &'a Operation,
    deadline: HarnessNanos,
}

type RequestKey<'a> = (&'a WorkflowId, &'a RequestId);

/// Adds to `report` every run timeout seen before it was due; counts each start request with
/// a run timeout as judged.
pub(super) fn check_never_early(input: &CheckInput<'_>, report: &mut InvariantReport) {
    let mut due: BTreeMap<RequestKey<'_>, Due<'_>> = BTreeMap::new();
    let mut request_of_run: BTreeMap<(&WorkflowId, &RunId), &RequestId> = BTreeMap::new();
    for op in &input.history.operations {
        let Op::StartWorkflow {
            workflow_id,
            request_id,
            attach_to_existing,
            run_timeout_ms: Some(timeout_ms),
            ..
        } = &op.f
        else {
            continue;
        };
        if op.outcome() == Outcome::Fail {
            continue;
        }
        if let (Some(OpValue::Started { run_id }), false) = (op.ok_value(), attach_to_existing) {
            request_of_run.insert((workflow_id, run_id), request_id);
        }
        let deadline = op.invoke_ns.plus(timeout_ms.saturating_mul(NANOS_PER_MS));
        let key = (workflow_id, request_id);
        if due
            .get(&key)
            .is_none_or(|earlier| op.invoke_ns < earlier.command.invoke_ns)
        {
            due.insert(
                key,
                Due {
                    command: op,
                    deadline,
                },
            );
        }
    }
    report.judged += due.len() as u64;
    for op in &input.history.operations {
        let (Some((workflow_id, run_id, events)), Some(seen_at)) =
            (observed_events(op), op.complete_ns())
        else {
            continue;
        };
        let Some(timed_out) = events
            .iter()
            .find(|e| e.event_type == EventType::WorkflowExecutionTimedOut)
        else {
            continue;
        };
        let request = events
            .iter()
            .find(|e| e.event_type == EventType::WorkflowExecutionStarted)
            .and_then(|e| e.attributes.request_id.as_ref())
            .or_else(|| request_of_run.get(&(workflow_id, run_id)).copied());
        let Some(due) = request.and_then(|request| due.get(&(workflow_id, request))) else {
            continue;
        };
        if seen_at < due.deadline {
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!(
                        "run {run_id} of {workflow_id} was seen timed out at {seen_at}, before \
                         its run timeout was due at {}",
                        due.deadline
                    ),
                )
                .op(due.command)
                .op(op)
                .event(WitnessEvent::observed_by(
                    op,
                    workflow_id,
                    run_id,
                    timed_out,
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::history::ObservedEvent;
    use crate::ids::EventId;

    fn start_with_timeout(wid: &str, req: &str, timeout_ms: u64) -> Op {
        Op::StartWorkflow {
            workflow_id: wid.into(),
            request_id: req.into(),
            workflow_type: None,
            attach_to_existing: false,
            run_timeout_ms: Some(timeout_ms),
        }
    }

    fn timed_out_run(first: ObservedEvent) -> Option<OpValue> {
        events(vec![first, ev(2, EventType::WorkflowExecutionTimedOut)])
    }

    fn final_read() -> crate::history::FinalRead {
        FinalReadBuilder::new(&[1])
            .read_at(100_000 * MS)
            .run(
                "w1",
                "R1",
                vec![
                    started_ev(1, "r1"),
                    ev(2, EventType::WorkflowExecutionTimedOut),
                ],
            )
            .build()
    }

    #[test]
    fn a_run_seen_timed_out_after_its_timeout_is_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            start_with_timeout("w1", "r1", 2_000),
            started("R1"),
            1,
            (10 * MS, 20 * MS),
        );
        let seen = timed_out_run(started_ev(1, "r1"));
        h.ok(2, read("w1", "R1"), seen, 1, (1_000 * MS, 2_010 * MS));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_valid(&report);
        assert_eq!(report.judged, 1);
    }

    #[test]
    fn a_run_seen_timed_out_before_its_timeout_is_reported_even_if_the_start_was_info() {
        let mut h = HistoryBuilder::new();
        // The later, ok retry of the same request does not move the bound: the first attempt
        // may have created the run.
        let first = h.info(
            1,
            start_with_timeout("w1", "r1", 2_000),
            1,
            (10 * MS, 20 * MS),
        );
        h.ok(
            1,
            start_with_timeout("w1", "r1", 2_000),
            started("R1"),
            1,
            (500 * MS, 510 * MS),
        );
        let seen = timed_out_run(started_ev(1, "r1"));
        let early = h.ok(2, read("w1", "R1"), seen, 1, (1_000 * MS, 2_009 * MS));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![first, early]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
    }

    #[test]
    fn a_run_whose_first_event_has_no_request_id_is_tied_to_the_start_that_returned_it() {
        let mut h = HistoryBuilder::new();
        let command = h.ok(
            1,
            start_with_timeout("w1", "r1", 2_000),
            started("R1"),
            1,
            (10 * MS, 20 * MS),
        );
        let seen = timed_out_run(ev(1, EventType::WorkflowExecutionStarted));
        let early = h.ok(2, read("w1", "R1"), seen, 1, (100 * MS, 300 * MS));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_eq!(single_violation(&report).op_ids(), vec![command, early]);
    }

    #[test]
    fn runs_without_a_run_timeout_and_failed_starts_are_not_judged() {
        let mut h = HistoryBuilder::new();
        h.ok(1, start("w1", "r1"), started("R1"), 1, (10 * MS, 20 * MS));
        h.fail(
            1,
            start_with_timeout("w1", "r2", 1_000),
            1,
            (30 * MS, 40 * MS),
        );
        let seen = timed_out_run(started_ev(1, "r1"));
        h.ok(2, read("w1", "R1"), seen, 1, (50 * MS, 60 * MS));
        let report = check_one(INVARIANT, &h.build(), &final_read());
        assert_valid(&report);
        assert_eq!(report.judged, 0);
    }
}
