//! Online group split, source side: `SplitOut` forks the executions of a slot range off this
//! group, and from then on every command for those slots is rejected with `SlotMoved`. See
//! `docs/design/005-online-group-split.md`.
//!
//! Invariants:
//! * The fork is a pure function of the state: every replica that applies `SplitOut` at the same
//!   log index produces the same [`SplitOff`], byte for byte.
//! * Nothing is lost or duplicated: the executions and current-run pointers of the moved slots
//!   are in exactly one of the remaining state and the [`SplitOff`], and the derived indexes
//!   (timers, ready tasks, outbox) of the remaining state are exactly those of its executions.
//! * After the split, no command changes or answers anything about a moved slot here.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, GroupId, SlotId, WorkflowKey};
use crate::shard::applied::{Applied, Notice, StateChanges};
use crate::shard::command::{ShardCommandKind, ShardReply};
use crate::shard::limits::EngineLimits;
use crate::shard::mutable_state::{CurrentRun, MutableState};
use crate::shard::state::ShardState;
use crate::shard::txn::Staged;
use crate::slots::{SLOT_COUNT, SlotRange, slot_of};

/// What a `SplitOut` took out of the source group: the new group's initial state.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitOff {
    pub new_group: GroupId,
    pub slots: SlotRange,
    /// The source's clock at the split; the new group's time continues from it.
    pub clock_ms: i64,
    /// The moved executions, in key order.
    pub executions: Vec<MutableState>,
    /// The moved current-run pointers, in key order.
    pub current_runs: Vec<(WorkflowKey, CurrentRun)>,
}

impl SplitOff {
    /// The new group's state, as [`ShardState::restore`] would load it from the records written
    /// from this value.
    pub fn initial_state(&self, limits: EngineLimits) -> ShardState {
        ShardState::restore_with_limits(
            limits,
            self.clock_ms,
            self.executions.clone(),
            self.current_runs.clone(),
        )
    }
}

impl ShardState {
    /// The group a moved slot went to; `None` if this group never handed the slot away.
    pub fn moved_to(&self, slot: SlotId) -> Option<GroupId> {
        self.moved_slots
            .iter()
            .find(|(range, _)| range.contains(slot))
            .map(|(_, group)| *group)
    }

    /// `Err(SlotMoved)` if the workflow's slot left this group.
    pub fn check_slot(&self, namespace: &str, workflow_id: &str) -> Result<(), EngineError> {
        if self.moved_slots.is_empty() {
            return Ok(());
        }
        let slot = slot_of(namespace, workflow_id);
        match self.moved_to(slot) {
            None => Ok(()),
            Some(group) => Err(EngineError::SlotMoved {
                slot: slot.0,
                group,
            }),
        }
    }

    /// Rejects a command whose workflow's slot left this group, before it runs (so that, e.g.,
    /// a signal to a moved workflow is not answered "not found").
    pub(super) fn check_command_slot(&self, kind: &ShardCommandKind) -> Result<(), EngineError> {
        match command_workflow(kind) {
            Some(workflow) => self.check_slot(&workflow.namespace, &workflow.workflow_id),
            None => Ok(()),
        }
    }

    /// Defence in depth: a command may not stage a record of a moved slot, whatever it named.
    pub(super) fn check_staged_slots(&self, staged: &Staged) -> Result<(), EngineError> {
        if self.moved_slots.is_empty() {
            return Ok(());
        }
        let executions = staged
            .drafts
            .keys()
            .map(|k| (k.namespace.as_str(), k.workflow_id.as_str()));
        let runs = staged
            .current_runs
            .keys()
            .map(|k| (k.namespace.as_str(), k.workflow_id.as_str()));
        for (namespace, workflow_id) in executions.chain(runs) {
            self.check_slot(namespace, workflow_id)?;
        }
        Ok(())
    }

    /// Applies `SplitOut`: see the module docs.
    pub(super) fn split_out(
        &mut self,
        slots: SlotRange,
        new_group: GroupId,
    ) -> Result<Applied, EngineError> {
        if let Some(&to) = self.moved_slots.get(&slots) {
            if to != new_group {
                return Err(EngineError::FailedPrecondition(format!(
                    "slots {slots} already moved to group {to}"
                )));
            }
            return Ok(Applied {
                reply: Some(Ok(ShardReply::SplitOut {
                    executions: 0,
                    already: true,
                })),
                ..Applied::default()
            });
        }
        if slots.is_empty() || slots.end > SLOT_COUNT {
            return Err(EngineError::InvalidArgument(format!(
                "invalid slot range {slots}"
            )));
        }
        if let Some((range, to)) = self.moved_slots.iter().find(|(r, _)| r.overlaps(&slots)) {
            return Err(EngineError::FailedPrecondition(format!(
                "slots {slots} overlap {range}, which already moved to group {to}"
            )));
        }
        let moves =
            |namespace: &str, workflow_id: &str| slots.contains(slot_of(namespace, workflow_id));
        let moved_keys: Vec<ExecutionKey> = self
            .executions
            .keys()
            .filter(|k| moves(&k.namespace, &k.workflow_id))
            .cloned()
            .collect();
        let moved_runs: Vec<WorkflowKey> = self
            .current_runs
            .keys()
            .filter(|k| moves(&k.namespace, &k.workflow_id))
            .cloned()
            .collect();
        let mut executions = Vec::with_capacity(moved_keys.len());
        for key in &moved_keys {
            if let Some(ms) = self.executions.remove(key) {
                executions.push(ms);
            }
        }
        let mut current_runs = Vec::with_capacity(moved_runs.len());
        for key in &moved_runs {
            if let Some(run) = self.current_runs.remove(key) {
                current_runs.push((key.clone(), run));
            }
        }
        let stays = |e: &ExecutionKey| !moves(&e.namespace, &e.workflow_id);
        self.timers.retain(|t| stays(&t.execution));
        self.ready.retain(|t| stays(&t.execution));
        self.outbox.retain(|o| stays(&o.execution));
        self.moved_slots.insert(slots, new_group);
        let count = executions.len() as u64;
        let changes = StateChanges {
            executions: moved_keys.into_iter().collect(),
            current_runs: moved_runs.into_iter().collect(),
            events: Vec::new(),
            moved_slots: true,
            split_off: Some(SplitOff {
                new_group,
                slots,
                clock_ms: self.clock_ms,
                executions,
                current_runs,
            }),
        };
        Ok(Applied {
            reply: Some(Ok(ShardReply::SplitOut {
                executions: count,
                already: false,
            })),
            changes,
            notices: vec![Notice::SlotsMoved { slots, new_group }],
        })
    }
}

/// The one workflow a command is about, or `None` for group-wide commands (`FireTimers`,
/// `ShutdownWorker`, `SplitOut`) and malformed ones (the handler rejects those itself).
/// Exhaustive on purpose: a new command must say which slot it belongs to.
pub(crate) fn command_workflow(kind: &ShardCommandKind) -> Option<WorkflowKey> {
    use ShardCommandKind as K;
    let of = |namespace: &str, workflow_id: &str| {
        Some(WorkflowKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
        })
    };
    let of_execution = |namespace: &str, execution: Option<&_>| {
        execution.and_then(
            |e: &temporalio_protos::temporal::api::common::v1::WorkflowExecution| {
                of(namespace, &e.workflow_id)
            },
        )
    };
    match kind {
        K::StartWorkflow { request, .. } => of(&request.namespace, &request.workflow_id),
        K::SignalWithStartWorkflow { request, .. } => of(&request.namespace, &request.workflow_id),
        K::StartWorkflowWithUpdate { start, .. } => of(&start.namespace, &start.workflow_id),
        K::RecordWorkflowTaskStarted { execution, .. }
        | K::RecordActivityTaskStarted { execution, .. }
        | K::AckMessage { execution, .. } => Some(execution.workflow_key()),
        K::RespondWorkflowTaskCompleted { token, .. }
        | K::RespondWorkflowTaskFailed { token, .. }
        | K::RespondActivityTaskCompleted { token, .. }
        | K::RespondActivityTaskFailed { token, .. }
        | K::RecordActivityTaskHeartbeat { token, .. }
        | K::RespondActivityTaskCanceled { token, .. } => Some(token.execution.workflow_key()),
        K::SignalWorkflow { request } => {
            of_execution(&request.namespace, request.workflow_execution.as_ref())
        }
        K::TerminateWorkflow { request } => {
            of_execution(&request.namespace, request.workflow_execution.as_ref())
        }
        K::UpdateWorkflow { request } => {
            of_execution(&request.namespace, request.workflow_execution.as_ref())
        }
        K::RequestCancelWorkflow { request, .. } => {
            of_execution(&request.namespace, request.workflow_execution.as_ref())
        }
        K::ReceiveMessage { message, .. } => Some(message.target()),
        K::FireTimers | K::ShutdownWorker { .. } | K::SplitOut { .. } => None,
    }
}
