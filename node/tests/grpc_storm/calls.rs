//! The storm's calls: one variant per WorkflowService RPC the SDKs use (plus raw bytes and
//! bogus `grpc-timeout` headers), their proptest strategy, and how each is sent.

use crate::input::{
    Cmd, Name, Size, Span, Target, TokenBytes, command, concrete, duration, execution, name,
    namespace, payloads, queue, size, span, target, text, token, token_bytes, workflow_type,
};
use crate::raw;
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::update::v1::{
    Input, Meta, Request as UpdateRequest, UpdateRef, WaitPolicy,
};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Clone, Debug)]
pub enum Call {
    Start {
        namespace: Name,
        workflow: Name,
        task_queue: Name,
        request_id: Name,
        input: Size,
        timeouts: (Span, Span, Span),
        conflict: i32,
        reuse: i32,
    },
    Signal {
        namespace: Name,
        target: Target,
        signal: Name,
        input: Size,
        request_id: Name,
    },
    SignalWithStart {
        workflow: Name,
        task_queue: Name,
        signal: Name,
        input: Size,
    },
    CompleteWorkflowTask {
        token: TokenBytes,
        commands: Vec<Cmd>,
        sticky: Option<Span>,
    },
    FailWorkflowTask {
        token: TokenBytes,
        cause: i32,
    },
    /// 0: completed, 1: failed, 2: canceled, 3: heartbeat.
    ActivityByToken {
        token: TokenBytes,
        how: u8,
        size: Size,
    },
    ActivityById {
        namespace: Name,
        target: Target,
        activity: Name,
        how: u8,
        size: Size,
    },
    History {
        namespace: Name,
        target: Target,
        page: TokenBytes,
        page_size: i32,
        wait: bool,
        filter: i32,
    },
    Describe {
        namespace: Name,
        target: Target,
    },
    Terminate {
        namespace: Name,
        target: Target,
    },
    RequestCancel {
        namespace: Name,
        target: Target,
        request_id: Name,
    },
    Query {
        namespace: Name,
        target: Target,
        query_type: Name,
    },
    RespondQuery {
        token: TokenBytes,
        completed_type: i32,
        size: Size,
    },
    Update {
        namespace: Name,
        target: Target,
        update_id: Name,
        stage: i32,
    },
    PollUpdate {
        target: Target,
        update_id: Name,
        stage: i32,
    },
    MultiOperation {
        workflow: Name,
        update_id: Name,
        operations: u8,
    },
    Poll {
        activity: bool,
        namespace: Name,
        task_queue: Name,
        kind: i32,
    },
    RegisterNamespace {
        name: Name,
        retention: Span,
    },
    DescribeNamespace {
        name: Name,
        id: Name,
    },
    ListNamespaces {
        page_size: i32,
        page: Vec<u8>,
    },
    ShutdownWorker {
        namespace: Name,
        sticky: Name,
    },
    /// Random bytes as the request body of a method.
    Raw {
        method: u8,
        body: Vec<u8>,
    },
    /// A well-formed request with a few bytes changed, as a raw body.
    Mutated(crate::mutated::Mutation),
    /// A describe with a `grpc-timeout` header no client library would send.
    BadTimeoutHeader {
        method: u8,
        header: String,
    },
}

fn small_i32() -> impl Strategy<Value = i32> {
    prop_oneof![8 => 0i32..3, 1 => -1i32..6, 1 => any::<i32>()]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551615S".to_string()),
        Just("99999999999999H".to_string()),
        Just("5124095576030431H".to_string()),
        Just("".to_string()),
        Just("-5S".to_string()),
        Just("1X".to_string()),
        "[0-9]{1,22}[HMSmun]",
    ]
}

pub fn call() -> impl Strategy<Value = Call> {
    let start = (
        namespace(),
        name(),
        name(),
        name(),
        size(),
        (span(), span(), span()),
        small_i32(),
        small_i32(),
    )
        .prop_map(
            |(namespace, workflow, task_queue, request_id, input, timeouts, conflict, reuse)| {
                Call::Start {
                    namespace,
                    workflow,
                    task_queue,
                    request_id,
                    input,
                    timeouts,
                    conflict,
                    reuse,
                }
            },
        );
    let history = (
        namespace(),
        target(),
        token(),
        small_i32(),
        proptest::bool::weighted(0.2),
        small_i32(),
    )
        .prop_map(
            |(namespace, target, page, page_size, wait, filter)| Call::History {
                namespace,
                target,
                page,
                page_size,
                wait,
                filter,
            },
        );
    prop_oneof![
        4 => start,
        2 => (namespace(), target(), name(), size(), name()).prop_map(|(namespace, target, signal, input, request_id)| Call::Signal { namespace, target, signal, input, request_id }),
        1 => (name(), name(), name(), size()).prop_map(|(workflow, task_queue, signal, input)| Call::SignalWithStart { workflow, task_queue, signal, input }),
        4 => (token(), proptest::collection::vec(command(), 0..4), proptest::option::weighted(0.2, span())).prop_map(|(token, commands, sticky)| Call::CompleteWorkflowTask { token, commands, sticky }),
        1 => (token(), small_i32()).prop_map(|(token, cause)| Call::FailWorkflowTask { token, cause }),
        3 => (token(), 0u8..4, size()).prop_map(|(token, how, size)| Call::ActivityByToken { token, how, size }),
        1 => (namespace(), target(), name(), 0u8..4, size()).prop_map(|(namespace, target, activity, how, size)| Call::ActivityById { namespace, target, activity, how, size }),
        2 => history,
        1 => (namespace(), target()).prop_map(|(namespace, target)| Call::Describe { namespace, target }),
        1 => (namespace(), target()).prop_map(|(namespace, target)| Call::Terminate { namespace, target }),
        1 => (namespace(), target(), name()).prop_map(|(namespace, target, request_id)| Call::RequestCancel { namespace, target, request_id }),
        1 => (namespace(), target(), name()).prop_map(|(namespace, target, query_type)| Call::Query { namespace, target, query_type }),
        1 => (token(), small_i32(), size()).prop_map(|(token, completed_type, size)| Call::RespondQuery { token, completed_type, size }),
        1 => (namespace(), target(), name(), small_i32()).prop_map(|(namespace, target, update_id, stage)| Call::Update { namespace, target, update_id, stage }),
        1 => (target(), name(), small_i32()).prop_map(|(target, update_id, stage)| Call::PollUpdate { target, update_id, stage }),
        1 => (name(), name(), 0u8..4).prop_map(|(workflow, update_id, operations)| Call::MultiOperation { workflow, update_id, operations }),
        3 => (any::<bool>(), namespace(), name(), small_i32()).prop_map(|(activity, namespace, task_queue, kind)| Call::Poll { activity, namespace, task_queue, kind }),
        1 => (name(), span()).prop_map(|(name, retention)| Call::RegisterNamespace { name, retention }),
        1 => (name(), name()).prop_map(|(name, id)| Call::DescribeNamespace { name, id }),
        1 => (small_i32(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(page_size, page)| Call::ListNamespaces { page_size, page }),
        1 => (namespace(), name()).prop_map(|(namespace, sticky)| Call::ShutdownWorker { namespace, sticky }),
        3 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(method, body)| Call::Raw { method, body }),
        1 => (any::<u8>(), header()).prop_map(|(method, header)| Call::BadTimeoutHeader { method, header }),
        3 => crate::mutated::mutation().prop_map(Call::Mutated),
    ]
}

/// What the storm shares between calls: the client and every token the server handed out.
#[derive(Clone)]
pub struct Storm {
    pub channel: Channel,
    pub client: WorkflowServiceClient<Channel>,
    pub task_tokens: Arc<Mutex<Vec<Vec<u8>>>>,
    pub page_tokens: Arc<Mutex<Vec<Vec<u8>>>>,
    /// How often each kind of call got each answer code, for the summary.
    pub answers: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
}

/// How long a call may wait for a worker or a long poll: short, so the storm moves on.
pub const SHORT_WAIT: Duration = Duration::from_millis(300);
/// The deadline of every other call: a server that does not answer by then hangs.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(20);

/// The answer to a call; `waits` says whether DEADLINE_EXCEEDED is a legitimate answer.
pub struct Outcome {
    pub result: Result<(), Status>,
    pub waits: bool,
    pub raw: bool,
}

fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

fn ok<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
    result.map(|_| ())
}

impl Storm {
    pub fn tally(&self, call: &Call, outcome: &Outcome) {
        let variant = format!("{call:?}");
        let variant = variant
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_string();
        let code = outcome
            .result
            .as_ref()
            .err()
            .map_or(tonic::Code::Ok, Status::code);
        *self
            .answers
            .lock()
            .expect("answers")
            .entry(format!("{variant}, {code:?}"))
            .or_default() += 1;
    }

    fn seen_task_token(&self, token: &TokenBytes) -> Vec<u8> {
        token_bytes(token, &self.task_tokens.lock().expect("tokens"))
    }

    fn remember(&self, token: Vec<u8>) {
        if !token.is_empty() {
            self.task_tokens.lock().expect("tokens").push(token);
        }
    }

    pub async fn send(&self, call: &Call) -> Outcome {
        let mut c = self.client.clone();
        let (mut waits, mut raw_call) = (false, false);
        let t = ANSWER_DEADLINE;
        let result = match call {
            Call::Start {
                namespace: ns,
                workflow,
                task_queue,
                request_id,
                input,
                timeouts,
                conflict,
                reuse,
            } => {
                let message = ws::StartWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    workflow_id: text(workflow, "wf"),
                    workflow_type: workflow_type(workflow),
                    task_queue: queue(task_queue),
                    request_id: text(request_id, "req"),
                    input: payloads(input),
                    workflow_execution_timeout: duration(&timeouts.0),
                    workflow_run_timeout: duration(&timeouts.1),
                    workflow_task_timeout: duration(&timeouts.2),
                    workflow_id_conflict_policy: *conflict,
                    workflow_id_reuse_policy: *reuse,
                    ..Default::default()
                };
                ok(c.start_workflow_execution(request(message, t)).await)
            }
            Call::Signal {
                namespace: ns,
                target: to,
                signal,
                input,
                request_id,
            } => {
                let message = ws::SignalWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    workflow_execution: execution(to),
                    signal_name: text(signal, "signal"),
                    input: payloads(input),
                    request_id: text(request_id, "sig"),
                    ..Default::default()
                };
                ok(c.signal_workflow_execution(request(message, t)).await)
            }
            Call::SignalWithStart {
                workflow,
                task_queue,
                signal,
                input,
            } => {
                let message = ws::SignalWithStartWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_id: text(workflow, "wf"),
                    workflow_type: workflow_type(workflow),
                    task_queue: queue(task_queue),
                    signal_name: text(signal, "signal"),
                    signal_input: payloads(input),
                    ..Default::default()
                };
                ok(c.signal_with_start_workflow_execution(request(message, t))
                    .await)
            }
            Call::CompleteWorkflowTask {
                token: tb,
                commands,
                sticky,
            } => {
                let message = ws::RespondWorkflowTaskCompletedRequest {
                    task_token: self.seen_task_token(tb),
                    commands: commands.iter().map(concrete).collect(),
                    namespace: "default".into(),
                    sticky_attributes: sticky.as_ref().map(|s| {
                        temporalio_protos::temporal::api::taskqueue::v1::StickyExecutionAttributes {
                            worker_task_queue: queue(&Name::Known(9)),
                            schedule_to_start_timeout: duration(s),
                        }
                    }),
                    ..Default::default()
                };
                ok(c.respond_workflow_task_completed(request(message, t)).await)
            }
            Call::FailWorkflowTask { token: tb, cause } => {
                let message = ws::RespondWorkflowTaskFailedRequest {
                    task_token: self.seen_task_token(tb),
                    cause: *cause,
                    namespace: "default".into(),
                    ..Default::default()
                };
                ok(c.respond_workflow_task_failed(request(message, t)).await)
            }
            Call::ActivityByToken {
                token: tb,
                how,
                size: s,
            } => {
                let task_token = self.seen_task_token(tb);
                let namespace = "default".to_string();
                match how {
                    0 => ok(c
                        .respond_activity_task_completed(request(
                            ws::RespondActivityTaskCompletedRequest {
                                task_token,
                                namespace,
                                result: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    1 => ok(c
                        .respond_activity_task_failed(request(
                            ws::RespondActivityTaskFailedRequest {
                                task_token,
                                namespace,
                                failure: Some(Failure::default()),
                                last_heartbeat_details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    2 => ok(c
                        .respond_activity_task_canceled(request(
                            ws::RespondActivityTaskCanceledRequest {
                                task_token,
                                namespace,
                                details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    _ => ok(c
                        .record_activity_task_heartbeat(request(
                            ws::RecordActivityTaskHeartbeatRequest {
                                task_token,
                                namespace,
                                details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                }
            }
            Call::ActivityById {
                namespace: ns,
                target: to,
                activity,
                how,
                size: s,
            } => {
                let WorkflowExecution {
                    workflow_id,
                    run_id,
                } = execution(to).unwrap_or_default();
                let (namespace, activity_id) = (text(ns, "ns"), text(activity, "act"));
                match how {
                    0 => ok(c
                        .respond_activity_task_completed_by_id(request(
                            ws::RespondActivityTaskCompletedByIdRequest {
                                namespace,
                                workflow_id,
                                run_id,
                                activity_id,
                                result: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    1 => ok(c
                        .respond_activity_task_failed_by_id(request(
                            ws::RespondActivityTaskFailedByIdRequest {
                                namespace,
                                workflow_id,
                                run_id,
                                activity_id,
                                last_heartbeat_details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    2 => ok(c
                        .respond_activity_task_canceled_by_id(request(
                            ws::RespondActivityTaskCanceledByIdRequest {
                                namespace,
                                workflow_id,
                                run_id,
                                activity_id,
                                details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                    _ => ok(c
                        .record_activity_task_heartbeat_by_id(request(
                            ws::RecordActivityTaskHeartbeatByIdRequest {
                                namespace,
                                workflow_id,
                                run_id,
                                activity_id,
                                details: payloads(s),
                                ..Default::default()
                            },
                            t,
                        ))
                        .await),
                }
            }
            Call::History {
                namespace: ns,
                target: to,
                page,
                page_size,
                wait,
                filter,
            } => {
                waits = *wait;
                let next_page_token = token_bytes(page, &self.page_tokens.lock().expect("pages"));
                let message = ws::GetWorkflowExecutionHistoryRequest {
                    namespace: text(ns, "ns"),
                    execution: execution(to),
                    maximum_page_size: *page_size,
                    next_page_token,
                    wait_new_event: *wait,
                    history_event_filter_type: *filter,
                    ..Default::default()
                };
                let timeout = if *wait { SHORT_WAIT } else { t };
                match c
                    .get_workflow_execution_history(request(message, timeout))
                    .await
                {
                    Ok(reply) => {
                        let token = reply.into_inner().next_page_token;
                        if !token.is_empty() {
                            self.page_tokens.lock().expect("pages").push(token);
                        }
                        Ok(())
                    }
                    Err(status) => Err(status),
                }
            }
            Call::Describe {
                namespace: ns,
                target: to,
            } => {
                let message = ws::DescribeWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    execution: execution(to),
                };
                ok(c.describe_workflow_execution(request(message, t)).await)
            }
            Call::Terminate {
                namespace: ns,
                target: to,
            } => {
                let message = ws::TerminateWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    workflow_execution: execution(to),
                    ..Default::default()
                };
                ok(c.terminate_workflow_execution(request(message, t)).await)
            }
            Call::RequestCancel {
                namespace: ns,
                target: to,
                request_id,
            } => {
                let message = ws::RequestCancelWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    workflow_execution: execution(to),
                    request_id: text(request_id, "cancel"),
                    ..Default::default()
                };
                ok(c.request_cancel_workflow_execution(request(message, t))
                    .await)
            }
            Call::Query {
                namespace: ns,
                target: to,
                query_type,
            } => {
                waits = true;
                let message = ws::QueryWorkflowRequest {
                    namespace: text(ns, "ns"),
                    execution: execution(to),
                    query: Some(WorkflowQuery {
                        query_type: text(query_type, "query"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                ok(c.query_workflow(request(message, SHORT_WAIT)).await)
            }
            Call::RespondQuery {
                token: tb,
                completed_type,
                size: s,
            } => {
                let message = ws::RespondQueryTaskCompletedRequest {
                    task_token: self.seen_task_token(tb),
                    completed_type: *completed_type,
                    query_result: payloads(s),
                    namespace: "default".into(),
                    ..Default::default()
                };
                ok(c.respond_query_task_completed(request(message, t)).await)
            }
            Call::Update {
                namespace: ns,
                target: to,
                update_id,
                stage,
            } => {
                waits = true;
                let message = ws::UpdateWorkflowExecutionRequest {
                    namespace: text(ns, "ns"),
                    workflow_execution: execution(to),
                    wait_policy: Some(WaitPolicy {
                        lifecycle_stage: *stage,
                    }),
                    request: Some(update_request(update_id)),
                    ..Default::default()
                };
                ok(c.update_workflow_execution(request(message, SHORT_WAIT))
                    .await)
            }
            Call::PollUpdate {
                target: to,
                update_id,
                stage,
            } => {
                waits = true;
                let message = ws::PollWorkflowExecutionUpdateRequest {
                    namespace: "default".into(),
                    update_ref: Some(UpdateRef {
                        workflow_execution: execution(to),
                        update_id: text(update_id, "upd"),
                    }),
                    wait_policy: Some(WaitPolicy {
                        lifecycle_stage: *stage,
                    }),
                    ..Default::default()
                };
                ok(
                    c.poll_workflow_execution_update(request(message, SHORT_WAIT))
                        .await,
                )
            }
            Call::MultiOperation {
                workflow,
                update_id,
                operations,
            } => {
                waits = true;
                ok(c.execute_multi_operation(request(
                    multi_operation(workflow, update_id, *operations),
                    SHORT_WAIT,
                ))
                .await)
            }
            Call::Poll {
                activity,
                namespace: ns,
                task_queue,
                kind,
            } => {
                waits = true;
                let mut task_queue = queue(task_queue).unwrap_or_default();
                task_queue.kind = *kind;
                if *activity {
                    let message = ws::PollActivityTaskQueueRequest {
                        namespace: text(ns, "ns"),
                        task_queue: Some(task_queue),
                        ..Default::default()
                    };
                    match c
                        .poll_activity_task_queue(request(message, SHORT_WAIT))
                        .await
                    {
                        Ok(r) => {
                            self.remember(r.into_inner().task_token);
                            Ok(())
                        }
                        Err(status) => Err(status),
                    }
                } else {
                    let message = ws::PollWorkflowTaskQueueRequest {
                        namespace: text(ns, "ns"),
                        task_queue: Some(task_queue),
                        ..Default::default()
                    };
                    match c
                        .poll_workflow_task_queue(request(message, SHORT_WAIT))
                        .await
                    {
                        Ok(r) => {
                            let r = r.into_inner();
                            self.remember(r.task_token);
                            if !r.next_page_token.is_empty() {
                                self.page_tokens
                                    .lock()
                                    .expect("pages")
                                    .push(r.next_page_token);
                            }
                            Ok(())
                        }
                        Err(status) => Err(status),
                    }
                }
            }
            Call::RegisterNamespace { name: n, retention } => {
                let message = ws::RegisterNamespaceRequest {
                    namespace: text(n, "storm-ns"),
                    workflow_execution_retention_period: duration(retention),
                    ..Default::default()
                };
                ok(c.register_namespace(request(message, t)).await)
            }
            Call::DescribeNamespace { name: n, id } => {
                let message = ws::DescribeNamespaceRequest {
                    namespace: text(n, "ns"),
                    id: text(id, "id"),
                    ..Default::default()
                };
                ok(c.describe_namespace(request(message, t)).await)
            }
            Call::ListNamespaces { page_size, page } => {
                let message = ws::ListNamespacesRequest {
                    page_size: *page_size,
                    next_page_token: page.clone(),
                    ..Default::default()
                };
                ok(c.list_namespaces(request(message, t)).await)
            }
            Call::ShutdownWorker {
                namespace: ns,
                sticky,
            } => {
                let message = ws::ShutdownWorkerRequest {
                    namespace: text(ns, "ns"),
                    sticky_task_queue: text(sticky, "sticky"),
                    ..Default::default()
                };
                ok(c.shutdown_worker(request(message, t)).await)
            }
            Call::Raw { method, body } => {
                raw_call = true;
                waits = true;
                let method = raw::METHODS[usize::from(*method) % raw::METHODS.len()];
                raw::call(self.channel.clone(), method, body.clone(), SHORT_WAIT)
                    .await
                    .map(|_| ())
            }
            Call::Mutated(mutation) => {
                raw_call = true;
                waits = true;
                let token = self.seen_task_token(&TokenBytes::Seen {
                    pick: mutation.seed,
                    flip: None,
                });
                let (method, body) = crate::mutated::body(mutation, token);
                raw::call(self.channel.clone(), method, body, SHORT_WAIT)
                    .await
                    .map(|_| ())
            }
            Call::BadTimeoutHeader { method, header } => {
                waits = true;
                bad_timeout_header(&mut c, *method, header).await
            }
        };
        Outcome {
            result,
            waits,
            raw: raw_call,
        }
    }
}

fn update_request(update_id: &Name) -> UpdateRequest {
    UpdateRequest {
        meta: Some(Meta {
            update_id: text(update_id, "upd"),
            identity: String::new(),
        }),
        input: Some(Input {
            name: text(update_id, "handler"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn multi_operation(
    workflow: &Name,
    update_id: &Name,
    operations: u8,
) -> ws::ExecuteMultiOperationRequest {
    use ws::execute_multi_operation_request::{Operation, operation};
    let workflow_id = text(workflow, "wf");
    let start = Operation {
        operation: Some(operation::Operation::StartWorkflow(
            ws::StartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: workflow_id.clone(),
                workflow_type: workflow_type(workflow),
                task_queue: queue(&Name::Known(0)),
                ..Default::default()
            },
        )),
    };
    let update = Operation {
        operation: Some(operation::Operation::UpdateWorkflow(
            ws::UpdateWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id,
                    run_id: String::new(),
                }),
                request: Some(update_request(update_id)),
                ..Default::default()
            },
        )),
    };
    let operations = match operations {
        0 => vec![],
        1 => vec![start],
        2 => vec![update, start],
        _ => vec![start, update],
    };
    ws::ExecuteMultiOperationRequest {
        namespace: "default".into(),
        operations,
        ..Default::default()
    }
}

/// A call whose `grpc-timeout` header is `header` verbatim (the generated client would write a
/// well-formed one).
async fn bad_timeout_header(
    c: &mut WorkflowServiceClient<Channel>,
    method: u8,
    header: &str,
) -> Result<(), Status> {
    fn with_header<T>(message: T, header: &str) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = header.parse() {
            request.metadata_mut().insert("grpc-timeout", value);
        }
        request
    }
    let execution = Some(WorkflowExecution {
        workflow_id: "wf-0".into(),
        run_id: String::new(),
    });
    // Each call must come back soon whatever the header says; the caller's timeout guards it.
    let call = async {
        match method % 4 {
            0 => ok(c
                .query_workflow(with_header(
                    ws::QueryWorkflowRequest {
                        namespace: "default".into(),
                        execution,
                        query: Some(WorkflowQuery {
                            query_type: "q".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    header,
                ))
                .await),
            1 => ok(c
                .poll_workflow_task_queue(with_header(
                    ws::PollWorkflowTaskQueueRequest {
                        namespace: "default".into(),
                        task_queue: queue(&Name::Known(7)),
                        ..Default::default()
                    },
                    header,
                ))
                .await),
            2 => ok(c
                .get_workflow_execution_history(with_header(
                    ws::GetWorkflowExecutionHistoryRequest {
                        namespace: "default".into(),
                        execution,
                        wait_new_event: true,
                        ..Default::default()
                    },
                    header,
                ))
                .await),
            _ => ok(c
                .update_workflow_execution(with_header(
                    ws::UpdateWorkflowExecutionRequest {
                        namespace: "default".into(),
                        workflow_execution: execution,
                        request: Some(update_request(&Name::Known(1))),
                        ..Default::default()
                    },
                    header,
                ))
                .await),
        }
    };
    match tokio::time::timeout(SHORT_WAIT, call).await {
        Ok(result) => result,
        // The header asked for a long wait and the server honours it: we stop waiting.
        Err(_) => Err(Status::deadline_exceeded("the storm stopped waiting")),
    }
}
