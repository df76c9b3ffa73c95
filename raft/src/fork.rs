//! The storage side of an online split: when a source group applies `SplitOut`, the same write
//! batch that deletes the moved records from the source writes the new group's *genesis* — its
//! whole initial state — on this replica. See `docs/design/005-online-group-split.md`.
//!
//! The genesis is:
//! * the moved `MutableState`s and current-run pointers, the source's clock, and every history
//!   event of the moved executions (moved from the source's key range to the new group's);
//! * the new group's applied record: applied log id [`genesis_log_id`] (index 0, term 0, the
//!   same on every replica) and, as membership, the source's membership at the split.
//!
//! No log entry and no vote are written: openraft, opening a group whose state machine is
//! ahead of its (empty) log, purges the log up to the applied id and builds a snapshot from the
//! state, so the new group starts as an initialized member of the source's voters and elects a
//! leader by itself. A replica that missed the split (it later installs a source snapshot taken
//! after it) has no genesis; it joins the new group empty and receives that group's snapshot.
//!
//! # Correctness
//! * Deterministic: the genesis depends only on the source's replicated state (in memory and its
//!   own records) and the entry — every replica writes the same bytes.
//! * Atomic with the source's apply: one `WriteBatch`, so a crash leaves either the unsplit
//!   source or both groups.
//! * Never overwrites a live group: if the new group already has an applied record here (it was
//!   created from a snapshot of the new group before this replica applied the split), only the
//!   source side is written.

use crate::records::{self, AppliedRecord, encode_record, exec_ref};
use crate::types::{LogId, StoredMembership};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::{BasicNode, Membership};
use perdura_engine::{GroupId, SplitOff};
use perdura_storage::keys;
use perdura_storage::{Batch, Cf, Db};
use std::collections::BTreeMap;
use std::io;

/// The applied log id of every split group's genesis: index 0 of term 0, like openraft's own
/// `initialize`, but with the same (node 0) leader on every replica.
pub fn genesis_log_id() -> LogId {
    LogId::new(
        LeaderId {
            term: 0,
            node_id: 0,
        },
        0,
    )
}

/// Adds the source-side event moves and the new group's genesis to `batch`.
pub(crate) fn put_split_off(
    batch: &mut Batch,
    db: &Db,
    source: GroupId,
    split: &SplitOff,
    source_membership: &StoredMembership,
) -> Result<(), io::Error> {
    let new = split.new_group.0;
    let exists = db
        .get(Cf::State, &keys::applied_key(new))
        .map_err(io::Error::from)?
        .is_some();
    if exists {
        tracing::warn!(source = %source, new_group = %split.new_group, "the split-off group already exists here; keeping it");
    }
    for ms in &split.executions {
        let from = keys::events_prefix(source.0, exec_ref(&ms.key));
        let end = keys::prefix_successor(&from)
            .ok_or_else(|| io::Error::other("an events prefix always has a successor"))?;
        if !exists {
            let to = keys::events_prefix(new, exec_ref(&ms.key));
            for kv in db
                .scan(Cf::State, &from, Some(&end))
                .map_err(io::Error::from)?
            {
                let (key, value) = kv.map_err(io::Error::from)?;
                let mut moved = to.clone();
                moved.extend_from_slice(&key[from.len()..]);
                batch.put(Cf::State, moved, value.to_vec());
            }
            batch.put(
                Cf::State,
                keys::execution_key(new, exec_ref(&ms.key)),
                encode_record(ms)?,
            );
        }
        batch.delete_range(Cf::State, from, end);
    }
    if exists {
        return Ok(());
    }
    for (workflow, run) in &split.current_runs {
        batch.put(
            Cf::State,
            keys::current_run_key(new, &workflow.namespace, &workflow.workflow_id),
            encode_record(run)?,
        );
    }
    batch.put(
        Cf::State,
        keys::shard_clock_key(new),
        encode_record(&split.clock_ms)?,
    );
    let genesis = genesis_log_id();
    let applied = AppliedRecord {
        last_applied: Some(genesis),
        last_membership: StoredMembership::new(
            Some(genesis),
            genesis_membership(source_membership)?,
        ),
    };
    records::put_applied(batch, split.new_group, &applied)
}

/// The source's membership, without a joint phase: a split during a membership change takes the
/// configuration being changed to (the new group then needs no change of its own to finish).
fn genesis_membership(source: &StoredMembership) -> Result<Membership<u64, BasicNode>, io::Error> {
    let membership = source.membership();
    let voters = membership
        .get_joint_config()
        .last()
        .cloned()
        .unwrap_or_default();
    let nodes: BTreeMap<u64, BasicNode> = membership
        .nodes()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    Membership::new(vec![voters], nodes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::NoopObserver;
    use crate::state_machine::{ApplyHooks, GroupState, GroupStateMachine};
    use crate::types::{Entry, Proposal};
    use openraft::EntryPayload;
    use openraft::storage::RaftStateMachine;
    use perdura_engine::slots::slot_of;
    use perdura_engine::{ShardCommand, ShardCommandKind, ShardState, SlotRange};
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use temporalio_protos::temporal::api::common::v1::WorkflowType;
    use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
    use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;

    const SOURCE: GroupId = GroupId(1);
    const NEW: GroupId = GroupId(7);

    fn entry(index: u64, payload: EntryPayload<Proposal, u64, BasicNode>) -> Entry {
        Entry {
            log_id: LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                index,
            ),
            payload,
        }
    }

    fn shard(index: u64, kind: ShardCommandKind) -> Entry {
        let command = ShardCommand {
            now_ms: 1_700_000_000_000 + index as i64,
            kind,
        };
        entry(index, EntryPayload::Normal(Proposal::Shard(command)))
    }

    fn start(index: u64, workflow_id: &str) -> Entry {
        let request = StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: workflow_id.into(),
            workflow_type: Some(WorkflowType { name: "t".into() }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            request_id: format!("req-{workflow_id}"),
            ..Default::default()
        };
        shard(
            index,
            ShardCommandKind::StartWorkflow {
                request,
                run_id: format!("run-{workflow_id}"),
            },
        )
    }

    fn open(db: &Arc<Db>, group: GroupId) -> GroupStateMachine {
        let hooks = ApplyHooks {
            observer: Arc::new(NoopObserver),
            timer: Arc::default(),
            outbox: Arc::default(),
        };
        GroupStateMachine::open(group, db.clone(), hooks).expect("open state machine")
    }

    async fn apply(sm: &mut GroupStateMachine, entries: Vec<Entry>) {
        let stream = futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
        sm.apply(stream).await.expect("apply");
    }

    fn shard_state(sm: &GroupStateMachine) -> ShardState {
        match &*sm.state().read().expect("lock") {
            GroupState::Shard(s) => s.clone(),
            GroupState::Meta(_) => unreachable!("a workflow group"),
        }
    }

    fn keys_of(state: &ShardState) -> BTreeSet<String> {
        state.executions().map(|ms| ms.key.to_string()).collect()
    }

    #[tokio::test]
    async fn a_split_moves_records_and_events_and_writes_the_new_groups_genesis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::open(dir.path()).expect("open db"));
        let mut source = open(&db, SOURCE);
        let voters = Membership::new(
            vec![BTreeSet::from([1u64])],
            BTreeMap::from([(1u64, BasicNode::default())]),
        )
        .expect("membership");
        let mut entries = vec![entry(1, EntryPayload::Membership(voters))];
        let ids: Vec<String> = (0..40).map(|i| format!("wf-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            entries.push(start(2 + i as u64, id));
        }
        apply(&mut source, entries).await;
        let before = shard_state(&source);
        let histories: BTreeMap<String, Vec<_>> = before
            .executions()
            .map(|ms| {
                let events =
                    records::read_history(&db, SOURCE, &ms.key, 1, 1000).expect("read history");
                (ms.key.to_string(), events)
            })
            .collect();
        let slots = SlotRange {
            start: 0,
            end: 2048,
        };
        let split = ShardCommandKind::SplitOut {
            slots,
            new_group: NEW,
        };
        apply(&mut source, vec![shard(100, split)]).await;

        let remaining = records::load_shard(&db, SOURCE).expect("load source");
        let forked = records::load_shard(&db, NEW).expect("load new group");
        assert!(forked.executions().next().is_some(), "some workflow moved");
        assert!(
            remaining.executions().next().is_some(),
            "some workflow stayed"
        );
        let mut all = keys_of(&remaining);
        all.extend(keys_of(&forked));
        assert_eq!(all, keys_of(&before), "nothing lost");
        assert!(
            keys_of(&remaining).is_disjoint(&keys_of(&forked)),
            "nothing duplicated"
        );
        for ms in forked.executions() {
            assert!(slots.contains(slot_of(&ms.key.namespace, &ms.key.workflow_id)));
            let moved = records::read_history(&db, NEW, &ms.key, 1, 1000).expect("read");
            assert_eq!(
                moved,
                histories[&ms.key.to_string()],
                "history of {}",
                ms.key
            );
            let left = records::read_history(&db, SOURCE, &ms.key, 1, 1000).expect("read");
            assert!(left.is_empty(), "{}'s events left the source", ms.key);
            assert!(forked.current_run(&ms.key.workflow_key()).is_some());
            assert!(remaining.current_run(&ms.key.workflow_key()).is_none());
        }
        assert_eq!(remaining.moved_slots(), vec![(slots, NEW)]);
        assert_eq!(forked.clock_ms(), remaining.clock_ms());
        // The in-memory source equals what a restart loads.
        assert_eq!(keys_of(&shard_state(&source)), keys_of(&remaining));
        // The genesis: applied at index 0 with the source's voters.
        let applied = records::read_applied(&db, NEW).expect("applied record");
        assert_eq!(applied.last_applied, Some(genesis_log_id()));
        let voters: Vec<u64> = applied.last_membership.voter_ids().collect();
        assert_eq!(voters, vec![1]);
        let mut new_sm = open(&db, NEW);
        let (log_id, membership) = new_sm.applied_state().await.expect("applied state");
        assert_eq!(log_id, Some(genesis_log_id()));
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![1]);
        assert_eq!(keys_of(&shard_state(&new_sm)), keys_of(&forked));
    }

    #[tokio::test]
    async fn a_split_never_overwrites_a_new_group_that_already_exists_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::open(dir.path()).expect("open db"));
        // The new group already has state here (say, from its own snapshot).
        let mut existing = Batch::new();
        let marker = AppliedRecord {
            last_applied: Some(LogId::new(
                LeaderId {
                    term: 3,
                    node_id: 2,
                },
                50,
            )),
            last_membership: StoredMembership::default(),
        };
        records::put_applied(&mut existing, NEW, &marker).expect("encode");
        db.write(&existing, true).expect("write");
        let mut source = open(&db, SOURCE);
        let ids: Vec<Entry> = (0..20).map(|i| start(1 + i, &format!("wf-{i}"))).collect();
        apply(&mut source, ids).await;
        let split = ShardCommandKind::SplitOut {
            slots: SlotRange {
                start: 0,
                end: 4096,
            },
            new_group: NEW,
        };
        apply(&mut source, vec![shard(30, split)]).await;
        assert_eq!(records::read_applied(&db, NEW).expect("read"), marker);
        assert!(
            records::load_shard(&db, NEW)
                .expect("load")
                .executions()
                .next()
                .is_none()
        );
        assert!(
            records::load_shard(&db, SOURCE)
                .expect("load")
                .executions()
                .next()
                .is_none()
        );
    }
}
