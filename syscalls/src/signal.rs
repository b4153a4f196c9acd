//! Signal dispositions and the signal mask. Delivery comes with issue 3; until then the
//! state is recorded exactly, so what the app reads back is what it set.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::Context;
use crate::uapi::{Sigaction, Siginfo, StackT};
use alloc::vec::Vec;

/// Signal numbers (arch/x86/include/uapi/asm/signal.h).
pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;
/// _NSIG: signals are numbered 1..=64.
pub const NSIG: i32 = 64;
/// `sizeof(sigset_t)` the kernel takes.
pub const SIGSET_SIZE: usize = 8;
/// rt_sigprocmask's `how` (include/uapi/asm-generic/signal-defs.h).
pub const SIG_BLOCK: i32 = 0;
pub const SIG_UNBLOCK: i32 = 1;
pub const SIG_SETMASK: i32 = 2;

/// The bit of signal `number` in a sigset.
pub const fn bit(number: i32) -> u64 {
    1 << (number - 1)
}
/// SIGKILL and SIGSTOP can be neither caught nor blocked.
const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// sa_flags bits (arch/x86/include/uapi/asm/signal.h).
pub const SA_SIGINFO: u64 = 0x0000_0004;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// Special handlers (include/uapi/asm-generic/signal-defs.h).
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
/// sigaltstack flags (include/uapi/linux/signal.h).
pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const SS_AUTODISARM: i32 = 1 << 31;
/// MINSIGSTKSZ (arch/x86/include/uapi/asm/signal.h).
pub const MINSIGSTKSZ: u64 = 2048;
/// si_code values (include/uapi/asm-generic/siginfo.h).
pub const SI_USER: i32 = 0;
pub const SI_TKILL: i32 = -6;

/// Signal numbers used by name below.
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;
pub const SIGALRM: i32 = 14;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;

/// What SIG_DFL does with a signal (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate and dump core (we report instead of dumping).
    Core,
    Ignore,
    /// Stop the process. Nothing could continue it in a VM that runs one program, so Pith
    /// ignores these, and logs it.
    Stop,
}

pub fn default_action(signal: i32) -> DefaultAction {
    match signal {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        SIGCHLD | SIGCONT | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// The alternate signal stack (sigaltstack(2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub base: u64,
    pub size: u64,
    /// SS_DISABLE, SS_AUTODISARM as set.
    pub flags: i32,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack {
            base: 0,
            size: 0,
            flags: SS_DISABLE,
        }
    }
}

impl AltStack {
    pub fn is_enabled(&self) -> bool {
        self.flags & SS_DISABLE == 0 && self.size != 0
    }
    /// Whether `sp` is on this stack (as sas_ss_flags() decides: base < sp <= base + size).
    pub fn contains(&self, sp: u64) -> bool {
        self.is_enabled() && sp > self.base && sp - self.base <= self.size
    }
}

/// Dispositions and process-directed pending signals, shared by the threads; and the running
/// thread's mask, thread-directed pending signals and alternate stack, which the scheduler
/// swaps at each switch (`crate::thread::ThreadState`).
pub struct SignalState {
    pub actions: [Sigaction; NSIG as usize],
    pub blocked: u64,
    /// Signals raised for the process but not yet delivered, one bit each (standard signals
    /// do not queue): any thread that does not block one takes it.
    pub pending: u64,
    /// The siginfo each pending signal will be delivered with.
    pub pending_info: [Siginfo; NSIG as usize],
    /// Signals raised for the running thread alone (tgkill), and their siginfo.
    pub thread_pending: u64,
    pub thread_info: Vec<Siginfo>,
    pub alt_stack: AltStack,
    /// rt_sigreturn ran: the kernel restores the saved context on the way out of the syscall.
    pub sigreturn_requested: bool,
    /// rt_sigsuspend's caller's mask: the handler's frame saves this one, so sigreturn puts it
    /// back (Linux's saved_sigmask).
    pub saved_mask: Option<u64>,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [Sigaction::default(); NSIG as usize],
            blocked: 0,
            pending: 0,
            pending_info: [Siginfo::default(); NSIG as usize],
            thread_pending: 0,
            thread_info: Vec::new(),
            alt_stack: AltStack::default(),
            sigreturn_requested: false,
            saved_mask: None,
        }
    }
}

impl SignalState {
    /// Marks `signal` pending with `info` (a second one before delivery merges with the first).
    pub fn raise(&mut self, signal: i32, info: Siginfo) {
        // An ignored signal that is not blocked is dropped when sent (kernel/signal.c
        // sig_ignored): it would wake waits for nothing.
        if self.blocked & bit(signal) == 0 && self.is_ignored(signal) {
            return;
        }
        if self.pending & bit(signal) == 0 {
            self.pending_info[(signal - 1) as usize] = info;
        }
        self.pending |= bit(signal);
    }

    /// Marks `signal` pending for the running thread alone (tgkill, tkill).
    pub fn raise_for_thread(&mut self, signal: i32, info: Siginfo) {
        if self.blocked & bit(signal) == 0 && self.is_ignored(signal) {
            return;
        }
        if self.thread_pending & bit(signal) == 0 {
            self.thread_info.push(info);
        }
        self.thread_pending |= bit(signal);
    }

    /// Pending for the running thread: its own and the process's.
    pub fn all_pending(&self) -> u64 {
        self.pending | self.thread_pending
    }

    /// Takes the lowest-numbered pending signal of `set`, the thread's own before the
    /// process's (as Linux's dequeue_signal).
    pub fn take(&mut self, set: u64) -> Option<(i32, Siginfo)> {
        let own = self.thread_pending & set;
        if own != 0 {
            let signal = own.trailing_zeros() as i32 + 1;
            self.thread_pending &= !bit(signal);
            let at = self
                .thread_info
                .iter()
                .position(|info| info.si_signo == signal);
            let info = at.map(|at| self.thread_info.swap_remove(at));
            return Some((signal, info.unwrap_or_default()));
        }
        let shared = self.pending & set;
        if shared == 0 {
            return None;
        }
        let signal = shared.trailing_zeros() as i32 + 1;
        self.pending &= !bit(signal);
        Some((signal, self.pending_info[(signal - 1) as usize]))
    }

    /// Whether delivering `signal` would do nothing: SIG_IGN, or SIG_DFL whose default is to
    /// ignore (or to stop, which Pith ignores).
    pub fn is_ignored(&self, signal: i32) -> bool {
        match self.action(signal).sa_handler {
            SIG_IGN => true,
            SIG_DFL => matches!(
                default_action(signal),
                DefaultAction::Ignore | DefaultAction::Stop
            ),
            _ => false,
        }
    }

    /// Pending signals that are not blocked.
    pub fn deliverable(&self) -> u64 {
        self.all_pending() & !self.blocked
    }

    /// Whether the way out of a syscall has work: a signal to deliver or a context to restore.
    pub fn needs_exit_work(&self) -> bool {
        self.deliverable() != 0 || self.sigreturn_requested
    }

    /// Takes the lowest-numbered deliverable signal, as Linux does (synchronous ones first is
    /// Linux's refinement; with one thread the faults are delivered directly, not queued).
    pub fn take_deliverable(&mut self) -> Option<(i32, Siginfo)> {
        self.take(!self.blocked)
    }

    pub fn action(&self, signal: i32) -> Sigaction {
        self.actions[(signal - 1) as usize]
    }

    /// Updates the mask and the disposition as delivering `signal` to its handler does, and
    /// returns the mask to restore when the handler returns.
    pub fn enter_handler(&mut self, signal: i32) -> u64 {
        let action = self.action(signal);
        let old_mask = self.saved_mask.take().unwrap_or(self.blocked);
        let mut mask = action.sa_mask;
        if action.sa_flags & SA_NODEFER == 0 {
            mask |= bit(signal);
        }
        self.blocked = (self.blocked | mask) & !UNBLOCKABLE;
        if action.sa_flags & SA_RESETHAND != 0 {
            self.actions[(signal - 1) as usize] = Sigaction {
                sa_handler: SIG_DFL,
                sa_flags: action.sa_flags & !SA_SIGINFO & !SA_RESETHAND,
                ..action
            };
        }
        old_mask
    }
}

/// The siginfo of a signal sent by kill(2) (SI_USER) or tkill/tgkill (SI_TKILL) from `pid`.
pub fn user_siginfo(signal: i32, code: i32, pid: i32) -> Siginfo {
    let mut info = Siginfo {
        si_signo: signal,
        si_code: code,
        ..Siginfo::default()
    };
    info.fields[0] = pid as u32 as u64; // si_pid; si_uid (0) is the high half
    info
}

/// The siginfo of a fault: `code` (SEGV_MAPERR, ...) at `address`.
pub fn fault_siginfo(signal: i32, code: i32, address: u64) -> Siginfo {
    let mut info = Siginfo {
        si_signo: signal,
        si_code: code,
        ..Siginfo::default()
    };
    info.fields[0] = address;
    info
}

fn check_signal(signal: i32) -> Result<(), Errno> {
    if (0..=NSIG).contains(&signal) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

fn send_to_process(context: &mut Context, signal: i32, info: Siginfo) -> Result<(), Errno> {
    check_signal(signal)?;
    if signal == 0 {
        return Ok(()); // only the existence and permission check
    }
    context.process.signals.raise(signal, info);
    context.platform.signal_state_changed();
    // A thread that does not block it takes it: they all look.
    context.platform.wake_all();
    Ok(())
}

/// Implements kill(2). The program is pid 1 and alone: 0, -1 and 1 all name it.
pub fn kill(context: &mut Context, pid: i32, signal: i32) -> Result<(), Errno> {
    let own = context.process.pid;
    if pid != 0 && pid != -1 && pid != own && pid != -own {
        check_signal(signal)?;
        return Err(Errno::ESRCH);
    }
    send_to_process(context, signal, user_siginfo(signal, SI_USER, own))
}

/// Implements tkill(2): the signal is for thread `tid` alone.
pub fn tkill(context: &mut Context, tid: i32, signal: i32) -> Result<(), Errno> {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_signal(signal)?;
    if !context.process.threads.exists(tid) {
        return Err(Errno::ESRCH);
    }
    if signal == 0 {
        return Ok(());
    }
    let info = user_siginfo(signal, SI_TKILL, context.process.pid);
    context.process.raise_for_thread(tid, signal, info);
    if tid == context.process.threads.current {
        context.platform.signal_state_changed();
    } else {
        context.platform.wake_thread(tid);
    }
    Ok(())
}

/// Implements tgkill(2).
pub fn tgkill(context: &mut Context, tgid: i32, tid: i32, signal: i32) -> Result<(), Errno> {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != context.process.pid {
        check_signal(signal)?;
        return Err(Errno::ESRCH);
    }
    tkill(context, tid, signal)
}

/// Implements rt_sigpending(2).
pub fn rt_sigpending(context: &mut Context, set: UserAddr, set_size: usize) -> Result<(), Errno> {
    if set_size > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = context.process.signals.all_pending() & context.process.signals.blocked;
    context
        .platform
        .write_user(set.0, &pending.to_le_bytes()[..set_size])
}

/// Implements sigaltstack(2).
pub fn sigaltstack(
    context: &mut Context,
    stack: UserAddr,
    old_stack: UserAddr,
) -> Result<(), Errno> {
    let current = context.process.signals.alt_stack;
    let sp = context.platform.user_stack_pointer();
    let on_stack = current.contains(sp);
    if !old_stack.is_null() {
        // do_sigaltstack: sas_ss_flags(sp) | the stored flags (SS_AUTODISARM).
        let flags = if on_stack {
            SS_ONSTACK | (current.flags & SS_AUTODISARM)
        } else if current.is_enabled() {
            current.flags & SS_AUTODISARM
        } else {
            SS_DISABLE
        };
        let old = StackT {
            ss_sp: current.base,
            ss_flags: flags,
            __pad: 0,
            ss_size: current.size,
        };
        context.write_struct(old_stack.0, &old)?;
    }
    if stack.is_null() {
        return Ok(());
    }
    let new: StackT = context.read_struct(stack.0)?;
    if on_stack {
        return Err(Errno::EPERM);
    }
    let mode = new.ss_flags & !SS_AUTODISARM;
    match mode {
        SS_DISABLE => context.process.signals.alt_stack = AltStack::default(),
        0 | SS_ONSTACK => {
            if new.ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            context.process.signals.alt_stack = AltStack {
                base: new.ss_sp,
                size: new.ss_size,
                flags: new.ss_flags & SS_AUTODISARM,
            };
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// Raises the signals the host asked for, as if sent by kill(2) from outside (si_pid 0).
pub fn raise_host_signals(context: &mut Context) {
    let mut signals = context.platform.take_host_signals();
    if signals == 0 {
        return;
    }
    while signals != 0 {
        let signal = signals.trailing_zeros() as i32 + 1;
        signals &= signals - 1;
        if (1..=NSIG).contains(&signal) {
            context
                .process
                .signals
                .raise(signal, user_siginfo(signal, SI_USER, 0));
        }
    }
    context.platform.signal_state_changed();
    // Another thread may be the one to take them.
    context.platform.wake_all();
}

/// One step of a blocking wait: raises what the host sent and what timers owe; EINTR when a
/// signal can be delivered; otherwise waits for an interrupt, at most until `deadline`.
/// The network is served around it, as Linux serves it whoever waits
/// (`net::serve_while_waiting`).
pub fn wait_step(
    context: &mut Context,
    deadline: u64,
    wake_on: crate::platform::WakeOn,
) -> Result<(), Errno> {
    let network = crate::net::serve_while_waiting(context);
    // Futex waiters keep their own deadline: a Go or Java program parks many, and each
    // would wake at every timer of the stack to find that another thread served it. A
    // thread waiting for events (or the network) serves the stack's timers.
    let deadline = match network {
        Some(at) if wake_on == crate::platform::WakeOn::AnyEvent => at.min(deadline),
        _ => deadline,
    };
    let result = wait_step_for_network(context, deadline, wake_on);
    crate::net::serve_while_waiting(context);
    result
}

/// `wait_step` for a wait on the network, whose caller passes the stack itself.
pub fn wait_step_for_network(
    context: &mut Context,
    deadline: u64,
    wake_on: crate::platform::WakeOn,
) -> Result<(), Errno> {
    raise_host_signals(context);
    crate::time::expire_and_rearm(context);
    let now = context
        .platform
        .now(crate::platform::MachineClock::Monotonic);
    if context.process.signals.deliverable() != 0 {
        return Err(Errno::EINTR);
    }
    let wake = context
        .process
        .timers
        .next_deadline()
        .map_or(deadline, |timer| timer.min(deadline));
    if now < wake {
        context.platform.wait_until(context.process, wake, wake_on);
    }
    Ok(())
}

/// Implements rt_sigtimedwait(2): takes a pending signal of `set` (waiting for one, up to the
/// timeout), and returns its number and siginfo; EAGAIN at the timeout; EINTR if another
/// signal's handler must run first.
pub fn rt_sigtimedwait(
    context: &mut Context,
    set: UserAddr,
    info: UserAddr,
    timeout: UserAddr,
    set_size: usize,
) -> Result<i32, Errno> {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let wanted: u64 = context.read_struct::<u64>(set.0)? & !UNBLOCKABLE;
    let now = context
        .platform
        .now(crate::platform::MachineClock::Monotonic);
    let deadline = if timeout.is_null() {
        u64::MAX
    } else {
        let limit: crate::uapi::Timespec = context.read_struct(timeout.0)?;
        if limit.tv_sec < 0 || !(0..1_000_000_000).contains(&limit.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        now.saturating_add((limit.tv_sec as u64).saturating_mul(1_000_000_000))
            .saturating_add(limit.tv_nsec as u64)
    };
    loop {
        raise_host_signals(context);
        crate::time::expire_and_rearm(context);
        let now = context
            .platform
            .now(crate::platform::MachineClock::Monotonic);
        if let Some((signal, siginfo)) = context.process.signals.take(wanted) {
            if !info.is_null() {
                context.write_struct(info.0, &siginfo)?;
            }
            return Ok(signal);
        }
        if context.process.signals.deliverable() & !wanted != 0 {
            return Err(Errno::EINTR);
        }
        if now >= deadline {
            return Err(Errno::EAGAIN);
        }
        let wake = context
            .process
            .timers
            .next_deadline()
            .map_or(deadline, |timer| timer.min(deadline));
        // The network is served around this wait too (`net::serve_while_waiting`).
        let network = crate::net::serve_while_waiting(context);
        let wake = network.map_or(wake, |at| at.min(wake));
        context
            .platform
            .wait_until(context.process, wake, crate::platform::WakeOn::AnyEvent);
        crate::net::serve_while_waiting(context);
    }
}

/// Implements pause(2): waits for a signal whose handler runs (EINTR after it returns).
pub fn pause(context: &mut Context) -> Result<(), Errno> {
    wait_for_signal(context)
}

fn wait_for_signal(context: &mut Context) -> Result<(), Errno> {
    loop {
        wait_step(context, u64::MAX, crate::platform::WakeOn::AnyEvent)?;
    }
}

/// Implements rt_sigsuspend(2): waits with `set` as the mask; the handler's frame saves the
/// caller's mask, which sigreturn puts back.
pub fn rt_sigsuspend(context: &mut Context, set: UserAddr, set_size: usize) -> Result<(), Errno> {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = context.read_struct(set.0)?;
    let signals = &mut context.process.signals;
    signals.saved_mask = Some(signals.blocked);
    signals.blocked = mask & !UNBLOCKABLE;
    context.platform.signal_state_changed();
    wait_for_signal(context)
}

/// Sets the alternate stack from a `stack_t`, as sigaltstack and rt_sigreturn's
/// restore_altstack do; the caller checked that the program is not running on it.
pub fn set_alt_stack(signals: &mut SignalState, stack: &StackT) -> Result<(), Errno> {
    match stack.ss_flags & !SS_AUTODISARM {
        SS_DISABLE => signals.alt_stack = AltStack::default(),
        0 | SS_ONSTACK => {
            if stack.ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            signals.alt_stack = AltStack {
                base: stack.ss_sp,
                size: stack.ss_size,
                flags: stack.ss_flags & SS_AUTODISARM,
            };
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// Implements rt_sigreturn(2): the kernel restores the context the signal frame saved on its
/// way out of this syscall (it needs the app's stack pointer and all its registers, which only
/// the entry path has); see `sigframe::restore`.
pub fn rt_sigreturn(context: &mut Context) -> Result<(), Errno> {
    context.process.signals.sigreturn_requested = true;
    context.platform.signal_state_changed();
    Ok(())
}

/// Implements rt_sigaction(2).
pub fn rt_sigaction(
    context: &mut Context,
    signal: i32,
    action: UserAddr,
    old_action: UserAddr,
    set_size: usize,
) -> Result<(), Errno> {
    if set_size != SIGSET_SIZE || !(1..=NSIG).contains(&signal) {
        return Err(Errno::EINVAL);
    }
    let new = if action.is_null() {
        None
    } else {
        Some(context.read_struct::<Sigaction>(action.0)?)
    };
    if new.is_some() && (signal == SIGKILL || signal == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let index = (signal - 1) as usize;
    if !old_action.is_null() {
        let old = context.process.signals.actions[index];
        context.write_struct(old_action.0, &old)?;
    }
    if let Some(mut new) = new {
        new.sa_mask &= !UNBLOCKABLE;
        let signals = &mut context.process.signals;
        signals.actions[index] = new;
        // A signal that is now ignored is flushed from pending (do_sigaction).
        if signals.is_ignored(signal) {
            signals.pending &= !bit(signal);
        }
    }
    Ok(())
}

/// Implements rt_sigprocmask(2).
pub fn rt_sigprocmask(
    context: &mut Context,
    how: i32,
    set: UserAddr,
    old_set: UserAddr,
    set_size: usize,
) -> Result<(), Errno> {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if set.is_null() {
        None
    } else {
        Some(context.read_struct::<u64>(set.0)?)
    };
    if new.is_some() && !matches!(how, SIG_BLOCK | SIG_UNBLOCK | SIG_SETMASK) {
        return Err(Errno::EINVAL);
    }
    let old = context.process.signals.blocked;
    if !old_set.is_null() {
        context.write_struct(old_set.0, &old)?;
    }
    if let Some(new) = new {
        let blocked = match how {
            SIG_BLOCK => old | new,
            SIG_UNBLOCK => old & !new,
            _ => new,
        };
        context.process.signals.blocked = blocked & !UNBLOCKABLE;
        context.platform.signal_state_changed();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn sigaction_round_trips_and_protects_sigkill() {
        let mut machine = TestMachine::new();
        let action = machine.scratch(32);
        machine.write_u64(action, 0x40_1000); // handler
        machine.write_u64(action + 8, 0x0400_0004); // SA_RESTORER | SA_SIGINFO
        machine.write_u64(action + 24, bit(SIGKILL) | bit(2));
        assert_eq!(machine.call(13, [2, action, 0, 8, 0, 0]), Ok(0));
        let old = machine.scratch(32);
        assert_eq!(machine.call(13, [2, 0, old, 8, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(old), 0x40_1000);
        assert_eq!(
            machine.read_u64(old + 24),
            bit(2),
            "SIGKILL is dropped from sa_mask"
        );
        assert_eq!(
            machine.call(13, [SIGKILL as u64, action, 0, 8, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(13, [SIGKILL as u64, 0, old, 8, 0, 0]),
            Ok(0),
            "reading SIGKILL's is fine"
        );
        assert_eq!(machine.call(13, [65, 0, old, 8, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(machine.call(13, [2, 0, old, 16, 0, 0]), Err(Errno::EINVAL));
    }

    #[test]
    fn sigprocmask_blocks_unblocks_and_never_blocks_sigkill() {
        let mut machine = TestMachine::new();
        let set = machine.scratch(8);
        let old = machine.scratch(8);
        machine.write_u64(set, bit(2) | bit(SIGKILL) | bit(15));
        assert_eq!(machine.call(14, [SIG_BLOCK as u64, set, 0, 8, 0, 0]), Ok(0));
        machine.write_u64(set, bit(15));
        assert_eq!(
            machine.call(14, [SIG_UNBLOCK as u64, set, old, 8, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(old), bit(2) | bit(15));
        assert_eq!(
            machine.call(14, [SIG_SETMASK as u64, 0, old, 8, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.read_u64(old), bit(2));
        assert_eq!(machine.call(14, [7, set, 0, 8, 0, 0]), Err(Errno::EINVAL));
    }
    #[test]
    fn kill_reaches_only_the_program_itself() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(62, [1, 10, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(62, [0, 12, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.signals.pending, bit(10) | bit(12));
        assert_eq!(machine.call(62, [42, 10, 0, 0, 0, 0]), Err(Errno::ESRCH));
        assert_eq!(machine.call(62, [1, 65, 0, 0, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(
            machine.call(62, [1, 0, 0, 0, 0, 0]),
            Ok(0),
            "signal 0 only checks"
        );
        assert_eq!(machine.call(200, [1, 14, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.process.signals.thread_pending,
            bit(14),
            "for the thread alone"
        );
        assert_eq!(
            machine.process.signals.take(bit(14)).unwrap().1.si_code,
            SI_TKILL
        );
        assert_eq!(
            machine.call(234, [1, 2, 14, 0, 0, 0]),
            Err(Errno::ESRCH),
            "no thread 2"
        );
        assert_eq!(machine.call(234, [0, 1, 14, 0, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(
            machine.process.signals.take_deliverable().map(|(s, _)| s),
            Some(10),
            "lowest first"
        );
    }

    #[test]
    fn a_handler_blocks_its_signal_and_mask_unless_nodefer() {
        let mut state = SignalState::default();
        state.actions[9] = Sigaction {
            sa_handler: 0x1000,
            sa_flags: SA_RESTORER,
            sa_restorer: 0x2000,
            sa_mask: bit(12),
        };
        let old = state.enter_handler(10);
        assert_eq!((old, state.blocked), (0, bit(10) | bit(12)));
        state.blocked = 0;
        state.actions[9].sa_flags |= SA_NODEFER | SA_RESETHAND | SA_SIGINFO;
        state.enter_handler(10);
        assert_eq!(state.blocked, bit(12));
        assert_eq!(state.action(10).sa_handler, SIG_DFL, "SA_RESETHAND");
        assert_eq!(state.action(10).sa_flags & (SA_SIGINFO | SA_RESETHAND), 0);
    }

    #[test]
    fn sigaltstack_checks_its_arguments() {
        let mut machine = TestMachine::new();
        let stack = machine.scratch(24);
        machine.write_u64(stack, 0x7000_0000);
        machine.write_u64(stack + 8, 0);
        machine.write_u64(stack + 16, 1024);
        assert_eq!(
            machine.call(131, [stack, 0, 0, 0, 0, 0]),
            Err(Errno::ENOMEM),
            "below MINSIGSTKSZ"
        );
        machine.write_u64(stack + 16, 65536);
        machine.write_u64(stack + 8, 7);
        assert_eq!(
            machine.call(131, [stack, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL),
            "bad flags"
        );
        machine.write_u64(stack + 8, 0);
        assert_eq!(machine.call(131, [stack, 0, 0, 0, 0, 0]), Ok(0));
        let old = machine.scratch(24);
        assert_eq!(machine.call(131, [0, old, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            (machine.read_u64(old), machine.read_u64(old + 16)),
            (0x7000_0000, 65536)
        );
        machine.platform.user_rsp = 0x7000_8000; // running on it: it cannot change
        assert_eq!(machine.call(131, [stack, 0, 0, 0, 0, 0]), Err(Errno::EPERM));
        assert_eq!(machine.call(131, [0, old, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(old + 8) as i32, SS_ONSTACK);
    }

    #[test]
    fn ignored_signals_are_dropped_unless_blocked() {
        let mut machine = TestMachine::new();
        let ignore = machine.scratch(32);
        machine.write_u64(ignore, SIG_IGN);
        machine.call(13, [10, ignore, 0, 8, 0, 0]).unwrap();
        machine.call(62, [1, 10, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            machine.process.signals.pending, 0,
            "ignored and unblocked: dropped"
        );
        machine.call(62, [1, SIGCHLD as u64, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            machine.process.signals.pending, 0,
            "SIG_DFL whose default is to ignore"
        );
        machine.process.signals.blocked = bit(10);
        machine.call(62, [1, 10, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            machine.process.signals.pending,
            bit(10),
            "blocked: kept, as Linux does"
        );
        machine.process.signals.blocked = 0;
        machine.process.signals.actions[11] = Sigaction::default();
        machine.process.signals.blocked = bit(12);
        machine.call(62, [1, 12, 0, 0, 0, 0]).unwrap();
        machine.call(13, [12, ignore, 0, 8, 0, 0]).unwrap();
        assert_eq!(
            machine.process.signals.pending & bit(12),
            0,
            "made ignored: flushed"
        );
    }
}
