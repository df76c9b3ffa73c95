//! Helpers of the API tests: requests, a worker that polls and completes order workflows
//! (one activity), and delivery counting.

#![allow(dead_code)] // each test file uses a part

use perdura_api::Frontend;
use perdura_api::pb::workflowservice::workflow_service_server::WorkflowService;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    command,
};
use temporalio_protos::temporal::api::common::v1::{
    ActivityType, Payload, Payloads, WorkflowExecution, WorkflowType,
};
use temporalio_protos::temporal::api::enums::v1::CommandType;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::{Code, Request, Status};

pub const TASK_QUEUE: &str = "orders";

fn queue() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: TASK_QUEUE.into(),
        ..Default::default()
    })
}

pub fn start_request(workflow_id: &str) -> ws::StartWorkflowExecutionRequest {
    ws::StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "Order".into(),
        }),
        task_queue: queue(),
        request_id: format!("start-{workflow_id}"),
        ..Default::default()
    }
}

pub fn execution(workflow_id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: workflow_id.into(),
        run_id: String::new(),
    })
}

pub fn schedule_activity() -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "charge".into(),
                activity_type: Some(ActivityType {
                    name: "Charge".into(),
                }),
                task_queue: queue(),
                start_to_close_timeout: Some(prost_wkt_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

pub fn complete_workflow() -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            ),
        ),
        ..Default::default()
    }
}

pub fn poll_workflow_request(wait: Duration) -> Request<ws::PollWorkflowTaskQueueRequest> {
    let mut request = Request::new(ws::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: queue(),
        identity: "worker".into(),
        ..Default::default()
    });
    // The server ends a long poll 1.5 s before the client's deadline.
    request.set_timeout(wait + Duration::from_millis(1500));
    request
}

pub fn poll_activity_request(wait: Duration) -> Request<ws::PollActivityTaskQueueRequest> {
    let mut request = Request::new(ws::PollActivityTaskQueueRequest {
        namespace: "default".into(),
        task_queue: queue(),
        identity: "worker".into(),
        ..Default::default()
    });
    request.set_timeout(wait + Duration::from_millis(1500));
    request
}

pub fn query_request(workflow_id: &str) -> Request<ws::QueryWorkflowRequest> {
    let mut request = Request::new(ws::QueryWorkflowRequest {
        namespace: "default".into(),
        execution: execution(workflow_id),
        query: Some(WorkflowQuery {
            query_type: "status".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(15));
    request
}

pub fn payloads(text: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }],
    }
}

pub fn answer_of(response: ws::QueryWorkflowResponse) -> String {
    let payload = response
        .query_result
        .and_then(|p| p.payloads.into_iter().next())
        .expect("an answer");
    String::from_utf8(payload.data).expect("utf-8")
}

/// Calls `call` until it answers something else than UNAVAILABLE (what an SDK does), for up
/// to 20 s.
pub async fn retry_unavailable<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match call().await {
            Err(status)
                if status.code() == Code::Unavailable && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// What the pollers received, per workflow ID.
#[derive(Default)]
pub struct Deliveries {
    pub workflow_tasks: BTreeMap<String, u32>,
    pub activity_tasks: BTreeMap<String, u32>,
}

/// A worker on one node: polls workflow tasks (the first schedules the activity, the second
/// completes the workflow) and activity tasks until `stop`. Completions are retried while
/// UNAVAILABLE; a completion refused with NOT_FOUND was applied by an earlier attempt.
pub async fn worker(
    frontend: Frontend,
    deliveries: Arc<Mutex<Deliveries>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let wait = Duration::from_millis(100);
    while !*stop.borrow() {
        match frontend
            .poll_workflow_task_queue(poll_workflow_request(wait))
            .await
        {
            Ok(task) => {
                let task = task.into_inner();
                if !task.task_token.is_empty() {
                    handle_workflow_task(&frontend, &deliveries, task).await;
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        match frontend
            .poll_activity_task_queue(poll_activity_request(wait))
            .await
        {
            Ok(task) => {
                let task = task.into_inner();
                if !task.task_token.is_empty() {
                    let id = task.workflow_execution.clone().unwrap_or_default();
                    *deliveries
                        .lock()
                        .unwrap()
                        .activity_tasks
                        .entry(id.workflow_id)
                        .or_default() += 1;
                    let result = retry_unavailable(|| {
                        frontend.respond_activity_task_completed(Request::new(
                            ws::RespondActivityTaskCompletedRequest {
                                task_token: task.task_token.clone(),
                                identity: "worker".into(),
                                ..Default::default()
                            },
                        ))
                    })
                    .await;
                    done_or_applied(result);
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn handle_workflow_task(
    frontend: &Frontend,
    deliveries: &Mutex<Deliveries>,
    task: ws::PollWorkflowTaskQueueResponse,
) {
    let workflow_id = task
        .workflow_execution
        .clone()
        .unwrap_or_default()
        .workflow_id;
    *deliveries
        .lock()
        .unwrap()
        .workflow_tasks
        .entry(workflow_id)
        .or_default() += 1;
    let command = if task.previous_started_event_id == 0 {
        schedule_activity()
    } else {
        complete_workflow()
    };
    let result = retry_unavailable(|| {
        frontend.respond_workflow_task_completed(Request::new(
            ws::RespondWorkflowTaskCompletedRequest {
                task_token: task.task_token.clone(),
                commands: vec![command.clone()],
                identity: "worker".into(),
                ..Default::default()
            },
        ))
    })
    .await;
    done_or_applied(result);
}

fn done_or_applied<T>(result: Result<T, Status>) {
    match result {
        Ok(_) => {}
        Err(status) if status.code() == Code::NotFound => {}
        Err(status) => panic!("completion failed: {status:?}"),
    }
}
