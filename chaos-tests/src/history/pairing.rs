//! Pairing invokes with completions into [`Operation`]s, and rejecting histories the checkers
//! cannot judge (a completion without an invoke, a completion that names another operation, an
//! ok value of the wrong kind). An operation without a completion is indeterminate, like `info`.

use super::jsonl::NumberedRecord;
use super::op::Op;
use super::record::OpType;
use super::value::OpValue;
use crate::ids::{HarnessNanos, NodeId, OpIndex, ProcessId};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PairingError {
    #[error("history line {line}: {process} {index} is invoked twice (first on line {first_line})")]
    DuplicateInvoke {
        line: usize,
        first_line: usize,
        process: ProcessId,
        index: OpIndex,
    },
    #[error("history line {line}: completion of {process} {index}, which was never invoked")]
    CompletionWithoutInvoke {
        line: usize,
        process: ProcessId,
        index: OpIndex,
    },
    #[error("history line {line}: {process} {index} is completed twice")]
    DuplicateCompletion {
        line: usize,
        process: ProcessId,
        index: OpIndex,
    },
    #[error("history line {line}: completion names `{completed}` but the invoke was `{invoked}`")]
    MismatchedCompletion {
        line: usize,
        invoked: String,
        completed: String,
    },
    #[error("history line {line}: completion at {completed} is before its invoke at {invoked}")]
    CompletionBeforeInvoke {
        line: usize,
        invoked: HarnessNanos,
        completed: HarnessNanos,
    },
    #[error("history line {line}: `{op}` completed ok with value {found}, expected {expected}")]
    WrongValue {
        line: usize,
        op: String,
        found: &'static str,
        expected: &'static str,
    },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// `info`, or no completion line at all.
    Unknown,
}

/// One operation: its invocation and, if recorded, its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub process: ProcessId,
    pub index: OpIndex,
    pub f: Op,
    pub node: Option<NodeId>,
    pub invoke_ns: HarnessNanos,
    pub invoke_line: usize,
    pub completion: Option<Completion>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub op_type: OpType,
    pub time_ns: HarnessNanos,
    pub value: Option<OpValue>,
    pub error: Option<String>,
    pub line: usize,
}

impl Operation {
    pub fn outcome(&self) -> Outcome {
        match self.completion.as_ref().map(|c| c.op_type) {
            Some(OpType::Ok) => Outcome::Ok,
            Some(OpType::Fail) => Outcome::Fail,
            Some(OpType::Info | OpType::Invoke) | None => Outcome::Unknown,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome() == Outcome::Ok
    }

    /// The ok value, if the operation completed ok with one.
    pub fn ok_value(&self) -> Option<&OpValue> {
        self.completion
            .as_ref()
            .filter(|c| c.op_type == OpType::Ok)
            .and_then(|c| c.value.as_ref())
    }

    /// When the operation completed, if it did (ok, fail or info).
    pub fn complete_ns(&self) -> Option<HarnessNanos> {
        self.completion.as_ref().map(|c| c.time_ns)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.process, self.index, self.f)?;
        if let Some(node) = self.node {
            write!(f, " on {node}")?;
        }
        write!(f, " invoked {}", self.invoke_ns)?;
        match &self.completion {
            Some(c) => write!(f, ", {} {}", c.op_type, c.time_ns)?,
            None => write!(f, ", never completed")?,
        }
        if let Some(error) = self.completion.as_ref().and_then(|c| c.error.as_ref()) {
            write!(f, " ({error})")?;
        }
        Ok(())
    }
}

/// A paired history, in invoke order (line order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub operations: Vec<Operation>,
}

impl History {
    pub fn from_records(records: Vec<NumberedRecord>) -> Result<History, PairingError> {
        let mut operations: Vec<Operation> = Vec::new();
        let mut position: BTreeMap<(ProcessId, OpIndex), usize> = BTreeMap::new();
        for NumberedRecord { line, record } in records {
            let key = (record.process, record.index);
            if record.op_type == OpType::Invoke {
                if let Some(&at) = position.get(&key) {
                    return Err(PairingError::DuplicateInvoke {
                        line,
                        first_line: operations[at].invoke_line,
                        process: record.process,
                        index: record.index,
                    });
                }
                position.insert(key, operations.len());
                operations.push(Operation {
                    process: record.process,
                    index: record.index,
                    f: record.f,
                    node: record.node,
                    invoke_ns: record.time_ns,
                    invoke_line: line,
                    completion: None,
                });
                continue;
            }
            let Some(&at) = position.get(&key) else {
                return Err(PairingError::CompletionWithoutInvoke {
                    line,
                    process: record.process,
                    index: record.index,
                });
            };
            let operation = &mut operations[at];
            if operation.completion.is_some() {
                return Err(PairingError::DuplicateCompletion {
                    line,
                    process: record.process,
                    index: record.index,
                });
            }
            if operation.f != record.f {
                return Err(PairingError::MismatchedCompletion {
                    line,
                    invoked: operation.f.to_string(),
                    completed: record.f.to_string(),
                });
            }
            if record.time_ns < operation.invoke_ns {
                return Err(PairingError::CompletionBeforeInvoke {
                    line,
                    invoked: operation.invoke_ns,
                    completed: record.time_ns,
                });
            }
            if record.op_type == OpType::Ok {
                check_value_kind(line, &operation.f, record.value.as_ref())?;
            }
            operation.completion = Some(Completion {
                op_type: record.op_type,
                time_ns: record.time_ns,
                value: record.value,
                error: record.error,
                line,
            });
        }
        Ok(History { operations })
    }

    /// The time of the last line, which bounds what the harness could have observed.
    pub fn end_ns(&self) -> HarnessNanos {
        self.operations
            .iter()
            .map(|op| op.complete_ns().unwrap_or(op.invoke_ns))
            .max()
            .unwrap_or(HarnessNanos(0))
    }
}

/// The value kinds an ok completion of `f` may carry (`None` = no value).
fn expected_kinds(f: &Op) -> (&'static [&'static str], &'static str) {
    match f {
        Op::StartWorkflow { .. } => (&["started"], "started"),
        Op::ReadHistory { .. } => (&["events", "not_found"], "events or not_found"),
        Op::PollActivity { .. } => (&["activity_task", "no_task"], "activity_task or no_task"),
        Op::PollWorkflowTask { .. } => (&["workflow_task", "no_task"], "workflow_task or no_task"),
        Op::Describe { .. } | Op::GetResult { .. } => {
            (&["outcome", "not_found"], "outcome or not_found")
        }
        Op::RaftStatus => (&["raft_status"], "raft_status"),
        Op::Signal { .. }
        | Op::CompleteActivity { .. }
        | Op::StartTimer { .. }
        | Op::Nemesis(_) => (&[], "no value"),
    }
}

fn check_value_kind(line: usize, f: &Op, value: Option<&OpValue>) -> Result<(), PairingError> {
    let (kinds, expected) = expected_kinds(f);
    let found = value.map_or("none", OpValue::kind);
    let fits = match value {
        None => kinds.is_empty(),
        Some(value) => kinds.contains(&value.kind()),
    };
    if fits {
        Ok(())
    } else {
        Err(PairingError::WrongValue {
            line,
            op: f.to_string(),
            found,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpRecord;

    fn record(process: u64, op_type: OpType, f: Op, value: Option<OpValue>, t: u64) -> OpRecord {
        OpRecord {
            process: ProcessId(process),
            index: OpIndex(0),
            op_type,
            f,
            value,
            node: None,
            time_ns: HarnessNanos(t),
            error: None,
        }
    }

    fn numbered(records: Vec<OpRecord>) -> Vec<NumberedRecord> {
        records
            .into_iter()
            .enumerate()
            .map(|(i, record)| NumberedRecord {
                line: i + 1,
                record,
            })
            .collect()
    }

    fn read() -> Op {
        Op::ReadHistory {
            workflow_id: "w".into(),
            run_id: "r".into(),
        }
    }

    #[test]
    fn invokes_pair_with_their_completions_and_unanswered_ops_are_unknown() {
        let history = History::from_records(numbered(vec![
            record(1, OpType::Invoke, read(), None, 10),
            record(2, OpType::Invoke, Op::RaftStatus, None, 11),
            record(1, OpType::Ok, read(), Some(OpValue::NotFound), 20),
        ]))
        .unwrap();
        assert_eq!(history.operations.len(), 2);
        assert_eq!(history.operations[0].outcome(), Outcome::Ok);
        assert_eq!(history.operations[0].complete_ns(), Some(HarnessNanos(20)));
        assert_eq!(history.operations[1].outcome(), Outcome::Unknown);
        assert_eq!(history.end_ns(), HarnessNanos(20));
    }

    #[test]
    fn unpairable_histories_are_rejected_naming_the_line() {
        let cases = vec![
            (
                vec![record(1, OpType::Ok, read(), Some(OpValue::NotFound), 20)],
                PairingError::CompletionWithoutInvoke {
                    line: 1,
                    process: ProcessId(1),
                    index: OpIndex(0),
                },
            ),
            (
                vec![
                    record(1, OpType::Invoke, read(), None, 10),
                    record(1, OpType::Invoke, read(), None, 11),
                ],
                PairingError::DuplicateInvoke {
                    line: 2,
                    first_line: 1,
                    process: ProcessId(1),
                    index: OpIndex(0),
                },
            ),
            (
                vec![
                    record(1, OpType::Invoke, read(), None, 10),
                    record(1, OpType::Fail, Op::RaftStatus, None, 11),
                ],
                PairingError::MismatchedCompletion {
                    line: 2,
                    invoked: "read_history(w/r)".into(),
                    completed: "raft_status".into(),
                },
            ),
            (
                vec![
                    record(1, OpType::Invoke, read(), None, 10),
                    record(1, OpType::Info, read(), None, 9),
                ],
                PairingError::CompletionBeforeInvoke {
                    line: 2,
                    invoked: HarnessNanos(10),
                    completed: HarnessNanos(9),
                },
            ),
            (
                vec![
                    record(1, OpType::Invoke, read(), None, 10),
                    record(
                        1,
                        OpType::Ok,
                        read(),
                        Some(OpValue::Started { run_id: "r".into() }),
                        12,
                    ),
                ],
                PairingError::WrongValue {
                    line: 2,
                    op: "read_history(w/r)".into(),
                    found: "started",
                    expected: "events or not_found",
                },
            ),
            (
                vec![
                    record(1, OpType::Invoke, read(), None, 10),
                    record(1, OpType::Info, read(), None, 12),
                    record(1, OpType::Fail, read(), None, 13),
                ],
                PairingError::DuplicateCompletion {
                    line: 3,
                    process: ProcessId(1),
                    index: OpIndex(0),
                },
            ),
        ];
        for (records, expected) in cases {
            assert_eq!(History::from_records(numbered(records)), Err(expected));
        }
    }
}
