//! The fixed hostile scenario (every kind of nonsense at least once) and one regression test
//! per bug the hostile property test found, named after what it reproduces.

use super::Step;
use super::garbage::{
    BadCommand, BadMessage, Bend, Garbage, Name, Retry, RunPick, Span, Target, Token,
};
use crate::shard::tests::property::{CommandSpec, Op};

fn target(workflow: u8, run: RunPick) -> Target {
    Target {
        namespace: Name::Known(0),
        workflow: Name::Known(workflow),
        run,
    }
}

fn odd_retry() -> Retry {
    Retry {
        initial: Span::Max,
        maximum: Span::NegativeNanos,
        coefficient: f64::NAN,
        maximum_attempts: i32::MIN,
    }
}

fn bent(bend: Bend) -> Token {
    Token::Bent { pick: 0, bend }
}

fn start(workflow: Name, span: Span, input_len: u32) -> Garbage {
    Garbage::Start {
        namespace: Name::Known(0),
        workflow,
        workflow_type: Name::Known(0),
        task_queue: Name::Known(0),
        request_id: Name::Empty,
        input_len,
        run_timeout: span.clone(),
        execution_timeout: span.clone(),
        task_timeout: span.clone(),
        start_delay: span,
        conflict: 2,
        reuse: 77,
        cron: 2,
        retry: Some(odd_retry()),
    }
}

/// Every command of the workflow task completion kinds, each malformed.
fn bad_commands() -> Vec<BadCommand> {
    vec![
        BadCommand::Mismatched {
            command_type: 9_999,
            variant: 1,
        },
        BadCommand::Activity {
            id: Name::Known(0),
            activity_type: Name::Empty,
            task_queue: Name::Huge(2_000),
            schedule_to_close: Span::NegativeSeconds(-1),
            start_to_close: Span::Max,
            heartbeat: Span::NanosOverflow,
            retry: Some(odd_retry()),
            input_len: 3,
        },
        BadCommand::Timer {
            id: Name::Odd(1),
            after: Span::Max,
        },
        BadCommand::CancelTimer(Name::Huge(1_500)),
        BadCommand::CancelActivity(i64::MIN),
        BadCommand::SignalExternal {
            target: target(9, RunPick::Made(Name::Odd(2))),
            name: Name::Empty,
            input_len: 0,
        },
        BadCommand::CancelExternal(target(1, RunPick::Existing(3))),
        BadCommand::Marker {
            name: Name::Empty,
            details_len: 5,
        },
        BadCommand::Upsert {
            key: Name::Odd(3),
            data_len: 2,
            typed: true,
        },
        BadCommand::Protocol(Name::Known(2)),
        BadCommand::Child {
            namespace: Name::Known(2),
            id: Name::Empty,
            workflow_type: Name::Empty,
            policy: i32::MAX,
            run_timeout: Span::Max,
            retry: Some(odd_retry()),
        },
        BadCommand::ContinueAsNew {
            workflow_type: Name::Empty,
            task_queue: Name::Empty,
            backoff: Span::Max,
            run_timeout: Span::NegativeNanos,
            input_len: 0,
        },
        BadCommand::Fail {
            failure: false,
            message_len: 0,
        },
        BadCommand::Complete { result_len: 70_000 },
        BadCommand::Cancel,
    ]
}

pub(super) fn every_kind_of_nonsense() -> Vec<Step> {
    let mut steps = vec![
        Step::Valid(Op::Start {
            workflow: 0,
            request: 0,
            conflict: 0,
            run_timeout_s: None,
        }),
        Step::Garbage(start(Name::Empty, Span::Unset, 0)),
        Step::Garbage(start(Name::Huge(1_001), Span::Unset, 0)),
        Step::Garbage(start(Name::Known(1), Span::Max, 10)),
        Step::Garbage(start(Name::Odd(7), Span::NegativeSeconds(i64::MIN), 0)),
        Step::Garbage(start(Name::Known(2), Span::NanosOverflow, 150_000)),
        Step::Valid(Op::PollWorkflowTask(0)),
        Step::Valid(Op::CompleteWorkflowTask {
            pick: 1,
            commands: vec![
                CommandSpec::Activity {
                    id: 0,
                    start_to_close_ms: 5_000,
                    schedule_to_start_ms: None,
                    heartbeat_ms: Some(1_000),
                    max_attempts: 3,
                },
                CommandSpec::Timer {
                    id: 0,
                    after_ms: 1_000,
                },
            ],
            force_new_task: false,
            update_replies: 0,
            sticky: None,
        }),
        Step::Valid(Op::PollActivity(0)),
    ];
    for bend in [
        Bend::ScheduledEventId(i64::MAX),
        Bend::StartedEventId(-1),
        Bend::Attempt(i32::MIN),
        Bend::Kind,
        Bend::Namespace,
    ] {
        for how in 0..4 {
            steps.push(Step::Garbage(Garbage::ActivityRespond {
                token: bent(bend.clone()),
                how,
                payload_len: 100_000,
                retry_delay: Span::NegativeNanos,
            }));
        }
    }
    steps.extend([
        Step::Garbage(Garbage::RecordTaskStarted {
            activity: false,
            run: RunPick::Existing(0),
            scheduled_event_id: i64::MIN,
        }),
        Step::Garbage(Garbage::RecordTaskStarted {
            activity: true,
            run: RunPick::Made(Name::Huge(1_200)),
            scheduled_event_id: 5,
        }),
        Step::Garbage(Garbage::Signal {
            target: target(0, RunPick::Made(Name::Odd(0))),
            name: Name::Huge(2_000),
            request_id: Name::Empty,
            input_len: 200_000,
        }),
        Step::Garbage(Garbage::Signal {
            target: target(0, RunPick::Current),
            name: Name::Empty,
            request_id: Name::Known(0),
            input_len: 1,
        }),
        Step::Garbage(Garbage::Update {
            target: target(0, RunPick::Current),
            update_id: Name::Empty,
            name: Name::Empty,
            first_execution_run: Name::Odd(1),
        }),
        Step::Garbage(Garbage::Update {
            target: target(0, RunPick::Current),
            update_id: Name::Huge(1_100),
            name: Name::Known(0),
            first_execution_run: Name::Empty,
        }),
        Step::Valid(Op::Advance(1_500)),
        Step::Valid(Op::PollWorkflowTask(0)),
        Step::Garbage(Garbage::CompleteWorkflowTask {
            token: bent(Bend::None),
            commands: bad_commands(),
            messages: (0u8..5)
                .map(|body| BadMessage {
                    id: Name::Known(body),
                    instance: Name::Odd(body),
                    body,
                })
                .collect(),
            sticky: Some((Name::Empty, Span::NegativeSeconds(-5))),
        }),
    ]);
    // Each malformed command alone against a live workflow task.
    for command in bad_commands() {
        steps.extend([
            Step::Valid(Op::Signal {
                workflow: 0,
                request: 9,
            }),
            Step::Valid(Op::PollWorkflowTask(0)),
            Step::Garbage(Garbage::CompleteWorkflowTask {
                token: bent(Bend::None),
                commands: vec![command],
                messages: Vec::new(),
                sticky: None,
            }),
        ]);
    }
    steps.extend([
        Step::Garbage(Garbage::FailWorkflowTask {
            token: Token::Made {
                workflow: Name::Known(0),
                run: Name::Empty,
                activity: true,
                scheduled_event_id: 0,
                started_event_id: 0,
                attempt: 0,
            },
            cause: -1,
        }),
        Step::Garbage(Garbage::SignalWithStart {
            namespace: Name::Known(0),
            workflow: Name::Known(1),
            workflow_type: Name::Empty,
            task_queue: Name::Empty,
            signal: Name::Empty,
            request_id: Name::Empty,
            input_len: 0,
            conflict: i32::MIN,
        }),
        Step::Garbage(Garbage::StartWithUpdate {
            workflow: Name::Known(3),
            task_queue: Name::Known(0),
            update_id: Name::Empty,
            conflict: 1,
            update_target: Name::Known(1),
        }),
        Step::Garbage(Garbage::ShutdownWorker {
            namespace: Name::Empty,
            queue: Name::Huge(1_001),
        }),
        Step::Garbage(Garbage::BogusAck {
            run: RunPick::Existing(0),
            outbox_id: -1,
            kind: 3,
            outcome: 1,
        }),
        Step::Garbage(Garbage::RequestCancel {
            target: target(2, RunPick::Existing(1)),
            first_execution_run: Name::Known(1),
        }),
        Step::Garbage(Garbage::Terminate(target(0, RunPick::Existing(0)))),
        Step::Garbage(Garbage::Terminate(target(0, RunPick::Existing(0)))),
        Step::Garbage(Garbage::ClockJump(253_402_300_799_000)),
        Step::Garbage(Garbage::ClockJump(i64::MIN)),
        Step::Garbage(Garbage::ClockJump(i64::MAX)),
        Step::Garbage(start(Name::Known(1), Span::Millis(5), 1)),
        Step::Valid(Op::PollWorkflowTask(0)),
        Step::Valid(Op::Advance(10_000)),
    ]);
    steps
}

/// Found by the hostile property test: a command stamped with a leader time near `i64::MAX`
/// overflowed `start + run timeout` while creating a run (a poison log entry: every replica
/// panics on it). The engine now clamps its clock to the last protobuf timestamp.
#[test]
fn a_leader_clock_near_i64_max_is_clamped_not_an_overflow() {
    use crate::shard::tests::{Harness, start_request};
    use crate::shard::{ShardCommand, ShardCommandKind, ShardReply};
    let mut h = Harness::new();
    let mut request = start_request("wf-far", "req-far");
    request.workflow_run_timeout = Some(crate::shard::time::duration(60_000));
    request.workflow_execution_timeout = Some(crate::shard::time::duration(120_000));
    let applied = h.state.apply(ShardCommand {
        now_ms: i64::MAX,
        kind: ShardCommandKind::StartWorkflow {
            request,
            run_id: "run-far".into(),
        },
    });
    assert!(
        matches!(applied.reply, Some(Ok(ShardReply::WorkflowStarted { .. }))),
        "{:?}",
        applied.reply
    );
    assert_eq!(h.state.clock_ms(), crate::shard::time::MAX_CLOCK_MS);
    let fire = h.state.apply(ShardCommand {
        now_ms: i64::MAX,
        kind: ShardCommandKind::FireTimers,
    });
    assert!(matches!(fire.reply, Some(Ok(_))), "{:?}", fire.reply);
}
