//! One line of the JSONL operation history: an invoke or a completion.

use super::op::Op;
use super::value::OpValue;
use crate::ids::{HarnessNanos, NodeId, OpIndex, ProcessId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Jepsen's record types: an invocation, or its completion as `ok` (it happened), `fail` (it
/// definitely did not) or `info` (unknown: timeout, connection lost mid-flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// One JSONL line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    pub process: ProcessId,
    /// Shared by the invoke and the completion of one operation of `process`.
    pub index: OpIndex,
    #[serde(rename = "type")]
    pub op_type: OpType,
    pub f: Op,
    /// The ok value; absent on invokes, fails and infos, and for operations that return nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<OpValue>,
    /// The server node the client talked to (absent for nemesis steps on the whole cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// Harness monotonic time of this line.
    pub time_ns: HarnessNanos,
    /// Why a fail or info completion ended so (gRPC status, timeout), for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
