//! SignalWithStartWorkflowExecution: signals the running run of the workflow ID, or starts a new
//! run with the signal (WorkflowExecutionStarted, WorkflowExecutionSignaled,
//! WorkflowTaskScheduled). The ID conflict policy defaults to USE_EXISTING (signal the running
//! run); TERMINATE_EXISTING replaces it and FAIL refuses, as for a start. The reuse policy
//! applies when the latest run is closed. Retries are harmless: the signal is deduplicated by
//! `request_id` in the run, and the start by the run's start request ID.

use crate::error::EngineError;
use crate::ids::{ExecutionKey, WorkflowKey};
use crate::shard::command::ShardReply;
use crate::shard::signal_workflow::deliver;
use crate::shard::start_workflow;
use crate::shard::task_token::EXECUTION_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    enums::v1::WorkflowIdConflictPolicy,
    history::v1::WorkflowExecutionSignaledEventAttributes,
    workflowservice::v1::{SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest},
};

pub(crate) fn handle(
    txn: &mut Txn,
    request: SignalWithStartWorkflowExecutionRequest,
    run_id: String,
) -> Result<Committed, EngineError> {
    if request.signal_name.is_empty() {
        return Err(EngineError::InvalidArgument(
            "SignalName is not set on request.".into(),
        ));
    }
    let (start, signal) = split(request);
    let workflow = WorkflowKey {
        namespace: start.namespace.clone(),
        workflow_id: start.workflow_id.clone(),
    };
    let use_existing =
        start.workflow_id_conflict_policy == WorkflowIdConflictPolicy::UseExisting as i32;
    if let Some(current) = txn.current_run(&workflow).cloned()
        && current.is_running()
        && use_existing
    {
        let key = ExecutionKey {
            namespace: workflow.namespace,
            workflow_id: workflow.workflow_id,
            run_id: current.run_id.clone(),
        };
        let draft = txn
            .draft(&key)
            .ok_or_else(|| EngineError::NotFound(EXECUTION_NOT_FOUND.into()))?;
        deliver(draft, signal);
        return Ok(Ok(ShardReply::WorkflowStarted {
            run_id: current.run_id,
            started: false,
        }));
    }
    start_workflow::start(txn, start, run_id, Some(signal), None)
}

/// The start request and the signal event of a SignalWithStart request.
fn split(
    request: SignalWithStartWorkflowExecutionRequest,
) -> (
    StartWorkflowExecutionRequest,
    WorkflowExecutionSignaledEventAttributes,
) {
    let conflict = match request.workflow_id_conflict_policy {
        0 => WorkflowIdConflictPolicy::UseExisting as i32,
        policy => policy,
    };
    let signal = WorkflowExecutionSignaledEventAttributes {
        signal_name: request.signal_name,
        input: request.signal_input,
        identity: request.identity.clone(),
        header: request.header.clone(),
        request_id: request.request_id.clone(),
        ..Default::default()
    };
    let start = StartWorkflowExecutionRequest {
        namespace: request.namespace,
        workflow_id: request.workflow_id,
        workflow_type: request.workflow_type,
        task_queue: request.task_queue,
        input: request.input,
        workflow_execution_timeout: request.workflow_execution_timeout,
        workflow_run_timeout: request.workflow_run_timeout,
        workflow_task_timeout: request.workflow_task_timeout,
        identity: request.identity,
        request_id: request.request_id,
        workflow_id_reuse_policy: request.workflow_id_reuse_policy,
        workflow_id_conflict_policy: conflict,
        retry_policy: request.retry_policy,
        cron_schedule: request.cron_schedule,
        memo: request.memo,
        search_attributes: request.search_attributes,
        header: request.header,
        priority: request.priority,
        ..Default::default()
    };
    (start, signal)
}
