//! `pith run`: check the program, build the image, boot QEMU and relay the host link until it stops.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

use crate::accel::{choose_accelerator, probe_kvm};
use crate::args::RunArgs;
use crate::hostlink::{HostLinkListener, HostLinkReader, LinkState, RecordPrinter};
use crate::image::{build_image, write_image, ImageContents};
use crate::kernel_path::find_kernel;
use crate::program::read_program;
use crate::qemu::{find_qemu, qemu_args, KernelCommandLine, KernelLogLevel, QemuConfig};
use crate::qemu_process::{QemuProcess, POLL_INTERVAL};
use crate::signals::{StopSignal, StopSignals};
use crate::tsc::host_tsc_khz;

/// Under `-icount shift=0` the guest TSC ticks once per instruction, at a nominal 1 GHz.
const ICOUNT_TSC_KHZ: u64 = 1_000_000;

/// How long QEMU may take to connect to the host link after it starts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one read of the host link waits before looking for signals again.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// How long QEMU may keep running after the Exit record (the kernel powers off right after it).
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(5);

/// How long QEMU has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The status `pith` exits with when it fails itself (as `docker run` does), rather than the
/// program: no exit status came back, or the VM could not start.
pub const PITH_FAILED: u8 = 125;

/// Runs the program of `args` in a VM; the status to exit with.
pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let program = read_program(args.program())?;
    let current_exe = std::env::current_exe().ok();
    let kernel = find_kernel(
        args.kernel.as_deref(),
        std::env::var_os("PITH_KERNEL").as_deref(),
        current_exe.as_deref(),
        Path::is_file,
    )?;
    let qemu = find_qemu(
        &args.qemu,
        std::env::var_os("PATH").as_deref(),
        is_executable,
    )?;

    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok();
    let accelerator = choose_accelerator(
        args.accel,
        args.icount,
        &probe_kvm(Path::new("/dev/kvm")),
        cpuinfo.as_deref(),
    )?;
    eprintln!("pith: accelerator: {accelerator}");

    let image = build_image(&ImageContents {
        program: &program,
        argv0: args.program(),
        args: args.program_args(),
        env: &args.env,
    })?;
    // Dropped (and deleted) after `qemu_process`, which is declared later and so dropped first.
    let work_directory = tempfile::Builder::new()
        .prefix("pith-")
        .tempdir()
        .context("creating a temporary directory for the image and the host-link socket (set TMPDIR to a writable directory)")?;
    let image_path = write_image(work_directory.path(), &image)?;
    let socket_path = work_directory.path().join("hostlink.sock");
    let listener = HostLinkListener::bind(&socket_path).with_context(|| {
        format!(
            "binding the host-link socket {} (a Unix socket path must be under 108 bytes: set TMPDIR to a short directory)",
            socket_path.display()
        )
    })?;

    let kernel_command_line = KernelCommandLine {
        tsc_khz: if args.icount {
            ICOUNT_TSC_KHZ
        } else {
            host_tsc_khz()
        },
        terminal: crate::terminal::console_terminal_size(),
        realtime_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the host clock is before 1970: set the date")?
            .as_nanos(),
        log: if args.verbose {
            KernelLogLevel::Debug
        } else {
            KernelLogLevel::Warn
        },
        trace: args.trace,
    }
    .render();
    let qemu_argv = qemu_args(&QemuConfig {
        accelerator: accelerator.accelerator,
        memory: args.memory,
        kernel: &kernel,
        image: &image_path,
        kernel_command_line: &kernel_command_line,
        hostlink_socket: &socket_path,
        icount: args.icount,
    });
    if args.verbose {
        eprintln!("pith: {}", shell_words(qemu.as_os_str(), &qemu_argv));
    }

    let signals = StopSignals::install().context("installing the Ctrl-C handler")?;
    let mut qemu_process = QemuProcess::spawn(&qemu, &qemu_argv)
        .with_context(|| format!("starting {}", qemu.display()))?;

    let stream = match wait_for_connection(&listener, &mut qemu_process, &signals)? {
        Connection::Connected(stream) => stream,
        Connection::Stopped(signal) => return Ok(stop(&mut qemu_process, signal)),
    };
    let mut reader = HostLinkReader::new(stream, RecordPrinter::new(args.verbose), READ_TIMEOUT)
        .context("setting up the host-link socket")?;
    let mut exit_reported_at = None;
    loop {
        if let Some(signal) = signals.received() {
            return Ok(stop(&mut qemu_process, signal));
        }
        let state = reader
            .read_once(&mut std::io::stderr().lock())
            .context("relaying the host link to stderr")?;
        if state == LinkState::Closed {
            break;
        }
        if reader.exit_status().is_some() {
            let reported_at = *exit_reported_at.get_or_insert_with(Instant::now);
            if reported_at.elapsed() > POWER_OFF_TIMEOUT {
                eprintln!(
                    "pith: the VM reported an exit status but did not power off within {} s; stopping QEMU",
                    POWER_OFF_TIMEOUT.as_secs()
                );
                qemu_process.stop(STOP_GRACE).context("stopping QEMU")?;
                break;
            }
        }
    }
    let qemu_status = loop {
        if let Some(signal) = signals.received() {
            return Ok(stop(&mut qemu_process, signal));
        }
        if let Some(status) = qemu_process.try_wait().context("waiting for QEMU")? {
            break status;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let qemu_stderr = qemu_process.stderr_text();
    match reader.exit_status() {
        Some(status) => {
            if args.verbose && !qemu_stderr.is_empty() {
                eprintln!("pith: QEMU's stderr:\n{qemu_stderr}");
            }
            Ok(exit_status_byte(status))
        }
        None => bail!(
            "the VM stopped without reporting an exit status ({}){}",
            describe_exit(qemu_status),
            stderr_block(&qemu_stderr)
        ),
    }
}

enum Connection {
    Connected(std::os::unix::net::UnixStream),
    Stopped(StopSignal),
}

/// Waits until QEMU connects to the host link, exits, is asked to stop, or takes too long.
fn wait_for_connection(
    listener: &HostLinkListener,
    qemu: &mut QemuProcess,
    signals: &StopSignals,
) -> anyhow::Result<Connection> {
    let started = Instant::now();
    loop {
        if let Some(stream) = listener
            .try_accept()
            .context("accepting QEMU's host-link connection")?
        {
            return Ok(Connection::Connected(stream));
        }
        if let Some(signal) = signals.received() {
            return Ok(Connection::Stopped(signal));
        }
        if let Some(status) = qemu.try_wait().context("waiting for QEMU")? {
            bail!(
                "QEMU stopped before connecting to the host link ({}){}",
                describe_exit(status),
                stderr_block(&qemu.stderr_text())
            );
        }
        if started.elapsed() > CONNECT_TIMEOUT {
            let _ = qemu.stop(STOP_GRACE);
            bail!(
                "QEMU did not connect to the host link within {} s, so it was stopped{}",
                CONNECT_TIMEOUT.as_secs(),
                stderr_block(&qemu.stderr_text())
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Makes sure QEMU is gone, says why `pith` stopped, and gives the status to exit with.
fn stop(qemu: &mut QemuProcess, signal: StopSignal) -> u8 {
    if let Err(error) = qemu.stop(STOP_GRACE) {
        eprintln!("pith: could not stop QEMU: {error}");
    }
    eprintln!("pith: {}", signal.message());
    signal.exit_status()
}

/// The Exit record's status as a process exit status. The kernel sends 0..=255 (an exit code,
/// or 128 + a signal); anything else is reduced the way Linux reduces an exit code.
fn exit_status_byte(status: i32) -> u8 {
    let byte = (status & 0xff) as u8;
    if i32::from(byte) != status {
        eprintln!(
            "pith: the VM reported exit status {status}, outside 0..=255; exiting with {byte}"
        );
    }
    byte
}

/// "qemu exited with code 1", "qemu was killed by signal 9".
fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("qemu exited with code {code}"),
        (None, Some(signal)) => format!("qemu was killed by signal {signal}"),
        (None, None) => format!("qemu ended: {status}"),
    }
}

fn stderr_block(stderr: &str) -> String {
    if stderr.is_empty() {
        String::from("; QEMU wrote nothing on stderr")
    } else {
        format!("; QEMU's stderr:\n{stderr}")
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The command line, quoted so that it can be pasted into a shell.
fn shell_words(program: &std::ffi::OsStr, args: &[OsString]) -> String {
    let mut text = String::new();
    for word in std::iter::once(program).chain(args.iter().map(OsString::as_os_str)) {
        let word = word.to_string_lossy();
        if !text.is_empty() {
            text.push(' ');
        }
        let plain = !word.is_empty()
            && word
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_./=,:+@%".contains(&byte));
        if plain {
            text.push_str(&word);
        } else {
            text.push('\'');
            text.push_str(&word.replace('\'', r"'\''"));
            text.push('\'');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_pass_through() {
        assert_eq!(exit_status_byte(0), 0);
        assert_eq!(exit_status_byte(42), 42);
        assert_eq!(exit_status_byte(255), 255);
        assert_eq!(exit_status_byte(256), 0);
    }

    #[test]
    fn qemu_exit_descriptions() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "qemu exited with code 1"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "qemu was killed by signal 9"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_words(
                std::ffi::OsStr::new("/usr/bin/qemu"),
                &["-append".into(), "a=1 b=2".into(), "it's".into(), "".into()]
            ),
            r"/usr/bin/qemu -append 'a=1 b=2' 'it'\''s' ''"
        );
    }
}
