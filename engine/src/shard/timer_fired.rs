//! A user timer reached its fire time: TimerFired{timer_id, started_event_id}, then WFT+.
//! Never early: the entry is ignored unless `now ≥ fire time`.

use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::history::v1::{
    TimerFiredEventAttributes, history_event::Attributes,
};

/// Returns whether the entry took effect (false if it is obsolete or not yet due).
pub(crate) fn fire(draft: &mut Draft, timer_id: &str, started_event_id: i64) -> bool {
    let due = draft.ms.timers.get(timer_id).is_some_and(|timer| {
        timer.started_event_id == started_event_id && timer.fire_time_ms <= draft.now_ms
    });
    if !due {
        return false;
    }
    draft.ms.timers.remove(timer_id);
    draft.record(Attributes::TimerFiredEventAttributes(
        TimerFiredEventAttributes {
            timer_id: timer_id.to_string(),
            started_event_id,
        },
    ));
    draft.schedule_workflow_task_if_none();
    true
}
