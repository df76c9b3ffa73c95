//! The outcome of [`super::check_all`]: per invariant, how much was judged and what was violated.
//! Serializes to JSON; RESULTS.md tables are built from it.

use super::{Invariant, InvariantReport, Violation};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// No invariant was violated.
    pub valid: bool,
    /// Operations in the history (paired invoke + completion count once).
    pub operations: usize,
    pub invariants: Vec<InvariantSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantSummary {
    pub invariant: Invariant,
    pub number: u8,
    pub title: String,
    pub judged: u64,
    pub judged_unit: String,
    pub violation_count: usize,
    pub violations: Vec<Violation>,
}

impl CheckSummary {
    pub fn new(operations: usize, reports: Vec<InvariantReport>) -> Self {
        let invariants: Vec<InvariantSummary> = reports
            .into_iter()
            .map(|report| InvariantSummary {
                invariant: report.invariant,
                number: report.invariant.number(),
                title: report.invariant.title().to_owned(),
                judged: report.judged,
                judged_unit: report.invariant.judged_unit().to_owned(),
                violation_count: report.violations.len(),
                violations: report.violations,
            })
            .collect();
        CheckSummary {
            valid: invariants
                .iter()
                .all(|summary| summary.violation_count == 0),
            operations,
            invariants,
        }
    }

    /// The summary of one invariant.
    pub fn of(&self, invariant: Invariant) -> Option<&InvariantSummary> {
        self.invariants
            .iter()
            .find(|summary| summary.invariant == invariant)
    }
}

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} operations", self.operations)?;
        writeln!(
            f,
            "{:>2}  {:<58} {:>8}  {:>10}",
            "#", "invariant", "judged", "violations"
        )?;
        for summary in &self.invariants {
            writeln!(
                f,
                "{:>2}  {:<58} {:>8}  {:>10}",
                summary.number, summary.title, summary.judged, summary.violation_count
            )?;
        }
        for violation in self
            .invariants
            .iter()
            .flat_map(|summary| &summary.violations)
        {
            writeln!(f)?;
            write!(f, "{violation}")?;
        }
        writeln!(f)?;
        writeln!(f, "{}", if self.valid { "VALID" } else { "INVALID" })
    }
}
