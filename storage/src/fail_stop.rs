//! What a node does when its disk fails a log write or its fsync: it stops.
//!
//! PostgreSQL's "fsyncgate" lesson: after a failed `fsync` Linux may already have dropped the
//! dirty pages and cleared the error, so a retry can succeed over data that never reached the
//! disk. The node's memory (openraft's state, the unflushed-entries overlay, the applied state
//! machine) is then ahead of what is durable, and no later write can be trusted to fix that.
//! The only safe continuation is to stop serving at once and recover from what is on disk at the
//! next start — fail-stop, which Raft tolerates like any crash.
//!
//! ## Correctness
//! * [`crate::LogWriter`] calls the [`DiskFailureAction`] once, on the first failed write,
//!   *before* any completion callback of the failed batch runs: no code acts on a state the disk
//!   refused. A write that failed is never acknowledged (its callbacks get the error).
//! * The library never ends a process by itself: the binary opts in with
//!   [`exit_on_disk_failure`] (the `perdura` server does). Without it, the writer poisons itself
//!   and fails every later request (tests, tools, the simulation).

use crate::error::StorageError;
use std::sync::{Arc, OnceLock};

/// Exit status of a node that stopped because its disk failed a write (sysexits' `EX_IOERR`).
pub const EXIT_DISK_FAILURE: i32 = 74;

/// Called once with the first failed log write's error.
pub type DiskFailureAction = Arc<dyn Fn(&StorageError) + Send + Sync>;

static PROCESS_ACTION: OnceLock<DiskFailureAction> = OnceLock::new();

/// Makes every [`crate::LogWriter`] of this process end it with [`EXIT_DISK_FAILURE`] on a
/// failed write (after logging the error). Returns `false` if an action was already installed.
pub fn exit_on_disk_failure() -> bool {
    set_process_action(Arc::new(|error: &StorageError| {
        tracing::error!(
            %error,
            "the disk failed a log write or its fsync: stopping now (fail-stop); restart the node \
             to recover from what is durable"
        );
        eprintln!("perdura: fatal disk failure: {error}; exiting ({EXIT_DISK_FAILURE})");
        // `_exit`, not `exit`: no atexit handlers or C++ static destructors run while other
        // threads still use RocksDB, and nothing more reaches the disk.
        // SAFETY: `_exit` takes a plain integer and does not return.
        unsafe { libc::_exit(EXIT_DISK_FAILURE) }
    }))
}

/// Installs the process-wide action (first caller wins).
pub fn set_process_action(action: DiskFailureAction) -> bool {
    PROCESS_ACTION.set(action).is_ok()
}

/// The process-wide action, if installed.
pub(crate) fn process_action() -> Option<DiskFailureAction> {
    PROCESS_ACTION.get().cloned()
}
