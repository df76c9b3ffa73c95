//! GetWorkflowExecutionHistory against the real binary: paging, `wait_new_event` long polls that
//! wake on the next append, and the close-event filter that `result()` uses.

mod common;

use common::{ephemeral, history_request, poll_workflow_request, start_request};
use std::time::Duration;
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::enums::v1::{CommandType, EventType, HistoryEventFilterType};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

fn event_ids(response: &ws::GetWorkflowExecutionHistoryResponse) -> Vec<i64> {
    response
        .history
        .as_ref()
        .map(|h| h.events.iter().map(|e| e.event_id).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_waits_for_new_events_and_filters_the_close_event() {
    let server = ephemeral();
    let mut client = server.client().await;
    let run_id = client
        .start_workflow_execution(start_request("hist-1", "req-h1"))
        .await
        .expect("start")
        .into_inner()
        .run_id;

    // Paging one event at a time: two pages, then no token.
    let mut request = history_request("hist-1", &run_id);
    request.maximum_page_size = 1;
    let first = client
        .get_workflow_execution_history(request.clone())
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(event_ids(&first), vec![1]);
    assert!(!first.next_page_token.is_empty());
    request.next_page_token = first.next_page_token;
    let second = client
        .get_workflow_execution_history(request.clone())
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(event_ids(&second), vec![2]);
    assert!(
        second.next_page_token.is_empty(),
        "no more stored events and not waiting"
    );

    // A waiting read from event 3 blocks until the workflow task is started (event 3).
    let mut waiting = history_request("hist-1", &run_id);
    waiting.wait_new_event = true;
    let all = client
        .get_workflow_execution_history(waiting.clone())
        .await
        .expect("wait read")
        .into_inner();
    assert_eq!(event_ids(&all), vec![1, 2]);
    assert!(
        !all.next_page_token.is_empty(),
        "a running workflow keeps a token for what comes next"
    );
    waiting.next_page_token = all.next_page_token;
    let mut waiter = client.clone();
    let blocked = tokio::spawn(async move { waiter.get_workflow_execution_history(waiting).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "nothing new yet: the read must wait"
    );
    let task = client
        .poll_workflow_task_queue(poll_workflow_request("probe-tq"))
        .await
        .expect("poll")
        .into_inner();
    assert_eq!(task.started_event_id, 3);
    let woke = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .expect("woken")
        .expect("join")
        .expect("read");
    assert_eq!(event_ids(&woke.into_inner()), vec![3]);

    // `result()`: the close-event filter waits for completion, then returns only that event.
    let mut close = history_request("hist-1", "");
    close.wait_new_event = true;
    close.history_event_filter_type = HistoryEventFilterType::CloseEvent as i32;
    let mut closer = client.clone();
    let result = tokio::spawn(async move { closer.get_workflow_execution_history(close).await });
    let complete = Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            ),
        ),
        ..Default::default()
    };
    let respond = ws::RespondWorkflowTaskCompletedRequest {
        task_token: task.task_token.clone(),
        commands: vec![complete],
        namespace: "default".into(),
        ..Default::default()
    };
    client
        .respond_workflow_task_completed(respond.clone())
        .await
        .expect("complete");
    let closed = tokio::time::timeout(Duration::from_secs(5), result)
        .await
        .expect("woken")
        .expect("join")
        .expect("read");
    let events = closed.into_inner().history.expect("history").events;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].event_type,
        EventType::WorkflowExecutionCompleted as i32
    );
    assert_eq!(
        events[0].event_id, 5,
        "Started, TaskScheduled, TaskStarted, TaskCompleted, Completed"
    );

    // The same token again is stale: the task is done.
    let stale = client
        .respond_workflow_task_completed(respond)
        .await
        .expect_err("stale token");
    assert_eq!(stale.code(), tonic::Code::NotFound);
}
