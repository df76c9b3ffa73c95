//! SignalWorkflowExecution: WorkflowExecutionSignaled{signal_name, input, identity, header,
//! request_id}, buffered while a workflow task runs, then WFT+. A signal whose `request_id` was
//! already delivered to the run is acknowledged without a second event.

use crate::error::EngineError;
use crate::shard::command::ShardReply;
use crate::shard::lookup::running_execution;
use crate::shard::task_token::EXECUTION_NOT_FOUND;
use crate::shard::txn::{Committed, Txn};
use temporalio_protos::temporal::api::{
    history::v1::{WorkflowExecutionSignaledEventAttributes, history_event::Attributes},
    workflowservice::v1::SignalWorkflowExecutionRequest,
};

pub(crate) fn handle(
    txn: &mut Txn,
    request: SignalWorkflowExecutionRequest,
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
    if !request.request_id.is_empty()
        && !draft
            .ms
            .signal_request_ids
            .insert(request.request_id.clone())
    {
        return Ok(Ok(ShardReply::Done));
    }
    draft.record(Attributes::WorkflowExecutionSignaledEventAttributes(
        WorkflowExecutionSignaledEventAttributes {
            signal_name: request.signal_name,
            input: request.input,
            identity: request.identity,
            header: request.header,
            request_id: request.request_id,
            ..Default::default()
        },
    ));
    draft.schedule_workflow_task_if_none();
    Ok(Ok(ShardReply::Done))
}
