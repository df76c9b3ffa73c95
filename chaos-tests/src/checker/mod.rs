//! The checkers of the nine invariants of CHAOS.md §A4, one file per invariant, over a paired
//! [`History`] and the end-of-run [`FinalRead`].
//!
//! Each checker is a pure function of a [`CheckInput`] returning an [`InvariantReport`]: how many
//! items it judged and every [`Violation`] it found, each with a minimal witness (the specific
//! operations, events or log entries that show it). [`check_all`] runs all nine into a
//! [`CheckSummary`], which serializes to JSON for the results tables.
//!
//! Conventions shared by all checkers:
//! * `ok` happened, `fail` definitely did not, `info` or no completion may be either way.
//! * "A before B" is real time on the harness clock: A completed before B was invoked.
//! * Where a property concerns a run's contents, the checker judges the *reference replica* (the
//!   lowest node that holds the run); invariant 3 separately checks that every replica equals it.
//! * Checkers never panic on input: every lookup that input can defeat is an `Option` handled as
//!   "missing", which is itself reported where it matters.

mod acked_starts;
mod activity_completion;
mod final_index;
mod history_shape;
mod liveness;
mod raft_safety;
mod results_stable;
mod run_timeouts;
mod signals;
mod single_open_run;
mod summary;
mod timers;
mod violation;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod valid_histories;

pub use final_index::{FinalIndex, RunKey, RunReplica};
pub use summary::{CheckSummary, InvariantSummary};
pub use violation::{Violation, WitnessEvent, WitnessOp};

use crate::history::{FinalRead, History};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The nine invariants, numbered as in CHAOS.md §A4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    AckedStartsSurvive,
    SingleOpenRun,
    HistoryShape,
    ActivityCompletion,
    TimersNotEarly,
    SignalsExactlyOnce,
    ResultsStable,
    RaftSafety,
    Liveness,
}

impl Invariant {
    pub const ALL: [Invariant; 9] = [
        Invariant::AckedStartsSurvive,
        Invariant::SingleOpenRun,
        Invariant::HistoryShape,
        Invariant::ActivityCompletion,
        Invariant::TimersNotEarly,
        Invariant::SignalsExactlyOnce,
        Invariant::ResultsStable,
        Invariant::RaftSafety,
        Invariant::Liveness,
    ];

    /// The number in CHAOS.md §A4.
    pub fn number(self) -> u8 {
        match self {
            Invariant::AckedStartsSurvive => 1,
            Invariant::SingleOpenRun => 2,
            Invariant::HistoryShape => 3,
            Invariant::ActivityCompletion => 4,
            Invariant::TimersNotEarly => 5,
            Invariant::SignalsExactlyOnce => 6,
            Invariant::ResultsStable => 7,
            Invariant::RaftSafety => 8,
            Invariant::Liveness => 9,
        }
    }

    /// One line for tables.
    pub fn title(self) -> &'static str {
        match self {
            Invariant::AckedStartsSurvive => "no acked StartWorkflow lost",
            Invariant::SingleOpenRun => "at most one open run per workflow ID",
            Invariant::HistoryShape => "event IDs contiguous, replicas equal, reads prefixes",
            Invariant::ActivityCompletion => "completed activity never lost or re-dispatched",
            Invariant::TimersNotEarly => "timers never fire early",
            Invariant::SignalsExactlyOnce => "acked signals applied once, in ack order",
            Invariant::ResultsStable => "a result once read never changes",
            Invariant::RaftSafety => "raft safety: committed prefixes agree, applied monotonic",
            Invariant::Liveness => "liveness while faults <= f",
        }
    }

    /// What [`InvariantReport::judged`] counts for this invariant.
    pub fn judged_unit(self) -> &'static str {
        match self {
            Invariant::HistoryShape => "run replicas and reads",
            Invariant::RaftSafety => "group replicas and status reads",
            Invariant::SingleOpenRun => "runs and acked starts",
            _ => "operations",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} ({})", self.number(), self.title())
    }
}

/// Bounds the checkers need (harness-clock durations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckConfig {
    /// Invariant 9: an operation judged for liveness must complete within this.
    pub liveness_bound_ms: u64,
    /// Invariant 9: how long the fault state must have been calm before an operation is judged
    /// (elections and catch-up after a heal).
    pub recovery_grace_ms: u64,
    /// Invariant 9: how many nodes may be down while liveness is still expected (`f`).
    pub fault_tolerance: usize,
    /// Invariant 5: a live timer must have fired by `t_cmd + duration + this` if the final read
    /// happened after that.
    pub timer_fire_bound_ms: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            liveness_bound_ms: 10_000,
            recovery_grace_ms: 5_000,
            fault_tolerance: 1,
            timer_fire_bound_ms: 10_000,
        }
    }
}

/// What every checker reads.
pub struct CheckInput<'a> {
    pub history: &'a History,
    pub final_read: &'a FinalRead,
    pub index: FinalIndex<'a>,
    pub config: &'a CheckConfig,
}

impl<'a> CheckInput<'a> {
    pub fn new(history: &'a History, final_read: &'a FinalRead, config: &'a CheckConfig) -> Self {
        CheckInput {
            history,
            final_read,
            index: FinalIndex::new(final_read),
            config,
        }
    }
}

/// One checker's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantReport {
    pub invariant: Invariant,
    /// How many items the checker judged (see [`Invariant::judged_unit`]).
    pub judged: u64,
    pub violations: Vec<Violation>,
}

impl InvariantReport {
    pub fn new(invariant: Invariant) -> Self {
        InvariantReport {
            invariant,
            judged: 0,
            violations: Vec::new(),
        }
    }

    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one checker.
pub fn check(invariant: Invariant, input: &CheckInput<'_>) -> InvariantReport {
    match invariant {
        Invariant::AckedStartsSurvive => acked_starts::check(input),
        Invariant::SingleOpenRun => single_open_run::check(input),
        Invariant::HistoryShape => history_shape::check(input),
        Invariant::ActivityCompletion => activity_completion::check(input),
        Invariant::TimersNotEarly => timers::check(input),
        Invariant::SignalsExactlyOnce => signals::check(input),
        Invariant::ResultsStable => results_stable::check(input),
        Invariant::RaftSafety => raft_safety::check(input),
        Invariant::Liveness => liveness::check(input),
    }
}

/// Runs all nine checkers.
pub fn check_all(history: &History, final_read: &FinalRead, config: &CheckConfig) -> CheckSummary {
    let input = CheckInput::new(history, final_read, config);
    let reports = Invariant::ALL
        .iter()
        .map(|&invariant| check(invariant, &input))
        .collect();
    CheckSummary::new(history.operations.len(), reports)
}
