//! The in-memory indexes of a shard — timers and tasks ready for dispatch. Both are pure
//! functions of the [`MutableState`]s: [`timer_entries`] and [`ready_tasks`] list what one
//! execution contributes, so `restore` rebuilds the indexes exactly and `apply` keeps them
//! current by replacing the entries of every execution it touched.

use crate::ids::ExecutionKey;
use crate::shard::applied::PendingTask;
use crate::shard::mutable_state::{ActivityPhase, MutableState};
use crate::token::TaskKind;
use temporalio_protos::temporal::api::enums::v1::TimeoutType;

/// One entry of the timer index: at `fire_at_ms`, `FireTimers` handles `kind` for `execution`.
/// The derived order — time, then execution, then kind — is the firing order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerEntry {
    pub fire_at_ms: i64,
    pub execution: ExecutionKey,
    pub kind: TimerKind,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// Start-to-close timeout of the started workflow task.
    WorkflowTaskTimeout {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// Schedule-to-start timeout of a workflow task waiting on a sticky queue.
    StickyScheduleToStart {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// A user timer (StartTimer command). Timers due at the same time fire in start order.
    UserTimer {
        started_event_id: i64,
        timer_id: String,
    },
    /// The retry back-off of an activity attempt elapsed: dispatch it.
    ActivityRetry {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// An activity timeout; `timeout_type` is a `TimeoutType` value. Schedule-to-close entries
    /// carry attempt 0 because they span all attempts.
    ActivityTimeout {
        scheduled_event_id: i64,
        attempt: i32,
        timeout_type: i32,
    },
    WorkflowRunTimeout,
    WorkflowExecutionTimeout,
    /// The delayed first workflow task of a run is due (continue-as-new back-off, workflow
    /// retry back-off, cron).
    FirstWorkflowTask,
}

/// Every timer-index entry of one execution.
pub(crate) fn timer_entries(ms: &MutableState) -> Vec<TimerEntry> {
    let mut entries = Vec::new();
    if !ms.is_running() {
        return entries;
    }
    let mut push = |fire_at_ms: i64, kind: TimerKind| {
        entries.push(TimerEntry {
            fire_at_ms,
            execution: ms.key.clone(),
            kind,
        });
    };
    if let Some(wft) = ms.started_workflow_task() {
        let kind = TimerKind::WorkflowTaskTimeout {
            scheduled_event_id: wft.scheduled_event_id,
            attempt: wft.attempt,
        };
        push(wft.started_time_ms.saturating_add(wft.timeout_ms), kind);
    }
    if let Some(wft) = ms
        .workflow_task
        .as_ref()
        .filter(|w| !w.is_started() && w.is_sticky())
    {
        let kind = TimerKind::StickyScheduleToStart {
            scheduled_event_id: wft.scheduled_event_id,
            attempt: wft.attempt,
        };
        let at = wft
            .scheduled_time_ms
            .saturating_add(wft.sticky_schedule_to_start_timeout_ms);
        push(at, kind);
    }
    for timer in ms.timers.values() {
        let kind = TimerKind::UserTimer {
            timer_id: timer.timer_id.clone(),
            started_event_id: timer.started_event_id,
        };
        push(timer.fire_time_ms, kind);
    }
    for activity in ms.activities.values() {
        let scheduled_event_id = activity.scheduled_event_id;
        let attempt = activity.attempt;
        let timeout = |timeout_type: TimeoutType| TimerKind::ActivityTimeout {
            scheduled_event_id,
            attempt,
            timeout_type: timeout_type as i32,
        };
        match activity.phase {
            ActivityPhase::Backoff => {
                let kind = TimerKind::ActivityRetry {
                    scheduled_event_id,
                    attempt,
                };
                push(activity.current_attempt_scheduled_time_ms, kind);
            }
            ActivityPhase::Ready => {
                if activity.schedule_to_start_timeout_ms > 0 {
                    let at = activity.current_attempt_scheduled_time_ms
                        + activity.schedule_to_start_timeout_ms;
                    push(at, timeout(TimeoutType::ScheduleToStart));
                }
            }
            ActivityPhase::Started => {
                if activity.start_to_close_timeout_ms > 0 {
                    let at = activity.started_time_ms + activity.start_to_close_timeout_ms;
                    push(at, timeout(TimeoutType::StartToClose));
                }
                if activity.heartbeat_timeout_ms > 0 {
                    let last_beat = activity
                        .started_time_ms
                        .max(activity.last_heartbeat_time_ms);
                    push(
                        last_beat + activity.heartbeat_timeout_ms,
                        timeout(TimeoutType::Heartbeat),
                    );
                }
            }
        }
        if activity.schedule_to_close_timeout_ms > 0 {
            let kind = TimerKind::ActivityTimeout {
                scheduled_event_id,
                attempt: 0,
                timeout_type: TimeoutType::ScheduleToClose as i32,
            };
            push(
                activity.scheduled_time_ms + activity.schedule_to_close_timeout_ms,
                kind,
            );
        }
    }
    if ms.first_workflow_task_time_ms > 0 {
        push(ms.first_workflow_task_time_ms, TimerKind::FirstWorkflowTask);
    }
    if ms.run_expiration_time_ms > 0 {
        push(ms.run_expiration_time_ms, TimerKind::WorkflowRunTimeout);
    }
    if ms.execution_expiration_time_ms > 0 {
        push(
            ms.execution_expiration_time_ms,
            TimerKind::WorkflowExecutionTimeout,
        );
    }
    entries
}

/// Every task of one execution that waits in a task queue for a poller.
pub(crate) fn ready_tasks(ms: &MutableState) -> Vec<PendingTask> {
    let mut tasks = Vec::new();
    if !ms.is_running() {
        return tasks;
    }
    let task = |kind: TaskKind, task_queue: &str, scheduled_event_id: i64| PendingTask {
        kind,
        namespace: ms.key.namespace.clone(),
        task_queue: task_queue.to_string(),
        execution: ms.key.clone(),
        scheduled_event_id,
    };
    if let Some(wft) = &ms.workflow_task
        && !wft.is_started()
    {
        let queue = if wft.is_sticky() {
            &wft.sticky_task_queue
        } else {
            &ms.task_queue
        };
        tasks.push(task(TaskKind::Workflow, queue, wft.scheduled_event_id));
    }
    for activity in ms.activities.values() {
        if activity.phase == ActivityPhase::Ready {
            tasks.push(task(
                TaskKind::Activity,
                &activity.task_queue,
                activity.scheduled_event_id,
            ));
        }
    }
    tasks
}

/// One entry of the outbox index: a message of `execution` waiting for delivery. Ordered by
/// execution, then outbox ID (the driver's delivery order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxEntry {
    pub execution: ExecutionKey,
    pub outbox_id: i64,
}

/// Every pending outbox message of one execution. A closed run keeps delivering: its close
/// itself may have produced messages (the child's close, parent-close policies).
pub(crate) fn outbox_entries(ms: &MutableState) -> Vec<OutboxEntry> {
    ms.outbox
        .keys()
        .map(|&outbox_id| OutboxEntry {
            execution: ms.key.clone(),
            outbox_id,
        })
        .collect()
}
