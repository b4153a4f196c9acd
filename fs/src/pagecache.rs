//! A page cache: the pages of regular files, by (inode, page index), above a format whose own
//! read path is costly (ext4 through rsext4: an extent lookup and two copies per block). A
//! format that uses it keeps it right: writes go through it (write-through: the format has
//! the data too), truncation and freeing an inode forget its pages. Bounded: past its
//! capacity the pages cached longest ago go first.
//!
//! Not yet shared with file-backed mmap (fs/DESIGN.md): a mapping copies the pages it maps.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};

use crate::node::Ino;

/// The size of a cached page.
pub const PAGE: usize = 4096;

/// A page's bytes: page-aligned, so the kernel's allocator gives each a frame of its own
/// rather than a piece of its small heap.
#[repr(C, align(4096))]
pub struct PageData(pub [u8; PAGE]);

/// One page of a file: the file's bytes at `index * PAGE`, zero past its end.
pub type Page = Box<PageData>;

/// A page holding `bytes` (at most a page), zero after them.
pub fn page_of(bytes: &[u8]) -> Page {
    let mut page = Box::new(PageData([0; PAGE]));
    page.0[..bytes.len()].copy_from_slice(bytes);
    page
}

/// The cache.
pub struct PageCache {
    pages: BTreeMap<(Ino, u64), Page>,
    /// Insertion order, for eviction; may hold keys already forgotten (skipped when popped).
    order: VecDeque<(Ino, u64)>,
    capacity: usize,
}

impl PageCache {
    /// A cache of at most `capacity_bytes` of pages (0: it caches nothing).
    pub fn new(capacity_bytes: u64) -> PageCache {
        PageCache {
            pages: BTreeMap::new(),
            order: VecDeque::new(),
            capacity: (capacity_bytes / PAGE as u64) as usize,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, ino: Ino, index: u64) -> Option<&[u8; PAGE]> {
        self.pages.get(&(ino, index)).map(|page| &page.0)
    }

    /// Keeps `page` as page `index` of `ino`, evicting the oldest pages past the capacity.
    pub fn insert(&mut self, ino: Ino, index: u64, page: Page) {
        if self.capacity == 0 {
            return;
        }
        if self.pages.insert((ino, index), page).is_none() {
            self.order.push_back((ino, index));
        }
        while self.pages.len() > self.capacity {
            match self.order.pop_front() {
                Some(key) => {
                    self.pages.remove(&key);
                }
                None => break,
            }
        }
        // Forgotten keys left in the queue: drop them once they outnumber the live ones.
        if self.order.len() > 2 * self.capacity.max(16) {
            let pages = &self.pages;
            self.order.retain(|key| pages.contains_key(key));
        }
    }

    /// `data` was written at `offset` of `ino`: cached pages it touches take the new bytes;
    /// whole pages it covers are cached (a file just written is often read next).
    pub fn wrote(&mut self, ino: Ino, offset: u64, data: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let mut done = 0;
        while done < data.len() {
            let position = offset + done as u64;
            let index = position / PAGE as u64;
            let within = (position % PAGE as u64) as usize;
            let length = (PAGE - within).min(data.len() - done);
            let bytes = &data[done..done + length];
            if let Some(page) = self.pages.get_mut(&(ino, index)) {
                page.0[within..within + length].copy_from_slice(bytes);
            } else if length == PAGE {
                self.insert(ino, index, page_of(bytes));
            }
            done += length;
        }
    }

    /// `ino` was truncated to `size`: its pages from the one `size` falls in are forgotten
    /// (a later read fetches the partial page again, zero past the new end).
    pub fn truncated(&mut self, ino: Ino, size: u64) {
        let first = size / PAGE as u64;
        let doomed: alloc::vec::Vec<(Ino, u64)> = self
            .pages
            .range((ino, first)..=(ino, u64::MAX))
            .map(|(key, _)| *key)
            .collect();
        for key in doomed {
            self.pages.remove(&key);
        }
    }

    /// `ino` was freed (its number may be used again): all its pages are forgotten.
    pub fn forget(&mut self, ino: Ino) {
        self.truncated(ino, 0);
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(byte: u8) -> Page {
        page_of(&[byte; PAGE])
    }

    #[test]
    fn writes_update_cached_pages_and_cache_whole_ones() {
        let mut cache = PageCache::new(16 * PAGE as u64);
        cache.insert(1, 0, page(0));
        cache.wrote(1, 10, b"abc");
        assert_eq!(&cache.get(1, 0).unwrap()[9..14], b"\0abc\0");
        // A partial page not cached stays uncached; a whole page is cached.
        cache.wrote(1, PAGE as u64 + 1, b"x");
        assert!(cache.get(1, 1).is_none());
        cache.wrote(1, 2 * PAGE as u64, &[7u8; PAGE]);
        assert_eq!(cache.get(1, 2).unwrap()[PAGE - 1], 7);
        // Another inode's pages are its own.
        assert!(cache.get(2, 0).is_none());
    }

    #[test]
    fn truncation_and_freeing_forget_pages() {
        let mut cache = PageCache::new(16 * PAGE as u64);
        for index in 0..4 {
            cache.insert(1, index, page(1));
            cache.insert(2, index, page(2));
        }
        cache.truncated(1, PAGE as u64 + 5);
        assert!(cache.get(1, 0).is_some());
        assert!(cache.get(1, 1).is_none(), "the partial page goes too");
        assert!(cache.get(1, 3).is_none());
        cache.forget(2);
        assert!(cache.get(2, 0).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn it_holds_no_more_than_its_capacity() {
        let mut cache = PageCache::new(4 * PAGE as u64);
        for index in 0..10 {
            cache.insert(1, index, page(index as u8));
        }
        assert_eq!(cache.len(), 4);
        assert!(cache.get(1, 0).is_none(), "the oldest went first");
        assert_eq!(cache.get(1, 9).unwrap()[0], 9);
        // Forgetting and inserting again many times keeps the queue bounded.
        for round in 0..1000 {
            cache.forget(1);
            cache.insert(1, round, page(1));
        }
        assert!(cache.order.len() <= 2 * 16 + 1);
        let mut off = PageCache::new(0);
        off.insert(1, 0, page(1));
        assert!(off.is_empty() && !off.enabled());
    }
}
