//! Tests of the shard state machine: a small harness that drives a [`ShardState`] the way the
//! API layer does and checks every emitted history, plus one file per area.

mod activities;
mod activity_cancel;
mod cancel;
mod children;
mod closed_notice;
mod continue_as_new;
mod cron;
mod external;
mod hostile;
mod properties;
mod property;
mod signal_with_start;
mod split;
mod start;
mod sticky;
mod task_gone;
mod timers;
mod updates;
mod workflow_retry;
mod workflow_tasks;

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::events::is_close_event;
use crate::shard::{
    ActivityTaskInfo, Applied, ShardCommand, ShardCommandKind, ShardReply, ShardState,
    WorkflowTaskInfo,
};
use crate::token::TaskToken;
use std::collections::BTreeMap;
use temporalio_protos::temporal::api::{
    command::v1::{
        CancelTimerCommandAttributes, Command, CompleteWorkflowExecutionCommandAttributes,
        FailWorkflowExecutionCommandAttributes, RecordMarkerCommandAttributes,
        ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes, command,
    },
    common::v1::{ActivityType, Payload, Payloads, RetryPolicy, WorkflowType},
    enums::v1::{CommandType, EventType},
    failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo},
    history::v1::{HistoryEvent, history_event::Attributes},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        RespondActivityTaskCompletedRequest, RespondActivityTaskFailedRequest,
        RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskFailedRequest,
        StartWorkflowExecutionRequest,
    },
};

pub(crate) const T0: i64 = 1_700_000_000_000;

/// Drives one shard and keeps every execution's full history, checking on every apply that
/// event IDs are contiguous and nothing follows a close event.
pub(crate) struct Harness {
    pub state: ShardState,
    pub now_ms: i64,
    pub histories: BTreeMap<ExecutionKey, Vec<HistoryEvent>>,
    next_run: u32,
    next_poll: u32,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_state(ShardState::new())
    }

    pub fn with_state(state: ShardState) -> Harness {
        Harness {
            state,
            now_ms: T0,
            histories: BTreeMap::new(),
            next_run: 0,
            next_poll: 0,
        }
    }

    pub fn apply(&mut self, kind: ShardCommandKind) -> Applied {
        let applied = self.state.apply(ShardCommand {
            now_ms: self.now_ms,
            kind,
        });
        if matches!(applied.reply, Some(Err(_))) && applied.changes.is_empty() {
            assert!(
                applied.notices.is_empty(),
                "a rejected command emitted notices"
            );
        }
        for (key, events) in &applied.changes.events {
            let history = self.histories.entry(key.clone()).or_default();
            check_append(history, events);
            history.extend(events.iter().cloned());
            let ms = self
                .state
                .execution(key)
                .expect("an execution with events exists");
            assert_eq!(
                ms.next_event_id,
                history.len() as i64 + 1,
                "next_event_id of {key}"
            );
        }
        applied
    }

    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
    }

    pub fn start(&mut self, workflow_id: &str) -> ExecutionKey {
        let applied = self.start_with(start_request(workflow_id, ""));
        match applied.reply {
            Some(Ok(ShardReply::WorkflowStarted {
                run_id,
                started: true,
            })) => key(workflow_id, &run_id),
            other => panic!("start failed: {other:?}"),
        }
    }

    pub fn start_with(&mut self, request: StartWorkflowExecutionRequest) -> Applied {
        self.next_run += 1;
        let run_id = format!("run-{}", self.next_run);
        self.apply(ShardCommandKind::StartWorkflow { request, run_id })
    }

    /// Starts the scheduled workflow task of `key`.
    pub fn poll_workflow_task(&mut self, key: &ExecutionKey) -> WorkflowTaskInfo {
        let wft = self
            .state
            .execution(key)
            .and_then(|ms| ms.workflow_task.clone())
            .expect("a scheduled workflow task");
        let applied = self.apply(ShardCommandKind::RecordWorkflowTaskStarted {
            execution: key.clone(),
            scheduled_event_id: wft.scheduled_event_id,
            identity: "worker-1".into(),
            poll_request_id: format!("poll-{}", wft.scheduled_event_id),
        });
        match applied.reply {
            Some(Ok(ShardReply::WorkflowTaskStarted(info))) => info,
            other => panic!("workflow task poll failed: {other:?}"),
        }
    }

    pub fn complete_workflow_task(&mut self, token: &TaskToken, commands: Vec<Command>) -> Applied {
        let request = RespondWorkflowTaskCompletedRequest {
            commands,
            identity: "worker-1".into(),
            ..Default::default()
        };
        self.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
            token: token.clone(),
            request,
        })
    }

    /// Polls and completes the next workflow task with `commands`; the completion must succeed.
    pub fn run_workflow_task(
        &mut self,
        key: &ExecutionKey,
        commands: Vec<Command>,
    ) -> WorkflowTaskInfo {
        let info = self.poll_workflow_task(key);
        let applied = self.complete_workflow_task(&info.token, commands);
        assert_eq!(
            applied.reply,
            Some(Ok(ShardReply::Done)),
            "completion of {info:?}"
        );
        info
    }

    pub fn fail_workflow_task(&mut self, token: &TaskToken) -> Applied {
        let request = RespondWorkflowTaskFailedRequest {
            cause: temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure
                as i32,
            failure: Some(Failure { message: "workflow code panicked".into(), ..Default::default() }),
            identity: "worker-1".into(),
            ..Default::default()
        };
        self.apply(ShardCommandKind::RespondWorkflowTaskFailed {
            token: token.clone(),
            request,
        })
    }

    pub fn poll_activity(
        &mut self,
        key: &ExecutionKey,
        scheduled_event_id: i64,
    ) -> Result<ActivityTaskInfo, EngineError> {
        self.next_poll += 1;
        let applied = self.apply(ShardCommandKind::RecordActivityTaskStarted {
            execution: key.clone(),
            scheduled_event_id,
            identity: "activity-worker".into(),
            poll_request_id: format!("apoll-{}", self.next_poll),
        });
        match applied.reply {
            Some(Ok(ShardReply::ActivityTaskStarted(info))) => Ok(*info),
            Some(Err(e)) => Err(e),
            other => panic!("unexpected activity poll reply {other:?}"),
        }
    }

    pub fn complete_activity(&mut self, token: &TaskToken, result: &str) -> Applied {
        let request = RespondActivityTaskCompletedRequest {
            result: Some(payloads(result)),
            identity: "activity-worker".into(),
            ..Default::default()
        };
        self.apply(ShardCommandKind::RespondActivityTaskCompleted {
            token: token.clone(),
            request,
        })
    }

    pub fn fail_activity(&mut self, token: &TaskToken, failure: Failure) -> Applied {
        let request = RespondActivityTaskFailedRequest {
            failure: Some(failure),
            identity: "activity-worker".into(),
            ..Default::default()
        };
        self.apply(ShardCommandKind::RespondActivityTaskFailed {
            token: token.clone(),
            request,
        })
    }

    pub fn fire_timers(&mut self) -> u32 {
        match self.apply(ShardCommandKind::FireTimers).reply {
            Some(Ok(ShardReply::TimersFired { fired })) => fired,
            other => panic!("unexpected FireTimers reply {other:?}"),
        }
    }

    pub fn history(&self, key: &ExecutionKey) -> &[HistoryEvent] {
        self.histories.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn event_types(&self, key: &ExecutionKey) -> Vec<EventType> {
        self.history(key)
            .iter()
            .map(|e| EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified))
            .collect()
    }

    /// The event with this ID.
    pub fn event(&self, key: &ExecutionKey, event_id: i64) -> &HistoryEvent {
        &self.history(key)[(event_id - 1) as usize]
    }
}

/// Checks that `new` continues `history`: contiguous IDs, increasing task IDs, no event after a
/// close event.
pub(crate) fn check_append(history: &[HistoryEvent], new: &[HistoryEvent]) {
    let mut closed = history.last().is_some_and(is_close_event);
    let mut last_task_id = history.last().map_or(0, |e| e.task_id);
    for (expected_id, event) in (history.len() as i64 + 1..).zip(new) {
        assert!(!closed, "event {} follows the close event", event.event_id);
        assert_eq!(event.event_id, expected_id, "event IDs are contiguous");
        assert!(event.task_id > last_task_id, "task IDs increase");
        assert!(event.event_time.is_some() && event.attributes.is_some());
        last_task_id = event.task_id;
        closed = is_close_event(event);
    }
}

pub(crate) fn key(workflow_id: &str, run_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: run_id.into(),
    }
}

pub(crate) fn start_request(workflow_id: &str, request_id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "OrderWorkflow".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "orders".into(),
            ..Default::default()
        }),
        input: Some(payloads("input")),
        identity: "client-1".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

pub(crate) fn payloads(text: &str) -> Payloads {
    let mut payload = Payload {
        data: format!("\"{text}\"").into_bytes(),
        ..Default::default()
    };
    // Several metadata entries, so that map ordering (canonical encoding) is exercised.
    for (key, value) in [
        ("encoding", "json/plain"),
        ("messageType", "perdura.Test"),
        ("codec", "none"),
        ("note", text),
    ] {
        payload
            .metadata
            .insert(key.into(), value.as_bytes().to_vec());
    }
    Payloads {
        payloads: vec![payload],
    }
}

pub(crate) fn duration_ms(ms: i64) -> prost_wkt_types::Duration {
    crate::shard::time::duration(ms)
}

pub(crate) fn schedule_activity(
    activity_id: &str,
    start_to_close_ms: i64,
    retry: Option<RetryPolicy>,
) -> Command {
    let attributes = ScheduleActivityTaskCommandAttributes {
        activity_id: activity_id.into(),
        activity_type: Some(ActivityType {
            name: format!("{activity_id}_type"),
        }),
        input: Some(payloads(activity_id)),
        start_to_close_timeout: Some(duration_ms(start_to_close_ms)),
        retry_policy: retry,
        ..Default::default()
    };
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
            attributes,
        )),
        ..Default::default()
    }
}

pub(crate) fn start_timer(timer_id: &str, fire_after_ms: i64) -> Command {
    let attributes = StartTimerCommandAttributes {
        timer_id: timer_id.into(),
        start_to_fire_timeout: Some(duration_ms(fire_after_ms)),
    };
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(command::Attributes::StartTimerCommandAttributes(attributes)),
        ..Default::default()
    }
}

pub(crate) fn cancel_timer(timer_id: &str) -> Command {
    Command {
        command_type: CommandType::CancelTimer as i32,
        attributes: Some(command::Attributes::CancelTimerCommandAttributes(
            CancelTimerCommandAttributes {
                timer_id: timer_id.into(),
            },
        )),
        ..Default::default()
    }
}

pub(crate) fn record_marker(name: &str) -> Command {
    let mut details = std::collections::HashMap::new();
    details.insert("data".to_string(), payloads(name));
    Command {
        command_type: CommandType::RecordMarker as i32,
        attributes: Some(command::Attributes::RecordMarkerCommandAttributes(
            RecordMarkerCommandAttributes {
                marker_name: name.into(),
                details,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

pub(crate) fn complete_workflow(result: &str) -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes {
                    result: Some(payloads(result)),
                },
            ),
        ),
        ..Default::default()
    }
}

pub(crate) fn fail_workflow(message: &str) -> Command {
    Command {
        command_type: CommandType::FailWorkflowExecution as i32,
        attributes: Some(command::Attributes::FailWorkflowExecutionCommandAttributes(
            FailWorkflowExecutionCommandAttributes {
                failure: Some(app_failure(message, false)),
            },
        )),
        ..Default::default()
    }
}

pub(crate) fn app_failure(message: &str, non_retryable: bool) -> Failure {
    Failure {
        message: message.into(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: "AppError".into(),
                non_retryable,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// The attributes of an event, for assertions.
pub(crate) fn attrs(event: &HistoryEvent) -> &Attributes {
    event.attributes.as_ref().expect("events have attributes")
}
