//! The terminal's settings, saved before QEMU changes them and put back once QEMU is gone.

use std::io::IsTerminal;

use rustix::process::getpgrp;
use rustix::termios::{tcgetattr, tcgetpgrp, tcsetattr, OptionalActions, Termios};

/// The settings of stdin when it is a terminal.
#[derive(Debug)]
pub struct SavedTerminal {
    settings: Option<Termios>,
}

impl SavedTerminal {
    /// Saves stdin's settings; nothing to save when stdin is not a terminal.
    pub fn save() -> Self {
        let stdin = std::io::stdin();
        let settings = if stdin.is_terminal() {
            tcgetattr(&stdin).ok()
        } else {
            None
        };
        Self { settings }
    }

    /// Puts the saved settings back. QEMU restores the terminal itself when it exits on its
    /// own, but not when it is killed or crashes; doing it again is harmless.
    pub fn restore(&self) {
        let Some(settings) = &self.settings else {
            return;
        };
        let stdin = std::io::stdin();
        // Only the foreground job may change the terminal: from the background, tcsetattr
        // would stop `pith` with SIGTTOU.
        if tcgetpgrp(&stdin).ok() != Some(getpgrp()) {
            return;
        }
        // Best effort: on failure the terminal stays as QEMU left it (`reset` fixes it), and
        // there is nothing better to do while exiting.
        let _ = tcsetattr(&stdin, OptionalActions::Now, settings);
    }
}

/// When both stdin and stdout are a terminal (what the program's console is), its size as
/// (rows, columns); 24x80 if the terminal does not say.
pub fn console_terminal_size() -> Option<(u16, u16)> {
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    if !(stdin.is_terminal() && stdout.is_terminal()) {
        return None;
    }
    match rustix::termios::tcgetwinsize(&stdout) {
        Ok(size) if size.ws_row > 0 && size.ws_col > 0 => Some((size.ws_row, size.ws_col)),
        _ => Some((24, 80)),
    }
}
