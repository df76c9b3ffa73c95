//! Drives the real `perdura` binary over real gRPC (no SDK): start-up, the Temporal CLI's
//! start-dev form, bad input, clean shutdown on SIGTERM and a restart on the same data dir.

mod common;

use common::{Server, describe_request, free_port, start_request};
use std::path::Path;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_dev_form_serves_validates_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    let port = free_port();
    let port_arg = port.to_string();
    let args = [
        "server",
        "start-dev",
        "--port",
        &port_arg,
        "--ip",
        "127.0.0.1",
        "--namespace",
        "default",
        "--namespace",
        "extra",
        "--log-format",
        "pretty",
        "--dynamic-config-value",
        "frontend.enableUpdateWorkflowExecution=true",
        "--headless",
        "--db-filename",
        data_arg,
    ];
    let server = Server::start(&args, port);
    let mut client = server.client().await;

    // Namespaces: default and the one asked for exist; an unknown one is NOT_FOUND.
    for name in ["default", "extra"] {
        let request = ws::DescribeNamespaceRequest {
            namespace: name.into(),
            ..Default::default()
        };
        let reply = client
            .describe_namespace(request)
            .await
            .expect("describe namespace")
            .into_inner();
        assert_eq!(reply.namespace_info.expect("info").name, name);
    }
    let missing = client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown namespace");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Bad input gets the statuses the SDKs decode.
    let empty_id = client
        .start_workflow_execution(start_request("", "r0"))
        .await
        .expect_err("empty id");
    assert_eq!(empty_id.code(), tonic::Code::InvalidArgument);
    let bad_run = client
        .describe_workflow_execution(describe_request("superneverexistwf!", "!sonotreal"))
        .await
        .expect_err("bad run id");
    assert_eq!(bad_run.code(), tonic::Code::InvalidArgument);
    assert!(
        bad_run.message().contains("Invalid RunId"),
        "{}",
        bad_run.message()
    );

    // A start, its request-id retry, and a conflicting start.
    let first = client
        .start_workflow_execution(start_request("wf-1", "req-1"))
        .await
        .expect("start")
        .into_inner();
    assert!(first.started);
    let retried = client
        .start_workflow_execution(start_request("wf-1", "req-1"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried.run_id, first.run_id, "same request id ⇒ same run");
    let conflict = client
        .start_workflow_execution(start_request("wf-1", "req-2"))
        .await
        .expect_err("running id");
    assert_eq!(conflict.code(), tonic::Code::AlreadyExists);

    // SIGTERM stops the server cleanly even with a long poll open.
    let mut poller = client.clone();
    let poll = tokio::spawn(async move {
        let request = ws::PollActivityTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: "idle".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        poller.poll_activity_task_queue(request).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "shutdown waited for the long poll"
    );
    let _ = poll.await;

    // Restart on the same data dir: the workflow is still there, with its history.
    assert!(Path::new(data_arg).exists());
    let server = Server::start(&args, port);
    let mut client = server.client().await;
    let described = client
        .describe_workflow_execution(describe_request("wf-1", &first.run_id))
        .await
        .expect("describe after restart")
        .into_inner();
    let info = described.workflow_execution_info.expect("info");
    assert_eq!(
        info.history_length, 2,
        "WorkflowExecutionStarted + WorkflowTaskScheduled"
    );
    // The scheduled workflow task is dispatched after the restart.
    let request = ws::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: "probe-tq".into(),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    };
    let task = client
        .poll_workflow_task_queue(request)
        .await
        .expect("poll")
        .into_inner();
    assert!(
        !task.task_token.is_empty(),
        "the pending workflow task survived the restart"
    );
    let events = task.history.expect("history").events;
    let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    drop(server);
}
