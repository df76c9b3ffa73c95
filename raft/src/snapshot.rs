//! The snapshot format: every `state` record of one group, with its position.

use crate::types::{LogId, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};

/// One `state` record: key without the group prefix, value.
pub type Record = (Vec<u8>, Vec<u8>);

/// One group's snapshot, encoded with the versioned codec. `records` are the group's `state`
/// records (keys without their 4-byte group prefix, so the blob does not depend on the group),
/// in key order; the applied record is not among them (it is `last_applied` + `last_membership`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBlob {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub records: Vec<Record>,
}

impl SnapshotBlob {
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
        }
    }
}
