//! A `perdura server start-dev` process for the node-level chaos tests (lazyfs power loss,
//! fsync errors): the binary next to the test's, start/kill, and the few Temporal calls the
//! tests make.

#![allow(dead_code)] // each test file uses a subset

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::transport::Channel;

/// The `perdura` binary next to this test's (`target/<profile>/perdura`).
pub fn perdura_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    profile_dir.join("perdura")
}

/// [`perdura_binary`], which the test needs built.
pub fn built_perdura_binary() -> PathBuf {
    let binary = perdura_binary();
    assert!(
        binary.exists(),
        "{} is missing: cargo build -p perdura-node",
        binary.display()
    );
    binary
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(binary: &Path, data_dir: &Path, port: u16, log: &Path) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        let mut child = Command::new(binary)
            .args(["server", "start-dev", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--db-filename")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn perdura");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("perdura exited before it listened on {addr}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "perdura never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, addr }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port for a server a test starts: bindable now, never handed out twice in this process,
/// and below the kernel's ephemeral range (32768–60999 by default) — a port from that range
/// can become the source port of an outgoing connection between this check and the server's
/// bind. Each process starts at its own offset in the range.
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

pub async fn client(addr: SocketAddr) -> WorkflowServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => return WorkflowServiceClient::new(channel),
            Err(e) if Instant::now() < deadline => {
                eprintln!("connecting: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

/// Starts `wid`; the acknowledged run ID, or `None` if the server did not acknowledge.
pub async fn start(client: &mut WorkflowServiceClient<Channel>, wid: &str) -> Option<String> {
    let request = ws::StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: wid.into(),
        workflow_type: Some(WorkflowType {
            name: "lazyfs".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "lazyfs".into(),
            ..Default::default()
        }),
        request_id: format!("request-{wid}"),
        ..Default::default()
    };
    match client.start_workflow_execution(request).await {
        Ok(reply) => Some(reply.into_inner().run_id),
        Err(status) => {
            eprintln!("start {wid}: {status}");
            None
        }
    }
}

pub async fn describe(client: &mut WorkflowServiceClient<Channel>, wid: &str) -> Option<String> {
    let request = ws::DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: wid.into(),
            run_id: String::new(),
        }),
    };
    let reply = client.describe_workflow_execution(request).await.ok()?;
    reply
        .into_inner()
        .workflow_execution_info
        .and_then(|info| info.execution)
        .map(|execution| execution.run_id)
}
