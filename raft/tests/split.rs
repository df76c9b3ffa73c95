//! Online group split of a running node (`docs/design/005-online-group-split.md`): a group is
//! split while a workload of workflows (start, signal, timer, activity, completion — all through
//! `propose`) runs; afterwards every workflow exists exactly once, in the group the slot map
//! names, with a complete history, and every workflow completed. Also: a split interrupted
//! after `SplitOut` is finished when the node restarts.

mod common;

use common::workload::{
    Anomalies, check_placement, has, key, run_state, run_workflow, signal, start,
};
use common::{open, tuning};
use perdura_engine::slots::slot_of;
use perdura_engine::{
    ExecutionKey, GroupId, MetaCommand, MetaReply, ShardCommandKind, ShardReply, SlotRange,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use temporalio_protos::temporal::api::enums::v1::EventType;

const WORKFLOWS: usize = 48;
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
        .filter(|id| {
            node.group_of("default", id)
                .expect("routed by the slot map")
                == GroupId(1)
        })
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
    let mut running_at_split = 0;
    for id in &ids {
        if run_state(&node, id).await.is_some_and(|ms| ms.is_running()) {
            running_at_split += 1;
        }
    }
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
        .propose(
            node.group_of("default", moved)
                .expect("routed by the slot map"),
            again,
        )
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
            .propose(
                node.group_of("default", id)
                    .expect("routed by the slot map"),
                start(id),
            )
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
        assert_eq!(
            node.group_of("default", id)
                .expect("routed by the slot map"),
            split.new_group
        );
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
