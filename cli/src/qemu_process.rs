//! The running QEMU: started with its stderr captured, waited for, and stopped when asked.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// How much of QEMU's stderr is kept to show when it fails (its last bytes).
const STDERR_KEPT: usize = 64 * 1024;

/// How often a wait looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A QEMU child process. Dropping it kills QEMU if it is still running, so no error path in
/// `pith` leaves a VM behind.
#[derive(Debug)]
pub struct QemuProcess {
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
    exited: Option<ExitStatus>,
}

impl QemuProcess {
    /// Starts `qemu` with `args`, in a process group of its own, so that signals the terminal
    /// sends to the foreground job (Ctrl-C) reach only `pith`, which decides what the VM gets.
    /// QEMU does not touch our stdin or stdout (the guest console goes through console.sock): it
    /// gets /dev/null for both, so it can neither read nor change the terminal. Its stderr is
    /// captured.
    ///
    /// If `pith` itself dies (SIGKILL, a test harness's timeout), the kernel kills QEMU too
    /// (PR_SET_PDEATHSIG), so no VM is left running without its CLI.
    #[allow(
        unsafe_code,
        reason = "Command::pre_exec is how std lets the child set PR_SET_PDEATHSIG before exec"
    )]
    pub fn spawn(qemu: &Path, args: &[OsString]) -> std::io::Result<Self> {
        let mut command = Command::new(qemu);
        command
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec and makes one prctl
        // call, which is async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = command.spawn()?;
        let stderr = child.stderr.take().map(|pipe| {
            std::thread::Builder::new()
                .name("qemu-stderr".into())
                .spawn(move || keep_tail(pipe))
        });
        let stderr = match stderr.transpose() {
            Ok(handle) => handle,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        Ok(Self {
            child,
            stderr,
            exited: None,
        })
    }

    /// QEMU's exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Stops QEMU: SIGTERM (QEMU then shuts down cleanly), and SIGKILL if it is still running
    /// after `grace`.
    pub fn stop(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // It may have exited just now; a failed SIGTERM is then harmless.
        let _ = kill_process(Pid::from_child(&self.child), Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        self.exited = Some(status);
        Ok(status)
    }

    /// What QEMU wrote on its stderr (the last 64 KiB of it), once it has exited.
    pub fn stderr_text(&mut self) -> String {
        let bytes = self
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim_end().to_owned()
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            let _ = self.stop(Duration::ZERO);
        }
    }
}

/// Reads the pipe to its end, keeping the last [`STDERR_KEPT`] bytes.
fn keep_tail(mut pipe: ChildStderr) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => {
                kept.extend_from_slice(&buffer[..count]);
                if kept.len() > 2 * STDERR_KEPT {
                    kept.drain(..kept.len() - STDERR_KEPT);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > STDERR_KEPT {
        kept.drain(..kept.len() - STDERR_KEPT);
    }
    kept
}
