//! The workload hook of a run and the built-in workload.
//!
//! A [`Workload`] runs concurrently with the nemesis until told to stop, talking to the nodes in
//! [`WorkloadContext::targets`] (which change under membership faults) and recording every
//! operation through the shared recorder with Jepsen's outcome contract: `ok` it happened,
//! `fail` it definitely did not, `info` unknown. The richer client of `src/workload/` plugs in
//! through the same trait.
//!
//! [`StartWorkflows`] is the built-in one: `processes` client processes, each starting fresh
//! workflows (unique workflow and request IDs, no worker, so each run stays open) against a
//! node drawn by its seeded RNG. The request ID is also sent as the start's `identity`
//! (`chaos-request:<id>`), which the server keeps in event 1, so a read through the frontend can
//! tell which request started a run.

use super::clock::SharedRecorder;
use crate::history::{Op, OpCompletion, OpValue, RecorderError};
use crate::ids::{NodeId, ProcessId, RequestId, RunId, WorkflowId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use thiserror::Error;
use tokio::sync::watch;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

pub const NAMESPACE: &str = "default";
/// Prefix of the start's `identity` that carries its request ID.
pub const REQUEST_IDENTITY_PREFIX: &str = "chaos-request:";

#[derive(Debug, Error)]
pub enum WorkloadError {
    #[error("recording the history: {0}")]
    Record(#[from] RecorderError),
    #[error("a workload task failed: {0}")]
    Task(String),
}

/// The nodes clients may talk to: `(node, "http://ip:port")`, updated by the nemesis.
#[derive(Clone, Default)]
pub struct Targets(Arc<Mutex<Vec<(NodeId, String)>>>);

impl Targets {
    pub fn new(endpoints: Vec<(NodeId, String)>) -> Targets {
        Targets(Arc::new(Mutex::new(endpoints)))
    }

    pub fn set(&self, endpoints: Vec<(NodeId, String)>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = endpoints;
    }

    pub fn get(&self) -> Vec<(NodeId, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct WorkloadContext {
    pub recorder: SharedRecorder,
    pub targets: Targets,
    pub seed: u64,
    /// Becomes `true` when the workload must stop invoking (open operations may finish).
    pub stop: watch::Receiver<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadReport {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

pub type WorkloadFuture =
    Pin<Box<dyn Future<Output = Result<WorkloadReport, WorkloadError>> + Send>>;

pub trait Workload: Send + Sync {
    fn name(&self) -> &'static str;
    /// Runs until `context.stop` turns true; every operation goes through the recorder.
    fn run(&self, context: WorkloadContext) -> WorkloadFuture;
}

/// The built-in workload: concurrent StartWorkflowExecution calls.
#[derive(Clone, Debug)]
pub struct StartWorkflows {
    pub processes: u64,
    /// Per-call deadline; a call that takes longer is `info`.
    pub call_timeout: Duration,
    /// Pause between one process's calls.
    pub think_time: Duration,
}

impl Default for StartWorkflows {
    fn default() -> Self {
        StartWorkflows {
            processes: 4,
            call_timeout: Duration::from_secs(5),
            think_time: Duration::from_millis(50),
        }
    }
}

impl Workload for StartWorkflows {
    fn name(&self) -> &'static str {
        "start-workflows"
    }

    fn run(&self, context: WorkloadContext) -> WorkloadFuture {
        let this = self.clone();
        Box::pin(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for process in 0..this.processes {
                let client = StartClient {
                    process: ProcessId(process),
                    recorder: context.recorder.clone(),
                    targets: context.targets.clone(),
                    rng: StdRng::seed_from_u64(
                        context.seed ^ (process + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ),
                    seed: context.seed,
                    stop: context.stop.clone(),
                    config: this.clone(),
                };
                tasks.spawn(client.run());
            }
            let mut report = WorkloadReport::default();
            while let Some(joined) = tasks.join_next().await {
                let part = joined.map_err(|e| WorkloadError::Task(e.to_string()))??;
                report.ok += part.ok;
                report.fail += part.fail;
                report.info += part.info;
            }
            Ok(report)
        })
    }
}

struct StartClient {
    process: ProcessId,
    recorder: SharedRecorder,
    targets: Targets,
    rng: StdRng,
    seed: u64,
    stop: watch::Receiver<bool>,
    config: StartWorkflows,
}

impl StartClient {
    async fn run(mut self) -> Result<WorkloadReport, WorkloadError> {
        let mut report = WorkloadReport::default();
        let mut channels: Vec<(String, Channel)> = Vec::new();
        let mut n = 0u64;
        while !*self.stop.borrow() {
            let targets = self.targets.get();
            if targets.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let (node, url) = targets[self.rng.random_range(0..targets.len())].clone();
            let channel = match channels.iter().find(|(u, _)| *u == url) {
                Some((_, channel)) => channel.clone(),
                None => match Endpoint::from_shared(url.clone()) {
                    Ok(endpoint) => {
                        let channel = endpoint
                            .connect_timeout(Duration::from_secs(1))
                            .connect_lazy();
                        channels.push((url.clone(), channel.clone()));
                        channel
                    }
                    Err(_) => continue,
                },
            };
            let workflow_id = WorkflowId(format!("chaos-{}-p{}-{n}", self.seed, self.process.0));
            let request_id = RequestId(format!("{}-r", workflow_id.0));
            n += 1;
            let op = Op::StartWorkflow {
                workflow_id: workflow_id.clone(),
                request_id: request_id.clone(),
                workflow_type: Some("chaos".into()),
                attach_to_existing: false,
                run_timeout_ms: None,
            };
            let pending = self.recorder.invoke(self.process, op, Some(node))?;
            let request = ws::StartWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_id: workflow_id.0.clone(),
                workflow_type: Some(WorkflowType {
                    name: "chaos".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: "chaos".into(),
                    ..Default::default()
                }),
                identity: format!("{REQUEST_IDENTITY_PREFIX}{}", request_id.0),
                request_id: request_id.0.clone(),
                ..Default::default()
            };
            let mut client = WorkflowServiceClient::new(channel);
            let answer = tokio::time::timeout(
                self.config.call_timeout,
                client.start_workflow_execution(request),
            )
            .await;
            let completion = match answer {
                Ok(Ok(reply)) => OpCompletion::Ok(Some(OpValue::Started {
                    run_id: RunId(reply.into_inner().run_id),
                })),
                Ok(Err(status)) => classify(&status),
                Err(_) => OpCompletion::Info(format!(
                    "no answer within {}ms",
                    self.config.call_timeout.as_millis()
                )),
            };
            match &completion {
                OpCompletion::Ok(_) => report.ok += 1,
                OpCompletion::Fail(_) => report.fail += 1,
                OpCompletion::Info(_) => report.info += 1,
            }
            self.recorder.complete(pending, completion)?;
            tokio::time::sleep(self.config.think_time).await;
        }
        Ok(report)
    }
}

/// Jepsen's contract for a gRPC error: `fail` only when the request definitely did not take
/// effect (refused by validation, or never sent because the connection could not be made);
/// anything that may have reached a leader is `info`.
pub fn classify(status: &tonic::Status) -> OpCompletion {
    let why = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument
        | Code::AlreadyExists
        | Code::NotFound
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::Unimplemented
        | Code::ResourceExhausted
        | Code::OutOfRange => OpCompletion::Fail(why),
        Code::Unavailable if never_sent(status.message()) => OpCompletion::Fail(why),
        _ => OpCompletion::Info(why),
    }
}

/// Transport messages that mean the request never left the client.
fn never_sent(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "tcp connect error",
        "connection refused",
        "error trying to connect",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_fail_and_lost_answers_are_unknown() {
        let refused = tonic::Status::unavailable(
            "error trying to connect: tcp connect error: Connection refused (os error 111)",
        );
        assert!(matches!(classify(&refused), OpCompletion::Fail(_)));
        let replication = tonic::Status::unavailable("replication failed: leader changed");
        assert!(matches!(classify(&replication), OpCompletion::Info(_)));
        let deadline = tonic::Status::deadline_exceeded("timeout");
        assert!(matches!(classify(&deadline), OpCompletion::Info(_)));
        let invalid = tonic::Status::invalid_argument("bad namespace");
        assert!(matches!(classify(&invalid), OpCompletion::Fail(_)));
    }
}
