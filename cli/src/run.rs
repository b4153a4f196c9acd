//! `pith run`: check the program, build the image, boot QEMU, and relay the console and the host link until it stops.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

use crate::accel::{choose_accelerator, probe_kvm};
use crate::args::RunArgs;
use crate::chardev_socket::ChardevListener;
use crate::console::{start_input_relay, ConsoleWriter, OutputEnd, OutputRelay};
use crate::hostlink::{HostLinkReader, LinkState, RecordPrinter};
use crate::image::{build_image, write_image, ImageContents};
use crate::kernel_path::find_kernel;
use crate::qemu::{find_qemu, qemu_args, KernelCommandLine, KernelLogLevel, QemuConfig};
use crate::qemu_process::{QemuProcess, POLL_INTERVAL};
use crate::signals::{StopSignal, StopSignals};
use crate::tsc::TscStopwatch;

/// How often the guest's wall clock is set from the host's again.
const RESYNC: Duration = Duration::from_secs(1);

/// SIGTERM's number on Linux x86_64: what Ctrl-C at `pith run` asks the program to handle.
const SIGTERM_NUMBER: u8 = 15;

/// Under `-icount shift=0` the guest TSC ticks once per instruction, at a nominal 1 GHz.
const ICOUNT_TSC_KHZ: u64 = 1_000_000;

/// How long QEMU may take to connect to the console and the host link after it starts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one read of the host link waits before looking for signals again.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// How long QEMU may keep running after the Exit record (the kernel powers off right after it).
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(5);

/// How long QEMU has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// After a stop signal, how long the console output QEMU left may take to reach stdout.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// The status `pith` exits with when its stdout is closed before the program exits: 128 + SIGPIPE,
/// what a shell reports for a Linux program killed by SIGPIPE.
pub const STDOUT_CLOSED_STATUS: u8 = 128 + signal_hook::consts::SIGPIPE as u8;

/// The status `pith` exits with when it fails itself (as `docker run` does), rather than the
/// program: no exit status came back, or the VM could not start.
pub const PITH_FAILED: u8 = 125;

/// Runs the program of `args` in a VM; the status to exit with.
pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    // The TSC is timed against the clock while the rest of the set-up runs.
    let tsc_stopwatch = TscStopwatch::start();
    let launch = crate::launch::resolve(args)?;
    if let Some(volume) = &args.volume {
        crate::volume::ensure_volume(&volume.host, args.volume_size.mebibytes() << 20)?;
    }
    if let Some(disk) = &args.disk {
        if !disk.is_file() {
            anyhow::bail!(
                "--disk {}: no such file (make an empty one with `truncate -s 64M {}`)",
                disk.display(),
                disk.display()
            );
        }
    }
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

    let image = build_image(&ImageContents {
        program: &launch.program,
        program_path: &launch.program_path,
        argv0: &launch.argv0,
        args: &launch.args,
        env: &launch.env,
        files: &launch.files,
        dirs: &launch.dirs,
        workdir: launch.workdir.as_deref(),
    })?;

    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok();
    let accelerator = choose_accelerator(
        args.accel,
        args.icount,
        &probe_kvm(Path::new("/dev/kvm")),
        cpuinfo.as_deref(),
    )?;
    eprintln!("pith: accelerator: {accelerator}");
    let network = crate::network::Network::new(args.net.clone(), args.publish.clone())
        .map_err(|message| anyhow::anyhow!(message))?;
    // Said when the user asked for a network (-p, --net) or -v: other runs keep their stderr
    // the program's own.
    if args.verbose || !args.publish.is_empty() || args.net != crate::network::NetMode::User {
        eprintln!("pith: network: {}", network.describe());
    }
    let network_args = network.qemu_args();
    // Dropped (and deleted) after `qemu_process`, which is declared later and so dropped first.
    let work_directory = crate::workdir::WorkDir::create()?;
    let image_path = write_image(work_directory.path(), &image)?;
    // Both bound before QEMU starts: QEMU connects to them as a client while it starts up.
    let console_path = work_directory.path().join("console.sock");
    let console_listener = bind_socket("console", &console_path)?;
    let hostlink_path = work_directory.path().join("hostlink.sock");
    let hostlink_listener = bind_socket("host-link", &hostlink_path)?;

    let kernel_command_line = KernelCommandLine {
        tsc_khz: if args.icount {
            ICOUNT_TSC_KHZ
        } else {
            tsc_stopwatch.host_tsc_khz()
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
        volume: args.volume.as_ref().map(|volume| volume.guest.clone()),
        root_on_disk: args.image.is_some(),
        root_read_only: launch.root_read_only,
        tmp: launch.tmp,
        missing_files: args.missing_files,
        no_aslr: args.no_aslr,
        net: network.addressing(),
    }
    .render();
    let qemu_argv = qemu_args(&QemuConfig {
        accelerator: accelerator.accelerator,
        memory: args.memory,
        kernel: &kernel,
        image: &image_path,
        kernel_command_line: &kernel_command_line,
        console_socket: &console_path,
        hostlink_socket: &hostlink_path,
        icount: args.icount,
        disk: args
            .disk
            .as_deref()
            .or(args.volume.as_ref().map(|volume| volume.host.as_path()))
            .or(args.image.as_deref()),
        network: &network_args,
    });
    if args.verbose {
        eprintln!("pith: {}", shell_words(qemu.as_os_str(), &qemu_argv));
    }

    let signals = StopSignals::install().context("installing the Ctrl-C handler")?;
    let mut qemu_process = QemuProcess::spawn(&qemu, &qemu_argv)
        .with_context(|| format!("starting {}", qemu.display()))?;

    let connections = match wait_for_connections(
        &console_listener,
        &hostlink_listener,
        &mut qemu_process,
        &signals,
    )? {
        Connection::Connected(connections) => connections,
        Connection::Stopped(signal) => return Ok(stop(&mut qemu_process, None, signal)),
    };
    let console_input = ConsoleWriter::new(
        connections
            .console
            .try_clone()
            .context("setting up the console socket")?,
    );
    let console_signals = console_input.clone();
    let mut output = OutputRelay::start(connections.console, std::io::stdout())
        .context("starting the thread that copies the console to stdout")?;
    let (console_ready, console_ready_signal) = std::sync::mpsc::channel();
    let mut console_ready = Some(console_ready);
    start_input_relay(console_input, console_ready_signal)
        .context("starting the thread that sends stdin to the console")?;
    let mut reader = HostLinkReader::new(
        connections.hostlink,
        RecordPrinter::new(args.verbose),
        READ_TIMEOUT,
    )
    .context("setting up the host-link socket")?;
    let mut exit_reported_at = None;
    // The guest's clock is set from ours at boot and again every RESYNC, so that it stays
    // within a millisecond of the host's whatever the error of the TSC rate we measured.
    let mut last_resync = Instant::now();
    // Set once Ctrl-C has sent the program SIGTERM: when, and which signal asked for it.
    let mut graceful_stop: Option<(Instant, StopSignal)> = None;
    let stop_timeout = Duration::from_secs(args.stop_timeout);
    loop {
        if let Some(signal) = signals.take() {
            // The first Ctrl-C asks the program to stop (SIGTERM), if its console is up to
            // carry the request; a second one, or no console yet, stops the VM now.
            let can_ask = graceful_stop.is_none()
                && console_ready.is_none()
                && reader.exit_status().is_none();
            // Sent from a thread of its own: the console socket may be held by the stdin thread,
            // blocked on a guest that does not read, and the grace timer must keep running.
            let sender = console_signals.clone();
            let sent = can_ask
                && std::thread::Builder::new()
                    .name("console-signal".into())
                    .spawn(move || sender.send_signal(SIGTERM_NUMBER))
                    .is_ok();
            if sent {
                eprintln!(
                    "pith: sent SIGTERM to the program; waiting up to {} s for it to exit (Ctrl-C again to stop now)",
                    stop_timeout.as_secs()
                );
                graceful_stop = Some((Instant::now(), signal));
            } else {
                return Ok(stop(&mut qemu_process, Some(&mut output), signal));
            }
        }
        if let Some((asked_at, signal)) = graceful_stop {
            if reader.exit_status().is_none() && asked_at.elapsed() > stop_timeout {
                eprintln!(
                    "pith: the program did not exit within {} s of SIGTERM; stopping the VM",
                    stop_timeout.as_secs()
                );
                return Ok(stop(&mut qemu_process, Some(&mut output), signal));
            }
        }
        if reader.exit_status().is_none() && output.stdout_closed() {
            return Ok(stdout_closed(&mut qemu_process, args.verbose));
        }
        let state = reader
            .read_once(&mut std::io::stderr().lock())
            .context("relaying the host link to stderr")?;
        if state == LinkState::Closed {
            break;
        }
        if reader.console_ready() {
            if let Some(ready) = console_ready.take() {
                // The guest waits for the host's wall clock before it starts the program.
                let _ = console_signals.send_time(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |since| since.as_nanos() as u64),
                );
                // The input thread may be gone already (nothing to send); that is fine.
                let _ = ready.send(());
            }
        }
        if console_ready.is_none()
            && last_resync.elapsed() >= RESYNC
            && reader.exit_status().is_none()
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            if console_signals.try_send_time(now) {
                last_resync = Instant::now();
            }
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
            return Ok(stop(&mut qemu_process, Some(&mut output), signal));
        }
        if let Some(status) = qemu_process.try_wait().context("waiting for QEMU")? {
            break status;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    // QEMU closed the console as it exited: the output thread ends once it has copied the rest.
    while output.end().is_none() {
        if let Some(signal) = signals.received() {
            return Ok(stop(&mut qemu_process, Some(&mut output), signal));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let qemu_stderr = qemu_process.stderr_text();
    let Some(status) = reader.exit_status() else {
        bail!(
            "the VM stopped without reporting an exit status ({}){}",
            describe_exit(qemu_status),
            stderr_block(&qemu_stderr)
        );
    };
    match output.end() {
        // The program had exited already: its status stands, as for a Linux program whose last
        // output was in a pipe when the reader went away.
        Some(OutputEnd::Finished | OutputEnd::StdoutClosed) | None => {}
        Some(OutputEnd::WriteFailed(error)) => {
            bail!("writing the program's output to stdout failed: {error}")
        }
        Some(OutputEnd::ReadFailed(error)) => {
            bail!("reading the program's output from QEMU's console socket failed: {error}")
        }
    }
    if args.verbose && !qemu_stderr.is_empty() {
        eprintln!("pith: QEMU's stderr:\n{qemu_stderr}");
    }
    Ok(exit_status_byte(status))
}

/// Binds the socket `name` (console, host-link) at `path`.
fn bind_socket(name: &str, path: &Path) -> anyhow::Result<ChardevListener> {
    ChardevListener::bind(path).with_context(|| {
        format!(
            "binding the {name} socket {} (a Unix socket path must be under 108 bytes: set TMPDIR to a short directory)",
            path.display()
        )
    })
}

/// QEMU's ends of the console and the host link.
struct Connections {
    console: UnixStream,
    hostlink: UnixStream,
}

enum Connection {
    Connected(Connections),
    Stopped(StopSignal),
}

/// Waits until QEMU connects to both the console and the host link, exits, is asked to stop, or
/// takes too long.
fn wait_for_connections(
    console_listener: &ChardevListener,
    hostlink_listener: &ChardevListener,
    qemu: &mut QemuProcess,
    signals: &StopSignals,
) -> anyhow::Result<Connection> {
    let started = Instant::now();
    let mut console = None;
    let mut hostlink = None;
    loop {
        if console.is_none() {
            console = console_listener
                .try_accept()
                .context("accepting QEMU's console connection")?;
        }
        if hostlink.is_none() {
            hostlink = hostlink_listener
                .try_accept()
                .context("accepting QEMU's host-link connection")?;
        }
        match (console, hostlink) {
            (Some(console), Some(hostlink)) => {
                return Ok(Connection::Connected(Connections { console, hostlink }))
            }
            (console_now, hostlink_now) => {
                console = console_now;
                hostlink = hostlink_now;
            }
        }
        if let Some(signal) = signals.received() {
            return Ok(Connection::Stopped(signal));
        }
        let missing = unconnected_sockets(console.is_some(), hostlink.is_some());
        if let Some(status) = qemu.try_wait().context("waiting for QEMU")? {
            bail!(
                "QEMU stopped before connecting to {missing} ({}){}",
                describe_exit(status),
                stderr_block(&qemu.stderr_text())
            );
        }
        if started.elapsed() > CONNECT_TIMEOUT {
            let _ = qemu.stop(STOP_GRACE);
            bail!(
                "QEMU did not connect to {missing} within {} s, so it was stopped{}",
                CONNECT_TIMEOUT.as_secs(),
                stderr_block(&qemu.stderr_text())
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// What QEMU has not connected to yet, for messages.
fn unconnected_sockets(console_connected: bool, hostlink_connected: bool) -> &'static str {
    match (console_connected, hostlink_connected) {
        (false, false) => "the console and host-link sockets",
        (false, true) => "the console socket",
        (true, _) => "the host-link socket",
    }
}

/// Makes sure QEMU is gone, lets the console output it left reach stdout (for at most
/// [`OUTPUT_GRACE`]), says why `pith` stopped, and gives the status to exit with.
fn stop(qemu: &mut QemuProcess, output: Option<&mut OutputRelay>, signal: StopSignal) -> u8 {
    if let Err(error) = qemu.stop(STOP_GRACE) {
        eprintln!("pith: could not stop QEMU: {error}");
    }
    if let Some(output) = output {
        let deadline = Instant::now() + OUTPUT_GRACE;
        while output.end().is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL_INTERVAL);
        }
    }
    eprintln!("pith: {}", signal.message());
    signal.exit_status()
}

/// Stdout's reader went away while the program was still running (`pith run yes | head -1`).
/// The program's next write would have killed it with SIGPIPE on Linux, and its output can go
/// nowhere, so the VM is stopped and `pith` exits quietly with 128 + SIGPIPE, as the shell
/// reports such a program.
fn stdout_closed(qemu: &mut QemuProcess, verbose: bool) -> u8 {
    if let Err(error) = qemu.stop(STOP_GRACE) {
        eprintln!("pith: could not stop QEMU: {error}");
    }
    if verbose {
        eprintln!("pith: stdout was closed by its reader; stopped the VM");
    }
    STDOUT_CLOSED_STATUS
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
    fn a_closed_stdout_exits_as_sigpipe_would() {
        assert_eq!(STDOUT_CLOSED_STATUS, 141);
    }

    #[test]
    fn sockets_not_yet_connected() {
        assert_eq!(
            unconnected_sockets(false, false),
            "the console and host-link sockets"
        );
        assert_eq!(unconnected_sockets(false, true), "the console socket");
        assert_eq!(unconnected_sockets(true, false), "the host-link socket");
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
