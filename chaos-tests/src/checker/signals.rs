//! Invariant 6: acked signals are applied exactly once per request ID, in ack order.
//!
//! Signal operations are grouped by `(workflow ID, request ID)` (retries of one request share
//! it). A `WorkflowExecutionSignaled` event matches a group by its recorded request ID, or, where
//! the server records none (Temporal's event has no such field), by the signal's input value —
//! the workload keeps values unique per request.
//! * A group with an `ok` op matches exactly one event, in the named run if the op named one.
//! * A group whose ops all `fail`ed matches none; any group matches at most one event per run.
//! * A group that names no run (it signals the current run) may match one event in each of
//!   several runs, at most one run per attempt that did not fail: Temporal deduplicates signal
//!   request IDs per run, so an attempt that landed in a run that then closed (timed out,
//!   say) and a retry that landed in the next run are both applied (found by the simulation
//!   once runs had run timeouts, seed 5098 of 3 nodes).
//! * If acked signal A completed before acked signal B was invoked and both landed in the same
//!   run, A's event ID is below B's. "B was invoked" means B's FIRST attempt: an earlier attempt
//!   of the same request (one that ended `info`) may have been applied before A's ack, and the
//!   acked retry is then only its deduplicated echo.

use super::{CheckInput, Invariant, InvariantReport, RunReplica, Violation, WitnessEvent};
use crate::history::{EventType, ObservedEvent, Op, Operation, Outcome};
use crate::ids::{EventId, HarnessNanos, RequestId, RunId, WorkflowId};
use std::collections::{BTreeMap, BTreeSet};

const INVARIANT: Invariant = Invariant::SignalsExactlyOnce;

/// All attempts of one signal request.
#[derive(Default)]
struct SignalRequest<'a> {
    ops: Vec<&'a Operation>,
    values: BTreeSet<&'a str>,
    named_runs: BTreeSet<&'a RunId>,
}

/// An acked signal placed in its run.
struct Placed<'a> {
    op: &'a Operation,
    acked_at: HarnessNanos,
    /// When the request's first attempt was invoked.
    first_invoked_at: HarnessNanos,
    event_id: EventId,
}

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let mut requests: BTreeMap<(&WorkflowId, &RequestId), SignalRequest<'_>> = BTreeMap::new();
    for op in &input.history.operations {
        if let Op::Signal {
            workflow_id,
            run_id,
            request_id,
            value,
            ..
        } = &op.f
        {
            let request = requests.entry((workflow_id, request_id)).or_default();
            request.ops.push(op);
            request.values.insert(value);
            request.named_runs.extend(run_id);
        }
    }
    let mut placed: BTreeMap<(&WorkflowId, &RunId), Vec<Placed<'_>>> = BTreeMap::new();
    for ((workflow_id, request_id), request) in &requests {
        let acked = request.ops.iter().find(|op| op.is_ok());
        if acked.is_some() || request.ops.iter().all(|op| op.outcome() == Outcome::Fail) {
            report.judged += 1;
        }
        match judge_request(input, workflow_id, request_id, request) {
            Err(violation) => report.violations.push(violation),
            Ok(placements) => {
                for (run_id, event_id) in placements {
                    let Some(op) = acked else {
                        continue;
                    };
                    let Some(acked_at) = op.complete_ns() else {
                        continue;
                    };
                    let first_invoked_at = request
                        .ops
                        .iter()
                        .map(|op| op.invoke_ns)
                        .min()
                        .unwrap_or(op.invoke_ns);
                    let placement = Placed {
                        op,
                        acked_at,
                        first_invoked_at,
                        event_id,
                    };
                    placed
                        .entry((workflow_id, run_id))
                        .or_default()
                        .push(placement);
                }
            }
        }
    }
    for ((workflow_id, run_id), signals) in placed {
        check_ack_order(workflow_id, run_id, signals, &mut report);
    }
    report
}

/// Where one signal request landed (run and event, one per run), or why that breaks the
/// invariant.
fn judge_request<'a>(
    input: &CheckInput<'a>,
    workflow_id: &WorkflowId,
    request_id: &RequestId,
    request: &SignalRequest<'_>,
) -> Result<Vec<(&'a RunId, EventId)>, Violation> {
    let acked = request.ops.iter().find(|op| op.is_ok());
    let all_failed = request.ops.iter().all(|op| op.outcome() == Outcome::Fail);
    let runs = input.index.runs_of(workflow_id);
    let matches: Vec<(RunReplica<'a>, &'a ObservedEvent)> = runs
        .into_iter()
        .flat_map(|replica| replica.run.events.iter().map(move |event| (replica, event)))
        .filter(|(_, event)| signal_matches(event, request_id, &request.values))
        .collect();
    let runs_landed: BTreeSet<&RunId> = matches
        .iter()
        .map(|(replica, _)| &replica.run.run_id)
        .collect();
    let attempts_not_failed = request
        .ops
        .iter()
        .filter(|op| op.outcome() != Outcome::Fail)
        .count();
    // One event per run, in as many runs as attempts could reach (see the module docs).
    let once_per_attempt = runs_landed.len() == matches.len()
        && request.named_runs.is_empty()
        && runs_landed.len() <= attempts_not_failed;
    let problem = match (acked, matches.as_slice()) {
        (Some(_), []) => Some(format!("acked signal {request_id} was never applied")),
        (Some(_), [(replica, _)])
            if !request.named_runs.is_empty()
                && !request.named_runs.contains(&replica.run.run_id) =>
        {
            Some(format!(
                "signal {request_id} was applied to another run than the one it named"
            ))
        }
        (_, [_, _, ..]) if !once_per_attempt => {
            Some(format!("signal {request_id} was applied more than once"))
        }
        (None, [_]) if all_failed => Some(format!("failed signal {request_id} was applied")),
        _ => None,
    };
    let Some(problem) = problem else {
        return Ok(matches
            .iter()
            .map(|(replica, event)| (&replica.run.run_id, event.event_id))
            .collect());
    };
    // The acked attempt if there is one, else the first attempt.
    let witness_op = acked.or(request.ops.first());
    let violation = witness_op.into_iter().fold(
        Violation::new(INVARIANT, format!("{problem} on {workflow_id}")),
        |v, op| v.op(op),
    );
    Err(matches.iter().fold(violation, |v, (replica, event)| {
        v.event(WitnessEvent::in_final_read(
            replica.node,
            replica.group,
            workflow_id,
            &replica.run.run_id,
            event,
        ))
    }))
}

fn signal_matches(event: &ObservedEvent, request_id: &RequestId, values: &BTreeSet<&str>) -> bool {
    if event.event_type != EventType::WorkflowExecutionSignaled {
        return false;
    }
    match &event.attributes.signal_request_id {
        Some(recorded) => recorded == request_id,
        None => event
            .attributes
            .signal_input
            .as_deref()
            .is_some_and(|input| values.contains(input)),
    }
}

/// Every signal acked before another was invoked must sit at a lower event ID.
fn check_ack_order(
    workflow_id: &WorkflowId,
    run_id: &RunId,
    mut signals: Vec<Placed<'_>>,
    report: &mut InvariantReport,
) {
    signals.sort_by_key(|signal| signal.acked_at);
    // highest[i]: the signal with the highest event ID among the first i+1 acks.
    let mut highest: Vec<&Placed<'_>> = Vec::with_capacity(signals.len());
    for signal in &signals {
        let best = match highest.last() {
            Some(previous) if previous.event_id > signal.event_id => previous,
            _ => signal,
        };
        highest.push(best);
    }
    for later in &signals {
        let acked_before =
            signals.partition_point(|signal| signal.acked_at < later.first_invoked_at);
        let Some(earlier) = acked_before.checked_sub(1).and_then(|i| highest.get(i)) else {
            continue;
        };
        if earlier.event_id > later.event_id {
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!(
                        "{workflow_id}/{run_id}: a signal acked before another was invoked has a higher event ID ({} > {})",
                        earlier.event_id, later.event_id
                    ),
                )
                .op(earlier.op)
                .op(later.op),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn run(signals: &[&str]) -> crate::history::FinalRead {
        let mut events = vec![started_ev(1, "r1")];
        for (i, value) in signals.iter().enumerate() {
            events.push(signaled_ev(i as u64 + 2, value));
        }
        FinalReadBuilder::new(&[1]).run("w1", "R1", events).build()
    }

    #[test]
    fn acked_signals_applied_once_in_ack_order_are_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(1, signal("w1", "s1", "v1"), None, 1, (10, 20));
        h.ok(1, signal("w1", "s2", "v2"), None, 1, (30, 40));
        // Concurrent with s2: either order is fine.
        h.ok(2, signal("w1", "s3", "v3"), None, 2, (25, 45));
        h.info(3, signal("w1", "s4", "v4"), 2, (50, 60));
        let report = check_one(INVARIANT, &h.build(), &run(&["v1", "v3", "v2"]));
        assert_valid(&report);
        assert_eq!(report.judged, 3);
    }

    #[test]
    fn a_lost_acked_signal_is_reported() {
        let mut h = HistoryBuilder::new();
        let lost = h.ok(1, signal("w1", "s1", "v1"), None, 1, (10, 20));
        let report = check_one(INVARIANT, &h.build(), &run(&[]));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![lost]);
        assert!(violation.what.contains("never applied"));
    }

    #[test]
    fn a_signal_applied_twice_is_reported_with_both_events() {
        let mut h = HistoryBuilder::new();
        h.info(1, signal("w1", "s1", "v1"), 1, (10, 20));
        let retry = h.ok(1, signal("w1", "s1", "v1"), None, 2, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &run(&["v1", "v1"]));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![retry]);
        assert_eq!(violation.event_ids(), vec![EventId(2), EventId(3)]);
    }

    fn two_runs(first: &[&str], second: &[&str]) -> crate::history::FinalRead {
        let events = |request: &str, signals: &[&str]| {
            let mut events = vec![started_ev(1, request)];
            for (i, value) in signals.iter().enumerate() {
                events.push(signaled_ev(i as u64 + 2, value));
            }
            events
        };
        FinalReadBuilder::new(&[1])
            .run("w1", "R1", events("r1", first))
            .run("w1", "R2", events("r2", second))
            .build()
    }

    /// Found by the simulation (seed 5098 of 3 nodes, once runs had run timeouts): s1's first
    /// attempt timed out (`info`) but landed in R1, which then timed out; the retry, addressed
    /// to the current run, landed in R2. Temporal deduplicates signal request IDs per run.
    #[test]
    fn a_current_run_signal_retried_across_a_run_change_may_land_once_in_each_run() {
        let mut h = HistoryBuilder::new();
        h.info(1, signal("w1", "s1", "v1"), 1, (10, 20));
        h.ok(1, signal("w1", "s1", "v1"), None, 1, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &two_runs(&["v1"], &["v1"]));
        assert_valid(&report);
    }

    #[test]
    fn one_attempt_in_two_runs_or_twice_in_one_run_is_reported() {
        // One attempt cannot land in two runs.
        let mut h = HistoryBuilder::new();
        let only = h.ok(1, signal("w1", "s1", "v1"), None, 1, (10, 20));
        let report = check_one(INVARIANT, &h.build(), &two_runs(&["v1"], &["v1"]));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![only]);
        assert!(
            violation.what.contains("more than once"),
            "{}",
            violation.what
        );
        // Two attempts: once per run, never twice in one.
        let mut h = HistoryBuilder::new();
        h.info(1, signal("w1", "s1", "v1"), 1, (10, 20));
        h.ok(1, signal("w1", "s1", "v1"), None, 1, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &two_runs(&["v1", "v1"], &["v1"]));
        assert!(single_violation(&report).what.contains("more than once"));
    }

    #[test]
    fn a_signal_naming_its_run_applied_in_another_run_too_is_reported() {
        let mut h = HistoryBuilder::new();
        let mut named = signal("w1", "s1", "v1");
        if let Op::Signal { run_id, .. } = &mut named {
            *run_id = Some("R1".into());
        }
        h.info(1, named.clone(), 1, (10, 20));
        h.ok(1, named, None, 1, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &two_runs(&["v1"], &["v1"]));
        assert!(single_violation(&report).what.contains("more than once"));
    }

    #[test]
    fn a_failed_signal_must_be_absent_and_an_info_signal_may_be_either_way() {
        let mut h = HistoryBuilder::new();
        let failed = h.fail(1, signal("w1", "s1", "v1"), 1, (10, 20));
        h.info(1, signal("w1", "s2", "v2"), 1, (30, 40));
        h.info(1, signal("w1", "s3", "v3"), 1, (50, 60));
        let report = check_one(INVARIANT, &h.build(), &run(&["v1", "v2"]));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![failed]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
    }

    #[test]
    fn signals_applied_against_their_ack_order_are_reported() {
        let mut h = HistoryBuilder::new();
        let first = h.ok(1, signal("w1", "s1", "v1"), None, 1, (10, 20));
        let second = h.ok(1, signal("w1", "s2", "v2"), None, 1, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &run(&["v2", "v1"]));
        assert_eq!(single_violation(&report).op_ids(), vec![first, second]);
    }

    /// Found by the simulation (seed 15): s2's first attempt timed out (`info`) but was applied
    /// before s1's ack; its retry, invoked after that ack, was deduplicated and acked.
    #[test]
    fn a_retried_signal_whose_first_attempt_landed_before_an_earlier_ack_is_accepted() {
        let mut h = HistoryBuilder::new();
        h.info(2, signal("w1", "s2", "v2"), 1, (5, 15));
        h.ok(1, signal("w1", "s1", "v1"), None, 1, (10, 20));
        h.ok(2, signal("w1", "s2", "v2"), None, 1, (30, 40));
        let report = check_one(INVARIANT, &h.build(), &run(&["v2", "v1"]));
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn a_recorded_signal_request_id_is_matched_before_the_value() {
        let mut h = HistoryBuilder::new();
        h.ok(1, signal("w1", "s1", "same"), None, 1, (10, 20));
        h.ok(1, signal("w1", "s2", "same"), None, 1, (30, 40));
        let mut first = signaled_ev(2, "same");
        first.attributes.signal_request_id = Some("s1".into());
        let mut second = signaled_ev(3, "same");
        second.attributes.signal_request_id = Some("s2".into());
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r1"), first, second])
            .build();
        assert_valid(&check_one(INVARIANT, &h.build(), &f));
    }
}
