//! A workflow group's state machine: many workflow executions, their timer index and their
//! pending-dispatch task index. See [`ShardState::apply`].
//!
//! One file per command or transition: `start_workflow`, `workflow_task_started`,
//! `workflow_task_completed` (with one file per workflow command under `commands/`),
//! `workflow_task_failed`, `workflow_task_timeout`, `activity_task_started`,
//! `activity_task_completed`, `activity_task_failed`, `activity_timeout`, `timer_fired`,
//! `workflow_timeout`, `signal_workflow`, `terminate_workflow`, `activity_heartbeat`,
//! `activity_task_canceled`, `request_cancel_workflow`, `signal_with_start`, `update_workflow`
//! (with `updates` and `speculative`, the update protocol and speculative workflow tasks),
//! `fire_timers`, which drives the timer index, and the cross-execution outbox (`outbox`, its
//! message types; `close_effects`, what a close sends; `receive_message` and `ack_message`, the
//! two sides of a delivery), `shutdown_worker` (sticky queues) and `split` (the source side of
//! an online group split: `SplitOut` and moved-slot rejections). The shared machinery: `txn`
//! (staging, so a rejected command changes nothing), `draft` (append, buffer, flush,
//! close), `index` (the derived indexes) and `state` ([`ShardState`] itself).

pub mod applied;
pub mod command;
pub mod events;
pub mod limits;
pub mod mutable_state;
pub mod outbox;

mod ack_message;
mod activity_heartbeat;
mod activity_outcome;
mod activity_task_canceled;
mod activity_task_completed;
mod activity_task_failed;
mod activity_task_started;
mod activity_timeout;
mod close_effects;
mod commands;
mod cron;
mod draft;
mod fire_timers;
mod first_workflow_task;
mod index;
mod lookup;
mod new_run;
mod receive_message;
mod request_cancel_workflow;
mod retry;
mod shutdown_worker;
mod signal_with_start;
mod signal_workflow;
mod speculative;
mod split;
mod start_with_update;
mod start_workflow;
mod state;
mod task_token;
mod terminate_workflow;
mod time;
mod timer_fired;
mod txn;
mod update_workflow;
mod updates;
mod workflow_retry;
mod workflow_task_completed;
mod workflow_task_failed;
mod workflow_task_started;
mod workflow_task_timeout;
mod workflow_timeout;

#[cfg(test)]
mod tests;

pub use applied::{Applied, Notice, PendingTask, StateChanges};
pub use command::{
    ActivityTaskInfo, ShardCommand, ShardCommandKind, ShardReply, UpdateStatus, WorkflowTaskInfo,
};
pub use index::OutboxEntry;
pub use limits::{EngineLimits, HISTORY_LENGTH_LIMIT_REASON, HISTORY_SIZE_LIMIT_REASON};
pub use mutable_state::{
    ActivityPhase, ActivityState, CurrentRun, MutableState, UpdatePhase, UpdateState,
    UserTimerState, WorkflowTaskState,
};
pub use outbox::{DeliveryOutcome, OutboxKind, OutboxMessage};
pub use speculative::speculative_events;
pub use split::SplitOff;
pub use start_workflow::TERMINATE_EXISTING_REASON;
pub use state::ShardState;
pub use updates::update_status;
