//! Threads: clone and clone3 with the flags pthread_create and Go's runtime use, exit vs
//! exit_group, set_tid_address's clear-and-wake and the robust futex list at thread exit, and
//! the per-thread state the scheduler swaps in and out of the `Process` at each switch.
//!
//! Pith runs one process, so its threads share everything a thread group shares on Linux;
//! what is each thread's own (its signal mask, thread-directed signals, alternate signal
//! stack, clear_child_tid, robust list) lives in the `Process` for the running thread and is
//! parked here for the others. The machine part (kernel stacks, registers, the run queue) is
//! the kernel's, behind `Platform::spawn_thread`, `wait_until` and `exit_thread`.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::{Context, LogLevel};
use crate::process::Process;
use crate::signal::AltStack;
use crate::uapi::Siginfo;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// clone flags (include/uapi/linux/sched.h).
pub const CSIGNAL: u64 = 0x0000_00ff;
pub const CLONE_VM: u64 = 0x0000_0100;
pub const CLONE_FS: u64 = 0x0000_0200;
pub const CLONE_FILES: u64 = 0x0000_0400;
pub const CLONE_SIGHAND: u64 = 0x0000_0800;
pub const CLONE_PIDFD: u64 = 0x0000_1000;
pub const CLONE_PTRACE: u64 = 0x0000_2000;
pub const CLONE_VFORK: u64 = 0x0000_4000;
pub const CLONE_PARENT: u64 = 0x0000_8000;
pub const CLONE_THREAD: u64 = 0x0001_0000;
pub const CLONE_NEWNS: u64 = 0x0002_0000;
pub const CLONE_SYSVSEM: u64 = 0x0004_0000;
pub const CLONE_SETTLS: u64 = 0x0008_0000;
pub const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
pub const CLONE_DETACHED: u64 = 0x0040_0000;
pub const CLONE_UNTRACED: u64 = 0x0080_0000;
pub const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_IO: u64 = 0x8000_0000;
/// A new time namespace: in CSIGNAL's bits, so clone3 only.
const CLONE_NEWTIME: u64 = 0x0000_0080;
/// The namespace flags: Pith has one of each.
const CLONE_NEW_ANY: u64 = CLONE_NEWNS | CLONE_NEWCGROUP | 0x0400_0000 // NEWUTS
    | 0x0800_0000 // NEWIPC
    | CLONE_NEWUSER
    | 0x2000_0000 // NEWPID
    | 0x4000_0000; // NEWNET
/// What a new thread must share: Pith has one address space, one file table, one set of
/// signal handlers and one filesystem context, so a thread that did not share them would
/// need a second process.
const THREAD_SHARES: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
/// Flags that change nothing here: no tracer, no System V semaphores to undo, one I/O context.
const HARMLESS: u64 = CLONE_SYSVSEM | CLONE_DETACHED | CLONE_UNTRACED | CLONE_IO | CLONE_PTRACE;
/// clone3 only: CLONE_CLEAR_SIGHAND and CLONE_INTO_CGROUP (64-bit flags).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Thread ids wrap below this (PID_MAX_LIMIT on 64-bit, /proc/sys/kernel/pid_max).
const PID_MAX: i32 = 4_194_304;

/// What each thread has of its own, parked while another thread runs.
#[derive(Default)]
pub struct ThreadState {
    pub blocked: u64,
    pub thread_pending: u64,
    pub thread_info: Vec<Siginfo>,
    pub alt_stack: AltStack,
    pub saved_mask: Option<u64>,
    pub sigreturn_requested: bool,
    pub clear_child_tid: u64,
    pub robust_list: (u64, usize),
    /// The thread's name (PR_SET_NAME).
    pub comm: [u8; 16],
}

/// The program's threads: which one runs, and the parked state of the others.
pub struct Threads {
    /// The tid of the thread whose state is in the `Process` now.
    pub current: i32,
    /// Every thread's slot; the running thread's is empty (its state is in the `Process`).
    /// A switch swaps the state in and out of the slots, so it allocates nothing.
    parked: BTreeMap<i32, ThreadState>,
    last_tid: i32,
    /// The running thread is exiting: no signal is raised for it any more.
    exiting: bool,
}

impl Threads {
    pub fn new(main_tid: i32) -> Threads {
        let mut parked = BTreeMap::new();
        parked.insert(main_tid, ThreadState::default());
        Threads {
            current: main_tid,
            parked,
            last_tid: main_tid,
            exiting: false,
        }
    }

    /// How many threads the program has.
    pub fn count(&self) -> usize {
        self.parked.len()
    }

    pub fn exists(&self, tid: i32) -> bool {
        self.parked.contains_key(&tid) && !(self.exiting && tid == self.current)
    }

    /// The thread ids, in order.
    pub fn tids(&self) -> Vec<i32> {
        self.parked.keys().copied().collect()
    }

    /// The parked state of `tid` (not the running thread), to raise a signal for it.
    pub fn parked_mut(&mut self, tid: i32) -> Option<&mut ThreadState> {
        if tid == self.current {
            return None;
        }
        self.parked.get_mut(&tid)
    }

    /// The next free thread id after the last one handed out, as Linux's alloc_pid.
    fn allocate_tid(&mut self) -> i32 {
        let mut tid = self.last_tid;
        loop {
            tid = if tid >= PID_MAX - 1 { 2 } else { tid + 1 };
            if !self.exists(tid) {
                self.last_tid = tid;
                return tid;
            }
        }
    }
}

impl Process {
    /// Swaps the running thread's own state with what `slot` holds.
    fn swap_thread_state(&mut self, slot: &mut ThreadState) {
        let signals = &mut self.signals;
        core::mem::swap(&mut signals.blocked, &mut slot.blocked);
        core::mem::swap(&mut signals.thread_pending, &mut slot.thread_pending);
        core::mem::swap(&mut signals.thread_info, &mut slot.thread_info);
        core::mem::swap(&mut signals.alt_stack, &mut slot.alt_stack);
        core::mem::swap(&mut signals.saved_mask, &mut slot.saved_mask);
        core::mem::swap(
            &mut signals.sigreturn_requested,
            &mut slot.sigreturn_requested,
        );
        core::mem::swap(&mut self.clear_child_tid, &mut slot.clear_child_tid);
        core::mem::swap(&mut self.robust_list, &mut slot.robust_list);
        core::mem::swap(&mut self.comm, &mut slot.comm);
    }

    /// The main thread's name: /proc/self/comm and /proc/self/status show the process's,
    /// whichever thread reads them.
    pub fn main_thread_comm(&self) -> [u8; 16] {
        if self.threads.current == self.pid {
            return self.comm;
        }
        self.threads
            .parked
            .get(&self.pid)
            .map_or(self.comm, |state| state.comm)
    }

    /// Parks the running thread's state and brings in `next`'s: the scheduler calls this, with
    /// the process locked, when it switches threads. False if `next` does not exist.
    pub fn switch_thread(&mut self, next: i32) -> bool {
        let current = self.threads.current;
        if next == current {
            return true;
        }
        if !self.threads.parked.contains_key(&next) {
            return false;
        }
        let Some(mut outgoing) = self.threads.parked.get_mut(&current).map(core::mem::take) else {
            return false;
        };
        // `outgoing` takes the running thread's state; the Process is left a fresh one.
        self.swap_thread_state(&mut outgoing);
        if let Some(slot) = self.threads.parked.get_mut(&current) {
            *slot = outgoing;
        }
        if let Some(mut incoming) = self.threads.parked.get_mut(&next).map(core::mem::take) {
            self.swap_thread_state(&mut incoming);
        }
        self.threads.current = next;
        true
    }

    /// Drops the running thread (it has exited) and brings in `next`'s state.
    pub fn replace_exited_thread(&mut self, next: i32) -> bool {
        let Some(mut incoming) = self.threads.parked.get_mut(&next).map(core::mem::take) else {
            return false;
        };
        self.threads.parked.remove(&self.threads.current);
        self.swap_thread_state(&mut incoming);
        self.threads.current = next;
        self.threads.exiting = false;
        true
    }

    /// Raises `signal` for thread `tid` alone: false if there is no such thread.
    pub fn raise_for_thread(&mut self, tid: i32, signal: i32, info: Siginfo) -> bool {
        if tid == self.threads.current {
            self.signals.raise_for_thread(signal, info);
            return true;
        }
        let ignored = self.signals.is_ignored(signal);
        let Some(state) = self.threads.parked.get_mut(&tid) else {
            return false;
        };
        let bit = crate::signal::bit(signal);
        if state.blocked & bit == 0 && ignored {
            return true; // dropped when sent, as for the running thread
        }
        if state.thread_pending & bit == 0 {
            state.thread_info.push(info);
        }
        state.thread_pending |= bit;
        true
    }
}

/// What clone and clone3 were asked, decoded.
struct CloneRequest {
    flags: u64,
    /// The child's stack pointer (clone3: the top of stack + stack_size), or None to keep the
    /// parent's.
    stack: Option<u64>,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

/// Says, once per syscall, what a refused clone asked for: fork, vfork, or a thread that
/// shares less than everything.
pub fn log_refused(context: &mut Context, number: u64, call: &str, flags: u64) {
    if !context.process.first_unimplemented_call(number) {
        return;
    }
    let program =
        alloc::string::String::from_utf8_lossy(&context.process.executable_path).into_owned();
    let (asked, answer) = if flags & CLONE_VM == 0 {
        (
            "a new process (fork): Pith runs one process",
            "EAGAIN, as Linux when it cannot make another",
        )
    } else if flags & CLONE_THREAD == 0 {
        (
            "a process sharing this memory (vfork or posix_spawn): Pith runs one process",
            "EAGAIN, as Linux when it cannot make another",
        )
    } else {
        (
            "a thread with its own files or filesystem context: Pith's threads share them",
            "ENOSYS",
        )
    };
    context.platform.log(
        LogLevel::Warn,
        format_args!("{program}: {call} (flags {flags:#x}) asked for {asked}; it returns {answer}"),
    );
}

/// Whether clone's `flags` ask for a new process (fork, vfork, posix_spawn's clone) rather
/// than a thread.
pub fn asks_for_a_process(flags: u64) -> bool {
    flags & CLONE_VM == 0 || flags & CLONE_THREAD == 0
}

/// Linux's checks on the flags (kernel/fork.c copy_process), then what Pith can make: a
/// thread of this process.
fn check_flags(context: &mut Context, number: u64, call: &str, flags: u64) -> Result<(), Errno> {
    if flags & (CLONE_NEWNS | CLONE_FS) == (CLONE_NEWNS | CLONE_FS)
        || flags & (CLONE_NEWUSER | CLONE_FS) == (CLONE_NEWUSER | CLONE_FS)
        || (flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 && flags & (CLONE_PIDFD | CLONE_NEW_ANY) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_VFORK != 0 || flags & THREAD_SHARES != THREAD_SHARES {
        log_refused(context, number, call, flags);
        // A new process: Linux's answer when it has no room for one (RLIMIT_NPROC, no pid),
        // which fork's and posix_spawn's callers handle; a thread that shares less: ENOSYS.
        return Err(if asks_for_a_process(flags) {
            Errno::EAGAIN
        } else {
            Errno::ENOSYS
        });
    }
    let known = THREAD_SHARES
        | HARMLESS
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_PARENT
        | CSIGNAL;
    if flags & !known != 0 {
        context.platform.log(
            LogLevel::Warn,
            format_args!(
                "{call}: flags {:#x} are not supported for a thread; it returns EINVAL",
                flags & !known
            ),
        );
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Makes the thread: its tid, its state (the parent's signal mask; no alternate stack, as
/// Linux clears it for CLONE_VM), the tid writes, and the machine's half.
fn spawn(context: &mut Context, request: CloneRequest) -> Result<i32, Errno> {
    let nproc = context.process.limits[crate::uapi::RLIMIT_NPROC as usize].rlim_cur;
    if context.process.threads.count() as u64 >= nproc {
        return Err(Errno::EAGAIN);
    }
    let flags = request.flags;
    let tid = context.process.threads.allocate_tid();
    let tls = (flags & CLONE_SETTLS != 0).then_some(request.tls);
    if let Some(base) = tls {
        if base >= crate::process::TASK_SIZE_MAX {
            return Err(Errno::EPERM); // do_arch_prctl_64 refuses a non-canonical base so
        }
    }
    context.platform.spawn_thread(tid, request.stack, tls)?;
    // CLONE_PARENT_SETTID and CLONE_CHILD_SETTID store the tid in memory both threads share;
    // as Linux's put_user in kernel_clone and schedule_tail, a bad address is ignored.
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = context.write_struct(request.parent_tid, &tid);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = context.write_struct(request.child_tid, &tid);
    }
    let state = ThreadState {
        blocked: context.process.signals.blocked,
        comm: context.process.comm,
        clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            request.child_tid
        } else {
            0
        },
        ..ThreadState::default()
    };
    context.process.threads.parked.insert(tid, state);
    Ok(tid)
}

/// Implements clone(2) for threads (the flags pthread_create and Go use); fork and vfork
/// shapes return ENOSYS with a warning that says what was asked.
pub fn clone(
    context: &mut Context,
    flags: u64,
    stack: UserAddr,
    parent_tid: UserAddr,
    child_tid: UserAddr,
    tls: u64,
) -> Result<i32, Errno> {
    // clone's CLONE_PIDFD writes the pidfd where parent_tid points: both at once is EINVAL.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return Err(Errno::EINVAL);
    }
    check_flags(context, 56, "clone", flags)?;
    spawn(
        context,
        CloneRequest {
            flags,
            stack: (!stack.is_null()).then_some(stack.0),
            parent_tid: parent_tid.0,
            child_tid: child_tid.0,
            tls,
        },
    )
}

/// struct clone_args (include/uapi/linux/sched.h), CLONE_ARGS_SIZE_VER2.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}
const CLONE_ARGS_SIZE_VER0: usize = 64;
const PAGE_SIZE: usize = 4096;

/// Implements clone3(2) for threads, with Linux's checks on the struct (copy_clone_args_from_user,
/// clone3_args_valid).
pub fn clone3(context: &mut Context, args: UserAddr, size: usize) -> Result<i32, Errno> {
    const KNOWN: usize = core::mem::size_of::<CloneArgs>();
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    let bytes = context.read_bytes(args.0, size)?;
    // A newer struct's extra fields must be zero: we would not know what they ask.
    if bytes.len() > KNOWN && bytes[KNOWN..].iter().any(|&byte| byte != 0) {
        return Err(Errno::E2BIG);
    }
    let mut request = CloneArgs::default();
    let length = bytes.len().min(KNOWN);
    request.as_mut_bytes()[..length].copy_from_slice(&bytes[..length]);
    let flags = request.flags;
    if flags & !(u32::MAX as u64 | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
        || flags & (CLONE_DETACHED | (CSIGNAL & !CLONE_NEWTIME)) != 0
        || request.exit_signal & !CSIGNAL != 0
        || request.exit_signal > crate::signal::NSIG as u64
        || (flags & (CLONE_THREAD | CLONE_PARENT) != 0 && request.exit_signal != 0)
        || request.set_tid_size > 32
        || (request.set_tid == 0 && request.set_tid_size != 0)
        || (request.stack == 0) != (request.stack_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & (CLONE_CLEAR_SIGHAND | CLONE_SIGHAND) == (CLONE_CLEAR_SIGHAND | CLONE_SIGHAND) {
        return Err(Errno::EINVAL);
    }
    check_flags(context, 435, "clone3", flags)?;
    if request.set_tid_size != 0 || flags & CLONE_INTO_CGROUP != 0 {
        context.platform.log(
            LogLevel::Warn,
            format_args!(
                "clone3: set_tid and CLONE_INTO_CGROUP are not supported; it returns EINVAL"
            ),
        );
        return Err(Errno::EINVAL);
    }
    let stack = (request.stack != 0).then(|| request.stack.wrapping_add(request.stack_size));
    spawn(
        context,
        CloneRequest {
            flags,
            stack,
            parent_tid: request.parent_tid,
            child_tid: request.child_tid,
            tls: request.tls,
        },
    )
}

/// Implements exit(2): the thread ends (its robust futexes released, clear_child_tid zeroed
/// and woken, as pthread_join waits for); the last thread's exit ends the program.
pub fn exit(context: &mut Context, status: i32) -> Result<(), Errno> {
    release_robust_futexes(context);
    let clear = core::mem::take(&mut context.process.clear_child_tid);
    if clear != 0 && context.write_struct(clear, &0u32).is_ok() {
        crate::futex::wake_address(context, clear, 1);
    }
    if context.process.threads.count() == 1 {
        return crate::process::exit_group(context, status);
    }
    // Signals for this thread alone die with it; a timer aimed at it now signals the process.
    context.process.threads.exiting = true;
    context.platform.exit_thread(context.process)
}

/// The robust list's head (include/uapi/linux/futex.h struct robust_list_head).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RobustListHead {
    next: u64,
    futex_offset: i64,
    list_op_pending: u64,
}
/// How many entries are walked at most, against a list that loops (ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

/// Walks the exiting thread's robust list (kernel/futex/core.c exit_robust_list): each lock it
/// still holds is marked FUTEX_OWNER_DIED and one waiter woken, so the next locker gets
/// EOWNERDEAD instead of waiting forever.
fn release_robust_futexes(context: &mut Context) {
    let (head_address, _) = core::mem::take(&mut context.process.robust_list);
    if head_address == 0 {
        return;
    }
    let Ok(head) = context.read_struct::<RobustListHead>(head_address) else {
        return;
    };
    let pending = head.list_op_pending & !1;
    let mut entry = head.next;
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry & !1 == head_address {
            break;
        }
        let Ok(next) = context.read_struct::<u64>(entry & !1) else {
            return;
        };
        // The pending entry is handled last, once.
        if entry & !1 != pending {
            owner_died(context, entry, head.futex_offset, entry & 1 != 0, false);
        }
        entry = next;
    }
    if pending != 0 {
        owner_died(
            context,
            pending,
            head.futex_offset,
            head.list_op_pending & 1 != 0,
            true,
        );
    }
}

/// handle_futex_death for one entry of the robust list.
fn owner_died(context: &mut Context, entry: u64, offset: i64, pi: bool, pending_op: bool) {
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    let address = (entry & !1).wrapping_add_signed(offset);
    if !address.is_multiple_of(4) {
        return;
    }
    let Ok(word) = context.read_struct::<u32>(address) else {
        return;
    };
    let tid = context.process.threads.current as u32;
    // A lock the thread was about to take when it died: wake a waiter, who may take it now.
    if pending_op && !pi && word == 0 {
        crate::futex::wake_address(context, address, 1);
        return;
    }
    if word & FUTEX_TID_MASK != tid {
        return;
    }
    if pi {
        // A PI lock passes to its first waiter, marked FUTEX_OWNER_DIED (the waiter's lock
        // call then reports EOWNERDEAD), as Linux's pi_state hand-over does.
        let _ = crate::futex::hand_over_pi(context, address, FUTEX_OWNER_DIED);
        return;
    }
    let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    if context.write_struct(address, &new).is_ok() && word & FUTEX_WAITERS != 0 {
        crate::futex::wake_address(context, address, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    const PTHREAD_FLAGS: u64 = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID;

    #[test]
    fn clone_makes_a_thread_with_the_next_tid_and_writes_it() {
        let mut machine = TestMachine::new();
        let (parent, child) = (machine.scratch(8), machine.scratch(8));
        let stack = 0x7000_0000;
        let tid = machine
            .call(56, [PTHREAD_FLAGS, stack, parent, child, 0x1234_0000, 0])
            .unwrap();
        assert_eq!(tid, 2);
        assert_eq!(machine.read_u64(parent) as u32, 2);
        assert_eq!(
            machine.platform.spawned,
            vec![(2, Some(stack), Some(0x1234_0000))]
        );
        assert_eq!(machine.process.threads.count(), 2);
        assert!(machine.process.threads.exists(2));
    }

    #[test]
    fn clone_checks_flags_as_linux() {
        let mut machine = TestMachine::new();
        // CLONE_THREAD without CLONE_SIGHAND; CLONE_SIGHAND without CLONE_VM.
        assert_eq!(
            machine.call(56, [CLONE_VM | CLONE_THREAD, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(56, [CLONE_SIGHAND, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        // fork's shape and vfork's: EAGAIN, with a warning.
        assert_eq!(machine.call(56, [17, 0, 0, 0, 0, 0]), Err(Errno::EAGAIN));
        assert!(machine
            .logs()
            .iter()
            .any(|line| line.contains("asked for a new process (fork)")));
        assert_eq!(
            machine.call(56, [CLONE_VM | CLONE_VFORK | 17, 0, 0, 0, 0, 0]),
            Err(Errno::EAGAIN)
        );
        assert!(machine.platform.spawned.is_empty());
    }

    #[test]
    fn clone3_reads_its_struct_as_linux() {
        let mut machine = TestMachine::new();
        let args = machine.scratch(4096);
        let parent = machine.scratch(8);
        let request = CloneArgs {
            flags: PTHREAD_FLAGS,
            parent_tid: parent,
            stack: 0x7000_0000,
            stack_size: 0x10000,
            tls: 0x5555_0000,
            ..CloneArgs::default()
        };
        machine.write_bytes(args, request.as_bytes());
        assert_eq!(
            machine.call(435, [args, 32, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(435, [args, 4097, 0, 0, 0, 0]),
            Err(Errno::E2BIG)
        );
        machine.write_bytes(args + 88, &[1]);
        assert_eq!(machine.call(435, [args, 96, 0, 0, 0, 0]), Err(Errno::E2BIG));
        assert_eq!(machine.call(435, [args, 88, 0, 0, 0, 0]), Ok(2));
        assert_eq!(machine.read_u64(parent) as u32, 2);
        assert_eq!(
            machine.platform.spawned,
            vec![(2, Some(0x7001_0000), Some(0x5555_0000))]
        );
        // A stack without a size; an exit signal in the flags.
        let bad = CloneArgs {
            stack_size: 0,
            ..request
        };
        machine.write_bytes(args, bad.as_bytes());
        assert_eq!(
            machine.call(435, [args, 88, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        let bad = CloneArgs {
            flags: PTHREAD_FLAGS | 17,
            ..request
        };
        machine.write_bytes(args, bad.as_bytes());
        assert_eq!(
            machine.call(435, [args, 88, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn each_thread_keeps_its_own_mask_and_thread_signals() {
        let mut machine = TestMachine::new();
        machine.process.signals.blocked = 1 << 9;
        let tid = machine
            .call(
                56,
                [
                    PTHREAD_FLAGS & !CLONE_PARENT_SETTID & !CLONE_SETTLS,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            )
            .unwrap() as i32;
        machine.process.signals.blocked = 1 << 3;
        // tgkill to the new thread parks the signal with it.
        assert_eq!(machine.call(234, [1, tid as u64, 10, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.signals.thread_pending, 0);
        assert!(machine.process.switch_thread(tid));
        assert_eq!(machine.process.threads.current, tid);
        assert_eq!(
            machine.process.signals.blocked,
            1 << 9,
            "inherited at clone"
        );
        assert_eq!(machine.process.signals.thread_pending, 1 << 9);
        assert_eq!(
            machine.process.signals.take(!0).map(|(signal, _)| signal),
            Some(10)
        );
        assert!(machine.process.switch_thread(1));
        assert_eq!(machine.process.signals.blocked, 1 << 3);
        assert_eq!(machine.call(186, [0; 6]), Ok(1), "gettid");
        assert_eq!(machine.call(234, [1, 99, 10, 0, 0, 0]), Err(Errno::ESRCH));
    }

    #[test]
    fn a_thread_exit_clears_and_wakes_its_tid_word_and_releases_robust_locks() {
        let mut machine = TestMachine::new();
        let child_tid = machine.scratch(8);
        let flags = PTHREAD_FLAGS & !CLONE_PARENT_SETTID & !CLONE_SETTLS;
        let tid = machine.call(56, [flags, 0, 0, child_tid, 0, 0]).unwrap() as i32;
        machine.write_u64(child_tid, tid as u64);
        // The main thread waits on the word (as pthread_join), then the child runs and exits.
        machine.process.futexes.enqueue(child_tid, 1, u32::MAX);
        assert!(machine.process.switch_thread(tid));
        // The child holds a robust lock with a waiter.
        let (head, lock) = (machine.scratch(24), machine.scratch(16));
        machine.write_u64(head, lock); // next: the lock's list entry
        machine.write_u64(head + 8, 8); // futex_offset: the word is 8 bytes into the entry
        machine.write_u64(head + 16, 0);
        machine.write_u64(lock, head); // the list ends back at the head
        machine.write_u64(lock + 8, 0x8000_0000 | tid as u64);
        assert_eq!(machine.call(273, [head, 24, 0, 0, 0, 0]), Ok(0));
        let exited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = machine.call(60, [0; 6]);
        }));
        assert!(exited.is_err(), "exit_thread does not return");
        assert_eq!(machine.read_u64(child_tid) as u32, 0);
        assert_eq!(
            machine.read_u64(lock + 8) as u32,
            0xc000_0000,
            "FUTEX_OWNER_DIED | WAITERS"
        );
        assert_eq!(machine.platform.woken, vec![1]);
        assert!(!machine.process.futexes.is_queued(1));
    }
}
