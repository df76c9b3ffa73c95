//! The relay across three in-process nodes: a query held by one node is claimed by exactly
//! one poller of any node, answered through any node, and retired everywhere.

use super::*;
use crate::matching::{Matching, QueueKey, QueuedTask};
use perdura_engine::{ExecutionKey, TaskKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;

struct Node {
    matching: Arc<Matching>,
    relay: Arc<QueryRelay>,
}

fn cluster(nodes: u64) -> (Arc<InProcessRelays>, Vec<Node>) {
    let net = InProcessRelays::new();
    let nodes = (1..=nodes)
        .map(|id| {
            let matching = Matching::new();
            let relay = QueryRelay::new(
                QueryRegistry::new(id),
                QueryHints::new(Arc::clone(&matching)),
            );
            net.join(id, &relay);
            Node { matching, relay }
        })
        .collect();
    (net, nodes)
}

fn execution() -> ExecutionKey {
    ExecutionKey {
        namespace: "default".into(),
        workflow_id: "order-1".into(),
        run_id: "run-1".into(),
    }
}

fn query() -> WorkflowQuery {
    WorkflowQuery {
        query_type: "status".into(),
        ..Default::default()
    }
}

fn queue() -> QueueKey {
    QueueKey {
        namespace: "default".into(),
        task_queue: "orders".into(),
        kind: TaskKind::Workflow,
    }
}

fn direct() -> Route {
    Route::Direct {
        task_queue: "orders".into(),
    }
}

fn answered(text: &str) -> QueryAnswer {
    QueryAnswer::Answered(Some(Payloads {
        payloads: vec![Payload {
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }],
    }))
}

/// Lets the spawned broadcasts run.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// What a poller of `node` does with a direct query task: take it from the queue, claim it.
async fn poll_direct(node: &Node) -> Option<(Claimable, WorkflowQuery)> {
    let lease = node
        .matching
        .next_task(queue(), Duration::from_millis(20))
        .await?;
    let QueuedTask::Query(task) = lease.task().clone() else {
        panic!("not a query task")
    };
    lease.consume();
    let hint = node.relay.hints().direct(task.id)?;
    let query = node.relay.claim(&hint, ClaimKind::Direct).await?;
    Some((hint, query))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_query_goes_to_exactly_one_poller_of_all_nodes_and_its_answer_home() {
    let (_net, nodes) = cluster(3);
    let origin = &nodes[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ticket = origin
        .relay
        .registry()
        .register(execution(), query(), deadline);
    origin.relay.route(ticket.id, direct());
    settle().await;
    for node in &nodes {
        assert_eq!(
            node.matching.backlog(&queue()),
            1,
            "every node queues the task"
        );
    }

    // Pollers of all three nodes race for it, concurrently.
    let mut polls = Vec::new();
    for node in &nodes {
        let (matching, relay) = (Arc::clone(&node.matching), Arc::clone(&node.relay));
        polls.push(tokio::spawn(async move {
            poll_direct(&Node { matching, relay }).await
        }));
    }
    let mut winners = Vec::new();
    for (index, poll) in polls.into_iter().enumerate() {
        if let Some(won) = poll.await.expect("join") {
            winners.push((index, won));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one poller gets the query");
    let (winner, (hint, got)) = winners.remove(0);
    assert_eq!(got, query());
    settle().await;
    for node in &nodes {
        assert_eq!(node.matching.backlog(&queue()), 0);
        assert_eq!(node.relay.hints().live(), 0, "withdrawn everywhere");
    }

    // The worker answers through yet another node; the answer reaches the origin once.
    let via = &nodes[(winner + 1) % 3];
    let delivered = via
        .relay
        .answer(
            hint.id,
            &execution(),
            ClaimKind::Direct,
            answered("shipped"),
        )
        .await;
    assert_eq!(delivered, Ok(true));
    assert_eq!(ticket.answer.try_recv().ok(), Some(answered("shipped")));
    let again = via
        .relay
        .answer(hint.id, &execution(), ClaimKind::Direct, answered("twice"))
        .await;
    assert_eq!(again, Ok(false));
}

#[tokio::test]
async fn an_attached_query_rides_on_one_workflow_task_and_only_its_answer_counts() {
    let (_net, nodes) = cluster(3);
    let origin = &nodes[2];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ticket = origin
        .relay
        .registry()
        .register(execution(), query(), deadline);
    origin.relay.route(ticket.id, Route::Attach);
    settle().await;

    // Two nodes each start "the next workflow task" (only one can really start, but the
    // relay must not rely on it): one claim wins.
    let on_1 = nodes[0].relay.hints().attachable(&execution());
    let on_2 = nodes[1].relay.hints().attachable(&execution());
    assert_eq!((on_1.len(), on_2.len()), (1, 1));
    let kind = ClaimKind::Attached {
        started_event_id: 7,
    };
    let first = nodes[0].relay.claim(&on_1[0], kind).await;
    let second = nodes[1].relay.claim(&on_2[0], kind).await;
    assert_eq!(first, Some(query()));
    assert_eq!(second, None);

    // An answer from another task of the run is refused; the task's own answer is taken.
    let stale = ClaimKind::Attached {
        started_event_id: 3,
    };
    let id = ticket.id;
    assert_eq!(
        nodes[1]
            .relay
            .answer(id, &execution(), stale, answered("old"))
            .await,
        Ok(false)
    );
    assert_eq!(
        nodes[1]
            .relay
            .answer(id, &execution(), kind, answered("new"))
            .await,
        Ok(true)
    );
    assert_eq!(ticket.answer.try_recv().ok(), Some(answered("new")));
}

#[tokio::test]
async fn a_rerouted_query_is_claimable_again_but_not_under_its_old_routing() {
    let (_net, nodes) = cluster(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ticket = nodes[0]
        .relay
        .registry()
        .register(execution(), query(), deadline);
    nodes[0].relay.route(ticket.id, Route::Attach);
    settle().await;
    let old = nodes[1].relay.hints().attachable(&execution()).remove(0);
    let kind = ClaimKind::Attached {
        started_event_id: 5,
    };
    assert!(nodes[1].relay.claim(&old, kind).await.is_some());
    // The task ended without an answer: the origin routes the query to a query task.
    nodes[0].relay.route(ticket.id, direct());
    settle().await;
    assert!(
        nodes[1].relay.claim(&old, kind).await.is_none(),
        "old routing"
    );
    let (hint, _) = poll_direct(&nodes[1]).await.expect("the new routing");
    assert_eq!(hint.generation, 2);
}

#[tokio::test]
async fn an_unreachable_origin_retires_the_hint_and_an_abandoned_query_disappears() {
    let (net, nodes) = cluster(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ticket = nodes[0]
        .relay
        .registry()
        .register(execution(), query(), deadline);
    nodes[0].relay.route(ticket.id, direct());
    settle().await;
    net.set_down(1, true);
    assert!(poll_direct(&nodes[1]).await.is_none());
    assert_eq!(nodes[1].relay.hints().live(), 0);
    net.set_down(1, false);

    // The caller gives up: the origin withdraws it from every node.
    let other = nodes[0]
        .relay
        .registry()
        .register(execution(), query(), deadline);
    nodes[0].relay.route(other.id, direct());
    settle().await;
    assert_eq!(nodes[1].matching.backlog(&queue()), 1);
    nodes[0].relay.abandon(other.id);
    drop(other);
    settle().await;
    assert_eq!(nodes[1].matching.backlog(&queue()), 0);
    assert_eq!(
        nodes[0].matching.backlog(&queue()),
        1,
        "only the first query's task is left, on its origin"
    );
    assert_eq!(nodes[0].relay.registry().len(), 1);
}

#[tokio::test]
async fn a_direct_winner_that_cannot_hand_the_task_out_gives_it_back_to_every_node() {
    let (_net, nodes) = cluster(3);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ticket = nodes[0]
        .relay
        .registry()
        .register(execution(), query(), deadline);
    nodes[0].relay.route(ticket.id, direct());
    settle().await;
    let (hint, _) = poll_direct(&nodes[2]).await.expect("claimed");
    nodes[2].relay.unclaim(&hint, "orders".into()).await;
    settle().await;
    for node in &nodes {
        assert_eq!(node.matching.backlog(&queue()), 1);
    }
    let (again, _) = poll_direct(&nodes[1]).await.expect("claimed again");
    assert_eq!(again.generation, hint.generation + 1);
}

/// Found by the gRPC storm (node/tests/grpc_storm): RespondQueryTaskCompleted with a forged
/// token naming a node that is not in the cluster answered UNAVAILABLE ("retry"), which an SDK
/// would retry forever. Nobody waits for that answer: it is not delivered (NOT_FOUND).
#[tokio::test]
async fn an_answer_for_a_node_outside_the_cluster_is_not_delivered_and_not_retried() {
    let (_net, nodes) = cluster(2);
    for origin in [3, 99, u64::MAX] {
        let id = QueryId { origin, number: 1 };
        let delivered = nodes[0]
            .relay
            .answer(id, &execution(), ClaimKind::Direct, answered("forged"))
            .await;
        assert_eq!(delivered, Ok(false), "origin {origin}");
    }
    let single = QueryRelay::new(QueryRegistry::new(1), QueryHints::new(Matching::new()));
    let id = QueryId {
        origin: 7,
        number: -3,
    };
    let delivered = single
        .answer(id, &execution(), ClaimKind::Direct, answered("forged"))
        .await;
    assert_eq!(delivered, Ok(false));
}
