//! Speculative workflow tasks, as the real server makes them for updates: when an update
//! arrives and its run has no workflow task, the task is scheduled *without* writing its
//! WorkflowTaskScheduled and WorkflowTaskStarted events. The worker sees them (rebuilt from the
//! task's state, with the event IDs the task reserved), but they are written only if:
//! * the task's completion writes anything (commands, accepted or completed updates, buffered
//!   events) — then Scheduled and Started come first, with their reserved IDs;
//! * the started task fails or times out — then they precede its Failed/TimedOut event;
//! * another event is appended while the task is only scheduled — then the task becomes a
//!   normal one and its Scheduled event follows that event (a new ID).
//!
//! A completion that only rejects updates writes nothing, so a rejected update leaves no trace
//! in history. Invariant: a speculative task's `scheduled_event_id` is the run's
//! `next_event_id` (nothing was written since it was scheduled).

use crate::shard::draft::Draft;
use crate::shard::events::new_event;
use crate::shard::mutable_state::{MutableState, WorkflowTaskState};
use crate::shard::time::duration;
use temporalio_protos::temporal::api::{
    enums::v1::TaskQueueKind,
    history::v1::{
        HistoryEvent, WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
        history_event::Attributes,
    },
    taskqueue::v1::TaskQueue,
};

/// WorkflowTaskScheduled of a task.
pub(crate) fn scheduled_attributes(ms: &MutableState, wft: &WorkflowTaskState) -> Attributes {
    // A sticky task names its sticky queue (kind STICKY, with the normal name), as Temporal writes it.
    let task_queue = if wft.is_sticky() {
        TaskQueue {
            name: wft.sticky_task_queue.clone(),
            kind: TaskQueueKind::Sticky as i32,
            normal_name: ms.task_queue.clone(),
        }
    } else {
        TaskQueue {
            name: ms.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }
    };
    Attributes::WorkflowTaskScheduledEventAttributes(WorkflowTaskScheduledEventAttributes {
        task_queue: Some(task_queue),
        start_to_close_timeout: Some(duration(wft.timeout_ms)),
        attempt: wft.attempt,
    })
}

/// WorkflowTaskStarted of a started task.
pub(crate) fn started_attributes(wft: &WorkflowTaskState) -> Attributes {
    Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
        scheduled_event_id: wft.scheduled_event_id,
        identity: wft.identity.clone(),
        request_id: wft.request_id.clone(),
        suggest_continue_as_new: !wft.suggest_continue_as_new_reasons.is_empty(),
        suggest_continue_as_new_reasons: wft.suggest_continue_as_new_reasons.clone(),
        history_size_bytes: wft.started_history_size_bytes,
        ..Default::default()
    })
}

/// The unwritten events of a speculative task as the worker sees them: Scheduled, and Started
/// once started, with their reserved IDs. Empty for a normal task.
pub fn speculative_events(ms: &MutableState) -> Vec<HistoryEvent> {
    let Some(wft) = ms.workflow_task.as_ref().filter(|w| w.speculative) else {
        return Vec::new();
    };
    let mut scheduled = new_event(scheduled_attributes(ms, wft), wft.scheduled_time_ms);
    scheduled.event_id = wft.scheduled_event_id;
    let mut events = vec![scheduled];
    if wft.is_started() {
        let mut started = new_event(started_attributes(wft), wft.started_time_ms);
        started.event_id = wft.started_event_id;
        events.push(started);
    }
    events
}

impl Draft {
    /// Schedules a speculative workflow task if the run is open and has no task. A run whose
    /// first task is delayed (a back-off) gets none: that first task carries the updates.
    pub fn schedule_speculative_task_if_none(&mut self) {
        if !self.ms.is_running()
            || self.ms.workflow_task.is_some()
            || self.ms.first_workflow_task_time_ms > 0
        {
            return;
        }
        self.ms.workflow_task = Some(WorkflowTaskState {
            scheduled_event_id: self.ms.next_event_id,
            started_event_id: 0,
            attempt: 1,
            scheduled_time_ms: self.now_ms,
            started_time_ms: 0,
            timeout_ms: self.ms.workflow_task_timeout_ms,
            identity: String::new(),
            request_id: String::new(),
            speculative: true,
            started_history_size_bytes: 0,
            suggest_continue_as_new_reasons: Vec::new(),
            sticky_task_queue: self.ms.sticky_task_queue.clone(),
            sticky_schedule_to_start_timeout_ms: self.ms.sticky_schedule_to_start_timeout_ms,
        });
    }

    pub fn has_speculative_task(&self) -> bool {
        self.ms
            .workflow_task
            .as_ref()
            .is_some_and(|w| w.speculative)
    }

    /// Writes the events of a speculative task, which becomes a normal task. Its IDs stay the
    /// reserved ones unless an event was written since it was scheduled.
    pub fn materialize_speculative_task(&mut self) {
        let Some(mut wft) = self.ms.workflow_task.clone().filter(|w| w.speculative) else {
            return;
        };
        wft.speculative = false;
        let scheduled = new_event(scheduled_attributes(&self.ms, &wft), wft.scheduled_time_ms);
        wft.scheduled_event_id = self.push_event(scheduled);
        if wft.is_started() {
            let started = new_event(started_attributes(&wft), wft.started_time_ms);
            wft.started_event_id = self.push_event(started);
        }
        self.ms.workflow_task = Some(wft);
    }

    /// At the end of a command: a speculative task that is only scheduled while events were
    /// written after it was scheduled becomes a normal task (its Scheduled event follows them,
    /// as in the real server).
    pub fn settle_speculative_task(&mut self) {
        let stale = self.ms.workflow_task.as_ref().is_some_and(|w| {
            w.speculative && !w.is_started() && w.scheduled_event_id != self.ms.next_event_id
        });
        if stale {
            self.materialize_speculative_task();
        }
    }
}
