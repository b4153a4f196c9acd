//! futex(2) for a program with one thread: every wait ends by its timeout, a signal, or a value
//! that differs (EAGAIN), since no other thread exists to wake it; wakes find no waiter. The
//! queues come with threads.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::{Context, MachineClock};
use crate::uapi::Timespec;

/// futex operations and flags (include/uapi/linux/futex.h).
pub const FUTEX_WAIT: i32 = 0;
pub const FUTEX_WAKE: i32 = 1;
pub const FUTEX_REQUEUE: i32 = 3;
pub const FUTEX_CMP_REQUEUE: i32 = 4;
pub const FUTEX_WAKE_OP: i32 = 5;
pub const FUTEX_WAIT_BITSET: i32 = 9;
pub const FUTEX_WAKE_BITSET: i32 = 10;
pub const FUTEX_PRIVATE_FLAG: i32 = 128;
pub const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_CMD_MASK: i32 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);

/// Implements futex(2) for one thread.
pub fn futex(
    context: &mut Context,
    address: UserAddr,
    operation: i32,
    value: u32,
    timeout: UserAddr,
    address2: UserAddr,
    value3: u32,
) -> Result<i64, Errno> {
    if !address.0.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let command = operation & FUTEX_CMD_MASK;
    let realtime = operation & FUTEX_CLOCK_REALTIME != 0;
    match command {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if command == FUTEX_WAIT_BITSET && value3 == 0 {
                return Err(Errno::EINVAL);
            }
            if realtime && command == FUTEX_WAIT {
                return Err(Errno::ENOSYS); // FUTEX_CLOCK_REALTIME only goes with the BITSET wait
            }
            let current: u32 = context.read_struct(address.0)?;
            if current != value {
                return Err(Errno::EAGAIN);
            }
            let deadline = wait_deadline(context, timeout, command == FUTEX_WAIT_BITSET, realtime)?;
            // Nothing can wake us but a signal or the timeout. As on Linux, an untimed wait
            // interrupted by a handler restarts under SA_RESTART; a timed one reports EINTR.
            let interrupted = if timeout.is_null() {
                Errno::ERESTARTSYS
            } else {
                Errno::EINTR
            };
            loop {
                crate::signal::wait_step(context, deadline).map_err(|_| interrupted)?;
                if context.platform.now(MachineClock::Monotonic) >= deadline {
                    return Err(Errno::ETIMEDOUT);
                }
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if command == FUTEX_WAKE_BITSET && value3 == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(0) // no other thread waits
        }
        FUTEX_REQUEUE => Ok(0),
        FUTEX_CMP_REQUEUE => {
            let current: u32 = context.read_struct(address.0)?;
            if current != value3 {
                return Err(Errno::EAGAIN);
            }
            Ok(0)
        }
        FUTEX_WAKE_OP => {
            // The operation on *address2 happens; there is nobody to wake on either word.
            let _ = timeout; // the third argument is val2 here
            wake_op(context, address2, value3)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// When a wait ends: FUTEX_WAIT's timeout is relative (monotonic), FUTEX_WAIT_BITSET's is
/// absolute, on the monotonic clock or, with FUTEX_CLOCK_REALTIME, the wall clock.
fn wait_deadline(
    context: &Context,
    timeout: UserAddr,
    absolute: bool,
    realtime: bool,
) -> Result<u64, Errno> {
    if timeout.is_null() {
        return Ok(u64::MAX);
    }
    let limit: Timespec = context.read_struct(timeout.0)?;
    if limit.tv_sec < 0 || !(0..1_000_000_000).contains(&limit.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let amount = (limit.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(limit.tv_nsec as u64);
    let now = context.platform.now(MachineClock::Monotonic);
    if !absolute {
        return Ok(now.saturating_add(amount));
    }
    let clock = if realtime {
        MachineClock::Realtime
    } else {
        MachineClock::Monotonic
    };
    Ok(now.saturating_add(amount.saturating_sub(context.platform.now(clock))))
}

/// FUTEX_WAKE_OP's operation on *address2 (include/uapi/linux/futex.h FUTEX_OP).
fn wake_op(context: &mut Context, address2: UserAddr, encoded: u32) -> Result<(), Errno> {
    if !address2.0.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let operation = (encoded >> 28) & 7;
    let shift = encoded & (8 << 28) != 0;
    let mut argument = (encoded >> 12) & 0xfff;
    if shift {
        argument = 1u32.checked_shl(argument).ok_or(Errno::EINVAL)?;
    }
    let old: u32 = context.read_struct(address2.0)?;
    let new = match operation {
        0 => argument,                   // FUTEX_OP_SET
        1 => old.wrapping_add(argument), // FUTEX_OP_ADD
        2 => old | argument,             // FUTEX_OP_OR
        3 => old & !argument,            // FUTEX_OP_ANDN
        4 => old ^ argument,             // FUTEX_OP_XOR
        _ => return Err(Errno::ENOSYS),
    };
    context.write_struct(address2.0, &new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::testing::TestMachine;

    #[test]
    fn a_lone_wait_times_out_or_sees_a_changed_value() {
        let mut machine = TestMachine::new();
        machine.set_clocks(0, 0);
        let word = machine.scratch(4);
        let timeout = machine.scratch(16);
        machine.write_u64(timeout, 0);
        machine.write_u64(timeout + 8, 5_000_000);
        let private_wait = (FUTEX_WAIT | FUTEX_PRIVATE_FLAG) as u64;
        assert_eq!(
            machine.call(202, [word, private_wait, 0, timeout, 0, 0]),
            Err(Errno::ETIMEDOUT)
        );
        assert_eq!(machine.platform.now(MachineClock::Monotonic), 5_000_000);
        assert_eq!(
            machine.call(202, [word, private_wait, 1, timeout, 0, 0]),
            Err(Errno::EAGAIN)
        );
        assert_eq!(
            machine.call(202, [word + 1, private_wait, 0, timeout, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(202, [word, FUTEX_WAKE as u64, 1, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(202, [word, FUTEX_WAIT_BITSET as u64, 0, timeout, 0, 0]),
            Err(Errno::EINVAL),
            "bitset 0"
        );
        assert_eq!(
            machine.call(202, [word, 99, 0, 0, 0, 0]),
            Err(Errno::ENOSYS)
        );
    }

    #[test]
    fn wake_op_does_its_operation() {
        let mut machine = TestMachine::new();
        let (word, other) = (machine.scratch(4), machine.scratch(4));
        machine.write_u64(other, 5);
        // FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_EQ, 0)
        let op = (1u64 << 28) | (3 << 12);
        assert_eq!(
            machine.call(202, [word, FUTEX_WAKE_OP as u64, 1, 1, other, op]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(other) as u32, 8);
    }
}
