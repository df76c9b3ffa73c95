//! The delayed first workflow task of a run becomes due (continue-as-new `backoff_start_interval`,
//! workflow retry back-off, cron schedule): WorkflowTaskScheduled. Signals that arrived during
//! the back-off are already in the history; this task delivers them.

use crate::shard::draft::Draft;

/// Returns whether the entry took effect (false if it is obsolete or not yet due).
pub(crate) fn fire(draft: &mut Draft) -> bool {
    let due_ms = draft.ms.first_workflow_task_time_ms;
    if !draft.ms.is_running() || due_ms == 0 || due_ms > draft.now_ms {
        return false;
    }
    draft.ms.first_workflow_task_time_ms = 0;
    if draft.ms.workflow_task.is_none() {
        draft.schedule_workflow_task(1);
    }
    true
}
