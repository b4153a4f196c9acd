//! The `syscall` instruction's entry: LSTAR points here, we switch to the kernel stack, call
//! the handler through the table, and return with `iretq` (never `sysret`: the app runs in
//! ring 0, and sysret would drop it to ring 3).

use crate::gdt::{KERNEL_CODE, KERNEL_DATA};
use core::arch::global_asm;
use x86_64::registers::model_specific::{LStar, Msr, SFMask};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

/// Per-CPU data, reached through the GS base. Offsets are used by the entry assembly.
#[repr(C)]
pub struct PerCpu {
    /// gs:[0]: top of the stack syscalls run on.
    pub kernel_stack_top: u64,
    /// gs:[8]: the app's rsp while a syscall runs.
    pub user_rsp: u64,
    /// gs:[16]: non-zero when the way out of the syscall has work (a signal to deliver, a
    /// context to restore): the entry then takes its slow path.
    pub exit_work: u64,
    /// gs:[24]: non-zero when the interrupt being handled preempts the program: its way out
    /// switches threads (sched::preempt_switch).
    pub preempt: u64,
}

const SYSCALL_STACK_SIZE: usize = 64 * 1024;

#[repr(align(16))]
struct Stack {
    _bytes: [u8; SYSCALL_STACK_SIZE],
}

static mut SYSCALL_STACK: Stack = Stack {
    _bytes: [0; SYSCALL_STACK_SIZE],
};
static mut BOOT_CPU: PerCpu = PerCpu {
    kernel_stack_top: 0,
    user_rsp: 0,
    exit_work: 0,
    preempt: 0,
};

/// The boot CPU's syscall stack, [bottom, top): the first thread's kernel stack.
pub fn boot_stack() -> (u64, u64) {
    let bottom = core::ptr::addr_of!(SYSCALL_STACK) as u64;
    (bottom, bottom + SYSCALL_STACK_SIZE as u64)
}

/// What the entry saves of the app's registers, lowest address first: the six argument
/// registers in the syscall ABI's order (so the handler reads them in place as `[u64; 6]`),
/// the syscall number, and an `iretq` frame.
///
/// The callee-saved registers (rbx, rbp, r12-r15) are not saved here: the Rust code the entry
/// calls preserves them, as the C ABI requires. clone and clone3, whose child starts from the
/// parent's whole register state (Go's runtime passes values in r12 and r13), take an entry
/// path that saves them all (`syscall_clone_entry`).
#[repr(C)]
#[derive(Debug)]
pub struct SyscallFrame {
    /// rdi, rsi, rdx, r10, r8, r9.
    pub args: [u64; 6],
    /// rax at the syscall instruction: the syscall number.
    pub number: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(
    core::mem::size_of::<SyscallFrame>().is_multiple_of(16),
    "the call into Rust must be 16-byte aligned"
);

global_asm!(
    r#"
    .section .text
    .global syscall_entry
    .balign 16
syscall_entry:
    mov gs:[8], rsp
    mov rsp, gs:[0]
    cmp rax, 56             /* clone */
    je syscall_clone_entry
    cmp rax, 435            /* clone3 */
    je syscall_clone_entry
    push {data}             /* ss */
    push qword ptr gs:[8]   /* rsp */
    push r11                /* rflags */
    push {code}             /* cs */
    push rcx                /* rip */
    push rax                /* the syscall number */
    push r9
    push r8
    push r10
    push rdx
    push rsi
    push rdi
    mov rdi, rsp            /* 12 words pushed: rsp is 16-byte aligned for the call */
    call syscall_dispatch   /* returns the result in rax */
    cmp qword ptr gs:[16], 0
    jne syscall_exit_slow
    pop rdi
    pop rsi
    pop rdx
    pop r10
    pop r8
    pop r9
    add rsp, 8              /* the syscall number */
    /* Linux leaves rcx = rip and r11 = rflags after a syscall. */
    mov rcx, [rsp]
    mov r11, [rsp + 16]
    iretq

    /* The way out with work: rebuild the app's whole register state as an exception frame
     * (the callee-saved registers still hold the app's values: the Rust code preserved them),
     * let syscall_exit_work rewrite it (deliver signals, restore a sigreturn context), and
     * return to whatever it says. */
syscall_exit_slow:
    pop rdi
    pop rsi
    pop rdx
    pop r10
    pop r8
    pop r9
    pop rcx                 /* the syscall number */
    push 0                  /* error code */
    push rcx                /* "vector": the syscall number, to restart it */
    mov rcx, [rsp + 16]     /* rip */
    mov r11, [rsp + 32]     /* rflags */
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    call syscall_exit_work
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    /* clone and clone3: the whole register state as an exception frame (the vector is the
     * syscall number), so the child can start from a copy of it. */
syscall_clone_entry:
    push {data}             /* ss */
    push qword ptr gs:[8]   /* rsp */
    push r11                /* rflags */
    push {code}             /* cs */
    push rcx                /* rip */
    push 0                  /* error code */
    push rax                /* "vector": the syscall number */
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    call syscall_clone_dispatch
    jmp pith_return_to_frame
    "#,
    code = const KERNEL_CODE as u64,
    data = const KERNEL_DATA as u64,
);

extern "C" {
    fn syscall_entry();
}

const IA32_GS_BASE: u32 = 0xc000_0101;
const IA32_STAR: u32 = 0xc000_0081;

pub fn init() {
    // SAFETY: BOOT_CPU and SYSCALL_STACK are used only by this CPU; we take raw addresses.
    let per_cpu = unsafe {
        let stack_top = core::ptr::addr_of_mut!(SYSCALL_STACK) as u64 + SYSCALL_STACK_SIZE as u64;
        (*core::ptr::addr_of_mut!(BOOT_CPU)).kernel_stack_top = stack_top;
        core::ptr::addr_of_mut!(BOOT_CPU) as u64
    };
    // SAFETY: GS base points at this CPU's PerCpu for the life of the kernel; STAR's selector
    // fields are the kernel's code (and data at +8) selectors, which `syscall` loads;
    // LSTAR is the entry above; SFMASK clears IF, TF, DF, AC and NT on entry, so the handler
    // runs with interrupts off and the direction flag clear.
    unsafe {
        Msr::new(IA32_GS_BASE).write(per_cpu);
        Msr::new(IA32_STAR).write((KERNEL_CODE as u64) << 32 | (KERNEL_CODE as u64) << 48);
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK,
        );
    }
}

#[no_mangle]
extern "C" fn syscall_dispatch(frame: &SyscallFrame) -> u64 {
    let result = crate::process::run_syscall(frame.number, &frame.args);
    // Back to the program: the network watch a pass of the stack started goes on the timer.
    crate::virtio_net::time_watch();
    result
}

/// The app's stack pointer at the syscall being handled.
pub fn user_rsp() -> u64 {
    let rsp: u64;
    // SAFETY: GS points at this CPU's PerCpu (set in init); offset 8 is user_rsp.
    unsafe {
        core::arch::asm!("mov {}, gs:[8]", out(reg) rsp, options(nostack, readonly, preserves_flags))
    };
    rsp
}

/// Says whether the way out of this syscall has work (see PerCpu::exit_work).
pub fn set_exit_work(work: bool) {
    // SAFETY: GS points at this CPU's PerCpu; offset 16 is exit_work, written only here.
    unsafe {
        core::arch::asm!("mov gs:[16], {}", in(reg) work as u64, options(nostack, preserves_flags))
    };
}

#[no_mangle]
extern "C" fn syscall_exit_work(frame: &mut crate::interrupts::TrapFrame) {
    crate::signals::on_syscall_exit(frame);
}

/// The clone syscall's whole register state while it runs, for `spawn_thread`.
static CLONE_FRAME: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

#[no_mangle]
extern "C" fn syscall_clone_dispatch(frame: &mut crate::interrupts::TrapFrame) {
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    CLONE_FRAME.store(
        frame as *mut crate::interrupts::TrapFrame as usize,
        core::sync::atomic::Ordering::Relaxed,
    );
    let result = crate::process::run_syscall(frame.vector, &args);
    CLONE_FRAME.store(0, core::sync::atomic::Ordering::Relaxed);
    crate::virtio_net::time_watch();
    frame.rax = result;
    if exit_work() {
        crate::signals::on_syscall_exit(frame);
    }
}

/// The register state of the clone syscall being handled, if one is.
pub fn with_clone_frame<R>(f: impl FnOnce(&crate::interrupts::TrapFrame) -> R) -> Option<R> {
    let address = CLONE_FRAME.load(core::sync::atomic::Ordering::Relaxed);
    if address == 0 {
        return None;
    }
    // SAFETY: set by syscall_clone_dispatch to the frame on this thread's kernel stack for the
    // length of the clone syscall, which is running now (the only caller is its spawn_thread).
    Some(f(unsafe {
        &*(address as *const crate::interrupts::TrapFrame)
    }))
}

/// Whether the way out of this syscall has work (see PerCpu::exit_work).
fn exit_work() -> bool {
    let work: u64;
    // SAFETY: GS points at this CPU's PerCpu; offset 16 is exit_work.
    unsafe {
        core::arch::asm!("mov {}, gs:[16]", out(reg) work, options(nostack, readonly, preserves_flags))
    };
    work != 0
}
