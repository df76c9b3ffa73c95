//! A real Perdura node on our lazyfs keeps Perdura's promise "acknowledged ⇒ fsynced": a
//! `perdura server start-dev` whose data dir is on the mount acknowledges workflow starts, is
//! SIGKILLed, loses every unsynced byte (`clear-cache`, a power loss), restarts on the same dir
//! and still has every run it acknowledged. Needs root and /dev/fuse; skipped otherwise.

mod common;

use common::dev_node::{Server, built_perdura_binary, client, describe, free_port, start};
use common::lazyfs_dir::mount_lazyfs;
use perdura_chaos::lazyfs::can_mount;
use perdura_chaos::lazyfs::control::ControlCommand;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_lazyfs_keeps_every_acknowledged_start_across_sigkill_and_power_loss() {
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return;
    }
    let binary = built_perdura_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let (lazyfs, mountpoint) = mount_lazyfs(dir.path());
    let data_dir = mountpoint.join("data");
    let log = dir.path().join("node.log");
    let port = free_port();

    let mut server = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(server.addr).await;
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while acknowledged.len() < 40 {
        assert!(
            Instant::now() < deadline,
            "the node acknowledged too few starts"
        );
        let wid = format!("lazyfs-{i}");
        i += 1;
        if let Some(run_id) = start(&mut grpc, &wid).await {
            acknowledged.push((wid, run_id));
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    server.kill();
    // Requests the dead process had in flight are answered before the cache is dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dropped = lazyfs
        .command(ControlCommand::ClearCache)
        .expect("clear-cache");
    eprintln!("power loss dropped {dropped:?}");
    assert!(
        dropped.bytes > 0,
        "the node left nothing unsynced, so this run proves nothing: {dropped:?}"
    );

    let server = Server::start(&binary, &data_dir, port, &log);
    let mut grpc = client(server.addr).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = acknowledged.clone();
    while !missing.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (wid, run_id) in missing {
            match describe(&mut grpc, &wid).await {
                Some(found) => assert_eq!(found, run_id, "{wid} has another run after restart"),
                None => still.push((wid, run_id)),
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        missing.is_empty(),
        "acknowledged starts lost in the power loss: {missing:?}\nnode log:\n{log_text}"
    );
    assert!(
        start(&mut grpc, "lazyfs-after").await.is_some(),
        "the restarted node serves new starts\nnode log:\n{log_text}"
    );
    drop(server);
    lazyfs.unmount().expect("unmount");
}
