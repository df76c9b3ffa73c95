//! A harness [`Cluster`] of real `perdura server start` processes, each in its own network
//! namespace, started and formed, for the tests of the harness's own fault steps. Needs root.

#![allow(dead_code)] // each test file uses a subset

use super::dev_node::built_perdura_binary;
use perdura_chaos::harness::cluster::{Cluster, ClusterConfig};
use perdura_chaos::harness::disk::DiskFaults;
use perdura_chaos::harness::net;
use std::path::Path;
use std::time::Duration;

/// Creates an `n`-node cluster of `groups` workflow groups under `dir` (on a free net id from
/// `first_net_id` on), starts it and waits until every group has a leader and equal replicas.
pub async fn formed_cluster(
    dir: &Path,
    n: u64,
    groups: u32,
    disk_faults: DiskFaults,
    first_net_id: u8,
) -> Cluster {
    let config = ClusterConfig {
        binary: built_perdura_binary(),
        dir: dir.to_owned(),
        groups,
        libfaketime: None,
        disk_faults,
    };
    let net_id = net::free_net_id(first_net_id).expect("a free net id");
    let mut cluster = Cluster::create(config, net_id, n).expect("cluster");
    cluster
        .start_all(Duration::from_secs(60))
        .await
        .expect("nodes start");
    cluster
        .wait_converged(Duration::from_secs(90))
        .await
        .expect("the cluster forms");
    cluster
}
