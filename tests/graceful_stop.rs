//! Ctrl-C at `pith run` (issue 3, graceful stop): the program is sent SIGTERM; if it exits, its
//! status is pith's; if it does not within --stop-timeout, the VM is stopped and pith says so.

use pith_tests::*;

#[test]
fn a_program_that_handles_sigterm_cleans_up_and_exits() {
    let program = compile("graceful_stop", Toolchain::GlibcStatic);
    let outcome = pith_run_and_interrupt(&[], &program, &["handle"], "ready");
    assert_eq!(
        outcome.stdout, "ready\ngot SIGTERM, cleaning up\n",
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("sent SIGTERM to the program"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_program_without_a_handler_dies_of_sigterm() {
    let program = compile("graceful_stop", Toolchain::MuslStatic);
    let outcome = pith_run_and_interrupt(&[], &program, &["default"], "ready");
    assert_eq!(outcome.status, 143, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "ready\n");
}

#[test]
fn a_program_that_ignores_sigterm_is_stopped_after_the_timeout() {
    let program = compile("graceful_stop", Toolchain::GlibcStatic);
    let started = std::time::Instant::now();
    let outcome = pith_run_and_interrupt(&["--stop-timeout", "1"], &program, &["ignore"], "ready");
    assert_eq!(outcome.status, 130, "Ctrl-C's status: {}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("did not exit within 1 s of SIGTERM"),
        "{}",
        outcome.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
