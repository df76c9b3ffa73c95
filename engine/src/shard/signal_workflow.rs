//! SignalWorkflowExecution: WorkflowExecutionSignaled{signal_name, input, identity, header,
//! request_id}, buffered while a workflow task runs, then WFT+. A signal whose `request_id` was
//! already delivered to the run is acknowledged without a second event.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::draft::Draft;
use crate::shard::lookup::running_execution;
use crate::shard::task_token::EXECUTION_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    history::v1::{WorkflowExecutionSignaledEventAttributes, history_event::Attributes},
    workflowservice::v1::SignalWorkflowExecutionRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    request: SignalWorkflowExecutionRequest,
) -> Result<Committed, EngineError> {
    signal_execution(txn, request, None)
}

/// Signals the running execution the request names; `external` is the signalling workflow when
/// the signal comes from a SignalExternalWorkflowExecution command.
pub(crate) fn signal_execution(
    txn: &mut Txn,
    request: SignalWorkflowExecutionRequest,
    external: Option<WorkflowExecution>,
) -> Result<Committed, EngineError> {
    if request.signal_name.is_empty() {
        return Err(EngineError::InvalidArgument(
            "SignalName is not set on request.".into(),
        ));
    }
    let key = running_execution(txn, &request.namespace, request.workflow_execution.as_ref())?;
    let draft = txn
        .draft(&key)
        .ok_or_else(|| EngineError::NotFound(EXECUTION_NOT_FOUND.into()))?;
    deliver(
        draft,
        WorkflowExecutionSignaledEventAttributes {
            signal_name: request.signal_name,
            input: request.input,
            identity: request.identity,
            header: request.header,
            request_id: request.request_id,
            external_workflow_execution: external,
            ..Default::default()
        },
    );
    Ok(Ok(ShardReply::Done))
}

/// Records the signal in a running run (buffered during a started workflow task), then WFT+; a
/// signal whose request ID the run has seen is dropped.
pub(crate) fn deliver(draft: &mut Draft, signal: WorkflowExecutionSignaledEventAttributes) {
    if !signal.request_id.is_empty()
        && !draft
            .ms
            .signal_request_ids
            .insert(signal.request_id.clone())
    {
        return;
    }
    draft.record(Attributes::WorkflowExecutionSignaledEventAttributes(signal));
    draft.schedule_workflow_task_if_none();
}
