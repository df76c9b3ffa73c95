//! [`QueryRegistry`]: the queries this node received (QueryWorkflow) and waits to answer — the
//! *origin* side of the relay ([`crate::query`]).
//!
//! Each query has a stage and a *generation*. Every time the origin routes a query (first
//! announcement, back to waiting after its workflow task ended unanswered, to a direct query
//! task) the generation grows and every node is told. A node's claim names the generation of
//! the hint it claims: only a claim of the current generation, in the matching stage, wins,
//! and winning moves the query on — so exactly one worker gets each routing of a query, and a
//! late claim of an older routing always loses.
//!
//! Invariant: an answer is accepted only for the stage it was handed out in (the attached
//! workflow task's started event ID, or the direct dispatch), at most once.

use super::{ClaimKind, QueryAnswer, QueryId};
use perdura_engine::ExecutionKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use tokio::sync::oneshot;

/// Where a registered query stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Registered, not routed yet.
    New,
    /// Waits for the next workflow task of its run, on whichever node it starts.
    Buffered,
    /// Sent on the workflow task whose WorkflowTaskStarted event has this ID. `seen`: this
    /// node has applied that task's start (until then, not seeing it started here is replica
    /// lag, not the end of the task).
    Attached { started_event_id: i64, seen: bool },
    /// Offered to the run's task queue on every node as a direct query task.
    Direct,
    /// Handed to one poller as a direct query task; waits for RespondQueryTaskCompleted.
    Dispatched,
}

/// How a query is routed; what every node is told ([`Announcement`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// Attach to the next workflow task of the run.
    Attach,
    /// Offer as a direct query task on the run's task queue.
    Direct { task_queue: String },
}

/// One routing of a query, sent to every node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub id: QueryId,
    pub generation: u64,
    pub execution: ExecutionKey,
    #[serde(with = "perdura_engine::codec::proto")]
    pub query: WorkflowQuery,
    pub route: Route,
    /// How long the origin still waits for an answer; hints expire then.
    pub expires_in_ms: u64,
}

struct Entry {
    execution: ExecutionKey,
    query: WorkflowQuery,
    stage: Stage,
    generation: u64,
    deadline: Instant,
    answer: Option<oneshot::Sender<QueryAnswer>>,
}

/// The queries this node holds, by number.
pub struct QueryRegistry {
    /// This node's ID: the origin of every query registered here.
    node_id: AtomicU64,
    entries: Mutex<BTreeMap<i64, Entry>>,
    next_number: AtomicI64,
}

/// A registered query. Dropping it (the caller stopped waiting) removes the query: later
/// claims and answers are refused.
pub struct QueryTicket {
    registry: Arc<QueryRegistry>,
    pub id: QueryId,
    pub answer: oneshot::Receiver<QueryAnswer>,
}

impl Drop for QueryTicket {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id.number);
    }
}

impl QueryRegistry {
    /// A registry of node `node_id` (set later with [`QueryRegistry::set_node_id`] when the
    /// node's ID is known only once its groups are open).
    pub fn new(node_id: u64) -> Arc<QueryRegistry> {
        // Query numbers appear in task tokens: starting from the clock keeps a token of an
        // earlier process from naming a query of this one.
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| i64::try_from(d.as_micros()).unwrap_or(1));
        Arc::new(QueryRegistry {
            node_id: AtomicU64::new(node_id),
            entries: Mutex::new(BTreeMap::new()),
            next_number: AtomicI64::new(start),
        })
    }

    pub fn node_id(&self) -> u64 {
        self.node_id.load(Ordering::Relaxed)
    }

    pub fn set_node_id(&self, node_id: u64) {
        self.node_id.store(node_id, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `id` if this node is its origin.
    fn with_entry<R>(&self, id: QueryId, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        if id.origin != self.node_id() {
            return None;
        }
        self.lock().get_mut(&id.number).map(f)
    }

    /// Registers a query that waits until `deadline`; route it with [`QueryRegistry::route`].
    pub fn register(
        self: &Arc<Self>,
        execution: ExecutionKey,
        query: WorkflowQuery,
        deadline: Instant,
    ) -> QueryTicket {
        let number = self.next_number.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(
            number,
            Entry {
                execution,
                query,
                stage: Stage::New,
                generation: 0,
                deadline,
                answer: Some(sender),
            },
        );
        QueryTicket {
            registry: Arc::clone(self),
            id: QueryId {
                origin: self.node_id(),
                number,
            },
            answer: receiver,
        }
    }

    pub fn stage(&self, id: QueryId) -> Option<Stage> {
        self.with_entry(id, |e| e.stage)
    }

    /// Routes the query anew (a new generation); the announcement every node must get.
    pub fn route(&self, id: QueryId, route: Route) -> Option<Announcement> {
        self.with_entry(id, |entry| {
            entry.generation += 1;
            entry.stage = match route {
                Route::Attach => Stage::Buffered,
                Route::Direct { .. } => Stage::Direct,
            };
            Announcement {
                id,
                generation: entry.generation,
                execution: entry.execution.clone(),
                query: entry.query.clone(),
                route,
                expires_in_ms: u64::try_from(
                    entry
                        .deadline
                        .saturating_duration_since(Instant::now())
                        .as_millis(),
                )
                .unwrap_or(u64::MAX),
            }
        })
    }

    /// This node applied the start of the workflow task a query rides on.
    pub fn mark_seen(&self, id: QueryId) {
        self.with_entry(id, |entry| {
            if let Stage::Attached { seen, .. } = &mut entry.stage {
                *seen = true;
            }
        });
    }

    /// A node wants to hand routing `generation` of the query to its poller. The query (to
    /// send to the worker) if this claim is the first of the current routing, else `None`.
    pub fn claim(
        &self,
        id: QueryId,
        generation: u64,
        execution: &ExecutionKey,
        kind: ClaimKind,
    ) -> Option<WorkflowQuery> {
        self.with_entry(id, |entry| {
            if entry.generation != generation || entry.execution != *execution {
                return None;
            }
            entry.stage = match (entry.stage, kind) {
                (Stage::Direct, ClaimKind::Direct) => Stage::Dispatched,
                (Stage::Buffered, ClaimKind::Attached { started_event_id }) => Stage::Attached {
                    started_event_id,
                    seen: false,
                },
                _ => return None,
            };
            Some(entry.query.clone())
        })
        .flatten()
    }

    /// The winner of a direct claim could not hand the task out: offer it again (a new
    /// routing, to announce).
    pub fn unclaim(
        &self,
        id: QueryId,
        generation: u64,
        task_queue: String,
    ) -> Option<Announcement> {
        let dispatched = self
            .with_entry(id, |e| {
                e.generation == generation && e.stage == Stage::Dispatched
            })
            .unwrap_or(false);
        if !dispatched {
            return None;
        }
        self.route(id, Route::Direct { task_queue })
    }

    /// A worker's answer. `kind` says how the query was handed out; an answer for another
    /// stage (a stale workflow task, a query re-routed since) is refused. True if delivered.
    pub fn answer(
        &self,
        id: QueryId,
        execution: &ExecutionKey,
        kind: ClaimKind,
        answer: QueryAnswer,
    ) -> bool {
        self.with_entry(id, |entry| {
            let handed_out = match (entry.stage, kind) {
                (Stage::Dispatched, ClaimKind::Direct) => true,
                (
                    Stage::Attached {
                        started_event_id, ..
                    },
                    ClaimKind::Attached {
                        started_event_id: answered,
                    },
                ) => started_event_id == answered,
                _ => false,
            };
            if !handed_out || entry.execution != *execution {
                return false;
            }
            entry
                .answer
                .take()
                .is_some_and(|sender| sender.send(answer).is_ok())
        })
        .unwrap_or(false)
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
    use std::time::Duration;
    use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};

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

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn answered(data: &[u8]) -> QueryAnswer {
        QueryAnswer::Answered(Some(Payloads {
            payloads: vec![Payload {
                data: data.to_vec(),
                ..Default::default()
            }],
        }))
    }

    const ATTACH_7: ClaimKind = ClaimKind::Attached {
        started_event_id: 7,
    };

    #[test]
    fn only_the_first_claim_of_the_current_routing_wins() {
        let registry = QueryRegistry::new(1);
        let ticket = registry.register(key("r1"), query("status"), soon());
        assert_eq!(ticket.id.origin, 1);
        assert!(
            registry.claim(ticket.id, 0, &key("r1"), ATTACH_7).is_none(),
            "not routed"
        );
        let first = registry.route(ticket.id, Route::Attach).expect("routed");
        assert_eq!(first.generation, 1);
        assert!(
            registry.claim(ticket.id, 1, &key("r2"), ATTACH_7).is_none(),
            "other run"
        );
        assert!(
            registry
                .claim(ticket.id, 1, &key("r1"), ClaimKind::Direct)
                .is_none()
        );
        assert_eq!(
            registry.claim(ticket.id, 1, &key("r1"), ATTACH_7),
            Some(query("status"))
        );
        assert!(
            registry.claim(ticket.id, 1, &key("r1"), ATTACH_7).is_none(),
            "second claim"
        );

        // Re-routed after the task ended unanswered: a claim of the old routing loses.
        let second = registry
            .route(
                ticket.id,
                Route::Direct {
                    task_queue: "tq".into(),
                },
            )
            .expect("routed");
        assert_eq!(second.generation, 2);
        assert!(
            registry
                .claim(ticket.id, 1, &key("r1"), ClaimKind::Direct)
                .is_none()
        );
        assert!(
            registry
                .claim(ticket.id, 2, &key("r1"), ClaimKind::Direct)
                .is_some()
        );
        assert_eq!(registry.stage(ticket.id), Some(Stage::Dispatched));
    }

    #[test]
    fn answers_are_taken_only_for_the_stage_the_query_was_handed_out_in() {
        let registry = QueryRegistry::new(1);
        let mut ticket = registry.register(key("r1"), query("q"), soon());
        registry.route(ticket.id, Route::Attach);
        registry.claim(ticket.id, 1, &key("r1"), ATTACH_7);
        let stale = ClaimKind::Attached {
            started_event_id: 3,
        };
        assert!(!registry.answer(ticket.id, &key("r1"), stale, answered(b"old")));
        assert!(!registry.answer(ticket.id, &key("r1"), ClaimKind::Direct, answered(b"d")));
        assert!(!registry.answer(ticket.id, &key("r2"), ATTACH_7, answered(b"x")));
        assert!(registry.answer(ticket.id, &key("r1"), ATTACH_7, answered(b"yes")));
        assert!(!registry.answer(ticket.id, &key("r1"), ATTACH_7, answered(b"again")));
        assert_eq!(ticket.answer.try_recv().ok(), Some(answered(b"yes")));
    }

    #[test]
    fn an_unclaimed_direct_query_is_offered_again_under_a_new_generation() {
        let registry = QueryRegistry::new(2);
        let ticket = registry.register(key("r1"), query("q"), soon());
        registry.route(
            ticket.id,
            Route::Direct {
                task_queue: "tq".into(),
            },
        );
        assert!(
            registry
                .claim(ticket.id, 1, &key("r1"), ClaimKind::Direct)
                .is_some()
        );
        assert!(
            registry.unclaim(ticket.id, 0, "tq".into()).is_none(),
            "stale"
        );
        let again = registry
            .unclaim(ticket.id, 1, "tq".into())
            .expect("re-offered");
        assert_eq!(again.generation, 2);
        assert_eq!(registry.stage(ticket.id), Some(Stage::Direct));
    }

    #[test]
    fn a_dropped_ticket_or_a_foreign_id_refuses_everything() {
        let registry = QueryRegistry::new(1);
        let ticket = registry.register(key("r1"), query("q"), soon());
        let id = ticket.id;
        registry.route(
            id,
            Route::Direct {
                task_queue: "tq".into(),
            },
        );
        let foreign = QueryId {
            origin: 2,
            number: id.number,
        };
        assert!(
            registry
                .claim(foreign, 1, &key("r1"), ClaimKind::Direct)
                .is_none()
        );
        drop(ticket);
        assert!(registry.is_empty());
        assert!(
            registry
                .claim(id, 1, &key("r1"), ClaimKind::Direct)
                .is_none()
        );
        assert!(!registry.answer(id, &key("r1"), ClaimKind::Direct, answered(b"late")));
    }
}
