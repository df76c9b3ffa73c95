//! The hook through which the API layer learns what the state machine applied.

use perdura_engine::{GroupId, Notice};

/// Receives in-memory effects of applied entries and leadership changes.
///
/// # Correctness
/// * `on_applied` runs after the entry's records and applied index were written (one atomic
///   write), on the group's apply task: it must not block (hand off to a channel or a lock-free
///   queue). Notices are hints; everything they say is also in the replicated state.
/// * `on_leadership(group, true)` fires when this node has become leader of `group` *and* has
///   applied every entry committed before its term (its first entry of the term is applied), so
///   `pending_tasks()` read from then on is complete. It also fires at startup of a single-node
///   cluster. `on_leadership(group, false)` fires when it stops being leader. Calls for one
///   group alternate `true`, `false`, `true`, ...
pub trait ApplyObserver: Send + Sync + 'static {
    fn on_applied(&self, group: GroupId, notices: &[Notice]);
    fn on_leadership(&self, group: GroupId, is_leader: bool);

    /// A snapshot replaced the group's whole state on this node (a lagging or new replica
    /// caught up from its leader): the notices of the entries it covers were never delivered,
    /// so anything kept from notices must be rebuilt from the state. Runs on the apply task
    /// after the new state is readable; must not block.
    fn on_snapshot_installed(&self, _group: GroupId) {}
}

/// An observer that ignores everything (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ApplyObserver for NoopObserver {
    fn on_applied(&self, _group: GroupId, _notices: &[Notice]) {}
    fn on_leadership(&self, _group: GroupId, _is_leader: bool) {}
}
