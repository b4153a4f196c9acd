//! Files, directories and paths on the VFS (`pith_fs`): the file tree a program starts with
//! (tmpfs at `/` and `/tmp`, device nodes in `/dev`), and the syscalls that name paths or use
//! open files of the tree. `fs.rs` keeps the fd table and the console; it hands open files of
//! the tree here.

use crate::args::{Fd, UserAddr, UserPath};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_ACCMODE, O_APPEND};
use crate::fs::{O_CLOEXEC, O_CREAT, O_LARGEFILE, O_TMPFILE, O_WRONLY};
use crate::platform::{Context, MachineClock, PATH_MAX};
use crate::uapi::Stat;
use alloc::boxed::Box;
use alloc::vec::Vec;
use pith_fs::memfs::MemFs;
use pith_fs::vfs::{Node, Restrictions, Vfs};
use pith_fs::{
    Changes, Creation, Error, FileSystem, FileType, Metadata, NewNode, RenameMode, Timestamp,
};

/// open(2) flags handled here (include/uapi/asm-generic/fcntl.h).
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_PATH: u32 = 0o10000000;
/// unlinkat's flag, and renameat2's.
pub const AT_REMOVEDIR: i32 = 0x200;
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
pub const RENAME_WHITEOUT: u32 = 4;

/// Device numbers (Documentation/admin-guide/devices.txt), as new_encode_dev packs them.
const fn device(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}
pub const DEV_NULL: u64 = device(1, 3);
pub const DEV_ZERO: u64 = device(1, 5);
pub const DEV_FULL: u64 = device(1, 7);
pub const DEV_RANDOM: u64 = device(1, 8);
pub const DEV_URANDOM: u64 = device(1, 9);
pub const DEV_TTY: u64 = device(5, 0);
pub const DEV_CONSOLE: u64 = device(5, 1);
/// The disk, as Linux's virtio-blk numbers its first one.
pub const DEV_VDA: u64 = device(254, 0);
const SECTOR: u64 = 512;

/// st_dev of each mounted filesystem: anonymous devices as Linux numbers tmpfs's (0:N).
fn st_dev(node: Node) -> u64 {
    0x20 + node.mount as u64
}

pub fn errno(error: Error) -> Errno {
    match error {
        Error::NotFound => Errno::ENOENT,
        Error::Exists => Errno::EEXIST,
        Error::NotDirectory => Errno::ENOTDIR,
        Error::IsDirectory => Errno::EISDIR,
        Error::NotEmpty => Errno::ENOTEMPTY,
        Error::NameTooLong => Errno::ENAMETOOLONG,
        Error::Loop => Errno::ELOOP,
        Error::NoSpace => Errno::ENOSPC,
        Error::Invalid => Errno::EINVAL,
        Error::CrossDevice => Errno::EXDEV,
        Error::Busy => Errno::EBUSY,
        Error::Access => Errno::EACCES,
        Error::NotPermitted => Errno::EPERM,
        Error::ReadOnly => Errno::EROFS,
        Error::TooManyLinks => Errno::EMLINK,
        Error::TooBig => Errno::EFBIG,
        Error::Io => Errno::EIO,
    }
}

impl From<Error> for Errno {
    fn from(error: Error) -> Errno {
        errno(error)
    }
}

/// What `/tmp` is (`pith run --tmp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmpMount {
    /// A tmpfs of its own, holding at most this many bytes of file data.
    Tmpfs(u64),
    /// A plain directory of `/` (on an image, what is left there stays).
    OnRoot,
}

/// The tree a program starts with: tmpfs at `/` (see `tree_on`).
pub fn standard_tree(tmpfs_bytes: u64, tmp: TmpMount, now: Timestamp, program_path: &[u8]) -> Vfs {
    let root = Box::new(MemFs::new(0o755, tmpfs_bytes, now).preloading());
    tree_on(root, "tmpfs", tmpfs_bytes, tmp, now, program_path)
}

/// The tree on `root` (tmpfs, or a disk image's ext4): the directories `/tmp`, `/dev`,
/// `/proc`, `/sys` and those of the program's path made on it if missing; tmpfs (mode 1777)
/// mounted at `/dev/shm` and, as `tmp` says, at `/tmp`; `/dev` a tmpfs of its own with the
/// device nodes. The `/dev/shm` tmpfs may hold `tmpfs_bytes` of file data (Linux's default
/// is half of RAM).
pub fn tree_on(
    root_fs: Box<dyn FileSystem + Send>,
    kind: &'static str,
    tmpfs_bytes: u64,
    tmp: TmpMount,
    now: Timestamp,
    program_path: &[u8],
) -> Vfs {
    let mut vfs = Vfs::new(root_fs, kind);
    let creation = |permissions| Creation {
        permissions,
        uid: 0,
        gid: 0,
        now,
    };
    let root = vfs.root();
    if let Ok(fs) = vfs.fs_mut(root.mount) {
        for name in [&b"dev"[..], b"proc", b"sys"] {
            let _ = fs.create(root.ino, name, NewNode::Directory, creation(0o755));
        }
        // /tmp as a directory of `/` is world-writable and sticky, as on any Linux system.
        let _ = fs.create(root.ino, b"tmp", NewNode::Directory, creation(0o1777));
        // The program's directories, so that its path and getcwd in them resolve.
        let mut dir = root.ino;
        let directories = program_path
            .split(|&byte| byte == b'/')
            .filter(|c| !c.is_empty());
        let count = directories.clone().count();
        for name in directories.take(count.saturating_sub(1)) {
            dir = match fs.lookup(dir, name) {
                Ok(existing) => existing,
                Err(_) => match fs.create(dir, name, NewNode::Directory, creation(0o755)) {
                    Ok(made) => made,
                    Err(_) => break,
                },
            };
        }
    }
    let mut dev = MemFs::new(0o755, 1 << 20, now);
    let dev_root = dev.root();
    for (name, number) in [
        (&b"null"[..], DEV_NULL),
        (b"zero", DEV_ZERO),
        (b"full", DEV_FULL),
        (b"random", DEV_RANDOM),
        (b"urandom", DEV_URANDOM),
        (b"tty", DEV_TTY),
        (b"console", DEV_CONSOLE),
    ] {
        let node = NewNode::Special(FileType::CharDevice, number);
        let _ = dev.create(dev_root, name, node, creation(0o666));
    }
    for (name, target) in [
        (&b"stdin"[..], &b"/proc/self/fd/0"[..]),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
        (b"fd", b"/proc/self/fd"),
    ] {
        let node = NewNode::Symlink(target.to_vec());
        let _ = dev.create(dev_root, name, node, creation(0o777));
    }
    let _ = dev.create(dev_root, b"shm", NewNode::Directory, creation(0o1777));
    let _ = vfs.mount(b"/dev", Box::new(dev), "devtmpfs");
    if let TmpMount::Tmpfs(bytes) = tmp {
        // Its size is --tmp's; its inodes, as Linux's tmpfs, half the RAM's pages whatever
        // the size.
        let tmp = MemFs::new(0o1777, bytes, now).with_inodes(tmpfs_bytes / crate::mm::PAGE_SIZE);
        let _ = vfs.mount(b"/tmp", Box::new(tmp), "tmpfs");
    }
    let _ = vfs.mount(
        b"/dev/shm",
        Box::new(MemFs::new(0o1777, tmpfs_bytes, now)),
        "tmpfs",
    );
    vfs
}

/// Makes the directory `path` (absolute) and those above it, as `mkdir -p`; returns it.
pub fn make_directories(vfs: &mut Vfs, path: &[u8], now: Timestamp) -> Result<Node, Error> {
    let mut dir = vfs.root();
    for name in path.split(|&byte| byte == b'/').filter(|c| !c.is_empty()) {
        dir = match vfs.resolve(dir, name, true) {
            Ok(node) => node,
            Err(Error::NotFound) => {
                let creation = Creation {
                    permissions: 0o755,
                    uid: 0,
                    gid: 0,
                    now,
                };
                let ino =
                    vfs.fs_mut(dir.mount)?
                        .create(dir.ino, name, NewNode::Directory, creation)?;
                Node {
                    mount: dir.mount,
                    ino,
                }
            }
            Err(error) => return Err(error),
        };
    }
    Ok(dir)
}

/// Adds the device node /dev/vda for the VM's disk.
pub fn add_disk_node(vfs: &mut Vfs, now: Timestamp) -> Result<(), Error> {
    let dev = vfs.resolve(vfs.root(), b"/dev", true)?;
    let creation = Creation {
        permissions: 0o660,
        uid: 0,
        gid: 6, // disk
        now,
    };
    let node = NewNode::Special(FileType::BlockDevice, DEV_VDA);
    vfs.fs_mut(dev.mount)?
        .create(dev.ino, b"vda", node, creation)?;
    Ok(())
}

/// Reads the disk at a byte offset (whole sectors underneath); short at its end.
fn disk_read(context: &mut Context, offset: u64, buffer: &mut [u8]) -> Result<usize, Errno> {
    let size = context.platform.disk_size().ok_or(Errno::ENXIO)?;
    if offset >= size {
        return Ok(0);
    }
    let count = (buffer.len() as u64).min(size - offset) as usize;
    let first = offset / SECTOR;
    let last = (offset + count as u64).div_ceil(SECTOR);
    let mut sectors = alloc::vec![0u8; ((last - first) * SECTOR) as usize];
    context.platform.disk_read(first, &mut sectors)?;
    let skip = (offset - first * SECTOR) as usize;
    buffer[..count].copy_from_slice(&sectors[skip..skip + count]);
    Ok(count)
}

/// Writes the disk at a byte offset: partial sectors are read, changed and written back.
fn disk_write(context: &mut Context, offset: u64, data: &[u8]) -> Result<usize, Errno> {
    let size = context.platform.disk_size().ok_or(Errno::ENXIO)?;
    if offset >= size {
        return Err(Errno::ENOSPC);
    }
    let count = (data.len() as u64).min(size - offset) as usize;
    let first = offset / SECTOR;
    let last = (offset + count as u64).div_ceil(SECTOR);
    let mut sectors = alloc::vec![0u8; ((last - first) * SECTOR) as usize];
    let skip = (offset - first * SECTOR) as usize;
    if skip != 0 || !count.is_multiple_of(SECTOR as usize) {
        context.platform.disk_read(first, &mut sectors)?;
    }
    sectors[skip..skip + count].copy_from_slice(&data[..count]);
    context.platform.disk_write(first, &sectors)?;
    Ok(count)
}

/// What the image puts in the tree.
pub enum ImageNode {
    /// A file whose bytes stay in the image (in memory for the VM's life) until written.
    File(&'static [u8]),
    Directory,
    Symlink(&'static [u8]),
}

/// Adds a file, directory or symlink from the image at `path` (absolute), making the
/// directories above it; a directory that is there already takes `mode`.
pub fn add_from_image(
    vfs: &mut Vfs,
    path: &[u8],
    node: ImageNode,
    mode: u32,
    now: Timestamp,
) -> Result<(), Error> {
    let (parent_path, name) = match path.iter().rposition(|&byte| byte == b'/') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (&b""[..], path),
    };
    let dir = make_directories(vfs, parent_path, now)?;
    let creation = Creation {
        permissions: mode & 0o7777,
        uid: 0,
        gid: 0,
        now,
    };
    if name.is_empty() {
        return Ok(()); // "/" itself
    }
    let fs = vfs.fs_mut(dir.mount)?;
    match node {
        ImageNode::File(content) => {
            fs.create_with_content(dir.ino, name, content, creation)?;
        }
        ImageNode::Directory => match fs.create(dir.ino, name, NewNode::Directory, creation) {
            Err(Error::Exists) => {
                let ino = fs.lookup(dir.ino, name)?;
                let changes = Changes {
                    permissions: Some(mode & 0o7777),
                    ..Changes::default()
                };
                fs.set_attributes(ino, changes, now)?;
            }
            other => {
                other?;
            }
        },
        ImageNode::Symlink(target) => {
            fs.create(dir.ino, name, NewNode::Symlink(target.to_vec()), creation)?;
        }
    }
    Ok(())
}

/// The wall-clock time, for timestamps.
pub fn now(context: &Context) -> Timestamp {
    Timestamp::from_nanoseconds(context.platform.now(MachineClock::Realtime))
}

/// Where a relative path starts: the working directory (AT_FDCWD) or a directory fd
/// (ENOTDIR for another kind of file, EBADF for no fd).
fn start_node(context: &Context, dir_fd: Fd, path: &[u8]) -> Result<Node, Errno> {
    if path.starts_with(b"/") || dir_fd.0 == AT_FDCWD {
        return Ok(context.process.cwd);
    }
    match context.process.files.get(dir_fd)?.kind {
        FileKind::Node(node) => {
            if context.process.vfs.metadata(node)?.kind != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            Ok(node)
        }
        _ => Err(Errno::ENOTDIR),
    }
}

/// Resolves `path` from `dir_fd`, following a last symlink if `follow`.
pub fn resolve_at(context: &Context, dir_fd: Fd, path: &[u8], follow: bool) -> Result<Node, Errno> {
    let start = start_node(context, dir_fd, path)?;
    Ok(context.process.vfs.resolve(start, path, follow)?)
}

fn read_path(context: &Context, path: UserPath) -> Result<Vec<u8>, Errno> {
    context.read_c_string(path.0, PATH_MAX - 1)
}

/// Opens `path` (relative to `dir_fd`) with open(2)'s `flags`, creating it with `mode` (less
/// the umask) under O_CREAT.
pub fn open_at(
    context: &mut Context,
    dir_fd: Fd,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<i32, Errno> {
    let start = start_node(context, dir_fd, path)?;
    open_from(context, start, path, flags, mode, Restrictions::default())
}

/// openat2's open: `path` from `dir_fd` under RESOLVE_* `restrictions`. With RESOLVE_BENEATH
/// or RESOLVE_IN_ROOT the walk starts at `dir_fd` even for an absolute path (which BENEATH
/// refuses and IN_ROOT takes from there).
pub fn open_at_restricted(
    context: &mut Context,
    dir_fd: Fd,
    path: &[u8],
    flags: u32,
    mode: u32,
    mut restrictions: Restrictions,
) -> Result<i32, Errno> {
    let start = if restrictions.beneath || restrictions.in_root {
        start_node(context, dir_fd, b"")?
    } else {
        start_node(context, dir_fd, path)?
    };
    if restrictions.in_root && start == context.process.vfs.root() {
        restrictions.in_root = false; // `/` as the root: an ordinary walk
    }
    open_from(context, start, path, flags, mode, restrictions)
}

fn open_from(
    context: &mut Context,
    start: Node,
    path: &[u8],
    flags: u32,
    mode: u32,
    restrictions: Restrictions,
) -> Result<i32, Errno> {
    let access = flags & O_ACCMODE;
    if access == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    let writing = access != 0;
    let now = now(context);
    let node = if flags & O_TMPFILE == O_TMPFILE {
        if !writing {
            return Err(Errno::EINVAL);
        }
        let dir = context
            .process
            .vfs
            .resolve_restricted(start, path, true, restrictions)?;
        if context.process.vfs.metadata(dir)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        // An unnamed file in `dir`: made under a name and unlinked once open.
        let name = alloc::format!(".pith-tmpfile-{}", context.process.files.open_count());
        let creation = creation(context, mode, now);
        let fs = context.process.vfs.fs_mut(dir.mount)?;
        let ino = fs.create(dir.ino, name.as_bytes(), NewNode::Regular, creation)?;
        fs.open(ino);
        fs.unlink(dir.ino, name.as_bytes(), now)?;
        let node = Node {
            mount: dir.mount,
            ino,
        };
        return install(context, node, flags, true);
    } else if flags & O_CREAT != 0 {
        let parent = context
            .process
            .vfs
            .resolve_parent_restricted(start, path, restrictions)?;
        if parent.name.is_empty() || parent.name == b"." || parent.name == b".." {
            return Err(Errno::EISDIR);
        }
        let existing = context
            .process
            .vfs
            .resolve_restricted(start, path, flags & O_NOFOLLOW == 0, restrictions)
            .map_err(errno);
        match existing {
            Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            Ok(node) => node,
            Err(Errno::ENOENT) if !parent.trailing_slash => {
                // A dangling symlink as the last component: O_CREAT makes its target, unless
                // O_EXCL (EEXIST) or O_NOFOLLOW.
                let link = context
                    .process
                    .vfs
                    .resolve_restricted(start, path, false, restrictions)
                    .ok();
                if link.is_some() {
                    if flags & (O_EXCL | O_NOFOLLOW) != 0 {
                        return Err(if flags & O_EXCL != 0 {
                            Errno::EEXIST
                        } else {
                            Errno::ELOOP
                        });
                    }
                    return Err(Errno::ENOENT);
                }
                let creation = creation(context, mode, now);
                let fs = context.process.vfs.fs_mut(parent.dir.mount)?;
                let ino = fs.create(parent.dir.ino, &parent.name, NewNode::Regular, creation)?;
                Node {
                    mount: parent.dir.mount,
                    ino,
                }
            }
            Err(Errno::ENOENT) => return Err(Errno::EISDIR),
            Err(errno) => return Err(errno),
        }
    } else {
        context.process.vfs.resolve_restricted(
            start,
            path,
            flags & O_NOFOLLOW == 0,
            restrictions,
        )?
    };
    let metadata = context.process.vfs.metadata(node)?;
    if flags & O_PATH == 0 {
        match metadata.kind {
            FileType::Symlink => return Err(Errno::ELOOP), // O_NOFOLLOW met a link
            // A socket file is reached by connect(2), never opened.
            FileType::Socket => return Err(Errno::ENXIO),
            FileType::Directory if writing || flags & O_CREAT != 0 => return Err(Errno::EISDIR),
            kind if kind != FileType::Directory && flags & O_DIRECTORY != 0 => {
                return Err(Errno::ENOTDIR)
            }
            _ => {}
        }
    } else if flags & O_DIRECTORY != 0 && metadata.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    // A read-only mount (MS_RDONLY) refuses writing to its files; devices stay writable.
    if writing
        && flags & O_PATH == 0
        && metadata.kind == FileType::Regular
        && context.process.vfs.fs(node.mount)?.read_only()
    {
        return Err(Errno::EROFS);
    }
    if flags & O_TRUNC != 0 && writing && metadata.kind == FileType::Regular {
        context
            .process
            .vfs
            .fs_mut(node.mount)?
            .truncate(node.ino, 0, now)?;
    }
    context.process.vfs.fs_mut(node.mount)?.open(node.ino);
    let fd = install(context, node, flags, false)?;
    // For /proc/self/fd: the path made absolute from where it started (the parent's path
    // plus the name when the name is known).
    let absolute = if path.starts_with(b"/") {
        path.to_vec()
    } else {
        let mut base = context
            .process
            .vfs
            .path_of(start)
            .unwrap_or_else(|_| b"/".to_vec());
        if !base.ends_with(b"/") {
            base.push(b'/');
        }
        base.extend_from_slice(path);
        base
    };
    context.process.files.set_path(Fd(fd), absolute);
    Ok(fd)
}

fn creation(context: &Context, mode: u32, now: Timestamp) -> Creation {
    Creation {
        permissions: mode & 0o7777 & !context.process.umask,
        uid: 0,
        gid: 0,
        now,
    }
}

/// Puts an opened node at the lowest free fd (the node is already counted open).
fn install(context: &mut Context, node: Node, flags: u32, _tmpfile: bool) -> Result<i32, Errno> {
    let limit = crate::fs::nofile_limit(context);
    let file = OpenFile {
        kind: FileKind::Node(node),
        status_flags: O_LARGEFILE
            | (flags
                & (O_ACCMODE
                    | O_APPEND
                    | crate::fs::O_NONBLOCK
                    | O_PATH
                    | crate::fs::O_DSYNC
                    | crate::fs::O_SYNC)),
    };
    match context
        .process
        .files
        .open(file, flags & O_CLOEXEC != 0, limit)
    {
        Ok(fd) => Ok(fd.0),
        Err(errno) => {
            let _ = context
                .process
                .vfs
                .fs_mut(node.mount)
                .map(|fs| fs.close(node.ino));
            Err(errno)
        }
    }
}

/// Tells the filesystems about the open files that were just closed for the last time, and
/// the owners of sockets, epoll instances, eventfds and timerfds. A socket closed here may
/// hold files in flight (SCM_RIGHTS) whose last reference goes with it: this goes on until
/// nothing more closes.
pub fn settle_closes(context: &mut Context) {
    loop {
        crate::epoll::forget_closed(context);
        let nodes = context.process.files.take_closed();
        let objects = context.process.files.take_closed_objects();
        if nodes.is_empty() && objects.is_empty() {
            return;
        }
        for node in nodes {
            if let Ok(fs) = context.process.vfs.fs_mut(node.mount) {
                fs.close(node.ino);
            }
        }
        for kind in objects {
            match kind {
                FileKind::Socket { id } => crate::net::release(context, id),
                FileKind::UnixSocket { id } => crate::unix::release(context, id),
                FileKind::Epoll { id } => context.process.epolls.release(id),
                FileKind::Eventfd { id } => crate::eventfd::release(context, id),
                FileKind::Timerfd { id } => crate::timerfd::release(context, id),
                _ => {}
            }
        }
    }
}

/// struct stat of a node.
pub fn stat_of(node: Node, metadata: &Metadata) -> Stat {
    Stat {
        st_dev: st_dev(node),
        st_ino: metadata.ino,
        st_nlink: metadata.links as u64,
        st_mode: metadata.mode(),
        st_uid: metadata.uid,
        st_gid: metadata.gid,
        st_rdev: metadata.device,
        st_size: metadata.size as i64,
        st_blksize: 4096,
        st_blocks: metadata.blocks as i64,
        st_atime: metadata.accessed.seconds,
        st_atime_nsec: metadata.accessed.nanoseconds as i64,
        st_mtime: metadata.modified.seconds,
        st_mtime_nsec: metadata.modified.nanoseconds as i64,
        st_ctime: metadata.changed.seconds,
        st_ctime_nsec: metadata.changed.nanoseconds as i64,
        ..Stat::default()
    }
}

/// stat of the node at `path`.
pub fn stat_at(context: &Context, dir_fd: Fd, path: &[u8], flags: i32) -> Result<Stat, Errno> {
    let node = resolve_at(context, dir_fd, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    let metadata = context.process.vfs.metadata(node)?;
    Ok(stat_of(node, &metadata))
}

/// Where an open node's description stands (its file position).
fn position(context: &Context, fd: Fd) -> Result<u64, Errno> {
    context.process.files.position(fd)
}

/// Reads an open node at its position (or at `at`, pread), moving the position if not.
pub fn read_node(
    context: &mut Context,
    fd: Fd,
    file: OpenFile,
    node: Node,
    buffer: UserAddr,
    count: usize,
    at: Option<u64>,
) -> Result<usize, Errno> {
    if file.status_flags & O_ACCMODE == O_WRONLY || file.status_flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let metadata = context.process.vfs.metadata(node)?;
    match metadata.kind {
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::CharDevice => return read_device(context, metadata.device, buffer, count),
        FileType::Regular | FileType::BlockDevice => {}
        _ => return Err(Errno::EINVAL),
    }
    let offset = match at {
        Some(offset) => offset,
        None => position(context, fd)?,
    };
    // A MiB at a time until the count or the end: Linux reads a regular file whole in one
    // call, and programs rely on it.
    let got = in_chunks(context, count, |context, chunk, done| {
        let at_offset = offset + done as u64;
        let read = read_node_into(context, node, metadata.kind, at_offset, chunk)?;
        crate::mm::read_through_mappings(context, node, at_offset, &mut chunk[..read]);
        context
            .platform
            .write_user(buffer.0 + done as u64, &chunk[..read])?;
        Ok(read)
    })?;
    if at.is_none() {
        context
            .process
            .files
            .set_position(fd, offset + got as u64)?;
    }
    Ok(got)
}

/// A regular file's or the disk's bytes at `offset`, into `chunk`.
fn read_node_into(
    context: &mut Context,
    node: Node,
    kind: FileType,
    offset: u64,
    chunk: &mut [u8],
) -> Result<usize, Errno> {
    if kind == FileType::BlockDevice {
        return disk_read(context, offset, chunk);
    }
    Ok(context
        .process
        .vfs
        .fs_mut(node.mount)?
        .read(node.ino, offset, chunk)?)
}

fn read_device(
    context: &mut Context,
    number: u64,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    match number {
        DEV_NULL => Ok(0),
        DEV_ZERO | DEV_FULL | DEV_RANDOM | DEV_URANDOM => {
            let mut chunk = alloc::vec![0u8; count.min(1 << 20)];
            if matches!(number, DEV_RANDOM | DEV_URANDOM) {
                context.platform.fill_random(&mut chunk)?;
            }
            context.platform.write_user(buffer.0, &chunk)?;
            Ok(chunk.len())
        }
        DEV_TTY | DEV_CONSOLE => crate::fs::read(context, Fd(0), buffer, count),
        _ => Err(Errno::ENXIO),
    }
}

/// Writes an open node at its position (the end under O_APPEND; `at` for pwrite).
pub fn write_node(
    context: &mut Context,
    fd: Fd,
    file: OpenFile,
    node: Node,
    buffer: UserAddr,
    count: usize,
    at: Option<u64>,
) -> Result<usize, Errno> {
    if file.status_flags & O_ACCMODE == 0 || file.status_flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let metadata = context.process.vfs.metadata(node)?;
    match metadata.kind {
        FileType::Regular | FileType::BlockDevice => {}
        FileType::CharDevice => {
            return match metadata.device {
                DEV_FULL => Err(Errno::ENOSPC),
                DEV_TTY | DEV_CONSOLE => crate::fs::write(context, Fd(1), buffer, count),
                DEV_NULL | DEV_ZERO | DEV_RANDOM | DEV_URANDOM => Ok(count),
                _ => Err(Errno::ENXIO),
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    // A MiB at a time until the count (or a short write: a full disk), as one write(2).
    in_chunks(context, count, |context, data, done| {
        context.platform.read_user(buffer.0 + done as u64, data)?;
        let at = at.map(|offset| offset + done as u64);
        write_node_data(context, fd, file, node, data, at)
    })
}

/// Moves `count` bytes through the process's I/O buffer a MiB at a time: `step` gets a chunk
/// of the buffer to fill or drain and the bytes moved so far, and says how many it moved. A
/// short step ends it (the end of a file, a full disk); an error after some bytes moved ends
/// it with those (a short count, as Linux returns, the error left for the next call).
fn in_chunks(
    context: &mut Context,
    count: usize,
    mut step: impl FnMut(&mut Context, &mut [u8], usize) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    let mut buffer = core::mem::take(&mut context.process.io_buffer);
    let mut done = 0usize;
    let outcome = loop {
        if done >= count {
            break Ok(done);
        }
        let length = (count - done).min(1 << 20);
        if buffer.len() < length {
            buffer.resize(length, 0);
        }
        match step(context, &mut buffer[..length], done) {
            Ok(moved) => {
                done += moved;
                if moved < length {
                    break Ok(done);
                }
            }
            Err(_) if done > 0 => break Ok(done),
            Err(error) => break Err(error),
        }
    };
    context.process.io_buffer = buffer;
    outcome
}

/// Writes `data` to an open regular file (write_node's second half; sendfile's writer).
pub fn write_node_data(
    context: &mut Context,
    fd: Fd,
    file: OpenFile,
    node: Node,
    data: &[u8],
    at: Option<u64>,
) -> Result<usize, Errno> {
    let metadata = context.process.vfs.metadata(node)?;
    if metadata.kind == FileType::CharDevice {
        return match metadata.device {
            DEV_FULL => Err(Errno::ENOSPC),
            DEV_TTY | DEV_CONSOLE => {
                context
                    .platform
                    .console_write(crate::platform::ConsoleStream::Output, data);
                Ok(data.len())
            }
            DEV_NULL | DEV_ZERO | DEV_RANDOM | DEV_URANDOM => Ok(data.len()),
            _ => Err(Errno::ENXIO),
        };
    }
    // O_APPEND: every write goes to the end, even pwrite's (Linux's documented bug).
    let offset = if file.status_flags & O_APPEND != 0 {
        metadata.size
    } else {
        match at {
            Some(offset) => offset,
            None => position(context, fd)?,
        }
    };
    let now = now(context);
    let written = if metadata.kind == FileType::BlockDevice {
        disk_write(context, offset, data)?
    } else {
        let written = context
            .process
            .vfs
            .fs_mut(node.mount)?
            .write(node.ino, offset, data, now)?;
        crate::mm::write_through_mappings(context, node, offset, &data[..written]);
        written
    };
    if at.is_none() {
        context
            .process
            .files
            .set_position(fd, offset + written as u64)?;
    }
    // O_SYNC and O_DSYNC: the write is durable when it returns, as after fdatasync.
    if file.status_flags & crate::fs::O_DSYNC != 0 && written > 0 {
        if metadata.kind == FileType::BlockDevice {
            context.platform.disk_flush()?;
        } else {
            context
                .process
                .vfs
                .fs_mut(node.mount)?
                .sync(Some(node.ino))
                .map_err(|_| Errno::EIO)?;
        }
    }
    Ok(written)
}

/// lseek on an open node, with SEEK_DATA and SEEK_HOLE.
pub fn seek_node(
    context: &mut Context,
    fd: Fd,
    node: Node,
    offset: i64,
    whence: i32,
) -> Result<i64, Errno> {
    let metadata = context.process.vfs.metadata(node)?;
    let current = position(context, fd)? as i64;
    let target = match whence {
        crate::fs::SEEK_SET => offset,
        crate::fs::SEEK_CUR => current.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
        crate::fs::SEEK_END => {
            let size = if metadata.kind == FileType::BlockDevice {
                context.platform.disk_size().unwrap_or(0)
            } else {
                metadata.size
            };
            (size as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?
        }
        3 | 4 => {
            if offset < 0 {
                return Err(Errno::ENXIO);
            }
            let found = context.process.vfs.fs(node.mount)?.seek_data(
                node.ino,
                offset as u64,
                whence == 4,
            )?;
            found.ok_or(Errno::ENXIO)? as i64
        }
        _ => return Err(Errno::EINVAL),
    };
    if target < 0 {
        return Err(Errno::EINVAL);
    }
    context.process.files.set_position(fd, target as u64)?;
    Ok(target)
}

/// struct linux_dirent64's fixed part: d_ino, d_off, d_reclen, d_type.
const DIRENT_HEADER: usize = 19;

/// Implements getdents64(2).
pub fn getdents64(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    let FileKind::Node(node) = file.kind else {
        return Err(Errno::ENOTDIR);
    };
    if context.process.vfs.metadata(node)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let mut position = position(context, fd)?;
    let mut out = Vec::new();
    while let Some((entry, next)) = context
        .process
        .vfs
        .fs(node.mount)?
        .read_dir(node.ino, position)?
    {
        let length = (DIRENT_HEADER + entry.name.len() + 1).next_multiple_of(8);
        if out.len() + length > count {
            if out.is_empty() {
                return Err(Errno::EINVAL); // the buffer holds not even one entry
            }
            break;
        }
        let start = out.len();
        out.extend_from_slice(&entry.ino.to_le_bytes());
        out.extend_from_slice(&(next as i64).to_le_bytes());
        out.extend_from_slice(&(length as u16).to_le_bytes());
        out.push(entry.kind.dirent_type());
        out.extend_from_slice(&entry.name);
        out.resize(start + length, 0);
        position = next;
    }
    context.platform.write_user(buffer.0, &out)?;
    context.process.files.set_position(fd, position)?;
    Ok(out.len())
}

/// Implements mkdirat(2).
pub fn mkdirat(context: &mut Context, dir_fd: Fd, path: UserPath, mode: u32) -> Result<(), Errno> {
    let path = read_path(context, path)?;
    let start = start_node(context, dir_fd, &path)?;
    let parent = context.process.vfs.resolve_parent(start, &path)?;
    if parent.name.is_empty() || parent.name == b"." || parent.name == b".." {
        return Err(Errno::EEXIST);
    }
    let now = now(context);
    let creation = creation(context, mode, now);
    let fs = context.process.vfs.fs_mut(parent.dir.mount)?;
    fs.create(parent.dir.ino, &parent.name, NewNode::Directory, creation)?;
    Ok(())
}

/// Makes the socket file of an AF_UNIX socket bound to `path` (mode 0777 less the umask, as
/// Linux's unix_bind): EADDRINUSE if anything is there already.
pub fn make_socket_file(context: &mut Context, path: &[u8]) -> Result<Node, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = start_node(context, Fd(AT_FDCWD), path)?;
    let parent = context.process.vfs.resolve_parent(start, path)?;
    if parent.name.is_empty() || parent.name == b"." || parent.name == b".." {
        return Err(Errno::EADDRINUSE);
    }
    let now = now(context);
    let creation = creation(context, 0o777, now);
    let fs = context.process.vfs.fs_mut(parent.dir.mount)?;
    let socket = NewNode::Special(FileType::Socket, 0);
    match fs.create(parent.dir.ino, &parent.name, socket, creation) {
        Ok(ino) => Ok(Node {
            mount: parent.dir.mount,
            ino,
        }),
        Err(Error::Exists) => Err(Errno::EADDRINUSE),
        Err(error) => Err(error.into()),
    }
}

/// Implements mkdir(2).
pub fn mkdir(context: &mut Context, path: UserPath, mode: u32) -> Result<(), Errno> {
    mkdirat(context, Fd(AT_FDCWD), path, mode)
}

/// Implements unlinkat(2) (AT_REMOVEDIR: rmdir).
pub fn unlinkat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(context, path)?;
    let start = start_node(context, dir_fd, &path)?;
    let parent = context.process.vfs.resolve_parent(start, &path)?;
    let now = now(context);
    if flags & AT_REMOVEDIR != 0 {
        match parent.name.as_slice() {
            b"" => return Err(Errno::EBUSY),
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let target = context.process.vfs.resolve(start, &path, false)?;
        if target.mount != parent.dir.mount {
            return Err(Errno::EBUSY); // a mount point
        }
        if context.process.vfs.metadata(target)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        context
            .process
            .vfs
            .fs_mut(parent.dir.mount)?
            .rmdir(parent.dir.ino, &parent.name, now)?;
    } else {
        if parent.name.is_empty() || parent.trailing_slash {
            let node = context.process.vfs.resolve(start, &path, false)?;
            return Err(
                if context.process.vfs.metadata(node)?.kind == FileType::Directory {
                    Errno::EISDIR
                } else {
                    Errno::ENOTDIR
                },
            );
        }
        context
            .process
            .vfs
            .fs_mut(parent.dir.mount)?
            .unlink(parent.dir.ino, &parent.name, now)?;
    }
    Ok(())
}

/// Implements unlink(2).
pub fn unlink(context: &mut Context, path: UserPath) -> Result<(), Errno> {
    unlinkat(context, Fd(AT_FDCWD), path, 0)
}

/// Implements rmdir(2).
pub fn rmdir(context: &mut Context, path: UserPath) -> Result<(), Errno> {
    unlinkat(context, Fd(AT_FDCWD), path, AT_REMOVEDIR)
}

/// Implements renameat2(2).
pub fn renameat2(
    context: &mut Context,
    old_dir_fd: Fd,
    old_path: UserPath,
    new_dir_fd: Fd,
    new_path: UserPath,
    flags: u32,
) -> Result<(), Errno> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_WHITEOUT != 0 {
        return Err(Errno::EINVAL); // tmpfs has no whiteouts for a program that is not overlayfs
    }
    let old_path = read_path(context, old_path)?;
    let new_path = read_path(context, new_path)?;
    let old_start = start_node(context, old_dir_fd, &old_path)?;
    let new_start = start_node(context, new_dir_fd, &new_path)?;
    let from = context.process.vfs.resolve_parent(old_start, &old_path)?;
    let to = context.process.vfs.resolve_parent(new_start, &new_path)?;
    for name in [&from.name, &to.name] {
        if name.is_empty() || name.as_slice() == b"." || name.as_slice() == b".." {
            return Err(Errno::EBUSY);
        }
    }
    if from.dir.mount != to.dir.mount {
        return Err(Errno::EXDEV);
    }
    let mode = if flags & RENAME_EXCHANGE != 0 {
        RenameMode::Exchange
    } else if flags & RENAME_NOREPLACE != 0 {
        RenameMode::NoReplace
    } else {
        RenameMode::Replace
    };
    let now = now(context);
    context.process.vfs.fs_mut(from.dir.mount)?.rename(
        from.dir.ino,
        &from.name,
        to.dir.ino,
        &to.name,
        mode,
        now,
    )?;
    Ok(())
}

/// Implements renameat(2).
pub fn renameat(
    context: &mut Context,
    old_dir_fd: Fd,
    old_path: UserPath,
    new_dir_fd: Fd,
    new_path: UserPath,
) -> Result<(), Errno> {
    renameat2(context, old_dir_fd, old_path, new_dir_fd, new_path, 0)
}

/// Implements rename(2).
pub fn rename(context: &mut Context, old_path: UserPath, new_path: UserPath) -> Result<(), Errno> {
    renameat2(context, Fd(AT_FDCWD), old_path, Fd(AT_FDCWD), new_path, 0)
}

/// AT_SYMLINK_FOLLOW: linkat follows a symlink it is given.
const AT_SYMLINK_FOLLOW: i32 = 0x400;

/// Implements linkat(2).
pub fn linkat(
    context: &mut Context,
    old_dir_fd: Fd,
    old_path: UserPath,
    new_dir_fd: Fd,
    new_path: UserPath,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(AT_SYMLINK_FOLLOW | crate::fs::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old_path = read_path(context, old_path)?;
    let new_path = read_path(context, new_path)?;
    let target = resolve_at(
        context,
        old_dir_fd,
        &old_path,
        flags & AT_SYMLINK_FOLLOW != 0,
    )?;
    if context.process.vfs.metadata(target)?.kind == FileType::Directory {
        return Err(Errno::EPERM);
    }
    let new_start = start_node(context, new_dir_fd, &new_path)?;
    let parent = context.process.vfs.resolve_parent(new_start, &new_path)?;
    if parent.name.is_empty() || parent.trailing_slash {
        return Err(Errno::EEXIST);
    }
    if parent.dir.mount != target.mount {
        return Err(Errno::EXDEV);
    }
    let now = now(context);
    context.process.vfs.fs_mut(target.mount)?.link(
        parent.dir.ino,
        &parent.name,
        target.ino,
        now,
    )?;
    Ok(())
}

/// Implements link(2).
pub fn link(context: &mut Context, old_path: UserPath, new_path: UserPath) -> Result<(), Errno> {
    linkat(context, Fd(AT_FDCWD), old_path, Fd(AT_FDCWD), new_path, 0)
}

/// Implements symlinkat(2).
pub fn symlinkat(
    context: &mut Context,
    target: UserPath,
    dir_fd: Fd,
    path: UserPath,
) -> Result<(), Errno> {
    let target = read_path(context, target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = read_path(context, path)?;
    let start = start_node(context, dir_fd, &path)?;
    let parent = context.process.vfs.resolve_parent(start, &path)?;
    if parent.name.is_empty()
        || parent.trailing_slash
        || parent.name == b"."
        || parent.name == b".."
    {
        return Err(Errno::EEXIST);
    }
    let now = now(context);
    let creation = creation(context, 0o777, now);
    context.process.vfs.fs_mut(parent.dir.mount)?.create(
        parent.dir.ino,
        &parent.name,
        NewNode::Symlink(target),
        creation,
    )?;
    Ok(())
}

/// Implements symlink(2).
pub fn symlink(context: &mut Context, target: UserPath, path: UserPath) -> Result<(), Errno> {
    symlinkat(context, target, Fd(AT_FDCWD), path)
}

/// readlink of a node of the tree: EINVAL if it is not a symlink.
pub fn readlink_at(
    context: &mut Context,
    dir_fd: Fd,
    path: &[u8],
    buffer: UserAddr,
    size: i32,
) -> Result<usize, Errno> {
    let node = resolve_at(context, dir_fd, path, false)?;
    if context.process.vfs.metadata(node)?.kind != FileType::Symlink {
        return Err(Errno::EINVAL);
    }
    let target = context.process.vfs.fs(node.mount)?.read_link(node.ino)?;
    let length = target.len().min(size as usize);
    context.platform.write_user(buffer.0, &target[..length])?;
    Ok(length)
}

/// Implements chdir(2).
pub fn chdir(context: &mut Context, path: UserPath) -> Result<(), Errno> {
    let path = read_path(context, path)?;
    let node = resolve_at(context, Fd(AT_FDCWD), &path, true)?;
    if context.process.vfs.metadata(node)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    context.process.cwd = node;
    Ok(())
}

/// Implements fchdir(2).
pub fn fchdir(context: &mut Context, fd: Fd) -> Result<(), Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Node(node) if context.process.vfs.metadata(node)?.kind == FileType::Directory => {
            context.process.cwd = node;
            Ok(())
        }
        _ => Err(Errno::ENOTDIR),
    }
}

/// The working directory's path (getcwd): "(unreachable)" once it was removed, as Linux.
pub fn cwd_path(context: &Context) -> Vec<u8> {
    context
        .process
        .vfs
        .path_of(context.process.cwd)
        .unwrap_or_else(|_| b"(unreachable)/".to_vec())
}

/// Implements truncate(2).
pub fn truncate(context: &mut Context, path: UserPath, length: i64) -> Result<(), Errno> {
    let path = read_path(context, path)?;
    let node = resolve_at(context, Fd(AT_FDCWD), &path, true)?;
    truncate_node(context, node, length)
}

fn truncate_node(context: &mut Context, node: Node, length: i64) -> Result<(), Errno> {
    if length < 0 {
        return Err(Errno::EINVAL);
    }
    match context.process.vfs.metadata(node)?.kind {
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Regular => {}
        _ => return Err(Errno::EINVAL),
    }
    let now = now(context);
    context
        .process
        .vfs
        .fs_mut(node.mount)?
        .truncate(node.ino, length as u64, now)?;
    Ok(())
}

/// Implements ftruncate(2).
pub fn ftruncate(context: &mut Context, fd: Fd, length: i64) -> Result<(), Errno> {
    let file = context.process.files.get(fd)?;
    match file.kind {
        FileKind::Node(node)
            if file.status_flags & O_ACCMODE != 0 && file.status_flags & O_PATH == 0 =>
        {
            truncate_node(context, node, length)
        }
        FileKind::Node(_) => Err(Errno::EBADF),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements fsync(2) and fdatasync(2): the filesystem makes the file durable.
pub fn fsync(context: &mut Context, fd: Fd) -> Result<(), Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Node(node) => {
            let metadata = context.process.vfs.metadata(node)?;
            if metadata.kind == FileType::BlockDevice {
                return context.platform.disk_flush();
            }
            crate::mm::write_back_file(context, node);
            Ok(context
                .process
                .vfs
                .fs_mut(node.mount)?
                .sync(Some(node.ino))?)
        }
        _ => Err(Errno::EINVAL), // the console and signalfds cannot be synced
    }
}

/// Implements fdatasync(2).
pub fn fdatasync(context: &mut Context, fd: Fd) -> Result<(), Errno> {
    fsync(context, fd)
}

/// Implements fchmodat(2).
pub fn fchmodat(context: &mut Context, dir_fd: Fd, path: UserPath, mode: u32) -> Result<(), Errno> {
    let path = read_path(context, path)?;
    let node = resolve_at(context, dir_fd, &path, true)?;
    set_mode(context, node, mode)
}

fn set_mode(context: &mut Context, node: Node, mode: u32) -> Result<(), Errno> {
    let now = now(context);
    let changes = Changes {
        permissions: Some(mode & 0o7777),
        ..Changes::default()
    };
    context
        .process
        .vfs
        .fs_mut(node.mount)?
        .set_attributes(node.ino, changes, now)?;
    Ok(())
}

/// Implements chmod(2).
pub fn chmod(context: &mut Context, path: UserPath, mode: u32) -> Result<(), Errno> {
    fchmodat(context, Fd(AT_FDCWD), path, mode)
}

/// Implements fchmod(2).
pub fn fchmod(context: &mut Context, fd: Fd, mode: u32) -> Result<(), Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Node(node) => set_mode(context, node, mode),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements creat(2).
pub fn creat(context: &mut Context, path: UserPath, mode: u32) -> Result<i32, Errno> {
    let path = read_path(context, path)?;
    open_at(
        context,
        Fd(AT_FDCWD),
        &path,
        O_CREAT | O_WRONLY | O_TRUNC,
        mode,
    )
}

/// The VM is stopping: every filesystem makes its data durable and leaves its format clean.
pub fn shutdown(context: &mut Context) {
    let mut mount = 0;
    while let Ok(fs) = context.process.vfs.fs_mut(mount) {
        if let Err(error) = fs.shutdown() {
            context.platform.log(
                crate::platform::LogLevel::Warn,
                format_args!("a filesystem could not be shut down cleanly: {error:?}"),
            );
        }
        mount += 1;
    }
}

/// Implements sync(2): every filesystem, and the shared file mappings first.
pub fn sync(context: &mut Context) -> Result<(), Errno> {
    crate::mm::write_back_all(context);
    let mut mount = 0;
    while let Ok(fs) = context.process.vfs.fs_mut(mount) {
        fs.sync(None)?;
        mount += 1;
    }
    Ok(())
}

/// Implements syncfs(2): the filesystem `fd` is on (a pipe's or the console's has nothing to
/// write: 0, as Linux's pipefs).
pub fn syncfs(context: &mut Context, fd: Fd) -> Result<(), Errno> {
    let FileKind::Node(node) = context.process.files.get(fd)?.kind else {
        return Ok(());
    };
    crate::mm::write_back_all(context);
    Ok(context.process.vfs.fs_mut(node.mount)?.sync(None)?)
}

/// Whether a path names something in the tree (for access(2)): its metadata, and whether
/// its filesystem is mounted read-only.
pub fn exists(
    context: &Context,
    dir_fd: Fd,
    path: &[u8],
    follow: bool,
) -> Result<(Metadata, bool), Errno> {
    let node = resolve_at(context, dir_fd, path, follow)?;
    let read_only = context.process.vfs.fs(node.mount)?.read_only();
    Ok((context.process.vfs.metadata(node)?, read_only))
}

/// statx's mask bits (include/uapi/linux/stat.h): what it fills in.
const STATX_BASIC_STATS: u32 = 0x07ff;
const STATX_MNT_ID: u32 = 0x1000;
/// AT_STATX_* sync modes, accepted (there is no remote filesystem to sync with).
const AT_STATX_SYNC_TYPE: i32 = 0x6000;

/// The node a path/fd pair names for the *at calls that take AT_EMPTY_PATH.
fn node_at(context: &Context, dir_fd: Fd, path: &[u8], flags: i32) -> Result<Node, Errno> {
    if path.is_empty() {
        if flags & crate::fs::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dir_fd.0 == AT_FDCWD {
            return Ok(context.process.cwd);
        }
        return match context.process.files.get(dir_fd)?.kind {
            FileKind::Node(node) => Ok(node),
            _ => Err(Errno::EBADF), // not a node of the tree: the caller handles it
        };
    }
    resolve_at(context, dir_fd, path, flags & AT_SYMLINK_NOFOLLOW == 0)
}

fn statx_time(time: Timestamp) -> crate::uapi::StatxTimestamp {
    crate::uapi::StatxTimestamp {
        tv_sec: time.seconds,
        tv_nsec: time.nanoseconds,
        __reserved: 0,
    }
}

/// Implements statx(2) for the nodes of the tree (the console and the like: from fstat).
pub fn statx(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    flags: i32,
    mask: u32,
    buffer: UserAddr,
) -> Result<(), Errno> {
    let known = crate::fs::AT_EMPTY_PATH
        | AT_SYMLINK_NOFOLLOW
        | crate::fs::AT_NO_AUTOMOUNT
        | AT_STATX_SYNC_TYPE;
    if flags & !known != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if mask & 0x8000_0000 != 0 {
        return Err(Errno::EINVAL); // STATX__RESERVED
    }
    let name = read_path(context, path)?;
    let stat = match node_at(context, dir_fd, &name, flags) {
        Ok(node) => {
            let metadata = context.process.vfs.metadata(node)?;
            stat_of(node, &metadata)
        }
        // An fd that is not a node (the console, a pipe): what fstat says of it.
        Err(Errno::EBADF) if name.is_empty() => crate::fs::stat_of_fd(context, dir_fd)?,
        Err(Errno::ENOENT) if name.starts_with(b"/proc/") => {
            crate::fs::proc_stat(context, &name).ok_or(Errno::ENOENT)?
        }
        Err(errno) => return Err(errno),
    };
    let (major, minor) = (
        ((stat.st_rdev >> 8) & 0xfff) as u32,
        ((stat.st_rdev & 0xff) | ((stat.st_rdev >> 12) & !0xff)) as u32,
    );
    let time = |seconds: i64, nanoseconds: i64| StatxTimestampParts(seconds, nanoseconds as u32);
    let value = crate::uapi::Statx {
        stx_mask: STATX_BASIC_STATS | STATX_MNT_ID,
        stx_blksize: stat.st_blksize as u32,
        stx_nlink: stat.st_nlink as u32,
        stx_uid: stat.st_uid,
        stx_gid: stat.st_gid,
        stx_mode: stat.st_mode as u16,
        stx_ino: stat.st_ino,
        stx_size: stat.st_size as u64,
        stx_blocks: stat.st_blocks as u64,
        stx_atime: time(stat.st_atime, stat.st_atime_nsec).into(),
        stx_ctime: time(stat.st_ctime, stat.st_ctime_nsec).into(),
        stx_mtime: time(stat.st_mtime, stat.st_mtime_nsec).into(),
        stx_rdev_major: major,
        stx_rdev_minor: minor,
        stx_dev_major: 0,
        stx_dev_minor: stat.st_dev as u32,
        stx_mnt_id: stat.st_dev,
        ..crate::uapi::Statx::default()
    };
    context.write_struct(buffer.0, &value)
}

struct StatxTimestampParts(i64, u32);

impl From<StatxTimestampParts> for crate::uapi::StatxTimestamp {
    fn from(parts: StatxTimestampParts) -> Self {
        statx_time(Timestamp {
            seconds: parts.0,
            nanoseconds: parts.1,
        })
    }
}

fn statfs_of(context: &Context, node: Node) -> Result<crate::uapi::Statfs, Errno> {
    let stats = context.process.vfs.fs(node.mount)?.stats();
    Ok(crate::uapi::Statfs {
        f_type: stats.magic as i64,
        f_bsize: stats.block_size as i64,
        f_blocks: stats.blocks,
        f_bfree: stats.free_blocks,
        f_bavail: stats.free_blocks,
        f_files: stats.files,
        f_ffree: stats.free_files,
        f_fsid: [0, node.mount as i32],
        f_namelen: stats.name_max as i64,
        f_frsize: stats.block_size as i64,
        f_flags: 0x20, // ST_RELATIME... Linux reports ST_VALID (0x20) among the mount flags
        f_spare: [0; 4],
    })
}

/// Implements statfs(2).
pub fn statfs(context: &mut Context, path: UserPath, buffer: UserAddr) -> Result<(), Errno> {
    let name = read_path(context, path)?;
    let node = resolve_at(context, Fd(AT_FDCWD), &name, true)?;
    let value = statfs_of(context, node)?;
    context.write_struct(buffer.0, &value)
}

/// Implements fstatfs(2).
pub fn fstatfs(context: &mut Context, fd: Fd, buffer: UserAddr) -> Result<(), Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Node(node) => {
            let value = statfs_of(context, node)?;
            context.write_struct(buffer.0, &value)
        }
        _ => Err(Errno::ENOSYS), // pipefs, the console's devpts: not described
    }
}

/// utimensat's special nanosecond values (include/uapi/linux/stat.h).
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// Implements utimensat(2).
pub fn utimensat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserAddr,
    times: UserAddr,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | crate::fs::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    // A NULL path means dir_fd itself (futimens).
    let node = if path.is_null() {
        match context.process.files.get(dir_fd)?.kind {
            FileKind::Node(node) => node,
            _ => return Err(Errno::EINVAL),
        }
    } else {
        let name = read_path(context, UserPath(path.0))?;
        node_at(context, dir_fd, &name, flags)?
    };
    let now = now(context);
    let (accessed, modified) = if times.is_null() {
        (Some(now), Some(now))
    } else {
        let pair: [crate::uapi::Timespec; 2] = context.read_struct(times.0)?;
        let decode = |time: crate::uapi::Timespec| -> Result<Option<Timestamp>, Errno> {
            match time.tv_nsec {
                UTIME_NOW => Ok(Some(now)),
                UTIME_OMIT => Ok(None),
                nanoseconds if (0..1_000_000_000).contains(&nanoseconds) => Ok(Some(Timestamp {
                    seconds: time.tv_sec,
                    nanoseconds: nanoseconds as u32,
                })),
                _ => Err(Errno::EINVAL),
            }
        };
        (decode(pair[0])?, decode(pair[1])?)
    };
    set_times(context, node, accessed, modified)
}

/// Sets a node's access and modification times (None: left as they are).
fn set_times(
    context: &mut Context,
    node: Node,
    accessed: Option<Timestamp>,
    modified: Option<Timestamp>,
) -> Result<(), Errno> {
    let now = now(context);
    let changes = Changes {
        accessed,
        modified,
        ..Changes::default()
    };
    context
        .process
        .vfs
        .fs_mut(node.mount)?
        .set_attributes(node.ino, changes, now)?;
    Ok(())
}

/// Implements futimesat(2): utimensat's older form, with `struct timeval` (microseconds)
/// and no flags; a NULL path means `dir_fd` itself (glibc's futimes).
pub fn futimesat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserAddr,
    times: UserAddr,
) -> Result<(), Errno> {
    let node = if path.is_null() {
        match context.process.files.get(dir_fd)?.kind {
            FileKind::Node(node) => node,
            _ => return Err(Errno::EINVAL),
        }
    } else {
        let name = read_path(context, UserPath(path.0))?;
        resolve_at(context, dir_fd, &name, true)?
    };
    let now = now(context);
    if times.is_null() {
        return set_times(context, node, Some(now), Some(now));
    }
    // Two struct timeval: tv_sec, tv_usec.
    let pair: [i64; 4] = context.read_struct(times.0)?;
    let decode = |seconds: i64, microseconds: i64| -> Result<Timestamp, Errno> {
        if !(0..1_000_000).contains(&microseconds) {
            return Err(Errno::EINVAL);
        }
        Ok(Timestamp {
            seconds,
            nanoseconds: microseconds as u32 * 1000,
        })
    };
    let accessed = decode(pair[0], pair[1])?;
    let modified = decode(pair[2], pair[3])?;
    set_times(context, node, Some(accessed), Some(modified))
}

/// Implements utimes(2).
pub fn utimes(context: &mut Context, path: UserPath, times: UserAddr) -> Result<(), Errno> {
    futimesat(context, Fd(AT_FDCWD), UserAddr(path.0), times)
}

/// Implements utime(2): `struct utimbuf` (actime, modtime: whole seconds), or NULL for now.
pub fn utime(context: &mut Context, path: UserPath, times: UserAddr) -> Result<(), Errno> {
    let name = read_path(context, path)?;
    let node = resolve_at(context, Fd(AT_FDCWD), &name, true)?;
    let now = now(context);
    if times.is_null() {
        return set_times(context, node, Some(now), Some(now));
    }
    let [accessed, modified]: [i64; 2] = context.read_struct(times.0)?;
    let at = |seconds| Timestamp {
        seconds,
        nanoseconds: 0,
    };
    set_times(context, node, Some(at(accessed)), Some(at(modified)))
}

/// Implements fchownat(2) (as root: any owner).
pub fn fchownat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    uid: u32,
    gid: u32,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | crate::fs::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_path(context, path)?;
    let node = node_at(context, dir_fd, &name, flags)?;
    set_owner(context, node, uid, gid)
}

fn set_owner(context: &mut Context, node: Node, uid: u32, gid: u32) -> Result<(), Errno> {
    // -1 leaves an id as it is.
    let changes = Changes {
        uid: (uid != u32::MAX).then_some(uid),
        gid: (gid != u32::MAX).then_some(gid),
        ..Changes::default()
    };
    let now = now(context);
    context
        .process
        .vfs
        .fs_mut(node.mount)?
        .set_attributes(node.ino, changes, now)?;
    Ok(())
}

/// Implements chown(2).
pub fn chown(context: &mut Context, path: UserPath, uid: u32, gid: u32) -> Result<(), Errno> {
    fchownat(context, Fd(AT_FDCWD), path, uid, gid, 0)
}

/// Implements lchown(2).
pub fn lchown(context: &mut Context, path: UserPath, uid: u32, gid: u32) -> Result<(), Errno> {
    fchownat(context, Fd(AT_FDCWD), path, uid, gid, AT_SYMLINK_NOFOLLOW)
}

/// Implements fchown(2).
pub fn fchown(context: &mut Context, fd: Fd, uid: u32, gid: u32) -> Result<(), Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Node(node) => set_owner(context, node, uid, gid),
        _ => Ok(()), // the console and pipes: nothing to record
    }
}

/// fallocate's modes (include/uapi/linux/falloc.h).
const FALLOC_FL_KEEP_SIZE: i32 = 1;
const FALLOC_FL_PUNCH_HOLE: i32 = 2;

/// Implements fallocate(2): mode 0 and KEEP_SIZE reserve (tmpfs allocates as it writes, so
/// they only extend the size); PUNCH_HOLE|KEEP_SIZE zeroes the range.
pub fn fallocate(
    context: &mut Context,
    fd: Fd,
    mode: i32,
    offset: i64,
    length: i64,
) -> Result<(), Errno> {
    let file = context.process.files.get(fd)?;
    let FileKind::Node(node) = file.kind else {
        return Err(Errno::ESPIPE);
    };
    if offset < 0 || length <= 0 {
        return Err(Errno::EINVAL);
    }
    if file.status_flags & O_ACCMODE == 0 {
        return Err(Errno::EBADF);
    }
    let metadata = context.process.vfs.metadata(node)?;
    match metadata.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        _ => return Err(Errno::ENODEV),
    }
    let end = offset.checked_add(length).ok_or(Errno::EFBIG)? as u64;
    let now = now(context);
    let fs = context.process.vfs.fs_mut(node.mount)?;
    match mode {
        0 => {
            // Past the end: written as zeros, so the blocks are really taken (ENOSPC now,
            // not at a later write), and undone if they cannot all be. Holes inside the file
            // stay holes (the filesystems cannot say where they are).
            if end > metadata.size {
                let zeros = [0u8; 4096];
                let mut at = metadata.size;
                while at < end {
                    let chunk = ((end - at) as usize).min(zeros.len());
                    match fs.write(node.ino, at, &zeros[..chunk], now) {
                        Ok(written) if written > 0 => at += written as u64,
                        failed => {
                            let _ = fs.truncate(node.ino, metadata.size, now);
                            return Err(match failed {
                                Err(error) => error.into(),
                                Ok(_) => Errno::ENOSPC,
                            });
                        }
                    }
                }
            }
            Ok(())
        }
        // Inside the file there is nothing to change; past its end the blocks would have to be
        // taken without the size moving, which the filesystems here cannot do.
        FALLOC_FL_KEEP_SIZE if end <= metadata.size => Ok(()),
        FALLOC_FL_KEEP_SIZE => Err(Errno::EOPNOTSUPP),
        mode if mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
            let stop = end.min(metadata.size);
            let mut at = offset as u64;
            let zeros = [0u8; 4096];
            while at < stop {
                let chunk = ((stop - at) as usize).min(zeros.len());
                fs.write(node.ino, at, &zeros[..chunk], now)?;
                at += chunk as u64;
            }
            Ok(())
        }
        FALLOC_FL_PUNCH_HOLE => Err(Errno::EINVAL), // PUNCH_HOLE needs KEEP_SIZE
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// MFD_* flags of memfd_create (include/uapi/linux/memfd.h).
const MFD_CLOEXEC: u32 = 1;
const MFD_ALLOW_SEALING: u32 = 2;

/// Implements memfd_create(2): an unnamed tmpfs file, read-write.
pub fn memfd_create(context: &mut Context, name: UserPath, flags: u32) -> Result<i32, Errno> {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = context.read_c_string(name.0, 249).map_err(|errno| {
        if errno == Errno::ENAMETOOLONG {
            Errno::EINVAL
        } else {
            errno
        }
    })?;
    let _ = name;
    let mut open_flags = O_TMPFILE | crate::fs::O_RDWR;
    if flags & MFD_CLOEXEC != 0 {
        open_flags |= O_CLOEXEC;
    }
    open_at(context, Fd(AT_FDCWD), b"/dev/shm", open_flags, 0o777)
}

/// Implements copy_file_range(2) between nodes of the tree.
pub fn copy_file_range(
    context: &mut Context,
    fd_in: Fd,
    offset_in: UserAddr,
    fd_out: Fd,
    offset_out: UserAddr,
    length: usize,
    flags: u32,
) -> Result<usize, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let (input, output) = (
        context.process.files.get(fd_in)?,
        context.process.files.get(fd_out)?,
    );
    let (FileKind::Node(from), FileKind::Node(to)) = (input.kind, output.kind) else {
        return Err(Errno::EINVAL);
    };
    if input.status_flags & O_ACCMODE == O_WRONLY || output.status_flags & O_ACCMODE == 0 {
        return Err(Errno::EBADF);
    }
    if output.status_flags & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    for node in [from, to] {
        match context.process.vfs.metadata(node)?.kind {
            FileType::Regular => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    let mut read_at = match offset_in.is_null() {
        true => position(context, fd_in)?,
        false => context
            .read_struct::<i64>(offset_in.0)?
            .try_into()
            .map_err(|_| Errno::EINVAL)?,
    };
    let mut write_at = match offset_out.is_null() {
        true => position(context, fd_out)?,
        false => context
            .read_struct::<i64>(offset_out.0)?
            .try_into()
            .map_err(|_| Errno::EINVAL)?,
    };
    let now = now(context);
    let mut done = 0;
    // No bigger than the request: a small file costs no 64 KiB buffer to zero.
    let mut chunk = alloc::vec![0u8; length.min(64 * 1024)];
    while done < length {
        let want = (length - done).min(chunk.len());
        let got =
            context
                .process
                .vfs
                .fs_mut(from.mount)?
                .read(from.ino, read_at, &mut chunk[..want])?;
        if got == 0 {
            break;
        }
        // What shared mappings hold is the files' (as for read and write).
        crate::mm::read_through_mappings(context, from, read_at, &mut chunk[..got]);
        let written =
            context
                .process
                .vfs
                .fs_mut(to.mount)?
                .write(to.ino, write_at, &chunk[..got], now);
        let wrote = match written {
            Ok(wrote) => wrote,
            // ENOSPC after some was copied: the count copied, as Linux answers.
            Err(_) if done > 0 => break,
            Err(error) => return Err(error.into()),
        };
        crate::mm::write_through_mappings(context, to, write_at, &chunk[..wrote]);
        read_at += wrote as u64;
        write_at += wrote as u64;
        done += wrote;
        if wrote < got {
            break;
        }
    }
    if offset_in.is_null() {
        context.process.files.set_position(fd_in, read_at)?;
    } else {
        context.write_struct(offset_in.0, &(read_at as i64))?;
    }
    if offset_out.is_null() {
        context.process.files.set_position(fd_out, write_at)?;
    } else {
        context.write_struct(offset_out.0, &(write_at as i64))?;
    }
    Ok(done)
}

/// Implements sendfile(2): from a file of the tree to any writable fd (a file, the console, a
/// pipe), at most `count` bytes.
pub fn sendfile(
    context: &mut Context,
    out_fd: Fd,
    in_fd: Fd,
    offset: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    let input = context.process.files.get(in_fd)?;
    let FileKind::Node(from) = input.kind else {
        return Err(Errno::EINVAL);
    };
    if input.status_flags & O_ACCMODE == O_WRONLY {
        return Err(Errno::EBADF);
    }
    context.process.files.get(out_fd)?;
    let mut at = match offset.is_null() {
        true => position(context, in_fd)?,
        false => context
            .read_struct::<i64>(offset.0)?
            .try_into()
            .map_err(|_| Errno::EINVAL)?,
    };
    // Through the process's kernel buffer (kept between calls: zeroing one per call cost
    // more than the copy), then out as write(2) would send it.
    let mut chunk = core::mem::take(&mut context.process.io_buffer);
    let moved = sendfile_chunks(context, out_fd, from, &mut at, count, &mut chunk);
    context.process.io_buffer = chunk;
    let done = moved?;
    if offset.is_null() {
        context.process.files.set_position(in_fd, at)?;
    } else {
        context.write_struct(offset.0, &(at as i64))?;
    }
    Ok(done)
}

/// sendfile's loop: reads `from` at `at` into `chunk` and writes that to `out_fd`, until
/// `count` bytes went, the file ended, or the output took less; moves `at` by what went.
fn sendfile_chunks(
    context: &mut Context,
    out_fd: Fd,
    from: Node,
    at: &mut u64,
    count: usize,
    chunk: &mut Vec<u8>,
) -> Result<usize, Errno> {
    let output = context.process.files.get(out_fd)?;
    let socket = match output.kind {
        FileKind::Socket { id } => Some(id),
        _ => None,
    };
    let nonblocking = output.status_flags & crate::fs::O_NONBLOCK != 0;
    let mut done = 0;
    while done < count {
        let room = socket.and_then(|id| crate::net::send_room(context, id));
        if room == Some(0) && nonblocking && done > 0 {
            // Full: what went is the answer (the next call gets EAGAIN).
            break;
        }
        if let (Some(id), Some(1..)) = (socket, room) {
            // Straight from the file into the connection's send buffer, one copy fewer.
            if let Some(sent) = crate::net::send_from_file(context, id, from, *at, count - done) {
                match sent {
                    Ok(0) => break,
                    Ok(sent) => {
                        *at += sent as u64;
                        done += sent;
                        continue;
                    }
                    Err(_) if done > 0 => break,
                    Err(error) => return Err(error),
                }
            }
        }
        // No more than a socket has room for: reading 64 KiB of the file to send the few
        // kilobytes a busy connection takes, and again at the next call, was a third of
        // nginx's time with large files. A full non-blocking socket gets one byte, for the
        // writer's answer (EAGAIN, or EPIPE for a connection shut for writing).
        let limit = match room {
            Some(0) if nonblocking => 1,
            Some(room) if room > 0 => room,
            _ => usize::MAX,
        };
        let want = (count - done).min(64 * 1024).min(limit);
        if chunk.len() < want {
            chunk.resize(want, 0);
        }
        let got =
            context
                .process
                .vfs
                .fs_mut(from.mount)?
                .read(from.ino, *at, &mut chunk[..want])?;
        if got == 0 {
            break;
        }
        crate::mm::read_through_mappings(context, from, *at, &mut chunk[..got]);
        let wrote = match crate::fs::write_kernel_bytes(context, out_fd, &chunk[..got]) {
            Ok(wrote) => wrote,
            // A socket or pipe that filled up after taking some (EAGAIN): what went is the
            // answer, and the offset moves by it, as Linux's partial sendfile. Losing it would
            // make the program send those bytes again.
            Err(_) if done > 0 => break,
            Err(error) => return Err(error),
        };
        *at += wrote as u64;
        done += wrote;
        if wrote < got {
            break;
        }
    }
    Ok(done)
}

/// flock(2)'s operations (include/uapi/asm-generic/fcntl.h).
const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;

/// Implements flock(2): locks held by open file descriptions, shared or exclusive; a
/// conflicting request waits (or EWOULDBLOCK with LOCK_NB), and closing the description
/// releases its lock.
pub fn flock(context: &mut Context, fd: Fd, operation: i32) -> Result<(), Errno> {
    let file = context.process.files.get(fd)?;
    let FileKind::Node(node) = file.kind else {
        return Err(Errno::EINVAL); // pipes and the console: not lockable here
    };
    if file.status_flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let exclusive = match operation & !LOCK_NB {
        LOCK_SH => false,
        LOCK_EX => true,
        LOCK_UN => {
            context.process.files.unlock(fd, node)?;
            context.platform.wake_all();
            return Ok(());
        }
        _ => return Err(Errno::EINVAL),
    };
    loop {
        if context.process.files.try_lock(fd, node, exclusive)? {
            return Ok(());
        }
        if operation & LOCK_NB != 0 {
            return Err(Errno::EAGAIN); // EWOULDBLOCK
        }
        crate::signal::wait_step(context, u64::MAX, crate::platform::WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
    }
}

/// fcntl's record-lock commands and `struct flock` (include/uapi/asm-generic/fcntl.h).
pub const F_GETLK: i32 = 5;
pub const F_SETLK: i32 = 6;
pub const F_SETLKW: i32 = 7;
pub const F_OFD_GETLK: i32 = 36;
pub const F_OFD_SETLK: i32 = 37;
pub const F_OFD_SETLKW: i32 = 38;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
#[repr(C)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    __pad: u32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    __pad2: u32,
}

/// fcntl's record locks (`crate::locks`): POSIX locks are the process's and never conflict
/// with each other; OFD locks are their open file description's and conflict with other
/// descriptions' and with the process's POSIX locks. F_SETLKW and F_OFD_SETLKW wait (another
/// thread unlocks, or a signal interrupts: EINTR).
pub fn record_lock(
    context: &mut Context,
    fd: Fd,
    command: i32,
    argument: u64,
) -> Result<i32, Errno> {
    let file = context.process.files.get(fd)?;
    let mut lock: Flock = context.read_struct(argument)?;
    let ofd = matches!(command, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && lock.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let FileKind::Node(node) = file.kind else {
        return Err(Errno::EBADF); // pipes and the console: not lockable here
    };
    if file.status_flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let base = match lock.l_whence {
        0 => 0,
        1 => position(context, fd)? as i64,
        2 => context.process.vfs.metadata(node)?.size as i64,
        _ => return Err(Errno::EINVAL),
    };
    // [start, end) in bytes; a length of 0 runs to the end of the file, however far it
    // grows (end u64::MAX); a negative one ends at l_start.
    let start = base.checked_add(lock.l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match lock.l_len {
        0 => (start, u64::MAX),
        length if length > 0 => (
            start,
            start.checked_add(length).ok_or(Errno::EOVERFLOW)? as u64,
        ),
        length => (
            start.checked_add(length).ok_or(Errno::EINVAL)?,
            start as u64,
        ),
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let start = start as u64;
    let owner = if ofd {
        crate::locks::Owner::Description(context.process.files.description_of(fd)?)
    } else {
        crate::locks::Owner::Process
    };
    match command {
        F_GETLK | F_OFD_GETLK => {
            let exclusive = match lock.l_type {
                F_RDLCK => false,
                F_WRLCK => true,
                _ => return Err(Errno::EINVAL),
            };
            match context
                .process
                .files
                .record_locks
                .conflict(node, owner, start, end, exclusive)
            {
                None => lock.l_type = F_UNLCK,
                Some(held) => {
                    lock.l_type = if held.exclusive { F_WRLCK } else { F_RDLCK };
                    lock.l_whence = 0;
                    lock.l_start = held.start as i64;
                    lock.l_len = if held.end == u64::MAX {
                        0
                    } else {
                        (held.end - held.start) as i64
                    };
                    lock.l_pid = match held.owner {
                        crate::locks::Owner::Process => context.process.pid,
                        crate::locks::Owner::Description(_) => -1,
                    };
                }
            }
            context.write_struct(argument, &lock)?;
            Ok(0)
        }
        _ => {
            let access = file.status_flags & O_ACCMODE;
            let request = match lock.l_type {
                F_RDLCK if access == O_WRONLY => return Err(Errno::EBADF),
                F_WRLCK if access == 0 => return Err(Errno::EBADF),
                F_RDLCK => crate::locks::LockRequest::Read,
                F_WRLCK => crate::locks::LockRequest::Write,
                F_UNLCK => crate::locks::LockRequest::Unlock,
                _ => return Err(Errno::EINVAL),
            };
            let waits = matches!(command, F_SETLKW | F_OFD_SETLKW);
            let exclusive = request == crate::locks::LockRequest::Write;
            loop {
                let locks = &mut context.process.files.record_locks;
                if request == crate::locks::LockRequest::Unlock
                    || locks.conflict(node, owner, start, end, exclusive).is_none()
                {
                    locks.set(node, owner, start, end, request);
                    context.platform.wake_all();
                    return Ok(0);
                }
                if !waits {
                    return Err(Errno::EAGAIN);
                }
                crate::signal::wait_step(context, u64::MAX, crate::platform::WakeOn::AnyEvent)
                    .map_err(|_| Errno::ERESTARTSYS)?;
            }
        }
    }
}
