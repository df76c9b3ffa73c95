//! Invariant 3: every run's history is well formed and the same everywhere.
//!
//! * On every node, event IDs are 1..N, event 1 is `WorkflowExecutionStarted`, and at most one
//!   event is terminal — the last one.
//! * Every node holds every run, with the same events as the reference replica.
//! * Every `ok` history read returned a prefix of the run's final history (so any two reads are
//!   prefix-comparable).

use super::{CheckInput, Invariant, InvariantReport, RunKey, RunReplica, Violation, WitnessEvent};
use crate::history::{EventType, ObservedEvent, Op, OpValue};
use crate::ids::EventId;

const INVARIANT: Invariant = Invariant::HistoryShape;

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    for (key, replicas) in input.index.all_runs() {
        for replica in replicas {
            report.judged += 1;
            if let Some(violation) = shape_violation(key, replica) {
                report.violations.push(violation);
            }
        }
        check_replicas_equal(input, key, replicas, &mut report);
    }
    check_reads_are_prefixes(input, &mut report);
    report
}

fn shape_violation(key: &RunKey, replica: &RunReplica<'_>) -> Option<Violation> {
    let witness = |event| {
        WitnessEvent::in_final_read(
            replica.node,
            replica.group,
            &key.workflow_id,
            &key.run_id,
            event,
        )
    };
    let events = &replica.run.events;
    let last = events.len();
    let Some(first) = events.first() else {
        return Some(Violation::new(
            INVARIANT,
            format!(
                "{} holds {}/{} with no events",
                replica.node, key.workflow_id, key.run_id
            ),
        ));
    };
    if first.event_type != EventType::WorkflowExecutionStarted {
        return Some(
            Violation::new(
                INVARIANT,
                format!("{}: event 1 is not WorkflowExecutionStarted", replica.node),
            )
            .event(witness(first)),
        );
    }
    for (position, event) in events.iter().enumerate() {
        let expected = EventId(position as u64 + 1);
        if event.event_id != expected {
            let mut violation = Violation::new(
                INVARIANT,
                format!(
                    "{}: event IDs not contiguous: expected {expected}, found {}",
                    replica.node, event.event_id
                ),
            );
            if let Some(previous) = position.checked_sub(1).and_then(|p| events.get(p)) {
                violation = violation.event(witness(previous));
            }
            return Some(violation.event(witness(event)));
        }
        if event.event_type.is_terminal() && position + 1 != last {
            let mut violation = Violation::new(
                INVARIANT,
                format!(
                    "{}: terminal {} is followed by more events",
                    replica.node, event.event_type
                ),
            )
            .event(witness(event));
            if let Some(next) = events.get(position + 1) {
                violation = violation.event(witness(next));
            }
            return Some(violation);
        }
    }
    None
}

/// The first position where two event lists differ, if they do (a missing event counts).
fn first_difference(a: &[ObservedEvent], b: &[ObservedEvent]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| !x.same_event(y));
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn check_replicas_equal(
    input: &CheckInput<'_>,
    key: &RunKey,
    replicas: &[RunReplica<'_>],
    report: &mut InvariantReport,
) {
    let Some(reference) = replicas.first() else {
        return;
    };
    let witness = |replica: &RunReplica<'_>, event| {
        WitnessEvent::in_final_read(
            replica.node,
            replica.group,
            &key.workflow_id,
            &key.run_id,
            event,
        )
    };
    for &node in &input.index.nodes {
        let Some(replica) = replicas.iter().find(|r| r.node == node) else {
            report.violations.push(
                Violation::new(
                    INVARIANT,
                    format!("{node} does not hold {}/{}", key.workflow_id, key.run_id),
                )
                .fact(format!(
                    "{} holds it with {} events",
                    reference.node,
                    reference.run.events.len()
                )),
            );
            continue;
        };
        let Some(at) = first_difference(&reference.run.events, &replica.run.events) else {
            continue;
        };
        let mut violation = Violation::new(
            INVARIANT,
            format!(
                "replicas of {}/{} differ at position {} between {} and {node}",
                key.workflow_id,
                key.run_id,
                at + 1,
                reference.node
            ),
        );
        for side in [reference, replica] {
            match side.run.events.get(at) {
                Some(event) => violation = violation.event(witness(side, event)),
                None => {
                    violation = violation.fact(format!(
                        "{} has only {} events",
                        side.node,
                        side.run.events.len()
                    ))
                }
            }
        }
        report.violations.push(violation);
    }
}

fn check_reads_are_prefixes(input: &CheckInput<'_>, report: &mut InvariantReport) {
    for op in &input.history.operations {
        let (
            Op::ReadHistory {
                workflow_id,
                run_id,
            },
            Some(OpValue::Events { events }),
        ) = (&op.f, op.ok_value())
        else {
            continue;
        };
        let Some(reference) = input.index.reference(workflow_id, run_id) else {
            continue; // Invariant 1 reports a run a read saw but the final read lacks.
        };
        report.judged += 1;
        let final_events = &reference.run.events;
        let Some(at) = events
            .iter()
            .zip(final_events)
            .position(|(read, fin)| !read.same_event(fin))
            .or_else(|| (events.len() > final_events.len()).then_some(final_events.len()))
        else {
            continue;
        };
        let mut violation = Violation::new(
            INVARIANT,
            format!("a read of {workflow_id}/{run_id} is not a prefix of its final history (position {})", at + 1),
        )
        .op(op);
        if let Some(event) = events.get(at) {
            violation = violation.event(WitnessEvent::observed_by(op, workflow_id, run_id, event));
        }
        match final_events.get(at) {
            Some(event) => {
                violation = violation.event(WitnessEvent::in_final_read(
                    reference.node,
                    reference.group,
                    workflow_id,
                    run_id,
                    event,
                ))
            }
            None => {
                violation = violation.fact(format!(
                    "the final history has {} events",
                    final_events.len()
                ))
            }
        }
        report.violations.push(violation);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn good_run() -> Vec<ObservedEvent> {
        vec![started_ev(1, "r1"), task_ev(2), completed_ev(3, "done")]
    }

    #[test]
    fn well_formed_equal_replicas_and_prefix_reads_are_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            read("w1", "R1"),
            events(good_run()[..2].to_vec()),
            1,
            (10, 20),
        );
        h.ok(1, read("w1", "R1"), events(good_run()), 2, (30, 40));
        let f = FinalReadBuilder::new(&[1, 2, 3])
            .run("w1", "R1", good_run())
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_valid(&report);
        assert_eq!(report.judged, 5);
    }

    #[test]
    fn a_gap_in_event_ids_is_reported_with_the_events_around_it() {
        let run = vec![started_ev(1, "r1"), task_ev(2), task_ev(4)];
        let f = FinalReadBuilder::new(&[1]).run("w1", "R1", run).build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        assert_eq!(
            single_violation(&report).event_ids(),
            vec![EventId(2), EventId(4)]
        );
    }

    #[test]
    fn an_event_after_the_terminal_event_is_reported() {
        let run = vec![started_ev(1, "r1"), completed_ev(2, "done"), task_ev(3)];
        let f = FinalReadBuilder::new(&[1]).run("w1", "R1", run).build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        assert_eq!(
            single_violation(&report).event_ids(),
            vec![EventId(2), EventId(3)]
        );
    }

    #[test]
    fn replicas_that_differ_are_reported_at_the_first_difference() {
        let mut other = good_run();
        other[2] = completed_ev(3, "something else");
        let f = FinalReadBuilder::new(&[1, 2])
            .run_on(1, "w1", "R1", good_run())
            .run_on(2, "w1", "R1", other)
            .build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.event_ids(), vec![EventId(3), EventId(3)]);
        assert!(
            violation.to_string().contains("result=something else"),
            "{violation}"
        );
    }

    #[test]
    fn a_replica_with_a_different_raft_index_differs_and_a_missing_replica_is_reported() {
        let f = FinalReadBuilder::new(&[1, 2, 3])
            .run_on(1, "w1", "R1", vec![at_raft(started_ev(1, "r1"), 5)])
            .run_on(2, "w1", "R1", vec![at_raft(started_ev(1, "r1"), 6)])
            .build();
        let report = check_one(INVARIANT, &HistoryBuilder::new().build(), &f);
        assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
        assert!(
            report.violations[0]
                .what
                .contains("differ at position 1 between n1 and n2")
        );
        assert!(report.violations[1].what.contains("n3 does not hold w1/R1"));
    }

    #[test]
    fn a_read_that_diverges_from_the_final_history_is_reported() {
        let mut h = HistoryBuilder::new();
        let diverged = vec![started_ev(1, "r1"), signaled_ev(2, "x")];
        let id = h.ok(1, read("w1", "R1"), events(diverged), 1, (10, 20));
        let f = FinalReadBuilder::new(&[1])
            .run("w1", "R1", good_run())
            .build();
        let report = check_one(INVARIANT, &h.build(), &f);
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![id]);
        assert_eq!(violation.event_ids(), vec![EventId(2), EventId(2)]);
    }
}
