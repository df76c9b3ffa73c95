//! The state the filesystem and its control socket share: the inode table (one `O_PATH`
//! descriptor of the backing file per inode the kernel knows) and each file's [`Overlay`] of
//! unsynced writes.
//!
//! Invariants: one inode number per backing `(device, inode)` pair while the kernel holds it;
//! an inode with an overlay is never forgotten while its backing file still has a name (its
//! unsynced bytes must stay reachable for a later fsync or `sync`); [`Cache::sync_file`] removes
//! the overlay only after every byte reached the backing file; [`Cache::clear`] drops every
//! overlay and nothing else.

use super::overlay::Overlay;
use super::sys;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The root's inode number (FUSE's fixed one).
pub const ROOT: u64 = 1;

/// One inode the kernel knows.
pub struct Inode {
    /// Backing `(st_dev, st_ino)`.
    pub key: (u64, u64),
    /// `O_PATH` descriptor of the backing file.
    pub path: OwnedFd,
    pub is_regular: bool,
    /// Read-write descriptor for data I/O (regular files), opened on first use.
    data: Option<File>,
    /// The kernel's lookup count; the root is never forgotten.
    lookups: u64,
    pub overlay: Option<Overlay>,
}

impl Inode {
    /// The read-write descriptor of the backing file.
    pub fn data(&mut self) -> io::Result<&File> {
        if self.data.is_none() {
            self.data = Some(sys::reopen_rw(self.path.as_raw_fd())?);
        }
        Ok(self.data.as_ref().expect("opened just above"))
    }

    pub fn stat(&self) -> io::Result<libc::stat> {
        sys::stat_fd(self.path.as_raw_fd())
    }

    /// The overlay, created over the backing file's current size on first change.
    pub fn overlay_mut(&mut self) -> io::Result<&mut Overlay> {
        if self.overlay.is_none() {
            let size = self.stat()?.st_size as u64;
            self.overlay = Some(Overlay::new(size));
        }
        Ok(self.overlay.as_mut().expect("created just above"))
    }

    /// Writes the overlay to the backing file and drops it. The backing file is not fsynced:
    /// the host's own filesystem never loses power in a test; only this layer does.
    fn sync(&mut self) -> io::Result<u64> {
        let Some(overlay) = self.overlay.take() else {
            return Ok(0);
        };
        let result = (|| {
            let file = self.data()?;
            let plan = overlay.sync_plan();
            if let Some(cut) = plan.cut {
                file.set_len(cut)?;
            }
            for (start, bytes) in plan.extents {
                file.write_all_at(bytes, *start)?;
            }
            if file.metadata()?.len() != plan.size {
                file.set_len(plan.size)?;
            }
            Ok(overlay.dirty_bytes())
        })();
        if result.is_err() {
            self.overlay = Some(overlay);
        }
        result
    }
}

/// The inode table.
pub struct Inodes {
    by_ino: HashMap<u64, Inode>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
}

/// What a control command did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheCounts {
    /// Files whose unsynced state was dropped, written, or is held.
    pub files: u64,
    /// Unsynced bytes dropped, written, or held.
    pub bytes: u64,
}

/// The shared state. See the module docs.
pub struct Cache {
    inodes: Mutex<Inodes>,
}

impl Cache {
    /// A table holding the backing root as inode [`ROOT`].
    pub fn new(backing: &Path) -> io::Result<Cache> {
        let path = sys::open_dir_path(backing)?;
        let st = sys::stat_fd(path.as_raw_fd())?;
        let key = (st.st_dev, st.st_ino);
        let root = Inode {
            key,
            path,
            is_regular: false,
            data: None,
            lookups: 1,
            overlay: None,
        };
        Ok(Cache {
            inodes: Mutex::new(Inodes {
                by_ino: HashMap::from([(ROOT, root)]),
                by_key: HashMap::from([(key, ROOT)]),
                next: ROOT + 1,
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inodes> {
        // A panic in one request must not take the filesystem down: the table stays usable.
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops every unsynced byte and size change (a power loss). The inodes it touched.
    pub fn clear(&self) -> (CacheCounts, Vec<u64>) {
        let mut inodes = self.lock();
        let mut counts = CacheCounts::default();
        let mut touched = Vec::new();
        for (ino, inode) in inodes.by_ino.iter_mut() {
            if let Some(overlay) = inode.overlay.take() {
                counts.files += 1;
                counts.bytes += overlay.dirty_bytes();
                touched.push(*ino);
            }
        }
        inodes.collect_forgotten();
        (counts, touched)
    }

    /// Writes every overlay to its backing file (`sync(2)` of this filesystem).
    pub fn sync_all(&self) -> io::Result<CacheCounts> {
        let mut inodes = self.lock();
        let mut counts = CacheCounts::default();
        for inode in inodes.by_ino.values_mut() {
            if inode.overlay.is_some() {
                counts.files += 1;
                counts.bytes += inode.sync()?;
            }
        }
        inodes.collect_forgotten();
        Ok(counts)
    }

    /// What is held unsynced now.
    pub fn held(&self) -> CacheCounts {
        let inodes = self.lock();
        let mut counts = CacheCounts::default();
        for overlay in inodes.by_ino.values().filter_map(|i| i.overlay.as_ref()) {
            counts.files += 1;
            counts.bytes += overlay.dirty_bytes();
        }
        counts
    }
}

impl Inodes {
    pub fn get(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.by_ino
            .get_mut(&ino)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Registers one kernel lookup of the file behind `path` (a fresh `O_PATH` descriptor);
    /// its inode number and stat.
    pub fn remember(&mut self, path: OwnedFd) -> io::Result<(u64, libc::stat)> {
        let st = sys::stat_fd(path.as_raw_fd())?;
        let key = (st.st_dev, st.st_ino);
        if let Some(&ino) = self.by_key.get(&key)
            && let Some(inode) = self.by_ino.get_mut(&ino)
        {
            inode.lookups += 1;
            return Ok((ino, st));
        }
        let ino = self.next;
        self.next += 1;
        self.by_key.insert(key, ino);
        self.by_ino.insert(
            ino,
            Inode {
                key,
                path,
                is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
                data: None,
                lookups: 1,
                overlay: None,
            },
        );
        Ok((ino, st))
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.lookups = inode.lookups.saturating_sub(n);
        }
        self.collect(ino);
    }

    /// Flushes one file's overlay (its fsync); the bytes written.
    pub fn sync_file(&mut self, ino: u64) -> io::Result<u64> {
        self.get(ino)?.sync()
    }

    /// Drops `ino` if the kernel no longer knows it and it holds nothing that must survive
    /// (no overlay, or a file without a name left).
    fn collect(&mut self, ino: u64) {
        let Some(inode) = self.by_ino.get(&ino) else {
            return;
        };
        let unlinked = inode.stat().map(|st| st.st_nlink == 0).unwrap_or(true);
        if inode.lookups == 0
            && (inode.overlay.is_none() || unlinked)
            && let Some(inode) = self.by_ino.remove(&ino)
        {
            self.by_key.remove(&inode.key);
        }
    }

    fn collect_forgotten(&mut self) {
        let forgotten: Vec<u64> = self
            .by_ino
            .iter()
            .filter(|(_, i)| i.lookups == 0)
            .map(|(ino, _)| *ino)
            .collect();
        for ino in forgotten {
            self.collect(ino);
        }
    }
}
