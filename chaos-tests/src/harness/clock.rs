//! The harness's true global clock and the history recorder every task of a run shares.
//!
//! Harness time is nanoseconds of the host's `CLOCK_MONOTONIC`, counted from an origin: the
//! run's start for `perdura-chaos run` ([`HarnessClock::start`]), the host's boot for a
//! stand-alone `perdura-chaos workload` ([`HarnessClock::absolute`], so the histories and final
//! reads of separate processes compare). No nemesis touches it (clock faults skew the servers'
//! wall clocks only).
//! Invariant: a line's time is taken under the recorder's lock, so times never go backwards
//! down the file.

use crate::history::{Op, OpCompletion, PendingOp, Recorder, RecorderError};
use crate::ids::{HarnessNanos, NodeId, ProcessId};
use std::fs::File;
use std::sync::{Arc, Mutex};

/// Now on the host's `CLOCK_MONOTONIC`, in nanoseconds since boot.
pub fn monotonic_now() -> HarnessNanos {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    if rc != 0 {
        return HarnessNanos(0);
    }
    let secs = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
    HarnessNanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[derive(Clone, Copy, Debug)]
pub struct HarnessClock {
    origin: HarnessNanos,
}

impl HarnessClock {
    /// A clock that reads 0 now.
    pub fn start() -> HarnessClock {
        HarnessClock {
            origin: monotonic_now(),
        }
    }

    /// `CLOCK_MONOTONIC` itself (origin: the host's boot).
    pub fn absolute() -> HarnessClock {
        HarnessClock {
            origin: HarnessNanos(0),
        }
    }

    pub fn now(&self) -> HarnessNanos {
        HarnessNanos(monotonic_now().0.saturating_sub(self.origin.0))
    }
}

/// The run's history file, shared by the workload's processes and the nemesis. Unbuffered: each
/// line is one `write`, so a crashed harness leaves every line it recorded.
#[derive(Clone)]
pub struct SharedRecorder {
    inner: Arc<Mutex<Recorder<File>>>,
    clock: HarnessClock,
}

impl SharedRecorder {
    pub fn new(file: File, clock: HarnessClock) -> SharedRecorder {
        SharedRecorder {
            inner: Arc::new(Mutex::new(Recorder::new(file))),
            clock,
        }
    }

    pub fn clock(&self) -> HarnessClock {
        self.clock
    }

    pub fn invoke(
        &self,
        process: ProcessId,
        f: Op,
        node: Option<NodeId>,
    ) -> Result<PendingOp, RecorderError> {
        let mut recorder = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        recorder.invoke(process, f, node, self.clock.now())
    }

    pub fn complete(
        &self,
        pending: PendingOp,
        completion: OpCompletion,
    ) -> Result<(), RecorderError> {
        let mut recorder = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        recorder.complete(pending, completion, self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_clock_never_goes_back() {
        let absolute = HarnessClock::absolute();
        let a = absolute.now();
        let b = absolute.now();
        assert!(a.0 > 0 && b >= a);
        let run = HarnessClock::start();
        assert!(
            run.now() < a,
            "a run's clock starts near 0, not at the host's uptime"
        );
    }
}
