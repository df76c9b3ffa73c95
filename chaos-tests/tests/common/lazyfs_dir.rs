//! A lazyfs mounted in a test's temporary directory (`backing/` under `mnt/`).

#![allow(dead_code)] // each test file uses a subset

use perdura_chaos::lazyfs::MountedLazyFs;
use std::path::{Path, PathBuf};

/// Mounts a lazyfs of `dir/backing` on `dir/mnt`; the mount and its mountpoint.
pub fn mount_lazyfs(dir: &Path) -> (MountedLazyFs, PathBuf) {
    let backing = dir.join("backing");
    let mountpoint = dir.join("mnt");
    std::fs::create_dir(&backing).expect("backing");
    std::fs::create_dir(&mountpoint).expect("mountpoint");
    let lazyfs = MountedLazyFs::mount(&backing, &mountpoint, None).expect("mount lazyfs");
    (lazyfs, mountpoint)
}
