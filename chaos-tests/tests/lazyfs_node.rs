//! A real Perdura node on our lazyfs keeps Perdura's promise "acknowledged ⇒ fsynced": a
//! `perdura server start-dev` whose data dir is on the mount acknowledges workflow starts, is
//! SIGKILLed, loses every unsynced byte (`clear-cache`, a power loss), restarts on the same dir
//! and still has every run it acknowledged. Needs root and /dev/fuse; skipped otherwise.

use perdura_chaos::lazyfs::control::ControlCommand;
use perdura_chaos::lazyfs::{MountedLazyFs, can_mount};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::transport::Channel;

/// The `perdura` binary next to this test's (`target/<profile>/perdura`).
fn perdura_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    profile_dir.join("perdura")
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(binary: &Path, data_dir: &Path, port: u16, log: &Path) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        let child = Command::new(binary)
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
            assert!(
                Instant::now() < deadline,
                "perdura never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn client(addr: SocketAddr) -> WorkflowServiceClient<Channel> {
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
async fn start(client: &mut WorkflowServiceClient<Channel>, wid: &str) -> Option<String> {
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

async fn describe(client: &mut WorkflowServiceClient<Channel>, wid: &str) -> Option<String> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_lazyfs_keeps_every_acknowledged_start_across_sigkill_and_power_loss() {
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return;
    }
    let binary = perdura_binary();
    assert!(
        binary.exists(),
        "{} is missing: cargo build -p perdura-node",
        binary.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = dir.path().join("backing");
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&backing).expect("backing");
    std::fs::create_dir(&mountpoint).expect("mountpoint");
    let lazyfs = MountedLazyFs::mount(&backing, &mountpoint, None).expect("mount lazyfs");
    let data_dir = mountpoint.join("data");
    let log = dir.path().join("node.log");
    let port = free_port();

    let mut server = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(server.addr).await;
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while acknowledged.len() < 40 {
        assert!(
            Instant::now() < deadline,
            "the node acknowledged too few starts"
        );
        let wid = format!("lazyfs-{i}");
        i += 1;
        if let Some(run_id) = start(&mut grpc, &wid).await {
            acknowledged.push((wid, run_id));
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    server.kill();
    // Requests the dead process had in flight are answered before the cache is dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dropped = lazyfs
        .command(ControlCommand::ClearCache)
        .expect("clear-cache");
    eprintln!("power loss dropped {dropped:?}");
    assert!(
        dropped.bytes > 0,
        "the node left nothing unsynced, so this run proves nothing: {dropped:?}"
    );

    let server = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(server.addr).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = acknowledged.clone();
    while !missing.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (wid, run_id) in missing {
            match describe(&mut grpc, &wid).await {
                Some(found) => assert_eq!(found, run_id, "{wid} has another run after restart"),
                None => still.push((wid, run_id)),
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        missing.is_empty(),
        "acknowledged starts lost in the power loss: {missing:?}\nnode log:\n{log_text}"
    );
    assert!(
        start(&mut grpc, "lazyfs-after").await.is_some(),
        "the restarted node serves new starts\nnode log:\n{log_text}"
    );
    drop(server);
    lazyfs.unmount().expect("unmount");
}
