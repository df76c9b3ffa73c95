//! One task queue: ready tasks in arrival order plus waiting pollers.

use perdura_engine::{PendingTask, TaskKind};
use std::collections::{BTreeSet, VecDeque};
use tokio::sync::oneshot;

/// Identifies a task queue: namespace, name and kind of task.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    pub namespace: String,
    pub task_queue: String,
    pub kind: TaskKind,
}

impl QueueKey {
    pub fn of(task: &PendingTask) -> QueueKey {
        QueueKey {
            namespace: task.namespace.clone(),
            task_queue: task.task_queue.clone(),
            // Query tasks go to the workflow-task pollers of their queue.
            kind: match task.kind {
                TaskKind::Query => TaskKind::Workflow,
                kind => kind,
            },
        }
    }
}

#[derive(Default)]
pub(super) struct TaskQueue {
    ready: VecDeque<PendingTask>,
    /// The tasks in `ready`, so a task offered twice (notice and rebuild) is queued once.
    queued: BTreeSet<PendingTask>,
    pollers: VecDeque<oneshot::Sender<PendingTask>>,
}

impl TaskQueue {
    pub(super) fn offer(&mut self, mut task: PendingTask) {
        if self.queued.contains(&task) {
            return;
        }
        while let Some(poller) = self.pollers.pop_front() {
            match poller.send(task) {
                Ok(()) => return,
                // That poller gave up; try the next one.
                Err(returned) => task = returned,
            }
        }
        self.queued.insert(task.clone());
        self.ready.push_back(task);
    }

    pub(super) fn take(&mut self) -> Option<PendingTask> {
        let task = self.ready.pop_front()?;
        self.queued.remove(&task);
        Some(task)
    }

    pub(super) fn add_poller(&mut self, poller: oneshot::Sender<PendingTask>) {
        self.pollers.retain(|p| !p.is_closed());
        self.pollers.push_back(poller);
    }

    pub(super) fn backlog(&self) -> usize {
        self.ready.len()
    }
}
