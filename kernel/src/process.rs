//! Starting the program: load its ELF from the image, lay out its stack, and jump to it in
//! ring 0. Also the process's global state that syscalls and faults consult.

use crate::memory::{self, MapError, Protection as PageProtection, PAGE_SIZE};
use crate::platform::KernelPlatform;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use pith_loader::elf::{self, ElfKind, LoadPlan};
use pith_loader::image::Image;
use pith_loader::stack::{build_initial_stack, AuxValues, StackSpec};
use pith_syscalls::mm::{AddressSpace, Vma, VmaKind};
use pith_syscalls::platform::Protection;
use pith_syscalls::{Context, Process};
use spin::Mutex;

/// The process and the machine glue its syscalls use; locked for the length of a syscall.
static PROCESS: Mutex<Option<(Process, KernelPlatform)>> = Mutex::new(None);

/// Where the program is, for fault reports: load bias and span, set once at start.
static LOAD_BIAS: AtomicU64 = AtomicU64::new(0);
static LOAD_START: AtomicU64 = AtomicU64::new(0);
static LOAD_END: AtomicU64 = AtomicU64::new(0);
/// The main thread's stack: [limit, top); pages below `mapped_bottom` are mapped on first use.
static STACK_LIMIT: AtomicU64 = AtomicU64::new(0);
static STACK_MAPPED_BOTTOM: AtomicU64 = AtomicU64::new(0);
static STACK_TOP: AtomicU64 = AtomicU64::new(0);

/// The highest possible stack top (STACK_TOP on x86_64: the end of the lower half less a page).
const STACK_TOP_MAX: u64 = 0x7fff_ffff_f000;
/// Where position-independent programs go (ELF_ET_DYN_BASE, 2/3 of TASK_SIZE, page-aligned).
const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;
/// How much of the stack is mapped before the program starts; the rest grows on demand.
const INITIAL_STACK_MAPPED: u64 = 128 * 1024;
/// The gap between the stack's limit and where mmap starts placing areas.
const MMAP_GAP: u64 = 128 << 20;

/// Status a shell gives a program it cannot execute.
pub const CANNOT_EXECUTE_STATUS: i32 = 126;

fn fail(message: core::fmt::Arguments) -> ! {
    crate::log_error!("{}", message);
    crate::power::exit(CANNOT_EXECUTE_STATUS)
}

fn to_page_protection(protection: Protection) -> PageProtection {
    PageProtection {
        read: protection.read,
        write: protection.write,
        execute: protection.execute,
    }
}

fn random_pages(bits: u32) -> u64 {
    (crate::random::next_u64() & ((1 << bits) - 1)) * PAGE_SIZE
}

/// Maps the program's PT_LOAD segments at `bias`, copies their file bytes, and records them
/// as areas. Segments that share a page get the union of their permissions there.
fn load_segments(plan: &LoadPlan, program: &[u8], bias: u64, memory: &mut AddressSpace) {
    let mut previous_end = 0u64;
    let mut previous: Option<(u64, Protection)> = None; // (page, protection) of the last page mapped
    for (index, segment) in plan.segments.iter().enumerate() {
        let (start, end) = segment.page_range();
        let (start, end) = (start + bias, end + bias);
        let protection = Protection {
            read: segment.flags.read,
            write: segment.flags.write,
            execute: segment.flags.execute,
        };
        // Map writable first so the bytes can be copied in, then set the real protection.
        let writable = PageProtection {
            read: true,
            write: true,
            execute: false,
        };
        let map_from = start.max(previous_end);
        if map_from < end {
            if let Err(error) = memory::map_anonymous(map_from, end - map_from, writable) {
                fail(format_args!(
                    "cannot map segment {index} at {start:#x}: {error:?}"
                ));
            }
        }
        if let Some((page, earlier)) = previous {
            if page == start {
                // The shared page: writable for the copy now, the union of both afterwards.
                let _ = memory::protect(page, PAGE_SIZE, writable);
                let union = Protection {
                    read: earlier.read || protection.read,
                    write: earlier.write || protection.write,
                    execute: earlier.execute || protection.execute,
                };
                previous = Some((page, union));
            }
        }
        let file_bytes = &program
            [segment.file_offset as usize..(segment.file_offset + segment.file_size) as usize];
        let destination = segment.vaddr + bias;
        // SAFETY: [destination, destination + file_size) lies inside the pages mapped writable
        // just above, in the app's lower half, which no Rust reference aliases.
        unsafe {
            core::ptr::copy_nonoverlapping(
                file_bytes.as_ptr(),
                destination as *mut u8,
                file_bytes.len(),
            );
        }
        // The bss part of the last file page must read as zero: the frames came zeroed.
        let vma_start = map_from.min(end);
        if vma_start < end {
            memory.insert(Vma {
                start: vma_start,
                end,
                protection,
                kind: VmaKind::Program,
            });
        }
        if let Some((page, union)) = previous {
            if page == start {
                apply_protection(page, PAGE_SIZE, union);
            }
        }
        apply_protection(
            map_from.max(start),
            end.saturating_sub(map_from.max(start)),
            protection,
        );
        if let Some((page, union)) = previous {
            if page == start {
                apply_protection(page, PAGE_SIZE, union);
            }
        }
        previous = Some((end - PAGE_SIZE, protection));
        previous_end = end;
    }
}

fn apply_protection(start: u64, len: u64, protection: Protection) {
    if len == 0 {
        return;
    }
    if let Err(error) = memory::protect(start, len, to_page_protection(protection)) {
        fail(format_args!(
            "cannot protect {start:#x}+{len:#x}: {error:?}"
        ));
    }
}

/// Loads the program in `image` and runs it; never returns.
pub fn start(image_bytes: &'static [u8], parameters: &crate::cmdline::LaunchParameters) -> ! {
    let image = Image::parse(image_bytes)
        .unwrap_or_else(|error| fail(format_args!("the image is unusable: {error}")));
    let program = image.program();
    let path = image.program_path();
    let path_text = core::str::from_utf8(path).unwrap_or("(program)");
    let plan =
        elf::plan(program).unwrap_or_else(|error| fail(format_args!("{path_text}: {error}")));
    if let Some(interpreter) = &plan.interpreter {
        fail(format_args!(
            "{path_text} is dynamically linked (interpreter {interpreter}); Pith runs static programs only for now"
        ));
    }
    let bias = match plan.kind {
        ElfKind::Executable => 0,
        ElfKind::PositionIndependent => ELF_ET_DYN_BASE + random_pages(20) - plan.min_vaddr,
    };
    LOAD_BIAS.store(bias, Ordering::Relaxed);
    LOAD_START.store(plan.min_vaddr + bias, Ordering::Relaxed);
    LOAD_END.store(plan.max_vaddr + bias, Ordering::Relaxed);

    // The stack: RLIMIT_STACK (8 MiB) reserved below a randomized top.
    let stack_top = STACK_TOP_MAX - random_pages(16);
    let stack_limit = stack_top - (8 << 20);
    let brk_start = plan.max_vaddr + bias;
    let mut memory = AddressSpace::new(stack_limit - MMAP_GAP, brk_start);
    load_segments(&plan, program, bias, &mut memory);

    let argv: Vec<&[u8]> = image.args().collect();
    let envp: Vec<&[u8]> = image.env().collect();
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let aux = AuxValues {
        sysinfo_ehdr: None,
        minsigstksz: crate::cpu::min_signal_stack_size(),
        hwcap: crate::cpu::hwcap(),
        pagesz: PAGE_SIZE,
        clktck: 100,
        phdr: plan.phdr_vaddr + bias,
        phent: plan.phent as u64,
        phnum: plan.phnum as u64,
        base: 0,
        flags: 0,
        entry: plan.entry + bias,
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
        secure: 0,
        hwcap2: 0,
    };
    let spec = StackSpec {
        stack_top,
        random_offset: (crate::random::next_u64() % 8192) & !15,
        argv: &argv,
        envp: &envp,
        execfn: path,
        platform: b"x86_64",
        random,
        aux,
    };
    let stack = build_initial_stack(&spec)
        .unwrap_or_else(|error| fail(format_args!("{path_text}: {error}")));
    let mapped = memory::align_up(stack.bytes.len() as u64 + INITIAL_STACK_MAPPED);
    let mapped_bottom = stack_top - mapped.min(stack_top - stack_limit);
    let stack_protection = PageProtection {
        read: true,
        write: true,
        execute: plan.executable_stack,
    };
    if let Err(error) =
        memory::map_anonymous(mapped_bottom, stack_top - mapped_bottom, stack_protection)
    {
        fail(format_args!("cannot map the stack: {error:?}"));
    }
    memory.insert(Vma {
        start: stack_limit,
        end: stack_top,
        protection: Protection {
            read: true,
            write: true,
            execute: plan.executable_stack,
        },
        kind: VmaKind::Stack,
    });
    STACK_LIMIT.store(stack_limit, Ordering::Relaxed);
    STACK_MAPPED_BOTTOM.store(mapped_bottom, Ordering::Relaxed);
    STACK_TOP.store(stack_top, Ordering::Relaxed);
    // SAFETY: [stack.base, stack_top) was just mapped read-write in the app's lower half.
    unsafe {
        core::ptr::copy_nonoverlapping(
            stack.bytes.as_ptr(),
            stack.base as *mut u8,
            stack.bytes.len(),
        )
    };

    let mut process = Process::new(path.to_vec(), memory);
    process.trace = parameters.trace;
    *PROCESS.lock() = Some((process, KernelPlatform::new(parameters)));

    let entry = plan.entry + bias;
    let ticks = crate::clock::read_tsc().wrapping_sub(crate::boot::first_instruction_tsc());
    crate::log_info!("boot: {ticks} TSC ticks from the kernel's first instruction to the program's ({path_text}, entry {entry:#x})");
    enter_program(entry, stack.rsp)
}

/// Jumps to the program's entry point with the registers the x86_64 ABI specifies for
/// process start: rsp at argc, rdx = 0 (no rtld_fini), everything else zero.
fn enter_program(entry: u64, rsp: u64) -> ! {
    // SAFETY: `entry` is the program's entry point inside its mapped, executable text, and
    // `rsp` its initial stack; the iretq frame switches rip, rflags (IF set, as in user mode)
    // and rsp at once, in ring 0 with the kernel's selectors.
    unsafe {
        core::arch::asm!(
            "push {ss}",
            "push {rsp}",
            "push 0x202",
            "push {cs}",
            "push {entry}",
            "xor eax, eax",
            "xor ebx, ebx",
            "xor ecx, ecx",
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor ebp, ebp",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xor r12d, r12d",
            "xor r13d, r13d",
            "xor r14d, r14d",
            "xor r15d, r15d",
            "iretq",
            ss = const crate::gdt::KERNEL_DATA as u64,
            cs = const crate::gdt::KERNEL_CODE as u64,
            rsp = in(reg) rsp,
            entry = in(reg) entry,
            options(noreturn)
        )
    }
}

/// Runs one syscall for the program.
#[inline]
pub fn run_syscall(number: u64, args: &[u64; 6]) -> u64 {
    let mut guard = PROCESS.lock();
    let Some((process, platform)) = guard.as_mut() else {
        return pith_syscalls::Errno::ENOSYS.to_return();
    };
    let mut context = Context { platform, process };
    pith_syscalls::dispatch(&mut context, number, args)
}

/// Maps more of the main stack if [address, address + len) reaches into its unmapped part:
/// the stack grows down on demand up to RLIMIT_STACK, as on Linux. True if anything was mapped.
pub fn grow_stack(address: u64, len: u64) -> bool {
    let (limit, bottom, top) = (
        STACK_LIMIT.load(Ordering::Relaxed),
        STACK_MAPPED_BOTTOM.load(Ordering::Relaxed),
        STACK_TOP.load(Ordering::Relaxed),
    );
    if address < limit || address >= bottom || address.saturating_add(len) > top {
        return false;
    }
    // Grow in 64 KiB steps to keep faults rare.
    let new_bottom = memory::align_down(address)
        .saturating_sub(60 * 1024)
        .max(limit);
    let protection = PageProtection {
        read: true,
        write: true,
        execute: false,
    };
    match memory::map_anonymous(new_bottom, bottom - new_bottom, protection) {
        Ok(()) => {
            STACK_MAPPED_BOTTOM.store(new_bottom, Ordering::Relaxed);
            true
        }
        Err(MapError::OutOfMemory) | Err(MapError::AlreadyMapped) => false,
    }
}

/// "(in /hello at offset 0x1234)" style text for a fault report.
pub fn describe_address(address: u64) -> AddressDescription {
    AddressDescription(address)
}

pub struct AddressDescription(u64);

impl core::fmt::Display for AddressDescription {
    fn fmt(&self, formatter: &mut core::fmt::Formatter) -> core::fmt::Result {
        let address = self.0;
        let (start, end, bias) = (
            LOAD_START.load(Ordering::Relaxed),
            LOAD_END.load(Ordering::Relaxed),
            LOAD_BIAS.load(Ordering::Relaxed),
        );
        if (start..end).contains(&address) {
            return write!(
                formatter,
                "(in the program at ELF address {:#x})",
                address - bias
            );
        }
        let (limit, top) = (
            STACK_LIMIT.load(Ordering::Relaxed),
            STACK_TOP.load(Ordering::Relaxed),
        );
        if (limit..top).contains(&address) {
            return write!(formatter, "(in the main stack)");
        }
        if address < 0x10000 {
            return write!(formatter, "(a NULL pointer dereference)");
        }
        if address >= crate::boot::KERNEL_VMA {
            return write!(
                formatter,
                "(in the kernel image at {:#x})",
                address - crate::boot::KERNEL_VMA
            );
        }
        write!(formatter, "(not in the program, its stack or the kernel)")
    }
}
