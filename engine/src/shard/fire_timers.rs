//! FireTimers: handles every timer-index entry due at the command's time, in (time, execution,
//! kind) order, including entries that become due while doing so (e.g. a schedule-to-start
//! timeout of an activity whose back-off ended long ago, after a leader outage).

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::draft::Draft;
use crate::shard::index::{TimerEntry, TimerKind, timer_entries};
use crate::shard::txn::{Committed, Txn};
use crate::shard::workflow_timeout::WorkflowTimeout;
use crate::shard::{
    activity_timeout, first_workflow_task, timer_fired, workflow_task_timeout, workflow_timeout,
};
use std::collections::BTreeSet;
use temporalio_protos::temporal::api::enums::v1::TimeoutType;

pub(crate) fn handle(txn: &mut Txn) -> Result<Committed, EngineError> {
    let now_ms = txn.now_ms;
    let budget = txn.limits().max_timers_per_fire.max(1);
    let mut due: BTreeSet<TimerEntry> = txn.due_timers().into_iter().collect();
    let mut handled: BTreeSet<TimerEntry> = BTreeSet::new();
    let mut fired: u32 = 0;
    while handled.len() < budget
        && let Some(entry) = due.pop_first()
    {
        handled.insert(entry.clone());
        let Some(draft) = txn.draft(&entry.execution) else {
            continue;
        };
        if fire(draft, &entry) {
            fired = fired.saturating_add(1);
        }
        // The execution changed: its due entries are re-derived. An entry handled once is never
        // handled again in the same command, so this loop always ends.
        due.retain(|e| e.execution != entry.execution);
        let now_due = timer_entries(&draft.ms)
            .into_iter()
            .filter(|e| e.fire_at_ms <= now_ms && !handled.contains(e));
        due.extend(now_due);
    }
    Ok(Ok(ShardReply::TimersFired { fired }))
}

/// Handles one entry; obsolete entries are dropped silently (returns false).
fn fire(draft: &mut Draft, entry: &TimerEntry) -> bool {
    if !draft.ms.is_running() || entry.fire_at_ms > draft.now_ms {
        return false;
    }
    match &entry.kind {
        TimerKind::WorkflowTaskTimeout {
            scheduled_event_id,
            attempt,
        } => workflow_task_timeout::fire(draft, *scheduled_event_id, *attempt),
        TimerKind::StickyScheduleToStart {
            scheduled_event_id,
            attempt,
        } => workflow_task_timeout::fire_sticky_schedule_to_start(
            draft,
            *scheduled_event_id,
            *attempt,
        ),
        TimerKind::UserTimer {
            timer_id,
            started_event_id,
        } => timer_fired::fire(draft, timer_id, *started_event_id),
        TimerKind::ActivityRetry {
            scheduled_event_id,
            attempt,
        } => activity_timeout::backoff_elapsed(draft, *scheduled_event_id, *attempt),
        TimerKind::ActivityTimeout {
            scheduled_event_id,
            attempt,
            timeout_type,
        } => {
            let timeout_type =
                TimeoutType::try_from(*timeout_type).unwrap_or(TimeoutType::Unspecified);
            activity_timeout::fire(draft, *scheduled_event_id, *attempt, timeout_type)
        }
        TimerKind::WorkflowRunTimeout => workflow_timeout::fire(draft, WorkflowTimeout::Run),
        TimerKind::WorkflowExecutionTimeout => {
            workflow_timeout::fire(draft, WorkflowTimeout::Execution)
        }
        TimerKind::FirstWorkflowTask => first_workflow_task::fire(draft),
    }
}
