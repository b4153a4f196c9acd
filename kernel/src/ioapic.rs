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
    write_at(IOAPIC_BASE, register, value);
}

/// The second I/O APIC microvm adds (QEMU's IO_APIC_SECONDARY_ADDRESS), for GSIs 24..48.
const SECOND_IOAPIC_BASE: u64 = 0xfec1_0000;
const PINS: u32 = 24;

fn write_at(base: u64, register: u32, value: u32) {
    let base = phys_to_virt(base);
    // SAFETY: an I/O APIC's two MMIO registers, in the first 4 GiB that the direct map
    // covers; selecting a register and writing it only changes interrupt routing.
    unsafe {
        (base + REGISTER_SELECT)
            .as_mut_ptr::<u32>()
            .write_volatile(register);
        (base + WINDOW).as_mut_ptr::<u32>().write_volatile(value);
    }
}

/// Routes interrupt line `gsi` (a virtio-mmio device's: level-triggered, active high) to
/// this CPU on `vector`.
pub fn route_level(gsi: u32, vector: u8, apic_id: u32) {
    let (base, pin) = if gsi < PINS {
        (IOAPIC_BASE, gsi)
    } else {
        (SECOND_IOAPIC_BASE, gsi - PINS)
    };
    if pin >= PINS {
        crate::log_warn!("interrupt line {gsi} is past the I/O APICs: not routed");
        return;
    }
    const LEVEL_TRIGGERED: u32 = 1 << 15;
    let entry = REDIRECTION_TABLE + pin * 2;
    write_at(base, entry + 1, apic_id << 24);
    write_at(base, entry, vector as u32 | LEVEL_TRIGGERED);
}

/// Routes COM1's interrupt to this CPU (`apic_id`) on SERIAL_VECTOR: edge-triggered, active
/// high, as ISA interrupts are.
pub fn route_serial(apic_id: u32) {
    let entry = REDIRECTION_TABLE + SERIAL_IRQ * 2;
    write(entry + 1, apic_id << 24);
    write(entry, SERIAL_VECTOR as u32);
}
