//! Workflow counters: runs started and runs closed, by namespace.
//!
//! Every node of a cluster applies every group's log, so counting on apply would count each
//! workflow once per replica. The counters are therefore taken where exactly one node acts:
//! * **started** — at the API edge, on the node that answered a StartWorkflowExecution,
//!   SignalWithStartWorkflowExecution or update-with-start call that created a new run. The
//!   call proposes the new run's ID, so a reply naming that run ID means this very call created
//!   it; a retry with the same request ID (answered `started: true` with the run an earlier
//!   attempt created), a signal to a running workflow or a use-existing start is not counted.
//!   Runs the server creates itself (children, continue-as-new, retries, cron) are not client
//!   starts and are not counted here.
//! * **completed** — when the group's *leader* applies the command that closed the run
//!   ([`perdura_engine::Notice::WorkflowClosed`]), whatever closed it (a worker's completion, a
//!   terminate call, a timeout fired by the timer driver). Followers apply the same entry and
//!   count nothing. Around a leader change a close can be counted by both or neither leader;
//!   the counter is a rate indicator, not an audit log.
//!
//! Summing a counter over the nodes of a cluster gives the cluster-wide number.

use perdura_engine::ExecutionKey;
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;

/// Counter: runs started by client calls answered by this node, label `namespace`.
pub const WORKFLOWS_STARTED: &str = "perdura_workflows_started_total";
/// Counter: runs closed while this node led their group, labels `namespace`, `status`.
pub const WORKFLOWS_COMPLETED: &str = "perdura_workflows_completed_total";

/// Counts the start reply of a client call this node answered if that call created the run:
/// `proposed_run_id` is the run ID the call proposed, `run_id` and `started` the reply's.
pub fn record_start_reply(namespace: &str, proposed_run_id: &str, run_id: &str, started: bool) {
    if started && run_id == proposed_run_id {
        metrics::counter!(WORKFLOWS_STARTED, "namespace" => namespace.to_string()).increment(1);
    }
}

/// Counts a run closed by an entry this node applied as its group's leader.
pub fn record_closed(execution: &ExecutionKey, status: WorkflowExecutionStatus) {
    metrics::counter!(
        WORKFLOWS_COMPLETED,
        "namespace" => execution.namespace.clone(),
        "status" => status_label(status),
    )
    .increment(1);
}

/// The `status` label of a closed run.
pub fn status_label(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Completed => "completed",
        WorkflowExecutionStatus::Failed => "failed",
        WorkflowExecutionStatus::Canceled => "canceled",
        WorkflowExecutionStatus::Terminated => "terminated",
        WorkflowExecutionStatus::TimedOut => "timed_out",
        WorkflowExecutionStatus::ContinuedAsNew => "continued_as_new",
        // Not a close status: the engine never reports a run closed with it.
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_status_has_its_own_label() {
        let labels: Vec<&str> = [
            WorkflowExecutionStatus::Completed,
            WorkflowExecutionStatus::Failed,
            WorkflowExecutionStatus::Canceled,
            WorkflowExecutionStatus::Terminated,
            WorkflowExecutionStatus::TimedOut,
            WorkflowExecutionStatus::ContinuedAsNew,
        ]
        .into_iter()
        .map(status_label)
        .collect();
        assert_eq!(
            labels,
            [
                "completed",
                "failed",
                "canceled",
                "terminated",
                "timed_out",
                "continued_as_new"
            ]
        );
        assert_eq!(status_label(WorkflowExecutionStatus::Running), "unknown");
    }
}
