//! One `perdura server start` process inside its node's network namespace: spawned through
//! `ip netns exec`, its data dir and log under the run's directory, killed with SIGKILL, paused
//! with SIGSTOP/SIGCONT, stopped gracefully with SIGTERM, and (when clock faults are enabled)
//! run under libfaketime whose offset file the harness rewrites at runtime. With disk faults its
//! data dir is a lazyfs mount over `backing/` (power loss: [`NodeProcess::lose_unsynced`]) and
//! strace can make its fsyncs fail ([`NodeProcess::inject_fsync_errors`]); see [`super::disk`].
//!
//! Invariants: at most one live process per node; the data dir survives kill and restart (only
//! [`NodeProcess::wipe`] removes it); a paused process is resumed before it is killed or
//! stopped, so nothing is left stopped; the process is killed when the handle is dropped.

use super::disk::{DiskFaultError, NodeDisk};
use super::exec::{ExecError, run_quietly};
use crate::ids::NodeId;
use crate::lazyfs::cache::CacheCounts;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

pub const GRPC_PORT: u16 = 7233;
pub const PEER_PORT: u16 = 7001;
pub const METRICS_PORT: u16 = 9090;

/// Where Debian's `faketime` package puts the preload library.
pub const DEFAULT_LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("node {node}: {what}: {source}")]
    Io {
        node: NodeId,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("node {0} is already running")]
    AlreadyRunning(NodeId),
    #[error("node {node}: {source}")]
    Disk {
        node: NodeId,
        source: DiskFaultError,
    },
    #[error("node {0} is not running")]
    NotRunning(NodeId),
    #[error("node {node} did not accept connections on {addr} within {seconds}s (log: {log})")]
    NotReady {
        node: NodeId,
        addr: SocketAddr,
        seconds: u64,
        log: String,
    },
}

/// How a node enters the cluster.
#[derive(Clone, Debug)]
pub enum Membership {
    /// `--initial-cluster 1=ip:port,…` (bootstraps with the others).
    Initial(String),
    /// `--join PEER_ADDR` (a fresh node joining a running cluster).
    Join(String),
}

/// Everything needed to start one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node: NodeId,
    pub namespace: String,
    pub ip: std::net::Ipv4Addr,
    pub binary: PathBuf,
    /// The node's own directory: `data/`, `node.log`, `clock-offset`.
    pub dir: PathBuf,
    pub groups: u32,
    pub membership: Membership,
    /// The libfaketime library, when clock faults are enabled.
    pub libfaketime: Option<PathBuf>,
    /// Put `data/` on a lazyfs mount over `backing/` (the `lose-unsynced` fault).
    pub lazyfs: bool,
}

impl NodeConfig {
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, GRPC_PORT))
    }

    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, PEER_PORT))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where the data dir's files really are when it is a lazyfs mount.
    pub fn backing_dir(&self) -> PathBuf {
        self.dir.join("backing")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn clock_file(&self) -> PathBuf {
        self.dir.join("clock-offset")
    }

    /// The command line (without the `ip netns exec` and environment around it).
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "server".to_owned(),
            "start".to_owned(),
            "--node-id".to_owned(),
            self.node.0.to_string(),
            "--data-dir".to_owned(),
            self.data_dir().display().to_string(),
            "--grpc-addr".to_owned(),
            self.grpc_addr().to_string(),
            "--peer-addr".to_owned(),
            self.peer_addr().to_string(),
            "--groups".to_owned(),
            self.groups.to_string(),
            "--metrics-addr".to_owned(),
            SocketAddr::from((self.ip, METRICS_PORT)).to_string(),
        ];
        match &self.membership {
            Membership::Initial(cluster) => {
                args.extend(["--initial-cluster".to_owned(), cluster.clone()])
            }
            Membership::Join(peer) => args.extend(["--join".to_owned(), peer.clone()]),
        }
        args
    }
}

pub struct NodeProcess {
    pub config: NodeConfig,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    // Dropped after `Drop::drop` killed the process: strace detaches, then the mount goes.
    disk: NodeDisk,
}

impl NodeProcess {
    pub fn new(config: NodeConfig) -> Result<NodeProcess, NodeError> {
        let io = |what| {
            let node = config.node;
            move |source| NodeError::Io { node, what, source }
        };
        fs::create_dir_all(config.data_dir()).map_err(io("creating the data dir"))?;
        let disk = if config.lazyfs {
            NodeDisk::with_lazyfs(&config.backing_dir(), &config.data_dir()).map_err(|source| {
                NodeError::Disk {
                    node: config.node,
                    source,
                }
            })?
        } else {
            NodeDisk::default()
        };
        let process = NodeProcess {
            config,
            child: None,
            paused: false,
            starts: 0,
            disk,
        };
        process.set_clock_offset(0)?;
        Ok(process)
    }

    pub fn id(&self) -> NodeId {
        self.config.node
    }

    /// Whether the process is running (possibly paused).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                self.paused = false;
                false
            }
            None => false,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server in its namespace, appending its output to `node.log`.
    pub fn start(&mut self) -> Result<(), NodeError> {
        if self.is_running() {
            return Err(NodeError::AlreadyRunning(self.id()));
        }
        let node = self.id();
        let io = |what| move |source| NodeError::Io { node, what, source };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.log_path())
            .map_err(io("opening the log"))?;
        self.starts += 1;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.config.namespace, "env"]);
        if let Some(lib) = &self.config.libfaketime {
            command.arg(format!("LD_PRELOAD={}", lib.display()));
            command.arg(format!(
                "FAKETIME_TIMESTAMP_FILE={}",
                self.config.clock_file().display()
            ));
            // Re-read the offset file at most once a second; monotonic clocks stay real, so
            // timeouts and Raft elections are untouched and only wall-clock time is skewed.
            command.args([
                "FAKETIME_CACHE_DURATION=1",
                "FAKETIME_DONT_FAKE_MONOTONIC=1",
            ]);
        }
        command.arg("RUST_BACKTRACE=1");
        command.arg(&self.config.binary);
        command.args(self.config.server_args());
        writeln!(
            log,
            "\n===== start #{} of node {}: {}",
            self.starts,
            node.0,
            super::exec::describe(&command)
        )
        .map_err(io("writing the log"))?;
        let stderr = log.try_clone().map_err(io("opening the log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(io("spawning the server"))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Waits until the node accepts TCP connections on its gRPC address.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), NodeError> {
        let addr = self.config.grpc_addr();
        let deadline = Instant::now() + timeout;
        loop {
            // The client port accepts connections before the node has joined (it is bound
            // first); only the health check's SERVING means the node serves. A rolling restart
            // that moved on at the first TCP connect took down more than f nodes at once.
            if serving(addr).await {
                return Ok(());
            }
            if Instant::now() >= deadline || !self.is_running() {
                return Err(NodeError::NotReady {
                    node: self.id(),
                    addr,
                    seconds: timeout.as_secs(),
                    log: self.config.log_path().display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL: the process dies at once with whatever it had not fsynced.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process dies of SIGKILL too; SIGCONT first is not needed.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGTERM and a clean exit within `grace`, else SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        self.resume();
        let Some(pid) = self.pid() else { return };
        run_quietly("kill", &["-TERM", &pid.to_string()]);
        let deadline = Instant::now() + grace;
        while self.is_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill();
    }

    /// SIGSTOP. Returns whether a running process was paused.
    pub fn pause(&mut self) -> bool {
        match self.pid() {
            Some(pid) if !self.paused && self.is_running() => {
                self.paused = run_quietly("kill", &["-STOP", &pid.to_string()]);
                self.paused
            }
            _ => false,
        }
    }

    /// SIGCONT (no-op unless paused).
    pub fn resume(&mut self) {
        if let (Some(pid), true) = (self.pid(), self.paused) {
            run_quietly("kill", &["-CONT", &pid.to_string()]);
        }
        self.paused = false;
    }

    /// Sets the wall-clock offset libfaketime applies (seconds; only effective when the node
    /// runs under libfaketime).
    pub fn set_clock_offset(&self, seconds: i64) -> Result<(), NodeError> {
        write_clock_offset(&self.config.clock_file(), seconds).map_err(|source| NodeError::Io {
            node: self.id(),
            what: "writing the clock offset",
            source,
        })
    }

    /// Power loss of a dead node: drops every byte it wrote and did not fsync (its data dir must
    /// be on lazyfs). What was dropped.
    pub fn lose_unsynced(&mut self) -> Result<CacheCounts, NodeError> {
        if self.is_running() {
            return Err(NodeError::AlreadyRunning(self.id()));
        }
        // Requests the dead process left in flight are answered before the cache goes.
        std::thread::sleep(Duration::from_millis(100));
        self.disk.lose_unsynced().map_err(|source| NodeError::Disk {
            node: self.id(),
            source,
        })
    }

    /// Makes every fsync/fdatasync of the running process fail with EIO, from the
    /// `from_call`-th of each thread on, until [`NodeProcess::heal_fsync_errors`].
    pub fn inject_fsync_errors(&mut self, from_call: u32) -> Result<(), NodeError> {
        let pid = match self.pid() {
            Some(pid) if self.is_running() => pid,
            _ => return Err(NodeError::NotRunning(self.id())),
        };
        self.disk
            .attach_fsync_errors(pid, from_call)
            .map_err(|source| NodeError::Disk {
                node: self.id(),
                source,
            })
    }

    /// Ends injected fsync errors; whether any were being injected.
    pub fn heal_fsync_errors(&mut self) -> bool {
        self.disk.detach_fsync_errors()
    }

    /// Removes the node's data dir (a node that will never come back).
    pub fn wipe(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(self.config.data_dir());
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// libfaketime's relative format: `+N` / `-N` seconds from the real time.
pub fn write_clock_offset(path: &Path, seconds: i64) -> std::io::Result<()> {
    let text = if seconds >= 0 {
        format!("+{seconds}\n")
    } else {
        format!("{seconds}\n")
    };
    // Written whole and renamed, so a reader never sees a half-written offset.
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(tmp, path)
}

/// The libfaketime library to use: `$PERDURA_CHAOS_LIBFAKETIME`, else Debian's path, if it exists.
pub fn find_libfaketime() -> Option<PathBuf> {
    std::env::var_os("PERDURA_CHAOS_LIBFAKETIME")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(DEFAULT_LIBFAKETIME)))
        .filter(|path| path.exists())
}

/// Whether the node at `addr` answers its gRPC health check with SERVING within a second.
async fn serving(addr: SocketAddr) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .ok()?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(answer.into_inner().status == ServingStatus::Serving as i32)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), check).await,
        Ok(Some(true))
    )
}
