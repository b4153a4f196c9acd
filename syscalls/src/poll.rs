//! poll, ppoll, select and pselect6 over every kind of file: the console, files, pipes,
//! signalfds, sockets, eventfds and epoll instances.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::FileKind;
use crate::platform::{Context, MachineClock};
use crate::uapi::Timespec;
use alloc::vec::Vec;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// poll events (include/uapi/asm-generic/poll.h).
pub const POLLIN: i16 = 0x001;
pub const POLLPRI: i16 = 0x002;
pub const POLLOUT: i16 = 0x004;
pub const POLLERR: i16 = 0x008;
pub const POLLHUP: i16 = 0x010;
pub const POLLNVAL: i16 = 0x020;
pub const POLLRDNORM: i16 = 0x040;
pub const POLLWRNORM: i16 = 0x100;

/// `struct pollfd` (include/uapi/asm-generic/poll.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Pollfd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// RLIMIT_NOFILE bounds nfds on Linux; this is its hard ceiling here.
const MAX_POLL_FDS: u64 = 1 << 20;

/// What `fd` is ready for now, of `events` (POLLERR, POLLHUP and POLLNVAL always count).
pub fn readiness(context: &mut Context, fd: Fd, events: i16) -> i16 {
    let Ok(file) = context.process.files.get(fd) else {
        return POLLNVAL;
    };
    let ready = match file.kind {
        FileKind::Console(_) => {
            let waiting = context.platform.console_available() > 0;
            // At the end of input Linux says POLLHUP of a pipe with no writer (select counts it
            // as readable: a read returns 0 at once).
            let ended = !waiting && context.platform.console_input_ended();
            let mut ready = POLLOUT | POLLWRNORM;
            if waiting {
                ready |= POLLIN | POLLRDNORM;
            }
            if ended {
                ready |= POLLHUP;
            }
            ready
        }
        // Regular files and directories are always ready, as on Linux.
        FileKind::Generated | FileKind::Node(_) => POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM,
        FileKind::Pipe { id, write_end } => crate::pipe::readiness(context, id, write_end),
        FileKind::Signalfd { mask } => {
            if context.process.signals.all_pending() & mask != 0 {
                POLLIN | POLLRDNORM
            } else {
                0
            }
        }
        FileKind::Socket { id } => crate::net::readiness(context, id),
        FileKind::UnixSocket { id } => crate::unix::readiness(context, id),
        FileKind::Epoll { id } => crate::epoll::readiness(context, id),
        FileKind::Eventfd { id } => crate::eventfd::readiness(context, id),
        FileKind::Timerfd { id } => crate::timerfd::readiness(context, id),
    };
    ready & (events | POLLERR | POLLHUP | POLLNVAL)
}

/// Waits until one of `fds` is ready, a signal is to be delivered (EINTR), or `deadline`.
fn wait_for(context: &mut Context, fds: &mut [Pollfd], deadline: u64) -> Result<usize, Errno> {
    loop {
        crate::net::poll_stack(context);
        let mut count = 0;
        for entry in fds.iter_mut() {
            entry.revents = if entry.fd < 0 {
                0
            } else {
                readiness(context, Fd(entry.fd), entry.events)
            };
            count += (entry.revents != 0) as usize;
        }
        if count > 0 {
            return Ok(count);
        }
        if context.platform.now(MachineClock::Monotonic) >= deadline {
            return Ok(0);
        }
        crate::net::wait(context, deadline)?;
    }
}

fn deadline_after(context: &Context, nanoseconds: u64) -> u64 {
    context
        .platform
        .now(MachineClock::Monotonic)
        .saturating_add(nanoseconds)
}

fn read_pollfds(context: &Context, fds: UserAddr, count: u64) -> Result<Vec<Pollfd>, Errno> {
    if count > MAX_POLL_FDS {
        return Err(Errno::EINVAL);
    }
    (0..count)
        .map(|index| context.read_struct(fds.0 + index * 8))
        .collect()
}

fn write_pollfds(context: &mut Context, fds: UserAddr, entries: &[Pollfd]) -> Result<(), Errno> {
    for (index, entry) in entries.iter().enumerate() {
        context.write_struct(fds.0 + index as u64 * 8, entry)?;
    }
    Ok(())
}

/// Implements poll(2): `timeout` in ms, negative for none.
pub fn poll(
    context: &mut Context,
    fds: UserAddr,
    count: u64,
    timeout: i32,
) -> Result<usize, Errno> {
    let mut entries = read_pollfds(context, fds, count)?;
    let deadline = if timeout < 0 {
        u64::MAX
    } else {
        deadline_after(context, timeout as u64 * 1_000_000)
    };
    // A signal interrupts poll with EINTR, never a restart (poll(2)).
    let ready = wait_for(context, &mut entries, deadline)?;
    write_pollfds(context, fds, &entries)?;
    Ok(ready)
}

pub fn timespec_deadline(context: &Context, timeout: UserAddr) -> Result<u64, Errno> {
    if timeout.is_null() {
        return Ok(u64::MAX);
    }
    let limit: Timespec = context.read_struct(timeout.0)?;
    if limit.tv_sec < 0 || !(0..1_000_000_000).contains(&limit.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(deadline_after(
        context,
        (limit.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(limit.tv_nsec as u64),
    ))
}

/// Runs `wait` with the signal mask `mask` (when given) in force, as ppoll and pselect6 do:
/// the caller's mask comes back after a handler (via the frame) or at once otherwise.
pub fn with_mask<R>(
    context: &mut Context,
    mask: UserAddr,
    mask_size: usize,
    wait: impl FnOnce(&mut Context) -> Result<R, Errno>,
) -> Result<R, Errno> {
    if mask.is_null() {
        return wait(context);
    }
    if mask_size != 8 {
        return Err(Errno::EINVAL);
    }
    let new: u64 = context.read_struct(mask.0)?;
    let signals = &mut context.process.signals;
    let saved = signals.blocked;
    signals.blocked = new & !(crate::signal::bit(9) | crate::signal::bit(19));
    context.platform.signal_state_changed();
    let result = wait(context);
    if matches!(result, Err(Errno::EINTR)) {
        // A handler runs on the way out: its frame saves the caller's mask for sigreturn.
        context.process.signals.saved_mask = Some(saved);
    } else {
        context.process.signals.blocked = saved;
    }
    result
}

/// Implements ppoll(2).
pub fn ppoll(
    context: &mut Context,
    fds: UserAddr,
    count: u64,
    timeout: UserAddr,
    mask: UserAddr,
    mask_size: usize,
) -> Result<usize, Errno> {
    let mut entries = read_pollfds(context, fds, count)?;
    let deadline = timespec_deadline(context, timeout)?;
    let ready = with_mask(context, mask, mask_size, |context| {
        wait_for(context, &mut entries, deadline)
    })?;
    write_pollfds(context, fds, &entries)?;
    Ok(ready)
}

/// FD_SETSIZE (include/uapi/linux/posix_types.h).
const FD_SETSIZE: i32 = 1024;

fn read_fd_set(context: &Context, set: UserAddr, count: i32) -> Result<Vec<u64>, Errno> {
    let words = (count as usize).div_ceil(64);
    if set.is_null() {
        return Ok(alloc::vec![0; words]);
    }
    (0..words)
        .map(|index| context.read_struct::<u64>(set.0 + index as u64 * 8))
        .collect()
}

fn select_common(
    context: &mut Context,
    count: i32,
    sets: [UserAddr; 3],
    deadline: u64,
) -> Result<usize, Errno> {
    if !(0..=FD_SETSIZE).contains(&count) {
        return Err(Errno::EINVAL);
    }
    let [read_set, write_set, except_set] = [
        read_fd_set(context, sets[0], count)?,
        read_fd_set(context, sets[1], count)?,
        read_fd_set(context, sets[2], count)?,
    ];
    let mut entries = Vec::new();
    for fd in 0..count {
        let (word, bit) = (fd as usize / 64, 1u64 << (fd % 64));
        let mut events = 0;
        if read_set[word] & bit != 0 {
            events |= POLLIN;
        }
        if write_set[word] & bit != 0 {
            events |= POLLOUT;
        }
        if except_set[word] & bit != 0 {
            events |= POLLPRI;
        }
        if events != 0 {
            // select says EBADF for a closed fd where poll says POLLNVAL.
            context.process.files.get(Fd(fd))?;
            entries.push(Pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    wait_for(context, &mut entries, deadline)?;
    let mut out = [
        alloc::vec![0u64; read_set.len()],
        alloc::vec![0u64; read_set.len()],
        alloc::vec![0u64; read_set.len()],
    ];
    let mut ready = 0;
    for entry in &entries {
        let (word, bit) = (entry.fd as usize / 64, 1u64 << (entry.fd % 64));
        for (index, flag) in [POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI]
            .into_iter()
            .enumerate()
        {
            let wanted = [POLLIN, POLLOUT, POLLPRI][index];
            if entry.events & wanted != 0 && entry.revents & flag != 0 {
                out[index][word] |= bit;
                ready += 1;
            }
        }
    }
    for (index, set) in sets.iter().enumerate() {
        if !set.is_null() {
            for (word, value) in out[index].iter().enumerate() {
                context.write_struct(set.0 + word as u64 * 8, value)?;
            }
        }
    }
    Ok(ready)
}

/// `struct timeval` for select's timeout.
fn timeval_deadline(context: &Context, timeout: UserAddr) -> Result<u64, Errno> {
    if timeout.is_null() {
        return Ok(u64::MAX);
    }
    let limit: crate::uapi::Timeval = context.read_struct(timeout.0)?;
    if limit.tv_sec < 0 || !(0..1_000_000).contains(&limit.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(deadline_after(
        context,
        (limit.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(limit.tv_usec as u64 * 1000),
    ))
}

/// Implements select(2).
pub fn select(
    context: &mut Context,
    count: i32,
    read: UserAddr,
    write: UserAddr,
    except: UserAddr,
    timeout: UserAddr,
) -> Result<usize, Errno> {
    let deadline = timeval_deadline(context, timeout)?;
    select_common(context, count, [read, write, except], deadline)
}

/// pselect6's last argument: the mask and its size (include/linux/syscalls.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct SigsetArgument {
    mask: u64,
    size: u64,
}

/// Implements pselect6(2).
pub fn pselect6(
    context: &mut Context,
    count: i32,
    read: UserAddr,
    write: UserAddr,
    except: UserAddr,
    timeout: UserAddr,
    mask: UserAddr,
) -> Result<usize, Errno> {
    let deadline = timespec_deadline(context, timeout)?;
    let (mask_address, mask_size) = if mask.is_null() {
        (UserAddr(0), 8)
    } else {
        let argument: SigsetArgument = context.read_struct(mask.0)?;
        (UserAddr(argument.mask), argument.size as usize)
    };
    with_mask(context, mask_address, mask_size, |context| {
        select_common(context, count, [read, write, except], deadline)
    })
}
