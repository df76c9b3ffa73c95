//! openraft's own storage conformance suite, run against [`GroupLogStore`] and
//! [`GroupStateMachine`] over a real RocksDB.

use crate::log_store::GroupLogStore;
use crate::observer::NoopObserver;
use crate::state_machine::{ApplyHooks, GroupStateMachine};
use crate::types::TypeConfig;
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use perdura_engine::GroupId;
use perdura_storage::{Db, LogWriter};
use std::sync::Arc;

struct RocksBuilder;

/// Keeps the database directory and the writer alive for one test.
struct Guard {
    _dir: tempfile::TempDir,
    _writer: Arc<LogWriter>,
}

impl StoreBuilder<TypeConfig, GroupLogStore, GroupStateMachine, Guard> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(Guard, GroupLogStore, GroupStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::open(dir.path()).expect("open db"));
        let writer = Arc::new(LogWriter::start(db.clone()));
        // The meta group: the suite applies only blank and membership entries.
        let group = GroupId::META;
        let hooks = ApplyHooks {
            observer: Arc::new(NoopObserver),
            timer: Arc::default(),
            outbox: Arc::default(),
        };
        let sm = GroupStateMachine::open(group, db.clone(), hooks).expect("open state machine");
        let log = GroupLogStore::new(group, db, writer.clone());
        Ok((
            Guard {
                _dir: dir,
                _writer: writer,
            },
            log,
            sm,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes() {
    Suite::test_all(RocksBuilder)
        .await
        .expect("storage conformance suite");
}
