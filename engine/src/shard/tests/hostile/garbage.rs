//! Nonsense commands for the hostile property test: what a buggy SDK, a confused client or a
//! bit-flipped token could put into a group's log, as data (so proptest can shrink it).
//!
//! Every field is drawn from a small vocabulary that mixes the plausible (the workflow IDs the
//! valid operations use, so that garbage lands on real runs) with the absurd: empty and
//! over-long names, negative or out-of-range durations, NaN back-off coefficients, unknown enum
//! values, random task-token fields and payloads larger than the test's history size limit.

use proptest::prelude::*;

/// A name: an ID, a type, a task queue, a signal, a request ID.
#[derive(Clone, Debug)]
pub(super) enum Name {
    Empty,
    /// One of the names the valid operations use (`wf-0`…, `act-0`…, `timer-0`…).
    Known(u8),
    /// Longer than `EngineLimits::max_id_length`.
    Huge(u16),
    /// Control characters, NUL and non-ASCII.
    Odd(u8),
}

/// A protobuf duration field.
#[derive(Clone, Debug)]
pub(super) enum Span {
    Unset,
    Millis(u32),
    NegativeSeconds(i64),
    NegativeNanos,
    /// `nanos` past one second, which protobuf forbids.
    NanosOverflow,
    Max,
}

/// A retry policy with odd values.
#[derive(Clone, Debug)]
pub(super) struct Retry {
    pub initial: Span,
    pub maximum: Span,
    pub coefficient: f64,
    pub maximum_attempts: i32,
}

/// A task token: made up, or a live one with one field changed.
#[derive(Clone, Debug)]
pub(super) enum Token {
    Made {
        workflow: Name,
        run: Name,
        activity: bool,
        scheduled_event_id: i64,
        started_event_id: i64,
        attempt: i32,
    },
    /// The n-th started task in the state, with a field bent by `bend`.
    Bent { pick: u8, bend: Bend },
}

#[derive(Clone, Debug)]
pub(super) enum Bend {
    None,
    ScheduledEventId(i64),
    StartedEventId(i64),
    Attempt(i32),
    /// A workflow task's token presented as an activity's, or the reverse.
    Kind,
    Namespace,
}

/// A workflow (or run) aimed at by a client call: run ID empty (current), made up or real.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub namespace: Name,
    pub workflow: Name,
    pub run: RunPick,
}

#[derive(Clone, Debug)]
pub(super) enum RunPick {
    Current,
    Made(Name),
    /// The n-th execution in the state (its real run ID).
    Existing(u8),
}

/// One command of a workflow task completion.
#[derive(Clone, Debug)]
pub(super) enum BadCommand {
    /// A command type that does not match its attributes (or unknown), attributes of `variant`.
    Mismatched {
        command_type: i32,
        variant: u8,
    },
    Activity {
        id: Name,
        activity_type: Name,
        task_queue: Name,
        schedule_to_close: Span,
        start_to_close: Span,
        heartbeat: Span,
        retry: Option<Retry>,
        input_len: u32,
    },
    Timer {
        id: Name,
        after: Span,
    },
    CancelTimer(Name),
    CancelActivity(i64),
    Complete {
        result_len: u32,
    },
    Fail {
        failure: bool,
        message_len: u32,
    },
    Cancel,
    ContinueAsNew {
        workflow_type: Name,
        task_queue: Name,
        backoff: Span,
        run_timeout: Span,
        input_len: u32,
    },
    Child {
        namespace: Name,
        id: Name,
        workflow_type: Name,
        policy: i32,
        run_timeout: Span,
        retry: Option<Retry>,
    },
    SignalExternal {
        target: Target,
        name: Name,
        input_len: u32,
    },
    CancelExternal(Target),
    Marker {
        name: Name,
        details_len: u32,
    },
    Upsert {
        key: Name,
        data_len: u32,
        typed: bool,
    },
    Protocol(Name),
}

/// A protocol message of a workflow task completion (update replies).
#[derive(Clone, Debug)]
pub(super) struct BadMessage {
    pub id: Name,
    pub instance: Name,
    /// 0: no body, 1: an acceptance, 2: a response, 3: a rejection, else: random bytes.
    pub body: u8,
}

/// One nonsense command.
#[derive(Clone, Debug)]
pub(super) enum Garbage {
    Start {
        namespace: Name,
        workflow: Name,
        workflow_type: Name,
        task_queue: Name,
        request_id: Name,
        input_len: u32,
        run_timeout: Span,
        execution_timeout: Span,
        task_timeout: Span,
        start_delay: Span,
        conflict: i32,
        reuse: i32,
        cron: u8,
        retry: Option<Retry>,
    },
    RecordTaskStarted {
        activity: bool,
        run: RunPick,
        scheduled_event_id: i64,
    },
    CompleteWorkflowTask {
        token: Token,
        commands: Vec<BadCommand>,
        messages: Vec<BadMessage>,
        sticky: Option<(Name, Span)>,
    },
    FailWorkflowTask {
        token: Token,
        cause: i32,
    },
    /// 0: completed, 1: failed, 2: canceled, 3: heartbeat.
    ActivityRespond {
        token: Token,
        how: u8,
        payload_len: u32,
        retry_delay: Span,
    },
    Signal {
        target: Target,
        name: Name,
        request_id: Name,
        input_len: u32,
    },
    Terminate(Target),
    RequestCancel {
        target: Target,
        first_execution_run: Name,
    },
    Update {
        target: Target,
        update_id: Name,
        name: Name,
        first_execution_run: Name,
    },
    SignalWithStart {
        namespace: Name,
        workflow: Name,
        workflow_type: Name,
        task_queue: Name,
        signal: Name,
        request_id: Name,
        input_len: u32,
        conflict: i32,
    },
    StartWithUpdate {
        workflow: Name,
        task_queue: Name,
        update_id: Name,
        conflict: i32,
        update_target: Name,
    },
    ShutdownWorker {
        namespace: Name,
        queue: Name,
    },
    /// An outbox ack for a message that does not exist (or a wrong kind).
    BogusAck {
        run: RunPick,
        outbox_id: i64,
        kind: u8,
        outcome: u8,
    },
    /// A `FireTimers` stamped with a time far in the future or the past.
    ClockJump(i64),
}

pub(super) fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        1 => Just(Name::Empty),
        10 => (0u8..4).prop_map(Name::Known),
        1 => (1_001u16..3_000).prop_map(Name::Huge),
        1 => any::<u8>().prop_map(Name::Odd),
    ]
}

pub(super) fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        5 => Just(Span::Unset),
        5 => (0u32..20_000).prop_map(Span::Millis),
        1 => prop_oneof![Just(i64::MIN), -1_000i64..0].prop_map(Span::NegativeSeconds),
        1 => Just(Span::NegativeNanos),
        1 => Just(Span::NanosOverflow),
        1 => Just(Span::Max),
    ]
}

fn retry() -> impl Strategy<Value = Retry> {
    let coefficient = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1e300),
        0.5f64..3.0
    ];
    let attempts = prop_oneof![Just(i32::MIN), -3i32..5, Just(i32::MAX)];
    (span(), span(), coefficient, attempts).prop_map(
        |(initial, maximum, coefficient, maximum_attempts)| Retry {
            initial,
            maximum,
            coefficient,
            maximum_attempts,
        },
    )
}

/// An event ID or attempt: small (near the real ones), or extreme.
fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => -2i64..40,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
}

/// Payload sizes: mostly small, sometimes past the test's history size limit.
fn payload_len() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0u32..64, 1 => 40_000u32..120_000]
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0i32..6, 1 => any::<i32>()]
}

fn run_pick() -> impl Strategy<Value = RunPick> {
    prop_oneof![
        2 => Just(RunPick::Current),
        1 => name().prop_map(RunPick::Made),
        3 => any::<u8>().prop_map(RunPick::Existing),
    ]
}

fn namespace() -> impl Strategy<Value = Name> {
    // Mostly the namespace the valid operations use, so that garbage reaches real runs.
    prop_oneof![4 => Just(Name::Known(0)), 1 => name()]
}

fn target() -> impl Strategy<Value = Target> {
    (namespace(), name(), run_pick()).prop_map(|(namespace, workflow, run)| Target {
        namespace,
        workflow,
        run,
    })
}

fn token() -> impl Strategy<Value = Token> {
    let bend = prop_oneof![
        8 => Just(Bend::None),
        2 => number().prop_map(Bend::ScheduledEventId),
        2 => number().prop_map(Bend::StartedEventId),
        2 => prop_oneof![Just(i32::MIN), -1i32..4, Just(i32::MAX)].prop_map(Bend::Attempt),
        1 => Just(Bend::Kind),
        1 => Just(Bend::Namespace),
    ];
    let made = (
        name(),
        name(),
        any::<bool>(),
        number(),
        number(),
        any::<i32>(),
    )
        .prop_map(
            |(workflow, run, activity, scheduled_event_id, started_event_id, attempt)| {
                Token::Made {
                    workflow,
                    run,
                    activity,
                    scheduled_event_id,
                    started_event_id,
                    attempt,
                }
            },
        );
    prop_oneof![
        1 => made,
        3 => (any::<u8>(), bend).prop_map(|(pick, bend)| Token::Bent { pick, bend }),
    ]
}

fn bad_command() -> impl Strategy<Value = BadCommand> {
    let activity = (
        name(),
        name(),
        name(),
        span(),
        span(),
        span(),
        proptest::option::weighted(0.2, retry()),
        payload_len(),
    )
        .prop_map(
            |(
                id,
                activity_type,
                task_queue,
                schedule_to_close,
                start_to_close,
                heartbeat,
                retry,
                input_len,
            )| BadCommand::Activity {
                id,
                activity_type,
                task_queue,
                schedule_to_close,
                start_to_close,
                heartbeat,
                retry,
                input_len,
            },
        );
    let continue_as_new = (name(), name(), span(), span(), payload_len()).prop_map(
        |(workflow_type, task_queue, backoff, run_timeout, input_len)| BadCommand::ContinueAsNew {
            workflow_type,
            task_queue,
            backoff,
            run_timeout,
            input_len,
        },
    );
    let child = (
        namespace(),
        name(),
        name(),
        enum_value(),
        span(),
        proptest::option::weighted(0.2, retry()),
    )
        .prop_map(
            |(namespace, id, workflow_type, policy, run_timeout, retry)| BadCommand::Child {
                namespace,
                id,
                workflow_type,
                policy,
                run_timeout,
                retry,
            },
        );
    prop_oneof![
        2 => (any::<i32>(), any::<u8>()).prop_map(|(command_type, variant)| BadCommand::Mismatched { command_type, variant }),
        4 => activity,
        3 => (name(), span()).prop_map(|(id, after)| BadCommand::Timer { id, after }),
        1 => name().prop_map(BadCommand::CancelTimer),
        1 => number().prop_map(BadCommand::CancelActivity),
        1 => payload_len().prop_map(|result_len| BadCommand::Complete { result_len }),
        1 => (any::<bool>(), payload_len()).prop_map(|(failure, message_len)| BadCommand::Fail { failure, message_len }),
        1 => Just(BadCommand::Cancel),
        1 => continue_as_new,
        2 => child,
        1 => (target(), name(), payload_len()).prop_map(|(target, name, input_len)| BadCommand::SignalExternal { target, name, input_len }),
        1 => target().prop_map(BadCommand::CancelExternal),
        1 => (name(), payload_len()).prop_map(|(name, details_len)| BadCommand::Marker { name, details_len }),
        1 => (name(), payload_len(), any::<bool>()).prop_map(|(key, data_len, typed)| BadCommand::Upsert { key, data_len, typed }),
        1 => name().prop_map(BadCommand::Protocol),
    ]
}

fn bad_message() -> impl Strategy<Value = BadMessage> {
    (name(), name(), any::<u8>()).prop_map(|(id, instance, body)| BadMessage { id, instance, body })
}

fn start() -> impl Strategy<Value = Garbage> {
    (
        (namespace(), name(), name(), name(), name(), payload_len()),
        (span(), span(), span(), span()),
        (
            enum_value(),
            enum_value(),
            any::<u8>(),
            proptest::option::weighted(0.2, retry()),
        ),
    )
        .prop_map(
            |(
                (namespace, workflow, workflow_type, task_queue, request_id, input_len),
                (run_timeout, execution_timeout, task_timeout, start_delay),
                (conflict, reuse, cron, retry),
            )| Garbage::Start {
                namespace,
                workflow,
                workflow_type,
                task_queue,
                request_id,
                input_len,
                run_timeout,
                execution_timeout,
                task_timeout,
                start_delay,
                conflict,
                reuse,
                cron,
                retry,
            },
        )
}

pub(super) fn garbage() -> impl Strategy<Value = Garbage> {
    let complete = (
        token(),
        proptest::collection::vec(bad_command(), 0..4),
        proptest::collection::vec(bad_message(), 0..2),
        proptest::option::weighted(0.2, (name(), span())),
    )
        .prop_map(
            |(token, commands, messages, sticky)| Garbage::CompleteWorkflowTask {
                token,
                commands,
                messages,
                sticky,
            },
        );
    let signal_with_start = (
        (namespace(), name(), name(), name()),
        (name(), name(), payload_len(), enum_value()),
    )
        .prop_map(
            |(
                (namespace, workflow, workflow_type, task_queue),
                (signal, request_id, input_len, conflict),
            )| Garbage::SignalWithStart {
                namespace,
                workflow,
                workflow_type,
                task_queue,
                signal,
                request_id,
                input_len,
                conflict,
            },
        );
    prop_oneof![
        3 => start(),
        3 => (any::<bool>(), run_pick(), number()).prop_map(|(activity, run, scheduled_event_id)| Garbage::RecordTaskStarted { activity, run, scheduled_event_id }),
        4 => complete,
        1 => (token(), enum_value()).prop_map(|(token, cause)| Garbage::FailWorkflowTask { token, cause }),
        3 => (token(), 0u8..4, payload_len(), span()).prop_map(|(token, how, payload_len, retry_delay)| Garbage::ActivityRespond { token, how, payload_len, retry_delay }),
        2 => (target(), name(), name(), payload_len()).prop_map(|(target, name, request_id, input_len)| Garbage::Signal { target, name, request_id, input_len }),
        1 => target().prop_map(Garbage::Terminate),
        1 => (target(), name()).prop_map(|(target, first_execution_run)| Garbage::RequestCancel { target, first_execution_run }),
        2 => (target(), name(), name(), name()).prop_map(|(target, update_id, name, first_execution_run)| Garbage::Update { target, update_id, name, first_execution_run }),
        1 => signal_with_start,
        1 => (name(), name(), name(), enum_value(), name()).prop_map(|(workflow, task_queue, update_id, conflict, update_target)| Garbage::StartWithUpdate { workflow, task_queue, update_id, conflict, update_target }),
        1 => (name(), name()).prop_map(|(namespace, queue)| Garbage::ShutdownWorker { namespace, queue }),
        1 => (run_pick(), number(), 0u8..5, 0u8..5).prop_map(|(run, outbox_id, kind, outcome)| Garbage::BogusAck { run, outbox_id, kind, outcome }),
        1 => prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(253_402_300_799_000i64), // 9999-12-31
            -1_000_000i64..1_000_000,
        ].prop_map(Garbage::ClockJump),
    ]
}
