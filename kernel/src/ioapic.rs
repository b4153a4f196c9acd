//! The I/O APIC: routes the serial port's interrupt (ISA IRQ 4, pin 4 on microvm) to the CPU,
//! so that console input (and the host's signals, which arrive the same way) wakes the kernel.

use crate::memory::phys_to_virt;

/// The I/O APIC's MMIO base on QEMU's machines (and every PC since the 1990s).
const IOAPIC_BASE: u64 = 0xfec0_0000;
const REGISTER_SELECT: u64 = 0x00;
const WINDOW: u64 = 0x10;
/// Redirection table entries start at register 0x10, two registers per pin.
const REDIRECTION_TABLE: u32 = 0x10;
/// COM1's ISA IRQ.
const SERIAL_IRQ: u32 = 4;
/// The vector serial input arrives on.
pub const SERIAL_VECTOR: u8 = 0x21;

fn write(register: u32, value: u32) {
    let base = phys_to_virt(IOAPIC_BASE);
    // SAFETY: the I/O APIC's two MMIO registers, in the first 4 GiB that the direct map
    // covers; selecting a register and writing it only changes interrupt routing.
    unsafe {
        (base + REGISTER_SELECT)
            .as_mut_ptr::<u32>()
            .write_volatile(register);
        (base + WINDOW).as_mut_ptr::<u32>().write_volatile(value);
    }
}

/// Routes COM1's interrupt to this CPU (`apic_id`) on SERIAL_VECTOR: edge-triggered, active
/// high, as ISA interrupts are.
pub fn route_serial(apic_id: u32) {
    let entry = REDIRECTION_TABLE + SERIAL_IRQ * 2;
    write(entry + 1, apic_id << 24);
    write(entry, SERIAL_VECTOR as u32);
}
