//! The well-behaved side of the storm test: a workflow run to completion by a raw-gRPC worker,
//! its history as bytes, and the fixed abuse sent before the random storm (each kind once, so
//! a plain run always covers it).

use crate::calls::{Call, Storm};
use crate::input::{Name, Size, Span, Target, TokenBytes};
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use prost::Message;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command::Attributes,
};
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{CommandType, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::history::v1::History;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

/// Starts `workflow_id` on `task_queue`, completes its first workflow task and waits for the
/// run to be closed as completed; returns the run ID.
pub async fn run_to_completion(client: &mut Client, workflow_id: &str, task_queue: &str) -> String {
    let queue = Some(TaskQueue {
        name: task_queue.into(),
        ..Default::default()
    });
    let started = client
        .start_workflow_execution(ws::StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: workflow_id.into(),
            workflow_type: Some(WorkflowType {
                name: "Probe".into(),
            }),
            task_queue: queue.clone(),
            request_id: format!("start-{workflow_id}"),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let mut poll = tonic::Request::new(ws::PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: queue.clone(),
            identity: "storm-test".into(),
            ..Default::default()
        });
        poll.set_timeout(Duration::from_secs(3));
        let task = client
            .poll_workflow_task_queue(poll)
            .await
            .expect("poll")
            .into_inner();
        if !task.task_token.is_empty() {
            break task;
        }
        assert!(
            Instant::now() < deadline,
            "no workflow task for {workflow_id}"
        );
    };
    let complete = Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(Attributes::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes::default(),
        )),
        ..Default::default()
    };
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            commands: vec![complete],
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("complete the workflow task");
    let described = client
        .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: started.run_id.clone(),
            }),
        })
        .await
        .expect("describe")
        .into_inner();
    let status = described
        .workflow_execution_info
        .expect("execution info")
        .status;
    assert_eq!(
        status,
        WorkflowExecutionStatus::Completed as i32,
        "{workflow_id} completed"
    );
    started.run_id
}

/// Every page of the run's history, encoded.
pub async fn history_bytes(client: &mut Client, workflow_id: &str, run_id: &str) -> Vec<u8> {
    let mut events = Vec::new();
    let mut next_page_token = Vec::new();
    loop {
        let page = client
            .get_workflow_execution_history(ws::GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: workflow_id.into(),
                    run_id: run_id.into(),
                }),
                next_page_token,
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner();
        events.extend(page.history.unwrap_or_default().events);
        if page.next_page_token.is_empty() {
            break;
        }
        next_page_token = page.next_page_token;
    }
    assert!(!events.is_empty(), "a history");
    History { events }.encode_to_vec()
}

/// Each kind of abuse once: bodies past the blob and message limits, every method with an
/// empty and a junk body, bogus `grpc-timeout` headers on the calls that wait.
pub async fn fixed_abuse(storm: &Storm) {
    let before = Target {
        workflow: Name::Known(4),
        run: None,
    };
    let mut calls = vec![
        Call::Signal {
            namespace: Name::Known(0),
            target: before.clone(),
            signal: Name::Known(0),
            input: Size::OverLimit,
            request_id: Name::Empty,
        },
        Call::Terminate {
            namespace: Name::Known(0),
            target: before.clone(),
        },
        Call::RequestCancel {
            namespace: Name::Known(0),
            target: before.clone(),
            request_id: Name::Empty,
        },
        Call::Start {
            namespace: Name::Known(0),
            workflow: Name::Known(4),
            task_queue: Name::Known(0),
            request_id: Name::Huge(1_001),
            input: Size::OverLimit,
            timeouts: (Span::Negative, Span::BadNanos, Span::Max),
            conflict: 99,
            reuse: -1,
        },
        Call::History {
            namespace: Name::Known(0),
            target: before,
            page: TokenBytes::Crafted {
                kind: 0,
                workflow: Name::Known(4),
                scheduled_event_id: i64::MAX,
                started_event_id: i64::MIN,
                attempt: -1,
            },
            page_size: i32::MIN,
            wait: false,
            filter: 99,
        },
    ];
    for method in 0..crate::raw::METHODS.len() as u8 {
        calls.push(Call::Raw {
            method,
            body: Vec::new(),
        });
        calls.push(Call::Raw {
            method,
            body: vec![0xFF; 17],
        });
    }
    for method in 0..4 {
        for header in [
            "18446744073709551615S",
            "99999999999999H",
            "5124095576030431H",
        ] {
            calls.push(Call::BadTimeoutHeader {
                method,
                header: header.into(),
            });
        }
    }
    for call in &calls {
        let outcome = storm.send(call).await;
        assert!(
            crate::deliberate(&outcome),
            "{call:?} answered {:?}",
            outcome.result
        );
    }
    // A request larger than the server's 64 MiB message limit.
    let huge = vec![0u8; 65 * 1024 * 1024];
    let result = crate::raw::call(
        storm.channel.clone(),
        "SignalWorkflowExecution",
        huge,
        Duration::from_secs(30),
    )
    .await;
    let code = result.expect_err("a 65 MiB body is refused").code();
    assert!(
        matches!(
            code,
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "a 65 MiB body answered {code:?}"
    );
}
