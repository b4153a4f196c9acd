//! eventfd(2): a 64-bit counter as a file. A write adds to it, a read takes it all (or one,
//! with EFD_SEMAPHORE); reads wait while it is 0, writes while it would overflow.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::platform::{Context, WakeOn};
use crate::poll::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use alloc::collections::BTreeMap;

/// eventfd2 flags (include/uapi/linux/eventfd.h).
pub const EFD_SEMAPHORE: i32 = 1;
pub const EFD_CLOEXEC: i32 = O_CLOEXEC as i32;
pub const EFD_NONBLOCK: i32 = O_NONBLOCK as i32;
/// The counter's ceiling: a write that would pass it waits.
const MAX_COUNT: u64 = u64::MAX - 1;

/// One eventfd.
#[derive(Debug, Default)]
pub struct Eventfd {
    pub count: u64,
    pub semaphore: bool,
    /// Bumped at every read and write: epoll's edge-triggered mode reports each.
    pub generation: u32,
}

/// The eventfds by id.
#[derive(Debug, Default)]
pub struct Eventfds {
    counters: BTreeMap<u32, Eventfd>,
    next_id: u32,
}

impl Eventfds {
    pub fn get(&self, id: u32) -> Option<&Eventfd> {
        self.counters.get(&id)
    }

    fn get_mut(&mut self, id: u32) -> Result<&mut Eventfd, Errno> {
        self.counters.get_mut(&id).ok_or(Errno::EBADF)
    }
}

/// Implements eventfd2(2).
pub fn eventfd2(context: &mut Context, initial: u32, flags: i32) -> Result<i32, Errno> {
    if flags & !(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let eventfds = &mut context.process.eventfds;
    let id = eventfds.next_id;
    eventfds.next_id = eventfds.next_id.wrapping_add(1);
    eventfds.counters.insert(
        id,
        Eventfd {
            count: initial as u64,
            semaphore: flags & EFD_SEMAPHORE != 0,
            generation: 0,
        },
    );
    let file = OpenFile {
        kind: FileKind::Eventfd { id },
        status_flags: O_RDWR | (flags as u32 & O_NONBLOCK),
    };
    let fd = crate::fs::install(context, file, flags & EFD_CLOEXEC != 0, |context| {
        context.process.eventfds.counters.remove(&id);
    })?;
    Ok(fd.0)
}

/// Implements eventfd(2).
pub fn eventfd(context: &mut Context, initial: u32) -> Result<i32, Errno> {
    eventfd2(context, initial, 0)
}

/// Drops eventfd `id` (its last description closed).
pub fn release(context: &mut Context, id: u32) {
    context.process.eventfds.counters.remove(&id);
    context
        .process
        .files
        .epoll_unwatch(FileKind::Eventfd { id });
}

/// Waits (unless O_NONBLOCK: EAGAIN) until `attempt` succeeds.
fn wait_for(
    context: &mut Context,
    file: OpenFile,
    mut attempt: impl FnMut(&mut Eventfd) -> Option<u64>,
    id: u32,
) -> Result<u64, Errno> {
    loop {
        let eventfd = context.process.eventfds.get_mut(id)?;
        if let Some(value) = attempt(eventfd) {
            eventfd.generation = eventfd.generation.wrapping_add(1);
            context.process.files.epoll_note(FileKind::Eventfd { id });
            context.platform.wake_all(); // a reader or writer may be waiting on the other side
            return Ok(value);
        }
        if file.status_flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        crate::signal::wait_step(context, u64::MAX, WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
    }
}

/// read(2) of an eventfd: 8 bytes, the counter (and it becomes 0), or 1 with EFD_SEMAPHORE.
pub fn read(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    if count < 8 {
        return Err(Errno::EINVAL);
    }
    // Check the buffer first: a value taken must not be lost to EFAULT.
    context.platform.write_user(buffer.0, &[0; 8])?;
    let value = wait_for(
        context,
        file,
        |eventfd| {
            if eventfd.count == 0 {
                return None;
            }
            let taken = if eventfd.semaphore { 1 } else { eventfd.count };
            eventfd.count -= taken;
            Some(taken)
        },
        id,
    )?;
    context.write_struct(buffer.0, &value)?;
    Ok(8)
}

/// write(2) of an eventfd: 8 bytes added to the counter.
pub fn write(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    buffer: UserAddr,
    count: usize,
) -> Result<usize, Errno> {
    if count < 8 {
        return Err(Errno::EINVAL);
    }
    let value: u64 = context.read_struct(buffer.0)?;
    if value == u64::MAX {
        return Err(Errno::EINVAL);
    }
    wait_for(
        context,
        file,
        |eventfd| {
            if MAX_COUNT - eventfd.count < value {
                return None;
            }
            eventfd.count += value;
            Some(value)
        },
        id,
    )?;
    Ok(8)
}

/// What eventfd `id` is ready for (poll events).
pub fn readiness(context: &mut Context, id: u32) -> i16 {
    let Some(eventfd) = context.process.eventfds.get(id) else {
        return crate::poll::POLLNVAL;
    };
    let mut ready = 0;
    if eventfd.count > 0 {
        ready |= POLLIN | POLLRDNORM;
    }
    if eventfd.count < MAX_COUNT {
        ready |= POLLOUT | POLLWRNORM;
    }
    ready
}
