//! The simulated clients: each operation is recorded (invoke, then `ok` / `fail` / `info`) with
//! virtual time, and sent to a node the way a client of a real cluster would: to the leader it
//! knows, following `NotLeader` redirects.
//!
//! Outcome classification (Jepsen's): an engine reply is `ok` (or `fail` for an engine
//! refusal: the command was applied and did nothing); `NotLeader` and `Shutdown` are `fail`
//! (definitely not applied); anything else, a timeout included, is `info`.

use super::cluster::SimCluster;
use super::rng::SimRng;
use crate::history::Op;
use crate::history::{OpCompletion, OpValue, PendingOp, Recorder};
use crate::ids::{HarnessNanos, NodeId, ProcessId};
use perdura_engine::{EngineError, ExecutionKey, GroupId, ShardCommandKind, ShardReply};
use perdura_raft::{MultiRaft, ProposeError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The shared recorder of a run (clients run concurrently; a line is written whole).
pub type SharedRecorder = Arc<Mutex<Recorder<Vec<u8>>>>;

/// What a proposal came to.
// One per operation, consumed at once: boxing the engine reply would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Applied(Result<ShardReply, EngineError>),
    NotApplied(String),
    Unknown(String),
}

/// Records and runs operations against the cluster.
#[derive(Clone)]
pub struct Client {
    pub recorder: SharedRecorder,
    pub rng: SimRng,
    pub clock: super::clock::SimClock,
}

impl Client {
    pub fn now(&self) -> HarnessNanos {
        HarnessNanos(u64::try_from(self.clock.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn invoke(&self, process: u64, f: Op, node: u64) -> Option<PendingOp> {
        let now = self.now();
        let mut recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        recorder
            .invoke(ProcessId(process), f, Some(NodeId(node)), now)
            .ok()
    }

    pub fn complete(&self, pending: PendingOp, completion: OpCompletion) {
        let now = self.now();
        let mut recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        // A write into a Vec cannot fail; a busy process cannot happen here (one op at a time).
        let _ = recorder.complete(pending, completion, now);
    }

    /// Proposes `kind` to `group`, starting at `first` and following up to three redirects.
    pub async fn propose(
        &self,
        cluster: &SimCluster,
        first: u64,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> Outcome {
        let mut node = first;
        for _ in 0..4 {
            let Some(raft) = cluster.node(node) else {
                return Outcome::NotApplied(format!("node {node} is down"));
            };
            match raft.propose(group, kind.clone()).await {
                Ok(reply) => return Outcome::Applied(reply),
                Err(ProposeError::NotLeader { leader: Some(next) }) if next != node => node = next,
                Err(
                    e @ (ProposeError::NotLeader { .. }
                    | ProposeError::Shutdown
                    | ProposeError::NoSlotMap),
                ) => {
                    return Outcome::NotApplied(e.to_string());
                }
                Err(ProposeError::Indeterminate(why)) => return Outcome::Unknown(why),
            }
        }
        Outcome::NotApplied("too many redirects".into())
    }

    /// A linearizable read on `node` (ReadIndex through its group): the node is the leader
    /// and has applied everything committed before the call. `None` if it cannot serve one.
    pub async fn linearizable(raft: &Arc<MultiRaft>, group: GroupId) -> bool {
        let Some(handle) = raft.raft(group) else {
            return false;
        };
        let read = handle.ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), read).await,
            Ok(Ok(_))
        )
    }

    /// The leader of `group` as the first up node that knows one believes, else any up node.
    pub fn pick_node(&self, cluster: &SimCluster, group: GroupId) -> Option<u64> {
        let up = cluster.up();
        let start = self.rng.below(up.len() as u64) as usize;
        // Mostly go to the believed leader; sometimes to a random node (redirect path).
        if self.rng.chance(80) {
            for i in 0..up.len() {
                let node = up[(start + i) % up.len()];
                if let Some(leader) = cluster.node(node).and_then(|r| r.leader_of(group))
                    && cluster.node(leader).is_some()
                {
                    return Some(leader);
                }
            }
        }
        up.get(start).copied()
    }
}

/// Maps a proposal outcome onto a history completion; `ok_value` builds the `ok` value.
pub fn completion(
    outcome: &Outcome,
    ok_value: impl FnOnce(&ShardReply) -> Option<OpValue>,
) -> OpCompletion {
    match outcome {
        Outcome::Applied(Ok(reply)) => OpCompletion::Ok(ok_value(reply)),
        Outcome::Applied(Err(e)) => OpCompletion::Fail(format!("engine: {e}")),
        Outcome::NotApplied(why) => OpCompletion::Fail(why.clone()),
        Outcome::Unknown(why) => OpCompletion::Info(why.clone()),
    }
}

/// The execution key of a run in the `default` namespace.
pub fn execution(workflow_id: &str, run_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: run_id.into(),
    }
}
