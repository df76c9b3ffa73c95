//! Which harness owns a net id: an exclusive `flock` on `/run/perdura-chaos/net-<K>.lock`, held
//! by the [`super::net::Network`] for its whole life. The kernel drops the lock when the owner
//! exits, crashed or not, so a lock that cannot be taken means a *live* harness uses the net:
//! `perdura-chaos cleanup` (and a new run choosing its net id) leave that net alone. Before
//! this, a `cleanup` started by a second harness removed the namespaces of a run in progress.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

const LOCK_DIR: &str = "/run/perdura-chaos";

fn lock_path(net_id: u8) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(format!("net-{net_id}.lock"))
}

/// The held lock of one net id; dropping it releases the net.
#[derive(Debug)]
pub struct NetLock {
    _file: File,
}

impl NetLock {
    /// Takes the lock of `net_id` without waiting; `None` when a live harness holds it.
    pub fn try_take(net_id: u8) -> std::io::Result<Option<NetLock>> {
        std::fs::create_dir_all(LOCK_DIR)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(net_id))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(NetLock { _file: file }));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(error)
        }
    }
}

/// Whether a live harness holds `net_id` (an unreadable lock counts as not held).
pub fn held_by_another(net_id: u8) -> bool {
    matches!(NetLock::try_take(net_id), Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_net_cannot_be_taken_twice_and_is_free_after_release() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: /run needs root");
            return;
        }
        // flock locks belong to the open file description: a second open in this process
        // conflicts like another process would.
        let id = 251;
        let first = NetLock::try_take(id).unwrap().expect("free at first");
        assert!(NetLock::try_take(id).unwrap().is_none(), "held");
        assert!(held_by_another(id));
        drop(first);
        assert!(!held_by_another(id), "released on drop");
    }
}
