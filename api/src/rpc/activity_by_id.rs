//! The `…ById` forms of the activity RPCs: RecordActivityTaskHeartbeatById and
//! RespondActivityTask{Completed,Failed,Canceled}ById. Instead of a task token they name
//! namespace + workflow ID + optional run ID (empty ⇒ the current run) + activity ID; that names
//! the activity's current attempt, which must be started. The token of that attempt is built here
//! and the request goes the token path, so both forms share every check and the engine's
//! stale-attempt guard (an attempt that ends between the lookup and the proposal is NotFound).

use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::shard::ActivityPhase;
use perdura_engine::{TaskKind, TaskToken};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

/// What Temporal answers when the activity is not pending and started.
const ACTIVITY_NOT_FOUND: &str =
    "Activity task not found: no started activity with this ID in the workflow execution.";

impl Frontend {
    /// The task token of the started attempt of `activity_id`.
    async fn activity_token(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<Vec<u8>, Status> {
        self.namespace(namespace).await?;
        validate::required_id("WorkflowId", workflow_id)?;
        validate::run_id(run_id)?;
        validate::required_id("ActivityId", activity_id)?;
        let (group, execution) = self
            .resolve_execution(namespace, workflow_id, run_id)
            .await?;
        let token = self
            .raft
            .read_shard(group, |state| {
                let ms = state.execution(&execution).filter(|ms| ms.is_running())?;
                let activity = ms
                    .activities
                    .values()
                    .find(|a| a.activity_id == activity_id)
                    .filter(|a| a.phase == ActivityPhase::Started)?;
                Some(TaskToken {
                    kind: TaskKind::Activity,
                    execution: execution.clone(),
                    scheduled_event_id: activity.scheduled_event_id,
                    started_event_id: 0,
                    attempt: activity.attempt,
                })
            })
            .flatten()
            .ok_or_else(|| Status::not_found(ACTIVITY_NOT_FOUND))?;
        Ok(token.encode())
    }

    pub(crate) async fn rpc_activity_heartbeat_by_id(
        &self,
        r: ws::RecordActivityTaskHeartbeatByIdRequest,
    ) -> Result<ws::RecordActivityTaskHeartbeatByIdResponse, Status> {
        let task_token = self
            .activity_token(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        let reply = self
            .rpc_activity_heartbeat(ws::RecordActivityTaskHeartbeatRequest {
                task_token,
                details: r.details,
                identity: r.identity,
                namespace: r.namespace,
                ..Default::default()
            })
            .await?;
        Ok(ws::RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: reply.cancel_requested,
            activity_paused: reply.activity_paused,
            activity_reset: reply.activity_reset,
        })
    }

    pub(crate) async fn rpc_activity_task_completed_by_id(
        &self,
        r: ws::RespondActivityTaskCompletedByIdRequest,
    ) -> Result<ws::RespondActivityTaskCompletedByIdResponse, Status> {
        let task_token = self
            .activity_token(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        self.rpc_activity_task_completed(ws::RespondActivityTaskCompletedRequest {
            task_token,
            result: r.result,
            identity: r.identity,
            namespace: r.namespace,
            ..Default::default()
        })
        .await?;
        Ok(ws::RespondActivityTaskCompletedByIdResponse::default())
    }

    pub(crate) async fn rpc_activity_task_failed_by_id(
        &self,
        r: ws::RespondActivityTaskFailedByIdRequest,
    ) -> Result<ws::RespondActivityTaskFailedByIdResponse, Status> {
        let task_token = self
            .activity_token(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        self.rpc_activity_task_failed(ws::RespondActivityTaskFailedRequest {
            task_token,
            failure: r.failure,
            identity: r.identity,
            namespace: r.namespace,
            last_heartbeat_details: r.last_heartbeat_details,
            ..Default::default()
        })
        .await?;
        Ok(ws::RespondActivityTaskFailedByIdResponse::default())
    }

    pub(crate) async fn rpc_activity_task_canceled_by_id(
        &self,
        r: ws::RespondActivityTaskCanceledByIdRequest,
    ) -> Result<ws::RespondActivityTaskCanceledByIdResponse, Status> {
        let task_token = self
            .activity_token(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        self.rpc_activity_task_canceled(ws::RespondActivityTaskCanceledRequest {
            task_token,
            details: r.details,
            identity: r.identity,
            namespace: r.namespace,
            ..Default::default()
        })
        .await?;
        Ok(ws::RespondActivityTaskCanceledByIdResponse::default())
    }
}
