//! The GDT and TSS: kernel code and data segments, and the IST stacks every interrupt runs on.
//!
//! The app runs in ring 0 and uses the 128-byte red zone below its stack pointer, so no
//! interrupt or exception may push onto the interrupted stack: each vector has an IST stack.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot for exceptions (faults, traps).
pub const EXCEPTION_IST: u16 = 1;
/// IST slot for double faults and NMIs, so a fault on the exception stack still reports.
pub const CRITICAL_IST: u16 = 2;
/// IST slot for device and timer interrupts.
pub const INTERRUPT_IST: u16 = 3;

const IST_STACK_SIZE: usize = 32 * 1024;

#[repr(align(16))]
struct Stack {
    _bytes: [u8; IST_STACK_SIZE],
}

static mut EXCEPTION_STACK: Stack = Stack {
    _bytes: [0; IST_STACK_SIZE],
};
static mut CRITICAL_STACK: Stack = Stack {
    _bytes: [0; IST_STACK_SIZE],
};
static mut INTERRUPT_STACK: Stack = Stack {
    _bytes: [0; IST_STACK_SIZE],
};

/// Written at the bottom of the interrupt stack, and checked after every interrupt
/// (`interrupt_stack_intact`): the interrupts that come while the program runs take its
/// network frames there (`signals::on_network_in_program`, about 5 KiB deep), and below the
/// stack is other memory, not a guard page.
const INTERRUPT_STACK_CANARY: u64 = 0x5049_5448_4953_5421;

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(
    GlobalDescriptorTable,
    SegmentSelector,
    SegmentSelector,
    SegmentSelector,
)> = Once::new();

/// The kernel's code selector (also what `syscall` loads, from STAR).
pub const KERNEL_CODE: u16 = 0x08;
/// The kernel's data selector (`syscall` loads KERNEL_CODE + 8 into SS).
pub const KERNEL_DATA: u16 = 0x10;

fn stack_top(stack: *mut Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// Whether the interrupt stack's bottom word still holds its canary (no interrupt ran past
/// the stack's end).
pub fn interrupt_stack_intact() -> bool {
    // SAFETY: the stack is a static; its first word is read, never borrowed across a write
    // (interrupts write only its top, and run one at a time).
    let bottom = unsafe { (core::ptr::addr_of!(INTERRUPT_STACK) as *const u64).read_volatile() };
    bottom == INTERRUPT_STACK_CANARY
}

pub fn init() {
    // SAFETY: boot, one CPU, before the IDT sends any interrupt to this stack.
    unsafe { (core::ptr::addr_of_mut!(INTERRUPT_STACK) as *mut u64).write(INTERRUPT_STACK_CANARY) };
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let slots = [
            (EXCEPTION_IST, core::ptr::addr_of_mut!(EXCEPTION_STACK)),
            (CRITICAL_IST, core::ptr::addr_of_mut!(CRITICAL_STACK)),
            (INTERRUPT_IST, core::ptr::addr_of_mut!(INTERRUPT_STACK)),
        ];
        for (slot, stack) in slots {
            tss.interrupt_stack_table[slot as usize - 1] = stack_top(stack);
        }
        tss
    });
    let (gdt, code, data, tss_selector) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_selector)
    });
    debug_assert_eq!(code.0, KERNEL_CODE);
    debug_assert_eq!(data.0, KERNEL_DATA);
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, with the descriptors they were made for.
    unsafe {
        CS::set_reg(*code);
        SS::set_reg(*data);
        DS::set_reg(*data);
        ES::set_reg(*data);
        load_tss(*tss_selector);
    }
}
