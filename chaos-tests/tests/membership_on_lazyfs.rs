//! The `membership` fault with every data dir on lazyfs (the `lose-unsynced` fault on): a node
//! is replaced and the harness goes on. Found by the campaign (5 nodes, seed 401, `--faults
//! all`): dropping the removed node's lazyfs mid-run waited forever for its FUSE session, which
//! the other nodes' mount namespaces kept alive, and the whole harness stopped. Needs root,
//! network namespaces and /dev/fuse; skipped otherwise.

mod common;

use common::harness_cluster::formed_cluster;
use perdura_chaos::harness::disk::DiskFaults;
use perdura_chaos::harness::exec::is_root;
use perdura_chaos::ids::NodeId;
use perdura_chaos::lazyfs::can_mount;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_replaced_while_every_data_dir_is_on_lazyfs_does_not_stop_the_harness() {
    if !is_root() {
        eprintln!("skipped: the harness network needs root");
        return;
    }
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let disk_faults = DiskFaults {
        lazyfs: true,
        fsync_errors: false,
    };
    let mut cluster = formed_cluster(dir.path(), 3, 2, disk_faults, 90).await;

    // The nemesis holds the cluster inside one task of the runtime: a replacement that blocks
    // a worker thread stops the harness, and the runtime with it (its timers too). A watchdog
    // thread outside the runtime fails the test process if the replacement does not return.
    let returned = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let returned = returned.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while Instant::now() < deadline {
                if returned.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!(
                "FAILED: replacing a node whose data dir is on lazyfs did not return within \
                 180 s (the harness is blocked)"
            );
            std::process::exit(1);
        })
    };
    let replaced = cluster.replace_node(NodeId(1)).await;
    returned.store(true, Ordering::Release);
    watchdog.join().expect("the watchdog");
    let replaced = replaced.expect("the replacement succeeds");
    assert_eq!(replaced, NodeId(4));
    assert_eq!(cluster.members(), vec![NodeId(2), NodeId(3), NodeId(4)]);
    let status = cluster
        .wait_converged(Duration::from_secs(120))
        .await
        .expect("the cluster converges on the new members");
    assert!(status.groups.iter().all(|g| g.voters.len() == 3));
    cluster.shutdown();
}
