//! Random bytes from the CPU (RDRAND), for getrandom(2) and AT_RANDOM.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static HAVE_RDRAND: AtomicBool = AtomicBool::new(false);
/// Fallback generator state when the CPU has no RDRAND (seeded from the TSC; not secure).
static FALLBACK_STATE: AtomicU64 = AtomicU64::new(0);

pub fn init() {
    let rdrand = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
    HAVE_RDRAND.store(rdrand, Ordering::Relaxed);
    if !rdrand {
        FALLBACK_STATE.store(crate::clock::read_tsc() | 1, Ordering::Relaxed);
        crate::log_warn!("the CPU has no RDRAND: random numbers come from a TSC-seeded generator and are NOT secure");
    }
}

fn rdrand64() -> Option<u64> {
    for _ in 0..32 {
        let mut value = 0u64;
        // SAFETY: HAVE_RDRAND says the CPU implements RDRAND; it only writes `value`.
        let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut value) };
        if ok == 1 {
            return Some(value);
        }
    }
    None
}

fn fallback64() -> u64 {
    // xorshift64*: only used when the CPU offers nothing better, and logged as such.
    let mut x = FALLBACK_STATE.load(Ordering::Relaxed) ^ crate::clock::read_tsc();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    FALLBACK_STATE.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Fills `buffer`; false if the hardware generator keeps failing.
pub fn fill(buffer: &mut [u8]) -> bool {
    let rdrand = HAVE_RDRAND.load(Ordering::Relaxed);
    for chunk in buffer.chunks_mut(8) {
        let value = if rdrand {
            match rdrand64() {
                Some(value) => value,
                None => return false,
            }
        } else {
            fallback64()
        };
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    true
}

pub fn next_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if !fill(&mut bytes) {
        return fallback64();
    }
    u64::from_le_bytes(bytes)
}
