//! One task queue: ready tasks in arrival order, the tasks handed to pollers, waiting pollers.

use super::task::QueuedTask;
use perdura_engine::TaskKind;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tokio::sync::oneshot;

/// Identifies a task queue: namespace, name and kind of task.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    pub namespace: String,
    pub task_queue: String,
    pub kind: TaskKind,
}

/// Invariant: a task is in at most one of `queued` (waiting, in `ready` order) and `out`
/// (handed to a poller), so a node hands a task to one of its pollers at a time.
#[derive(Default)]
pub(super) struct TaskQueue {
    /// Arrival order. Removal is lazy: an entry not in `queued` is skipped by [`Self::take`].
    ready: VecDeque<QueuedTask>,
    /// The tasks waiting in this queue.
    queued: BTreeSet<QueuedTask>,
    /// Tasks handed to a poller (in flight to it or leased), each with a "gone" flag: set when
    /// the task left the replicated ready set meanwhile (another poller started it, it timed
    /// out, its run closed), so that a poller giving it back does not queue a stale entry.
    out: BTreeMap<QueuedTask, bool>,
    pollers: VecDeque<oneshot::Sender<QueuedTask>>,
}

impl TaskQueue {
    /// Makes `task` available once; a task already queued or handed out is not duplicated (a
    /// handed-out task that was gone is pending again: its poller now starts it or gives it
    /// back).
    pub(super) fn offer(&mut self, mut task: QueuedTask) {
        if self.queued.contains(&task) {
            return;
        }
        if let Some(gone) = self.out.get_mut(&task) {
            *gone = false;
            return;
        }
        while let Some(poller) = self.pollers.pop_front() {
            let handed = task.clone();
            match poller.send(task) {
                Ok(()) => {
                    self.out.insert(handed, false);
                    return;
                }
                // That poller gave up; try the next one.
                Err(returned) => task = returned,
            }
        }
        self.queued.insert(task.clone());
        self.ready.push_back(task);
    }

    pub(super) fn take(&mut self) -> Option<QueuedTask> {
        while let Some(task) = self.ready.pop_front() {
            if self.queued.remove(&task) {
                self.out.insert(task.clone(), false);
                return Some(task);
            }
        }
        None
    }

    /// The task left the ready set: drop its entry, or mark it gone if a poller holds it.
    pub(super) fn remove(&mut self, task: &QueuedTask) {
        if !self.queued.remove(task)
            && let Some(gone) = self.out.get_mut(task)
        {
            *gone = true;
        }
    }

    /// A poller gives `task` back without having started it: queued again unless it is gone.
    pub(super) fn release(&mut self, task: QueuedTask) {
        if self.out.remove(&task) == Some(false) {
            self.offer(task);
        }
    }

    /// The poller's start of `task` committed (or the task turned out to be obsolete).
    pub(super) fn consume(&mut self, task: &QueuedTask) {
        self.out.remove(task);
    }

    pub(super) fn add_poller(&mut self, poller: oneshot::Sender<QueuedTask>) {
        self.pollers.retain(|p| !p.is_closed());
        self.pollers.push_back(poller);
    }

    /// Every task of the queue, waiting or handed out.
    pub(super) fn tasks(&self) -> impl Iterator<Item = &QueuedTask> {
        self.queued.iter().chain(self.out.keys())
    }

    pub(super) fn backlog(&self) -> usize {
        self.queued.len()
    }
}
