//! Sticky execution: `sticky_attributes` on completions, dispatch to the sticky queue, the
//! sticky schedule-to-start fallback, and ShutdownWorker.

use super::*;
use crate::shard::{Notice, PendingTask};
use crate::token::TaskKind;
use temporalio_protos::temporal::api::{
    enums::v1::{TaskQueueKind, TimeoutType},
    taskqueue::v1::StickyExecutionAttributes,
};

const STICKY: &str = "host-1-sticky";

fn complete_sticky(
    h: &mut Harness,
    token: &TaskToken,
    commands: Vec<Command>,
    queue: &str,
    timeout_ms: i64,
) -> Applied {
    let request = RespondWorkflowTaskCompletedRequest {
        commands,
        identity: "worker-1".into(),
        sticky_attributes: Some(StickyExecutionAttributes {
            worker_task_queue: Some(TaskQueue {
                name: queue.into(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: "orders".into(),
            }),
            schedule_to_start_timeout: Some(duration_ms(timeout_ms)),
        }),
        ..Default::default()
    };
    h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: token.clone(),
        request,
    })
}

/// A run whose first task completed sticky with a 1 s timer; the timer fired, so the second
/// task (WorkflowTaskScheduled 7) waits on the sticky queue.
fn sticky_run(h: &mut Harness, workflow_id: &str, queue: &str) -> ExecutionKey {
    let k = h.start(workflow_id);
    let first = h.poll_workflow_task(&k);
    let applied = complete_sticky(h, &first.token, vec![start_timer("t", 1_000)], queue, 5_000);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    h.advance(1_000);
    h.fire_timers();
    k
}

fn workflow_tasks(h: &Harness) -> Vec<PendingTask> {
    h.state
        .pending_tasks()
        .into_iter()
        .filter(|t| t.kind == TaskKind::Workflow)
        .collect()
}

fn scheduled_queue(h: &Harness, k: &ExecutionKey, event_id: i64) -> TaskQueue {
    let Attributes::WorkflowTaskScheduledEventAttributes(s) = attrs(h.event(k, event_id)) else {
        panic!(
            "event {event_id} is not WorkflowTaskScheduled: {:?}",
            h.event_types(k)
        )
    };
    s.task_queue.clone().expect("a task queue")
}

#[test]
fn the_next_task_goes_to_the_sticky_queue_and_names_it() {
    let mut h = Harness::new();
    let k = sticky_run(&mut h, "wf", STICKY);
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::TimerStarted,
            EventType::TimerFired,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let queue = scheduled_queue(&h, &k, 7);
    assert_eq!(
        (queue.name.as_str(), queue.kind, queue.normal_name.as_str()),
        (STICKY, TaskQueueKind::Sticky as i32, "orders")
    );
    let tasks = workflow_tasks(&h);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_queue, STICKY);
    let info = h.poll_workflow_task(&k);
    assert_eq!(info.sticky_task_queue, STICKY);
    assert_eq!(info.task_queue, "orders", "the run's normal queue");
    assert_eq!(
        (info.previous_started_event_id, info.started_event_id),
        (3, 8),
        "a sticky poll serves events 4..=8"
    );
    // Started in time: the schedule-to-start timeout (5 s) is gone.
    h.advance(6_000);
    assert_eq!(h.fire_timers(), 0);
}

#[test]
fn an_unpolled_sticky_task_times_out_to_the_normal_queue_with_the_same_attempt() {
    let mut h = Harness::new();
    let k = sticky_run(&mut h, "wf", STICKY);
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 1_000 + 5_000));
    h.advance(4_999);
    assert_eq!(h.fire_timers(), 0);
    h.advance(1);
    let applied = h.apply(ShardCommandKind::FireTimers);
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::TimersFired { fired: 1 }))
    );
    assert_eq!(
        h.event_types(&k)[7..],
        [
            EventType::WorkflowTaskTimedOut,
            EventType::WorkflowTaskScheduled
        ]
    );
    let Attributes::WorkflowTaskTimedOutEventAttributes(t) = attrs(h.event(&k, 8)) else {
        panic!()
    };
    assert_eq!(
        (t.scheduled_event_id, t.started_event_id, t.timeout_type),
        (7, 0, TimeoutType::ScheduleToStart as i32)
    );
    let queue = scheduled_queue(&h, &k, 9);
    assert_eq!(
        (queue.name.as_str(), queue.kind),
        ("orders", TaskQueueKind::Normal as i32)
    );
    assert!(applied.notices.iter().any(
        |n| matches!(n, Notice::TaskReady(t) if t.task_queue == "orders" && t.scheduled_event_id == 9)
    ));
    let ms = h.state.execution(&k).unwrap();
    assert_eq!(ms.sticky_task_queue, "", "stickiness ends");
    let info = h.poll_workflow_task(&k);
    assert_eq!((info.attempt, info.sticky_task_queue.as_str()), (1, ""));
}

#[test]
fn a_completion_without_sticky_attributes_ends_stickiness() {
    let mut h = Harness::new();
    let k = sticky_run(&mut h, "wf", STICKY);
    let info = h.poll_workflow_task(&k);
    h.complete_workflow_task(&info.token, vec![start_timer("t2", 1_000)]);
    h.advance(1_000);
    h.fire_timers();
    assert_eq!(workflow_tasks(&h)[0].task_queue, "orders");
    assert_eq!(
        scheduled_queue(&h, &k, 12).kind,
        TaskQueueKind::Normal as i32
    );
}

#[test]
fn failed_and_timed_out_tasks_end_stickiness() {
    let mut h = Harness::new();
    // A failure: the retry goes to the normal queue.
    let k = sticky_run(&mut h, "wf-1", STICKY);
    let info = h.poll_workflow_task(&k);
    h.fail_workflow_task(&info.token);
    assert_eq!(h.state.execution(&k).unwrap().sticky_task_queue, "");
    assert_eq!(workflow_tasks(&h)[0].task_queue, "orders");
    // A start-to-close timeout: likewise.
    let k2 = sticky_run(&mut h, "wf-2", "host-2-sticky");
    h.poll_workflow_task(&k2);
    h.advance(10_000);
    h.fire_timers();
    let ms = h.state.execution(&k2).unwrap();
    assert_eq!(ms.sticky_task_queue, "");
    assert!(!ms.workflow_task.as_ref().unwrap().is_sticky());
}

#[test]
fn a_task_scheduled_while_sticky_work_is_buffered_goes_sticky_too() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let first = h.poll_workflow_task(&k);
    // An activity completes while the first task runs? Use a forced new task instead: the
    // local-activity heartbeat path.
    let request = RespondWorkflowTaskCompletedRequest {
        identity: "worker-1".into(),
        force_create_new_workflow_task: true,
        sticky_attributes: Some(StickyExecutionAttributes {
            worker_task_queue: Some(TaskQueue {
                name: STICKY.into(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: "orders".into(),
            }),
            schedule_to_start_timeout: None,
        }),
        ..Default::default()
    };
    h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: first.token,
        request,
    });
    assert_eq!(scheduled_queue(&h, &k, 5).name, STICKY);
    let wft = h
        .state
        .execution(&k)
        .unwrap()
        .workflow_task
        .clone()
        .unwrap();
    assert_eq!(
        wft.sticky_schedule_to_start_timeout_ms, 10_000,
        "the default timeout"
    );
}

#[test]
fn shutdown_worker_moves_its_runs_to_the_normal_queue_at_once() {
    let mut h = Harness::new();
    let mine = sticky_run(&mut h, "wf-1", STICKY);
    let other = sticky_run(&mut h, "wf-2", "host-2-sticky");
    let applied = h.apply(ShardCommandKind::ShutdownWorker {
        namespace: "other-namespace".into(),
        sticky_task_queue: STICKY.into(),
    });
    assert!(applied.changes.is_empty(), "another namespace's queue");
    let applied = h.apply(ShardCommandKind::ShutdownWorker {
        namespace: "default".into(),
        sticky_task_queue: STICKY.into(),
    });
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert!(applied.changes.events.is_empty(), "no event");
    assert!(applied.notices.iter().any(
        |n| matches!(n, Notice::TaskReady(t) if t.execution == mine && t.task_queue == "orders")
    ));
    let queues: BTreeMap<String, String> = workflow_tasks(&h)
        .into_iter()
        .map(|t| (t.execution.workflow_id, t.task_queue))
        .collect();
    assert_eq!(queues["wf-1"], "orders");
    assert_eq!(queues["wf-2"], "host-2-sticky");
    assert_eq!(h.state.execution(&mine).unwrap().sticky_task_queue, "");
    // No schedule-to-start timeout for the moved task; the other run's still fires.
    h.advance(5_000);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(
        h.event_types(&other).last(),
        Some(&EventType::WorkflowTaskScheduled)
    );
    assert_eq!(h.event_types(&mine).len(), 7);
    let info = h.poll_workflow_task(&mine);
    assert_eq!(info.sticky_task_queue, "", "full history");
}

fn complete_returning_new_task(
    h: &mut Harness,
    token: &TaskToken,
    commands: Vec<Command>,
    force: bool,
) -> Applied {
    let request = RespondWorkflowTaskCompletedRequest {
        commands,
        identity: "worker-1".into(),
        force_create_new_workflow_task: force,
        return_new_workflow_task: true,
        sticky_attributes: Some(StickyExecutionAttributes {
            worker_task_queue: Some(TaskQueue {
                name: STICKY.into(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: "orders".into(),
            }),
            schedule_to_start_timeout: Some(duration_ms(5_000)),
        }),
        ..Default::default()
    };
    h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token: token.clone(),
        request,
    })
}

#[test]
fn a_new_task_is_returned_inline_already_started() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let first = h.poll_workflow_task(&k);
    // A local-activity heartbeat: a new task at once, started for the same worker.
    let applied = complete_returning_new_task(&mut h, &first.token, vec![record_marker("m")], true);
    let Some(Ok(ShardReply::NewWorkflowTask(info))) = applied.reply else {
        panic!("no inline task: {:?}", applied.reply)
    };
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::MarkerRecorded,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
        ]
    );
    assert_eq!(
        (
            info.scheduled_event_id,
            info.started_event_id,
            info.previous_started_event_id
        ),
        (6, 7, 3)
    );
    assert_eq!(info.sticky_task_queue, STICKY, "served as a sticky task");
    let Attributes::WorkflowTaskStartedEventAttributes(s) = attrs(h.event(&k, 7)) else {
        panic!()
    };
    assert_eq!(
        (s.identity.as_str(), s.request_id.as_str()),
        ("worker-1", "request-from-RespondWorkflowTaskCompleted")
    );
    assert!(workflow_tasks(&h).is_empty(), "nothing left to poll");
    assert_eq!(
        h.state.next_timer_ms(),
        Some(T0 + 10_000),
        "its start-to-close timeout runs"
    );
    // Without a new task there is nothing to return; the inline task's token works.
    let applied = complete_returning_new_task(&mut h, &info.token, vec![], false);
    assert_eq!(applied.reply, Some(Ok(ShardReply::Done)));
    assert_eq!(
        h.event_types(&k).last(),
        Some(&EventType::WorkflowTaskCompleted)
    );
}
