//! The program's console: output goes to COM1; input comes from COM1 as console input records
//! (docs/design/boot-protocol.md), so that the end of the host's stdin reaches the program.

use core::sync::atomic::{AtomicU64, Ordering};
use pith_loader::console_input::{InputDecoder, InputEvent};
use spin::Mutex;

/// Signals the host asked for (console input `Signal` records), one bit each, until taken.
static HOST_SIGNALS: AtomicU64 = AtomicU64::new(0);

/// Puts back signals that could not be raised yet.
pub fn requeue_host_signals(signals: u64) {
    HOST_SIGNALS.fetch_or(signals, Ordering::Relaxed);
}

/// Takes the signals the host asked for.
pub fn take_host_signals() -> u64 {
    HOST_SIGNALS.swap(0, Ordering::Relaxed)
}

/// Decoded input that arrived before the program asked for it (FIONREAD counts it).
const BUFFER_SIZE: usize = 4096;

struct ConsoleInput {
    decoder: InputDecoder,
    /// Input arrives framed (`pith.console=framed`); otherwise raw bytes that never end.
    framed: bool,
    /// The host's stdin ended: once the buffer is empty, reads return 0.
    ended: bool,
    buffer: [u8; BUFFER_SIZE],
    /// The buffered bytes are buffer[start..start + len] (wrapping).
    start: usize,
    len: usize,
    /// Record kinds already reported as unknown, one bit each.
    unknown_logged: [u64; 4],
}

static INPUT: Mutex<ConsoleInput> = Mutex::new(ConsoleInput {
    decoder: InputDecoder::new(),
    framed: false,
    ended: false,
    buffer: [0; BUFFER_SIZE],
    start: 0,
    len: 0,
    unknown_logged: [0; 4],
});

pub fn init(framed: bool) {
    INPUT.lock().framed = framed;
}

pub fn write(bytes: &[u8]) {
    crate::serial::write(bytes)
}

impl ConsoleInput {
    /// Moves what the UART holds into the buffer, decoding records; stops when the UART is
    /// empty or the buffer full (the host then waits: flow control).
    fn drain_uart(&mut self) {
        // Keep reading after the end of input: the host's signals come the same way.
        while self.len < BUFFER_SIZE {
            let Some(byte) = crate::serial::try_read_byte() else {
                return;
            };
            let event = if self.framed {
                self.decoder.push_byte(byte)
            } else {
                Some(InputEvent::Data(byte))
            };
            match event {
                Some(InputEvent::Data(data)) => {
                    self.buffer[(self.start + self.len) % BUFFER_SIZE] = data;
                    self.len += 1;
                }
                Some(InputEvent::End) => self.ended = true,
                Some(InputEvent::Signal(signal)) if (1..=64).contains(&signal) => {
                    HOST_SIGNALS.fetch_or(1 << (signal - 1), Ordering::Relaxed);
                    // Decoded inside a syscall (a read): raise it on the way out.
                    crate::syscall::set_exit_work(true);
                }
                Some(InputEvent::Signal(_)) => {}
                Some(InputEvent::Time(realtime_ns)) => crate::clock::set_realtime(realtime_ns),
                Some(InputEvent::UnknownKind(kind)) => {
                    let (word, bit) = (kind as usize / 64, 1u64 << (kind % 64));
                    if self.unknown_logged[word] & bit == 0 {
                        self.unknown_logged[word] |= bit;
                        crate::log_warn!("console input record of unknown kind {kind} skipped");
                    }
                }
                None => {}
            }
        }
    }

    fn take(&mut self, out: &mut [u8]) -> usize {
        let count = out.len().min(self.len);
        for slot in out.iter_mut().take(count) {
            *slot = self.buffer[self.start];
            self.start = (self.start + 1) % BUFFER_SIZE;
        }
        self.len -= count;
        count
    }
}

/// Reads the program's input: what is waiting (up to `out.len()`), 0 at the end of input, or
/// None when nothing is waiting yet. Waiting is the syscall layer's (it must also watch for
/// signals); the serial interrupt ends its waits.
pub fn read(out: &mut [u8]) -> Option<usize> {
    let mut input = INPUT.lock();
    if out.is_empty() {
        return Some(0);
    }
    input.drain_uart();
    if input.len > 0 {
        return Some(input.take(out));
    }
    input.ended.then_some(0)
}

/// Moves what the UART holds into the buffer (the serial interrupt's work).
pub fn poll() {
    INPUT.lock().drain_uart();
}

/// Whether the input has ended and all of it was read.
pub fn input_ended() -> bool {
    let mut input = INPUT.lock();
    input.drain_uart();
    input.ended && input.len == 0
}

/// How many bytes of input are waiting (FIONREAD).
pub fn available() -> usize {
    let mut input = INPUT.lock();
    input.drain_uart();
    input.len
}
