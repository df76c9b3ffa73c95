//! Invariant 5: timers never fire early by the harness clock, and live timers do fire.
//!
//! `t_cmd` is the invoke time of the earliest non-failed StartTimer command for a timer: the
//! command cannot have reached a server before it. A `TimerFired` seen by an operation that
//! completed before `t_cmd + duration` fired early — whatever the servers' clocks said.
//!
//! After the heal, an acked timer whose deadline plus the configured bound passed before the final
//! read must have fired or been canceled, or its run must have closed. A `fail`ed StartTimer
//! leaves no `TimerStarted` (unless another attempt for the same timer may have succeeded).
//!
//! Run timeouts are judged the same way, in [`super::run_timeouts`].

use super::{CheckInput, Invariant, InvariantReport, Violation, WitnessEvent};
use crate::history::{EventType, ObservedEvent, Op, OpValue, Operation, Outcome};
use crate::ids::{HarnessNanos, RunId, TimerId, WorkflowId};
use std::collections::BTreeMap;

const INVARIANT: Invariant = Invariant::TimersNotEarly;
const NANOS_PER_MS: u64 = 1_000_000;

type TimerKey<'a> = (&'a WorkflowId, &'a RunId, &'a TimerId);

/// The earliest command that may have armed a timer.
struct Armed<'a> {
    command: &'a Operation,
    deadline: HarnessNanos,
}

pub(super) fn check(input: &CheckInput<'_>) -> InvariantReport {
    let mut report = InvariantReport::new(INVARIANT);
    let mut armed: BTreeMap<TimerKey<'_>, Armed<'_>> = BTreeMap::new();
    for op in &input.history.operations {
        let Op::StartTimer {
            workflow_id,
            run_id,
            timer_id,
            duration_ms,
        } = &op.f
        else {
            continue;
        };
        if op.outcome() == Outcome::Fail {
            continue;
        }
        let deadline = op.invoke_ns.plus(duration_ms.saturating_mul(NANOS_PER_MS));
        let key = (workflow_id, run_id, timer_id);
        if armed
            .get(&key)
            .is_none_or(|earlier| op.invoke_ns < earlier.command.invoke_ns)
        {
            armed.insert(
                key,
                Armed {
                    command: op,
                    deadline,
                },
            );
        }
    }
    check_never_early(input, &armed, &mut report);
    super::run_timeouts::check_never_early(input, &mut report);
    for op in &input.history.operations {
        let Op::StartTimer {
            workflow_id,
            run_id,
            timer_id,
            ..
        } = &op.f
        else {
            continue;
        };
        let key = (workflow_id, run_id, timer_id);
        match op.outcome() {
            Outcome::Ok => {
                report.judged += 1;
                if let Some(armed) = armed
                    .get(&key)
                    .filter(|armed| std::ptr::eq(armed.command, op))
                {
                    check_fired_in_time(input, key, armed, &mut report);
                }
            }
            Outcome::Fail if !armed.contains_key(&key) => {
                report.judged += 1;
                check_failed_timer_absent(input, op, key, &mut report);
            }
            Outcome::Fail | Outcome::Unknown => {}
        }
    }
    report
}

/// The events an ok operation observed, with the run they belong to.
pub(super) fn observed_events(op: &Operation) -> Option<(&WorkflowId, &RunId, &[ObservedEvent])> {
    match (&op.f, op.ok_value()?) {
        (
            Op::ReadHistory {
                workflow_id,
                run_id,
            },
            OpValue::Events { events },
        ) => Some((workflow_id, run_id, events)),
        (
            _,
            OpValue::WorkflowTask {
                workflow_id,
                run_id,
                events,
            },
        ) => Some((workflow_id, run_id, events)),
        _ => None,
    }
}

fn check_never_early(
    input: &CheckInput<'_>,
    armed: &BTreeMap<TimerKey<'_>, Armed<'_>>,
    report: &mut InvariantReport,
) {
    for op in &input.history.operations {
        let (Some((workflow_id, run_id, events)), Some(seen_at)) =
            (observed_events(op), op.complete_ns())
        else {
            continue;
        };
        for fired in events
            .iter()
            .filter(|e| e.event_type == EventType::TimerFired)
        {
            let Some(timer_id) = fired.attributes.timer_id.as_ref() else {
                continue;
            };
            let Some(armed) = armed.get(&(workflow_id, run_id, timer_id)) else {
                continue;
            };
            if seen_at < armed.deadline {
                report.violations.push(
                    Violation::new(
                        INVARIANT,
                        format!(
                            "timer {timer_id} was seen fired at {seen_at}, before its deadline {}",
                            armed.deadline
                        ),
                    )
                    .op(armed.command)
                    .op(op)
                    .event(WitnessEvent::observed_by(
                        op,
                        workflow_id,
                        run_id,
                        fired,
                    )),
                );
            }
        }
    }
}

fn timer_event<'e>(
    events: &'e [ObservedEvent],
    event_type: &EventType,
    timer_id: &TimerId,
) -> Option<&'e ObservedEvent> {
    events
        .iter()
        .find(|e| &e.event_type == event_type && e.attributes.timer_id.as_ref() == Some(timer_id))
}

fn check_fired_in_time(
    input: &CheckInput<'_>,
    key: TimerKey<'_>,
    armed: &Armed<'_>,
    report: &mut InvariantReport,
) {
    let (workflow_id, run_id, timer_id) = key;
    let due = armed.deadline.plus(
        input
            .config
            .timer_fire_bound_ms
            .saturating_mul(NANOS_PER_MS),
    );
    if input.final_read.read_at_ns < due {
        return;
    }
    let Some(replica) = input.index.reference(workflow_id, run_id) else {
        return; // Invariant 1 and 3 report a missing run.
    };
    let events = &replica.run.events;
    let Some(started) = timer_event(events, &EventType::TimerStarted, timer_id) else {
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!("acked timer {timer_id} has no TimerStarted in {workflow_id}/{run_id}"),
            )
            .op(armed.command),
        );
        return;
    };
    let settled = timer_event(events, &EventType::TimerFired, timer_id).is_some()
        || timer_event(events, &EventType::TimerCanceled, timer_id).is_some()
        || replica.run.terminal_event().is_some();
    if !settled {
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!(
                    "timer {timer_id} had not fired by the final read at {}, due by {due}",
                    input.final_read.read_at_ns
                ),
            )
            .op(armed.command)
            .event(WitnessEvent::in_final_read(
                replica.node,
                replica.group,
                workflow_id,
                run_id,
                started,
            )),
        );
    }
}

fn check_failed_timer_absent(
    input: &CheckInput<'_>,
    op: &Operation,
    key: TimerKey<'_>,
    report: &mut InvariantReport,
) {
    let (workflow_id, run_id, timer_id) = key;
    let Some(replica) = input.index.reference(workflow_id, run_id) else {
        return;
    };
    if let Some(started) = timer_event(&replica.run.events, &EventType::TimerStarted, timer_id) {
        report.violations.push(
            Violation::new(
                INVARIANT,
                format!("failed StartTimer {timer_id} was applied"),
            )
            .op(op)
            .event(WitnessEvent::in_final_read(
                replica.node,
                replica.group,
                workflow_id,
                run_id,
                started,
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::ids::EventId;

    fn fired_run() -> crate::history::FinalRead {
        FinalReadBuilder::new(&[1])
            .read_at(100_000 * MS)
            .run(
                "w1",
                "R1",
                vec![
                    started_ev(1, "r1"),
                    timer_started_ev(2, "t1", 1_000),
                    timer_fired_ev(3, "t1"),
                ],
            )
            .build()
    }

    #[test]
    fn a_timer_seen_fired_after_its_deadline_is_accepted() {
        let mut h = HistoryBuilder::new();
        h.ok(
            1,
            start_timer("w1", "R1", "t1", 1_000),
            None,
            1,
            (10 * MS, 20 * MS),
        );
        let fired = events(vec![
            started_ev(1, "r1"),
            timer_started_ev(2, "t1", 1_000),
            timer_fired_ev(3, "t1"),
        ]);
        h.ok(2, read("w1", "R1"), fired, 2, (500 * MS, 1_010 * MS));
        let report = check_one(INVARIANT, &h.build(), &fired_run());
        assert_valid(&report);
        assert_eq!(report.judged, 1);
    }

    #[test]
    fn a_timer_seen_fired_before_its_deadline_is_reported_even_if_the_command_was_info() {
        let mut h = HistoryBuilder::new();
        let command = h.info(
            1,
            start_timer("w1", "R1", "t1", 1_000),
            1,
            (10 * MS, 20 * MS),
        );
        let fired = events(vec![
            started_ev(1, "r1"),
            timer_started_ev(2, "t1", 1_000),
            timer_fired_ev(3, "t1"),
        ]);
        let early = h.ok(2, read("w1", "R1"), fired, 2, (500 * MS, 1_009 * MS));
        let report = check_one(INVARIANT, &h.build(), &fired_run());
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![command, early]);
        assert_eq!(violation.event_ids(), vec![EventId(3)]);
    }

    #[test]
    fn a_workflow_task_delivering_an_early_timer_is_reported() {
        let mut h = HistoryBuilder::new();
        let command = h.ok(
            1,
            start_timer("w1", "R1", "t1", 1_000),
            None,
            1,
            (10 * MS, 20 * MS),
        );
        let task = Some(OpValue::WorkflowTask {
            workflow_id: "w1".into(),
            run_id: "R1".into(),
            events: vec![timer_fired_ev(3, "t1")],
        });
        let early = h.ok(
            2,
            Op::PollWorkflowTask {
                task_queue: "q".into(),
            },
            task,
            2,
            (30 * MS, 40 * MS),
        );
        let report = check_one(INVARIANT, &h.build(), &fired_run());
        assert_eq!(single_violation(&report).op_ids(), vec![command, early]);
    }

    #[test]
    fn an_acked_timer_that_never_fired_by_the_final_read_is_reported() {
        let mut h = HistoryBuilder::new();
        let command = h.ok(
            1,
            start_timer("w1", "R1", "t1", 1_000),
            None,
            1,
            (10 * MS, 20 * MS),
        );
        let unfired = FinalReadBuilder::new(&[1]).read_at(100_000 * MS).run(
            "w1",
            "R1",
            vec![started_ev(1, "r1"), timer_started_ev(2, "t1", 1_000)],
        );
        let report = check_one(INVARIANT, &h.build(), &unfired.build());
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![command]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
        // A final read taken before the timer was due judges nothing.
        let early_read = FinalReadBuilder::new(&[1]).read_at(2_000 * MS).run(
            "w1",
            "R1",
            vec![started_ev(1, "r1"), timer_started_ev(2, "t1", 1_000)],
        );
        assert_valid(&check_one(INVARIANT, &h.build(), &early_read.build()));
    }

    #[test]
    fn a_failed_start_timer_must_leave_no_timer() {
        let mut h = HistoryBuilder::new();
        let failed = h.fail(
            1,
            start_timer("w1", "R1", "t1", 1_000),
            1,
            (10 * MS, 20 * MS),
        );
        let report = check_one(INVARIANT, &h.build(), &fired_run());
        let violation = single_violation(&report);
        assert_eq!(violation.op_ids(), vec![failed]);
        assert_eq!(violation.event_ids(), vec![EventId(2)]);
    }
}
