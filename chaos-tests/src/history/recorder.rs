//! The harness side of the JSONL history: hands out operation indexes, writes one line per
//! invoke and per completion as they happen, and refuses what would make an unpairable history.
//!
//! The recorder does no I/O of its own (it writes to the `Write` it is given) and reads no clock
//! (the harness passes its monotonic time in).

use super::jsonl::{JsonlError, write_record};
use super::op::Op;
use super::record::{OpRecord, OpType};
use super::value::OpValue;
use crate::ids::{HarnessNanos, NodeId, OpIndex, ProcessId};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecorderError {
    /// Jepsen's model: a process runs one operation at a time.
    #[error("{0} invoked an operation while its previous one is still open")]
    ProcessBusy(ProcessId),
    #[error(transparent)]
    Write(#[from] JsonlError),
}

/// An invoked operation awaiting its completion; completing consumes it, so an operation cannot
/// be completed twice.
#[derive(Debug)]
#[must_use = "an invoked operation must be completed (an unanswered one counts as info)"]
pub struct PendingOp {
    process: ProcessId,
    index: OpIndex,
    f: Op,
    node: Option<NodeId>,
}

impl PendingOp {
    pub fn f(&self) -> &Op {
        &self.f
    }
}

/// How an operation ended, as the client classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpCompletion {
    /// It happened; the value, for operations that return one.
    Ok(Option<OpValue>),
    /// It definitely did not happen; why.
    Fail(String),
    /// Unknown (timeout, connection lost mid-flight); why.
    Info(String),
}

pub struct Recorder<W: Write> {
    out: W,
    next_index: BTreeMap<ProcessId, OpIndex>,
    busy: BTreeSet<ProcessId>,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W) -> Self {
        Recorder {
            out,
            next_index: BTreeMap::new(),
            busy: BTreeSet::new(),
        }
    }

    /// Writes the invoke line of `f` by `process` against `node` at harness time `time`.
    pub fn invoke(
        &mut self,
        process: ProcessId,
        f: Op,
        node: Option<NodeId>,
        time: HarnessNanos,
    ) -> Result<PendingOp, RecorderError> {
        if !self.busy.insert(process) {
            return Err(RecorderError::ProcessBusy(process));
        }
        let next = self.next_index.entry(process).or_insert(OpIndex(0));
        let index = *next;
        *next = OpIndex(index.0 + 1);
        let record = OpRecord {
            process,
            index,
            op_type: OpType::Invoke,
            f: f.clone(),
            value: None,
            node,
            time_ns: time,
            error: None,
        };
        write_record(&mut self.out, &record)?;
        Ok(PendingOp {
            process,
            index,
            f,
            node,
        })
    }

    /// Writes the completion line of an invoked operation.
    pub fn complete(
        &mut self,
        pending: PendingOp,
        completion: OpCompletion,
        time: HarnessNanos,
    ) -> Result<(), RecorderError> {
        self.busy.remove(&pending.process);
        let (op_type, value, error) = match completion {
            OpCompletion::Ok(value) => (OpType::Ok, value, None),
            OpCompletion::Fail(why) => (OpType::Fail, None, Some(why)),
            OpCompletion::Info(why) => (OpType::Info, None, Some(why)),
        };
        let record = OpRecord {
            process: pending.process,
            index: pending.index,
            op_type,
            f: pending.f,
            value,
            node: pending.node,
            time_ns: time,
            error,
        };
        write_record(&mut self.out, &record)?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W, RecorderError> {
        self.out.flush().map_err(JsonlError::Write)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, Outcome, read_history};

    #[test]
    fn recorded_operations_read_back_as_a_paired_history() {
        let mut recorder = Recorder::new(Vec::new());
        let start = Op::StartWorkflow {
            workflow_id: "w1".into(),
            request_id: "r1".into(),
            workflow_type: None,
            attach_to_existing: false,
            run_timeout_ms: None,
        };
        let a = recorder
            .invoke(ProcessId(1), start, Some(NodeId(1)), HarnessNanos(10))
            .unwrap();
        let b = recorder
            .invoke(
                ProcessId(2),
                Op::RaftStatus,
                Some(NodeId(2)),
                HarnessNanos(11),
            )
            .unwrap();
        let started = OpValue::Started {
            run_id: "R1".into(),
        };
        recorder
            .complete(
                b,
                OpCompletion::Info("deadline exceeded".into()),
                HarnessNanos(30),
            )
            .unwrap();
        recorder
            .complete(a, OpCompletion::Ok(Some(started.clone())), HarnessNanos(20))
            .unwrap();
        let again = recorder
            .invoke(ProcessId(1), Op::RaftStatus, None, HarnessNanos(40))
            .unwrap();
        recorder
            .complete(
                again,
                OpCompletion::Fail("unavailable".into()),
                HarnessNanos(41),
            )
            .unwrap();
        let bytes = recorder.into_inner().unwrap();

        let history = History::from_records(read_history(bytes.as_slice()).unwrap()).unwrap();
        let ops = &history.operations;
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].process, ops[0].index), (ProcessId(1), OpIndex(0)));
        assert_eq!(ops[0].ok_value(), Some(&started));
        assert_eq!(ops[1].outcome(), Outcome::Unknown);
        assert_eq!(
            ops[1].completion.as_ref().and_then(|c| c.error.as_deref()),
            Some("deadline exceeded")
        );
        assert_eq!((ops[2].process, ops[2].index), (ProcessId(1), OpIndex(1)));
        assert_eq!(ops[2].outcome(), Outcome::Fail);
    }

    #[test]
    fn a_process_cannot_invoke_while_its_operation_is_open() {
        let mut recorder = Recorder::new(Vec::new());
        let open = recorder
            .invoke(ProcessId(1), Op::RaftStatus, None, HarnessNanos(1))
            .unwrap();
        let second = recorder.invoke(ProcessId(1), Op::RaftStatus, None, HarnessNanos(2));
        assert!(matches!(
            second,
            Err(RecorderError::ProcessBusy(ProcessId(1)))
        ));
        recorder
            .complete(open, OpCompletion::Ok(None), HarnessNanos(3))
            .unwrap();
        assert!(
            recorder
                .invoke(ProcessId(1), Op::RaftStatus, None, HarnessNanos(4))
                .is_ok()
        );
    }
}
