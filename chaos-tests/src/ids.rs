//! Domain identifiers of the chaos history: who did an operation, against which node, on which
//! workflow run, and when by the harness clock.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A logical client process of the harness. A process runs one operation at a time; nemesis
/// operations use their own process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub u64);

/// The index of one operation within its process; the invoke and completion lines of one
/// operation carry the same `(process, index)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpIndex(pub u64);

/// A server node of the cluster under test (1-based, as the harness numbers network namespaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// A Raft group: 0 is the meta group, 1.. hold workflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub u32);

/// Harness time: nanoseconds of the harness host's `CLOCK_MONOTONIC`, which no nemesis skews.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct HarnessNanos(pub u64);

/// A position in one group's Raft log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RaftIndex(pub u64);

/// A Raft term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RaftTerm(pub u64);

/// The id of an event within one run's history (contiguous from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub u64);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A workflow ID (the harness uses one namespace, so the ID alone names the workflow).
    WorkflowId
);
string_id!(
    /// The run ID the server assigned to one run of a workflow.
    RunId
);
string_id!(
    /// A client-chosen request ID (idempotency key of a start or a signal).
    RequestId
);
string_id!(
    /// A client-chosen activity ID; the workload keeps them unique within a run.
    ActivityId
);
string_id!(
    /// A client-chosen timer ID; the workload keeps them unique within a run.
    TimerId
);

macro_rules! number_display {
    ($($name:ident => $prefix:literal),*) => {
        $(impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        })*
    };
}

number_display!(
    ProcessId => "p", OpIndex => "#", NodeId => "n", GroupId => "g",
    RaftIndex => "raft@", RaftTerm => "term ", EventId => "event "
);

impl fmt::Display for HarnessNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Milliseconds with three decimals read better in a witness than raw nanoseconds.
        write!(f, "t={}.{:06}ms", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl HarnessNanos {
    /// `self + nanos`, saturating (a bound added to the end of time stays at the end of time).
    pub fn plus(self, nanos: u64) -> HarnessNanos {
        HarnessNanos(self.0.saturating_add(nanos))
    }
}
