//! A violation and its minimal witness: the operations, events and facts that show it, printable
//! for a person and serializable for the results tables.

use super::Invariant;
use crate::history::{ObservedEvent, Operation};
use crate::ids::{EventId, GroupId, NodeId, OpIndex, ProcessId, RunId, WorkflowId};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    /// One sentence: what went wrong.
    pub what: String,
    /// The operations that show it.
    pub ops: Vec<WitnessOp>,
    /// The events that show it.
    pub events: Vec<WitnessEvent>,
    /// Anything else that shows it (log entries, applied indexes, fault state).
    pub facts: Vec<String>,
}

impl Violation {
    pub fn new(invariant: Invariant, what: impl Into<String>) -> Self {
        Violation {
            invariant,
            what: what.into(),
            ops: Vec::new(),
            events: Vec::new(),
            facts: Vec::new(),
        }
    }

    pub fn op(mut self, operation: &Operation) -> Self {
        self.ops.push(WitnessOp::of(operation));
        self
    }

    pub fn event(mut self, event: WitnessEvent) -> Self {
        self.events.push(event);
        self
    }

    pub fn fact(mut self, fact: impl Into<String>) -> Self {
        self.facts.push(fact.into());
        self
    }

    /// The `(process, index)` of each witness operation, for tests.
    pub fn op_ids(&self) -> Vec<(ProcessId, OpIndex)> {
        self.ops.iter().map(|op| (op.process, op.index)).collect()
    }

    /// The event IDs of the witness events, for tests.
    pub fn event_ids(&self) -> Vec<EventId> {
        self.events.iter().map(|event| event.event_id).collect()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.invariant, self.what)?;
        for op in &self.ops {
            writeln!(f, "  op    {op}")?;
        }
        for event in &self.events {
            writeln!(f, "  event {event}")?;
        }
        for fact in &self.facts {
            writeln!(f, "  fact  {fact}")?;
        }
        Ok(())
    }
}

/// An operation in a witness: its identity, the history line, and a one-line rendering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessOp {
    pub process: ProcessId,
    pub index: OpIndex,
    /// The line of the invoke in the JSONL history.
    pub line: usize,
    pub description: String,
}

impl WitnessOp {
    pub fn of(operation: &Operation) -> Self {
        WitnessOp {
            process: operation.process,
            index: operation.index,
            line: operation.invoke_line,
            description: operation.to_string(),
        }
    }
}

impl fmt::Display for WitnessOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.description)
    }
}

/// An event in a witness and where it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessEvent {
    /// "final read n1 g2", or the operation that observed it ("read p3 #7").
    pub seen_in: String,
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub event_id: EventId,
    pub description: String,
}

impl WitnessEvent {
    pub fn in_final_read(
        node: NodeId,
        group: GroupId,
        workflow_id: &WorkflowId,
        run_id: &RunId,
        event: &ObservedEvent,
    ) -> Self {
        WitnessEvent {
            seen_in: format!("final read {node} {group}"),
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
            event_id: event.event_id,
            description: event.to_string(),
        }
    }

    pub fn observed_by(
        operation: &Operation,
        workflow_id: &WorkflowId,
        run_id: &RunId,
        event: &ObservedEvent,
    ) -> Self {
        WitnessEvent {
            seen_in: format!("read {} {}", operation.process, operation.index),
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
            event_id: event.event_id,
            description: event.to_string(),
        }
    }
}

impl fmt::Display for WitnessEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {} (in {})",
            self.workflow_id, self.run_id, self.description, self.seen_in
        )
    }
}
