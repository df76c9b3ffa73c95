//! Construction of history events: type, time and the attributes shared by several handlers.

use crate::shard::time::timestamp;
use temporalio_protos::temporal::api::{
    enums::v1::EventType,
    history::v1::{HistoryEvent, history_event::Attributes},
};

/// A new event with its type and time set; the event ID and task ID are assigned on append.
pub(crate) fn new_event(attributes: Attributes, time_ms: i64) -> HistoryEvent {
    HistoryEvent {
        event_time: Some(timestamp(time_ms)),
        event_type: event_type(&attributes) as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

/// The event type that goes with the attributes.
pub(crate) fn event_type(attributes: &Attributes) -> EventType {
    use Attributes as A;
    match attributes {
        A::WorkflowExecutionStartedEventAttributes(_) => EventType::WorkflowExecutionStarted,
        A::WorkflowExecutionCompletedEventAttributes(_) => EventType::WorkflowExecutionCompleted,
        A::WorkflowExecutionFailedEventAttributes(_) => EventType::WorkflowExecutionFailed,
        A::WorkflowExecutionTimedOutEventAttributes(_) => EventType::WorkflowExecutionTimedOut,
        A::WorkflowExecutionTerminatedEventAttributes(_) => EventType::WorkflowExecutionTerminated,
        A::WorkflowTaskScheduledEventAttributes(_) => EventType::WorkflowTaskScheduled,
        A::WorkflowTaskStartedEventAttributes(_) => EventType::WorkflowTaskStarted,
        A::WorkflowTaskCompletedEventAttributes(_) => EventType::WorkflowTaskCompleted,
        A::WorkflowTaskTimedOutEventAttributes(_) => EventType::WorkflowTaskTimedOut,
        A::WorkflowTaskFailedEventAttributes(_) => EventType::WorkflowTaskFailed,
        A::ActivityTaskScheduledEventAttributes(_) => EventType::ActivityTaskScheduled,
        A::ActivityTaskStartedEventAttributes(_) => EventType::ActivityTaskStarted,
        A::ActivityTaskCompletedEventAttributes(_) => EventType::ActivityTaskCompleted,
        A::ActivityTaskFailedEventAttributes(_) => EventType::ActivityTaskFailed,
        A::ActivityTaskTimedOutEventAttributes(_) => EventType::ActivityTaskTimedOut,
        A::ActivityTaskCancelRequestedEventAttributes(_) => EventType::ActivityTaskCancelRequested,
        A::ActivityTaskCanceledEventAttributes(_) => EventType::ActivityTaskCanceled,
        A::TimerStartedEventAttributes(_) => EventType::TimerStarted,
        A::TimerFiredEventAttributes(_) => EventType::TimerFired,
        A::TimerCanceledEventAttributes(_) => EventType::TimerCanceled,
        A::MarkerRecordedEventAttributes(_) => EventType::MarkerRecorded,
        A::WorkflowExecutionSignaledEventAttributes(_) => EventType::WorkflowExecutionSignaled,
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::WorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionCanceledEventAttributes(_) => EventType::WorkflowExecutionCanceled,
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
            EventType::WorkflowExecutionContinuedAsNew
        }
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => {
            EventType::UpsertWorkflowSearchAttributes
        }
        A::WorkflowPropertiesModifiedEventAttributes(_) => EventType::WorkflowPropertiesModified,
        A::WorkflowExecutionUpdateAcceptedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateAccepted
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateCompleted
        }
        A::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionInitiated
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionStartedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionStarted
        }
        A::ChildWorkflowExecutionCompletedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCompleted
        }
        A::ChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCanceled
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTimedOut
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTerminated
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionInitiated
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionSignaled
        }
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionInitiated
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionCancelRequested
        }
        // The engine produces none of the remaining kinds yet.
        _ => EventType::Unspecified,
    }
}

/// Whether the event closes its run: nothing may follow it.
pub fn is_close_event(event: &HistoryEvent) -> bool {
    use Attributes as A;
    matches!(
        event.attributes,
        Some(
            A::WorkflowExecutionCompletedEventAttributes(_)
                | A::WorkflowExecutionFailedEventAttributes(_)
                | A::WorkflowExecutionTimedOutEventAttributes(_)
                | A::WorkflowExecutionTerminatedEventAttributes(_)
                | A::WorkflowExecutionCanceledEventAttributes(_)
                | A::WorkflowExecutionContinuedAsNewEventAttributes(_)
        )
    )
}
