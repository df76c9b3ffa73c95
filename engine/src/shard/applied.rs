//! What one applied command produces besides its reply.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, GroupId, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::index::OutboxEntry;
use crate::shard::split::SplitOff;
use crate::slots::SlotRange;
use crate::token::TaskKind;
use std::collections::BTreeSet;
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// The result of [`crate::ShardState::apply`].
#[derive(Debug, Default)]
pub struct Applied {
    /// `None` only for a default-constructed value; `apply` always sets it.
    pub reply: Option<Result<ShardReply, EngineError>>,
    pub changes: StateChanges,
    pub notices: Vec<Notice>,
}

/// Records the caller must persist, in the same atomic write as the applied log index.
#[derive(Debug, Default, PartialEq)]
pub struct StateChanges {
    /// Executions whose [`crate::MutableState`] changed: re-read them with
    /// [`crate::ShardState::execution`]; a key that is absent there was deleted.
    pub executions: BTreeSet<ExecutionKey>,
    /// Workflow IDs whose current-run pointer changed: re-read with
    /// [`crate::ShardState::current_run`]; absent ⇒ deleted.
    pub current_runs: BTreeSet<WorkflowKey>,
    /// Newly appended history events, per execution, in event-ID order.
    pub events: Vec<(ExecutionKey, Vec<HistoryEvent>)>,
    /// The moved-slots record changed: re-read it with [`crate::ShardState::moved_slots`].
    pub moved_slots: bool,
    /// A `SplitOut` took these executions out (their records above are deleted): they are the
    /// new group's initial state, to be written — with their history events, which move from
    /// this group's records — in the same atomic write.
    pub split_off: Option<SplitOff>,
}

impl StateChanges {
    pub fn is_empty(&self) -> bool {
        self.executions.is_empty()
            && self.current_runs.is_empty()
            && self.events.is_empty()
            && !self.moved_slots
            && self.split_off.is_none()
    }
}

/// In-memory effects for the node that applied the command (dispatch, long-poll wake-ups). They
/// are hints: every fact they carry is also in the replicated state, from which the node's
/// in-memory queues are rebuilt after a restart or a leader change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A task became ready for dispatch (new, retried, or moved back after a timeout).
    TaskReady(PendingTask),
    /// New events were appended to this execution's history (wakes `wait_new_event` polls).
    HistoryAppended(ExecutionKey),
    /// The timer index gained an entry that fires at this time.
    TimerArmed { fire_at_ms: i64 },
    /// An update of this execution changed stage (wakes clients waiting for an update).
    UpdatesChanged(ExecutionKey),
    /// An outbox message waits for delivery to another execution.
    OutboxReady(OutboxEntry),
    /// A `SplitOut` moved `slots` to `new_group`, which now exists on every replica of this
    /// group: the node starts its Raft instance (see `docs/design/005-online-group-split.md`).
    SlotsMoved {
        slots: SlotRange,
        new_group: GroupId,
    },
    /// This run closed with `status` (completed, failed, canceled, terminated, timed out or
    /// continued as new). Emitted once, by the command that closed it (feeds the node's
    /// workflows-completed metric).
    WorkflowClosed {
        execution: ExecutionKey,
        status: WorkflowExecutionStatus,
    },
    /// A task left the ready set (started by some poller, completed, timed out, its run
    /// closed, moved to another queue): every node drops its queue entry for it, so entries of
    /// tasks that another node's poller took do not pile up in this node's queues.
    TaskGone(PendingTask),
}

/// A task waiting in a task queue to be handed to one poller.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingTask {
    pub kind: TaskKind,
    pub namespace: String,
    pub task_queue: String,
    pub execution: ExecutionKey,
    pub scheduled_event_id: i64,
}
