//! timerfd(2): a timer as a file. Reading it gives the number of expirations since the last
//! read (waiting for one); poll and epoll see it readable once it expired. Expirations are
//! counted when the timer is looked at, from its deadline and interval: nothing runs at the
//! deadline itself but the wake-up of a thread waiting for it.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_CLOEXEC, O_NONBLOCK};
use crate::platform::{Context, MachineClock, WakeOn};
use crate::poll::{POLLIN, POLLRDNORM};
use alloc::collections::BTreeMap;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// timerfd flags (include/uapi/linux/timerfd.h).
pub const TFD_TIMER_ABSTIME: i32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: i32 = 2;
pub const TFD_CLOEXEC: i32 = O_CLOEXEC as i32;
pub const TFD_NONBLOCK: i32 = O_NONBLOCK as i32;
/// The clocks a timerfd may use (include/uapi/linux/time.h).
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const NANOSECONDS: u64 = 1_000_000_000;

/// `struct itimerspec` (include/uapi/linux/time_types.h's __kernel_itimerspec).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerspec {
    pub it_interval: crate::uapi::Timespec,
    pub it_value: crate::uapi::Timespec,
}
const _: () = assert!(core::mem::size_of::<Itimerspec>() == 32);

/// One timerfd.
#[derive(Debug)]
pub struct Timerfd {
    clock: MachineClock,
    /// When it next expires, on its clock (ns); None when disarmed.
    deadline: Option<u64>,
    interval: u64,
    /// Expirations not read yet.
    expirations: u64,
    /// Every expiration counted so far (epoll's EPOLLET).
    pub generation: u32,
}

impl Timerfd {
    /// Counts the expirations up to `now` (on the timer's clock).
    fn update(&mut self, now: u64) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        let count = 1 + (now - deadline).checked_div(self.interval).unwrap_or(0);
        self.expirations = self.expirations.saturating_add(count);
        self.generation = self.generation.wrapping_add(count as u32);
        self.deadline = if self.interval > 0 {
            Some(deadline.saturating_add(count.saturating_mul(self.interval)))
        } else {
            None
        };
    }
}

/// The timerfds by id.
#[derive(Debug, Default)]
pub struct Timerfds {
    timers: BTreeMap<u32, Timerfd>,
    next_id: u32,
}

fn to_ns(time: crate::uapi::Timespec) -> Result<u64, Errno> {
    if time.tv_sec < 0 || !(0..NANOSECONDS as i64).contains(&time.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((time.tv_sec as u64)
        .saturating_mul(NANOSECONDS)
        .saturating_add(time.tv_nsec as u64))
}

fn to_timespec(ns: u64) -> crate::uapi::Timespec {
    crate::uapi::Timespec {
        tv_sec: (ns / NANOSECONDS) as i64,
        tv_nsec: (ns % NANOSECONDS) as i64,
    }
}

/// Implements timerfd_create(2).
pub fn timerfd_create(context: &mut Context, clock: i32, flags: i32) -> Result<i32, Errno> {
    let clock = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => MachineClock::Realtime,
        // One machine that never suspends: boot time is monotonic time.
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => MachineClock::Monotonic,
        _ => return Err(Errno::EINVAL),
    };
    if flags & !(TFD_CLOEXEC | TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let timers = &mut context.process.timerfds;
    let id = timers.next_id;
    timers.next_id = timers.next_id.wrapping_add(1);
    timers.timers.insert(
        id,
        Timerfd {
            clock,
            deadline: None,
            interval: 0,
            expirations: 0,
            generation: 0,
        },
    );
    let file = OpenFile {
        kind: FileKind::Timerfd { id },
        status_flags: flags as u32 & O_NONBLOCK,
    };
    let fd = crate::fs::install(context, file, flags & TFD_CLOEXEC != 0, |context| {
        context.process.timerfds.timers.remove(&id);
    })?;
    Ok(fd.0)
}

/// Drops timerfd `id` (its last description closed).
pub fn release(context: &mut Context, id: u32) {
    context.process.timerfds.timers.remove(&id);
}

/// Timerfd `id` with its expirations counted up to now, and now on its clock.
fn current<'a>(context: &'a mut Context, id: u32) -> Result<(&'a mut Timerfd, u64), Errno> {
    let timer = context
        .process
        .timerfds
        .timers
        .get_mut(&id)
        .ok_or(Errno::EBADF)?;
    let now = context.platform.now(timer.clock);
    timer.update(now);
    Ok((timer, now))
}

fn timer_id(context: &Context, fd: Fd) -> Result<u32, Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Timerfd { id } => Ok(id),
        _ => Err(Errno::EINVAL),
    }
}

/// The setting `timer` has now, as timerfd_gettime reports it: time left and interval.
fn setting(timer: &Timerfd, now: u64) -> Itimerspec {
    Itimerspec {
        it_interval: to_timespec(timer.interval),
        it_value: to_timespec(timer.deadline.map_or(0, |deadline| {
            // An armed timer never says 0 left (that would read as disarmed).
            deadline.saturating_sub(now).max(1)
        })),
    }
}

/// Implements timerfd_settime(2).
pub fn timerfd_settime(
    context: &mut Context,
    fd: Fd,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> Result<(), Errno> {
    let id = timer_id(context, fd)?;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let wanted: Itimerspec = context.read_struct(new.0)?;
    let value = to_ns(wanted.it_value)?;
    let interval = to_ns(wanted.it_interval)?;
    let (timer, now) = current(context, id)?;
    let previous = setting(timer, now);
    timer.expirations = 0;
    timer.interval = interval;
    timer.deadline = match value {
        0 => None,
        _ if flags & TFD_TIMER_ABSTIME != 0 => Some(value),
        _ => Some(now.saturating_add(value)),
    };
    if !old.is_null() {
        context.write_struct(old.0, &previous)?;
    }
    // A waiting thread looks again at its deadline.
    context.platform.wake_all();
    Ok(())
}

/// Implements timerfd_gettime(2).
pub fn timerfd_gettime(
    context: &mut Context,
    fd: Fd,
    current_value: UserAddr,
) -> Result<(), Errno> {
    let id = timer_id(context, fd)?;
    let (timer, now) = current(context, id)?;
    let value = setting(timer, now);
    context.write_struct(current_value.0, &value)
}

/// The monotonic time at which `timer` next expires.
fn monotonic_deadline(context: &Context, timer: &Timerfd) -> Option<u64> {
    let deadline = timer.deadline?;
    Some(match timer.clock {
        MachineClock::Realtime => {
            let left = deadline.saturating_sub(context.platform.now(MachineClock::Realtime));
            context
                .platform
                .now(MachineClock::Monotonic)
                .saturating_add(left)
        }
        _ => deadline,
    })
}

/// The earliest monotonic deadline of any armed timerfd: waits for events end there, so that
/// poll and epoll see a timerfd that expired.
pub fn next_deadline(context: &Context) -> Option<u64> {
    context
        .process
        .timerfds
        .timers
        .values()
        .filter_map(|timer| monotonic_deadline(context, timer))
        .min()
}

/// read(2) of a timerfd: the expirations since the last read, as 8 bytes, waiting for one.
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
    // Check the buffer first: expirations taken must not be lost to EFAULT.
    context.platform.write_user(buffer.0, &[0; 8])?;
    loop {
        let (timer, _) = current(context, id)?;
        if timer.expirations > 0 {
            let value = core::mem::take(&mut timer.expirations);
            context.write_struct(buffer.0, &value)?;
            return Ok(8);
        }
        if file.status_flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        let timer = context
            .process
            .timerfds
            .timers
            .get(&id)
            .ok_or(Errno::EBADF)?;
        let deadline = monotonic_deadline(context, timer).unwrap_or(u64::MAX);
        crate::signal::wait_step(context, deadline, WakeOn::AnyEvent)
            .map_err(|_| Errno::ERESTARTSYS)?;
    }
}

/// What timerfd `id` is ready for (poll events).
pub fn readiness(context: &mut Context, id: u32) -> i16 {
    match current(context, id) {
        Ok((timer, _)) if timer.expirations > 0 => POLLIN | POLLRDNORM,
        Ok(_) => 0,
        Err(_) => crate::poll::POLLNVAL,
    }
}

/// The count of expirations so far (epoll's EPOLLET).
pub fn generation(context: &mut Context, id: u32) -> u32 {
    current(context, id).map_or(0, |(timer, _)| timer.generation)
}
