//! Property tests: random but valid command sequences (starts, polls, completions with random
//! command lists, activity failures and completions, stale tokens, timer firings at random
//! increasing times).
//!
//! * Two fresh replicas that apply the same log reply alike, emit the same histories and end in
//!   byte-identical persisted records.
//! * Every history has contiguous event IDs and nothing after its close event (checked by the
//!   harness on every apply), and the state invariants hold after every command.
//! * `restore()` from the persisted records of a replica, cut at a random point, behaves like
//!   the replica for the rest of the log.
//!
//! A failure prints the minimal failing operation list; proptest stores it under
//! `engine/proptest-regressions/` and replays it first, so `cargo test -p perdura-engine
//! property` reproduces it.

use super::*;
use crate::codec::versioned;
use crate::shard::{ActivityPhase, MutableState, UpdatePhase};
use crate::token::TaskKind;
use proptest::prelude::*;
use std::collections::BTreeSet;
use temporalio_protos::temporal::api::{
    command::v1::{
        SignalExternalWorkflowExecutionCommandAttributes,
        StartChildWorkflowExecutionCommandAttributes,
    },
    common::v1::WorkflowExecution,
    enums::v1::{TaskQueueKind, WorkflowExecutionStatus},
    protocol::v1::Message,
    taskqueue::v1::StickyExecutionAttributes,
    workflowservice::v1::{
        RecordActivityTaskHeartbeatRequest, RespondActivityTaskCanceledRequest,
        SignalWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
    },
};

const REPRODUCE: &str = "reproduce with: cargo test -p perdura-engine property (the failing case is saved in engine/proptest-regressions/)";

/// One step of a scenario, resolved against the state when it runs (e.g. "poll the n-th ready
/// workflow task"), so that most steps are valid commands.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Start {
        workflow: u8,
        request: u8,
        conflict: u8,
        run_timeout_s: Option<u8>,
    },
    PollWorkflowTask(u8),
    CompleteWorkflowTask {
        pick: u8,
        commands: Vec<CommandSpec>,
        force_new_task: bool,
        /// Two bits per update the task carries: accept and complete, accept, reject, ignore.
        update_replies: u8,
        /// Sticky queue `sticky-<n>` with a schedule-to-start timeout of `ms`.
        sticky: Option<(u8, u16)>,
    },
    /// UpdateWorkflowExecution with one of a few update IDs (duplicates are retries).
    Update {
        workflow: u8,
        id: u8,
    },
    FailWorkflowTask(u8),
    PollActivity(u8),
    CompleteActivity(u8),
    FailActivity {
        pick: u8,
        non_retryable: bool,
        retry_delay_ms: Option<u16>,
    },
    Signal {
        workflow: u8,
        request: u8,
    },
    Terminate(u8),
    RequestCancel(u8),
    SignalWithStart {
        workflow: u8,
        request: u8,
    },
    Heartbeat(u8),
    /// RespondActivityTaskCanceled.
    CancelActivity(u8),
    /// ShutdownWorker of sticky queue `sticky-<n>`.
    ShutdownWorker(u8),
    /// Advance the clock and fire due timers.
    Advance(u32),
    /// A command stamped with a lagging leader clock (clamped by the engine).
    LaggingFire(u16),
    /// Deliver the n-th pending outbox message (the target is on the same shard): receive it,
    /// maybe receive it again (a redelivery), maybe ack it.
    Deliver {
        pick: u8,
        twice: bool,
        ack: bool,
    },
}

#[derive(Clone, Debug)]
pub(super) enum CommandSpec {
    Activity {
        id: u8,
        start_to_close_ms: u16,
        schedule_to_start_ms: Option<u16>,
        heartbeat_ms: Option<u16>,
        max_attempts: u8,
    },
    Timer {
        id: u8,
        after_ms: u16,
    },
    CancelTimer(u8),
    /// RequestCancelActivityTask of the n-th pending activity of the run (or of a bogus ID).
    CancelActivity(u8),
    Marker,
    Complete,
    Fail,
    Cancel,
    ContinueAsNew {
        backoff_ms: u16,
    },
    Upsert(u8),
    Unsupported,
    /// StartChildWorkflowExecution of `child-{id}` with a `ParentClosePolicy` value.
    Child {
        id: u8,
        policy: u8,
    },
    /// SignalExternalWorkflowExecution to `wf-{workflow}` or to the child `child-{workflow}`.
    SignalExternal {
        workflow: u8,
        child: bool,
    },
}

fn command_spec() -> impl Strategy<Value = CommandSpec> {
    prop_oneof![
        6 => (0u8..4, 1u16..20_000, proptest::option::of(1u16..10_000), proptest::option::of(1u16..5_000), 0u8..4).prop_map(
            |(id, start_to_close_ms, schedule_to_start_ms, heartbeat_ms, max_attempts)| CommandSpec::Activity {
                id,
                start_to_close_ms,
                schedule_to_start_ms,
                heartbeat_ms,
                max_attempts
            }
        ),
        4 => (0u8..4, 1u16..20_000).prop_map(|(id, after_ms)| CommandSpec::Timer { id, after_ms }),
        1 => (0u8..4).prop_map(CommandSpec::CancelTimer),
        1 => any::<u8>().prop_map(CommandSpec::CancelActivity),
        1 => Just(CommandSpec::Marker),
        1 => Just(CommandSpec::Complete),
        1 => Just(CommandSpec::Fail),
        1 => Just(CommandSpec::Cancel),
        1 => (0u8..3).prop_map(CommandSpec::Upsert),
        1 => prop_oneof![Just(0u16), 1u16..5_000].prop_map(|backoff_ms| CommandSpec::ContinueAsNew { backoff_ms }),
        1 => Just(CommandSpec::Unsupported),
        2 => (0u8..3, 0u8..4).prop_map(|(id, policy)| CommandSpec::Child { id, policy }),
        1 => (0u8..3, any::<bool>()).prop_map(|(workflow, child)| CommandSpec::SignalExternal { workflow, child }),
    ]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..3, 0u8..3, 0u8..4, proptest::option::of(1u8..60)).prop_map(|(workflow, request, conflict, run_timeout_s)| {
            Op::Start { workflow, request, conflict, run_timeout_s }
        }),
        4 => any::<u8>().prop_map(Op::PollWorkflowTask),
        4 => (any::<u8>(), proptest::collection::vec(command_spec(), 0..4), proptest::bool::weighted(0.1), any::<u8>(),
              proptest::option::weighted(0.5, (0u8..2, 1u16..12_000)))
            .prop_map(|(pick, commands, force_new_task, update_replies, sticky)| Op::CompleteWorkflowTask { pick, commands, force_new_task, update_replies, sticky }),
        2 => (0u8..3, 0u8..6).prop_map(|(workflow, id)| Op::Update { workflow, id }),
        1 => any::<u8>().prop_map(Op::FailWorkflowTask),
        3 => any::<u8>().prop_map(Op::PollActivity),
        2 => any::<u8>().prop_map(Op::CompleteActivity),
        2 => (any::<u8>(), proptest::bool::weighted(0.2), proptest::option::of(1u16..3_000))
            .prop_map(|(pick, non_retryable, retry_delay_ms)| Op::FailActivity { pick, non_retryable, retry_delay_ms }),
        2 => (0u8..3, 0u8..4).prop_map(|(workflow, request)| Op::Signal { workflow, request }),
        1 => (0u8..3).prop_map(Op::Terminate),
        1 => (0u8..3).prop_map(Op::RequestCancel),
        1 => (0u8..3, 0u8..4).prop_map(|(workflow, request)| Op::SignalWithStart { workflow, request }),
        1 => any::<u8>().prop_map(Op::Heartbeat),
        1 => any::<u8>().prop_map(Op::CancelActivity),
        1 => (0u8..2).prop_map(Op::ShutdownWorker),
        3 => (0u32..15_000).prop_map(Op::Advance),
        1 => (0u16..5_000).prop_map(Op::LaggingFire),
        4 => (any::<u8>(), proptest::bool::weighted(0.2), proptest::bool::weighted(0.8))
            .prop_map(|(pick, twice, ack)| Op::Deliver { pick, twice, ack }),
    ]
}

/// Turns the operations into concrete commands by running them on a replica; returns the log.
pub(super) struct Driver {
    pub(super) h: Harness,
    pub(super) log: Vec<ShardCommand>,
    workflow_tokens: Vec<TaskToken>,
    activity_tokens: Vec<TaskToken>,
    runs: u32,
    polls: u32,
}

impl Driver {
    pub(super) fn new() -> Driver {
        Driver::with_state(ShardState::new())
    }

    /// A driver over `state` (e.g. one with small limits).
    pub(super) fn with_state(state: ShardState) -> Driver {
        Driver {
            h: Harness::with_state(state),
            log: Vec::new(),
            workflow_tokens: Vec::new(),
            activity_tokens: Vec::new(),
            runs: 0,
            polls: 0,
        }
    }

    pub(super) fn run(&mut self, now_ms: i64, kind: ShardCommandKind) -> Applied {
        self.log.push(ShardCommand {
            now_ms,
            kind: kind.clone(),
        });
        let saved = self.h.now_ms;
        self.h.now_ms = now_ms;
        let applied = self.h.apply(kind);
        self.h.now_ms = saved;
        check_invariants(&self.h.state);
        match &applied.reply {
            Some(Ok(ShardReply::WorkflowTaskStarted(info)))
            | Some(Ok(ShardReply::NewWorkflowTask(info))) => {
                self.workflow_tokens.push(info.token.clone())
            }
            Some(Ok(ShardReply::ActivityTaskStarted(info))) => {
                self.activity_tokens.push(info.token.clone())
            }
            _ => {}
        }
        applied
    }

    /// Three times in four a token of a task that is started right now, else any token issued
    /// so far (often stale).
    fn token(&self, kind: TaskKind, pick: u8) -> Option<TaskToken> {
        let issued = if kind == TaskKind::Workflow {
            &self.workflow_tokens
        } else {
            &self.activity_tokens
        };
        let live: Vec<&TaskToken> = issued.iter().filter(|t| self.is_live(t)).collect();
        if !pick.is_multiple_of(4) && !live.is_empty() {
            return Some(live[usize::from(pick / 4) % live.len()].clone());
        }
        (!issued.is_empty()).then(|| issued[usize::from(pick / 4) % issued.len()].clone())
    }

    fn is_live(&self, token: &TaskToken) -> bool {
        let Some(ms) = self
            .h
            .state
            .execution(&token.execution)
            .filter(|ms| ms.is_running())
        else {
            return false;
        };
        match token.kind {
            TaskKind::Workflow => ms.started_workflow_task().is_some_and(|w| {
                (w.scheduled_event_id, w.started_event_id, w.attempt)
                    == (
                        token.scheduled_event_id,
                        token.started_event_id,
                        token.attempt,
                    )
            }),
            TaskKind::Activity => ms
                .activities
                .get(&token.scheduled_event_id)
                .is_some_and(|a| a.phase == ActivityPhase::Started && a.attempt == token.attempt),
            // Queries never reach the engine.
            TaskKind::Query => false,
        }
    }

    fn ready(&self, kind: TaskKind, pick: u8) -> Option<crate::shard::PendingTask> {
        let tasks: Vec<_> = self
            .h
            .state
            .pending_tasks()
            .into_iter()
            .filter(|t| t.kind == kind)
            .collect();
        (!tasks.is_empty()).then(|| tasks[usize::from(pick) % tasks.len()].clone())
    }

    /// The outbox driver's two proposals, on one shard (parent and child live together here).
    fn deliver(&mut self, pick: u8, twice: bool, ack: bool, now: i64) {
        let pending = self.h.state.pending_outbox();
        if pending.is_empty() {
            return;
        }
        let entry = pending[usize::from(pick) % pending.len()].clone();
        let Some(message) = self
            .h
            .state
            .outbox_message(&entry.execution, entry.outbox_id)
            .cloned()
        else {
            panic!("indexed outbox entry {entry:?} has no message");
        };
        let receive = ShardCommandKind::ReceiveMessage {
            source: entry.execution.clone(),
            outbox_id: entry.outbox_id,
            message: message.clone(),
        };
        let first = self.run(now, receive.clone());
        if twice {
            let again = self.run(now, receive);
            assert_eq!(again.reply, first.reply, "a redelivery replies alike");
            assert!(
                again.changes.events.is_empty(),
                "a redelivery appends no event: {:?}",
                again.changes.events
            );
        }
        let Some(Ok(ShardReply::Delivered(outcome))) = first.reply else {
            panic!("receive replied {:?}", first.reply);
        };
        if ack {
            let ack = ShardCommandKind::AckMessage {
                execution: entry.execution.clone(),
                outbox_id: entry.outbox_id,
                kind: message.kind(),
                outcome,
            };
            self.run(now, ack.clone());
            let again = self.run(now, ack);
            assert!(again.changes.is_empty(), "a repeated ack changes nothing");
        }
    }

    pub(super) fn step(&mut self, op: &Op) {
        let now = self.h.now_ms;
        match op {
            Op::Start {
                workflow,
                request,
                conflict,
                run_timeout_s,
            } => {
                let mut request_msg = start_request(
                    &format!("wf-{workflow}"),
                    &format!("req-{workflow}-{request}"),
                );
                request_msg.workflow_id_conflict_policy = i32::from(*conflict);
                request_msg.workflow_run_timeout =
                    run_timeout_s.map(|s| duration_ms(i64::from(s) * 1_000));
                if request % 2 == 1 {
                    request_msg.retry_policy = Some(RetryPolicy {
                        initial_interval: Some(duration_ms(500)),
                        maximum_attempts: 3,
                        ..Default::default()
                    });
                }
                self.runs += 1;
                let run_id = format!("run-{}", self.runs);
                self.run(
                    now,
                    ShardCommandKind::StartWorkflow {
                        request: request_msg,
                        run_id,
                    },
                );
            }
            Op::PollWorkflowTask(pick) => {
                if let Some(task) = self.ready(TaskKind::Workflow, *pick) {
                    self.polls += 1;
                    let kind = ShardCommandKind::RecordWorkflowTaskStarted {
                        execution: task.execution,
                        scheduled_event_id: task.scheduled_event_id,
                        identity: "worker".into(),
                        poll_request_id: format!("poll-{}", self.polls),
                    };
                    self.run(now, kind);
                }
            }
            Op::CompleteWorkflowTask {
                pick,
                commands,
                force_new_task,
                update_replies,
                sticky,
            } => {
                let Some(token) = self.token(TaskKind::Workflow, *pick) else {
                    return;
                };
                let pending: Vec<i64> = self
                    .h
                    .state
                    .execution(&token.execution)
                    .map(|ms| ms.activities.keys().copied().collect())
                    .unwrap_or_default();
                let (mut protocol, messages) = self.update_replies(&token, *update_replies);
                protocol.extend(commands.iter().map(|spec| concrete_command(spec, &pending)));
                let request = RespondWorkflowTaskCompletedRequest {
                    commands: protocol,
                    messages,
                    identity: "worker".into(),
                    force_create_new_workflow_task: *force_new_task,
                    // Sticky SDK workers ask for the next task inline.
                    return_new_workflow_task: sticky.is_some(),
                    sticky_attributes: sticky.map(|(queue, timeout_ms)| {
                        StickyExecutionAttributes {
                            worker_task_queue: Some(TaskQueue {
                                name: format!("sticky-{queue}"),
                                kind: TaskQueueKind::Sticky as i32,
                                normal_name: "orders".into(),
                            }),
                            schedule_to_start_timeout: Some(duration_ms(i64::from(timeout_ms))),
                        }
                    }),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RespondWorkflowTaskCompleted { token, request },
                );
            }
            Op::FailWorkflowTask(pick) => {
                let Some(token) = self.token(TaskKind::Workflow, *pick) else {
                    return;
                };
                let request = RespondWorkflowTaskFailedRequest {
                    failure: Some(app_failure("workflow bug", false)),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RespondWorkflowTaskFailed { token, request },
                );
            }
            Op::PollActivity(pick) => {
                if let Some(task) = self.ready(TaskKind::Activity, *pick) {
                    self.polls += 1;
                    let kind = ShardCommandKind::RecordActivityTaskStarted {
                        execution: task.execution,
                        scheduled_event_id: task.scheduled_event_id,
                        identity: "activity-worker".into(),
                        poll_request_id: format!("poll-{}", self.polls),
                    };
                    self.run(now, kind);
                }
            }
            Op::CompleteActivity(pick) => {
                let Some(token) = self.token(TaskKind::Activity, *pick) else {
                    return;
                };
                let request = RespondActivityTaskCompletedRequest {
                    result: Some(payloads("ok")),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RespondActivityTaskCompleted { token, request },
                );
            }
            Op::FailActivity {
                pick,
                non_retryable,
                retry_delay_ms,
            } => {
                let Some(token) = self.token(TaskKind::Activity, *pick) else {
                    return;
                };
                let mut failure = app_failure("activity failed", *non_retryable);
                if let Some(FailureInfo::ApplicationFailureInfo(info)) = &mut failure.failure_info {
                    info.next_retry_delay = retry_delay_ms.map(|ms| duration_ms(i64::from(ms)));
                }
                let request = RespondActivityTaskFailedRequest {
                    failure: Some(failure),
                    last_heartbeat_details: Some(payloads("progress")),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RespondActivityTaskFailed { token, request },
                );
            }
            Op::Signal { workflow, request } => {
                let request = SignalWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: format!("wf-{workflow}"),
                        run_id: String::new(),
                    }),
                    signal_name: "poke".into(),
                    input: Some(payloads("poke")),
                    request_id: format!("signal-{request}"),
                    ..Default::default()
                };
                self.run(now, ShardCommandKind::SignalWorkflow { request });
            }
            Op::Update { workflow, id } => {
                let mut request = super::updates::update_request(
                    &key(&format!("wf-{workflow}"), ""),
                    &format!("u-{id}"),
                );
                request.namespace = "default".into();
                self.run(now, ShardCommandKind::UpdateWorkflow { request });
            }
            Op::Terminate(workflow) => {
                let request = TerminateWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: format!("wf-{workflow}"),
                        run_id: String::new(),
                    }),
                    reason: "test".into(),
                    ..Default::default()
                };
                self.run(now, ShardCommandKind::TerminateWorkflow { request });
            }
            Op::SignalWithStart { workflow, request } => {
                let start = start_request(&format!("wf-{workflow}"), "");
                let request = temporalio_protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest {
                    namespace: start.namespace,
                    workflow_id: start.workflow_id,
                    workflow_type: start.workflow_type,
                    task_queue: start.task_queue,
                    request_id: format!("sws-{workflow}-{request}"),
                    signal_name: "poke".into(),
                    signal_input: Some(payloads("poke")),
                    ..Default::default()
                };
                self.runs += 1;
                let run_id = format!("run-{}", self.runs);
                self.run(
                    now,
                    ShardCommandKind::SignalWithStartWorkflow { request, run_id },
                );
            }
            Op::RequestCancel(workflow) => {
                let command =
                    super::cancel::request_cancel(&format!("wf-{workflow}"), "", "cancel");
                self.run(now, command);
            }
            Op::Heartbeat(pick) => {
                let Some(token) = self.token(TaskKind::Activity, *pick) else {
                    return;
                };
                let request = RecordActivityTaskHeartbeatRequest {
                    details: Some(payloads("beat")),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RecordActivityTaskHeartbeat { token, request },
                );
            }
            Op::CancelActivity(pick) => {
                let Some(token) = self.token(TaskKind::Activity, *pick) else {
                    return;
                };
                let request = RespondActivityTaskCanceledRequest {
                    details: Some(payloads("canceled")),
                    identity: "activity-worker".into(),
                    ..Default::default()
                };
                self.run(
                    now,
                    ShardCommandKind::RespondActivityTaskCanceled { token, request },
                );
            }
            Op::ShutdownWorker(queue) => {
                let kind = ShardCommandKind::ShutdownWorker {
                    namespace: "default".into(),
                    sticky_task_queue: format!("sticky-{queue}"),
                };
                self.run(now, kind);
            }
            Op::Advance(ms) => {
                self.h.now_ms += i64::from(*ms);
                self.run(self.h.now_ms, ShardCommandKind::FireTimers);
            }
            Op::LaggingFire(back_ms) => {
                self.run(now - i64::from(*back_ms), ShardCommandKind::FireTimers);
            }
            Op::Deliver { pick, twice, ack } => self.deliver(*pick, *twice, *ack, now),
        }
    }
}

impl Driver {
    /// The worker's answers to the updates the task of `token` carries, two bits of `replies`
    /// each: PROTOCOL_MESSAGE commands and the messages.
    fn update_replies(&self, token: &TaskToken, replies: u8) -> (Vec<Command>, Vec<Message>) {
        use super::updates::{accept, protocol_command, reject, respond};
        let carried: Vec<String> = self
            .h
            .state
            .execution(&token.execution)
            .map(|ms| {
                ms.updates
                    .iter()
                    .filter(|(_, u)| {
                        u.phase
                            == UpdatePhase::Sent {
                                started_event_id: token.started_event_id,
                            }
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let (mut commands, mut messages) = (Vec::new(), Vec::new());
        for (i, id) in carried.iter().enumerate() {
            match (replies >> ((i % 4) * 2)) & 3 {
                0 => {
                    let (a, r) = (accept(id), respond(id, "done"));
                    commands.extend([protocol_command(&a), protocol_command(&r)]);
                    messages.extend([a, r]);
                }
                1 => {
                    let a = accept(id);
                    commands.push(protocol_command(&a));
                    messages.push(a);
                }
                2 => messages.push(reject(id)),
                _ => {}
            }
        }
        (commands, messages)
    }
}

/// The command a spec stands for; `pending` lists the scheduled event IDs of the run's pending
/// activities.
fn concrete_command(spec: &CommandSpec, pending: &[i64]) -> Command {
    match spec {
        CommandSpec::Activity {
            id,
            start_to_close_ms,
            schedule_to_start_ms,
            heartbeat_ms,
            max_attempts,
        } => {
            let policy = RetryPolicy {
                initial_interval: Some(duration_ms(100)),
                maximum_attempts: i32::from(*max_attempts),
                ..Default::default()
            };
            let mut command = schedule_activity(
                &format!("act-{id}"),
                i64::from(*start_to_close_ms),
                Some(policy),
            );
            if let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) =
                &mut command.attributes
            {
                a.schedule_to_start_timeout =
                    schedule_to_start_ms.map(|ms| duration_ms(i64::from(ms)));
                a.heartbeat_timeout = heartbeat_ms.map(|ms| duration_ms(i64::from(ms)));
            }
            command
        }
        CommandSpec::Timer { id, after_ms } => {
            start_timer(&format!("timer-{id}"), i64::from(*after_ms))
        }
        CommandSpec::CancelTimer(id) => cancel_timer(&format!("timer-{id}")),
        CommandSpec::CancelActivity(pick) => {
            let scheduled_event_id = match pending {
                [] => i64::from(*pick),
                ids => ids[usize::from(*pick) % ids.len()],
            };
            super::activity_cancel::request_cancel_activity(scheduled_event_id)
        }
        CommandSpec::Marker => record_marker("core_patch"),
        CommandSpec::Complete => complete_workflow("done"),
        CommandSpec::Fail => fail_workflow("failed"),
        CommandSpec::Cancel => super::cancel::cancel_workflow("canceled"),
        CommandSpec::ContinueAsNew { backoff_ms } => {
            super::continue_as_new::continue_as_new("next", i64::from(*backoff_ms))
        }
        CommandSpec::Upsert(n) => {
            let value = Payload {
                data: format!("[\"v{n}\"]").into_bytes(),
                ..Default::default()
            };
            let name = ["TemporalChangeVersion", "CustomKeywordField", "Unknown"][usize::from(*n)];
            if *n == 1 {
                super::properties::modify_memo(&[("note", value)])
            } else {
                super::properties::upsert(&[(name, value)])
            }
        }
        CommandSpec::Child { id, policy } => Command {
            command_type: CommandType::StartChildWorkflowExecution as i32,
            attributes: Some(
                command::Attributes::StartChildWorkflowExecutionCommandAttributes(
                    StartChildWorkflowExecutionCommandAttributes {
                        workflow_id: format!("child-{id}"),
                        workflow_type: Some(WorkflowType {
                            name: "Child".into(),
                        }),
                        input: Some(payloads("child")),
                        parent_close_policy: i32::from(*policy),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        },
        CommandSpec::SignalExternal { workflow, child } => Command {
            command_type: CommandType::SignalExternalWorkflowExecution as i32,
            attributes: Some(
                command::Attributes::SignalExternalWorkflowExecutionCommandAttributes(
                    SignalExternalWorkflowExecutionCommandAttributes {
                        execution: Some(WorkflowExecution {
                            workflow_id: if *child {
                                format!("child-{workflow}")
                            } else {
                                format!("wf-{workflow}")
                            },
                            run_id: String::new(),
                        }),
                        signal_name: "external".into(),
                        input: Some(payloads("external")),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        },
        CommandSpec::Unsupported => Command {
            command_type: CommandType::ScheduleNexusOperation as i32,
            ..Default::default()
        },
    }
}

/// Structural invariants of a shard after any command.
pub(super) fn check_invariants(state: &ShardState) {
    for ms in state.executions() {
        if let Some(wft) = ms.workflow_task.as_ref().filter(|w| w.speculative) {
            assert_eq!(
                wft.scheduled_event_id, ms.next_event_id,
                "{}: a speculative task's IDs are the next ones",
                ms.key
            );
            if wft.is_started() {
                assert_eq!(wft.started_event_id, wft.scheduled_event_id + 1);
            }
        }
        if !ms.is_running() {
            assert!(
                ms.updates.values().all(|u| !u.in_flight()),
                "{}: an update in flight on a closed run",
                ms.key
            );
        }
        if !ms.buffered_events.is_empty() {
            assert!(
                ms.started_workflow_task().is_some(),
                "{}: buffered events without a started task",
                ms.key
            );
        }
        if ms.is_running() {
            assert_eq!(ms.close_event_id, 0);
            for activity in ms.activities.values() {
                assert!(activity.attempt >= 1);
                if activity.phase != ActivityPhase::Started {
                    assert_eq!(activity.started_time_ms, 0);
                }
            }
        } else {
            assert_eq!(
                ms.close_event_id,
                ms.next_event_id - 1,
                "{}: the close event is the last event",
                ms.key
            );
            assert!(ms.workflow_task.is_none() && ms.activities.is_empty() && ms.timers.is_empty());
            assert!(ms.buffered_events.is_empty());
            assert_eq!(ms.first_workflow_task_time_ms, 0);
        }
        if ms.first_workflow_task_time_ms > 0 {
            assert!(
                ms.workflow_task.is_none(),
                "{}: a delayed first task",
                ms.key
            );
        }
        if ms.status == WorkflowExecutionStatus::ContinuedAsNew as i32 {
            let successor = ExecutionKey {
                run_id: crate::shard::new_run::successor_run_id(&ms.key.run_id, ms.close_event_id),
                ..ms.key.clone()
            };
            let next = state.execution(&successor).expect("a successor exists");
            assert_eq!(next.first_execution_run_id, ms.first_execution_run_id);
        }
    }
    let mut running_per_workflow = BTreeMap::new();
    for ms in state.executions().filter(|ms| ms.is_running()) {
        *running_per_workflow
            .entry(ms.key.workflow_key())
            .or_insert(0) += 1;
    }
    assert!(
        running_per_workflow.values().all(|n| *n == 1),
        "at most one running run per workflow ID"
    );
    for (workflow, run) in state.current_runs() {
        let key = ExecutionKey {
            namespace: workflow.namespace.clone(),
            workflow_id: workflow.workflow_id.clone(),
            run_id: run.run_id.clone(),
        };
        let ms = state.execution(&key).expect("the current run exists");
        assert_eq!(
            run.status, ms.status,
            "{key}: current-run status mirrors the run"
        );
        if running_per_workflow.contains_key(workflow) {
            assert_eq!(
                run.status,
                WorkflowExecutionStatus::Running as i32,
                "the running run is the current one"
            );
        }
    }
    if let Some(next) = state.next_timer_ms() {
        assert!(next > 0);
    }
    let derived: Vec<_> = state
        .executions()
        .flat_map(|ms| {
            ms.outbox
                .keys()
                .map(|&outbox_id| crate::shard::OutboxEntry {
                    execution: ms.key.clone(),
                    outbox_id,
                })
        })
        .collect();
    assert_eq!(
        state.pending_outbox(),
        derived,
        "the outbox index mirrors the runs"
    );
    for ms in state.executions().filter(|ms| !ms.is_running()) {
        assert!(
            ms.children.is_empty(),
            "{}: a closed run waits for no child",
            ms.key
        );
    }
}

/// The persisted records of a shard, encoded as the storage layer would.
pub(super) fn encoded_records(state: &ShardState) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let executions = state
        .executions()
        .map(|ms| versioned::encode(ms).expect("encodes"))
        .collect();
    let runs = state
        .current_runs()
        .map(|(k, r)| versioned::encode(&(k, r)).expect("encodes"))
        .collect();
    (executions, runs)
}

pub(super) fn restored_from(state: &ShardState) -> ShardState {
    // Round-trip through the persisted encoding, as a restarted node would.
    let executions: Vec<MutableState> = state
        .executions()
        .map(|ms| versioned::decode(&versioned::encode(ms).expect("encodes")).expect("decodes"))
        .collect();
    let runs = state
        .current_runs()
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    ShardState::restore(state.clock_ms(), executions, runs)
}

fn assert_same_apply(a: &Applied, b: &Applied, step: usize) {
    assert_eq!(a.reply, b.reply, "reply of command {step}; {REPRODUCE}");
    assert_eq!(
        a.changes, b.changes,
        "changes of command {step}; {REPRODUCE}"
    );
    assert_eq!(
        a.notices, b.notices,
        "notices of command {step}; {REPRODUCE}"
    );
    assert_eq!(
        encoded_events(a),
        encoded_events(b),
        "stored bytes of the events of command {step}; {REPRODUCE}"
    );
}

/// The appended events, encoded as the storage layer stores them.
fn encoded_events(applied: &Applied) -> Vec<Vec<u8>> {
    applied
        .changes
        .events
        .iter()
        .flat_map(|(_, events)| events.iter().map(crate::canonical::encode))
        .collect()
}

/// Runs the scenario and returns the event types all histories contain.
fn scenario(ops: &[Op], cut_per_mille: u16) -> BTreeSet<i32> {
    let mut driver = Driver::new();
    for op in ops {
        driver.step(op);
    }
    let log = driver.log.clone();

    // Replica B applies the same log from scratch.
    let mut replica_a = ShardState::new();
    let mut replica_b = ShardState::new();
    let cut = log.len() * usize::from(cut_per_mille) / 1000;
    let mut restored: Option<ShardState> = None;
    for (step, command) in log.iter().enumerate() {
        if step == cut {
            let c = restored_from(&replica_a);
            assert_eq!(
                c.pending_tasks(),
                replica_a.pending_tasks(),
                "pending tasks after restore; {REPRODUCE}"
            );
            assert_eq!(
                c.next_timer_ms(),
                replica_a.next_timer_ms(),
                "next timer after restore; {REPRODUCE}"
            );
            assert_eq!(encoded_records(&c), encoded_records(&replica_a));
            restored = Some(c);
        }
        let a = replica_a.apply(command.clone());
        let b = replica_b.apply(command.clone());
        assert_same_apply(&a, &b, step);
        if let Some(c) = restored.as_mut() {
            assert_same_apply(&a, &c.apply(command.clone()), step);
        }
    }
    assert_eq!(
        encoded_records(&replica_a),
        encoded_records(&replica_b),
        "replicas differ; {REPRODUCE}"
    );
    assert_eq!(
        encoded_records(&replica_a),
        encoded_records(&driver.h.state),
        "driver differs; {REPRODUCE}"
    );
    if let Some(c) = &restored {
        assert_eq!(
            encoded_records(&replica_a),
            encoded_records(c),
            "restored replica differs; {REPRODUCE}"
        );
        assert_eq!(c.pending_tasks(), replica_a.pending_tasks());
        assert_eq!(c.next_timer_ms(), replica_a.next_timer_ms());
    }
    // The emitted histories account for every event of every execution.
    for ms in replica_a.executions() {
        let history = driver.h.history(&ms.key);
        assert_eq!(
            history.len() as i64,
            ms.next_event_id - 1,
            "{}: emitted history is complete",
            ms.key
        );
    }
    driver
        .h
        .histories
        .values()
        .flatten()
        .map(|e| e.event_type)
        .collect()
}

proptest! {
    // 256 cases by default; `PROPTEST_CASES=5000` runs more.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn replicas_agree_and_restore_is_faithful(ops in proptest::collection::vec(op(), 1..80), cut in 0u16..=1000) {
        scenario(&ops, cut);
    }
}

/// A fixed, long scenario that exercises every path at least once; quick to debug.
#[test]
fn fixed_scenario_with_every_kind_of_step() {
    let mut ops = Vec::new();
    for round in 0u8..6 {
        ops.push(Op::Start {
            workflow: round % 3,
            request: round,
            conflict: round % 4,
            run_timeout_s: (round == 5).then_some(30),
        });
        ops.push(Op::PollWorkflowTask(round));
        let commands = vec![
            CommandSpec::Activity {
                id: round % 2,
                start_to_close_ms: 5_000,
                schedule_to_start_ms: Some(8_000),
                heartbeat_ms: None,
                max_attempts: 3,
            },
            CommandSpec::Timer {
                id: round % 3,
                after_ms: 2_000,
            },
            CommandSpec::Marker,
            CommandSpec::Child {
                id: round % 3,
                policy: round % 4,
            },
            CommandSpec::SignalExternal {
                workflow: round % 3,
                child: round % 2 == 0,
            },
        ];
        ops.push(Op::CompleteWorkflowTask {
            pick: round,
            commands,
            force_new_task: round == 2,
            update_replies: round.wrapping_mul(37),
            sticky: (round % 2 == 0).then_some((round % 2, 3_000)),
        });
        ops.push(Op::Update {
            workflow: round % 3,
            id: round % 4,
        });
        ops.push(Op::PollWorkflowTask(round));
        for pick in 0..3 {
            ops.push(Op::Deliver {
                pick,
                twice: round == 1,
                ack: true,
            });
        }
        ops.push(Op::PollActivity(round));
        ops.push(Op::FailActivity {
            pick: round,
            non_retryable: round == 4,
            retry_delay_ms: None,
        });
        ops.push(Op::Advance(1_000));
        ops.push(Op::PollActivity(round));
        ops.push(Op::PollWorkflowTask(round));
        ops.push(Op::Heartbeat(round));
        ops.push(Op::Signal {
            workflow: round % 3,
            request: round % 2,
        });
        ops.push(Op::CompleteActivity(round));
        ops.push(Op::Advance(2_500));
        ops.push(Op::LaggingFire(900));
        ops.push(Op::CompleteWorkflowTask {
            pick: round.wrapping_add(1),
            commands: vec![CommandSpec::Complete],
            force_new_task: false,
            update_replies: round,
            sticky: None,
        });
        if round == 1 {
            ops.push(Op::ShutdownWorker(0));
        }
        ops.push(Op::FailWorkflowTask(round));
        if round == 3 {
            ops.push(Op::Terminate(1));
        }

        ops.push(Op::Advance(12_000));
    }
    // Every workflow is asked to cancel; the workflow tasks that follow accept.
    for workflow in 0u8..3 {
        ops.push(Op::Start {
            workflow,
            request: 100,
            conflict: 0,
            run_timeout_s: None,
        });
        ops.push(Op::RequestCancel(workflow));
    }
    for pick in [1u8, 2, 3, 5, 6, 7] {
        ops.push(Op::PollWorkflowTask(pick));
        ops.push(Op::CompleteWorkflowTask {
            pick,
            commands: vec![CommandSpec::Cancel],
            force_new_task: false,
            update_replies: 0,
            sticky: Some((0, 5_000)),
        });
    }
    // A chain: continue-as-new with and without back-off, then completion.
    ops.push(Op::Start {
        workflow: 5,
        request: 0,
        conflict: 0,
        run_timeout_s: Some(50),
    });
    for backoff_ms in [0u16, 1_500, 0] {
        ops.push(Op::Advance(2_000));
        ops.push(Op::PollWorkflowTask(0));
        ops.push(Op::CompleteWorkflowTask {
            pick: 1,
            commands: vec![CommandSpec::ContinueAsNew { backoff_ms }],
            force_new_task: false,
            update_replies: 0,
            sticky: Some((0, 5_000)),
        });
    }
    let seen = scenario(&ops, 500);
    for expected in [
        EventType::WorkflowTaskFailed,
        EventType::WorkflowTaskTimedOut,
        EventType::ActivityTaskStarted,
        EventType::ActivityTaskCompleted,
        EventType::TimerFired,
        EventType::MarkerRecorded,
        EventType::WorkflowExecutionUpdateAccepted,
        EventType::WorkflowExecutionUpdateCompleted,
        EventType::WorkflowExecutionCompleted,
        EventType::WorkflowExecutionSignaled,
        EventType::WorkflowExecutionCancelRequested,
        EventType::WorkflowExecutionCanceled,
        EventType::WorkflowExecutionContinuedAsNew,
        EventType::StartChildWorkflowExecutionInitiated,
        EventType::ChildWorkflowExecutionStarted,
        EventType::SignalExternalWorkflowExecutionInitiated,
        EventType::ExternalWorkflowExecutionSignaled,
    ] {
        assert!(
            seen.contains(&(expected as i32)),
            "the fixed scenario no longer produces {expected:?}"
        );
    }
}
