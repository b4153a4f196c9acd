//! The signal frame: what delivering a signal to a handler writes on the app's stack, and
//! what rt_sigreturn reads back. Mirrors arch/x86/kernel/signal.c (get_sigframe,
//! x64_setup_rt_frame, restore_sigcontext) for the layout the app and its C library expect.

use crate::errno::Errno;
use crate::mm::TASK_SIZE;
use crate::platform::Platform;
use crate::signal::{AltStack, SA_ONSTACK, SA_RESTORER, SS_DISABLE};
use crate::uapi::{RtSigframe, Sigaction, Sigcontext, Siginfo, StackT, Ucontext};
use zerocopy::FromZeros;

/// uc_flags bits (arch/x86/include/uapi/asm/ucontext.h).
pub const UC_FP_XSTATE: u64 = 0x1;
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;
/// The red zone below the app's stack pointer that the frame must not touch.
const RED_ZONE: u64 = 128;
/// RFLAGS bits (Intel SDM vol. 1, 3.4.3).
const FLAG_TF: u64 = 1 << 8;
const FLAG_DF: u64 = 1 << 10;
const FLAG_RF: u64 = 1 << 16;
/// The flags rt_sigreturn takes from the frame (FIX_EFLAGS in arch/x86/kernel/signal.c):
/// CF PF AF ZF SF TF DF OF AC RF.
const SIGRETURN_FLAGS: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000 | 0x1_0000;

/// The app's general registers where the signal interrupts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// What the CPU said about a fault, for the sigcontext (trapno, err, cr2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trap {
    pub number: u64,
    pub error_code: u64,
    pub address: u64,
}

/// How the kernel saves FPU state: its size and whether it is an XSAVE image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpuFormat {
    pub size: u64,
    pub xsave: bool,
}

/// Where a signal frame goes and what it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The handler's rsp: the frame, starting with its return address.
    pub frame_address: u64,
    pub frame: RtSigframe,
    /// Where the kernel writes the FPU image (64-byte aligned, above the frame).
    pub fpstate_address: u64,
    /// The registers the handler starts with.
    pub registers: Registers,
}

fn sigcontext_of(
    registers: &Registers,
    trap: &Trap,
    old_mask: u64,
    fpstate: u64,
    selectors: (u16, u16),
) -> Sigcontext {
    let r = registers;
    Sigcontext {
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rdi: r.rdi,
        rsi: r.rsi,
        rbp: r.rbp,
        rbx: r.rbx,
        rdx: r.rdx,
        rax: r.rax,
        rcx: r.rcx,
        rsp: r.rsp,
        rip: r.rip,
        eflags: r.rflags,
        cs: selectors.0,
        ss: selectors.1,
        err: trap.error_code,
        trapno: trap.number,
        oldmask: old_mask,
        cr2: trap.address,
        fpstate,
        ..Sigcontext::default()
    }
}

/// Plans delivering `signal` to `action`'s handler. `selectors` are the code and stack
/// selectors the app runs with (recorded in the sigcontext, as Linux records its own).
#[allow(clippy::too_many_arguments)] // each is one fact about the delivery
pub fn plan(
    registers: &Registers,
    signal: i32,
    info: &Siginfo,
    action: &Sigaction,
    old_mask: u64,
    alt_stack: &AltStack,
    trap: &Trap,
    fpu: FpuFormat,
    selectors: (u16, u16),
) -> Result<Delivery, Errno> {
    // x86_64 Linux needs SA_RESTORER: without it there is nothing for the handler to return to.
    // Addresses outside the app's half would fault in the kernel's iretq: refuse them here.
    if action.sa_flags & SA_RESTORER == 0
        || action.sa_handler >= TASK_SIZE
        || action.sa_restorer >= TASK_SIZE
    {
        return Err(Errno::EFAULT);
    }
    let on_alt_stack = alt_stack.contains(registers.rsp);
    let mut sp = registers.rsp.checked_sub(RED_ZONE).ok_or(Errno::EFAULT)?;
    if action.sa_flags & SA_ONSTACK != 0 && alt_stack.is_enabled() && !on_alt_stack {
        sp = alt_stack
            .base
            .checked_add(alt_stack.size)
            .ok_or(Errno::EFAULT)?;
    }
    let fpstate = sp.checked_sub(fpu.size).ok_or(Errno::EFAULT)? & !63;
    let frame_size = core::mem::size_of::<RtSigframe>() as u64;
    let frame_address = (fpstate.checked_sub(frame_size).ok_or(Errno::EFAULT)? & !15)
        .checked_sub(8)
        .ok_or(Errno::EFAULT)?;

    // __save_altstack: the stored flags (SS_AUTODISARM or 0), or SS_DISABLE.
    let stack_flags = if alt_stack.is_enabled() {
        alt_stack.flags
    } else {
        SS_DISABLE
    };
    let uc_flags =
        UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if fpu.xsave { UC_FP_XSTATE } else { 0 };
    let frame = RtSigframe {
        pretcode: action.sa_restorer,
        uc: Ucontext {
            uc_flags,
            uc_link: 0,
            uc_stack: StackT {
                ss_sp: alt_stack.base,
                ss_flags: stack_flags,
                __pad: 0,
                ss_size: alt_stack.size,
            },
            uc_mcontext: sigcontext_of(registers, trap, old_mask, fpstate, selectors),
            uc_sigmask: old_mask,
        },
        info: *info,
    };
    let handler = Registers {
        rdi: signal as u64,
        rsi: frame_address + core::mem::offset_of!(RtSigframe, info) as u64,
        rdx: frame_address + core::mem::offset_of!(RtSigframe, uc) as u64,
        rax: 0,
        rsp: frame_address,
        rip: action.sa_handler,
        rflags: registers.rflags & !(FLAG_DF | FLAG_TF | FLAG_RF),
        ..*registers
    };
    Ok(Delivery {
        frame_address,
        frame,
        fpstate_address: fpstate,
        registers: handler,
    })
}

/// What rt_sigreturn puts back.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    pub registers: Registers,
    /// The FPU image to reload, 0 for none (reset the FPU).
    pub fpstate: u64,
    pub uc_flags: u64,
    pub mask: u64,
    pub alt_stack: StackT,
}

/// Reads the frame rt_sigreturn was called from: `user_rsp` is the app's stack pointer at the
/// syscall, just past the frame's return address (the handler's `ret` popped it).
pub fn restore(
    platform: &dyn Platform,
    user_rsp: u64,
    current_rflags: u64,
) -> Result<Restored, Errno> {
    let mut uc = Ucontext::new_zeroed();
    platform.read_user(user_rsp, zerocopy::IntoBytes::as_mut_bytes(&mut uc))?;
    let m = &uc.uc_mcontext;
    let registers = Registers {
        r8: m.r8,
        r9: m.r9,
        r10: m.r10,
        r11: m.r11,
        r12: m.r12,
        r13: m.r13,
        r14: m.r14,
        r15: m.r15,
        rdi: m.rdi,
        rsi: m.rsi,
        rbp: m.rbp,
        rbx: m.rbx,
        rdx: m.rdx,
        rax: m.rax,
        rcx: m.rcx,
        rsp: m.rsp,
        rip: m.rip,
        rflags: (current_rflags & !SIGRETURN_FLAGS) | (m.eflags & SIGRETURN_FLAGS),
    };
    // A non-canonical rip or rsp would fault in the kernel's iretq: a bad frame (SIGSEGV).
    if registers.rip >= TASK_SIZE || registers.rsp >= TASK_SIZE {
        return Err(Errno::EFAULT);
    }
    Ok(Restored {
        registers,
        fpstate: m.fpstate,
        uc_flags: uc.uc_flags,
        mask: uc.uc_sigmask,
        alt_stack: uc.uc_stack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{SA_SIGINFO, SS_AUTODISARM};
    use crate::testing::TestMachine;
    use zerocopy::IntoBytes;

    const FPU: FpuFormat = FpuFormat {
        size: 832,
        xsave: true,
    };

    fn interrupted() -> Registers {
        Registers {
            rsp: 0x7fff_0000_1008,
            rip: 0x40_1234,
            rbx: 7,
            rflags: 0x246 | FLAG_DF,
            ..Registers::default()
        }
    }

    fn handler_action(flags: u64) -> Sigaction {
        Sigaction {
            sa_handler: 0x40_2000,
            sa_flags: flags | SA_RESTORER | SA_SIGINFO,
            sa_restorer: 0x40_3000,
            sa_mask: 0,
        }
    }

    #[test]
    fn the_frame_sits_below_the_red_zone_and_the_fpu_state_aligned() {
        let info = crate::signal::fault_siginfo(11, 1, 0xdead);
        let trap = Trap {
            number: 14,
            error_code: 6,
            address: 0xdead,
        };
        let delivery = plan(
            &interrupted(),
            11,
            &info,
            &handler_action(0),
            0x10,
            &AltStack::default(),
            &trap,
            FPU,
            (8, 16),
        )
        .unwrap();
        let sp = 0x7fff_0000_1008 - 128;
        assert_eq!(delivery.fpstate_address, (sp - 832) & !63);
        assert!(
            delivery.fpstate_address + 832 <= sp,
            "the FPU image stays out of the red zone"
        );
        assert_eq!(
            delivery.frame_address % 16,
            8,
            "as after a call: (rsp + 8) % 16 == 0"
        );
        assert!(delivery.frame_address + 440 <= delivery.fpstate_address);
        let r = delivery.registers;
        assert_eq!(
            (r.rip, r.rsp, r.rdi),
            (0x40_2000, delivery.frame_address, 11)
        );
        assert_eq!(
            (r.rsi, r.rdx),
            (delivery.frame_address + 312, delivery.frame_address + 8)
        );
        assert_eq!(r.rflags & FLAG_DF, 0, "the handler starts with DF clear");
        assert_eq!(r.rbx, 7, "other registers pass through");
        let uc = &delivery.frame.uc;
        assert_eq!(delivery.frame.pretcode, 0x40_3000);
        assert_eq!(
            (uc.uc_mcontext.rip, uc.uc_mcontext.rsp, uc.uc_mcontext.cr2),
            (0x40_1234, 0x7fff_0000_1008, 0xdead)
        );
        assert_eq!((uc.uc_mcontext.trapno, uc.uc_mcontext.err), (14, 6));
        assert_eq!(uc.uc_mcontext.fpstate, delivery.fpstate_address);
        assert_eq!(uc.uc_sigmask, 0x10);
        assert_eq!(uc.uc_stack.ss_flags, SS_DISABLE);
        assert_eq!(
            uc.uc_flags,
            UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
        );
        assert_eq!(delivery.frame.info.si_signo, 11);
    }

    #[test]
    fn sa_onstack_switches_to_the_alternate_stack_once() {
        let alt = AltStack {
            base: 0x1000_0000,
            size: 0x4000,
            flags: 0,
        };
        let info = Siginfo::default();
        let trap = Trap::default();
        let delivery = plan(
            &interrupted(),
            11,
            &info,
            &handler_action(SA_ONSTACK),
            0,
            &alt,
            &trap,
            FPU,
            (8, 16),
        )
        .unwrap();
        assert!(
            delivery.frame_address > alt.base
                && delivery.fpstate_address + 832 <= alt.base + alt.size
        );
        assert_eq!(delivery.frame.uc.uc_stack.ss_flags, 0);
        // Already on the alternate stack: the next frame goes below, on the same stack.
        let nested = Registers {
            rsp: delivery.frame_address,
            ..interrupted()
        };
        let again = plan(
            &nested,
            11,
            &info,
            &handler_action(SA_ONSTACK),
            0,
            &alt,
            &trap,
            FPU,
            (8, 16),
        )
        .unwrap();
        assert!(again.frame_address < delivery.frame_address);
        assert_eq!(
            again.frame.uc.uc_stack.ss_flags, 0,
            "the stored flags, not SS_ONSTACK"
        );
        // Without SA_ONSTACK the app's stack is used.
        let plain = plan(
            &interrupted(),
            11,
            &info,
            &handler_action(0),
            0,
            &alt,
            &trap,
            FPU,
            (8, 16),
        )
        .unwrap();
        assert!(plain.frame_address > alt.base + alt.size);
        let autodisarm = AltStack {
            flags: SS_AUTODISARM,
            ..alt
        };
        let armed = plan(
            &interrupted(),
            11,
            &info,
            &handler_action(SA_ONSTACK),
            0,
            &autodisarm,
            &trap,
            FPU,
            (8, 16),
        )
        .unwrap();
        assert_eq!(armed.frame.uc.uc_stack.ss_flags, SS_AUTODISARM);
    }

    #[test]
    fn without_sa_restorer_there_is_no_frame() {
        let mut action = handler_action(0);
        action.sa_flags &= !SA_RESTORER;
        let result = plan(
            &interrupted(),
            10,
            &Siginfo::default(),
            &action,
            0,
            &AltStack::default(),
            &Trap::default(),
            FPU,
            (8, 16),
        );
        assert_eq!(result.unwrap_err(), Errno::EFAULT);
    }

    #[test]
    fn sigreturn_reads_back_what_delivery_wrote() {
        let mut machine = TestMachine::new();
        let stack = machine.scratch(8192);
        // CF PF ZF SF set, and IF clear: only the arithmetic flags may come from the frame.
        let registers = Registers {
            rsp: stack + 8000,
            rip: 0x40_1234,
            rax: 99,
            r15: 15,
            rflags: 0xc3,
            ..Registers::default()
        };
        let delivery = plan(
            &registers,
            10,
            &Siginfo::default(),
            &handler_action(0),
            0x200,
            &AltStack::default(),
            &Trap::default(),
            FPU,
            (8, 16),
        )
        .unwrap();
        machine
            .platform
            .write_user(delivery.frame_address, delivery.frame.as_bytes())
            .unwrap();
        // The handler returns: `ret` pops pretcode, the restorer calls rt_sigreturn.
        let restored = restore(&machine.platform, delivery.frame_address + 8, 0x202).unwrap();
        assert_eq!(restored.registers.rip, 0x40_1234);
        assert_eq!(
            (
                restored.registers.rax,
                restored.registers.r15,
                restored.registers.rsp
            ),
            (99, 15, stack + 8000)
        );
        assert_eq!(
            restored.registers.rflags, 0x2c3,
            "IF comes from the kernel, the arithmetic flags from the frame"
        );
        assert_eq!(restored.mask, 0x200);
        assert_eq!(restored.fpstate, delivery.fpstate_address);
        assert_eq!(
            restore(&machine.platform, 0x10, 0).unwrap_err(),
            Errno::EFAULT
        );
    }
}
