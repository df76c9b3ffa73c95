//! [`GroupClock`]: the time the leader of a workflow group stamps into the group's commands and
//! compares the group's timers with.
//!
//! The engine keeps a group's time monotonic (`now = max(stamped, group time)`). Stamping the bare
//! wall clock therefore let one leader whose clock ran ahead (by N seconds) move the group's time
//! ahead for good: after the skew healed every stamp was clamped to that time, and a timer armed
//! at group time `g` for `d` (due `g + d`) waited until the *wall* clock reached `g + d`, N seconds
//! late. The stamp is now a hybrid time:
//!
//! ```text
//! stamp = max(min(wall clock, majority bound), g + (monotonic now − monotonic instant g was observed))
//! ```
//!
//! where `g` is the group's time as this node last observed it: the group's applied clock,
//! re-observed whenever it is ahead of what this node carried forward. Group time thus keeps
//! moving at the rate of the monotonic clock even while it is ahead of the wall clock, and a
//! node's own wall clock jumping backwards does not hold it still either.
//!
//! The *majority bound* caps the leader's own clock ([`crate::peer_clocks`]): the majority-th
//! largest of the voters' clocks' upper bounds — this node's wall clock, and its peers' as
//! their latest replies bound them. While the leader's clock is correct the bound is at or
//! above it and the leader stamps its own clock, exactly. A leader whose clock runs ahead
//! stamps the bound instead, at most a round trip ahead of real time (a leader that trusted
//! its clock fired every pending timer of its groups as soon as its clock jumped). Without a
//! majority of fresh readings (a leader cut off from its followers), the carried group time
//! alone is stamped; a group that was never stamped takes the wall clock. A transport without
//! clock readings (one node, or nodes of one process sharing one clock) stamps the wall clock.
//!
//! (A lower bound of the majority's clocks was stamped at first: it lags real time by the
//! one-way delay of the reading used, and a timer armed under a laggier reading than it
//! fired under fired early by the difference, with every clock correct.)
//!
//! # Invariant
//! While at most a minority of the voters' clocks are wrong: with a correct leader clock a
//! timer of duration `d` never fires earlier than `d` after it was armed (stamps are the
//! leader's clock, or carried group time, which advances no faster than the monotonic clock
//! from a group time applied before it was observed); a leader whose clock runs ahead fires
//! it at most one round trip of its peers' replies early. A timer is not delayed by a past
//! forward skew: group time never waits for the wall clock to catch up, so a timer armed after
//! a skew fires `d` after it was armed (plus the proposal latency).
//!
//! The group's applied clock is read from the applied state, never the other way round: the
//! apply path reads no clock. The monotonic source is [`tokio::time::Instant`], which is the
//! runtime's virtual time under the deterministic simulation.
//!
//! When group time runs more than [`AHEAD_REPORT_MS`] ahead of this node's wall clock (a leader's
//! clock was ahead, or this node's is behind), the clock says so: a rate-limited warning and the
//! gauge `perdura_raft_group_clock_ahead_ms`. When this node's own clock runs more than that
//! ahead of the majority bound, likewise: `perdura_raft_clock_ahead_of_majority_ms`.

use crate::group::Clock;
use crate::peer_clocks::{PeerClocks, majority_bound_ms};
use perdura_engine::GroupId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How far group time may run ahead of this node's wall clock before it is reported.
pub const AHEAD_REPORT_MS: i64 = 1_000;

/// At most one warning per group this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// The stamping clock of one group on this node (see the module docs).
pub(crate) struct GroupClock {
    group: GroupId,
    /// This node.
    node: u64,
    wall: Arc<dyn Clock>,
    /// The peers' clocks; `None` where the transport carries no readings.
    peers: Option<Arc<PeerClocks>>,
    state: Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    hybrid: HybridTime,
    last_warned: Option<Instant>,
    last_warned_majority: Option<Instant>,
}

impl GroupClock {
    pub fn new(
        group: GroupId,
        node: u64,
        wall: Arc<dyn Clock>,
        peers: Option<Arc<PeerClocks>>,
    ) -> GroupClock {
        GroupClock {
            group,
            node,
            wall,
            peers,
            state: Mutex::default(),
        }
    }

    /// Whether [`GroupClock::stamp_ms`] uses the voters (only with peers' clock readings).
    pub fn reads_peer_clocks(&self) -> bool {
        self.peers.is_some()
    }

    /// The time to stamp into a command of the group whose applied clock is `applied_ms` and
    /// whose voters are `voters`.
    pub fn stamp_ms(&self, applied_ms: i64, voters: &BTreeSet<u64>) -> i64 {
        let now = Instant::now();
        let wall_ms = self.wall.now_ms();
        let bound_ms = self.majority_bound_ms(wall_ms, voters, now);
        // A poisoned lock only means a panic elsewhere while it was held; the state is two
        // plain values, still consistent.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let carried_ms = state.hybrid.carried_ms(applied_ms, now);
        let ahead_ms = carried_ms.saturating_sub(wall_ms);
        if self.report_ahead(
            "perdura_raft_group_clock_ahead_ms",
            ahead_ms,
            &mut state.last_warned,
            now,
        ) {
            tracing::warn!(
                group = %self.group,
                ahead_ms,
                "group time runs ahead of this node's wall clock (a leader's clock was ahead, \
                 or this node's is behind); stamping group time carried forward at real rate"
            );
        }
        if let Some(bound_ms) = bound_ms {
            let own_ahead_ms = wall_ms.saturating_sub(bound_ms);
            if self.report_ahead(
                "perdura_raft_clock_ahead_of_majority_ms",
                own_ahead_ms,
                &mut state.last_warned_majority,
                now,
            ) {
                tracing::warn!(
                    group = %self.group,
                    own_ahead_ms,
                    "this node's wall clock runs ahead of a majority of the group's voters' \
                     clocks; stamping the time they can have reached"
                );
            }
        }
        let base_ms = match bound_ms {
            Some(bound_ms) => wall_ms.min(bound_ms),
            // Not enough fresh readings: only group time carried forward is vouched for.
            None if applied_ms > 0 => carried_ms,
            None => wall_ms,
        };
        base_ms.max(carried_ms)
    }

    /// Sets the group's gauge `gauge` to `ahead_ms` (0 when behind); whether to warn now: more
    /// than [`AHEAD_REPORT_MS`] ahead and no such warning within [`WARN_EVERY`].
    fn report_ahead(
        &self,
        gauge: &'static str,
        ahead_ms: i64,
        last_warned: &mut Option<Instant>,
        now: Instant,
    ) -> bool {
        metrics::gauge!(gauge, "group" => self.group.0.to_string()).set(ahead_ms.max(0) as f64);
        let warn = ahead_ms > AHEAD_REPORT_MS
            && last_warned.is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY);
        if warn {
            *last_warned = Some(now);
        }
        warn
    }

    /// The majority bound of `voters`' clocks (see [`crate::peer_clocks`]); this node's wall
    /// clock where the transport carries no readings.
    fn majority_bound_ms(&self, wall_ms: i64, voters: &BTreeSet<u64>, now: Instant) -> Option<i64> {
        let Some(peers) = &self.peers else {
            return Some(wall_ms);
        };
        let bounds = voters
            .iter()
            .filter_map(|&voter| {
                if voter == self.node {
                    Some(wall_ms)
                } else {
                    peers.upper_bound_ms(voter, now)
                }
            })
            .collect();
        majority_bound_ms(voters.len(), bounds)
    }
}

/// The group time this node carries forward: the last observed group time and the monotonic
/// instant it was observed at. Pure (the caller passes the instant), for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HybridTime {
    observed: Option<(i64, Instant)>,
}

impl HybridTime {
    /// The group time carried forward to `now`, given the group's applied clock: the larger of
    /// the last observation plus the monotonic time since, and `applied_ms`, which becomes the
    /// new observation when it is the larger (so that elapsed time is counted from one
    /// observation, never rounded away by frequent reads).
    pub fn carried_ms(&mut self, applied_ms: i64, now: Instant) -> i64 {
        let projected = self.observed.map(|(group_ms, at)| {
            let elapsed = now.saturating_duration_since(at).as_millis();
            group_ms.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
        });
        match projected {
            Some(projected) if projected >= applied_ms => projected,
            _ => {
                self.observed = Some((applied_ms, now));
                applied_ms
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_clocks::MAX_SAMPLE_AGE;
    use std::sync::atomic::{AtomicI64, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn carries_group_time_forward_at_the_monotonic_rate_and_adopts_a_later_group_time() {
        let t0 = Instant::now();
        let mut hybrid = HybridTime::default();
        // A skewed leader moved group time to 60 s ahead; this node observes it.
        assert_eq!(hybrid.carried_ms(60_000, t0), 60_000);
        // Group time does not move (every later stamp was clamped): the carried time does.
        assert_eq!(hybrid.carried_ms(60_000, t0 + 1_500 * MS), 61_500);
        // Frequent reads do not round the elapsed time away.
        for i in 1..=10 {
            hybrid.carried_ms(60_000, t0 + 1_500 * MS + i * MS / 2);
        }
        assert_eq!(hybrid.carried_ms(60_000, t0 + 1_505 * MS), 61_505);
        // A group time applied behind the carried one (an older stamp) changes nothing.
        assert_eq!(hybrid.carried_ms(61_000, t0 + 2_000 * MS), 62_000);
        // A group time ahead of it (another leader's stamp) is observed from now on.
        assert_eq!(hybrid.carried_ms(90_000, t0 + 2_000 * MS), 90_000);
        assert_eq!(hybrid.carried_ms(90_000, t0 + 3_000 * MS), 91_000);
    }

    /// A wall clock the test sets.
    struct SetClock(AtomicI64);

    impl Clock for SetClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stamps_the_wall_clock_while_it_leads_and_group_time_while_that_leads() {
        let wall = Arc::new(SetClock(AtomicI64::new(10_000)));
        let clock = GroupClock::new(GroupId(1), 1, wall.clone(), None);
        let one = BTreeSet::from([1]);
        // A correct clock ahead of group time: stamp the wall.
        assert_eq!(clock.stamp_ms(9_000, &one), 10_000);
        tokio::time::advance(Duration::from_secs(1)).await;
        wall.0.store(11_000, Ordering::Relaxed);
        assert_eq!(clock.stamp_ms(10_000, &one), 11_000);
        // A skewed leader stamped 60 s ahead; this node's clock is correct.
        assert_eq!(clock.stamp_ms(71_000, &one), 71_000);
        tokio::time::advance(Duration::from_secs(2)).await;
        wall.0.store(13_000, Ordering::Relaxed);
        assert_eq!(
            clock.stamp_ms(71_000, &one),
            73_000,
            "group time keeps moving"
        );
        // This node's own clock jumps back 5 s: group time still moves at real rate.
        tokio::time::advance(Duration::from_secs(1)).await;
        wall.0.store(9_000, Ordering::Relaxed);
        assert_eq!(clock.stamp_ms(73_000, &one), 74_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_clock_runs_ahead_stamps_the_bound_of_a_majority_of_the_voters() {
        let wall = Arc::new(SetClock(AtomicI64::new(70_000)));
        let peers = Arc::new(PeerClocks::default());
        let clock = GroupClock::new(GroupId(1), 1, wall.clone(), Some(peers.clone()));
        let voters = BTreeSet::from([1, 2, 3]);
        // No readings of the peers yet: a group never stamped takes the wall clock…
        assert_eq!(clock.stamp_ms(0, &voters), 70_000);
        // …one stamped before carries its own time forward, not this node's clock.
        let mut fresh = GroupClock::new(GroupId(1), 1, wall.clone(), Some(peers.clone()));
        assert_eq!(fresh.stamp_ms(10_000, &voters), 10_000);
        // The peers' clocks read 10 s; this node's runs 60 s ahead: the majority bound wins.
        let sent = Instant::now();
        peers.observe_reply(2, 10_000, sent);
        peers.observe_reply(3, 10_050, sent);
        assert_eq!(clock.stamp_ms(9_000, &voters), 10_050);
        tokio::time::advance(Duration::from_millis(500)).await;
        wall.0.store(70_500, Ordering::Relaxed);
        assert_eq!(
            clock.stamp_ms(9_000, &voters),
            10_550,
            "bounds carried forward"
        );
        // A second clock ahead makes a majority of wrong clocks: the cap is gone (the
        // second-highest bound is this node's).
        peers.observe_reply(3, 90_000, Instant::now());
        assert_eq!(clock.stamp_ms(9_000, &voters), 70_500);
        peers.observe_reply(3, 10_500, Instant::now());
        // Node 3 is not heard from and its reading grows too old: node 2's and this node's
        // bounds are left, and only the lower one is reached by two of three.
        tokio::time::advance(MAX_SAMPLE_AGE + Duration::from_secs(1)).await;
        wall.0.store(76_500, Ordering::Relaxed);
        peers.observe_reply(2, 16_500, Instant::now());
        assert_eq!(clock.stamp_ms(9_000, &voters), 16_500);
        // A node outside the voters is not asked; a voter without a reading is missing.
        fresh = GroupClock::new(GroupId(1), 1, wall.clone(), Some(peers.clone()));
        assert_eq!(
            fresh.stamp_ms(12_000, &BTreeSet::from([1, 4, 5])),
            12_000,
            "no reading of 4 or 5: group time carried forward"
        );
    }

    /// The flake of `a_leader_whose_clock_jumps_ahead_while_it_leads_fires_no_timer_early`:
    /// stamping the majority's *lower* bound, a correct leader stamped real time minus the
    /// one-way delay of its latest readings; a run armed under a slow reading and timed out
    /// under a fast one timed out early by the difference. A correct leader now stamps its own
    /// clock, whatever the delays.
    #[tokio::test(start_paused = true)]
    async fn a_correct_leader_stamps_its_own_clock_however_late_the_replies_come() {
        let wall = Arc::new(SetClock(AtomicI64::new(10_000)));
        let peers = Arc::new(PeerClocks::default());
        let clock = GroupClock::new(GroupId(1), 1, wall.clone(), Some(peers.clone()));
        let voters = BTreeSet::from([1, 2, 3]);
        // Requests sent at 10 s took 400 ms to be answered (answers read at 10.2 s).
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(400)).await;
        wall.0.store(10_400, Ordering::Relaxed);
        peers.observe_reply(2, 10_200, sent);
        peers.observe_reply(3, 10_200, sent);
        assert_eq!(clock.stamp_ms(10_000, &voters), 10_400);
        // Later a fast round trip: the stamp is still this node's clock, so nothing armed at
        // 10.4 s for 1 s is due before the clock reads 11.4 s.
        tokio::time::advance(Duration::from_millis(990)).await;
        wall.0.store(11_390, Ordering::Relaxed);
        let sent = Instant::now();
        peers.observe_reply(2, 11_390, sent);
        peers.observe_reply(3, 11_390, sent);
        assert_eq!(clock.stamp_ms(10_400, &voters), 11_390);
    }
}
