//! The host's TSC frequency, which the guest's TSC shares under both KVM and TCG (`pith.tsc_khz`).

use std::path::Path;
use std::time::{Duration, Instant};

/// Where some kernels publish the TSC frequency they calibrated.
const SYSFS_TSC_KHZ: &str = "/sys/devices/system/cpu/cpu0/tsc_freq_khz";

/// How long one measurement window is, and how many are taken (the median is kept, so one
/// window stretched by preemption does not skew the answer).
const WINDOW: Duration = Duration::from_millis(2);
const WINDOWS: usize = 5;

/// The TSC frequency in kHz: from sysfs when the kernel publishes it, else measured.
pub fn host_tsc_khz() -> u64 {
    read_sysfs_tsc_khz(Path::new(SYSFS_TSC_KHZ)).unwrap_or_else(measure_tsc_khz)
}

fn read_sysfs_tsc_khz(path: &Path) -> Option<u64> {
    parse_tsc_khz(&std::fs::read_to_string(path).ok()?)
}

/// Parses the text of tsc_freq_khz: one positive decimal number.
fn parse_tsc_khz(text: &str) -> Option<u64> {
    text.trim().parse().ok().filter(|&khz| khz > 0)
}

/// Counts TSC ticks against the monotonic clock over a few short windows; the median in kHz.
fn measure_tsc_khz() -> u64 {
    let mut samples: Vec<u64> = (0..WINDOWS).map(|_| measure_window()).collect();
    samples.sort_unstable();
    samples[WINDOWS / 2]
}

fn measure_window() -> u64 {
    let start = Instant::now();
    let start_ticks = read_tsc();
    let mut elapsed = start.elapsed();
    while elapsed < WINDOW {
        elapsed = start.elapsed();
    }
    let ticks = read_tsc().wrapping_sub(start_ticks);
    tsc_khz_from(ticks, elapsed)
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
    fn the_measured_frequency_is_plausible() {
        // Any x86_64 host of this century has a TSC between 500 MHz and 10 GHz.
        let khz = measure_tsc_khz();
        assert!((500_000..10_000_000).contains(&khz), "measured {khz} kHz");
    }
}
