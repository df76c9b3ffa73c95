//! [`Txn`]: the staging area of one `apply`. Handlers read the shard through it and change only
//! copies ([`Draft`]s and staged current-run pointers); the shard takes them over on commit, or
//! drops them when the command is rejected — so a rejected command changes nothing.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::draft::Draft;
use crate::shard::index::TimerEntry;
use crate::shard::limits::{EngineLimits, HISTORY_LENGTH_LIMIT_REASON, HISTORY_SIZE_LIMIT_REASON};
use crate::shard::mutable_state::{CurrentRun, MutableState};
use crate::shard::new_run;
use crate::shard::state::ShardState;
use std::collections::BTreeMap;

/// What a handler decided once it got past validation: its changes are committed, and this is
/// the reply (which may still be an error, e.g. a workflow task completion that was turned into
/// WorkflowTaskFailed). A handler's own `Err` means *rejected*: nothing is committed.
pub(crate) type Committed = Result<ShardReply, EngineError>;

/// Identity written on events the engine produces on its own behalf.
pub(crate) const ENGINE_IDENTITY: &str = "perdura-history";

pub(crate) struct Txn<'s> {
    base: &'s ShardState,
    pub now_ms: i64,
    drafts: BTreeMap<ExecutionKey, Draft>,
    current_runs: BTreeMap<WorkflowKey, CurrentRun>,
}

/// What a finished transaction hands to the shard.
pub(crate) struct Staged {
    pub drafts: BTreeMap<ExecutionKey, Draft>,
    pub current_runs: BTreeMap<WorkflowKey, CurrentRun>,
}

impl<'s> Txn<'s> {
    pub fn new(base: &'s ShardState, now_ms: i64) -> Txn<'s> {
        Txn {
            base,
            now_ms,
            drafts: BTreeMap::new(),
            current_runs: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> &EngineLimits {
        self.base.limits()
    }

    /// The execution as this transaction sees it.
    pub fn execution(&self, key: &ExecutionKey) -> Option<&MutableState> {
        match self.drafts.get(key) {
            Some(draft) => Some(&draft.ms),
            None => self.base.execution(key),
        }
    }

    /// A working copy of the execution, created on first use.
    pub fn draft(&mut self, key: &ExecutionKey) -> Option<&mut Draft> {
        if !self.drafts.contains_key(key) {
            let ms = self.base.execution(key)?.clone();
            self.drafts.insert(key.clone(), Draft::new(ms, self.now_ms));
        }
        self.drafts.get_mut(key)
    }

    /// Adds a new execution.
    pub fn create(&mut self, ms: MutableState) -> &mut Draft {
        let key = ms.key.clone();
        self.drafts.insert(key.clone(), Draft::new(ms, self.now_ms));
        self.drafts
            .get_mut(&key)
            .expect("the draft was just inserted")
    }

    /// Every execution as of the start of the transaction, in key order.
    pub fn base_executions(&self) -> impl Iterator<Item = &MutableState> {
        self.base.executions()
    }

    pub fn current_run(&self, key: &WorkflowKey) -> Option<&CurrentRun> {
        self.current_runs
            .get(key)
            .or_else(|| self.base.current_run(key))
    }

    pub fn set_current_run(&mut self, key: WorkflowKey, run: CurrentRun) {
        self.current_runs.insert(key, run);
    }

    /// Timer-index entries due at or before `now_ms`, as of the start of the transaction.
    pub fn due_timers(&self) -> Vec<TimerEntry> {
        self.base
            .timer_index()
            .iter()
            .take_while(|e| e.fire_at_ms <= self.now_ms)
            .cloned()
            .collect()
    }

    /// Applies the rules every change obeys — a run that closed with a successor gets it, the
    /// history length limit, current-run status mirroring its run — and hands the staged records
    /// over.
    pub fn finish(mut self) -> Staged {
        let next_runs: Vec<_> = self
            .drafts
            .iter_mut()
            .filter_map(|(key, draft)| draft.next_run.take().map(|n| (key.workflow_key(), n)))
            .collect();
        new_run::create_successors(&mut self, next_runs);
        let max_events = self.limits().max_history_events;
        let max_bytes = self.limits().max_history_size_bytes;
        for draft in self.drafts.values_mut() {
            draft.settle_speculative_task();
        }
        for draft in self.drafts.values_mut() {
            if !draft.ms.is_running() {
                continue;
            }
            if draft.ms.next_event_id > max_events {
                draft.terminate(HISTORY_LENGTH_LIMIT_REASON, ENGINE_IDENTITY);
            } else if draft.ms.history_size_bytes > max_bytes {
                draft.terminate(HISTORY_SIZE_LIMIT_REASON, ENGINE_IDENTITY);
            }
        }
        let mut updates = Vec::new();
        for (key, draft) in &self.drafts {
            let workflow = key.workflow_key();
            if let Some(run) = self.current_run(&workflow)
                && run.run_id == key.run_id
                && run.status != draft.ms.status
            {
                updates.push((
                    workflow,
                    CurrentRun {
                        status: draft.ms.status,
                        ..run.clone()
                    },
                ));
            }
        }
        self.current_runs.extend(updates);
        Staged {
            drafts: self.drafts,
            current_runs: self.current_runs,
        }
    }
}
