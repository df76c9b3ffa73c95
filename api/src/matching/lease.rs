//! Ownership of a task between the queue and the committed "started" record.

use super::Matching;
use super::task::QueuedTask;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A task taken from a queue by one poller. Dropping the lease without [`TaskLease::consume`]
/// gives the task back to its queue — unless it left the replicated ready set meanwhile
/// (another node's poller started it), in which case it is forgotten.
pub struct TaskLease {
    task: Option<QueuedTask>,
    matching: Arc<Matching>,
}

impl TaskLease {
    pub(super) fn new(task: QueuedTask, matching: Arc<Matching>) -> TaskLease {
        TaskLease {
            task: Some(task),
            matching,
        }
    }

    pub fn task(&self) -> &QueuedTask {
        self.task
            .as_ref()
            .expect("a lease holds its task until consumed or dropped")
    }

    /// The task was started (committed) or is obsolete: it leaves matching for good.
    pub fn consume(mut self) {
        if let Some(task) = self.task.take() {
            self.matching.consume(&task);
        }
    }
}

impl Drop for TaskLease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.matching.release(task);
        }
    }
}

/// A waiting poller's receiving end. If the poll ends (timeout, cancellation, shutdown) while a
/// task is already in flight to it, the task goes back to the queue instead of being lost.
pub(super) struct PollerSlot {
    receiver: Option<oneshot::Receiver<QueuedTask>>,
    matching: Arc<Matching>,
}

impl PollerSlot {
    pub(super) fn new(
        receiver: oneshot::Receiver<QueuedTask>,
        matching: Arc<Matching>,
    ) -> PollerSlot {
        PollerSlot {
            receiver: Some(receiver),
            matching,
        }
    }

    pub(super) async fn receive(&mut self) -> Option<TaskLease> {
        let receiver = self.receiver.as_mut()?;
        let task = receiver.await.ok()?;
        self.receiver = None;
        Some(TaskLease::new(task, Arc::clone(&self.matching)))
    }

    /// Stops waiting; a task that arrived in the meantime is still returned.
    pub(super) fn give_up(&mut self) -> Option<TaskLease> {
        let mut receiver = self.receiver.take()?;
        receiver.close();
        let task = receiver.try_recv().ok()?;
        Some(TaskLease::new(task, Arc::clone(&self.matching)))
    }
}

impl Drop for PollerSlot {
    fn drop(&mut self) {
        if let Some(lease) = self.give_up() {
            drop(lease); // gives the task back
        }
    }
}
