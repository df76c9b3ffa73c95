//! [`PeerClocks`]: the wall clocks of the other nodes as this node last saw them, and
//! [`majority_time_ms`], the latest time a majority of a group's voters' clocks have reached.
//!
//! Every peer message carries the wall clock of the node that sent it (requests) or answered
//! it (replies), read before the message left that node. A sample of `wall_ms` taken at this
//! node's monotonic instant `at` therefore says the peer's clock read at least `wall_ms` by
//! `at`; carried forward at the monotonic rate, `wall_ms + (now − at)` is a lower bound of what
//! that clock reads now, if it runs at real rate. Samples older than [`MAX_SAMPLE_AGE`] are not
//! used: a peer that has not been heard from for that long may have been skewed since.
//!
//! # Invariant
//! With at most a minority of the voters' clocks wrong, [`majority_time_ms`] is no later than
//! some correct clock: a majority of the readings are at or above it, and a majority cannot
//! consist of wrong clocks only. A leader that stamps that time (see
//! [`GroupClock`](crate::group_clock::GroupClock)) never fires a timer early because its own
//! clock, or any minority of clocks, runs ahead.
//!
//! The monotonic source is [`tokio::time::Instant`] (virtual under the simulation). Nothing
//! here is read by the apply path.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a peer's clock sample is used. Heartbeats refresh it several times a second.
pub const MAX_SAMPLE_AGE: Duration = Duration::from_secs(5);

/// One reading of a peer's wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    wall_ms: i64,
    at: Instant,
}

/// The latest wall-clock reading of each peer node (see the module docs).
#[derive(Debug, Default)]
pub struct PeerClocks {
    samples: Mutex<BTreeMap<u64, Sample>>,
}

impl PeerClocks {
    /// A message from `node` said its clock read `wall_ms` (0: the sender did not say).
    pub fn observe(&self, node: u64, wall_ms: i64) {
        self.observe_at(node, wall_ms, Instant::now());
    }

    pub(crate) fn observe_at(&self, node: u64, wall_ms: i64, at: Instant) {
        if wall_ms <= 0 {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        // Replies may arrive out of order; the latest instant wins.
        match samples.get(&node) {
            Some(known) if known.at > at => {}
            _ => {
                samples.insert(node, Sample { wall_ms, at });
            }
        }
    }

    /// A lower bound of `node`'s clock at `now`, if it was heard from within
    /// [`MAX_SAMPLE_AGE`].
    pub fn lower_bound_ms(&self, node: u64, now: Instant) -> Option<i64> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let sample = samples.get(&node)?;
        let age = now.saturating_duration_since(sample.at);
        if age > MAX_SAMPLE_AGE {
            return None;
        }
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        Some(sample.wall_ms.saturating_add(age_ms))
    }
}

/// The latest time that a majority of `voters` clocks have reached: the majority-th largest of
/// the readings (`None` when fewer than a majority of the voters have one). `readings` holds at
/// most one reading per voter.
pub fn majority_time_ms(voters: usize, mut readings: Vec<i64>) -> Option<i64> {
    let majority = voters / 2 + 1;
    if readings.len() < majority {
        return None;
    }
    readings.sort_unstable_by(|a, b| b.cmp(a));
    readings.get(majority - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_majority_time_is_reached_by_a_majority_of_the_readings() {
        assert_eq!(majority_time_ms(1, vec![7]), Some(7));
        // One clock far ahead (or behind) among three does not move it.
        assert_eq!(majority_time_ms(3, vec![60_000, 1_000, 1_002]), Some(1_002));
        assert_eq!(
            majority_time_ms(3, vec![1_000, -300_000, 1_002]),
            Some(1_000)
        );
        // Two wrong clocks among five neither.
        assert_eq!(
            majority_time_ms(5, vec![90_000, 1_000, 80_000, 999, 1_001]),
            Some(1_001)
        );
        // Two voters: both must have reached it.
        assert_eq!(majority_time_ms(2, vec![60_000, 1_000]), Some(1_000));
        // Fewer readings than a majority vouch for nothing.
        assert_eq!(majority_time_ms(3, vec![60_000]), None);
        assert_eq!(majority_time_ms(5, vec![3, 2]), None);
    }

    #[test]
    fn a_sample_is_carried_forward_at_the_monotonic_rate_until_it_is_too_old() {
        let clocks = PeerClocks::default();
        let t0 = Instant::now();
        assert_eq!(clocks.lower_bound_ms(2, t0), None);
        clocks.observe_at(2, 10_000, t0);
        assert_eq!(clocks.lower_bound_ms(2, t0), Some(10_000));
        assert_eq!(
            clocks.lower_bound_ms(2, t0 + Duration::from_millis(1_500)),
            Some(11_500)
        );
        assert_eq!(clocks.lower_bound_ms(2, t0 + MAX_SAMPLE_AGE), Some(15_000));
        assert_eq!(
            clocks.lower_bound_ms(2, t0 + MAX_SAMPLE_AGE + Duration::from_millis(1)),
            None
        );
        // An older reading arriving late does not replace a newer one; 0 is "not said".
        clocks.observe_at(2, 20_000, t0 + Duration::from_secs(2));
        clocks.observe_at(2, 5_000, t0 + Duration::from_secs(1));
        clocks.observe_at(2, 0, t0 + Duration::from_secs(3));
        assert_eq!(
            clocks.lower_bound_ms(2, t0 + Duration::from_secs(3)),
            Some(21_000)
        );
        assert_eq!(clocks.lower_bound_ms(3, t0), None);
    }
}
