//! `pith run` end to end, with a fake QEMU (tests/support/fake_qemu.py) that speaks the console and the host link.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pith_loader::image::Image;
use rustix::process::{kill_process_group, Pid, Signal};

#[path = "support/minimal_elf.rs"]
mod minimal_elf;

/// A scratch directory with a program, a kernel file, a fake QEMU, and where the fake records.
struct Setup {
    directory: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let directory = tempfile::tempdir().expect("tempdir");
        let setup = Self { directory };
        std::fs::write(
            setup.path("hello"),
            minimal_elf::minimal_elf(minimal_elf::EM_X86_64, None),
        )
        .expect("write program");
        std::fs::write(setup.path("pith-kernel"), b"not booted by the fake").expect("write kernel");
        std::fs::create_dir(setup.path("record")).expect("record dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_qemu.py");
        let wrapper = setup.path("qemu");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec python3 '{}' \"$@\"\n", script.display()),
        )
        .expect("write wrapper");
        let mut permissions = std::fs::metadata(&wrapper).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&wrapper, permissions).expect("chmod");
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn recorded(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path("record").join(name)).unwrap_or_default()
    }

    fn command(&self, mode: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pith"));
        command
            .arg("run")
            .arg("--accel=tcg")
            .arg("--kernel")
            .arg(self.path("pith-kernel"))
            .arg("--qemu")
            .arg(self.path("qemu"))
            .args(extra)
            .env("FAKE_QEMU_MODE", mode)
            .env("FAKE_QEMU_RECORD", self.path("record"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, mode: &str, extra: &[&str]) -> Output {
        finish(self.command(mode, extra).spawn().expect("run pith"))
    }

    fn hello(&self) -> String {
        self.path("hello").display().to_string()
    }
}

/// How long any one `pith run` may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(60);

/// Waits for `child`, collecting its stdout and stderr; kills it and fails if it takes more
/// than [`HUNG`].
fn finish(mut child: Child) -> Output {
    fn collect(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read pith's output");
            }
            bytes
        })
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pith") {
            break status;
        }
        if started.elapsed() > HUNG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pith did not exit within {HUNG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_exit_record_is_the_status_and_records_are_relayed() {
    let setup = Setup::new();
    let program = setup.path("hello");
    let program = program.to_str().expect("UTF-8 temp path");
    let output = setup.run(
        "exit",
        &[
            "--icount",
            "-e",
            "GREETING=hi there",
            program,
            "--",
            "-v",
            "b c",
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(
        stderr,
        "pith: accelerator: tcg (--accel tcg)\nprogram stderr\npith: kernel warning\nwrite(1, \"hi\\n\", 3) = 3\n"
    );
    assert_eq!(text(&output.stdout), "hello from the console\n");

    let argv = text(&setup.recorded("argv"));
    let argv: Vec<&str> = argv.lines().collect();
    let append = argv
        .iter()
        .position(|arg| *arg == "-append")
        .and_then(|index| argv.get(index + 1))
        .expect("-append");
    let words: Vec<&str> = append.split(' ').collect();
    assert_eq!(words[0], "pith.tsc_khz=1000000");
    assert!(words[1].starts_with("pith.realtime_ns="), "{append}");
    assert_eq!(
        words[2..],
        [
            "pith.log=warn",
            "pith.console=framed",
            "pith.net=10.0.2.15/24,10.0.2.2,10.0.2.3"
        ]
    );
    // User-mode networking by default: a virtio-net device on a user netdev.
    assert!(
        argv.windows(2)
            .any(|pair| pair == ["-device", "virtio-net-device,netdev=net0"]),
        "{argv:?}"
    );
    assert!(
        argv.windows(2).any(|pair| pair == ["-icount", "shift=0"]),
        "{argv:?}"
    );
    // Both sockets sit in pith's temporary directory, next to the image.
    let image_path = argv
        .iter()
        .position(|arg| *arg == "-initrd")
        .and_then(|index| argv.get(index + 1))
        .expect("-initrd");
    let work_directory = Path::new(image_path).parent().expect("image directory");
    let console_socket = format!(
        "socket,id=con,path={}",
        work_directory.join("console.sock").display()
    );
    let hostlink_socket = format!(
        "socket,id=hostlink,path={}",
        work_directory.join("hostlink.sock").display()
    );
    assert!(argv.contains(&hostlink_socket.as_str()), "{argv:?}");
    assert!(
        argv.windows(4).any(|words| words
            == [
                "-chardev",
                console_socket.as_str(),
                "-serial",
                "chardev:con"
            ]),
        "{argv:?}"
    );

    let image = setup.recorded("image.pith");
    let image = Image::parse(&image).expect("the image QEMU got parses");
    // Named by an absolute path, the program is at that path inside too.
    assert_eq!(image.program_path(), program.as_bytes());
    assert_eq!(
        image.args().collect::<Vec<_>>(),
        [program.as_bytes(), b"-v", b"b c"]
    );
    assert_eq!(image.env().collect::<Vec<_>>(), [&b"GREETING=hi there"[..]]);
}

#[test]
fn verbose_shows_debug_logs_and_asks_the_kernel_for_them() {
    let setup = Setup::new();
    let output = setup.run(
        "exit",
        &["-v", "--trace", &setup.path("hello").display().to_string()],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "stderr: {stderr}");
    assert!(stderr.contains("pith: kernel debug\n"), "{stderr}");
    let argv = text(&setup.recorded("argv"));
    assert!(
        argv.contains("pith.log=debug pith.console=framed pith.trace=1"),
        "{argv}"
    );
}

#[test]
fn no_exit_record_is_an_error_with_qemus_stderr() {
    let setup = Setup::new();
    let output = setup.run("no-exit", &[&setup.path("hello").display().to_string()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert!(stderr.contains("partial output\n"), "{stderr}");
    assert!(
        stderr.contains("pith: error: the VM stopped without reporting an exit status (qemu exited with code 1); QEMU's stderr:\nfake-qemu: the guest crashed"),
        "{stderr}"
    );
}

#[test]
fn a_vm_that_does_not_power_off_after_its_exit_record_is_stopped() {
    let setup = Setup::new();
    let started = Instant::now();
    let output = setup.run("no-poweroff", &[&setup.path("hello").display().to_string()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "pith: the VM reported an exit status but did not power off within 5 s; stopping QEMU"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_gone(&setup);
}

#[test]
fn qemu_failing_before_it_connects_is_reported() {
    let setup = Setup::new();
    let output = setup.run("no-connect", &[&setup.path("hello").display().to_string()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert!(
        stderr.contains("QEMU stopped before connecting to the console and host-link sockets (qemu exited with code 1); QEMU's stderr:\nfake-qemu: could not load the kernel"),
        "{stderr}"
    );
}

#[test]
fn a_program_for_another_machine_is_refused_before_qemu_starts() {
    let setup = Setup::new();
    std::fs::write(
        setup.path("arm"),
        minimal_elf::minimal_elf(minimal_elf::EM_AARCH64, None),
    )
    .expect("write program");
    let output = setup.run("exit", &[&setup.path("arm").display().to_string()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert!(stderr.starts_with("pith: error: "), "{stderr}");
    assert!(stderr.contains("arm: e_machine is 183"), "{stderr}");
    assert!(setup.recorded("argv").is_empty(), "QEMU was started");
}

/// Starts pith in its own process group, waits until the fake QEMU is connected, then sends
/// SIGINT to the whole group, as a terminal's Ctrl-C does to the foreground job.
fn interrupt(mode: &str) -> (Setup, Output, Duration) {
    let setup = Setup::new();
    // --stop-timeout 0: the first Ctrl-C asks the program to stop (a Signal record on the
    // console, which the fake ignores) and the VM is stopped at once; the grace period
    // itself is tested against the real kernel in tests/graceful_stop.rs.
    let mut command = setup.command(
        mode,
        &[
            "--stop-timeout",
            "0",
            &setup.path("hello").display().to_string(),
        ],
    );
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().expect("spawn pith");
    let started = Instant::now();
    while setup.recorded("connected").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "fake QEMU never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_process_group(Pid::from_child(&child), Signal::INT).expect("SIGINT");
    let interrupted = Instant::now();
    let output = finish(child);
    (setup, output, interrupted.elapsed())
}

fn assert_gone(setup: &Setup) {
    let pid = text(&setup.recorded("pid"));
    assert!(!pid.is_empty());
    assert!(
        !Path::new("/proc").join(pid.trim()).exists(),
        "fake QEMU (pid {pid}) is still running"
    );
}

#[test]
fn ctrl_c_stops_qemu_and_exits_130() {
    let (setup, output, _) = interrupt("hang");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.ends_with("pith: stopped by Ctrl-C\n"), "{stderr}");
    // QEMU is in a process group of its own: the Ctrl-C reached only pith, which sent SIGTERM.
    assert_eq!(text(&setup.recorded("signals")), "SIGTERM\n");
    assert_gone(&setup);
}

#[test]
fn ctrl_c_kills_a_qemu_that_ignores_it() {
    let (setup, output, took) = interrupt("stubborn");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.ends_with("pith: stopped by Ctrl-C\n"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(text(&setup.recorded("signals")), "SIGTERM\n");
    assert_gone(&setup);
}

#[test]
fn ten_mebibytes_of_console_output_reach_stdout_exactly() {
    let setup = Setup::new();
    let output = setup.run("big-output", &[&setup.hello()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    let expected: Vec<u8> = (0..=255u8)
        .cycle()
        .take(10 * 1024 * 1024)
        .collect::<Vec<u8>>();
    assert_eq!(output.stdout.len(), expected.len(), "stderr: {stderr}");
    assert!(output.stdout == expected, "the output differs");
    assert_eq!(stderr, "pith: accelerator: tcg (--accel tcg)\n");
}

#[test]
fn stdin_reaches_the_guest_as_input_records_then_input_end() {
    let setup = Setup::new();
    let mut child = setup
        .command("echo-input", &[&setup.hello()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn pith");
    let input: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn({
        let input = input.clone();
        move || {
            // In pieces, as a pipe delivers them; dropping `stdin` is the end of file.
            for piece in input.chunks(70_000) {
                stdin.write_all(piece).expect("write pith's stdin");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let output = finish(child);
    writer.join().expect("writer");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let mut expected = input.clone();
    expected.extend_from_slice(b"<end of input>\n");
    assert_eq!(output.stdout.len(), expected.len(), "stderr: {stderr}");
    assert!(output.stdout == expected, "the echoed input differs");

    let records = text(&setup.recorded("input-records"));
    let records: Vec<(u8, usize)> = records
        .lines()
        .map(|line| {
            let (kind, len) = line.split_once(' ').expect("kind len");
            (kind.parse().expect("kind"), len.parse().expect("len"))
        })
        .collect();
    // First the host's wall clock (a Time record, sent on ConsoleReady), then the input.
    assert_eq!(
        records.first(),
        Some(&(4, 8)),
        "the Time record comes first"
    );
    let records = &records[1..];
    let (last, data) = records.split_last().expect("records");
    assert_eq!(*last, (2, 0), "the last record is InputEnd");
    assert!(data
        .iter()
        .all(|&(kind, len)| kind == 1 && (1..=65535).contains(&len)));
    assert_eq!(data.iter().map(|&(_, len)| len).sum::<usize>(), input.len());
}

#[test]
fn pith_exits_with_the_vm_while_its_stdin_is_still_open() {
    // The guest never reads fd 0, and stdin never ends: the input thread is blocked in read().
    let setup = Setup::new();
    let mut child = setup
        .command("exit", &[&setup.hello()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn pith");
    let stdin = child.stdin.take().expect("stdin");
    let output = finish(child);
    drop(stdin);
    assert_eq!(output.status.code(), Some(7), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "hello from the console\n");
}

#[test]
fn pith_exits_with_the_vm_while_it_is_sending_input_nobody_reads() {
    // The guest never reads fd 0 and stdin has far more than the sockets hold: the input
    // thread is blocked in a write to the console when the VM exits.
    let setup = Setup::new();
    let mut child = setup
        .command("exit", &[&setup.hello()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn pith");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let piece = vec![b'x'; 1 << 20];
        // Ends when pith exits and its stdin closes (EPIPE).
        for _ in 0..64 {
            if stdin.write_all(&piece).is_err() {
                return true;
            }
        }
        false
    });
    let output = finish(child);
    assert_eq!(output.status.code(), Some(7), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "hello from the console\n");
    assert!(
        writer.join().expect("writer"),
        "pith read 64 MiB of input that nobody reads"
    );
}

#[test]
fn a_closed_stdout_stops_the_vm_quietly_with_status_141() {
    // `pith run yes | head -c 100000`: the reader goes away while the program still writes.
    let setup = Setup::new();
    let mut child = setup
        .command("flood", &[&setup.hello()])
        .spawn()
        .expect("spawn pith");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = vec![0u8; 100_000];
    stdout.read_exact(&mut first).expect("read pith's stdout");
    assert!(first.chunks(2).all(|pair| pair == b"y\n"));
    drop(stdout);
    let output = finish(child);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "stderr: {stderr}");
    assert_eq!(stderr, "pith: accelerator: tcg (--accel tcg)\n");
    assert_gone(&setup);
}
