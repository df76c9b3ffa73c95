//! Several API "nodes" over one replica: each node has its own observer (queues, query relay)
//! and frontend, and every node gets every apply notice — what a cluster whose nodes all
//! replicate every group looks like to the API layer. Many pollers on all nodes race for the
//! same tasks: each task must go to exactly one poller, appear started once in history, and no
//! node may keep entries of tasks another node's poller took.

mod common;

use common::{
    Deliveries, answer_of, payloads, poll_workflow_request, query_request, start_request, worker,
};
use perdura_api::matching::QueueKey;
use perdura_api::pb::workflowservice::workflow_service_server::WorkflowService;
use perdura_api::query::InProcessRelays;
use perdura_api::{Frontend, NodeObserver};
use perdura_engine::{ExecutionKey, GroupId, Notice, TaskKind};
use perdura_raft::{ApplyObserver, MultiRaft, RaftConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Request;

/// Nodes with pollers; one more node has none (its queues must end empty all the same).
const NODES: usize = 3;
const POLLERS_PER_NODE: usize = 3;
const WORKFLOWS: usize = 24;

/// Hands every notice to every node's observer.
struct FanOut(Vec<Arc<NodeObserver>>);

impl ApplyObserver for FanOut {
    fn on_applied(&self, group: GroupId, notices: &[Notice]) {
        for node in &self.0 {
            node.on_applied(group, notices);
        }
    }

    fn on_leadership(&self, group: GroupId, is_leader: bool) {
        for node in &self.0 {
            node.on_leadership(group, is_leader);
        }
    }

    fn on_snapshot_installed(&self, group: GroupId) {
        for node in &self.0 {
            node.on_snapshot_installed(group);
        }
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    raft: Arc<MultiRaft>,
    observers: Vec<Arc<NodeObserver>>,
    frontends: Vec<Frontend>,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let observers: Vec<Arc<NodeObserver>> = (0..=NODES).map(|_| NodeObserver::new()).collect();
    let fan_out = Arc::new(FanOut(observers.clone()));
    let raft = MultiRaft::open_single_node(RaftConfig::new(1, dir.path()), fan_out)
        .await
        .expect("open");
    let net = InProcessRelays::new();
    for (index, observer) in observers.iter().enumerate() {
        observer.attach(&raft);
        let node_id = index as u64 + 1;
        observer.queries.registry().set_node_id(node_id);
        net.join(node_id, &observer.queries);
    }
    let frontends = observers
        .iter()
        .map(|o| Frontend::new(Arc::clone(&raft), o))
        .collect();
    Cluster {
        _dir: dir,
        raft,
        observers,
        frontends,
    }
}

fn history(cluster: &Cluster, workflow_id: &str) -> Vec<EventType> {
    let group = cluster
        .raft
        .group_of("default", workflow_id)
        .expect("routed by the slot map");
    let run_id = cluster
        .raft
        .read_shard(group, |state| {
            state
                .current_run(&perdura_engine::WorkflowKey {
                    namespace: "default".into(),
                    workflow_id: workflow_id.into(),
                })
                .map(|c| c.run_id.clone())
        })
        .flatten()
        .expect("run");
    let key = ExecutionKey {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        run_id,
    };
    cluster
        .raft
        .read_history(group, &key, 1, 1000)
        .expect("history")
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pollers_of_every_node_race_and_each_task_is_delivered_once() {
    let cluster = cluster().await;
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for frontend in &cluster.frontends[..NODES] {
        for _ in 0..POLLERS_PER_NODE {
            workers.push(tokio::spawn(worker(
                frontend.clone(),
                Arc::clone(&deliveries),
                stop_rx.clone(),
            )));
        }
    }
    let ids: Vec<String> = (0..WORKFLOWS).map(|i| format!("order-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        // Clients talk to every node.
        cluster.frontends[i % NODES]
            .start_workflow_execution(Request::new(start_request(id)))
            .await
            .expect("start");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = ids
            .iter()
            .all(|id| history(&cluster, id).last() == Some(&EventType::WorkflowExecutionCompleted));
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "workflows did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send_replace(true);
    for worker in workers {
        worker.await.expect("worker");
    }

    let deliveries = std::mem::take(&mut *deliveries.lock().unwrap());
    for id in &ids {
        assert_eq!(
            deliveries.workflow_tasks.get(id),
            Some(&2),
            "{id}: workflow tasks"
        );
        assert_eq!(
            deliveries.activity_tasks.get(id),
            Some(&1),
            "{id}: activity tasks"
        );
        let events = history(&cluster, id);
        let started = |t: EventType| events.iter().filter(|e| **e == t).count();
        assert_eq!(
            started(EventType::WorkflowTaskStarted),
            2,
            "{id}: {events:?}"
        );
        assert_eq!(
            started(EventType::ActivityTaskStarted),
            1,
            "{id}: {events:?}"
        );
    }
    // No node kept entries of tasks that another node's poller took — not even the node
    // without pollers, whose queues nobody drained.
    for observer in &cluster.observers {
        for kind in [TaskKind::Workflow, TaskKind::Activity] {
            let key = QueueKey {
                namespace: "default".into(),
                task_queue: "orders".into(),
                kind,
            };
            assert_eq!(observer.matching.backlog(&key), 0, "{kind:?} backlog");
        }
    }
    cluster.raft.shutdown().await;
}

fn poll_request() -> Request<ws::PollWorkflowTaskQueueRequest> {
    poll_workflow_request(Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_sent_to_one_node_is_answered_by_a_worker_polling_another() {
    let cluster = cluster().await;
    let [client, worker, third, idle] = [0, 1, 2, 3].map(|i| cluster.frontends[i].clone());
    client
        .start_workflow_execution(Request::new(start_request("q-1")))
        .await
        .expect("start");
    let first = worker
        .poll_workflow_task_queue(poll_request())
        .await
        .expect("poll")
        .into_inner();
    worker
        .respond_workflow_task_completed(Request::new(ws::RespondWorkflowTaskCompletedRequest {
            task_token: first.task_token,
            identity: "worker".into(),
            ..Default::default()
        }))
        .await
        .expect("complete");

    // Direct: the run is idle, so the query becomes a query task — polled on another node,
    // answered through a third one.
    let query = tokio::spawn({
        let client = client.clone();
        async move { client.query_workflow(query_request("q-1")).await }
    });
    let task = worker
        .poll_workflow_task_queue(poll_request())
        .await
        .expect("poll")
        .into_inner();
    assert_eq!(
        task.query.as_ref().map(|q| q.query_type.as_str()),
        Some("status"),
        "a direct query task"
    );
    third
        .respond_query_task_completed(Request::new(ws::RespondQueryTaskCompletedRequest {
            task_token: task.task_token,
            completed_type: temporalio_protos::temporal::api::enums::v1::QueryResultType::Answered
                as i32,
            query_result: Some(payloads("direct answer")),
            ..Default::default()
        }))
        .await
        .expect("answer");
    let response = query.await.expect("join").expect("query").into_inner();
    assert_eq!(answer_of(response), "direct answer");

    // Attached: a signal schedules a workflow task; the query rides on it.
    third
        .signal_workflow_execution(Request::new(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(
                temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                    workflow_id: "q-1".into(),
                    run_id: String::new(),
                },
            ),
            signal_name: "poke".into(),
            request_id: "poke-1".into(),
            ..Default::default()
        }))
        .await
        .expect("signal");
    let query = tokio::spawn({
        let client = client.clone();
        async move { client.query_workflow(query_request("q-1")).await }
    });
    // Give the announcement time to reach every node before the task starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let task = worker
        .poll_workflow_task_queue(poll_request())
        .await
        .expect("poll")
        .into_inner();
    assert!(task.query.is_none());
    assert_eq!(
        task.queries.len(),
        1,
        "the query rides on the workflow task"
    );
    let (key, attached) = task.queries.into_iter().next().expect("one");
    assert_eq!(attached.query_type, "status");
    let result = temporalio_protos::temporal::api::query::v1::WorkflowQueryResult {
        result_type: temporalio_protos::temporal::api::enums::v1::QueryResultType::Answered as i32,
        answer: Some(payloads("attached answer")),
        ..Default::default()
    };
    worker
        .respond_workflow_task_completed(Request::new(ws::RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            identity: "worker".into(),
            query_results: [(key, result)].into_iter().collect(),
            ..Default::default()
        }))
        .await
        .expect("complete");
    let response = query.await.expect("join").expect("query").into_inner();
    assert_eq!(answer_of(response), "attached answer");

    // Every node dropped its hints (withdrawals are sent without waiting).
    tokio::time::sleep(Duration::from_millis(100)).await;
    for observer in &cluster.observers {
        assert_eq!(observer.queries.hints().live(), 0);
        assert!(observer.queries.registry().is_empty());
    }
    drop(idle);
    cluster.raft.shutdown().await;
}
