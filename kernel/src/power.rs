//! Powering the VM off once the program is done.

use x86_64::instructions::port::Port;

/// QEMU's `isa-debug-exit` device (see docs/design/boot-protocol.md).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Reports `status` to the host and stops the machine.
pub fn exit(status: i32) -> ! {
    crate::serial::flush();
    crate::hostlink::send_exit(status);
    // SAFETY: writing isa-debug-exit makes QEMU exit; nothing in the guest observes it.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(0) };
    // Other VMMs: pulse the keyboard controller's reset line (Firecracker stops the VM on it,
    // QEMU with -no-reboot exits).
    // SAFETY: the i8042 command port; 0xfe asks for a CPU reset.
    unsafe { Port::<u8>::new(0x64).write(0xfe) };
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
