//! ExecuteMultiOperation: update-with-start, the one combination the real server supports —
//! `[StartWorkflow, UpdateWorkflow]` on the same workflow ID, applied atomically by one engine
//! command. The reply holds both responses; a failure names the failed operation in
//! MultiOperationExecutionFailure (see `status::multi_operation`).

use super::update::validate_update;
use crate::frontend::Frontend;
use crate::status;
use perdura_engine::{ExecutionKey, ShardCommandKind, ShardReply};
use std::time::Duration;
use temporalio_protos::temporal::api::workflowservice::v1::{
    self as ws,
    execute_multi_operation_request::operation::Operation as Op,
    execute_multi_operation_response::{Response as OpResponse, response::Response as OpReply},
};
use tonic::Status;

/// A validation failure of operation `index`, in the shape the SDKs unpack.
fn invalid_operation(index: usize, error: Status) -> Status {
    status::multi_operation(
        "Update-with-Start could not be executed.".into(),
        index,
        error,
    )
}

impl Frontend {
    pub(crate) async fn rpc_execute_multi_operation(
        &self,
        request: ws::ExecuteMultiOperationRequest,
        wait: Duration,
    ) -> Result<ws::ExecuteMultiOperationResponse, Status> {
        self.namespace(&request.namespace).await?;
        let mut operations = request.operations.into_iter().map(|o| o.operation);
        let (
            Some(Some(Op::StartWorkflow(mut start))),
            Some(Some(Op::UpdateWorkflow(mut update))),
            None,
        ) = (operations.next(), operations.next(), operations.next())
        else {
            return Err(status::invalid(
                "ExecuteMultiOperation supports exactly [StartWorkflow, UpdateWorkflow].",
            ));
        };
        for namespace in [&mut start.namespace, &mut update.namespace] {
            if namespace.is_empty() {
                namespace.clone_from(&request.namespace);
            } else if *namespace != request.namespace {
                return Err(status::invalid(
                    "Operation namespace mismatch with request namespace.",
                ));
            }
        }
        self.validate_start(&mut start)
            .await
            .map_err(|e| invalid_operation(0, e))?;
        let target = update.workflow_execution.clone().unwrap_or_default();
        if target.workflow_id != start.workflow_id {
            return Err(invalid_operation(
                1,
                status::invalid("WorkflowId is not consistent with previous operation(s)."),
            ));
        }
        if !target.run_id.is_empty() || !update.first_execution_run_id.is_empty() {
            return Err(invalid_operation(
                1,
                status::invalid("RunId is not allowed in Update-with-Start."),
            ));
        }
        let (wanted, update_id) = validate_update(&update).map_err(|e| invalid_operation(1, e))?;

        let group = self.group_of(&start.namespace, &start.workflow_id)?;
        let (namespace, workflow_id) = (start.namespace.clone(), start.workflow_id.clone());
        let new_run_id = uuid::Uuid::new_v4().to_string();
        let kind = ShardCommandKind::StartWorkflowWithUpdate {
            start,
            run_id: new_run_id.clone(),
            update,
        };
        let (run_id, started, update_status) = match self.propose(group, kind).await? {
            ShardReply::StartedWithUpdate {
                run_id,
                started,
                update,
            } => (run_id, started, *update),
            other => {
                return Err(status::internal(format!(
                    "unexpected reply to StartWorkflowWithUpdate: {other:?}"
                )));
            }
        };
        crate::workflow_metrics::record_start_reply(&namespace, &new_run_id, &run_id, started);
        let key = ExecutionKey {
            namespace,
            workflow_id,
            run_id: run_id.clone(),
        };
        let update_response = self
            .update_response(group, &key, &update_id, wanted, update_status, wait)
            .await
            .map_err(|e| invalid_operation(1, e))?;
        Ok(ws::ExecuteMultiOperationResponse {
            responses: vec![
                OpResponse {
                    response: Some(OpReply::StartWorkflow(ws::StartWorkflowExecutionResponse {
                        run_id,
                        started,
                        ..Default::default()
                    })),
                },
                OpResponse {
                    response: Some(OpReply::UpdateWorkflow(update_response)),
                },
            ],
        })
    }
}
