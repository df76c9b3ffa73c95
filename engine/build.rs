//! Copies the descriptor set that `temporalio-protos` publishes into OUT_DIR, so the canonical
//! protobuf encoder (`src/canonical.rs`) knows which fields are maps and which are messages.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").map_err(
        |_| "temporalio-protos must be a direct dependency (DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH)",
    )?;
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(env::var("OUT_DIR")?).join("temporal_descriptors.bin");
    fs::copy(&source, out)?;
    Ok(())
}
