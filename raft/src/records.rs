//! Encoding of the records this crate persists, and loading a group's state from them.
//!
//! Every record is encoded with the engine's `codec::versioned` (version byte + bincode), except
//! history events, which are stored in their protobuf encoding (the form the API serves).

use crate::types::{LogId, StoredMembership};
use perdura_engine::codec::versioned;
use perdura_engine::{
    CurrentRun, ExecutionKey, GroupId, MetaState, MutableState, ShardState, SlotRange, WorkflowKey,
};
use perdura_storage::keys::{self, ExecutionRef, StateKey};
use perdura_storage::{Batch, Cf, Db, StorageError};
use prost::Message;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// Encodes a record with the versioned codec.
pub(crate) fn encode_record<T: Serialize>(value: &T) -> Result<Vec<u8>, io::Error> {
    versioned::encode(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Decodes a record read from disk; a record that does not decode is corrupt.
pub(crate) fn decode_record<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    versioned::decode(bytes).map_err(|e| StorageError::corrupt(what, e))
}

/// The state machine's position: written in the same batch as every applied entry's records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedRecord {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
}

pub(crate) fn exec_ref(key: &ExecutionKey) -> ExecutionRef<'_> {
    ExecutionRef {
        namespace: &key.namespace,
        workflow_id: &key.workflow_id,
        run_id: &key.run_id,
    }
}

/// Reads the applied record of `group` (default if the group never applied anything).
pub fn read_applied(db: &Db, group: GroupId) -> Result<AppliedRecord, StorageError> {
    match db.get(Cf::State, &keys::applied_key(group.0))? {
        None => Ok(AppliedRecord::default()),
        Some(bytes) => decode_record("applied record", &bytes),
    }
}

pub(crate) fn put_applied(
    batch: &mut Batch,
    group: GroupId,
    applied: &AppliedRecord,
) -> Result<(), io::Error> {
    batch.put(
        Cf::State,
        keys::applied_key(group.0),
        encode_record(applied)?,
    );
    Ok(())
}

/// Loads the meta group's state.
pub fn load_meta(db: &Db, group: GroupId) -> Result<MetaState, StorageError> {
    match db.get(Cf::State, &keys::meta_state_key(group.0))? {
        None => Ok(MetaState::default()),
        Some(bytes) => decode_record("meta state", &bytes),
    }
}

pub(crate) fn put_meta(
    batch: &mut Batch,
    group: GroupId,
    state: &MetaState,
) -> Result<(), io::Error> {
    batch.put(
        Cf::State,
        keys::meta_state_key(group.0),
        encode_record(state)?,
    );
    Ok(())
}

/// Loads a workflow group's state: clock, every `MutableState`, every `CurrentRun`, the moved
/// slots.
pub fn load_shard(db: &Db, group: GroupId) -> Result<ShardState, StorageError> {
    let clock_ms: i64 = match db.get(Cf::State, &keys::shard_clock_key(group.0))? {
        None => 0,
        Some(bytes) => decode_record("shard clock", &bytes)?,
    };
    let mut executions = Vec::new();
    for kv in db.scan_prefix(Cf::State, &keys::executions_prefix(group.0))? {
        let (_, value) = kv?;
        executions.push(decode_record::<MutableState>("mutable state", &value)?);
    }
    let mut current_runs = Vec::new();
    for kv in db.scan_prefix(Cf::State, &keys::current_runs_prefix(group.0))? {
        let (key, value) = kv?;
        let StateKey::CurrentRun {
            namespace,
            workflow_id,
        } = StateKey::decode(&key)?.1
        else {
            return Err(StorageError::corrupt(
                "current run key",
                "wrong record kind",
            ));
        };
        current_runs.push((
            WorkflowKey {
                namespace,
                workflow_id,
            },
            decode_record::<CurrentRun>("current run", &value)?,
        ));
    }
    let moved: Vec<(SlotRange, GroupId)> =
        match db.get(Cf::State, &keys::moved_slots_key(group.0))? {
            None => Vec::new(),
            Some(bytes) => decode_record("moved slots", &bytes)?,
        };
    let last_task_id: Option<i64> = match db.get(Cf::State, &keys::shard_task_id_key(group.0))? {
        None => None,
        Some(bytes) => Some(decode_record("shard task id", &bytes)?),
    };
    Ok(ShardState::restore(clock_ms, executions, current_runs)
        .with_moved_slots(moved)
        .with_last_task_id(last_task_id))
}

/// Adds to `batch` every record an applied shard command changed (read back from `state`).
pub(crate) fn put_shard_changes(
    batch: &mut Batch,
    group: GroupId,
    state: &ShardState,
    changes: &perdura_engine::StateChanges,
) -> Result<(), io::Error> {
    let g = group.0;
    for key in &changes.executions {
        let record_key = keys::execution_key(g, exec_ref(key));
        match state.execution(key) {
            Some(ms) => batch.put(Cf::State, record_key, encode_record(ms)?),
            None => batch.delete(Cf::State, record_key),
        }
    }
    for key in &changes.current_runs {
        let record_key = keys::current_run_key(g, &key.namespace, &key.workflow_id);
        match state.current_run(key) {
            Some(run) => batch.put(Cf::State, record_key, encode_record(run)?),
            None => batch.delete(Cf::State, record_key),
        }
    }
    for (execution, events) in &changes.events {
        for event in events {
            batch.put(
                Cf::State,
                keys::event_key(g, exec_ref(execution), event.event_id),
                perdura_engine::canonical::encode(event),
            );
        }
    }
    if changes.moved_slots {
        batch.put(
            Cf::State,
            keys::moved_slots_key(g),
            encode_record(&state.moved_slots())?,
        );
    }
    batch.put(
        Cf::State,
        keys::shard_clock_key(g),
        encode_record(&state.clock_ms())?,
    );
    // Restoring the counter from the executions alone would go back when the one holding the
    // highest ID has moved away (a split) or gone: a restarted replica would then hand out
    // task IDs the others already used, and the replicas' states diverge.
    batch.put(
        Cf::State,
        keys::shard_task_id_key(g),
        encode_record(&state.last_task_id())?,
    );
    Ok(())
}

/// Events `[first_event_id, ..]` of one execution, at most `max_events`, in event-ID order.
pub fn read_history(
    db: &Db,
    group: GroupId,
    execution: &ExecutionKey,
    first_event_id: i64,
    max_events: usize,
) -> Result<Vec<HistoryEvent>, StorageError> {
    let prefix = keys::events_prefix(group.0, exec_ref(execution));
    let start = keys::event_key(group.0, exec_ref(execution), first_event_id);
    let end = keys::prefix_successor(&prefix);
    let mut out = Vec::new();
    for kv in db.scan(Cf::State, &start, end.as_deref())? {
        if out.len() >= max_events {
            break;
        }
        let (_, value) = kv?;
        out.push(
            HistoryEvent::decode(&*value).map_err(|e| StorageError::corrupt("history event", e))?,
        );
    }
    Ok(out)
}
