//! `Notice::WorkflowClosed`: emitted exactly once, by the command that closes a run.

use super::continue_as_new::continue_as_new;
use super::*;
use crate::shard::Notice;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_protos::temporal::api::workflowservice::v1::TerminateWorkflowExecutionRequest;

fn closed(applied: &Applied) -> Vec<(ExecutionKey, WorkflowExecutionStatus)> {
    applied
        .notices
        .iter()
        .filter_map(|notice| match notice {
            Notice::WorkflowClosed { execution, status } => Some((execution.clone(), *status)),
            _ => None,
        })
        .collect()
}

fn terminate(workflow_id: &str) -> ShardCommandKind {
    ShardCommandKind::TerminateWorkflow {
        request: TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            reason: "operator".into(),
            ..Default::default()
        },
    }
}

#[test]
fn completion_emits_one_closed_notice_and_later_commands_none() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let done = h.complete_workflow_task(&info.token, vec![complete_workflow("ok")]);
    assert_eq!(
        closed(&done),
        vec![(k.clone(), WorkflowExecutionStatus::Completed)]
    );
    // Terminating the closed run is refused and reports nothing closed.
    let refused = h.apply(terminate("wf"));
    assert!(matches!(refused.reply, Some(Err(_))));
    assert!(closed(&refused).is_empty());
}

#[test]
fn terminate_and_failure_report_their_status() {
    let mut h = Harness::new();
    let k = h.start("wf");
    assert_eq!(
        closed(&h.apply(terminate("wf"))),
        vec![(k, WorkflowExecutionStatus::Terminated)]
    );
    let k2 = h.start("wf-2");
    let info = h.poll_workflow_task(&k2);
    let failed = h.complete_workflow_task(&info.token, vec![fail_workflow("boom")]);
    assert_eq!(closed(&failed), vec![(k2, WorkflowExecutionStatus::Failed)]);
}

#[test]
fn continue_as_new_closes_only_the_old_run() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let done = h.complete_workflow_task(&info.token, vec![continue_as_new("next", 0)]);
    assert_eq!(
        closed(&done),
        vec![(k, WorkflowExecutionStatus::ContinuedAsNew)]
    );
}
