//! A workload for split tests: workflows that start, schedule an activity and a timer, get a
//! signal and complete — every step a proposal through `MultiRaft::propose` on one node (in a
//! cluster, forwarded to the group's leader) — and the placement check afterwards.

use perdura_engine::slots::slot_of;
use perdura_engine::{
    EngineError, ExecutionKey, GroupId, MutableState, ShardCommandKind, ShardReply, TaskKind,
};
use perdura_raft::MultiRaft;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{
    CommandType, EventType, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    RespondActivityTaskCompletedRequest, RespondWorkflowTaskCompletedRequest,
    SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};

pub fn duration_ms(ms: i64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

pub fn key(workflow_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: format!("run-{workflow_id}"),
    }
}

pub fn start(workflow_id: &str) -> ShardCommandKind {
    let request = StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "OrderWorkflow".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "orders".into(),
            ..Default::default()
        }),
        request_id: format!("req-{workflow_id}"),
        ..Default::default()
    };
    ShardCommandKind::StartWorkflow {
        request,
        run_id: format!("run-{workflow_id}"),
    }
}

pub fn signal(workflow_id: &str) -> ShardCommandKind {
    ShardCommandKind::SignalWorkflow {
        request: SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            signal_name: "go".into(),
            request_id: format!("signal-{workflow_id}"),
            ..Default::default()
        },
    }
}

pub fn first_commands() -> Vec<Command> {
    let activity = ScheduleActivityTaskCommandAttributes {
        activity_id: "charge".into(),
        activity_type: Some(ActivityType {
            name: "Charge".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "orders".into(),
            ..Default::default()
        }),
        start_to_close_timeout: Some(duration_ms(30_000)),
        ..Default::default()
    };
    let timer = StartTimerCommandAttributes {
        timer_id: "wait".into(),
        start_to_fire_timeout: Some(duration_ms(300)),
    };
    vec![
        Command {
            command_type: CommandType::ScheduleActivityTask as i32,
            attributes: Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
                activity,
            )),
            ..Default::default()
        },
        Command {
            command_type: CommandType::StartTimer as i32,
            attributes: Some(command::Attributes::StartTimerCommandAttributes(timer)),
            ..Default::default()
        },
    ]
}

pub fn complete() -> Command {
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

pub fn has(history: &[HistoryEvent], event_type: EventType) -> bool {
    history.iter().any(|e| e.event_type == event_type as i32)
}

/// Errors a workload step saw that no client may ever see.
#[derive(Default)]
pub struct Anomalies {
    pub slot_moved: AtomicUsize,
    pub errors: std::sync::Mutex<Vec<String>>,
}

/// Proposes to the group `group_of` names now; `SlotMoved` must never reach the caller.
pub async fn propose(
    node: &MultiRaft,
    anomalies: &Anomalies,
    workflow_id: &str,
    kind: ShardCommandKind,
) -> Option<ShardReply> {
    let group = node
        .group_of("default", workflow_id)
        .expect("routed by the slot map");
    match node.propose(group, kind).await {
        Ok(Ok(reply)) => Some(reply),
        Ok(Err(EngineError::SlotMoved { .. })) => {
            anomalies.slot_moved.fetch_add(1, Ordering::Relaxed);
            None
        }
        // With one worker per workflow nothing else is expected; record it and try again.
        other => {
            let error = format!("{workflow_id} on {group}: {other:?}");
            anomalies.errors.lock().expect("lock").push(error);
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// A follower's state may lag: wait until it holds every acknowledged write (ReadIndex) of the
/// workflow's group — retried while the group has no leader (a new group's first election) —
/// and return that group.
pub async fn barrier(node: &MultiRaft, workflow_id: &str) -> GroupId {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match node.read_barrier_for("default", workflow_id).await {
            Ok(group) => return group,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no read barrier for {workflow_id}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub async fn run_state(node: &MultiRaft, workflow_id: &str) -> Option<MutableState> {
    let group = barrier(node, workflow_id).await;
    node.read_shard(group, |s| s.execution(&key(workflow_id)).cloned())
        .flatten()
}

/// One workflow and its worker: start, first task schedules an activity and a timer, a signal
/// arrives, the activity runs, and the workflow completes once all three happened.
pub async fn run_workflow(node: Arc<MultiRaft>, anomalies: Arc<Anomalies>, workflow_id: String) {
    let id = workflow_id.as_str();
    while propose(&node, &anomalies, id, start(id)).await.is_none() {}
    let mut signalled = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() >= deadline {
            let group = node
                .group_of("default", id)
                .expect("routed by the slot map");
            let history = node.read_history(group, &key(id), 1, 1000);
            let types: Vec<i32> = history.iter().flatten().map(|e| e.event_type).collect();
            panic!(
                "{id} did not complete: group {group}, run {:?}, events {types:?}",
                run_state(&node, id).await
            );
        }
        let Some(ms) = run_state(&node, id).await else {
            panic!("{id} vanished after it started");
        };
        if !ms.is_running() {
            assert_eq!(ms.status, WorkflowExecutionStatus::Completed as i32, "{id}");
            return;
        }
        if let Some(wft) = ms.workflow_task.as_ref().filter(|w| !w.is_started()) {
            let poll = ShardCommandKind::RecordWorkflowTaskStarted {
                execution: key(id),
                scheduled_event_id: wft.scheduled_event_id,
                identity: "worker".into(),
                poll_request_id: format!("{id}-{}", wft.scheduled_event_id),
            };
            if let Some(ShardReply::WorkflowTaskStarted(info)) =
                propose(&node, &anomalies, id, poll).await
            {
                let group = barrier(&node, id).await;
                let history = node
                    .read_history(group, &key(id), 1, 1000)
                    .expect("history");
                let commands = if !has(&history, EventType::ActivityTaskScheduled) {
                    first_commands()
                } else if has(&history, EventType::ActivityTaskCompleted)
                    && has(&history, EventType::TimerFired)
                    && has(&history, EventType::WorkflowExecutionSignaled)
                {
                    vec![complete()]
                } else {
                    Vec::new()
                };
                let respond = ShardCommandKind::RespondWorkflowTaskCompleted {
                    token: info.token,
                    request: RespondWorkflowTaskCompletedRequest {
                        commands,
                        identity: "worker".into(),
                        ..Default::default()
                    },
                };
                propose(&node, &anomalies, id, respond).await;
            }
            continue;
        }
        let ready_activity = ms
            .activities
            .values()
            .find(|a| a.phase == perdura_engine::shard::ActivityPhase::Ready)
            .map(|a| a.scheduled_event_id);
        if let Some(scheduled_event_id) = ready_activity {
            let poll = ShardCommandKind::RecordActivityTaskStarted {
                execution: key(id),
                scheduled_event_id,
                identity: "activity-worker".into(),
                poll_request_id: format!("{id}-a{scheduled_event_id}"),
            };
            if let Some(ShardReply::ActivityTaskStarted(info)) =
                propose(&node, &anomalies, id, poll).await
            {
                assert_eq!(info.token.kind, TaskKind::Activity);
                // Let a split land between the activity's start and its completion.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let done = ShardCommandKind::RespondActivityTaskCompleted {
                    token: info.token,
                    request: RespondActivityTaskCompletedRequest::default(),
                };
                propose(&node, &anomalies, id, done).await;
            }
            continue;
        }
        if !signalled && ms.previous_started_event_id > 0 {
            signalled = propose(&node, &anomalies, id, signal(id)).await.is_some();
            continue;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every workflow exists exactly once, where the slot map says, with a complete history.
pub fn check_placement(node: &MultiRaft, ids: &[String]) -> BTreeMap<GroupId, usize> {
    let map = node.read_meta(|m| m.slot_map.clone()).expect("a slot map");
    let mut per_group = BTreeMap::new();
    for id in ids {
        let holders: Vec<GroupId> = node
            .shard_groups()
            .into_iter()
            .filter(|g| {
                node.read_shard(*g, |s| s.execution(&key(id)).is_some())
                    .unwrap_or(false)
            })
            .collect();
        let owner = map
            .group_of(slot_of("default", id))
            .expect("every slot is mapped");
        assert_eq!(
            holders,
            vec![owner],
            "{id} lives exactly in its slot's group"
        );
        let history = node
            .read_history(owner, &key(id), 1, 1000)
            .expect("history");
        let ids: Vec<i64> = history.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, (1..=history.len() as i64).collect::<Vec<_>>(), "{id}");
        for wanted in [
            EventType::WorkflowExecutionStarted,
            EventType::ActivityTaskCompleted,
            EventType::TimerFired,
            EventType::WorkflowExecutionSignaled,
        ] {
            assert!(has(&history, wanted), "{id} has no {wanted:?}");
        }
        assert_eq!(
            history.last().map(|e| e.event_type),
            Some(EventType::WorkflowExecutionCompleted as i32),
            "{id} ends completed"
        );
        *per_group.entry(owner).or_insert(0) += 1;
    }
    per_group
}
