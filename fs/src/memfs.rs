//! tmpfs: a filesystem in memory, for `/tmp`, `/dev/shm`, and `/` until images land. Files are
//! sparse (a page is allocated when written), directories keep their entries in name order,
//! and a node lives while it has a name or an open file.

use crate::node::*;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const PAGE: u64 = 4096;

/// A page of file data, page-aligned: the kernel's allocator gives such allocations whole
/// frames rather than heap (which is small and for bookkeeping).
#[repr(C, align(4096))]
struct Page([u8; PAGE as usize]);

impl core::ops::Deref for Page {
    type Target = [u8; PAGE as usize];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for Page {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
/// TMPFS_MAGIC (include/uapi/linux/magic.h).
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Linux's limit on hard links for tmpfs is the inode's 32-bit count; keep ext4's 65000.
const LINK_MAX: u32 = 65_000;
/// MAX_LFS_FILESIZE on 64-bit.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

enum Content {
    /// Pages by index; a missing page reads from `base` (content borrowed from the image,
    /// copied into a page when that page is written), and past it as zeros.
    Regular {
        pages: BTreeMap<u64, Box<Page>>,
        size: u64,
        base: &'static [u8],
    },
    Directory {
        entries: BTreeMap<Vec<u8>, Ino>,
        parent: Ino,
    },
    Symlink(Vec<u8>),
    Special,
}

struct Node {
    metadata: Metadata,
    content: Content,
    /// Open files on this node: it is freed when it has neither names nor open files.
    open: u32,
}

/// An in-memory filesystem with a byte limit (tmpfs's size=).
pub struct MemFs {
    /// By inode number: a hash table, as every step of a path walk looks here and nothing
    /// walks it in order (a tree was 2% of an nginx request's instructions, in look-ups).
    /// Boxed, so that the table, one allocation, stays small as files are created (16 bytes
    /// a slot), and it grows with `try_reserve`: a full heap is ENOSPC, not a panic.
    nodes: hashbrown::HashMap<Ino, Box<Node>>,
    next_ino: Ino,
    /// Pages the files may hold in all, and hold now.
    page_limit: u64,
    pages_used: u64,
    /// Nodes there may be (tmpfs' nr_inodes: creating one more is ENOSPC), and how many of
    /// them the program may create beyond those it started with (`preloaded`). Without a
    /// limit, a program creating empty files would fill the kernel's heap, which the rest of
    /// the kernel needs.
    inode_limit: u64,
    inode_allowance: u64,
    /// Names beyond the first of files with several (hard links): each takes an inode of
    /// the limit, as Linux's shmem_link reserves one, since each holds memory.
    extra_links: u64,
}

impl MemFs {
    /// An empty filesystem whose root directory has `permissions` (0o755, or 0o1777 for /tmp),
    /// holding at most `size_limit` bytes of file data, and as many nodes as it has pages
    /// (Linux's tmpfs default, half the RAM's pages, when `size_limit` is half the RAM, as
    /// Linux's default size is; `with_inodes` sets another).
    pub fn new(permissions: u32, size_limit: u64, now: Timestamp) -> MemFs {
        let mut nodes = hashbrown::HashMap::new();
        let root = 1;
        nodes.insert(
            root,
            Box::new(Node {
                metadata: new_metadata(root, FileType::Directory, permissions, 0, 0, now),
                content: Content::Directory {
                    entries: BTreeMap::new(),
                    parent: root,
                },
                open: 0,
            }),
        );
        if let Some(node) = nodes.get_mut(&root) {
            node.metadata.links = 2;
        }
        MemFs {
            nodes,
            next_ino: root + 1,
            page_limit: size_limit / PAGE,
            pages_used: 0,
            inode_limit: size_limit / PAGE,
            inode_allowance: size_limit / PAGE,
            extra_links: 0,
        }
    }

    /// The same, taking any number of nodes until `preloaded` (the root, which the image's
    /// files go into first: a big image in a small VM has more than the allowance).
    pub fn preloading(mut self) -> MemFs {
        self.inode_limit = u64::MAX;
        self
    }

    /// The same, with room for `inodes` nodes (tmpfs' nr_inodes=).
    pub fn with_inodes(mut self, inodes: u64) -> MemFs {
        self.inode_limit = inodes;
        self.inode_allowance = inodes;
        self
    }

    fn node(&self, ino: Ino) -> Result<&Node, Error> {
        self.nodes
            .get(&ino)
            .map(|node| &**node)
            .ok_or(Error::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Error> {
        self.nodes
            .get_mut(&ino)
            .map(|node| &mut **node)
            .ok_or(Error::NotFound)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<Vec<u8>, Ino>, Error> {
        match &self.node(dir)?.content {
            Content::Directory { entries, .. } => Ok(entries),
            _ => Err(Error::NotDirectory),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<Vec<u8>, Ino>, Error> {
        match &mut self.node_mut(dir)?.content {
            Content::Directory { entries, .. } => Ok(entries),
            _ => Err(Error::NotDirectory),
        }
    }

    fn touch_dir(&mut self, dir: Ino, now: Timestamp) {
        if let Ok(node) = self.node_mut(dir) {
            node.metadata.modified = now;
            node.metadata.changed = now;
        }
    }

    /// Frees `ino` if nothing refers to it any more, and its pages with it.
    fn release_if_unused(&mut self, ino: Ino) {
        let unused = self
            .nodes
            .get(&ino)
            .is_some_and(|node| node.metadata.links == 0 && node.open == 0);
        if unused {
            if let Some(Node {
                content: Content::Regular { pages, .. },
                ..
            }) = self.nodes.remove(&ino).map(|node| *node)
            {
                self.pages_used -= pages.len() as u64;
            }
        }
    }

    /// Drops one name of `ino` (a directory's own "." and its parent's ".." count too).
    /// The inodes of the limit in use: nodes, and the extra names of hard-linked files.
    fn inodes_used(&self) -> u64 {
        self.nodes.len() as u64 + self.extra_links
    }

    fn drop_link(&mut self, ino: Ino, now: Timestamp) {
        if let Ok(node) = self.node_mut(ino) {
            let directory = node.metadata.kind == FileType::Directory;
            let had_extra = !directory && node.metadata.links > 1;
            node.metadata.links = if directory {
                0
            } else {
                node.metadata.links.saturating_sub(1)
            };
            node.metadata.changed = now;
            if had_extra {
                self.extra_links = self.extra_links.saturating_sub(1);
            }
        }
        self.release_if_unused(ino);
    }

    fn is_ancestor(&self, ancestor: Ino, mut dir: Ino) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.nodes.get(&dir).map(|node| &node.content) {
                Some(Content::Directory { parent, .. }) if *parent != dir => dir = *parent,
                _ => return false,
            }
        }
    }
}

fn new_metadata(
    ino: Ino,
    kind: FileType,
    permissions: u32,
    uid: u32,
    gid: u32,
    now: Timestamp,
) -> Metadata {
    Metadata {
        ino,
        kind,
        permissions: permissions & 0o7777,
        links: 1,
        uid,
        gid,
        size: 0,
        blocks: 0,
        accessed: now,
        modified: now,
        changed: now,
        device: 0,
    }
}

/// Copies what `base` holds at [offset, offset + out.len()) into `out`, zeros past its end.
fn fill_from_base(base: &[u8], offset: u64, out: &mut [u8]) {
    let start = (offset as usize).min(base.len());
    let end = (offset as usize).saturating_add(out.len()).min(base.len());
    let copied = end - start;
    out[..copied].copy_from_slice(&base[start..end]);
    out[copied..].fill(0);
}

fn check_name(name: &[u8]) -> Result<(), Error> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Error::Invalid);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

impl FileSystem for MemFs {
    fn root(&self) -> Ino {
        1
    }

    fn borrowed_pages(&self, ino: Ino, offset: u64, len: u64) -> Option<&'static [u8]> {
        let Some(Node {
            content: Content::Regular { pages, size, base },
            ..
        }) = self.nodes.get(&ino).map(|node| &**node)
        else {
            return None;
        };
        if !offset.is_multiple_of(PAGE) {
            return None;
        }
        // A page the program wrote is in `pages`, and the run stops before the first; a page
        // past the end (or the image's part of one, after a truncate) reads as zeros, which
        // the image's bytes there are not; past the image's bytes (a file a truncate grew)
        // there is nothing to lend.
        let mut end = offset.saturating_add(len).min(*size).min(base.len() as u64);
        if let Some((&written, _)) = pages.range(offset / PAGE..).next() {
            end = end.min(written.saturating_mul(PAGE));
        }
        let whole = (end.saturating_sub(offset) / PAGE) * PAGE;
        if whole == 0 {
            return None;
        }
        let base: &'static [u8] = base;
        let start = usize::try_from(offset).ok()?;
        let run = base.get(start..start.checked_add(usize::try_from(whole).ok()?)?)?;
        (run.as_ptr() as usize)
            .is_multiple_of(PAGE_SIZE)
            .then_some(run)
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, Error> {
        let node = self.node(ino)?;
        let mut metadata = node.metadata;
        match &node.content {
            Content::Regular { pages, size, base } => {
                metadata.size = *size;
                let borrowed = (base.len() as u64).div_ceil(PAGE);
                metadata.blocks = (pages.len() as u64).max(borrowed) * (PAGE / 512);
            }
            Content::Directory { entries, .. } => {
                // tmpfs reports a directory's size as 20 bytes per entry plus two.
                metadata.size = (entries.len() as u64 + 2) * 20;
            }
            Content::Symlink(target) => metadata.size = target.len() as u64,
            Content::Special => {}
        }
        Ok(metadata)
    }

    fn kind(&self, ino: Ino) -> Result<FileType, Error> {
        Ok(self.node(ino)?.metadata.kind)
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Error> {
        let node = self.node(dir)?;
        let Content::Directory { entries, parent } = &node.content else {
            return Err(Error::NotDirectory);
        };
        match name {
            b"." => Ok(dir),
            b".." => Ok(*parent),
            _ => entries.get(name).copied().ok_or(Error::NotFound),
        }
    }

    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        node: NewNode,
        creation: Creation,
    ) -> Result<Ino, Error> {
        check_name(name)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(Error::Exists);
        }
        if self.inodes_used() >= self.inode_limit {
            return Err(Error::NoSpace);
        }
        self.nodes.try_reserve(1).map_err(|_| Error::NoSpace)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let (kind, content, device) = match node {
            NewNode::Regular => (
                FileType::Regular,
                Content::Regular {
                    pages: BTreeMap::new(),
                    size: 0,
                    base: &[],
                },
                0,
            ),
            NewNode::Directory => (
                FileType::Directory,
                Content::Directory {
                    entries: BTreeMap::new(),
                    parent: dir,
                },
                0,
            ),
            NewNode::Symlink(target) => (FileType::Symlink, Content::Symlink(target), 0),
            NewNode::Special(kind, device) => (kind, Content::Special, device),
        };
        let permissions = if kind == FileType::Symlink {
            0o777
        } else {
            creation.permissions
        };
        let mut metadata = new_metadata(
            ino,
            kind,
            permissions,
            creation.uid,
            creation.gid,
            creation.now,
        );
        metadata.device = device;
        if kind == FileType::Directory {
            metadata.links = 2;
            if let Ok(parent) = self.node_mut(dir) {
                parent.metadata.links += 1;
            }
        }
        self.nodes.insert(
            ino,
            Box::new(Node {
                metadata,
                content,
                open: 0,
            }),
        );
        self.entries_mut(dir)?.insert(name.to_vec(), ino);
        self.touch_dir(dir, creation.now);
        Ok(ino)
    }

    fn create_with_content(
        &mut self,
        dir: Ino,
        name: &[u8],
        content: &'static [u8],
        creation: Creation,
    ) -> Result<Ino, Error> {
        let ino = self.create(dir, name, NewNode::Regular, creation)?;
        if let Ok(Node {
            content: Content::Regular { size, base, .. },
            ..
        }) = self.node_mut(ino)
        {
            *size = content.len() as u64;
            *base = content;
        }
        Ok(ino)
    }

    fn link(&mut self, dir: Ino, name: &[u8], target: Ino, now: Timestamp) -> Result<(), Error> {
        check_name(name)?;
        let metadata = self.node(target)?.metadata;
        if metadata.kind == FileType::Directory {
            return Err(Error::NotPermitted);
        }
        if metadata.links == 0 {
            return Err(Error::NotFound); // an unlinked, still open file gets no new name
        }
        if metadata.links >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        if self.entries(dir)?.contains_key(name) {
            return Err(Error::Exists);
        }
        if self.inodes_used() >= self.inode_limit {
            return Err(Error::NoSpace);
        }
        self.entries_mut(dir)?.insert(name.to_vec(), target);
        self.extra_links += 1;
        let node = self.node_mut(target)?;
        node.metadata.links += 1;
        node.metadata.changed = now;
        self.touch_dir(dir, now);
        Ok(())
    }

    fn unlink(&mut self, dir: Ino, name: &[u8], now: Timestamp) -> Result<(), Error> {
        let ino = self.lookup(dir, name)?;
        if name == b"." || name == b".." {
            return Err(Error::IsDirectory);
        }
        if self.node(ino)?.metadata.kind == FileType::Directory {
            return Err(Error::IsDirectory);
        }
        self.entries_mut(dir)?.remove(name);
        self.touch_dir(dir, now);
        self.drop_link(ino, now);
        Ok(())
    }

    fn rmdir(&mut self, dir: Ino, name: &[u8], now: Timestamp) -> Result<(), Error> {
        match name {
            b"." => return Err(Error::Invalid),
            b".." => return Err(Error::NotEmpty),
            _ => {}
        }
        let ino = self.lookup(dir, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Error::NotEmpty);
        }
        self.entries_mut(dir)?.remove(name);
        if let Ok(parent) = self.node_mut(dir) {
            parent.metadata.links = parent.metadata.links.saturating_sub(1);
        }
        self.touch_dir(dir, now);
        self.drop_link(ino, now);
        Ok(())
    }

    fn rename(
        &mut self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        mode: RenameMode,
        now: Timestamp,
    ) -> Result<(), Error> {
        if matches!(from_name, b"." | b"..") || matches!(to_name, b"." | b"..") {
            return Err(Error::Busy);
        }
        check_name(to_name)?;
        let source = self.lookup(from_dir, from_name)?;
        let source_kind = self.node(source)?.metadata.kind;
        let target = match self.lookup(to_dir, to_name) {
            Ok(ino) => Some(ino),
            Err(Error::NotFound) => None,
            Err(error) => return Err(error),
        };
        // A directory may not move into itself or below itself.
        if source_kind == FileType::Directory && self.is_ancestor(source, to_dir) {
            return Err(Error::Invalid);
        }
        match (mode, target) {
            (RenameMode::NoReplace, Some(_)) => return Err(Error::Exists),
            (RenameMode::Exchange, None) => return Err(Error::NotFound),
            _ => {}
        }
        if target == Some(source) {
            return Ok(()); // two names of one node: nothing happens, as on Linux
        }
        if mode == RenameMode::Exchange {
            let target = target.ok_or(Error::NotFound)?;
            if let (FileType::Directory, _) | (_, FileType::Directory) =
                (source_kind, self.node(target)?.metadata.kind)
            {
                if self.is_ancestor(target, from_dir) {
                    return Err(Error::Invalid);
                }
            }
            self.entries_mut(from_dir)?
                .insert(from_name.to_vec(), target);
            self.entries_mut(to_dir)?.insert(to_name.to_vec(), source);
            for (ino, parent) in [(source, to_dir), (target, from_dir)] {
                if let Ok(Node {
                    content: Content::Directory { parent: slot, .. },
                    ..
                }) = self.node_mut(ino)
                {
                    *slot = parent;
                }
            }
            for ino in [source, target, from_dir, to_dir] {
                if let Ok(node) = self.node_mut(ino) {
                    node.metadata.changed = now;
                }
            }
            self.touch_dir(from_dir, now);
            self.touch_dir(to_dir, now);
            return Ok(());
        }
        if let Some(target) = target {
            let target_kind = self.node(target)?.metadata.kind;
            match (
                source_kind == FileType::Directory,
                target_kind == FileType::Directory,
            ) {
                (true, false) => return Err(Error::NotDirectory),
                (false, true) => return Err(Error::IsDirectory),
                (true, true) if !self.entries(target)?.is_empty() => return Err(Error::NotEmpty),
                _ => {}
            }
            self.entries_mut(to_dir)?.remove(to_name);
            if target_kind == FileType::Directory {
                if let Ok(parent) = self.node_mut(to_dir) {
                    parent.metadata.links = parent.metadata.links.saturating_sub(1);
                }
            }
            self.drop_link(target, now);
        }
        self.entries_mut(from_dir)?.remove(from_name);
        self.entries_mut(to_dir)?.insert(to_name.to_vec(), source);
        if source_kind == FileType::Directory && from_dir != to_dir {
            if let Ok(Node {
                content: Content::Directory { parent, .. },
                ..
            }) = self.node_mut(source)
            {
                *parent = to_dir;
            }
            if let Ok(node) = self.node_mut(from_dir) {
                node.metadata.links = node.metadata.links.saturating_sub(1);
            }
            if let Ok(node) = self.node_mut(to_dir) {
                node.metadata.links += 1;
            }
        }
        if let Ok(node) = self.node_mut(source) {
            node.metadata.changed = now;
        }
        self.touch_dir(from_dir, now);
        self.touch_dir(to_dir, now);
        Ok(())
    }

    fn read(&mut self, ino: Ino, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        let node = self.node(ino)?;
        let Content::Regular { pages, size, base } = &node.content else {
            return Err(match node.metadata.kind {
                FileType::Directory => Error::IsDirectory,
                _ => Error::Invalid,
            });
        };
        if offset >= *size {
            return Ok(0);
        }
        let count = (buffer.len() as u64).min(size - offset) as usize;
        let mut done = 0;
        while done < count {
            let at = offset + done as u64;
            let (index, within) = (at / PAGE, (at % PAGE) as usize);
            let chunk = (PAGE as usize - within).min(count - done);
            match pages.get(&index) {
                Some(page) => {
                    buffer[done..done + chunk].copy_from_slice(&page[within..within + chunk])
                }
                None => fill_from_base(base, at, &mut buffer[done..done + chunk]),
            }
            done += chunk;
        }
        Ok(count)
    }

    fn write(
        &mut self,
        ino: Ino,
        offset: u64,
        data: &[u8],
        now: Timestamp,
    ) -> Result<usize, Error> {
        offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Error::TooBig)?;
        let (limit, mut used) = (self.page_limit, self.pages_used);
        let node = self.node_mut(ino)?;
        let Content::Regular { pages, size, base } = &mut node.content else {
            return Err(match node.metadata.kind {
                FileType::Directory => Error::IsDirectory,
                _ => Error::Invalid,
            });
        };
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (index, within) = (at / PAGE, (at % PAGE) as usize);
            let chunk = (PAGE as usize - within).min(data.len() - done);
            let page = match pages.entry(index) {
                alloc::collections::btree_map::Entry::Occupied(page) => page.into_mut(),
                alloc::collections::btree_map::Entry::Vacant(slot) => {
                    if used >= limit {
                        break; // ENOSPC, unless part was written
                    }
                    used += 1;
                    let mut page = Box::new(Page([0; PAGE as usize]));
                    fill_from_base(base, index * PAGE, &mut page.0);
                    slot.insert(page)
                }
            };
            page[within..within + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
        let written_end = offset + done as u64;
        if written_end > *size {
            *size = written_end;
        }
        if done > 0 {
            node.metadata.modified = now;
            node.metadata.changed = now;
        }
        self.pages_used = used;
        if done == 0 && !data.is_empty() {
            return Err(Error::NoSpace);
        }
        Ok(done)
    }

    fn truncate(&mut self, ino: Ino, new_size: u64, now: Timestamp) -> Result<(), Error> {
        if new_size > MAX_FILE_SIZE {
            return Err(Error::TooBig);
        }
        let node = self.node_mut(ino)?;
        let Content::Regular { pages, size, base } = &mut node.content else {
            return Err(match node.metadata.kind {
                FileType::Directory => Error::IsDirectory,
                _ => Error::Invalid,
            });
        };
        // What is cut off the borrowed content must not come back if the file grows again.
        *base = &base[..base.len().min(new_size as usize)];
        let before = pages.len();
        // Pages wholly past the end go; the one the end falls in is cleared past it.
        let first_gone = new_size.div_ceil(PAGE);
        pages.retain(|&index, _| index < first_gone);
        if !new_size.is_multiple_of(PAGE) {
            if let Some(page) = pages.get_mut(&(new_size / PAGE)) {
                page[(new_size % PAGE) as usize..].fill(0);
            }
        }
        let freed = (before - pages.len()) as u64;
        *size = new_size;
        node.metadata.modified = now;
        node.metadata.changed = now;
        self.pages_used -= freed;
        Ok(())
    }

    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Error> {
        match &self.node(ino)?.content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(Error::Invalid),
        }
    }

    fn read_dir(&self, dir: Ino, position: u64) -> Result<Option<(DirEntry, u64)>, Error> {
        let node = self.node(dir)?;
        let Content::Directory { entries, parent } = &node.content else {
            return Err(Error::NotDirectory);
        };
        let dot = |name: &[u8], ino| DirEntry {
            ino,
            kind: FileType::Directory,
            name: name.to_vec(),
        };
        match position {
            0 => return Ok(Some((dot(b".", dir), 1))),
            1 => return Ok(Some((dot(b"..", *parent), 2))),
            _ => {}
        }
        let Some((name, &ino)) = entries.iter().nth((position - 2) as usize) else {
            return Ok(None);
        };
        let kind = self.node(ino)?.metadata.kind;
        Ok(Some((
            DirEntry {
                ino,
                kind,
                name: name.clone(),
            },
            position + 1,
        )))
    }

    fn set_attributes(&mut self, ino: Ino, changes: Changes, now: Timestamp) -> Result<(), Error> {
        let metadata = &mut self.node_mut(ino)?.metadata;
        if let Some(permissions) = changes.permissions {
            metadata.permissions = permissions & 0o7777;
        }
        if let Some(uid) = changes.uid {
            metadata.uid = uid;
        }
        if let Some(gid) = changes.gid {
            metadata.gid = gid;
        }
        if let Some(time) = changes.accessed {
            metadata.accessed = time;
        }
        if let Some(time) = changes.modified {
            metadata.modified = time;
        }
        metadata.changed = now;
        Ok(())
    }

    fn sync(&mut self, _ino: Option<Ino>) -> Result<(), Error> {
        Ok(()) // memory is as durable as tmpfs gets
    }

    fn preloaded(&mut self) {
        self.inode_limit = self.inodes_used().saturating_add(self.inode_allowance);
    }

    fn stats(&self) -> FsStats {
        FsStats {
            magic: TMPFS_MAGIC,
            block_size: PAGE,
            blocks: self.page_limit,
            free_blocks: self.page_limit - self.pages_used,
            files: self.inode_limit,
            free_files: self.inode_limit.saturating_sub(self.inodes_used()),
            name_max: NAME_MAX as u64,
        }
    }

    fn seek_data(&self, ino: Ino, offset: u64, hole: bool) -> Result<Option<u64>, Error> {
        let Content::Regular { pages, size, base } = &self.node(ino)?.content else {
            return Err(Error::Invalid);
        };
        if offset >= *size {
            return Ok(None);
        }
        let mut index = offset / PAGE;
        loop {
            let at = (index * PAGE).max(offset);
            if at >= *size {
                // Past the last page: the end of the file is a hole, and no data follows.
                return Ok(if hole { Some(*size) } else { None });
            }
            let data = pages.contains_key(&index) || index * PAGE < base.len() as u64;
            if data != hole {
                return Ok(Some(at));
            }
            index += 1;
        }
    }

    fn open(&mut self, ino: Ino) {
        if let Ok(node) = self.node_mut(ino) {
            node.open += 1;
        }
    }

    fn close(&mut self, ino: Ino) {
        if let Ok(node) = self.node_mut(ino) {
            node.open = node.open.saturating_sub(1);
        }
        self.release_if_unused(ino);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const NOW: Timestamp = Timestamp {
        seconds: 1_700_000_000,
        nanoseconds: 0,
    };
    const CREATE: Creation = Creation {
        permissions: 0o644,
        uid: 0,
        gid: 0,
        now: NOW,
    };

    #[test]
    fn files_are_sparse_and_read_back_what_was_written() {
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let file = fs.create(root, b"a", NewNode::Regular, CREATE).unwrap();
        assert_eq!(fs.write(file, 10_000, b"hello", NOW), Ok(5));
        let metadata = fs.metadata(file).unwrap();
        assert_eq!(
            (metadata.size, metadata.blocks),
            (10_005, 8),
            "one page allocated"
        );
        let mut buffer = vec![0xffu8; 20];
        assert_eq!(fs.read(file, 9_995, &mut buffer), Ok(10));
        assert_eq!(&buffer[..10], b"\0\0\0\0\0hello");
        assert_eq!(fs.seek_data(file, 0, false), Ok(Some(8192)));
        assert_eq!(fs.seek_data(file, 8192, true), Ok(Some(10_005)));
        assert_eq!(fs.seek_data(file, 0, true), Ok(Some(0)));
        fs.truncate(file, 10_002, NOW).unwrap();
        fs.truncate(file, 10_005, NOW).unwrap();
        assert_eq!(fs.read(file, 10_000, &mut buffer), Ok(5));
        assert_eq!(&buffer[..5], b"he\0\0\0", "truncation clears what it cut");
    }

    /// tmpfs' nr_inodes: as many nodes as pages by default, the root among them; one more is
    /// ENOSPC, and removing one makes room. statfs counts them.
    #[test]
    fn creating_past_the_inode_limit_is_enospc_until_a_node_goes() {
        let mut fs = MemFs::new(0o1777, 4 * PAGE, NOW);
        let root = fs.root();
        for name in [b"a", b"b", b"c"] {
            fs.create(root, name, NewNode::Regular, CREATE).unwrap();
        }
        assert_eq!(
            fs.create(root, b"d", NewNode::Directory, CREATE),
            Err(Error::NoSpace)
        );
        let stats = fs.stats();
        assert_eq!((stats.files, stats.free_files), (4, 0));
        fs.unlink(root, b"a", NOW).unwrap();
        fs.create(root, b"d", NewNode::Directory, CREATE).unwrap();
        // A second name takes an inode too (Linux's shmem_link), and gives it back.
        fs.unlink(root, b"b", NOW).unwrap();
        let c = fs.lookup(root, b"c").unwrap();
        fs.link(root, b"c2", c, NOW).unwrap();
        assert_eq!(fs.link(root, b"c3", c, NOW), Err(Error::NoSpace));
        assert_eq!(fs.stats().free_files, 0);
        fs.unlink(root, b"c", NOW).unwrap();
        assert_eq!(fs.stats().free_files, 1);
        fs.link(root, b"c3", c, NOW).unwrap();
        let many = MemFs::new(0o1777, 4 * PAGE, NOW).with_inodes(100).stats();
        assert_eq!((many.files, many.free_files), (100, 99));
    }

    /// The files a root starts with (an image's) take none of the allowance: it counts from
    /// `preloaded` on.
    #[test]
    fn preloaded_nodes_take_none_of_the_allowance() {
        let mut fs = MemFs::new(0o755, 2 * PAGE, NOW).preloading();
        let root = fs.root();
        for index in 0..10u8 {
            fs.create(root, &[b'f', b'0' + index], NewNode::Regular, CREATE)
                .unwrap();
        }
        fs.preloaded();
        let stats = fs.stats();
        assert_eq!((stats.files, stats.free_files), (13, 2));
        fs.create(root, b"x", NewNode::Regular, CREATE).unwrap();
        fs.create(root, b"y", NewNode::Symlink(b"x".to_vec()), CREATE)
            .unwrap();
        assert_eq!(
            fs.create(root, b"z", NewNode::Regular, CREATE),
            Err(Error::NoSpace)
        );
    }

    #[test]
    fn borrowed_content_reads_and_copies_on_write() {
        static CONTENT: [u8; 5000] = [7; 5000];
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let file = fs
            .create_with_content(root, b"image", &CONTENT, CREATE)
            .unwrap();
        assert_eq!(fs.metadata(file).unwrap().size, 5000);
        let mut buffer = [0u8; 8];
        assert_eq!(fs.read(file, 4096, &mut buffer), Ok(8));
        assert_eq!(buffer, [7; 8]);
        fs.write(file, 4100, b"xy", NOW).unwrap();
        assert_eq!(fs.read(file, 4096, &mut buffer), Ok(8));
        assert_eq!(&buffer, b"\x07\x07\x07\x07xy\x07\x07");
        assert_eq!(CONTENT[4100], 7, "the borrowed bytes are never written");
        fs.truncate(file, 10, NOW).unwrap();
        fs.truncate(file, 20, NOW).unwrap();
        assert_eq!(fs.read(file, 8, &mut buffer), Ok(8));
        assert_eq!(&buffer, b"\x07\x07\0\0\0\0\0\0");
    }

    #[test]
    fn whole_unwritten_aligned_pages_of_borrowed_content_are_lent() {
        #[repr(C, align(4096))]
        struct Aligned([u8; 3 * 4096]);
        static CONTENT: Aligned = Aligned([5; 3 * 4096]);
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let whole = &CONTENT.0[..];
        let file = fs.create_with_content(root, b"lib", whole, CREATE).unwrap();
        let lent = |fs: &MemFs, offset, len| {
            fs.borrowed_pages(file, offset, len)
                .map(|run| (run.as_ptr(), run.len()))
        };
        let all = 3 * 4096;
        assert_eq!(lent(&fs, 0, all), Some((whole.as_ptr(), all as usize)));
        fs.truncate(file, 5 * 4096, NOW).unwrap();
        assert_eq!(
            lent(&fs, 0, 5 * 4096),
            Some((whole.as_ptr(), all as usize)),
            "a file a truncate grew lends the image's pages it has"
        );
        fs.truncate(file, all, NOW).unwrap();
        assert_eq!(
            lent(&fs, 0, 4096 + 100),
            Some((whole.as_ptr(), 4096)),
            "whole pages of the length asked"
        );
        assert_eq!(lent(&fs, 8192, all), Some((whole[8192..].as_ptr(), 4096)));
        assert_eq!(lent(&fs, 100, all), None, "not a page boundary");
        assert_eq!(lent(&fs, 3 * 4096, 4096), None, "past the end");
        assert_eq!(lent(&fs, 0, 100), None, "less than a page asked");
        fs.write(file, 4097, b"x", NOW).unwrap();
        assert_eq!(
            lent(&fs, 4096, all),
            None,
            "a written page is the file's own"
        );
        assert_eq!(
            lent(&fs, 0, all),
            Some((whole.as_ptr(), 4096)),
            "the run stops before a written page"
        );
        assert_eq!(lent(&fs, 8192, all), Some((whole[8192..].as_ptr(), 4096)));
        fs.truncate(file, 8192 + 10, NOW).unwrap();
        assert_eq!(
            lent(&fs, 8192, all),
            None,
            "a page cut by truncate reads zeros at its end"
        );
        assert_eq!(lent(&fs, 0, all), Some((whole.as_ptr(), 4096)));

        let unaligned = fs
            .create_with_content(root, b"unaligned", &CONTENT.0[1..], CREATE)
            .unwrap();
        assert_eq!(
            fs.borrowed_pages(unaligned, 0, 4096),
            None,
            "not aligned in memory"
        );
        let written = fs.create(root, b"tmp", NewNode::Regular, CREATE).unwrap();
        fs.write(written, 0, &[1; 4096], NOW).unwrap();
        assert_eq!(
            fs.borrowed_pages(written, 0, 4096),
            None,
            "nothing borrowed"
        );
    }

    #[test]
    fn the_size_limit_is_enospc_and_deletes_give_space_back() {
        let mut fs = MemFs::new(0o755, 2 * PAGE, NOW);
        let root = fs.root();
        let file = fs.create(root, b"a", NewNode::Regular, CREATE).unwrap();
        assert_eq!(
            fs.write(file, 0, &[1; 3 * PAGE as usize], NOW),
            Ok(2 * PAGE as usize)
        );
        assert_eq!(fs.write(file, 2 * PAGE, &[1], NOW), Err(Error::NoSpace));
        fs.unlink(root, b"a", NOW).unwrap();
        let file = fs.create(root, b"b", NewNode::Regular, CREATE).unwrap();
        assert_eq!(
            fs.write(file, 0, &[1; PAGE as usize], NOW),
            Ok(PAGE as usize)
        );
    }

    #[test]
    fn an_unlinked_file_lives_while_open() {
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let file = fs.create(root, b"a", NewNode::Regular, CREATE).unwrap();
        fs.open(file);
        fs.write(file, 0, b"data", NOW).unwrap();
        fs.unlink(root, b"a", NOW).unwrap();
        assert_eq!(fs.lookup(root, b"a"), Err(Error::NotFound));
        assert_eq!(fs.metadata(file).unwrap().links, 0);
        let mut buffer = [0u8; 4];
        assert_eq!(fs.read(file, 0, &mut buffer), Ok(4));
        assert_eq!(fs.link(root, b"again", file, NOW), Err(Error::NotFound));
        fs.close(file);
        assert_eq!(fs.metadata(file), Err(Error::NotFound));
    }

    #[test]
    fn directories_count_links_and_rename_as_linux() {
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let dir = fs.create(root, b"d", NewNode::Directory, CREATE).unwrap();
        let sub = fs.create(dir, b"sub", NewNode::Directory, CREATE).unwrap();
        assert_eq!(fs.metadata(root).unwrap().links, 3);
        assert_eq!(fs.metadata(dir).unwrap().links, 3);
        assert_eq!(fs.lookup(sub, b".."), Ok(dir));
        assert_eq!(fs.rmdir(root, b"d", NOW), Err(Error::NotEmpty));
        assert_eq!(
            fs.rename(root, b"d", sub, b"x", RenameMode::Replace, NOW),
            Err(Error::Invalid),
            "into itself"
        );
        fs.rename(dir, b"sub", root, b"moved", RenameMode::Replace, NOW)
            .unwrap();
        assert_eq!(fs.lookup(sub, b".."), Ok(root));
        assert_eq!(
            (
                fs.metadata(root).unwrap().links,
                fs.metadata(dir).unwrap().links
            ),
            (4, 2)
        );
        let file = fs.create(root, b"f", NewNode::Regular, CREATE).unwrap();
        assert_eq!(
            fs.rename(root, b"f", root, b"d", RenameMode::Replace, NOW),
            Err(Error::IsDirectory)
        );
        assert_eq!(
            fs.rename(root, b"moved", root, b"f", RenameMode::Replace, NOW),
            Err(Error::NotDirectory)
        );
        fs.rename(root, b"f", root, b"d", RenameMode::Exchange, NOW)
            .unwrap();
        assert_eq!(
            (fs.lookup(root, b"d"), fs.lookup(root, b"f")),
            (Ok(file), Ok(dir))
        );
        assert_eq!(
            fs.rename(root, b"d", root, b"f", RenameMode::NoReplace, NOW),
            Err(Error::Exists)
        );
        fs.rmdir(root, b"moved", NOW).unwrap();
        let names: Vec<Vec<u8>> = (0..)
            .map_while(|position| fs.read_dir(root, position).unwrap())
            .map(|(entry, _)| entry.name)
            .collect();
        assert_eq!(names, [&b"."[..], b"..", b"d", b"f"]);
    }

    #[test]
    fn hard_links_share_the_node() {
        let mut fs = MemFs::new(0o755, 1 << 20, NOW);
        let root = fs.root();
        let file = fs.create(root, b"a", NewNode::Regular, CREATE).unwrap();
        fs.link(root, b"b", file, NOW).unwrap();
        assert_eq!(fs.metadata(file).unwrap().links, 2);
        fs.write(file, 0, b"x", NOW).unwrap();
        fs.unlink(root, b"a", NOW).unwrap();
        let mut byte = [0u8];
        assert_eq!(fs.read(fs.lookup(root, b"b").unwrap(), 0, &mut byte), Ok(1));
        assert_eq!(&byte, b"x");
        let dir = fs.create(root, b"d", NewNode::Directory, CREATE).unwrap();
        assert_eq!(fs.link(root, b"e", dir, NOW), Err(Error::NotPermitted));
    }
}
