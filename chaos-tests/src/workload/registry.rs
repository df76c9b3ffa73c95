//! What the workload's processes know of the workflows they started: the targets of duplicate
//! starts, retried requests, signals and reads. Shared by all processes.
//!
//! Each workflow ID belongs to the process that first started it; only that process starts it
//! again (a duplicate ID with a fresh request ID, or a retry of its last request ID), so a retry
//! never races another start of the same workflow.

use crate::ids::{ProcessId, RequestId, RunId, WorkflowId};
use rand::Rng;
use rand::rngs::StdRng;

#[derive(Clone, Debug)]
pub struct KnownWorkflow {
    pub workflow_id: WorkflowId,
    pub owner: ProcessId,
    /// Run IDs the workload was told of (starts, polls), in the order learnt.
    pub runs: Vec<RunId>,
    /// The request ID of the owner's last start that did or may have started a run.
    pub last_request: Option<RequestId>,
}

/// A signal that named its run, kept for a retry with the same request ID and value.
#[derive(Clone, Debug)]
pub struct SentSignal {
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub request_id: RequestId,
    pub value: String,
}

#[derive(Default)]
pub struct Registry {
    workflows: Vec<KnownWorkflow>,
    signals: Vec<SentSignal>,
}

impl Registry {
    fn find(&mut self, workflow_id: &WorkflowId) -> Option<&mut KnownWorkflow> {
        self.workflows
            .iter_mut()
            .find(|w| &w.workflow_id == workflow_id)
    }

    /// Records a start request (ok or unknown) of `owner`.
    pub fn started(
        &mut self,
        owner: ProcessId,
        workflow_id: &WorkflowId,
        request_id: &RequestId,
        run_id: Option<&RunId>,
    ) {
        if self.find(workflow_id).is_none() {
            self.workflows.push(KnownWorkflow {
                workflow_id: workflow_id.clone(),
                owner,
                runs: Vec::new(),
                last_request: None,
            });
        }
        if let Some(known) = self.find(workflow_id) {
            known.last_request = Some(request_id.clone());
        }
        if let Some(run_id) = run_id {
            self.learnt_run(workflow_id, run_id);
        }
    }

    /// Records a run seen anywhere (a poll of a child or continued run included).
    pub fn learnt_run(&mut self, workflow_id: &WorkflowId, run_id: &RunId) {
        if self.find(workflow_id).is_none() {
            self.workflows.push(KnownWorkflow {
                workflow_id: workflow_id.clone(),
                owner: ProcessId(u64::MAX),
                runs: Vec::new(),
                last_request: None,
            });
        }
        if let Some(known) = self.find(workflow_id)
            && !known.runs.contains(run_id)
        {
            known.runs.push(run_id.clone());
        }
    }

    /// A workflow `owner` started, at random.
    pub fn own_workflow(&self, owner: ProcessId, rng: &mut StdRng) -> Option<KnownWorkflow> {
        let own: Vec<&KnownWorkflow> = self.workflows.iter().filter(|w| w.owner == owner).collect();
        (!own.is_empty()).then(|| own[rng.random_range(0..own.len())].clone())
    }

    /// A known run at random, preferring recent workflows (the last 20).
    pub fn some_run(&self, rng: &mut StdRng) -> Option<(WorkflowId, RunId)> {
        let with_runs: Vec<&KnownWorkflow> = self
            .workflows
            .iter()
            .filter(|w| !w.runs.is_empty())
            .collect();
        if with_runs.is_empty() {
            return None;
        }
        let from = with_runs.len().saturating_sub(20);
        let known = with_runs[rng.random_range(from..with_runs.len())];
        let run = known.runs[rng.random_range(0..known.runs.len())].clone();
        Some((known.workflow_id.clone(), run))
    }

    pub fn signal_sent(&mut self, signal: SentSignal) {
        self.signals.push(signal);
    }

    /// A signal that named its run, at random, to retry.
    pub fn some_signal(&self, rng: &mut StdRng) -> Option<SentSignal> {
        (!self.signals.is_empty())
            .then(|| self.signals[rng.random_range(0..self.signals.len())].clone())
    }
}
