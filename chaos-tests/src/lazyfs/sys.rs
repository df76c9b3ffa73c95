//! The few `*at` system calls the pass-through needs, over `O_PATH` descriptors, as safe
//! functions returning `io::Result`. Each inode of the mount holds an `O_PATH` descriptor of its
//! backing file, so names are resolved relative to the directory the kernel named, and renames
//! of directories above a file never invalidate what the filesystem holds.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    check(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `/proc/self/fd/N` path of a descriptor: reopens an `O_PATH` descriptor for real I/O.
pub fn proc_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// An `O_PATH` descriptor of a directory given by path (the backing root).
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let path = cstr(path.as_os_str())?;
    // SAFETY: a valid NUL-terminated path; the result is checked.
    owned(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })
}

/// An `O_PATH` descriptor of `name` in `dir` (a symlink itself, not its target).
pub fn open_path_at(dir: RawFd, name: &OsStr) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    owned(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

/// Opens the file behind an `O_PATH` descriptor for reading and writing.
pub fn reopen_rw(fd: RawFd) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(proc_path(fd))
}

/// `fstat` of an `O_PATH` descriptor.
pub fn stat_fd(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `stat` is plain data; the kernel fills it on success, which is checked.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    check(unsafe { libc::fstatat(fd, empty.as_ptr(), &mut st, libc::AT_EMPTY_PATH) })?;
    Ok(st)
}

/// Creates and opens a regular file `name` in `dir` (`O_EXCL` when asked).
pub fn create_at(dir: RawFd, name: &OsStr, mode: u32, exclusive: bool) -> io::Result<File> {
    let name = cstr(name)?;
    let mut flags = libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC;
    if exclusive {
        flags |= libc::O_EXCL;
    }
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    let fd = owned(unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) })?;
    Ok(File::from(fd))
}

pub fn mkdir_at(dir: RawFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn mknod_at(dir: RawFd, name: &OsStr, mode: u32, rdev: u32) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    check(unsafe {
        libc::mknodat(
            dir,
            name.as_ptr(),
            mode as libc::mode_t,
            libc::dev_t::from(rdev),
        )
    })
    .map(drop)
}

pub fn symlink_at(target: &Path, dir: RawFd, name: &OsStr) -> io::Result<()> {
    let target = cstr(target.as_os_str())?;
    let name = cstr(name)?;
    // SAFETY: valid NUL-terminated strings and descriptor; the result is checked.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// Hard-links the file behind `fd` as `name` in `dir`.
pub fn link_at(fd: RawFd, dir: RawFd, name: &OsStr) -> io::Result<()> {
    let source = cstr(OsStr::new(&proc_path(fd)))?;
    let name = cstr(name)?;
    // SAFETY: valid NUL-terminated strings and descriptors; the result is checked.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            dir,
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Removes `name` from `dir` (`directory`: rmdir).
pub fn unlink_at(dir: RawFd, name: &OsStr, directory: bool) -> io::Result<()> {
    let name = cstr(name)?;
    let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

pub fn rename_at(
    dir: RawFd,
    name: &OsStr,
    new_dir: RawFd,
    new_name: &OsStr,
    flags: u32,
) -> io::Result<()> {
    let name = cstr(name)?;
    let new_name = cstr(new_name)?;
    // SAFETY: valid NUL-terminated names and descriptors; the result is checked.
    check(unsafe { libc::renameat2(dir, name.as_ptr(), new_dir, new_name.as_ptr(), flags) })
        .map(drop)
}

/// The target of the symlink behind `fd`.
pub fn read_link(fd: RawFd) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty = c"";
    // SAFETY: the buffer is writable for its length; the result is checked.
    let n = unsafe { libc::readlinkat(fd, empty.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn chmod(fd: RawFd, mode: u32) -> io::Result<()> {
    let path = cstr(OsStr::new(&proc_path(fd)))?;
    // SAFETY: a valid NUL-terminated path; the result is checked.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn chown(fd: RawFd, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: a valid descriptor and empty path with AT_EMPTY_PATH; the result is checked.
    check(unsafe {
        libc::fchownat(
            fd,
            empty.as_ptr(),
            uid.unwrap_or(u32::MAX),
            gid.unwrap_or(u32::MAX),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// A time for [`set_times`]: unchanged, now, or a given instant.
#[derive(Clone, Copy, Debug)]
pub enum TimeSpec {
    Omit,
    Now,
    At(std::time::SystemTime),
}

impl TimeSpec {
    fn timespec(self) -> libc::timespec {
        match self {
            TimeSpec::Omit => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            TimeSpec::Now => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            TimeSpec::At(t) => {
                let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
                }
            }
        }
    }
}

pub fn set_times(fd: RawFd, atime: TimeSpec, mtime: TimeSpec) -> io::Result<()> {
    let path = cstr(OsStr::new(&proc_path(fd)))?;
    let times = [atime.timespec(), mtime.timespec()];
    // SAFETY: a valid path and a two-element array as utimensat requires; the result is checked.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

pub fn statvfs(fd: &impl AsRawFd) -> io::Result<libc::statvfs> {
    let path = cstr(OsStr::new(&proc_path(fd.as_raw_fd())))?;
    // SAFETY: `statvfs` is plain data filled on success, which is checked.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(path.as_ptr(), &mut st) })?;
    Ok(st)
}

/// Detaches the mount at `path` (`umount -l`): what cleanup does to a mount whose filesystem
/// process died.
pub fn lazy_unmount(path: &Path) -> io::Result<()> {
    let path = cstr(path.as_os_str())?;
    // SAFETY: a valid NUL-terminated path; the result is checked.
    check(unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// The minor number of a device id (glibc's `minor`): for a FUSE mount, its connection number.
pub fn minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & 0xffff_ff00)) as u32
}

/// Aborts FUSE connection `connection` through the fusectl filesystem (mounting it on
/// `/sys/fs/fuse/connections` first if it is not): every request of the connection fails and
/// its server's reads end. Best effort: errors are ignored.
pub fn abort_fuse_connection(connection: u32) {
    let root = Path::new("/sys/fs/fuse/connections");
    let abort = root.join(connection.to_string()).join("abort");
    if !abort.exists() {
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "none"])
            .arg(root)
            .status();
    }
    let _ = std::fs::write(&abort, b"1");
}
