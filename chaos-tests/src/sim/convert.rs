//! History events as the checkers see them: Temporal's `HistoryEvent` reduced to the
//! [`ObservedEvent`] fields the nine invariants read (payloads decoded as UTF-8 strings, as the
//! simulated workload writes them).

use crate::history::{EventAttributes, EventType, ObservedEvent};
use crate::ids::{EventId, RequestId};
use temporalio_protos::temporal::api::common::v1::Payloads;
use temporalio_protos::temporal::api::enums::v1::EventType as ProtoEventType;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

fn first_payload(payloads: Option<&Payloads>) -> Option<String> {
    payloads
        .and_then(|p| p.payloads.first())
        .map(|p| String::from_utf8_lossy(&p.data).into_owned())
}

/// One event. `start_request_id` is the run's start request ID (Perdura keeps it in the run's
/// state, not in the event), put on event 1.
pub fn observed_event(event: &HistoryEvent, start_request_id: Option<&str>) -> ObservedEvent {
    let name = ProtoEventType::try_from(event.event_type)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| format!("EVENT_TYPE_{}", event.event_type));
    let mut attributes = EventAttributes::default();
    match &event.attributes {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(_)) => {
            attributes.request_id = start_request_id.map(|r| RequestId(r.to_string()));
        }
        Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
            attributes.signal_name = Some(a.signal_name.clone());
            attributes.signal_input = first_payload(a.input.as_ref());
        }
        _ => {}
    }
    ObservedEvent {
        event_id: EventId(u64::try_from(event.event_id).unwrap_or(0)),
        event_type: EventType::from(name),
        attributes,
        event_time_ms: event
            .event_time
            .as_ref()
            .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
        raft_index: None,
    }
}

/// A run's events.
pub fn observed_events(
    events: &[HistoryEvent],
    start_request_id: Option<&str>,
) -> Vec<ObservedEvent> {
    events
        .iter()
        .map(|e| observed_event(e, start_request_id))
        .collect()
}
