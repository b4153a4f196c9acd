//! The host terminal as the program sees it: whether its console is one, and its size.
//!
//! `pith` leaves the terminal's modes alone: stdin stays in cooked mode, so the host's line
//! discipline gives the program line editing, echo and Ctrl-D as end of file (the guest has no
//! line discipline), and Ctrl-C is a SIGINT to `pith`. QEMU never sees the terminal.

use std::io::IsTerminal;

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
