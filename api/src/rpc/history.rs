//! GetWorkflowExecutionHistory: paging, `wait_new_event` long polls and the close-event filter.

use crate::frontend::Frontend;
use crate::limits::HISTORY_PAGE_SIZE;
use crate::{status, validate};
use perdura_engine::codec::versioned;
use perdura_engine::{ExecutionKey, GroupId};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::enums::v1::HistoryEventFilterType;
use temporalio_protos::temporal::api::history::v1::{History, HistoryEvent};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

/// Where the next page starts. `last_event_id` bounds a page sequence that began in a poll
/// response (the history up to that task's WorkflowTaskStarted); 0 means unbounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryToken {
    pub run_id: String,
    pub next_event_id: i64,
    pub last_event_id: i64,
}

impl HistoryToken {
    pub(crate) fn encode(&self) -> Vec<u8> {
        versioned::encode(self).expect("a history token always encodes")
    }

    fn decode(bytes: &[u8]) -> Result<HistoryToken, Status> {
        versioned::decode(bytes).map_err(|_| status::invalid("Invalid NextPageToken."))
    }
}

/// What the frontend needs to know of an execution to page and wait.
struct Progress {
    /// ID of the last event written.
    last_event_id: i64,
    closed: bool,
}

impl Frontend {
    pub(crate) async fn rpc_get_history(
        &self,
        request: ws::GetWorkflowExecutionHistoryRequest,
        wait: Duration,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse, Status> {
        self.namespace(&request.namespace).await?;
        let execution = validate::execution(request.execution.as_ref())?;
        let token = if request.next_page_token.is_empty() {
            None
        } else {
            Some(HistoryToken::decode(&request.next_page_token)?)
        };
        let run_id = token
            .as_ref()
            .map_or(execution.run_id.as_str(), |t| t.run_id.as_str());
        let (group, key) = self
            .resolve_execution(&request.namespace, &execution.workflow_id, run_id)
            .await?;
        let page_size = match usize::try_from(request.maximum_page_size) {
            Ok(n) if n > 0 => n.min(HISTORY_PAGE_SIZE),
            _ => HISTORY_PAGE_SIZE,
        };
        let deadline = Instant::now() + wait;
        if request.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32 {
            return self
                .close_event(group, &key, request.wait_new_event, deadline)
                .await;
        }
        let next_event_id = token.as_ref().map_or(1, |t| t.next_event_id.max(1));
        let last_event_id = token.as_ref().map_or(0, |t| t.last_event_id);
        loop {
            let watcher = self.history.watch(&key);
            let progress = self.progress(group, &key)?;
            let available = progress.last_event_id >= next_event_id;
            if available || !request.wait_new_event || progress.closed || Instant::now() >= deadline
            {
                return self.page(
                    group,
                    &key,
                    next_event_id,
                    last_event_id,
                    page_size,
                    &progress,
                    request.wait_new_event,
                );
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(
                remaining,
                watcher.wait_unless(|| {
                    self.progress(group, &key)
                        .map_or(true, |p| p.last_event_id >= next_event_id || p.closed)
                }),
            )
            .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn page(
        &self,
        group: GroupId,
        key: &ExecutionKey,
        next_event_id: i64,
        bound: i64,
        page_size: usize,
        progress: &Progress,
        waiting: bool,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse, Status> {
        let end = if bound > 0 {
            bound.min(progress.last_event_id)
        } else {
            progress.last_event_id
        };
        let wanted = usize::try_from((end - next_event_id + 1).max(0))
            .unwrap_or(0)
            .min(page_size);
        let events = if wanted == 0 {
            Vec::new()
        } else {
            self.raft
                .read_history(group, key, next_event_id, wanted)
                .map_err(status::internal)?
        };
        let after = events.last().map_or(next_event_id, |e| e.event_id + 1);
        let more_stored = after <= end;
        // While the workflow runs, a waiting client keeps a token to wait for what comes next.
        let more_to_come = waiting && bound == 0 && !progress.closed;
        let next_page_token = if more_stored || more_to_come {
            HistoryToken {
                run_id: key.run_id.clone(),
                next_event_id: after,
                last_event_id: bound,
            }
            .encode()
        } else {
            Vec::new()
        };
        Ok(ws::GetWorkflowExecutionHistoryResponse {
            history: Some(History { events }),
            next_page_token,
            ..Default::default()
        })
    }

    async fn close_event(
        &self,
        group: GroupId,
        key: &ExecutionKey,
        wait: bool,
        deadline: Instant,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse, Status> {
        loop {
            let watcher = self.history.watch(key);
            let progress = self.progress(group, key)?;
            if progress.closed {
                let events: Vec<HistoryEvent> = self
                    .raft
                    .read_history(group, key, progress.last_event_id, 1)
                    .map_err(status::internal)?;
                return Ok(ws::GetWorkflowExecutionHistoryResponse {
                    history: Some(History { events }),
                    ..Default::default()
                });
            }
            if !wait || Instant::now() >= deadline {
                // Not closed yet: an empty page with a token tells the client to ask again.
                let token = if wait {
                    HistoryToken {
                        run_id: key.run_id.clone(),
                        next_event_id: 0,
                        last_event_id: 0,
                    }
                    .encode()
                } else {
                    Vec::new()
                };
                return Ok(ws::GetWorkflowExecutionHistoryResponse {
                    history: Some(History::default()),
                    next_page_token: token,
                    ..Default::default()
                });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(
                remaining,
                watcher.wait_unless(|| self.progress(group, key).map_or(true, |p| p.closed)),
            )
            .await;
        }
    }

    fn progress(&self, _group: GroupId, key: &ExecutionKey) -> Result<Progress, Status> {
        // Re-resolved on every read: an online split may move the workflow while a client waits.
        let group = self.group_of(&key.namespace, &key.workflow_id)?;
        self.raft
            .read_shard(group, |state| {
                state.execution(key).map(|ms| Progress {
                    last_event_id: ms.next_event_id - 1,
                    closed: !ms.is_running(),
                })
            })
            .flatten()
            .ok_or_else(|| crate::frontend::workflow_not_found(&key.workflow_id))
    }
}
