//! How many entries one group's Raft log keeps (appended and not yet purged), published as the
//! `perdura_raft_log_entries{group}` gauge.
//!
//! The log store reports every change of the log's extent — its state at start, appends,
//! truncations and purges — and this type keeps the last purged and last present index. It is
//! bookkeeping for observability only: nothing reads it back to make a decision.

use perdura_engine::GroupId;
use std::sync::{Arc, Mutex};

/// Gauge: entries in a group's Raft log (not yet purged into a snapshot), label `group`.
pub const LOG_ENTRIES: &str = "perdura_raft_log_entries";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Extent {
    /// Index of the last purged entry, if any was purged.
    purged: Option<u64>,
    /// Index of the last entry in the log (appended, possibly not yet fsynced).
    last: Option<u64>,
}

impl Extent {
    fn entries(self) -> u64 {
        match (self.purged, self.last) {
            (_, None) => 0,
            // Log indexes start at 0.
            (None, Some(last)) => last.saturating_add(1),
            (Some(purged), Some(last)) => last.saturating_sub(purged),
        }
    }
}

/// The extent of one group's log (cloning shares it). See the module docs.
#[derive(Clone, Debug)]
pub struct LogSize {
    group: GroupId,
    extent: Arc<Mutex<Extent>>,
}

impl LogSize {
    pub fn new(group: GroupId) -> LogSize {
        LogSize {
            group,
            extent: Arc::default(),
        }
    }

    /// The log as found at start.
    pub fn found(&self, purged: Option<u64>, last: Option<u64>) {
        self.update(|extent| *extent = Extent { purged, last });
    }

    /// Entries up to `last` were appended.
    pub fn appended(&self, last: u64) {
        self.update(|extent| extent.last = Some(last));
    }

    /// Every entry after `last` was removed.
    pub fn truncated(&self, last: Option<u64>) {
        self.update(|extent| extent.last = last);
    }

    /// Every entry up to `upto` was purged.
    pub fn purged(&self, upto: u64) {
        self.update(|extent| {
            extent.purged = Some(upto);
            // A purge may run past the last entry (after a snapshot was installed).
            if extent.last.is_none_or(|last| last < upto) {
                extent.last = Some(upto);
            }
        });
    }

    /// Entries the log keeps now.
    pub fn entries(&self) -> u64 {
        self.lock().entries()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Extent> {
        // The critical sections only assign plain values: a poisoned lock holds a valid extent.
        self.extent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Extent)) {
        let entries = {
            let mut extent = self.lock();
            change(&mut extent);
            extent.entries()
        };
        metrics::gauge!(LOG_ENTRIES, "group" => self.group.0.to_string()).set(entries as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_entries_between_purge_and_last() {
        let size = LogSize::new(GroupId(1));
        assert_eq!(size.entries(), 0);
        size.found(None, Some(9));
        assert_eq!(size.entries(), 10, "indexes 0..=9");
        size.appended(12);
        assert_eq!(size.entries(), 13);
        size.truncated(Some(10));
        assert_eq!(size.entries(), 11);
        size.purged(7);
        assert_eq!(size.entries(), 3, "indexes 8..=10");
        size.purged(20);
        assert_eq!(size.entries(), 0, "a purge past the end empties the log");
        size.appended(21);
        assert_eq!(size.entries(), 1);
        size.truncated(None);
        assert_eq!(size.entries(), 0);
    }
}
