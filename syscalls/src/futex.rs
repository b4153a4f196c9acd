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
pub const FUTEX_LOCK_PI: i32 = 6;
pub const FUTEX_UNLOCK_PI: i32 = 7;
pub const FUTEX_TRYLOCK_PI: i32 = 8;
pub const FUTEX_WAIT_BITSET: i32 = 9;
pub const FUTEX_WAKE_BITSET: i32 = 10;
pub const FUTEX_LOCK_PI2: i32 = 13;
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
    if realtime && !matches!(command, FUTEX_WAIT_BITSET | FUTEX_LOCK_PI2) {
        return Err(Errno::ENOSYS); // FUTEX_CLOCK_REALTIME goes only with these (Linux 6.1)
    }
    match command {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if command == FUTEX_WAIT_BITSET && value3 == 0 {
                return Err(Errno::EINVAL);
            }
            // As Linux: the timeout is checked before the word is read.
            let deadline = wait_deadline(context, timeout, command == FUTEX_WAIT_BITSET, realtime)?;
            let current: u32 = context.read_struct(address.0)?;
            if current != value {
                return Err(Errno::EAGAIN);
            }
            // Nothing can wake us but a signal or the timeout. As on Linux, an untimed wait
            // interrupted by a handler restarts under SA_RESTART; a timed one reports EINTR;
            // a timeout that has expired wins over a pending signal.
            let interrupted = if timeout.is_null() {
                Errno::ERESTARTSYS
            } else {
                Errno::EINTR
            };
            loop {
                if context.platform.now(MachineClock::Monotonic) >= deadline {
                    return Err(Errno::ETIMEDOUT);
                }
                crate::signal::wait_step(context, deadline).map_err(|_| interrupted)?;
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if command == FUTEX_WAKE_BITSET && value3 == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(0) // no other thread waits
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val is how many to wake, the timeout argument how many to requeue.
            if !address2.0.is_multiple_of(4) || (value as i32) < 0 || (timeout.0 as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            if command == FUTEX_CMP_REQUEUE {
                let current: u32 = context.read_struct(address.0)?;
                if current != value3 {
                    return Err(Errno::EAGAIN);
                }
            }
            Ok(0)
        }
        FUTEX_WAKE_OP => {
            // The operation on *address2 happens; there is nobody to wake on either word.
            // (The timeout argument is val2 here.)
            wake_op(context, address2, value3)?;
            Ok(0)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let deadline = if command == FUTEX_TRYLOCK_PI {
                0
            } else {
                // FUTEX_LOCK_PI's timeout is on the wall clock; LOCK_PI2's monotonic unless asked.
                wait_deadline(context, timeout, true, realtime || command == FUTEX_LOCK_PI)?
            };
            lock_pi(context, address, deadline)
        }
        FUTEX_UNLOCK_PI => unlock_pi(context, address),
        _ => Err(Errno::ENOSYS),
    }
}

/// The owner's thread id in a PI futex word; the top bits are FUTEX_WAITERS and
/// FUTEX_OWNER_DIED (include/uapi/linux/futex.h).
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// FUTEX_LOCK_PI(2) and FUTEX_TRYLOCK_PI with one thread: a free word becomes ours; ours
/// already is EDEADLK; one naming a thread that does not exist is ESRCH, as on Linux.
fn lock_pi(context: &mut Context, address: UserAddr, _deadline: u64) -> Result<i64, Errno> {
    let tid = context.process.pid as u32;
    let word: u32 = context.read_struct(address.0)?;
    match word & FUTEX_TID_MASK {
        0 => {
            // A free word (perhaps with FUTEX_OWNER_DIED) is taken, keeping that bit.
            context.write_struct(address.0, &((word & !FUTEX_TID_MASK) | tid))?;
            Ok(0)
        }
        owner if owner == tid => Err(Errno::EDEADLK),
        _ => Err(Errno::ESRCH),
    }
}

/// FUTEX_UNLOCK_PI with one thread: only the owner may unlock (EPERM otherwise); nobody waits.
fn unlock_pi(context: &mut Context, address: UserAddr) -> Result<i64, Errno> {
    let tid = context.process.pid as u32;
    let word: u32 = context.read_struct(address.0)?;
    if word & FUTEX_TID_MASK != tid {
        return Err(Errno::EPERM);
    }
    context.write_struct(address.0, &0u32)?;
    Ok(0)
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
    let compare = (encoded >> 24) & 0xf;
    // oparg is a signed 12-bit field; a shift count out of 0..=31 is taken modulo 32.
    let mut argument = ((((encoded >> 12) & 0xfff) << 20) as i32 >> 20) as u32;
    if shift {
        argument = 1u32 << (argument & 31);
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
    context.write_struct(address2.0, &new)?;
    // The comparison decides whether waiters on address2 wake; there are none, but an
    // unknown comparison is still ENOSYS, after the store, as on Linux.
    if compare > 5 {
        return Err(Errno::ENOSYS);
    }
    Ok(())
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

    #[test]
    fn pi_locks_and_wake_op_arguments_as_linux() {
        let mut machine = TestMachine::new();
        let lock = machine.scratch(8);
        let tid = machine.call(186, [0; 6]).unwrap(); // gettid
        let private = FUTEX_PRIVATE_FLAG as u64;
        let call = |machine: &mut TestMachine, op: i32| {
            machine.call(202, [lock, op as u64 | private, 0, 0, 0, 0])
        };
        assert_eq!(call(&mut machine, FUTEX_UNLOCK_PI), Err(Errno::EPERM));
        assert_eq!(call(&mut machine, FUTEX_LOCK_PI), Ok(0));
        assert_eq!(machine.read_u64(lock) & 0xffff_ffff, tid);
        assert_eq!(call(&mut machine, FUTEX_TRYLOCK_PI), Err(Errno::EDEADLK));
        assert_eq!(call(&mut machine, FUTEX_UNLOCK_PI), Ok(0));
        assert_eq!(machine.read_u64(lock) & 0xffff_ffff, 0);
        machine.write_u64(lock, 12345); // a thread that does not exist
        assert_eq!(call(&mut machine, FUTEX_LOCK_PI), Err(Errno::ESRCH));

        // FUTEX_OP(SET, -1 as 12 bits, CMP_EQ, 0): the argument is sign-extended.
        let word2 = machine.scratch(8);
        let set_minus_one = 0xfff << 12;
        let wake_op = (FUTEX_WAKE_OP as u64) | private;
        assert_eq!(
            machine.call(202, [lock, wake_op, 1, 1, word2, set_minus_one]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(word2) & 0xffff_ffff, 0xffff_ffff);
        // An unknown comparison (9) is ENOSYS, after the store.
        let set_three_cmp_nine = (9 << 24) | (3 << 12);
        assert_eq!(
            machine.call(202, [lock, wake_op, 1, 1, word2, set_three_cmp_nine]),
            Err(Errno::ENOSYS)
        );
        assert_eq!(machine.read_u64(word2) & 0xffff_ffff, 3);
    }
}
