//! Our lazyfs on the real kernel: reads see unsynced writes, fsynced data survives
//! `clear-cache`, unsynced data and size changes are gone after it, and the control socket
//! reports what it dropped. Needs root and /dev/fuse (as CI has); skipped otherwise.

use perdura_chaos::lazyfs::control::{self, ControlCommand};
use perdura_chaos::lazyfs::{MountedLazyFs, can_mount};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

fn skip() -> bool {
    match can_mount() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped: {why}");
            true
        }
    }
}

struct Mounted {
    _dir: tempfile::TempDir,
    fs: MountedLazyFs,
    backing: std::path::PathBuf,
    control: std::path::PathBuf,
}

fn mount() -> Mounted {
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = dir.path().join("backing");
    let mountpoint = dir.path().join("mnt");
    let control = dir.path().join("control.sock");
    fs::create_dir(&backing).expect("backing");
    fs::create_dir(&mountpoint).expect("mountpoint");
    let fs = MountedLazyFs::mount(&backing, &mountpoint, Some(&control)).expect("mount");
    Mounted {
        _dir: dir,
        fs,
        backing,
        control,
    }
}

fn read(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path)
        .expect("open")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

#[test]
fn synced_data_survives_a_clear_and_unsynced_data_is_gone() {
    if skip() {
        return;
    }
    let m = mount();
    let mnt = m.fs.mountpoint().to_owned();

    let mut synced = File::create(mnt.join("synced")).expect("create");
    synced.write_all(b"durable").expect("write");
    synced.sync_data().expect("fdatasync");
    synced.write_all(b"+tail").expect("write after the sync");
    let mut unsynced = File::create(mnt.join("unsynced")).expect("create");
    unsynced.write_all(b"volatile").expect("write");

    // Readers see every write before the power loss; the backing files only the synced ones.
    assert_eq!(read(&mnt.join("synced")), b"durable+tail");
    assert_eq!(read(&mnt.join("unsynced")), b"volatile");
    assert_eq!(read(&m.backing.join("synced")), b"durable");
    assert_eq!(read(&m.backing.join("unsynced")), b"");
    let held = control::send(&m.control, ControlCommand::Held).expect("held");
    assert_eq!((held.files, held.bytes), (2, 5 + 8), "{held:?}");
    drop((synced, unsynced));

    let dropped = control::send(&m.control, ControlCommand::ClearCache).expect("clear-cache");
    assert_eq!((dropped.files, dropped.bytes), (2, 5 + 8), "{dropped:?}");
    assert_eq!(read(&mnt.join("synced")), b"durable");
    assert_eq!(
        read(&mnt.join("unsynced")),
        b"",
        "names are durable, data is not"
    );
    assert_eq!(fs::metadata(mnt.join("unsynced")).expect("stat").len(), 0);
    let held = control::send(&m.control, ControlCommand::Held).expect("held");
    assert_eq!((held.files, held.bytes), (0, 0));
}

#[test]
fn an_open_file_sees_the_clear_and_a_truncation_is_undone() {
    if skip() {
        return;
    }
    let m = mount();
    let mnt = m.fs.mountpoint().to_owned();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(mnt.join("log"))
        .expect("create");
    file.write_all(&[7u8; 4096]).expect("write");
    file.sync_all().expect("fsync");
    file.set_len(100).expect("truncate");
    file.seek(SeekFrom::Start(200)).expect("seek");
    file.write_all(b"hole").expect("write past a hole");
    let mut now = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.read_to_end(&mut now).expect("read");
    assert_eq!(now.len(), 204);
    assert!(now[..100].iter().all(|b| *b == 7));
    assert!(
        now[100..200].iter().all(|b| *b == 0),
        "a truncated range reads as zeros"
    );
    assert_eq!(&now[200..], b"hole");

    m.fs.command(ControlCommand::ClearCache).expect("clear");
    let mut after = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.read_to_end(&mut after).expect("read");
    assert_eq!(after, vec![7u8; 4096], "back to the last fsync");
}

#[test]
fn the_sync_command_makes_everything_durable_and_renames_keep_synced_contents() {
    if skip() {
        return;
    }
    let m = mount();
    let mnt = m.fs.mountpoint().to_owned();
    fs::create_dir(mnt.join("dir")).expect("mkdir");
    let mut tmp = File::create(mnt.join("dir/CURRENT.tmp")).expect("create");
    tmp.write_all(b"MANIFEST-000007\n").expect("write");
    tmp.sync_all().expect("fsync");
    drop(tmp);
    fs::rename(mnt.join("dir/CURRENT.tmp"), mnt.join("dir/CURRENT")).expect("rename");
    fs::write(mnt.join("dir/other"), b"later synced").expect("write");
    let synced = control::send(&m.control, ControlCommand::Sync).expect("sync");
    assert_eq!(synced.files, 1, "{synced:?}");
    let dropped = control::send(&m.control, ControlCommand::ClearCache).expect("clear");
    assert_eq!(dropped.files, 0, "{dropped:?}");
    assert_eq!(read(&mnt.join("dir/CURRENT")), b"MANIFEST-000007\n");
    assert_eq!(read(&mnt.join("dir/other")), b"later synced");
    let mut names: Vec<String> = fs::read_dir(mnt.join("dir"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["CURRENT", "other"]);
    fs::remove_file(mnt.join("dir/other")).expect("unlink");
    assert!(!m.backing.join("dir/other").exists());
}

/// A process in another mount namespace (as every node started with `ip netns exec` is) holds
/// a copy of the mount: unmounting here must still end the session, not wait for that process
/// to exit. The harness hung at the end of a campaign run (5 nodes, seed 401) dropping the
/// lazyfs of a node removed while others ran.
#[test]
fn unmounting_while_another_mount_namespace_holds_a_copy_returns() {
    if skip() {
        return;
    }
    let mounted = mount();
    let mountpoint = mounted.fs.mountpoint().to_owned();
    fs::write(mountpoint.join("held"), b"data").expect("write through the mount");
    // A copy of the mount in a new mount namespace, kept alive by a sleeping process whose
    // working directory is inside it.
    let mut holder = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sleep", "120"])
        .current_dir(&mountpoint)
        .spawn()
        .expect("unshare (util-linux)");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let (done_tx, done) = std::sync::mpsc::channel();
    let fs = mounted.fs;
    std::thread::spawn(move || drop(done_tx.send(fs.unmount())));
    let result = done.recv_timeout(std::time::Duration::from_secs(30));
    let _ = holder.kill();
    let _ = holder.wait();
    let result = result.expect("unmounting returns while another namespace holds the mount");
    eprintln!("unmounted in {:?}: {result:?}", started.elapsed());
    assert!(result.is_ok(), "the session did not end: {result:?}");
    assert!(
        !fs::read_to_string("/proc/mounts")
            .expect("/proc/mounts")
            .contains(&mountpoint.display().to_string()),
        "{} is still mounted here",
        mountpoint.display()
    );
}
