//! [`Draft`]: the working copy of one execution while a command is applied, with the primitives
//! every handler builds on — append, buffer, flush, schedule a workflow task, close.

use crate::shard::close_effects;
use crate::shard::events::new_event;
use crate::shard::mutable_state::{MutableState, WorkflowTaskState};
use crate::shard::new_run::NextRun;
use crate::shard::speculative::scheduled_attributes;
use prost::Message;
use std::collections::BTreeMap;
use temporalio_protos::temporal::api::{
    enums::v1::{WorkflowExecutionStatus, WorkflowTaskFailedCause},
    failure::v1::Failure,
    history::v1::{
        HistoryEvent, WorkflowExecutionTerminatedEventAttributes,
        WorkflowTaskFailedEventAttributes, history_event::Attributes,
    },
};

/// A working copy of one execution plus the events appended to it by the current command. It is
/// written back to the shard only if the command is not rejected.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub ms: MutableState,
    /// Events appended by this command, in event-ID order (task IDs are assigned on commit).
    pub events: Vec<HistoryEvent>,
    pub now_ms: i64,
    /// The successor run this run asked for when it closed (continue-as-new, retry, cron);
    /// created by `Txn::finish`.
    pub next_run: Option<NextRun>,
}

impl Draft {
    pub fn new(ms: MutableState, now_ms: i64) -> Draft {
        Draft {
            ms,
            events: Vec::new(),
            now_ms,
            next_run: None,
        }
    }

    /// Appends an event with the next event ID and returns that ID.
    pub fn append(&mut self, attributes: Attributes) -> i64 {
        let event = new_event(attributes, self.now_ms);
        self.append_event(event)
    }

    fn append_event(&mut self, event: HistoryEvent) -> i64 {
        // Whatever is written while a speculative task is started ends that task: its own
        // events come first.
        if self
            .ms
            .workflow_task
            .as_ref()
            .is_some_and(|w| w.speculative && w.is_started())
        {
            self.materialize_speculative_task();
        }
        self.push_event(event)
    }

    /// Appends an event as is (no speculative-task handling).
    pub(crate) fn push_event(&mut self, mut event: HistoryEvent) -> i64 {
        debug_assert_eq!(
            self.ms.close_event_id, 0,
            "an event after the close event of {}",
            self.ms.key
        );
        event.event_id = self.ms.next_event_id;
        self.ms.next_event_id += 1;
        self.ms.history_size_bytes = self
            .ms
            .history_size_bytes
            .saturating_add(event.encoded_len() as i64);
        self.events.push(event);
        self.ms.next_event_id - 1
    }

    /// Records an event that did not come from the started workflow task: while a workflow task
    /// is started it is buffered (and `None` is returned), otherwise it is appended.
    pub fn record(&mut self, attributes: Attributes) -> Option<i64> {
        if self.ms.started_workflow_task().is_some() {
            self.ms
                .buffered_events
                .push(new_event(attributes, self.now_ms));
            None
        } else {
            Some(self.append(attributes))
        }
    }

    /// Appends the buffered events, giving them event IDs now. An activity's terminal event that
    /// was buffered together with its ActivityTaskStarted gets that event's new ID as its
    /// `started_event_id`. Returns whether any event was flushed.
    pub fn flush_buffer(&mut self) -> bool {
        let buffered = std::mem::take(&mut self.ms.buffered_events);
        let flushed = !buffered.is_empty();
        let mut started_ids: BTreeMap<i64, i64> = BTreeMap::new();
        for mut event in buffered {
            link_started_event(&mut event, &started_ids);
            let started_of = match &event.attributes {
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                    Some(a.scheduled_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a)) => {
                    Some(a.initiated_event_id)
                }
                _ => None,
            };
            let id = self.append_event(event);
            if let Some(scheduling_event_id) = started_of {
                started_ids.insert(scheduling_event_id, id);
                if let Some(child) = self.ms.children.get_mut(&scheduling_event_id) {
                    child.started_event_id = id;
                }
            }
        }
        flushed
    }

    /// Appends WorkflowTaskScheduled and makes it the current workflow task. A sticky run's task
    /// goes to its sticky queue, which the event names (kind STICKY, normal name), as Temporal
    /// writes it.
    pub fn schedule_workflow_task(&mut self, attempt: i32) {
        let mut wft = WorkflowTaskState {
            scheduled_event_id: 0,
            started_event_id: 0,
            attempt,
            scheduled_time_ms: self.now_ms,
            started_time_ms: 0,
            timeout_ms: self.ms.workflow_task_timeout_ms,
            identity: String::new(),
            request_id: String::new(),
            speculative: false,
            started_history_size_bytes: 0,
            suggest_continue_as_new_reasons: Vec::new(),
            sticky_task_queue: self.ms.sticky_task_queue.clone(),
            sticky_schedule_to_start_timeout_ms: self.ms.sticky_schedule_to_start_timeout_ms,
        };
        wft.scheduled_event_id = self.append(scheduled_attributes(&self.ms, &wft));
        self.ms.workflow_task = Some(wft);
    }

    /// The "WFT+" rule: schedule a workflow task unless one is already scheduled or started (a
    /// started one is followed by a new one when it ends with buffered events), or the first one
    /// is still delayed by a back-off (it will see the new events).
    pub fn schedule_workflow_task_if_none(&mut self) {
        if self.ms.is_running()
            && self.ms.workflow_task.is_none()
            && self.ms.first_workflow_task_time_ms == 0
        {
            self.schedule_workflow_task(1);
        }
    }

    /// Ends the current workflow task with WorkflowTaskFailed and flushes the buffer; like every
    /// failed or timed-out task, it ends the run's stickiness (the worker's cache is suspect).
    /// The caller schedules the next attempt. Returns the failed task.
    pub fn fail_workflow_task(
        &mut self,
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: String,
    ) -> Option<WorkflowTaskState> {
        self.materialize_speculative_task();
        let wft = self.ms.workflow_task.take()?;
        self.ms.clear_sticky();
        self.append(Attributes::WorkflowTaskFailedEventAttributes(
            WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: wft.started_event_id,
                cause: cause as i32,
                failure,
                identity,
                ..Default::default()
            },
        ));
        self.flush_buffer();
        Some(wft)
    }

    /// Closes the run with `close_event`. A started workflow task is failed first (cause
    /// FORCE_CLOSE_COMMAND, as Temporal does on terminate) and buffered events are flushed, so
    /// the close event is the last event. Pending activities and timers are dropped without
    /// events; parent-close policies and the report to a parent go into the outbox
    /// ([`close_effects`]). Every way a run closes goes through here. Returns the close event's ID.
    pub fn close(&mut self, status: WorkflowExecutionStatus, close_event: Attributes) -> i64 {
        if self.ms.started_workflow_task().is_some() {
            let message = "Workflow task was failed because the workflow execution was closed.";
            let failure = Failure {
                message: message.into(),
                ..Default::default()
            };
            self.fail_workflow_task(
                WorkflowTaskFailedCause::ForceCloseCommand,
                Some(failure),
                String::new(),
            );
        }
        self.flush_buffer();
        let id = self.append(close_event);
        self.ms.status = status as i32;
        self.ms.close_time_ms = self.now_ms;
        self.ms.close_event_id = id;
        self.ms.workflow_task = None;
        self.ms.first_workflow_task_time_ms = 0;
        self.ms.activities.clear();
        self.ms.timers.clear();
        self.abort_updates();
        close_effects::on_close(self, id);
        id
    }

    /// Terminates the run (server-initiated: ID conflict policy or a limit).
    pub fn terminate(&mut self, reason: &str, identity: &str) -> i64 {
        let attributes = WorkflowExecutionTerminatedEventAttributes {
            reason: reason.into(),
            details: None,
            identity: identity.into(),
        };
        self.close(
            WorkflowExecutionStatus::Terminated,
            Attributes::WorkflowExecutionTerminatedEventAttributes(attributes),
        )
    }
}

/// Sets the `started_event_id` of a buffered activity terminal event whose ActivityTaskStarted
/// was flushed just before it.
fn link_started_event(event: &mut HistoryEvent, started_ids: &BTreeMap<i64, i64>) {
    let (scheduled, started) = match &mut event.attributes {
        Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
            (a.scheduled_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ActivityTaskFailedEventAttributes(a)) => {
            (a.scheduled_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
            (a.scheduled_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ActivityTaskCanceledEventAttributes(a)) => {
            (a.scheduled_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => {
            (a.initiated_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ChildWorkflowExecutionFailedEventAttributes(a)) => {
            (a.initiated_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ChildWorkflowExecutionCanceledEventAttributes(a)) => {
            (a.initiated_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a)) => {
            (a.initiated_event_id, &mut a.started_event_id)
        }
        Some(Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a)) => {
            (a.initiated_event_id, &mut a.started_event_id)
        }
        _ => return,
    };
    if *started == 0
        && let Some(id) = started_ids.get(&scheduled)
    {
        *started = *id;
    }
}
