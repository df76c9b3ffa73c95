//! Matching: in-memory task queues that hand each ready task to one long-polling poller.
//!
//! The queues are *hints* derived from replicated state: every task in them is also in some
//! group's pending-task index, from which [`Matching::offer`] is replayed after a restart or a
//! leadership change. A poller that takes a task from a queue holds a [`TaskLease`]; only once the
//! group has committed the task's "started" record is the lease consumed. A lease dropped for any
//! other reason (the poll was cancelled, the proposal failed) puts the task back, so a task is
//! never lost and, because "started" is decided by the log, never handed out twice.

mod lease;
mod queue;

pub use lease::TaskLease;
pub use queue::QueueKey;

use perdura_engine::PendingTask;
use queue::TaskQueue;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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

    /// Makes a ready task available: to the longest-waiting poller of its queue, else queued.
    pub fn offer(&self, task: PendingTask) {
        let key = QueueKey::of(&task);
        let mut queues = self.queues.lock().expect("matching lock poisoned");
        queues.entry(key).or_default().offer(task);
    }

    /// Waits up to `wait` for a task of `key`'s queue. `None` when the wait ends empty or the
    /// node is shutting down.
    pub async fn next_task(self: &Arc<Self>, key: QueueKey, wait: Duration) -> Option<TaskLease> {
        let receiver = {
            let mut queues = self.queues.lock().expect("matching lock poisoned");
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
        self.queues
            .lock()
            .expect("matching lock poisoned")
            .get(key)
            .map_or(0, TaskQueue::backlog)
    }

    /// Ends every waiting poll with an empty reply; used on shutdown so long polls do not hold
    /// the server open.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
