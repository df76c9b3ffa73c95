//! Shared helpers of the end-to-end tests: the real `perdura` binary and a raw gRPC client.
#![allow(dead_code)]

use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::transport::Channel;

pub struct Server {
    child: Mutex<Child>,
    pub port: u16,
}

impl Server {
    pub fn start(args: &[&str], port: u16) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_perdura"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn perdura");
        Server {
            child: Mutex::new(child),
            port,
        }
    }

    /// Panics if the process has exited (a server that exited never becomes ready).
    fn assert_running(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the server for port {} exited before it became ready: {status}",
                self.port
            );
        }
    }

    pub async fn client(&self) -> WorkflowServiceClient<Channel> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let endpoint = format!("http://127.0.0.1:{}", self.port);
            if let Ok(channel) = Channel::from_shared(endpoint)
                .expect("endpoint")
                .connect()
                .await
            {
                let mut client = WorkflowServiceClient::new(channel);
                if client
                    .get_system_info(ws::GetSystemInfoRequest::default())
                    .await
                    .is_ok()
                {
                    return client;
                }
            }
            self.assert_running();
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn terminate(self) -> std::process::ExitStatus {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port for a server a test starts: bindable now, never handed out twice in this process,
/// and below the kernel's ephemeral range (32768–60999 by default). A port from that range —
/// what binding port 0 gives — can become the source port of any outgoing connection (another
/// test's, a peer's) between this check and the server's bind; the server then cannot bind
/// and never becomes ready. Each process starts at its own offset in the range.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    loop {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < SPAN,
            "every port from {LOW} to {} was handed out",
            LOW + SPAN
        );
        let port = u16::try_from(LOW + (offset + n) % SPAN).expect("below 32000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn start_request(workflow_id: &str, request_id: &str) -> ws::StartWorkflowExecutionRequest {
    ws::StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "Probe".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "probe-tq".into(),
            ..Default::default()
        }),
        request_id: request_id.into(),
        ..Default::default()
    }
}

pub fn describe_request(workflow_id: &str, run_id: &str) -> ws::DescribeWorkflowExecutionRequest {
    ws::DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
        }),
    }
}

/// Starts `perdura dev --ephemeral` on a free port.
pub fn ephemeral() -> Server {
    let port = free_port();
    let port_arg = port.to_string();
    Server::start(
        &[
            "dev",
            "--ephemeral",
            "--port",
            &port_arg,
            "--log-level",
            "warn",
        ],
        port,
    )
}

pub fn history_request(workflow_id: &str, run_id: &str) -> ws::GetWorkflowExecutionHistoryRequest {
    ws::GetWorkflowExecutionHistoryRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
        }),
        ..Default::default()
    }
}

pub fn poll_workflow_request(task_queue: &str) -> ws::PollWorkflowTaskQueueRequest {
    ws::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: task_queue.into(),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    }
}

/// Runs the binary to its exit (killed after `limit`) and returns its status and stderr.
pub fn run_to_exit(args: &[&str], limit: Duration) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_perdura"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn perdura");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("perdura {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    (status, stderr)
}
