//! Time (issue 3, part): sleeps on the APIC timer, and timer signals that interrupt a sleep or
//! a running program.

use pith_tests::*;

#[test]
fn sleeps_and_timer_signals_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "timers",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn the_vdso_answers_clock_calls_without_a_syscall() {
    for toolchain in [
        Toolchain::GlibcStatic,
        Toolchain::GlibcStaticPie,
        Toolchain::MuslStatic,
    ] {
        let program = compile("vdso", toolchain);
        let native = native_run(&program, &[], &[]);
        assert_eq!(
            native.status, 0,
            "the checks must pass on Linux first: {}",
            native.stdout
        );
        let outcome = pith_run(&["--trace"], &program, &[], &[]);
        assert_eq!(
            outcome.status, 0,
            "{toolchain:?}: {}\n{}",
            outcome.stdout, outcome.stderr
        );
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
        // 1,000 clock_gettime calls through the C library, and none reached the kernel: only
        // the program's own 1,000 direct syscalls (and the bad clock id's fallback) did.
        let kernel_calls = outcome
            .stderr
            .lines()
            .filter(|line| line.starts_with("clock_gettime("))
            .count();
        assert_eq!(kernel_calls, 1001, "{toolchain:?}");
        assert!(!outcome
            .stderr
            .lines()
            .any(|line| line.starts_with("gettimeofday(") || line.starts_with("time(")));
    }
}

#[test]
fn posix_timers_and_sigtimedwait_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "posix_timers",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn a_lone_thread_uses_futex_and_affinity_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "futex",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn cpu_time_clocks_count_running_not_sleeping_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "cputime",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}
