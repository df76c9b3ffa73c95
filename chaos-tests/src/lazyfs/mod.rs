//! lazyfs — our own FUSE filesystem that loses un-fsynced writes on command, like Jepsen's
//! lazyfs: mounted over a backing directory, it passes everything through except file data,
//! which it keeps in memory until the file is fsynced.
//!
//! ## The model (what survives a `clear-cache`, i.e. a power loss)
//! * **File data and size** (`write`, `truncate`/`ftruncate`, `fallocate` that grows a file)
//!   are held per file in an [`overlay::Overlay`] — dirty byte ranges plus the size — until
//!   `fsync`/`fdatasync` of that file (either syncs data and size), or the `sync` control
//!   command. Readers see the overlay over the backing file, so a process sees its own writes
//!   as on a real disk. `clear-cache` drops every overlay: each file falls back to the bytes
//!   and size it had at its last sync. `close` does not sync.
//! * **Namespace and metadata** (create, mkdir, mknod, symlink, link, unlink, rmdir, rename,
//!   chmod/chown/utimes) go to the backing directory at once and are durable at once;
//!   `fsyncdir` is accepted and does nothing. This is *kinder* than a real disk: a file created
//!   or renamed without an fsync of its directory keeps its name after a power loss here
//!   (its unsynced *data* is still lost — a created-and-renamed file without an fsync comes back
//!   empty, ext4's classic zero-length file). So this layer tests "acknowledged ⇒ data
//!   fsynced" — the WAL, SST and MANIFEST contents RocksDB syncs before it acknowledges — but
//!   not RocksDB's reliance on `rename` + directory fsync for `CURRENT` and new files.
//! * The backing files themselves are never fsynced: the host does not lose power in a test,
//!   only this layer does.
//!
//! ## Pieces
//! * [`overlay`] — one file's unsynced writes and size (pure, property-tested).
//! * [`cache`] — the inode table and the overlays, shared by the handlers and the control socket.
//! * [`fs`] — the `fuser` request handlers (the pass-through).
//! * [`sys`] — the `*at` system calls over `O_PATH` descriptors.
//! * [`control`] — the Unix control socket (`clear-cache`, `sync`, `held`) and its client.
//! * [`cli`] — `perdura-chaos lazyfs mount|clear-cache|sync|held`.
//!
//! Mounting needs root and `/dev/fuse`; the mount is made with the `mount(2)` system call
//! (fuser's pure-Rust path), no `fusermount3` or libfuse.

pub mod cache;
pub mod cli;
pub mod control;
pub mod fs;
pub mod overlay;
pub mod sys;

use cache::{Cache, CacheCounts};
use control::{ControlCommand, ControlServer};
use fuser::{BackgroundSession, Config, MountOption, Notifier};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LazyFsError {
    #[error("lazyfs: the backing directory {path}: {source}")]
    Backing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lazyfs: mounting on {path}: {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lazyfs: unmounting {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lazyfs: control socket {path}: {source}")]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lazyfs: control socket {path} answered: {why}")]
    Reply { path: PathBuf, why: String },
    #[error("lazyfs: {0}")]
    Sync(std::io::Error),
}

/// Whether this process can mount a lazyfs (root and `/dev/fuse`); why not otherwise.
pub fn can_mount() -> Result<(), String> {
    if !crate::harness::exec::is_root() {
        return Err("mounting a FUSE filesystem needs root".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist".into());
    }
    Ok(())
}

/// Detaches every lazyfs mount whose filesystem process is gone (its mountpoint answers
/// `ENOTCONN`), as a run killed without cleanup leaves them; live mounts of other runs are left
/// alone. The mountpoints detached.
pub fn unmount_dead_mounts() -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut detached = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (Some(_source), Some(target), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if fstype != "fuse.perdura-lazyfs" {
            continue;
        }
        // /proc/mounts escapes blanks as octal (`\040`).
        let path = PathBuf::from(target.replace("\\040", " "));
        let dead = std::fs::metadata(&path)
            .err()
            .is_some_and(|e| e.raw_os_error() == Some(libc::ENOTCONN));
        if dead && sys::lazy_unmount(&path).is_ok() {
            detached.push(path);
        }
    }
    detached
}

/// A lazyfs mounted by this process; unmounted when dropped.
pub struct MountedLazyFs {
    mountpoint: PathBuf,
    cache: Arc<Cache>,
    notifier: Notifier,
    // Field order: the control thread stops before the session unmounts.
    _control: Option<ControlServer>,
    session: Option<BackgroundSession>,
    /// The kernel's FUSE connection number (the mount's minor device), for aborting it.
    connection: Option<u32>,
}

/// How long an unmount waits for the session to end before it aborts the FUSE connection.
const UNMOUNT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl MountedLazyFs {
    /// Mounts a lazyfs of `backing` on `mountpoint` (both existing directories), serving the
    /// control socket at `control` if given.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        control: Option<&Path>,
    ) -> Result<MountedLazyFs, LazyFsError> {
        let cache = Arc::new(Cache::new(backing).map_err(|source| LazyFsError::Backing {
            path: backing.to_owned(),
            source,
        })?);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(format!("lazyfs:{}", backing.display())),
            MountOption::Subtype("perdura-lazyfs".into()),
            MountOption::DefaultPermissions,
        ];
        // Two workers: one request may wait on the table lock while the other does its I/O.
        config.n_threads = Some(2);
        let session = fuser::spawn_mount(fs::LazyFs::new(cache.clone()), mountpoint, &config)
            .map_err(|source| LazyFsError::Mount {
                path: mountpoint.to_owned(),
                source,
            })?;
        let notifier = session.notifier();
        let control = control
            .map(|path| ControlServer::start(path, cache.clone(), notifier.clone()))
            .transpose()?;
        let connection = std::fs::metadata(mountpoint)
            .ok()
            .map(|m| sys::minor(std::os::unix::fs::MetadataExt::dev(&m)));
        Ok(MountedLazyFs {
            mountpoint: mountpoint.to_owned(),
            cache,
            notifier,
            _control: control,
            session: Some(session),
            connection,
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Runs a control command in-process.
    pub fn command(&self, command: ControlCommand) -> Result<CacheCounts, LazyFsError> {
        let reply = control::execute(command, &self.cache, &self.notifier);
        match reply.error {
            None => Ok(reply.counts),
            Some(why) => Err(LazyFsError::Reply {
                path: self.mountpoint.clone(),
                why,
            }),
        }
    }

    /// Whether the session ended on its own (someone unmounted it).
    pub fn has_ended(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmounts (unsynced writes are dropped, as in a power loss) and joins the session. A mount
    /// still in use is detached instead (`umount -l`) and reported as an error.
    pub fn unmount(mut self) -> Result<(), LazyFsError> {
        self.end()
    }

    /// Unmounts and waits for the session to end. The session ends when the kernel closes
    /// the FUSE connection, which it does only once no mount of it is left in any mount
    /// namespace: a node started with `ip netns exec` has its own mount namespace holding a
    /// copy of every lazyfs mounted before it started, and while such a node runs, a plain
    /// unmount here never ends the session (the harness hung on it). After
    /// [`UNMOUNT_PATIENCE`] the connection is aborted (`/sys/fs/fuse/connections/N/abort`),
    /// which ends it everywhere: this filesystem is being discarded anyway.
    fn end(&mut self) -> Result<(), LazyFsError> {
        self._control.take();
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || drop(done_tx.send(session.umount_and_join())));
        let result = match done.recv_timeout(UNMOUNT_PATIENCE) {
            Ok(result) => result,
            Err(_) => {
                if let Some(connection) = self.connection {
                    sys::abort_fuse_connection(connection);
                }
                done.recv_timeout(UNMOUNT_PATIENCE).unwrap_or_else(|_| {
                    Err(std::io::Error::other(
                        "the FUSE session did not end after its connection was aborted",
                    ))
                })
            }
        };
        result.map_err(|source| {
            // Busy (a process still has files open there): detach it so nothing is left
            // mounted; the session ends when its last user goes.
            let _ = sys::lazy_unmount(&self.mountpoint);
            LazyFsError::Unmount {
                path: self.mountpoint.clone(),
                source,
            }
        })
    }
}

impl Drop for MountedLazyFs {
    fn drop(&mut self) {
        let _ = self.end();
    }
}
