//! The app's address space: its areas (vmas), brk, and mmap/munmap/mprotect/madvise.
//!
//! This file decides *where* memory goes and keeps the list of areas; the platform backs
//! the pages. Issue 3 turns the eager backing into demand paging on the same areas.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::platform::{Context, Protection};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

pub const PAGE_SIZE: u64 = 4096;
/// mmap_min_addr: nothing is mapped below 64 KiB, so NULL-ish pointers fault.
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// The end of the app's half of the address space (TASK_SIZE with 4-level paging).
pub const TASK_SIZE: u64 = (1 << 47) - PAGE_SIZE;

/// PROT_* (include/uapi/asm-generic/mman-common.h).
pub const PROT_READ: u32 = 0x1;
pub const PROT_WRITE: u32 = 0x2;
pub const PROT_EXEC: u32 = 0x4;
pub const PROT_GROWSDOWN: u32 = 0x0100_0000;
pub const PROT_GROWSUP: u32 = 0x0200_0000;
/// MAP_* (include/uapi/linux/mman.h, asm-generic/mman(-common).h).
pub const MAP_SHARED: u32 = 0x01;
pub const MAP_PRIVATE: u32 = 0x02;
pub const MAP_SHARED_VALIDATE: u32 = 0x03;
pub const MAP_TYPE: u32 = 0x0f;
pub const MAP_FIXED: u32 = 0x10;
pub const MAP_ANONYMOUS: u32 = 0x20;
pub const MAP_GROWSDOWN: u32 = 0x100;
pub const MAP_LOCKED: u32 = 0x2000;
pub const MAP_POPULATE: u32 = 0x8000;
pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
/// MADV_* (include/uapi/asm-generic/mman-common.h).
pub const MADV_NORMAL: i32 = 0;
pub const MADV_RANDOM: i32 = 1;
pub const MADV_SEQUENTIAL: i32 = 2;
pub const MADV_WILLNEED: i32 = 3;
pub const MADV_DONTNEED: i32 = 4;
pub const MADV_FREE: i32 = 8;
pub const MADV_HUGEPAGE: i32 = 14;
pub const MADV_NOHUGEPAGE: i32 = 15;
pub const MADV_DONTDUMP: i32 = 16;
pub const MADV_DODUMP: i32 = 17;

/// What an area holds, for /proc/self/maps and the fault report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    /// A PT_LOAD segment of the program; its first page is this far into the file.
    Program { file_offset: u64 },
    /// The brk heap.
    Heap,
    /// The main thread's stack.
    Stack,
    /// Anonymous mmap.
    Anonymous,
    /// Anonymous mmap with MAP_GROWSDOWN: a fault just below it grows it (a stack).
    GrowsDown,
    /// A file's pages from `file_offset` on (`AddressSpace::files` names the file), copied in
    /// at mmap; `shared` ones are written back at msync and munmap.
    File {
        file_offset: u64,
        file: u32,
        shared: bool,
    },
    /// The vDSO's time page.
    Vvar,
    /// The vDSO.
    Vdso,
}

/// One area: [start, end) with one protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub protection: Protection,
    pub kind: VmaKind,
}

impl Vma {
    /// The part of this area from `start` on (`start` inside it): a file-backed area's offset
    /// moves with it.
    pub fn from(&self, start: u64) -> Vma {
        let kind = match self.kind {
            VmaKind::Program { file_offset } => VmaKind::Program {
                file_offset: file_offset + (start - self.start),
            },
            VmaKind::File {
                file_offset,
                file,
                shared,
            } => VmaKind::File {
                file_offset: file_offset + (start - self.start),
                file,
                shared,
            },
            other => other,
        };
        Vma {
            start,
            kind,
            ..*self
        }
    }

    /// Whether `next`, which starts where this ends, can join it in one area.
    fn continues_into(&self, next: &Vma) -> bool {
        next.protection == self.protection
            && match (self.kind, next.kind) {
                (
                    VmaKind::Program { file_offset },
                    VmaKind::Program {
                        file_offset: next_offset,
                    },
                ) => next_offset == file_offset + (self.end - self.start),
                (
                    VmaKind::File {
                        file_offset,
                        file,
                        shared,
                    },
                    VmaKind::File {
                        file_offset: next_offset,
                        file: next_file,
                        shared: next_shared,
                    },
                ) => {
                    file == next_file
                        && shared == next_shared
                        && next_offset == file_offset + (self.end - self.start)
                }
                (kind, next_kind) => kind == next_kind,
            }
    }
}

/// The areas of the address space, keyed by start address; they never overlap.
pub struct AddressSpace {
    pub(crate) vmas: BTreeMap<u64, Vma>,
    /// mmap places areas top-down from here (below the stack).
    pub mmap_base: u64,
    /// Where brk started (the page after the program's bss) and where it is now.
    pub brk_start: u64,
    pub brk: u64,
    /// The most areas there may be (vm.max_map_count): Linux's default, or less where the
    /// kernel's memory for keeping them is smaller.
    pub max_map_count: usize,
    /// The files mapped (VmaKind::File's `file`): their path for /proc/self/maps, and the node.
    /// One entry per file and path, however often it is mapped.
    pub files: BTreeMap<u32, MappedFile>,
    /// The nodes `files` holds: a read or write of a file no mapping shows need not look for
    /// its mappings among the areas.
    pub mapped_nodes: BTreeSet<pith_fs::vfs::Node>,
    /// The id the next entry of `files` gets (entries leave when no area maps them).
    next_file: u32,
}

/// A file some area maps.
#[derive(Clone, Debug)]
pub struct MappedFile {
    pub path: Vec<u8>,
    pub node: pith_fs::vfs::Node,
    /// st_dev and st_ino, as /proc/self/maps shows them.
    pub device: u64,
    pub ino: u64,
}

pub const fn page_align_up(value: u64) -> Option<u64> {
    match value.checked_add(PAGE_SIZE - 1) {
        Some(sum) => Some(sum & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// PROT_SEM (include/uapi/asm-generic/mman-common.h): accepted by mprotect, meaningless here.
pub const PROT_SEM: u32 = 0x8;
/// max_map_count's default (include/linux/mm.h DEFAULT_MAX_MAP_COUNT).
pub const MAX_MAP_COUNT: usize = 65530;

/// The access bits of a protection. mmap takes any bits and uses these (do_mmap does not
/// check the rest); mprotect checks them first with `validate_mprotect_bits`.
pub fn protection_from_bits(bits: u32) -> Protection {
    Protection {
        read: bits & PROT_READ != 0,
        write: bits & PROT_WRITE != 0,
        execute: bits & PROT_EXEC != 0,
    }
}

/// arch_validate_prot for x86, after mprotect strips PROT_GROWSDOWN or PROT_GROWSUP (not both).
fn validate_mprotect_bits(bits: u32) -> Result<Protection, Errno> {
    let grows = bits & (PROT_GROWSDOWN | PROT_GROWSUP);
    if grows == PROT_GROWSDOWN | PROT_GROWSUP
        || bits & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | grows) != 0
    {
        return Err(Errno::EINVAL);
    }
    Ok(protection_from_bits(bits))
}

impl AddressSpace {
    /// The id of a mapped file in `files` (`VmaKind::File`'s `file`). The same file by the
    /// same path keeps its entry: a program that maps a file again and again (each library's
    /// segments, or a loop) does not grow the table. (So two mmaps of one file that meet may
    /// merge into one area where Linux, for two different open files, keeps two.) A new
    /// entry holds the file open in its filesystem (an unlinked file stays while mapped)
    /// until `release_unmapped_files` lets it go.
    pub fn file_id(&mut self, mapped: MappedFile, vfs: &mut pith_fs::vfs::Vfs) -> u32 {
        let known = self
            .files
            .iter()
            .find(|(_, known)| known.node == mapped.node && known.path == mapped.path)
            .map(|(&file, _)| file);
        match known {
            Some(file) => file,
            None => {
                // An id no entry has (the counter could come round to a live one).
                let mut file = self.next_file;
                while self.files.contains_key(&file) {
                    file = file.wrapping_add(1);
                }
                self.next_file = file.wrapping_add(1);
                if let Ok(fs) = vfs.fs_mut(mapped.node.mount) {
                    fs.open(mapped.node.ino);
                }
                self.mapped_nodes.insert(mapped.node);
                self.files.insert(file, mapped);
                file
            }
        }
    }

    /// The files the areas in [start, end) map (most often none, or one).
    pub fn files_in(&self, start: u64, end: u64) -> Vec<u32> {
        let mut files = Vec::new();
        for vma in self.overlapping(start, end) {
            if let VmaKind::File { file, .. } = vma.kind {
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        files
    }

    /// The areas that overlap [start, end), last first: a walk back from `end` that stops at
    /// the first area ending at or before `start` (areas do not overlap), so a call costs
    /// what it finds, not the whole list (ld.so's every mmap and mprotect comes here).
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        self.vmas
            .range(..end)
            .rev()
            .map(|(_, vma)| vma)
            .take_while(move |vma| vma.end > start)
    }

    /// Lets go of the entries of `files` among `candidates` (the files of areas just taken
    /// away) that no area maps any more (`file_id` holds each open). Only the candidates are
    /// looked at: ld.so's every MAP_FIXED over a library comes here.
    fn release_unmapped_files(&mut self, vfs: &mut pith_fs::vfs::Vfs, candidates: &[u32]) {
        for &file in candidates {
            let still_mapped = self.vmas.values().any(
                |vma| matches!(vma.kind, VmaKind::File { file: mapped, .. } if mapped == file),
            );
            if still_mapped {
                continue;
            }
            let Some(MappedFile { node, .. }) = self.files.remove(&file) else {
                continue;
            };
            if !self.files.values().any(|mapped| mapped.node == node) {
                self.mapped_nodes.remove(&node);
            }
            if let Ok(fs) = vfs.fs_mut(node.mount) {
                fs.close(node.ino);
            }
        }
    }

    pub fn new(mmap_base: u64, brk_start: u64) -> AddressSpace {
        AddressSpace {
            vmas: BTreeMap::new(),
            mmap_base,
            brk_start,
            brk: brk_start,
            max_map_count: MAX_MAP_COUNT,
            files: BTreeMap::new(),
            mapped_nodes: BTreeSet::new(),
            next_file: 0,
        }
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// /proc/self/maps: a line per area, as fs/proc/task_mmu.c show_map_vma writes them
    /// (start-end, rwxp, file offset, device, inode, then the name from column 73).
    pub fn maps_text(&self, executable: &[u8]) -> Vec<u8> {
        use core::fmt::Write;
        let mut text = alloc::string::String::new();
        for vma in self.vmas.values() {
            let mut device_inode = (0u64, 0u64);
            let mut shared = false;
            let (offset, name): (u64, &[u8]) = match vma.kind {
                VmaKind::Program { file_offset } => (file_offset, executable),
                VmaKind::File {
                    file_offset,
                    file,
                    shared: is_shared,
                } => {
                    shared = is_shared;
                    match self.files.get(&file) {
                        Some(mapped) => {
                            device_inode = (mapped.device, mapped.ino);
                            (file_offset, &mapped.path)
                        }
                        None => (file_offset, b""),
                    }
                }
                VmaKind::Heap => (0, b"[heap]"),
                VmaKind::Stack => (0, b"[stack]"),
                VmaKind::Anonymous | VmaKind::GrowsDown => (0, b""),
                VmaKind::Vvar => (0, b"[vvar]"),
                VmaKind::Vdso => (0, b"[vdso]"),
            };
            let line_start = text.len();
            let p = vma.protection;
            let _ = write!(
                text,
                "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
                vma.start,
                vma.end,
                if p.read { 'r' } else { '-' },
                if p.write { 'w' } else { '-' },
                if p.execute { 'x' } else { '-' },
                if shared { 's' } else { 'p' },
                offset,
                device_inode.0 >> 8,
                device_inode.0 & 0xff,
                device_inode.1
            );
            if !name.is_empty() {
                while text.len() - line_start < 73 {
                    text.push(' ');
                }
                text.push_str(&alloc::string::String::from_utf8_lossy(name));
            }
            text.push('\n');
        }
        text.into_bytes()
    }

    /// The area containing `address`.
    pub fn find(&self, address: u64) -> Option<&Vma> {
        self.vmas
            .range(..=address)
            .next_back()
            .map(|(_, vma)| vma)
            .filter(|vma| address < vma.end)
    }

    /// Whether no area overlaps [start, end): only the last area starting before `end` can.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        start >= MMAP_MIN_ADDR
            && end <= TASK_SIZE
            && self
                .vmas
                .range(..end)
                .next_back()
                .is_none_or(|(_, vma)| vma.end <= start)
    }

    /// Whether [start, end) is covered by areas with no gap.
    pub fn is_fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut cursor = start;
        while cursor < end {
            match self.find(cursor) {
                Some(vma) => cursor = vma.end,
                None => return false,
            }
        }
        true
    }

    /// Grows the MAP_GROWSDOWN area just above `address` down to its page, as a fault there
    /// does on Linux (mm/mmap.c expand_downwards): not into the stack guard gap (256 pages)
    /// above an accessible area below, and not past `limit` bytes in all (RLIMIT_STACK).
    /// Returns the part added.
    pub fn grow_down(&mut self, address: u64, limit: u64) -> Option<Vma> {
        const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
        let page = address & !(PAGE_SIZE - 1);
        if page < MMAP_MIN_ADDR || self.find(address).is_some() {
            return None;
        }
        let (&above_start, &above) = self.vmas.range(address..).next()?;
        if above.kind != VmaKind::GrowsDown || above.end - page > limit {
            return None;
        }
        if let Some((_, below)) = self.vmas.range(..address).next_back() {
            let p = below.protection;
            let accessible = p.read || p.write || p.execute;
            if below.kind != VmaKind::GrowsDown && accessible && page - below.end < STACK_GUARD_GAP
            {
                return None;
            }
        }
        let added = Vma {
            start: page,
            end: above_start,
            ..above
        };
        self.vmas.remove(&above_start);
        self.vmas.insert(
            page,
            Vma {
                start: page,
                ..above
            },
        );
        Some(added)
    }

    /// Adds an area; the range must be free (callers remove what was there first).
    pub fn insert(&mut self, vma: Vma) {
        debug_assert!(vma.start < vma.end);
        self.vmas.insert(vma.start, vma);
    }

    /// Removes [start, end) from the areas, splitting those that stick out.
    pub fn remove(&mut self, start: u64, end: u64) {
        let overlapping: alloc::vec::Vec<Vma> = self.overlapping(start, end).copied().collect();
        for vma in overlapping {
            self.vmas.remove(&vma.start);
            if vma.start < start {
                self.vmas.insert(vma.start, Vma { end: start, ..vma });
            }
            if vma.end > end {
                self.vmas.insert(
                    end,
                    Vma {
                        end: vma.end,
                        ..vma.from(end)
                    },
                );
            }
        }
    }

    /// Sets the protection of [start, end), which must be fully mapped; merges neighbours
    /// that end up alike.
    pub fn protect(&mut self, start: u64, end: u64, protection: Protection) -> Result<(), Errno> {
        if !self.is_fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        let pieces: alloc::vec::Vec<Vma> = self.overlapping(start, end).copied().collect();
        self.remove(start, end);
        for vma in pieces {
            let piece = vma.from(vma.start.max(start));
            self.insert(Vma {
                end: vma.end.min(end),
                protection,
                ..piece
            });
        }
        self.merge_around(start, end);
        Ok(())
    }

    /// Merges the areas around [start, end) with neighbours of the same protection and kind.
    pub fn merge_around(&mut self, start: u64, end: u64) {
        let keys: alloc::vec::Vec<u64> = self
            .vmas
            .range(..=end)
            .rev()
            .take_while(|(_, vma)| vma.end >= start)
            .map(|(&key, _)| key)
            .collect();
        for key in keys.into_iter().rev() {
            // Absorb following neighbours for as long as they are alike.
            while let Some(&vma) = self.vmas.get(&key) {
                let Some(&next) = self.vmas.get(&vma.end) else {
                    break;
                };
                if !vma.continues_into(&next) {
                    break;
                }
                self.vmas.remove(&next.start);
                if let Some(merged) = self.vmas.get_mut(&key) {
                    merged.end = next.end;
                }
            }
        }
    }

    /// A free range of `len` bytes: at `hint` if that is free, else the highest gap below
    /// `mmap_base` (top-down, as Linux's default layout).
    pub fn find_free(&self, len: u64, hint: u64) -> Option<u64> {
        if hint != 0 {
            if let Some(end) = hint.checked_add(len) {
                if hint.is_multiple_of(PAGE_SIZE) && self.is_free(hint, end) {
                    return Some(hint);
                }
            }
        }
        let mut top = self.mmap_base;
        for vma in self.vmas.range(..self.mmap_base).rev().map(|(_, vma)| vma) {
            if vma.end <= top && top - vma.end >= len {
                return Some(top - len);
            }
            top = top.min(vma.start);
        }
        let start = top.checked_sub(len)?;
        (start >= MMAP_MIN_ADDR).then_some(start)
    }
}

/// Implements mmap(2) for anonymous memory.
pub fn mmap(
    context: &mut Context,
    address: UserAddr,
    length: u64,
    protection: u32,
    flags: u32,
    fd: Fd,
    offset: u64,
) -> Result<u64, Errno> {
    let protection = protection_from_bits(protection);
    if !matches!(
        flags & MAP_TYPE,
        MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE
    ) {
        return Err(Errno::EINVAL);
    }
    if length == 0 || !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let length = page_align_up(length)
        .filter(|&len| len <= TASK_SIZE)
        .ok_or(Errno::ENOMEM)?;
    let file_source = if flags & MAP_ANONYMOUS == 0 {
        Some(mapped_file(context, fd, flags, &protection)?)
    } else {
        None
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let memory = &mut context.process.memory;
    if memory.vmas.len() >= memory.max_map_count {
        return Err(Errno::ENOMEM);
    }
    // A file's bytes end at MAX_LFS_FILESIZE (mm/mmap.c file_mmap_ok): a mapping past it is
    // EOVERFLOW, before anything MAP_FIXED would replace is gone.
    if file_source.is_some()
        && offset
            .checked_add(length)
            .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let start = if fixed {
        let start = address.0;
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = start
            .checked_add(length)
            .filter(|&end| end <= TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        if start < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if !memory.is_free(start, end) {
            if flags & MAP_FIXED_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            unmap_range(context, start, end);
        }
        start
    } else {
        let hint = address.0 & !(PAGE_SIZE - 1);
        memory.find_free(length, hint).ok_or(Errno::ENOMEM)?
    };
    if let Some((node, _)) = &file_source {
        // A file's pages: mapped writable, filled from the file, then given their protection.
        let writable = Protection {
            read: true,
            write: true,
            execute: false,
        };
        context.platform.map_anonymous(start, length, writable)?;
        if flags & MAP_TYPE != MAP_PRIVATE {
            fill_from_file(context, *node, offset, start, length)?;
            share_with_other_mappings(context, *node, offset, start, length)?;
        } else {
            fill_private_from_file(context, *node, offset, start, length)?;
            // Until the program stores to a page of it, a private mapping shows the file
            // (`write_through_mappings` keeps such pages up to date).
            context.platform.forget_stores(start, length);
        }
        context.platform.protect(start, length, protection)?;
    } else {
        context.platform.map_anonymous(start, length, protection)?;
    }
    if flags & (MAP_POPULATE | MAP_LOCKED) != 0 {
        // As on Linux, failing to prefault does not fail the mmap: the pages fault in later.
        let _ = context.platform.populate(start, length);
    }
    let process = &mut *context.process;
    let kind = if let Some((_, mapped)) = file_source {
        let file = process.memory.file_id(mapped, &mut process.vfs);
        VmaKind::File {
            file_offset: offset,
            file,
            shared: flags & MAP_TYPE != MAP_PRIVATE,
        }
    } else if flags & MAP_GROWSDOWN != 0 {
        VmaKind::GrowsDown
    } else {
        VmaKind::Anonymous
    };
    let memory = &mut context.process.memory;
    memory.insert(Vma {
        start,
        end: start + length,
        protection,
        kind,
    });
    // As Linux's vma_merge: neighbours alike become one area.
    memory.merge_around(start, start + length);
    Ok(start)
}

/// munmap's and madvise's range check (mm/mmap.c, mm/madvise.c): EINVAL for a misaligned
/// start or a range that leaves the app's half.
fn checked_range(address: UserAddr, length: u64) -> Result<(u64, u64), Errno> {
    let start = address.0;
    if !start.is_multiple_of(PAGE_SIZE) || start > TASK_SIZE || length > TASK_SIZE - start {
        return Err(Errno::EINVAL);
    }
    let length = page_align_up(length).ok_or(Errno::EINVAL)?;
    Ok((start, start + length))
}

/// Implements munmap(2).
pub fn munmap(context: &mut Context, address: UserAddr, length: u64) -> Result<(), Errno> {
    let (start, end) = checked_range(address, length)?;
    if start == end {
        return Err(Errno::EINVAL);
    }
    unmap_range(context, start, end);
    Ok(())
}

/// Takes [start, end) out of the address space (munmap, and what MAP_FIXED, mremap and brk
/// replace or give up): a shared file mapping's stores there reach the file first, and the
/// files no area maps any more are released.
fn unmap_range(context: &mut Context, start: u64, end: u64) {
    write_back(context, start, end);
    let files = context.process.memory.files_in(start, end);
    context.process.memory.remove(start, end);
    context.platform.unmap(start, end - start);
    release_unmapped_files(context, &files);
}

/// Files no area maps any more leave the address space's table, and their filesystems are
/// told: an unlinked file's bytes go with its last mapping, as on Linux (before, every file
/// ever mapped stayed open, and a program that mapped and unlinked scratch files, as POSIX
/// shared memory does, kept them all).
fn release_unmapped_files(context: &mut Context, candidates: &[u32]) {
    if candidates.is_empty() {
        return;
    }
    let process = &mut *context.process;
    process
        .memory
        .release_unmapped_files(&mut process.vfs, candidates);
}

/// Implements mprotect(2), in do_mprotect_pkey's order of checks.
pub fn mprotect(
    context: &mut Context,
    address: UserAddr,
    length: u64,
    protection: u32,
) -> Result<(), Errno> {
    let start = address.0;
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if length == 0 {
        return Ok(());
    }
    let end = page_align_up(length)
        .and_then(|length| start.checked_add(length))
        .ok_or(Errno::ENOMEM)?;
    let protection = validate_mprotect_bits(protection)?;
    if context.process.memory.vmas.len() + 2 > context.process.memory.max_map_count {
        return Err(Errno::ENOMEM); // the split could exceed the limit
    }
    context.process.memory.protect(start, end, protection)?;
    context.platform.protect(start, end - start, protection)
}

/// Advice that changes nothing Pith keeps (no fork, no swap, no KSM, no huge pages yet), all
/// valid on Linux 6.1 (include/uapi/asm-generic/mman-common.h).
const HINTS: [i32; 17] = [
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_FREE,
    10, /* DONTFORK */
    11,
    /* DOFORK */ 12,
    /* MERGEABLE */ 13,
    /* UNMERGEABLE */ MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_DONTDUMP,
    MADV_DODUMP,
    18,
    /* WIPEONFORK */ 19,
    /* KEEPONFORK */ 20, /* COLD */
    21, /* PAGEOUT */
];
const MADV_POPULATE_READ: i32 = 22;
const MADV_POPULATE_WRITE: i32 = 23;
const MADV_DONTNEED_LOCKED: i32 = 24;
const MADV_COLLAPSE: i32 = 25;

/// Implements madvise(2), in do_madvise's order of checks.
pub fn madvise(
    context: &mut Context,
    address: UserAddr,
    length: u64,
    advice: i32,
) -> Result<(), Errno> {
    let known = HINTS.contains(&advice)
        || matches!(
            advice,
            MADV_DONTNEED
                | MADV_DONTNEED_LOCKED
                | MADV_POPULATE_READ
                | MADV_POPULATE_WRITE
                | MADV_COLLAPSE
        );
    if !known {
        return Err(Errno::EINVAL);
    }
    let (start, end) = checked_range(address, length)?;
    if start == end {
        return Ok(());
    }
    if !context.process.memory.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    match advice {
        MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
            // Anonymous pages read back as zero, as Linux's do, and their memory is freed. A
            // shared file mapping's pages are the file's (Linux's page cache keeps them): they
            // stay as they are. A private one's are read again from the file. The program's
            // own segments would re-read the file on Linux; with no file to read, their pages
            // are kept rather than zeroed (a loss of data otherwise).
            let pieces: Vec<Vma> = context
                .process
                .memory
                .vmas()
                .filter(|vma| {
                    vma.start < end
                        && start < vma.end
                        && !matches!(vma.kind, VmaKind::Program { .. })
                })
                .copied()
                .collect();
            for vma in pieces {
                let (from, to) = (vma.start.max(start), vma.end.min(end));
                match vma.kind {
                    VmaKind::File { shared: true, .. } => {}
                    VmaKind::File {
                        file,
                        shared: false,
                        ..
                    } => refill_private(context, &vma, file, from, to)?,
                    _ => context.platform.discard(from, to - from),
                }
            }
            Ok(())
        }
        MADV_POPULATE_READ | MADV_POPULATE_WRITE => context.platform.populate(start, end - start),
        // MADV_COLLAPSE asks for huge pages now: Linux says EINVAL where it cannot.
        MADV_COLLAPSE => Err(Errno::EINVAL),
        _ => Ok(()),
    }
}

/// mremap flags (include/uapi/linux/mman.h).
pub const MREMAP_MAYMOVE: u32 = 1;
pub const MREMAP_FIXED: u32 = 2;
pub const MREMAP_DONTUNMAP: u32 = 4;

/// Implements mremap(2) for anonymous memory: shrink in place, grow in place when the next
/// pages are free, or move (MREMAP_MAYMOVE, MREMAP_FIXED) with the contents.
pub fn mremap(
    context: &mut Context,
    old_address: UserAddr,
    old_size: u64,
    new_size: u64,
    flags: u32,
    new_address: UserAddr,
) -> Result<u64, Errno> {
    let old_start = old_address.0;
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        || flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 && flags & MREMAP_MAYMOVE == 0
        || !old_start.is_multiple_of(PAGE_SIZE)
    {
        return Err(Errno::EINVAL);
    }
    // MREMAP_DONTUNMAP leaves the old range mapped but empty: not supported (yet) here.
    if flags & MREMAP_DONTUNMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let old_size = page_align_up(old_size).ok_or(Errno::EINVAL)?;
    let new_size = page_align_up(new_size)
        .filter(|&size| size > 0 && size <= TASK_SIZE)
        .ok_or(Errno::EINVAL)?;
    // old_size 0 duplicates a shared mapping; private memory cannot be duplicated.
    if old_size == 0 {
        return Err(Errno::EINVAL);
    }
    let old_end = old_start.checked_add(old_size).ok_or(Errno::EINVAL)?;
    let memory = &context.process.memory;
    let vma = *memory.find(old_start).ok_or(Errno::EFAULT)?;
    if old_end > vma.end {
        return Err(Errno::EFAULT); // the range must lie in one area
    }
    let protection = vma.protection;
    if flags & MREMAP_FIXED != 0 {
        let target = new_address.0;
        let target_end = target
            .checked_add(new_size)
            .filter(|&end| end <= TASK_SIZE)
            .ok_or(Errno::EINVAL)?;
        if !target.is_multiple_of(PAGE_SIZE) || (target < old_end && old_start < target_end) {
            return Err(Errno::EINVAL);
        }
        unmap_range(context, target, target_end);
        return move_area(context, old_start, old_size, target, new_size, protection);
    }
    if new_size <= old_size {
        if new_size < old_size {
            unmap_range(context, old_start + new_size, old_end);
        }
        return Ok(old_start);
    }
    // Grow in place when the pages after the area are free.
    let grown_end = old_start.checked_add(new_size).ok_or(Errno::ENOMEM)?;
    if old_end == vma.end && context.process.memory.is_free(old_end, grown_end) {
        context
            .platform
            .map_anonymous(old_end, grown_end - old_end, protection)?;
        let memory = &mut context.process.memory;
        memory.insert(Vma {
            start: old_end,
            end: grown_end,
            protection,
            kind: vma.from(old_end).kind,
        });
        memory.merge_around(old_start, grown_end);
        return Ok(old_start);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let target = context
        .process
        .memory
        .find_free(new_size, 0)
        .ok_or(Errno::ENOMEM)?;
    move_area(context, old_start, old_size, target, new_size, protection)
}

/// Moves [old_start, + old_size) to [target, + new_size): the pages come along, any extra is
/// fresh zeroed memory, and the old range is gone.
fn move_area(
    context: &mut Context,
    old_start: u64,
    old_size: u64,
    target: u64,
    new_size: u64,
    protection: Protection,
) -> Result<u64, Errno> {
    let moved = old_size.min(new_size);
    // The area moves as memory: a shared file mapping's stores reach the file first.
    write_back(context, old_start, old_start + old_size);
    let files = context
        .process
        .memory
        .files_in(old_start, old_start + old_size);
    context
        .platform
        .map_anonymous(target, new_size, protection)?;
    if let Err(errno) = context
        .platform
        .move_pages(old_start, target, moved, protection)
    {
        // Nothing moved: drop the target again, and the old area stays as it was.
        context.platform.unmap(target, new_size);
        return Err(errno);
    }
    context.platform.unmap(old_start, old_size);
    let memory = &mut context.process.memory;
    memory.remove(old_start, old_start + old_size);
    memory.insert(Vma {
        start: target,
        end: target + new_size,
        protection,
        kind: VmaKind::Anonymous,
    });
    memory.merge_around(target, target + new_size);
    release_unmapped_files(context, &files);
    Ok(target)
}

/// Implements mincore(2): one byte per page, bit 0 set when the page is in memory.
pub fn mincore(
    context: &mut Context,
    address: UserAddr,
    length: u64,
    vector: UserAddr,
) -> Result<(), Errno> {
    let start = address.0;
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let length = page_align_up(length).ok_or(Errno::ENOMEM)?;
    let end = start
        .checked_add(length)
        .filter(|&end| end <= TASK_SIZE)
        .ok_or(Errno::ENOMEM)?;
    if !context.process.memory.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    let pages = (length / PAGE_SIZE) as usize;
    let mut done = 0;
    let mut chunk = [0u8; 4096];
    while done < pages {
        let take = (pages - done).min(chunk.len());
        context
            .platform
            .residency(start + done as u64 * PAGE_SIZE, &mut chunk[..take]);
        context
            .platform
            .write_user(vector.0 + done as u64, &chunk[..take])?;
        done += take;
    }
    Ok(())
}

/// Implements brk(2): returns the new break, or the old one when it cannot move.
pub fn brk(context: &mut Context, address: UserAddr) -> Result<u64, Errno> {
    let memory = &mut context.process.memory;
    let current = memory.brk;
    let requested = address.0;
    if requested < memory.brk_start {
        return Ok(current);
    }
    let (Some(old_end), Some(new_end)) = (page_align_up(current), page_align_up(requested)) else {
        return Ok(current);
    };
    let heap = Protection {
        read: true,
        write: true,
        execute: false,
    };
    if new_end > old_end {
        if !memory.is_free(old_end, new_end) {
            return Ok(current);
        }
        if context
            .platform
            .map_anonymous(old_end, new_end - old_end, heap)
            .is_err()
        {
            return Ok(current);
        }
        let memory = &mut context.process.memory;
        memory.insert(Vma {
            start: old_end,
            end: new_end,
            protection: heap,
            kind: VmaKind::Heap,
        });
        memory.merge_around(old_end, new_end);
    } else if new_end < old_end {
        unmap_range(context, new_end, old_end);
    }
    context.process.memory.brk = requested;
    Ok(requested)
}

/// The file an mmap names: a regular file of the tree, open for reading (and for writing, if a
/// shared mapping may write). ENODEV for what cannot be mapped (the console, pipes).
fn mapped_file(
    context: &mut Context,
    fd: Fd,
    flags: u32,
    protection: &Protection,
) -> Result<(pith_fs::vfs::Node, MappedFile), Errno> {
    let open = context.process.files.get(fd)?;
    let crate::fs::FileKind::Node(node) = open.kind else {
        return Err(Errno::ENODEV);
    };
    let metadata = context.process.vfs.metadata(node)?;
    if metadata.kind != pith_fs::FileType::Regular {
        return Err(Errno::ENODEV);
    }
    let access = open.status_flags & crate::fs::O_ACCMODE;
    if access == crate::fs::O_WRONLY {
        return Err(Errno::EACCES);
    }
    if flags & MAP_TYPE != MAP_PRIVATE && protection.write && access != crate::fs::O_RDWR {
        return Err(Errno::EACCES);
    }
    let path = context.process.files.path(fd).unwrap_or_default();
    let stat = crate::files::stat_of(node, &metadata);
    Ok((
        node,
        MappedFile {
            path,
            node,
            device: stat.st_dev,
            ino: stat.st_ino,
        },
    ))
}

/// Copies the file's bytes from `offset` into [start, start + length); past its end the pages
/// stay zero.
fn fill_from_file(
    context: &mut Context,
    node: pith_fs::vfs::Node,
    offset: u64,
    start: u64,
    length: u64,
) -> Result<(), Errno> {
    let mut chunk = alloc::vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < length {
        let want = ((length - done) as usize).min(chunk.len());
        let got = context
            .process
            .vfs
            .fs_mut(node.mount)?
            .read(node.ino, offset + done, &mut chunk[..want])
            .map_err(crate::files::errno)?;
        if got == 0 {
            break;
        }
        context.platform.write_user(start + done, &chunk[..got])?;
        done += got as u64;
    }
    Ok(())
}

/// A private mapping's bytes: each page the file can lend (an image's unchanged page, in
/// memory for the VM's life) is shown where it lies, copied only if the program stores to it;
/// the other pages are copied in as `fill_from_file` does. The dynamic loader maps every
/// library whole, so this is most of the program's memory and start-up.
fn fill_private_from_file(
    context: &mut Context,
    node: pith_fs::vfs::Node,
    offset: u64,
    start: u64,
    length: u64,
) -> Result<(), Errno> {
    let mut copy_from = 0u64; // the first page of the run not lent yet
    let mut page = 0u64;
    while page < length {
        let lent = context
            .process
            .vfs
            .fs_mut(node.mount)?
            .borrowed_pages(node.ino, offset + page, length - page)
            .map_or(0, |pages| context.platform.lend_pages(start + page, pages));
        if lent == 0 {
            page += PAGE_SIZE;
            continue;
        }
        if copy_from < page {
            fill_from_file(
                context,
                node,
                offset + copy_from,
                start + copy_from,
                page - copy_from,
            )?;
        }
        page += lent;
        copy_from = page;
    }
    if copy_from < length {
        fill_from_file(
            context,
            node,
            offset + copy_from,
            start + copy_from,
            length - copy_from,
        )?;
    }
    Ok(())
}

/// A new MAP_SHARED mapping of `node`'s bytes [offset, offset + length) at `start` shows the
/// very pages of the file's other shared mappings where they overlap, as Linux's mappings
/// all show the one page cache: a store through one is seen through the other at once.
fn share_with_other_mappings(
    context: &mut Context,
    node: pith_fs::vfs::Node,
    offset: u64,
    start: u64,
    length: u64,
) -> Result<(), Errno> {
    let mappings = shared_mappings_of(context, node);
    for (address, range) in overlaps(&mappings, offset, length as usize) {
        let target = start + range.start as u64;
        match context
            .platform
            .share_pages(address, target, (range.end - range.start) as u64)
        {
            // A platform that cannot share keeps a copy, coherent through read and write.
            Ok(()) | Err(Errno::ENOSYS) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// MADV_DONTNEED on a private file mapping: its pages are dropped and read again from the
/// file (with what shared mappings of it hold), as Linux refaults them from the page cache;
/// the program's own stores to them are gone.
fn refill_private(
    context: &mut Context,
    vma: &Vma,
    file: u32,
    from: u64,
    to: u64,
) -> Result<(), Errno> {
    let VmaKind::File { file_offset, .. } = vma.kind else {
        return Ok(());
    };
    let node = context
        .process
        .memory
        .files
        .get(&file)
        .map(|mapped| mapped.node)
        .ok_or(Errno::EINVAL)?;
    context.platform.discard(from, to - from);
    context.platform.populate(from, to - from)?;
    let mut chunk = alloc::vec![0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let want = ((to - at) as usize).min(chunk.len());
        let position = file_offset + (at - vma.start);
        let got = context
            .process
            .vfs
            .fs_mut(node.mount)?
            .read(node.ino, position, &mut chunk[..want])
            .map_err(crate::files::errno)?;
        if got == 0 {
            break;
        }
        read_through_mappings(context, node, position, &mut chunk[..got]);
        context.platform.poke_mapping(at, &chunk[..got]);
        at += got as u64;
    }
    Ok(())
}

/// Writes the pages of shared file mappings in [start, end) back to their files (msync,
/// munmap), not past each file's end.
fn write_back(context: &mut Context, start: u64, end: u64) {
    let areas: Vec<Vma> = context
        .process
        .memory
        .overlapping(start, end)
        .copied()
        .collect();
    for vma in areas {
        let VmaKind::File {
            file_offset,
            file,
            shared: true,
        } = vma.kind
        else {
            continue;
        };
        if !vma.protection.read {
            continue;
        }
        let Some(node) = context
            .process
            .memory
            .files
            .get(&file)
            .map(|mapped| mapped.node)
        else {
            continue;
        };
        let Ok(size) = context
            .process
            .vfs
            .metadata(node)
            .map(|metadata| metadata.size)
        else {
            continue;
        };
        let (from, to) = (vma.start.max(start), vma.end.min(end));
        let file_start = file_offset + (from - vma.start);
        if file_start >= size {
            continue;
        }
        let length = (to - from).min(size - file_start) as usize;
        let Ok(bytes) = context.read_bytes(from, length) else {
            continue;
        };
        let now = crate::files::now(context);
        if let Ok(fs) = context.process.vfs.fs_mut(node.mount) {
            let _ = fs.write(node.ino, file_start, &bytes, now);
        }
    }
}

/// The shared mappings of `node`: (start, end, file offset at start) of each area.
fn shared_mappings_of(context: &Context, node: pith_fs::vfs::Node) -> Vec<(u64, u64, u64)> {
    mappings_of(context, node, true)
}

/// Whether `node` has shared mappings, whose stores its reads must show
/// (`read_through_mappings`).
pub fn has_shared_mappings(context: &Context, node: pith_fs::vfs::Node) -> bool {
    !shared_mappings_of(context, node).is_empty()
}

/// The private mappings of `node`, as `shared_mappings_of`.
fn private_mappings_of(context: &Context, node: pith_fs::vfs::Node) -> Vec<(u64, u64, u64)> {
    mappings_of(context, node, false)
}

fn mappings_of(context: &Context, node: pith_fs::vfs::Node, shared: bool) -> Vec<(u64, u64, u64)> {
    let memory = &context.process.memory;
    if !memory.mapped_nodes.contains(&node) {
        return Vec::new();
    }
    memory
        .vmas
        .values()
        .filter_map(|vma| match vma.kind {
            VmaKind::File {
                file_offset,
                file,
                shared: is_shared,
            } if is_shared == shared
                && memory.files.get(&file).map(|mapped| mapped.node) == Some(node) =>
            {
                Some((vma.start, vma.end, file_offset))
            }
            _ => None,
        })
        .collect()
}

/// For each shared mapping of `node` that holds part of the file range [offset, offset +
/// length): the mapping's address of that part, and where it lies in the range.
fn overlaps(
    mappings: &[(u64, u64, u64)],
    offset: u64,
    length: usize,
) -> Vec<(u64, core::ops::Range<usize>)> {
    let end = offset + length as u64;
    mappings
        .iter()
        .filter_map(|&(start, stop, file_offset)| {
            let file_end = file_offset + (stop - start);
            let (from, to) = (offset.max(file_offset), end.min(file_end));
            (from < to).then(|| {
                (
                    start + (from - file_offset),
                    (from - offset) as usize..(to - offset) as usize,
                )
            })
        })
        .collect()
}

/// read(2) of `node`'s bytes at `offset`: where a shared mapping holds part of them, the
/// mapping's bytes are the file's (stores there reach the file only at msync, munmap or
/// fsync, but a read sees them at once, as Linux's shared page cache gives).
pub fn read_through_mappings(
    context: &Context,
    node: pith_fs::vfs::Node,
    offset: u64,
    bytes: &mut [u8],
) {
    let mappings = shared_mappings_of(context, node);
    for (address, range) in overlaps(&mappings, offset, bytes.len()) {
        context.platform.peek_mapping(address, &mut bytes[range]);
    }
}

/// write(2) of `data` to `node` at `offset`: its shared mappings show the new bytes at once,
/// even read-only ones; so do the pages of its private mappings that the program has not
/// stored to, as on Linux, where such pages are still the page cache's.
pub fn write_through_mappings(
    context: &mut Context,
    node: pith_fs::vfs::Node,
    offset: u64,
    data: &[u8],
) {
    let mappings = shared_mappings_of(context, node);
    for (address, range) in overlaps(&mappings, offset, data.len()) {
        context.platform.poke_mapping(address, &data[range]);
    }
    let private = private_mappings_of(context, node);
    for (address, range) in overlaps(&private, offset, data.len()) {
        // Page by page: only the ones still the file's.
        let mut at = 0usize;
        let piece = &data[range];
        while at < piece.len() {
            let page_address = address + at as u64;
            let page_left = (PAGE_SIZE - page_address % PAGE_SIZE) as usize;
            let length = page_left.min(piece.len() - at);
            if !context.platform.page_stored_to(page_address) {
                context
                    .platform
                    .poke_mapping(page_address, &piece[at..at + length]);
            }
            at += length;
        }
    }
}

/// fsync(2) of `node`: its shared mappings are written back first, as Linux's fsync writes
/// the file's dirty mapped pages.
pub fn write_back_file(context: &mut Context, node: pith_fs::vfs::Node) {
    for (start, end, _) in shared_mappings_of(context, node) {
        write_back(context, start, end);
    }
}

/// sync(2) and syncfs(2): every shared file mapping is written back first.
pub fn write_back_all(context: &mut Context) {
    write_back(context, 0, u64::MAX);
}

/// msync's flags (include/uapi/asm-generic/mman-common.h).
const MS_ASYNC: i32 = 1;
const MS_INVALIDATE: i32 = 2;
const MS_SYNC: i32 = 4;

/// Implements msync(2): shared file mappings in the range are written back to their files
/// (MS_SYNC: and made durable).
pub fn msync(
    context: &mut Context,
    address: UserAddr,
    length: u64,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & MS_ASYNC != 0 && flags & MS_SYNC != 0
    {
        return Err(Errno::EINVAL);
    }
    let start = address.0;
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let end = page_align_up(length)
        .and_then(|length| start.checked_add(length))
        .ok_or(Errno::ENOMEM)?;
    if !context.process.memory.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    write_back(context, start, end);
    if flags & MS_SYNC != 0 {
        crate::files::sync(context)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    const RW: Protection = Protection {
        read: true,
        write: true,
        execute: false,
    };
    const RO: Protection = Protection {
        read: true,
        write: false,
        execute: false,
    };

    fn space() -> AddressSpace {
        AddressSpace::new(0x7000_0000_0000, 0x60_0000)
    }

    #[test]
    fn a_file_mapping_past_the_largest_file_offset_is_eoverflow() {
        static CONTENT: [u8; 10] = *b"0123456789";
        let mut machine = TestMachine::new();
        crate::files::add_from_image(
            &mut machine.process.vfs,
            b"/data",
            crate::files::ImageNode::File(&CONTENT),
            0o644,
            pith_fs::Timestamp::default(),
        )
        .unwrap();
        let path = machine.put(b"/data\0");
        let fd = machine.call(2, [path, 0, 0, 0, 0, 0]).unwrap();
        let private = MAP_PRIVATE as u64;
        for offset in [0xffff_ffff_ffff_f000, 0x7fff_ffff_ffff_f000] {
            assert_eq!(
                machine.call(9, [0, 4096, 1, private, fd, offset]),
                Err(Errno::EOVERFLOW),
                "offset {offset:#x}"
            );
        }
        let last = 0x7fff_ffff_ffff_e000;
        assert!(machine.call(9, [0, 4096, 1, private, fd, last]).is_ok());
        // MAP_FIXED with such an offset leaves what is there in place.
        let at = machine.call(9, [0, 4096, 1, private, fd, 0]).unwrap();
        let fixed = private | MAP_FIXED as u64;
        assert_eq!(
            machine.call(9, [at, 4096, 1, fixed, fd, 0xffff_ffff_ffff_f000]),
            Err(Errno::EOVERFLOW)
        );
        assert_eq!(machine.memory_at(at, 10), CONTENT);
    }

    #[test]
    fn a_private_mapping_is_lent_the_whole_pages_of_an_image_file() {
        #[repr(C, align(4096))]
        struct Aligned([u8; 4 * 4096]);
        static LIBRARY: Aligned = Aligned({
            let mut bytes = [0u8; 4 * 4096];
            let mut at = 0;
            while at < bytes.len() {
                bytes[at] = (at / 4096) as u8 + 1;
                at += 1;
            }
            bytes
        });
        let content = &LIBRARY.0[..3 * 4096 + 100]; // three whole pages and a tail
        let mut machine = TestMachine::new();
        let now = pith_fs::Timestamp::default();
        crate::files::add_from_image(
            &mut machine.process.vfs,
            b"/lib/libx.so",
            crate::files::ImageNode::File(content),
            0o755,
            now,
        )
        .unwrap();
        let path = machine.put(b"/lib/libx.so\0");
        let fd = machine.call(2, [path, 2, 0, 0, 0, 0]).unwrap(); // O_RDWR
        let at = machine
            .call(9, [0, 5 * 4096, 3, MAP_PRIVATE as u64, fd, 0])
            .unwrap();
        assert_eq!(machine.platform.lent, [at, at + 4096, at + 8192]);
        let mut expected = content.to_vec();
        expected.resize(5 * 4096, 0);
        assert_eq!(machine.memory_at(at, 5 * 4096), expected);
        // From an offset: the second whole page is lent; MAP_SHARED copies.
        machine.platform.lent.clear();
        let second = machine
            .call(9, [0, 4096, 1, MAP_PRIVATE as u64, fd, 4096])
            .unwrap();
        assert_eq!(machine.platform.lent, [second]);
        machine.platform.lent.clear();
        machine
            .call(9, [0, 2 * 4096, 1, MAP_SHARED as u64, fd, 0])
            .unwrap();
        assert!(
            machine.platform.lent.is_empty(),
            "a shared mapping is the file's own"
        );
        // A page the program wrote through write(2) is the file's own, not the image's: the
        // pages on either side of it are still lent, it is copied.
        let byte = machine.put(b"z");
        assert_eq!(machine.call(18, [fd, byte, 1, 4096 + 10, 0, 0]), Ok(1)); // pwrite64
        let again = machine
            .call(9, [0, 3 * 4096, 1, MAP_PRIVATE as u64, fd, 0])
            .unwrap();
        assert_eq!(machine.platform.lent, [again, again + 8192]);
        assert_eq!(machine.memory_at(again + 4096 + 10, 1), b"z");
        assert_eq!(machine.memory_at(again + 4096 + 11, 1), [2]);
        assert_eq!(machine.memory_at(again + 8192, 1), [3]);
    }

    #[test]
    fn a_file_mapped_again_and_again_keeps_one_entry_and_its_reads_skip_the_areas() {
        let mut machine = TestMachine::new();
        let now = pith_fs::Timestamp::default();
        for path in [&b"/lib/liby.so"[..], b"/data/plain"] {
            crate::files::add_from_image(
                &mut machine.process.vfs,
                path,
                crate::files::ImageNode::File(&[7; 8192]),
                0o644,
                now,
            )
            .unwrap();
        }
        let path = machine.put(b"/lib/liby.so\0");
        let fd = machine.call(2, [path, 2, 0, 0, 0, 0]).unwrap(); // O_RDWR
        for _ in 0..100 {
            let at = machine
                .call(9, [0, 4096, 1, MAP_PRIVATE as u64, fd, 0])
                .unwrap();
            machine.call(11, [at, 4096, 0, 0, 0, 0]).unwrap(); // munmap
        }
        let shared = machine
            .call(9, [0, 4096, 3, MAP_SHARED as u64, fd, 0])
            .unwrap();
        assert_eq!(machine.process.memory.files.len(), 1, "one file, one entry");
        let mapped = machine.process.memory.files.values().next().unwrap().node;
        let root = machine.process.vfs.root();
        let plain = machine
            .process
            .vfs
            .resolve(root, b"/data/plain", true)
            .unwrap();
        let context = Context {
            platform: &mut machine.platform,
            process: &mut machine.process,
        };
        assert_eq!(
            shared_mappings_of(&context, mapped),
            [(shared, shared + 4096, 0)]
        );
        // A file no area maps has no mappings to look for.
        assert!(!context.process.memory.mapped_nodes.contains(&plain));
        assert!(!has_shared_mappings(&context, plain));
    }

    #[test]
    fn an_unlinked_file_is_freed_with_its_last_mapping() {
        let mut machine = TestMachine::new();
        let statfs = machine.scratch(120);
        let free_blocks = |machine: &mut TestMachine| {
            let path = machine.put(b"/tmp\0");
            machine.call(137, [path, statfs, 0, 0, 0, 0]).unwrap(); // statfs
            machine.read_u64(statfs + 24) // f_bfree
        };
        let before = free_blocks(&mut machine);
        let path = machine.put(b"/tmp/scratch\0");
        let fd = machine.call(2, [path, 0o102, 0o600, 0, 0, 0]).unwrap(); // O_RDWR|O_CREAT
        let data = machine.put(&[7u8; 256 * 1024]);
        assert_eq!(
            machine.call(1, [fd, data, 256 * 1024, 0, 0, 0]),
            Ok(256 * 1024)
        );
        let first = machine
            .call(9, [0, 128 * 1024, 3, MAP_SHARED as u64, fd, 0])
            .unwrap();
        let second = machine
            .call(9, [0, 128 * 1024, 1, MAP_PRIVATE as u64, fd, 128 * 1024])
            .unwrap();
        machine.call(3, [fd, 0, 0, 0, 0, 0]).unwrap(); // close
        machine.call(87, [path, 0, 0, 0, 0, 0]).unwrap(); // unlink
        let held = free_blocks(&mut machine);
        assert!(held < before, "mapped, the file keeps its blocks");
        assert_eq!(machine.memory_at(first, 4), [7; 4]);
        machine.call(11, [first, 128 * 1024, 0, 0, 0, 0]).unwrap(); // munmap
        assert_eq!(free_blocks(&mut machine), held, "one mapping is left");
        assert_eq!(machine.memory_at(second, 4), [7; 4]);
        machine.call(11, [second, 128 * 1024, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            free_blocks(&mut machine),
            before,
            "the last mapping gone, so is the file"
        );
        assert!(machine.process.memory.files.is_empty());
        assert!(machine.process.memory.mapped_nodes.is_empty());
    }

    #[test]
    fn stores_to_a_shared_mapping_reach_the_file_whatever_takes_the_mapping_away() {
        let mut machine = TestMachine::new();
        let path = machine.put(b"/tmp/shared\0");
        let fd = machine.call(2, [path, 0o102, 0o600, 0, 0, 0]).unwrap(); // O_RDWR|O_CREAT
        machine.call(77, [fd, 4 * 4096, 0, 0, 0, 0]).unwrap(); // ftruncate
        let read_back = |machine: &mut TestMachine, offset: u64| {
            let buffer = machine.scratch(1);
            machine.call(17, [fd, buffer, 1, offset, 0, 0]).unwrap(); // pread64
            machine.memory_at(buffer, 1)[0]
        };
        // MAP_FIXED over it.
        let at = machine
            .call(9, [0, 4096, 3, MAP_SHARED as u64, fd, 0])
            .unwrap();
        machine.write_bytes(at, b"A");
        machine
            .call(
                9,
                [
                    at,
                    4096,
                    3,
                    (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) as u64,
                    u64::MAX,
                    0,
                ],
            )
            .unwrap();
        assert_eq!(read_back(&mut machine, 0), b'A', "MAP_FIXED over it");
        // mremap shrinking it.
        let at = machine
            .call(9, [0, 2 * 4096, 3, MAP_SHARED as u64, fd, 4096])
            .unwrap();
        machine.write_bytes(at + 4096, b"B");
        machine
            .call(25, [at, 2 * 4096, 4096, 0, 0, 0]) // mremap
            .unwrap();
        assert_eq!(
            read_back(&mut machine, 2 * 4096),
            b'B',
            "mremap shrinking it"
        );
        // mremap moving it.
        let at = machine
            .call(9, [0, 4096, 3, MAP_SHARED as u64, fd, 3 * 4096])
            .unwrap();
        machine.write_bytes(at, b"C");
        let far = machine.scratch(4 * 4096);
        machine
            .call(25, [at, 4096, 4096, 3, far, 0]) // MREMAP_MAYMOVE | MREMAP_FIXED
            .unwrap();
        assert_eq!(read_back(&mut machine, 3 * 4096), b'C', "mremap moving it");
    }

    #[test]
    fn find_free_goes_top_down_and_skips_areas() {
        let mut memory = space();
        let first = memory.find_free(0x2000, 0).unwrap();
        assert_eq!(first, 0x7000_0000_0000 - 0x2000);
        memory.insert(Vma {
            start: first,
            end: first + 0x2000,
            protection: RW,
            kind: VmaKind::Anonymous,
        });
        assert_eq!(memory.find_free(0x1000, 0), Some(first - 0x1000));
        assert_eq!(memory.find_free(0x1000, 0x1000_0000), Some(0x1000_0000));
        assert_eq!(
            memory.find_free(0x1000, first),
            Some(first - 0x1000),
            "an occupied hint is ignored"
        );
    }

    #[test]
    fn a_growsdown_area_grows_to_a_fault_below_it_within_its_limits() {
        let mut memory = space();
        let stack = Vma {
            start: 0x4000_0000,
            end: 0x4000_1000,
            protection: RW,
            kind: VmaKind::GrowsDown,
        };
        memory.insert(stack);
        // An accessible area 300 pages below: the guard gap is 256 pages.
        memory.insert(Vma {
            start: 0x3fe0_0000,
            end: 0x4000_0000 - 300 * PAGE_SIZE,
            protection: RO,
            kind: VmaKind::Anonymous,
        });
        let added = memory
            .grow_down(0x4000_0000 - 10 * PAGE_SIZE + 5, 8 << 20)
            .unwrap();
        assert_eq!(
            (added.start, added.end),
            (0x4000_0000 - 10 * PAGE_SIZE, 0x4000_0000)
        );
        let grown = memory.find(0x4000_0000 - PAGE_SIZE).copied().unwrap();
        assert_eq!(
            (grown.start, grown.end),
            (0x4000_0000 - 10 * PAGE_SIZE, 0x4000_1000)
        );
        assert_eq!(
            memory.grow_down(0x4000_0000 - 100 * PAGE_SIZE, 0x20 * PAGE_SIZE),
            None,
            "past RLIMIT_STACK"
        );
        assert_eq!(
            memory.grow_down(0x4000_0000 - 250 * PAGE_SIZE, 8 << 20),
            None,
            "into the guard gap above the area below"
        );
        assert!(memory
            .grow_down(0x4000_0000 - 40 * PAGE_SIZE, 8 << 20)
            .is_some());
        // Only MAP_GROWSDOWN areas grow.
        assert_eq!(memory.grow_down(0x3fe0_0000 - PAGE_SIZE, 8 << 20), None);
    }

    #[test]
    fn remove_splits_an_area() {
        let mut memory = space();
        memory.insert(Vma {
            start: 0x10_0000,
            end: 0x10_5000,
            protection: RW,
            kind: VmaKind::Anonymous,
        });
        memory.remove(0x10_1000, 0x10_2000);
        let areas: Vec<(u64, u64)> = memory.vmas().map(|v| (v.start, v.end)).collect();
        assert_eq!(areas, vec![(0x10_0000, 0x10_1000), (0x10_2000, 0x10_5000)]);
    }

    #[test]
    fn protect_splits_then_merges_back() {
        let mut memory = space();
        memory.insert(Vma {
            start: 0x10_0000,
            end: 0x10_4000,
            protection: RW,
            kind: VmaKind::Anonymous,
        });
        memory.protect(0x10_1000, 0x10_2000, RO).unwrap();
        assert_eq!(memory.vmas().count(), 3);
        assert_eq!(memory.find(0x10_1800).unwrap().protection, RO);
        memory.protect(0x10_1000, 0x10_2000, RW).unwrap();
        assert_eq!(memory.vmas().count(), 1);
        assert_eq!(
            memory.protect(0x10_3000, 0x10_6000, RO),
            Err(Errno::ENOMEM),
            "a hole fails"
        );
    }

    #[test]
    fn mmap_anonymous_places_and_backs_memory() {
        let mut machine = TestMachine::new();
        let address = machine
            .call(
                9,
                [
                    0,
                    8192,
                    3,
                    (MAP_PRIVATE | MAP_ANONYMOUS) as u64,
                    u64::MAX,
                    0,
                ],
            )
            .unwrap();
        assert_eq!(address % PAGE_SIZE, 0);
        assert!(machine.is_backed(address, 8192));
        assert_eq!(machine.call(11, [address, 4096, 0, 0, 0, 0]), Ok(0));
        assert!(!machine.is_backed(address, 4096));
        assert!(machine.is_backed(address + 4096, 4096));
    }

    #[test]
    fn mmap_rejects_bad_arguments() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        assert_eq!(
            machine.call(9, [0, 0, 3, anon, 0, 0]),
            Err(Errno::EINVAL),
            "zero length"
        );
        assert_eq!(
            machine.call(9, [0, 4096, 3, MAP_ANONYMOUS as u64, 0, 0]),
            Err(Errno::EINVAL),
            "no type"
        );
        assert!(
            machine.call(9, [0, 4096, 0x80 | 3, anon, 0, 0]).is_ok(),
            "mmap ignores unknown prot bits, as Linux does"
        );
        assert_eq!(
            machine.call(9, [0x1001, 4096, 3, anon | MAP_FIXED as u64, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(9, [0, 4096, 3, MAP_PRIVATE as u64, 7, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(
            machine.call(9, [0, 4096, 3, MAP_PRIVATE as u64, 1, 0]),
            Err(Errno::ENODEV)
        );
        assert_eq!(
            machine.call(9, [0, u64::MAX - 10, 3, anon, 0, 0]),
            Err(Errno::ENOMEM)
        );
    }

    #[test]
    fn map_fixed_noreplace_refuses_to_overlap() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let at = 0x2000_0000u64;
        assert_eq!(
            machine.call(9, [at, 4096, 3, anon | MAP_FIXED_NOREPLACE as u64, 0, 0]),
            Ok(at)
        );
        assert_eq!(
            machine.call(9, [at, 4096, 3, anon | MAP_FIXED_NOREPLACE as u64, 0, 0]),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            machine.call(9, [at, 4096, 1, anon | MAP_FIXED as u64, 0, 0]),
            Ok(at)
        );
    }

    #[test]
    fn brk_grows_shrinks_and_refuses_below_start() {
        let mut machine = TestMachine::new();
        let start = machine.call(12, [0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            machine.call(12, [start + 10_000, 0, 0, 0, 0, 0]),
            Ok(start + 10_000)
        );
        assert!(machine.is_backed(start, 10_000));
        assert_eq!(
            machine.call(12, [start + 100, 0, 0, 0, 0, 0]),
            Ok(start + 100)
        );
        assert!(!machine.is_backed(start + 4096, 4096));
        assert_eq!(
            machine.call(12, [start - 4096, 0, 0, 0, 0, 0]),
            Ok(start + 100)
        );
    }

    #[test]
    fn madvise_dontneed_zeroes() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let address = machine.call(9, [0, 4096, 3, anon, 0, 0]).unwrap();
        machine.write_u64(address, 0xdead_beef);
        assert_eq!(
            machine.call(28, [address, 4096, MADV_DONTNEED as u64, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(address), 0);
        assert_eq!(
            machine.call(28, [address, 4096, 999, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(28, [0x3000_0000, 4096, MADV_NORMAL as u64, 0, 0, 0]),
            Err(Errno::ENOMEM)
        );
    }

    #[test]
    fn mprotect_needs_mapped_memory_and_aligned_start() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let address = machine.call(9, [0, 8192, 3, anon, 0, 0]).unwrap();
        assert_eq!(machine.call(10, [address, 4096, 1, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(10, [address + 1, 4096, 1, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(10, [0x3000_0000, 4096, 1, 0, 0, 0]),
            Err(Errno::ENOMEM)
        );
    }
    #[test]
    fn mm_range_checks_follow_linux() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let address = machine.call(9, [0, 8192, 3, anon, 0, 0]).unwrap();
        assert_eq!(
            machine.call(10, [address, 0, 0x1000, 0, 0, 0]),
            Ok(0),
            "mprotect of nothing succeeds first"
        );
        assert_eq!(
            machine.call(10, [address, 4096, 0x80, 0, 0, 0]),
            Err(Errno::EINVAL),
            "unknown prot bits"
        );
        assert_eq!(
            machine.call(
                10,
                [address, 4096, PROT_READ as u64 | PROT_SEM as u64, 0, 0, 0]
            ),
            Ok(0)
        );
        assert_eq!(
            machine.call(11, [address, u64::MAX - 10, 0, 0, 0, 0]),
            Err(Errno::EINVAL),
            "munmap overflow"
        );
        assert_eq!(
            machine.call(11, [address, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(28, [address + 1, 4096, 999, 0, 0, 0]),
            Err(Errno::EINVAL),
            "advice first"
        );
        assert_eq!(
            machine.call(28, [address, 0, MADV_DONTNEED as u64, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(28, [address, 4096, 18 /* WIPEONFORK */, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(28, [address, u64::MAX - 10, MADV_NORMAL as u64, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn neighbouring_mappings_merge_and_the_count_is_capped() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        for _ in 0..100 {
            machine.call(9, [0, 4096, 0, anon, 0, 0]).unwrap();
        }
        assert_eq!(
            machine.process.memory.vmas().count(),
            1,
            "100 adjacent PROT_NONE pages are one area"
        );
        for index in 0..(MAX_MAP_COUNT as u64 + 10) {
            // One page in every two, so nothing merges.
            let at = 0x1000_0000 + index * 8192;
            if machine
                .call(9, [at, 4096, 0, anon | MAP_FIXED_NOREPLACE as u64, 0, 0])
                .is_err()
            {
                assert_eq!(machine.process.memory.vmas().count(), MAX_MAP_COUNT);
                return;
            }
        }
        panic!("mmap never said ENOMEM");
    }

    #[test]
    fn maps_lines_follow_linux() {
        let mut memory = space();
        memory.insert(Vma {
            start: 0x60_0000,
            end: 0x60_1000,
            protection: RW,
            kind: VmaKind::Heap,
        });
        memory.insert(Vma {
            start: 0x7000_0000,
            end: 0x7000_2000,
            protection: RW,
            kind: VmaKind::Anonymous,
        });
        memory.insert(Vma {
            start: 0x7ffd_0000_0000,
            end: 0x7ffd_0080_0000,
            protection: RW,
            kind: VmaKind::Stack,
        });
        let text = String::from_utf8(memory.maps_text(b"/hello")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "00600000-00601000 rw-p 00000000 00:00 0 {}[heap]",
                " ".repeat(33)
            )
        );
        assert_eq!(
            lines[1], "70000000-70002000 rw-p 00000000 00:00 0 ",
            "anonymous: no name, trailing space"
        );
        assert!(
            lines[2].starts_with("7ffd00000000-7ffd00800000 rw-p ")
                && lines[2].ends_with(" [stack]")
        );
        assert_eq!(lines[2].find("[stack]"), Some(73));
    }

    #[test]
    fn splitting_a_program_area_moves_its_file_offset() {
        let mut memory = space();
        let program = VmaKind::Program {
            file_offset: 0x2000,
        };
        memory.insert(Vma {
            start: 0x40_0000,
            end: 0x40_4000,
            protection: RW,
            kind: program,
        });
        memory.protect(0x40_1000, 0x40_2000, RO).unwrap();
        let offsets: Vec<VmaKind> = memory.vmas().map(|vma| vma.kind).collect();
        assert_eq!(
            offsets,
            vec![
                VmaKind::Program {
                    file_offset: 0x2000
                },
                VmaKind::Program {
                    file_offset: 0x3000
                },
                VmaKind::Program {
                    file_offset: 0x4000
                },
            ]
        );
        memory.protect(0x40_1000, 0x40_2000, RW).unwrap();
        assert_eq!(memory.vmas().count(), 1, "contiguous offsets merge back");
    }

    #[test]
    fn mremap_shrinks_grows_and_moves_with_the_contents() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let address = machine.call(9, [0, 8192, 3, anon, 0, 0]).unwrap();
        machine.write_u64(address, 0x1111);
        machine.write_u64(address + 4096, 0x2222);
        assert_eq!(
            machine.call(25, [address, 8192, 4096, 0, 0, 0]),
            Ok(address),
            "shrink in place"
        );
        assert!(!machine.is_backed(address + 4096, 4096));
        // Block growth in place with a mapping right after it.
        machine
            .call(9, [address + 4096, 4096, 3, anon | MAP_FIXED as u64, 0, 0])
            .unwrap();
        assert_eq!(
            machine.call(25, [address, 4096, 16384, 0, 0, 0]),
            Err(Errno::ENOMEM),
            "no room, no MAYMOVE"
        );
        let moved = machine
            .call(25, [address, 4096, 16384, MREMAP_MAYMOVE as u64, 0, 0])
            .unwrap();
        assert_ne!(moved, address);
        assert_eq!(machine.read_u64(moved), 0x1111, "the contents move along");
        assert_eq!(machine.read_u64(moved + 8192), 0, "the extra is zero");
        assert!(!machine.is_backed(address, 4096), "the old page is gone");
        let fixed = 0x3000_0000u64;
        let flags = (MREMAP_MAYMOVE | MREMAP_FIXED) as u64;
        assert_eq!(
            machine.call(25, [moved, 16384, 16384, flags, fixed, 0]),
            Ok(fixed)
        );
        assert_eq!(machine.read_u64(fixed), 0x1111);
        assert_eq!(
            machine.call(
                25,
                [fixed, 16384, 16384, MREMAP_FIXED as u64, 0x4000_0000, 0]
            ),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(25, [fixed + 1, 4096, 8192, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(25, [fixed, 4096, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(25, [0x5000_0000_0000, 4096, 8192, 1, 0, 0]),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn mincore_reports_residency() {
        let mut machine = TestMachine::new();
        let anon = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
        let address = machine.call(9, [0, 3 * 4096, 3, anon, 0, 0]).unwrap();
        crate::platform::Platform::unmap(&mut machine.platform, address + 4096, 4096); // as if never touched
        let vector = machine.scratch(3);
        assert_eq!(
            machine.call(27, [address, 3 * 4096, vector, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.memory_at(vector, 3), [1, 0, 1]);
        assert_eq!(
            machine.call(27, [address + 1, 4096, vector, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(27, [0x6000_0000, 4096, vector, 0, 0, 0]),
            Err(Errno::ENOMEM)
        );
    }
}
