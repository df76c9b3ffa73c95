//! GetSystemInfo: mandatory for `Client.connect` (TEMPORAL-WIRE.md §1.3).

use temporalio_protos::temporal::api::workflowservice::v1::{
    GetSystemInfoResponse, get_system_info_response::Capabilities,
};

pub(crate) fn system_info() -> GetSystemInfoResponse {
    GetSystemInfoResponse {
        server_version: concat!("perdura-", env!("CARGO_PKG_VERSION")).to_string(),
        capabilities: Some(Capabilities {
            signal_and_query_header: true,
            internal_error_differentiation: true,
            activity_failure_include_heartbeat: true,
            encoded_failure_attributes: true,
            // We persist WorkflowTaskCompleted.sdk_metadata verbatim, so core may use its flags.
            sdk_metadata: true,
            // Kept false: versioning APIs are not served (TEMPORAL-WIRE.md §1.3).
            build_id_based_versioning: false,
            upsert_memo: true,
            ..Default::default()
        }),
    }
}
