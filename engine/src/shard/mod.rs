//! A workflow group's state machine: many workflow executions, their timer index and their
//! pending-dispatch task index. See [`ShardState::apply`].

pub mod applied;
pub mod command;

pub use applied::{Applied, Notice, PendingTask, StateChanges};
pub use command::{ActivityTaskInfo, ShardCommand, ShardCommandKind, ShardReply, WorkflowTaskInfo};
