//! The local APIC's timer, in one-shot mode: armed only when something is due (tickless), for
//! sleeps and the program's timers. xAPIC registers through the direct map (QEMU's TCG has
//! neither x2APIC nor the TSC-deadline mode).

use crate::memory::phys_to_virt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86_64::registers::model_specific::Msr;

/// The vector the timer interrupts on.
pub const TIMER_VECTOR: u8 = 0x20;
const SPURIOUS_VECTOR: u32 = 0xff;

/// Register offsets (Intel SDM vol. 3, table 11-1).
const EOI: u64 = 0xb0;
const SPURIOUS: u64 = 0xf0;
const IN_SERVICE: u64 = 0x100;
const LVT_TIMER: u64 = 0x320;
const INITIAL_COUNT: u64 = 0x380;
const CURRENT_COUNT: u64 = 0x390;
const DIVIDE_CONFIG: u64 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
const DIVIDE_BY_1: u32 = 0b1011;
const IA32_APIC_BASE: u32 = 0x1b;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;

static BASE: AtomicU64 = AtomicU64::new(0);
/// Timer ticks per millisecond, measured against the TSC on first use (0: not yet).
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn register(offset: u64) -> *mut u32 {
    phys_to_virt(BASE.load(Ordering::Relaxed) + offset).as_mut_ptr()
}

fn read(offset: u64) -> u32 {
    // SAFETY: the APIC's registers are MMIO in the first 4 GiB, which the direct map covers;
    // reading one has no effect beyond the APIC.
    unsafe { register(offset).read_volatile() }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as in `read`; the registers written here configure only the timer and EOI.
    unsafe { register(offset).write_volatile(value) }
}

/// The legacy 8259 PICs' data ports (interrupt mask registers).
const PIC_MASTER_DATA: u16 = 0x21;
const PIC_SLAVE_DATA: u16 = 0xa1;
/// LVT LINT0, where a firmware-configured machine routes the 8259 (ExtINT).
const LVT_LINT0: u64 = 0x350;

/// Silences the legacy 8259 PICs. QEMU's microvm has none (pic=off), but a PC machine (q35,
/// for virtio on PCI) has, and SeaBIOS leaves them delivering the PIT's IRQ 0 on vector 8
/// (the real-mode layout) through LINT0: that arrives as a "double fault" once interrupts are
/// on. Linux masks them the same way when it uses the APIC. On a machine without PICs the
/// port writes go nowhere.
fn mask_legacy_pic() {
    use x86_64::instructions::port::Port;
    // SAFETY: writing 0xff to the PICs' mask registers masks every line; nothing else in the
    // kernel drives the PICs.
    unsafe {
        Port::<u8>::new(PIC_MASTER_DATA).write(0xff);
        Port::<u8>::new(PIC_SLAVE_DATA).write(0xff);
    }
}

/// Turns the APIC on with the timer masked, and the legacy PICs off.
pub fn init() {
    mask_legacy_pic();
    // SAFETY: IA32_APIC_BASE holds the APIC's physical base; setting the global enable bit
    // keeps the base and mode the firmware chose.
    let base = unsafe {
        let mut msr = Msr::new(IA32_APIC_BASE);
        let value = msr.read() | APIC_GLOBAL_ENABLE;
        msr.write(value);
        value & 0x000f_ffff_ffff_f000
    };
    BASE.store(base, Ordering::Relaxed);
    write(SPURIOUS, 0x100 | SPURIOUS_VECTOR);
    write(DIVIDE_CONFIG, DIVIDE_BY_1);
    write(LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(LVT_LINT0, LVT_MASKED);
}

/// Measures the timer's rate against the TSC, over 100 µs of TSC time.
fn ticks_per_ms() -> u64 {
    let known = TICKS_PER_MS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    write(LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    TIMER_UNMASKED.store(false, Ordering::Relaxed);
    write(INITIAL_COUNT, u32::MAX);
    let start = crate::clock::monotonic_ns();
    while crate::clock::monotonic_ns() - start < 100_000 {
        core::hint::spin_loop();
    }
    let elapsed_ns = crate::clock::monotonic_ns() - start;
    let ticks = (u32::MAX - read(CURRENT_COUNT)) as u64;
    write(INITIAL_COUNT, 0);
    let rate = (ticks * 1_000_000 / elapsed_ns.max(1)).max(1);
    TICKS_PER_MS.store(rate, Ordering::Relaxed);
    crate::log_debug!("APIC timer: {rate} ticks per ms");
    rate
}

/// Interrupts at monotonic time `deadline` (or at the longest the counter reaches, after
/// which the waiter looks again).
pub fn arm(deadline: u64) {
    let now = crate::clock::monotonic_ns();
    let delta_ns = deadline.saturating_sub(now);
    let ticks =
        (delta_ns as u128 * ticks_per_ms() as u128 / 1_000_000).clamp(1, u32::MAX as u128) as u32;
    // The LVT stays one-shot and unmasked once set (a disarm only zeroes the count): each
    // register write is an exit to the hypervisor, and the timer is armed at every halt.
    if !TIMER_UNMASKED.swap(true, Ordering::Relaxed) {
        write(LVT_TIMER, TIMER_VECTOR as u32);
    }
    write(INITIAL_COUNT, ticks);
}

/// Whether the timer's LVT entry is one-shot and unmasked (`arm` set it).
static TIMER_UNMASKED: AtomicBool = AtomicBool::new(false);

pub fn disarm() {
    write(INITIAL_COUNT, 0);
}

/// Whether the interrupt being handled on `TIMER_VECTOR` came from the timer (it is in
/// service), rather than from an `int 0x20` in the program.
pub fn timer_in_service() -> bool {
    in_service(TIMER_VECTOR)
}

/// Whether `vector` is being serviced as an interrupt (its in-service bit is set).
pub fn in_service(vector: u8) -> bool {
    let vector = vector as u64;
    read(IN_SERVICE + (vector / 32) * 0x10) & (1 << (vector % 32)) != 0
}

/// This CPU's APIC ID (xAPIC: the top byte of the ID register).
pub fn id() -> u32 {
    read(0x20) >> 24
}

pub fn end_of_interrupt() {
    write(EOI, 0);
}
