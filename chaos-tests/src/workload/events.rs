//! Temporal `HistoryEvent`s reduced to what the checkers read ([`ObservedEvent`]). The workload's
//! reads and the final read convert with this one function, so a client read and a replica's
//! history compare event by event.
//!
//! `WorkflowExecutionStarted` carries no request ID in Temporal's API; the workload passes each
//! start's request ID as the workflow input, so the started event's decoded input is its
//! `request_id` (a continue-as-new or child run carries the input its parent chose).

use super::payload;
use crate::history::{EventAttributes, EventType, ObservedEvent};
use crate::ids::{ActivityId, EventId, RequestId, RunId, TimerId};
use temporalio_protos::temporal::api::enums::v1::EventType as ProtoEventType;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

/// The event type by its Temporal name (`TimerFired`); an unknown number is kept as
/// `EventType<n>`.
fn event_type(number: i32) -> EventType {
    match ProtoEventType::try_from(number) {
        Ok(known) => EventType::from(known.as_str_name().to_owned()),
        Err(_) => EventType::Other(format!("EventType{number}")),
    }
}

fn duration_ms(duration: Option<&prost_wkt_types::Duration>) -> Option<u64> {
    let duration = duration?;
    let ms = duration
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(duration.nanos) / 1_000_000);
    u64::try_from(ms).ok()
}

fn attributes(event: &HistoryEvent) -> EventAttributes {
    let mut out = EventAttributes::default();
    let Some(attributes) = &event.attributes else {
        return out;
    };
    match attributes {
        Attributes::WorkflowExecutionStartedEventAttributes(a) => {
            out.request_id = payload::decode(a.input.as_ref()).map(RequestId);
        }
        Attributes::WorkflowExecutionSignaledEventAttributes(a) => {
            out.signal_name = Some(a.signal_name.clone());
            out.signal_input = payload::decode(a.input.as_ref());
        }
        Attributes::ActivityTaskScheduledEventAttributes(a) => {
            out.activity_id = Some(ActivityId(a.activity_id.clone()));
        }
        Attributes::ActivityTaskStartedEventAttributes(a) => {
            out.scheduled_event_id = Some(EventId(a.scheduled_event_id.max(0) as u64));
        }
        Attributes::ActivityTaskCompletedEventAttributes(a) => {
            out.scheduled_event_id = Some(EventId(a.scheduled_event_id.max(0) as u64));
            out.result = payload::decode(a.result.as_ref());
        }
        Attributes::ActivityTaskFailedEventAttributes(a) => {
            out.scheduled_event_id = Some(EventId(a.scheduled_event_id.max(0) as u64));
        }
        Attributes::ActivityTaskTimedOutEventAttributes(a) => {
            out.scheduled_event_id = Some(EventId(a.scheduled_event_id.max(0) as u64));
        }
        Attributes::ActivityTaskCanceledEventAttributes(a) => {
            out.scheduled_event_id = Some(EventId(a.scheduled_event_id.max(0) as u64));
        }
        Attributes::TimerStartedEventAttributes(a) => {
            out.timer_id = Some(TimerId(a.timer_id.clone()));
            out.timer_duration_ms = duration_ms(a.start_to_fire_timeout.as_ref());
        }
        Attributes::TimerFiredEventAttributes(a) => {
            out.timer_id = Some(TimerId(a.timer_id.clone()));
        }
        Attributes::TimerCanceledEventAttributes(a) => {
            out.timer_id = Some(TimerId(a.timer_id.clone()));
        }
        Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
            out.result = payload::decode(a.result.as_ref());
        }
        Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a) => {
            out.new_run_id = Some(RunId(a.new_execution_run_id.clone()));
        }
        _ => {}
    }
    out
}

/// One event as the checkers see it (no Raft index: the Temporal API does not carry one).
pub fn observe(event: &HistoryEvent) -> ObservedEvent {
    ObservedEvent {
        event_id: EventId(event.event_id.max(0) as u64),
        event_type: event_type(event.event_type),
        attributes: attributes(event),
        event_time_ms: event.event_time.as_ref().map(|time| {
            time.seconds
                .saturating_mul(1000)
                .saturating_add(i64::from(time.nanos) / 1_000_000)
        }),
        raft_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::history::v1::{
        TimerStartedEventAttributes, WorkflowExecutionStartedEventAttributes,
    };

    #[test]
    fn started_carries_its_input_as_request_id_and_timers_their_duration() {
        let started = HistoryEvent {
            event_id: 1,
            event_type: ProtoEventType::WorkflowExecutionStarted as i32,
            attributes: Some(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    input: Some(payload::encode("req-7")),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let observed = observe(&started);
        assert_eq!(observed.event_type, EventType::WorkflowExecutionStarted);
        assert_eq!(
            observed.attributes.request_id,
            Some(RequestId::from("req-7"))
        );

        let timer = HistoryEvent {
            event_id: 5,
            event_type: ProtoEventType::TimerStarted as i32,
            attributes: Some(Attributes::TimerStartedEventAttributes(
                TimerStartedEventAttributes {
                    timer_id: "t1".into(),
                    start_to_fire_timeout: Some(prost_wkt_types::Duration {
                        seconds: 1,
                        nanos: 250_000_000,
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let observed = observe(&timer);
        assert_eq!(observed.event_id, EventId(5));
        assert_eq!(observed.attributes.timer_duration_ms, Some(1250));
        assert_eq!(observed.attributes.timer_id, Some(TimerId::from("t1")));
        assert_eq!(
            observe(&HistoryEvent {
                event_type: 9999,
                ..Default::default()
            })
            .event_type,
            EventType::Other("EventType9999".into())
        );
    }
}
