//! QueryWorkflow and RespondQueryTaskCompleted, and the query tasks handed to workflow-task
//! pollers. Routing follows the real server (TEMPORAL-WIRE.md §1.8); the relay that lets any
//! node's worker answer a query received by any node is in [`crate::query`].

use super::history::HistoryToken;
use super::respond::task_token;
use super::time::timestamp;
use crate::frontend::Frontend;
use crate::limits::HISTORY_PAGE_SIZE;
use crate::query::{ClaimKind, QueryAnswer, QueryId, QueryRelay, Route, Stage};
use crate::{status, validate};
use perdura_engine::{ExecutionKey, GroupId, MutableState, TaskKind, TaskToken};
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{QueryRejectCondition, QueryResultType, TaskQueueKind, WorkflowExecutionStatus},
    history::v1::History,
    query::v1::{QueryRejected, WorkflowQuery},
    taskqueue::v1::TaskQueue,
    workflowservice::v1 as ws,
};
use tonic::Status;

/// A query is refused at once while the run's workflow task keeps failing.
const FAILING_TASK_ATTEMPT: i32 = 3;

/// What query routing needs to know of a run.
struct RunView {
    status: i32,
    task_queue: String,
    workflow_type: String,
    previous_started_event_id: i64,
    last_event_id: i64,
    /// The scheduled or started workflow task: (started event ID or 0, attempt).
    workflow_task: Option<(i64, i32)>,
}

impl RunView {
    fn of(ms: &MutableState) -> RunView {
        RunView {
            status: ms.status,
            task_queue: ms.task_queue.clone(),
            workflow_type: ms.workflow_type.clone(),
            previous_started_event_id: ms.previous_started_event_id,
            last_event_id: ms.next_event_id - 1,
            workflow_task: ms
                .workflow_task
                .as_ref()
                .map(|wft| (wft.started_event_id, wft.attempt)),
        }
    }

    fn running(&self) -> bool {
        self.status == WorkflowExecutionStatus::Running as i32
    }

    /// Some workflow task was started: the SDK can rebuild the workflow from history.
    fn had_started_task(&self) -> bool {
        self.previous_started_event_id > 0
            || self
                .workflow_task
                .is_some_and(|(started, attempt)| started > 0 || attempt > 1)
    }

    /// A direct query task sees every event that came before the query: the run is closed or
    /// no workflow task is pending.
    fn direct_safe(&self) -> bool {
        self.had_started_task() && (!self.running() || self.workflow_task.is_none())
    }

    fn started_event_id(&self) -> Option<i64> {
        self.workflow_task
            .map(|(started, _)| started)
            .filter(|s| *s > 0)
    }
}

/// The run's status if the reject condition refuses the query.
fn rejected_status(condition: i32, status: i32) -> Option<i32> {
    if status == WorkflowExecutionStatus::Running as i32 {
        return None;
    }
    let condition = QueryRejectCondition::try_from(condition).unwrap_or_default();
    let reject = match condition {
        QueryRejectCondition::NotOpen => true,
        QueryRejectCondition::NotCompletedCleanly => {
            status != WorkflowExecutionStatus::Completed as i32
        }
        QueryRejectCondition::None | QueryRejectCondition::Unspecified => false,
    };
    reject.then_some(status)
}

impl Frontend {
    pub(crate) async fn rpc_query_workflow(
        &self,
        request: ws::QueryWorkflowRequest,
        wait: Duration,
    ) -> Result<ws::QueryWorkflowResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.execution.as_ref())?;
        let query = request
            .query
            .ok_or_else(|| status::invalid("Query is not set on request."))?;
        validate::required_id("QueryType", &query.query_type)?;
        validate::blob("QueryArgs", query.query_args.as_ref())?;
        validate::message_blob("Header", query.header.as_ref())?;
        let (group, key) = self
            .resolve_execution(
                &request.namespace,
                &execution.workflow_id,
                &execution.run_id,
            )
            .await?;
        let view = self.run_view(group, &key)?;
        if let Some(status) = rejected_status(request.query_reject_condition, view.status) {
            return Ok(ws::QueryWorkflowResponse {
                query_rejected: Some(QueryRejected { status }),
                ..Default::default()
            });
        }
        if view.workflow_task.is_none() && view.previous_started_event_id == 0 && view.running() {
            return Err(status::workflow_not_ready(
                "Workflow task is not scheduled yet.",
            ));
        }
        if view
            .workflow_task
            .is_some_and(|(_, a)| a >= FAILING_TASK_ATTEMPT)
        {
            return Err(status::workflow_not_ready(
                "Unable to query workflow due to Workflow Task in failed state.",
            ));
        }

        let deadline = Instant::now() + wait;
        let mut ticket = self
            .queries
            .registry()
            .register(key.clone(), query, deadline);
        let id = ticket.id;
        let _withdraw = Withdraw {
            relay: Arc::clone(&self.queries),
            id,
        };
        self.route_query(id, &view);
        loop {
            let watcher = self.history.watch(&key);
            // Every append may end the task the query waits for: route it again then.
            let appended = watcher.wait_unless(|| {
                if let Ok(view) = self.run_view(group, &key) {
                    self.route_query(id, &view);
                }
                false
            });
            tokio::select! {
                answer = &mut ticket.answer => return match answer {
                    Ok(QueryAnswer::Answered(result)) => Ok(ws::QueryWorkflowResponse {
                        query_result: result,
                        ..Default::default()
                    }),
                    Ok(QueryAnswer::Failed { message, failure }) => {
                        Err(status::query_failed(message, failure.map(|f| *f)))
                    }
                    Err(_) => Err(status::internal("the query was dropped")),
                },
                _ = appended => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(status::deadline_exceeded(
                        "No worker answered the query in time.",
                    ));
                }
            }
        }
    }

    pub(crate) async fn rpc_query_task_completed(
        &self,
        request: ws::RespondQueryTaskCompletedRequest,
    ) -> Result<ws::RespondQueryTaskCompletedResponse, Status> {
        let token = task_token(&request.task_token, TaskKind::Query, &request.namespace)?;
        validate::blob("QueryResult", request.query_result.as_ref())?;
        validate::message_blob("Failure", request.failure.as_ref())?;
        let answer = if request.completed_type == QueryResultType::Failed as i32 {
            QueryAnswer::Failed {
                message: request.error_message,
                failure: request.failure.map(Box::new),
            }
        } else {
            QueryAnswer::Answered(request.query_result)
        };
        // A direct query task's token names its origin in `started_event_id`.
        let id = QueryId {
            origin: u64::try_from(token.started_event_id)
                .map_err(|_| status::invalid("Error deserializing task token."))?,
            number: token.scheduled_event_id,
        };
        let delivered = self
            .queries
            .answer(id, &token.execution, ClaimKind::Direct, answer)
            .await
            .map_err(status::relay)?;
        if !delivered {
            return Err(Status::not_found(
                "Query task not found, or already expired.",
            ));
        }
        Ok(ws::RespondQueryTaskCompletedResponse::default())
    }

    fn run_view(&self, group: GroupId, key: &ExecutionKey) -> Result<RunView, Status> {
        self.raft
            .read_shard(group, |state| state.execution(key).map(RunView::of))
            .flatten()
            .ok_or_else(|| crate::frontend::workflow_not_found(&key.workflow_id))
    }

    /// Routes a waiting query the way its run allows now: direct when safe, else it waits for
    /// the next workflow task (again, if the task it rode on ended without answering).
    fn route_query(&self, id: QueryId, view: &RunView) {
        let route = if view.direct_safe() {
            Route::Direct {
                task_queue: view.task_queue.clone(),
            }
        } else {
            Route::Attach
        };
        let registry = self.queries.registry();
        match registry.stage(id) {
            Some(Stage::New) => self.queries.route(id, route),
            Some(Stage::Buffered) if view.direct_safe() => self.queries.route(id, route),
            Some(Stage::Attached {
                started_event_id,
                seen,
            }) => {
                if view.started_event_id() == Some(started_event_id) {
                    registry.mark_seen(id);
                } else if seen || view.last_event_id >= started_event_id {
                    // The task ended without answering (not: this replica has not applied
                    // its start yet).
                    self.queries.route(id, route);
                }
            }
            _ => {}
        }
    }

    /// The poll response of a direct query task: the query, the run's full history (read
    /// linearizably) and a query task token naming the query's origin.
    pub(crate) async fn query_task_response(
        &self,
        id: QueryId,
        key: &ExecutionKey,
        query: WorkflowQuery,
    ) -> Result<ws::PollWorkflowTaskQueueResponse, Status> {
        let group = self.group_of(&key.namespace, &key.workflow_id)?;
        // The worker must see every event its query's origin saw when it chose this route.
        self.linearize(group).await?;
        let view = self.run_view(group, key)?;
        let page = usize::try_from(view.last_event_id)
            .unwrap_or(0)
            .min(HISTORY_PAGE_SIZE);
        let events = self
            .raft
            .read_history(group, key, 1, page)
            .map_err(status::internal)?;
        let next_page_token = match events.last() {
            Some(last) if last.event_id < view.last_event_id => HistoryToken {
                run_id: key.run_id.clone(),
                next_event_id: last.event_id + 1,
                last_event_id: view.last_event_id,
            }
            .encode(),
            _ => Vec::new(),
        };
        let token = TaskToken {
            kind: TaskKind::Query,
            execution: key.clone(),
            scheduled_event_id: id.number,
            started_event_id: i64::try_from(id.origin)
                .map_err(|_| status::internal("node ID out of range"))?,
            attempt: 0,
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        Ok(ws::PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: key.workflow_id.clone(),
                run_id: key.run_id.clone(),
            }),
            workflow_type: Some(WorkflowType {
                name: view.workflow_type,
            }),
            previous_started_event_id: view.previous_started_event_id,
            history: Some(History { events }),
            next_page_token,
            query: Some(query),
            workflow_execution_task_queue: Some(TaskQueue {
                name: view.task_queue,
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            scheduled_time: timestamp(now_ms),
            started_time: timestamp(now_ms),
            ..Default::default()
        })
    }
}

/// Withdraws a query from every node when its QueryWorkflow call ends, however it ends.
struct Withdraw {
    relay: Arc<QueryRelay>,
    id: QueryId,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.relay.abandon(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_conditions_follow_the_run_status() {
        let completed = WorkflowExecutionStatus::Completed as i32;
        let failed = WorkflowExecutionStatus::Failed as i32;
        let running = WorkflowExecutionStatus::Running as i32;
        let not_open = QueryRejectCondition::NotOpen as i32;
        let not_clean = QueryRejectCondition::NotCompletedCleanly as i32;
        let none = QueryRejectCondition::None as i32;
        assert_eq!(rejected_status(not_open, running), None);
        assert_eq!(rejected_status(not_open, completed), Some(completed));
        assert_eq!(rejected_status(not_clean, completed), None);
        assert_eq!(rejected_status(not_clean, failed), Some(failed));
        assert_eq!(rejected_status(none, failed), None);
    }
}
