//! Wake-ups for history long polls (`wait_new_event`): one `Notify` per watched execution.

use perdura_engine::ExecutionKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct HistoryWatch {
    watched: Mutex<BTreeMap<ExecutionKey, Arc<Notify>>>,
    closing: Notify,
}

/// A registration; the entry is removed when its last watcher goes.
pub struct Watcher<'a> {
    watch: &'a HistoryWatch,
    key: ExecutionKey,
    notify: Arc<Notify>,
}

impl HistoryWatch {
    pub fn new() -> Arc<HistoryWatch> {
        Arc::new(HistoryWatch::default())
    }

    pub fn watch(&self, key: &ExecutionKey) -> Watcher<'_> {
        let notify = {
            let mut watched = self.watched.lock().expect("history watch lock poisoned");
            Arc::clone(watched.entry(key.clone()).or_default())
        };
        Watcher {
            watch: self,
            key: key.clone(),
            notify,
        }
    }

    pub fn appended(&self, key: &ExecutionKey) {
        if let Some(notify) = self
            .watched
            .lock()
            .expect("history watch lock poisoned")
            .get(key)
        {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter so it reads again (a snapshot replaced a group's state: no
    /// per-execution notice says what changed).
    pub fn wake_all(&self) {
        for notify in self
            .watched
            .lock()
            .expect("history watch lock poisoned")
            .values()
        {
            notify.notify_waiters();
        }
    }

    /// Ends every wait (shutdown).
    pub fn close(&self) {
        self.closing.notify_waiters();
        for notify in self
            .watched
            .lock()
            .expect("history watch lock poisoned")
            .values()
        {
            notify.notify_waiters();
        }
    }
}

impl Watcher<'_> {
    /// Waits for the next append after this call began, or until `check` (run after the waiter
    /// is armed, so no append is missed) says there is no need to wait.
    pub async fn wait_unless(&self, check: impl FnOnce() -> bool) {
        let notified = self.notify.notified();
        let closing = self.watch.closing.notified();
        tokio::pin!(notified, closing);
        notified.as_mut().enable();
        closing.as_mut().enable();
        if check() {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = closing => {}
        }
    }
}

impl Drop for Watcher<'_> {
    fn drop(&mut self) {
        let mut watched = self
            .watch
            .watched
            .lock()
            .expect("history watch lock poisoned");
        // The map holds one reference and this watcher another: nobody else is watching.
        if Arc::strong_count(&self.notify) == 2 {
            watched.remove(&self.key);
        }
    }
}
