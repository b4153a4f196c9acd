//! Threads (issue 3, part): pthreads on the scheduler, futex queues, thread-directed signals,
//! and how a program with threads ends.

use pith_tests::*;

#[test]
fn pthreads_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "threads",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// Go's runtime: its threads, futexes, signal stacks, preemption by tgkill(SIGURG), nil checks
/// by SIGSEGV and its garbage collector, with output as on Linux.
#[test]
fn a_go_program_with_goroutines_runs_as_on_linux() {
    assert_checks_pass_as_on_linux("goroutines", &[Toolchain::Go], &[], None);
}

/// exit(3) in a thread is exit_group: the program ends with its status while main waits; a
/// thread's exit (main's pthread_exit) leaves the others running, and the last one's status
/// is the program's.
#[test]
fn exit_ends_a_thread_and_exit_group_the_program() {
    for toolchain in [Toolchain::GlibcStatic, Toolchain::MuslStatic] {
        let program = compile("threads", toolchain);
        let outcome = pith_run(&[], &program, &["exit_group"], &[]);
        assert_eq!(
            (outcome.status, outcome.stdout.as_str()),
            (7, ""),
            "{toolchain:?}: {}",
            outcome.stderr
        );
        let outcome = pith_run(&[], &program, &["main_exits"], &[]);
        assert_eq!(
            (outcome.status, outcome.stdout.as_str()),
            (0, "the last thread ends the program\n"),
            "{toolchain:?}: {}",
            outcome.stderr
        );
    }
}
