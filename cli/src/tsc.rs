//! The host's TSC frequency, which the guest's TSC shares under both KVM and TCG (`pith.tsc_khz`).

use std::path::Path;
use std::time::{Duration, Instant};

/// Where some kernels publish the TSC frequency they calibrated.
const SYSFS_TSC_KHZ: &str = "/sys/devices/system/cpu/cpu0/tsc_freq_khz";

/// The shortest window worth measuring over: pairing each end to within a few microseconds
/// (see `paired_read`) keeps the error near 0.01%.
const MINIMUM_WINDOW: Duration = Duration::from_millis(2);
/// A (TSC, clock) pair whose two TSC reads are further apart than this was interrupted.
const PAIR_TOLERANCE_TICKS: u64 = 20_000;

/// Measures the TSC against the monotonic clock over a window that begins when `pith`
/// starts and ends when the kernel command line is built, so the work in between (reading
/// the program, writing the image) is not time spent waiting.
#[derive(Debug, Clone, Copy)]
pub struct TscStopwatch {
    start: (u64, Instant),
}

impl TscStopwatch {
    pub fn start() -> Self {
        Self {
            start: paired_read(),
        }
    }

    /// The host's TSC frequency in kHz: from sysfs when the kernel publishes it, else what
    /// the window measured (waiting until it is at least MINIMUM_WINDOW long).
    pub fn host_tsc_khz(&self) -> u64 {
        if let Some(khz) = read_sysfs_tsc_khz(Path::new(SYSFS_TSC_KHZ)) {
            return khz;
        }
        let (start_ticks, start_time) = self.start;
        while start_time.elapsed() < MINIMUM_WINDOW {
            std::hint::spin_loop();
        }
        let (end_ticks, end_time) = paired_read();
        tsc_khz_from(end_ticks.wrapping_sub(start_ticks), end_time - start_time)
    }
}

/// Reads the TSC and the clock at (nearly) the same instant: the clock read is bracketed by
/// two TSC reads, and retried if something (preemption, an interrupt) came in between.
fn paired_read() -> (u64, Instant) {
    loop {
        let before = read_tsc();
        let now = Instant::now();
        let after = read_tsc();
        let spread = after.wrapping_sub(before);
        if spread < PAIR_TOLERANCE_TICKS {
            return (before + spread / 2, now);
        }
    }
}

fn read_sysfs_tsc_khz(path: &Path) -> Option<u64> {
    parse_tsc_khz(&std::fs::read_to_string(path).ok()?)
}

/// Parses the text of tsc_freq_khz: one positive decimal number.
fn parse_tsc_khz(text: &str) -> Option<u64> {
    text.trim().parse().ok().filter(|&khz| khz > 0)
}

/// ticks per millisecond = kHz.
fn tsc_khz_from(ticks: u64, elapsed: Duration) -> u64 {
    let nanoseconds = elapsed.as_nanos().max(1);
    u64::try_from(u128::from(ticks) * 1_000_000 / nanoseconds).unwrap_or(u64::MAX)
}

#[allow(unsafe_code, reason = "RDTSC has no safe wrapper in core::arch")]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU; it only reads the time-stamp counter into
    // registers and touches no memory. (Linux would make it fault only under
    // prctl(PR_SET_TSC, PR_TSC_SIGSEGV), which this program never sets.)
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_text() {
        assert_eq!(parse_tsc_khz("2995200\n"), Some(2_995_200));
        assert_eq!(parse_tsc_khz("0\n"), None);
        assert_eq!(parse_tsc_khz("fast"), None);
        assert_eq!(
            read_sysfs_tsc_khz(Path::new("/nonexistent/tsc_freq_khz")),
            None
        );
    }

    #[test]
    fn ticks_over_time_is_khz() {
        assert_eq!(tsc_khz_from(6_000_000, Duration::from_millis(2)), 3_000_000);
        assert_eq!(tsc_khz_from(0, Duration::ZERO), 0);
    }

    #[test]
    fn the_measured_frequency_is_plausible_and_repeatable() {
        // Any x86_64 host of this century has a TSC between 500 MHz and 10 GHz, and two
        // windows agree to well within a percent.
        let first = TscStopwatch::start().host_tsc_khz();
        let second = TscStopwatch::start().host_tsc_khz();
        assert!(
            (500_000..10_000_000).contains(&first),
            "measured {first} kHz"
        );
        assert!(
            first.abs_diff(second) < first / 100,
            "{first} vs {second} kHz"
        );
    }
}
