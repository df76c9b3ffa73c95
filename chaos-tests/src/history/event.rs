//! One history event as the harness observed it — in a client read, a workflow task, or the
//! end-of-run final read — reduced to the attributes the checkers need.

use crate::ids::{ActivityId, EventId, RaftIndex, RequestId, RunId, TimerId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Temporal event type, by its name without the `EVENT_TYPE_` prefix in CamelCase
/// (`WorkflowExecutionStarted`). Types no checker looks at are kept by name in [`EventType::Other`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventType {
    WorkflowExecutionStarted,
    WorkflowExecutionSignaled,
    ActivityTaskScheduled,
    ActivityTaskStarted,
    ActivityTaskCompleted,
    ActivityTaskFailed,
    ActivityTaskTimedOut,
    ActivityTaskCanceled,
    TimerStarted,
    TimerFired,
    TimerCanceled,
    WorkflowExecutionCompleted,
    WorkflowExecutionFailed,
    WorkflowExecutionTimedOut,
    WorkflowExecutionCanceled,
    WorkflowExecutionTerminated,
    WorkflowExecutionContinuedAsNew,
    /// Any other type (workflow task events, markers, child workflow events, …).
    Other(String),
}

/// The named variants and their wire names, in one table so parsing and printing agree.
const NAMED: [(EventType, &str); 17] = [
    (
        EventType::WorkflowExecutionStarted,
        "WorkflowExecutionStarted",
    ),
    (
        EventType::WorkflowExecutionSignaled,
        "WorkflowExecutionSignaled",
    ),
    (EventType::ActivityTaskScheduled, "ActivityTaskScheduled"),
    (EventType::ActivityTaskStarted, "ActivityTaskStarted"),
    (EventType::ActivityTaskCompleted, "ActivityTaskCompleted"),
    (EventType::ActivityTaskFailed, "ActivityTaskFailed"),
    (EventType::ActivityTaskTimedOut, "ActivityTaskTimedOut"),
    (EventType::ActivityTaskCanceled, "ActivityTaskCanceled"),
    (EventType::TimerStarted, "TimerStarted"),
    (EventType::TimerFired, "TimerFired"),
    (EventType::TimerCanceled, "TimerCanceled"),
    (
        EventType::WorkflowExecutionCompleted,
        "WorkflowExecutionCompleted",
    ),
    (
        EventType::WorkflowExecutionFailed,
        "WorkflowExecutionFailed",
    ),
    (
        EventType::WorkflowExecutionTimedOut,
        "WorkflowExecutionTimedOut",
    ),
    (
        EventType::WorkflowExecutionCanceled,
        "WorkflowExecutionCanceled",
    ),
    (
        EventType::WorkflowExecutionTerminated,
        "WorkflowExecutionTerminated",
    ),
    (
        EventType::WorkflowExecutionContinuedAsNew,
        "WorkflowExecutionContinuedAsNew",
    ),
];

impl EventType {
    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            EventType::Other(name) => name,
            named => NAMED
                .iter()
                .find(|(variant, _)| variant == named)
                .map_or("?", |(_, name)| name),
        }
    }

    /// Whether this event closes its run; a run has at most one, and it is the last event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventType::WorkflowExecutionCompleted
                | EventType::WorkflowExecutionFailed
                | EventType::WorkflowExecutionTimedOut
                | EventType::WorkflowExecutionCanceled
                | EventType::WorkflowExecutionTerminated
                | EventType::WorkflowExecutionContinuedAsNew
        )
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        // Accept the proto enum spelling too (`EVENT_TYPE_TIMER_FIRED`), as a harness that
        // prints `EventType::as_str_name` would write it.
        let camel = match name.strip_prefix("EVENT_TYPE_") {
            Some(screaming) => screaming
                .split('_')
                .map(|word| {
                    let lower = word.to_ascii_lowercase();
                    let mut chars = lower.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect::<String>(),
            None => name,
        };
        NAMED
            .iter()
            .find(|(_, wire)| *wire == camel)
            .map_or(EventType::Other(camel), |(variant, _)| variant.clone())
    }
}

impl From<EventType> for String {
    fn from(event_type: EventType) -> Self {
        event_type.name().to_owned()
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The attributes of an event that the checkers read. Which ones are set depends on the type;
/// payloads are carried as the harness's decoded string value (the workload writes one string
/// per payload), so results and signal values compare as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventAttributes {
    /// `WorkflowExecutionStarted`: the start request's ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// `WorkflowExecutionSignaled`: the signal name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<String>,
    /// `WorkflowExecutionSignaled`: the signal's input value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_input: Option<String>,
    /// `WorkflowExecutionSignaled`: the signal request's ID, where the server records it
    /// (Temporal's event has no such field; the checkers then match signals by input value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_request_id: Option<RequestId>,
    /// `ActivityTaskScheduled`: the activity ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<ActivityId>,
    /// `ActivityTask{Started,Completed,Failed,TimedOut,Canceled}`: the scheduled event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_event_id: Option<EventId>,
    /// `ActivityTaskCompleted` / `WorkflowExecutionCompleted`: the result value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `Timer{Started,Fired,Canceled}`: the timer ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_id: Option<TimerId>,
    /// `TimerStarted`: the start-to-fire timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_duration_ms: Option<u64>,
    /// `WorkflowExecutionContinuedAsNew`: the next run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_run_id: Option<RunId>,
}

/// One history event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEvent {
    pub event_id: EventId,
    pub event_type: EventType,
    #[serde(default)]
    pub attributes: EventAttributes,
    /// The server's event time (leader-stamped wall clock, may be skewed), if read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_ms: Option<i64>,
    /// The shard Raft log index of the entry that appended this event, where the server exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_index: Option<RaftIndex>,
}

impl ObservedEvent {
    /// Whether two observations show the same event. The Raft index takes part only when both
    /// observations carry one (a client read may lack it where the final read has it).
    pub fn same_event(&self, other: &ObservedEvent) -> bool {
        let raft_index_agrees = match (self.raft_index, other.raft_index) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.event_id == other.event_id
            && self.event_type == other.event_type
            && self.attributes == other.attributes
            && self.event_time_ms == other.event_time_ms
            && raft_index_agrees
    }
}

impl fmt::Display for ObservedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.event_id, self.event_type)?;
        let a = &self.attributes;
        let fields: [(&str, Option<String>); 10] = [
            ("request_id", a.request_id.as_ref().map(ToString::to_string)),
            ("signal", a.signal_name.clone()),
            ("input", a.signal_input.clone()),
            (
                "signal_request_id",
                a.signal_request_id.as_ref().map(ToString::to_string),
            ),
            (
                "activity_id",
                a.activity_id.as_ref().map(ToString::to_string),
            ),
            ("scheduled", a.scheduled_event_id.map(|id| id.0.to_string())),
            ("result", a.result.clone()),
            ("timer_id", a.timer_id.as_ref().map(ToString::to_string)),
            ("duration_ms", a.timer_duration_ms.map(|d| d.to_string())),
            ("new_run_id", a.new_run_id.as_ref().map(ToString::to_string)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                write!(f, " {name}={value}")?;
            }
        }
        if let Some(index) = self.raft_index {
            write!(f, " ({index})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_reads_camel_and_proto_spellings_and_keeps_unknown_names() {
        let camel: EventType = serde_json::from_str("\"TimerFired\"").unwrap();
        let proto: EventType = serde_json::from_str("\"EVENT_TYPE_TIMER_FIRED\"").unwrap();
        let other: EventType = serde_json::from_str("\"WorkflowTaskScheduled\"").unwrap();
        assert_eq!(camel, EventType::TimerFired);
        assert_eq!(proto, EventType::TimerFired);
        assert_eq!(other, EventType::Other("WorkflowTaskScheduled".into()));
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"WorkflowTaskScheduled\""
        );
        assert_eq!(
            serde_json::to_string(&EventType::WorkflowExecutionContinuedAsNew).unwrap(),
            "\"WorkflowExecutionContinuedAsNew\""
        );
    }

    #[test]
    fn only_closing_events_are_terminal() {
        assert!(EventType::WorkflowExecutionContinuedAsNew.is_terminal());
        assert!(EventType::WorkflowExecutionTerminated.is_terminal());
        assert!(!EventType::TimerFired.is_terminal());
        assert!(!EventType::Other("WorkflowTaskCompleted".into()).is_terminal());
    }
}
