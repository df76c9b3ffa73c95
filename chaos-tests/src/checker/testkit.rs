//! Hand-made histories and final reads for the checkers' tests.

use super::{CheckConfig, CheckInput, Invariant, InvariantReport};
use crate::history::*;
use crate::ids::*;
use std::collections::BTreeMap;

pub type OpId = (ProcessId, OpIndex);

#[derive(Default)]
pub struct HistoryBuilder {
    records: Vec<NumberedRecord>,
    next_index: BTreeMap<u64, u64>,
    open: BTreeMap<OpId, (Op, Option<NodeId>)>,
}

impl HistoryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, record: OpRecord) {
        let line = self.records.len() + 1;
        self.records.push(NumberedRecord { line, record });
    }

    pub fn invoke(&mut self, process: u64, f: Op, node: u64, t_ns: u64) -> OpId {
        let index = self.next_index.entry(process).or_insert(0);
        let id = (ProcessId(process), OpIndex(*index));
        *index += 1;
        let node = (node != 0).then_some(NodeId(node));
        self.open.insert(id, (f.clone(), node));
        self.push(OpRecord {
            process: id.0,
            index: id.1,
            op_type: OpType::Invoke,
            f,
            value: None,
            node,
            time_ns: HarnessNanos(t_ns),
            error: None,
        });
        id
    }

    pub fn complete(&mut self, id: OpId, op_type: OpType, value: Option<OpValue>, t_ns: u64) {
        let (f, node) = self
            .open
            .remove(&id)
            .expect("completing an invoked operation");
        self.push(OpRecord {
            process: id.0,
            index: id.1,
            op_type,
            f,
            value,
            node,
            time_ns: HarnessNanos(t_ns),
            error: None,
        });
    }

    pub fn ok(&mut self, p: u64, f: Op, value: Option<OpValue>, node: u64, t: (u64, u64)) -> OpId {
        let id = self.invoke(p, f, node, t.0);
        self.complete(id, OpType::Ok, value, t.1);
        id
    }

    pub fn fail(&mut self, p: u64, f: Op, node: u64, t: (u64, u64)) -> OpId {
        let id = self.invoke(p, f, node, t.0);
        self.complete(id, OpType::Fail, None, t.1);
        id
    }

    pub fn info(&mut self, p: u64, f: Op, node: u64, t: (u64, u64)) -> OpId {
        let id = self.invoke(p, f, node, t.0);
        self.complete(id, OpType::Info, None, t.1);
        id
    }

    pub fn build(&self) -> History {
        History::from_records(self.records.clone()).expect("a well-formed hand-made history")
    }
}

pub fn start(wid: &str, req: &str) -> Op {
    Op::StartWorkflow {
        workflow_id: wid.into(),
        request_id: req.into(),
        workflow_type: None,
        attach_to_existing: false,
        run_timeout_ms: None,
    }
}

pub fn signal(wid: &str, req: &str, value: &str) -> Op {
    Op::Signal {
        workflow_id: wid.into(),
        run_id: None,
        request_id: req.into(),
        signal_name: None,
        value: value.into(),
    }
}

pub fn complete_activity(wid: &str, run: &str, activity: &str, result: &str) -> Op {
    Op::CompleteActivity {
        workflow_id: wid.into(),
        run_id: run.into(),
        activity_id: activity.into(),
        result: result.into(),
    }
}

pub fn poll_activity() -> Op {
    Op::PollActivity {
        task_queue: "q".into(),
    }
}

pub fn start_timer(wid: &str, run: &str, timer: &str, duration_ms: u64) -> Op {
    Op::StartTimer {
        workflow_id: wid.into(),
        run_id: run.into(),
        timer_id: timer.into(),
        duration_ms,
    }
}

pub fn read(wid: &str, run: &str) -> Op {
    Op::ReadHistory {
        workflow_id: wid.into(),
        run_id: run.into(),
    }
}

pub fn describe(wid: &str, run: &str) -> Op {
    Op::Describe {
        workflow_id: wid.into(),
        run_id: Some(run.into()),
    }
}

pub fn nemesis(action: NemesisAction, fault: FaultKind, nodes: &[u64]) -> Op {
    Op::Nemesis(NemesisOp {
        action,
        fault: Some(fault),
        nodes: nodes.iter().map(|&n| NodeId(n)).collect(),
    })
}

pub fn started(run: &str) -> Option<OpValue> {
    Some(OpValue::Started { run_id: run.into() })
}

pub fn events(events: Vec<ObservedEvent>) -> Option<OpValue> {
    Some(OpValue::Events { events })
}

pub fn outcome(run: &str, status: RunStatus, result: Option<&str>) -> Option<OpValue> {
    Some(OpValue::Outcome {
        run_id: run.into(),
        status,
        result: result.map(str::to_owned),
    })
}

pub fn activity_task(wid: &str, run: &str, activity: &str) -> Option<OpValue> {
    Some(OpValue::ActivityTask {
        workflow_id: wid.into(),
        run_id: run.into(),
        activity_id: activity.into(),
        attempt: 1,
    })
}

pub fn raft_status(groups: &[(u32, u64)]) -> Option<OpValue> {
    Some(OpValue::RaftStatus {
        groups: groups
            .iter()
            .map(|&(g, i)| GroupApplied {
                group: GroupId(g),
                applied_index: RaftIndex(i),
            })
            .collect(),
    })
}

pub fn ev(id: u64, event_type: EventType) -> ObservedEvent {
    ObservedEvent {
        event_id: EventId(id),
        event_type,
        attributes: EventAttributes::default(),
        event_time_ms: None,
        raft_index: None,
    }
}

pub fn at_raft(mut event: ObservedEvent, index: u64) -> ObservedEvent {
    event.raft_index = Some(RaftIndex(index));
    event
}

pub fn started_ev(id: u64, req: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::WorkflowExecutionStarted);
    e.attributes.request_id = Some(req.into());
    e
}

pub fn signaled_ev(id: u64, input: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::WorkflowExecutionSignaled);
    e.attributes.signal_input = Some(input.into());
    e
}

pub fn scheduled_ev(id: u64, activity: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::ActivityTaskScheduled);
    e.attributes.activity_id = Some(activity.into());
    e
}

pub fn activity_started_ev(id: u64, scheduled: u64) -> ObservedEvent {
    let mut e = ev(id, EventType::ActivityTaskStarted);
    e.attributes.scheduled_event_id = Some(EventId(scheduled));
    e
}

pub fn activity_completed_ev(id: u64, scheduled: u64, result: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::ActivityTaskCompleted);
    e.attributes.scheduled_event_id = Some(EventId(scheduled));
    e.attributes.result = Some(result.into());
    e
}

pub fn timer_started_ev(id: u64, timer: &str, duration_ms: u64) -> ObservedEvent {
    let mut e = ev(id, EventType::TimerStarted);
    e.attributes.timer_id = Some(timer.into());
    e.attributes.timer_duration_ms = Some(duration_ms);
    e
}

pub fn timer_fired_ev(id: u64, timer: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::TimerFired);
    e.attributes.timer_id = Some(timer.into());
    e
}

pub fn completed_ev(id: u64, result: &str) -> ObservedEvent {
    let mut e = ev(id, EventType::WorkflowExecutionCompleted);
    e.attributes.result = Some(result.into());
    e
}

pub fn task_ev(id: u64) -> ObservedEvent {
    ev(id, EventType::Other("WorkflowTaskScheduled".into()))
}

/// A final read with the given nodes, each holding group 1 only.
pub struct FinalReadBuilder {
    pub final_read: FinalRead,
}

impl FinalReadBuilder {
    pub fn new(nodes: &[u64]) -> Self {
        FinalReadBuilder {
            final_read: FinalRead {
                read_at_ns: HarnessNanos(1_000_000_000_000),
                nodes: nodes
                    .iter()
                    .map(|&n| NodeRead {
                        node: NodeId(n),
                        groups: vec![GroupRead {
                            group: GroupId(1),
                            applied_index: RaftIndex(0),
                            state_digest: "empty".into(),
                            committed: Vec::new(),
                            runs: Vec::new(),
                        }],
                    })
                    .collect(),
            },
        }
    }

    /// Adds the run to group 1 on every node.
    pub fn run(mut self, wid: &str, run: &str, events: Vec<ObservedEvent>) -> Self {
        let nodes: Vec<u64> = self.final_read.nodes.iter().map(|n| n.node.0).collect();
        for node in nodes {
            self = self.run_on(node, wid, run, events.clone());
        }
        self
    }

    /// Adds the run to group 1 on one node.
    pub fn run_on(mut self, node: u64, wid: &str, run: &str, events: Vec<ObservedEvent>) -> Self {
        let group = self.group_mut(node);
        group.runs.push(RunHistory {
            workflow_id: wid.into(),
            run_id: run.into(),
            events,
        });
        self
    }

    pub fn read_at(mut self, t_ns: u64) -> Self {
        self.final_read.read_at_ns = HarnessNanos(t_ns);
        self
    }

    pub fn group_mut(&mut self, node: u64) -> &mut GroupRead {
        self.final_read
            .nodes
            .iter_mut()
            .find(|n| n.node == NodeId(node))
            .and_then(|n| n.groups.first_mut())
            .expect("a node of this final read")
    }

    pub fn build(self) -> FinalRead {
        self.final_read
    }
}

pub fn check_with(
    invariant: Invariant,
    history: &History,
    final_read: &FinalRead,
    config: &CheckConfig,
) -> InvariantReport {
    let input = CheckInput::new(history, final_read, config);
    super::check(invariant, &input)
}

pub fn check_one(
    invariant: Invariant,
    history: &History,
    final_read: &FinalRead,
) -> InvariantReport {
    check_with(invariant, history, final_read, &CheckConfig::default())
}

/// Asserts exactly one violation and returns it.
pub fn single_violation(report: &InvariantReport) -> &super::Violation {
    assert_eq!(
        report.violations.len(),
        1,
        "expected one violation, got: {:#?}",
        report.violations
    );
    &report.violations[0]
}

pub fn assert_valid(report: &InvariantReport) {
    assert!(
        report.is_valid(),
        "unexpected violations:\n{}",
        report
            .violations
            .iter()
            .map(ToString::to_string)
            .collect::<String>()
    );
}

pub const MS: u64 = 1_000_000;
