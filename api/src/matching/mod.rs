//! Matching: in-memory task queues that hand each ready task to one long-polling poller.
//!
//! The queues are *hints* derived from replicated state: every workflow or activity task in
//! them is also in some group's ready set. Every node replicates every group, so every node's
//! queues hold every ready task, fed by the apply notices `TaskReady` ([`Matching::offer`]) and
//! `TaskGone` ([`Matching::remove`]) and rebuilt from the ready sets on start, on leadership
//! and after a snapshot is installed ([`Matching::resync`]).
//!
//! A poller that takes a task holds a [`TaskLease`] and proposes the task's "started" record
//! to its group (forwarded to the leader). The engine accepts one start per task, so pollers of
//! several nodes racing for one task cannot both get it: the loser's proposal is refused and it
//! moves on. Only a committed start consumes the lease. A lease dropped for any other reason
//! (the poll was cancelled, the proposal failed) gives the task back — unless `TaskGone` said
//! meanwhile that the task left the ready set, so a node never re-queues a task that another
//! node's poller took. Hence a task is never lost and, because "started" is decided by the log,
//! never handed out twice.
//!
//! Invariant: within one queue a task is either waiting or handed to exactly one poller of this
//! node (see `queue.rs`).

mod lease;
mod queue;
mod task;

pub use lease::TaskLease;
pub use queue::QueueKey;
pub use task::{QueryTask, QueuedTask};

use perdura_engine::PendingTask;
use queue::TaskQueue;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// All task queues of this node.
pub struct Matching {
    queues: Mutex<BTreeMap<QueueKey, TaskQueue>>,
    closing: watch::Sender<bool>,
}

impl Default for Matching {
    fn default() -> Self {
        Matching {
            queues: Mutex::new(BTreeMap::new()),
            closing: watch::channel(false).0,
        }
    }
}

impl Matching {
    pub fn new() -> Arc<Matching> {
        Arc::new(Matching::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<QueueKey, TaskQueue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a ready task available: to the longest-waiting poller of its queue, else queued.
    /// A task this node already queues or has handed out is not duplicated.
    pub fn offer(&self, task: impl Into<QueuedTask>) {
        let task = task.into();
        self.lock().entry(task.queue_key()).or_default().offer(task);
    }

    /// The task left the replicated ready set (or the query was withdrawn): its waiting entry
    /// goes; a poller holding it will not give it back.
    pub fn remove(&self, task: &QueuedTask) {
        if let Some(queue) = self.lock().get_mut(&task.queue_key()) {
            queue.remove(task);
        }
    }

    /// Replaces what this node queues of one group by that group's ready set `pending`:
    /// after a snapshot was installed no notice told which tasks came and went. `in_group`
    /// says whether a workflow or activity task belongs to the group.
    pub fn resync(&self, in_group: impl Fn(&PendingTask) -> bool, pending: Vec<PendingTask>) {
        let pending: BTreeSet<QueuedTask> = pending.into_iter().map(QueuedTask::Task).collect();
        let mut queues = self.lock();
        for queue in queues.values_mut() {
            let stale: Vec<QueuedTask> = queue
                .tasks()
                .filter(|t| matches!(t, QueuedTask::Task(p) if in_group(p)))
                .filter(|t| !pending.contains(*t))
                .cloned()
                .collect();
            for task in &stale {
                queue.remove(task);
            }
        }
        for task in pending {
            queues.entry(task.queue_key()).or_default().offer(task);
        }
    }

    fn release(&self, task: QueuedTask) {
        self.lock()
            .entry(task.queue_key())
            .or_default()
            .release(task);
    }

    fn consume(&self, task: &QueuedTask) {
        if let Some(queue) = self.lock().get_mut(&task.queue_key()) {
            queue.consume(task);
        }
    }

    /// Waits up to `wait` for a task of `key`'s queue. `None` when the wait ends empty or the
    /// node is shutting down.
    pub async fn next_task(self: &Arc<Self>, key: QueueKey, wait: Duration) -> Option<TaskLease> {
        let receiver = {
            let mut queues = self.lock();
            let queue = queues.entry(key.clone()).or_default();
            if let Some(task) = queue.take() {
                return Some(TaskLease::new(task, Arc::clone(self)));
            }
            let (sender, receiver) = oneshot::channel();
            queue.add_poller(sender);
            receiver
        };
        let mut slot = lease::PollerSlot::new(receiver, Arc::clone(self));
        let mut closing = self.closing.subscribe();
        if *closing.borrow() {
            return slot.give_up();
        }
        tokio::select! {
            task = slot.receive() => task,
            _ = tokio::time::sleep(wait) => slot.give_up(),
            _ = closing.changed() => slot.give_up(),
        }
    }

    /// Number of queued (not yet polled) tasks of a queue; for tests and metrics.
    pub fn backlog(&self, key: &QueueKey) -> usize {
        self.lock().get(key).map_or(0, TaskQueue::backlog)
    }

    /// Ends every waiting poll with an empty reply; used on shutdown so long polls do not hold
    /// the server open.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
