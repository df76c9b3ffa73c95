//! One logical client process: runs one operation at a time against the node it is pinned to,
//! recording each (invoke before the call, completion after), and moves to the next node after
//! an error that may mean the node is unreachable.

use super::classify::completion;
use super::events::observe;
use super::nodes::NodeAddr;
use super::payload;
use super::phases::{Phase, Phases};
use super::plan::{self, WORKFLOW_TASK_TIMEOUT, WORKFLOW_TYPE};
use super::registry::{Registry, SentSignal};
use super::replica::{admin_client, applied_indexes};
use super::{NAMESPACE, WorkloadError};
use crate::harness::clock::SharedRecorder;
use crate::harness::workload::{Targets, WorkloadReport};
use crate::history::{GroupApplied, ObservedEvent, Op, OpCompletion, OpValue, RunStatus};
use crate::ids::{ActivityId, ProcessId, RequestId, RunId, TimerId, WorkflowId};
use perdura_api::pb::admin::cluster_admin_client::ClusterAdminClient;
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{
    HistoryEventFilterType, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
    RespondActivityTaskCompletedRequest, RespondActivityTaskFailedRequest,
    RespondWorkflowTaskCompletedRequest, SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
};
use tonic::transport::Channel;

/// A long poll's client deadline: the server answers "no task" 1.5 s before it.
const POLL_TIMEOUT: Duration = Duration::from_secs(3);
/// Every other call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(8);
/// The pause after an operation that did not succeed.
const REFUSAL_BACKOFF: Duration = Duration::from_millis(100);

/// What all processes share.
pub struct Shared {
    pub recorder: SharedRecorder,
    pub registry: Mutex<Registry>,
    pub seed: u64,
    pub task_queue: String,
    /// Operations still to run (the op-count bound).
    pub budget: AtomicU64,
    /// The nodes to talk to when they can change during the run (membership faults); `None`:
    /// the list each process was built with.
    pub targets: Option<Targets>,
    /// Completions so far, by outcome.
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Shared {
    /// The completions so far.
    pub fn report(&self) -> WorkloadReport {
        WorkloadReport {
            ok: self.ok.load(Ordering::Relaxed),
            fail: self.fail.load(Ordering::Relaxed),
            info: self.info.load(Ordering::Relaxed),
        }
    }
}

/// The clients of one node.
#[derive(Clone)]
pub struct NodeClients {
    pub node: NodeAddr,
    pub temporal: WorkflowServiceClient<Channel>,
    pub admin: ClusterAdminClient<Channel>,
}

impl NodeClients {
    pub fn new(node: &NodeAddr) -> Result<NodeClients, WorkloadError> {
        let channel = node.channel()?;
        Ok(NodeClients {
            node: node.clone(),
            temporal: WorkflowServiceClient::new(channel.clone())
                .max_decoding_message_size(64 * 1024 * 1024),
            admin: admin_client(channel),
        })
    }
}

pub struct Process<'a> {
    pub id: ProcessId,
    rng: StdRng,
    nodes: Vec<NodeClients>,
    current: usize,
    shared: &'a Shared,
    counter: u64,
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

fn execution(workflow_id: &WorkflowId, run_id: Option<&RunId>) -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: workflow_id.0.clone(),
        run_id: run_id.map(|r| r.0.clone()).unwrap_or_default(),
    }
}

fn run_status(status: i32) -> RunStatus {
    match WorkflowExecutionStatus::try_from(status) {
        Ok(WorkflowExecutionStatus::Completed) => RunStatus::Completed,
        Ok(WorkflowExecutionStatus::Failed) => RunStatus::Failed,
        Ok(WorkflowExecutionStatus::Canceled) => RunStatus::Canceled,
        Ok(WorkflowExecutionStatus::Terminated) => RunStatus::Terminated,
        Ok(WorkflowExecutionStatus::ContinuedAsNew) => RunStatus::ContinuedAsNew,
        Ok(WorkflowExecutionStatus::TimedOut) => RunStatus::TimedOut,
        _ => RunStatus::Running,
    }
}

/// The close a terminal event gives its run: status and (for a completion) result.
fn close_of(event: &HistoryEvent) -> Option<(RunStatus, Option<String>)> {
    Some(match event.attributes.as_ref()? {
        Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
            (RunStatus::Completed, payload::decode(a.result.as_ref()))
        }
        Attributes::WorkflowExecutionFailedEventAttributes(_) => (RunStatus::Failed, None),
        Attributes::WorkflowExecutionTimedOutEventAttributes(_) => (RunStatus::TimedOut, None),
        Attributes::WorkflowExecutionCanceledEventAttributes(_) => (RunStatus::Canceled, None),
        Attributes::WorkflowExecutionTerminatedEventAttributes(_) => (RunStatus::Terminated, None),
        Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
            (RunStatus::ContinuedAsNew, None)
        }
        _ => return None,
    })
}

impl<'a> Process<'a> {
    pub fn new(id: ProcessId, nodes: Vec<NodeClients>, shared: &'a Shared) -> Process<'a> {
        let current = (id.0 as usize) % nodes.len().max(1);
        Process {
            id,
            rng: StdRng::seed_from_u64(shared.seed ^ id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            nodes,
            current,
            shared,
            counter: 0,
        }
    }

    fn next_name(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!(
            "{kind}-{}-p{}-{}",
            self.shared.seed, self.id.0, self.counter
        )
    }

    fn clients(&self) -> NodeClients {
        self.nodes[self.current].clone()
    }

    /// Follows a change of the node list (a member replaced under a membership fault): the
    /// process keeps its position when its node is still there.
    fn refresh_nodes(&mut self) -> Result<(), WorkloadError> {
        let Some(targets) = &self.shared.targets else {
            return Ok(());
        };
        let now: Vec<NodeAddr> = targets
            .get()
            .into_iter()
            .map(|(id, addr)| NodeAddr { id, addr })
            .collect();
        let same =
            now.len() == self.nodes.len() && now.iter().zip(&self.nodes).all(|(a, b)| *a == b.node);
        if same || now.is_empty() {
            return Ok(());
        }
        let current = self.nodes.get(self.current).map(|c| c.node.id);
        self.nodes = now
            .iter()
            .map(NodeClients::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.current = current
            .and_then(|id| self.nodes.iter().position(|c| c.node.id == id))
            .unwrap_or((self.id.0 as usize) % self.nodes.len());
        Ok(())
    }

    /// Records the invoke, runs `call`, records its completion; moves to the next node after
    /// an unknown outcome.
    async fn record<F>(&mut self, op: Op, call: F) -> Result<OpCompletion, WorkloadError>
    where
        F: std::future::Future<Output = OpCompletion>,
    {
        let node = self.nodes[self.current].node.id;
        let pending = self.shared.recorder.invoke(self.id, op, Some(node))?;
        let done = call.await;
        self.shared.recorder.complete(pending, done.clone())?;
        let counter = match &done {
            OpCompletion::Ok(_) => &self.shared.ok,
            OpCompletion::Fail(_) => &self.shared.fail,
            OpCompletion::Info(_) => &self.shared.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if matches!(done, OpCompletion::Info(_)) && self.nodes.len() > 1 {
            self.current = (self.current + 1) % self.nodes.len();
        }
        if !matches!(done, OpCompletion::Ok(_)) {
            // A client backs off after a refusal: a node that refuses at once (connection
            // refused, no quorum) would otherwise be asked thousands of times a second.
            tokio::time::sleep(REFUSAL_BACKOFF).await;
        }
        Ok(done)
    }

    /// Runs one operation chosen by the process's generator.
    pub async fn step(&mut self, phase: Phase) -> Result<(), WorkloadError> {
        let roll = self.rng.random_range(0..100);
        match (phase, roll) {
            (Phase::Drain, 0..50) | (Phase::Main, 0..28) => self.poll_workflow_task().await,
            (Phase::Drain, _) | (Phase::Main, 28..48) => self.poll_activity().await,
            (Phase::Main, 48..62) => self.start_workflow().await,
            (Phase::Main, 62..74) => self.signal().await,
            (Phase::Main, 74..82) => self.read_history().await,
            (Phase::Main, 82..89) => self.describe().await,
            (Phase::Main, 89..95) => self.get_result().await,
            (Phase::Main, _) => self.raft_status().await,
        }
    }

    async fn start_workflow(&mut self) -> Result<(), WorkloadError> {
        let own = {
            let registry = self
                .shared
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            registry.own_workflow(self.id, &mut self.rng)
        };
        let roll = self.rng.random_range(0..100);
        let (workflow_id, request_id) = match own {
            // A retry of the last request of a workflow that never continues as new.
            Some(known)
                if roll < 10
                    && !plan::may_continue_as_new(&known.workflow_id.0)
                    && known.last_request.is_some() =>
            {
                let request = known
                    .last_request
                    .clone()
                    .unwrap_or_else(|| RequestId(String::new()));
                (known.workflow_id, request)
            }
            // The same workflow ID again, a new request.
            Some(known) if roll < 30 => (known.workflow_id, RequestId(self.next_name("req"))),
            _ => (
                WorkflowId(self.next_name("wf")),
                RequestId(self.next_name("req")),
            ),
        };
        let op = Op::StartWorkflow {
            workflow_id: workflow_id.clone(),
            request_id: request_id.clone(),
            workflow_type: Some(WORKFLOW_TYPE.to_owned()),
            attach_to_existing: false,
            run_timeout_ms: None,
        };
        let message = StartWorkflowExecutionRequest {
            namespace: NAMESPACE.to_owned(),
            workflow_id: workflow_id.0.clone(),
            workflow_type: Some(WorkflowType {
                name: WORKFLOW_TYPE.to_owned(),
            }),
            task_queue: Some(plan::task_queue(&self.shared.task_queue)),
            input: Some(payload::encode(&request_id.0)),
            workflow_task_timeout: Some(plan::duration(WORKFLOW_TASK_TIMEOUT)),
            identity: format!("chaos-p{}", self.id.0),
            request_id: request_id.0.clone(),
            ..Default::default()
        };
        let mut client = self.clients().temporal;
        let done = self
            .record(op, async move {
                match client
                    .start_workflow_execution(request(message, CALL_TIMEOUT))
                    .await
                {
                    Ok(answer) => OpCompletion::Ok(Some(OpValue::Started {
                        run_id: RunId(answer.into_inner().run_id),
                    })),
                    Err(status) => completion(&status),
                }
            })
            .await?;
        let mut registry = self
            .shared
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match done {
            OpCompletion::Ok(Some(OpValue::Started { run_id })) => {
                registry.started(self.id, &workflow_id, &request_id, Some(&run_id));
            }
            OpCompletion::Info(_) => registry.started(self.id, &workflow_id, &request_id, None),
            _ => {}
        }
        Ok(())
    }

    async fn signal(&mut self) -> Result<(), WorkloadError> {
        let retry = self.rng.random_range(0..100) < 15;
        let target = {
            let registry = self
                .shared
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if retry {
                registry
                    .some_signal(&mut self.rng)
                    .map(|s| (s.workflow_id, Some(s.run_id), s.request_id, s.value))
            } else {
                registry
                    .some_run(&mut self.rng)
                    .map(|(w, r)| (w, Some(r), RequestId(String::new()), String::new()))
            }
        };
        let Some((workflow_id, run_id, request_id, value)) = target else {
            return self.start_workflow().await;
        };
        let (run_id, request_id, value) = if retry {
            (run_id, request_id, value)
        } else {
            let named = self.rng.random_bool(0.4);
            (
                run_id.filter(|_| named),
                RequestId(self.next_name("sig")),
                self.next_name("val"),
            )
        };
        let op = Op::Signal {
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
            request_id: request_id.clone(),
            signal_name: Some("chaos".to_owned()),
            value: value.clone(),
        };
        let message = SignalWorkflowExecutionRequest {
            namespace: NAMESPACE.to_owned(),
            workflow_execution: Some(execution(&workflow_id, run_id.as_ref())),
            signal_name: "chaos".to_owned(),
            input: Some(payload::encode(&value)),
            identity: format!("chaos-p{}", self.id.0),
            request_id: request_id.0.clone(),
            ..Default::default()
        };
        let mut client = self.clients().temporal;
        self.record(op, async move {
            match client
                .signal_workflow_execution(request(message, CALL_TIMEOUT))
                .await
            {
                Ok(_) => OpCompletion::Ok(None),
                Err(status) => completion(&status),
            }
        })
        .await?;
        if let (false, Some(run_id)) = (retry, run_id) {
            self.shared
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .signal_sent(SentSignal {
                    workflow_id,
                    run_id,
                    request_id,
                    value,
                });
        }
        Ok(())
    }

    /// Every event of a run from the process's node (following pages), or the status.
    async fn full_history(
        client: &mut WorkflowServiceClient<Channel>,
        workflow_id: &WorkflowId,
        run_id: &RunId,
        mut token: Vec<u8>,
        mut events: Vec<HistoryEvent>,
    ) -> Result<Vec<HistoryEvent>, tonic::Status> {
        let mut first = token.is_empty() && events.is_empty();
        while first || !token.is_empty() {
            first = false;
            let answer = client
                .get_workflow_execution_history(request(
                    GetWorkflowExecutionHistoryRequest {
                        namespace: NAMESPACE.to_owned(),
                        execution: Some(execution(workflow_id, Some(run_id))),
                        next_page_token: token,
                        ..Default::default()
                    },
                    CALL_TIMEOUT,
                ))
                .await?
                .into_inner();
            events.extend(answer.history.map(|h| h.events).unwrap_or_default());
            token = answer.next_page_token;
        }
        Ok(events)
    }

    async fn poll_workflow_task(&mut self) -> Result<(), WorkloadError> {
        let queue = self.shared.task_queue.clone();
        let op = Op::PollWorkflowTask {
            task_queue: queue.clone(),
        };
        let message = PollWorkflowTaskQueueRequest {
            namespace: NAMESPACE.to_owned(),
            task_queue: Some(plan::task_queue(&queue)),
            identity: format!("chaos-p{}", self.id.0),
            ..Default::default()
        };
        let mut client = self.clients().temporal;
        let mut task = None;
        let task_slot = &mut task;
        self.record(op, async move {
            match client
                .poll_workflow_task_queue(request(message, POLL_TIMEOUT))
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    if answer.task_token.is_empty() {
                        return OpCompletion::Ok(Some(OpValue::NoTask));
                    }
                    let execution = answer.workflow_execution.clone().unwrap_or_default();
                    let events = answer.history.clone().map(|h| h.events).unwrap_or_default();
                    let observed: Vec<ObservedEvent> = events.iter().map(observe).collect();
                    *task_slot = Some((answer, execution.clone(), events));
                    OpCompletion::Ok(Some(OpValue::WorkflowTask {
                        workflow_id: WorkflowId(execution.workflow_id),
                        run_id: RunId(execution.run_id),
                        events: observed,
                    }))
                }
                Err(status) => completion(&status),
            }
        })
        .await?;
        let Some((answer, wf_execution, events)) = task else {
            return Ok(());
        };
        let workflow_id = WorkflowId(wf_execution.workflow_id.clone());
        let run_id = RunId(wf_execution.run_id.clone());
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .learnt_run(&workflow_id, &run_id);
        // The rest of the history, if the task delivered only its first page.
        let mut client = self.clients().temporal;
        let history = if answer.next_page_token.is_empty() {
            events
        } else {
            match Self::full_history(
                &mut client,
                &workflow_id,
                &run_id,
                answer.next_page_token.clone(),
                events,
            )
            .await
            {
                Ok(history) => history,
                // The task times out and is dispatched again.
                Err(_) => return Ok(()),
            }
        };
        let decision = plan::decide(&workflow_id.0, &run_id.0, &queue, &history);
        let message = RespondWorkflowTaskCompletedRequest {
            namespace: NAMESPACE.to_owned(),
            task_token: answer.task_token,
            commands: decision.commands,
            identity: format!("chaos-p{}", self.id.0),
            ..Default::default()
        };
        match decision.timer {
            Some((timer_id, duration_ms)) => {
                let op = Op::StartTimer {
                    workflow_id,
                    run_id,
                    timer_id: TimerId(timer_id),
                    duration_ms,
                };
                self.record(op, async move {
                    match client
                        .respond_workflow_task_completed(request(message, CALL_TIMEOUT))
                        .await
                    {
                        Ok(_) => OpCompletion::Ok(None),
                        Err(status) => completion(&status),
                    }
                })
                .await?;
            }
            // Not an operation of the history: its effects are judged through the events.
            None => {
                let _ = client
                    .respond_workflow_task_completed(request(message, CALL_TIMEOUT))
                    .await;
            }
        }
        Ok(())
    }

    async fn poll_activity(&mut self) -> Result<(), WorkloadError> {
        let queue = self.shared.task_queue.clone();
        let op = Op::PollActivity {
            task_queue: queue.clone(),
        };
        let message = PollActivityTaskQueueRequest {
            namespace: NAMESPACE.to_owned(),
            task_queue: Some(plan::task_queue(&queue)),
            identity: format!("chaos-p{}", self.id.0),
            ..Default::default()
        };
        let mut client = self.clients().temporal;
        let mut task = None;
        let task_slot = &mut task;
        self.record(op, async move {
            match client
                .poll_activity_task_queue(request(message, POLL_TIMEOUT))
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    if answer.task_token.is_empty() {
                        return OpCompletion::Ok(Some(OpValue::NoTask));
                    }
                    let execution = answer.workflow_execution.clone().unwrap_or_default();
                    let value = OpValue::ActivityTask {
                        workflow_id: WorkflowId(execution.workflow_id.clone()),
                        run_id: RunId(execution.run_id.clone()),
                        activity_id: ActivityId(answer.activity_id.clone()),
                        attempt: u32::try_from(answer.attempt).unwrap_or(0),
                    };
                    *task_slot = Some((answer.task_token, execution, answer.activity_id));
                    OpCompletion::Ok(Some(value))
                }
                Err(status) => completion(&status),
            }
        })
        .await?;
        let Some((task_token, wf_execution, activity_id)) = task else {
            return Ok(());
        };
        let mut client = self.clients().temporal;
        match self.rng.random_range(0..100) {
            0..80 => {
                let result = self.next_name("res");
                let op = Op::CompleteActivity {
                    workflow_id: WorkflowId(wf_execution.workflow_id),
                    run_id: RunId(wf_execution.run_id),
                    activity_id: ActivityId(activity_id),
                    result: result.clone(),
                };
                let message = RespondActivityTaskCompletedRequest {
                    namespace: NAMESPACE.to_owned(),
                    task_token,
                    result: Some(payload::encode(&result)),
                    identity: format!("chaos-p{}", self.id.0),
                    ..Default::default()
                };
                self.record(op, async move {
                    match client
                        .respond_activity_task_completed(request(message, CALL_TIMEOUT))
                        .await
                    {
                        Ok(_) => OpCompletion::Ok(None),
                        Err(status) => completion(&status),
                    }
                })
                .await?;
            }
            // Fails (the server retries it, up to 3 attempts): not an operation of the history.
            80..95 => {
                let _ = client
                    .respond_activity_task_failed(request(
                        RespondActivityTaskFailedRequest {
                            namespace: NAMESPACE.to_owned(),
                            task_token,
                            failure: Some(Failure {
                                message: "planned activity failure".to_owned(),
                                ..Default::default()
                            }),
                            identity: format!("chaos-p{}", self.id.0),
                            ..Default::default()
                        },
                        CALL_TIMEOUT,
                    ))
                    .await;
            }
            // Dropped: the activity times out and is retried.
            _ => {}
        }
        Ok(())
    }

    fn target_run(&mut self) -> Option<(WorkflowId, RunId)> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .some_run(&mut self.rng)
    }

    async fn read_history(&mut self) -> Result<(), WorkloadError> {
        let Some((workflow_id, run_id)) = self.target_run() else {
            return self.start_workflow().await;
        };
        let op = Op::ReadHistory {
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
        };
        let mut client = self.clients().temporal;
        self.record(op, async move {
            match Self::full_history(&mut client, &workflow_id, &run_id, Vec::new(), Vec::new())
                .await
            {
                Ok(events) => OpCompletion::Ok(Some(OpValue::Events {
                    events: events.iter().map(observe).collect(),
                })),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    OpCompletion::Ok(Some(OpValue::NotFound))
                }
                Err(status) => completion(&status),
            }
        })
        .await?;
        Ok(())
    }

    /// The close event of a run (`wait`: long-poll for it until the deadline).
    async fn close_event(
        client: &mut WorkflowServiceClient<Channel>,
        workflow_id: &WorkflowId,
        run_id: &RunId,
        wait: bool,
    ) -> Result<Option<(RunStatus, Option<String>)>, tonic::Status> {
        let answer = client
            .get_workflow_execution_history(request(
                GetWorkflowExecutionHistoryRequest {
                    namespace: NAMESPACE.to_owned(),
                    execution: Some(execution(workflow_id, Some(run_id))),
                    wait_new_event: wait,
                    history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                    ..Default::default()
                },
                if wait { POLL_TIMEOUT } else { CALL_TIMEOUT },
            ))
            .await?
            .into_inner();
        Ok(answer
            .history
            .map(|h| h.events)
            .unwrap_or_default()
            .iter()
            .find_map(close_of))
    }

    async fn describe(&mut self) -> Result<(), WorkloadError> {
        let Some((workflow_id, run_id)) = self.target_run() else {
            return self.start_workflow().await;
        };
        let named = self.rng.random_bool(0.5);
        let run_id = named.then_some(run_id);
        let op = Op::Describe {
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
        };
        let mut client = self.clients().temporal;
        self.record(op, async move {
            let answer = client
                .describe_workflow_execution(request(
                    DescribeWorkflowExecutionRequest {
                        namespace: NAMESPACE.to_owned(),
                        execution: Some(execution(&workflow_id, run_id.as_ref())),
                    },
                    CALL_TIMEOUT,
                ))
                .await;
            let info = match answer {
                Ok(answer) => answer
                    .into_inner()
                    .workflow_execution_info
                    .unwrap_or_default(),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return OpCompletion::Ok(Some(OpValue::NotFound));
                }
                Err(status) => return completion(&status),
            };
            let described_run = RunId(info.execution.map(|e| e.run_id).unwrap_or_default());
            let status = run_status(info.status);
            // Describe carries no result: a completed run's comes from its close event.
            let result = if status == RunStatus::Completed {
                match Self::close_event(&mut client, &workflow_id, &described_run, false).await {
                    Ok(Some((_, result))) => result,
                    Ok(None) => {
                        return OpCompletion::Fail("completed without a close event".into());
                    }
                    Err(status) => return completion(&status),
                }
            } else {
                None
            };
            OpCompletion::Ok(Some(OpValue::Outcome {
                run_id: described_run,
                status,
                result,
            }))
        })
        .await?;
        Ok(())
    }

    async fn get_result(&mut self) -> Result<(), WorkloadError> {
        let Some((workflow_id, run_id)) = self.target_run() else {
            return self.start_workflow().await;
        };
        let op = Op::GetResult {
            workflow_id: workflow_id.clone(),
            run_id: Some(run_id.clone()),
        };
        let mut client = self.clients().temporal;
        self.record(op, async move {
            match Self::close_event(&mut client, &workflow_id, &run_id, true).await {
                Ok(Some((status, result))) => OpCompletion::Ok(Some(OpValue::Outcome {
                    run_id,
                    status,
                    result,
                })),
                Ok(None) => OpCompletion::Ok(Some(OpValue::Outcome {
                    run_id,
                    status: RunStatus::Running,
                    result: None,
                })),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    OpCompletion::Ok(Some(OpValue::NotFound))
                }
                Err(status) => completion(&status),
            }
        })
        .await?;
        Ok(())
    }

    async fn raft_status(&mut self) -> Result<(), WorkloadError> {
        let clients = self.clients();
        let mut admin = clients.admin;
        self.record(Op::RaftStatus, async move {
            match applied_indexes(&mut admin, &clients.node, CALL_TIMEOUT).await {
                Ok(groups) => OpCompletion::Ok(Some(OpValue::RaftStatus {
                    groups: groups
                        .into_iter()
                        .map(|(group, applied_index, _)| GroupApplied {
                            group,
                            applied_index,
                        })
                        .collect(),
                })),
                Err(super::replica::ReplicaError::Rpc { code, message, .. }) => {
                    completion(&tonic::Status::new(code, message))
                }
                Err(other) => OpCompletion::Info(other.to_string()),
            }
        })
        .await?;
        Ok(())
    }
}

/// Runs one process until the main phase ends (by `phases` or the op budget), then drains.
pub async fn run_process(mut process: Process<'_>, phases: &Phases) -> Result<(), WorkloadError> {
    loop {
        let has_budget = process
            .shared
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        let Some(phase) = phases.phase(has_budget) else {
            return Ok(());
        };
        process.refresh_nodes()?;
        process.step(phase).await?;
    }
}
