//! The harness's true global clock and the history recorder every task of a run shares.
//!
//! Harness time is nanoseconds of the host's `CLOCK_MONOTONIC` since the run began (Rust's
//! `Instant`); no nemesis touches it (clock faults skew the servers' wall clocks only).
//! Invariant: a line's time is taken under the recorder's lock, so times never go backwards
//! down the file.

use crate::history::{Op, OpCompletion, PendingOp, Recorder, RecorderError};
use crate::ids::{HarnessNanos, NodeId, ProcessId};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct HarnessClock {
    origin: Instant,
}

impl HarnessClock {
    pub fn start() -> HarnessClock {
        HarnessClock {
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> HarnessNanos {
        HarnessNanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
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
