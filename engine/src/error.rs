//! Typed engine errors. Each maps, once, at the API edge, to the gRPC status the SDKs decode.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum EngineError {
    /// The named namespace, workflow, run or task does not exist (or the task token is stale).
    #[error("{0}")]
    NotFound(String),
    /// A workflow with this ID is running and the conflict policy is FAIL.
    #[error("Workflow execution is already running. WorkflowId: {workflow_id}, RunId: {run_id}.")]
    AlreadyStarted {
        workflow_id: String,
        run_id: String,
        start_request_id: String,
    },
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The workflow task completion carried a close command while new events were pending.
    #[error("UnhandledCommand")]
    UnhandledCommand,
    /// The request is valid but the state does not allow it (e.g. namespace already registered).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A namespace of that name already exists.
    #[error("Namespace {0} already exists.")]
    NamespaceAlreadyExists(String),
    /// A configured limit (history length or size) was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    /// One operation of a multi-operation command (update-with-start) failed, so none was
    /// applied. `index` is the failed operation's position in the request.
    #[error("Update-with-Start could not be executed.")]
    MultiOperation { index: u32, error: Box<EngineError> },
    /// The workflow's slot has moved to another group (an online split): nothing was applied.
    /// The router retries the command on `group`; the API answers UNAVAILABLE if it cannot.
    #[error("slot {slot} of this workflow moved to group {group}")]
    SlotMoved {
        slot: u16,
        group: crate::ids::GroupId,
    },
}
