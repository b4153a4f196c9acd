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

/// The registers of the app at the syscall instruction, lowest address first. The top five
/// words are an `iretq` frame.
#[repr(C)]
#[derive(Debug)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    /// The syscall number on entry; the return value on exit.
    pub rax: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

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
    push rax                /* orig_rax */
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    sub rsp, 8              /* 21 words pushed: realign to 16 for the call */
    call syscall_dispatch
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    add rsp, 8              /* orig_rax */
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
extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) {
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    frame.rax = crate::process::run_syscall(frame.orig_rax, args);
    // Linux leaves rcx = rip and r11 = rflags after a syscall.
    frame.rcx = frame.rip;
    frame.r11 = frame.rflags;
}
