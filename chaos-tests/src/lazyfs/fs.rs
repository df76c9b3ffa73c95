//! The FUSE request handlers: a pass-through to the backing directory whose file data goes
//! through [`Cache`] (writes and truncations into the overlay, fsync out of it).
//!
//! Every handler takes the table lock for its whole request: simple, and fast enough for one
//! node under the chaos workload (the kernel sends writes of up to `max_write` bytes, and
//! RocksDB's reads mostly come from the kernel's page cache, which `keep_cache` keeps across
//! opens — [`Cache::clear`]'s caller invalidates it).

use super::cache::{Cache, ROOT};
use super::sys::{self, TimeSpec};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may cache attributes and names. Every change passes through here, so
/// this only bounds staleness after [`Cache::clear`] if an invalidation were missed.
const TTL: Duration = Duration::from_secs(1);

/// A directory listing taken at `opendir`: `(inode, type, name)`.
type Listing = Vec<(u64, FileType, OsString)>;

/// The filesystem handed to `fuser`.
pub struct LazyFs {
    cache: Arc<Cache>,
    listings: Mutex<HashMap<u64, Listing>>,
    next_handle: AtomicU64,
}

impl LazyFs {
    pub fn new(cache: Arc<Cache>) -> LazyFs {
        LazyFs {
            cache,
            listings: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    /// Looks `name` up in `parent` and registers the lookup; the entry's attributes.
    fn entry(&self, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let mut inodes = self.cache.lock();
        let dir = inodes.get(parent)?.path.as_raw_fd();
        let path = sys::open_path_at(dir, name)?;
        let (ino, st) = inodes.remember(path)?;
        let overlay = inodes.get(ino)?.overlay.as_ref().map(|o| o.size());
        Ok(attr(ino, &st, overlay))
    }

    fn getattr_of(&self, ino: u64) -> io::Result<FileAttr> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        Ok(attr(
            ino,
            &inode.stat()?,
            inode.overlay.as_ref().map(|o| o.size()),
        ))
    }

    /// Runs a namespace change in `parent` (applied to the backing directory at once).
    fn in_dir(&self, parent: u64, change: impl FnOnce(i32) -> io::Result<()>) -> io::Result<()> {
        let mut inodes = self.cache.lock();
        let dir = inodes.get(parent)?.path.as_raw_fd();
        change(dir)
    }

    fn read_file(&self, ino: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        let overlay = inode.overlay.take();
        let result = match &overlay {
            Some(overlay) => {
                let file = inode.data()?;
                overlay.read(offset, size, |at, buf| file.read_at(buf, at))
            }
            None => {
                let file = inode.data()?;
                let mut buf = vec![0u8; size as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                Ok(buf)
            }
        };
        inode.overlay = overlay;
        result
    }

    fn set_attributes(&self, ino: u64, change: &AttrChange) -> io::Result<FileAttr> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        let fd = inode.path.as_raw_fd();
        if let Some(mode) = change.mode {
            sys::chmod(fd, mode & 0o7777)?;
        }
        if change.uid.is_some() || change.gid.is_some() {
            sys::chown(fd, change.uid, change.gid)?;
        }
        if change.atime.is_some() || change.mtime.is_some() {
            sys::set_times(fd, time_spec(change.atime), time_spec(change.mtime))?;
        }
        if let Some(size) = change.size {
            if !inode.is_regular {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            inode.overlay_mut()?.truncate(size);
        }
        Ok(attr(
            ino,
            &inode.stat()?,
            inode.overlay.as_ref().map(|o| o.size()),
        ))
    }

    fn list(&self, ino: u64) -> io::Result<Listing> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        let st = inode.stat()?;
        let mut listing: Listing = vec![
            (st.st_ino, FileType::Directory, ".".into()),
            (st.st_ino, FileType::Directory, "..".into()),
        ];
        for entry in std::fs::read_dir(sys::proc_path(inode.path.as_raw_fd()))? {
            let entry = entry?;
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            listing.push((entry.ino(), kind, entry.file_name()));
        }
        Ok(listing)
    }

    fn create_file(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        exclusive: bool,
    ) -> io::Result<FileAttr> {
        let mut inodes = self.cache.lock();
        let dir = inodes.get(parent)?.path.as_raw_fd();
        drop(sys::create_at(dir, name, mode, exclusive)?);
        let path = sys::open_path_at(dir, name)?;
        let (ino, st) = inodes.remember(path)?;
        let overlay = inodes.get(ino)?.overlay.as_ref().map(|o| o.size());
        Ok(attr(ino, &st, overlay))
    }

    fn write_file(&self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        if !inode.is_regular {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        inode.overlay_mut()?.write(offset, data);
        Ok(())
    }

    fn allocate(&self, ino: u64, offset: u64, length: u64, mode: i32) -> io::Result<()> {
        let mut inodes = self.cache.lock();
        let inode = inodes.get(ino)?;
        match mode {
            // Preallocation without a size change (RocksDB's WAL): nothing to model.
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            0 => {
                let overlay = inode.overlay_mut()?;
                let end = offset.saturating_add(length);
                if end > overlay.size() {
                    overlay.truncate(end);
                }
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }
}

/// The attribute changes of one `setattr`.
struct AttrChange {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

fn time_spec(time: Option<TimeOrNow>) -> TimeSpec {
    match time {
        None => TimeSpec::Omit,
        Some(TimeOrNow::Now) => TimeSpec::Now,
        Some(TimeOrNow::SpecificTime(t)) => TimeSpec::At(t),
    }
}

fn errno(error: io::Error) -> Errno {
    Errno::from(error)
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// The attributes the kernel sees: the backing file's, with the overlay's size.
fn attr(ino: u64, st: &libc::stat, overlay_size: Option<u64>) -> FileAttr {
    let size = overlay_size.unwrap_or(st.st_size as u64);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: (st.st_blocks as u64).max(size.div_ceil(512)),
        atime: system_time(st.st_atime, st.st_atime_nsec),
        mtime: system_time(st.st_mtime, st.st_mtime_nsec),
        ctime: system_time(st.st_ctime, st.st_ctime_nsec),
        crtime: system_time(st.st_ctime, st.st_ctime_nsec),
        kind: kind_of(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

fn reply_entry(reply: ReplyEntry, result: io::Result<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_empty(reply: ReplyEmpty, result: io::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(reply, self.entry(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.cache.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.getattr_of(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.set_attributes(ino.0, &change) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self
            .cache
            .lock()
            .get(ino.0)
            .and_then(|inode| sys::read_link(inode.path.as_raw_fd()));
        match target {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let made = self.in_dir(parent.0, |dir| {
            sys::mknod_at(dir, name, mode & !umask, rdev)
        });
        reply_entry(reply, made.and_then(|()| self.entry(parent.0, name)));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self.in_dir(parent.0, |dir| sys::mkdir_at(dir, name, mode & !umask));
        reply_entry(reply, made.and_then(|()| self.entry(parent.0, name)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            reply,
            self.in_dir(parent.0, |dir| sys::unlink_at(dir, name, false)),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            reply,
            self.in_dir(parent.0, |dir| sys::unlink_at(dir, name, true)),
        );
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let made = self.in_dir(parent.0, |dir| sys::symlink_at(target, dir, link_name));
        reply_entry(reply, made.and_then(|()| self.entry(parent.0, link_name)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let renamed = (|| {
            let mut inodes = self.cache.lock();
            let from = inodes.get(parent.0)?.path.as_raw_fd();
            let to = inodes.get(newparent.0)?.path.as_raw_fd();
            sys::rename_at(from, name, to, newname, flags.bits())
        })();
        reply_empty(reply, renamed);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let linked = (|| {
            let mut inodes = self.cache.lock();
            let fd = inodes.get(ino.0)?.path.as_raw_fd();
            let dir = inodes.get(newparent.0)?.path.as_raw_fd();
            sys::link_at(fd, dir, newname)
        })();
        reply_entry(
            reply,
            linked.and_then(|()| self.entry(newparent.0, newname)),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Data I/O uses the inode's own read-write descriptor, so the handle carries nothing.
        match self
            .cache
            .lock()
            .get(ino.0)
            .and_then(|inode| inode.data().map(drop))
        {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.read_file(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.write_file(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) is not a sync: the overlay stays.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.cache.lock().sync_file(ino.0).map(drop));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.list(ino.0) {
            Ok(listing) => {
                let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
                self.listings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(handle, listing);
                reply.opened(FileHandle(handle), FopenFlags::empty());
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(listing) = listings.get(&fh.0) else {
            reply.error(Errno::EBADF);
            return;
        };
        for (i, (ino, kind, name)) in listing.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace changes are durable at once (see the module docs of `lazyfs`).
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let st = self
            .cache
            .lock()
            .get(ROOT)
            .and_then(|root| sys::statvfs(&root.path));
        match st {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                st.f_bsize as u32,
                st.f_namemax as u32,
                st.f_frsize as u32,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let exclusive = flags & libc::O_EXCL != 0;
        match self.create_file(parent.0, name, mode & !umask, exclusive) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.allocate(ino.0, offset, length, mode));
    }
}
