//! RespondWorkflowTaskCompleted/Failed, RespondActivityTaskCompleted/Failed/Canceled and
//! RecordActivityTaskHeartbeat, all addressed by task token.

use crate::frontend::Frontend;
use crate::query::{ClaimKind, QueryAnswer, QueryId};
use crate::{status, validate};
use perdura_engine::{ShardCommandKind, ShardReply, TaskKind, TaskToken};
use prost::Message;
use std::collections::HashMap;
use temporalio_protos::temporal::api::query::v1::WorkflowQueryResult;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;
use tracing::debug;

impl Frontend {
    pub(crate) async fn rpc_workflow_task_completed(
        &self,
        request: ws::RespondWorkflowTaskCompletedRequest,
    ) -> Result<ws::RespondWorkflowTaskCompletedResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Workflow, &request.namespace)?;
        for command in &request.commands {
            validate::blob_len("Command attributes", command.encoded_len())?;
        }
        if let Some(queue) = request
            .sticky_attributes
            .as_ref()
            .and_then(|a| a.worker_task_queue.as_ref())
        {
            validate::optional_id("StickyAttributes.WorkerTaskQueue", &queue.name)?;
        }
        // Query answers reflect the state the worker reached, whatever becomes of the
        // completion; delivering them first also means no query is re-dispatched when the
        // completion's events wake it.
        self.answer_attached_queries(&token, &request.query_results)
            .await;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        let reply = self
            .propose(
                group,
                ShardCommandKind::RespondWorkflowTaskCompleted { token, request },
            )
            .await?;
        let (reset_history_event_id, workflow_task) = match reply {
            ShardReply::WorkflowTaskDiscarded {
                reset_history_event_id,
            } => (reset_history_event_id, None),
            // A new task started inline (`return_new_workflow_task`) goes back in the response.
            ShardReply::NewWorkflowTask(info) => {
                (0, Some(self.workflow_task_response(group, info).await?))
            }
            _ => (0, None),
        };
        Ok(ws::RespondWorkflowTaskCompletedResponse {
            reset_history_event_id,
            workflow_task,
            ..Default::default()
        })
    }

    /// Delivers the answers to the queries attached to the completed task, each to the node
    /// that holds it (named in its key). An answer that cannot be delivered only fails its
    /// query (the client's wait ends), never the completion.
    async fn answer_attached_queries(
        &self,
        token: &TaskToken,
        results: &HashMap<String, WorkflowQueryResult>,
    ) {
        let kind = ClaimKind::Attached {
            started_event_id: token.started_event_id,
        };
        for (key, result) in results {
            let Ok(id) = key.parse::<QueryId>() else {
                debug!(%key, "answer to an unknown query key");
                continue;
            };
            let answer = QueryAnswer::of_result(result);
            if let Err(error) = self
                .queries
                .answer(id, &token.execution, kind, answer)
                .await
            {
                debug!(%id, %error, "query answer not delivered");
            }
        }
    }

    pub(crate) async fn rpc_workflow_task_failed(
        &self,
        request: ws::RespondWorkflowTaskFailedRequest,
    ) -> Result<ws::RespondWorkflowTaskFailedResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Workflow, &request.namespace)?;
        validate::message_blob("Failure", request.failure.as_ref())?;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        self.propose(
            group,
            ShardCommandKind::RespondWorkflowTaskFailed { token, request },
        )
        .await?;
        Ok(ws::RespondWorkflowTaskFailedResponse::default())
    }

    pub(crate) async fn rpc_activity_task_completed(
        &self,
        request: ws::RespondActivityTaskCompletedRequest,
    ) -> Result<ws::RespondActivityTaskCompletedResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Activity, &request.namespace)?;
        validate::blob("Result", request.result.as_ref())?;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        self.propose(
            group,
            ShardCommandKind::RespondActivityTaskCompleted { token, request },
        )
        .await?;
        Ok(ws::RespondActivityTaskCompletedResponse::default())
    }

    pub(crate) async fn rpc_activity_task_failed(
        &self,
        request: ws::RespondActivityTaskFailedRequest,
    ) -> Result<ws::RespondActivityTaskFailedResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Activity, &request.namespace)?;
        validate::message_blob("Failure", request.failure.as_ref())?;
        validate::blob(
            "LastHeartbeatDetails",
            request.last_heartbeat_details.as_ref(),
        )?;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        self.propose(
            group,
            ShardCommandKind::RespondActivityTaskFailed { token, request },
        )
        .await?;
        Ok(ws::RespondActivityTaskFailedResponse::default())
    }

    pub(crate) async fn rpc_activity_task_canceled(
        &self,
        request: ws::RespondActivityTaskCanceledRequest,
    ) -> Result<ws::RespondActivityTaskCanceledResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Activity, &request.namespace)?;
        validate::blob("Details", request.details.as_ref())?;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        self.propose(
            group,
            ShardCommandKind::RespondActivityTaskCanceled { token, request },
        )
        .await?;
        Ok(ws::RespondActivityTaskCanceledResponse::default())
    }

    pub(crate) async fn rpc_activity_heartbeat(
        &self,
        request: ws::RecordActivityTaskHeartbeatRequest,
    ) -> Result<ws::RecordActivityTaskHeartbeatResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Activity, &request.namespace)?;
        validate::blob("Details", request.details.as_ref())?;
        let group = self.group_of(&token.execution.namespace, &token.execution.workflow_id)?;
        match self
            .propose(
                group,
                ShardCommandKind::RecordActivityTaskHeartbeat { token, request },
            )
            .await?
        {
            ShardReply::ActivityHeartbeat { cancel_requested } => {
                Ok(ws::RecordActivityTaskHeartbeatResponse {
                    cancel_requested,
                    ..Default::default()
                })
            }
            other => Err(status::internal(format!(
                "unexpected reply to RecordActivityTaskHeartbeat: {other:?}"
            ))),
        }
    }
}

/// Decodes a task token and checks it is of the expected kind and namespace.
pub(crate) fn task_token(
    bytes: &[u8],
    kind: TaskKind,
    namespace: &str,
) -> Result<TaskToken, Status> {
    if bytes.is_empty() {
        return Err(status::invalid("Task token not set on request."));
    }
    let token =
        TaskToken::decode(bytes).map_err(|_| status::invalid("Error deserializing task token."))?;
    if token.kind != kind {
        return Err(status::invalid("Task token is for another kind of task."));
    }
    if !namespace.is_empty() && namespace != token.execution.namespace {
        return Err(status::invalid(
            "Task token does not belong to the request's namespace.",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perdura_engine::ExecutionKey;

    fn token(kind: TaskKind) -> TaskToken {
        TaskToken {
            kind,
            execution: ExecutionKey {
                namespace: "default".into(),
                workflow_id: "w".into(),
                run_id: "r".into(),
            },
            scheduled_event_id: 2,
            started_event_id: 3,
            attempt: 1,
        }
    }

    #[test]
    fn malformed_or_mismatched_tokens_are_invalid_arguments() {
        assert_eq!(
            task_token(b"", TaskKind::Workflow, "").unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            task_token(b"\x01garbage", TaskKind::Workflow, "")
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
        let activity = token(TaskKind::Activity).encode();
        assert!(task_token(&activity, TaskKind::Workflow, "").is_err());
        assert!(task_token(&activity, TaskKind::Activity, "other").is_err());
        assert_eq!(
            task_token(&activity, TaskKind::Activity, "default").expect("valid"),
            token(TaskKind::Activity)
        );
    }
}
