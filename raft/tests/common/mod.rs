//! Shared helpers of the integration tests.
#![allow(dead_code)]

use perdura_engine::{GroupId, MetaCommand, NamespaceRecord, Notice};
use perdura_raft::{ApplyObserver, Clock, MultiRaft, RaftConfig, RaftTuning, SystemClock};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records everything the node reports.
#[derive(Default)]
pub struct Recorder {
    pub leadership: Mutex<Vec<(GroupId, bool)>>,
    pub notices: Mutex<Vec<(GroupId, Notice)>>,
}

impl ApplyObserver for Recorder {
    fn on_applied(&self, group: GroupId, notices: &[Notice]) {
        let mut all = self.notices.lock().expect("lock");
        all.extend(notices.iter().cloned().map(|n| (group, n)));
    }
    fn on_leadership(&self, group: GroupId, is_leader: bool) {
        self.leadership
            .lock()
            .expect("lock")
            .push((group, is_leader));
    }
}

/// The system clock plus an offset the test sets (what the chaos harness's `skew` nemesis does
/// to a node through libfaketime; monotonic time stays real).
#[derive(Default)]
pub struct SkewedClock {
    pub offset_ms: AtomicI64,
}

impl SkewedClock {
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }
}

pub fn tuning() -> RaftTuning {
    RaftTuning {
        propose_timeout: Duration::from_secs(20),
        ..RaftTuning::default()
    }
}

pub async fn open(
    dir: &Path,
    groups: u32,
    observer: Arc<Recorder>,
    tuning: RaftTuning,
) -> Arc<MultiRaft> {
    let config = RaftConfig {
        node_id: 1,
        data_dir: dir.to_path_buf(),
        shard_groups: groups,
    };
    MultiRaft::open_single_node_with(config, observer, tuning)
        .await
        .expect("open node")
}

pub fn namespace(name: &str) -> NamespaceRecord {
    NamespaceRecord {
        name: name.into(),
        id: format!("id-{name}"),
        description: String::new(),
        owner_email: String::new(),
        retention_ms: 86_400_000,
        registered_at_ms: 1,
    }
}

pub fn register(name: &str) -> MetaCommand {
    MetaCommand::RegisterNamespace(namespace(name))
}

/// The last applied log index of a group, from openraft's metrics.
pub fn applied_index(node: &MultiRaft, group: GroupId) -> u64 {
    let raft = node.raft(group).expect("known group");
    let metrics = raft.metrics();
    let m = openraft::type_config::async_runtime::watch::WatchReceiver::borrow_watched(&metrics);
    m.last_applied.as_ref().map_or(0, |l| l.index)
}
pub mod workload;
