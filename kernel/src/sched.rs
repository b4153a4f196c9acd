//! Threads on the machine: each has a kernel stack its syscalls run on, the registers saved
//! when it is switched out, its FPU/SSE/AVX state (XSAVE) and FS base. One CPU runs them
//! round-robin: a thread runs until it waits, yields, exits, or its time slice ends (the APIC
//! timer, armed only when another thread is runnable). An idle CPU halts.
//!
//! A switch happens in one of three places, always with interrupts off:
//! - a syscall waits (`wait_until`), yields or exits: the thread is inside the kernel on its
//!   own stack, and `context_switch` saves its callee-saved registers there;
//! - the timer (or console input) interrupts the program and another thread should run: the
//!   interrupt's frame is copied from the IST stack onto the thread's kernel stack (idle while
//!   it runs the program) and the switch happens from there (`preempt_switch`);
//! - a new thread's first run starts from a frame built by `spawn` (`thread_start`).
//!
//! The process lock is the big lock of the syscall layer: a thread that switches away inside
//! a syscall hands it over (released just before the switch, taken again when it resumes),
//! after the process's per-thread state was swapped to the next thread's.

use crate::interrupts::TrapFrame;
use crate::memory::PAGE_SIZE;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};
use pith_syscalls::platform::WakeOn;
use pith_syscalls::{Errno, Process};
use spin::Mutex;
use x86_64::registers::model_specific::FsBase;
use x86_64::VirtAddr;

/// How long a thread runs before another runnable one gets the CPU.
pub const TIME_SLICE_NS: u64 = 4_000_000;
/// Each thread's kernel stack: 64 KiB, as the first thread's (a power of two of frames, from
/// the buddy allocator).
const KERNEL_STACK_FRAMES: usize = 16;
/// Written at the bottom of each thread's kernel stack and checked at each switch: the
/// direct map has no guard pages, so an overflow is caught here rather than corrupting.
const STACK_CANARY: u64 = 0x5049_5448_5354_4b21;
const TRAP_FRAME_SIZE: u64 = core::mem::size_of::<TrapFrame>() as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Runnable,
    Blocked { deadline: u64, wake_on: WakeOn },
}

struct Task {
    tid: i32,
    state: State,
    /// The kernel stack pointer while switched out (context_switch's frame).
    saved_rsp: u64,
    /// [stack_bottom, stack_top): the kernel stack; `frames` if it came from the allocator
    /// (the first thread runs on the boot CPU's static syscall stack).
    stack_bottom: u64,
    stack_top: u64,
    frames: Option<u64>,
    fpu: crate::fpu::FpuContext,
    fs_base: u64,
    /// gs:[8] (the program's rsp during a syscall) while switched out.
    user_rsp: u64,
    /// The program CPU time (clock::program_cpu_ns) this thread has used up to its last
    /// switch out, and that clock's reading when it last started running.
    cpu_ns: u64,
    running_since: u64,
}

struct Scheduler {
    tasks: BTreeMap<i32, Box<Task>>,
    run_queue: VecDeque<i32>,
    current: i32,
    slice_start: u64,
    /// Threads that exited, whose stacks are freed once another thread runs. Boxed: the
    /// switch away from an exiting thread holds a pointer to it.
    #[allow(clippy::vec_box)]
    exited: Vec<Box<Task>>,
}

static SCHEDULER: Mutex<Option<Scheduler>> = Mutex::new(None);

/// The deadline the APIC timer is armed for (u64::MAX: none, or it has fired). It is never
/// disarmed early: see `Scheduler::arm`.
static ARMED: AtomicU64 = AtomicU64::new(u64::MAX);

/// The timer interrupt came: it is armed for nothing now.
pub fn timer_fired() {
    ARMED.store(u64::MAX, Ordering::Relaxed);
}

/// The switch an interrupt decided on, done on the way out of it (`preempt_switch`).
static PENDING_SWITCH: Mutex<Option<(usize, usize)>> = Mutex::new(None);

global_asm!(
    r#"
    .section .text
    .global pith_context_switch
    /* rdi: where to save this thread's stack pointer; rsi: the next thread's. */
pith_context_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    /* A new thread's first run: its TrapFrame is at rsp. */
    .global pith_thread_start
pith_thread_start:
    mov rdi, rsp
    call thread_first_run
    jmp pith_return_to_frame
    "#
);

extern "C" {
    fn pith_context_switch(save_rsp: *mut u64, next_rsp: u64);
    fn pith_thread_start();
}

fn write_gs(offset: usize, value: u64) {
    // SAFETY: GS points at this CPU's PerCpu (syscall::init); offsets 0, 8, 16 and 24 are its
    // kernel_stack_top, user_rsp, exit_work and preempt fields.
    unsafe {
        match offset {
            0 => {
                core::arch::asm!("mov gs:[0], {}", in(reg) value, options(nostack, preserves_flags))
            }
            8 => {
                core::arch::asm!("mov gs:[8], {}", in(reg) value, options(nostack, preserves_flags))
            }
            16 => {
                core::arch::asm!("mov gs:[16], {}", in(reg) value, options(nostack, preserves_flags))
            }
            _ => {
                core::arch::asm!("mov gs:[24], {}", in(reg) value, options(nostack, preserves_flags))
            }
        }
    }
}

fn read_user_rsp() -> u64 {
    crate::syscall::user_rsp()
}

/// Makes the running program its first thread, on the boot CPU's syscall stack.
pub fn init_first_thread(tid: i32) {
    let Some(fpu) = crate::fpu::FpuContext::new() else {
        crate::log_error!("no memory for the first thread's FPU state");
        crate::power::exit(crate::process::CANNOT_EXECUTE_STATUS);
    };
    let (bottom, top) = crate::syscall::boot_stack();
    let task = Box::new(Task {
        tid,
        state: State::Running,
        saved_rsp: 0,
        stack_bottom: bottom,
        stack_top: top,
        frames: None,
        fpu,
        fs_base: 0,
        user_rsp: 0,
        cpu_ns: 0,
        running_since: crate::clock::program_cpu_ns(),
    });
    let mut tasks = BTreeMap::new();
    tasks.insert(tid, task);
    *SCHEDULER.lock() = Some(Scheduler {
        tasks,
        run_queue: VecDeque::new(),
        current: tid,
        slice_start: crate::clock::monotonic_ns(),
        exited: Vec::new(),
    });
}

impl Scheduler {
    /// Blocked threads whose deadline has passed become runnable.
    fn wake_due(&mut self, now: u64) {
        for task in self.tasks.values_mut() {
            if let State::Blocked { deadline, .. } = task.state {
                if deadline <= now {
                    task.state = State::Runnable;
                    self.run_queue.push_back(task.tid);
                }
            }
        }
    }

    /// Blocked threads that `event` ends the wait of become runnable; true if any did.
    fn wake_waiting(&mut self, any_kind: bool) -> bool {
        let mut woke = false;
        for task in self.tasks.values_mut() {
            if let State::Blocked { wake_on, .. } = task.state {
                if any_kind || wake_on == WakeOn::AnyEvent {
                    task.state = State::Runnable;
                    self.run_queue.push_back(task.tid);
                    woke = true;
                }
            }
        }
        woke
    }

    fn wake(&mut self, tid: i32) {
        if let Some(task) = self.tasks.get_mut(&tid) {
            if matches!(task.state, State::Blocked { .. }) {
                task.state = State::Runnable;
                self.run_queue.push_back(tid);
            }
        }
    }

    /// The next thread to run, off the run queue.
    fn pick_next(&mut self) -> Option<i32> {
        while let Some(tid) = self.run_queue.pop_front() {
            if self
                .tasks
                .get(&tid)
                .is_some_and(|task| task.state == State::Runnable)
            {
                return Some(tid);
            }
        }
        None
    }

    /// When the timer must next interrupt: the program's own timers (while it runs: halted,
    /// the CPU-time ones cannot expire, and the caller passes the others in `extra`), the
    /// earliest deadline of a waiting thread, and the end of the slice if another thread
    /// waits to run.
    fn next_timer(&self, extra: Option<u64>, halting: bool) -> Option<u64> {
        let mut next = if halting {
            None
        } else {
            crate::signals::alarm_deadline()
        };
        let mut earliest = |deadline: u64| {
            next = Some(next.map_or(deadline, |at: u64| at.min(deadline)));
        };
        if let Some(deadline) = extra {
            earliest(deadline);
        }
        for task in self.tasks.values() {
            if let State::Blocked { deadline, .. } = task.state {
                if deadline != u64::MAX {
                    earliest(deadline);
                }
            }
        }
        if !self.run_queue.is_empty() {
            earliest(self.slice_start + TIME_SLICE_NS);
        }
        // Sent frames whose notification was held (a halt tells the device anyway).
        if !halting {
            if let Some(deadline) = crate::virtio_net::flush_deadline() {
                earliest(deadline);
            }
            // The program may compute without looking at the network (a halt waits for the
            // device's interrupt instead).
            if let Some(deadline) = crate::virtio_net::watch_deadline() {
                earliest(deadline);
            }
        }
        next
    }

    fn arm_timer(&self, extra: Option<u64>) {
        self.arm(self.next_timer(extra, false));
    }

    /// Programs the APIC timer for `deadline`, unless it is armed for that time or earlier
    /// already: a timer write is an exit to the hypervisor, and most switches and wakes ask for
    /// a later deadline than the one armed. An early interrupt costs little: every interrupt
    /// looks at what is due and arms the timer for what is next.
    fn arm(&self, deadline: Option<u64>) {
        let wanted = deadline.unwrap_or(u64::MAX);
        if ARMED.load(Ordering::Relaxed) <= wanted {
            return;
        }
        ARMED.store(wanted, Ordering::Relaxed);
        if let Some(deadline) = deadline {
            crate::apic::arm(deadline);
        }
    }

    fn task_ptr(&mut self, tid: i32) -> *mut Task {
        self.tasks
            .get_mut(&tid)
            .map_or(core::ptr::null_mut(), |task| &mut **task as *mut Task)
    }
}

fn with_scheduler<R>(f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
    SCHEDULER.lock().as_mut().map(f)
}

/// The CPU time thread `tid` has used (0 for a thread that does not exist).
pub fn thread_cpu_ns(tid: i32) -> u64 {
    with_scheduler(|scheduler| {
        let task = scheduler.tasks.get(&tid)?;
        let running = if tid == scheduler.current {
            crate::clock::program_cpu_ns().saturating_sub(task.running_since)
        } else {
            0
        };
        Some(task.cpu_ns + running)
    })
    .flatten()
    .unwrap_or(0)
}

/// Arms the APIC timer for whatever is due next (the program's timers changed).
pub fn arm_timer() {
    with_scheduler(|scheduler| scheduler.arm_timer(None));
}

/// Starts thread `tid` from the clone syscall's `frame`: rax 0, rsp `stack` (or the parent's),
/// FS base `tls` (or the parent's), and a copy of the parent's FPU registers.
pub fn spawn(
    tid: i32,
    frame: &TrapFrame,
    stack: Option<u64>,
    tls: Option<u64>,
) -> Result<(), Errno> {
    let mut fpu = crate::fpu::FpuContext::new().ok_or(Errno::ENOMEM)?;
    fpu.save();
    let phys = crate::memory::allocate_contiguous(KERNEL_STACK_FRAMES).ok_or(Errno::ENOMEM)?;
    let bottom = crate::memory::phys_to_virt(phys).as_u64();
    let top = bottom + KERNEL_STACK_FRAMES as u64 * PAGE_SIZE;
    // The first run: pith_context_switch pops six callee-saved registers (zero) and returns to
    // pith_thread_start with the thread's TrapFrame at rsp.
    let frame_at = top - TRAP_FRAME_SIZE;
    let saved_rsp = frame_at - 8 - 6 * 8;
    // SAFETY: [bottom, top) is this thread's new stack, direct-mapped and owned by nothing
    // else; the writes stay inside it (a TrapFrame, a return address and six words).
    unsafe {
        (bottom as *mut u64).write(STACK_CANARY);
        let child = frame_at as *mut TrapFrame;
        core::ptr::copy_nonoverlapping(frame as *const TrapFrame, child, 1);
        (*child).rax = 0;
        if let Some(stack) = stack {
            (*child).rsp = stack;
        }
        ((frame_at - 8) as *mut u64).write(pith_thread_start as *const () as u64);
        core::ptr::write_bytes(saved_rsp as *mut u64, 0, 6);
    }
    let task = Box::new(Task {
        tid,
        state: State::Runnable,
        saved_rsp,
        stack_bottom: bottom,
        stack_top: top,
        frames: Some(phys),
        fpu,
        fs_base: tls.unwrap_or_else(|| FsBase::read().as_u64()),
        user_rsp: 0,
        cpu_ns: 0,
        running_since: 0,
    });
    with_scheduler(|scheduler| {
        scheduler.tasks.insert(tid, task);
        scheduler.run_queue.push_back(tid);
        scheduler.arm_timer(None);
    });
    Ok(())
}

/// Thread `tid`, waiting, may go on (a futex wake or a signal for it).
pub fn wake(tid: i32) {
    with_scheduler(|scheduler| {
        scheduler.wake(tid);
        scheduler.arm_timer(None);
    });
}

/// Every waiting thread looks again (a signal was raised for the process).
pub fn wake_all() {
    with_scheduler(|scheduler| {
        scheduler.wake_waiting(true);
        scheduler.arm_timer(None);
    });
}

/// Makes the threads waiting for any event look again (not futex waiters, which only a wake
/// or a signal ends): frames came, and a thread waiting on a socket may have something.
pub fn wake_event_waiters() {
    with_scheduler(|scheduler| {
        scheduler.wake_waiting(false);
        scheduler.arm_timer(None);
    });
}

/// Frees the stacks of threads that exited (never the running one's), and checks the running
/// thread's stack canary.
fn after_switch() {
    let exited = with_scheduler(|scheduler| {
        scheduler.slice_start = crate::clock::monotonic_ns();
        scheduler.arm_timer(None);
        core::mem::take(&mut scheduler.exited)
    })
    .unwrap_or_default();
    for task in exited {
        if let Some(phys) = task.frames {
            crate::memory::free_contiguous(phys, KERNEL_STACK_FRAMES);
        }
    }
}

/// Switches the machine from `prev` to `next`: FPU state, FS base, the per-CPU stack words,
/// then the stacks. Returns when `prev` runs again.
///
/// # Safety
/// Both point at live tasks (prev may be an exited one kept in `exited`); interrupts are off;
/// the process lock is not held and the process's thread state is already next's.
unsafe fn switch_to(prev: *mut Task, next: *mut Task) {
    // SAFETY: the caller's contract: both tasks are alive and only this CPU touches them. The
    // references end before the stacks are switched: while this thread is switched out, other
    // threads change its Task (its state) through the scheduler.
    let (save_rsp, next_rsp) = unsafe {
        let prev = &mut *prev;
        let next = &mut *next;
        if (prev.stack_bottom as *const u64).read() != STACK_CANARY && prev.frames.is_some() {
            crate::log_error!(
                "fatal: thread {} overflowed its {} KiB kernel stack",
                prev.tid,
                KERNEL_STACK_FRAMES * 4
            );
            crate::power::exit(crate::interrupts::KERNEL_FAILURE_STATUS);
        }
        let cpu_now = crate::clock::program_cpu_ns();
        prev.cpu_ns += cpu_now.saturating_sub(prev.running_since);
        next.running_since = cpu_now;
        prev.fpu.save();
        next.fpu.restore();
        prev.fs_base = FsBase::read().as_u64();
        FsBase::write(VirtAddr::new_truncate(next.fs_base));
        prev.user_rsp = read_user_rsp();
        write_gs(8, next.user_rsp);
        write_gs(0, next.stack_top);
        // The next thread may have signals waiting: its way out of a syscall looks.
        write_gs(16, 1);
        (core::ptr::addr_of_mut!(prev.saved_rsp), next.saved_rsp)
    };
    // SAFETY: save_rsp points into prev's live Task; next_rsp is next's saved stack pointer,
    // left by its own switch out (or by spawn for a new thread).
    unsafe { pith_context_switch(save_rsp, next_rsp) };
    after_switch();
}

/// The running thread waits (a syscall's wait: `wait_step`) until `deadline`, a wake, or, for
/// `WakeOn::AnyEvent`, any interrupt. Another thread runs meanwhile if one can; if none can,
/// the CPU halts.
pub fn wait_until(process: &mut Process, deadline: u64, wake_on: WakeOn) {
    let now = crate::clock::monotonic_ns();
    if now >= deadline {
        return;
    }
    let switch = with_scheduler(|scheduler| {
        let current = scheduler.current;
        scheduler.wake_due(now);
        let next = scheduler.pick_next()?;
        if let Some(task) = scheduler.tasks.get_mut(&current) {
            task.state = State::Blocked { deadline, wake_on };
        }
        if let Some(task) = scheduler.tasks.get_mut(&next) {
            task.state = State::Running;
        }
        scheduler.current = next;
        Some((scheduler.task_ptr(current), scheduler.task_ptr(next), next))
    })
    .flatten();
    match switch {
        Some((prev, next, next_tid)) => {
            process.switch_thread(next_tid);
            hand_over(process, prev, next);
        }
        None => {
            halt_once(Some(deadline));
            rearm_after_halt(process);
        }
    }
}

/// Switches away with the process lock handed to the next thread, and takes it back once this
/// thread runs again.
fn hand_over(process: &mut Process, prev: *mut Task, next: *mut Task) {
    if prev.is_null() || next.is_null() || prev == next {
        return;
    }
    // Other threads read and write the process while this one is switched out: hand the
    // pointer to an opaque asm before (so every store to it is done) and after (so nothing
    // read from it before is assumed still true).
    let process_ptr = process as *mut Process;
    // SAFETY: the caller holds the process lock (through run_syscall's guard) and gives it to
    // the next thread; it is taken back below before `process` is used again, so the guard's
    // drop still unlocks exactly once. Both tasks are alive (see switch_to).
    unsafe {
        core::arch::asm!("/* {} */", in(reg) process_ptr, options(nostack, preserves_flags));
        crate::process::release_for_switch();
        switch_to(prev, next);
        crate::process::reacquire_after_switch();
        core::arch::asm!("/* {} */", in(reg) process_ptr, options(nostack, preserves_flags));
    }
}

/// Nothing else can run: halt until an interrupt (at `deadline` at the latest: the caller's
/// wait and the program's timers on the monotonic clock), then let every waiting thread look
/// again. The program's CPU-time timers cannot expire while it is halted, so the timer is
/// wanted for `deadline` and the waiting threads' deadlines alone; one armed for that time or
/// earlier is left as it is (`Scheduler::arm`): an earlier interrupt only makes the waiters
/// look again, and a server halting between requests would otherwise write the timer each
/// time, an exit to the hypervisor.
fn halt_once(deadline: Option<u64>) {
    with_scheduler(|scheduler| {
        let wanted = scheduler.next_timer(deadline, true);
        scheduler.arm(wanted);
    });
    // Frames queued for the network go before the CPU idles (their notification waits for
    // this or a burst's end: virtio_net::flush).
    crate::virtio_net::flush();
    let halted_at = crate::clock::monotonic_ns();
    // SAFETY: interrupts are enabled only for the halt: `sti` takes effect after `hlt`
    // starts, so no wake-up is lost; the interrupt's handler runs on an IST stack, and `cli`
    // puts back the kernel's interrupts-off state.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    let now = crate::clock::monotonic_ns();
    crate::clock::add_idle(now.saturating_sub(halted_at));
    crate::virtio_net::after_halt();
    // Threads waiting for any event look again; futex waiters only if their deadline passed
    // (a signal raised for the process wakes them all, where it is raised).
    with_scheduler(|scheduler| {
        scheduler.wake_due(now);
        scheduler.wake_waiting(false);
    });
}

/// After a halt: the program's CPU-time timers are due later by the time it spent halted, so
/// their deadline on the monotonic clock moves; arm the timer for what is due while it runs.
fn rearm_after_halt(process: &Process) {
    let now = crate::clock::monotonic_ns();
    let cpu_now = crate::clock::program_cpu_ns();
    crate::signals::set_alarm_deadline(process.timers.next_alarm(now, cpu_now));
    arm_timer();
}

/// sched_yield: the running thread goes behind the runnable ones.
pub fn yield_now(process: &mut Process) {
    let switch = with_scheduler(|scheduler| {
        scheduler.wake_due(crate::clock::monotonic_ns());
        let next = scheduler.pick_next()?;
        let current = scheduler.current;
        if let Some(task) = scheduler.tasks.get_mut(&current) {
            task.state = State::Runnable;
        }
        scheduler.run_queue.push_back(current);
        if let Some(task) = scheduler.tasks.get_mut(&next) {
            task.state = State::Running;
        }
        scheduler.current = next;
        Some((scheduler.task_ptr(current), scheduler.task_ptr(next), next))
    })
    .flatten();
    if let Some((prev, next, next_tid)) = switch {
        process.switch_thread(next_tid);
        hand_over(process, prev, next);
    }
}

/// Ends the running thread (not the last one) and runs the next; waits, halted, until one
/// can run.
pub fn exit_current(process: &mut Process) -> ! {
    loop {
        let switch = with_scheduler(|scheduler| {
            scheduler.wake_due(crate::clock::monotonic_ns());
            let next = scheduler.pick_next()?;
            let current = scheduler.current;
            let mut task = scheduler.tasks.remove(&current)?;
            let prev = &mut *task as *mut Task;
            scheduler.exited.push(task);
            if let Some(task) = scheduler.tasks.get_mut(&next) {
                task.state = State::Running;
            }
            scheduler.current = next;
            Some((prev, scheduler.task_ptr(next), next))
        })
        .flatten();
        if let Some((prev, next, next_tid)) = switch {
            process.replace_exited_thread(next_tid);
            // SAFETY: as hand_over, but this thread never runs again: the lock goes to the
            // next thread for good, and the exited task stays alive in `exited` until the
            // next thread has left its stack (after_switch).
            unsafe {
                crate::process::release_for_switch();
                switch_to(prev, next);
            }
            unreachable_after_exit();
        }
        // Every other thread waits: the timers or input may wake one.
        halt_once(process.timers.next_deadline());
        rearm_after_halt(process);
        // A process timer that fired, or Ctrl-C from the host, raises its signal here; every
        // waiting thread looks again, and one that can takes it.
        let now = crate::clock::monotonic_ns();
        let cpu_now = crate::clock::program_cpu_ns();
        let host_signals = crate::console::take_host_signals();
        crate::signals::raise_all(process, host_signals);
        if pith_syscalls::time::expire_timers(process, now, cpu_now) || host_signals != 0 {
            wake_all();
        }
    }
}

fn unreachable_after_exit() -> ! {
    crate::log_error!("fatal: an exited thread ran again");
    crate::power::exit(crate::interrupts::KERNEL_FAILURE_STATUS)
}

/// The timer or console input interrupted the program: threads whose wait is over become
/// runnable, and if one is (and the slice is over, or `urgent`), the running thread is
/// preempted on the way out of the interrupt. Called with the process locked.
pub fn on_interrupt_in_program(process: &mut Process, urgent: bool) {
    let now = crate::clock::monotonic_ns();
    let switch = with_scheduler(|scheduler| {
        scheduler.wake_due(now);
        if urgent {
            scheduler.wake_waiting(false);
        }
        let slice_over = now >= scheduler.slice_start + TIME_SLICE_NS;
        if scheduler.run_queue.is_empty() || !(slice_over || urgent) {
            scheduler.arm_timer(None);
            return None;
        }
        let next = scheduler.pick_next()?;
        let current = scheduler.current;
        if let Some(task) = scheduler.tasks.get_mut(&current) {
            task.state = State::Runnable;
        }
        scheduler.run_queue.push_back(current);
        if let Some(task) = scheduler.tasks.get_mut(&next) {
            task.state = State::Running;
        }
        scheduler.current = next;
        Some((scheduler.task_ptr(current), scheduler.task_ptr(next), next))
    })
    .flatten();
    if let Some((prev, next, next_tid)) = switch {
        process.switch_thread(next_tid);
        *PENDING_SWITCH.lock() = Some((prev as usize, next as usize));
        write_gs(24, 1);
    }
}

/// The way out of an interrupt that preempted the program: `frame` (the interrupted thread's
/// registers) is on its kernel stack now; switch, and when this thread runs again, deliver
/// its signals and return to the frame.
#[no_mangle]
extern "C" fn preempt_switch(frame: &mut TrapFrame) {
    let pending = PENDING_SWITCH.lock().take();
    if let Some((prev, next)) = pending {
        // SAFETY: on_interrupt_in_program picked both from the live tasks; the process lock
        // was released when that interrupt's handler returned.
        unsafe { switch_to(prev as *mut Task, next as *mut Task) };
    }
    crate::signals::on_resume_in_program(frame);
}

/// A new thread runs for the first time: deliver what signals it can take, then enter the
/// program at its frame (the clone's return, rax 0).
#[no_mangle]
extern "C" fn thread_first_run(frame: &mut TrapFrame) {
    after_switch();
    crate::signals::on_resume_in_program(frame);
}
