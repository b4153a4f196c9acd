//! futex(2): wait queues keyed by the futex word's address, WAIT/WAKE with bitsets and
//! timeouts on either clock, REQUEUE and CMP_REQUEUE, WAKE_OP, and the PI operations with
//! their owner-tid protocol (one priority, so no boosting). Pith has one process, so private
//! and shared futexes both key on the address.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::{Context, MachineClock, WakeOn};
use crate::uapi::Timespec;
use alloc::vec::Vec;

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
/// FUTEX_BITSET_MATCH_ANY: what FUTEX_WAIT and FUTEX_WAKE use.
const MATCH_ANY: u32 = u32::MAX;

/// One waiting thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    address: u64,
    tid: i32,
    bitset: u32,
    /// Waits in FUTEX_LOCK_PI: only UNLOCK_PI (or its owner's death) may wake it, handing it
    /// the lock.
    pi: bool,
}

/// The threads waiting on futex words, in the order they came: the waiters of one address are
/// woken first come first served. One list, scanned: a program has few waiters at a time, and
/// the list keeps its memory, so a wait or a wake allocates nothing.
#[derive(Default)]
pub struct FutexQueues {
    waiters: Vec<Waiter>,
}

impl FutexQueues {
    pub fn enqueue(&mut self, address: u64, tid: i32, bitset: u32) {
        self.waiters.push(Waiter {
            address,
            tid,
            bitset,
            pi: false,
        });
    }

    fn enqueue_pi(&mut self, address: u64, tid: i32) {
        self.waiters.push(Waiter {
            address,
            tid,
            bitset: MATCH_ANY,
            pi: true,
        });
    }

    /// Whether a FUTEX_LOCK_PI waiter is queued on `address` (a plain wake there is EINVAL).
    fn has_pi_waiter(&self, address: u64) -> bool {
        self.waiters
            .iter()
            .any(|waiter| waiter.address == address && waiter.pi)
    }

    /// Whether `tid` still waits: a wake or a PI hand-over takes it off its queue.
    pub fn is_queued(&self, tid: i32) -> bool {
        self.waiters.iter().any(|waiter| waiter.tid == tid)
    }

    /// Takes `tid` off whatever queue it is on (its wait timed out or a signal came).
    pub fn dequeue(&mut self, tid: i32) {
        self.waiters.retain(|waiter| waiter.tid != tid);
    }

    pub fn waiter_count(&self, address: u64) -> usize {
        self.waiters
            .iter()
            .filter(|waiter| waiter.address == address)
            .count()
    }

    /// Takes up to `count` waiters on `address` whose bitset meets `bitset`, oldest first, and
    /// hands each to `woken`.
    pub fn wake(
        &mut self,
        address: u64,
        count: usize,
        bitset: u32,
        mut woken: impl FnMut(i32),
    ) -> usize {
        let mut done = 0;
        let mut index = 0;
        while done < count && index < self.waiters.len() {
            let waiter = self.waiters[index];
            if waiter.address != address || waiter.bitset & bitset == 0 {
                index += 1;
                continue;
            }
            self.waiters.remove(index);
            woken(waiter.tid);
            done += 1;
        }
        done
    }

    /// Moves up to `count` waiters from `from` to the end of `to`'s queue (oldest first);
    /// returns how many.
    pub fn requeue(&mut self, from: u64, to: u64, count: usize) -> usize {
        if from == to || count == 0 {
            return 0;
        }
        let mut moved = Vec::new();
        let mut index = 0;
        while moved.len() < count && index < self.waiters.len() {
            if self.waiters[index].address == from {
                let mut waiter = self.waiters.remove(index);
                waiter.address = to;
                moved.push(waiter);
            } else {
                index += 1;
            }
        }
        let done = moved.len();
        self.waiters.extend(moved);
        done
    }
}

/// How many a wake's count asks for: Linux wakes one at least (`++ret >= nr_wake`), also for 0
/// and for a negative count.
fn wake_count(value: u32) -> usize {
    (value as i32).max(1) as usize
}

/// Gives the PI lock at `address` to its first waiter (its tid in the word, with `bits`, and
/// FUTEX_WAITERS if more wait) and wakes it; with no waiter the word becomes `bits` alone.
pub fn hand_over_pi(context: &mut Context, address: u64, bits: u32) -> Result<(), Errno> {
    let queues = &context.process.futexes;
    let next_owner = queues
        .waiters
        .iter()
        .find(|waiter| waiter.address == address)
        .map(|waiter| waiter.tid);
    let word = match next_owner {
        Some(owner) => {
            let more = if queues.waiter_count(address) > 1 {
                FUTEX_WAITERS
            } else {
                0
            };
            owner as u32 | more | bits
        }
        None => bits,
    };
    context.write_struct(address, &word)?;
    if let Some(owner) = next_owner {
        context.process.futexes.dequeue(owner);
        context.platform.wake_thread(owner);
    }
    Ok(())
}

/// Wakes up to `count` threads waiting on `address` (any bitset); returns how many.
pub fn wake_address(context: &mut Context, address: u64, count: usize) -> usize {
    let platform = &mut *context.platform;
    context
        .process
        .futexes
        .wake(address, count, MATCH_ANY, |tid| platform.wake_thread(tid))
}

/// Waits, queued on `address`, until a wake takes the thread off the queue (Ok), the deadline
/// passes (ETIMEDOUT) or a signal must be handled (`interrupted`). The caller queued it.
fn wait_queued(context: &mut Context, deadline: u64, interrupted: Errno) -> Result<(), Errno> {
    let tid = context.process.threads.current;
    loop {
        if !context.process.futexes.is_queued(tid) {
            return Ok(());
        }
        if context.platform.now(MachineClock::Monotonic) >= deadline {
            context.process.futexes.dequeue(tid);
            return Err(Errno::ETIMEDOUT);
        }
        if crate::signal::wait_step(context, deadline, WakeOn::Wake).is_err() {
            context.process.futexes.dequeue(tid);
            return Err(interrupted);
        }
    }
}

/// Implements futex(2).
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
            let bitset = if command == FUTEX_WAIT {
                MATCH_ANY
            } else {
                value3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            // As Linux: the timeout is checked before the word is read.
            let deadline = wait_deadline(context, timeout, command == FUTEX_WAIT_BITSET, realtime)?;
            let current: u32 = context.read_struct(address.0)?;
            if current != value {
                return Err(Errno::EAGAIN);
            }
            // The check and the queueing are one step: no other thread runs in between. As on
            // Linux, an untimed wait interrupted by a handler restarts under SA_RESTART; a
            // timed one reports EINTR; a timeout that has expired wins over a signal.
            let tid = context.process.threads.current;
            context.process.futexes.enqueue(address.0, tid, bitset);
            let interrupted = if timeout.is_null() {
                Errno::ERESTARTSYS
            } else {
                Errno::EINTR
            };
            wait_queued(context, deadline, interrupted).map(|()| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if command == FUTEX_WAKE {
                MATCH_ANY
            } else {
                value3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            if context.process.futexes.has_pi_waiter(address.0) {
                return Err(Errno::EINVAL); // a PI futex is woken by FUTEX_UNLOCK_PI only
            }
            let platform = &mut *context.platform;
            let woken = context
                .process
                .futexes
                .wake(address.0, wake_count(value), bitset, |tid| {
                    platform.wake_thread(tid)
                });
            Ok(woken as i64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val is how many to wake, the timeout argument how many to requeue.
            let requeue = timeout.0 as i32;
            if !address2.0.is_multiple_of(4) || (value as i32) < 0 || requeue < 0 {
                return Err(Errno::EINVAL);
            }
            if command == FUTEX_CMP_REQUEUE {
                let current: u32 = context.read_struct(address.0)?;
                if current != value3 {
                    return Err(Errno::EAGAIN);
                }
            }
            let woken = wake_address(context, address.0, value as usize);
            let moved = context
                .process
                .futexes
                .requeue(address.0, address2.0, requeue as usize);
            Ok((woken + moved) as i64)
        }
        FUTEX_WAKE_OP => {
            // The timeout argument is val2 here: how many to wake on address2.
            let wake_second = wake_op(context, address2, value3)?;
            let mut woken = wake_address(context, address.0, wake_count(value));
            if wake_second {
                woken += wake_address(context, address2.0, wake_count(timeout.0 as u32));
            }
            Ok(woken as i64)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let deadline = if command == FUTEX_TRYLOCK_PI {
                None
            } else {
                // FUTEX_LOCK_PI's timeout is on the wall clock; LOCK_PI2's monotonic unless asked.
                Some(wait_deadline(
                    context,
                    timeout,
                    true,
                    realtime || command == FUTEX_LOCK_PI,
                )?)
            };
            lock_pi(context, address, deadline)
        }
        FUTEX_UNLOCK_PI => unlock_pi(context, address),
        _ => Err(Errno::ENOSYS),
    }
}

/// The owner's thread id in a PI futex word, and the bits above it (include/uapi/linux/futex.h).
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_WAITERS: u32 = 0x8000_0000;

/// FUTEX_LOCK_PI(2) and FUTEX_TRYLOCK_PI: a free word becomes ours (keeping FUTEX_OWNER_DIED);
/// ours already is EDEADLK; one naming a thread that does not exist is ESRCH, as on Linux.
/// Held by another thread: TRYLOCK says EAGAIN, LOCK marks FUTEX_WAITERS and waits until
/// UNLOCK_PI hands the lock over (or the deadline, ETIMEDOUT).
fn lock_pi(context: &mut Context, address: UserAddr, deadline: Option<u64>) -> Result<i64, Errno> {
    let tid = context.process.threads.current;
    let word: u32 = context.read_struct(address.0)?;
    match (word & FUTEX_TID_MASK) as i32 {
        0 => {
            let waiters = if context.process.futexes.waiter_count(address.0) > 0 {
                FUTEX_WAITERS
            } else {
                0
            };
            context.write_struct(
                address.0,
                &((word & !FUTEX_TID_MASK) | tid as u32 | waiters),
            )?;
            Ok(0)
        }
        owner if owner == tid => Err(Errno::EDEADLK),
        owner if !context.process.threads.exists(owner) => Err(Errno::ESRCH),
        _ => {
            let Some(deadline) = deadline else {
                return Err(Errno::EAGAIN);
            };
            context.write_struct(address.0, &(word | FUTEX_WAITERS))?;
            context.process.futexes.enqueue_pi(address.0, tid);
            // UNLOCK_PI wrote our tid into the word before it woke us: the lock is ours.
            wait_queued(context, deadline, Errno::ERESTARTSYS).map(|()| 0)
        }
    }
}

/// FUTEX_UNLOCK_PI: only the owner may unlock (EPERM otherwise). With waiters, the lock goes to
/// the first of them (its tid in the word, FUTEX_WAITERS kept if more wait), who is woken.
fn unlock_pi(context: &mut Context, address: UserAddr) -> Result<i64, Errno> {
    let tid = context.process.threads.current as u32;
    let word: u32 = context.read_struct(address.0)?;
    if word & FUTEX_TID_MASK != tid {
        return Err(Errno::EPERM);
    }
    hand_over_pi(context, address.0, 0)?;
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

/// FUTEX_WAKE_OP's operation on *address2 (include/uapi/linux/futex.h FUTEX_OP); returns
/// whether the comparison with the old value holds (the waiters on address2 wake then).
fn wake_op(context: &mut Context, address2: UserAddr, encoded: u32) -> Result<bool, Errno> {
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
    // An unknown comparison is ENOSYS, after the store, as on Linux.
    let compare_argument = (((encoded & 0xfff) << 20) as i32 >> 20) as u32;
    let (old, compare_argument) = (old as i32, compare_argument as i32);
    match compare {
        0 => Ok(old == compare_argument), // FUTEX_OP_CMP_EQ
        1 => Ok(old != compare_argument), // FUTEX_OP_CMP_NE
        2 => Ok(old < compare_argument),  // FUTEX_OP_CMP_LT
        3 => Ok(old <= compare_argument), // FUTEX_OP_CMP_LE
        4 => Ok(old > compare_argument),  // FUTEX_OP_CMP_GT
        5 => Ok(old >= compare_argument), // FUTEX_OP_CMP_GE
        _ => Err(Errno::ENOSYS),
    }
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
    fn queues_wake_in_order_by_bitset_and_requeue() {
        let mut queues = FutexQueues::default();
        queues.enqueue(0x1000, 2, 0b01);
        queues.enqueue(0x1000, 3, 0b10);
        queues.enqueue(0x1000, 4, MATCH_ANY);
        let mut woken = Vec::new();
        assert_eq!(queues.wake(0x1000, 5, 0b10, |tid| woken.push(tid)), 2);
        assert_eq!(woken, [3, 4], "only matching bitsets, oldest first");
        assert!(queues.is_queued(2) && !queues.is_queued(3));
        queues.enqueue(0x1000, 5, MATCH_ANY);
        queues.enqueue(0x1000, 6, MATCH_ANY);
        assert_eq!(queues.requeue(0x1000, 0x2000, 2), 2);
        assert_eq!(
            (queues.waiter_count(0x1000), queues.waiter_count(0x2000)),
            (1, 2)
        );
        queues.dequeue(5);
        assert_eq!(queues.waiter_count(0x2000), 1);
        woken.clear();
        assert_eq!(queues.wake(0x2000, 1, MATCH_ANY, |tid| woken.push(tid)), 1);
        assert_eq!(woken, [2], "the oldest two moved: 2 and 5; 5 left");
        assert_eq!(
            queues.wake(0x3000, 1, MATCH_ANY, |_| panic!("nobody waits")),
            0
        );
    }

    #[test]
    fn wakes_and_requeues_reach_waiting_threads() {
        let mut machine = TestMachine::new();
        let (word, other) = (machine.scratch(4), machine.scratch(4));
        // Threads 2, 3 and 4 wait on `word` (as their FUTEX_WAIT would have queued them).
        for tid in 2..5 {
            machine.process.futexes.enqueue(word, tid, MATCH_ANY);
        }
        let private = FUTEX_PRIVATE_FLAG as u64;
        assert_eq!(
            machine.call(202, [word, FUTEX_WAKE as u64 | private, 1, 0, 0, 0]),
            Ok(1)
        );
        assert_eq!(machine.platform.woken, [2]);
        // CMP_REQUEUE: the word must still hold 0; wake one, move the other to `other`.
        assert_eq!(
            machine.call(
                202,
                [word, FUTEX_CMP_REQUEUE as u64 | private, 0, 5, other, 1]
            ),
            Err(Errno::EAGAIN)
        );
        assert_eq!(
            machine.call(
                202,
                [word, FUTEX_CMP_REQUEUE as u64 | private, 1, 5, other, 0]
            ),
            Ok(2)
        );
        assert_eq!(machine.platform.woken, [2, 3]);
        assert_eq!(machine.process.futexes.waiter_count(other), 1);
        // WAKE_OP: set *other to 1 (its old value 0 == 0 holds), wake on both words.
        let op = 1u64 << 12; // FUTEX_OP(SET, 1, CMP_EQ, 0): both fields 0 but the argument
        assert_eq!(
            machine.call(202, [word, FUTEX_WAKE_OP as u64 | private, 1, 1, other, op]),
            Ok(1)
        );
        assert_eq!(machine.platform.woken, [2, 3, 4]);
    }

    #[test]
    fn a_pi_unlock_hands_the_lock_to_the_first_waiter() {
        let mut machine = TestMachine::new();
        let lock = machine.scratch(4);
        machine.write_u64(lock, 0x8000_0000 | 1); // ours (tid 1), with waiters
        machine.process.futexes.enqueue_pi(lock, 7);
        machine.process.futexes.enqueue_pi(lock, 8);
        let unlock = (FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG) as u64;
        assert_eq!(machine.call(202, [lock, unlock, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.read_u64(lock) as u32,
            0x8000_0000 | 7,
            "7 owns it; 8 still waits"
        );
        assert_eq!(machine.platform.woken, [7]);
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
