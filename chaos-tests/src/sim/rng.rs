//! The run's one source of randomness: a SplitMix64 generator seeded from the run seed, shared
//! by the network, the nemesis and the workload (each draw advances one sequence, so the same
//! seed and the same order of draws give the same run).

use std::sync::{Arc, Mutex};

/// A shared, seeded generator. Cloning shares the sequence.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: Arc<Mutex<u64>>,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            state: Arc::new(Mutex::new(seed)),
        }
    }

    pub fn next_u64(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (0 when `n` is 0).
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `[min, max)` (`min` when the range is empty).
    pub fn range(&self, min: u64, max: u64) -> u64 {
        min + self.below(max.saturating_sub(min))
    }

    /// True with probability `percent`/100.
    pub fn chance(&self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of `items` (`None` if empty).
    pub fn pick<'a, T>(&self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_sequence() {
        let a = SimRng::new(7);
        let b = SimRng::new(7);
        let c = SimRng::new(8);
        let draws = |r: &SimRng| (0..8).map(|_| r.below(1000)).collect::<Vec<_>>();
        assert_eq!(draws(&a), draws(&b));
        assert_ne!(draws(&a), draws(&c));
    }
}
