//! Workflow commands through MultiRaft with the real engine: start round trip, restart, group
//! commit across groups, and the timer driver (also after a leader's clock skew).

mod common;

use common::{Recorder, SkewedClock, open, tuning};
use perdura_engine::{ExecutionKey, GroupId, Notice, ShardCommandKind, ShardReply};
use perdura_raft::{Clock, RaftTuning, SystemClock};
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::enums::v1::{EventType, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;

fn start(workflow_id: &str, run_timeout_ms: Option<i64>) -> ShardCommandKind {
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
        identity: "test".into(),
        request_id: format!("req-{workflow_id}"),
        workflow_run_timeout: run_timeout_ms.map(|ms| prost_wkt_types::Duration {
            seconds: ms / 1000,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        }),
        ..Default::default()
    };
    ShardCommandKind::StartWorkflow {
        request,
        run_id: format!("run-{workflow_id}"),
    }
}

fn key(workflow_id: &str) -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id: format!("run-{workflow_id}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_workflow_round_trips_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let observer = Arc::new(Recorder::default());
    let node = open(dir.path(), 4, observer.clone(), tuning()).await;
    let group = node
        .group_of("default", "wf-1")
        .expect("routed by the slot map");
    let reply = node
        .propose(group, start("wf-1", None))
        .await
        .expect("committed");
    assert_eq!(
        reply,
        Ok(ShardReply::WorkflowStarted {
            run_id: "run-wf-1".into(),
            started: true
        })
    );

    let history = node
        .read_history(group, &key("wf-1"), 1, 100)
        .expect("history");
    assert!(!history.is_empty());
    assert_eq!(
        history[0].event_type,
        EventType::WorkflowExecutionStarted as i32
    );
    let ids: Vec<i64> = history.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (1..=history.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        node.read_history(group, &key("wf-1"), 2, 1)
            .expect("page")
            .len(),
        1
    );
    let next_event_id = node
        .read_shard(group, |s| {
            s.execution(&key("wf-1")).map(|m| m.next_event_id)
        })
        .flatten()
        .expect("execution in state");
    assert_eq!(next_event_id, history.len() as i64 + 1);
    let pending = node
        .read_shard(group, |s| s.pending_tasks())
        .expect("group");
    assert_eq!(pending.len(), 1);
    let notices = observer.notices.lock().expect("lock").clone();
    assert!(
        notices.contains(&(group, Notice::TaskReady(pending[0].clone()))),
        "{notices:?}"
    );
    assert!(notices.contains(&(group, Notice::HistoryAppended(key("wf-1")))));
    node.shutdown().await;
    drop(node);

    let node = open(dir.path(), 4, Arc::default(), tuning()).await;
    let restored = node
        .read_history(group, &key("wf-1"), 1, 100)
        .expect("history");
    assert_eq!(restored, history);
    assert_eq!(
        node.read_shard(group, |s| s.pending_tasks())
            .expect("group"),
        pending
    );
    // A retried start (same request id, fresh run id) finds the restored run.
    let mut retry = start("wf-1", None);
    if let ShardCommandKind::StartWorkflow { run_id, .. } = &mut retry {
        *run_id = "run-fresh".into();
    }
    let again = node.propose(group, retry).await.expect("committed");
    let run_id = match again {
        Ok(ShardReply::WorkflowStarted { run_id, .. }) => run_id,
        other => panic!("unexpected reply {other:?}"),
    };
    assert_eq!(run_id, "run-wf-1");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_across_groups_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(dir.path(), 4, Arc::default(), tuning()).await;
    let before = node.log_writer_counts();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("c-{i}");
            let group = node
                .group_of("default", &id)
                .expect("routed by the slot map");
            (group, node.propose(group, start(&id, None)).await)
        }));
    }
    let mut groups = std::collections::BTreeSet::new();
    for task in tasks {
        let (group, reply) = task.await.expect("task");
        assert!(
            matches!(
                reply,
                Ok(Ok(ShardReply::WorkflowStarted { started: true, .. }))
            ),
            "{reply:?}"
        );
        groups.insert(group);
    }
    assert_eq!(groups.len(), 4, "the workflows spread over every group");
    let after = node.log_writer_counts();
    let (entries, fsyncs) = (after.entries - before.entries, after.fsyncs - before.fsyncs);
    assert!(
        entries >= 200 && fsyncs < entries,
        "{fsyncs} fsyncs for {entries} entries"
    );
    assert!(after.max_entries_per_fsync > 1, "{after:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_driver_fires_a_run_timeout_after_it_is_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(dir.path(), 2, Arc::default(), tuning()).await;
    let group = node
        .group_of("default", "short")
        .expect("routed by the slot map");
    node.propose(group, start("short", Some(1_000)))
        .await
        .expect("committed")
        .expect("started");
    let (started_ms, due) = node
        .read_shard(group, |s| {
            let ms = s.execution(&key("short")).expect("execution");
            (ms.start_time_ms, s.next_timer_ms())
        })
        .expect("group");
    let due = due.expect("a timer is armed");
    assert!(due <= started_ms + 1_000);

    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        let state = node
            .read_shard(group, |s| {
                s.execution(&key("short"))
                    .map(|m| (m.status, m.close_time_ms))
            })
            .flatten()
            .expect("execution");
        if state.0 != WorkflowExecutionStatus::Running as i32 {
            break state;
        }
        assert!(Instant::now() < deadline, "the run timeout never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(closed.0, WorkflowExecutionStatus::TimedOut as i32);
    assert!(
        closed.1 >= started_ms + 1_000,
        "closed at {} before the run timeout",
        closed.1
    );
    node.shutdown().await;
}

/// Regression (chaos runs n3-s105, n5-s201, `skew` nemesis): a leader whose clock ran 60 s
/// ahead stamped a command, which moved the group's time 60 s ahead for good. After its clock
/// was healed every stamp was clamped to that time and the timer driver compared due times with
/// the real wall clock, so a 1 s timer armed after the heal fired 61 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_clock_skewed_forward_then_healed_does_not_stall_the_groups_timers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(SkewedClock::default());
    let tuning = RaftTuning {
        clock: clock.clone(),
        ..tuning()
    };
    let node = open(dir.path(), 1, Arc::default(), tuning).await;
    let group = node
        .group_of("default", "skewed")
        .expect("routed by the slot map");

    clock.set_offset_ms(60_000);
    node.propose(group, start("skewed", None))
        .await
        .expect("committed")
        .expect("started");
    let group_ms = node.read_shard(group, |s| s.clock_ms()).expect("group");
    assert!(
        group_ms >= SystemClock.now_ms() + 59_000,
        "the skewed stamp moved group time ahead"
    );

    clock.set_offset_ms(0);
    let armed = Instant::now();
    node.propose(group, start("short", Some(1_000)))
        .await
        .expect("committed")
        .expect("started");
    let started_ms = node
        .read_shard(group, |s| {
            s.execution(&key("short")).map(|m| m.start_time_ms)
        })
        .flatten()
        .expect("execution");
    let deadline = armed + Duration::from_secs(10);
    let closed_ms = loop {
        let (status, close_ms) = node
            .read_shard(group, |s| {
                s.execution(&key("short"))
                    .map(|m| (m.status, m.close_time_ms))
            })
            .flatten()
            .expect("execution");
        if status != WorkflowExecutionStatus::Running as i32 {
            assert_eq!(status, WorkflowExecutionStatus::TimedOut as i32);
            break close_ms;
        }
        assert!(
            Instant::now() < deadline,
            "a 1 s run timeout armed after the heal has not fired after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Never early, by group time or by the real time that passed since it was armed.
    assert!(closed_ms >= started_ms + 1_000, "closed at {closed_ms}");
    assert!(armed.elapsed() >= Duration::from_secs(1), "fired early");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_timers_on_an_idle_group_fires_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(dir.path(), 1, Arc::default(), tuning()).await;
    let fired = node
        .propose(GroupId(1), ShardCommandKind::FireTimers)
        .await
        .expect("committed");
    assert!(
        matches!(fired, Ok(ShardReply::TimersFired { .. })),
        "{fired:?}"
    );
    node.shutdown().await;
}

/// Regression: the leadership watcher reported a loss and a regain of leadership around every
/// write (between an entry's commit and its apply the "ready leader" check is false), which
/// restarted the leader's drivers, rebuilt its queues and hid closes from the leader-only
/// workflow counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_do_not_flap_leadership() {
    let dir = tempfile::tempdir().expect("tempdir");
    let observer = Arc::new(Recorder::default());
    let node = open(dir.path(), 2, observer.clone(), tuning()).await;
    let mut reported_at_start = observer.leadership.lock().expect("lock").clone();
    reported_at_start.sort();
    assert_eq!(
        reported_at_start,
        [(GroupId(1), true), (GroupId(2), true)],
        "open reports each group's leadership once"
    );
    for i in 0..50 {
        let id = format!("flap-{i}");
        let group = node
            .group_of("default", &id)
            .expect("routed by the slot map");
        node.propose(group, start(&id, None))
            .await
            .expect("committed")
            .expect("started");
    }
    // Give the watcher time to observe every commit/apply pair.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut reported = observer.leadership.lock().expect("lock").clone();
    reported.sort();
    assert_eq!(
        reported, reported_at_start,
        "no leadership change after start: {reported:?}"
    );
    node.shutdown().await;
}
