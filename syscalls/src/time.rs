//! Clocks: clock_gettime, clock_getres, gettimeofday, time.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::{Context, MachineClock};
use crate::uapi::{Timespec, Timeval, Timezone};

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
/// so BOOTTIME is MONOTONIC and the CPU-time clocks count from boot.
fn machine_clock(clock: i32) -> Result<MachineClock, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
            Ok(MachineClock::Realtime)
        }
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM
        | CLOCK_PROCESS_CPUTIME_ID
        | CLOCK_THREAD_CPUTIME_ID => Ok(MachineClock::Monotonic),
        _ => Err(Errno::EINVAL),
    }
}

fn timespec(nanoseconds: u64) -> Timespec {
    Timespec {
        tv_sec: (nanoseconds / NANOS_PER_SECOND) as i64,
        tv_nsec: (nanoseconds % NANOS_PER_SECOND) as i64,
    }
}

/// Implements clock_gettime(2).
pub fn clock_gettime(context: &mut Context, clock: i32, time: UserAddr) -> Result<(), Errno> {
    let now = context.platform.now(machine_clock(clock)?);
    context.write_struct(time.0, &timespec(now))
}

/// Implements clock_getres(2): every clock reads the TSC, to the nanosecond.
pub fn clock_getres(context: &mut Context, clock: i32, resolution: UserAddr) -> Result<(), Errno> {
    machine_clock(clock)?;
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
