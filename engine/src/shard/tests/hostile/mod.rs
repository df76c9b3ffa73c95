//! Hostile property test: random sequences that mix the valid operations of
//! [`super::property`] with nonsense ([`garbage`]): unknown and closed workflows, stale, made-up
//! and bent task tokens, wrong event IDs, duplicate activity and timer IDs, empty and over-long
//! names, negative and out-of-range durations, NaN back-offs, unknown enum values, payloads past
//! the history size limit, outbox acks for nothing and leader clocks far off.
//!
//! A panic in `apply` would be a poison log entry: every replica applies the same entry, so one
//! bad request would crash the whole group in a loop. The properties, after every step:
//! * `apply` returns, with a reply (`Some`), and a refusal is a typed [`EngineError`].
//! * A refusal with no changes left the persisted records, tasks and timers untouched.
//! * The structural invariants of [`super::property::check_invariants`] hold, histories are
//!   contiguous from 1 with nothing after the close event (the harness), each run's last event
//!   agrees with its status, and no task is ready for a closed run.
//!
//! And over the whole log: every command survives the log encoding byte for byte; two fresh
//! replicas (one fed the decoded log, as a follower reads it) reply alike and end byte-identical;
//! a replica restored from the persisted records at a random cut continues identically.
//!
//! Reproduce a failure with `cargo test -p perdura-engine hostile` (proptest saves the case
//! under `engine/proptest-regressions/`).

mod build;
mod garbage;
mod regressions;

use super::property::{Driver, Op, check_invariants, encoded_records, op};
use crate::codec::versioned;
use crate::error::EngineError;
use crate::shard::events::is_close_event;
use crate::shard::{Applied, EngineLimits, MutableState, ShardCommand, ShardState};
use crate::token::TaskKind;
use garbage::{Garbage, garbage};
use proptest::prelude::*;
use temporalio_protos::temporal::api::enums::v1::{EventType, WorkflowExecutionStatus};

const REPRODUCE: &str = "reproduce with: cargo test -p perdura-engine hostile (the failing case is saved in engine/proptest-regressions/)";

/// Small limits, so that the generated payloads and sequences reach them.
pub(super) fn hostile_limits() -> EngineLimits {
    EngineLimits {
        max_history_events: 90,
        suggest_continue_as_new_events: 40,
        suggest_continue_as_new_bytes: 32 * 1024,
        warn_history_events: 70,
        warn_history_size_bytes: 96 * 1024,
        max_history_size_bytes: 192 * 1024,
        ..EngineLimits::default()
    }
}

#[derive(Clone, Debug)]
enum Step {
    Valid(Op),
    Garbage(Garbage),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => op().prop_map(Step::Valid),
        2 => garbage().prop_map(Step::Garbage),
    ]
}

/// Everything a refused command must leave as it was.
fn snapshot(state: &ShardState) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        encoded_records(state),
        state.pending_tasks(),
        state.next_timer_ms(),
        state.pending_outbox(),
    )
}

/// A bent token needs a started task to bend: start one (a valid poll) if none is.
fn ensure_started_task(driver: &mut Driver, garbage: &Garbage) {
    use garbage::Token::Bent;
    let (kind, pick) = match garbage {
        Garbage::CompleteWorkflowTask {
            token: Bent { pick, .. },
            ..
        }
        | Garbage::FailWorkflowTask {
            token: Bent { pick, .. },
            ..
        } => (TaskKind::Workflow, *pick),
        Garbage::ActivityRespond {
            token: Bent { pick, .. },
            ..
        } => (TaskKind::Activity, *pick),
        _ => return,
    };
    if build::live_tokens(&driver.h.state)
        .iter()
        .any(|t| t.kind == kind)
    {
        return;
    }
    driver.step(&match kind {
        TaskKind::Workflow => Op::PollWorkflowTask(pick),
        _ => Op::PollActivity(pick),
    });
}

/// Applies one nonsense command through the driver and checks what a refusal promises;
/// returns whether it was refused.
fn apply_garbage(driver: &mut Driver, garbage: &Garbage, serial: u32) -> bool {
    let kind = build::command_of(&driver.h.state, garbage, format!("g-run-{serial}"));
    let now = match garbage {
        Garbage::ClockJump(ms) => *ms,
        _ => driver.h.now_ms,
    };
    let before = snapshot(&driver.h.state);
    let applied = driver.run(now, kind);
    match &applied.reply {
        None => panic!("no reply to {garbage:?}; {REPRODUCE}"),
        Some(Err(error)) => {
            assert!(
                !matches!(error, EngineError::SlotMoved { .. }),
                "no slot moved here: {error:?}"
            );
            if applied.changes.is_empty() {
                assert_eq!(
                    before,
                    snapshot(&driver.h.state),
                    "a refusal ({error:?}) changed the state; {REPRODUCE}"
                );
            }
        }
        Some(Ok(_)) => return false,
    }
    true
}

/// The close event type a closed status requires.
fn close_event_of(status: i32) -> Option<EventType> {
    use WorkflowExecutionStatus as S;
    Some(match S::try_from(status).ok()? {
        S::Completed => EventType::WorkflowExecutionCompleted,
        S::Failed => EventType::WorkflowExecutionFailed,
        S::Canceled => EventType::WorkflowExecutionCanceled,
        S::Terminated => EventType::WorkflowExecutionTerminated,
        S::ContinuedAsNew => EventType::WorkflowExecutionContinuedAsNew,
        S::TimedOut => EventType::WorkflowExecutionTimedOut,
        _ => return None,
    })
}

/// Invariants that tie the state to the emitted histories.
fn check_histories(driver: &Driver) {
    let state = &driver.h.state;
    for ms in state.executions() {
        let history = driver.h.history(&ms.key);
        assert_eq!(history.len() as i64, ms.next_event_id - 1, "{}", ms.key);
        let last = history.last().expect("every run has its started event");
        if ms.is_running() {
            assert!(!is_close_event(last), "{}: running after a close", ms.key);
        } else {
            assert_eq!(
                Some(last.event_type),
                close_event_of(ms.status).map(|t| t as i32),
                "{}: the last event matches status {}; {REPRODUCE}",
                ms.key,
                ms.status
            );
        }
    }
    for task in state.pending_tasks() {
        let ms = state
            .execution(&task.execution)
            .expect("a task's run exists");
        assert!(ms.is_running(), "{}: a task of a closed run", ms.key);
    }
}

fn assert_same(a: &Applied, b: &Applied, step: usize) {
    assert_eq!(a.reply, b.reply, "reply of command {step}; {REPRODUCE}");
    assert_eq!(a.changes, b.changes, "changes of {step}; {REPRODUCE}");
    assert_eq!(a.notices, b.notices, "notices of {step}; {REPRODUCE}");
}

fn restored(state: &ShardState) -> ShardState {
    let executions: Vec<MutableState> = state
        .executions()
        .map(|ms| versioned::decode(&versioned::encode(ms).expect("encodes")).expect("decodes"))
        .collect();
    let runs = state
        .current_runs()
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    ShardState::restore_with_limits(hostile_limits(), state.clock_ms(), executions, runs)
}

/// The log as a follower reads it back: every command encoded and decoded; the bytes of the
/// re-encoding must equal the first.
fn through_codec(log: &[ShardCommand]) -> Vec<ShardCommand> {
    log.iter()
        .map(|command| {
            let bytes = versioned::encode(command).expect("a command encodes");
            let decoded: ShardCommand = versioned::decode(&bytes).expect("a command decodes");
            assert_eq!(
                versioned::encode(&decoded).expect("encodes"),
                bytes,
                "the log encoding is stable; {REPRODUCE}"
            );
            decoded
        })
        .collect()
}

fn replay(log: &[ShardCommand], driver_state: &ShardState, cut_per_mille: u16) {
    let decoded = through_codec(log);
    let mut a = ShardState::with_limits(hostile_limits());
    let mut b = ShardState::with_limits(hostile_limits());
    let cut = log.len() * usize::from(cut_per_mille) / 1000;
    let mut c: Option<ShardState> = None;
    for (step, (command, follower)) in log.iter().zip(decoded).enumerate() {
        if step == cut {
            c = Some(restored(&a));
        }
        let applied = a.apply(command.clone());
        assert_same(&applied, &b.apply(follower), step);
        if let Some(c) = c.as_mut() {
            assert_same(&applied, &c.apply(command.clone()), step);
        }
    }
    let end = encoded_records(&a);
    assert_eq!(end, encoded_records(&b), "replicas differ; {REPRODUCE}");
    assert_eq!(end, encoded_records(driver_state), "driver differs");
    if let Some(c) = &c {
        assert_eq!(end, encoded_records(c), "restored differs; {REPRODUCE}");
        assert_eq!(a.pending_tasks(), c.pending_tasks());
        assert_eq!(a.next_timer_ms(), c.next_timer_ms());
    }
}

/// Runs the steps; returns how many garbage commands were refused and accepted.
fn scenario(steps: &[Step], cut_per_mille: u16) -> (u32, u32) {
    let mut driver = Driver::with_state(ShardState::with_limits(hostile_limits()));
    let (mut refused, mut accepted) = (0, 0);
    // Three running workflows for the nonsense to land on.
    for workflow in 0..3 {
        driver.step(&Op::Start {
            workflow,
            request: 0,
            conflict: 0,
            run_timeout_s: None,
        });
    }
    for (serial, step) in (0u32..).zip(steps) {
        match step {
            Step::Valid(op) => driver.step(op),
            Step::Garbage(garbage) => {
                ensure_started_task(&mut driver, garbage);
                if apply_garbage(&mut driver, garbage, serial) {
                    refused += 1;
                } else {
                    accepted += 1;
                }
            }
        }
        check_invariants(&driver.h.state);
        check_histories(&driver);
    }
    replay(&driver.log, &driver.h.state, cut_per_mille);
    (refused, accepted)
}

/// 96 cases by default (a few seconds in debug); `PROPTEST_CASES=5000` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hostile_commands_never_panic_nor_corrupt_state(
        steps in proptest::collection::vec(step(), 1..70),
        cut in 0u16..=1000,
    ) {
        scenario(&steps, cut);
    }
}

/// Every kind of nonsense once, after a few valid steps, so a plain `cargo test` exercises all
/// of them even if proptest's draw misses one.
#[test]
fn hostile_fixed_scenario_refuses_every_kind_of_nonsense() {
    let steps = regressions::every_kind_of_nonsense();
    let (refused, accepted) = scenario(&steps, 500);
    assert!(refused > 10, "refused {refused}, accepted {accepted}");
}
