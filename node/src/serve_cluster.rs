//! Runs one node of a multi-node cluster (`perdura server start`).

use crate::server_config::ServerConfig;

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    anyhow::bail!(
        "node {} of cluster {}: cluster mode is not available in this build",
        config.node_id,
        config.initial_cluster
    )
}
