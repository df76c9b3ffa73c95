//! [`QueuedTask`]: what a task queue holds and hands to a poller.

use super::QueueKey;
use crate::query::QueryId;
use perdura_engine::{ExecutionKey, PendingTask, TaskKind};

/// An entry of a task queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueuedTask {
    /// A workflow or activity task of some group's replicated ready set.
    Task(PendingTask),
    /// A direct query task: a hint of a query that its origin node holds (see
    /// [`crate::query`]); a poller must claim it from the origin before handing it out.
    Query(QueryTask),
}

/// A direct query task as queued on every node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueryTask {
    pub id: QueryId,
    pub task_queue: String,
    pub execution: ExecutionKey,
}

impl QueuedTask {
    /// The queue the task belongs to. Query tasks go to the workflow-task pollers of their
    /// run's queue.
    pub fn queue_key(&self) -> QueueKey {
        match self {
            QueuedTask::Task(task) => QueueKey {
                namespace: task.namespace.clone(),
                task_queue: task.task_queue.clone(),
                kind: match task.kind {
                    TaskKind::Query => TaskKind::Workflow,
                    kind => kind,
                },
            },
            QueuedTask::Query(query) => QueueKey {
                namespace: query.execution.namespace.clone(),
                task_queue: query.task_queue.clone(),
                kind: TaskKind::Workflow,
            },
        }
    }
}

impl From<PendingTask> for QueuedTask {
    fn from(task: PendingTask) -> QueuedTask {
        QueuedTask::Task(task)
    }
}
