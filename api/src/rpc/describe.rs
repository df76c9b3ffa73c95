//! DescribeWorkflowExecution, from the run's mutable state.

use super::time::{duration, timestamp};
use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::ExecutionKey;
use perdura_engine::shard::mutable_state::{ActivityPhase, ActivityState, MutableState};
use perdura_engine::shard::outbox::ChildState;
use temporalio_protos::temporal::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{
    PendingActivityState, PendingWorkflowTaskState, TaskQueueKind,
};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflow::v1::{
    PendingActivityInfo, PendingChildExecutionInfo, PendingWorkflowTaskInfo,
    WorkflowExecutionConfig, WorkflowExecutionInfo,
};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_describe_workflow(
        &self,
        request: ws::DescribeWorkflowExecutionRequest,
    ) -> Result<ws::DescribeWorkflowExecutionResponse, Status> {
        let execution = validate::execution(request.execution.as_ref())?;
        self.namespace(&request.namespace).await?;
        let (group, key) = self
            .resolve_execution(
                &request.namespace,
                &execution.workflow_id,
                &execution.run_id,
            )
            .await?;
        self.raft
            .read_shard(group, |state| state.execution(&key).map(describe))
            .flatten()
            .ok_or_else(|| crate::frontend::workflow_not_found(&key.workflow_id))
    }
}

fn describe(state: &MutableState) -> ws::DescribeWorkflowExecutionResponse {
    let info = WorkflowExecutionInfo {
        execution: Some(WorkflowExecution {
            workflow_id: state.key.workflow_id.clone(),
            run_id: state.key.run_id.clone(),
        }),
        r#type: Some(WorkflowType {
            name: state.workflow_type.clone(),
        }),
        start_time: timestamp(state.start_time_ms),
        close_time: timestamp(state.close_time_ms),
        execution_time: timestamp(state.start_time_ms),
        status: state.status,
        history_length: state.next_event_id - 1,
        history_size_bytes: state.history_size_bytes,
        memo: state.memo.clone(),
        search_attributes: state.search_attributes.clone(),
        task_queue: state.task_queue.clone(),
        first_run_id: state.first_execution_run_id.clone(),
        parent_execution: state.parent.as_ref().map(|p| execution(&p.execution)),
        root_execution: state.parent.as_ref().map(|p| execution(&p.root)),
        execution_duration: (state.close_time_ms > 0)
            .then(|| duration(state.close_time_ms - state.start_time_ms))
            .flatten(),
        ..Default::default()
    };
    let config = WorkflowExecutionConfig {
        task_queue: Some(TaskQueue {
            name: state.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        workflow_execution_timeout: duration(state.workflow_execution_timeout_ms),
        workflow_run_timeout: duration(state.workflow_run_timeout_ms),
        default_workflow_task_timeout: duration(state.workflow_task_timeout_ms),
        ..Default::default()
    };
    let pending_workflow_task = state
        .workflow_task
        .as_ref()
        .map(|wft| PendingWorkflowTaskInfo {
            state: if wft.is_started() {
                PendingWorkflowTaskState::Started
            } else {
                PendingWorkflowTaskState::Scheduled
            } as i32,
            scheduled_time: timestamp(wft.scheduled_time_ms),
            original_scheduled_time: timestamp(wft.scheduled_time_ms),
            started_time: timestamp(wft.started_time_ms),
            attempt: wft.attempt,
        });
    ws::DescribeWorkflowExecutionResponse {
        execution_config: Some(config),
        workflow_execution_info: Some(info),
        pending_activities: state.activities.values().map(pending_activity).collect(),
        pending_workflow_task,
        pending_children: state.children.values().map(pending_child).collect(),
        ..Default::default()
    }
}

fn execution(key: &ExecutionKey) -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
    }
}

/// A child the workflow waits for; its run ID is known once the child started.
fn pending_child(child: &ChildState) -> PendingChildExecutionInfo {
    PendingChildExecutionInfo {
        workflow_id: child.workflow_id.clone(),
        run_id: if child.started {
            child.run_id.clone()
        } else {
            String::new()
        },
        workflow_type_name: child.workflow_type.clone(),
        initiated_id: child.initiated_event_id,
        parent_close_policy: child.parent_close_policy,
    }
}

fn pending_activity(activity: &ActivityState) -> PendingActivityInfo {
    PendingActivityInfo {
        activity_id: activity.activity_id.clone(),
        activity_type: Some(ActivityType {
            name: activity.activity_type.clone(),
        }),
        state: match activity.phase {
            ActivityPhase::Started => PendingActivityState::Started,
            ActivityPhase::Ready | ActivityPhase::Backoff => PendingActivityState::Scheduled,
        } as i32,
        heartbeat_details: activity.last_heartbeat_details.clone(),
        last_heartbeat_time: timestamp(activity.last_heartbeat_time_ms),
        last_started_time: timestamp(activity.started_time_ms),
        attempt: activity.attempt,
        maximum_attempts: activity.retry_policy.maximum_attempts,
        scheduled_time: timestamp(activity.current_attempt_scheduled_time_ms),
        last_failure: activity.last_failure.clone(),
        last_worker_identity: activity.started_identity.clone(),
        ..Default::default()
    }
}
