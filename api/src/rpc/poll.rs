//! PollWorkflowTaskQueue and PollActivityTaskQueue: real long polls.
//!
//! A poll takes a task lease from matching, then proposes the task's "started" record to the
//! task's group. Only a committed start is handed out; a task that turns out to be obsolete
//! (completed, timed out, already started) is skipped and the poll goes on waiting.
//!
//! Sticky queues (a worker's own queue, TEMPORAL-WIRE.md §1.6) are polled like any other: the
//! engine dispatches a sticky run's workflow tasks there, and such a task carries only the events
//! after `previous_started_event_id`, which the worker has not seen.

use super::history::HistoryToken;
use super::time::{duration_or_zero, timestamp};
use crate::frontend::Frontend;
use crate::limits::HISTORY_PAGE_SIZE;
use crate::matching::{QueueKey, QueuedTask};
use crate::query::{ClaimKind, Claimable};
use crate::{status, validate};
use perdura_engine::{
    ActivityTaskInfo, EngineError, ExecutionKey, GroupId, PendingTask, ShardCommandKind,
    ShardReply, TaskKind, WorkflowTaskInfo,
};
use perdura_raft::ProposeError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_protos::temporal::api::history::v1::History;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;
use tracing::debug;

impl Frontend {
    pub(crate) async fn rpc_poll_workflow_task(
        &self,
        request: ws::PollWorkflowTaskQueueRequest,
        wait: Duration,
    ) -> Result<ws::PollWorkflowTaskQueueResponse, Status> {
        self.namespace(&request.namespace).await?;
        let queue = request.task_queue.unwrap_or_default();
        validate::required_id("TaskQueue", &queue.name)?;
        let key = QueueKey {
            namespace: request.namespace,
            task_queue: queue.name,
            kind: TaskKind::Workflow,
        };
        match self.next_started_task(key, wait, &request.identity).await? {
            Some(Taken::Task(group, ShardReply::WorkflowTaskStarted(info))) => {
                self.workflow_task_response(group, info).await
            }
            Some(Taken::Task(_, other)) => Err(unexpected(&other)),
            Some(Taken::Query(hint, task_queue, query)) => {
                let response = self
                    .query_task_response(hint.id, &hint.execution, query)
                    .await;
                if response.is_err() {
                    self.queries.unclaim(&hint, task_queue).await;
                }
                response
            }
            None => Ok(ws::PollWorkflowTaskQueueResponse::default()),
        }
    }

    pub(crate) async fn rpc_poll_activity_task(
        &self,
        request: ws::PollActivityTaskQueueRequest,
        wait: Duration,
    ) -> Result<ws::PollActivityTaskQueueResponse, Status> {
        self.namespace(&request.namespace).await?;
        let queue = request.task_queue.unwrap_or_default();
        validate::required_id("TaskQueue", &queue.name)?;
        let namespace = request.namespace.clone();
        let key = QueueKey {
            namespace: request.namespace,
            task_queue: queue.name,
            kind: TaskKind::Activity,
        };
        match self.next_started_task(key, wait, &request.identity).await? {
            Some(Taken::Task(_, ShardReply::ActivityTaskStarted(info))) => {
                Ok(activity_task_response(&namespace, *info))
            }
            Some(Taken::Task(_, other)) => Err(unexpected(&other)),
            Some(Taken::Query(..)) => Err(status::internal("a query task on an activity queue")),
            None => Ok(ws::PollActivityTaskQueueResponse::default()),
        }
    }

    /// Waits for a task of `key`'s queue and records it started in its group. Tasks another
    /// poller (of any node) started first, and other obsolete tasks, are skipped; so are
    /// query tasks another node claimed. `None` when the wait ends empty.
    async fn next_started_task(
        &self,
        key: QueueKey,
        wait: Duration,
        identity: &str,
    ) -> Result<Option<Taken>, Status> {
        let deadline = Instant::now() + wait;
        while let Some(lease) = self
            .matching
            .next_task(
                key.clone(),
                deadline.saturating_duration_since(Instant::now()),
            )
            .await
        {
            let task = match lease.task().clone() {
                QueuedTask::Task(task) => task,
                QueuedTask::Query(query_task) => {
                    lease.consume();
                    let Some(hint) = self.queries.hints().direct(query_task.id) else {
                        continue;
                    };
                    if let Some(query) = self.queries.claim(&hint, ClaimKind::Direct).await {
                        return Ok(Some(Taken::Query(hint, query_task.task_queue, query)));
                    }
                    continue;
                }
            };
            let group = self.group_of(&task.execution.namespace, &task.execution.workflow_id)?;
            let Some(kind) = start_command(&task, identity) else {
                lease.consume();
                continue;
            };
            match self.propose_start(group, kind, deadline).await {
                Ok(Ok(reply)) => {
                    lease.consume();
                    return Ok(Some(Taken::Task(group, reply)));
                }
                Ok(Err(EngineError::NotFound(_))) => {
                    // Another poller (maybe of another node) started it first, or it is
                    // obsolete. The refusal was applied here before the reply came back, so
                    // the replica says whether the task is ready again (a retry under the
                    // same identity) or this entry is stale.
                    debug!(?task, "start refused; skipping the task");
                    let ready_again = self
                        .raft
                        .read_shard(group, |state| state.is_task_pending(&task))
                        .unwrap_or(false);
                    if ready_again {
                        drop(lease);
                    } else {
                        lease.consume();
                    }
                }
                // The lease drops here and the task goes back to its queue (unless it left
                // the ready set meanwhile).
                Ok(Err(error)) => return Err(status::engine(error)),
                Err(error) => return Err(status::propose(error)),
            }
        }
        Ok(None)
    }

    /// Proposes a task's start. An outcome that is unknown (the leader changed or the
    /// connection broke after sending) is asked again with the same poll request ID, which the
    /// engine answers with the same start if the first one was applied — so the task is handed
    /// out rather than left started with no worker until it times out.
    async fn propose_start(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
        deadline: Instant,
    ) -> Result<Result<ShardReply, EngineError>, ProposeError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.raft.propose(group, kind.clone()).await {
                Err(ProposeError::Indeterminate(detail))
                    if attempts < START_ATTEMPTS && Instant::now() < deadline =>
                {
                    debug!(%group, %detail, "task start outcome unknown; asking again");
                }
                other => return other,
            }
        }
    }

    pub(crate) async fn workflow_task_response(
        &self,
        group: perdura_engine::GroupId,
        info: WorkflowTaskInfo,
    ) -> Result<ws::PollWorkflowTaskQueueResponse, Status> {
        let execution = &info.token.execution;
        // A task dispatched to a sticky queue was taken by the worker that owns it, whose cache
        // holds the run up to the previous task: it gets the events after that (starting with
        // the previous WorkflowTaskCompleted), as Temporal serves sticky tasks.
        let first_event_id = if info.sticky_task_queue.is_empty() {
            1
        } else {
            info.previous_started_event_id + 1
        };
        // A speculative task's Scheduled and Started events are not stored: the history is the
        // stored events, in one page, followed by them.
        let speculative = !info.speculative_events.is_empty();
        let stored_last = if speculative {
            info.scheduled_event_id - 1
        } else {
            info.started_event_id
        };
        let stored = usize::try_from(stored_last - first_event_id + 1).unwrap_or(0);
        let page = if speculative {
            stored
        } else {
            stored.min(HISTORY_PAGE_SIZE)
        };
        let read = || {
            self.raft
                .read_history(group, execution, first_event_id, page)
                .map_err(status::internal)
        };
        let mut events = read()?;
        if events.len() < page {
            // The start was applied at the leader, and this replica waited for it only so
            // long: make sure the worker gets the whole history, not a lagging prefix.
            self.linearize(group).await?;
            events = read()?;
        }
        let next_page_token = match events.last() {
            Some(last) if !speculative && last.event_id < info.started_event_id => HistoryToken {
                run_id: execution.run_id.clone(),
                next_event_id: last.event_id + 1,
                last_event_id: info.started_event_id,
            }
            .encode(),
            _ => Vec::new(),
        };
        events.extend(info.speculative_events);
        let queries = self.attach_queries(execution, info.started_event_id).await;
        Ok(ws::PollWorkflowTaskQueueResponse {
            task_token: info.token.encode(),
            queries,
            messages: info.messages,
            workflow_execution: Some(WorkflowExecution {
                workflow_id: execution.workflow_id.clone(),
                run_id: execution.run_id.clone(),
            }),
            workflow_type: Some(WorkflowType {
                name: info.workflow_type,
            }),
            previous_started_event_id: info.previous_started_event_id,
            started_event_id: info.started_event_id,
            attempt: info.attempt,
            history: Some(History { events }),
            next_page_token,
            workflow_execution_task_queue: Some(TaskQueue {
                name: info.task_queue,
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            scheduled_time: timestamp(info.scheduled_time_ms),
            started_time: timestamp(info.started_time_ms),
            ..Default::default()
        })
    }
}

/// Proposals of one task start when the outcome stays unknown.
const START_ATTEMPTS: u32 = 3;

impl Frontend {
    /// Claims the queries waiting for the next workflow task of `execution`, which just
    /// started with `started_event_id`: the poll response's `queries` map.
    async fn attach_queries(
        &self,
        execution: &ExecutionKey,
        started_event_id: i64,
    ) -> HashMap<String, WorkflowQuery> {
        let mut attached = HashMap::new();
        for hint in self.queries.hints().attachable(execution) {
            let kind = ClaimKind::Attached { started_event_id };
            if let Some(query) = self.queries.claim(&hint, kind).await {
                attached.insert(hint.id.to_string(), query);
            }
        }
        attached
    }
}

/// The command that records `task` started by a poller with `identity`; `None` for a kind
/// that is never started this way.
fn start_command(task: &PendingTask, identity: &str) -> Option<ShardCommandKind> {
    let (execution, scheduled_event_id) = (task.execution.clone(), task.scheduled_event_id);
    let (identity, poll_request_id) = (identity.to_string(), uuid::Uuid::new_v4().to_string());
    match task.kind {
        TaskKind::Workflow => Some(ShardCommandKind::RecordWorkflowTaskStarted {
            execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        }),
        TaskKind::Activity => Some(ShardCommandKind::RecordActivityTaskStarted {
            execution,
            scheduled_event_id,
            identity,
            poll_request_id,
        }),
        TaskKind::Query => None,
    }
}

/// What a poll took from its queue.
enum Taken {
    /// A task whose "started" record was committed in its group.
    Task(GroupId, ShardReply),
    /// A direct query task this node claimed: the hint, its task queue and the query.
    Query(Claimable, String, WorkflowQuery),
}

fn unexpected(reply: &ShardReply) -> Status {
    status::internal(format!(
        "unexpected reply to a task-started record: {reply:?}"
    ))
}

fn activity_task_response(
    namespace: &str,
    info: ActivityTaskInfo,
) -> ws::PollActivityTaskQueueResponse {
    let execution = &info.token.execution;
    ws::PollActivityTaskQueueResponse {
        task_token: info.token.encode(),
        workflow_namespace: namespace.to_string(),
        workflow_type: Some(WorkflowType {
            name: info.workflow_type,
        }),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: execution.workflow_id.clone(),
            run_id: execution.run_id.clone(),
        }),
        activity_type: Some(ActivityType {
            name: info.activity_type,
        }),
        activity_id: info.activity_id,
        header: info.header,
        input: info.input,
        heartbeat_details: info.heartbeat_details,
        scheduled_time: timestamp(info.scheduled_time_ms),
        current_attempt_scheduled_time: timestamp(info.current_attempt_scheduled_time_ms),
        started_time: timestamp(info.started_time_ms),
        attempt: info.attempt,
        schedule_to_close_timeout: duration_or_zero(info.schedule_to_close_timeout_ms),
        start_to_close_timeout: duration_or_zero(info.start_to_close_timeout_ms),
        heartbeat_timeout: duration_or_zero(info.heartbeat_timeout_ms),
        retry_policy: info.retry_policy,
        ..Default::default()
    }
}
