//! Generates the tonic server traits for Temporal's WorkflowService and OperatorService from the
//! compiled descriptor set that `temporalio-protos` publishes (no copied .proto, no protoc). The
//! message types themselves are reused from `temporalio-protos` through `extern_path`.

use prost::Message;
use std::{env, fs};

const SERVICES: [&str; 2] = [
    "temporal/api/workflowservice/v1/service.proto",
    "temporal/api/operatorservice/v1/service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").map_err(
        |_| "temporalio-protos must be a direct dependency (DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH)",
    )?;
    println!("cargo:rerun-if-changed={path}");
    let bytes = fs::read(&path)?;
    let mut fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    fds.file.retain(|file| SERVICES.contains(&file.name()));
    if fds.file.len() != SERVICES.len() {
        return Err("service protos missing from the temporalio-protos descriptor set".into());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .compile_fds(fds)?;
    Ok(())
}
