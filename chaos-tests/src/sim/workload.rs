//! The seeded workload: starts (fresh, retried with the same request ID, and on workflow IDs
//! already running; with clock faults, one fresh start in three asks for a run timeout of
//! 1–4 s or 10–60 s),
//! signals (retried with the same request ID and value after an unknown outcome), and
//! linearizable history reads. Every choice is drawn from the run's generator.

use super::client::{Client, Outcome, completion, execution};
use super::cluster::SimCluster;
use super::convert::observed_events;
use crate::history::{Op, OpCompletion, OpValue};
use crate::ids::{RequestId, RunId, WorkflowId};
use crate::workload::plan::duration;
use perdura_engine::{ShardCommandKind, ShardReply};
use std::sync::Mutex;
use std::time::Duration;
use temporalio_protos::temporal::api::common::v1::{
    Payload, Payloads, WorkflowExecution, WorkflowType,
};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};

/// What the workload has seen so far (to pick targets and retries).
#[derive(Default)]
pub struct WorkloadState {
    next_id: u64,
    /// Acknowledged runs: (workflow ID, run ID).
    runs: Vec<(String, String)>,
    /// Starts whose outcome is unknown or that succeeded, retried as they were sent.
    retry_starts: Vec<StartArgs>,
    /// Signals whose outcome is unknown: (workflow ID, request ID, value), retried.
    retry_signals: Vec<(String, String, String)>,
}

/// What a start sends (a retry sends the same).
#[derive(Clone)]
struct StartArgs {
    workflow_id: String,
    request_id: String,
    run_timeout_ms: Option<u64>,
}

/// The workload of one run. See the module docs.
pub struct Workload {
    pub client: Client,
    pub workflows: u64,
    /// Some fresh starts ask for a run timeout.
    run_timeouts: bool,
    state: Mutex<WorkloadState>,
}

/// The group of `workflow_id`, by the slot map of the first up node that has one applied (a
/// node that lost the unsynced apply of the meta group's bootstrap in a crash has none until
/// it re-applies the log, and routes nothing: `ProposeError::NoSlotMap`).
fn group_of(cluster: &SimCluster, workflow_id: &str) -> Option<perdura_engine::GroupId> {
    cluster
        .up()
        .into_iter()
        .filter_map(|node| cluster.node(node))
        .find_map(|raft| raft.group_of("default", workflow_id).ok())
}

fn payloads(text: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }],
    }
}

impl Workload {
    pub fn new(client: Client, workflows: u64, run_timeouts: bool) -> Workload {
        Workload {
            client,
            workflows,
            run_timeouts,
            state: Mutex::new(WorkloadState::default()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut WorkloadState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn fresh(&self, prefix: &str) -> String {
        self.with(|s| {
            s.next_id += 1;
            format!("{prefix}-{}", s.next_id)
        })
    }

    /// Runs one operation of `process`.
    pub async fn step(&self, cluster: &SimCluster, process: u64) {
        let rng = &self.client.rng;
        if self.run_timeouts {
            // Think time: virtual time passes between operations, so run timeouts fall due
            // during the run and not only after it.
            tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
        }
        match rng.below(10) {
            0..=3 => self.start(cluster, process).await,
            4..=7 => self.signal(cluster, process).await,
            _ => self.read(cluster, process).await,
        }
    }

    async fn start(&self, cluster: &SimCluster, process: u64) {
        let rng = &self.client.rng;
        let retry = self.with(|s| {
            if !s.retry_starts.is_empty() && rng.chance(30) {
                let i = rng.below(s.retry_starts.len() as u64) as usize;
                Some(s.retry_starts[i].clone())
            } else {
                None
            }
        });
        let args = match retry {
            Some(args) => args,
            None => StartArgs {
                workflow_id: format!("wf-{}", rng.below(self.workflows)),
                request_id: self.fresh("start"),
                // Short ones fall due during the run; long ones leave time to see one early.
                run_timeout_ms: (self.run_timeouts && rng.chance(33)).then(|| {
                    if rng.chance(50) {
                        rng.range(1_000, 4_001)
                    } else {
                        rng.range(10_000, 60_001)
                    }
                }),
            },
        };
        let StartArgs {
            workflow_id,
            request_id,
            run_timeout_ms,
        } = args.clone();
        let Some(group) = group_of(cluster, &workflow_id) else {
            return;
        };
        let Some(node) = self.client.pick_node(cluster, group) else {
            return;
        };
        let f = Op::StartWorkflow {
            workflow_id: WorkflowId(workflow_id.clone()),
            request_id: RequestId(request_id.clone()),
            workflow_type: Some("SimWorkflow".into()),
            attach_to_existing: false,
            run_timeout_ms,
        };
        let Some(pending) = self.client.invoke(process, f, node) else {
            return;
        };
        let request = StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: workflow_id.clone(),
            workflow_type: Some(WorkflowType {
                name: "SimWorkflow".into(),
            }),
            task_queue: Some(TaskQueue {
                name: "sim".into(),
                ..Default::default()
            }),
            input: Some(payloads(&request_id)),
            identity: format!("sim-client-{process}"),
            request_id: request_id.clone(),
            workflow_run_timeout: run_timeout_ms.map(|ms| duration(Duration::from_millis(ms))),
            ..Default::default()
        };
        let kind = ShardCommandKind::StartWorkflow {
            request,
            // The run ID a new run gets: derived from the request, so a retry proposes the same.
            run_id: format!("run-{request_id}"),
        };
        let outcome = self.client.propose(cluster, node, group, kind).await;
        let done = completion(&outcome, |reply| match reply {
            ShardReply::WorkflowStarted { run_id, .. } => Some(OpValue::Started {
                run_id: RunId(run_id.clone()),
            }),
            _ => None,
        });
        self.with(|s| match &outcome {
            Outcome::Applied(Ok(ShardReply::WorkflowStarted { run_id, .. })) => {
                s.runs.push((workflow_id.clone(), run_id.clone()));
                s.retry_starts.push(args);
            }
            Outcome::Unknown(_) => s.retry_starts.push(args),
            _ => {}
        });
        self.client.complete(pending, done);
    }

    async fn signal(&self, cluster: &SimCluster, process: u64) {
        let rng = &self.client.rng;
        let target = self.with(|s| {
            if !s.retry_signals.is_empty() && rng.chance(50) {
                let i = rng.below(s.retry_signals.len() as u64) as usize;
                return Some(s.retry_signals.swap_remove(i));
            }
            let (workflow_id, _) = rng.pick(&s.runs)?.clone();
            s.next_id += 1;
            let id = s.next_id;
            Some((workflow_id, format!("signal-{id}"), format!("value-{id}")))
        });
        let Some((workflow_id, request_id, value)) = target else {
            return self.start(cluster, process).await;
        };
        let Some(group) = group_of(cluster, &workflow_id) else {
            return;
        };
        let Some(node) = self.client.pick_node(cluster, group) else {
            return;
        };
        let f = Op::Signal {
            workflow_id: WorkflowId(workflow_id.clone()),
            run_id: None,
            request_id: RequestId(request_id.clone()),
            signal_name: Some("sim-signal".into()),
            value: value.clone(),
        };
        let Some(pending) = self.client.invoke(process, f, node) else {
            return;
        };
        let request = SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.clone(),
                run_id: String::new(),
            }),
            signal_name: "sim-signal".into(),
            input: Some(payloads(&value)),
            identity: format!("sim-client-{process}"),
            request_id: request_id.clone(),
            ..Default::default()
        };
        let outcome = self
            .client
            .propose(
                cluster,
                node,
                group,
                ShardCommandKind::SignalWorkflow { request },
            )
            .await;
        if let Outcome::Unknown(_) = outcome {
            self.with(|s| s.retry_signals.push((workflow_id, request_id, value)));
        }
        self.client
            .complete(pending, completion(&outcome, |_| None));
    }

    async fn read(&self, cluster: &SimCluster, process: u64) {
        let rng = &self.client.rng;
        let Some((workflow_id, run_id)) = self.with(|s| rng.pick(&s.runs).cloned()) else {
            return self.start(cluster, process).await;
        };
        let Some(group) = group_of(cluster, &workflow_id) else {
            return;
        };
        let Some(node) = self.client.pick_node(cluster, group) else {
            return;
        };
        let f = Op::ReadHistory {
            workflow_id: WorkflowId(workflow_id.clone()),
            run_id: RunId(run_id.clone()),
        };
        let Some(pending) = self.client.invoke(process, f, node) else {
            return;
        };
        let Some(raft) = cluster.node(node).cloned() else {
            return self
                .client
                .complete(pending, OpCompletion::Fail("node down".into()));
        };
        if !Client::linearizable(&raft, group).await {
            return self
                .client
                .complete(pending, OpCompletion::Fail("no linearizable read".into()));
        }
        let key = execution(&workflow_id, &run_id);
        let start_request = raft
            .read_shard(group, |s| {
                s.execution(&key).map(|m| m.start_request_id.clone())
            })
            .flatten();
        let done = match raft.read_history(group, &key, 1, usize::MAX) {
            Ok(events) if events.is_empty() => OpCompletion::Ok(Some(OpValue::NotFound)),
            Ok(events) => OpCompletion::Ok(Some(OpValue::Events {
                events: observed_events(&events, start_request.as_deref()),
            })),
            Err(e) => OpCompletion::Fail(e.to_string()),
        };
        self.client.complete(pending, done);
    }
}
