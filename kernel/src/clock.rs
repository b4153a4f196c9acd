//! Time from the TSC: monotonic nanoseconds since boot, and wall time from the host's clock
//! at launch.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// ns = (ticks * MULT) >> 32: the formula the vDSO uses too, so the two clocks agree exactly.
static MULT: AtomicU64 = AtomicU64::new(1 << 32);
static REALTIME_AT_BOOT_NS: AtomicU64 = AtomicU64::new(0);

pub fn read_tsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC rate from CPUID leaf 0x15 (crystal ratio) or 0x16 (base MHz), if the CPU says.
fn tsc_khz_from_cpuid() -> Option<u64> {
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    if max_leaf >= 0x15 {
        let leaf = core::arch::x86_64::__cpuid(0x15);
        if leaf.eax != 0 && leaf.ebx != 0 && leaf.ecx != 0 {
            return Some(leaf.ecx as u64 * leaf.ebx as u64 / leaf.eax as u64 / 1000);
        }
    }
    if max_leaf >= 0x16 {
        let mhz = core::arch::x86_64::__cpuid(0x16).eax as u64 & 0xffff;
        if mhz != 0 {
            return Some(mhz * 1000);
        }
    }
    None
}

/// Starts the clocks. `tsc_khz` and `realtime_ns` come from the CLI; without them we ask
/// CPUID and start wall time at the epoch, and say so.
pub fn init(boot_tsc: u64, tsc_khz: Option<u64>, realtime_ns: Option<u64>) {
    TSC_AT_BOOT.store(boot_tsc, Ordering::Relaxed);
    let khz = match tsc_khz.or_else(tsc_khz_from_cpuid) {
        Some(khz) => khz,
        None => {
            crate::log_warn!(
                "TSC frequency unknown (no pith.tsc_khz, no CPUID leaf 0x15/0x16): assuming 1 GHz"
            );
            1_000_000
        }
    };
    TSC_KHZ.store(khz, Ordering::Relaxed);
    MULT.store(
        ((1_000_000u128 << 32) / khz as u128) as u64,
        Ordering::Relaxed,
    );
    match realtime_ns {
        Some(ns) => REALTIME_AT_BOOT_NS.store(ns, Ordering::Relaxed),
        None => crate::log_warn!("no pith.realtime_ns: the wall clock starts at the epoch"),
    }
}

/// The TSC's frequency, in kHz.
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the kernel's first instruction.
pub fn monotonic_ns() -> u64 {
    let ticks = read_tsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    ((ticks as u128 * MULT.load(Ordering::Relaxed) as u128) >> 32) as u64
}

/// When the program started, and how long it has since spent halted: its CPU time is the rest.
static PROGRAM_START_NS: AtomicU64 = AtomicU64::new(0);
static IDLE_NS: AtomicU64 = AtomicU64::new(0);

/// Starts the program's CPU-time clock.
pub fn start_program_clock() {
    PROGRAM_START_NS.store(monotonic_ns(), Ordering::Relaxed);
}

/// Counts time the CPU spent halted on the program's behalf (a sleep, a wait for input).
pub fn add_idle(nanoseconds: u64) {
    IDLE_NS.fetch_add(nanoseconds, Ordering::Relaxed);
}

/// Nanoseconds the program has run: since its start, less the time halted. With one thread,
/// its process and its thread CPU-time clocks.
pub fn program_cpu_ns() -> u64 {
    monotonic_ns()
        .saturating_sub(PROGRAM_START_NS.load(Ordering::Relaxed))
        .saturating_sub(IDLE_NS.load(Ordering::Relaxed))
}

/// Whether the host has told us its wall clock since boot (a console `Time` record).
static REALTIME_FROM_HOST: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// The host's wall clock, now: it becomes ours (the record took microseconds to arrive, where
/// the command line's time was taken before QEMU even started).
pub fn set_realtime(realtime_ns: u64) {
    let base = realtime_ns.saturating_sub(monotonic_ns());
    REALTIME_AT_BOOT_NS.store(base, Ordering::Relaxed);
    crate::vdso::update_realtime(base);
    REALTIME_FROM_HOST.store(true, Ordering::Relaxed);
}

pub fn realtime_from_host() -> bool {
    REALTIME_FROM_HOST.load(Ordering::Relaxed)
}

/// Nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    REALTIME_AT_BOOT_NS.load(Ordering::Relaxed) + monotonic_ns()
}

/// What the vDSO's time page holds: the TSC at boot, the multiplier, and wall time at boot.
pub fn parameters() -> (u64, u64, u64) {
    (
        TSC_AT_BOOT.load(Ordering::Relaxed),
        MULT.load(Ordering::Relaxed),
        REALTIME_AT_BOOT_NS.load(Ordering::Relaxed),
    )
}
