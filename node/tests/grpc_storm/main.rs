//! Bad input at the edge: a storm of random and malformed requests against the real `perdura`
//! binary over real gRPC, for every WorkflowService RPC the SDKs use, plus raw random bytes and
//! bit-flipped well-formed requests as request bodies and `grpc-timeout` headers no client library would send.
//!
//! Properties:
//! * every answer is OK or a deliberate status (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
//!   FAILED_PRECONDITION, RESOURCE_EXHAUSTED, …; DEADLINE_EXCEEDED only for calls that wait).
//!   INTERNAL or UNKNOWN for client input is a finding — except tonic's own protobuf decode
//!   failure for a raw body that is not a valid message;
//! * the server stays up (the process runs, answers GetSystemInfo) and never logs a panic;
//! * a workflow completed before the storm reads back byte-identical after it, and a fresh
//!   workflow still runs to completion.
//!
//! Reproduce: `cargo test -p perdura-node --test grpc_storm`; proptest prints the failing call
//! (the server's state carries over between cases, so the shrunk case is a hint, not a proof).

#[path = "../common/mod.rs"]
mod common;

mod calls;
mod input;
mod mutated;
mod raw;
mod workflow;

use calls::{Outcome, Storm, call};
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Code;
use tonic::transport::Channel;

/// The workflow completed before the storm; the storm aims calls at it too.
pub const BEFORE_WORKFLOW: &str = "before-storm";

/// Cases (1–5 concurrent calls each) run one after the other: 400 take about 20 s in debug;
/// `PROPTEST_CASES=5000` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// The real binary, its stderr in a file we read for panics.
struct Node {
    child: Child,
    stderr: std::path::PathBuf,
    port: u16,
}

impl Node {
    fn start(dir: &Path) -> Node {
        let port = common::free_port();
        let stderr = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_perdura"))
            .args(["dev", "--ephemeral", "--port", &port.to_string()])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn perdura");
        Node {
            child,
            stderr,
            port,
        }
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().expect("wait").is_none(),
            "the server exited; stderr:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(port: u16) -> (Channel, WorkflowServiceClient<Channel>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let endpoint = format!("http://127.0.0.1:{port}");
        if let Ok(channel) = Channel::from_shared(endpoint)
            .expect("endpoint")
            .connect()
            .await
        {
            let mut client = WorkflowServiceClient::new(channel.clone())
                .max_decoding_message_size(64 * 1024 * 1024);
            if client
                .get_system_info(ws::GetSystemInfoRequest::default())
                .await
                .is_ok()
            {
                return (channel, client);
            }
        }
        assert!(std::time::Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `outcome` is an answer the server meant to give.
fn deliberate(outcome: &Outcome) -> bool {
    let Err(status) = &outcome.result else {
        return true;
    };
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::OutOfRange
        | Code::PermissionDenied
        | Code::Unimplemented => true,
        Code::DeadlineExceeded | Code::Cancelled => outcome.waits,
        // tonic's own answer to a body that is not a protobuf message of the method's type.
        Code::Internal => outcome.raw && status.message().contains("decode"),
        _ => false,
    }
}

fn storm_cases(runtime: &tokio::runtime::Runtime, storm: &Storm, node: &Mutex<Node>) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(call(), 1..6), |calls| {
        let outcomes = runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, call) in calls.iter().cloned().enumerate() {
                let storm = storm.clone();
                tasks.spawn(async move { (i, storm.send(&call).await) });
            }
            let mut outcomes = Vec::new();
            while let Some(done) = tasks.join_next().await {
                outcomes.push(done.expect("a call task"));
            }
            outcomes
        });
        for (i, outcome) in &outcomes {
            storm.tally(&calls[*i], outcome);
            prop_assert!(
                deliberate(outcome),
                "{:?} answered {:?}",
                calls[*i],
                outcome.result
            );
        }
        node.lock().expect("node").assert_alive();
        Ok(())
    });
    if let Err(failure) = result {
        panic!(
            "{failure}\nserver stderr:\n{}",
            node.lock().expect("node").log()
        );
    }
}

#[test]
fn storm_of_malformed_requests_answers_deliberately_and_corrupts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Mutex::new(Node::start(dir.path()));
    let port = node.lock().expect("node").port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (channel, mut client) = runtime.block_on(connect(port));

    let before = runtime.block_on(workflow::run_to_completion(
        &mut client,
        BEFORE_WORKFLOW,
        "before-tq",
    ));
    let before_bytes = runtime.block_on(workflow::history_bytes(
        &mut client,
        BEFORE_WORKFLOW,
        &before,
    ));

    let storm = Storm {
        channel,
        client: client.clone(),
        task_tokens: Arc::new(Mutex::new(Vec::new())),
        page_tokens: Arc::new(Mutex::new(Vec::new())),
        answers: Arc::default(),
    };
    runtime.block_on(workflow::fixed_abuse(&storm));
    storm_cases(&runtime, &storm, &node);
    eprintln!("storm answers (call, code: count):");
    for (key, count) in storm.answers.lock().expect("answers").iter() {
        eprintln!("  {key}: {count}");
    }
    eprintln!(
        "task tokens handed out: {}",
        storm.task_tokens.lock().expect("tokens").len()
    );

    node.lock().expect("node").assert_alive();
    runtime
        .block_on(client.get_system_info(ws::GetSystemInfoRequest::default()))
        .expect("the server still answers");
    let after_bytes = runtime.block_on(workflow::history_bytes(
        &mut client,
        BEFORE_WORKFLOW,
        &before,
    ));
    assert_eq!(
        before_bytes, after_bytes,
        "the history of a workflow completed before the storm changed"
    );
    runtime.block_on(workflow::run_to_completion(
        &mut client,
        "after-storm",
        "after-tq",
    ));

    let log = node.lock().expect("node").log();
    assert!(
        !log.contains("panicked"),
        "the server panicked during the storm:\n{log}"
    );
}
