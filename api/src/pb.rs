//! Generated tonic server (and client) code for WorkflowService and OperatorService.
#![allow(clippy::all, missing_docs, unused_qualifications)]

pub mod workflowservice {
    tonic::include_proto!("temporal.api.workflowservice.v1");
}

pub mod operatorservice {
    tonic::include_proto!("temporal.api.operatorservice.v1");
}
