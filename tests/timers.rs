//! Time (issue 3, part): sleeps on the APIC timer, and timer signals that interrupt a sleep or
//! a running program.

use pith_tests::*;

#[test]
fn sleeps_and_timer_signals_behave_as_on_linux() {
    for toolchain in [Toolchain::GlibcStatic, Toolchain::MuslStatic] {
        let program = compile("timers", toolchain);
        let native = native_run(&program, &[], &[]);
        assert_eq!(
            native.status, 0,
            "the checks must pass on Linux first: {}",
            native.stdout
        );
        let outcome = pith_run(&[], &program, &[], &[]);
        let failed: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|line| line.starts_with("FAIL"))
            .collect();
        assert_eq!(
            outcome.status, 0,
            "{toolchain:?}: {failed:?}\n{}",
            outcome.stderr
        );
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
    }
}
