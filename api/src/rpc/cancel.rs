//! RequestCancelWorkflowExecution.

use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::ShardCommandKind;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_request_cancel_workflow(
        &self,
        mut request: ws::RequestCancelWorkflowExecutionRequest,
    ) -> Result<ws::RequestCancelWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        validate::optional_id("FirstExecutionRunId", &request.first_execution_run_id)?;
        validate::request_id(&mut request.request_id)?;
        let group = self.group_of(&request.namespace, &execution.workflow_id)?;
        let command = ShardCommandKind::RequestCancelWorkflow {
            request,
            external_initiated_event_id: 0,
            external_workflow_execution: None,
        };
        self.propose(group, command).await?;
        Ok(ws::RequestCancelWorkflowExecutionResponse::default())
    }
}
