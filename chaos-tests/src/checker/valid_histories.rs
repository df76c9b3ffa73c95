//! Property test: histories produced by a correct reference model of the cluster pass all nine
//! checkers, and corrupting one replica of such a final read is always caught.
//!
//! The model runs operations one at a time on the harness clock (so every real-time order is
//! known), appends each event with the next Raft index, and gives every node the same final read.

use super::testkit::*;
use super::{CheckConfig, Invariant, check_all};
use crate::history::*;
use crate::ids::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    Start {
        workflow: u8,
    },
    RetryStart {
        workflow: u8,
    },
    Signal {
        workflow: u8,
        indeterminate: bool,
        applied: bool,
    },
    Activity {
        workflow: u8,
    },
    Timer {
        workflow: u8,
        duration_ms: u16,
    },
    Close {
        workflow: u8,
    },
    Read {
        workflow: u8,
        node: u8,
    },
    Describe {
        workflow: u8,
    },
    Status {
        node: u8,
    },
    KillAndRestart {
        node: u8,
    },
    Wait {
        ms: u16,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let w = 0u8..3;
    prop_oneof![
        w.clone().prop_map(|workflow| Action::Start { workflow }),
        w.clone()
            .prop_map(|workflow| Action::RetryStart { workflow }),
        (w.clone(), any::<bool>(), any::<bool>()).prop_map(|(workflow, indeterminate, applied)| {
            Action::Signal {
                workflow,
                indeterminate,
                applied,
            }
        }),
        w.clone().prop_map(|workflow| Action::Activity { workflow }),
        (w.clone(), 1u16..5_000).prop_map(|(workflow, duration_ms)| Action::Timer {
            workflow,
            duration_ms
        }),
        w.clone().prop_map(|workflow| Action::Close { workflow }),
        (w.clone(), 1u8..4).prop_map(|(workflow, node)| Action::Read { workflow, node }),
        w.prop_map(|workflow| Action::Describe { workflow }),
        (1u8..4).prop_map(|node| Action::Status { node }),
        (1u8..4).prop_map(|node| Action::KillAndRestart { node }),
        (1u16..3_000).prop_map(|ms| Action::Wait { ms }),
    ]
}

struct ModelRun {
    workflow_id: String,
    run_id: String,
    request_id: String,
    events: Vec<ObservedEvent>,
    /// Timers armed and not yet fired: (timer id, deadline on the harness clock).
    pending_timers: Vec<(String, u64)>,
}

impl ModelRun {
    fn is_open(&self) -> bool {
        self.events
            .last()
            .is_none_or(|e| !e.event_type.is_terminal())
    }
}

#[derive(Default)]
struct Model {
    history: HistoryBuilder,
    runs: Vec<ModelRun>,
    now_ns: u64,
    raft_index: u64,
    next_id: u64,
}

impl Model {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// The time span of the next operation: 1 ms, after which the clock moves on.
    fn span(&mut self) -> (u64, u64) {
        let start = self.now_ns;
        self.now_ns += MS;
        self.fire_due_timers();
        (start, start + MS)
    }

    fn append(&mut self, run: usize, mut event: ObservedEvent) {
        self.raft_index += 1;
        let events = &mut self.runs[run].events;
        event.event_id = EventId(events.len() as u64 + 1);
        event.raft_index = Some(RaftIndex(self.raft_index));
        events.push(event);
    }

    fn fire_due_timers(&mut self) {
        for run in 0..self.runs.len() {
            if !self.runs[run].is_open() {
                continue;
            }
            let (due, pending): (Vec<_>, Vec<_>) = self.runs[run]
                .pending_timers
                .drain(..)
                .partition(|(_, deadline)| *deadline <= self.now_ns);
            self.runs[run].pending_timers = pending;
            for (timer, _) in due {
                self.append(run, timer_fired_ev(0, &timer));
            }
        }
    }

    fn open_run(&self, workflow: u8) -> Option<usize> {
        let wid = format!("w{workflow}");
        self.runs
            .iter()
            .rposition(|r| r.workflow_id == wid && r.is_open())
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Start { workflow } => self.start(workflow),
            Action::RetryStart { workflow } => {
                if let Some(run) = self.open_run(workflow) {
                    let (wid, req, rid) = {
                        let r = &self.runs[run];
                        (
                            r.workflow_id.clone(),
                            r.request_id.clone(),
                            r.run_id.clone(),
                        )
                    };
                    let t = self.span();
                    self.history.ok(1, start(&wid, &req), started(&rid), 1, t);
                }
            }
            Action::Signal {
                workflow,
                indeterminate,
                applied,
            } => self.signal(workflow, indeterminate, applied),
            Action::Activity { workflow } => self.activity(workflow),
            Action::Timer {
                workflow,
                duration_ms,
            } => {
                if let Some(run) = self.open_run(workflow) {
                    let timer = self.fresh("t");
                    let (wid, rid) = (
                        self.runs[run].workflow_id.clone(),
                        self.runs[run].run_id.clone(),
                    );
                    let t = self.span();
                    self.append(run, timer_started_ev(0, &timer, duration_ms.into()));
                    self.history.ok(
                        2,
                        start_timer(&wid, &rid, &timer, duration_ms.into()),
                        None,
                        2,
                        t,
                    );
                    self.runs[run]
                        .pending_timers
                        .push((timer, t.0 + u64::from(duration_ms) * MS));
                }
            }
            Action::Close { workflow } => {
                if let Some(run) = self.open_run(workflow) {
                    let result = format!("result of {}", self.runs[run].run_id);
                    self.append(run, completed_ev(0, &result));
                    self.runs[run].pending_timers.clear();
                }
            }
            Action::Read { workflow, node } => {
                if let Some(run) = self
                    .runs
                    .iter()
                    .rposition(|r| r.workflow_id == format!("w{workflow}"))
                {
                    let (wid, rid, seen) = {
                        let r = &self.runs[run];
                        (r.workflow_id.clone(), r.run_id.clone(), r.events.clone())
                    };
                    let t = self.span();
                    self.history
                        .ok(3, read(&wid, &rid), events(seen), node.into(), t);
                }
            }
            Action::Describe { workflow } => self.describe(workflow),
            Action::Status { node } => {
                let t = self.span();
                self.history.ok(
                    4,
                    Op::RaftStatus,
                    raft_status(&[(1, self.raft_index)]),
                    node.into(),
                    t,
                );
            }
            Action::KillAndRestart { node } => {
                let t = self.span();
                self.history.ok(
                    9,
                    nemesis(NemesisAction::Inject, FaultKind::Kill, &[node.into()]),
                    None,
                    0,
                    t,
                );
                self.now_ns += 500 * MS;
                let t = self.span();
                self.history.ok(
                    9,
                    nemesis(NemesisAction::Heal, FaultKind::Kill, &[node.into()]),
                    None,
                    0,
                    t,
                );
            }
            Action::Wait { ms } => {
                self.now_ns += u64::from(ms) * MS;
                self.fire_due_timers();
            }
        }
    }

    fn start(&mut self, workflow: u8) {
        let wid = format!("w{workflow}");
        let req = self.fresh("req");
        let t = self.span();
        if self.open_run(workflow).is_some() {
            self.history.fail(1, start(&wid, &req), 1, t);
            return;
        }
        let rid = self.fresh("run");
        self.runs.push(ModelRun {
            workflow_id: wid.clone(),
            run_id: rid.clone(),
            request_id: req.clone(),
            events: Vec::new(),
            pending_timers: Vec::new(),
        });
        let run = self.runs.len() - 1;
        self.append(run, started_ev(0, &req));
        self.history.ok(1, start(&wid, &req), started(&rid), 1, t);
    }

    fn signal(&mut self, workflow: u8, indeterminate: bool, applied: bool) {
        let wid = format!("w{workflow}");
        let req = self.fresh("sig");
        let value = format!("value of {req}");
        let t = self.span();
        match self.open_run(workflow) {
            None => {
                self.history.fail(5, signal(&wid, &req, &value), 1, t);
            }
            Some(run) => {
                if !indeterminate || applied {
                    self.append(run, signaled_ev(0, &value));
                }
                if indeterminate {
                    // Indeterminate outcomes come from faults: a partition around the signal
                    // keeps liveness from judging it.
                    let partition = nemesis(NemesisAction::Inject, FaultKind::Partition, &[]);
                    self.history.ok(9, partition, None, 0, (t.0, t.0));
                    self.history.info(5, signal(&wid, &req, &value), 1, t);
                    let heal = nemesis(NemesisAction::Heal, FaultKind::Partition, &[]);
                    self.history.ok(9, heal, None, 0, (t.1, t.1));
                } else {
                    self.history.ok(5, signal(&wid, &req, &value), None, 1, t);
                }
            }
        }
    }

    fn activity(&mut self, workflow: u8) {
        let Some(run) = self.open_run(workflow) else {
            return;
        };
        let activity = self.fresh("a");
        let (wid, rid) = (
            self.runs[run].workflow_id.clone(),
            self.runs[run].run_id.clone(),
        );
        self.append(run, scheduled_ev(0, &activity));
        let scheduled = self.runs[run].events.len() as u64;
        let t = self.span();
        self.append(run, activity_started_ev(0, scheduled));
        self.history.ok(
            6,
            poll_activity(),
            activity_task(&wid, &rid, &activity),
            2,
            t,
        );
        let result = format!("result of {activity}");
        let t = self.span();
        self.append(run, activity_completed_ev(0, scheduled, &result));
        self.history.ok(
            6,
            complete_activity(&wid, &rid, &activity, &result),
            None,
            2,
            t,
        );
    }

    fn describe(&mut self, workflow: u8) {
        let Some(run) = self
            .runs
            .iter()
            .rposition(|r| r.workflow_id == format!("w{workflow}"))
        else {
            return;
        };
        let r = &self.runs[run];
        let (wid, rid) = (r.workflow_id.clone(), r.run_id.clone());
        let value = match r.events.last().filter(|e| e.event_type.is_terminal()) {
            Some(close) => outcome(
                &rid,
                RunStatus::Completed,
                close.attributes.result.as_deref(),
            ),
            None => outcome(&rid, RunStatus::Running, None),
        };
        let t = self.span();
        self.history.ok(7, describe(&wid, &rid), value, 3, t);
    }

    /// Lets every armed timer come due, then reads every node.
    fn final_read(&mut self) -> FinalRead {
        self.now_ns += 100_000 * MS;
        self.fire_due_timers();
        let committed: Vec<LogEntryId> = (1..=self.raft_index)
            .map(|i| LogEntryId {
                index: RaftIndex(i),
                term: RaftTerm(1),
                hash: format!("h{i}"),
            })
            .collect();
        let mut builder = FinalReadBuilder::new(&[1, 2, 3]).read_at(self.now_ns);
        for node in 1..=3 {
            let group = builder.group_mut(node);
            group.applied_index = RaftIndex(self.raft_index);
            group.state_digest = format!("state at {}", self.raft_index);
            group.committed = committed.clone();
        }
        for run in &self.runs {
            builder = builder.run(&run.workflow_id, &run.run_id, run.events.clone());
        }
        builder.build()
    }
}

fn model_history(actions: Vec<Action>) -> (History, FinalRead) {
    let mut model = Model {
        now_ns: MS,
        ..Model::default()
    };
    for action in actions {
        model.apply(action);
    }
    let final_read = model.final_read();
    (model.history.build(), final_read)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn histories_of_a_correct_model_pass_every_checker(actions in prop::collection::vec(action(), 1..120)) {
        let (history, final_read) = model_history(actions);
        let summary = check_all(&history, &final_read, &CheckConfig::default());
        prop_assert!(summary.valid, "{summary}");
    }

    #[test]
    fn dropping_an_event_from_one_replica_is_caught(
        actions in prop::collection::vec(action(), 1..60),
        pick in any::<prop::sample::Index>(),
    ) {
        let (history, mut final_read) = model_history(actions);
        let runs = &mut final_read.nodes[1].groups[0].runs;
        let events: usize = runs.iter().map(|r| r.events.len()).sum();
        prop_assume!(events > 0);
        let mut victim = pick.index(events);
        for run in runs.iter_mut() {
            if victim < run.events.len() {
                run.events.remove(victim);
                break;
            }
            victim -= run.events.len();
        }
        let summary = check_all(&history, &final_read, &CheckConfig::default());
        let shape = summary.of(Invariant::HistoryShape).map_or(0, |s| s.violation_count);
        prop_assert!(shape > 0, "{summary}");
    }
}

#[test]
fn the_model_exercises_every_invariant() {
    use Action::*;
    let actions = vec![
        Start { workflow: 0 },
        RetryStart { workflow: 0 },
        Start { workflow: 0 },
        Signal {
            workflow: 0,
            indeterminate: false,
            applied: true,
        },
        Activity { workflow: 0 },
        Timer {
            workflow: 0,
            duration_ms: 100,
        },
        Read {
            workflow: 0,
            node: 2,
        },
        Wait { ms: 200 },
        Read {
            workflow: 0,
            node: 3,
        },
        Status { node: 1 },
        Wait { ms: 20_000 },
        KillAndRestart { node: 3 },
        Close { workflow: 0 },
        Describe { workflow: 0 },
        Status { node: 1 },
    ];
    let (history, final_read) = model_history(actions);
    let summary = check_all(&history, &final_read, &CheckConfig::default());
    assert!(summary.valid, "{summary}");
    for invariant in summary.invariants {
        assert!(invariant.judged > 0, "{} judged nothing", invariant.title);
    }
}
