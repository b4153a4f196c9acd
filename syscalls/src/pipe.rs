//! Pipes (pipe(7)): a 64 KiB buffer between a read end and a write end. Reads wait for data
//! and see end of file once every write end is closed; writes wait for room, a write of up to
//! PIPE_BUF bytes is never interleaved with another, and writing with no read end left is
//! EPIPE and SIGPIPE. O_NONBLOCK gives EAGAIN instead of waiting.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_CLOEXEC, O_NONBLOCK, O_RDWR, O_WRONLY};
use crate::platform::{Context, WakeOn};
use alloc::collections::VecDeque;

/// PIPE_BUF: writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// The default capacity (16 pages), as Linux's.
pub const PIPE_SIZE: usize = 65536;
/// O_DIRECT: packet mode, which Pith does not have.
const O_DIRECT: u32 = 0o40000;
/// fcntl's pipe-size commands (include/uapi/linux/fcntl.h).
pub const F_SETPIPE_SZ: i32 = 1031;
pub const F_GETPIPE_SZ: i32 = 1032;

/// One pipe's buffer and how many open descriptions each end has.
#[derive(Debug, Default)]
pub struct Pipe {
    pub buffer: VecDeque<u8>,
    pub capacity: usize,
    pub readers: usize,
    pub writers: usize,
    /// Bumped at every read and write: epoll's edge-triggered mode reports each.
    pub generation: u32,
}

impl Pipe {
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.buffer.len())
    }
}

/// Implements pipe2(2).
pub fn pipe2(context: &mut Context, fds: UserAddr, flags: u32) -> Result<(), Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_DIRECT != 0 {
        return Err(Errno::EINVAL); // packet-mode pipes are not there
    }
    let limit = crate::fs::nofile_limit(context);
    let files = &mut context.process.files;
    let id = files.new_pipe();
    let end = |write_end: bool| OpenFile {
        kind: FileKind::Pipe { id, write_end },
        status_flags: (if write_end { O_WRONLY } else { 0 }) | (flags & O_NONBLOCK),
    };
    let cloexec = flags & O_CLOEXEC != 0;
    let read_fd = files.open(end(false), cloexec, limit)?;
    let write_fd = match files.open(end(true), cloexec, limit) {
        Ok(fd) => fd,
        Err(errno) => {
            let _ = files.close(read_fd);
            return Err(errno);
        }
    };
    let pair = [read_fd.0, write_fd.0];
    if let Err(errno) = context.write_struct(fds.0, &pair) {
        let _ = context.process.files.close(read_fd);
        let _ = context.process.files.close(write_fd);
        return Err(errno);
    }
    Ok(())
}

/// Implements pipe(2).
pub fn pipe(context: &mut Context, fds: UserAddr) -> Result<(), Errno> {
    pipe2(context, fds, 0)
}

/// Reads a pipe: what is there (up to `count`), waiting for something unless the write ends
/// are all closed (0: end of file) or O_NONBLOCK (EAGAIN).
pub fn read(
    context: &mut Context,
    file: OpenFile,
    id: u32,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    if file.status_flags & (O_WRONLY | O_RDWR) == O_WRONLY {
        return Err(Errno::EBADF);
    }
    loop {
        let pipe = context.process.files.pipe_mut(id)?;
        if !pipe.buffer.is_empty() {
            let take = count.min(pipe.buffer.len());
            let bytes: alloc::vec::Vec<u8> = pipe.buffer.drain(..take).collect();
            if let Err(errno) = context.platform.write_user(buffer.0, &bytes) {
                // Put them back: a bad buffer must not lose the pipe's data.
                let pipe = context.process.files.pipe_mut(id)?;
                for &byte in bytes.iter().rev() {
                    pipe.buffer.push_front(byte);
                }
                return Err(errno);
            }
            pipe.generation = pipe.generation.wrapping_add(1);
            context.process.files.epoll_note_pipe(id);
            context.platform.wake_all(); // a writer may be waiting for room
            return Ok(take);
        }
        if pipe.writers == 0 {
            return Ok(0);
        }
        if file.status_flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        crate::signal::wait_step(context, u64::MAX, WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
    }
}

/// Writes a pipe: all of it, waiting for room as needed (a write of PIPE_BUF bytes or fewer
/// goes in at once, never split); EPIPE and SIGPIPE once no read end is open.
pub fn write(
    context: &mut Context,
    file: OpenFile,
    id: u32,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    if file.status_flags & (O_WRONLY | O_RDWR) == 0 {
        return Err(Errno::EBADF);
    }
    let data = context.read_bytes(buffer.0, count.min(1 << 20))?;
    write_data(context, file, id, &data)
}

/// Writes `data` into the pipe (write's second half; sendfile's writer).
pub fn write_data(
    context: &mut Context,
    file: OpenFile,
    id: u32,
    data: &[u8],
) -> Result<usize, Errno> {
    if file.status_flags & (O_WRONLY | O_RDWR) == 0 {
        return Err(Errno::EBADF);
    }
    let mut done = 0;
    loop {
        let pipe = context.process.files.pipe_mut(id)?;
        if pipe.readers == 0 {
            if done > 0 {
                return Ok(done);
            }
            let tid = context.process.threads.current;
            let info = crate::signal::user_siginfo(13, crate::signal::SI_USER, context.process.pid);
            context.process.raise_for_thread(tid, 13, info); // SIGPIPE
            context.platform.signal_state_changed();
            return Err(Errno::EPIPE);
        }
        let left = data.len() - done;
        let room = pipe.room();
        // An atomic write waits for room for all of it; a larger one takes what fits.
        let take = if left <= PIPE_BUF {
            if room >= left {
                left
            } else {
                0
            }
        } else {
            room.min(left)
        };
        if take > 0 {
            pipe.buffer.extend(&data[done..done + take]);
            pipe.generation = pipe.generation.wrapping_add(1);
            context.process.files.epoll_note_pipe(id);
            done += take;
            context.platform.wake_all(); // a reader may be waiting
            if done == data.len() {
                return Ok(done);
            }
            continue;
        }
        if file.status_flags & O_NONBLOCK != 0 {
            return if done > 0 {
                Ok(done)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        if crate::signal::wait_step(context, u64::MAX, WakeOn::AnyEvent).is_err() {
            return if done > 0 {
                Ok(done)
            } else {
                Err(Errno::ERESTARTSYS)
            };
        }
    }
}

/// How many bytes a read would get now (FIONREAD).
pub fn available(context: &mut Context, id: u32) -> Result<usize, Errno> {
    Ok(context.process.files.pipe_mut(id)?.buffer.len())
}

/// fcntl's F_GETPIPE_SZ and F_SETPIPE_SZ.
pub fn size_command(
    context: &mut Context,
    fd: Fd,
    command: i32,
    argument: u64,
) -> Result<i32, Errno> {
    let FileKind::Pipe { id, .. } = context.process.files.get(fd)?.kind else {
        return Err(Errno::EBADF);
    };
    let pipe = context.process.files.pipe_mut(id)?;
    if command == F_GETPIPE_SZ {
        return Ok(pipe.capacity as i32);
    }
    // Rounded up to a power of two of pages, at most /proc/sys/fs/pipe-max-size (1 MiB);
    // never below what the pipe holds now (EBUSY).
    let wanted = (argument as usize).clamp(4096, 1 << 20).next_power_of_two();
    if argument as usize > 1 << 20 {
        return Err(Errno::EPERM);
    }
    if wanted < pipe.buffer.len() {
        return Err(Errno::EBUSY);
    }
    pipe.capacity = wanted;
    Ok(wanted as i32)
}

/// poll's view of a pipe end.
pub fn readiness(context: &mut Context, id: u32, write_end: bool) -> i16 {
    use crate::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
    let Ok(pipe) = context.process.files.pipe_mut(id) else {
        return 0;
    };
    if write_end {
        if pipe.readers == 0 {
            return POLLERR;
        }
        if pipe.room() > 0 {
            return POLLOUT | POLLWRNORM;
        }
        return 0;
    }
    let mut ready = 0;
    if !pipe.buffer.is_empty() {
        ready |= POLLIN | POLLRDNORM;
    }
    if pipe.writers == 0 {
        ready |= POLLHUP;
    }
    ready
}

#[cfg(test)]
mod tests {
    use crate::errno::Errno;
    use crate::testing::TestMachine;

    #[test]
    fn a_pipe_carries_bytes_and_ends() {
        let mut machine = TestMachine::new();
        let fds = machine.scratch(8);
        assert_eq!(machine.call(22, [fds, 0, 0, 0, 0, 0]), Ok(0));
        let pair = machine.read_u64(fds);
        let (read_end, write_end) = (pair & 0xffff_ffff, pair >> 32);
        assert_eq!((read_end, write_end), (3, 4));
        let text = machine.put(b"through the pipe");
        assert_eq!(machine.call(1, [write_end, text, 16, 0, 0, 0]), Ok(16));
        let buffer = machine.scratch(64);
        assert_eq!(machine.call(0, [read_end, buffer, 7, 0, 0, 0]), Ok(7));
        assert_eq!(machine.memory_at(buffer, 7), b"through");
        assert_eq!(
            machine.call(0, [write_end, buffer, 7, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        assert_eq!(machine.call(3, [write_end, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(0, [read_end, buffer, 64, 0, 0, 0]), Ok(9));
        assert_eq!(
            machine.call(0, [read_end, buffer, 64, 0, 0, 0]),
            Ok(0),
            "end of file"
        );
        // Writing with no reader: EPIPE and SIGPIPE.
        assert_eq!(machine.call(293, [fds, 0o4000, 0, 0, 0, 0]), Ok(0)); // O_NONBLOCK
        let pair = machine.read_u64(fds);
        let (read_end, write_end) = (pair & 0xffff_ffff, pair >> 32);
        assert_eq!(
            machine.call(0, [read_end, buffer, 8, 0, 0, 0]),
            Err(Errno::EAGAIN)
        );
        assert_eq!(machine.call(3, [read_end, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(1, [write_end, text, 4, 0, 0, 0]),
            Err(Errno::EPIPE)
        );
        assert_ne!(
            machine.process.signals.thread_pending & (1 << 12),
            0,
            "SIGPIPE"
        );
        assert_eq!(
            machine.call(293, [fds, 0o40000, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn a_full_pipe_refuses_an_atomic_write_it_cannot_take_whole() {
        let mut machine = TestMachine::new();
        let fds = machine.scratch(8);
        assert_eq!(machine.call(293, [fds, 0o4000, 0, 0, 0, 0]), Ok(0));
        let write_end = machine.read_u64(fds) >> 32;
        let block = machine.scratch(65536);
        assert_eq!(
            machine.call(1, [write_end, block, 65536 - 100, 0, 0, 0]),
            Ok(65436)
        );
        assert_eq!(
            machine.call(1, [write_end, block, 200, 0, 0, 0]),
            Err(Errno::EAGAIN),
            "200 <= PIPE_BUF: all or nothing"
        );
        assert_eq!(
            machine.call(1, [write_end, block, 8192, 0, 0, 0]),
            Ok(100),
            "partial"
        );
    }
}
