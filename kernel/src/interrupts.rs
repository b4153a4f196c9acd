//! The IDT and exception entry: every vector runs on an IST stack, and a fault reports what
//! happened (exception, address, registers, which ELF and offset) and stops the machine.

use crate::gdt::{CRITICAL_IST, EXCEPTION_IST, INTERRUPT_IST, KERNEL_CODE, KERNEL_DATA};
use crate::paging::FaultError;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};
use pith_syscalls::sigframe::Trap;
use pith_syscalls::uapi::Siginfo;
use spin::Once;

/// Registers saved by the exception entry stub, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// One stub per vector: push a zero error code where the CPU pushes none, push the vector,
// then save the registers and call `exception_entry` with the frame.
global_asm!(
    r#"
    .altmacro
    .macro vector_stub n
    .balign 16
    vector_stub_\n:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
        push 0
    .endif
        push \n
        jmp interrupt_common
    .endm

    .macro vector_stub_address n
        .quad vector_stub_\n
    .endm

    .section .text
    .set i, 0
    .rept 256
        vector_stub %i
        .set i, i + 1
    .endr

interrupt_common:
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
    cld
    /* An IST switch leaves SS null (no B flag), while `syscall` and iretq to the program
     * leave the flat data segment. QEMU's TCG keys translated code on that flag, so kernel
     * code reached from both an interrupt and a system call would be translated twice:
     * load the data segment, as the frame's SS is restored by iretq anyway. */
    mov eax, {kernel_data}
    mov ss, eax
    mov rdi, rsp
    call exception_entry
    cmp qword ptr gs:[24], 0
    jne preempt_from_interrupt
    .global pith_return_to_frame
pith_return_to_frame:
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

    /* The interrupt preempts the program (sched::on_interrupt_in_program): move its frame
     * from the IST stack, which the next interrupt reuses, to the top of this thread's kernel
     * stack (idle while the program runs), and switch threads from there. */
preempt_from_interrupt:
    mov qword ptr gs:[24], 0
    mov rsi, rsp
    mov rdi, gs:[0]
    sub rdi, {frame_size}
    mov rdx, rdi
    mov ecx, {frame_words}
    rep movsq
    mov rsp, rdx
    mov rdi, rsp
    call preempt_switch
    jmp pith_return_to_frame

    .section .rodata
    .balign 8
    .global vector_stub_table
vector_stub_table:
    .set i, 0
    .rept 256
        vector_stub_address %i
        .set i, i + 1
    .endr
    "#,
    kernel_data = const KERNEL_DATA,
    frame_size = const core::mem::size_of::<TrapFrame>(),
    frame_words = const core::mem::size_of::<TrapFrame>() / 8,
);

extern "C" {
    static vector_stub_table: [u64; 256];
}

/// A 64-bit interrupt gate descriptor (Intel SDM vol. 3, 6.14.1).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const fn interrupt_gate(handler: u64, ist: u16) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE,
            ist: ist as u8,
            type_attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

const DOUBLE_FAULT: u64 = 8;
const NMI: u64 = 2;
const MACHINE_CHECK: u64 = 18;

pub fn init() {
    let idt = IDT.call_once(|| {
        // SAFETY: vector_stub_table is an initialized, read-only array defined in the asm above.
        let stubs = unsafe { &*core::ptr::addr_of!(vector_stub_table) };
        let mut gates = [Gate::interrupt_gate(0, 0); 256];
        for (vector, gate) in gates.iter_mut().enumerate() {
            let ist = match vector as u64 {
                DOUBLE_FAULT | NMI | MACHINE_CHECK => CRITICAL_IST,
                0..=31 => EXCEPTION_IST,
                _ => INTERRUPT_IST,
            };
            *gate = Gate::interrupt_gate(stubs[vector], ist);
        }
        Idt(gates)
    });
    let pointer = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(idt),
    };
    // SAFETY: the IDT is 'static and every gate points at a stub that saves state and calls
    // exception_entry on an IST stack.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
}

/// Exception names (Intel SDM vol. 3, table 6-1).
fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "non-maskable interrupt",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range exceeded (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack-segment fault (#SS)",
        13 => "general protection fault (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating-point error (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating-point exception (#XM)",
        20 => "virtualization exception (#VE)",
        21 => "control protection exception (#CP)",
        _ => "interrupt",
    }
}

/// The signal Linux sends for an exception in user code (arch/x86/kernel/traps.c).
fn exception_signal(vector: u64) -> i32 {
    const SIGILL: i32 = 4;
    const SIGTRAP: i32 = 5;
    const SIGBUS: i32 = 7;
    const SIGFPE: i32 = 8;
    const SIGSEGV: i32 = 11;
    match vector {
        0 | 16 | 19 => SIGFPE,
        1 | 3 => SIGTRAP,
        6 => SIGILL,
        17 => SIGBUS,
        _ => SIGSEGV,
    }
}

const PAGE_FAULT: u64 = 14;
/// Page-fault error code bits (Intel SDM vol. 3, 4.7).
const PF_PRESENT: u64 = 1 << 0;
const PF_WRITE: u64 = 1 << 1;
const PF_INSTRUCTION: u64 = 1 << 4;

/// Demand paging: backs the page if the app's area allows the access. Ok when the faulting
/// instruction can run again; otherwise why not.
fn resolve_page_fault(frame: &TrapFrame) -> Result<(), FaultError> {
    let address = x86_64::registers::control::Cr2::read_raw();
    if frame.error_code & PF_PRESENT != 0
        && frame.error_code & PF_WRITE == 0
        && frame.error_code & PF_INSTRUCTION == 0
    {
        return Err(FaultError::AccessDenied); // a read of a present page: reserved bits
    }
    let access = crate::paging::Access {
        write: frame.error_code & PF_WRITE != 0,
        execute: frame.error_code & PF_INSTRUCTION != 0,
    };
    let mut result = crate::paging::handle_page_fault(address, access);
    if result == Err(FaultError::NotMapped) && frame.rip < crate::boot::DIRECT_MAP_BASE {
        // Just below a MAP_GROWSDOWN area: it grows, in the process's list and the kernel's
        // (the process lock is free: the program, not a syscall, faulted).
        let grown = crate::process::try_with_process(|process, _| {
            let limit = process.limits[pith_syscalls::uapi::RLIMIT_STACK as usize].rlim_cur;
            process.memory.grow_down(address, limit)
        })
        .flatten();
        if let Some(area) = grown {
            crate::paging::add_area(area);
            result = crate::paging::handle_page_fault(address, access);
        }
    }
    match result {
        Err(FaultError::OutOfMemory) => {
            crate::log_error!("out of memory backing {address:#x}: the program is killed, as Linux's OOM killer would");
            crate::power::exit(128 + 9);
        }
        other => other,
    }
}

/// si_code values (include/uapi/asm-generic/siginfo.h).
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const SI_KERNEL: i32 = 0x80;
const ILL_ILLOPN: i32 = 2;
const FPE_INTDIV: i32 = 1;
const FPE_FLTINV: i32 = 7;
const TRAP_BRKPT: i32 = 1;
const BUS_ADRALN: i32 = 1;

/// The signal, siginfo and trap details Linux gives the app for an exception in its code
/// (arch/x86/kernel/traps.c, arch/x86/mm/fault.c).
fn fault_signal(frame: &TrapFrame, page_fault_cause: Option<FaultError>) -> (i32, Siginfo, Trap) {
    let signal = exception_signal(frame.vector);
    let mut trap = Trap {
        number: frame.vector,
        error_code: frame.error_code,
        address: 0,
    };
    let (code, address) = match frame.vector {
        PAGE_FAULT => {
            trap.address = x86_64::registers::control::Cr2::read_raw();
            let code = if page_fault_cause == Some(FaultError::NotMapped) {
                SEGV_MAPERR
            } else {
                SEGV_ACCERR
            };
            (code, trap.address)
        }
        0 => (FPE_INTDIV, frame.rip),
        16 | 19 => (FPE_FLTINV, frame.rip),
        6 => (ILL_ILLOPN, frame.rip),
        1 | 3 => (TRAP_BRKPT, frame.rip),
        17 => (BUS_ADRALN, frame.rip),
        _ => (SI_KERNEL, 0),
    };
    (
        signal,
        pith_syscalls::signal::fault_siginfo(signal, code, address),
        trap,
    )
}

/// Status `pith run` exits with when the kernel itself fails.
pub const KERNEL_FAILURE_STATUS: i32 = 125;

/// How many exceptions are being handled: a fault inside the handler reuses its IST stack and
/// would overwrite the frame being handled, so it stops the machine at once.
static DEPTH: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[no_mangle]
extern "C" fn exception_entry(frame: &mut TrapFrame) {
    if DEPTH.fetch_add(1, Ordering::Relaxed) > 0 {
        crate::log_error!(
            "fatal: {} while handling an exception, rip {:#x}",
            exception_name(frame.vector),
            frame.rip
        );
        crate::power::exit(KERNEL_FAILURE_STATUS);
    }
    handle_exception(frame);
    if !crate::gdt::interrupt_stack_intact() {
        crate::log_error!(
            "fatal: {} overran the interrupt stack, rip {:#x}",
            exception_name(frame.vector),
            frame.rip
        );
        crate::power::exit(KERNEL_FAILURE_STATUS);
    }
    DEPTH.fetch_sub(1, Ordering::Relaxed);
}

/// Interrupts taken since boot (/proc/interrupts).
static TIMER_COUNT: AtomicU64 = AtomicU64::new(0);
static NETWORK_COUNT: AtomicU64 = AtomicU64::new(0);
static SERIAL_COUNT: AtomicU64 = AtomicU64::new(0);

/// What /proc/interrupts says.
pub fn counts() -> pith_syscalls::platform::InterruptCounts {
    pith_syscalls::platform::InterruptCounts {
        timer: TIMER_COUNT.load(Ordering::Relaxed),
        network: NETWORK_COUNT.load(Ordering::Relaxed),
        network_line: crate::virtio_net::interrupt_line(),
        serial: SERIAL_COUNT.load(Ordering::Relaxed),
    }
}

fn handle_exception(frame: &mut TrapFrame) {
    if frame.vector == crate::apic::TIMER_VECTOR as u64 && crate::apic::timer_in_service() {
        TIMER_COUNT.fetch_add(1, Ordering::Relaxed);
        crate::apic::end_of_interrupt();
        crate::sched::timer_fired();
        if frame.rip < crate::boot::DIRECT_MAP_BASE {
            crate::signals::on_timer_in_program(frame);
        }
        // In the kernel it ends a wait (wait_until), which looks at the time itself.
        return;
    }
    if frame.vector == crate::ioapic::SERIAL_VECTOR as u64
        && crate::apic::in_service(crate::ioapic::SERIAL_VECTOR)
    {
        SERIAL_COUNT.fetch_add(1, Ordering::Relaxed);
        crate::apic::end_of_interrupt();
        crate::console::poll();
        if frame.rip < crate::boot::DIRECT_MAP_BASE {
            crate::signals::on_host_signals_in_program(frame);
        }
        // In the kernel it ends a wait, which looks at the input and the signals itself.
        return;
    }
    if frame.vector == crate::virtio_net::NET_VECTOR as u64
        && crate::apic::in_service(crate::virtio_net::NET_VECTOR)
    {
        NETWORK_COUNT.fetch_add(1, Ordering::Relaxed);
        crate::virtio_net::interrupt();
        crate::apic::end_of_interrupt();
        if frame.rip < crate::boot::DIRECT_MAP_BASE {
            crate::signals::on_network_in_program();
        }
        // In the kernel it ends a wait (a halt), whose thread looks at the sockets itself.
        return;
    }
    if frame.vector == 0xff {
        return; // the APIC's spurious vector: no EOI
    }
    if frame.vector >= 32 {
        if frame.rip < crate::boot::DIRECT_MAP_BASE {
            // No device interrupt is enabled, so this is the program's own `int N`. Linux
            // would run the i386 syscall ABI for `int 0x80`; Pith has only the x86_64 one.
            crate::log_error!(
                "the program executed `int {:#x}` at rip {:#x}{}: Pith implements only the x86_64 `syscall` ABI",
                frame.vector,
                frame.rip,
                if frame.vector == 0x80 { " (the i386 syscall ABI)" } else { "" }
            );
            crate::log_error!("the program was killed by signal 11 (SIGSEGV); exit status 139");
            crate::power::exit(128 + 11);
        }
        crate::log_warn!("unexpected interrupt vector {}", frame.vector);
        return;
    }
    let mut page_fault_cause = None;
    if frame.vector == PAGE_FAULT {
        match resolve_page_fault(frame) {
            Ok(()) => return,
            Err(cause) => page_fault_cause = Some(cause),
        }
    }
    let in_app = frame.rip < crate::boot::DIRECT_MAP_BASE;
    if in_app {
        let (signal, info, trap) = fault_signal(frame, page_fault_cause);
        if crate::signals::on_fault(frame, signal, &info, &trap) {
            return; // the app's handler runs next
        }
    }
    let name = exception_name(frame.vector);
    let whose = if in_app { "the program" } else { "the kernel" };
    crate::log_error!(
        "fatal {name} in {whose}, error code {:#x}",
        frame.error_code
    );
    crate::log_error!(
        "rip {:#018x} {}",
        frame.rip,
        crate::process::describe_address(frame.rip)
    );
    if frame.vector == 14 {
        let address = x86_64::registers::control::Cr2::read_raw();
        let code = frame.error_code;
        let access = if code & 0x10 != 0 {
            "instruction fetch"
        } else if code & 0x2 != 0 {
            "write"
        } else {
            "read"
        };
        let cause = if code & 0x1 != 0 {
            "a protection violation"
        } else {
            "a page that is not mapped"
        };
        crate::log_error!(
            "{access} at {address:#018x}: {cause} {}",
            crate::process::describe_address(address)
        );
    }
    crate::log_error!(
        "rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx
    );
    crate::log_error!(
        "rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}",
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.rsp
    );
    crate::log_error!(
        "r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}",
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11
    );
    crate::log_error!(
        "r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}",
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15
    );
    crate::log_error!(
        "rflags {:#x} cs {:#x} ss {:#x}",
        frame.rflags,
        frame.cs,
        frame.ss
    );
    if in_app {
        let signal = exception_signal(frame.vector);
        crate::log_error!(
            "the program was killed by signal {signal}; exit status {}",
            128 + signal
        );
        crate::power::exit(128 + signal);
    }
    crate::power::exit(KERNEL_FAILURE_STATUS);
}
