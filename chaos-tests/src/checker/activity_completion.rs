//! Invariant 4: a completed activity is never lost and never dispatched again.
//!
//! For every `ok` RespondActivityTaskCompleted of `(wid, R, activity)` acked at `t_ack`:
//! * the run's final history holds exactly one `ActivityTaskCompleted` for that activity, with
//!   that result, and no `ActivityTaskStarted` of it after the completion;
//! * no poll invoked after `t_ack` was handed that activity.
//!
//! A `fail` completion's result never appears, unless an `ok`/`info` completion of the same
//! activity carried the same result. Activities are matched by activity ID (the workload keeps
//! them unique within a run).

use super::{CheckInput, Invariant, InvariantReport, RunReplica, Violation, WitnessEvent};
use crate::history::{EventType, ObservedEvent, Op, OpValue, Operation, Outcome};
use crate::ids::{ActivityId, EventId, RunId, WorkflowId};
use std::collections::{BTreeMap, BTreeSet};

const INVARIANT: Invariant = Invariant::ActivityCompletion;

/// Activity tasks handed out by polls, by (workflow, run, activity).
type Dispatches<'a> = BTreeMap<(&'a WorkflowId, &'a RunId, &'a ActivityId), Vec<&'a Operation>>;

/// Completions that may have happened (`ok` or `info`), by (workflow, run, activity, result).
type MaybeCompleted<'a> = BTreeSet<(&'a WorkflowId, &'a RunId, &'a ActivityId, &'a str)>;

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let mut dispatches: Dispatches<'_> = BTreeMap::new();
    let mut maybe_completed: MaybeCompleted<'_> = BTreeSet::new();
    for op in &input.history.operations {
        if let Some(OpValue::ActivityTask {
            workflow_id,
            run_id,
            activity_id,
            ..
        }) = op.ok_value()
        {
            dispatches
                .entry((workflow_id, run_id, activity_id))
                .or_default()
                .push(op);
        }
        if let Op::CompleteActivity {
            workflow_id,
            run_id,
            activity_id,
            result,
        } = &op.f
            && op.outcome() != Outcome::Fail
        {
            maybe_completed.insert((workflow_id, run_id, activity_id, result));
        }
    }
    for op in &input.history.operations {
        let Op::CompleteActivity {
            workflow_id,
            run_id,
            activity_id,
            result,
        } = &op.f
        else {
            continue;
        };
        let target = Target {
            workflow_id,
            run_id,
            activity_id,
        };
        match op.outcome() {
            Outcome::Ok => {
                report.judged += 1;
                check_acked_completion(input, op, &target, result, &mut report);
                let polls = dispatches.get(&(workflow_id, run_id, activity_id));
                check_no_redispatch(op, polls.map_or(&[], Vec::as_slice), &mut report);
            }
            Outcome::Fail
                if !maybe_completed.contains(&(workflow_id, run_id, activity_id, result)) =>
            {
                if let Some(violation) = failed_completion_applied(input, op, &target, result) {
                    report.violations.push(violation);
                }
                report.judged += 1;
            }
            Outcome::Fail | Outcome::Unknown => {}
        }
    }
    report
}

struct Target<'a> {
    workflow_id: &'a WorkflowId,
    run_id: &'a RunId,
    activity_id: &'a ActivityId,
}

/// The activity's scheduled event IDs in the run, and its completed events.
fn completions<'e>(
    events: &'e [ObservedEvent],
    activity_id: &ActivityId,
) -> (BTreeSet<EventId>, Vec<&'e ObservedEvent>) {
    let scheduled: BTreeSet<EventId> = events
        .iter()
        .filter(|e| {
            e.event_type == EventType::ActivityTaskScheduled
                && e.attributes.activity_id.as_ref() == Some(activity_id)
        })
        .map(|e| e.event_id)
        .collect();
    let completed = events
        .iter()
        .filter(|e| e.event_type == EventType::ActivityTaskCompleted)
        .filter(|e| {
            e.attributes
                .scheduled_event_id
                .is_some_and(|id| scheduled.contains(&id))
        })
        .collect();
    (scheduled, completed)
}

fn check_acked_completion(
    input: &CheckInput<'_>,
    op: &Operation,
    target: &Target<'_>,
    result: &str,
    report: &mut InvariantReport,
) {
    let Target {
        workflow_id,
        run_id,
        activity_id,
    } = target;
    let Some(replica) = input.index.reference(workflow_id, run_id) else {
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!("acked completion of {activity_id}: run {workflow_id}/{run_id} is missing"),
            )
            .op(op),
        );
        return;
    };
    let witness = |event| event_witness(&replica, event);
    let events = &replica.run.events;
    let (scheduled, completed) = completions(events, activity_id);
    let with_result: Vec<&&ObservedEvent> = completed
        .iter()
        .filter(|e| e.attributes.result.as_deref() == Some(result))
        .collect();
    let violation = match (completed.as_slice(), with_result.as_slice()) {
        (_, [_]) if completed.len() == 1 => None,
        ([], _) => {
            let v = Violation::new(
                INVARIANT,
                format!("acked completion of activity {activity_id} is lost"),
            )
            .op(op);
            Some(
                scheduled
                    .iter()
                    .filter_map(|id| events.iter().find(|e| e.event_id == *id))
                    .fold(v, |v, e| v.event(witness(e))),
            )
        }
        ([other], []) => Some(
            Violation::new(
                INVARIANT,
                format!("activity {activity_id} completed with another result than the acked one"),
            )
            .op(op)
            .event(witness(other)),
        ),
        _ => Some(
            completed.iter().fold(
                Violation::new(
                    INVARIANT,
                    format!("activity {activity_id} completed {} times", completed.len()),
                )
                .op(op),
                |v, e| v.event(witness(e)),
            ),
        ),
    };
    if let Some(violation) = violation {
        report.violations.push(violation);
        return;
    }
    // Exactly one completion: nothing may start the activity again after it.
    let Some(completion) = completed.first() else {
        return;
    };
    let restarted = events.iter().find(|e| {
        e.event_id > completion.event_id
            && e.event_type == EventType::ActivityTaskStarted
            && e.attributes
                .scheduled_event_id
                .is_some_and(|id| scheduled.contains(&id))
    });
    if let Some(restart) = restarted {
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!("activity {activity_id} started again after its completion"),
            )
            .op(op)
            .event(witness(completion))
            .event(witness(restart)),
        );
    }
}

fn event_witness(replica: &RunReplica<'_>, event: &ObservedEvent) -> WitnessEvent {
    WitnessEvent::in_final_read(
        replica.node,
        replica.group,
        &replica.run.workflow_id,
        &replica.run.run_id,
        event,
    )
}

fn check_no_redispatch(ack: &Operation, polls: &[&Operation], report: &mut InvariantReport) {
    let Some(t_ack) = ack.complete_ns() else {
        return;
    };
    for poll in polls.iter().filter(|poll| poll.invoke_ns > t_ack) {
        report.violations.push(
            Violation::new(
                INVARIANT,
                "the activity was dispatched again after its completion was acked",
            )
            .op(ack)
            .op(poll),
        );
    }
}

fn failed_completion_applied(
    input: &CheckInput<'_>,
    op: &Operation,
    target: &Target<'_>,
    result: &str,
) -> Option<Violation> {
    let Target {
        workflow_id,
        run_id,
        activity_id,
    } = target;
    let replica = input.index.reference(workflow_id, run_id)?;
    let (_, completed) = completions(&replica.run.events, activity_id);
    let applied = completed
        .into_iter()
        .find(|e| e.attributes.result.as_deref() == Some(result))?;
    Some(
        Violation::new(
            INVARIANT,
            format!("failed completion of activity {activity_id} was applied"),
        )
        .op(op)
        .event(event_witness(&replica, applied)),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn run_with(completions: Vec<ObservedEvent>) -> crate::history::FinalRead {
        let mut events = vec![
            started_ev(1, "r1"),
            scheduled_ev(2, "a1"),
            activity_started_ev(3, 2),
        ];
        events.extend(completions);
        FinalReadBuilder::new(&[1]).run("w1", "R1", events).build()
    }

    #[test]
    fn one_completion_with_the_acked_result_and_no_later_poll_is_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            poll_activity(),
            activity_task("w1", "R1", "a1"),
            1,
            (5, 8),
        );
        h.ok(
            1,
            complete_activity("w1", "R1", "a1", "res-1"),
            None,
            1,
            (10, 20),
        );
        h.ok(2, poll_activity(), Some(OpValue::NoTask), 1, (30, 40));
        let report = check_one(
            INVARIANT,
            &h.build(),
            &run_with(vec![activity_completed_ev(4, 2, "res-1")]),
        );
        assert_valid(&report);
        assert_eq!(report.judged, 1);
    }

    #[test]
    fn a_lost_completion_is_reported_with_the_scheduled_event() {
        let mut h = HistoryBuilder::new();
        let ack = h.ok(
            1,
            complete_activity("w1", "R1", "a1", "res-1"),
            None,
            1,
            (10, 20),
        );
        let report = check_one(INVARIANT, &h.build(), &run_with(vec![]));
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![ack]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
        assert!(violation.what.contains("lost"));
    }

    #[test]
    fn a_duplicated_completion_is_reported_with_both_events() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            complete_activity("w1", "R1", "a1", "res-1"),
            None,
            1,
            (10, 20),
        );
        let f = run_with(vec![
            activity_completed_ev(4, 2, "res-1"),
            activity_completed_ev(5, 2, "res-1"),
        ]);
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_eq!(
            single_violation(&report).event_ids(),
            vec![EventId(4), EventId(5)]
        );
    }

    #[test]
    fn a_start_after_the_completion_is_reported() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            complete_activity("w1", "R1", "a1", "res-1"),
            None,
            1,
            (10, 20),
        );
        let f = run_with(vec![
            activity_completed_ev(4, 2, "res-1"),
            activity_started_ev(5, 2),
        ]);
        let report = check_one(INVARIANT, &h.build(), &f);
        assert_eq!(
            single_violation(&report).event_ids(),
            vec![EventId(4), EventId(5)]
        );
    }

    #[test]
    fn a_poll_invoked_after_the_ack_that_gets_the_activity_is_reported() {
        let mut h = HistoryBuilder::new();
        // Invoked before the ack completed: may legitimately get the task (lease race).
        h.ok(
            2,
            poll_activity(),
            activity_task("w1", "R1", "a1"),
            1,
            (15, 25),
        );
        let ack = h.ok(
            1,
            complete_activity("w1", "R1", "a1", "res-1"),
            None,
            1,
            (10, 20),
        );
        let late = h.ok(
            2,
            poll_activity(),
            activity_task("w1", "R1", "a1"),
            2,
            (30, 40),
        );
        let report = check_one(
            INVARIANT,
            &h.build(),
            &run_with(vec![activity_completed_ev(4, 2, "res-1")]),
        );
        assert_eq!(single_violation(&report).op_ids(), vec![ack, late]);
    }

    #[test]
    fn a_failed_completion_must_be_absent_and_an_info_one_may_be_either_way() {
        let mut h = HistoryBuilder::new();
        let failed = h.fail(
            1,
            complete_activity("w1", "R1", "a1", "res-fail"),
            1,
            (10, 20),
        );
        h.info(
            1,
            complete_activity("w1", "R1", "a1", "res-info"),
            1,
            (30, 40),
        );
        let report = check_one(
            INVARIANT,
            &h.build(),
            &run_with(vec![activity_completed_ev(4, 2, "res-fail")]),
        );
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![failed]);
        assert_eq!(violation.event_ids(), vec![EventId(4)]);
        let mut h = HistoryBuilder::new();
        h.info(
            1,
            complete_activity("w1", "R1", "a1", "res-info"),
            1,
            (30, 40),
        );
        assert_valid(&check_one(
            INVARIANT,
            &h.build(),
            &run_with(vec![activity_completed_ev(4, 2, "res-info")]),
        ));
        assert_valid(&check_one(INVARIANT, &h.build(), &run_with(vec![])));
    }
}
