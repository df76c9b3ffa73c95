//! `ReadReplica`: this node's replicas as admin messages (see
//! [`perdura_raft::replica_read`]). Hashes and digests are lower-case hex.

use crate::pb::admin::{ReplicaGroup, ReplicaLogEntry, ReplicaRun};
use perdura_raft::replica_read::ReplicaRead;
use prost::Message;

pub fn replica_group(read: &ReplicaRead) -> ReplicaGroup {
    ReplicaGroup {
        group: read.group.0,
        applied_index: read.applied.map_or(0, |log_id| log_id.index),
        applied_term: read.applied.map_or(0, |log_id| log_id.leader_id.term),
        state_digest: format!("{:016x}", read.digest),
        committed: read
            .log
            .iter()
            .map(|entry| ReplicaLogEntry {
                index: entry.index,
                term: entry.term,
                hash: format!("{:016x}", entry.hash),
            })
            .collect(),
        runs: read
            .runs
            .iter()
            .map(|run| ReplicaRun {
                namespace: run.key.namespace.clone(),
                workflow_id: run.key.workflow_id.clone(),
                run_id: run.key.run_id.clone(),
                events: run.events.iter().map(Message::encode_to_vec).collect(),
            })
            .collect(),
    }
}
