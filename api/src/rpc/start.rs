//! StartWorkflowExecution and SignalWithStartWorkflowExecution.

use crate::frontend::Frontend;
use crate::{status, validate, workflow_metrics};
use perdura_engine::{ShardCommandKind, ShardReply};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_start_workflow(
        &self,
        mut request: ws::StartWorkflowExecutionRequest,
    ) -> Result<ws::StartWorkflowExecutionResponse, Status> {
        self.validate_start(&mut request).await?;
        let group = self.group_of(&request.namespace, &request.workflow_id)?;
        let namespace = request.namespace.clone();
        let new_run_id = uuid::Uuid::new_v4().to_string();
        let kind = ShardCommandKind::StartWorkflow {
            request,
            run_id: new_run_id.clone(),
        };
        match self.propose(group, kind).await? {
            ShardReply::WorkflowStarted { run_id, started } => {
                workflow_metrics::record_start_reply(&namespace, &new_run_id, &run_id, started);
                Ok(ws::StartWorkflowExecutionResponse {
                    run_id,
                    started,
                    ..Default::default()
                })
            }
            other => Err(status::internal(format!(
                "unexpected reply to StartWorkflow: {other:?}"
            ))),
        }
    }

    /// The checks of a start request (also an update-with-start's start operation); fills in
    /// a missing request ID.
    pub(crate) async fn validate_start(
        &self,
        request: &mut ws::StartWorkflowExecutionRequest,
    ) -> Result<(), Status> {
        self.namespace(&request.namespace).await?;
        validate::required_id("WorkflowId", &request.workflow_id)?;
        let workflow_type = request
            .workflow_type
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        validate::required_id("WorkflowType", workflow_type)?;
        let task_queue = request
            .task_queue
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        validate::required_id("TaskQueue", task_queue)?;
        validate::blob("Input", request.input.as_ref())?;
        validate::message_blob("Memo", request.memo.as_ref())?;
        validate::message_blob("Header", request.header.as_ref())?;
        validate::request_id(&mut request.request_id)?;
        Ok(())
    }
}

impl Frontend {
    pub(crate) async fn rpc_signal_with_start_workflow(
        &self,
        mut request: ws::SignalWithStartWorkflowExecutionRequest,
    ) -> Result<ws::SignalWithStartWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace).await?;
        validate::required_id("WorkflowId", &request.workflow_id)?;
        let workflow_type = request
            .workflow_type
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        validate::required_id("WorkflowType", workflow_type)?;
        let task_queue = request
            .task_queue
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        validate::required_id("TaskQueue", task_queue)?;
        validate::required_id("SignalName", &request.signal_name)?;
        validate::blob("Input", request.input.as_ref())?;
        validate::blob("SignalInput", request.signal_input.as_ref())?;
        validate::message_blob("Memo", request.memo.as_ref())?;
        validate::message_blob("Header", request.header.as_ref())?;
        validate::request_id(&mut request.request_id)?;
        let group = self.group_of(&request.namespace, &request.workflow_id)?;
        let namespace = request.namespace.clone();
        let new_run_id = uuid::Uuid::new_v4().to_string();
        let kind = ShardCommandKind::SignalWithStartWorkflow {
            request,
            run_id: new_run_id.clone(),
        };
        match self.propose(group, kind).await? {
            ShardReply::WorkflowStarted { run_id, started } => {
                workflow_metrics::record_start_reply(&namespace, &new_run_id, &run_id, started);
                Ok(ws::SignalWithStartWorkflowExecutionResponse {
                    run_id,
                    started,
                    ..Default::default()
                })
            }
            other => Err(status::internal(format!(
                "unexpected reply to SignalWithStartWorkflow: {other:?}"
            ))),
        }
    }
}
