//! File descriptors and the file syscalls on what is not a node of the file tree: the console
//! (fds 0, 1 and 2), signalfds and the /proc files. Nodes of the tree (regular files,
//! directories, device nodes) are `files.rs`'s.

use crate::args::{Fd, UserAddr, UserPath};
use crate::errno::Errno;
use crate::platform::{ConsoleStream, Context, PATH_MAX};
use crate::uapi::*;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use pith_fs::vfs::Restrictions;

/// NR_OPEN: the hard ceiling of RLIMIT_NOFILE (include/uapi/linux/fs.h is 1024*1024).
pub const NR_OPEN: u64 = 1 << 20;

/// open(2) flags (include/uapi/asm-generic/fcntl.h).
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_ACCMODE: u32 = 0o3;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_LARGEFILE: u32 = 0o100000;
/// O_DSYNC: each write is durable when it returns (data, and the metadata to read it back).
pub const O_DSYNC: u32 = 0o10000;
/// O_SYNC: __O_SYNC | O_DSYNC (include/uapi/asm-generic/fcntl.h).
pub const O_SYNC: u32 = 0o4010000;
/// fcntl commands and flags.
pub const F_DUPFD: i32 = 0;
pub const F_GETFD: i32 = 1;
pub const F_SETFD: i32 = 2;
pub const F_GETFL: i32 = 3;
pub const F_SETFL: i32 = 4;
pub const F_DUPFD_CLOEXEC: i32 = 1030;
pub const FD_CLOEXEC: u64 = 1;
/// *at() flags (include/uapi/linux/fcntl.h).
pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
pub const AT_NO_AUTOMOUNT: i32 = 0x800;
pub const AT_EMPTY_PATH: i32 = 0x1000;
/// lseek whence values.
pub const SEEK_SET: i32 = 0;
pub const SEEK_END: i32 = 2;
/// tty ioctls (include/uapi/asm-generic/ioctls.h).
pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TIOCGPGRP: u32 = 0x540f;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const FIONREAD: u32 = 0x541b;
pub const FIONBIO: u32 = 0x5421;
pub const FIONCLEX: u32 = 0x5450;
pub const FIOCLEX: u32 = 0x5451;
/// MAX_RW_COUNT: Linux caps one read or write at INT_MAX rounded down to a page.
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// What an open file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// The console; writes go to the given stream (fd 2's to the host's stderr).
    Console(ConsoleStream),
    /// A read-only file whose text the kernel made when it was opened (/proc/self/maps).
    Generated,
    /// A signalfd: reading takes pending signals of its mask (signalfd(2)).
    Signalfd { mask: u64 },
    /// A node of the file tree (files.rs); its position is kept in the fd table.
    Node(pith_fs::vfs::Node),
    /// An end of a pipe (pipe.rs).
    Pipe { id: u32, write_end: bool },
    /// An IPv4 or IPv6 socket (net.rs).
    Socket { id: u32 },
    /// An AF_UNIX socket (unix.rs).
    UnixSocket { id: u32 },
    /// An epoll instance (epoll.rs).
    Epoll { id: u32 },
    /// An eventfd (eventfd.rs).
    Eventfd { id: u32 },
    /// A timerfd (timerfd.rs).
    Timerfd { id: u32 },
}

/// The text of a generated file and the description's position in it.
struct Generated {
    bytes: Vec<u8>,
    offset: u64,
}

/// An open file description, shared by duplicated fds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub kind: FileKind,
    /// File status flags (O_APPEND, O_NONBLOCK, the access mode).
    pub status_flags: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FdEntry {
    /// The open file description, shared by the fds dup'd from one another.
    description: u32,
    close_on_exec: bool,
}

/// The fd table: sparse (a program may use fd 1048575 alone) with open file descriptions
/// shared between dup'd fds, as on Linux.
pub struct FdTable {
    entries: BTreeMap<u32, FdEntry>,
    /// Every fd below this one is in use (Linux's `next_fd`): the search for the lowest free
    /// fd starts here. A close below it brings it down.
    first_maybe_free: u32,
    /// Open file descriptions and how many fds refer to each.
    descriptions: BTreeMap<u32, (OpenFile, usize)>,
    /// The contents of generated files, by description.
    generated: BTreeMap<u32, Generated>,
    /// The file position of each description of a node.
    positions: BTreeMap<u32, u64>,
    /// Nodes whose last description was just closed: the filesystem is told (files.rs).
    closed: Vec<pith_fs::vfs::Node>,
    /// Sockets, epoll instances and eventfds whose last description was just closed: their
    /// owners are told (files.rs's settle_closes).
    closed_objects: Vec<FileKind>,
    /// Pipes by id, and the next id.
    pipes: BTreeMap<u32, crate::pipe::Pipe>,
    /// The path each description of a node was opened by (for /proc/self/fd).
    paths: BTreeMap<u32, Vec<u8>>,
    /// flock(2) locks: per node, the descriptions holding it and whether exclusively.
    flocks: BTreeMap<pith_fs::vfs::Node, (bool, Vec<u32>)>,
    /// fcntl's record locks (POSIX and OFD).
    pub record_locks: crate::locks::RecordLocks,
    next_pipe: u32,
    next_description: u32,
    /// The console's termios, as TCSETS last set it.
    pub console_termios: Termios,
    /// For epoll's ready list (epoll.rs), once the program has an interest anywhere: the
    /// pipe ends and eventfds watched, those of them with events not looked at yet, and
    /// the descriptions closed for good (their interests go).
    epoll_in_use: bool,
    epoll_watched: BTreeSet<FileKind>,
    epoll_touched: BTreeSet<FileKind>,
    epoll_closed: Vec<(u32, FileKind)>,
}

/// The termios of a freshly opened Linux tty (drivers/tty/tty_io.c's tty_std_termios).
pub const DEFAULT_TERMIOS: Termios = Termios {
    c_iflag: 0o2400,   // ICRNL | IXON
    c_oflag: 0o5,      // OPOST | ONLCR
    c_cflag: 0o277,    // B38400 | CS8 | CREAD | HUPCL
    c_lflag: 0o105073, // ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
    c_line: 0,
    c_cc: [
        3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
    ],
};

fn fd_index(fd: Fd) -> Result<u32, Errno> {
    u32::try_from(fd.0).map_err(|_| Errno::EBADF)
}

impl FdTable {
    /// fds 0, 1 and 2 open on the console, read-write as a terminal's are. 0 and 1 share one
    /// description; 2 has its own, since the host shows it apart.
    pub fn with_console() -> FdTable {
        let mut table = FdTable {
            entries: BTreeMap::new(),
            first_maybe_free: 0,
            descriptions: BTreeMap::new(),
            generated: BTreeMap::new(),
            positions: BTreeMap::new(),
            closed: Vec::new(),
            closed_objects: Vec::new(),
            pipes: BTreeMap::new(),
            flocks: BTreeMap::new(),
            record_locks: crate::locks::RecordLocks::default(),
            paths: BTreeMap::new(),
            next_pipe: 0,
            next_description: 0,
            console_termios: DEFAULT_TERMIOS,
            epoll_in_use: false,
            epoll_watched: BTreeSet::new(),
            epoll_touched: BTreeSet::new(),
            epoll_closed: Vec::new(),
        };
        let console = |stream| OpenFile {
            kind: FileKind::Console(stream),
            status_flags: O_RDWR,
        };
        let output = table.new_description(console(ConsoleStream::Output));
        let error = table.new_description(console(ConsoleStream::Error));
        for (fd, description) in [(0, output), (1, output), (2, error)] {
            table.attach(fd, description, false);
        }
        table
    }

    fn new_description(&mut self, file: OpenFile) -> u32 {
        if let FileKind::Pipe { id, write_end } = file.kind {
            if let Some(pipe) = self.pipes.get_mut(&id) {
                if write_end {
                    pipe.writers += 1;
                } else {
                    pipe.readers += 1;
                }
            }
        }
        let id = self.next_description;
        self.next_description += 1;
        self.descriptions.insert(id, (file, 0));
        id
    }

    /// Points `fd` at `description`, closing what `fd` held.
    fn attach(&mut self, fd: u32, description: u32, close_on_exec: bool) {
        if let Some((_, references)) = self.descriptions.get_mut(&description) {
            *references += 1;
        }
        if let Some(old) = self.entries.insert(
            fd,
            FdEntry {
                description,
                close_on_exec,
            },
        ) {
            self.release(old.description);
        }
    }

    /// Takes a reference on `fd`'s open description for a message in flight (SCM_RIGHTS):
    /// the file stays open while the message waits, though every fd of it may be closed.
    pub fn hold(&mut self, fd: Fd) -> Result<u32, Errno> {
        let entry = self.entry(fd)?;
        if let Some((_, references)) = self.descriptions.get_mut(&entry.description) {
            *references += 1;
        }
        Ok(entry.description)
    }

    /// The lowest fd below `limit` that is free (EMFILE if none is).
    fn lowest_free_fd(&self, limit: u32) -> Result<u32, Errno> {
        self.lowest_free_fd_from(0, limit)
    }

    /// The lowest free fd at or above `minimum` and below `limit` (EMFILE if none is).
    fn lowest_free_fd_from(&self, minimum: u32, limit: u32) -> Result<u32, Errno> {
        // The first gap in the fds in use, walked in order from `first_maybe_free` (those
        // below it are all in use): a lookup per candidate fd was a tenth of what nginx's
        // request took with fifty connections open, and a walk from 0 still 2%; a server
        // closes one connection and accepts the next, so the walk most often ends at once.
        let mut free = minimum.max(self.first_maybe_free);
        for &fd in self.entries.range(free..).map(|(fd, _)| fd) {
            if fd != free {
                break;
            }
            free += 1;
        }
        if free < limit {
            Ok(free)
        } else {
            Err(Errno::EMFILE)
        }
    }

    /// Notes that `fd`, just taken, was the lowest free one: every fd up to it is in use.
    fn took_lowest(&mut self, fd: u32) {
        self.first_maybe_free = fd + 1;
    }

    /// Gives a held description the lowest free fd below `limit`: the hold becomes the fd's
    /// reference.
    pub fn install_held(
        &mut self,
        description: u32,
        close_on_exec: bool,
        limit: u32,
    ) -> Result<Fd, Errno> {
        let free = self.lowest_free_fd(limit)?;
        self.took_lowest(free);
        self.entries.insert(
            free,
            FdEntry {
                description,
                close_on_exec,
            },
        );
        Ok(Fd(free as i32))
    }

    /// Takes one more reference on a held description (a peeked message's files).
    pub fn hold_description(&mut self, description: u32) {
        if let Some((_, references)) = self.descriptions.get_mut(&description) {
            *references += 1;
        }
    }

    /// Drops a held reference (a message in flight was dropped unread).
    pub fn drop_held(&mut self, description: u32) {
        self.unreference(description);
    }

    fn release(&mut self, description: u32) {
        if let Some((
            OpenFile {
                kind: FileKind::Node(node),
                ..
            },
            _,
        )) = self.descriptions.get(&description)
        {
            // POSIX: closing any fd of a file drops every lock the process holds on it.
            self.record_locks
                .release(*node, crate::locks::Owner::Process);
        }
        self.unreference(description);
    }

    /// An epoll instance watches `kind` (a pipe end or an eventfd): its events are
    /// recorded from now on. Any interest makes closed descriptions recorded too.
    pub fn epoll_watch(&mut self, kind: FileKind) {
        self.epoll_in_use = true;
        if matches!(kind, FileKind::Pipe { .. } | FileKind::Eventfd { .. }) {
            self.epoll_watched.insert(kind);
        }
    }

    /// `kind` is gone: nothing more is recorded of it.
    pub fn epoll_unwatch(&mut self, kind: FileKind) {
        self.epoll_watched.remove(&kind);
        self.epoll_touched.remove(&kind);
    }

    /// Something happened to `kind` (data, room, an end closed): epoll looks at it again.
    pub fn epoll_note(&mut self, kind: FileKind) {
        if self.epoll_watched.contains(&kind) {
            self.epoll_touched.insert(kind);
        }
    }

    /// Something happened to pipe `id`: both ends may have changed.
    pub fn epoll_note_pipe(&mut self, id: u32) {
        for write_end in [false, true] {
            self.epoll_note(FileKind::Pipe { id, write_end });
        }
    }

    /// The watched files with events since the last call.
    pub fn take_epoll_touched(&mut self) -> BTreeSet<FileKind> {
        core::mem::take(&mut self.epoll_touched)
    }

    /// The descriptions closed for good since the last call, with their files.
    pub fn take_epoll_closed(&mut self) -> Vec<(u32, FileKind)> {
        core::mem::take(&mut self.epoll_closed)
    }

    /// Drops one reference to `description`; the last one closes it.
    fn unreference(&mut self, description: u32) {
        if let Some((_, references)) = self.descriptions.get_mut(&description) {
            *references -= 1;
            if *references == 0 {
                if self.epoll_in_use {
                    if let Some((file, _)) = self.descriptions.get(&description) {
                        self.epoll_closed.push((description, file.kind));
                    }
                }
                match self.descriptions.remove(&description) {
                    Some((
                        OpenFile {
                            kind: FileKind::Node(node),
                            ..
                        },
                        _,
                    )) => {
                        self.closed.push(node);
                        self.drop_flock(description, node);
                        self.record_locks
                            .release(node, crate::locks::Owner::Description(description));
                    }
                    Some((
                        OpenFile {
                            kind: FileKind::Pipe { id, write_end },
                            ..
                        },
                        _,
                    )) => {
                        if let Some(pipe) = self.pipes.get_mut(&id) {
                            if write_end {
                                pipe.writers -= 1;
                            } else {
                                pipe.readers -= 1;
                            }
                            if pipe.readers == 0 && pipe.writers == 0 {
                                self.pipes.remove(&id);
                                for write_end in [false, true] {
                                    let end = FileKind::Pipe { id, write_end };
                                    self.epoll_watched.remove(&end);
                                }
                            } else {
                                // The other end sees POLLHUP or POLLERR now.
                                self.epoll_note_pipe(id);
                            }
                        }
                    }
                    Some((OpenFile { kind, .. }, _))
                        if matches!(
                            kind,
                            FileKind::Socket { .. }
                                | FileKind::UnixSocket { .. }
                                | FileKind::Epoll { .. }
                                | FileKind::Eventfd { .. }
                                | FileKind::Timerfd { .. }
                        ) =>
                    {
                        self.closed_objects.push(kind);
                    }
                    _ => {}
                }
                self.generated.remove(&description);
                self.positions.remove(&description);
                self.paths.remove(&description);
            }
        }
    }

    fn entry(&self, fd: Fd) -> Result<FdEntry, Errno> {
        self.entries
            .get(&fd_index(fd)?)
            .copied()
            .ok_or(Errno::EBADF)
    }

    pub fn get(&self, fd: Fd) -> Result<OpenFile, Errno> {
        let entry = self.entry(fd)?;
        self.descriptions
            .get(&entry.description)
            .map(|(file, _)| *file)
            .ok_or(Errno::EBADF)
    }

    fn file_mut(&mut self, fd: Fd) -> Result<&mut OpenFile, Errno> {
        let entry = self.entry(fd)?;
        self.descriptions
            .get_mut(&entry.description)
            .map(|(file, _)| file)
            .ok_or(Errno::EBADF)
    }

    fn entry_mut(&mut self, fd: Fd) -> Result<&mut FdEntry, Errno> {
        self.entries.get_mut(&fd_index(fd)?).ok_or(Errno::EBADF)
    }

    /// Points the lowest free fd at or above `minimum` (below `limit`) at `fd`'s description.
    fn duplicate(
        &mut self,
        fd: Fd,
        minimum: u32,
        close_on_exec: bool,
        limit: u32,
    ) -> Result<Fd, Errno> {
        let entry = self.entry(fd)?;
        let free = self.lowest_free_fd_from(minimum, limit)?;
        self.attach(free, entry.description, close_on_exec);
        if minimum <= self.first_maybe_free {
            self.took_lowest(free);
        }
        Ok(Fd(free as i32))
    }

    /// Points exactly `new_fd` at `fd`'s description, closing what `new_fd` held.
    fn duplicate_to(&mut self, fd: Fd, new_fd: u32, close_on_exec: bool) -> Result<(), Errno> {
        let entry = self.entry(fd)?;
        self.attach(new_fd, entry.description, close_on_exec);
        Ok(())
    }

    fn drop_flock(&mut self, description: u32, node: pith_fs::vfs::Node) {
        if let Some((_, holders)) = self.flocks.get_mut(&node) {
            holders.retain(|&holder| holder != description);
            if holders.is_empty() {
                self.flocks.remove(&node);
            }
        }
    }

    /// Takes (or converts) `fd`'s description's flock on `node`: false if another
    /// description's lock conflicts.
    pub fn try_lock(
        &mut self,
        fd: Fd,
        node: pith_fs::vfs::Node,
        exclusive: bool,
    ) -> Result<bool, Errno> {
        let description = self.entry(fd)?.description;
        let (held_exclusively, holders) = self.flocks.entry(node).or_insert((false, Vec::new()));
        let others = holders.iter().any(|&holder| holder != description);
        if others && (exclusive || *held_exclusively) {
            if holders.is_empty() {
                self.flocks.remove(&node);
            }
            return Ok(false);
        }
        if !holders.contains(&description) {
            holders.push(description);
        }
        *held_exclusively = exclusive;
        Ok(true)
    }

    pub fn unlock(&mut self, fd: Fd, node: pith_fs::vfs::Node) -> Result<(), Errno> {
        let description = self.entry(fd)?.description;
        self.drop_flock(description, node);
        Ok(())
    }

    /// Closes every fd in [first, last]; with `cloexec`, marks them close-on-exec instead.
    pub fn close_range(&mut self, first: u32, last: u32, cloexec: bool) {
        let fds: Vec<u32> = self
            .entries
            .range(first..=last)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in fds {
            if cloexec {
                if let Some(entry) = self.entries.get_mut(&fd) {
                    entry.close_on_exec = true;
                }
            } else if let Some(entry) = self.entries.remove(&fd) {
                self.first_maybe_free = self.first_maybe_free.min(fd);
                self.release(entry.description);
            }
        }
    }

    /// A new, empty pipe with no ends open yet.
    pub fn new_pipe(&mut self) -> u32 {
        let id = self.next_pipe;
        self.next_pipe = self.next_pipe.wrapping_add(1);
        self.pipes.insert(
            id,
            crate::pipe::Pipe {
                capacity: crate::pipe::PIPE_SIZE,
                ..crate::pipe::Pipe::default()
            },
        );
        id
    }

    pub fn pipe_mut(&mut self, id: u32) -> Result<&mut crate::pipe::Pipe, Errno> {
        self.pipes.get_mut(&id).ok_or(Errno::EBADF)
    }

    /// The nodes whose last open description closed since the last call.
    pub fn take_closed(&mut self) -> Vec<pith_fs::vfs::Node> {
        core::mem::take(&mut self.closed)
    }

    /// The sockets, epoll instances and eventfds whose last open description closed since
    /// the last call.
    pub fn take_closed_objects(&mut self) -> Vec<FileKind> {
        core::mem::take(&mut self.closed_objects)
    }

    /// The description `fd` refers to, and the file: epoll's key for an fd.
    pub fn description(&self, fd: Fd) -> Result<(u32, OpenFile), Errno> {
        let entry = self.entry(fd)?;
        let file = self.get(fd)?;
        Ok((entry.description, file))
    }

    /// Whether `fd` still refers to `description`.
    pub fn refers_to(&self, fd: Fd, description: u32) -> bool {
        self.entry(fd)
            .is_ok_and(|entry| entry.description == description)
    }

    /// How many fds are open (a counter for names that must differ).
    pub fn open_count(&self) -> usize {
        self.entries.len() + self.next_description as usize
    }

    /// Records the absolute path `fd`'s description was opened by.
    pub fn set_path(&mut self, fd: Fd, path: Vec<u8>) {
        if let Ok(entry) = self.entry(fd) {
            self.paths.insert(entry.description, path);
        }
    }

    pub fn path(&self, fd: Fd) -> Option<Vec<u8>> {
        let entry = self.entry(fd).ok()?;
        self.paths.get(&entry.description).cloned()
    }

    /// The open file description `fd` refers to (the owner of its OFD locks).
    pub fn description_of(&self, fd: Fd) -> Result<u32, Errno> {
        Ok(self.entry(fd)?.description)
    }

    /// The file position of `fd`'s description.
    pub fn position(&self, fd: Fd) -> Result<u64, Errno> {
        let entry = self.entry(fd)?;
        Ok(self.positions.get(&entry.description).copied().unwrap_or(0))
    }

    pub fn set_position(&mut self, fd: Fd, position: u64) -> Result<(), Errno> {
        let entry = self.entry(fd)?;
        self.positions.insert(entry.description, position);
        Ok(())
    }

    /// Whether an fd below `limit` is free (the next open would not be EMFILE).
    pub fn has_free_fd(&self, limit: u32) -> bool {
        // Fewer fds than the limit in all: one below it is free, without counting them.
        self.entries.len() < limit as usize || self.entries.range(..limit).count() < limit as usize
    }

    /// Opens `file` at the lowest free fd.
    pub fn open(&mut self, file: OpenFile, close_on_exec: bool, limit: u32) -> Result<Fd, Errno> {
        let free = self.lowest_free_fd(limit)?;
        let description = self.new_description(file);
        self.attach(free, description, close_on_exec);
        self.took_lowest(free);
        Ok(Fd(free as i32))
    }

    /// Opens a read-only file holding `bytes` at the lowest free fd.
    fn open_generated(
        &mut self,
        bytes: Vec<u8>,
        access: u32,
        close_on_exec: bool,
        limit: u32,
    ) -> Result<Fd, Errno> {
        let free = self.lowest_free_fd(limit)?;
        let description = self.new_description(OpenFile {
            kind: FileKind::Generated,
            status_flags: O_LARGEFILE | access,
        });
        self.generated
            .insert(description, Generated { bytes, offset: 0 });
        self.attach(free, description, close_on_exec);
        self.took_lowest(free);
        Ok(Fd(free as i32))
    }

    fn generated_mut(&mut self, fd: Fd) -> Result<&mut Generated, Errno> {
        let entry = self.entry(fd)?;
        self.generated
            .get_mut(&entry.description)
            .ok_or(Errno::EBADF)
    }

    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        let index = fd_index(fd)?;
        let entry = self.entries.remove(&index).ok_or(Errno::EBADF)?;
        self.first_maybe_free = self.first_maybe_free.min(index);
        self.release(entry.description);
        Ok(())
    }
}

pub fn nofile_limit(context: &Context) -> u32 {
    context.process.limits[RLIMIT_NOFILE as usize]
        .rlim_cur
        .min(NR_OPEN) as u32
}

/// Gives a new object's first open description `file` the lowest free fd; without one
/// (EMFILE), `undo` drops the object again.
pub fn install(
    context: &mut Context,
    file: OpenFile,
    close_on_exec: bool,
    undo: impl FnOnce(&mut Context),
) -> Result<Fd, Errno> {
    let limit = nofile_limit(context);
    context
        .process
        .files
        .open(file, close_on_exec, limit)
        .inspect_err(|_| undo(context))
}

/// Implements read(2).
pub fn read(context: &mut Context, fd: Fd, buffer: UserAddr, count: usize) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    let count = count.min(MAX_RW_COUNT);
    if count == 0 {
        return Ok(0);
    }
    match file.kind {
        FileKind::Console(_) => {
            let mut bytes = [0u8; 4096];
            let want = count.min(bytes.len());
            let got = console_read_blocking(context, &mut bytes[..want], file.status_flags)?;
            context.platform.write_user(buffer.0, &bytes[..got])?;
            Ok(got)
        }
        FileKind::Signalfd { mask } => {
            read_signalfd(context, mask, buffer, count, file.status_flags)
        }
        FileKind::Node(node) => {
            crate::files::read_node(context, fd, file, node, buffer, count, None)
        }
        FileKind::Pipe { id, .. } => crate::pipe::read(context, file, id, buffer, count),
        FileKind::Socket { id } => crate::net::read(context, id, file, &[(buffer.0, count)]),
        FileKind::UnixSocket { id } => crate::unix::read(context, id, file, &[(buffer.0, count)]),
        FileKind::Epoll { .. } => Err(Errno::EINVAL),
        FileKind::Eventfd { id } => crate::eventfd::read(context, id, file, buffer, count),
        FileKind::Timerfd { id } => crate::timerfd::read(context, id, file, buffer, count),
        FileKind::Generated => {
            if file.status_flags & O_ACCMODE == O_WRONLY {
                return Err(Errno::EBADF);
            }
            let generated = context.process.files.generated_mut(fd)?;
            let start = (generated.offset as usize).min(generated.bytes.len());
            let end = start.saturating_add(count).min(generated.bytes.len());
            let chunk = generated.bytes[start..end].to_vec();
            context.platform.write_user(buffer.0, &chunk)?;
            context.process.files.generated_mut(fd)?.offset = end as u64;
            Ok(chunk.len())
        }
    }
}

/// Reads the console: what is waiting, or waits for it (EAGAIN with O_NONBLOCK). A signal
/// interrupts the wait: ERESTARTSYS, which the way out turns into a restart (SA_RESTART) or
/// EINTR, as Linux's tty reads do.
fn console_read_blocking(
    context: &mut Context,
    buffer: &mut [u8],
    status_flags: u32,
) -> Result<usize, Errno> {
    loop {
        if let Some(count) = context.platform.console_read(buffer, true) {
            return Ok(count);
        }
        if status_flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        crate::signal::wait_step(context, u64::MAX, crate::platform::WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
    }
}

/// `struct signalfd_siginfo` (include/uapi/linux/signalfd.h): 128 bytes.
#[repr(C)]
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
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub __pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub __pad: [u8; 28],
}
const _: () = assert!(core::mem::size_of::<SignalfdSiginfo>() == 128);

/// What a signalfd reports of a signal's siginfo (fs/signalfd.c signalfd_copyinfo).
fn signalfd_record(signal: i32, info: &crate::uapi::Siginfo) -> SignalfdSiginfo {
    let mut record = SignalfdSiginfo {
        ssi_signo: signal as u32,
        ssi_code: info.si_code,
        ..SignalfdSiginfo::default()
    };
    match info.si_code {
        // kill/tkill: si_pid and si_uid.
        0 | -6 => {
            record.ssi_pid = info.fields[0] as u32;
            record.ssi_uid = (info.fields[0] >> 32) as u32;
        }
        // A POSIX timer: si_tid, si_overrun and si_value.
        -2 => {
            record.ssi_tid = info.fields[0] as u32;
            record.ssi_overrun = (info.fields[0] >> 32) as u32;
            record.ssi_ptr = info.fields[1];
            record.ssi_int = info.fields[1] as i32;
        }
        // Faults: si_addr.
        _ => record.ssi_addr = info.fields[0],
    }
    record
}

/// Reads a signalfd: a record per pending signal of `mask`, as many as fit; waits for one
/// unless non-blocking.
fn read_signalfd(
    context: &mut Context,
    mask: u64,
    buffer: UserAddr,
    count: usize,
    status_flags: u32,
) -> Result<usize, Errno> {
    const RECORD: usize = core::mem::size_of::<SignalfdSiginfo>();
    if count < RECORD {
        return Err(Errno::EINVAL);
    }
    loop {
        let mut written = 0;
        while written + RECORD <= count {
            let Some((signal, info)) = context.process.signals.take(mask) else {
                break;
            };
            let record = signalfd_record(signal, &info);
            context.write_struct(buffer.0 + written as u64, &record)?;
            written += RECORD;
        }
        if written > 0 {
            return Ok(written);
        }
        if status_flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        crate::signal::wait_step(context, u64::MAX, crate::platform::WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
        // wait_step said nothing is deliverable: expire_timers may have raised one of ours.
    }
}

/// signalfd4's flags: SFD_CLOEXEC and SFD_NONBLOCK (include/uapi/linux/signalfd.h).
const SFD_CLOEXEC: i32 = O_CLOEXEC as i32;
const SFD_NONBLOCK: i32 = O_NONBLOCK as i32;

/// Implements signalfd4(2): a new signalfd (fd -1) or a new mask for an existing one.
pub fn signalfd4(
    context: &mut Context,
    fd: Fd,
    mask: UserAddr,
    mask_size: usize,
    flags: i32,
) -> Result<i32, Errno> {
    if mask_size != 8 || flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask =
        context.read_struct::<u64>(mask.0)? & !(crate::signal::bit(9) | crate::signal::bit(19));
    if fd.0 != -1 {
        let file = context.process.files.file_mut(fd)?;
        let FileKind::Signalfd { mask: current } = &mut file.kind else {
            return Err(Errno::EINVAL);
        };
        *current = mask;
        return Ok(fd.0);
    }
    let status_flags = O_RDWR
        | O_LARGEFILE
        | if flags & SFD_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
    let limit = nofile_limit(context);
    let file = OpenFile {
        kind: FileKind::Signalfd { mask },
        status_flags,
    };
    Ok(context
        .process
        .files
        .open(file, flags & SFD_CLOEXEC != 0, limit)?
        .0)
}

/// Implements signalfd(2): signalfd4 without flags.
pub fn signalfd(
    context: &mut Context,
    fd: Fd,
    mask: UserAddr,
    mask_size: usize,
) -> Result<i32, Errno> {
    signalfd4(context, fd, mask, mask_size, 0)
}

/// Implements write(2).
pub fn write(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    let count = count.min(MAX_RW_COUNT);
    match file.kind {
        FileKind::Console(stream) => {
            let mut chunk = [0u8; 4096];
            let mut done = 0;
            while done < count {
                let take = (count - done).min(chunk.len());
                // A fault after some bytes went out is a short write, as on Linux.
                if let Err(errno) = context
                    .platform
                    .read_user(buffer.0 + done as u64, &mut chunk[..take])
                {
                    return if done > 0 { Ok(done) } else { Err(errno) };
                }
                context.platform.console_write(stream, &chunk[..take]);
                done += take;
            }
            Ok(done)
        }
        FileKind::Signalfd { .. } => Err(Errno::EINVAL),
        FileKind::Node(node) => {
            crate::files::write_node(context, fd, file, node, buffer, count, None)
        }
        FileKind::Pipe { id, .. } => crate::pipe::write(context, file, id, buffer, count),
        FileKind::Socket { id } => crate::net::write(context, id, file, &[(buffer.0, count)]),
        FileKind::UnixSocket { id } => crate::unix::write(context, id, file, &[(buffer.0, count)]),
        FileKind::Epoll { .. } => Err(Errno::EINVAL),
        FileKind::Eventfd { id } => crate::eventfd::write(context, id, file, buffer, count),
        FileKind::Timerfd { .. } => Err(Errno::EINVAL),
        // Not open for writing: EBADF; open for writing (root may): no write method, EINVAL.
        FileKind::Generated if file.status_flags & O_ACCMODE == 0 => Err(Errno::EBADF),
        FileKind::Generated => Err(Errno::EINVAL),
    }
}

fn read_iovecs(context: &Context, vector: UserAddr, count: i32) -> Result<Vec<Iovec>, Errno> {
    if !(0..=UIO_MAXIOV).contains(&count) {
        return Err(Errno::EINVAL);
    }
    let mut iovecs = Vec::with_capacity(count as usize);
    let mut total: u64 = 0;
    for index in 0..count as u64 {
        let iovec: Iovec = context.read_struct(vector.0 + index * 16)?;
        // Linux rejects a total that does not fit in ssize_t.
        total = total
            .checked_add(iovec.iov_len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
        iovecs.push(iovec);
    }
    Ok(iovecs)
}

/// Implements writev(2).
pub fn writev(context: &mut Context, fd: Fd, vector: UserAddr, count: i32) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    let iovecs = read_iovecs(context, vector, count)?;
    if let FileKind::Socket { id } | FileKind::UnixSocket { id } = file.kind {
        // One send of all the pieces: a request and its body leave together.
        let pieces: Vec<(u64, usize)> = iovecs
            .iter()
            .map(|iovec| (iovec.iov_base, iovec.iov_len as usize))
            .collect();
        if let FileKind::UnixSocket { .. } = file.kind {
            return crate::unix::write(context, id, file, &pieces);
        }
        return crate::net::write(context, id, file, &pieces);
    }
    let mut total = 0;
    for iovec in iovecs {
        match write(
            context,
            fd,
            UserAddr(iovec.iov_base),
            iovec.iov_len as usize,
        ) {
            Ok(written) => {
                total += written;
                if written < iovec.iov_len as usize {
                    break;
                }
            }
            Err(errno) if total == 0 => return Err(errno),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// Implements readv(2): one read of the total, scattered over the buffers, so it returns what
/// is available rather than waiting to fill every buffer.
pub fn readv(context: &mut Context, fd: Fd, vector: UserAddr, count: i32) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    let iovecs = read_iovecs(context, vector, count)?;
    let total: u64 = iovecs.iter().map(|iovec| iovec.iov_len).sum();
    if total == 0 {
        return Ok(0);
    }
    match file.kind {
        FileKind::Socket { id } => {
            let pieces: Vec<(u64, usize)> = iovecs
                .iter()
                .map(|iovec| (iovec.iov_base, iovec.iov_len as usize))
                .collect();
            crate::net::read(context, id, file, &pieces)
        }
        FileKind::UnixSocket { id } => {
            let pieces: Vec<(u64, usize)> = iovecs
                .iter()
                .map(|iovec| (iovec.iov_base, iovec.iov_len as usize))
                .collect();
            crate::unix::read(context, id, file, &pieces)
        }
        // Files read whole records or text: fill the buffers in turn.
        FileKind::Generated
        | FileKind::Signalfd { .. }
        | FileKind::Node(_)
        | FileKind::Epoll { .. }
        | FileKind::Eventfd { .. }
        | FileKind::Timerfd { .. } => {
            let mut total = 0;
            for iovec in iovecs {
                let got = read(
                    context,
                    fd,
                    UserAddr(iovec.iov_base),
                    iovec.iov_len as usize,
                )?;
                total += got;
                if got < iovec.iov_len as usize {
                    break;
                }
            }
            Ok(total)
        }
        FileKind::Pipe { id, .. } => {
            // Fill the buffers in turn with what is there, waiting only for the first byte.
            let mut done = 0;
            for iovec in iovecs {
                let got = read(
                    context,
                    fd,
                    UserAddr(iovec.iov_base),
                    iovec.iov_len as usize,
                )?;
                done += got;
                let empty = context
                    .process
                    .files
                    .pipe_mut(id)
                    .map_or(true, |pipe| pipe.buffer.is_empty());
                if got < iovec.iov_len as usize || empty {
                    break;
                }
            }
            Ok(done)
        }
        FileKind::Console(_) => {
            let mut bytes = [0u8; 4096];
            let want = (total as usize).min(bytes.len());
            let got = console_read_blocking(context, &mut bytes[..want], file.status_flags)?;
            let mut done = 0;
            for iovec in iovecs {
                if done == got {
                    break;
                }
                let take = (got - done).min(iovec.iov_len as usize);
                context
                    .platform
                    .write_user(iovec.iov_base, &bytes[done..done + take])?;
                done += take;
            }
            Ok(done)
        }
    }
}

/// Implements close(2).
pub fn close(context: &mut Context, fd: Fd) -> Result<(), Errno> {
    context.process.files.close(fd)?;
    crate::files::settle_closes(context);
    Ok(())
}

/// Implements dup(2).
pub fn dup(context: &mut Context, fd: Fd) -> Result<i32, Errno> {
    let limit = nofile_limit(context);
    Ok(context.process.files.duplicate(fd, 0, false, limit)?.0)
}

/// Implements dup2(2): like dup3 without flags, but dup2(fd, fd) checks fd and returns it.
pub fn dup2(context: &mut Context, old_fd: Fd, new_fd: Fd) -> Result<i32, Errno> {
    if old_fd == new_fd {
        context.process.files.get(old_fd)?;
        return Ok(new_fd.0);
    }
    dup3(context, old_fd, new_fd, 0)
}

/// Implements dup3(2).
pub fn dup3(context: &mut Context, old_fd: Fd, new_fd: Fd, flags: i32) -> Result<i32, Errno> {
    if flags & !(O_CLOEXEC as i32) != 0 || old_fd == new_fd {
        return Err(Errno::EINVAL);
    }
    context.process.files.get(old_fd)?;
    let target = u32::try_from(new_fd.0).map_err(|_| Errno::EBADF)?;
    if target >= nofile_limit(context) {
        return Err(Errno::EBADF);
    }
    context
        .process
        .files
        .duplicate_to(old_fd, target, flags & O_CLOEXEC as i32 != 0)?;
    crate::files::settle_closes(context);
    Ok(new_fd.0)
}

/// Implements fcntl(2) for the fd-level commands.
pub fn fcntl(context: &mut Context, fd: Fd, command: i32, argument: u64) -> Result<i32, Errno> {
    let file = context.process.files.get(fd)?;
    match command {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let limit = nofile_limit(context);
            let minimum = argument as u32;
            if minimum >= limit {
                return Err(Errno::EINVAL);
            }
            Ok(context
                .process
                .files
                .duplicate(fd, minimum, command == F_DUPFD_CLOEXEC, limit)?
                .0)
        }
        F_GETFD => Ok(context.process.files.entry_mut(fd)?.close_on_exec as i32),
        F_SETFD => {
            context.process.files.entry_mut(fd)?.close_on_exec = argument & FD_CLOEXEC != 0;
            Ok(0)
        }
        // O_LARGEFILE is always set on 64-bit Linux.
        F_GETFL => Ok((file.status_flags | O_LARGEFILE) as i32),
        F_SETFL => {
            // Only O_APPEND and O_NONBLOCK (and friends) change; the access mode stays.
            let changeable = O_APPEND | O_NONBLOCK;
            let file = context.process.files.file_mut(fd)?;
            file.status_flags = (file.status_flags & !changeable) | (argument as u32 & changeable);
            Ok(0)
        }
        crate::pipe::F_GETPIPE_SZ | crate::pipe::F_SETPIPE_SZ => {
            crate::pipe::size_command(context, fd, command, argument)
        }
        crate::files::F_GETLK
        | crate::files::F_SETLK
        | crate::files::F_SETLKW
        | crate::files::F_OFD_GETLK
        | crate::files::F_OFD_SETLK
        | crate::files::F_OFD_SETLKW => crate::files::record_lock(context, fd, command, argument),
        _ => Err(Errno::EINVAL),
    }
}

/// SEEK_CUR (include/uapi/linux/fs.h).
pub const SEEK_CUR: i32 = 1;

/// Implements lseek(2): generated files seek; the console is a character device and cannot.
pub fn lseek(context: &mut Context, fd: Fd, offset: i64, whence: i32) -> Result<i64, Errno> {
    let file = context.process.files.get(fd)?;
    if !(SEEK_SET..=SEEK_END).contains(&whence) && whence != 3 && whence != 4 {
        return Err(Errno::EINVAL);
    }
    match file.kind {
        FileKind::Console(_)
        | FileKind::Signalfd { .. }
        | FileKind::Pipe { .. }
        | FileKind::Socket { .. }
        | FileKind::UnixSocket { .. }
        | FileKind::Epoll { .. }
        | FileKind::Eventfd { .. }
        | FileKind::Timerfd { .. } => Err(Errno::ESPIPE),
        FileKind::Node(node) => crate::files::seek_node(context, fd, node, offset, whence),
        FileKind::Generated => {
            let generated = context.process.files.generated_mut(fd)?;
            let base = match whence {
                SEEK_SET => 0,
                SEEK_CUR => generated.offset as i64,
                SEEK_END => generated.bytes.len() as i64,
                _ => return Err(Errno::EINVAL), // SEEK_DATA and SEEK_HOLE: not for proc files
            };
            let position = base
                .checked_add(offset)
                .filter(|&position| position >= 0)
                .ok_or(Errno::EINVAL)?;
            generated.offset = position as u64;
            Ok(position)
        }
    }
}

fn console_stat(context: &Context) -> Stat {
    let terminal = context.platform.console_is_terminal();
    Stat {
        st_dev: 0x16,
        st_ino: 3,
        st_nlink: 1,
        // A terminal is a character device (pts 136:0); otherwise the host gave us a pipe.
        st_mode: if terminal {
            S_IFCHR | 0o620
        } else {
            S_IFIFO | 0o600
        },
        st_rdev: if terminal { 136 << 8 } else { 0 },
        st_blksize: if terminal { 1024 } else { 4096 },
        ..Stat::default()
    }
}

/// Implements fstat(2).
pub fn fstat(context: &mut Context, fd: Fd, stat: UserAddr) -> Result<(), Errno> {
    let value = stat_of_fd(context, fd)?;
    context.write_struct(stat.0, &value)
}

/// What fstat says of `fd`.
pub fn stat_of_fd(context: &mut Context, fd: Fd) -> Result<Stat, Errno> {
    let file = context.process.files.get(fd)?;
    let value = match file.kind {
        FileKind::Console(_) => console_stat(context),
        // An anonymous inode, as Linux's "anon_inode:[signalfd]": mode 0600, no file type.
        FileKind::Signalfd { .. } => Stat {
            st_dev: 0xe,
            st_ino: 5,
            st_nlink: 1,
            st_mode: 0o600,
            st_blksize: 4096,
            ..Stat::default()
        },
        FileKind::Generated => generated_stat(),
        FileKind::Node(node) => {
            let metadata = context.process.vfs.metadata(node)?;
            crate::files::stat_of(node, &metadata)
        }
        // pipefs: a fifo, mode 0600, owned by the program's user.
        FileKind::Pipe { id, .. } => Stat {
            st_dev: 0xd,
            st_ino: 0x1000 + id as u64,
            st_nlink: 1,
            st_mode: S_IFIFO | 0o600,
            st_blksize: 4096,
            ..Stat::default()
        },
        // sockfs: a socket, mode 0777.
        FileKind::Socket { id } | FileKind::UnixSocket { id } => Stat {
            st_dev: 0x8,
            st_ino: match file.kind {
                FileKind::UnixSocket { .. } => 0x4000_0000 + id as u64,
                _ => 0x2000 + id as u64,
            },
            st_nlink: 1,
            st_mode: S_IFSOCK | 0o777,
            st_blksize: 4096,
            ..Stat::default()
        },
        // Anonymous inodes, as "anon_inode:[eventpoll]" and "anon_inode:[eventfd]".
        FileKind::Epoll { .. } | FileKind::Eventfd { .. } | FileKind::Timerfd { .. } => Stat {
            st_dev: 0xe,
            st_ino: 5,
            st_nlink: 1,
            st_mode: 0o600,
            st_blksize: 4096,
            ..Stat::default()
        },
    };
    Ok(value)
}

/// The stat of a /proc file, if Pith has it.
pub fn proc_stat(context: &mut Context, path: &[u8]) -> Option<Stat> {
    generated_file(context, path).map(|_| generated_stat())
}

/// Writes bytes the kernel holds to `fd`, as write(2) would (sendfile's writer).
pub fn write_kernel_bytes(context: &mut Context, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    match file.kind {
        FileKind::Console(stream) => {
            context.platform.console_write(stream, data);
            Ok(data.len())
        }
        FileKind::Node(node) => {
            if file.status_flags & O_ACCMODE == 0 {
                return Err(Errno::EBADF);
            }
            crate::files::write_node_data(context, fd, file, node, data, None)
        }
        FileKind::Pipe { id, .. } => crate::pipe::write_data(context, file, id, data),
        FileKind::Socket { id } => crate::net::write_kernel_bytes(context, id, file, data),
        FileKind::UnixSocket { id } => crate::unix::write_kernel_bytes(context, id, file, data),
        _ => Err(Errno::EINVAL),
    }
}

/// As procfs reports its files: regular, read-only, size 0.
fn generated_stat() -> Stat {
    Stat {
        st_dev: 0x17,
        st_ino: 4,
        st_nlink: 1,
        st_mode: S_IFREG | 0o444,
        st_blksize: 1024,
        ..Stat::default()
    }
}

/// Checks a path's `dir_fd` as Linux does: a relative path needs AT_FDCWD or an open fd
/// (EBADF); an absolute one ignores it.
fn check_dir_fd(context: &Context, dir_fd: Fd, name: &[u8]) -> Result<(), Errno> {
    if !name.starts_with(b"/") && dir_fd.0 != AT_FDCWD {
        context.process.files.get(dir_fd)?;
    }
    Ok(())
}

/// Whether `name` is resolved by the /proc (and /sys) files rather than the tree: an absolute
/// /proc path, or one of the /sys files there are.
fn is_proc_path(name: &[u8]) -> bool {
    name.starts_with(b"/proc/")
        || name
            .strip_prefix(b"/sys/")
            .is_some_and(|file| crate::procfs::generate_sys(file).is_some())
}

/// Implements stat(2).
pub fn stat(context: &mut Context, path: UserPath, stat: UserAddr) -> Result<(), Errno> {
    newfstatat(context, Fd(AT_FDCWD), path, stat, 0)
}

/// Implements lstat(2).
pub fn lstat(context: &mut Context, path: UserPath, stat: UserAddr) -> Result<(), Errno> {
    newfstatat(context, Fd(AT_FDCWD), path, stat, AT_SYMLINK_NOFOLLOW)
}

/// access(2)'s mode bits (include/uapi/linux/fcntl.h via unistd.h) and faccessat2's flags.
const F_OK: i32 = 0;
const X_OK: i32 = 1;
const W_OK: i32 = 2;
const R_OK: i32 = 4;
const AT_EACCESS: i32 = 0x200;

/// Implements faccessat2(2), and through it access and faccessat. The program runs as root:
/// reading and writing are allowed on any file that exists (CAP_DAC_OVERRIDE), executing only
/// where an execute bit is set, which none of the /proc files has (EACCES).
pub fn faccessat2(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    mode: i32,
    flags: i32,
) -> Result<(), Errno> {
    if mode & !(F_OK | X_OK | W_OK | R_OK) != 0
        || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let name = context.read_c_string(path.0, PATH_MAX - 1)?;
    let exists = if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 || dir_fd.0 == AT_FDCWD {
            return Err(Errno::ENOENT);
        }
        context.process.files.get(dir_fd)?;
        true
    } else if is_proc_path(&name) {
        check_dir_fd(context, dir_fd, &name)?;
        generated_file(context, &name).is_some()
    } else {
        let (metadata, read_only) =
            crate::files::exists(context, dir_fd, &name, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        // Linux's access(W_OK) on a read-only mount: EROFS for files, directories, links.
        if mode & W_OK != 0
            && read_only
            && matches!(
                metadata.kind,
                pith_fs::FileType::Regular
                    | pith_fs::FileType::Directory
                    | pith_fs::FileType::Symlink
            )
        {
            return Err(Errno::EROFS);
        }
        // Root may execute what has an execute bit, and search any directory.
        if mode & X_OK != 0
            && metadata.kind != pith_fs::FileType::Directory
            && metadata.permissions & 0o111 == 0
        {
            return Err(Errno::EACCES);
        }
        return Ok(());
    };
    if !exists {
        return Err(Errno::ENOENT);
    }
    if mode & X_OK != 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Implements faccessat(2).
pub fn faccessat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    mode: i32,
) -> Result<(), Errno> {
    faccessat2(context, dir_fd, path, mode, 0)
}

/// Implements access(2).
pub fn access(context: &mut Context, path: UserPath, mode: i32) -> Result<(), Errno> {
    faccessat2(context, Fd(AT_FDCWD), path, mode, 0)
}

/// Implements newfstatat(2): with AT_EMPTY_PATH and "" it is fstat; the /proc files are the
/// only paths that name a file yet.
pub fn newfstatat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    stat: UserAddr,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = context.read_c_string(path.0, PATH_MAX - 1)?;
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dir_fd.0 == AT_FDCWD {
            let cwd = context.process.cwd;
            let metadata = context.process.vfs.metadata(cwd)?;
            return context.write_struct(stat.0, &crate::files::stat_of(cwd, &metadata));
        }
        return fstat(context, dir_fd, stat);
    }
    if is_proc_path(&name) {
        check_dir_fd(context, dir_fd, &name)?;
        if generated_file(context, &name).is_some() {
            return context.write_struct(stat.0, &generated_stat());
        }
    }
    let value = crate::files::stat_at(context, dir_fd, &name, flags)?;
    context.write_struct(stat.0, &value)
}

/// Implements ioctl(2) on the console.
pub fn ioctl(context: &mut Context, fd: Fd, request: u32, argument: u64) -> Result<i32, Errno> {
    let file = context.process.files.get(fd)?;
    match request {
        FIONBIO => {
            let on: i32 = context.read_struct(argument)?;
            let file = context.process.files.file_mut(fd)?;
            if on != 0 {
                file.status_flags |= O_NONBLOCK;
            } else {
                file.status_flags &= !O_NONBLOCK;
            }
            return Ok(0);
        }
        FIOCLEX | FIONCLEX => {
            context.process.files.entry_mut(fd)?.close_on_exec = request == FIOCLEX;
            return Ok(0);
        }
        _ => {}
    }
    if let FileKind::Socket { id } | FileKind::UnixSocket { id } = file.kind {
        if request != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let waiting = match file.kind {
            FileKind::UnixSocket { .. } => crate::unix::available(context, id)?,
            _ => crate::net::available(context, id)?,
        };
        let waiting = waiting.min(i32::MAX as usize) as i32;
        context.write_struct(argument, &waiting)?;
        return Ok(0);
    }
    if let FileKind::Pipe { id, .. } = file.kind {
        if request != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let waiting = crate::pipe::available(context, id)?.min(i32::MAX as usize) as i32;
        context.write_struct(argument, &waiting)?;
        return Ok(0);
    }
    if let FileKind::Node(node) = file.kind {
        // FIONREAD on a regular file: the bytes past the position.
        let metadata = context.process.vfs.metadata(node)?;
        if metadata.kind == pith_fs::FileType::BlockDevice {
            const BLKSSZGET: u32 = 0x1268;
            const BLKGETSIZE64: u32 = 0x8008_1272;
            return match request {
                BLKGETSIZE64 => {
                    let size = context.platform.disk_size().unwrap_or(0);
                    context.write_struct(argument, &size)?;
                    Ok(0)
                }
                BLKSSZGET => {
                    context.write_struct(argument, &512i32)?;
                    Ok(0)
                }
                _ => Err(Errno::ENOTTY),
            };
        }
        if request == FIONREAD && metadata.kind == pith_fs::FileType::Regular {
            let position = context.process.files.position(fd)?;
            let left = metadata.size.saturating_sub(position).min(i32::MAX as u64) as i32;
            context.write_struct(argument, &left)?;
            return Ok(0);
        }
        return Err(Errno::ENOTTY);
    }
    if !matches!(file.kind, FileKind::Console(_)) {
        return Err(Errno::ENOTTY);
    }
    if request == FIONREAD {
        let waiting = context.platform.console_available().min(i32::MAX as usize) as i32;
        context.write_struct(argument, &waiting)?;
        return Ok(0);
    }
    if !context.platform.console_is_terminal() {
        return Err(Errno::ENOTTY);
    }
    match request {
        TCGETS => {
            let termios = context.process.files.console_termios;
            context.write_struct(argument, &termios)?;
            Ok(0)
        }
        TCSETS | TCSETSW | TCSETSF => {
            let termios: Termios = context.read_struct(argument)?;
            context.process.files.console_termios = termios;
            Ok(0)
        }
        TIOCGWINSZ => {
            let (rows, columns) = context.platform.console_window_size();
            context.write_struct(
                argument,
                &Winsize {
                    ws_row: rows,
                    ws_col: columns,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                },
            )?;
            Ok(0)
        }
        TIOCGPGRP => {
            let pid = context.process.pid;
            context.write_struct(argument, &pid)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

fn readlink_path(
    context: &mut Context,
    name: &[u8],
    buffer: UserAddr,
    size: i32,
) -> Result<usize, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let target = if name == b"/proc/self/exe" {
        context.process.executable_path.clone()
    } else if name == b"/proc/self/cwd" {
        crate::files::cwd_path(context)
    } else if let Some(fd) = name
        .strip_prefix(b"/proc/self/fd/")
        .and_then(|number| core::str::from_utf8(number).ok()?.parse::<i32>().ok())
    {
        fd_link(context, Fd(fd)).map_err(|_| Errno::ENOENT)?
    } else {
        return crate::files::readlink_at(context, Fd(AT_FDCWD), name, buffer, size);
    };
    let len = target.len().min(size as usize);
    context.platform.write_user(buffer.0, &target[..len])?;
    Ok(len)
}

/// What /proc/self/fd/N links to, as Linux shows it: a file's path, "pipe:[N]",
/// "anon_inode:[signalfd]", the console's terminal.
fn fd_link(context: &mut Context, fd: Fd) -> Result<Vec<u8>, Errno> {
    let file = context.process.files.get(fd)?;
    Ok(match file.kind {
        FileKind::Node(node) => match context.process.files.path(fd) {
            Some(path) => path,
            None => context.process.vfs.path_of(node).unwrap_or_default(),
        },
        FileKind::Pipe { id, .. } => alloc::format!("pipe:[{}]", 0x1000 + id).into_bytes(),
        FileKind::Signalfd { .. } => b"anon_inode:[signalfd]".to_vec(),
        FileKind::Socket { id } => crate::net::link_text(id),
        FileKind::UnixSocket { id } => crate::unix::link_text(id),
        FileKind::Epoll { .. } => b"anon_inode:[eventpoll]".to_vec(),
        FileKind::Eventfd { .. } => b"anon_inode:[eventfd]".to_vec(),
        FileKind::Timerfd { .. } => b"anon_inode:[timerfd]".to_vec(),
        FileKind::Generated => b"/proc/self".to_vec(),
        FileKind::Console(_) if context.platform.console_is_terminal() => b"/dev/pts/0".to_vec(),
        FileKind::Console(_) => b"pipe:[1]".to_vec(),
    })
}

/// Access-mode and creation flags of open(2) (include/uapi/asm-generic/fcntl.h).
pub const O_CREAT: u32 = 0o100;
pub const O_TMPFILE: u32 = 0o20200000;

fn open_path(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    flags: u32,
    mode: u32,
) -> Result<i32, Errno> {
    let mut name = context.read_c_string(path.0, PATH_MAX - 1)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    // devfs's links into /proc/self/fd (/dev/stdin, /dev/fd/N), which is not a tree of nodes.
    let aliased: Option<Vec<u8>> = match name.as_slice() {
        b"/dev/stdin" => Some(b"/proc/self/fd/0".to_vec()),
        b"/dev/stdout" => Some(b"/proc/self/fd/1".to_vec()),
        b"/dev/stderr" => Some(b"/proc/self/fd/2".to_vec()),
        other => other.strip_prefix(b"/dev/fd/").map(|number| {
            let mut path = b"/proc/self/fd/".to_vec();
            path.extend_from_slice(number);
            path
        }),
    };
    if let Some(aliased) = aliased {
        name = aliased;
    }
    if name == b"/proc/self/exe" {
        // The program's own file, as the magic link resolves on Linux.
        let executable = context.process.executable_path.clone();
        return crate::files::open_at(context, Fd(AT_FDCWD), &executable, flags, mode);
    }
    if let Some(fd) = name
        .strip_prefix(b"/proc/self/fd/")
        .and_then(|number| core::str::from_utf8(number).ok()?.parse::<i32>().ok())
    {
        // Reopening a file's fd through /proc opens the file again, as Linux does: a new
        // open file description, with its own position and the new flags.
        if let FileKind::Node(_) = context
            .process
            .files
            .get(Fd(fd))
            .map_err(|_| Errno::ENOENT)?
            .kind
        {
            if let Some(opened_as) = context.process.files.path(Fd(fd)) {
                return crate::files::open_at(context, Fd(AT_FDCWD), &opened_as, flags, mode);
            }
        }
        // A pipe, the console, or a file whose path is unknown: a new fd for the same one.
        let limit = nofile_limit(context);
        return Ok(context
            .process
            .files
            .duplicate(Fd(fd), 0, flags & O_CLOEXEC != 0, limit)
            .map_err(|errno| {
                if errno == Errno::EBADF {
                    Errno::ENOENT
                } else {
                    errno
                }
            })?
            .0);
    }
    if !is_proc_path(&name) {
        return crate::files::open_at(context, dir_fd, &name, flags, mode);
    }
    if let Some(text) = generated_file(context, &name) {
        // The files are r--r--r--, but the program runs as root, which Linux lets open them
        // for writing too (CAP_DAC_OVERRIDE); writes then fail, procfs having no write method.
        let limit = nofile_limit(context);
        return Ok(context
            .process
            .files
            .open_generated(text, flags & O_ACCMODE, flags & O_CLOEXEC != 0, limit)?
            .0);
    }
    // /proc has only the files above; nothing can be made there.
    if flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EACCES);
    }
    Err(Errno::ENOENT)
}

/// The contents of the /proc file at `path`, if Pith has it: the only files there are yet.
fn generated_file(context: &mut Context, path: &[u8]) -> Option<Vec<u8>> {
    if let Some(file) = path.strip_prefix(b"/sys/") {
        return crate::procfs::generate_sys(file);
    }
    match own_proc_file(path) {
        Some(file) => crate::procfs::generate(context, file),
        None => path
            .strip_prefix(b"/proc/")
            .and_then(|file| crate::procfs::generate_system(context, file)),
    }
}

/// NAME, when `path` is /proc/self/NAME (or /proc/1/NAME, the program's pid).
fn own_proc_file(path: &[u8]) -> Option<&[u8]> {
    [
        &b"/proc/self/"[..],
        &b"/proc/1/"[..],
        &b"/proc/thread-self/"[..],
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(*prefix))
}

/// Implements open(2).
pub fn open(context: &mut Context, path: UserPath, flags: u32, mode: u32) -> Result<i32, Errno> {
    open_path(context, Fd(AT_FDCWD), path, flags, mode)
}

/// Implements openat(2).
pub fn openat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    flags: u32,
    mode: u32,
) -> Result<i32, Errno> {
    open_path(context, dir_fd, path, flags, mode)
}

/// openat2's `struct open_how` (include/uapi/linux/openat2.h): flags, mode and resolve, each
/// a u64; the first version is 24 bytes, and a larger one is accepted if the rest is zero.
const OPEN_HOW_SIZE_VER0: usize = 24;
/// Linux refuses a struct larger than a page (E2BIG).
const OPEN_HOW_SIZE_MAX: usize = 4096;
const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;
/// Every open flag Linux knows (VALID_OPEN_FLAGS): openat2, unlike open, refuses the others.
const VALID_OPEN_FLAGS: u64 = 0o37777703;
/// What O_PATH may come with in openat2 (O_PATH_FLAGS).
const O_PATH_FLAGS: u64 =
    (crate::files::O_DIRECTORY | crate::files::O_NOFOLLOW | crate::files::O_PATH | O_CLOEXEC)
        as u64;

/// Implements openat2(2): openat with its arguments in a struct, strict about unknown flags,
/// and the RESOLVE_* restrictions on the walk.
pub fn openat2(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    how: UserAddr,
    size: usize,
) -> Result<i32, Errno> {
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > OPEN_HOW_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let bytes = context.read_bytes(how.0, size)?;
    if bytes[OPEN_HOW_SIZE_VER0..].iter().any(|&byte| byte != 0) {
        return Err(Errno::E2BIG);
    }
    let field = |index: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
        u64::from_le_bytes(word)
    };
    let (flags, mode, resolve) = (field(0), field(1), field(2));
    let creates =
        flags & u64::from(O_CREAT) != 0 || flags & u64::from(O_TMPFILE) == u64::from(O_TMPFILE);
    if flags & !VALID_OPEN_FLAGS != 0
        || mode & !0o7777 != 0
        || (mode != 0 && !creates)
        || resolve & !0x3f != 0
        || (resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0)
        || (flags & u64::from(crate::files::O_PATH) != 0 && flags & !O_PATH_FLAGS != 0)
    {
        return Err(Errno::EINVAL);
    }
    // RESOLVE_CACHED: only what needs no I/O; creating and truncating always do.
    if resolve & RESOLVE_CACHED != 0
        && flags & u64::from(O_CREAT | crate::files::O_TRUNC | O_TMPFILE) != 0
    {
        return Err(Errno::EAGAIN);
    }
    let restrictions = Restrictions {
        no_xdev: resolve & RESOLVE_NO_XDEV != 0,
        no_symlinks: resolve & RESOLVE_NO_SYMLINKS != 0,
        beneath: resolve & RESOLVE_BENEATH != 0,
        in_root: resolve & RESOLVE_IN_ROOT != 0,
    };
    let flags = flags as u32;
    let mode = mode as u32;
    if resolve == 0 || resolve == RESOLVE_CACHED {
        return open_path(context, dir_fd, path, flags, mode);
    }
    let name = context.read_c_string(path.0, PATH_MAX - 1)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if is_proc_path(&name) && !(restrictions.beneath || restrictions.in_root) {
        // /proc is a mount of its own, /proc/self a symlink, /proc/self/fd/N magic links.
        if restrictions.no_xdev {
            return Err(Errno::EXDEV);
        }
        if restrictions.no_symlinks
            && (name.starts_with(b"/proc/self") || name.starts_with(b"/proc/thread-self"))
        {
            return Err(Errno::ELOOP);
        }
        if resolve & RESOLVE_NO_MAGICLINKS != 0 && name.starts_with(b"/proc/self/fd/") {
            return Err(Errno::ELOOP);
        }
        return open_path(context, dir_fd, path, flags, mode);
    }
    crate::files::open_at_restricted(context, dir_fd, &name, flags, mode, restrictions)
}

/// Implements readlink(2).
pub fn readlink(
    context: &mut Context,
    path: UserPath,
    buffer: UserAddr,
    size: i32,
) -> Result<usize, Errno> {
    let name = context.read_c_string(path.0, PATH_MAX - 1)?;
    readlink_path(context, &name, buffer, size)
}

/// Implements readlinkat(2); absolute paths ignore dir_fd, as on Linux.
pub fn readlinkat(
    context: &mut Context,
    dir_fd: Fd,
    path: UserPath,
    buffer: UserAddr,
    size: i32,
) -> Result<usize, Errno> {
    let name = context.read_c_string(path.0, PATH_MAX - 1)?;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    if name == b"/proc/self/exe" {
        return readlink_path(context, &name, buffer, size);
    }
    crate::files::readlink_at(context, dir_fd, &name, buffer, size)
}

/// Implements getcwd(2): the raw syscall returns the length including the NUL.
pub fn getcwd(context: &mut Context, buffer: UserAddr, size: usize) -> Result<usize, Errno> {
    let mut cwd = crate::files::cwd_path(context);
    cwd.push(0);
    if size < cwd.len() {
        return Err(Errno::ERANGE);
    }
    context.platform.write_user(buffer.0, &cwd)?;
    Ok(cwd.len())
}

/// Implements pread64(2).
pub fn pread64(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    count: usize,
    offset: i64,
) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    match file.kind {
        FileKind::Node(node) => crate::files::read_node(
            context,
            fd,
            file,
            node,
            buffer,
            count.min(MAX_RW_COUNT),
            Some(offset as u64),
        ),
        _ => Err(Errno::ESPIPE),
    }
}

/// Implements pwrite64(2).
pub fn pwrite64(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    count: usize,
    offset: i64,
) -> Result<usize, Errno> {
    let file = context.process.files.get(fd)?;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    match file.kind {
        FileKind::Node(node) => crate::files::write_node(
            context,
            fd,
            file,
            node,
            buffer,
            count.min(MAX_RW_COUNT),
            Some(offset as u64),
        ),
        _ => Err(Errno::ESPIPE),
    }
}

/// close_range's flags (include/uapi/linux/close_range.h).
const CLOSE_RANGE_UNSHARE: u32 = 2;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

/// Implements close_range(2).
pub fn close_range(context: &mut Context, first: u32, last: u32, flags: u32) -> Result<(), Errno> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    context
        .process
        .files
        .close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    crate::files::settle_closes(context);
    Ok(())
}

/// Reads `count` iovecs' worth at `offset` (preadv), buffer after buffer.
pub fn preadv(
    context: &mut Context,
    fd: Fd,
    vector: UserAddr,
    count: i32,
    offset: i64,
) -> Result<usize, Errno> {
    let iovecs = read_iovecs(context, vector, count)?;
    let mut total = 0;
    for iovec in iovecs {
        let got = pread64(
            context,
            fd,
            UserAddr(iovec.iov_base),
            iovec.iov_len as usize,
            offset.saturating_add(total as i64),
        )?;
        total += got;
        if got < iovec.iov_len as usize {
            break;
        }
    }
    Ok(total)
}

/// Writes `count` iovecs at `offset` (pwritev), buffer after buffer.
pub fn pwritev(
    context: &mut Context,
    fd: Fd,
    vector: UserAddr,
    count: i32,
    offset: i64,
) -> Result<usize, Errno> {
    let iovecs = read_iovecs(context, vector, count)?;
    let mut total = 0;
    for iovec in iovecs {
        let wrote = pwrite64(
            context,
            fd,
            UserAddr(iovec.iov_base),
            iovec.iov_len as usize,
            offset.saturating_add(total as i64),
        )?;
        total += wrote;
        if wrote < iovec.iov_len as usize {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::O_EXCL;
    use crate::testing::TestMachine;

    #[test]
    fn write_goes_to_the_right_stream() {
        let mut machine = TestMachine::new();
        let text = machine.put(b"hello\n");
        assert_eq!(machine.call(1, [1, text, 6, 0, 0, 0]), Ok(6));
        assert_eq!(machine.call(1, [2, text, 5, 0, 0, 0]), Ok(5));
        assert_eq!(machine.stdout(), b"hello\n");
        assert_eq!(machine.stderr(), b"hello");
    }

    #[test]
    fn bad_fds_and_pointers_fail() {
        let mut machine = TestMachine::new();
        let text = machine.put(b"x");
        assert_eq!(machine.call(1, [3, text, 1, 0, 0, 0]), Err(Errno::EBADF));
        assert_eq!(
            machine.call(1, [u32::MAX as u64, text, 1, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(machine.call(1, [1, 0, 1, 0, 0, 0]), Err(Errno::EFAULT));
        assert_eq!(machine.call(1, [1, text, 0, 0, 0, 0]), Ok(0));
    }

    #[test]
    fn writev_gathers_in_order() {
        let mut machine = TestMachine::new();
        let a = machine.put(b"ab");
        let b = machine.put(b"cde");
        let vector = machine.scratch(32);
        for (index, (base, len)) in [(a, 2u64), (b, 3u64)].into_iter().enumerate() {
            machine.write_u64(vector + index as u64 * 16, base);
            machine.write_u64(vector + index as u64 * 16 + 8, len);
        }
        assert_eq!(machine.call(20, [1, vector, 2, 0, 0, 0]), Ok(5));
        assert_eq!(machine.stdout(), b"abcde");
        assert_eq!(
            machine.call(20, [1, vector, 1025, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(20, [1, vector, u32::MAX as u64, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn read_takes_console_input() {
        let mut machine = TestMachine::new();
        machine.set_input(b"typed");
        let buffer = machine.scratch(16);
        assert_eq!(machine.call(0, [0, buffer, 16, 0, 0, 0]), Ok(5));
        assert_eq!(machine.memory_at(buffer, 5), b"typed");
        assert_eq!(machine.call(0, [0, buffer, 16, 0, 0, 0]), Ok(0));
    }

    #[test]
    fn close_and_dup_follow_the_lowest_free_fd_rule() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(3, [0, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(3, [0, 0, 0, 0, 0, 0]), Err(Errno::EBADF));
        assert_eq!(machine.call(32, [1, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(33, [2, 9, 0, 0, 0, 0]), Ok(9));
        assert_eq!(machine.call(33, [9, 9, 0, 0, 0, 0]), Ok(9));
        assert_eq!(machine.call(292, [9, 9, 0, 0, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(
            machine.call(72, [9, F_DUPFD_CLOEXEC as u64, 5, 0, 0, 0]),
            Ok(5)
        );
        assert_eq!(machine.call(72, [5, F_GETFD as u64, 0, 0, 0, 0]), Ok(1));
        let text = machine.put(b"to stderr");
        assert_eq!(machine.call(1, [5, text, 9, 0, 0, 0]), Ok(9));
        assert_eq!(machine.stderr(), b"to stderr");
    }

    #[test]
    fn a_new_fd_is_the_lowest_free_one_after_closes_anywhere() {
        let mut machine = TestMachine::new();
        let dup = |machine: &mut TestMachine, fd: u64| machine.call(32, [fd, 0, 0, 0, 0, 0]);
        for expected in 3..8 {
            assert_eq!(dup(&mut machine, 0), Ok(expected));
        }
        assert_eq!(machine.call(3, [5, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(dup(&mut machine, 0), Ok(5), "the one closed");
        assert_eq!(machine.call(3, [6, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(3, [4, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(dup(&mut machine, 0), Ok(4), "the lower of two closed");
        assert_eq!(dup(&mut machine, 0), Ok(6));
        assert_eq!(dup(&mut machine, 0), Ok(8), "past the ones in use");
        assert_eq!(machine.call(33, [0, 20, 0, 0, 0, 0]), Ok(20)); // dup2
        assert_eq!(dup(&mut machine, 0), Ok(9), "below one dup2 put high");
        assert_eq!(machine.call(436, [3, 7, 0, 0, 0, 0]), Ok(0)); // close_range
        assert_eq!(dup(&mut machine, 0), Ok(3), "close_range's lowest");
        assert_eq!(machine.call(3, [0, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(dup(&mut machine, 1), Ok(0), "fd 0");
        assert_eq!(dup(&mut machine, 1), Ok(4));
    }

    #[test]
    fn console_ioctls_depend_on_being_a_terminal() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(64);
        assert_eq!(
            machine.call(16, [1, TCGETS as u64, out, 0, 0, 0]),
            Err(Errno::ENOTTY)
        );
        machine.set_terminal(true);
        assert_eq!(machine.call(16, [1, TCGETS as u64, out, 0, 0, 0]), Ok(0));
        assert_eq!(machine.memory_at(out, 4), 0o2400u32.to_le_bytes());
        assert_eq!(
            machine.call(16, [1, TIOCGWINSZ as u64, out, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.memory_at(out, 4), [24, 0, 80, 0]);
        assert_eq!(
            machine.call(16, [1, 0x1234, out, 0, 0, 0]),
            Err(Errno::ENOTTY)
        );
    }

    #[test]
    fn fstat_describes_the_console() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(144);
        assert_eq!(machine.call(5, [1, out, 0, 0, 0, 0]), Ok(0));
        let mode = u32::from_le_bytes(machine.memory_at(out + 24, 4).try_into().unwrap());
        assert_eq!(mode & 0o170000, S_IFIFO);
        let empty = machine.put(b"\0");
        assert_eq!(
            machine.call(262, [1, empty, out, AT_EMPTY_PATH as u64, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(262, [1, empty, out, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
        let path = machine.put(b"/etc/passwd\0");
        assert_eq!(
            machine.call(262, [AT_FDCWD as u32 as u64, path, out, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn readlink_proc_self_exe_truncates_without_nul() {
        let mut machine = TestMachine::new();
        let path = machine.put(b"/proc/self/exe\0");
        let out = machine.scratch(64);
        assert_eq!(machine.call(89, [path, out, 64, 0, 0, 0]), Ok(6));
        assert_eq!(machine.memory_at(out, 6), b"/hello");
        assert_eq!(machine.call(89, [path, out, 3, 0, 0, 0]), Ok(3));
        assert_eq!(
            machine.call(89, [path, out, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        let other = machine.put(b"/proc/self/no-such-link\0");
        assert_eq!(
            machine.call(89, [other, out, 64, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn sendfile_to_a_full_socket_answers_what_went_and_moves_the_offset_by_it() {
        let mut machine = TestMachine::new();
        let path = machine.put(b"/big\0");
        let file = machine
            .call(2, [path, (O_CREAT | 2) as u64, 0o644, 0, 0, 0])
            .unwrap();
        let content: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let data = machine.put(&content);
        assert_eq!(machine.call(1, [file, data, 1 << 20, 0, 0, 0]), Ok(1 << 20));
        assert_eq!(machine.call(8, [file, 0, 0, 0, 0, 0]), Ok(0));
        // A non-blocking stream pair: its buffer holds far less than a mebibyte.
        let pair = machine.scratch(8);
        assert_eq!(machine.call(53, [1, 1 | 0o4000, 0, pair, 0, 0]), Ok(0));
        let ends = machine.memory_at(pair, 8);
        let (sender, receiver) = (ends[0] as u64, ends[4] as u64);
        let buffer = machine.scratch(1 << 16);
        let mut received = Vec::new();
        let mut sent = 0u64;
        // Bounded: a sendfile that lost what went would go round forever.
        for _ in 0..1000 {
            if sent == 1 << 20 {
                break;
            }
            match machine.call(40, [sender, file, 0, (1 << 20) - sent, 0, 0]) {
                Ok(count) => {
                    sent += count;
                    // The file's offset moved by exactly what went.
                    assert_eq!(machine.call(8, [file, 0, 1, 0, 0, 0]), Ok(sent));
                }
                Err(Errno::EAGAIN) => {
                    while let Ok(got) = machine.call(0, [receiver, buffer, 1 << 16, 0, 0, 0]) {
                        received.extend(machine.memory_at(buffer, got as usize));
                    }
                }
                Err(other) => panic!("sendfile: {other:?}"),
            }
        }
        while let Ok(got) = machine.call(0, [receiver, buffer, 1 << 16, 0, 0, 0]) {
            received.extend(machine.memory_at(buffer, got as usize));
        }
        assert!(
            received == content,
            "{} bytes came, {} sent",
            received.len(),
            sent
        );
    }

    #[test]
    fn open_creates_reads_and_lists_files_in_the_tree() {
        let mut machine = TestMachine::new();
        let missing = machine.put(b"/etc/passwd\0");
        assert_eq!(
            machine.call(2, [missing, 0, 0, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            machine.call(2, [missing, 1, 0, 0, 0, 0]),
            Err(Errno::ENOENT),
            "no O_CREAT"
        );
        assert_eq!(
            machine.call(2, [missing, (O_CREAT | 1) as u64, 0o644, 0, 0, 0]),
            Err(Errno::ENOENT),
            "no /etc"
        );
        let relative = machine.put(b"x\0");
        assert_eq!(
            machine.call(257, [77, relative, 0, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(machine.call(2, [0, 0, 0, 0, 0, 0]), Err(Errno::EFAULT));

        let path = machine.put(b"/tmp/notes\0");
        let fd = machine
            .call(2, [path, (O_CREAT | O_RDWR) as u64, 0o640, 0, 0, 0])
            .unwrap();
        let text = machine.put(b"hello, file");
        assert_eq!(machine.call(1, [fd, text, 11, 0, 0, 0]), Ok(11));
        assert_eq!(machine.call(8, [fd, 0, SEEK_SET as u64, 0, 0, 0]), Ok(0));
        let buffer = machine.scratch(32);
        assert_eq!(machine.call(0, [fd, buffer, 32, 0, 0, 0]), Ok(11));
        assert_eq!(machine.memory_at(buffer, 11), b"hello, file");
        assert_eq!(machine.call(17, [fd, buffer, 4, 7, 0, 0]), Ok(4), "pread");
        assert_eq!(machine.memory_at(buffer, 4), b"file");
        let stat = machine.scratch(144);
        assert_eq!(machine.call(4, [path, stat, 0, 0, 0, 0]), Ok(0));
        let mode = u32::from_le_bytes(machine.memory_at(stat + 24, 4).try_into().unwrap());
        assert_eq!(mode, 0o100640 & !0o022, "regular, less the umask");
        assert_eq!(machine.read_u64(stat + 48), 11, "st_size");
        assert_eq!(
            machine.call(2, [path, (O_CREAT | O_EXCL | 1) as u64, 0o644, 0, 0, 0]),
            Err(Errno::EEXIST)
        );
        assert_eq!(machine.call(3, [fd, 0, 0, 0, 0, 0]), Ok(0));

        let tmp = machine.put(b"/tmp\0");
        let dir = machine.call(2, [tmp, 0o200000, 0, 0, 0, 0]).unwrap(); // O_DIRECTORY
        let entries = machine.scratch(512);
        let got = machine.call(217, [dir, entries, 512, 0, 0, 0]).unwrap() as usize;
        let bytes = machine.memory_at(entries, got);
        let names: Vec<Vec<u8>> = {
            let mut names = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let length = u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
                let name = &bytes[at + 19..at + length];
                names.push(name[..name.iter().position(|&b| b == 0).unwrap()].to_vec());
                at += length;
            }
            names
        };
        assert_eq!(names, [&b"."[..], b"..", b"notes"]);
        assert_eq!(
            machine.call(217, [dir, entries, 512, 0, 0, 0]),
            Ok(0),
            "at the end"
        );
    }

    #[test]
    fn getcwd_is_root() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(16);
        assert_eq!(machine.call(79, [out, 16, 0, 0, 0, 0]), Ok(2));
        assert_eq!(machine.memory_at(out, 2), b"/\0");
        assert_eq!(machine.call(79, [out, 1, 0, 0, 0, 0]), Err(Errno::ERANGE));
    }
    #[test]
    fn the_fd_table_is_sparse() {
        let mut machine = TestMachine::new();
        let limit = machine.scratch(16);
        machine.write_u64(limit, 1 << 20);
        machine.write_u64(limit + 8, 1 << 20);
        assert_eq!(
            machine.call(160, [RLIMIT_NOFILE as u64, limit, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.call(33, [1, 1_048_575, 0, 0, 0, 0]), Ok(1_048_575));
        assert_eq!(
            machine.process.files.entries.len(),
            4,
            "one more entry, not a million"
        );
        assert_eq!(
            machine.call(33, [1, 1_048_576, 0, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(
            machine.call(32, [1_048_575, 0, 0, 0, 0, 0]),
            Ok(3),
            "the lowest free fd"
        );
    }

    #[test]
    fn duplicated_fds_share_their_status_flags() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(32, [0, 0, 0, 0, 0, 0]), Ok(3));
        assert_eq!(
            machine.call(72, [3, F_SETFL as u64, O_NONBLOCK as u64, 0, 0, 0]),
            Ok(0)
        );
        let flags = machine.call(72, [0, F_GETFL as u64, 0, 0, 0, 0]).unwrap() as u32;
        assert_ne!(
            flags & O_NONBLOCK,
            0,
            "fd 0 shares the description dup'd into fd 3"
        );
        assert_eq!(flags & O_LARGEFILE, O_LARGEFILE);
        assert_eq!(
            machine.call(72, [3, F_GETFD as u64, 0, 0, 0, 0]),
            Ok(0),
            "FD_CLOEXEC is per fd"
        );
        assert_eq!(machine.call(3, [0, 0, 0, 0, 0, 0]), Ok(0));
        assert_ne!(
            machine.call(72, [3, F_GETFL as u64, 0, 0, 0, 0]).unwrap() as u32 & O_NONBLOCK,
            0
        );
    }

    #[test]
    fn a_nonblocking_read_with_nothing_waiting_is_eagain() {
        let mut machine = TestMachine::new();
        machine.platform.input_open = true;
        let buffer = machine.scratch(16);
        assert_eq!(
            machine.call(72, [0, F_SETFL as u64, O_NONBLOCK as u64, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(0, [0, buffer, 16, 0, 0, 0]),
            Err(Errno::EAGAIN)
        );
        machine.set_input(b"abc");
        let count = machine.scratch(4);
        assert_eq!(
            machine.call(16, [0, FIONREAD as u64, count, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.memory_at(count, 4), 3i32.to_le_bytes());
        assert_eq!(machine.call(0, [0, buffer, 16, 0, 0, 0]), Ok(3));
    }

    #[test]
    fn readv_returns_what_is_waiting_across_buffers() {
        let mut machine = TestMachine::new();
        machine.platform.input_open = true;
        machine.set_input(b"hello");
        let (a, b) = (machine.scratch(3), machine.scratch(10));
        let vector = machine.scratch(32);
        machine.write_u64(vector, a);
        machine.write_u64(vector + 8, 3);
        machine.write_u64(vector + 16, b);
        machine.write_u64(vector + 24, 10);
        assert_eq!(
            machine.call(19, [0, vector, 2, 0, 0, 0]),
            Ok(5),
            "no wait for the rest of b"
        );
        assert_eq!(
            (machine.memory_at(a, 3), machine.memory_at(b, 2)),
            (b"hel".to_vec(), b"lo".to_vec())
        );
    }

    #[test]
    fn a_signal_from_the_host_interrupts_a_blocking_read() {
        let mut machine = TestMachine::new();
        machine.platform.input_open = true;
        machine.platform.host_signals = crate::signal::bit(15);
        let buffer = machine.scratch(16);
        assert_eq!(
            machine.call(0, [0, buffer, 16, 0, 0, 0]),
            Err(Errno::ERESTARTSYS)
        );
        assert_eq!(machine.process.signals.pending, crate::signal::bit(15));
        assert_eq!(
            machine.process.signals.pending_info[14].si_code,
            crate::signal::SI_USER
        );
        assert_eq!(machine.platform.signal_changes, 1, "the way out must look");
    }

    #[test]
    fn access_and_stat_find_the_proc_files_only() {
        let mut machine = TestMachine::new();
        let status = machine.put(b"/proc/self/status\0");
        let missing = machine.put(b"/etc/passwd\0");
        let relative = machine.put(b"status\0");
        assert_eq!(machine.call(21, [status, R_OK as u64, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(21, [status, W_OK as u64, 0, 0, 0, 0]), Ok(0)); // root
        assert_eq!(
            machine.call(21, [status, X_OK as u64, 0, 0, 0, 0]),
            Err(Errno::EACCES)
        );
        assert_eq!(
            machine.call(21, [status, 8, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(21, [missing, 0, 0, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            machine.call(269, [99, relative, 0, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(
            machine.call(439, [99, status, 0, 0x8000, 0, 0]),
            Err(Errno::EINVAL)
        );
        let buffer = machine.scratch(144);
        assert_eq!(machine.call(4, [status, buffer, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.read_u64(buffer + 24) & 0xffff_ffff,
            (S_IFREG | 0o444) as u64
        );
        assert_eq!(
            machine.call(6, [missing, buffer, 0, 0, 0, 0]),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn proc_self_maps_reads_seeks_and_is_read_only() {
        use crate::mm::{Vma, VmaKind};
        use crate::platform::Protection;
        let mut machine = TestMachine::new();
        let rx = Protection {
            read: true,
            write: false,
            execute: true,
        };
        machine.process.memory.insert(Vma {
            start: 0x40_0000,
            end: 0x40_2000,
            protection: rx,
            kind: VmaKind::Program {
                file_offset: 0x1000,
            },
        });
        let path = machine.put(b"/proc/self/maps\0");
        let fd = machine.call(2, [path, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(fd, 3);
        let buffer = machine.scratch(4096);
        let count = machine.call(0, [fd, buffer, 4096, 0, 0, 0]).unwrap() as usize;
        let text = String::from_utf8(machine.memory_at(buffer, count)).unwrap();
        let expected = format!(
            "00400000-00402000 r-xp 00001000 00:00 0 {}/hello\n",
            " ".repeat(73 - 40)
        );
        assert_eq!(text, expected);
        assert_eq!(
            machine.call(0, [fd, buffer, 4096, 0, 0, 0]),
            Ok(0),
            "then end of file"
        );
        assert_eq!(machine.call(8, [fd, 9, SEEK_SET as u64, 0, 0, 0]), Ok(9));
        assert_eq!(machine.call(0, [fd, buffer, 8, 0, 0, 0]), Ok(8));
        assert_eq!(machine.memory_at(buffer, 8), b"00402000");
        assert_eq!(
            machine.call(1, [fd, buffer, 1, 0, 0, 0]),
            Err(Errno::EBADF),
            "opened read-only"
        );
        let writable = machine.call(2, [path, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            machine.call(1, [writable, buffer, 1, 0, 0, 0]),
            Err(Errno::EINVAL),
            "root may open it, not write it"
        );
        assert_eq!(
            machine.call(0, [writable, buffer, 1, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(machine.call(3, [fd, 0, 0, 0, 0, 0]), Ok(0));
        let other = machine.put(b"/proc/self/no-such-file\0");
        assert_eq!(machine.call(2, [other, 0, 0, 0, 0, 0]), Err(Errno::ENOENT));
    }
}
