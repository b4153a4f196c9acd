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
};

/// What the entry saves of the app's registers, lowest address first: the six argument
/// registers in the syscall ABI's order (so the handler reads them in place as `[u64; 6]`),
/// the syscall number, and an `iretq` frame.
///
/// The callee-saved registers (rbx, rbp, r12-r15) are not saved here: the Rust code the entry
/// calls preserves them, as the C ABI requires. Syscalls that need the app's whole register
/// state (clone, signal delivery) will get an entry path that saves them too.
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
    crate::process::run_syscall(frame.number, &frame.args)
}
