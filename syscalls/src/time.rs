//! Clocks: clock_gettime, clock_getres, gettimeofday, time.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::{Context, MachineClock};
use crate::uapi::{Itimerspec, Itimerval, Sigevent, Siginfo, Timespec, Timeval, Timezone};

/// Clock ids (include/uapi/linux/time.h).
pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_REALTIME_COARSE: i32 = 5;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;
pub const CLOCK_REALTIME_ALARM: i32 = 8;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
pub const CLOCK_TAI: i32 = 11;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Which machine clock a Linux clock id reads. The VM runs one program and never suspends,
/// so BOOTTIME is MONOTONIC; the CPU-time clocks count the time the program ran.
fn machine_clock(clock: i32, own_pid: i32) -> Result<MachineClock, Errno> {
    if clock < 0 {
        return cpu_clock_of(clock, own_pid).map(|_| MachineClock::CpuTime);
    }
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
            Ok(MachineClock::Realtime)
        }
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => Ok(MachineClock::Monotonic),
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(MachineClock::CpuTime),
        _ => Err(Errno::EINVAL),
    }
}

/// A CPU-time clock id made for a process or thread (clock_getcpuclockid, pthread_getcpuclockid,
/// and glibc's own clock_nanosleep): `~pid << 3`, bit 2 for a thread, the low two bits PROF,
/// VIRT or SCHED (include/linux/posix-timers.h). Returns whether it names a thread; any pid
/// but 0 or the program's own is EINVAL, as Linux answers for a task that does not exist.
fn cpu_clock_of(clock: i32, own_pid: i32) -> Result<bool, Errno> {
    const CPUCLOCK_PERTHREAD: i32 = 4;
    const CPUCLOCK_MAX: i32 = 3;
    let pid = !(clock >> 3);
    let thread = clock & CPUCLOCK_PERTHREAD != 0;
    // A thread's clock names its tid, which clock_gettime checks (reading_clock).
    if clock & 3 >= CPUCLOCK_MAX || (pid != 0 && pid != own_pid && !thread) {
        return Err(Errno::EINVAL);
    }
    Ok(thread)
}

/// Whether `clock` is a CPU-time clock, by its fixed id or one made for a process or thread.
fn is_cpu_clock(clock: i32) -> bool {
    clock < 0 || matches!(clock, CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID)
}

fn timespec(nanoseconds: u64) -> Timespec {
    Timespec {
        tv_sec: (nanoseconds / NANOS_PER_SECOND) as i64,
        tv_nsec: (nanoseconds % NANOS_PER_SECOND) as i64,
    }
}

/// Which machine clock clock_gettime reads for `clock`: a thread's CPU-time clock is its own
/// (the timers and sleeps on it count the process's, see docs/syscalls.md).
fn reading_clock(clock: i32, process: &crate::Process) -> Result<MachineClock, Errno> {
    let machine = machine_clock(clock, process.pid)?;
    let thread = match clock {
        CLOCK_THREAD_CPUTIME_ID => Some(process.threads.current),
        _ if clock < 0 && clock & 4 != 0 => match !(clock >> 3) {
            0 => Some(process.threads.current),
            tid => Some(tid),
        },
        _ => None,
    };
    match thread {
        Some(tid) if process.threads.exists(tid) => Ok(MachineClock::ThreadCpuTime(tid)),
        Some(_) => Err(Errno::EINVAL),
        None => Ok(machine),
    }
}

/// Implements clock_gettime(2).
pub fn clock_gettime(context: &mut Context, clock: i32, time: UserAddr) -> Result<(), Errno> {
    let now = context.platform.now(reading_clock(clock, context.process)?);
    context.write_struct(time.0, &timespec(now))
}

/// Implements clock_getres(2): every clock reads the TSC, to the nanosecond.
pub fn clock_getres(context: &mut Context, clock: i32, resolution: UserAddr) -> Result<(), Errno> {
    machine_clock(clock, context.process.pid)?;
    if resolution.is_null() {
        return Ok(());
    }
    context.write_struct(
        resolution.0,
        &Timespec {
            tv_sec: 0,
            tv_nsec: 1,
        },
    )
}

/// Implements gettimeofday(2); the timezone is UTC.
pub fn gettimeofday(context: &mut Context, time: UserAddr, zone: UserAddr) -> Result<(), Errno> {
    if !time.is_null() {
        let now = context.platform.now(MachineClock::Realtime);
        let value = Timeval {
            tv_sec: (now / NANOS_PER_SECOND) as i64,
            tv_usec: ((now % NANOS_PER_SECOND) / 1000) as i64,
        };
        context.write_struct(time.0, &value)?;
    }
    if !zone.is_null() {
        context.write_struct(zone.0, &Timezone::default())?;
    }
    Ok(())
}

/// Implements time(2).
pub fn time(context: &mut Context, time: UserAddr) -> Result<i64, Errno> {
    let seconds = (context.platform.now(MachineClock::Realtime) / NANOS_PER_SECOND) as i64;
    if !time.is_null() {
        context.write_struct(time.0, &seconds)?;
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn clocks_read_the_right_machine_clock() {
        let mut machine = TestMachine::new();
        machine.set_clocks(5_123_456_789, 1_700_000_000_250_000_000);
        let out = machine.scratch(16);
        assert_eq!(
            machine.call(228, [CLOCK_MONOTONIC as u64, out, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            (machine.read_u64(out), machine.read_u64(out + 8)),
            (5, 123_456_789)
        );
        assert_eq!(
            machine.call(228, [CLOCK_REALTIME as u64, out, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            (machine.read_u64(out), machine.read_u64(out + 8)),
            (1_700_000_000, 250_000_000)
        );
        assert_eq!(machine.call(228, [10, out, 0, 0, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(
            machine.call(228, [(-1i32) as u32 as u64, out, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(228, [0, 0, 0, 0, 0, 0]), Err(Errno::EFAULT));
    }

    #[test]
    fn gettimeofday_and_time_agree() {
        let mut machine = TestMachine::new();
        machine.set_clocks(1, 1_700_000_000_250_000_000);
        let out = machine.scratch(16);
        assert_eq!(machine.call(96, [out, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            (machine.read_u64(out), machine.read_u64(out + 8)),
            (1_700_000_000, 250_000)
        );
        assert_eq!(machine.call(201, [0, 0, 0, 0, 0, 0]), Ok(1_700_000_000));
    }

    #[test]
    fn getres_is_one_nanosecond() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(16);
        assert_eq!(
            machine.call(229, [CLOCK_MONOTONIC as u64, out, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(out + 8), 1);
        assert_eq!(
            machine.call(229, [CLOCK_MONOTONIC as u64, 0, 0, 0, 0, 0]),
            Ok(0)
        );
    }
}

/// clock_nanosleep's flag (include/uapi/linux/time.h).
pub const TIMER_ABSTIME: i32 = 1;
/// setitimer's timers (include/uapi/linux/time.h).
pub const ITIMER_REAL: i32 = 0;
pub const ITIMER_VIRTUAL: i32 = 1;
pub const ITIMER_PROF: i32 = 2;

/// The process's interval timers: ITIMER_REAL, which sends SIGALRM, ITIMER_VIRTUAL
/// (SIGVTALRM) and ITIMER_PROF (SIGPROF), which count CPU time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    /// When ITIMER_REAL next expires (monotonic ns), and its interval (0: once).
    pub real: Option<(u64, u64)>,
    /// ITIMER_VIRTUAL and ITIMER_PROF: when each next expires (CPU-time ns) and its interval.
    /// User and system time are not told apart (see getrusage), so both count all CPU time.
    pub cpu: [Option<(u64, u64)>; 2],
    /// timer_create's timers, by id.
    pub posix: alloc::collections::BTreeMap<i32, PosixTimer>,
}

/// One timer_create timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosixTimer {
    /// The clock it counts on (TIMER_ABSTIME values are on this clock).
    pub clock: i32,
    /// The signal it sends, and the value it carries; None for SIGEV_NONE.
    pub signal: Option<(i32, u64)>,
    /// SIGEV_THREAD_ID's thread: the signal is for it alone.
    pub thread: Option<i32>,
    /// When it next expires and its interval, when armed: in monotonic ns, or for a timer on a
    /// CPU-time clock, in the program's CPU-time ns.
    pub armed: Option<(u64, u64)>,
    /// Expirations missed before the last signal was raised (timer_getoverrun).
    pub overrun: i32,
}

impl PosixTimer {
    /// Whether it counts the program's CPU time rather than monotonic time.
    pub fn counts_cpu_time(&self) -> bool {
        is_cpu_clock(self.clock)
    }
}

/// How many timers a process may create (Linux's limit is RLIMIT_SIGPENDING; a fixed bound
/// keeps the kernel's memory in check).
const MAX_POSIX_TIMERS: usize = 1024;

impl Timers {
    /// The next monotonic time something is due, for the machine's timer.
    pub fn next_deadline(&self) -> Option<u64> {
        let posix = self
            .posix
            .values()
            .filter(|timer| !timer.counts_cpu_time())
            .filter_map(|timer| timer.armed.map(|(at, _)| at));
        self.real.map(|(at, _)| at).into_iter().chain(posix).min()
    }

    /// When the machine's timer must next fire while the program runs: the monotonic timers,
    /// and the CPU-time ones at `now` plus the CPU time they still need (which a halt would
    /// postpone: they are re-armed after each).
    pub fn next_alarm(&self, now: u64, cpu_now: u64) -> Option<u64> {
        let cpu_posix = self
            .posix
            .values()
            .filter(|timer| timer.counts_cpu_time())
            .filter_map(|timer| timer.armed);
        let cpu = self
            .cpu
            .iter()
            .flatten()
            .copied()
            .chain(cpu_posix)
            .map(|(at, _)| now.saturating_add(at.saturating_sub(cpu_now)));
        self.next_deadline().into_iter().chain(cpu).min()
    }
}

/// The signal each CPU-time interval timer sends: ITIMER_VIRTUAL's, then ITIMER_PROF's.
const CPU_TIMER_SIGNALS: [i32; 2] = [26, 27]; // SIGVTALRM, SIGPROF

/// The next expiry of a timer due at `at` with `interval` (0: once), at `now`, and how many
/// expirations were missed: periodic timers skip the periods they missed, as Linux's hrtimer
/// forwarding does.
fn forward(at: u64, interval: u64, now: u64) -> (Option<(u64, u64)>, u64) {
    match (now - at).checked_div(interval) {
        Some(missed) => (Some((at + (missed + 1) * interval, interval)), missed),
        None => (None, 0),
    }
}

/// Raises the signals of the timers that are due at `now` (monotonic) and `cpu_now` (the
/// program's CPU time) and re-arms the periodic ones. Returns whether a signal was raised.
/// The kernel calls this from its timer interrupt too.
pub fn expire_timers(process: &mut crate::Process, now: u64, cpu_now: u64) -> bool {
    let mut raised = false;
    for (timer, signal) in process.timers.cpu.iter_mut().zip(CPU_TIMER_SIGNALS) {
        if let Some((at, interval)) = timer.filter(|&(at, _)| cpu_now >= at) {
            *timer = forward(at, interval, cpu_now).0;
            let info = Siginfo {
                si_signo: signal,
                si_code: SI_KERNEL,
                ..Siginfo::default()
            };
            process.signals.raise(signal, info);
            raised = true;
        }
    }
    if let Some((at, interval)) = process.timers.real.filter(|&(at, _)| now >= at) {
        process.timers.real = forward(at, interval, now).0;
        // it_real_fn sends SIGALRM as the kernel (SEND_SIG_PRIV): si_code SI_KERNEL.
        let info = Siginfo {
            si_signo: crate::signal::SIGALRM,
            si_code: SI_KERNEL,
            ..Siginfo::default()
        };
        process.signals.raise(crate::signal::SIGALRM, info);
        raised = true;
    }
    let mut signals = alloc::vec::Vec::new();
    for (&id, timer) in process.timers.posix.iter_mut() {
        let now = if timer.counts_cpu_time() {
            cpu_now
        } else {
            now
        };
        let Some((at, interval)) = timer.armed.filter(|&(at, _)| now >= at) else {
            continue;
        };
        let (next, missed) = forward(at, interval, now);
        timer.armed = next;
        timer.overrun = missed.min(i32::MAX as u64) as i32;
        if let Some((signal, value)) = timer.signal {
            // _timer: si_tid (the timer's id) and si_overrun, then si_value.
            let mut info = Siginfo {
                si_signo: signal,
                si_code: SI_TIMER,
                ..Siginfo::default()
            };
            info.fields[0] = (id as u32 as u64) | ((timer.overrun as u32 as u64) << 32);
            info.fields[1] = value;
            signals.push((signal, info, timer.thread));
        }
    }
    for (signal, info, thread) in signals {
        // A thread that has exited since: the signal goes to the process, as Linux's
        // posix_timer_event falls back to the group leader.
        match thread.filter(|&tid| process.threads.exists(tid)) {
            Some(tid) => {
                process.raise_for_thread(tid, signal, info);
            }
            None => process.signals.raise(signal, info),
        }
        raised = true;
    }
    raised
}

/// Expires what is due and re-arms the machine's timer for what comes next (without that, the
/// kernel would keep re-arming a past deadline and spin). Says whether a signal was raised.
pub fn expire_and_rearm(context: &mut Context) -> bool {
    let now = context.platform.now(MachineClock::Monotonic);
    let cpu_now = context.platform.now(MachineClock::CpuTime);
    let before = context.process.timers.next_alarm(now, cpu_now);
    let raised = expire_timers(context.process, now, cpu_now);
    let after = context.process.timers.next_alarm(now, cpu_now);
    if raised || before != after {
        context.platform.set_alarm(after);
    }
    if raised {
        context.platform.signal_state_changed();
        // Another thread may be the one to take it.
        context.platform.wake_all();
    }
    raised
}

/// si_code values (include/uapi/asm-generic/siginfo.h): a POSIX timer's, and the kernel's.
const SI_TIMER: i32 = -2;
const SI_KERNEL: i32 = 0x80;

fn nanoseconds_of(time: &Timespec) -> Result<u64, Errno> {
    if time.tv_sec < 0 || !(0..NANOS_PER_SECOND as i64).contains(&time.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((time.tv_sec as u64)
        .saturating_mul(NANOS_PER_SECOND)
        .saturating_add(time.tv_nsec as u64))
}

/// Sleeps until the monotonic `deadline`, waking for signals: EINTR if one became deliverable.
fn sleep_until(context: &mut Context, deadline: u64) -> Result<(), Errno> {
    loop {
        // A sleep that has run its course returns 0, even with a signal pending
        // (kernel/time/hrtimer.c do_nanosleep); the signal is delivered on the way out.
        if context.platform.now(MachineClock::Monotonic) >= deadline {
            crate::signal::raise_host_signals(context);
            expire_and_rearm(context);
            return Ok(());
        }
        crate::signal::wait_step(context, deadline, crate::platform::WakeOn::AnyEvent)?;
    }
}

fn write_remaining(context: &mut Context, remaining: UserAddr, deadline: u64) -> Result<(), Errno> {
    if remaining.is_null() {
        return Ok(());
    }
    let now = context.platform.now(MachineClock::Monotonic);
    context.write_struct(remaining.0, &timespec(deadline.saturating_sub(now)))
}

/// Implements nanosleep(2).
pub fn nanosleep(
    context: &mut Context,
    request: UserAddr,
    remaining: UserAddr,
) -> Result<(), Errno> {
    let duration = nanoseconds_of(&context.read_struct::<Timespec>(request.0)?)?;
    let deadline = context
        .platform
        .now(MachineClock::Monotonic)
        .saturating_add(duration);
    match sleep_until(context, deadline) {
        Err(Errno::EINTR) => {
            write_remaining(context, remaining, deadline)?;
            Err(Errno::EINTR)
        }
        other => other,
    }
}

/// Whether Linux has timers (and so sleeps) on `clock`: not on MONOTONIC_RAW or the COARSE
/// clocks (EOPNOTSUPP).
fn clock_has_timers(clock: i32) -> bool {
    !matches!(
        clock,
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE
    )
}

/// Implements clock_nanosleep(2): relative or TIMER_ABSTIME, on the clock named.
pub fn clock_nanosleep(
    context: &mut Context,
    clock: i32,
    flags: i32,
    request: UserAddr,
    remaining: UserAddr,
) -> Result<(), Errno> {
    let machine = machine_clock(clock, context.process.pid)?;
    if clock == CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EOPNOTSUPP); // Linux's clock_thread has no nsleep
    }
    if clock < 0 && cpu_clock_of(clock, context.process.pid)? {
        return Err(Errno::EINVAL); // a thread cannot sleep on its own CPU clock
    }
    if !clock_has_timers(clock) {
        return Err(Errno::EOPNOTSUPP);
    }
    let amount = nanoseconds_of(&context.read_struct::<Timespec>(request.0)?)?;
    let absolute = flags & TIMER_ABSTIME != 0;
    if machine == MachineClock::CpuTime {
        return sleep_on_cpu_time(context, amount, absolute, remaining);
    }
    let now = context.platform.now(MachineClock::Monotonic);
    let deadline = if absolute {
        // The deadline on the machine's monotonic clock that matches `amount` on `clock`.
        let on_clock = context.platform.now(machine);
        now.saturating_add(amount.saturating_sub(on_clock))
    } else {
        now.saturating_add(amount)
    };
    match sleep_until(context, deadline) {
        Err(Errno::EINTR) if !absolute => {
            write_remaining(context, remaining, deadline)?;
            Err(Errno::EINTR)
        }
        other => other,
    }
}

/// clock_nanosleep on the process's CPU-time clock. The one thread is the one sleeping, so the
/// clock stands still: a deadline already reached returns at once, any other waits, as on
/// Linux, until a signal interrupts it (EINTR, the remaining time unchanged).
fn sleep_on_cpu_time(
    context: &mut Context,
    amount: u64,
    absolute: bool,
    remaining: UserAddr,
) -> Result<(), Errno> {
    let reached = if absolute {
        amount <= context.platform.now(MachineClock::CpuTime)
    } else {
        amount == 0
    };
    if reached {
        return Ok(());
    }
    match sleep_until(context, u64::MAX) {
        Err(Errno::EINTR) if !absolute && !remaining.is_null() => {
            context.write_struct(remaining.0, &timespec(amount))?;
            Err(Errno::EINTR)
        }
        other => other,
    }
}

fn microseconds_to_ns(time: &Timeval) -> Result<u64, Errno> {
    if time.tv_sec < 0 || !(0..1_000_000).contains(&time.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok((time.tv_sec as u64)
        .saturating_mul(NANOS_PER_SECOND)
        .saturating_add(time.tv_usec as u64 * 1000))
}

fn timeval(nanoseconds: u64) -> Timeval {
    Timeval {
        tv_sec: (nanoseconds / NANOS_PER_SECOND) as i64,
        tv_usec: ((nanoseconds % NANOS_PER_SECOND) / 1000) as i64,
    }
}

fn current_itimer(context: &Context, which: i32) -> Itimerval {
    let (timer, now) = match which {
        ITIMER_REAL => (
            context.process.timers.real,
            context.platform.now(MachineClock::Monotonic),
        ),
        _ => (
            context.process.timers.cpu[(which - ITIMER_VIRTUAL) as usize],
            context.platform.now(MachineClock::CpuTime),
        ),
    };
    match timer {
        // A timer due now reports 1 µs left rather than 0 ("disarmed"), as Linux does.
        Some((at, interval)) => Itimerval {
            it_interval: timeval(interval),
            it_value: timeval(at.saturating_sub(now).max(1000)),
        },
        None => Itimerval::default(),
    }
}

/// Implements getitimer(2).
pub fn getitimer(context: &mut Context, which: i32, value: UserAddr) -> Result<(), Errno> {
    match which {
        ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF => {
            let current = current_itimer(context, which);
            context.write_struct(value.0, &current)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn arm_real_timer(context: &mut Context, value: u64, interval: u64) {
    arm_itimer(context, ITIMER_REAL, value, interval);
}

/// Arms (or with `value` 0 disarms) interval timer `which`, and the machine's timer for it.
fn arm_itimer(context: &mut Context, which: i32, value: u64, interval: u64) {
    let now = context.platform.now(MachineClock::Monotonic);
    let cpu_now = context.platform.now(MachineClock::CpuTime);
    let timers = &mut context.process.timers;
    match which {
        ITIMER_REAL => timers.real = (value > 0).then(|| (now.saturating_add(value), interval)),
        _ => {
            timers.cpu[(which - ITIMER_VIRTUAL) as usize] =
                (value > 0).then(|| (cpu_now.saturating_add(value), interval))
        }
    }
    let next = timers.next_alarm(now, cpu_now);
    context.platform.set_alarm(next);
}

/// Arms the machine's timer for the next timer due.
fn rearm_alarm(context: &mut Context) {
    let now = context.platform.now(MachineClock::Monotonic);
    let cpu_now = context.platform.now(MachineClock::CpuTime);
    let next = context.process.timers.next_alarm(now, cpu_now);
    context.platform.set_alarm(next);
}

/// Implements setitimer(2).
pub fn setitimer(
    context: &mut Context,
    which: i32,
    new_value: UserAddr,
    old_value: UserAddr,
) -> Result<(), Errno> {
    if !matches!(which, ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF) {
        return Err(Errno::EINVAL);
    }
    let new: Option<Itimerval> = if new_value.is_null() {
        None
    } else {
        Some(context.read_struct(new_value.0)?)
    };
    let (value, interval) = match &new {
        Some(new) => (
            microseconds_to_ns(&new.it_value)?,
            microseconds_to_ns(&new.it_interval)?,
        ),
        None => (0, 0),
    };
    if !old_value.is_null() {
        let current = current_itimer(context, which);
        context.write_struct(old_value.0, &current)?;
    }
    arm_itimer(context, which, value, interval);
    Ok(())
}

/// sigev_notify values.
pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

/// Implements timer_create(2) on the wall, monotonic and CPU-time clocks, for SIGEV_SIGNAL,
/// SIGEV_NONE and SIGEV_THREAD_ID naming one of the program's threads.
pub fn timer_create(
    context: &mut Context,
    clock: i32,
    event: UserAddr,
    id: UserAddr,
) -> Result<(), Errno> {
    machine_clock(clock, context.process.pid)?;
    if !clock_has_timers(clock) {
        return Err(Errno::EOPNOTSUPP);
    }
    let timers = &context.process.timers.posix;
    if timers.len() >= MAX_POSIX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let new_id = (0..)
        .find(|candidate| !timers.contains_key(candidate))
        .unwrap_or(0);
    let mut thread = None;
    let signal = if event.is_null() {
        // A NULL sigevent: SIGALRM, with the timer's id as its value (do_timer_create).
        Some((crate::signal::SIGALRM, new_id as u64))
    } else {
        let event: Sigevent = context.read_struct(event.0)?;
        match event.sigev_notify {
            SIGEV_NONE => None,
            SIGEV_SIGNAL | SIGEV_THREAD_ID => {
                if !(1..=crate::signal::NSIG).contains(&event.sigev_signo) {
                    return Err(Errno::EINVAL);
                }
                if event.sigev_notify == SIGEV_THREAD_ID
                    && !context.process.threads.exists(event.sigev_tid)
                {
                    return Err(Errno::EINVAL);
                }
                if event.sigev_notify == SIGEV_THREAD_ID {
                    thread = Some(event.sigev_tid);
                }
                Some((event.sigev_signo, event.sigev_value))
            }
            // SIGEV_THREAD is the C library's (glibc makes a thread and asks the kernel for
            // SIGEV_THREAD_ID); the kernel sees it only from a raw call.
            _ => return Err(Errno::EINVAL),
        }
    };
    context.write_struct(id.0, &new_id)?;
    context.process.timers.posix.insert(
        new_id,
        PosixTimer {
            clock,
            signal,
            thread,
            armed: None,
            overrun: 0,
        },
    );
    Ok(())
}

fn posix_timer(context: &Context, id: i32) -> Result<PosixTimer, Errno> {
    context
        .process
        .timers
        .posix
        .get(&id)
        .copied()
        .ok_or(Errno::EINVAL)
}

fn itimerspec_of(timer: &PosixTimer, now: u64) -> Itimerspec {
    match timer.armed {
        Some((at, interval)) => Itimerspec {
            it_interval: timespec(interval),
            it_value: timespec(at.saturating_sub(now).max(1)),
        },
        None => Itimerspec::default(),
    }
}

/// Implements timer_settime(2): relative or TIMER_ABSTIME (on the timer's clock), one-shot or
/// periodic.
pub fn timer_settime(
    context: &mut Context,
    id: i32,
    flags: i32,
    new_value: UserAddr,
    old_value: UserAddr,
) -> Result<(), Errno> {
    let timer = posix_timer(context, id)?;
    if new_value.is_null() {
        return Err(Errno::EINVAL);
    }
    let new: Itimerspec = context.read_struct(new_value.0)?;
    let value = nanoseconds_of(&new.it_value)?;
    let interval = nanoseconds_of(&new.it_interval)?;
    let now = timer_now(context, &timer);
    if !old_value.is_null() {
        context.write_struct(old_value.0, &itimerspec_of(&timer, now))?;
    }
    let armed = if value == 0 {
        None
    } else if flags & TIMER_ABSTIME != 0 && timer.counts_cpu_time() {
        Some((value, interval)) // the CPU-time clock is the timer's own base
    } else if flags & TIMER_ABSTIME != 0 {
        // The same instant on the machine's monotonic clock.
        let on_clock = context
            .platform
            .now(machine_clock(timer.clock, context.process.pid)?);
        Some((now.saturating_add(value.saturating_sub(on_clock)), interval))
    } else {
        Some((now.saturating_add(value), interval))
    };
    if let Some(timer) = context.process.timers.posix.get_mut(&id) {
        timer.armed = armed;
    }
    rearm_alarm(context);
    Ok(())
}

/// Implements timer_gettime(2).
pub fn timer_gettime(context: &mut Context, id: i32, value: UserAddr) -> Result<(), Errno> {
    let timer = posix_timer(context, id)?;
    let now = timer_now(context, &timer);
    context.write_struct(value.0, &itimerspec_of(&timer, now))
}

/// Now, in the base a timer's deadlines are kept in.
fn timer_now(context: &Context, timer: &PosixTimer) -> u64 {
    if timer.counts_cpu_time() {
        context.platform.now(MachineClock::CpuTime)
    } else {
        context.platform.now(MachineClock::Monotonic)
    }
}

/// Implements timer_getoverrun(2).
pub fn timer_getoverrun(context: &mut Context, id: i32) -> Result<i32, Errno> {
    Ok(posix_timer(context, id)?.overrun)
}

/// Implements timer_delete(2).
pub fn timer_delete(context: &mut Context, id: i32) -> Result<(), Errno> {
    context
        .process
        .timers
        .posix
        .remove(&id)
        .ok_or(Errno::EINVAL)?;
    rearm_alarm(context);
    Ok(())
}

/// Implements alarm(2): the seconds left on the previous alarm (rounded up), 0 if none.
pub fn alarm(context: &mut Context, seconds: u32) -> Result<u64, Errno> {
    let now = context.platform.now(MachineClock::Monotonic);
    let left = context.process.timers.real.map_or(0, |(at, _)| {
        at.saturating_sub(now).div_ceil(NANOS_PER_SECOND).max(1)
    });
    arm_real_timer(context, seconds as u64 * NANOS_PER_SECOND, 0);
    Ok(left)
}

#[cfg(test)]
mod sleep_tests {
    use super::*;
    use crate::platform::Platform;
    use crate::testing::TestMachine;

    fn timespec_at(machine: &mut TestMachine, seconds: i64, nanoseconds: i64) -> u64 {
        let at = machine.scratch(16);
        machine.write_u64(at, seconds as u64);
        machine.write_u64(at + 8, nanoseconds as u64);
        at
    }

    #[test]
    fn nanosleep_sleeps_and_checks_its_argument() {
        let mut machine = TestMachine::new();
        machine.set_clocks(1_000, 1_700_000_000_000_000_000);
        let request = timespec_at(&mut machine, 2, 500);
        assert_eq!(machine.call(35, [request, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.platform.now(MachineClock::Monotonic), 2_000_001_500);
        let bad = timespec_at(&mut machine, 0, 1_000_000_000);
        assert_eq!(machine.call(35, [bad, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
        let negative = timespec_at(&mut machine, -1, 0);
        assert_eq!(
            machine.call(35, [negative, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(230, [CLOCK_THREAD_CPUTIME_ID as u64, 0, request, 0, 0, 0]),
            Err(Errno::EOPNOTSUPP)
        );
    }

    #[test]
    fn cpu_time_itimers_count_running_not_sleeping() {
        let mut machine = TestMachine::new();
        machine.set_clocks(1_000_000, 0);
        let value = machine.scratch(32);
        machine.write_u64(value + 24, 50_000); // it_value: 50 ms, once
        for which in [ITIMER_VIRTUAL, ITIMER_PROF] {
            assert_eq!(machine.call(38, [which as u64, value, 0, 0, 0, 0]), Ok(0));
        }
        // Asleep for a second: no CPU time passes, nothing expires, and the time left stays.
        let second = timespec_at(&mut machine, 1, 0);
        assert_eq!(machine.call(35, [second, 0, 0, 0, 0, 0]), Ok(0));
        let now = machine.platform.now(MachineClock::Monotonic);
        assert!(!expire_timers(&mut machine.process, now, 1_000_000));
        let old = machine.scratch(32);
        assert_eq!(
            machine.call(36, [ITIMER_PROF as u64, old, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(old + 24), 50_000);
        // The machine's timer is armed for when the program will have run 50 ms more.
        assert_eq!(
            machine.process.timers.next_alarm(now, 1_000_000),
            Some(now + 50_000_000)
        );
        // 50 ms of CPU time later both fire: SIGVTALRM and SIGPROF, and disarm.
        assert!(expire_timers(&mut machine.process, now, 51_000_000));
        let pending = machine.process.signals.pending;
        assert_eq!(pending & (3 << 25), 3 << 25);
        assert_eq!(machine.process.timers.cpu, [None, None]);
    }

    #[test]
    fn a_posix_timer_on_cpu_time_fires_after_running_not_sleeping() {
        let mut machine = TestMachine::new();
        machine.set_clocks(1_000_000, 0);
        let id = machine.scratch(8);
        let clock = CLOCK_PROCESS_CPUTIME_ID as u64;
        assert_eq!(machine.call(222, [clock, 0, id, 0, 0, 0]), Ok(0));
        let timer = machine.read_u64(id) as i32 as u64;
        let spec = machine.scratch(32);
        machine.write_u64(spec + 24, 30_000_000); // it_value: 30 ms of CPU time
        assert_eq!(machine.call(223, [timer, 0, spec, 0, 0, 0]), Ok(0));
        let second = timespec_at(&mut machine, 1, 0);
        assert_eq!(machine.call(35, [second, 0, 0, 0, 0, 0]), Ok(0));
        let now = machine.platform.now(MachineClock::Monotonic);
        assert_eq!(machine.process.timers.next_deadline(), None);
        assert_eq!(
            machine.process.timers.next_alarm(now, 1_000_000),
            Some(now + 30_000_000)
        );
        let left = machine.scratch(32);
        assert_eq!(machine.call(224, [timer, left, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(left + 24), 30_000_000);
        assert!(expire_timers(&mut machine.process, now, 31_000_000));
        assert_ne!(machine.process.signals.pending & (1 << 13), 0); // SIGALRM, the default
    }

    #[test]
    fn sleeping_takes_no_cpu_time() {
        let mut machine = TestMachine::new();
        machine.set_clocks(3_000, 1_700_000_000_000_000_000);
        let out = machine.scratch(16);
        let request = timespec_at(&mut machine, 1, 0);
        assert_eq!(machine.call(35, [request, 0, 0, 0, 0, 0]), Ok(0));
        // Ids made as `~pid << 3 | kind`: -6 the process's own SCHED clock (glibc's
        // clock_nanosleep makes it), -2 its thread's, -14 pid 1's, the program's own pid.
        for clock in [
            CLOCK_PROCESS_CPUTIME_ID,
            CLOCK_THREAD_CPUTIME_ID,
            -6,
            -2,
            -14,
        ] {
            assert_eq!(
                machine.call(228, [clock as i64 as u64, out, 0, 0, 0, 0]),
                Ok(0)
            );
            assert_eq!(
                (machine.read_u64(out), machine.read_u64(out + 8)),
                (0, 3_000)
            );
        }
        assert_eq!(
            machine.call(228, [CLOCK_MONOTONIC as u64, out, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(out), 1);
        let other_process = ((!7i64) << 3 | 2) as u64;
        let bad_kind = ((!0i64) << 3 | 3) as u64;
        for clock in [other_process, bad_kind] {
            assert_eq!(
                machine.call(228, [clock, out, 0, 0, 0, 0]),
                Err(Errno::EINVAL)
            );
        }
        // An absolute CPU-time deadline already reached ends at once.
        let past = timespec_at(&mut machine, 0, 2_000);
        let flags = TIMER_ABSTIME as u64;
        let clock = CLOCK_PROCESS_CPUTIME_ID as u64;
        assert_eq!(machine.call(230, [clock, flags, past, 0, 0, 0]), Ok(0));
        assert_eq!(machine.platform.now(MachineClock::Monotonic), 1_000_003_000);
    }

    #[test]
    fn an_absolute_sleep_on_the_wall_clock_ends_at_that_time() {
        let mut machine = TestMachine::new();
        machine.set_clocks(5_000_000_000, 1_700_000_000_000_000_000);
        let until = timespec_at(&mut machine, 1_700_000_003, 0);
        assert_eq!(
            machine.call(
                230,
                [CLOCK_REALTIME as u64, TIMER_ABSTIME as u64, until, 0, 0, 0]
            ),
            Ok(0)
        );
        assert_eq!(machine.platform.now(MachineClock::Monotonic), 8_000_000_000);
        let past = timespec_at(&mut machine, 1, 0);
        assert_eq!(
            machine.call(
                230,
                [CLOCK_MONOTONIC as u64, TIMER_ABSTIME as u64, past, 0, 0, 0]
            ),
            Ok(0)
        );
    }

    #[test]
    fn an_alarm_interrupts_a_sleep_with_eintr_and_the_time_left() {
        let mut machine = TestMachine::new();
        machine.set_clocks(0, 1_700_000_000_000_000_000);
        assert_eq!(
            machine.call(37, [1, 0, 0, 0, 0, 0]),
            Ok(0),
            "no previous alarm"
        );
        assert_eq!(
            machine.platform.alarm,
            Some(1_000_000_000),
            "the machine's timer is armed"
        );
        let request = timespec_at(&mut machine, 5, 0);
        let remaining = machine.scratch(16);
        assert_eq!(
            machine.call(35, [request, remaining, 0, 0, 0, 0]),
            Err(Errno::EINTR)
        );
        assert_eq!(
            (machine.read_u64(remaining), machine.read_u64(remaining + 8)),
            (4, 0)
        );
        assert_ne!(
            machine.process.signals.pending & crate::signal::bit(crate::signal::SIGALRM),
            0
        );
        assert_eq!(
            machine.process.timers.real, None,
            "a one-shot alarm is spent"
        );
        assert_eq!(machine.call(37, [10, 0, 0, 0, 0, 0]), Ok(0));
        machine.set_clocks(2_500_000_000, 1_700_000_000_000_000_000);
        assert_eq!(
            machine.call(37, [0, 0, 0, 0, 0, 0]),
            Ok(9),
            "seconds left, rounded up"
        );
        assert_eq!(machine.platform.alarm, None, "alarm(0) disarms");
    }

    #[test]
    fn setitimer_repeats_and_reports() {
        let mut machine = TestMachine::new();
        machine.set_clocks(0, 0);
        let value = machine.scratch(32);
        for (offset, word) in [(0, 0u64), (8, 250_000), (16, 1), (24, 0)] {
            machine.write_u64(value + offset, word); // interval 0.25 s, first after 1 s
        }
        assert_eq!(
            machine.call(38, [ITIMER_REAL as u64, value, 0, 0, 0, 0]),
            Ok(0)
        );
        assert!(!expire_timers(&mut machine.process, 999_999_999, 0));
        assert!(expire_timers(&mut machine.process, 1_600_000_000, 0));
        assert_eq!(
            machine.process.timers.real,
            Some((1_750_000_000, 250_000_000)),
            "missed periods are skipped"
        );
        let old = machine.scratch(32);
        machine.set_clocks(1_700_000_000, 0);
        assert_eq!(
            machine.call(36, [ITIMER_REAL as u64, old, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            (machine.read_u64(old + 8), machine.read_u64(old + 24)),
            (250_000, 50_000)
        );
        assert_eq!(machine.call(38, [3, value, 0, 0, 0, 0]), Err(Errno::EINVAL));
        machine.write_u64(value + 24, 1_000_000);
        assert_eq!(
            machine.call(38, [ITIMER_REAL as u64, value, 0, 0, 0, 0]),
            Err(Errno::EINVAL),
            "usec too big"
        );
    }

    #[test]
    fn posix_timers_check_their_arguments() {
        let mut machine = TestMachine::new();
        let id = machine.scratch(4);
        let event = machine.scratch(64);
        machine.write_u64(event + 8, (SIGEV_THREAD as u64) << 32 | 10);
        assert_eq!(
            machine.call(222, [CLOCK_MONOTONIC as u64, event, id, 0, 0, 0]),
            Err(Errno::EINVAL),
            "SIGEV_THREAD"
        );
        machine.write_u64(event + 8, (SIGEV_THREAD_ID as u64) << 32 | 10);
        machine.write_u64(event + 16, 2); // a thread that does not exist
        assert_eq!(
            machine.call(222, [CLOCK_MONOTONIC as u64, event, id, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        machine.write_u64(event + 16, 1);
        assert_eq!(
            machine.call(222, [CLOCK_MONOTONIC as u64, event, id, 0, 0, 0]),
            Ok(0)
        );
        let other_process_clock = ((!7i64) << 3 | 2) as u64;
        assert_eq!(
            machine.call(222, [other_process_clock, 0, id, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(226, [777, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(machine.call(226, [0, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(226, [0, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL),
            "deleted once"
        );
    }

    #[test]
    fn a_timer_signal_carries_its_id_and_value() {
        let mut machine = TestMachine::new();
        machine.set_clocks(0, 0);
        let (id, event, value) = (machine.scratch(4), machine.scratch(64), machine.scratch(32));
        machine.write_u64(event, 42);
        machine.write_u64(event + 8, 10); // SIGEV_SIGNAL, SIGUSR1
        machine
            .call(222, [CLOCK_MONOTONIC as u64, event, id, 0, 0, 0])
            .unwrap();
        machine.write_u64(value + 16, 0);
        machine.write_u64(value + 24, 1_000_000); // in 1 ms, once
        machine.call(223, [0, 0, value, 0, 0, 0]).unwrap();
        assert_eq!(machine.platform.alarm, Some(1_000_000));
        assert!(expire_timers(&mut machine.process, 1_000_000, 0));
        let info = machine.process.signals.pending_info[9];
        assert_eq!((info.si_code, info.fields[1]), (SI_TIMER, 42));
        assert_eq!(
            machine.process.timers.next_deadline(),
            None,
            "a one-shot timer is spent"
        );
    }
}
