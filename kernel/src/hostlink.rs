//! The host link: framed records to the `pith` CLI through QEMU's debug console port (0xe9).
//!
//! The record format lives in `pith_loader::hostlink`; see docs/design/boot-protocol.md.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use pith_loader::hostlink::{record_header, MAX_RECORD_PAYLOAD};
pub use pith_loader::hostlink::{LogLevel, RecordKind};

const DEBUGCON_PORT: u16 = 0xe9;

/// The most verbose level sent to the host (`pith.log=` on the command line).
static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

pub fn set_max_level(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

fn out(bytes: &[u8]) {
    // SAFETY: `rep outsb` reads `bytes` (rsi, rcx) and writes them to the debug console port;
    // it touches no other memory. DF is clear (the ABI guarantees it in Rust code).
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") DEBUGCON_PORT,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, readonly, preserves_flags)
        );
    }
}

/// Sends one record, split into several when longer than a record can hold.
pub fn send(kind: RecordKind, payload: &[u8]) {
    if payload.is_empty() {
        out(&record_header(kind, 0));
        return;
    }
    for chunk in payload.chunks(MAX_RECORD_PAYLOAD) {
        // chunks() keeps each piece within MAX_RECORD_PAYLOAD, which is u16::MAX.
        out(&record_header(kind, chunk.len() as u16));
        out(chunk);
    }
}

/// Formats into a fixed buffer: logging must work before the heap exists and while it is broken.
pub struct LineBuffer {
    bytes: [u8; 1024],
    len: usize,
}

impl LineBuffer {
    pub const fn new() -> Self {
        LineBuffer {
            bytes: [0; 1024],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let mut take = text.len().min(room);
        // Cut on a character boundary: a split character would make the line invalid UTF-8.
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Sends a log line at `level`: the level byte, then the text.
pub fn log(level: LogLevel, args: fmt::Arguments) {
    if !enabled(level) {
        return;
    }
    let mut line = LineBuffer::new();
    let _ = line.write_char(level as u8 as char);
    let _ = line.write_fmt(args);
    send(RecordKind::Log, line.as_bytes());
}

/// Sends the program's exit status; the CLI exits with it.
pub fn send_exit(status: i32) {
    send(RecordKind::Exit, &status.to_le_bytes());
}

#[macro_export]
macro_rules! log_error { ($($arg:tt)*) => { $crate::hostlink::log($crate::hostlink::LogLevel::Error, format_args!($($arg)*)) }; }
#[macro_export]
macro_rules! log_warn { ($($arg:tt)*) => { $crate::hostlink::log($crate::hostlink::LogLevel::Warn, format_args!($($arg)*)) }; }
#[macro_export]
macro_rules! log_info { ($($arg:tt)*) => { $crate::hostlink::log($crate::hostlink::LogLevel::Info, format_args!($($arg)*)) }; }
#[macro_export]
macro_rules! log_debug { ($($arg:tt)*) => { $crate::hostlink::log($crate::hostlink::LogLevel::Debug, format_args!($($arg)*)) }; }
