//! What a filesystem is to the rest of Pith: nodes (inodes) by number, their metadata, and the
//! operations on them. A format (the in-memory one now, an on-disk one with images) implements
//! `FileSystem`; the VFS (`crate::vfs`) strings filesystems together by mounts and resolves
//! paths over them, so no format sees a path.

use alloc::vec::Vec;

/// A node's number within its filesystem.
pub type Ino = u64;

/// Why an operation failed, in the terms of the errno Linux gives for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// ENOENT
    NotFound,
    /// EEXIST
    Exists,
    /// ENOTDIR
    NotDirectory,
    /// EISDIR
    IsDirectory,
    /// ENOTEMPTY
    NotEmpty,
    /// ENAMETOOLONG
    NameTooLong,
    /// ELOOP
    Loop,
    /// ENOSPC
    NoSpace,
    /// EINVAL
    Invalid,
    /// EXDEV
    CrossDevice,
    /// EBUSY
    Busy,
    /// EACCES
    Access,
    /// EPERM
    NotPermitted,
    /// EROFS
    ReadOnly,
    /// EMLINK
    TooManyLinks,
    /// EFBIG
    TooBig,
    /// EIO: the medium failed, or what it holds is corrupt.
    Io,
}

/// The kinds of node (the S_IFMT part of st_mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    /// The S_IFMT bits (include/uapi/linux/stat.h).
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::Fifo => 0o010000,
            FileType::CharDevice => 0o020000,
            FileType::Directory => 0o040000,
            FileType::BlockDevice => 0o060000,
            FileType::Regular => 0o100000,
            FileType::Symlink => 0o120000,
            FileType::Socket => 0o140000,
        }
    }

    /// The d_type of getdents64 (include/linux/fs_types.h DT_*).
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// A time as Linux keeps inode times: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanoseconds: u32,
}

impl Timestamp {
    pub const fn from_nanoseconds(nanoseconds: u64) -> Timestamp {
        Timestamp {
            seconds: (nanoseconds / 1_000_000_000) as i64,
            nanoseconds: (nanoseconds % 1_000_000_000) as u32,
        }
    }
}

/// What stat(2) shows of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: Ino,
    pub kind: FileType,
    /// The permission bits (07777).
    pub permissions: u32,
    pub links: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte blocks allocated (st_blocks).
    pub blocks: u64,
    pub accessed: Timestamp,
    pub modified: Timestamp,
    pub changed: Timestamp,
    /// The device a device node stands for (st_rdev), as Linux's new_encode_dev.
    pub device: u64,
}

impl Metadata {
    /// st_mode: the type and the permission bits.
    pub fn mode(&self) -> u32 {
        self.kind.mode_bits() | self.permissions
    }
}

/// What `FileSystem::create` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewNode {
    Regular,
    Directory,
    Symlink(Vec<u8>),
    /// A device node, fifo or socket: the type and, for devices, the device number.
    Special(FileType, u64),
}

/// Who makes a node and when, with what permission bits (after the umask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creation {
    pub permissions: u32,
    pub uid: u32,
    pub gid: u32,
    pub now: Timestamp,
}

/// What setattr changes (chmod, chown, utimensat); None leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub permissions: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub accessed: Option<Timestamp>,
    pub modified: Option<Timestamp>,
}

/// One directory entry, as readdir gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileType,
    pub name: Vec<u8>,
}

/// statfs(2)'s figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStats {
    /// f_type: the filesystem's magic number (TMPFS_MAGIC, EXT4_SUPER_MAGIC, ...).
    pub magic: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub free_blocks: u64,
    pub files: u64,
    pub free_files: u64,
    pub name_max: u64,
}

/// NAME_MAX: the longest name of a directory entry.
pub const NAME_MAX: usize = 255;

/// A filesystem: nodes by number. Every call names its nodes by number; names are single
/// components (no '/'), checked by the VFS. Times come from the caller (`Creation::now`, `now`).
pub trait FileSystem {
    fn root(&self) -> Ino;
    fn metadata(&self, ino: Ino) -> Result<Metadata, Error>;
    /// The node's type alone: a path walk asks it at every step, and a filesystem that
    /// keeps it at hand answers without building the whole metadata.
    fn kind(&self, ino: Ino) -> Result<FileType, Error> {
        self.metadata(ino).map(|metadata| metadata.kind)
    }
    /// The node `name` in directory `dir` ("." and ".." included).
    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Error>;
    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        node: NewNode,
        creation: Creation,
    ) -> Result<Ino, Error>;
    /// A regular file holding `content`, which the filesystem may keep referring to rather
    /// than copy (an image's files, in memory for the VM's life) until it is written.
    fn create_with_content(
        &mut self,
        dir: Ino,
        name: &[u8],
        content: &'static [u8],
        creation: Creation,
    ) -> Result<Ino, Error> {
        let ino = self.create(dir, name, NewNode::Regular, creation)?;
        self.write(ino, 0, content, creation.now)?;
        Ok(ino)
    }
    /// A new name for `target` (not a directory) in `dir`.
    fn link(&mut self, dir: Ino, name: &[u8], target: Ino, now: Timestamp) -> Result<(), Error>;
    /// Removes the name of a non-directory.
    fn unlink(&mut self, dir: Ino, name: &[u8], now: Timestamp) -> Result<(), Error>;
    /// Removes an empty directory.
    fn rmdir(&mut self, dir: Ino, name: &[u8], now: Timestamp) -> Result<(), Error>;
    /// rename(2) within this filesystem, with renameat2's NOREPLACE and EXCHANGE.
    fn rename(
        &mut self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        mode: RenameMode,
        now: Timestamp,
    ) -> Result<(), Error>;
    fn read(&mut self, ino: Ino, offset: u64, buffer: &mut [u8]) -> Result<usize, Error>;
    fn write(&mut self, ino: Ino, offset: u64, data: &[u8], now: Timestamp)
        -> Result<usize, Error>;
    fn truncate(&mut self, ino: Ino, size: u64, now: Timestamp) -> Result<(), Error>;
    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Error>;
    /// The entry at `position` of directory `dir` and the position after it ("." is 0, ".."
    /// 1), or None at the end.
    fn read_dir(&self, dir: Ino, position: u64) -> Result<Option<(DirEntry, u64)>, Error>;
    fn set_attributes(&mut self, ino: Ino, changes: Changes, now: Timestamp) -> Result<(), Error>;
    /// Makes what was written to `ino` (or everything) durable.
    fn sync(&mut self, ino: Option<Ino>) -> Result<(), Error>;
    /// The VM is stopping: make everything durable and leave the format clean (ext4: unmount,
    /// so the next mount has no journal to replay).
    fn shutdown(&mut self) -> Result<(), Error> {
        self.sync(None)
    }
    /// A host tool is done writing an image: make everything durable and leave the format
    /// needing no recovery (ext4: unmounted, the journal checkpointed), so that e2fsck -n and
    /// debugfs see what was written. The kernel uses `shutdown` (see `Ext4Fs::shutdown`).
    fn unmount(&mut self) -> Result<(), Error> {
        self.shutdown()
    }
    fn stats(&self) -> FsStats;
    /// The files the filesystem starts with are in (an image's, placed at boot): what is
    /// created from now on counts against its inode limit, if it has one (tmpfs).
    fn preloaded(&mut self) {}
    /// The first byte at or after `offset` that holds data (SEEK_DATA) or is a hole
    /// (SEEK_HOLE); None past the end.
    fn seek_data(&self, ino: Ino, offset: u64, hole: bool) -> Result<Option<u64>, Error>;
    /// A node is opened (counted: an unlinked node lives on while open) and closed.
    fn open(&mut self, ino: Ino);
    fn close(&mut self, ino: Ino);
    /// Mounted read-only: open for writing is EROFS (`crate::readonly`).
    fn read_only(&self) -> bool {
        false
    }
    /// The bytes of `ino` from `offset` (a multiple of `PAGE_SIZE`) for as many whole pages,
    /// up to `len` bytes, as lie whole, unchanged and page-aligned in memory that lives as
    /// long as the VM (an image's file): a private mapping of the file can then show those
    /// very pages until the program stores to them, with no copy. None when the first page
    /// cannot be (it must be read). One call per run of pages: a mapping of a library asks
    /// once, not once a page.
    fn borrowed_pages(&self, _ino: Ino, _offset: u64, _len: u64) -> Option<&'static [u8]> {
        None
    }
}

/// The size of the pages `FileSystem::borrowed_pages` hands out.
pub const PAGE_SIZE: usize = 4096;

/// renameat2's flags, one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace the target if there is one.
    Replace,
    /// RENAME_NOREPLACE: EEXIST if there is a target.
    NoReplace,
    /// RENAME_EXCHANGE: swap the two names, which must both exist.
    Exchange,
}
