//! The 16550 UART on COM1: the program's console (fd 0 and fd 1).

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = COM1 + 5;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_TRANSMIT_EMPTY: u8 = 1 << 5;
/// The transmitter is idle: the last byte has left the UART (QEMU has handed it to the host).
const LSR_TRANSMITTER_IDLE: u8 = 1 << 6;
/// How long power-off waits for the last bytes to leave, should the host not be reading.
const FLUSH_TIMEOUT_NS: u64 = 1_000_000_000;

/// Sets 115200 8N1 with FIFOs on; interrupts stay off (we poll).
pub fn init() {
    let writes: [(u16, u8); 7] = [
        (COM1 + 1, 0x00), // no interrupts
        (COM1 + 3, 0x80), // DLAB on
        (COM1, 0x01),     // divisor 1: 115200 baud
        (COM1 + 1, 0x00),
        (COM1 + 3, 0x03), // 8N1, DLAB off
        (COM1 + 2, 0xc7), // FIFOs on and cleared
        (COM1 + 4, 0x0b), // DTR | RTS | OUT2 (OUT2 gates the IRQ line on PC UARTs)
    ];
    for (port, value) in writes {
        // SAFETY: COM1's registers; writing them only configures the UART.
        unsafe { Port::new(port).write(value) };
    }
}

/// Waits a little without touching any device. Under TCG every port access takes QEMU's
/// global lock; polling the UART back to back starves QEMU's main loop, which is what moves
/// bytes between the UART and its host socket, so input would never arrive.
pub fn back_off() {
    for _ in 0..4096 {
        core::hint::spin_loop();
    }
}

/// Writes bytes to the console, waiting while the UART's transmit register is full.
pub fn write(bytes: &[u8]) {
    let mut status: Port<u8> = Port::new(LINE_STATUS);
    let mut data: Port<u8> = Port::new(COM1);
    for &byte in bytes {
        // SAFETY: reading LSR and writing THR of COM1 have no effect beyond the UART.
        unsafe {
            while status.read() & LSR_TRANSMIT_EMPTY == 0 {
                back_off();
            }
            data.write(byte);
        }
    }
}

/// Waits (at most a second) until the UART has passed every byte written to the host. QEMU
/// keeps a byte in the UART while its socket is full, and a VM that powered off then would
/// lose the end of the program's output.
pub fn flush() {
    let deadline = crate::clock::monotonic_ns() + FLUSH_TIMEOUT_NS;
    let mut status: Port<u8> = Port::new(LINE_STATUS);
    // SAFETY: reading COM1's LSR has no effect beyond the UART.
    while unsafe { status.read() } & LSR_TRANSMITTER_IDLE == 0 {
        if crate::clock::monotonic_ns() >= deadline {
            return;
        }
        back_off();
    }
}

/// Interrupts when input arrives (the I/O APIC routes it; see ioapic.rs).
pub fn enable_receive_interrupt() {
    // SAFETY: IER of COM1; enabling "received data available" only raises IRQ 4.
    unsafe { Port::<u8>::new(COM1 + 1).write(0x01) };
}

/// The next byte of input, if one is waiting.
pub fn try_read_byte() -> Option<u8> {
    let mut status: Port<u8> = Port::new(LINE_STATUS);
    let mut data: Port<u8> = Port::new(COM1);
    // SAFETY: reading LSR and RBR of COM1 only consumes console input.
    unsafe { (status.read() & LSR_DATA_READY != 0).then(|| data.read()) }
}
