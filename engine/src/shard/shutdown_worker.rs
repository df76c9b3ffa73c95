//! ShutdownWorker: the worker owning a sticky queue stopped, so every run of this group that is
//! sticky to that queue falls back to its normal queue at once, instead of after the sticky
//! schedule-to-start timeout. A task waiting on the sticky queue moves to the normal queue
//! without an event (its WorkflowTaskScheduled keeps naming the sticky queue, as in Temporal,
//! whose matching redirects such tasks). A task already started by that worker is left to its
//! start-to-close timeout.

use crate::error::EngineError;
use crate::ids::ExecutionKey;
use crate::shard::command::ShardReply;
use crate::shard::txn::{Committed, Txn};

pub(crate) fn handle(
    txn: &mut Txn,
    namespace: &str,
    sticky_task_queue: &str,
) -> Result<Committed, EngineError> {
    if sticky_task_queue.is_empty() {
        return Ok(Ok(ShardReply::Done));
    }
    let bound: Vec<ExecutionKey> = txn
        .base_executions()
        .filter(|ms| ms.is_running() && ms.key.namespace == namespace)
        .filter(|ms| {
            ms.sticky_task_queue == sticky_task_queue
                || ms
                    .workflow_task
                    .as_ref()
                    .is_some_and(|wft| wft.sticky_task_queue == sticky_task_queue)
        })
        .map(|ms| ms.key.clone())
        .collect();
    for key in bound {
        let Some(draft) = txn.draft(&key) else {
            continue;
        };
        draft.ms.clear_sticky();
        if let Some(wft) = draft.ms.workflow_task.as_mut().filter(|w| !w.is_started()) {
            wft.sticky_task_queue.clear();
            wft.sticky_schedule_to_start_timeout_ms = 0;
        }
    }
    Ok(Ok(ShardReply::Done))
}
