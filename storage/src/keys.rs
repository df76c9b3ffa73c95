//! Key encodings of every column family.
//!
//! All integers are big-endian and all strings are length-prefixed (`u32` BE length, then the
//! bytes), so that:
//! * the keys of one group form one contiguous range (every key starts with the group's `u32` BE);
//! * the log entries of a group sort by index;
//! * the history events of one execution form one contiguous range sorted by event ID
//!   (a length-prefixed string is never a prefix of a different length-prefixed string, so no
//!   other execution's keys can fall inside that range).

use crate::error::StorageError;

/// Length of a `raft_log` key: group (4) + index (8).
pub const LOG_KEY_LEN: usize = 12;

/// The 4-byte prefix shared by every key of `group` in every column family.
pub fn group_prefix(group: u32) -> [u8; 4] {
    group.to_be_bytes()
}

/// The smallest key greater than every key that starts with `prefix`, or `None` if there is none
/// (the prefix is all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `[start, end)` covering every key of `group` (`end` is `None` for the last possible group).
pub fn group_range(group: u32) -> (Vec<u8>, Option<Vec<u8>>) {
    let prefix = group_prefix(group);
    (prefix.to_vec(), prefix_successor(&prefix))
}

/// Key of log entry `index` of `group` in `raft_log`.
pub fn log_key(group: u32, index: u64) -> [u8; LOG_KEY_LEN] {
    let mut key = [0u8; LOG_KEY_LEN];
    key[..4].copy_from_slice(&group.to_be_bytes());
    key[4..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Inverse of [`log_key`].
pub fn decode_log_key(key: &[u8]) -> Result<(u32, u64), StorageError> {
    let bytes: [u8; LOG_KEY_LEN] = key
        .try_into()
        .map_err(|_| StorageError::corrupt("log key", format!("length {}", key.len())))?;
    let group = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let mut index = [0u8; 8];
    index.copy_from_slice(&bytes[4..]);
    Ok((group, u64::from_be_bytes(index)))
}

/// The per-group records of `raft_meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RaftMetaKey {
    /// The last vote (must be durable before it is acted on).
    Vote = 1,
    /// The last committed log id this node knows of.
    Committed = 2,
    /// The last purged log id (the log starts after it).
    LastPurged = 3,
}

/// Key of a `raft_meta` record of `group`.
pub fn raft_meta_key(group: u32, which: RaftMetaKey) -> [u8; 5] {
    let g = group.to_be_bytes();
    [g[0], g[1], g[2], g[3], which as u8]
}

/// Key of the stored snapshot of `group` in `snapshot`.
pub fn snapshot_key(group: u32) -> [u8; 4] {
    group_prefix(group)
}

/// An execution's identity, as borrowed strings (this crate does not depend on the engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionRef<'a> {
    pub namespace: &'a str,
    pub workflow_id: &'a str,
    pub run_id: &'a str,
}

/// A decoded `state` key (without its group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateKey {
    /// Applied log id and last membership of the group's state machine.
    Applied,
    /// The shard's clock (the engine's monotonic time).
    ShardClock,
    /// The whole meta-group state (group 0 only).
    MetaState,
    /// The slot ranges a workflow group handed to other groups (online split).
    MovedSlots,
    /// The shard's last event task ID (event task IDs increase across the whole shard).
    ShardTaskId,
    /// One `MutableState`.
    Execution {
        namespace: String,
        workflow_id: String,
        run_id: String,
    },
    /// One `CurrentRun` pointer.
    CurrentRun {
        namespace: String,
        workflow_id: String,
    },
    /// One history event.
    Event {
        namespace: String,
        workflow_id: String,
        run_id: String,
        event_id: i64,
    },
}

const TAG_APPLIED: u8 = 0x01;
const TAG_SHARD_CLOCK: u8 = 0x02;
const TAG_META_STATE: u8 = 0x03;
const TAG_MOVED_SLOTS: u8 = 0x04;
const TAG_SHARD_TASK_ID: u8 = 0x05;
const TAG_EXECUTION: u8 = 0x10;
const TAG_CURRENT_RUN: u8 = 0x11;
const TAG_EVENT: u8 = 0x12;

fn push_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("a key string is shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Event IDs are `i64`; flipping the sign bit makes the big-endian bytes sort like the integers.
fn event_id_bytes(event_id: i64) -> [u8; 8] {
    ((event_id as u64) ^ (1 << 63)).to_be_bytes()
}

fn start(group: u32, tag: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&group.to_be_bytes());
    key.push(tag);
    key
}

/// `state` key of the applied record of `group`.
pub fn applied_key(group: u32) -> Vec<u8> {
    start(group, TAG_APPLIED)
}

/// `state` key of the shard clock of `group`.
pub fn shard_clock_key(group: u32) -> Vec<u8> {
    start(group, TAG_SHARD_CLOCK)
}

/// `state` key of the meta-group state.
pub fn meta_state_key(group: u32) -> Vec<u8> {
    start(group, TAG_META_STATE)
}

/// `state` key of the moved-slots record of a workflow group.
pub fn moved_slots_key(group: u32) -> Vec<u8> {
    start(group, TAG_MOVED_SLOTS)
}

/// `state` key of a workflow group's last event task ID.
pub fn shard_task_id_key(group: u32) -> Vec<u8> {
    start(group, TAG_SHARD_TASK_ID)
}

/// `state` key of an execution's `MutableState`.
pub fn execution_key(group: u32, execution: ExecutionRef<'_>) -> Vec<u8> {
    let mut key = start(group, TAG_EXECUTION);
    push_str(&mut key, execution.namespace);
    push_str(&mut key, execution.workflow_id);
    push_str(&mut key, execution.run_id);
    key
}

/// Prefix of every `MutableState` key of `group`.
pub fn executions_prefix(group: u32) -> Vec<u8> {
    start(group, TAG_EXECUTION)
}

/// `state` key of the current-run pointer of a workflow ID.
pub fn current_run_key(group: u32, namespace: &str, workflow_id: &str) -> Vec<u8> {
    let mut key = start(group, TAG_CURRENT_RUN);
    push_str(&mut key, namespace);
    push_str(&mut key, workflow_id);
    key
}

/// Prefix of every current-run key of `group`.
pub fn current_runs_prefix(group: u32) -> Vec<u8> {
    start(group, TAG_CURRENT_RUN)
}

/// Prefix of every history event of one execution.
pub fn events_prefix(group: u32, execution: ExecutionRef<'_>) -> Vec<u8> {
    let mut key = start(group, TAG_EVENT);
    push_str(&mut key, execution.namespace);
    push_str(&mut key, execution.workflow_id);
    push_str(&mut key, execution.run_id);
    key
}

/// `state` key of one history event.
pub fn event_key(group: u32, execution: ExecutionRef<'_>, event_id: i64) -> Vec<u8> {
    let mut key = events_prefix(group, execution);
    key.extend_from_slice(&event_id_bytes(event_id));
    key
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.rest.len() < n {
            return Err(StorageError::corrupt("state key", "truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, StorageError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| StorageError::corrupt("state key", e))
    }

    fn event_id(&mut self) -> Result<i64, StorageError> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
    }

    fn finish(self) -> Result<(), StorageError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StorageError::corrupt("state key", "trailing bytes"))
        }
    }
}

impl StateKey {
    /// Decodes a full `state` key into its group and record key.
    pub fn decode(key: &[u8]) -> Result<(u32, StateKey), StorageError> {
        let mut r = Reader { rest: key };
        let group = r.u32()?;
        let tag = r.take(1)?[0];
        let decoded = match tag {
            TAG_APPLIED => StateKey::Applied,
            TAG_SHARD_CLOCK => StateKey::ShardClock,
            TAG_META_STATE => StateKey::MetaState,
            TAG_MOVED_SLOTS => StateKey::MovedSlots,
            TAG_SHARD_TASK_ID => StateKey::ShardTaskId,
            TAG_EXECUTION => StateKey::Execution {
                namespace: r.string()?,
                workflow_id: r.string()?,
                run_id: r.string()?,
            },
            TAG_CURRENT_RUN => StateKey::CurrentRun {
                namespace: r.string()?,
                workflow_id: r.string()?,
            },
            TAG_EVENT => StateKey::Event {
                namespace: r.string()?,
                workflow_id: r.string()?,
                run_id: r.string()?,
                event_id: r.event_id()?,
            },
            other => {
                return Err(StorageError::corrupt(
                    "state key",
                    format!("unknown tag {other:#x}"),
                ));
            }
        };
        r.finish()?;
        Ok((group, decoded))
    }

    /// Encodes this record key for `group`.
    pub fn encode(&self, group: u32) -> Vec<u8> {
        match self {
            StateKey::Applied => applied_key(group),
            StateKey::ShardClock => shard_clock_key(group),
            StateKey::MetaState => meta_state_key(group),
            StateKey::MovedSlots => moved_slots_key(group),
            StateKey::ShardTaskId => shard_task_id_key(group),
            StateKey::Execution {
                namespace,
                workflow_id,
                run_id,
            } => execution_key(
                group,
                ExecutionRef {
                    namespace,
                    workflow_id,
                    run_id,
                },
            ),
            StateKey::CurrentRun {
                namespace,
                workflow_id,
            } => current_run_key(group, namespace, workflow_id),
            StateKey::Event {
                namespace,
                workflow_id,
                run_id,
                event_id,
            } => event_key(
                group,
                ExecutionRef {
                    namespace,
                    workflow_id,
                    run_id,
                },
                *event_id,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec<'a>(ns: &'a str, wid: &'a str, run: &'a str) -> ExecutionRef<'a> {
        ExecutionRef {
            namespace: ns,
            workflow_id: wid,
            run_id: run,
        }
    }

    #[test]
    fn log_keys_sort_by_group_then_index_and_round_trip() {
        let keys = [
            log_key(1, 2),
            log_key(1, 256),
            log_key(1, u64::MAX),
            log_key(2, 0),
            log_key(256, 1),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (g, i) in [(0, 0), (7, 1 << 40), (u32::MAX, u64::MAX)] {
            assert_eq!(decode_log_key(&log_key(g, i)).expect("decodes"), (g, i));
        }
        assert!(decode_log_key(&[0; 11]).is_err());
    }

    #[test]
    fn every_key_of_a_group_lies_in_its_range() {
        let (start, end) = group_range(5);
        let end = end.expect("group 5 has a successor");
        let keys = [
            log_key(5, 0).to_vec(),
            log_key(5, u64::MAX).to_vec(),
            raft_meta_key(5, RaftMetaKey::LastPurged).to_vec(),
            applied_key(5),
            event_key(5, exec("\u{ff}", "\u{ff}", "\u{ff}"), i64::MAX),
        ];
        for key in keys {
            assert!(start.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice());
        }
        assert_eq!(group_range(u32::MAX).1, None);
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
    }

    #[test]
    fn events_of_an_execution_are_contiguous_and_ordered() {
        let a = exec("ns", "wf", "run");
        // "wf" vs "wf1": without length prefixes "wf1"'s events would sort inside "wf"'s range.
        let b = exec("ns", "wf1", "run");
        let prefix = events_prefix(3, a);
        let end = prefix_successor(&prefix).expect("has successor");
        let mut ids = vec![];
        for id in [-5, 0, 1, 2, 255, 256, i64::MAX] {
            let k = event_key(3, a, id);
            assert!(k.starts_with(&prefix) && k < end);
            ids.push(k);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in [1, 2, 1000] {
            let other = event_key(3, b, id);
            assert!(!(prefix.as_slice() <= other.as_slice() && other.as_slice() < end.as_slice()));
        }
    }

    #[test]
    fn state_keys_round_trip() {
        let keys = [
            StateKey::Applied,
            StateKey::ShardClock,
            StateKey::MetaState,
            StateKey::MovedSlots,
            StateKey::ShardTaskId,
            StateKey::Execution {
                namespace: "n".into(),
                workflow_id: "w".into(),
                run_id: "r".into(),
            },
            StateKey::CurrentRun {
                namespace: "".into(),
                workflow_id: "ü".into(),
            },
            StateKey::Event {
                namespace: "n".into(),
                workflow_id: "w".into(),
                run_id: "r".into(),
                event_id: 42,
            },
        ];
        for key in keys {
            let bytes = key.encode(9);
            assert_eq!(StateKey::decode(&bytes).expect("decodes"), (9, key));
        }
    }

    #[test]
    fn corrupt_state_keys_are_errors() {
        let mut bytes = execution_key(1, exec("ns", "wf", "run"));
        bytes.pop();
        assert!(StateKey::decode(&bytes).is_err());
        assert!(StateKey::decode(&[0, 0, 0, 1, 0x7f]).is_err());
        let mut trailing = applied_key(1);
        trailing.push(0);
        assert!(StateKey::decode(&trailing).is_err());
    }
}
