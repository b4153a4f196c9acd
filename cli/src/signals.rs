//! Ctrl-C and termination signals: noticed while QEMU runs, instead of killing `pith` outright.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Which stop signal arrived, if any. QEMU runs in a process group of its own, so a Ctrl-C at
/// the terminal reaches only `pith`, which must then stop QEMU, report, and make sure it is gone.
#[derive(Debug, Clone)]
pub struct StopSignals {
    received: Arc<AtomicUsize>,
}

impl StopSignals {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that only record the signal.
    pub fn install() -> std::io::Result<Self> {
        let received = Arc::new(AtomicUsize::new(0));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let number = usize::try_from(signal).unwrap_or(usize::MAX);
            signal_hook::flag::register_usize(signal, Arc::clone(&received), number)?;
        }
        Ok(Self { received })
    }

    /// The last stop signal received since the last `take`, if any.
    pub fn take(&self) -> Option<StopSignal> {
        match self.received.swap(0, Ordering::SeqCst) {
            0 => None,
            number => Some(StopSignal(i32::try_from(number).unwrap_or(SIGTERM))),
        }
    }

    /// The last stop signal received, if any.
    pub fn received(&self) -> Option<StopSignal> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            number => Some(StopSignal(i32::try_from(number).unwrap_or(SIGTERM))),
        }
    }
}

/// A signal that asked `pith` to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(i32);

impl StopSignal {
    /// What `pith` says when it stops for this signal.
    pub fn message(self) -> &'static str {
        match self.0 {
            SIGINT => "stopped by Ctrl-C",
            SIGHUP => "stopped by SIGHUP (the terminal went away)",
            _ => "stopped by SIGTERM",
        }
    }

    /// The shell's convention: 128 + the signal number (130 for Ctrl-C).
    pub fn exit_status(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(u8::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_and_messages() {
        assert_eq!(StopSignal(SIGINT).exit_status(), 130);
        assert_eq!(StopSignal(SIGINT).message(), "stopped by Ctrl-C");
        assert_eq!(StopSignal(SIGTERM).exit_status(), 143);
        assert_eq!(StopSignal(SIGHUP).exit_status(), 129);
    }
}
