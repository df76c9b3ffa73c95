//! The outbox driver through MultiRaft with the real engine: a parent in one group starts a child
//! in another, the delivery is cut after the child's group applied it (no ack), the node
//! restarts, and the driver finishes the delivery — the child exists once, the parent records
//! its start once, and the child's completion reaches the parent across groups.

mod common;

use common::{Recorder, open, tuning};
use perdura_engine::{ExecutionKey, GroupId, ShardCommandKind, ShardReply, WorkflowKey};
use perdura_raft::MultiRaft;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::enums::v1::{CommandType, EventType};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
};

fn start(workflow_id: &str) -> ShardCommandKind {
    ShardCommandKind::StartWorkflow {
        request: StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: workflow_id.into(),
            workflow_type: Some(WorkflowType {
                name: "Parent".into(),
            }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            request_id: format!("req-{workflow_id}"),
            ..Default::default()
        },
        run_id: format!("run-{workflow_id}"),
    }
}

/// Polls the scheduled workflow task of `key` and completes it with `commands`.
async fn run_workflow_task(
    node: &MultiRaft,
    group: GroupId,
    key: &ExecutionKey,
    commands: Vec<Command>,
) {
    let scheduled_event_id = node
        .read_shard(group, |s| {
            s.execution(key)
                .and_then(|ms| ms.workflow_task.as_ref().map(|w| w.scheduled_event_id))
        })
        .flatten()
        .expect("a scheduled workflow task");
    let started = node
        .propose(
            group,
            ShardCommandKind::RecordWorkflowTaskStarted {
                execution: key.clone(),
                scheduled_event_id,
                identity: "worker".into(),
                poll_request_id: format!("poll-{scheduled_event_id}"),
            },
        )
        .await
        .expect("committed");
    let Ok(ShardReply::WorkflowTaskStarted(info)) = started else {
        panic!("poll failed: {started:?}");
    };
    let reply = node
        .propose(
            group,
            ShardCommandKind::RespondWorkflowTaskCompleted {
                token: info.token,
                request: RespondWorkflowTaskCompletedRequest {
                    commands,
                    identity: "worker".into(),
                    ..Default::default()
                },
            },
        )
        .await
        .expect("committed");
    assert_eq!(reply, Ok(ShardReply::Done));
}

fn start_child(workflow_id: &str) -> Command {
    Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: workflow_id.into(),
                    workflow_type: Some(WorkflowType {
                        name: "Child".into(),
                    }),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

fn complete() -> Command {
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

fn event_types(node: &MultiRaft, group: GroupId, key: &ExecutionKey) -> Vec<EventType> {
    node.read_history(group, key, 1, 1_000)
        .expect("history")
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified))
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_after_the_target_applied_finishes_once_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut staged = tuning();
    staged.deliver_outbox = false;
    let node = open(dir.path(), 4, Arc::new(Recorder::default()), staged).await;
    let parent_group = node
        .group_of("default", "parent")
        .expect("routed by the slot map");
    let child_id = (0..)
        .map(|n| format!("child-{n}"))
        .find(|id| {
            node.group_of("default", id)
                .expect("routed by the slot map")
                != parent_group
        })
        .expect("some ID lands in another group");
    let child_group = node
        .group_of("default", &child_id)
        .expect("routed by the slot map");
    let parent = ExecutionKey {
        namespace: "default".into(),
        workflow_id: "parent".into(),
        run_id: "run-parent".into(),
    };
    node.propose(parent_group, start("parent"))
        .await
        .expect("committed")
        .expect("started");
    run_workflow_task(&node, parent_group, &parent, vec![start_child(&child_id)]).await;

    // The driver's first proposal only: the child's group applies the start; no ack.
    let (entry, message) = node
        .read_shard(parent_group, |s| {
            let entry = s.pending_outbox().into_iter().next().expect("an entry");
            let message = s
                .outbox_message(&entry.execution, entry.outbox_id)
                .cloned()
                .expect("message");
            (entry, message)
        })
        .expect("group");
    let received = node
        .propose(
            child_group,
            ShardCommandKind::ReceiveMessage {
                source: entry.execution.clone(),
                outbox_id: entry.outbox_id,
                message,
            },
        )
        .await
        .expect("committed");
    assert!(
        matches!(received, Ok(ShardReply::Delivered(_))),
        "{received:?}"
    );
    node.shutdown().await;
    drop(node);

    // After the restart the driver redelivers and acks.
    let node = open(dir.path(), 4, Arc::new(Recorder::default()), tuning()).await;
    wait_for("ChildWorkflowExecutionStarted in the parent", || {
        event_types(&node, parent_group, &parent)
            .contains(&EventType::ChildWorkflowExecutionStarted)
    })
    .await;
    let child_workflow = WorkflowKey {
        namespace: "default".into(),
        workflow_id: child_id.clone(),
    };
    let child_runs = node
        .read_shard(child_group, |s| {
            s.executions()
                .filter(|ms| ms.key.workflow_key() == child_workflow)
                .map(|ms| ms.key.clone())
                .collect::<Vec<_>>()
        })
        .expect("group");
    assert_eq!(
        child_runs.len(),
        1,
        "the child started once: {child_runs:?}"
    );
    let child = child_runs[0].clone();
    assert_eq!(
        event_types(&node, child_group, &child),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled
        ]
    );
    let parent_types = event_types(&node, parent_group, &parent);
    assert_eq!(
        parent_types
            .iter()
            .filter(|t| **t == EventType::ChildWorkflowExecutionStarted)
            .count(),
        1
    );
    wait_for("the parent's outbox to drain", || {
        node.read_shard(parent_group, |s| s.pending_outbox().is_empty())
            .unwrap_or(false)
    })
    .await;

    // The child completes; the driver of its group reports to the parent's group.
    run_workflow_task(&node, child_group, &child, vec![complete()]).await;
    wait_for("ChildWorkflowExecutionCompleted in the parent", || {
        event_types(&node, parent_group, &parent)
            .contains(&EventType::ChildWorkflowExecutionCompleted)
    })
    .await;
    node.shutdown().await;
}
