//! A watch channel whose waiters wake in the order they began to wait.
//!
//! tokio's `watch` parks each waiter on one of eight `Notify`s, picked by tokio's per-thread
//! random generator, and a send wakes the eight in turn: the receivers of one send wake in a
//! random order. On the deterministic simulation's one-thread runtime that order is the order
//! the woken tasks run (openraft's replication streams of one leader, the timer and outbox
//! drivers of one group, every task at shutdown), so two runs of one seed diverged; tokio lets a
//! runtime seed that generator only in a `--cfg tokio_unstable` build. This channel parks every
//! waiter on ONE `tokio::sync::Notify`, which wakes its waiters first-come first-served, so a
//! given order of waits gives the same order of wake-ups.
//!
//! [`channel`] is used for every watch of this crate and, through [`PerduraWatch`], for
//! openraft's own (`AsyncRuntime::Watch` of [`crate::runtime::PerduraRuntime`]).
//!
//! ## Semantics (tokio's, for the part used here)
//! * The channel holds one value and a version that every change bumps; a receiver remembers the
//!   version it last saw. [`Receiver::changed`] returns at once if the value changed since, else
//!   waits for a change; it fails only when every sender is gone and nothing newer is there.
//! * [`Sender::send`] fails (and changes nothing) when every receiver is gone;
//!   [`Sender::send_replace`] and [`Sender::send_if_modified`] change the value regardless.
//! * A clone of a receiver starts from the version its original saw; [`Sender::subscribe`] from
//!   the current one.

use openraft::OptionalSend;
use openraft::OptionalSync;
use openraft::type_config::async_runtime::watch as openraft_watch;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::Notify;

/// Sending failed: every receiver is gone. Carries the value back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("watch channel closed: no receiver left")]
pub struct SendError<T>(pub T);

/// Waiting failed: every sender is gone and nothing newer was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("watch channel closed: no sender left")]
pub struct RecvError;

struct Slot<T> {
    value: T,
    version: u64,
    closed: bool,
}

struct Shared<T> {
    slot: RwLock<Slot<T>>,
    /// Every waiter of every receiver, woken first-come first-served.
    changed: Notify,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, Slot<T>> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slot<T>> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A borrow of the current value (holds a read lock: keep it short, never across an `.await`).
pub struct Ref<'a, T> {
    slot: RwLockReadGuard<'a, Slot<T>>,
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.slot.value
    }
}

/// The sending half; clones share the channel, which closes when the last one drops.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// A channel holding `init`; the receiver has seen it.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        slot: RwLock::new(Slot {
            value: init,
            version: 0,
            closed: false,
        }),
        changed: Notify::new(),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

impl<T> Sender<T> {
    /// Replaces the value and wakes the receivers; fails if no receiver is left.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.load(Ordering::Acquire) == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value (receivers or not), wakes the receivers, returns the old value.
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut slot = self.shared.write();
            slot.version += 1;
            std::mem::replace(&mut slot.value, value)
        };
        self.shared.changed.notify_waiters();
        old
    }

    /// Lets `modify` change the value in place; wakes the receivers only if it says it did.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut slot = self.shared.write();
            let modified = modify(&mut slot.value);
            if modified {
                slot.version += 1;
            }
            modified
        };
        if modified {
            self.shared.changed.notify_waiters();
        }
        modified
    }

    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            slot: self.shared.read(),
        }
    }

    /// A receiver that waits for the next change.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        Receiver {
            shared: self.shared.clone(),
            seen: self.shared.read().version,
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.write().closed = true;
            self.shared.changed.notify_waiters();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits until the value changed since this receiver last saw it, and marks it seen.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            // Registered before the check, so a send between the check and the wait wakes it.
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let slot = self.shared.read();
                if slot.version != self.seen {
                    self.seen = slot.version;
                    return Ok(());
                }
                if slot.closed {
                    return Err(RecvError);
                }
            }
            notified.await;
        }
    }

    /// Waits until the value (the current one included) satisfies `condition`, marking every
    /// value it looked at seen. Fails if every sender is gone and the last value does not.
    pub async fn wait_for(
        &mut self,
        mut condition: impl FnMut(&T) -> bool,
    ) -> Result<(), RecvError> {
        loop {
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let slot = self.shared.read();
                self.seen = slot.version;
                if condition(&slot.value) {
                    return Ok(());
                }
                if slot.closed {
                    return Err(RecvError);
                }
            }
            notified.await;
        }
    }

    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            slot: self.shared.read(),
        }
    }

    /// Borrows the value and marks it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let slot = self.shared.read();
        self.seen = slot.version;
        Ref { slot }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// openraft's watch channels, on [`channel`].
pub struct PerduraWatch;

impl openraft_watch::Watch for PerduraWatch {
    type Sender<T: OptionalSend + OptionalSync> = Sender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = Receiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = Ref<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Sender<T>, Receiver<T>) {
        channel(init)
    }
}

impl<T: OptionalSend + OptionalSync> openraft_watch::WatchSender<PerduraWatch, T> for Sender<T> {
    fn send(&self, value: T) -> Result<(), openraft_watch::SendError<T>> {
        Sender::send(self, value).map_err(|e| openraft_watch::SendError(e.0))
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        Sender::send_if_modified(self, modify)
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        self.borrow()
    }

    fn subscribe(&self) -> Receiver<T> {
        Sender::subscribe(self)
    }
}

impl<T: OptionalSend + OptionalSync> openraft_watch::WatchReceiver<PerduraWatch, T>
    for Receiver<T>
{
    async fn changed(&mut self) -> Result<(), openraft_watch::RecvError> {
        Receiver::changed(self)
            .await
            .map_err(|_| openraft_watch::RecvError(()))
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        self.borrow()
    }

    fn borrow_and_update(&mut self) -> Ref<'_, T> {
        Receiver::borrow_and_update(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn a_receiver_sees_the_latest_value_once() {
        let (tx, mut rx) = channel(0);
        tx.send(1).expect("a receiver is there");
        tx.send(2).expect("a receiver is there");
        rx.changed().await.expect("changed");
        assert_eq!(*rx.borrow(), 2);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), rx.changed());
        assert!(waited.await.is_err(), "nothing newer was sent");
    }

    #[tokio::test]
    async fn send_fails_without_receivers_and_changed_fails_without_senders() {
        let (tx, rx) = channel(0);
        let mut late = tx.subscribe();
        drop(rx);
        drop(late.clone());
        assert!(tx.send(1).is_ok(), "`late` is still there");
        drop(late);
        assert_eq!(tx.send(2), Err(SendError(2)));
        assert_eq!(tx.send_replace(3), 1, "send_replace changes it anyway");
        let mut rx = tx.subscribe();
        assert!(!tx.send_if_modified(|_| false));
        drop(tx);
        assert_eq!(rx.changed().await, Err(RecvError));
        assert_eq!(*rx.borrow(), 3);
        late = rx.clone();
        assert_eq!(late.changed().await, Err(RecvError));
    }

    #[tokio::test]
    async fn wait_for_checks_the_current_value_then_each_change() {
        let (tx, mut rx) = channel(1);
        rx.wait_for(|v| *v == 1)
            .await
            .expect("the current value holds");
        let waiter = tokio::spawn(async move {
            let result = rx.wait_for(|v| *v >= 3).await;
            (result, *rx.borrow())
        });
        for v in 2..=4 {
            tokio::task::yield_now().await;
            tx.send_replace(v);
        }
        let (result, seen) = waiter.await.expect("task");
        assert_eq!(result, Ok(()));
        assert!(seen >= 3);
        let (tx, mut rx) = channel(0);
        drop(tx);
        assert_eq!(rx.wait_for(|v| *v == 1).await, Err(RecvError));
        assert_eq!(rx.wait_for(|v| *v == 0).await, Ok(()));
    }

    #[tokio::test]
    async fn a_closing_sender_still_delivers_its_last_value() {
        let (tx, mut rx) = channel("a");
        tx.send("b").expect("a receiver is there");
        drop(tx);
        assert_eq!(rx.changed().await, Ok(()));
        assert_eq!(*rx.borrow_and_update(), "b");
        assert_eq!(rx.changed().await, Err(RecvError));
    }

    /// The property the simulation needs: waiters wake in the order they began to wait, every
    /// time (tokio's own watch wakes them in a random order).
    #[test]
    fn waiters_wake_in_the_order_they_began_to_wait() {
        let order = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (tx, rx) = channel(0);
                let woke = Arc::new(Mutex::new(Vec::new()));
                let tasks: Vec<_> = (0..16)
                    .map(|i| {
                        let (mut rx, woke) = (rx.clone(), woke.clone());
                        tokio::spawn(async move {
                            if rx.changed().await.is_ok() {
                                woke.lock().expect("lock").push(i);
                            }
                        })
                    })
                    .collect();
                tokio::task::yield_now().await;
                tx.send(1).expect("receivers are there");
                for task in tasks {
                    task.await.expect("task");
                }
                woke.lock().expect("lock").clone()
            })
        };
        let first = order();
        assert_eq!(first, (0..16).collect::<Vec<_>>());
        for _ in 0..4 {
            assert_eq!(order(), first);
        }
    }
}
