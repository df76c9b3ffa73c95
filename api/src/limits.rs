//! Limits enforced at the API edge. Documented in README.md ("Limits").

use std::time::Duration;

/// Largest encoded `Payloads` (or single payload-bearing field) accepted: 2 MiB, like Temporal's
/// default blob size limit.
pub const MAX_BLOB_BYTES: usize = 2 * 1024 * 1024;
/// Largest gRPC message the server decodes; larger payloads are rejected with a clear error by
/// the blob check rather than by the transport.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Longest workflow ID, workflow type, task queue, activity ID, signal name... in bytes.
pub const MAX_ID_BYTES: usize = 1000;
/// How long a task poll is held before an empty reply, unless the client's deadline is shorter.
pub const LONG_POLL: Duration = Duration::from_secs(60);
/// Default and maximum page size of GetWorkflowExecutionHistory.
pub const HISTORY_PAGE_SIZE: usize = 1000;
