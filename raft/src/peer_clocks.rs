//! [`PeerClocks`]: the wall clocks of the other nodes as this node last saw them, as bounds,
//! and [`majority_bound_ms`], the majority-th largest of a group's voters' bounds.
//!
//! Every peer message carries the wall clock of the node that sent it (requests) or answered
//! it (replies), read before the message left that node. A reading `wall_ms` received at this
//! node's monotonic instant `at` says the peer's clock read at least `wall_ms` by `at`: carried
//! forward at the monotonic rate, `wall_ms + (now − at)` is a *lower* bound of that clock now
//! (if it runs at real rate). A reply's reading was also taken after its request left at
//! `sent`, so `wall_ms + (now − sent)` is an *upper* bound: the two differ by the round trip.
//! Readings older than [`MAX_SAMPLE_AGE`] are not used: a peer that has not been heard from
//! for that long may have been skewed since.
//!
//! # Invariant
//! While at most a minority of the voters' clocks are wrong, the majority-th largest of the
//! voters' upper bounds (this node's own clock counting as exact) is at least real time — the
//! correct clocks, a majority, all have upper bounds at or above it — and at most real time
//! plus a round trip: among any majority of the bounds one is a correct clock's. A leader that
//! stamps its own clock capped by that bound (see
//! [`GroupClock`](crate::group_clock::GroupClock)) stamps exactly its own clock while it is
//! correct, and no more than a round trip ahead of real time when it runs ahead.
//!
//! The monotonic source is [`tokio::time::Instant`] (virtual under the simulation). Nothing
//! here is read by the apply path.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a peer's clock reading is used. Heartbeat replies refresh it several times a second.
pub const MAX_SAMPLE_AGE: Duration = Duration::from_secs(5);

/// One reply's reading of a peer's wall clock, and when its request left this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    wall_ms: i64,
    sent: Instant,
}

/// The latest reply reading of each peer node's clock (see the module docs).
#[derive(Debug, Default)]
pub struct PeerClocks {
    samples: Mutex<BTreeMap<u64, Sample>>,
}

impl PeerClocks {
    /// `node` answered a request this node sent at `sent` with its clock reading `wall_ms`
    /// (0: the peer did not say).
    pub fn observe_reply(&self, node: u64, wall_ms: i64, sent: Instant) {
        if wall_ms <= 0 {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        // Replies may arrive out of order; the latest request wins.
        match samples.get(&node) {
            Some(known) if known.sent > sent => {}
            _ => {
                samples.insert(node, Sample { wall_ms, sent });
            }
        }
    }

    /// An upper bound of `node`'s clock at `now` (if it runs at real rate), if it answered a
    /// request sent within [`MAX_SAMPLE_AGE`].
    pub fn upper_bound_ms(&self, node: u64, now: Instant) -> Option<i64> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let sample = samples.get(&node)?;
        let age = now.saturating_duration_since(sample.sent);
        if age > MAX_SAMPLE_AGE {
            return None;
        }
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        Some(sample.wall_ms.saturating_add(age_ms))
    }
}

/// The majority-th largest of `bounds`, one per voter at most (`None` when fewer than a
/// majority of the `voters` have one): a value that a majority of the bounds reach.
pub fn majority_bound_ms(voters: usize, mut bounds: Vec<i64>) -> Option<i64> {
    let majority = voters / 2 + 1;
    if bounds.len() < majority {
        return None;
    }
    bounds.sort_unstable_by(|a, b| b.cmp(a));
    bounds.get(majority - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_majority_bound_is_reached_by_a_majority_of_the_bounds() {
        assert_eq!(majority_bound_ms(1, vec![7]), Some(7));
        // One clock far ahead (or behind) among three does not move it.
        assert_eq!(
            majority_bound_ms(3, vec![60_000, 1_000, 1_002]),
            Some(1_002)
        );
        assert_eq!(
            majority_bound_ms(3, vec![1_000, -300_000, 1_002]),
            Some(1_000)
        );
        // Two wrong clocks among five neither.
        assert_eq!(
            majority_bound_ms(5, vec![90_000, 1_000, 80_000, 999, 1_001]),
            Some(1_001)
        );
        // Two voters: both must reach it.
        assert_eq!(majority_bound_ms(2, vec![60_000, 1_000]), Some(1_000));
        // Fewer bounds than a majority vouch for nothing.
        assert_eq!(majority_bound_ms(3, vec![60_000]), None);
        assert_eq!(majority_bound_ms(5, vec![3, 2]), None);
    }

    #[test]
    fn a_reply_bounds_the_clock_from_its_request_on_until_it_is_too_old() {
        let clocks = PeerClocks::default();
        let t0 = Instant::now();
        assert_eq!(clocks.upper_bound_ms(2, t0), None);
        // Sent at t0, answered reading 10 s: at t0 + 1.5 s the clock reads at most 11.5 s,
        // however long the round trip took.
        clocks.observe_reply(2, 10_000, t0);
        assert_eq!(clocks.upper_bound_ms(2, t0), Some(10_000));
        assert_eq!(
            clocks.upper_bound_ms(2, t0 + Duration::from_millis(1_500)),
            Some(11_500)
        );
        assert_eq!(clocks.upper_bound_ms(2, t0 + MAX_SAMPLE_AGE), Some(15_000));
        assert_eq!(
            clocks.upper_bound_ms(2, t0 + MAX_SAMPLE_AGE + Duration::from_millis(1)),
            None
        );
        // The answer to an older request arriving late does not replace a newer one; 0 is
        // "not said".
        clocks.observe_reply(2, 20_000, t0 + Duration::from_secs(2));
        clocks.observe_reply(2, 5_000, t0 + Duration::from_secs(1));
        clocks.observe_reply(2, 0, t0 + Duration::from_secs(3));
        assert_eq!(
            clocks.upper_bound_ms(2, t0 + Duration::from_secs(3)),
            Some(21_000)
        );
        assert_eq!(clocks.upper_bound_ms(3, t0), None);
    }
}
