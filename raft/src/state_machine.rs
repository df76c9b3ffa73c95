//! Per-group state machine: the engine's state in memory, its records in RocksDB.
//!
//! Each applied entry produces ONE [`Batch`]: the records the command changed (dirty
//! `MutableState`s re-read from the state, `CurrentRun`s, appended events, the shard clock, or
//! the whole meta state) plus the group's applied log id and membership. Only after that batch
//! is written are the entry's notices delivered and its client answered. A `SplitOut` also
//! writes the new group's genesis into that batch ([`crate::fork`]). The apply path reads
//! no clock: time comes from the command.

use crate::fork;
use crate::observer::ApplyObserver;
use crate::records::{self, AppliedRecord, decode_record, encode_record};
use crate::snapshot::{Record, SnapshotBlob};
use crate::timer::TimerSignal;
use crate::types::{
    Entry, LogId, Proposal, ProposalReply, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};
use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use perdura_engine::{EngineError, GroupId, MetaState, Notice, ShardState};
use perdura_storage::keys;
use perdura_storage::{Batch, Cf, Db, StorageError};
use std::io;
use std::sync::{Arc, RwLock};

/// The in-memory state of one group, shared with readers (the API) behind a lock.
#[derive(Debug)]
pub enum GroupState {
    Meta(MetaState),
    Shard(ShardState),
}

/// Shared handle to a group's in-memory state.
pub type SharedState = Arc<RwLock<GroupState>>;

/// What the state machine tells the rest of the node after an entry is applied.
#[derive(Clone)]
pub(crate) struct ApplyHooks {
    pub observer: Arc<dyn ApplyObserver>,
    pub timer: Arc<TimerSignal>,
    /// Wakes the group's outbox driver.
    pub outbox: Arc<tokio::sync::Notify>,
}

/// The state machine of one group. See the module docs.
pub struct GroupStateMachine {
    group: GroupId,
    db: Arc<Db>,
    state: SharedState,
    applied: AppliedRecord,
    hooks: ApplyHooks,
}

fn load_state(db: &Db, group: GroupId) -> Result<GroupState, StorageError> {
    Ok(if group == GroupId::META {
        GroupState::Meta(records::load_meta(db, group)?)
    } else {
        GroupState::Shard(records::load_shard(db, group)?)
    })
}

impl GroupStateMachine {
    /// Loads the group's applied state from `db`.
    pub(crate) fn open(
        group: GroupId,
        db: Arc<Db>,
        hooks: ApplyHooks,
    ) -> Result<GroupStateMachine, StorageError> {
        let applied = records::read_applied(&db, group)?;
        let state = Arc::new(RwLock::new(load_state(&db, group)?));
        if let Some(log_id) = applied.last_applied {
            metrics::gauge!("perdura_raft_applied_index", "group" => group.0.to_string())
                .set(log_id.index as f64);
        }
        Ok(GroupStateMachine {
            group,
            db,
            state,
            applied,
            hooks,
        })
    }

    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// Applies one entry: engine, then one atomic write, then notices. Returns the reply.
    fn apply_entry(&mut self, entry: Entry) -> Result<ProposalReply, io::Error> {
        let log_id = entry.log_id;
        let mut batch = Batch::new();
        let mut state = self
            .state
            .write()
            .map_err(|_| io::Error::other("group state lock poisoned"))?;
        let (reply, notices) = match entry.payload {
            EntryPayload::Blank => (ProposalReply::Blank, Vec::new()),
            EntryPayload::Membership(membership) => {
                self.applied.last_membership = StoredMembership::new(Some(log_id), membership);
                (ProposalReply::Blank, Vec::new())
            }
            EntryPayload::Normal(Proposal::Meta(command)) => match &mut *state {
                GroupState::Meta(meta) => {
                    let reply = meta.apply(command);
                    records::put_meta(&mut batch, self.group, meta)?;
                    (ProposalReply::Meta(reply), Vec::new())
                }
                GroupState::Shard(_) => (
                    ProposalReply::Meta(Err(wrong_group("a meta command", self.group))),
                    Vec::new(),
                ),
            },
            EntryPayload::Normal(Proposal::Shard(command)) => match &mut *state {
                GroupState::Shard(shard) => {
                    let applied = shard.apply(command);
                    records::put_shard_changes(&mut batch, self.group, shard, &applied.changes)?;
                    if let Some(split) = &applied.changes.split_off {
                        fork::put_split_off(
                            &mut batch,
                            &self.db,
                            self.group,
                            split,
                            &self.applied.last_membership,
                        )?;
                    }
                    let reply = applied.reply.unwrap_or_else(|| {
                        Err(EngineError::FailedPrecondition(
                            "the engine produced no reply".into(),
                        ))
                    });
                    (ProposalReply::Shard(reply), applied.notices)
                }
                GroupState::Meta(_) => (
                    ProposalReply::Shard(Err(wrong_group("a workflow command", self.group))),
                    Vec::new(),
                ),
            },
        };
        self.applied.last_applied = Some(log_id);
        records::put_applied(&mut batch, self.group, &self.applied)?;
        // Written while the state lock is held: a reader never sees in-memory state that its
        // records (e.g. history events) do not back yet. Not synced: the log entry is durable,
        // and RocksDB's WAL is replayed as a prefix, so a lost apply is re-applied from the log.
        self.db.write(&batch, false).map_err(io::Error::from)?;
        drop(state);
        metrics::gauge!("perdura_raft_applied_index", "group" => self.group.0.to_string())
            .set(log_id.index as f64);
        if !notices.is_empty() {
            for notice in &notices {
                match notice {
                    Notice::TimerArmed { fire_at_ms } => self.hooks.timer.armed(*fire_at_ms),
                    Notice::OutboxReady(_) => self.hooks.outbox.notify_one(),
                    _ => {}
                }
            }
            self.hooks.observer.on_applied(self.group, &notices);
        }
        Ok(reply)
    }

    /// Every `state` record of the group except the applied record, keys without the group.
    fn collect_records(&self) -> Result<Vec<Record>, StorageError> {
        let (start, end) = keys::group_range(self.group.0);
        let applied_key = keys::applied_key(self.group.0);
        let mut out = Vec::new();
        for kv in self.db.scan(Cf::State, &start, end.as_deref())? {
            let (key, value) = kv?;
            if *key != *applied_key {
                out.push((key[start.len()..].to_vec(), value.to_vec()));
            }
        }
        Ok(out)
    }
}

fn wrong_group(what: &str, group: GroupId) -> EngineError {
    EngineError::InvalidArgument(format!("{what} was proposed to group {group}"))
}

/// Builds the snapshot captured when the builder was created.
pub struct GroupSnapshotBuilder {
    group: GroupId,
    db: Arc<Db>,
    blob: Result<SnapshotBlob, io::ErrorKind>,
}

impl RaftSnapshotBuilder<TypeConfig> for GroupSnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<crate::types::Snapshot, io::Error> {
        let blob = self
            .blob
            .clone()
            .map_err(|kind| io::Error::new(kind, "collecting the group's records failed"))?;
        let bytes = encode_record(&blob)?;
        // The records in the blob were written unsynced; make them durable before openraft may
        // purge the log entries they replace.
        self.db.sync_wal().map_err(io::Error::from)?;
        let mut batch = Batch::new();
        batch.put(
            Cf::Snapshot,
            keys::snapshot_key(self.group.0).to_vec(),
            bytes.clone(),
        );
        self.db.write(&batch, true).map_err(io::Error::from)?;
        Ok(crate::types::Snapshot {
            meta: blob.meta(),
            snapshot: std::io::Cursor::new(bytes),
        })
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = GroupSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((
            self.applied.last_applied,
            self.applied.last_membership.clone(),
        ))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let reply = self.apply_entry(entry)?;
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Runs on the apply task between two applies: the records read here are exactly the
        // state at `self.applied`.
        let blob = self
            .collect_records()
            .map(|records| SnapshotBlob {
                last_applied: self.applied.last_applied,
                last_membership: self.applied.last_membership.clone(),
                records,
            })
            .map_err(|e| {
                tracing::error!(group = %self.group, error = %e, "collecting snapshot records failed");
                io::ErrorKind::Other
            });
        GroupSnapshotBuilder {
            group: self.group,
            db: self.db.clone(),
            blob,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let bytes = snapshot.into_inner();
        let blob: SnapshotBlob = decode_record("snapshot", &bytes)?;
        let applied = AppliedRecord {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        let stored = SnapshotBlob {
            last_applied: applied.last_applied,
            last_membership: applied.last_membership.clone(),
            records: blob.records,
        };
        // Replace the group's whole range, set the applied record and keep the snapshot: one
        // synced write, so a crash leaves either the old state or the new one.
        let (start, end) = keys::group_range(self.group.0);
        let mut batch = Batch::new();
        batch.delete_range(
            Cf::State,
            start.clone(),
            end.unwrap_or_else(|| vec![0xff; 5]),
        );
        for (suffix, value) in &stored.records {
            let mut key = start.clone();
            key.extend_from_slice(suffix);
            batch.put(Cf::State, key, value.clone());
        }
        records::put_applied(&mut batch, self.group, &applied)?;
        batch.put(
            Cf::Snapshot,
            keys::snapshot_key(self.group.0).to_vec(),
            encode_record(&stored)?,
        );
        let mut state = self
            .state
            .write()
            .map_err(|_| io::Error::other("group state lock poisoned"))?;
        self.db.write(&batch, true).map_err(io::Error::from)?;
        *state = load_state(&self.db, self.group)?;
        self.applied = applied;
        drop(state);
        self.hooks.timer.reload();
        self.hooks.outbox.notify_one();
        self.hooks.observer.on_snapshot_installed(self.group);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<crate::types::Snapshot>, io::Error> {
        let Some(bytes) = self
            .db
            .get(Cf::Snapshot, &keys::snapshot_key(self.group.0))
            .map_err(io::Error::from)?
        else {
            return Ok(None);
        };
        let blob: SnapshotBlob = decode_record("snapshot", &bytes)?;
        Ok(Some(crate::types::Snapshot {
            meta: blob.meta(),
            snapshot: std::io::Cursor::new(bytes),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::NoopObserver;
    use openraft::impls::leader_id_adv::LeaderId;
    use perdura_engine::{MetaCommand, NamespaceRecord};

    fn open(dir: &std::path::Path) -> GroupStateMachine {
        let db = Arc::new(Db::open(dir).expect("open db"));
        let hooks = ApplyHooks {
            observer: Arc::new(NoopObserver),
            timer: Arc::default(),
            outbox: Arc::default(),
        };
        GroupStateMachine::open(GroupId::META, db, hooks).expect("open state machine")
    }

    fn register(index: u64, name: &str) -> Entry {
        let record = NamespaceRecord {
            name: name.into(),
            id: name.into(),
            description: String::new(),
            owner_email: String::new(),
            retention_ms: 1,
            registered_at_ms: 1,
        };
        Entry {
            log_id: LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                index,
            ),
            payload: EntryPayload::Normal(Proposal::Meta(MetaCommand::RegisterNamespace(record))),
        }
    }

    async fn apply(sm: &mut GroupStateMachine, entries: Vec<Entry>) {
        let stream = futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
        sm.apply(stream).await.expect("apply");
    }

    fn namespaces(sm: &GroupStateMachine) -> Vec<String> {
        match &*sm.state.read().expect("lock") {
            GroupState::Meta(m) => m.namespaces.keys().cloned().collect(),
            GroupState::Shard(_) => unreachable!(),
        }
    }

    #[tokio::test]
    async fn an_installed_snapshot_replaces_the_group_state_and_survives_reopen() {
        let leader_dir = tempfile::tempdir().expect("tempdir");
        let follower_dir = tempfile::tempdir().expect("tempdir");
        let mut leader = open(leader_dir.path());
        apply(&mut leader, vec![register(1, "a"), register(2, "b")]).await;
        let snapshot = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        assert_eq!(snapshot.meta.last_log_id.as_ref().map(|l| l.index), Some(2));
        let current = leader
            .get_current_snapshot()
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(current.meta, snapshot.meta);

        let mut follower = open(follower_dir.path());
        apply(&mut follower, vec![register(1, "stale")]).await;
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        assert_eq!(namespaces(&follower), vec!["a", "b"]);
        let (applied, _) = follower.applied_state().await.expect("applied");
        assert_eq!(applied.map(|l| l.index), Some(2));
        drop(follower);

        let mut reopened = open(follower_dir.path());
        assert_eq!(namespaces(&reopened), vec!["a", "b"]);
        assert_eq!(
            reopened
                .applied_state()
                .await
                .expect("applied")
                .0
                .map(|l| l.index),
            Some(2)
        );
        assert!(
            reopened
                .get_current_snapshot()
                .await
                .expect("read")
                .is_some()
        );
        apply(&mut reopened, vec![register(3, "c")]).await;
        assert_eq!(namespaces(&reopened), vec!["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = open(dir.path());
        let meta = SnapshotMeta::default();
        let result = sm
            .install_snapshot(&meta, std::io::Cursor::new(vec![1, 0xff, 0xff]))
            .await;
        assert_eq!(
            result.expect_err("corrupt").kind(),
            io::ErrorKind::InvalidData
        );
    }
}
