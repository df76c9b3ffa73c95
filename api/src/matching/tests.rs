use super::*;
use perdura_engine::{ExecutionKey, TaskKind};

fn task(id: i64) -> PendingTask {
    PendingTask {
        kind: TaskKind::Activity,
        namespace: "default".into(),
        task_queue: "tq".into(),
        execution: ExecutionKey {
            namespace: "default".into(),
            workflow_id: "wf".into(),
            run_id: "r".into(),
        },
        scheduled_event_id: id,
    }
}

fn key() -> QueueKey {
    QueuedTask::from(task(0)).queue_key()
}

fn id(lease: &TaskLease) -> i64 {
    match lease.task() {
        QueuedTask::Task(t) => t.scheduled_event_id,
        QueuedTask::Query(q) => q.id.number,
    }
}

async fn poll(matching: &Arc<Matching>) -> Option<TaskLease> {
    matching.next_task(key(), Duration::from_millis(10)).await
}

#[tokio::test]
async fn queued_task_goes_to_next_poller_once() {
    let matching = Matching::new();
    matching.offer(task(5));
    matching.offer(task(5));
    assert_eq!(matching.backlog(&key()), 1);
    let lease = matching
        .next_task(key(), Duration::from_millis(10))
        .await
        .expect("task");
    assert_eq!(id(&lease), 5);
    lease.consume();
    assert!(
        matching
            .next_task(key(), Duration::from_millis(10))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn waiting_poller_receives_offered_task() {
    let matching = Matching::new();
    let poll = tokio::spawn({
        let matching = Arc::clone(&matching);
        async move {
            matching
                .next_task(key(), Duration::from_secs(5))
                .await
                .map(|l| id(&l))
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    matching.offer(task(7));
    assert_eq!(poll.await.expect("join"), Some(7));
}

#[tokio::test]
async fn dropped_lease_returns_task_to_queue() {
    let matching = Matching::new();
    matching.offer(task(1));
    let lease = matching
        .next_task(key(), Duration::from_millis(10))
        .await
        .expect("task");
    drop(lease);
    assert_eq!(matching.backlog(&key()), 1);
}

#[tokio::test]
async fn cancelled_poll_does_not_lose_task() {
    let matching = Matching::new();
    let poll = tokio::spawn({
        let matching = Arc::clone(&matching);
        async move {
            matching
                .next_task(key(), Duration::from_secs(30))
                .await
                .map(|l| l.consume())
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    poll.abort();
    let _ = poll.await;
    matching.offer(task(3));
    assert_eq!(
        matching.backlog(&key()),
        1,
        "the aborted poller must not swallow the task"
    );
}

#[tokio::test]
async fn close_ends_waiting_polls() {
    let matching = Matching::new();
    let poll = tokio::spawn({
        let matching = Arc::clone(&matching);
        async move {
            matching
                .next_task(key(), Duration::from_secs(30))
                .await
                .is_none()
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    matching.close();
    assert!(poll.await.expect("join"));
}

#[tokio::test]
async fn a_task_gone_while_queued_is_never_handed_out() {
    let matching = Matching::new();
    matching.offer(task(1));
    matching.offer(task(2));
    matching.remove(&task(1).into());
    assert_eq!(matching.backlog(&key()), 1);
    let lease = poll(&matching).await.expect("task 2");
    assert_eq!(id(&lease), 2);
    lease.consume();
    assert!(poll(&matching).await.is_none());
}

#[tokio::test]
async fn a_lease_given_back_after_its_task_went_elsewhere_is_forgotten() {
    let matching = Matching::new();
    matching.offer(task(1));
    let lease = poll(&matching).await.expect("task");
    // Another node's poller started the task; this poller's proposal failed.
    matching.remove(&task(1).into());
    drop(lease);
    assert_eq!(matching.backlog(&key()), 0);
    assert!(poll(&matching).await.is_none());
}

#[tokio::test]
async fn a_task_ready_again_while_leased_is_queued_once_when_given_back() {
    let matching = Matching::new();
    matching.offer(task(1));
    let lease = poll(&matching).await.expect("task");
    // Started elsewhere, then retried (same identity) before this lease ends.
    matching.remove(&task(1).into());
    matching.offer(task(1));
    matching.offer(task(1));
    assert_eq!(matching.backlog(&key()), 0, "the lease still holds it");
    drop(lease);
    assert_eq!(matching.backlog(&key()), 1);
}

#[tokio::test]
async fn an_offer_while_leased_does_not_duplicate_the_task() {
    let matching = Matching::new();
    matching.offer(task(1));
    let lease = poll(&matching).await.expect("task");
    // A rebuild replays the ready set while the poller's start is in flight.
    matching.offer(task(1));
    assert_eq!(matching.backlog(&key()), 0);
    lease.consume();
    assert!(poll(&matching).await.is_none());
}

#[tokio::test]
async fn a_task_in_flight_to_a_poller_that_gave_up_respects_gone() {
    let matching = Matching::new();
    let (sender, receiver) = oneshot::channel();
    {
        let mut queues = matching.lock();
        let queue = queues.entry(key()).or_default();
        queue.add_poller(sender);
        queue.offer(task(4).into());
        queue.remove(&task(4).into());
    }
    let mut slot = lease::PollerSlot::new(receiver, Arc::clone(&matching));
    drop(slot.give_up());
    assert_eq!(matching.backlog(&key()), 0);
}

#[tokio::test]
async fn resync_drops_the_groups_stale_tasks_and_adds_its_missing_ones() {
    let matching = Matching::new();
    let mut other_group = task(9);
    other_group.execution.workflow_id = "other".into();
    for t in [task(1), task(2), other_group.clone()] {
        matching.offer(t);
    }
    let leased = poll(&matching).await.expect("task 1");
    assert_eq!(id(&leased), 1);
    matching.resync(|t| t.execution.workflow_id == "wf", vec![task(3)]);
    drop(leased); // task 1 is not pending any more: forgotten
    let mut left = Vec::new();
    while let Some(lease) = poll(&matching).await {
        left.push(id(&lease));
        lease.consume();
    }
    left.sort();
    assert_eq!(left, vec![3, 9]);
}
