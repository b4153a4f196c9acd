//! The 16550 UART on COM1: the program's console (fd 0 and fd 1).

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = COM1 + 5;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_TRANSMIT_EMPTY: u8 = 1 << 5;

/// Sets 115200 8N1 with FIFOs on; interrupts stay off (we poll).
pub fn init() {
    let writes: [(u16, u8); 7] = [
        (COM1 + 1, 0x00), // no interrupts
        (COM1 + 3, 0x80), // DLAB on
        (COM1, 0x01),     // divisor 1: 115200 baud
        (COM1 + 1, 0x00),
        (COM1 + 3, 0x03), // 8N1, DLAB off
        (COM1 + 2, 0xc7), // FIFOs on and cleared
        (COM1 + 4, 0x03), // DTR | RTS
    ];
    for (port, value) in writes {
        // SAFETY: COM1's registers; writing them only configures the UART.
        unsafe { Port::new(port).write(value) };
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
                core::hint::spin_loop();
            }
            data.write(byte);
        }
    }
}

/// Reads at least one byte (blocking) and then whatever else is already waiting.
pub fn read(buffer: &mut [u8]) -> usize {
    let mut status: Port<u8> = Port::new(LINE_STATUS);
    let mut data: Port<u8> = Port::new(COM1);
    let mut count = 0;
    while count < buffer.len() {
        // SAFETY: reading LSR and RBR of COM1 only consumes console input.
        let ready = unsafe { status.read() } & LSR_DATA_READY != 0;
        if ready {
            // SAFETY: as above.
            buffer[count] = unsafe { data.read() };
            count += 1;
        } else if count > 0 {
            break;
        } else {
            core::hint::spin_loop();
        }
    }
    count
}
