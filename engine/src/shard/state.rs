//! [`ShardState`]: the state of one workflow group and its `apply` function.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, GroupId, WorkflowKey};
use crate::shard::applied::{Applied, Notice, PendingTask, StateChanges};
use crate::shard::command::{ShardCommand, ShardCommandKind};
use crate::shard::index::{OutboxEntry, TimerEntry, outbox_entries, ready_tasks, timer_entries};
use crate::shard::limits::EngineLimits;
use crate::shard::mutable_state::{CurrentRun, MutableState};
use crate::shard::outbox::OutboxMessage;
use crate::shard::time::MAX_CLOCK_MS;
use crate::shard::txn::{Staged, Txn};
use crate::shard::{
    ack_message, activity_heartbeat, activity_task_canceled, activity_task_completed,
    activity_task_failed, activity_task_started, fire_timers, receive_message,
    request_cancel_workflow, shutdown_worker, signal_with_start, signal_workflow,
    start_with_update, start_workflow, terminate_workflow, update_workflow,
    workflow_task_completed, workflow_task_failed, workflow_task_started,
};
use crate::slots::SlotRange;
use std::collections::{BTreeMap, BTreeSet};
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;

/// The state of one workflow group: its executions, current-run pointers, clock, and the derived
/// timer and ready-task indexes.
///
/// # Correctness
/// [`ShardState::apply`] is a deterministic function of the state and the command: it reads no
/// clock or randomness and iterates only ordered collections. Replicas that apply the same log
/// hold equal states, and [`ShardState::restore`] from the persisted records (executions,
/// current runs, clock) rebuilds a state that behaves identically.
#[derive(Clone, Debug)]
pub struct ShardState {
    pub(super) clock_ms: i64,
    /// Task ID of the last appended event; event task IDs increase across the whole shard.
    pub(super) last_task_id: i64,
    limits: EngineLimits,
    pub(super) executions: BTreeMap<ExecutionKey, MutableState>,
    pub(super) current_runs: BTreeMap<WorkflowKey, CurrentRun>,
    pub(super) timers: BTreeSet<TimerEntry>,
    pub(super) ready: BTreeSet<PendingTask>,
    pub(super) outbox: BTreeSet<OutboxEntry>,
    /// Slot ranges this group handed to other groups (`SplitOut`); commands for them are
    /// rejected with `SlotMoved`. Persisted as its own record.
    pub(super) moved_slots: BTreeMap<SlotRange, GroupId>,
}

impl Default for ShardState {
    fn default() -> Self {
        ShardState::new()
    }
}

impl ShardState {
    pub fn new() -> ShardState {
        ShardState::with_limits(EngineLimits::default())
    }

    /// An empty state with non-default limits (tests; every replica must use the same limits).
    pub fn with_limits(limits: EngineLimits) -> ShardState {
        ShardState {
            clock_ms: 0,
            last_task_id: 0,
            limits,
            executions: BTreeMap::new(),
            current_runs: BTreeMap::new(),
            timers: BTreeSet::new(),
            ready: BTreeSet::new(),
            outbox: BTreeSet::new(),
            moved_slots: BTreeMap::new(),
        }
    }

    /// Rebuilds a state from its persisted records; the indexes are derived here.
    /// The last event task ID handed out in this shard. It is part of the replicated state:
    /// persist it with every apply, since the executions left after a split or a deletion may
    /// no longer hold the highest one.
    pub fn last_task_id(&self) -> i64 {
        self.last_task_id
    }

    /// Raises the restored task-ID counter to a persisted value (a no-op for a lower one).
    pub fn with_last_task_id(mut self, persisted: Option<i64>) -> ShardState {
        if let Some(id) = persisted {
            self.last_task_id = self.last_task_id.max(id);
        }
        self
    }

    pub fn restore(
        clock_ms: i64,
        executions: Vec<MutableState>,
        current_runs: Vec<(WorkflowKey, CurrentRun)>,
    ) -> ShardState {
        ShardState::restore_with_limits(EngineLimits::default(), clock_ms, executions, current_runs)
    }

    /// [`ShardState::restore`] with non-default limits.
    pub fn restore_with_limits(
        limits: EngineLimits,
        clock_ms: i64,
        executions: Vec<MutableState>,
        current_runs: Vec<(WorkflowKey, CurrentRun)>,
    ) -> ShardState {
        let mut state = ShardState::with_limits(limits);
        state.clock_ms = clock_ms;
        for ms in executions {
            state.last_task_id = state.last_task_id.max(ms.last_task_id);
            state.timers.extend(timer_entries(&ms));
            state.ready.extend(ready_tasks(&ms));
            state.outbox.extend(outbox_entries(&ms));
            state.executions.insert(ms.key.clone(), ms);
        }
        state.current_runs.extend(current_runs);
        state
    }

    /// Adds the persisted moved-slots record to a restored state.
    pub fn with_moved_slots(mut self, moved: Vec<(SlotRange, GroupId)>) -> ShardState {
        self.moved_slots.extend(moved);
        self
    }

    /// Applies one replicated command. The reply is always `Some`. A rejected command (an `Err`
    /// reply with empty `changes`) changed nothing but the clock.
    pub fn apply(&mut self, command: ShardCommand) -> Applied {
        // Never backwards, and never past the last protobuf timestamp, so that the clock plus
        // any duration the engine computes with (capped at `MAX_DURATION_MS`) cannot overflow
        // whatever time a faulty leader stamped.
        let now_ms = command.now_ms.min(MAX_CLOCK_MS).max(self.clock_ms);
        self.clock_ms = now_ms;
        let rejected = |rejection| Applied {
            reply: Some(Err(rejection)),
            ..Applied::default()
        };
        if let ShardCommandKind::SplitOut { slots, new_group } = command.kind {
            return self.split_out(slots, new_group).unwrap_or_else(rejected);
        }
        if let Err(moved) = self.check_command_slot(&command.kind) {
            return rejected(moved);
        }
        let mut txn = Txn::new(self, now_ms);
        match dispatch(&mut txn, command.kind) {
            Err(rejection) => rejected(rejection),
            Ok(reply) => {
                let staged = txn.finish();
                if let Err(moved) = self.check_staged_slots(&staged) {
                    return rejected(moved);
                }
                let (changes, notices) = self.commit(staged);
                Applied {
                    reply: Some(reply),
                    changes,
                    notices,
                }
            }
        }
    }

    /// The last applied (clamped) command time; persisted by the caller with the records.
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    pub fn execution(&self, key: &ExecutionKey) -> Option<&MutableState> {
        self.executions.get(key)
    }

    pub fn current_run(&self, key: &WorkflowKey) -> Option<&CurrentRun> {
        self.current_runs.get(key)
    }

    /// Every execution, in ascending key order.
    pub fn executions(&self) -> impl Iterator<Item = &MutableState> {
        self.executions.values()
    }

    pub fn current_runs(&self) -> impl Iterator<Item = (&WorkflowKey, &CurrentRun)> {
        self.current_runs.iter()
    }

    /// Every task ready for dispatch and not started, to rebuild the matching queues.
    pub fn pending_tasks(&self) -> Vec<PendingTask> {
        self.ready.iter().cloned().collect()
    }

    /// Whether `task` is ready for dispatch and not started: a poller whose start was refused
    /// asks whether the task became ready again since (or its queue entry is stale).
    pub fn is_task_pending(&self, task: &PendingTask) -> bool {
        self.ready.contains(task)
    }

    /// Every outbox message waiting for delivery, in delivery order (see
    /// `docs/design/003-cross-shard-outbox.md`).
    pub fn pending_outbox(&self) -> Vec<OutboxEntry> {
        self.outbox.iter().cloned().collect()
    }

    /// The pending outbox message `outbox_id` of `execution`.
    pub fn outbox_message(
        &self,
        execution: &ExecutionKey,
        outbox_id: i64,
    ) -> Option<&OutboxMessage> {
        self.executions.get(execution)?.outbox.get(&outbox_id)
    }

    /// When the earliest timer-index entry fires; the leader proposes `FireTimers` then.
    pub fn next_timer_ms(&self) -> Option<i64> {
        self.timers.first().map(|e| e.fire_at_ms)
    }

    /// Slot ranges this group handed to other groups, in slot order.
    pub fn moved_slots(&self) -> Vec<(SlotRange, GroupId)> {
        self.moved_slots.iter().map(|(r, g)| (*r, *g)).collect()
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    pub(crate) fn timer_index(&self) -> &BTreeSet<TimerEntry> {
        &self.timers
    }

    /// Takes over the staged records: assigns task IDs, updates the indexes and reports what
    /// changed.
    fn commit(&mut self, staged: Staged) -> (StateChanges, Vec<Notice>) {
        let mut changes = StateChanges::default();
        let mut notices = Vec::new();
        for (key, mut draft) in staged.drafts {
            for event in &mut draft.events {
                self.last_task_id += 1;
                event.task_id = self.last_task_id;
            }
            if !draft.events.is_empty() {
                draft.ms.last_task_id = self.last_task_id;
            }
            let old = self.executions.get(&key);
            if old == Some(&draft.ms) {
                continue;
            }
            let old_timers: BTreeSet<TimerEntry> = old
                .map(timer_entries)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let old_ready: BTreeSet<PendingTask> = old
                .map(ready_tasks)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let new_timers: BTreeSet<TimerEntry> = timer_entries(&draft.ms).into_iter().collect();
            let new_ready: BTreeSet<PendingTask> = ready_tasks(&draft.ms).into_iter().collect();
            for entry in old_timers.difference(&new_timers) {
                self.timers.remove(entry);
            }
            for entry in new_timers.difference(&old_timers) {
                notices.push(Notice::TimerArmed {
                    fire_at_ms: entry.fire_at_ms,
                });
                self.timers.insert(entry.clone());
            }
            let old_outbox: BTreeSet<OutboxEntry> = old
                .map(outbox_entries)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let new_outbox: BTreeSet<OutboxEntry> = outbox_entries(&draft.ms).into_iter().collect();
            for entry in old_outbox.difference(&new_outbox) {
                self.outbox.remove(entry);
            }
            for entry in new_outbox.difference(&old_outbox) {
                notices.push(Notice::OutboxReady(entry.clone()));
                self.outbox.insert(entry.clone());
            }
            for task in old_ready.difference(&new_ready) {
                notices.push(Notice::TaskGone(task.clone()));
                self.ready.remove(task);
            }
            for task in new_ready.difference(&old_ready) {
                notices.push(Notice::TaskReady(task.clone()));
                self.ready.insert(task.clone());
            }
            if old.map(|o| &o.updates) != Some(&draft.ms.updates) {
                notices.push(Notice::UpdatesChanged(key.clone()));
            }
            if old.is_some_and(MutableState::is_running) && !draft.ms.is_running() {
                notices.push(Notice::WorkflowClosed {
                    execution: key.clone(),
                    status: WorkflowExecutionStatus::try_from(draft.ms.status)
                        .unwrap_or(WorkflowExecutionStatus::Unspecified),
                });
            }
            if !draft.events.is_empty() {
                notices.push(Notice::HistoryAppended(key.clone()));
                changes.events.push((key.clone(), draft.events));
            }
            changes.executions.insert(key.clone());
            self.executions.insert(key, draft.ms);
        }
        for (key, run) in staged.current_runs {
            if self.current_runs.get(&key) != Some(&run) {
                changes.current_runs.insert(key.clone());
                self.current_runs.insert(key, run);
            }
        }
        (changes, notices)
    }
}

fn dispatch(
    txn: &mut Txn,
    kind: ShardCommandKind,
) -> Result<crate::shard::txn::Committed, EngineError> {
    use ShardCommandKind as K;
    match kind {
        K::StartWorkflow { request, run_id } => start_workflow::handle(txn, request, run_id),
        K::RecordWorkflowTaskStarted {
            execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        } => workflow_task_started::handle(
            txn,
            &execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        ),
        K::RespondWorkflowTaskCompleted { token, request } => {
            workflow_task_completed::handle(txn, &token, request)
        }
        K::RespondWorkflowTaskFailed { token, request } => {
            workflow_task_failed::handle(txn, &token, request)
        }
        K::RecordActivityTaskStarted {
            execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        } => activity_task_started::handle(
            txn,
            &execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        ),
        K::RespondActivityTaskCompleted { token, request } => {
            activity_task_completed::handle(txn, &token, request)
        }
        K::RespondActivityTaskFailed { token, request } => {
            activity_task_failed::handle(txn, &token, request)
        }
        K::FireTimers => fire_timers::handle(txn),
        K::SignalWorkflow { request } => signal_workflow::handle(txn, request),
        K::TerminateWorkflow { request } => terminate_workflow::handle(txn, request),
        K::RecordActivityTaskHeartbeat { token, request } => {
            activity_heartbeat::handle(txn, &token, request)
        }
        K::RespondActivityTaskCanceled { token, request } => {
            activity_task_canceled::handle(txn, &token, request)
        }
        K::UpdateWorkflow { request } => update_workflow::handle(txn, request),
        K::RequestCancelWorkflow {
            request,
            external_initiated_event_id,
            external_workflow_execution,
        } => {
            let external = request_cancel_workflow::ExternalInitiator {
                initiated_event_id: external_initiated_event_id,
                execution: external_workflow_execution,
            };
            request_cancel_workflow::handle(txn, request, external)
        }
        K::SignalWithStartWorkflow { request, run_id } => {
            signal_with_start::handle(txn, request, run_id)
        }
        K::StartWorkflowWithUpdate {
            start,
            run_id,
            update,
        } => start_with_update::handle(txn, start, run_id, update),
        K::ReceiveMessage {
            source,
            outbox_id: _,
            message,
        } => receive_message::handle(txn, &source, message),
        K::AckMessage {
            execution,
            outbox_id,
            kind,
            outcome,
        } => ack_message::handle(txn, &execution, outbox_id, kind, outcome),
        K::ShutdownWorker {
            namespace,
            sticky_task_queue,
        } => shutdown_worker::handle(txn, &namespace, &sticky_task_queue),
        // Handled by `ShardState::apply` before a transaction exists.
        K::SplitOut { .. } => Err(EngineError::FailedPrecondition(
            "SplitOut is not a transaction".into(),
        )),
    }
}
