//! The timer driver: the leader of a workflow group proposes `FireTimers` when its clock passes
//! the group's earliest timer.
//!
//! Replicas never fire timers from their own clocks: the leader stamps `now_ms` into the
//! `FireTimers` command and the engine fires only entries due at or before it, so a timer is
//! never fired early, whatever the clock of the node that applies it.
//!
//! The driver sleeps until `next_timer_ms()` by the time the leader stamps (the group's
//! [`GroupClock`](crate::group_clock::GroupClock): the wall clock, or group time carried forward
//! at real rate while that is ahead, so that a past forward skew of a leader does not stall
//! timers). It wakes early when an applied notice arms a timer earlier than its deadline
//! ([`TimerSignal::armed`]), when the group's state is replaced by a snapshot, or when leadership
//! changes. When nothing is due it sleeps without a deadline: it never spins.

use crate::watch;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Shared between a group's state machine (which arms) and its timer driver (which sleeps).
#[derive(Debug)]
pub struct TimerSignal {
    /// The deadline the driver sleeps towards; `i64::MAX` when it sleeps without one.
    deadline_ms: AtomicI64,
    notify: Notify,
}

impl Default for TimerSignal {
    fn default() -> TimerSignal {
        TimerSignal {
            deadline_ms: AtomicI64::new(i64::MAX),
            notify: Notify::new(),
        }
    }
}

impl TimerSignal {
    /// An applied entry armed a timer at `fire_at_ms`: wake the driver if that is earlier than
    /// what it sleeps towards.
    pub fn armed(&self, fire_at_ms: i64) {
        if fire_at_ms < self.deadline_ms.load(Ordering::Acquire) {
            self.deadline_ms.store(fire_at_ms, Ordering::Release);
            self.notify.notify_one();
        }
    }

    /// The whole state changed (snapshot installed): recompute the deadline.
    pub fn reload(&self) {
        self.notify.notify_one();
    }
}

/// What the driver needs from its group.
pub trait TimerHost: Send + Sync + 'static {
    /// The earliest timer of the group's applied state.
    fn next_timer_ms(&self) -> Option<i64>;
    /// The time this node, as the leader, would stamp now (ms since the Unix epoch): the same
    /// clock [`TimerHost::fire_timers`] stamps with.
    fn now_ms(&self) -> i64;
    /// Proposes `FireTimers` and waits until it is applied.
    fn fire_timers(&self) -> BoxFuture<'_, Result<Fired, String>>;
}

/// The outcome of one applied `FireTimers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// The `now_ms` the command was stamped with.
    pub stamped_ms: i64,
    /// How many timer entries the engine fired (it bounds one command's work).
    pub fired: u32,
}

/// Pause after a failed or fruitless `FireTimers`, so a persistent problem cannot spin.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Runs until `shutdown` turns true (or its sender is dropped).
pub async fn run_timer_driver(
    host: std::sync::Arc<dyn TimerHost>,
    signal: std::sync::Arc<TimerSignal>,
    mut is_leader: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !*is_leader.borrow_and_update() {
            signal.deadline_ms.store(i64::MAX, Ordering::Release);
            tokio::select! {
                biased;
                r = is_leader.changed() => if r.is_err() { return },
                r = shutdown.changed() => if r.is_err() { return },
            }
            continue;
        }
        let next = host.next_timer_ms();
        signal
            .deadline_ms
            .store(next.unwrap_or(i64::MAX), Ordering::Release);
        let now = host.now_ms();
        match next {
            Some(due) if due <= now => {
                match host.fire_timers().await {
                    Ok(Fired { stamped_ms, fired }) => {
                        // The engine fires a bounded batch: while it makes progress, go again at
                        // once. If it fired nothing although a timer is still due at the stamped
                        // time, something is wrong: back off rather than spin.
                        if fired == 0 && host.next_timer_ms().is_some_and(|n| n <= stamped_ms) {
                            tracing::warn!(due, stamped_ms, "FireTimers made no progress");
                            if sleep_or_stop(RETRY_BACKOFF, &mut shutdown).await {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "FireTimers proposal failed; retrying");
                        if sleep_or_stop(RETRY_BACKOFF, &mut shutdown).await {
                            return;
                        }
                    }
                }
            }
            _ => {
                let sleep =
                    next.map(|due| Duration::from_millis(u64::try_from(due - now).unwrap_or(0)));
                tokio::select! {
                    biased;
                    _ = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {},
                    _ = signal.notify.notified() => {},
                    r = is_leader.changed() => if r.is_err() { return },
                    r = shutdown.changed() => if r.is_err() { return },
                }
            }
        }
    }
}

/// Sleeps `duration` or until `shutdown` changes; whether the shutdown's sender is gone.
async fn sleep_or_stop(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        _ = tokio::time::sleep(duration) => false,
        r = shutdown.changed() => r.is_err(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::{Arc, Mutex};

    /// A group whose timers are a sorted list; firing removes every entry ≤ now.
    struct FakeGroup {
        timers: Mutex<Vec<i64>>,
        fired_at: Mutex<Vec<(i64, Vec<i64>)>>,
        fire_calls: AtomicU32,
        next_calls: AtomicU32,
    }

    fn wall_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    impl TimerHost for FakeGroup {
        fn next_timer_ms(&self) -> Option<i64> {
            self.next_calls.fetch_add(1, Ordering::Relaxed);
            self.timers.lock().expect("lock").first().copied()
        }
        fn now_ms(&self) -> i64 {
            wall_ms()
        }
        fn fire_timers(&self) -> BoxFuture<'_, Result<Fired, String>> {
            Box::pin(async move {
                self.fire_calls.fetch_add(1, Ordering::Relaxed);
                let now = wall_ms();
                let mut timers = self.timers.lock().expect("lock");
                let fired: Vec<i64> = timers.iter().copied().filter(|t| *t <= now).collect();
                timers.retain(|t| *t > now);
                let count = fired.len() as u32;
                self.fired_at.lock().expect("lock").push((now, fired));
                Ok(Fired {
                    stamped_ms: now,
                    fired: count,
                })
            })
        }
    }

    fn fake(timers: Vec<i64>) -> Arc<FakeGroup> {
        Arc::new(FakeGroup {
            timers: Mutex::new(timers),
            fired_at: Mutex::default(),
            fire_calls: AtomicU32::new(0),
            next_calls: AtomicU32::new(0),
        })
    }

    #[tokio::test]
    async fn fires_after_the_due_time_never_before_and_rearms_on_an_earlier_timer() {
        let start = wall_ms();
        let group = fake(vec![start + 400]);
        let signal = Arc::new(TimerSignal::default());
        let (_leader_tx, leader_rx) = watch::channel(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let driver = tokio::spawn(run_timer_driver(
            group.clone(),
            signal.clone(),
            leader_rx,
            stop_rx,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // An earlier timer is armed while the driver sleeps towards start + 400.
        group.timers.lock().expect("lock").insert(0, start + 150);
        signal.armed(start + 150);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let fired = group.fired_at.lock().expect("lock").clone();
        assert_eq!(
            fired
                .iter()
                .flat_map(|(_, f)| f.clone())
                .collect::<Vec<_>>(),
            vec![start + 150, start + 400]
        );
        for (at, timers) in &fired {
            assert!(timers.iter().all(|t| t <= at), "fired early: {fired:?}");
        }
        assert!(fired[0].0 < start + 400, "not re-armed: {fired:?}");
        // Nothing is due any more: the driver sleeps without polling.
        let polls = group.next_calls.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(group.next_calls.load(Ordering::Relaxed), polls);
        stop_tx.send(true).expect("driver alive");
        driver.await.expect("driver exits");
    }

    #[tokio::test]
    async fn a_follower_never_fires() {
        let group = fake(vec![wall_ms() - 1000]);
        let (leader_tx, leader_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let driver = tokio::spawn(run_timer_driver(
            group.clone(),
            Arc::default(),
            leader_rx,
            stop_rx,
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(group.fire_calls.load(Ordering::Relaxed), 0);
        leader_tx.send(true).expect("driver alive");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(group.fire_calls.load(Ordering::Relaxed), 1);
        stop_tx.send(true).expect("driver alive");
        driver.await.expect("driver exits");
    }

    /// Regression: a driver whose shutdown sender was dropped without sending (its node
    /// dropped without a shutdown, as a panicking test does) looped on the closed channel
    /// without ever yielding, and its runtime could not stop: the test hung instead of failing.
    #[test]
    fn a_driver_whose_shutdown_sender_is_dropped_exits_leading_or_not() {
        for leading in [false, true] {
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            // Its own thread and runtime: a spinning driver must not stop this test's thread.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let group = fake(vec![wall_ms() + 60_000]);
                    let (_leader_tx, leader_rx) = watch::channel(leading);
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let driver =
                        tokio::spawn(run_timer_driver(group, Arc::default(), leader_rx, stop_rx));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    drop(stop_tx);
                    driver.await.expect("the driver does not panic");
                });
                let _ = done_tx.send(());
            });
            done_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("the driver (leading: {leading}) did not exit"));
        }
    }
}
