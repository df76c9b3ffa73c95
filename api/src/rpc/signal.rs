//! SignalWorkflowExecution and TerminateWorkflowExecution.

use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::ShardCommandKind;
use prost::Message;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_signal_workflow(
        &self,
        mut request: ws::SignalWorkflowExecutionRequest,
    ) -> Result<ws::SignalWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace)?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        validate::required_id("SignalName", &request.signal_name)?;
        validate::optional_id("RequestId", &request.request_id)?;
        validate::blob("Input", request.input.as_ref())?;
        validate::blob_len(
            "Header",
            request.header.as_ref().map_or(0, Message::encoded_len),
        )?;
        if request.request_id.is_empty() {
            request.request_id = uuid::Uuid::new_v4().to_string();
        }
        let group = self.group_of(&request.namespace, &execution.workflow_id);
        self.propose(group, ShardCommandKind::SignalWorkflow { request })
            .await?;
        Ok(ws::SignalWorkflowExecutionResponse::default())
    }

    pub(crate) async fn rpc_terminate_workflow(
        &self,
        request: ws::TerminateWorkflowExecutionRequest,
    ) -> Result<ws::TerminateWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace)?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        validate::blob("Details", request.details.as_ref())?;
        let group = self.group_of(&request.namespace, &execution.workflow_id);
        self.propose(group, ShardCommandKind::TerminateWorkflow { request })
            .await?;
        Ok(ws::TerminateWorkflowExecutionResponse::default())
    }
}
