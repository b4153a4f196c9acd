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
    for toolchain in [Toolchain::GlibcStatic, Toolchain::MuslStatic] {
        let program = compile("signalfd", toolchain);
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

#[test]
fn poll_and_select_behave_as_on_linux() {
    for toolchain in [Toolchain::GlibcStatic, Toolchain::MuslStatic] {
        let program = compile("poll", toolchain);
        let mut native_command = std::process::Command::new(&program);
        native_command.env_clear();
        let native = run_command(native_command, Some(b"abc"));
        assert_eq!(
            native.status, 0,
            "the checks must pass on Linux first: {}",
            native.stdout
        );
        let outcome = pith_run_with_input(&[], &program, &[], &[], Some(b"abc"));
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
