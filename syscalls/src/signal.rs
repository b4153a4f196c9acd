//! Signal dispositions and the signal mask. Delivery comes with issue 3; until then the
//! state is recorded exactly, so what the app reads back is what it set.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::Context;
use crate::uapi::Sigaction;

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

/// Dispositions and mask.
pub struct SignalState {
    pub actions: [Sigaction; NSIG as usize],
    pub blocked: u64,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [Sigaction::default(); NSIG as usize],
            blocked: 0,
        }
    }
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
        context.process.signals.actions[index] = new;
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
}
