//! UpdateWorkflowExecution and PollWorkflowExecutionUpdate.
//!
//! The update itself is replicated state (the engine admits it and records its stage and
//! outcome on the run); only the waiting is in memory here: a client waits until its update
//! reaches the stage its wait policy names, woken by the execution's history watch (the
//! observer wakes it on every update change). If the wait must end first (the client's
//! deadline approaches), the reply carries the stage reached and the SDK asks again — the same
//! update ID, so nothing runs twice.

use crate::frontend::Frontend;
use crate::{status, validate};
use perdura_engine::{ExecutionKey, GroupId, ShardCommandKind, ShardReply, UpdateStatus};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage,
    update::v1::{UpdateRef, WaitPolicy},
    workflowservice::v1 as ws,
};
use tonic::Status;

/// The stage a wait policy asks for. ADMITTED is not a stage clients may wait for, as in the
/// real server; an unset policy waits for acceptance.
fn wanted_stage(policy: Option<&WaitPolicy>) -> Result<Stage, Status> {
    let stage = policy.map_or(Stage::Unspecified, |p| {
        Stage::try_from(p.lifecycle_stage).unwrap_or(Stage::Unspecified)
    });
    match stage {
        Stage::Unspecified => Ok(Stage::Accepted),
        Stage::Admitted => Err(status::invalid(
            "WaitPolicy.LifecycleStage=UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED is not implemented.",
        )),
        other => Ok(other),
    }
}

/// The checks of an update request: the stage to wait for and the update ID.
pub(crate) fn validate_update(
    request: &ws::UpdateWorkflowExecutionRequest,
) -> Result<(Stage, String), Status> {
    let wanted = wanted_stage(request.wait_policy.as_ref())?;
    let update = request
        .request
        .as_ref()
        .ok_or_else(|| status::invalid("Update request is not set on request."))?;
    let update_id = update
        .meta
        .as_ref()
        .map(|m| m.update_id.clone())
        .unwrap_or_default();
    validate::required_id("UpdateId", &update_id)?;
    let input = update.input.as_ref();
    validate::required_id("UpdateName", input.map_or("", |i| i.name.as_str()))?;
    validate::blob("Input", input.and_then(|i| i.args.as_ref()))?;
    validate::message_blob("Header", input.and_then(|i| i.header.as_ref()))?;
    Ok((wanted, update_id))
}

fn update_ref(key: &ExecutionKey, update_id: &str) -> UpdateRef {
    UpdateRef {
        workflow_execution: Some(WorkflowExecution {
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
        }),
        update_id: update_id.to_string(),
    }
}

impl Frontend {
    pub(crate) async fn rpc_update_workflow(
        &self,
        request: ws::UpdateWorkflowExecutionRequest,
        wait: Duration,
    ) -> Result<ws::UpdateWorkflowExecutionResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.workflow_execution.as_ref())?;
        let (wanted, update_id) = validate_update(&request)?;
        let group = self.group_of(&request.namespace, &execution.workflow_id)?;
        let namespace = request.namespace.clone();
        let status = match self
            .propose(group, ShardCommandKind::UpdateWorkflow { request })
            .await?
        {
            ShardReply::Update(status) => *status,
            other => {
                return Err(status::internal(format!(
                    "unexpected reply to UpdateWorkflow: {other:?}"
                )));
            }
        };
        let key = ExecutionKey {
            namespace,
            workflow_id: execution.workflow_id,
            run_id: status.run_id.clone(),
        };
        self.update_response(group, &key, &update_id, wanted, status, wait)
            .await
    }

    /// Waits for the wanted stage and builds the UpdateWorkflowExecution response.
    pub(crate) async fn update_response(
        &self,
        group: GroupId,
        key: &ExecutionKey,
        update_id: &str,
        wanted: Stage,
        status: UpdateStatus,
        wait: Duration,
    ) -> Result<ws::UpdateWorkflowExecutionResponse, Status> {
        let status = self
            .await_update(group, key, update_id, wanted, status, wait)
            .await?;
        Ok(ws::UpdateWorkflowExecutionResponse {
            update_ref: Some(update_ref(key, update_id)),
            outcome: status.outcome,
            stage: status.stage,
            ..Default::default()
        })
    }

    pub(crate) async fn rpc_poll_update(
        &self,
        request: ws::PollWorkflowExecutionUpdateRequest,
        wait: Duration,
    ) -> Result<ws::PollWorkflowExecutionUpdateResponse, Status> {
        self.namespace(&request.namespace).await?;
        let reference = request
            .update_ref
            .as_ref()
            .ok_or_else(|| status::invalid("UpdateRef is not set on request."))?;
        let execution = validate::execution(reference.workflow_execution.as_ref())?;
        validate::required_id("UpdateId", &reference.update_id)?;
        let wanted = match request.wait_policy.as_ref().map(|p| p.lifecycle_stage) {
            // An unset policy answers with the stage reached, at once.
            None | Some(0) => Stage::Unspecified,
            Some(_) => wanted_stage(request.wait_policy.as_ref())?,
        };
        let (group, key) = self
            .resolve_execution(
                &request.namespace,
                &execution.workflow_id,
                &execution.run_id,
            )
            .await?;
        let status = self
            .update_status(group, &key, &reference.update_id)
            .ok_or_else(|| update_not_found(&reference.update_id))?;
        let status = self
            .await_update(group, &key, &reference.update_id, wanted, status, wait)
            .await?;
        Ok(ws::PollWorkflowExecutionUpdateResponse {
            outcome: status.outcome,
            stage: status.stage,
            update_ref: Some(update_ref(&key, &reference.update_id)),
        })
    }

    fn update_status(
        &self,
        resolved: GroupId,
        key: &ExecutionKey,
        id: &str,
    ) -> Option<UpdateStatus> {
        // Re-resolved on every read: an online split may move the workflow while a client waits
        // (the group resolved at first if this node has lost its slot map meanwhile).
        let group = self
            .group_of(&key.namespace, &key.workflow_id)
            .unwrap_or(resolved);
        self.raft
            .read_shard(group, |state| {
                state
                    .execution(key)
                    .and_then(|ms| perdura_engine::update_status(ms, id))
            })
            .flatten()
    }

    /// Waits until the update reaches `wanted` or `wait` elapses; returns the status then.
    async fn await_update(
        &self,
        group: GroupId,
        key: &ExecutionKey,
        update_id: &str,
        wanted: Stage,
        mut status: UpdateStatus,
        wait: Duration,
    ) -> Result<UpdateStatus, Status> {
        let deadline = Instant::now() + wait;
        loop {
            if status.aborted {
                return Err(status::update_aborted());
            }
            if status.stage >= wanted as i32 || Instant::now() >= deadline {
                return Ok(status);
            }
            let watcher = self.history.watch(key);
            let reached = status.stage;
            let _ = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                watcher.wait_unless(|| {
                    self.update_status(group, key, update_id)
                        .is_none_or(|s| s.stage != reached || s.aborted)
                }),
            )
            .await;
            status = self
                .update_status(group, key, update_id)
                .ok_or_else(|| update_not_found(update_id))?;
        }
    }
}

fn update_not_found(update_id: &str) -> Status {
    Status::not_found(format!("update {update_id} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_policies() {
        let policy = |stage: Stage| WaitPolicy {
            lifecycle_stage: stage as i32,
        };
        assert_eq!(wanted_stage(None).unwrap(), Stage::Accepted);
        assert_eq!(
            wanted_stage(Some(&policy(Stage::Completed))).unwrap(),
            Stage::Completed
        );
        assert_eq!(
            wanted_stage(Some(&policy(Stage::Admitted)))
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }
}
