//! The query registry: workflow queries (QueryWorkflow) waiting for a worker's answer.
//!
//! Queries are read-only and never written to history, so they live only in the memory of the
//! node that received the QueryWorkflow call (TEMPORAL-WIRE.md §1.8). Losing one — a restart, a
//! client that gave up — loses nothing durable: the client sees an error and may retry.
//!
//! A query takes one of two paths:
//! * **attached**: while a workflow task of its run is scheduled or started, the query waits
//!   ([`Stage::Buffered`]) and rides on the next workflow task that starts, in the poll
//!   response's `queries` map ([`Stage::Attached`]); the worker answers it in
//!   RespondWorkflowTaskCompleted `query_results`.
//! * **direct**: when the run is closed or has no workflow task pending, the query is offered
//!   to the run's task queue as a task of its own ([`Stage::Direct`]); a workflow-task poller
//!   takes it ([`Stage::Dispatched`]) and the worker answers with RespondQueryTaskCompleted.
//!
//! An attached query whose task ended without an answer goes back to waiting, or direct.

use perdura_engine::ExecutionKey;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use temporalio_protos::temporal::api::{
    common::v1::Payloads,
    enums::v1::QueryResultType,
    failure::v1::Failure,
    query::v1::{WorkflowQuery, WorkflowQueryResult},
};
use tokio::sync::oneshot;

/// Where a registered query stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waits for the next workflow task of its run.
    Buffered,
    /// Sent on the workflow task whose WorkflowTaskStarted event has this ID.
    Attached { started_event_id: i64 },
    /// Offered to the run's task queue as a query task, not yet taken by a poller.
    Direct,
    /// Handed to a poller as a query task; waits for RespondQueryTaskCompleted.
    Dispatched,
}

/// A worker's answer to a query.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryAnswer {
    Answered(Option<Payloads>),
    Failed {
        message: String,
        failure: Option<Box<Failure>>,
    },
}

impl QueryAnswer {
    /// The answer carried by a `query_results` entry of a workflow task completion.
    pub fn of_result(result: &WorkflowQueryResult) -> QueryAnswer {
        if result.result_type == QueryResultType::Failed as i32 {
            QueryAnswer::Failed {
                message: result.error_message.clone(),
                failure: result.failure.clone().map(Box::new),
            }
        } else {
            QueryAnswer::Answered(result.answer.clone())
        }
    }
}

struct Entry {
    execution: ExecutionKey,
    query: WorkflowQuery,
    stage: Stage,
    answer: Option<oneshot::Sender<QueryAnswer>>,
}

/// All queries of this node that wait for an answer, by query number.
pub struct QueryRegistry {
    entries: Mutex<BTreeMap<i64, Entry>>,
    next_id: AtomicI64,
}

/// A registered query. Dropping it (the caller stopped waiting) removes the query, so a late
/// answer is refused and a query task still queued is skipped.
pub struct QueryTicket {
    registry: Arc<QueryRegistry>,
    pub id: i64,
    pub answer: oneshot::Receiver<QueryAnswer>,
}

impl Drop for QueryTicket {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl QueryRegistry {
    pub fn new() -> Arc<QueryRegistry> {
        // Query numbers appear in query task tokens: starting from the clock keeps a token of
        // an earlier process from naming a query of this one.
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| i64::try_from(d.as_micros()).unwrap_or(1));
        Arc::new(QueryRegistry {
            entries: Mutex::new(BTreeMap::new()),
            next_id: AtomicI64::new(start),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Entry>> {
        self.entries.lock().expect("query registry lock poisoned")
    }

    pub fn register(
        self: &Arc<Self>,
        execution: ExecutionKey,
        query: WorkflowQuery,
        stage: Stage,
    ) -> QueryTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(
            id,
            Entry {
                execution,
                query,
                stage,
                answer: Some(sender),
            },
        );
        QueryTicket {
            registry: Arc::clone(self),
            id,
            answer: receiver,
        }
    }

    pub fn stage(&self, id: i64) -> Option<Stage> {
        self.lock().get(&id).map(|e| e.stage)
    }

    pub fn set_stage(&self, id: i64, stage: Stage) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.stage = stage;
        }
    }

    /// The buffered queries of `execution`, now attached to the workflow task that started with
    /// `started_event_id`: the poll response's `queries` map.
    pub fn attach(
        &self,
        execution: &ExecutionKey,
        started_event_id: i64,
    ) -> HashMap<String, WorkflowQuery> {
        let mut attached = HashMap::new();
        for (id, entry) in self.lock().iter_mut() {
            if entry.execution == *execution && entry.stage == Stage::Buffered {
                entry.stage = Stage::Attached { started_event_id };
                attached.insert(id.to_string(), entry.query.clone());
            }
        }
        attached
    }

    /// Answers the queries that were attached to the workflow task of `execution` that started
    /// with `started_event_id`, from a completion's `query_results`.
    pub fn answer_attached(
        &self,
        execution: &ExecutionKey,
        started_event_id: i64,
        results: &HashMap<String, WorkflowQueryResult>,
    ) {
        let mut entries = self.lock();
        for (key, result) in results {
            let Ok(id) = key.parse::<i64>() else { continue };
            if let Some(entry) = entries.get_mut(&id)
                && entry.execution == *execution
                && entry.stage == (Stage::Attached { started_event_id })
                && let Some(sender) = entry.answer.take()
            {
                let _ = sender.send(QueryAnswer::of_result(result));
            }
        }
    }

    /// A poller took the query task `id`: the query, if it still waits for direct dispatch.
    pub fn take_direct(&self, id: i64) -> Option<(ExecutionKey, WorkflowQuery)> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&id).filter(|e| e.stage == Stage::Direct)?;
        entry.stage = Stage::Dispatched;
        Some((entry.execution.clone(), entry.query.clone()))
    }

    /// A poll that took the query task `id` could not hand it out: offer it again.
    pub fn untake_direct(&self, id: i64) {
        if let Some(entry) = self.lock().get_mut(&id)
            && entry.stage == Stage::Dispatched
        {
            entry.stage = Stage::Direct;
        }
    }

    /// RespondQueryTaskCompleted: false if the query is unknown (it timed out) or was not
    /// dispatched as a query task of `execution`.
    pub fn answer_direct(&self, id: i64, execution: &ExecutionKey, answer: QueryAnswer) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries
            .get_mut(&id)
            .filter(|e| e.stage == Stage::Dispatched && e.execution == *execution)
        else {
            return false;
        };
        entry
            .answer
            .take()
            .is_some_and(|sender| sender.send(answer).is_ok())
    }

    /// Number of registered queries (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::common::v1::Payload;

    fn key(run: &str) -> ExecutionKey {
        ExecutionKey {
            namespace: "default".into(),
            workflow_id: "w".into(),
            run_id: run.into(),
        }
    }

    fn query(name: &str) -> WorkflowQuery {
        WorkflowQuery {
            query_type: name.into(),
            ..Default::default()
        }
    }

    fn answered(data: &[u8]) -> WorkflowQueryResult {
        WorkflowQueryResult {
            result_type: QueryResultType::Answered as i32,
            answer: Some(Payloads {
                payloads: vec![Payload {
                    data: data.to_vec(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn buffered_queries_attach_to_the_next_task_of_their_run_and_take_its_answers() {
        let registry = QueryRegistry::new();
        let mut mine = registry.register(key("r1"), query("status"), Stage::Buffered);
        let other = registry.register(key("r2"), query("status"), Stage::Buffered);
        let attached = registry.attach(&key("r1"), 7);
        assert_eq!(attached.len(), 1);
        assert_eq!(attached[&mine.id.to_string()], query("status"));
        assert_eq!(registry.stage(other.id), Some(Stage::Buffered));

        // An answer for another task of the run is ignored.
        let results = HashMap::from([(mine.id.to_string(), answered(b"x"))]);
        registry.answer_attached(&key("r1"), 3, &results);
        assert!(mine.answer.try_recv().is_err());
        registry.answer_attached(&key("r1"), 7, &results);
        match mine.answer.try_recv() {
            Ok(QueryAnswer::Answered(Some(p))) => assert_eq!(p.payloads[0].data, b"x"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_direct_query_is_taken_once_and_answered_by_its_run_only() {
        let registry = QueryRegistry::new();
        let mut ticket = registry.register(key("r1"), query("q"), Stage::Direct);
        assert!(registry.take_direct(ticket.id).is_some());
        assert!(registry.take_direct(ticket.id).is_none());
        let failed = QueryAnswer::Failed {
            message: "boom".into(),
            failure: None,
        };
        assert!(!registry.answer_direct(ticket.id, &key("r2"), failed.clone()));
        assert!(registry.answer_direct(ticket.id, &key("r1"), failed.clone()));
        assert_eq!(ticket.answer.try_recv().ok(), Some(failed));
    }

    #[test]
    fn a_dropped_ticket_removes_its_query() {
        let registry = QueryRegistry::new();
        let ticket = registry.register(key("r1"), query("q"), Stage::Direct);
        let id = ticket.id;
        drop(ticket);
        assert!(registry.is_empty());
        assert!(registry.take_direct(id).is_none());
        assert!(!registry.answer_direct(id, &key("r1"), QueryAnswer::Answered(None)));
    }
}
