//! The foundation (issue 2): static glibc, static-PIE glibc and static musl programs boot
//! under `pith run`, with their output, exit status, arguments and environment as on Linux.

use pith_tests::*;

#[test]
fn hello_world_prints_and_exits_zero_with_every_toolchain() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("hello", toolchain);
        let outcome = pith_run(&[], &program, &[], &[]);
        assert_eq!(
            outcome.stdout, "hello, world\n",
            "{toolchain:?}: {outcome:?}"
        );
        assert_eq!(outcome.status, 0, "{toolchain:?}: {outcome:?}");
        assert!(
            pith_messages(&outcome.stderr).is_empty(),
            "{toolchain:?}: unexpected messages: {}",
            outcome.stderr
        );
    }
}

#[test]
fn the_exit_status_is_the_programs() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("exit_status", toolchain);
        for (status, how) in [
            ("3", "exit"),
            ("42", "return"),
            ("0", "exit"),
            ("255", "_exit"),
            ("256", "exit"),
        ] {
            let outcome = pith_run(&[], &program, &[status, how], &[]);
            let native = native_run(&program, &[status, how], &[]);
            assert_eq!(
                outcome.status, native.status,
                "{toolchain:?} {status} via {how}: {outcome:?}"
            );
            assert_eq!(
                outcome.stdout, native.stdout,
                "{toolchain:?} {status} via {how}"
            );
        }
    }
}

#[test]
fn arguments_and_environment_arrive_as_on_linux() {
    let args = ["a", "b c", "", "-v", "--", "ünïcødé"];
    let env = ["KEY=VAL", "EMPTY=", "SPACES=x y  z", "EQUALS=a=b"];
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("args_env", toolchain);
        let outcome = pith_run(&[], &program, &args, &env);
        let native = native_run(&program, &args, &env);
        assert_eq!(outcome.status, 0, "{toolchain:?}: {outcome:?}");
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
        assert!(
            outcome.stdout.contains("argv[2]=[b c]\n") && outcome.stdout.contains("env=[EMPTY=]\n")
        );
    }
}

#[test]
fn a_double_dash_after_the_program_separates_its_arguments() {
    let program = compile("args_env", Toolchain::MuslStatic);
    let outcome = pith_run(&[], &program, &["--", "a", "b c"], &[]);
    assert!(outcome.stdout.starts_with("argc=3\n"), "{outcome:?}");
    assert!(
        outcome.stdout.contains("argv[1]=[a]\nargv[2]=[b c]\n"),
        "{outcome:?}"
    );
}

#[test]
fn stdout_and_stderr_stay_apart() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("stdio_streams", toolchain);
        let outcome = pith_run(&[], &program, &[], &[]);
        assert_eq!(
            outcome.stdout, "out: printf 1\nout: write\nout: writev\n",
            "{toolchain:?}"
        );
        assert!(
            outcome.stderr.contains("err: fprintf 2\nerr: write\n"),
            "{toolchain:?}: {}",
            outcome.stderr
        );
        assert_eq!(outcome.status, 0);
    }
}

#[test]
fn a_null_pointer_write_is_reported_as_a_fault() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("null_write", toolchain);
        let outcome = pith_run(&[], &program, &[], &[]);
        assert_eq!(
            outcome.status, 139,
            "{toolchain:?}: 128 + SIGSEGV, as a shell reports it: {outcome:?}"
        );
        assert_eq!(outcome.stdout, "about to write through NULL\n");
        let messages = pith_messages(&outcome.stderr).join("\n");
        assert!(
            messages.contains("page fault (#PF) in the program"),
            "{messages}"
        );
        assert!(
            messages.contains("write at 0x0000000000000000"),
            "{messages}"
        );
        assert!(messages.contains("NULL pointer"), "{messages}");
        assert!(messages.contains("rip 0x"), "{messages}");
        assert!(
            messages.contains("in the program at ELF address"),
            "{messages}"
        );
    }
}

#[test]
fn page_permissions_are_enforced() {
    let program = compile("memory_faults", Toolchain::GlibcStatic);
    for violation in ["readonly", "rodata", "nx", "none"] {
        let outcome = pith_run(&[], &program, &[violation], &[]);
        assert_eq!(outcome.status, 139, "{violation}: {outcome:?}");
        assert!(
            !outcome.stdout.contains("no fault"),
            "{violation}: {}",
            outcome.stdout
        );
        let messages = pith_messages(&outcome.stderr).join("\n");
        assert!(messages.contains("page fault"), "{violation}: {messages}");
    }
    let outcome = pith_run(&[], &program, &["nothing"], &[]);
    assert_eq!(
        (outcome.status, outcome.stdout.as_str()),
        (0, "faulting: nothing\nno fault\n")
    );
}

#[test]
fn unknown_syscalls_return_enosys_to_the_program() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("enosys", toolchain);
        let outcome = pith_run(&[], &program, &[], &[]);
        let native = native_run(&program, &[], &[]);
        assert_eq!(outcome.status, 0, "{toolchain:?}: {outcome:?}");
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
        assert!(outcome.stdout.contains("syscall(400) = -1, errno ENOSYS"));
        let messages = pith_messages(&outcome.stderr).join("\n");
        assert_eq!(
            messages.matches("400").count(),
            1,
            "logged once: {messages}"
        );
    }
}

#[test]
fn the_syscalls_static_programs_use_behave_as_on_linux() {
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("syscalls", toolchain);
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
            .filter(|line| !line.starts_with("ok "))
            .collect();
        assert_eq!(
            outcome.status, 0,
            "{toolchain:?}: {failed:?}\n{}",
            outcome.stderr
        );
        assert_eq!(
            outcome.stdout.lines().count(),
            native.stdout.lines().count(),
            "{toolchain:?}: every check ran"
        );
    }
}

#[test]
fn trace_prints_every_syscall() {
    let program = compile("hello", Toolchain::MuslStatic);
    let outcome = pith_run(&["--trace"], &program, &[], &[]);
    assert_eq!(outcome.stdout, "hello, world\n");
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("arch_prctl(4098, 0x")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("ioctl(1, 0x5413, ")
                && line.ends_with("= -1 ENOTTY (Inappropriate ioctl for device)")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("writev(1, 0x") || line.starts_with("write(1, 0x")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("exit_group(0) = ?"),
        "{lines:?}"
    );
}

fn expect_refusal(program: &std::path::Path, expected: &str) {
    let started = std::time::Instant::now();
    let outcome = pith_run(&[], program, &[], &[]);
    assert_ne!(outcome.status, 0, "{outcome:?}");
    assert!(
        outcome.stderr.contains(expected),
        "wanted {expected:?} in: {}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("accelerator"),
        "no VM may start: {}",
        outcome.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused before any VM starts"
    );
}

#[test]
fn programs_pith_cannot_run_are_refused_before_any_vm_starts() {
    let scratch = workspace_root().join("target/test-programs");
    std::fs::create_dir_all(&scratch).expect("scratch dir");

    expect_refusal(&scratch.join("does-not-exist"), "no such file");

    let script = scratch.join("not-an-elf.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write script");
    expect_refusal(&script, "not an ELF");

    // A dynamic program whose interpreter the host does not have: its PT_INTERP path made
    // one that does not exist (same length).
    let mut bytes = std::fs::read(compile("hello", Toolchain::GlibcDynamic)).expect("read hello");
    let interpreter = b"/lib64/ld-linux-x86-64.so.2";
    let at = bytes
        .windows(interpreter.len())
        .position(|window| window == interpreter)
        .expect("PT_INTERP");
    bytes[at + interpreter.len() - 1] = b'9';
    let orphan = scratch.join("hello-no-interpreter");
    std::fs::write(&orphan, bytes).expect("write the program");
    expect_refusal(&orphan, "/lib64/ld-linux-x86-64.so.9, needed by");

    // The same program, claiming to be for aarch64 (e_machine at offset 18).
    let mut bytes = std::fs::read(compile("hello", Toolchain::GlibcStatic)).expect("read hello");
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let foreign = scratch.join("hello-aarch64");
    std::fs::write(&foreign, bytes).expect("write foreign ELF");
    expect_refusal(&foreign, "aarch64");
}

/// Debian's own static busybox (package busybox-static), unmodified.
fn debian_busybox() -> std::path::PathBuf {
    let path = std::path::PathBuf::from("/bin/busybox");
    assert!(path.exists(), "/bin/busybox is missing: install it with `apt-get install busybox-static` (scripts/setup does)");
    path
}

#[test]
fn debians_busybox_runs_unmodified() {
    let busybox = debian_busybox();
    let cases: [(&[&str], &str, i32); 5] = [
        (
            &["echo", "hello", "from", "busybox"],
            "hello from busybox\n",
            0,
        ),
        (&["expr", "6", "*", "7"], "42\n", 0),
        (&["uname", "-s", "-m"], "Linux x86_64\n", 0),
        (&["false"], "", 1),
        (&["sh", "-c", "echo in sh; exit 7"], "in sh\n", 7),
    ];
    for (args, stdout, status) in cases {
        let outcome = pith_run(&[], &busybox, args, &[]);
        assert_eq!(
            (outcome.stdout.as_str(), outcome.status),
            (stdout, status),
            "busybox {args:?}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn stdin_reaches_the_program_and_its_end_is_end_of_file() {
    // Bytes of every value, more than one console input record and more than the UART FIFO.
    let input: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for toolchain in STATIC_TOOLCHAINS {
        let program = compile("stdin_copy", toolchain);
        let outcome = pith_run_with_input(&[], &program, &[], &[], Some(&input));
        assert_eq!(outcome.status, 0, "{toolchain:?}: {}", outcome.stderr);
        assert!(
            outcome.stdout_bytes == input,
            "{toolchain:?}: the copy differs ({} bytes back)",
            outcome.stdout_bytes.len()
        );
        assert!(
            outcome.stderr.contains("copied 200000 bytes, last read 0"),
            "{toolchain:?}: {}",
            outcome.stderr
        );
    }
    let empty = pith_run_with_input(
        &[],
        &compile("stdin_copy", Toolchain::MuslStatic),
        &[],
        &[],
        Some(b""),
    );
    assert_eq!(
        (empty.status, empty.stdout.as_str()),
        (0, ""),
        "{}",
        empty.stderr
    );
}

#[test]
fn debians_busybox_reads_piped_input() {
    let busybox = debian_busybox();
    let outcome = pith_run_with_input(
        &[],
        &busybox,
        &["wc", "-l"],
        &[],
        Some(b"one\ntwo\nthree\n"),
    );
    assert_eq!(
        (outcome.status, outcome.stdout.trim()),
        (0, "3"),
        "{}",
        outcome.stderr
    );
    let outcome = pith_run_with_input(&[], &busybox, &["sort", "-r"], &[], Some(b"b\na\nc\n"));
    assert_eq!(outcome.stdout, "c\nb\na\n", "{}", outcome.stderr);
}

/// Until processes land, a new one is refused with EAGAIN (Linux's answer when it has no room
/// for one), the program goes on, and the log says what was asked; a new thread is made, and
/// nothing is logged.
#[test]
fn new_processes_are_refused_with_a_clear_warning_and_threads_are_made() {
    for toolchain in [Toolchain::GlibcStatic, Toolchain::MuslStatic] {
        let program = compile("new_task", toolchain);
        for (kind, printed, logged, times) in [
            (
                "fork",
                "fork: EAGAIN\n",
                "asked for a new process (fork)",
                1,
            ),
            ("thread", "pthread_create: a thread\n", "asked for", 0),
        ] {
            let outcome = pith_run(&[], &program, &[kind], &[]);
            assert_eq!(outcome.status, 0, "{toolchain:?} {kind}: {outcome:?}");
            assert_eq!(outcome.stdout, printed, "{toolchain:?} {kind}");
            let messages = pith_messages(&outcome.stderr).join("\n");
            assert_eq!(
                messages.matches(logged).count(),
                times,
                "{toolchain:?} {kind}: {messages}"
            );
        }
    }
}
