//! Limits and defaults of the state machine. They are part of the replicated function: every
//! replica of a group must apply commands with the same values, so they are constants (the
//! [`Default`]) unless a test overrides them.

/// Limits and defaults applied by [`crate::ShardState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// A run whose history reaches this many events is terminated with reason
    /// [`HISTORY_LENGTH_LIMIT_REASON`] (Temporal's `limit.historyCount.error`).
    pub max_history_events: i64,
    /// WorkflowTaskStarted suggests continue-as-new from this many events on
    /// (Temporal's `limit.historyCount.suggestContinueAsNew`).
    pub suggest_continue_as_new_events: i64,
    /// … or from this history size on (`limit.historySize.suggestContinueAsNew`).
    pub suggest_continue_as_new_bytes: i64,
    /// Warning thresholds (Temporal's `limit.historyCount.warn` / `limit.historySize.warn`):
    /// past either one, every WorkflowTaskStarted suggests continue-as-new, whatever the
    /// suggestion thresholds above say.
    pub warn_history_events: i64,
    pub warn_history_size_bytes: i64,
    /// A run whose history grows past this many bytes is terminated with reason
    /// [`HISTORY_SIZE_LIMIT_REASON`] (Temporal's `limit.historySize.error`).
    pub max_history_size_bytes: i64,
    /// Workflow task start-to-close timeout when the start request sets none.
    pub default_workflow_task_timeout_ms: i64,
    /// Upper bound of the workflow task start-to-close timeout.
    pub max_workflow_task_timeout_ms: i64,
    /// Maximum length in bytes of workflow IDs, type names, task queue names, activity and timer IDs.
    pub max_id_length: usize,
    /// At most this many timer-index entries are handled by one `FireTimers` command, so that a
    /// backlog (after an outage) becomes several log entries of bounded size. The rest stay due:
    /// `next_timer_ms()` is still in the past and the leader proposes `FireTimers` again.
    pub max_timers_per_fire: usize,
}

/// Termination reason written when a run reaches [`EngineLimits::max_history_events`].
pub const HISTORY_LENGTH_LIMIT_REASON: &str = "history length limit exceeded";

/// Termination reason written when a run's history exceeds [`EngineLimits::max_history_size_bytes`].
pub const HISTORY_SIZE_LIMIT_REASON: &str = "history size limit exceeded";

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_history_events: 51_200,
            suggest_continue_as_new_events: 4_096,
            suggest_continue_as_new_bytes: 4 * 1024 * 1024,
            warn_history_events: 10_240,
            warn_history_size_bytes: 10 * 1024 * 1024,
            max_history_size_bytes: 50 * 1024 * 1024,
            default_workflow_task_timeout_ms: 10_000,
            max_workflow_task_timeout_ms: 120_000,
            max_id_length: 1_000,
            max_timers_per_fire: 1_000,
        }
    }
}
