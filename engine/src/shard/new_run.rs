//! Creating a run: the first run of a workflow (StartWorkflowExecution) and the successor runs
//! of a chain (continue-as-new, workflow retry, cron). Both build the new run from a
//! `StartWorkflowExecutionRequest` plus its [`RunChain`], as Temporal does.
//!
//! A run that closes with a successor leaves a [`NextRun`] on its draft; [`create_successors`]
//! (called by `Txn::finish`) creates the successor in the same transaction and moves the
//! current-run pointer to it, so no reader ever sees the chain without its newest run. Successor
//! run IDs are derived (UUID v5 of the closing run's ID and event ID): replicas agree without
//! the proposer choosing them.

use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::mutable_state::{CurrentRun, MutableState};
use crate::shard::outbox::ParentInfo;
use crate::shard::time::{duration, duration_opt, timestamp};
use crate::shard::txn::Txn;
use std::collections::BTreeMap;
use temporalio_protos::temporal::api::{
    common::v1::{Payloads, WorkflowExecution},
    enums::v1::{ContinueAsNewInitiator, TaskQueueKind, WorkflowExecutionStatus},
    failure::v1::Failure,
    history::v1::{
        WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
        history_event::Attributes,
    },
    taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};

/// Namespace of the name-based successor run IDs (a fixed, arbitrary UUID).
const RUN_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d1f_3c2a_9b4e_4f7a_8c21_5e0d_7a93_b214);

/// The three workflow timeouts after defaults and caps, in milliseconds (0 = none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Timeouts {
    pub execution_ms: i64,
    pub run_ms: i64,
    pub task_ms: i64,
}

/// Where a run stands in its chain.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunChain {
    /// The run this one continues ("" for a first run).
    pub continued_execution_run_id: String,
    /// The first run of the chain ("" ⇒ this run).
    pub first_execution_run_id: String,
    /// Workflow retry attempt, from 1.
    pub attempt: i32,
    /// A `ContinueAsNewInitiator` value (0 for a first run).
    pub initiator: i32,
    pub continued_failure: Option<Failure>,
    pub last_completion_result: Option<Payloads>,
    /// Delay of the first workflow task (continue-as-new back-off, retry back-off, cron).
    pub first_workflow_task_backoff_ms: i64,
    /// The chain's execution deadline; 0 ⇒ start + execution timeout.
    pub execution_expiration_time_ms: i64,
    /// The parent of a child workflow's chain; every run of the chain carries it, and the last
    /// one reports its close to the parent.
    pub parent: Option<ParentInfo>,
}

impl RunChain {
    /// A first run.
    pub fn first() -> RunChain {
        RunChain {
            continued_execution_run_id: String::new(),
            first_execution_run_id: String::new(),
            attempt: 1,
            initiator: ContinueAsNewInitiator::Unspecified as i32,
            continued_failure: None,
            last_completion_result: None,
            first_workflow_task_backoff_ms: 0,
            execution_expiration_time_ms: 0,
            parent: None,
        }
    }
}

/// The successor a closing run asks for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NextRun {
    pub run_id: String,
    pub request: StartWorkflowExecutionRequest,
    pub timeouts: Timeouts,
    pub chain: RunChain,
}

/// The run ID of the successor of `run_id`, whose close begins at event `event_id`.
pub(crate) fn successor_run_id(run_id: &str, event_id: i64) -> String {
    let name = format!("{run_id}/{event_id}");
    uuid::Uuid::new_v5(&RUN_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Creates the run `key`: WorkflowExecutionStarted, the signal of a SignalWithStart, then the
/// first workflow task (at once, or when the chain's back-off elapses), and makes it the
/// workflow's current run.
pub(crate) fn create(
    txn: &mut Txn,
    key: ExecutionKey,
    request: &StartWorkflowExecutionRequest,
    timeouts: &Timeouts,
    chain: &RunChain,
    signal: Option<WorkflowExecutionSignaledEventAttributes>,
) {
    let start_time_ms = txn.now_ms;
    let ms = new_mutable_state(key.clone(), request, timeouts, chain, start_time_ms);
    let mut started = started_event(&key, request, timeouts, chain, &ms);
    if let Some(parent) = &chain.parent {
        set_parent(&mut started, parent);
    }
    let draft = txn.create(ms);
    draft.append(Attributes::WorkflowExecutionStartedEventAttributes(started));
    if let Some(signal) = signal {
        if !signal.request_id.is_empty() {
            draft
                .ms
                .signal_request_ids
                .insert(signal.request_id.clone());
        }
        draft.append(Attributes::WorkflowExecutionSignaledEventAttributes(signal));
    }
    if chain.first_workflow_task_backoff_ms == 0 {
        draft.schedule_workflow_task(1);
    }
    let run = CurrentRun {
        run_id: key.run_id.clone(),
        status: WorkflowExecutionStatus::Running as i32,
        start_request_id: request.request_id.clone(),
        start_time_ms,
    };
    txn.set_current_run(key.workflow_key(), run);
}

/// Creates the successor of every run that closed in this transaction with one.
pub(crate) fn create_successors(txn: &mut Txn, next_runs: Vec<(WorkflowKey, NextRun)>) {
    for (workflow, next) in next_runs {
        let key = ExecutionKey {
            namespace: workflow.namespace,
            workflow_id: workflow.workflow_id,
            run_id: next.run_id,
        };
        if txn.execution(&key).is_some() {
            continue;
        }
        create(txn, key, &next.request, &next.timeouts, &next.chain, None);
    }
}

fn new_mutable_state(
    key: ExecutionKey,
    request: &StartWorkflowExecutionRequest,
    timeouts: &Timeouts,
    chain: &RunChain,
    start_time_ms: i64,
) -> MutableState {
    let backoff_ms = chain.first_workflow_task_backoff_ms;
    let execution_expiration_time_ms = match chain.execution_expiration_time_ms {
        0 if timeouts.execution_ms > 0 => start_time_ms + timeouts.execution_ms,
        deadline => deadline,
    };
    // The run timeout counts from the first workflow task, as in Temporal.
    let run_expiration_time_ms = if timeouts.run_ms > 0 {
        start_time_ms + backoff_ms + timeouts.run_ms
    } else {
        0
    };
    let first_execution_run_id = if chain.first_execution_run_id.is_empty() {
        key.run_id.clone()
    } else {
        chain.first_execution_run_id.clone()
    };
    MutableState {
        workflow_type: request
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        task_queue: request
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default(),
        status: WorkflowExecutionStatus::Running as i32,
        start_time_ms,
        close_time_ms: 0,
        close_event_id: 0,
        next_event_id: 1,
        last_task_id: 0,
        history_size_bytes: 0,
        start_request_id: request.request_id.clone(),
        start_identity: request.identity.clone(),
        first_execution_run_id,
        workflow_execution_timeout_ms: timeouts.execution_ms,
        workflow_run_timeout_ms: timeouts.run_ms,
        workflow_task_timeout_ms: timeouts.task_ms,
        execution_expiration_time_ms,
        run_expiration_time_ms,
        workflow_task: None,
        previous_started_event_id: 0,
        activities: BTreeMap::new(),
        timers: BTreeMap::new(),
        buffered_events: Vec::new(),
        input: request.input.clone(),
        header: request.header.clone(),
        memo: request.memo.clone(),
        search_attributes: request.search_attributes.clone(),
        retry_policy: request.retry_policy.clone(),
        signal_request_ids: Default::default(),
        updates: Default::default(),
        cancel_requested: false,
        cancel_request_id: String::new(),
        attempt: chain.attempt,
        cron_schedule: request.cron_schedule.clone(),
        first_workflow_task_time_ms: if backoff_ms > 0 {
            start_time_ms + backoff_ms
        } else {
            0
        },
        last_completion_result: chain.last_completion_result.clone(),
        children: BTreeMap::new(),
        outbox: BTreeMap::new(),
        parent: chain.parent.clone(),
        sticky_task_queue: String::new(),
        sticky_schedule_to_start_timeout_ms: 0,
        key,
    }
}

/// The parent and root fields of a child's WorkflowExecutionStarted.
fn set_parent(started: &mut WorkflowExecutionStartedEventAttributes, parent: &ParentInfo) {
    let execution = |key: &ExecutionKey| WorkflowExecution {
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
    };
    started.parent_workflow_namespace = parent.execution.namespace.clone();
    started.parent_workflow_execution = Some(execution(&parent.execution));
    started.parent_initiated_event_id = parent.initiated_event_id;
    started.root_workflow_execution = Some(execution(&parent.root));
    // Temporal writes a child's run timeout even when it is unlimited (0 s).
    started
        .workflow_run_timeout
        .get_or_insert_with(|| duration(0));
}

fn started_event(
    key: &ExecutionKey,
    request: &StartWorkflowExecutionRequest,
    timeouts: &Timeouts,
    chain: &RunChain,
    ms: &MutableState,
) -> WorkflowExecutionStartedEventAttributes {
    let task_queue = TaskQueue {
        name: ms.task_queue.clone(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    };
    WorkflowExecutionStartedEventAttributes {
        workflow_type: request.workflow_type.clone(),
        task_queue: Some(task_queue),
        input: request.input.clone(),
        workflow_execution_timeout: duration_opt(timeouts.execution_ms),
        workflow_run_timeout: duration_opt(timeouts.run_ms),
        workflow_task_timeout: Some(duration(timeouts.task_ms)),
        continued_execution_run_id: chain.continued_execution_run_id.clone(),
        initiator: chain.initiator,
        continued_failure: chain.continued_failure.clone(),
        last_completion_result: chain.last_completion_result.clone(),
        original_execution_run_id: key.run_id.clone(),
        first_execution_run_id: ms.first_execution_run_id.clone(),
        identity: request.identity.clone(),
        retry_policy: request.retry_policy.clone(),
        attempt: chain.attempt,
        workflow_execution_expiration_time: (ms.execution_expiration_time_ms > 0)
            .then(|| timestamp(ms.execution_expiration_time_ms)),
        cron_schedule: request.cron_schedule.clone(),
        first_workflow_task_backoff: duration_opt(chain.first_workflow_task_backoff_ms),
        memo: request.memo.clone(),
        search_attributes: request.search_attributes.clone(),
        header: request.header.clone(),
        workflow_id: key.workflow_id.clone(),
        priority: request.priority.clone(),
        ..Default::default()
    }
}

/// The start parameters of the next run of `ms`'s chain for a retry or a cron run: the same
/// workflow, input and options.
pub(crate) fn chain_request(ms: &MutableState) -> (StartWorkflowExecutionRequest, Timeouts) {
    let request = StartWorkflowExecutionRequest {
        namespace: ms.key.namespace.clone(),
        workflow_id: ms.key.workflow_id.clone(),
        workflow_type: Some(temporalio_protos::temporal::api::common::v1::WorkflowType {
            name: ms.workflow_type.clone(),
        }),
        task_queue: Some(TaskQueue {
            name: ms.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        input: ms.input.clone(),
        header: ms.header.clone(),
        memo: ms.memo.clone(),
        search_attributes: ms.search_attributes.clone(),
        retry_policy: ms.retry_policy.clone(),
        cron_schedule: ms.cron_schedule.clone(),
        identity: ms.start_identity.clone(),
        ..Default::default()
    };
    let timeouts = Timeouts {
        execution_ms: ms.workflow_execution_timeout_ms,
        run_ms: ms.workflow_run_timeout_ms,
        task_ms: ms.workflow_task_timeout_ms,
    };
    (request, timeouts)
}

/// The next cron run of the chain of `ms`, closing now, or `None` without a cron schedule.
/// `completion` is the closing run's result (a failure carries the previous result on).
pub(crate) fn next_cron_run(
    ms: &MutableState,
    now_ms: i64,
    completion: Option<Payloads>,
    failure: Option<Failure>,
) -> Option<NextRun> {
    if ms.cron_schedule.is_empty() {
        return None;
    }
    let backoff_ms = crate::shard::cron::backoff_ms(&ms.cron_schedule, now_ms)?;
    if ms.execution_expiration_time_ms > 0 && now_ms + backoff_ms > ms.execution_expiration_time_ms
    {
        return None;
    }
    let (request, timeouts) = chain_request(ms);
    let chain = RunChain {
        continued_execution_run_id: ms.key.run_id.clone(),
        first_execution_run_id: ms.first_execution_run_id.clone(),
        attempt: 1,
        initiator: ContinueAsNewInitiator::CronSchedule as i32,
        parent: ms.parent.clone(),
        continued_failure: failure,
        last_completion_result: completion.or_else(|| ms.last_completion_result.clone()),
        first_workflow_task_backoff_ms: backoff_ms,
        execution_expiration_time_ms: ms.execution_expiration_time_ms,
    };
    Some(NextRun {
        run_id: successor_run_id(&ms.key.run_id, ms.next_event_id),
        request,
        timeouts,
        chain,
    })
}
