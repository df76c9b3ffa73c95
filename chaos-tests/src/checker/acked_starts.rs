//! Invariant 1: no acknowledged StartWorkflow is lost.
//!
//! * Every `ok` start of `(wid, R)` is in the final read on every node, with event 1 a
//!   `WorkflowExecutionStarted` carrying the start's request ID (unless the start may attach to an
//!   existing run).
//! * A `fail` start's request ID starts no run (unless an `ok`/`info` start used the same ID).
//! * Once `(wid, R)` has been seen — acked, or returned by a read — every read of it invoked later
//!   finds it (set-full's "never lost once seen").

use super::{CheckInput, Invariant, InvariantReport, RunKey, Violation, WitnessEvent};
use crate::history::{Op, OpValue, Operation, Outcome};
use crate::ids::{HarnessNanos, RequestId, WorkflowId};
use std::collections::{BTreeMap, BTreeSet};

const INVARIANT: Invariant = Invariant::AckedStartsSurvive;

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    check_acked_starts_present(input, &mut report);
    check_failed_starts_absent(input, &mut report);
    check_reads_never_lose_a_seen_run(input, &mut report);
    report
}

fn check_acked_starts_present(input: &CheckInput<'_>, report: &mut InvariantReport) {
    for op in &input.history.operations {
        let Op::StartWorkflow {
            workflow_id,
            request_id,
            attach_to_existing,
            ..
        } = &op.f
        else {
            continue;
        };
        let Some(OpValue::Started { run_id }) = op.ok_value() else {
            continue;
        };
        report.judged += 1;
        let key = RunKey::new(workflow_id, run_id);
        let replicas = input.index.replicas(&key);
        let mut violation = Violation::new(
            INVARIANT,
            format!("acked start of {workflow_id}/{run_id} is lost"),
        )
        .op(op);
        for &node in &input.index.nodes {
            let Some(replica) = replicas.iter().find(|r| r.node == node) else {
                violation = violation.fact(format!("{node} has no run {workflow_id}/{run_id}"));
                continue;
            };
            let first = replica.run.events.first();
            let witness = |event| {
                WitnessEvent::in_final_read(node, replica.group, workflow_id, run_id, event)
            };
            match replica.run.started_event() {
                None => {
                    violation =
                        violation.fact(format!("{node}: event 1 is not WorkflowExecutionStarted"));
                    if let Some(event) = first {
                        violation = violation.event(witness(event));
                    }
                }
                Some(event)
                    if !attach_to_existing
                        && event.attributes.request_id.as_ref() != Some(request_id) =>
                {
                    violation = violation
                        .fact(format!(
                            "{node}: the run's start does not carry request {request_id}"
                        ))
                        .event(witness(event));
                }
                Some(_) => {}
            }
        }
        if !violation.facts.is_empty() {
            report.violations.push(violation);
        }
    }
}

fn check_failed_starts_absent(input: &CheckInput<'_>, report: &mut InvariantReport) {
    let maybe_happened: BTreeSet<(&WorkflowId, &RequestId)> = input
        .history
        .operations
        .iter()
        .filter(|op| op.outcome() != Outcome::Fail)
        .filter_map(|op| match &op.f {
            Op::StartWorkflow {
                workflow_id,
                request_id,
                ..
            } => Some((workflow_id, request_id)),
            _ => None,
        })
        .collect();
    for op in &input.history.operations {
        let Op::StartWorkflow {
            workflow_id,
            request_id,
            ..
        } = &op.f
        else {
            continue;
        };
        if op.outcome() != Outcome::Fail || maybe_happened.contains(&(workflow_id, request_id)) {
            continue;
        }
        report.judged += 1;
        for replica in input.index.runs_of(workflow_id) {
            let Some(event) = replica.run.started_event() else {
                continue;
            };
            if event.attributes.request_id.as_ref() == Some(request_id) {
                let run_id = &replica.run.run_id;
                report.violations.push(
                    Violation::new(
                        INVARIANT,
                        format!("failed start {request_id} started run {workflow_id}/{run_id}"),
                    )
                    .op(op)
                    .event(WitnessEvent::in_final_read(
                        replica.node,
                        replica.group,
                        workflow_id,
                        run_id,
                        event,
                    )),
                );
            }
        }
    }
}

/// What a read op says about a run's existence.
enum Sighting<'a> {
    /// The run (or, with no run ID, the workflow) exists.
    Found(&'a WorkflowId, Option<&'a crate::ids::RunId>),
    /// The read found nothing.
    Missing(&'a WorkflowId, Option<&'a crate::ids::RunId>),
}

fn sighting(op: &Operation) -> Option<Sighting<'_>> {
    let value = op.ok_value()?;
    match (&op.f, value) {
        (Op::StartWorkflow { workflow_id, .. }, OpValue::Started { run_id }) => {
            Some(Sighting::Found(workflow_id, Some(run_id)))
        }
        (
            Op::ReadHistory {
                workflow_id,
                run_id,
            },
            OpValue::Events { events },
        ) if !events.is_empty() => Some(Sighting::Found(workflow_id, Some(run_id))),
        (
            Op::ReadHistory {
                workflow_id,
                run_id,
            },
            OpValue::Events { .. } | OpValue::NotFound,
        ) => Some(Sighting::Missing(workflow_id, Some(run_id))),
        (
            Op::Describe { workflow_id, .. } | Op::GetResult { workflow_id, .. },
            OpValue::Outcome { run_id, .. },
        ) => Some(Sighting::Found(workflow_id, Some(run_id))),
        (
            Op::Describe {
                workflow_id,
                run_id,
            }
            | Op::GetResult {
                workflow_id,
                run_id,
            },
            OpValue::NotFound,
        ) => Some(Sighting::Missing(workflow_id, run_id.as_ref())),
        _ => None,
    }
}

fn check_reads_never_lose_a_seen_run(input: &CheckInput<'_>, report: &mut InvariantReport) {
    // Earliest completion that showed each run, and each workflow (any run).
    type Seen<'a> = (HarnessNanos, &'a Operation);
    let mut run_seen: BTreeMap<(&WorkflowId, &crate::ids::RunId), Seen<'_>> = BTreeMap::new();
    let mut workflow_seen: BTreeMap<&WorkflowId, Seen<'_>> = BTreeMap::new();
    let earlier = |slot: Option<&Seen<'_>>, t: HarnessNanos| slot.is_none_or(|(seen, _)| t < *seen);
    for op in &input.history.operations {
        let (Some(Sighting::Found(workflow_id, Some(run_id))), Some(t)) =
            (sighting(op), op.complete_ns())
        else {
            continue;
        };
        if earlier(run_seen.get(&(workflow_id, run_id)), t) {
            run_seen.insert((workflow_id, run_id), (t, op));
        }
        if earlier(workflow_seen.get(workflow_id), t) {
            workflow_seen.insert(workflow_id, (t, op));
        }
    }
    for op in &input.history.operations {
        let Some(Sighting::Missing(workflow_id, run_id)) = sighting(op) else {
            continue;
        };
        report.judged += 1;
        let seen = match run_id {
            Some(run_id) => run_seen.get(&(workflow_id, run_id)),
            None => workflow_seen.get(workflow_id),
        };
        if let Some((seen_at, seen_by)) = seen.filter(|(seen_at, _)| *seen_at < op.invoke_ns) {
            let run = run_id.map_or("any run".to_owned(), ToString::to_string);
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!(
                        "{workflow_id}/{run} was seen at {seen_at} but a later read found nothing"
                    ),
                )
                .op(seen_by)
                .op(op),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn acked_start() -> (HistoryBuilder, OpId) {
        let mut h = HistoryBuilder::new();
        let id = h.ok(1, start("w1", "r1"), started("R1"), 1, (10, 20));
        (h, id)
    }

    #[test]
    fn an_acked_start_present_everywhere_with_its_request_id_is_accepted() {
        let (h, _) = acked_start();
        let f = FinalReadBuilder::new(&[1, 2, 3])
            .run("w1", "R1", vec![started_ev(1, "r1"), task_ev(2)])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_valid(&report);
        assert_eq!(report.judged, 1);
    }

    #[test]
    fn an_acked_start_missing_on_one_node_is_reported_naming_the_op_and_node() {
        let (h, id) = acked_start();
        let f = FinalReadBuilder::new(&[1, 2, 3])
            .run_on(1, "w1", "R1", vec![started_ev(1, "r1")])
            .run_on(2, "w1", "R1", vec![started_ev(1, "r1")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![id]);
        assert_eq!(violation.facts, vec!["n3 has no run w1/R1".to_owned()]);
    }

    #[test]
    fn an_acked_start_whose_run_carries_another_request_id_is_reported_with_the_event() {
        let (h, id) = acked_start();
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r-other")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![id]);
        assert_eq!(violation.event_ids(), vec![crate::ids::EventId(1)]);
        assert!(
            violation.to_string().contains("request_id=r-other"),
            "{violation}"
        );
    }

    #[test]
    fn a_failed_start_must_be_absent_but_an_info_start_may_be_either_way() {
        let mut h = HistoryBuilder::new();
        let failed = h.fail(1, start("w1", "r-fail"), 1, (10, 20));
        h.info(2, start("w2", "r-info"), 1, (10, 20));
        h.info(3, start("w3", "r-info3"), 1, (10, 20));
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r-fail")])
            .run("w2", "R2", vec![started_ev(1, "r-info")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![failed]);
        assert_eq!(violation.event_ids(), vec![crate::ids::EventId(1)]);
    }

    #[test]
    fn a_failed_retry_of_a_request_that_also_succeeded_is_not_judged() {
        let mut h = HistoryBuilder::new();
        h.fail(1, start("w1", "r1"), 1, (10, 20));
        h.ok(1, start("w1", "r1"), started("R1"), 2, (30, 40));
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r1")])
            .build();
        assert_valid(&check_one(INVARIANT, &h.build(), &f));
    }

    #[test]
    fn a_read_invoked_after_the_run_was_seen_must_find_it_but_a_concurrent_one_need_not() {
        let mut h = HistoryBuilder::new();
        let start_op = h.ok(1, start("w1", "r1"), started("R1"), 1, (10, 100));
        // Concurrent with the start: may miss it.
        h.ok(2, read("w1", "R1"), Some(OpValue::NotFound), 2, (50, 150));
        let late = h.ok(2, read("w1", "R1"), Some(OpValue::NotFound), 3, (200, 250));
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r1")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![start_op, late]);
    }

    #[test]
    fn a_describe_of_the_current_run_after_any_run_was_seen_must_find_one() {
        let mut h = HistoryBuilder::new();
        let seen = h.ok(
            1,
            read("w1", "R1"),
            events(vec![started_ev(1, "r1")]),
            1,
            (10, 20),
        );
        let lost = h.ok(
            1,
            Op::Describe {
                workflow_id: "w1".into(),
                run_id: None,
            },
            Some(OpValue::NotFound),
            2,
            (30, 40),
        );
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", vec![started_ev(1, "r1")])
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_eq!(single_violation(&report).op_ids(), vec![seen, lost]);
    }
}
