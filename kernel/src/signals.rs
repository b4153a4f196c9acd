//! Signal delivery on the machine: turning the app's saved registers into a handler call (with
//! the frame `pith_syscalls::sigframe` plans) on the way out of a syscall or a fault, and back
//! on rt_sigreturn; and the default actions.

use crate::gdt::{KERNEL_CODE, KERNEL_DATA};
use crate::interrupts::TrapFrame;
use crate::platform::KernelPlatform;
use pith_syscalls::sigframe::{self, Registers, Trap};
use pith_syscalls::signal::{
    bit, default_action, DefaultAction, SIGSEGV, SIG_DFL, SIG_IGN, SS_AUTODISARM,
};
use pith_syscalls::uapi::Siginfo;
use pith_syscalls::{Errno, Platform, Process};
use zerocopy::IntoBytes;

fn registers_of(frame: &TrapFrame) -> Registers {
    Registers {
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rdi: frame.rdi,
        rsi: frame.rsi,
        rbp: frame.rbp,
        rbx: frame.rbx,
        rdx: frame.rdx,
        rax: frame.rax,
        rcx: frame.rcx,
        rsp: frame.rsp,
        rip: frame.rip,
        rflags: frame.rflags,
    }
}

fn set_registers(frame: &mut TrapFrame, registers: &Registers) {
    frame.r8 = registers.r8;
    frame.r9 = registers.r9;
    frame.r10 = registers.r10;
    frame.r11 = registers.r11;
    frame.r12 = registers.r12;
    frame.r13 = registers.r13;
    frame.r14 = registers.r14;
    frame.r15 = registers.r15;
    frame.rdi = registers.rdi;
    frame.rsi = registers.rsi;
    frame.rbp = registers.rbp;
    frame.rbx = registers.rbx;
    frame.rdx = registers.rdx;
    frame.rax = registers.rax;
    frame.rcx = registers.rcx;
    frame.rip = registers.rip;
    frame.rflags = registers.rflags;
    // The app's stack pointer must be canonical for iretq; a bad one faults in the app.
    frame.rsp = registers.rsp;
    frame.cs = KERNEL_CODE as u64;
    frame.ss = KERNEL_DATA as u64;
}

/// Writes a signal frame for `signal` and points the app at its handler.
fn push_frame(
    frame: &mut TrapFrame,
    process: &mut Process,
    platform: &mut KernelPlatform,
    signal: i32,
    info: &Siginfo,
    trap: &Trap,
) -> Result<(), Errno> {
    let registers = registers_of(frame);
    let action = process.signals.action(signal);
    let alt_stack = process.signals.alt_stack;
    let delivery = sigframe::plan(
        &registers,
        signal,
        info,
        &action,
        // The mask sigreturn puts back: rt_sigsuspend's caller's, if it is waiting.
        process
            .signals
            .saved_mask
            .unwrap_or(process.signals.blocked),
        &alt_stack,
        trap,
        crate::fpu::format(),
        (KERNEL_CODE, KERNEL_DATA),
    )?;
    crate::fpu::save(|image| platform.write_user(delivery.fpstate_address, image))?;
    platform.write_user(delivery.frame_address, delivery.frame.as_bytes())?;
    process.signals.enter_handler(signal);
    // SS_AUTODISARM: every delivery disarms the alternate stack (signal_delivered); the
    // frame saved it, and sigreturn arms it again.
    if alt_stack.is_enabled() && alt_stack.flags & SS_AUTODISARM != 0 {
        process.signals.alt_stack = Default::default();
    }
    set_registers(frame, &delivery.registers);
    Ok(())
}

/// Linux's name for a signal number, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .get(signal as usize)
        .copied()
        .unwrap_or("a real-time signal")
}

/// Ends the program as `signal`'s default action does (status 128 + signal).
fn terminate(signal: i32, why: core::fmt::Arguments) -> ! {
    crate::log_warn!(
        "the program was killed by signal {signal} ({}): {why}; exit status {}",
        signal_name(signal),
        128 + signal
    );
    crate::power::exit(128 + signal)
}

/// The length of the `syscall` instruction, to run it again.
const SYSCALL_INSTRUCTION_LENGTH: u64 = 2;

/// A syscall interrupted by a signal (ERESTARTSYS) runs again, or fails with EINTR when a
/// handler without SA_RESTART runs (arch/x86/kernel/signal.c handle_signal). `frame.vector`
/// holds the syscall number on the way out of a syscall.
fn settle_interrupted_syscall(frame: &mut TrapFrame, handler_flags: Option<u64>) {
    if frame.rax != Errno::ERESTARTSYS.to_return() {
        return;
    }
    match handler_flags {
        Some(flags) if flags & pith_syscalls::signal::SA_RESTART == 0 => {
            frame.rax = Errno::EINTR.to_return()
        }
        _ => {
            frame.rax = frame.vector;
            frame.rip -= SYSCALL_INSTRUCTION_LENGTH;
        }
    }
}

/// Delivers every deliverable pending signal, nesting frames as Linux does. `in_syscall`:
/// the frame is the way out of a syscall, which may have to be restarted.
fn deliver_pending(
    frame: &mut TrapFrame,
    process: &mut Process,
    platform: &mut KernelPlatform,
    in_syscall: bool,
) {
    while let Some((signal, info)) = process.signals.take_deliverable() {
        let action = process.signals.action(signal);
        if in_syscall && !matches!(action.sa_handler, SIG_IGN | SIG_DFL) {
            settle_interrupted_syscall(frame, Some(action.sa_flags));
        }
        match action.sa_handler {
            SIG_IGN => {}
            SIG_DFL => match default_action(signal) {
                DefaultAction::Ignore => {}
                DefaultAction::Stop => {
                    crate::log_warn!("signal {signal} would stop the program; nothing could continue it, so it is ignored")
                }
                DefaultAction::Terminate | DefaultAction::Core => {
                    terminate(signal, format_args!("its action is the default"))
                }
            },
            _ => {
                if let Err(errno) =
                    push_frame(frame, process, platform, signal, &info, &Trap::default())
                {
                    terminate(
                        SIGSEGV,
                        format_args!(
                            "cannot deliver signal {signal}: no room for its frame below {:#x} ({})",
                            frame.rsp,
                            errno.name()
                        ),
                    );
                }
            }
        }
    }
}

/// Puts back what the signal frame saved (rt_sigreturn).
fn sigreturn(frame: &mut TrapFrame, process: &mut Process, platform: &mut KernelPlatform) {
    let restored = match sigframe::restore(platform, frame.rsp, frame.rflags) {
        Ok(restored) => restored,
        Err(_) => terminate(
            SIGSEGV,
            format_args!("rt_sigreturn: no readable signal frame at {:#x}", frame.rsp),
        ),
    };
    set_registers(frame, &restored.registers);
    process.signals.blocked = restored.mask & !(bit(9) | bit(19));
    // restore_altstack: the frame's uc_stack, unless the program is running on the current
    // alternate stack (EPERM there is ignored, as Linux does when it cannot change it).
    if !process.signals.alt_stack.contains(restored.registers.rsp) {
        let _ = pith_syscalls::signal::set_alt_stack(&mut process.signals, &restored.alt_stack);
    }
    let fpstate = restored.fpstate;
    let reader = |buffer: &mut [u8]| platform.read_user(fpstate, buffer).is_ok();
    let loaded = crate::fpu::restore(if fpstate == 0 { None } else { Some(reader) });
    if fpstate != 0 && !loaded {
        terminate(
            SIGSEGV,
            format_args!("rt_sigreturn: the FPU state at {fpstate:#x} is unreadable"),
        );
    }
}

/// The program's next timer deadline (monotonic ns; u64::MAX for none), kept where the
/// timer interrupt can see it without the process lock.
static ALARM: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(u64::MAX);

pub fn set_alarm_deadline(deadline: Option<u64>) {
    ALARM.store(
        deadline.unwrap_or(u64::MAX),
        core::sync::atomic::Ordering::Relaxed,
    );
}

pub fn alarm_deadline() -> Option<u64> {
    let deadline = ALARM.load(core::sync::atomic::Ordering::Relaxed);
    (deadline != u64::MAX).then_some(deadline)
}

/// The timer interrupted the program: raise the signals of its timers that are due and
/// deliver them, wake the threads whose wait is over, and preempt the running one if its
/// slice is over and another can run.
pub fn on_timer_in_program(frame: &mut TrapFrame) {
    // Frames sent before the program went on computing (virtio_net::flush_if_due).
    crate::virtio_net::flush_if_due();
    crate::process::try_with_process(|process, platform| {
        let now = crate::clock::monotonic_ns();
        let cpu_now = crate::clock::program_cpu_ns();
        let network = crate::virtio_net::watch_expired(now) && poll_network(process, platform);
        if pith_syscalls::time::expire_timers(process, now, cpu_now) {
            deliver_pending(frame, process, platform, false);
            // Another thread may be the one that takes the signal.
            crate::sched::wake_all();
        }
        set_alarm_deadline(process.timers.next_alarm(now, cpu_now));
        crate::sched::on_interrupt_in_program(process, network);
    });
}

/// A received frame interrupted the program (the device interrupts while the program runs
/// once a thread waits for the network, or once the watch found the program computing):
/// the stack takes it now, as Linux does on arrival, and threads waiting on sockets run
/// next.
pub fn on_network_in_program() {
    crate::process::try_with_process(|process, platform| {
        let network = poll_network(process, platform);
        crate::sched::on_interrupt_in_program(process, network);
    });
}

/// The stack's pass for a program that computes (`net::poll_while_computing`); what it sends
/// goes to the device at once, as the program will not halt soon. True if it took frames:
/// threads waiting on sockets then look again.
fn poll_network(process: &mut Process, platform: &mut KernelPlatform) -> bool {
    let taken = crate::virtio_net::frames_taken();
    let mut context = pith_syscalls::platform::Context { platform, process };
    if !pith_syscalls::net::poll_while_computing(&mut context) {
        return false;
    }
    crate::virtio_net::flush();
    crate::virtio_net::after_background_pass();
    crate::virtio_net::frames_taken() != taken
}

/// Input arrived while the program ran: if the host asked for signals (Ctrl-C), raise and
/// deliver them now; a thread waiting for input runs next.
pub fn on_host_signals_in_program(frame: &mut TrapFrame) {
    let signals = crate::console::take_host_signals();
    let taken = crate::process::try_with_process(|process, platform| {
        if signals != 0 {
            raise_all(process, signals);
            deliver_pending(frame, process, platform, false);
            crate::sched::wake_all();
        }
        crate::sched::on_interrupt_in_program(process, true);
    });
    if taken.is_none() && signals != 0 {
        // The process is busy (cannot happen with the program running); keep them for later.
        crate::console::requeue_host_signals(signals);
    }
}

/// A thread goes back to the program after a switch (preempted, or its first run): deliver the
/// signals it can take.
pub fn on_resume_in_program(frame: &mut TrapFrame) {
    crate::process::with_process(|process, platform| {
        deliver_pending(frame, process, platform, false);
    });
}

/// Raises each of `signals` (one bit each) for the process, as sent by kill from outside.
pub fn raise_all(process: &mut Process, mut signals: u64) {
    while signals != 0 {
        let signal = signals.trailing_zeros() as i32 + 1;
        signals &= signals - 1;
        process.signals.raise(
            signal,
            pith_syscalls::signal::user_siginfo(signal, pith_syscalls::signal::SI_USER, 0),
        );
    }
}

/// The slow way out of a syscall (PerCpu::exit_work was set).
pub fn on_syscall_exit(frame: &mut TrapFrame) {
    crate::process::with_process(|process, platform| {
        // The host's signals (Ctrl-C) that a read decoded during the syscall; another thread
        // may be the one to take them.
        let host_signals = crate::console::take_host_signals();
        if host_signals != 0 {
            raise_all(process, host_signals);
            crate::sched::wake_all();
        }
        // After rt_sigreturn the frame is the restored context, not a syscall to restart
        // (Linux sets orig_ax to -1 for this).
        let returned = process.signals.sigreturn_requested;
        if returned {
            process.signals.sigreturn_requested = false;
            sigreturn(frame, process, platform);
        }
        deliver_pending(frame, process, platform, !returned);
        if !returned {
            // No handler ran: an interrupted syscall simply runs again.
            settle_interrupted_syscall(frame, None);
        }
        // rt_sigsuspend ended without a handler running (the signal was ignored): its caller's
        // mask comes back now rather than at a sigreturn.
        if let Some(mask) = process.signals.saved_mask.take() {
            process.signals.blocked = mask;
        }
        crate::syscall::set_exit_work(process.signals.needs_exit_work());
    });
}

/// A fault in the app raises `signal`: true if its handler will run (the frame now points at
/// it); false if the default action applies (the caller reports and ends the program). As
/// Linux's force_sig_fault, a blocked or ignored fault signal is not survivable.
pub fn on_fault(frame: &mut TrapFrame, signal: i32, info: &Siginfo, trap: &Trap) -> bool {
    crate::process::try_with_process(|process, platform| {
        let action = process.signals.action(signal);
        let blocked = process.signals.blocked & bit(signal) != 0;
        if blocked || action.sa_handler == SIG_DFL || action.sa_handler == SIG_IGN {
            return false;
        }
        push_frame(frame, process, platform, signal, info, trap).is_ok()
    })
    .unwrap_or(false)
}
