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
    QueueKey::of(&task(0))
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
    assert_eq!(lease.task().scheduled_event_id, 5);
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
                .map(|l| l.task().scheduled_event_id)
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
