//! Workflow-task and activity pollers that run the benchmark workflow: schedule one activity,
//! then complete with its result.

use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    command::Attributes,
};
use temporalio_protos::temporal::api::common::v1::ActivityType;
use temporalio_protos::temporal::api::enums::v1::{CommandType, EventType};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as EventAttributes;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub type Completions = Arc<Mutex<BTreeMap<String, oneshot::Sender<()>>>>;

pub async fn workflow_poller(
    mut client: WorkflowServiceClient<Channel>,
    namespace: String,
    queue: String,
    done: Completions,
) {
    loop {
        let request = ws::PollWorkflowTaskQueueRequest {
            namespace: namespace.clone(),
            task_queue: Some(TaskQueue {
                name: queue.clone(),
                ..Default::default()
            }),
            identity: "perdura-bench".into(),
            ..Default::default()
        };
        let Ok(task) = client
            .poll_workflow_task_queue(request)
            .await
            .map(|r| r.into_inner())
        else {
            continue;
        };
        if task.task_token.is_empty() {
            continue;
        }
        let events = task.history.map(|h| h.events).unwrap_or_default();
        let result = events.iter().find_map(|e| match &e.attributes {
            Some(EventAttributes::ActivityTaskCompletedEventAttributes(a)) => {
                Some(a.result.clone())
            }
            _ => None,
        });
        let scheduled = events
            .iter()
            .any(|e| e.event_type == EventType::ActivityTaskScheduled as i32);
        let command = match (result, scheduled) {
            (Some(result), _) => Command {
                command_type: CommandType::CompleteWorkflowExecution as i32,
                attributes: Some(Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes { result },
                )),
                ..Default::default()
            },
            // The activity is still running: a spurious task; complete it with no command.
            (None, true) => Command::default(),
            (None, false) => Command {
                command_type: CommandType::ScheduleActivityTask as i32,
                attributes: Some(Attributes::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes {
                        activity_id: "1".into(),
                        activity_type: Some(ActivityType {
                            name: "echo".into(),
                        }),
                        task_queue: Some(TaskQueue {
                            name: queue.clone(),
                            ..Default::default()
                        }),
                        input: events.first().and_then(|e| match &e.attributes {
                            Some(EventAttributes::WorkflowExecutionStartedEventAttributes(a)) => {
                                a.input.clone()
                            }
                            _ => None,
                        }),
                        start_to_close_timeout: Some(prost_wkt_types::Duration {
                            seconds: 30,
                            nanos: 0,
                        }),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            },
        };
        let completing = command.command_type == CommandType::CompleteWorkflowExecution as i32;
        let commands = if command.attributes.is_some() {
            vec![command]
        } else {
            Vec::new()
        };
        let request = ws::RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            commands,
            identity: "perdura-bench".into(),
            namespace: namespace.clone(),
            ..Default::default()
        };
        if client
            .respond_workflow_task_completed(request)
            .await
            .is_ok()
            && completing
        {
            let workflow_id = task
                .workflow_execution
                .map(|e| e.workflow_id)
                .unwrap_or_default();
            if let Some(sender) = done.lock().expect("completions lock").remove(&workflow_id) {
                let _ = sender.send(());
            }
        }
    }
}

pub async fn activity_poller(
    mut client: WorkflowServiceClient<Channel>,
    namespace: String,
    queue: String,
) {
    loop {
        let request = ws::PollActivityTaskQueueRequest {
            namespace: namespace.clone(),
            task_queue: Some(TaskQueue {
                name: queue.clone(),
                ..Default::default()
            }),
            identity: "perdura-bench".into(),
            ..Default::default()
        };
        let Ok(task) = client
            .poll_activity_task_queue(request)
            .await
            .map(|r| r.into_inner())
        else {
            continue;
        };
        if task.task_token.is_empty() {
            continue;
        }
        let request = ws::RespondActivityTaskCompletedRequest {
            task_token: task.task_token,
            result: task.input,
            identity: "perdura-bench".into(),
            namespace: namespace.clone(),
            ..Default::default()
        };
        let _ = client.respond_activity_task_completed(request).await;
    }
}
