//! Online group split of a running node (`docs/design/005-online-group-split.md`): a group is
//! split while a workload of workflows (start, signal, timer, activity, completion — all through
//! `propose`) runs; afterwards every workflow exists exactly once, in the group the slot map
//! names, with a complete history, and every workflow completed. Also: a split interrupted
//! after `SplitOut` is finished when the node restarts.

mod common;

use common::{open, tuning};
use perdura_engine::slots::slot_of;
use perdura_engine::{
    EngineError, ExecutionKey, GroupId, MetaCommand, MetaReply, MutableState, ShardCommandKind,
    ShardReply, SlotRange, TaskKind,
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

const WORKFLOWS: usize = 48;

fn duration_ms(ms: i64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn key(workflow_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: format!("run-{workflow_id}"),
    }
}

fn start(workflow_id: &str) -> ShardCommandKind {
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

fn signal(workflow_id: &str) -> ShardCommandKind {
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

fn first_commands() -> Vec<Command> {
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

fn has(history: &[HistoryEvent], event_type: EventType) -> bool {
    history.iter().any(|e| e.event_type == event_type as i32)
}

/// Errors a workload step saw that no client may ever see.
#[derive(Default)]
struct Anomalies {
    slot_moved: AtomicUsize,
    errors: std::sync::Mutex<Vec<String>>,
}

/// Proposes to the group `group_of` names now; `SlotMoved` must never reach the caller.
async fn propose(
    node: &MultiRaft,
    anomalies: &Anomalies,
    workflow_id: &str,
    kind: ShardCommandKind,
) -> Option<ShardReply> {
    let group = node.group_of("default", workflow_id);
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

fn run_state(node: &MultiRaft, workflow_id: &str) -> Option<MutableState> {
    let group = node.group_of("default", workflow_id);
    node.read_shard(group, |s| s.execution(&key(workflow_id)).cloned())
        .flatten()
}

/// One workflow and its worker: start, first task schedules an activity and a timer, a signal
/// arrives, the activity runs, and the workflow completes once all three happened.
async fn run_workflow(node: Arc<MultiRaft>, anomalies: Arc<Anomalies>, workflow_id: String) {
    let id = workflow_id.as_str();
    while propose(&node, &anomalies, id, start(id)).await.is_none() {}
    let mut signalled = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() >= deadline {
            let group = node.group_of("default", id);
            let history = node.read_history(group, &key(id), 1, 1000);
            let types: Vec<i32> = history.iter().flatten().map(|e| e.event_type).collect();
            panic!(
                "{id} did not complete: group {group}, run {:?}, events {types:?}",
                run_state(&node, id)
            );
        }
        let Some(ms) = run_state(&node, id) else {
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
                let group = node.group_of("default", id);
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
fn check_placement(node: &MultiRaft, ids: &[String]) -> BTreeMap<GroupId, usize> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_split_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(dir.path(), 2, Arc::default(), tuning()).await;
    let anomalies = Arc::new(Anomalies::default());
    // Workflows of group 1's upper half: they are the ones that move.
    let moving = SlotRange {
        start: 1024,
        end: 2048,
    };
    let ids: Vec<String> = (0..)
        .map(|i| format!("order-{i}"))
        .filter(|id| node.group_of("default", id) == GroupId(1))
        .take(WORKFLOWS)
        .collect();
    assert!(
        ids.iter()
            .filter(|id| moving.contains(slot_of("default", id)))
            .count()
            >= WORKFLOWS / 4,
        "enough workflows move"
    );
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        tasks.push(tokio::spawn(run_workflow(
            node.clone(),
            anomalies.clone(),
            id.clone(),
        )));
        if i == WORKFLOWS / 2 {
            // Half of the workload is in flight when the split starts.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let splitter = {
        let node = node.clone();
        tokio::spawn(async move { node.split_group(GroupId(1)).await })
    };
    let new_group = splitter.await.expect("task").expect("split");
    assert_eq!(new_group, GroupId(3));
    let running_at_split = ids
        .iter()
        .filter(|id| run_state(&node, id).is_some_and(|ms| ms.is_running()))
        .count();
    for task in tasks {
        task.await.expect("a workflow failed");
    }
    assert_eq!(anomalies.slot_moved.load(Ordering::Relaxed), 0);
    let errors = anomalies.errors.lock().expect("lock").clone();
    assert!(errors.is_empty(), "unexpected proposal errors: {errors:?}");
    assert!(running_at_split > 0, "the split happened under load");

    let map = node.read_meta(|m| m.slot_map.clone()).expect("slot map");
    assert_eq!(map.ranges_of(GroupId(3)), vec![moving]);
    assert_eq!(
        map.ranges_of(GroupId(1)),
        vec![SlotRange {
            start: 0,
            end: 1024
        }]
    );
    assert!(node.read_meta(|m| m.splits.is_empty()));
    assert_eq!(
        node.shard_groups(),
        vec![GroupId(1), GroupId(2), GroupId(3)]
    );
    let per_group = check_placement(&node, &ids);
    assert!(
        per_group.get(&GroupId(3)).is_some_and(|n| *n > 0),
        "{per_group:?}"
    );
    assert!(
        per_group.get(&GroupId(1)).is_some_and(|n| *n > 0),
        "{per_group:?}"
    );
    // Splitting the same group again takes the upper half of what it has left.
    node.shutdown().await;
    drop(node);

    // After a restart the new group opens from the slot map with the same state.
    let node = open(dir.path(), 2, Arc::default(), tuning()).await;
    assert_eq!(
        node.shard_groups(),
        vec![GroupId(1), GroupId(2), GroupId(3)]
    );
    assert_eq!(check_placement(&node, &ids), per_group);
    let moved = ids
        .iter()
        .find(|id| moving.contains(slot_of("default", id)))
        .expect("a moved workflow");
    // A moved workflow ID takes a new run, in its new group.
    let mut again = start(moved);
    if let ShardCommandKind::StartWorkflow { run_id, request } = &mut again {
        *run_id = "run-again".into();
        request.request_id = "req-again".into();
    }
    let reply = node
        .propose(node.group_of("default", moved), again)
        .await
        .expect("committed");
    assert_eq!(
        reply,
        Ok(ShardReply::WorkflowStarted {
            run_id: "run-again".into(),
            started: true
        })
    );
    let second = ExecutionKey {
        run_id: "run-again".into(),
        ..key(moved)
    };
    assert_eq!(
        node.read_shard(GroupId(3), |s| s.execution(&second).is_some()),
        Some(true)
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_interrupted_after_split_out_is_finished_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(dir.path(), 1, Arc::default(), tuning()).await;
    let ids: Vec<String> = (0..40).map(|i| format!("wf-{i}")).collect();
    for id in &ids {
        let reply = node
            .propose(node.group_of("default", id), start(id))
            .await
            .expect("committed");
        assert!(matches!(reply, Ok(ShardReply::WorkflowStarted { .. })));
    }
    let slots = SlotRange {
        start: 2048,
        end: 4096,
    };
    // Steps 1 and 2 of the split, then a "crash" before the slot map changes.
    let split = match node
        .propose_meta(MetaCommand::BeginSplit {
            source: GroupId(1),
            slots,
        })
        .await
        .expect("committed")
    {
        Ok(MetaReply::SplitBegun { split, .. }) => split,
        other => panic!("{other:?}"),
    };
    let out = node
        .propose(
            GroupId(1),
            ShardCommandKind::SplitOut {
                slots,
                new_group: split.new_group,
            },
        )
        .await
        .expect("committed");
    assert!(
        matches!(out, Ok(ShardReply::SplitOut { already: false, .. })),
        "{out:?}"
    );
    // Before the slot map changes, requests already reach the moved workflows.
    let moved: Vec<&String> = ids
        .iter()
        .filter(|id| slots.contains(slot_of("default", id)))
        .collect();
    assert!(!moved.is_empty());
    for id in &moved {
        assert_eq!(node.group_of("default", id), split.new_group);
        let reply = node
            .propose(GroupId(1), signal(id))
            .await
            .expect("committed");
        assert_eq!(reply, Ok(ShardReply::Done), "a SlotMoved reply is followed");
    }
    node.shutdown().await;
    drop(node);

    let node = open(dir.path(), 1, Arc::default(), tuning()).await;
    assert!(
        node.read_meta(|m| m.splits.is_empty()),
        "the split finished"
    );
    let map = node.read_meta(|m| m.slot_map.clone()).expect("slot map");
    assert_eq!(map.ranges_of(split.new_group), vec![slots]);
    for id in &ids {
        let owner = map.group_of(slot_of("default", id)).expect("mapped");
        let history = node.read_history(owner, &key(id), 1, 100).expect("history");
        assert_eq!(
            history.first().map(|e| e.event_type),
            Some(EventType::WorkflowExecutionStarted as i32),
            "{id}"
        );
        let signalled = has(&history, EventType::WorkflowExecutionSignaled);
        assert_eq!(signalled, moved.contains(&id), "{id}");
    }
    node.shutdown().await;
}
