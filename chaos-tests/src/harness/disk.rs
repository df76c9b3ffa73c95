//! Disk faults of one node: its data dir on its own [lazyfs](crate::lazyfs) mount (so a power
//! loss can drop what it did not fsync), and fsync errors injected into its process by
//! `strace -e inject=fsync,fdatasync:error=EIO`.
//!
//! Invariants: the mount lives as long as the node's handle and outlives every restart of the
//! process (it is made before the first start, in the harness's own process, and unmounted when
//! the handle drops — after the process is killed); at most one strace is attached to a node,
//! and it is detached (SIGINT, so the tracee is released cleanly) before the node is restarted
//! or the handle drops.

use crate::lazyfs::cache::CacheCounts;
use crate::lazyfs::control::ControlCommand;
use crate::lazyfs::{LazyFsError, MountedLazyFs, can_mount};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DiskFaultError {
    #[error(transparent)]
    LazyFs(#[from] LazyFsError),
    #[error("the node's data dir is not on a lazyfs mount (the lose-unsynced fault is off)")]
    NoLazyFs,
    #[error("starting strace: {0}")]
    Strace(std::io::Error),
    #[error("strace did not attach to pid {pid}: {why}")]
    NotAttached { pid: u32, why: String },
    #[error("an fsync fault is already attached")]
    AlreadyAttached,
}

/// Which disk faults a run uses (what the nodes need from the host).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// Every node's data dir on its own lazyfs (the `lose-unsynced` fault).
    pub lazyfs: bool,
    /// strace attaches to nodes (the `fsync-error` fault).
    pub fsync_errors: bool,
}

impl DiskFaults {
    /// Why this host cannot run these faults, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.lazyfs {
            can_mount().map_err(|why| format!("lose-unsynced: {why}"))?;
        }
        if self.fsync_errors && !strace_available() {
            return Err("fsync-error needs strace (apt-get install strace)".into());
        }
        Ok(())
    }
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One node's disk-fault state.
#[derive(Default)]
pub struct NodeDisk {
    // Field order: strace is detached before the mount goes.
    fsync_fault: Option<Child>,
    lazyfs: Option<MountedLazyFs>,
}

impl NodeDisk {
    /// Mounts a lazyfs of `backing` on `data_dir` (both created if missing).
    pub fn with_lazyfs(backing: &Path, data_dir: &Path) -> Result<NodeDisk, DiskFaultError> {
        for dir in [backing, data_dir] {
            std::fs::create_dir_all(dir).map_err(|source| LazyFsError::Backing {
                path: dir.to_owned(),
                source,
            })?;
        }
        Ok(NodeDisk {
            fsync_fault: None,
            lazyfs: Some(MountedLazyFs::mount(backing, data_dir, None)?),
        })
    }

    pub fn has_lazyfs(&self) -> bool {
        self.lazyfs.is_some()
    }

    /// Drops every byte the node did not fsync (call with the process dead).
    pub fn lose_unsynced(&self) -> Result<CacheCounts, DiskFaultError> {
        let lazyfs = self.lazyfs.as_ref().ok_or(DiskFaultError::NoLazyFs)?;
        Ok(lazyfs.command(ControlCommand::ClearCache)?)
    }

    /// Attaches strace to `pid` (every thread): from the `from_call`-th fsync/fdatasync of each
    /// thread on, every one fails with EIO. Returns once strace reports attaching.
    pub fn attach_fsync_errors(&mut self, pid: u32, from_call: u32) -> Result<(), DiskFaultError> {
        if self.fsync_fault.is_some() {
            return Err(DiskFaultError::AlreadyAttached);
        }
        let mut child = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-p"])
            .arg(pid.to_string())
            .args([
                "-e".to_owned(),
                "trace=fsync,fdatasync".to_owned(),
                "-e".to_owned(),
                format!("inject=fsync,fdatasync:error=EIO:when={from_call}+"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(DiskFaultError::Strace)?;
        let attached = child
            .stderr
            .take()
            .map(|stderr| {
                let mut line = String::new();
                let _ = BufReader::new(stderr).read_line(&mut line);
                line
            })
            .unwrap_or_default();
        if !attached.contains("attached") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DiskFaultError::NotAttached {
                pid,
                why: attached.trim().to_owned(),
            });
        }
        self.fsync_fault = Some(child);
        Ok(())
    }

    /// Detaches strace (SIGINT: strace releases every thread it traced, then exits). Whether one
    /// was attached.
    pub fn detach_fsync_errors(&mut self) -> bool {
        let Some(mut child) = self.fsync_fault.take() else {
            return false;
        };
        super::exec::run_quietly("kill", &["-INT", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        true
    }
}

impl Drop for NodeDisk {
    fn drop(&mut self) {
        self.detach_fsync_errors();
    }
}
