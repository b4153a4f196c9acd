//! The Pith kernel: boots through PVH, sets up the machine, and runs one Linux program in ring 0.
#![no_std]
#![no_main]

extern crate alloc;

mod apic;
mod boot;
mod clock;
mod cmdline;
mod console;
mod cpu;
mod fpu;
mod gdt;
mod hostlink;
mod interrupts;
mod ioapic;
mod memory;
mod paging;
mod pci;
mod platform;
mod power;
mod process;
mod pvh;
mod random;
mod sched;
mod serial;
mod signals;
mod syscall;
mod vdso;
mod virtio_blk;
mod virtio_mmio;
mod virtio_net;

/// Called by the PVH entry code in long mode, on the boot stack, with the physical address of
/// the hvm_start_info.
#[no_mangle]
extern "C" fn kernel_main(start_info_phys: u64) -> ! {
    // First: under QEMU's TCG, translated code is keyed on whether AVX is enabled, so code
    // run both before and after this (the allocator, memcpy) would be translated twice.
    cpu::init();
    gdt::init();
    interrupts::init();
    serial::init();
    let boot_info = match pvh::parse(start_info_phys) {
        Ok(info) => info,
        Err(error) => {
            log_error!("unusable PVH start info: {error}");
            power::exit(interrupts::KERNEL_FAILURE_STATUS);
        }
    };
    let parameters = cmdline::parse(boot_info.command_line);
    hostlink::set_max_level(parameters.log_level);
    console::init(parameters.framed_console);
    let Some((image_phys, image_size)) = boot_info.image else {
        log_error!("no image: boot Pith with the program as its initrd (see `pith run`)");
        power::exit(interrupts::KERNEL_FAILURE_STATUS);
    };
    let reserved = [
        (image_phys, image_phys + image_size),
        (boot_info.start_info_phys, boot_info.start_info_phys + 4096),
    ];
    let stats = memory::init(boot_info.memory_map, &reserved);
    paging::init();
    // The image stays reserved and unwritten: its files' pages can be mapped where they lie.
    paging::set_lendable(image_phys, image_phys + image_size);
    clock::init(
        boot::first_instruction_tsc(),
        parameters.tsc_khz,
        parameters.realtime_ns,
    );
    random::init();
    virtio_blk::init(boot_info.rsdp);
    virtio_net::init(boot_info.rsdp, parameters.virtio_mmio());
    syscall::init();
    apic::init();
    ioapic::route_serial(apic::id());
    serial::enable_receive_interrupt();
    // Tell the CLI that input may flow now that the UART (and its FIFO) is set up; it answers
    // with its wall clock, which the program must start with.
    hostlink::send(hostlink::RecordKind::ConsoleReady, &[]);
    if parameters.framed_console {
        wait_for_host_time();
    }
    log_debug!(
        "memory: {} KiB of kernel heap; {} MiB free for the program",
        stats.heap_size >> 10,
        (stats.total_frames * 4096) >> 20
    );
    let footprint = memory::footprint();
    log_debug!(
        "footprint after boot: {} KiB (image {} KiB, heap in use {} KiB of {} KiB claimed, frames {} KiB)",
        footprint.in_use() >> 10,
        footprint.image >> 10,
        footprint.heap_in_use >> 10,
        footprint.heap_claimed >> 10,
        footprint.frames >> 10
    );

    // SAFETY: the image is the initrd module, in reserved physical memory below 4 GiB that
    // the direct map covers, and nothing writes it.
    let image = unsafe {
        core::slice::from_raw_parts(
            memory::phys_to_virt(image_phys).as_ptr::<u8>(),
            image_size as usize,
        )
    };
    process::start(image, &parameters)
}

/// Waits (at most 100 ms) for the CLI's `Time` record, which it sends on ConsoleReady, so the
/// program starts with the host's wall clock to within the record's latency. The CPU halts
/// meanwhile: a vCPU polling the UART would keep QEMU from delivering the record.
fn wait_for_host_time() {
    let deadline = clock::monotonic_ns() + 100_000_000;
    loop {
        console::poll();
        let now = clock::monotonic_ns();
        if clock::realtime_from_host() || now >= deadline {
            break;
        }
        apic::arm(deadline);
        // SAFETY: interrupts are enabled only for the halt (`sti` takes effect after `hlt`
        // starts, so no wake-up is lost); the serial or timer interrupt ends it, its handler
        // runs on an IST stack and takes only the console's lock, which is not held here.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
    apic::disarm();
    if !clock::realtime_from_host() {
        log_warn!(
            "the host did not send its time: the wall clock may be off by QEMU's start-up time"
        );
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log_error!("kernel panic: {info}");
    power::exit(interrupts::KERNEL_FAILURE_STATUS)
}
