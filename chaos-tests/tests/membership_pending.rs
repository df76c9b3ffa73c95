//! The `membership` fault when the cluster cannot commit the removal: the replacement's
//! `remove-node` is refused while no majority is up, the harness keeps the half-done change
//! and the heal finishes it, so the cluster converges on the membership the harness expects.
//! Found by campaign 3's rerun of 3 nodes, seed 105: a replacement whose removal a group
//! leader refused under the faults was left half-done (the node out of some groups, in
//! others), and the run could never converge. Needs root and
//! network namespaces; skipped otherwise.

mod common;

use common::harness_cluster::formed_cluster;
use perdura_chaos::harness::cluster::ClusterError;
use perdura_chaos::harness::disk::DiskFaults;
use perdura_chaos::harness::exec::is_root;
use perdura_chaos::ids::NodeId;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_refused_without_a_majority_is_finished_by_the_heal() {
    if !is_root() {
        eprintln!("skipped: the harness network needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = formed_cluster(dir.path(), 3, 2, DiskFaults::default(), 100).await;

    // Node 2 down, then node 1 replaced: the replacement kills node 1, and node 3 alone is
    // no majority of {1, 2, 3}, so no group can commit node 1's removal.
    cluster.node(NodeId(2)).expect("node 2").kill();
    let refused = cluster.replace_node(NodeId(1)).await;
    match refused {
        Err(ClusterError::NoAnswer("remove-node", _)) => {}
        other => panic!("expected remove-node to be refused without a majority, got {other:?}"),
    }
    assert_eq!(
        cluster.members(),
        vec![NodeId(2), NodeId(3)],
        "the victim is out of the harness's members while its removal is pending"
    );

    // The heal restarts node 2; with a majority back the removal commits and node 4 joins.
    cluster
        .heal_all(Duration::from_secs(60))
        .await
        .expect("the heal finishes the pending replacement");
    assert_eq!(cluster.members(), vec![NodeId(2), NodeId(3), NodeId(4)]);
    let status = cluster
        .wait_converged(Duration::from_secs(120))
        .await
        .expect("the cluster converges on the new members");
    for group in &status.groups {
        let mut voters = group.voters.clone();
        voters.sort();
        assert_eq!(
            voters,
            vec![2, 3, 4],
            "group {} has the members the harness expects",
            group.group
        );
    }
    cluster.shutdown();
}
