//! The unsynced part of one file: the bytes written and the size changes made since the file was
//! last synced, kept in memory over the backing file.
//!
//! Invariants: `extents` never overlap or touch (a write merges with its neighbours) and none
//! reaches past `size`; backing bytes at or past `cut` are not part of the file (a truncation
//! below the backing size that is not yet synced); a read sees the backing file below
//! `min(cut, size)`, zeros above it, and the extents on top — what a reader of a real file with
//! these writes would see. Pure: the backing file is read through a callback.

use std::collections::BTreeMap;
use std::io;

/// Unsynced writes and size changes of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// The file's size as readers see it.
    size: u64,
    /// The lowest size the file was truncated to since the last sync, if any.
    cut: Option<u64>,
    /// Written bytes by offset.
    extents: BTreeMap<u64, Vec<u8>>,
}

/// What a sync must do to the backing file, in order: truncate to `cut` (if any), write every
/// extent, then set the size to `size`.
pub struct SyncPlan<'a> {
    pub cut: Option<u64>,
    pub extents: &'a BTreeMap<u64, Vec<u8>>,
    pub size: u64,
}

impl Overlay {
    /// A clean overlay over a backing file of `backing_size` bytes.
    pub fn new(backing_size: u64) -> Overlay {
        Overlay {
            size: backing_size,
            cut: None,
            extents: BTreeMap::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory (what a power loss would drop).
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// Whether the overlay changes anything (written bytes or a size change).
    pub fn is_dirty(&self, backing_size: u64) -> bool {
        !self.extents.is_empty() || self.cut.is_some() || self.size != backing_size
    }

    /// Writes `data` at `offset`, growing the file if it ends past its size.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Every extent that overlaps or touches [offset, end), lowest first.
        let mut touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(start, bytes)| **start + bytes.len() as u64 >= offset)
            .map(|(start, _)| *start)
            .collect();
        touching.reverse();
        let (start, mut merged) = match touching.first() {
            Some(&first) if first <= offset => {
                let bytes = self.extents.remove(&first).unwrap_or_default();
                (first, bytes)
            }
            _ => (offset, Vec::new()),
        };
        let last_end = touching
            .last()
            .and_then(|s| self.extents.get(s).map(|b| *s + b.len() as u64))
            .unwrap_or(0);
        let merged_end = end.max(last_end).max(start + merged.len() as u64);
        merged.resize((merged_end - start) as usize, 0);
        for other in touching.iter().skip_while(|s| **s == start) {
            if let Some(bytes) = self.extents.remove(other) {
                let at = (other - start) as usize;
                merged[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        let at = (offset - start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(start, merged);
        self.size = self.size.max(end);
    }

    /// Sets the file's size (truncate or extend with zeros).
    pub fn truncate(&mut self, size: u64) {
        self.size = size;
        self.cut = Some(self.cut.map_or(size, |cut| cut.min(size)));
        let beyond: Vec<u64> = self.extents.range(size..).map(|(s, _)| *s).collect();
        for start in beyond {
            self.extents.remove(&start);
        }
        if let Some((start, bytes)) = self.extents.range_mut(..size).next_back() {
            let keep = (size - *start) as usize;
            bytes.truncate(keep.min(bytes.len()));
        }
    }

    /// Reads up to `len` bytes at `offset` as a reader of the file sees them; `read_backing(at,
    /// buf)` reads the backing file (a short read means its end).
    pub fn read(
        &self,
        offset: u64,
        len: u32,
        mut read_backing: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    ) -> io::Result<Vec<u8>> {
        let end = self.size.min(offset.saturating_add(u64::from(len)));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let backing_end = self.cut.map_or(end, |cut| cut.min(end));
        if offset < backing_end {
            let want = (backing_end - offset) as usize;
            let mut filled = 0;
            while filled < want {
                let n = read_backing(offset + filled as u64, &mut buf[filled..want])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
        }
        for (start, bytes) in self.extents.range(..end).rev() {
            let ext_end = start + bytes.len() as u64;
            if ext_end <= offset {
                break;
            }
            let from = offset.max(*start);
            let to = end.min(ext_end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(buf)
    }

    /// What a sync writes to the backing file.
    pub fn sync_plan(&self) -> SyncPlan<'_> {
        SyncPlan {
            cut: self.cut,
            extents: &self.extents,
            size: self.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(overlay: &Overlay, backing: &[u8]) -> Vec<u8> {
        overlay
            .read(0, u32::MAX, |at, buf| {
                let at = at as usize;
                if at >= backing.len() {
                    return Ok(0);
                }
                let n = buf.len().min(backing.len() - at);
                buf[..n].copy_from_slice(&backing[at..at + n]);
                Ok(n)
            })
            .unwrap()
    }

    /// Applies the sync plan to a backing file held in memory.
    fn synced(overlay: &Overlay, backing: &[u8]) -> Vec<u8> {
        let plan = overlay.sync_plan();
        let mut file = backing.to_vec();
        if let Some(cut) = plan.cut {
            file.resize(cut as usize, 0);
        }
        for (start, bytes) in plan.extents {
            let end = *start as usize + bytes.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[*start as usize..end].copy_from_slice(bytes);
        }
        file.resize(plan.size as usize, 0);
        file
    }

    #[derive(Clone, Debug)]
    enum Change {
        Write(u16, Vec<u8>),
        Truncate(u16),
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (0u16..300, proptest::collection::vec(any::<u8>(), 1..40))
                .prop_map(|(o, d)| Change::Write(o, d)),
            (0u16..300).prop_map(Change::Truncate),
        ]
    }

    proptest! {
        /// Reads and syncs agree with a plain in-memory file that took the same changes.
        #[test]
        fn an_overlay_reads_and_syncs_like_the_file_it_models(
            backing in proptest::collection::vec(any::<u8>(), 0..200),
            changes in proptest::collection::vec(change(), 0..30),
        ) {
            let mut model = backing.clone();
            let mut overlay = Overlay::new(backing.len() as u64);
            for c in &changes {
                match c {
                    Change::Write(o, d) => {
                        let end = *o as usize + d.len();
                        if model.len() < end { model.resize(end, 0); }
                        model[*o as usize..end].copy_from_slice(d);
                        overlay.write(u64::from(*o), d);
                    }
                    Change::Truncate(s) => {
                        model.resize(*s as usize, 0);
                        overlay.truncate(u64::from(*s));
                    }
                }
            }
            prop_assert_eq!(overlay.size(), model.len() as u64);
            prop_assert_eq!(&read_all(&overlay, &backing), &model);
            prop_assert_eq!(&synced(&overlay, &backing), &model);
            let starts: Vec<(u64, u64)> = overlay.extents.iter().map(|(s, b)| (*s, *s + b.len() as u64)).collect();
            for pair in starts.windows(2) {
                prop_assert!(pair[0].1 < pair[1].0, "extents touch: {:?}", starts);
            }
        }
    }

    #[test]
    fn appends_merge_into_one_extent() {
        let mut overlay = Overlay::new(0);
        for i in 0..100u64 {
            overlay.write(i * 10, &[1; 10]);
        }
        assert_eq!(overlay.extents.len(), 1);
        assert_eq!(overlay.dirty_bytes(), 1000);
        assert!(overlay.is_dirty(0));
    }

    #[test]
    fn a_partial_read_in_the_middle_mixes_backing_and_written_bytes() {
        let backing = b"abcdefghij";
        let mut overlay = Overlay::new(10);
        overlay.write(3, b"XY");
        let got = overlay
            .read(2, 4, |at, buf| {
                let at = at as usize;
                let n = buf.len().min(backing.len() - at);
                buf[..n].copy_from_slice(&backing[at..at + n]);
                Ok(n)
            })
            .unwrap();
        assert_eq!(got, b"cXYf");
    }
}
