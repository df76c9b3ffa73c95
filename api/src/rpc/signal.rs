//! SignalWorkflowExecution and TerminateWorkflowExecution.

use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::ShardCommandKind;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_signal_workflow(
        &self,
        mut request: ws::SignalWorkflowExecutionRequest,
    ) -> Result<ws::SignalWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        validate::required_id("SignalName", &request.signal_name)?;
        validate::blob("Input", request.input.as_ref())?;
        validate::message_blob("Header", request.header.as_ref())?;
        validate::request_id(&mut request.request_id)?;
        let group = self.group_of(&request.namespace, &execution.workflow_id)?;
        self.propose(group, ShardCommandKind::SignalWorkflow { request })
            .await?;
        Ok(ws::SignalWorkflowExecutionResponse::default())
    }

    pub(crate) async fn rpc_terminate_workflow(
        &self,
        request: ws::TerminateWorkflowExecutionRequest,
    ) -> Result<ws::TerminateWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        validate::blob("Details", request.details.as_ref())?;
        let group = self.group_of(&request.namespace, &execution.workflow_id)?;
        self.propose(group, ShardCommandKind::TerminateWorkflow { request })
            .await?;
        Ok(ws::TerminateWorkflowExecutionResponse::default())
    }
}
