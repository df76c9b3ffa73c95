//! [`QueryHints`]: what this node knows of queries held by any node (itself included) — the
//! routing each origin announced. A hint is only a pointer: a node hands a query to its
//! poller only after claiming it from the origin.
//!
//! A hint carries the announcement's generation: an older announcement or withdrawal arriving
//! late never overrides a newer one, and a withdrawal leaves a tombstone (until the query's
//! deadline) so that an announcement it overtook stays withdrawn. Hints expire with the
//! query's deadline; direct hints are also entries of this node's task queues.

use super::QueryId;
use super::registry::{Announcement, Route};
use crate::matching::{Matching, QueryTask, QueuedTask};
use perdura_engine::ExecutionKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;

struct Hint {
    generation: u64,
    execution: ExecutionKey,
    query: WorkflowQuery,
    /// `None`: withdrawn (a tombstone).
    route: Option<Route>,
    expires: Instant,
}

impl Hint {
    fn queued(&self, id: QueryId) -> Option<QueuedTask> {
        match &self.route {
            Some(Route::Direct { task_queue }) => Some(QueuedTask::Query(QueryTask {
                id,
                task_queue: task_queue.clone(),
                execution: self.execution.clone(),
            })),
            _ => None,
        }
    }
}

/// A hint a poller may claim: the routing generation, the run and the query.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimable {
    pub id: QueryId,
    pub generation: u64,
    pub execution: ExecutionKey,
    pub query: WorkflowQuery,
}

/// The hints of this node.
pub struct QueryHints {
    hints: Mutex<BTreeMap<QueryId, Hint>>,
    matching: Arc<Matching>,
}

impl QueryHints {
    pub fn new(matching: Arc<Matching>) -> Arc<QueryHints> {
        Arc::new(QueryHints {
            hints: Mutex::new(BTreeMap::new()),
            matching,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<QueryId, Hint>> {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let expired: Vec<QueryId> = hints
            .iter()
            .filter(|(_, h)| h.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(task) = hints.remove(&id).and_then(|h| h.queued(id)) {
                self.matching.remove(&task);
            }
        }
        hints
    }

    /// Takes an origin's announcement (unless a newer one, or a withdrawal of it, is known).
    pub fn announce(&self, announcement: Announcement) {
        let id = announcement.id;
        let mut hints = self.lock();
        if hints
            .get(&id)
            .is_some_and(|h| h.generation >= announcement.generation)
        {
            return;
        }
        let hint = Hint {
            generation: announcement.generation,
            execution: announcement.execution,
            query: announcement.query,
            route: Some(announcement.route),
            expires: Instant::now() + Duration::from_millis(announcement.expires_in_ms),
        };
        let added = hint.queued(id);
        if let Some(old) = hints.insert(id, hint).and_then(|old| old.queued(id))
            && Some(&old) != added.as_ref()
        {
            self.matching.remove(&old);
        }
        if let Some(task) = added {
            self.matching.offer(task);
        }
    }

    /// Drops routing `generation` (and older ones) of a query: answered, claimed elsewhere,
    /// or given up.
    pub fn withdraw(&self, id: QueryId, generation: u64) {
        let mut hints = self.lock();
        match hints.get_mut(&id) {
            Some(hint) if hint.generation > generation => {}
            Some(hint) => {
                if let Some(task) = hint.queued(id) {
                    self.matching.remove(&task);
                }
                hint.generation = generation;
                hint.route = None;
            }
            None => {
                // A tombstone, in case the announcement is still on its way.
                hints.insert(
                    id,
                    Hint {
                        generation,
                        execution: ExecutionKey {
                            namespace: String::new(),
                            workflow_id: String::new(),
                            run_id: String::new(),
                        },
                        query: WorkflowQuery::default(),
                        route: None,
                        expires: Instant::now() + TOMBSTONE_TTL,
                    },
                );
            }
        }
    }

    /// The queries waiting to ride on the next workflow task of `execution`.
    pub fn attachable(&self, execution: &ExecutionKey) -> Vec<Claimable> {
        self.lock()
            .iter()
            .filter(|(_, h)| h.route == Some(Route::Attach) && h.execution == *execution)
            .map(|(id, h)| Claimable {
                id: *id,
                generation: h.generation,
                execution: h.execution.clone(),
                query: h.query.clone(),
            })
            .collect()
    }

    /// The direct query task `id`, if this node still has it as one.
    pub fn direct(&self, id: QueryId) -> Option<Claimable> {
        self.lock()
            .get(&id)
            .filter(|h| matches!(h.route, Some(Route::Direct { .. })))
            .map(|h| Claimable {
                id,
                generation: h.generation,
                execution: h.execution.clone(),
                query: h.query.clone(),
            })
    }

    /// Number of live (not withdrawn) hints (tests).
    pub fn live(&self) -> usize {
        self.lock().values().filter(|h| h.route.is_some()).count()
    }
}

/// How long a withdrawal whose announcement never arrived is remembered.
const TOMBSTONE_TTL: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::QueueKey;
    use perdura_engine::TaskKind;

    fn execution() -> ExecutionKey {
        ExecutionKey {
            namespace: "default".into(),
            workflow_id: "w".into(),
            run_id: "r".into(),
        }
    }

    fn announcement(generation: u64, route: Route) -> Announcement {
        Announcement {
            id: QueryId {
                origin: 1,
                number: 5,
            },
            generation,
            execution: execution(),
            query: WorkflowQuery {
                query_type: "q".into(),
                ..Default::default()
            },
            route,
            expires_in_ms: 10_000,
        }
    }

    fn direct() -> Route {
        Route::Direct {
            task_queue: "tq".into(),
        }
    }

    fn queue() -> QueueKey {
        QueueKey {
            namespace: "default".into(),
            task_queue: "tq".into(),
            kind: TaskKind::Workflow,
        }
    }

    #[test]
    fn newer_routings_replace_older_ones_and_move_the_queue_entry() {
        let matching = Matching::new();
        let hints = QueryHints::new(Arc::clone(&matching));
        hints.announce(announcement(1, Route::Attach));
        assert_eq!(hints.attachable(&execution()).len(), 1);
        assert_eq!(matching.backlog(&queue()), 0);
        hints.announce(announcement(2, direct()));
        assert!(hints.attachable(&execution()).is_empty());
        assert_eq!(matching.backlog(&queue()), 1);
        // A late copy of the first routing changes nothing.
        hints.announce(announcement(1, Route::Attach));
        assert!(hints.attachable(&execution()).is_empty());
        assert_eq!(
            hints
                .direct(announcement(0, direct()).id)
                .map(|c| c.generation),
            Some(2)
        );
        hints.withdraw(announcement(0, direct()).id, 2);
        assert_eq!(matching.backlog(&queue()), 0);
        assert_eq!(hints.live(), 0);
    }

    #[test]
    fn a_withdrawal_that_overtook_its_announcement_wins() {
        let matching = Matching::new();
        let hints = QueryHints::new(Arc::clone(&matching));
        hints.withdraw(announcement(0, direct()).id, 3);
        hints.announce(announcement(3, direct()));
        assert_eq!(hints.live(), 0);
        assert_eq!(matching.backlog(&queue()), 0);
        hints.announce(announcement(4, direct()));
        assert_eq!(hints.live(), 1);
    }

    #[test]
    fn hints_expire_with_the_query_deadline() {
        let matching = Matching::new();
        let hints = QueryHints::new(Arc::clone(&matching));
        let mut short = announcement(1, direct());
        short.expires_in_ms = 0;
        hints.announce(short);
        assert_eq!(hints.live(), 0);
        assert_eq!(matching.backlog(&queue()), 0);
    }
}
