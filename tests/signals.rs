//! Signals (issue 3, first part): handlers for faults and for signals a program sends itself,
//! with Linux's frame, masks, alternate stack and default actions.

use pith_tests::*;

#[test]
fn signal_handlers_run_as_on_linux() {
    for toolchain in [
        Toolchain::GlibcStatic,
        Toolchain::GlibcStaticPie,
        Toolchain::MuslStatic,
    ] {
        let program = compile("signals", toolchain);
        let native = native_run(&program, &[], &[]);
        assert!(
            native.stdout.ends_with("0 failures\n"),
            "the checks must pass on Linux first: {}",
            native.stdout
        );
        let outcome = pith_run(&[], &program, &[], &[]);
        let failed: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|line| line.starts_with("FAIL"))
            .collect();
        assert!(
            failed.is_empty(),
            "{toolchain:?}: {failed:?}\n{}",
            outcome.stderr
        );
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
        // It ends with raise(SIGTERM): killed by the default action, as a shell reports it.
        assert_eq!(
            (outcome.status, native.status),
            (143, 143),
            "{toolchain:?}: {}",
            outcome.stderr
        );
        assert!(
            outcome.stderr.contains("killed by signal 15 (SIGTERM)"),
            "{}",
            outcome.stderr
        );
    }
}

#[test]
fn signalfd_reads_blocked_signals_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "signalfd",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn poll_and_select_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "poll",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        Some(b"abc"),
    );
}
