//! Generates the tonic server traits for Temporal's WorkflowService and OperatorService from the
//! compiled descriptor set that `temporalio-protos` publishes (no copied .proto, no protoc). The
//! message types themselves are reused from `temporalio-protos` through `extern_path`.
//! It also writes the list of the services' gRPC methods (`grpc_methods.rs`), so the RPC metrics
//! label only real method names.
//! Perdura's own operator API (`proto/perdura/admin/v1/admin.proto`) is compiled with `protox`
//! (pure Rust, no protoc).

use prost::Message;
use std::{env, fs};

/// Perdura's own operator API.
const ADMIN_PROTO: &str = "proto/perdura/admin/v1/admin.proto";

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
    let admin = protox::compile([ADMIN_PROTO], ["proto"])?;
    println!("cargo:rerun-if-changed={ADMIN_PROTO}");
    write_method_list(&[&fds, &admin])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .compile_fds(fds)?;
    // `perdura.admin.v1.ClusterAdmin`: server and client.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .compile_fds(admin)?;
    Ok(())
}

/// Writes `GRPC_METHODS`: `(path, service, method)` of every method of the served services,
/// sorted by path (the RPC metrics layer looks paths up by binary search).
fn write_method_list(
    sets: &[&prost_types::FileDescriptorSet],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut methods = Vec::new();
    for file in sets.iter().flat_map(|fds| &fds.file) {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                methods.push((path, service.name().to_string(), method.name().to_string()));
            }
        }
    }
    methods.sort();
    let mut out = String::from(
        "/// `(path, service, method)` of every served gRPC method, sorted by path.\n\
         pub const GRPC_METHODS: &[(&str, &str, &str)] = &[\n",
    );
    for (path, service, method) in &methods {
        out.push_str(&format!("    ({path:?}, {service:?}, {method:?}),\n"));
    }
    out.push_str("];\n");
    let out_dir = env::var("OUT_DIR")?;
    fs::write(std::path::Path::new(&out_dir).join("grpc_methods.rs"), out)?;
    Ok(())
}
