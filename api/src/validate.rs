//! Request validation at the API edge: IDs, run IDs, namespaces and payload sizes. Every failure
//! is INVALID_ARGUMENT (or NOT_FOUND for an unknown namespace) with a message that names the field.

use crate::limits::{MAX_BLOB_BYTES, MAX_ID_BYTES};
use crate::status;
use prost::Message;
use temporalio_protos::temporal::api::common::v1::{Payloads, WorkflowExecution};
use tonic::Status;

/// A required identifier: non-empty, at most [`MAX_ID_BYTES`].
pub fn required_id(field: &str, value: &str) -> Result<(), Status> {
    if value.trim().is_empty() {
        return Err(status::invalid(format!("{field} is not set on request.")));
    }
    optional_id(field, value)
}

/// An optional identifier: at most [`MAX_ID_BYTES`].
pub fn optional_id(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_ID_BYTES {
        return Err(status::invalid(format!(
            "{field} exceeds length limit of {MAX_ID_BYTES} bytes."
        )));
    }
    Ok(())
}

/// Run IDs are UUIDs. The exact message is what the cross-SDK feature harness probes for.
pub fn run_id(value: &str) -> Result<(), Status> {
    if value.is_empty() || uuid::Uuid::parse_str(value).is_ok() {
        Ok(())
    } else {
        Err(status::invalid("Invalid RunId."))
    }
}

/// A workflow execution reference: workflow ID required, run ID empty or a UUID.
pub fn execution(execution: Option<&WorkflowExecution>) -> Result<WorkflowExecution, Status> {
    let execution = execution.ok_or_else(|| status::invalid("Execution is not set on request."))?;
    required_id("WorkflowId", &execution.workflow_id)?;
    run_id(&execution.run_id)?;
    Ok(execution.clone())
}

/// A payload-bearing field must stay under the blob limit.
pub fn blob(field: &str, payloads: Option<&Payloads>) -> Result<(), Status> {
    blob_len(field, payloads.map_or(0, Message::encoded_len))
}

/// Any message-valued field (memo, header, failure) must stay under the blob limit.
pub fn message_blob<M: Message>(field: &str, message: Option<&M>) -> Result<(), Status> {
    blob_len(field, message.map_or(0, Message::encoded_len))
}

/// A request ID is bounded; an empty one is replaced by a fresh UUID, because without one a retry
/// of the call could not be recognised as such.
pub fn request_id(value: &mut String) -> Result<(), Status> {
    optional_id("RequestId", value)?;
    if value.is_empty() {
        *value = uuid::Uuid::new_v4().to_string();
    }
    Ok(())
}

/// Size check of an already-measured field.
pub fn blob_len(field: &str, len: usize) -> Result<(), Status> {
    if len > MAX_BLOB_BYTES {
        return Err(status::invalid(format!(
            "{field} size {len} bytes exceeds the blob size limit of {MAX_BLOB_BYTES} bytes."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::common::v1::Payload;

    #[test]
    fn run_ids_must_be_uuids() {
        assert!(run_id("").is_ok());
        assert!(run_id("0b6c8d3e-55a6-4f7e-9d0c-2f1a2b3c4d5e").is_ok());
        let err = run_id("superneverexistwf!").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), "Invalid RunId.");
    }

    #[test]
    fn ids_are_required_and_bounded() {
        assert_eq!(
            required_id("WorkflowId", "").unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(required_id("WorkflowId", "x").is_ok());
        assert!(required_id("WorkflowId", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn blobs_over_the_limit_are_rejected() {
        let small = Payloads {
            payloads: vec![Payload {
                data: vec![0; 10],
                ..Default::default()
            }],
        };
        assert!(blob("Input", Some(&small)).is_ok());
        let big = Payloads {
            payloads: vec![Payload {
                data: vec![0; MAX_BLOB_BYTES + 1],
                ..Default::default()
            }],
        };
        let err = blob("Input", Some(&big)).unwrap_err();
        assert!(
            err.message().contains("exceeds the blob size limit"),
            "{}",
            err.message()
        );
    }
}
