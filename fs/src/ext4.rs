//! ext4 on a disk, through the `rsext4` crate (=0.9.2; fs/DESIGN.md says why and how it was
//! proved): the `FileSystem` of a volume, and mkfs for the CLI. rsext4 journals every
//! metadata change (JBD2, readable by Linux and e2fsck) and works on inode numbers, which is
//! what `FileSystem` asks; this file adapts names, errors and times, counts open files so an
//! unlinked inode is reaped at its last close, and gives rsext4 a 4 KiB-block device.

use crate::node::*;
use crate::pagecache::{page_of, PageCache, PAGE};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::cell::RefCell;
use rsext4::{
    BlockIo, DeviceCapabilities, DeviceGeometry, DirectoryCursor, Ext4, Ext4Error, Ext4ErrorKind,
    Ext4Result, Ext4Timestamp, FileName, FilePermissions, InodeInfo, InodeMetadataUpdate,
    InodeNumber, MkfsOptions, MountOptions, MountServices, MountedServices, MutationContext,
    NoopObserver, RenameOptions, SectorId, SpecialInodeKind, UnlinkOutcome,
};

/// The inode kind of a special node: a socket (an AF_UNIX socket's file), a fifo, or a
/// device with the number `device` (a Linux dev_t).
fn special_kind(kind: FileType, device: u64) -> Result<SpecialInodeKind, Error> {
    let number = || {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
        let minor = (device & 0xff) | ((device >> 12) & !0xff);
        let fits = |value: u64| u32::try_from(value).map_err(|_| Error::Invalid);
        rsext4::DeviceNumber::new(fits(major)?, fits(minor)?).map_err(|_| Error::Invalid)
    };
    Ok(match kind {
        FileType::Socket => SpecialInodeKind::Socket,
        FileType::Fifo => SpecialInodeKind::Fifo,
        FileType::CharDevice => SpecialInodeKind::CharacterDevice(number()?),
        FileType::BlockDevice => SpecialInodeKind::BlockDevice(number()?),
        _ => return Err(Error::Invalid),
    })
}

/// EXT4_SUPER_MAGIC (include/uapi/linux/magic.h).
pub const EXT4_SUPER_MAGIC: u64 = 0xef53;
/// The block size rsext4 formats with, and the unit of its device I/O here.
const BLOCK: u64 = 4096;

/// A disk: bytes at offsets, as the kernel's virtio-blk or the CLI's image file give them.
pub trait Disk: Send + 'static {
    /// Its size in bytes.
    fn size(&self) -> u64;
    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error>;
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error>;
    /// Makes what was written durable.
    fn flush(&mut self) -> Result<(), Error>;
}

/// The wall clock rsext4 stamps inodes with.
pub type ClockFn = fn() -> Timestamp;

struct Device<D: Disk>(D);

fn io_error(_: Error) -> Ext4Error {
    Ext4Error::io()
}

impl<D: Disk> BlockIo for Device<D> {
    fn write(&mut self, buffer: &[u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        let length = count as usize * BLOCK as usize;
        let data = buffer.get(..length).ok_or_else(Ext4Error::io)?;
        self.0.write(sector.raw() * BLOCK, data).map_err(io_error)
    }

    fn read(&mut self, buffer: &mut [u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        let length = count as usize * BLOCK as usize;
        let data = buffer.get_mut(..length).ok_or_else(Ext4Error::io)?;
        self.0.read(sector.raw() * BLOCK, data).map_err(io_error)
    }

    fn geometry(&self) -> DeviceGeometry {
        DeviceGeometry::new(BLOCK as u32, self.0.size() / BLOCK)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            flush: true,
            ..DeviceCapabilities::default()
        }
    }

    fn flush(&mut self) -> Ext4Result<()> {
        self.0.flush().map_err(io_error)
    }
}

struct Clock(ClockFn);

impl rsext4::Clock for Clock {
    fn now(&self) -> Ext4Result<Ext4Timestamp> {
        let now = (self.0)();
        Ok(Ext4Timestamp::new(now.seconds, now.nanoseconds))
    }
}

fn error(error: Ext4Error) -> Error {
    match error.kind() {
        Ext4ErrorKind::NotFound => Error::NotFound,
        Ext4ErrorKind::AlreadyExists => Error::Exists,
        Ext4ErrorKind::NotDirectory => Error::NotDirectory,
        Ext4ErrorKind::IsDirectory => Error::IsDirectory,
        Ext4ErrorKind::NotEmpty => Error::NotEmpty,
        Ext4ErrorKind::NoSpace | Ext4ErrorKind::QuotaExceeded => Error::NoSpace,
        Ext4ErrorKind::ReadOnly => Error::ReadOnly,
        Ext4ErrorKind::TooManyLinks => Error::TooManyLinks,
        Ext4ErrorKind::Busy => Error::Busy,
        Ext4ErrorKind::PermissionDenied => Error::NotPermitted,
        Ext4ErrorKind::InvalidInput | Ext4ErrorKind::Overflow => Error::Invalid,
        Ext4ErrorKind::FileTooLarge => Error::TooBig,
        _ => Error::Io, // corruption, checksums, an aborted journal, the device
    }
}

/// Computes ext4's CRC32C checksums in plain code even where the CPU has SSE4.2's CRC32
/// instruction: for a kernel under an emulator (QEMU's TCG), where that instruction is the
/// slower of the two (22 us against 5 us per 4 KiB block, measured in a Pith guest).
pub fn prefer_software_checksums() {
    rsext4::crc32c::prefer_software_crc32c();
}

/// Formats `disk` as ext4 (4 KiB blocks, extents, 64bit, metadata_csum, a journal).
pub fn format<D: Disk>(disk: D, clock: ClockFn) -> Result<D, Error> {
    rsext4::format(Device(disk), Clock(clock), MkfsOptions::default())
        .map(|device| device.0)
        .map_err(error)
}

/// A volume cut short: the size its ext4 superblock declares and the size the disk has, when
/// the disk is smaller (an image file truncated, or copied in part). rsext4 refuses such a
/// volume with "superblock geometry is invalid"; this names what is wrong. None for a disk
/// without an ext4 superblock, or one that holds all of its volume.
pub fn cut_short<D: Disk>(disk: &mut D) -> Option<(u64, u64)> {
    let mut superblock = [0u8; 1024];
    disk.read(1024, &mut superblock).ok()?;
    let u32_at = |at: usize| {
        u32::from_le_bytes([
            superblock[at],
            superblock[at + 1],
            superblock[at + 2],
            superblock[at + 3],
        ])
    };
    // s_magic at 0x38; s_log_block_size at 0x18; s_blocks_count_lo at 0x4, _hi at 0x150 with
    // the 64bit feature (INCOMPAT_64BIT, 0x80, in s_feature_incompat at 0x60).
    if u16::from_le_bytes([superblock[0x38], superblock[0x39]]) != 0xef53 {
        return None;
    }
    let log_block_size = u32_at(0x18);
    if log_block_size > 6 {
        return None;
    }
    let high = if u32_at(0x60) & 0x80 != 0 {
        u64::from(u32_at(0x150))
    } else {
        0
    };
    let blocks = (high << 32) | u64::from(u32_at(0x4));
    let declared = blocks.checked_mul(1024u64 << log_block_size)?;
    let actual = disk.size();
    (declared > actual).then_some((declared, actual))
}

type Mounted<D> = Ext4<Device<D>, MountedServices<(), NoopObserver, ()>>;

/// A mounted ext4 volume.
pub struct Ext4Fs<D: Disk> {
    fs: RefCell<Mounted<D>>,
    /// Open files per inode, and unlinked inodes to reap at their last close.
    open: BTreeMap<Ino, u32>,
    orphans: BTreeSet<Ino>,
    /// File pages above rsext4 (`with_page_cache`; none by default).
    pages: PageCache,
}

impl<D: Disk> Ext4Fs<D> {
    /// Mounts `disk`, replaying its journal; a disk that holds no ext4, or a damaged one, is
    /// refused with rsext4's reason (its Display text is in the error's kind).
    pub fn mount(disk: D, clock: ClockFn) -> Result<Ext4Fs<D>, (Error, Ext4ErrorKind)> {
        let services = MountServices::new(Clock(clock), (), NoopObserver);
        match Ext4::mount(Device(disk), services, MountOptions::read_write()) {
            Ok(fs) => Ok(Ext4Fs {
                fs: RefCell::new(fs),
                open: BTreeMap::new(),
                orphans: BTreeSet::new(),
                pages: PageCache::new(0),
            }),
            Err(failure) => Err((error(failure), failure.kind())),
        }
    }

    /// Mounts `disk` read-only, replaying a pending journal in memory only: for inspection.
    pub fn mount_read_only(disk: D, clock: ClockFn) -> Result<Ext4Fs<D>, (Error, Ext4ErrorKind)> {
        let services = MountServices::new(Clock(clock), (), NoopObserver);
        let options = MountOptions {
            readonly: true,
            replay_journal: true,
            block_validity: true,
        };
        match Ext4::mount(Device(disk), services, options) {
            Ok(fs) => Ok(Ext4Fs {
                fs: RefCell::new(fs),
                open: BTreeMap::new(),
                orphans: BTreeSet::new(),
                pages: PageCache::new(0),
            }),
            Err(failure) => Err((error(failure), failure.kind())),
        }
    }

    /// Reads file pages through a page cache of `bytes` (the kernel's; the host tools read a
    /// file once and need none).
    pub fn with_page_cache(mut self, bytes: u64) -> Ext4Fs<D> {
        self.pages = PageCache::new(bytes);
        self
    }

    /// Reads `buffer.len()` bytes at `offset` (within the file: the caller has clamped it to
    /// the size) from rsext4.
    fn read_uncached(
        &mut self,
        number: InodeNumber,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, Error> {
        let mut done = 0;
        while done < buffer.len() {
            let got = self
                .fs
                .get_mut()
                .read_inode(number, offset + done as u64, &mut buffer[done..])
                .map_err(error)?;
            if got == 0 {
                break;
            }
            done += got;
        }
        Ok(done)
    }

    /// Reads through the page cache. A run of missing pages that the request covers whole
    /// (or up to the end of the file) is read from rsext4 in one call, straight into `buffer`,
    /// and kept; a page the request only partly covers is read alone. `buffer` ends at or
    /// before `size`.
    fn read_cached(
        &mut self,
        ino: Ino,
        number: InodeNumber,
        size: u64,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, Error> {
        let page_size = PAGE as u64;
        let end = offset + buffer.len() as u64;
        let mut position = offset;
        while position < end {
            let index = position / page_size;
            let page_start = index * page_size;
            let within = (position - page_start) as usize;
            let at = (position - offset) as usize;
            if let Some(page) = self.pages.get(ino, index) {
                let length = (PAGE - within).min((end - position) as usize);
                buffer[at..at + length].copy_from_slice(&page[within..within + length]);
                position += length as u64;
                continue;
            }
            let covered = |page: u64| {
                let page_end = (page + 1) * page_size;
                page_end <= end || (end == size && page * page_size < size)
            };
            let mut last = index;
            if within == 0 {
                while last * page_size < size
                    && covered(last)
                    && (last == index || self.pages.get(ino, last).is_none())
                {
                    last += 1;
                }
            }
            if last > index {
                let run_end = (last * page_size).min(size);
                let run = &mut buffer[at..at + (run_end - page_start) as usize];
                self.read_uncached(number, page_start, run)?;
                for (page, bytes) in (index..last).zip(run.chunks(PAGE)) {
                    self.pages.insert(ino, page, page_of(bytes));
                }
                position = run_end;
                continue;
            }
            let valid = (size - page_start).min(page_size) as usize;
            let mut page = page_of(&[]);
            self.read_uncached(number, page_start, &mut page.0[..valid])?;
            let length = (PAGE - within).min((end - position) as usize);
            buffer[at..at + length].copy_from_slice(&page.0[within..within + length]);
            self.pages.insert(ino, index, page);
            position += length as u64;
        }
        Ok(buffer.len())
    }

    fn inode(&self, ino: Ino) -> Result<InodeInfo, Error> {
        self.fs.borrow_mut().inode(number(ino)?).map_err(error)
    }

    /// Reaps `outcome`'s inode now if it has no links left and is not open.
    fn settle_unlink(&mut self, outcome: UnlinkOutcome) -> Result<(), Error> {
        if !outcome.requires_reap() {
            return Ok(());
        }
        let ino = outcome.inode.raw() as Ino;
        if self.open.get(&ino).copied().unwrap_or(0) > 0 {
            self.orphans.insert(ino);
            return Ok(());
        }
        self.reap(outcome.inode)
    }

    /// Frees an unlinked inode's blocks, and commits at once. rsext4 0.9.2 hands blocks freed
    /// in the running transaction to the next allocation; a crash before that transaction
    /// commits would bring the deleted file back holding another file's data (found by the
    /// cut test below). Committing the free first closes that window, at the cost of a commit
    /// per file deletion.
    fn reap(&mut self, inode: InodeNumber) -> Result<(), Error> {
        self.pages.forget(inode.raw() as Ino);
        let fs = self.fs.get_mut();
        fs.reap_unlinked_inode(inode).map_err(error)?;
        fs.sync().map_err(error)
    }
}

/// Blocks a write leaves free for the extent tree's own blocks (an index block per ~340
/// extents, and a margin).
const EXTENT_TREE_RESERVE: u64 = 16;

/// How much of a write of `length` bytes at `offset`, to a file of `size`, fits in
/// `free_blocks`: all of it, or the part that does (a short write, as Linux gives when the disk
/// fills mid-write), or 0 for ENOSPC. rsext4 0.9.2 leaks the blocks of a write that runs out
/// of space midway (found by the disk-full boot test: e2fsck then finds them marked in use and
/// owned by nothing), so Pith never lets a write get that far. Blocks below the end of the
/// file count as allocated: a write into a hole of a sparse file can still reach rsext4's
/// own ENOSPC.
fn bytes_that_fit(
    size: u64,
    offset: u64,
    length: usize,
    block_size: u64,
    free_blocks: u64,
) -> usize {
    let end = offset.saturating_add(length as u64);
    let allocated_end = size.div_ceil(block_size);
    let first_new = (offset / block_size).max(allocated_end);
    let new_blocks = end.div_ceil(block_size).saturating_sub(first_new);
    let needed = new_blocks + new_blocks / 256 + EXTENT_TREE_RESERVE;
    if needed <= free_blocks {
        return length;
    }
    let room = free_blocks.saturating_sub(EXTENT_TREE_RESERVE);
    let room = room - room / 257;
    let fits_end = (first_new + room).saturating_mul(block_size);
    fits_end.saturating_sub(offset).min(length as u64) as usize
}

fn number(ino: Ino) -> Result<InodeNumber, Error> {
    InodeNumber::from_u64(ino).map_err(|_| Error::NotFound)
}

fn name(bytes: &[u8]) -> Result<FileName<'_>, Error> {
    if bytes.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    FileName::new(bytes).map_err(|_| Error::Invalid)
}

fn kind_of(mode: u16) -> FileType {
    match u32::from(mode) & 0o170000 {
        0o040000 => FileType::Directory,
        0o120000 => FileType::Symlink,
        0o020000 => FileType::CharDevice,
        0o060000 => FileType::BlockDevice,
        0o010000 => FileType::Fifo,
        0o140000 => FileType::Socket,
        _ => FileType::Regular,
    }
}

fn metadata_of(info: &InodeInfo) -> Metadata {
    let time = |seconds: u32| Timestamp {
        seconds: i64::from(seconds),
        nanoseconds: 0,
    };
    Metadata {
        ino: info.number.raw() as Ino,
        kind: kind_of(info.mode),
        permissions: u32::from(info.mode) & 0o7777,
        links: u32::from(info.links),
        uid: info.uid,
        gid: info.gid,
        size: info.size,
        blocks: info.blocks,
        accessed: time(info.atime),
        modified: time(info.mtime),
        changed: time(info.ctime),
        // A device node's number, as a Linux dev_t.
        device: info.device_number.map_or(0, |number| {
            let (major, minor) = (u64::from(number.major()), u64::from(number.minor()));
            ((major & 0xfff) << 8)
                | ((major & !0xfff) << 32)
                | (minor & 0xff)
                | ((minor & !0xff) << 12)
        }),
    }
}

fn context(creation: &Creation) -> MutationContext {
    // The caller has applied the umask already.
    MutationContext::new(creation.uid, creation.gid, 0, 0)
}

fn permissions(bits: u32) -> Result<FilePermissions, Error> {
    FilePermissions::new((bits & 0o7777) as u16).map_err(|_| Error::Invalid)
}

impl<D: Disk> FileSystem for Ext4Fs<D> {
    fn root(&self) -> Ino {
        self.fs.borrow().root_inode().raw() as Ino
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, Error> {
        Ok(metadata_of(&self.inode(ino)?))
    }

    fn lookup(&self, dir: Ino, child: &[u8]) -> Result<Ino, Error> {
        if child == b"." {
            return Ok(dir);
        }
        let found = self
            .fs
            .borrow_mut()
            .lookup_child(number(dir)?, name(child)?)
            .map_err(error)?;
        found
            .map(|info| info.number.raw() as Ino)
            .ok_or(Error::NotFound)
    }

    fn create(
        &mut self,
        dir: Ino,
        child: &[u8],
        node: NewNode,
        creation: Creation,
    ) -> Result<Ino, Error> {
        let (parent, child) = (number(dir)?, name(child)?);
        let fs = self.fs.get_mut();
        let info = match node {
            NewNode::Regular => fs.create_regular_file(
                context(&creation),
                parent,
                child,
                permissions(creation.permissions)?,
            ),
            NewNode::Directory => fs.create_directory(
                context(&creation),
                parent,
                child,
                permissions(creation.permissions)?,
            ),
            NewNode::Symlink(target) => {
                fs.create_symlink(context(&creation), parent, child, &target)
            }
            NewNode::Special(kind, device) => fs.create_special_inode(
                context(&creation),
                parent,
                child,
                permissions(creation.permissions)?,
                special_kind(kind, device)?,
            ),
        }
        .map_err(error)?;
        Ok(info.number.raw() as Ino)
    }

    fn link(&mut self, dir: Ino, child: &[u8], target: Ino, _now: Timestamp) -> Result<(), Error> {
        self.fs
            .get_mut()
            .hard_link(number(target)?, number(dir)?, name(child)?)
            .map(|_| ())
            .map_err(error)
    }

    fn unlink(&mut self, dir: Ino, child: &[u8], _now: Timestamp) -> Result<(), Error> {
        if self.metadata(self.lookup(dir, child)?)?.kind == FileType::Directory {
            return Err(Error::IsDirectory);
        }
        let outcome = self
            .fs
            .get_mut()
            .unlink(number(dir)?, name(child)?)
            .map_err(error)?;
        self.settle_unlink(outcome)
    }

    fn rmdir(&mut self, dir: Ino, child: &[u8], _now: Timestamp) -> Result<(), Error> {
        match child {
            b"." => return Err(Error::Invalid),
            b".." => return Err(Error::NotEmpty),
            _ => {}
        }
        if self.metadata(self.lookup(dir, child)?)?.kind != FileType::Directory {
            return Err(Error::NotDirectory);
        }
        let outcome = self
            .fs
            .get_mut()
            .remove_empty_directory(number(dir)?, name(child)?)
            .map_err(error)?;
        self.settle_unlink(outcome)
    }

    fn rename(
        &mut self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        mode: RenameMode,
        _now: Timestamp,
    ) -> Result<(), Error> {
        let options = match mode {
            RenameMode::Replace => RenameOptions::REPLACE,
            RenameMode::NoReplace => RenameOptions::NO_REPLACE,
            RenameMode::Exchange => RenameOptions::EXCHANGE,
        };
        let outcome = self
            .fs
            .get_mut()
            .rename(
                number(from_dir)?,
                name(from_name)?,
                number(to_dir)?,
                name(to_name)?,
                options,
            )
            .map_err(error)?;
        match outcome.replaced {
            Some(replaced) => self.settle_unlink(replaced),
            None => Ok(()),
        }
    }

    fn read(&mut self, ino: Ino, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        let info = self.inode(ino)?;
        match kind_of(info.mode) {
            FileType::Regular => {}
            FileType::Directory => return Err(Error::IsDirectory),
            _ => return Err(Error::Invalid),
        }
        if offset >= info.size {
            return Ok(0);
        }
        let want = (buffer.len() as u64).min(info.size - offset) as usize;
        if self.pages.enabled() {
            return self.read_cached(ino, info.number, info.size, offset, &mut buffer[..want]);
        }
        self.read_uncached(info.number, offset, &mut buffer[..want])
    }

    fn write(
        &mut self,
        ino: Ino,
        offset: u64,
        data: &[u8],
        _now: Timestamp,
    ) -> Result<usize, Error> {
        let info = self.inode(ino)?;
        match kind_of(info.mode) {
            FileType::Regular => {}
            FileType::Directory => return Err(Error::IsDirectory),
            _ => return Err(Error::Invalid),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let stats = self.fs.get_mut().statfs();
        let fits = bytes_that_fit(
            info.size,
            offset,
            data.len(),
            stats.block_size,
            stats.free_blocks,
        );
        if fits == 0 {
            return Err(Error::NoSpace);
        }
        self.fs
            .get_mut()
            .write_inode(info.number, offset, &data[..fits])
            .map_err(error)?;
        self.pages.wrote(ino, offset, &data[..fits]);
        Ok(fits)
    }

    fn truncate(&mut self, ino: Ino, size: u64, _now: Timestamp) -> Result<(), Error> {
        let shrinking = size < self.inode(ino)?.size;
        self.pages.truncated(ino, size);
        let fs = self.fs.get_mut();
        fs.truncate_inode(number(ino)?, size).map_err(error)?;
        if shrinking {
            // Freed blocks: committed before anything can reuse them (see `reap`).
            fs.sync().map_err(error)?;
        }
        Ok(())
    }

    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Error> {
        let info = self.inode(ino)?;
        if kind_of(info.mode) != FileType::Symlink {
            return Err(Error::Invalid);
        }
        let mut target = alloc::vec![0u8; info.size.min(4096) as usize];
        let got = self
            .fs
            .borrow_mut()
            .read_inode(info.number, 0, &mut target)
            .map_err(error)?;
        target.truncate(got);
        Ok(target)
    }

    fn read_dir(&self, dir: Ino, position: u64) -> Result<Option<(DirEntry, u64)>, Error> {
        // The entries from the start, then the one at `position`: directories here are small,
        // and positions stay plain numbers for getdents64's d_off.
        let mut fs = self.fs.borrow_mut();
        let mut cursor = DirectoryCursor::Start;
        let mut index = 0u64;
        loop {
            let batch = fs.read_directory(number(dir)?, cursor, 64).map_err(error)?;
            if batch.is_empty() {
                return Ok(None);
            }
            for entry in &batch {
                if index == position {
                    let ino = entry.inode.raw() as Ino;
                    let kind = match entry.name.as_slice() {
                        b"." | b".." => FileType::Directory,
                        _ => fs
                            .inode(entry.inode)
                            .map(|info| kind_of(info.mode))
                            .map_err(error)?,
                    };
                    return Ok(Some((
                        DirEntry {
                            ino,
                            kind,
                            name: entry.name.clone(),
                        },
                        position + 1,
                    )));
                }
                index += 1;
            }
            cursor = batch
                .last()
                .map_or(DirectoryCursor::End, |entry| entry.next_cursor);
            if cursor == DirectoryCursor::End {
                return Ok(None);
            }
        }
    }

    fn set_attributes(&mut self, ino: Ino, changes: Changes, _now: Timestamp) -> Result<(), Error> {
        let info = self.inode(ino)?;
        let time = |time: Timestamp| Ext4Timestamp::new(time.seconds, time.nanoseconds);
        let owner = match (changes.uid, changes.gid) {
            (None, None) => None,
            (uid, gid) => Some((uid.unwrap_or(info.uid), gid.unwrap_or(info.gid))),
        };
        let update = InodeMetadataUpdate {
            permissions: changes.permissions.map(permissions).transpose()?,
            owner,
            atime: changes.accessed.map(time),
            mtime: changes.modified.map(time),
            ..InodeMetadataUpdate::default()
        };
        self.fs
            .get_mut()
            .update_inode_metadata(info.number, update)
            .map(|_| ())
            .map_err(error)
    }

    fn sync(&mut self, _ino: Option<Ino>) -> Result<(), Error> {
        // rsext4 has no per-file fsync: a commit of the whole journal and a device flush.
        self.fs.get_mut().sync().map_err(error)
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        // Unlinked files still open die with the program: reap them, then commit. Not an
        // unmount: a power cut while rsext4 0.9.2 unmounts (its checkpoint writes home
        // blocks whose checksums hang together only once all are written) can leave a volume
        // it will not mount again (found by the cut test below), while a committed journal
        // always replays. The next mount replays it, as after any stop.
        for ino in core::mem::take(&mut self.orphans) {
            if let Ok(inode) = number(ino) {
                let _ = self.fs.get_mut().reap_unlinked_inode(inode);
            }
        }
        self.open.clear();
        self.fs.get_mut().sync().map_err(error)
    }

    /// Commits the journal and leaves the volume clean (no replay at the next mount). A cut
    /// during it can leave a volume rsext4 will not mount (see `shutdown`): for the host,
    /// where a failed build deletes the image.
    fn unmount(&mut self) -> Result<(), Error> {
        self.shutdown()?;
        self.fs.get_mut().unmount().map_err(error)
    }

    fn stats(&self) -> FsStats {
        let stats = self.fs.borrow().statfs();
        FsStats {
            magic: EXT4_SUPER_MAGIC,
            block_size: stats.block_size,
            blocks: stats.total_blocks,
            free_blocks: stats.free_blocks,
            files: u64::from(stats.total_inodes),
            free_files: u64::from(stats.free_inodes),
            name_max: NAME_MAX as u64,
        }
    }

    fn seek_data(&self, ino: Ino, offset: u64, hole: bool) -> Result<Option<u64>, Error> {
        // Without an extent query here: data everywhere up to the size, a hole at its end.
        let size = self.inode(ino)?.size;
        if offset >= size {
            return Ok(None);
        }
        Ok(Some(if hole { size } else { offset }))
    }

    fn open(&mut self, ino: Ino) {
        *self.open.entry(ino).or_insert(0) += 1;
    }

    fn close(&mut self, ino: Ino) {
        let left = match self.open.get_mut(&ino) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count
            }
            None => 0,
        };
        if left == 0 {
            self.open.remove(&ino);
            if self.orphans.remove(&ino) {
                if let Ok(inode) = number(ino) {
                    let _ = self.reap(inode);
                }
            }
        }
    }
}

/// A block a `CachedDisk` keeps: page-aligned, so the kernel's allocator gives it a frame.
#[repr(C, align(4096))]
struct CachedBlock([u8; BLOCK as usize]);

/// A read cache in front of a disk: 4 KiB blocks, at most `capacity` of them, the oldest
/// dropped first. Writes go through to the disk at once (and update what is cached), so the
/// order of writes and flushes the journal relies on is the disk's own.
pub struct CachedDisk<D: Disk> {
    inner: D,
    blocks: BTreeMap<u64, alloc::boxed::Box<CachedBlock>>,
    order: alloc::collections::VecDeque<u64>,
    capacity: usize,
}

impl<D: Disk> CachedDisk<D> {
    pub fn new(inner: D, capacity_bytes: u64) -> CachedDisk<D> {
        CachedDisk {
            inner,
            blocks: BTreeMap::new(),
            order: alloc::collections::VecDeque::new(),
            capacity: ((capacity_bytes / BLOCK) as usize).max(16),
        }
    }

    fn remember(&mut self, index: u64, bytes: &[u8]) {
        if let Some(block) = self.blocks.get_mut(&index) {
            block.0.copy_from_slice(bytes);
            return;
        }
        // At capacity, the oldest block's buffer is taken over (no free and allocation).
        // `order` may name blocks already dropped (`forget`): those are skipped.
        let mut reused = None;
        while self.blocks.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    if let Some(block) = self.blocks.remove(&oldest) {
                        reused = Some(block);
                    }
                }
                None => break,
            }
        }
        let mut block =
            reused.unwrap_or_else(|| alloc::boxed::Box::new(CachedBlock([0; BLOCK as usize])));
        block.0.copy_from_slice(bytes);
        self.blocks.insert(index, block);
        self.order.push_back(index);
    }

    /// Drops the blocks [first, last) from the cache; their names stay in `order` until
    /// they come to its front, or until the forgotten outnumber the kept.
    fn forget(&mut self, first: u64, last: u64) {
        for block in first..last {
            self.blocks.remove(&block);
        }
        if self.order.len() > 2 * self.capacity {
            let blocks = &self.blocks;
            self.order.retain(|block| blocks.contains_key(block));
        }
    }
}

impl<D: Disk> Disk for CachedDisk<D> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error> {
        if !offset.is_multiple_of(BLOCK) || !(buffer.len() as u64).is_multiple_of(BLOCK) {
            return self.inner.read(offset, buffer);
        }
        let first = offset / BLOCK;
        let count = buffer.len() / BLOCK as usize;
        let mut at = 0;
        while at < count {
            if let Some(block) = self.blocks.get(&(first + at as u64)) {
                buffer[at * BLOCK as usize..(at + 1) * BLOCK as usize].copy_from_slice(&block.0);
                at += 1;
                continue;
            }
            // A run of misses: one read from the disk.
            let mut end = at + 1;
            while end < count && !self.blocks.contains_key(&(first + end as u64)) {
                end += 1;
            }
            let run = &mut buffer[at * BLOCK as usize..end * BLOCK as usize];
            self.inner.read((first + at as u64) * BLOCK, run)?;
            for index in at..end {
                let bytes = &buffer[index * BLOCK as usize..(index + 1) * BLOCK as usize];
                let copy: [u8; BLOCK as usize] = match bytes.try_into() {
                    Ok(copy) => copy,
                    Err(_) => continue,
                };
                self.remember(first + index as u64, &copy);
            }
            at = end;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.inner.write(offset, data)?;
        if offset.is_multiple_of(BLOCK) && (data.len() as u64).is_multiple_of(BLOCK) {
            // What was just written is what will be read next, often (a file read back, the
            // journal's blocks checkpointed): keep it.
            for (index, bytes) in data.chunks(BLOCK as usize).enumerate() {
                self.remember(offset / BLOCK + index as u64, bytes);
            }
        } else {
            // An unaligned write (the superblock, at 1024): drop what it touches rather than
            // patch it.
            let first = offset / BLOCK;
            let last = (offset + data.len() as u64).div_ceil(BLOCK);
            self.forget(first, last);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use std::sync::Mutex;

    #[derive(Clone)]
    struct MemoryDisk(Arc<Mutex<Vec<u8>>>);

    impl Disk for MemoryDisk {
        fn size(&self) -> u64 {
            self.0.lock().unwrap().len() as u64
        }
        fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error> {
            let data = self.0.lock().unwrap();
            let range = offset as usize..offset as usize + buffer.len();
            buffer.copy_from_slice(data.get(range).ok_or(Error::Io)?);
            Ok(())
        }
        fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
            let mut data = self.0.lock().unwrap();
            let range = offset as usize..offset as usize + bytes.len();
            data.get_mut(range).ok_or(Error::Io)?.copy_from_slice(bytes);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    fn clock() -> Timestamp {
        Timestamp {
            seconds: 1_700_000_000,
            nanoseconds: 0,
        }
    }

    const CREATE: Creation = Creation {
        permissions: 0o640,
        uid: 7,
        gid: 8,
        now: Timestamp {
            seconds: 0,
            nanoseconds: 0,
        },
    };

    /// Random writes, truncates, reads, unlinks and re-creates (which reuse inode numbers)
    /// through a page cache much smaller than the files, against a model of each file; then
    /// the same volume mounted without the cache reads the same bytes.
    #[test]
    fn the_page_cache_reads_what_a_model_of_the_files_holds() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 64 << 20])));
        let disk = format(disk, clock).unwrap();
        let mut fs = Ext4Fs::mount(disk.clone(), clock)
            .map_err(|e| e.0)
            .unwrap()
            .with_page_cache(8 * PAGE as u64);
        let root = fs.root();
        let names: [&[u8]; 3] = [b"a", b"b", b"c"];
        let mut inodes: Vec<Ino> = names
            .iter()
            .map(|name| fs.create(root, name, NewNode::Regular, CREATE).unwrap())
            .collect();
        let mut model: Vec<Vec<u8>> = alloc::vec![Vec::new(); 3];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for step in 0..3000u64 {
            let file = next(3) as usize;
            let ino = inodes[file];
            match next(10) {
                0..=3 => {
                    let offset = next(64 * 1024);
                    let length = 1 + next(3 * PAGE as u64) as usize;
                    let data: Vec<u8> = (0..length).map(|i| (step as usize + i) as u8).collect();
                    assert_eq!(fs.write(ino, offset, &data, CREATE.now), Ok(length));
                    let end = offset as usize + length;
                    if model[file].len() < end {
                        model[file].resize(end, 0);
                    }
                    model[file][offset as usize..end].copy_from_slice(&data);
                }
                4 => {
                    let size = next(64 * 1024);
                    fs.truncate(ino, size, CREATE.now).unwrap();
                    model[file].resize(size as usize, 0);
                }
                5 => {
                    fs.unlink(root, names[file], CREATE.now).unwrap();
                    inodes[file] = fs
                        .create(root, names[file], NewNode::Regular, CREATE)
                        .unwrap();
                    model[file].clear();
                }
                _ => {
                    // Half of the reads page-aligned, to take the cold path straight into
                    // the caller's buffer.
                    let (offset, length) = if next(2) == 0 {
                        (next(18) * PAGE as u64, (1 + next(6)) as usize * PAGE)
                    } else {
                        (next(70 * 1024), 1 + next(4 * PAGE as u64) as usize)
                    };
                    let mut buffer = alloc::vec![0u8; length];
                    let got = fs.read(ino, offset, &mut buffer).unwrap();
                    let expected = model[file].get(offset as usize..).unwrap_or(&[]);
                    let expected = &expected[..expected.len().min(buffer.len())];
                    assert_eq!(
                        &buffer[..got],
                        expected,
                        "step {step}: file {file} at {offset}"
                    );
                }
            }
        }
        fs.shutdown().unwrap();
        let mut uncached = Ext4Fs::mount(disk, clock).map_err(|e| e.0).unwrap();
        for (file, name) in names.iter().enumerate() {
            let ino = uncached.lookup(root, name).unwrap();
            let mut buffer = alloc::vec![0u8; 80 * 1024];
            let got = uncached.read(ino, 0, &mut buffer).unwrap();
            assert_eq!(
                &buffer[..got],
                &model[file][..],
                "file {file} after a remount"
            );
        }
    }

    #[test]
    fn special_nodes_are_made_and_kept() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 32 << 20])));
        let disk = format(disk, clock).unwrap();
        let null = (1 << 8) | 3; // makedev(1, 3)
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let socket = NewNode::Special(FileType::Socket, 0);
            fs.create(root, b"server.sock", socket, CREATE).unwrap();
            let fifo = NewNode::Special(FileType::Fifo, 0);
            fs.create(root, b"queue", fifo, CREATE).unwrap();
            let device = NewNode::Special(FileType::CharDevice, null);
            fs.create(root, b"null", device, CREATE).unwrap();
            fs.sync(None).unwrap();
        }
        let fs = Ext4Fs::mount(disk, clock).map_err(|e| e.0).unwrap();
        let root = fs.root();
        let kind = |name: &[u8]| fs.metadata(fs.lookup(root, name).unwrap()).unwrap();
        assert_eq!(kind(b"server.sock").kind, FileType::Socket);
        assert_eq!(kind(b"queue").kind, FileType::Fifo);
        assert_eq!(kind(b"null").kind, FileType::CharDevice);
        assert_eq!(kind(b"null").device, null);
    }

    #[test]
    fn a_formatted_volume_keeps_files_across_mounts() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 32 << 20])));
        let disk = format(disk, clock).unwrap();
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let dir = fs
                .create(root, b"data", NewNode::Directory, CREATE)
                .unwrap();
            let file = fs
                .create(dir, b"dump.rdb", NewNode::Regular, CREATE)
                .unwrap();
            assert_eq!(fs.write(file, 0, b"REDIS0011", CREATE.now), Ok(9));
            assert_eq!(
                fs.write(file, 5, b"", CREATE.now),
                Ok(0),
                "write(fd, buf, 0) is 0"
            );
            assert_eq!(fs.write(file, 100_000, b"end", CREATE.now), Ok(3));
            fs.create(
                root,
                b"link",
                NewNode::Symlink(b"data/dump.rdb".to_vec()),
                CREATE,
            )
            .unwrap();
            let doomed = fs.create(dir, b"tmp", NewNode::Regular, CREATE).unwrap();
            fs.open(doomed);
            fs.unlink(dir, b"tmp", CREATE.now).unwrap();
            assert_eq!(
                fs.metadata(doomed).unwrap().links,
                0,
                "open, so not reaped yet"
            );
            fs.close(doomed);
            fs.sync(None).unwrap();
            fs.unmount().unwrap();
        }
        let fs = Ext4Fs::mount(disk, clock).map_err(|e| e.0).unwrap();
        let root = fs.root();
        let dir = fs.lookup(root, b"data").unwrap();
        let file = fs.lookup(dir, b"dump.rdb").unwrap();
        let metadata = fs.metadata(file).unwrap();
        assert_eq!(
            (
                metadata.kind,
                metadata.permissions,
                metadata.uid,
                metadata.gid,
                metadata.size
            ),
            (FileType::Regular, 0o640, 7, 8, 100_003)
        );
        let mut fs = fs;
        let mut buffer = [0u8; 9];
        assert_eq!(fs.read(file, 0, &mut buffer), Ok(9));
        assert_eq!(&buffer, b"REDIS0011");
        assert_eq!(fs.read(file, 50_000, &mut buffer), Ok(9));
        assert_eq!(buffer, [0; 9], "the hole reads as zeros");
        assert_eq!(
            fs.read_link(fs.lookup(root, b"link").unwrap()).unwrap(),
            b"data/dump.rdb"
        );
        assert_eq!(fs.lookup(dir, b"tmp"), Err(Error::NotFound));
        let names: Vec<Vec<u8>> = (0..)
            .map_while(|position| fs.read_dir(dir, position).unwrap())
            .map(|(entry, _)| entry.name)
            .collect();
        assert!(names.contains(&b"dump.rdb".to_vec()) && names.contains(&b"..".to_vec()));
        assert_eq!(fs.lookup(dir, b".."), Ok(root));
        assert_eq!(fs.rmdir(root, b"data", CREATE.now), Err(Error::NotEmpty));
        assert_eq!(fs.stats().magic, EXT4_SUPER_MAGIC);
    }

    /// A disk that records every write and flush, for cutting the stream at any point.
    #[derive(Clone)]
    struct RecordingDisk(Arc<Mutex<Recording>>);

    struct Recording {
        data: Vec<u8>,
        log: Vec<Option<(u64, Vec<u8>)>>, // None: a flush
    }

    impl Disk for RecordingDisk {
        fn size(&self) -> u64 {
            self.0.lock().unwrap().data.len() as u64
        }
        fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error> {
            let state = self.0.lock().unwrap();
            let range = offset as usize..offset as usize + buffer.len();
            buffer.copy_from_slice(state.data.get(range).ok_or(Error::Io)?);
            Ok(())
        }
        fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
            let mut state = self.0.lock().unwrap();
            let range = offset as usize..offset as usize + bytes.len();
            state
                .data
                .get_mut(range)
                .ok_or(Error::Io)?
                .copy_from_slice(bytes);
            state.log.push(Some((offset, bytes.to_vec())));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Error> {
            self.0.lock().unwrap().log.push(None);
            Ok(())
        }
    }

    fn content(number: u64) -> Vec<u8> {
        let length = (number * 7919) % 70_000 + 1;
        (0..length).map(|at| (at ^ number) as u8).collect()
    }

    /// The power cut: a workload of creates, writes, renames and unlinks with a sync now and
    /// then, its block writes recorded; the volume cut after N of them, for many N. Each cut
    /// mounts (the journal replays), holds every file synced and not touched since with its
    /// exact content, unmounts cleanly, and (where e2fsprogs is installed) passes e2fsck.
    #[test]
    fn every_synced_file_survives_a_cut_anywhere_in_the_write_stream() {
        let (base, disk) = recording_volume();
        // After each sync: the files that must be there from then on (until touched again),
        // by the index of the last write before that sync.
        type Files = Vec<(Vec<u8>, Vec<u8>)>;
        let mut checkpoints: Vec<(usize, Files)> = Vec::new();
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let dir = fs.create(root, b"d", NewNode::Directory, CREATE).unwrap();
            let mut live: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for step in 0..60u64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                match seed % 5 {
                    0 if !live.is_empty() => {
                        let victim = live
                            .keys()
                            .nth((seed as usize / 5) % live.len())
                            .unwrap()
                            .clone();
                        fs.unlink(dir, &victim, CREATE.now).unwrap();
                        live.remove(&victim);
                    }
                    1 if !live.is_empty() => {
                        let from = live
                            .keys()
                            .nth((seed as usize / 5) % live.len())
                            .unwrap()
                            .clone();
                        let to = alloc::format!("r{step}").into_bytes();
                        fs.rename(dir, &from, dir, &to, RenameMode::Replace, CREATE.now)
                            .unwrap();
                        let bytes = live.remove(&from).unwrap();
                        live.insert(to, bytes);
                    }
                    _ => {
                        let name = alloc::format!("f{step}").into_bytes();
                        let ino = fs.create(dir, &name, NewNode::Regular, CREATE).unwrap();
                        let bytes = content(step);
                        fs.write(ino, 0, &bytes, CREATE.now).unwrap();
                        live.insert(name, bytes);
                    }
                }
                if step % 4 == 3 {
                    fs.sync(None).unwrap();
                    let written = disk.0.lock().unwrap().log.len();
                    checkpoints.push((written, live.clone().into_iter().collect()));
                }
            }
            // The VM's end: a commit, not an unmount (see `shutdown`).
            fs.shutdown().unwrap();
        }
        let log = disk.0.lock().unwrap().log.clone();
        let writes: Vec<usize> = (0..log.len()).filter(|&at| log[at].is_some()).collect();
        assert!(
            writes.len() > 200,
            "the workload wrote {} blocks",
            writes.len()
        );
        let e2fsck = std::process::Command::new("e2fsck")
            .arg("-V")
            .output()
            .is_ok();
        // Every cut mounts; every fortieth is checked in full.
        let full_check_every = (log.len() / 40).max(1);
        let cuts: Vec<(usize, bool)> = (0..=log.len())
            .map(|cut| (cut, cut % full_check_every == 0))
            .collect();
        check_cuts(&base, &log, &checkpoints, &cuts, e2fsck);
    }

    /// A formatted 32 MiB volume (its bytes) and a disk over a copy of it that records every
    /// write and flush, for the cut tests.
    fn recording_volume() -> (Vec<u8>, RecordingDisk) {
        let empty = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 32 << 20])));
        let base = format(empty, clock).unwrap().0.lock().unwrap().clone();
        let disk = RecordingDisk(Arc::new(Mutex::new(Recording {
            data: base.clone(),
            log: Vec::new(),
        })));
        (base, disk)
    }

    /// `e2fsck -fn` finds the volume `bytes` (the one cut at `cut`) clean.
    fn assert_e2fsck_clean(bytes: &[u8], cut: usize) {
        // Tests run in parallel: a file of their own for each check.
        static CHECKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        let check = CHECKS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(alloc::format!(
            "pith-cut-{}-{check}.img",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let check = std::process::Command::new("e2fsck")
            .arg("-fn")
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            check.status.success(),
            "cut at {cut}: e2fsck: {}",
            alloc::string::String::from_utf8_lossy(&check.stdout)
        );
    }

    /// Applies the recorded `log` to `base` cut by cut (in increasing order) and checks each
    /// cut listed: it mounts (the journal replays), and if `full`, every file synced and not
    /// touched since reads back exactly, the volume unmounts, and e2fsck (if there) is clean.
    /// After each sync: the log's length then, and the files (name, bytes) that must be there.
    type SyncPoints = [(usize, Vec<(Vec<u8>, Vec<u8>)>)];

    fn check_cuts(
        base: &[u8],
        log: &[Option<(u64, Vec<u8>)>],
        checkpoints: &SyncPoints,
        cuts: &[(usize, bool)],
        e2fsck: bool,
    ) {
        let mut data = base.to_vec();
        let mut applied = 0;
        let mut failures = Vec::new();
        for &(cut, full) in cuts {
            for (offset, bytes) in log[applied..cut].iter().flatten() {
                data[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
            }
            applied = cut;
            if !full {
                if Ext4Fs::mount(MemoryDisk(Arc::new(Mutex::new(data.clone()))), clock).is_err() {
                    failures.push(cut);
                }
                continue;
            }
            let image = MemoryDisk(Arc::new(Mutex::new(data.clone())));
            let mut fs = Ext4Fs::mount(image.clone(), clock)
                .unwrap_or_else(|e| panic!("cut at {cut}: mount failed: {:?}", e.1));
            // The last sync that completed before the cut.
            let must_have = checkpoints
                .iter()
                .rfind(|(written, _)| *written <= cut)
                .map(|(_, files)| files.clone())
                .unwrap_or_default();
            let root = fs.root();
            for (name, bytes) in &must_have {
                let later = checkpoints.iter().any(|(written, files)| {
                    *written > cut && !files.iter().any(|(other, _)| other == name)
                });
                let Ok(dir) = fs.lookup(root, b"d") else {
                    panic!("cut at {cut}: the directory is gone");
                };
                match fs.lookup(dir, name) {
                    Ok(ino) => {
                        let mut read = alloc::vec![0u8; bytes.len()];
                        assert_eq!(fs.read(ino, 0, &mut read), Ok(bytes.len()), "cut at {cut}");
                        assert!(read == *bytes, "cut at {cut}: {:?} has other bytes (removed by a later unsynced op: {later})", name);
                    }
                    // Removed or renamed by an operation after its sync: allowed.
                    Err(Error::NotFound) if later => {}
                    Err(error) => panic!("cut at {cut}: {:?} lost: {error:?}", name),
                }
            }
            fs.unmount()
                .unwrap_or_else(|e| panic!("cut at {cut}: unmount: {e:?}"));
            if e2fsck {
                assert_e2fsck_clean(&image.0.lock().unwrap(), cut);
            }
        }
        assert!(
            failures.is_empty(),
            "cuts that do not mount: {failures:?} of {}",
            log.len()
        );
    }

    /// What a path holds, in the model of `random_operations_survive_cuts_as_the_model_says`
    /// and in a volume walked after a cut.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Held {
        File(Vec<u8>),
        Directory,
        Symlink(Vec<u8>),
    }

    /// Every path under the root (but lost+found), with what it holds and its inode.
    fn walk_volume<D: Disk>(fs: &mut Ext4Fs<D>) -> BTreeMap<Vec<u8>, (Held, Ino)> {
        let mut found = BTreeMap::new();
        let mut pending = alloc::vec![(Vec::new(), fs.root())];
        while let Some((prefix, dir)) = pending.pop() {
            let mut position = 0;
            while let Some((entry, next)) = fs.read_dir(dir, position).unwrap() {
                position = next;
                if entry.name == b"." || entry.name == b".." {
                    continue;
                }
                if prefix.is_empty() && entry.name == b"lost+found" {
                    continue;
                }
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&entry.name);
                let metadata = fs.metadata(entry.ino).unwrap();
                let held = match metadata.kind {
                    FileType::Directory => {
                        pending.push((path.clone(), entry.ino));
                        Held::Directory
                    }
                    FileType::Symlink => Held::Symlink(fs.read_link(entry.ino).unwrap()),
                    _ => {
                        let mut bytes = alloc::vec![0u8; metadata.size as usize];
                        let mut done = 0;
                        while done < bytes.len() {
                            let got = fs.read(entry.ino, done as u64, &mut bytes[done..]).unwrap();
                            assert!(got > 0, "{path:?}: short read at {done}");
                            done += got;
                        }
                        Held::File(bytes)
                    }
                };
                found.insert(path, (held, entry.ino));
            }
        }
        found
    }

    /// The property test: random sequences of operations (create, overwrite, append,
    /// truncate, rename, unlink, hard link, symlink, mkdir, rmdir) on a small tree, checked
    /// against a model, with the block stream cut. A cut right after a sync finds exactly the
    /// model's tree then (files, contents, symlinks, directories, which names share an inode);
    /// a cut between two syncs finds every path the operations since the first left alone as
    /// it was, and nothing unmountable; e2fsck (where installed) is clean at every sync point.
    #[test]
    fn random_operations_survive_cuts_as_the_model_says() {
        let (base, disk) = recording_volume();
        // The model: each path's node (a file by its id), and each file's bytes.
        #[derive(Clone, Debug, PartialEq, Eq)]
        enum Node {
            File(usize),
            Directory,
            Symlink(Vec<u8>),
        }
        type Snapshot = (BTreeMap<Vec<u8>, Node>, BTreeMap<usize, Vec<u8>>);
        // At each sync: the log's length, the model, and the paths touched until the next.
        let mut syncs: Vec<(usize, Snapshot, BTreeSet<Vec<u8>>)> = Vec::new();
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let mut tree: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
            let mut files: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
            let mut inodes: BTreeMap<usize, Ino> = BTreeMap::new();
            let mut dirs = BTreeMap::new();
            for name in [&b"a"[..], b"b"] {
                dirs.insert(
                    name.to_vec(),
                    fs.create(root, name, NewNode::Directory, CREATE).unwrap(),
                );
                tree.insert(name.to_vec(), Node::Directory);
            }
            let mut touched: BTreeSet<Vec<u8>> = BTreeSet::new();
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = |bound: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % bound
            };
            let split = |path: &[u8]| {
                let at = path.iter().position(|&b| b == b'/').unwrap();
                (path[..at].to_vec(), path[at + 1..].to_vec())
            };
            let mut performed = 0u64;
            for step in 0..800u64 {
                let path = {
                    let dir = if next(2) == 0 { &b"a"[..] } else { b"b" };
                    alloc::format!("{}/n{}", core::str::from_utf8(dir).unwrap(), next(6))
                        .into_bytes()
                };
                let (dir_name, name) = split(&path);
                let dir = dirs[&dir_name];
                let existing = tree.get(&path).cloned();
                // A file's other names change with it.
                let names_of = |tree: &BTreeMap<Vec<u8>, Node>, id: usize| -> Vec<Vec<u8>> {
                    tree.iter()
                        .filter(|(_, node)| **node == Node::File(id))
                        .map(|(path, _)| path.clone())
                        .collect()
                };
                match (next(10), existing) {
                    (0..=2, None) => {
                        let ino = fs.create(dir, &name, NewNode::Regular, CREATE).unwrap();
                        let length = (step as usize * 997) % 20_000;
                        let bytes: Vec<u8> =
                            content(step).into_iter().cycle().take(length).collect();
                        fs.write(ino, 0, &bytes, CREATE.now).unwrap();
                        files.insert(step as usize, bytes);
                        inodes.insert(step as usize, ino);
                        tree.insert(path.clone(), Node::File(step as usize));
                        touched.insert(path);
                    }
                    (3, Some(Node::File(id))) => {
                        // Overwrite part (perhaps past the end).
                        let bytes: Vec<u8> = content(step + 1000)
                            .into_iter()
                            .cycle()
                            .take(3000)
                            .collect();
                        let offset = next(files[&id].len() as u64 + 1) as usize;
                        fs.write(inodes[&id], offset as u64, &bytes, CREATE.now)
                            .unwrap();
                        let file = files.get_mut(&id).unwrap();
                        if file.len() < offset + bytes.len() {
                            file.resize(offset + bytes.len(), 0);
                        }
                        file[offset..offset + bytes.len()].copy_from_slice(&bytes);
                        touched.extend(names_of(&tree, id));
                    }
                    (4, Some(Node::File(id))) => {
                        let size = next(30_000) as usize;
                        fs.truncate(inodes[&id], size as u64, CREATE.now).unwrap();
                        files.get_mut(&id).unwrap().resize(size, 0);
                        touched.extend(names_of(&tree, id));
                    }
                    (5, Some(node)) if node != Node::Directory => {
                        let other_dir = if next(2) == 0 { &b"a"[..] } else { b"b" };
                        let to = alloc::format!(
                            "{}/n{}",
                            core::str::from_utf8(other_dir).unwrap(),
                            next(6)
                        )
                        .into_bytes();
                        if tree.get(&to) == Some(&Node::Directory) || to == path {
                            continue;
                        }
                        let (to_dir, to_name) = split(&to);
                        fs.rename(
                            dir,
                            &name,
                            dirs[&to_dir],
                            &to_name,
                            RenameMode::Replace,
                            CREATE.now,
                        )
                        .unwrap();
                        tree.remove(&path);
                        tree.insert(to.clone(), node);
                        touched.insert(path);
                        touched.insert(to);
                    }
                    (6, Some(node)) if node != Node::Directory => {
                        fs.unlink(dir, &name, CREATE.now).unwrap();
                        tree.remove(&path);
                        touched.insert(path);
                    }
                    (7, None) => {
                        let Some((_, id)) = tree.iter().find_map(|(_, node)| match node {
                            Node::File(id) => Some(((), *id)),
                            _ => None,
                        }) else {
                            continue;
                        };
                        fs.link(dir, &name, inodes[&id], CREATE.now).unwrap();
                        tree.insert(path.clone(), Node::File(id));
                        touched.insert(path);
                    }
                    (8, None) => {
                        let target = alloc::format!("../target/{step}").into_bytes();
                        fs.create(dir, &name, NewNode::Symlink(target.clone()), CREATE)
                            .unwrap();
                        tree.insert(path.clone(), Node::Symlink(target));
                        touched.insert(path);
                    }
                    (9, None) => {
                        fs.create(dir, &name, NewNode::Directory, CREATE).unwrap();
                        tree.insert(path.clone(), Node::Directory);
                        touched.insert(path);
                    }
                    (9, Some(Node::Directory)) => {
                        fs.rmdir(dir, &name, CREATE.now).unwrap();
                        tree.remove(&path);
                        touched.insert(path);
                    }
                    _ => continue,
                }
                performed += 1;
                if performed.is_multiple_of(6) {
                    fs.sync(None).unwrap();
                    if let Some(last) = syncs.last_mut() {
                        last.2 = core::mem::take(&mut touched);
                    }
                    touched.clear();
                    let written = disk.0.lock().unwrap().log.len();
                    syncs.push((written, (tree.clone(), files.clone()), BTreeSet::new()));
                }
            }
            if let Some(last) = syncs.last_mut() {
                last.2 = core::mem::take(&mut touched);
            }
            fs.shutdown().unwrap();
        }
        let log = disk.0.lock().unwrap().log.clone();
        let e2fsck = std::process::Command::new("e2fsck")
            .arg("-V")
            .output()
            .is_ok();
        // The model's tree as a volume walk shows it.
        let expected = |(tree, files): &Snapshot| -> BTreeMap<Vec<u8>, Held> {
            tree.iter()
                .map(|(path, node)| {
                    let held = match node {
                        Node::File(id) => Held::File(files[id].clone()),
                        Node::Directory => Held::Directory,
                        Node::Symlink(target) => Held::Symlink(target.clone()),
                    };
                    (path.clone(), held)
                })
                .collect()
        };
        let sync_points: BTreeSet<usize> = syncs.iter().map(|(written, ..)| *written).collect();
        let every = (log.len() / 40).max(1);
        let mut data = base.clone();
        let mut applied = 0;
        let mut checked = 0;
        for cut in 0..=log.len() {
            for (offset, bytes) in log[applied..cut].iter().flatten() {
                data[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
            }
            applied = cut;
            let at_sync = sync_points.contains(&cut);
            if !at_sync && cut % every != 0 {
                continue;
            }
            checked += 1;
            let image = MemoryDisk(Arc::new(Mutex::new(data.clone())));
            let mut fs = Ext4Fs::mount(image.clone(), clock)
                .unwrap_or_else(|e| panic!("cut at {cut}: mount failed: {:?}", e.1));
            let walked = walk_volume(&mut fs);
            let Some((_, snapshot, touched_after)) =
                syncs.iter().rev().find(|(written, ..)| *written <= cut)
            else {
                continue;
            };
            let want = expected(snapshot);
            if at_sync {
                let got: BTreeMap<Vec<u8>, Held> = walked
                    .iter()
                    .map(|(path, (held, _))| (path.clone(), held.clone()))
                    .collect();
                assert!(
                    got == want,
                    "cut at {cut} (a sync point): the tree differs from the model's"
                );
                // Names of one file are one inode.
                for (path, node) in &snapshot.0 {
                    if let Node::File(id) = node {
                        for (other, other_node) in &snapshot.0 {
                            if other_node == &Node::File(*id) {
                                assert_eq!(
                                    walked[path].1, walked[other].1,
                                    "cut at {cut}: {path:?} and {other:?} are one file"
                                );
                            }
                        }
                    }
                }
            } else {
                for (path, held) in &want {
                    if touched_after.contains(path) {
                        continue;
                    }
                    let found = walked.get(path).map(|(held, _)| held);
                    assert!(
                        found == Some(held),
                        "cut at {cut}: {path:?}, untouched since its sync, is not as synced"
                    );
                }
            }
            fs.unmount()
                .unwrap_or_else(|e| panic!("cut at {cut}: unmount: {e:?}"));
            if e2fsck && at_sync {
                assert_e2fsck_clean(&image.0.lock().unwrap(), cut);
            }
        }
        assert!(
            syncs.len() >= 20 && checked > 40,
            "{} syncs, {checked} cuts checked",
            syncs.len()
        );
    }

    /// Hundreds of synced creates, enough to fill the journal past two thirds several times,
    /// so that it is checkpointed (home blocks written, FLUSH, the journal superblock moved
    /// on: the path vendor/rsext4 changes). Cuts around every seventh flush, and 25
    /// more in full, are checked as above.
    #[test]
    fn synced_files_survive_cuts_across_journal_checkpoints() {
        let (base, disk) = recording_volume();
        type Files = Vec<(Vec<u8>, Vec<u8>)>;
        let mut checkpoints: Vec<(usize, Files)> = Vec::new();
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let dir = fs.create(root, b"d", NewNode::Directory, CREATE).unwrap();
            let mut live: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for step in 0..1200u64 {
                let name = alloc::format!("f{step}").into_bytes();
                let ino = fs.create(dir, &name, NewNode::Regular, CREATE).unwrap();
                let bytes = alloc::vec![step as u8; 1024];
                fs.write(ino, 0, &bytes, CREATE.now).unwrap();
                live.insert(name, bytes);
                fs.sync(Some(ino)).unwrap();
                let written = disk.0.lock().unwrap().log.len();
                checkpoints.push((written, live.clone().into_iter().collect()));
            }
            fs.shutdown().unwrap();
        }
        let log = disk.0.lock().unwrap().log.clone();
        // In blocks: the journal writes a descriptor and its blocks in one call.
        let writes: usize = log
            .iter()
            .flatten()
            .map(|(_, bytes)| bytes.len() / 4096)
            .sum();
        // 4,096 journal blocks on this volume, a checkpoint when two thirds are used: more
        // than twice the journal's size in writes means several checkpoints.
        assert!(writes > 2 * 4096, "the workload wrote {writes} blocks");
        let flushes: Vec<usize> = (0..log.len()).filter(|&at| log[at].is_none()).collect();
        let mut cuts: Vec<(usize, bool)> = Vec::new();
        // Around every seventh flush after the journal first filled (7: prime to the two
        // flushes per synced create, so commits and checkpoints both come up): mounts.
        for &flush in flushes.iter().skip(flushes.len() / 4).step_by(7) {
            for cut in flush.saturating_sub(1)..=(flush + 1).min(log.len()) {
                cuts.push((cut, false));
            }
        }
        let full_every = (log.len() / 25).max(1);
        cuts.extend((0..=log.len()).step_by(full_every).map(|cut| (cut, true)));
        cuts.push((log.len(), true));
        cuts.sort();
        cuts.dedup_by_key(|cut| cut.0);
        let e2fsck = std::process::Command::new("e2fsck")
            .arg("-V")
            .output()
            .is_ok();
        check_cuts(&base, &log, &checkpoints, &cuts, e2fsck);
    }

    #[test]
    fn a_cached_disk_reads_what_was_written_through_it() {
        let backing = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 64 * 4096])));
        let mut disk = CachedDisk::new(backing.clone(), 8 * 4096);
        disk.write(4096, &[1u8; 8192]).unwrap();
        let mut buffer = alloc::vec![0u8; 3 * 4096];
        disk.read(0, &mut buffer).unwrap();
        assert!(buffer[..4096].iter().all(|&b| b == 0) && buffer[4096..].iter().all(|&b| b == 1));
        // Cached now: a change behind the cache's back is not seen, one through it is.
        backing.0.lock().unwrap()[4096] = 9;
        disk.read(4096, &mut buffer[..4096]).unwrap();
        assert_eq!(buffer[0], 1);
        disk.write(4096, &[2u8; 4096]).unwrap();
        disk.read(4096, &mut buffer[..4096]).unwrap();
        assert_eq!(buffer[0], 2);
        // More blocks than it holds: the oldest go, reads stay right.
        for block in 0..32u64 {
            disk.read(block * 4096, &mut buffer[..4096]).unwrap();
        }
        assert!(
            disk.blocks.len() <= 16,
            "at most its capacity (16 blocks at least)"
        );
        disk.read(8192, &mut buffer[..4096]).unwrap();
        assert_eq!(buffer[0], 1);
    }

    #[test]
    fn a_write_takes_only_the_blocks_that_are_free() {
        // Plenty of room: all of it.
        assert_eq!(bytes_that_fit(0, 0, 8192, 4096, 1000), 8192);
        // Overwriting allocated blocks needs nothing new, even on a full disk... but the
        // reserve is kept for any write that would allocate.
        assert_eq!(bytes_that_fit(16384, 0, 8192, 4096, 0), 8192);
        // Appending with 20 free blocks: 4 blocks fit after the reserve of 16.
        assert_eq!(bytes_that_fit(4096, 4096, 1 << 20, 4096, 20), 4 * 4096);
        // A partial last block counts as allocated.
        assert_eq!(
            bytes_that_fit(100, 100, 1 << 20, 4096, 17),
            4096 - 100 + 4096
        );
        // Nothing left past the reserve: ENOSPC (0).
        assert_eq!(bytes_that_fit(4096, 4096, 4096, 4096, 16), 0);
    }

    /// Walks everything under `dir`, reading each file, ignoring errors (a damaged volume may
    /// answer EIO anywhere: what must not happen is a panic or a hang).
    fn walk_all(fs: &mut Ext4Fs<MemoryDisk>, dir: Ino, depth: u32) {
        if depth > 8 {
            return;
        }
        let mut position = 0;
        for _ in 0..4096 {
            let Ok(Some((entry, next))) = fs.read_dir(dir, position) else {
                return;
            };
            position = next;
            if entry.name == b"." || entry.name == b".." {
                continue;
            }
            match entry.kind {
                FileType::Directory => walk_all(fs, entry.ino, depth + 1),
                FileType::Symlink => {
                    let _ = fs.read_link(entry.ino);
                }
                _ => {
                    let mut buffer = alloc::vec![0u8; 64 * 1024];
                    let _ = fs.read(entry.ino, 0, &mut buffer);
                    let _ = fs.metadata(entry.ino);
                }
            }
        }
    }

    /// Damaged volumes (random bytes of the metadata changed, or the image cut short) are
    /// refused at mount or answer errors, never a panic: 300 mounts, each then walked, read and
    /// written. Stands in for a fuzz target on stable Rust.
    #[test]
    fn damaged_volumes_give_errors_not_panics() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 32 << 20])));
        let disk = format(disk, clock).unwrap();
        {
            let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).unwrap();
            let root = fs.root();
            let dir = fs.create(root, b"dir", NewNode::Directory, CREATE).unwrap();
            for index in 0..40u32 {
                let name = alloc::format!("file-{index}");
                let file = fs
                    .create(dir, name.as_bytes(), NewNode::Regular, CREATE)
                    .unwrap();
                let content = alloc::vec![index as u8; 1000 * index as usize];
                fs.write(file, 0, &content, CREATE.now).unwrap();
            }
            fs.create(
                root,
                b"link",
                NewNode::Symlink(b"dir/file-3".to_vec()),
                CREATE,
            )
            .unwrap();
            fs.unmount().unwrap();
        }
        let pristine = disk.0.lock().unwrap().clone();
        // Where the metadata is: the superblock, group descriptors, bitmaps, inode tables and
        // the first directories all sit in the first few MiB of a fresh volume.
        let metadata_end = 4usize << 20;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let (mut refused, mut mounted) = (0, 0);
        for round in 0..300u64 {
            let mut image = pristine.clone();
            if round % 10 == 9 {
                image.truncate(next(image.len() as u64) as usize & !511);
            } else {
                for _ in 0..1 + next(16) {
                    let at = next(metadata_end as u64) as usize;
                    image[at] ^= 1 << next(8);
                }
            }
            let damaged = MemoryDisk(Arc::new(Mutex::new(image)));
            match Ext4Fs::mount(damaged, clock) {
                Err(_) => refused += 1,
                Ok(mut fs) => {
                    mounted += 1;
                    let root = fs.root();
                    walk_all(&mut fs, root, 0);
                    if let Ok(file) = fs.create(root, b"new", NewNode::Regular, CREATE) {
                        let _ = fs.write(file, 0, &[1u8; 10_000], CREATE.now);
                    }
                    let _ = fs.unlink(root, b"link", CREATE.now);
                    let _ = fs.sync(None);
                }
            }
        }
        assert_eq!(refused + mounted, 300);
        std::eprintln!("damaged volumes: {refused} refused at mount, {mounted} mounted");
        assert!(
            mounted > 0,
            "some damage must mount, so that reading a damaged volume is tried"
        );
        assert!(
            refused > 0,
            "some damage must be refused (the truncated images at least)"
        );
    }

    #[test]
    fn a_volume_cut_short_is_named_so() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 32 << 20])));
        let mut disk = format(disk, clock).unwrap();
        assert_eq!(cut_short(&mut disk), None, "whole");
        disk.0.lock().unwrap().truncate(20 << 20);
        assert_eq!(cut_short(&mut disk), Some((32 << 20, 20 << 20)));
        let mut empty = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 1 << 20])));
        assert_eq!(cut_short(&mut empty), None, "no ext4 at all");
    }

    #[test]
    fn a_disk_without_ext4_is_refused() {
        let disk = MemoryDisk(Arc::new(Mutex::new(alloc::vec![0u8; 8 << 20])));
        assert!(Ext4Fs::mount(disk, clock).is_err());
    }
}
