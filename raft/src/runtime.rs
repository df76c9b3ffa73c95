//! openraft's async runtime for Perdura: tokio, with randomness a simulation can seed.
//!
//! openraft draws its election timeouts and first tick waits from `AsyncRuntime::thread_rng`.
//! [`PerduraRuntime`] is openraft's tokio runtime with one difference: when the current thread
//! has a seed installed ([`seed_thread_rng`], done by the deterministic simulation, which runs
//! the whole cluster on one thread), every `thread_rng` is drawn from that seeded generator, so
//! the same seed gives the same election timeouts in the same order. Without a seed (every
//! production thread) it is an OS-seeded generator, as openraft's own runtime uses.
//!
//! Its watch channels are [`crate::watch`]'s, not tokio's: their waiters wake first-come
//! first-served, where tokio's wake in an order drawn from tokio's own (unseedable) generator.

use openraft::TokioRuntime;
use openraft::{AsyncRuntime, OptionalSend};
use rand_openraft::SeedableRng;
use rand_openraft::rngs::SmallRng;
use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

thread_local! {
    /// The simulation's seeded generator for this thread, if one is installed.
    static SEEDED: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// Makes every later openraft `thread_rng` on this thread derive from `seed` (simulation).
pub fn seed_thread_rng(seed: u64) {
    SEEDED.with(|s| *s.borrow_mut() = Some(SmallRng::seed_from_u64(seed)));
}

/// Removes this thread's seed: openraft's randomness is OS-seeded again.
pub fn clear_thread_rng() {
    SEEDED.with(|s| *s.borrow_mut() = None);
}

/// openraft's tokio runtime with a seedable `thread_rng`. See the module docs.
pub struct PerduraRuntime(TokioRuntime);

impl std::fmt::Debug for PerduraRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerduraRuntime").finish()
    }
}

type Tokio = TokioRuntime;

impl AsyncRuntime for PerduraRuntime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        let seeded = SEEDED.with(|s| s.borrow_mut().as_mut().map(SmallRng::from_rng));
        seeded.unwrap_or_else(rand_openraft::make_rng)
    }

    type Mpsc = <Tokio as AsyncRuntime>::Mpsc;
    type Watch = crate::watch::PerduraWatch;
    type Oneshot = <Tokio as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        PerduraRuntime(Tokio::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, std::io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Tokio::spawn_blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_openraft::RngExt;

    fn draws() -> Vec<u64> {
        (0..5)
            .map(|_| PerduraRuntime::thread_rng().random_range(150..300))
            .collect()
    }

    #[test]
    fn a_seeded_thread_draws_the_same_sequence_again() {
        seed_thread_rng(42);
        let first = draws();
        seed_thread_rng(42);
        let second = draws();
        seed_thread_rng(43);
        let other = draws();
        clear_thread_rng();
        assert_eq!(first, second);
        assert_ne!(first, other);
        assert!(draws().iter().all(|d| (150..300).contains(d)));
    }
}
