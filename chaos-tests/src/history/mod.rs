//! The operation history of a chaos run and the end-of-run final read.
//!
//! * [`OpRecord`] — one JSONL line: an invoke or a completion (`ok`/`fail`/`info`) of one
//!   operation [`Op`] by one process, with the node it talked to and the harness monotonic time.
//! * [`History`] — the lines paired into [`Operation`]s (`from_records` rejects histories the
//!   checkers cannot judge, naming the line).
//! * [`Recorder`] — the harness's writer of the history: hands out operation indexes, one line
//!   per invoke and completion, one open operation per process.
//! * [`FinalRead`] — per node, per group: applied index, state digest, committed log ids, and
//!   every run's events ([`ObservedEvent`], with the shard Raft index where known).
//!
//! Invariants: this module performs no I/O of its own (readers and writers are passed in); a
//! history that parses and pairs has, for every completion, an invoke earlier in time with the
//! same `f`, and every `ok` value is of the kind its operation returns.

mod event;
mod final_read;
mod jsonl;
mod op;
mod pairing;
mod record;
mod recorder;
mod value;

pub use event::{EventAttributes, EventType, ObservedEvent};
pub use final_read::{FinalRead, GroupRead, LogEntryId, NodeRead, RunHistory};
pub use jsonl::{
    JsonlError, NumberedRecord, read_final_read, read_history, write_final_read, write_record,
};
pub use op::{FaultClass, FaultKind, NemesisAction, NemesisOp, Op};
pub use pairing::{Completion, History, Operation, Outcome, PairingError};
pub use record::{OpRecord, OpType};
pub use recorder::{OpCompletion, PendingOp, Recorder, RecorderError};
pub use value::{GroupApplied, OpValue, RunStatus};
