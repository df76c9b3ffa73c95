//! The workflow the workload's worker runs, as a pure function from a run's history to the
//! commands of its next workflow task (no SDK, no replay: the history is the whole state).
//!
//! Each run follows a plan drawn from a seed of its workflow and run IDs: 1–3 steps, each an
//! activity, a short timer or (top-level runs only) a child workflow, one at a time; then it
//! completes with a result unique to the run, fails, or — the first run of a chain whose workflow
//! ID allows it ([`may_continue_as_new`]) — continues as new. A task that finds a step still
//! pending answers with no commands (signals wake the workflow without changing its plan).
//!
//! Conventions the checkers rely on: activity IDs (`a<step>`) and timer IDs (`t<step>`) are
//! unique within a run; completion results name their run.

use super::payload;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes,
    ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes, StartChildWorkflowExecutionCommandAttributes,
    StartTimerCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::{ActivityType, RetryPolicy, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{CommandType, TaskQueueKind};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

/// The workflow type the workload starts.
pub const WORKFLOW_TYPE: &str = "chaos-workflow";
/// The activity type it schedules.
pub const ACTIVITY_TYPE: &str = "chaos-activity";
/// The workflow task timeout of every run: a task lost with its poller is retried soon.
pub const WORKFLOW_TASK_TIMEOUT: Duration = Duration::from_secs(2);
/// An activity not answered within this is timed out (and retried, up to 3 attempts).
pub const ACTIVITY_START_TO_CLOSE: Duration = Duration::from_secs(3);

/// 64-bit FNV-1a, the workload's stable hash (seeds plans from IDs).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Whether runs of this workflow ID may continue as new (one in four IDs). The workload never
/// retries a start request of such a workflow: after a continue-as-new a retried request ID
/// would start another run.
pub fn may_continue_as_new(workflow_id: &str) -> bool {
    fnv1a(&[workflow_id, "can"]).is_multiple_of(4)
}

pub fn duration(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub fn task_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Normal as i32,
        ..Default::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Activity,
    Timer { duration_ms: u64 },
    Child,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    Complete,
    Fail,
    ContinueAsNew,
}

/// What the run's history says so far.
#[derive(Default)]
struct Progress {
    issued: usize,
    pending: usize,
    is_child: bool,
    is_continuation: bool,
}

fn progress(history: &[HistoryEvent]) -> Progress {
    let mut out = Progress::default();
    let mut activities = BTreeSet::new();
    let mut timers = BTreeSet::new();
    let mut children = BTreeSet::new();
    for event in history {
        let Some(attributes) = &event.attributes else {
            continue;
        };
        match attributes {
            Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                out.is_child = a.parent_workflow_execution.is_some();
                out.is_continuation = !a.continued_execution_run_id.is_empty();
            }
            Attributes::ActivityTaskScheduledEventAttributes(_) => {
                out.issued += 1;
                activities.insert(event.event_id);
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskFailedEventAttributes(a) => {
                activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskCanceledEventAttributes(a) => {
                activities.remove(&a.scheduled_event_id);
            }
            Attributes::TimerStartedEventAttributes(a) => {
                out.issued += 1;
                timers.insert(a.timer_id.clone());
            }
            Attributes::TimerFiredEventAttributes(a) => {
                timers.remove(&a.timer_id);
            }
            Attributes::TimerCanceledEventAttributes(a) => {
                timers.remove(&a.timer_id);
            }
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
                out.issued += 1;
                children.insert(event.event_id);
            }
            Attributes::StartChildWorkflowExecutionFailedEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
                children.remove(&a.initiated_event_id);
            }
            _ => {}
        }
    }
    out.pending = activities.len() + timers.len() + children.len();
    out
}

/// Durations of a plan's short and long timers.
const SHORT_TIMER_MS: std::ops::RangeInclusive<u64> = 50..=400;
const LONG_TIMER_MS: std::ops::RangeInclusive<u64> = 1_000..=4_000;

/// The run's plan, drawn afresh (identically) on every task from its IDs.
fn plan(workflow_id: &str, run_id: &str, progress: &Progress) -> (Vec<Step>, Finish) {
    let mut rng = StdRng::seed_from_u64(fnv1a(&[workflow_id, run_id]));
    let count = rng.random_range(1..=3);
    let steps = (0..count)
        .map(|_| match rng.random_range(0..100) {
            0..50 => Step::Activity,
            // Mostly short timers; some long enough that one fired early by a leader's clock
            // jumping ahead is seen before it was due (invariant 5).
            50..78 => Step::Timer {
                duration_ms: rng.random_range(SHORT_TIMER_MS),
            },
            78..88 => Step::Timer {
                duration_ms: rng.random_range(LONG_TIMER_MS),
            },
            _ if progress.is_child => Step::Activity,
            _ => Step::Child,
        })
        .collect();
    let finish = match rng.random_range(0..100) {
        0..10 => Finish::Fail,
        10..45
            if may_continue_as_new(workflow_id)
                && !progress.is_child
                && !progress.is_continuation =>
        {
            Finish::ContinueAsNew
        }
        _ => Finish::Complete,
    };
    (steps, finish)
}

/// The commands of one workflow task, and the timer among them (at most one).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub commands: Vec<Command>,
    pub timer: Option<(String, u64)>,
}

/// The next workflow task's answer for run `(workflow_id, run_id)` of `history` (its whole
/// history so far), its activities, timers and children going to `queue`.
pub fn decide(workflow_id: &str, run_id: &str, queue: &str, history: &[HistoryEvent]) -> Decision {
    let progress = progress(history);
    let none = Decision {
        commands: Vec::new(),
        timer: None,
    };
    if progress.pending > 0 {
        return none;
    }
    let (steps, finish) = plan(workflow_id, run_id, &progress);
    if let Some(step) = steps.get(progress.issued) {
        let n = progress.issued + 1;
        return match *step {
            Step::Activity => Decision {
                commands: vec![schedule_activity(&format!("a{n}"), queue)],
                timer: None,
            },
            Step::Timer { duration_ms } => {
                let timer_id = format!("t{n}");
                Decision {
                    commands: vec![start_timer(&timer_id, duration_ms)],
                    timer: Some((timer_id, duration_ms)),
                }
            }
            Step::Child => Decision {
                commands: vec![start_child(workflow_id, run_id, n, queue)],
                timer: None,
            },
        };
    }
    let command = match finish {
        Finish::Complete => Command {
            command_type: CommandType::CompleteWorkflowExecution as i32,
            attributes: Some(
                command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes {
                        result: Some(payload::encode(&format!("done:{workflow_id}:{run_id}"))),
                    },
                ),
            ),
            ..Default::default()
        },
        Finish::Fail => Command {
            command_type: CommandType::FailWorkflowExecution as i32,
            attributes: Some(command::Attributes::FailWorkflowExecutionCommandAttributes(
                FailWorkflowExecutionCommandAttributes {
                    failure: Some(Failure {
                        message: format!("planned failure of {workflow_id}/{run_id}"),
                        ..Default::default()
                    }),
                },
            )),
            ..Default::default()
        },
        Finish::ContinueAsNew => Command {
            command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
            attributes: Some(
                command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
                    ContinueAsNewWorkflowExecutionCommandAttributes {
                        workflow_type: Some(WorkflowType {
                            name: WORKFLOW_TYPE.to_owned(),
                        }),
                        task_queue: Some(task_queue(queue)),
                        input: Some(payload::encode(&format!("continued:{run_id}"))),
                        workflow_task_timeout: Some(duration(WORKFLOW_TASK_TIMEOUT)),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        },
    };
    Decision {
        commands: vec![command],
        timer: None,
    }
}

fn schedule_activity(activity_id: &str, queue: &str) -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: activity_id.to_owned(),
                activity_type: Some(ActivityType {
                    name: ACTIVITY_TYPE.to_owned(),
                }),
                task_queue: Some(task_queue(queue)),
                start_to_close_timeout: Some(duration(ACTIVITY_START_TO_CLOSE)),
                retry_policy: Some(RetryPolicy {
                    initial_interval: Some(duration(Duration::from_millis(100))),
                    backoff_coefficient: 1.0,
                    maximum_attempts: 3,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn start_timer(timer_id: &str, duration_ms: u64) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(command::Attributes::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: timer_id.to_owned(),
                start_to_fire_timeout: Some(duration(Duration::from_millis(duration_ms))),
            },
        )),
        ..Default::default()
    }
}

fn start_child(workflow_id: &str, run_id: &str, step: usize, queue: &str) -> Command {
    let short_run: String = run_id.chars().take(8).collect();
    Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: format!("{workflow_id}.c{step}.{short_run}"),
                    workflow_type: Some(WorkflowType {
                        name: WORKFLOW_TYPE.to_owned(),
                    }),
                    task_queue: Some(task_queue(queue)),
                    input: Some(payload::encode(&format!("child-of:{run_id}"))),
                    workflow_task_timeout: Some(duration(WORKFLOW_TASK_TIMEOUT)),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::history::v1::{
        ActivityTaskCompletedEventAttributes, ActivityTaskScheduledEventAttributes,
        ChildWorkflowExecutionCompletedEventAttributes, TimerFiredEventAttributes,
        TimerStartedEventAttributes, WorkflowExecutionStartedEventAttributes,
    };

    fn event(event_id: i64, attributes: Attributes) -> HistoryEvent {
        HistoryEvent {
            event_id,
            attributes: Some(attributes),
            ..Default::default()
        }
    }

    /// Runs a plan to its end, answering each step as the server would.
    fn run_to_end(workflow_id: &str, run_id: &str) -> Vec<Decision> {
        let mut history = vec![event(
            1,
            Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes::default(),
            ),
        )];
        let mut decisions = Vec::new();
        for _ in 0..10 {
            let decision = decide(workflow_id, run_id, "q", &history);
            let next = history.len() as i64 + 1;
            let done = decision.commands.iter().any(|c| {
                !matches!(
                    c.attributes,
                    Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
                        _
                    )) | Some(command::Attributes::StartTimerCommandAttributes(_))
                        | Some(
                            command::Attributes::StartChildWorkflowExecutionCommandAttributes(_)
                        )
                )
            });
            for command in &decision.commands {
                match &command.attributes {
                    Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) => {
                        history.push(event(
                            next,
                            Attributes::ActivityTaskScheduledEventAttributes(
                                ActivityTaskScheduledEventAttributes {
                                    activity_id: a.activity_id.clone(),
                                    ..Default::default()
                                },
                            ),
                        ));
                        history.push(event(
                            next + 1,
                            Attributes::ActivityTaskCompletedEventAttributes(
                                ActivityTaskCompletedEventAttributes {
                                    scheduled_event_id: next,
                                    ..Default::default()
                                },
                            ),
                        ));
                    }
                    Some(command::Attributes::StartTimerCommandAttributes(a)) => {
                        history.push(event(
                            next,
                            Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                                timer_id: a.timer_id.clone(),
                                ..Default::default()
                            }),
                        ));
                        history.push(event(
                            next + 1,
                            Attributes::TimerFiredEventAttributes(TimerFiredEventAttributes {
                                timer_id: a.timer_id.clone(),
                                ..Default::default()
                            }),
                        ));
                    }
                    Some(command::Attributes::StartChildWorkflowExecutionCommandAttributes(_)) => {
                        history.push(event(
                            next,
                            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(
                                Default::default(),
                            ),
                        ));
                        history.push(event(
                            next + 1,
                            Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                                ChildWorkflowExecutionCompletedEventAttributes {
                                    initiated_event_id: next,
                                    ..Default::default()
                                },
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            decisions.push(decision);
            if done {
                break;
            }
        }
        decisions
    }

    #[test]
    fn a_plan_is_stable_has_unique_ids_and_ends() {
        let mut durations = Vec::new();
        for n in 0..40 {
            let workflow_id = format!("wf-{n}");
            let decisions = run_to_end(&workflow_id, "run-1");
            assert_eq!(
                decisions,
                run_to_end(&workflow_id, "run-1"),
                "deterministic"
            );
            let last = decisions.last().expect("a decision");
            assert!(
                last.commands.len() == 1 && last.timer.is_none(),
                "{workflow_id} ends with one closing command: {last:?}"
            );
            let timers: Vec<_> = decisions.iter().filter_map(|d| d.timer.clone()).collect();
            let unique: BTreeSet<_> = timers.iter().map(|(id, _)| id.clone()).collect();
            assert_eq!(unique.len(), timers.len());
            assert!(
                timers
                    .iter()
                    .all(|(_, ms)| SHORT_TIMER_MS.contains(ms) || LONG_TIMER_MS.contains(ms))
            );
            durations.extend(timers.into_iter().map(|(_, ms)| ms));
        }
        assert!(durations.iter().any(|ms| SHORT_TIMER_MS.contains(ms)));
        assert!(durations.iter().any(|ms| LONG_TIMER_MS.contains(ms)));
    }

    #[test]
    fn a_pending_step_gets_no_commands() {
        let history = vec![
            event(
                1,
                Attributes::WorkflowExecutionStartedEventAttributes(
                    WorkflowExecutionStartedEventAttributes::default(),
                ),
            ),
            event(
                2,
                Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                    timer_id: "t1".into(),
                    ..Default::default()
                }),
            ),
        ];
        assert!(decide("w", "r", "q", &history).commands.is_empty());
    }
}
