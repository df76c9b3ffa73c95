//! The end-of-run final read of a simulated cluster: per node, per group, the applied index,
//! the state digest and every run's full history, read from the node's applied state.
//!
//! Not read: the committed log entries (`committed` stays empty) — `MultiRaft` has no public
//! reader of log entries yet, so invariant 8 is judged on applied indexes and digests only.

use super::cluster::SimCluster;
use super::convert::observed_events;
use crate::history::{FinalRead, GroupRead, NodeRead, RunHistory};
use crate::ids::{GroupId, HarnessNanos, NodeId, RaftIndex, RunId, WorkflowId};
use openraft::async_runtime::WatchReceiver;
use perdura_engine::ExecutionKey;

/// Reads every up node.
pub fn final_read(cluster: &SimCluster, read_at: HarnessNanos) -> FinalRead {
    let mut nodes = Vec::new();
    for node in cluster.up() {
        let Some(raft) = cluster.node(node) else {
            continue;
        };
        let mut groups = Vec::new();
        for group in raft.shard_groups() {
            let applied = raft
                .raft(group)
                .and_then(|r| r.metrics().borrow_watched().last_applied.map(|l| l.index))
                .unwrap_or(0);
            let digest = raft
                .group_digest(group)
                .map(|(_, hash)| format!("{hash:016x}"))
                .unwrap_or_default();
            let executions: Vec<(ExecutionKey, String)> = raft
                .read_shard(group, |s| {
                    s.executions()
                        .map(|m| (m.key.clone(), m.start_request_id.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let mut runs = Vec::new();
            for (key, start_request) in executions {
                let events = raft
                    .read_history(group, &key, 1, usize::MAX)
                    .unwrap_or_default();
                runs.push(RunHistory {
                    workflow_id: WorkflowId(key.workflow_id.clone()),
                    run_id: RunId(key.run_id.clone()),
                    events: observed_events(&events, Some(&start_request)),
                });
            }
            runs.sort_by(|a, b| (&a.workflow_id, &a.run_id).cmp(&(&b.workflow_id, &b.run_id)));
            groups.push(GroupRead {
                group: GroupId(group.0),
                applied_index: RaftIndex(applied),
                state_digest: digest,
                committed: Vec::new(),
                runs,
            });
        }
        nodes.push(NodeRead {
            node: NodeId(node),
            groups,
        });
    }
    FinalRead {
        read_at_ns: read_at,
        nodes,
    }
}
