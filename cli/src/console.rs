//! The program's console (COM1, on console.sock): its output copied to stdout, and stdin sent to it as console input records.
//!
//! Two threads, because either side may block for as long as it likes: the output thread waits
//! on the guest and on whoever reads our stdout, the input thread on our stdin (a terminal may
//! never say anything) and on the guest (a program that never reads fd 0 never drains the UART).
//! `pith` waits for the output thread before it exits, so no output is lost, but never for the
//! input thread.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use pith_loader::console_input::{encode_input, encode_input_end};

/// How much is copied at a time, each way.
const CHUNK: usize = 64 * 1024;

/// How long the input thread waits before reading again a stdin that said "would block".
const NONBLOCKING_STDIN_RETRY: Duration = Duration::from_millis(10);

/// How copying the console to stdout ended.
#[derive(Debug)]
pub enum OutputEnd {
    /// QEMU closed the console (it exits): everything the guest wrote is on stdout.
    Finished,
    /// Writing to stdout failed with EPIPE: its reader has gone, as in `pith run prog | head -1`.
    StdoutClosed,
    /// Writing to stdout failed for another reason.
    WriteFailed(std::io::Error),
    /// Reading the console socket failed.
    ReadFailed(std::io::Error),
}

/// Copies `console` to `stdout` until the console ends or stdout fails, flushing after each
/// piece so interactive output shows at once.
pub fn copy_output(mut console: impl Read, mut stdout: impl Write) -> OutputEnd {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let count = match console.read(&mut buffer) {
            Ok(0) => return OutputEnd::Finished,
            Ok(count) => count,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            // QEMU exited while input we sent was still unread on its side: Linux then reports
            // ECONNRESET once, after every byte QEMU wrote has been read.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return OutputEnd::Finished,
            Err(error) => return OutputEnd::ReadFailed(error),
        };
        let piece = buffer.get(..count).unwrap_or_default();
        match stdout.write_all(piece).and_then(|()| stdout.flush()) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::BrokenPipe => return OutputEnd::StdoutClosed,
            Err(error) => return OutputEnd::WriteFailed(error),
        }
    }
}

/// The thread that copies the console to stdout.
#[derive(Debug)]
pub struct OutputRelay {
    thread: Option<JoinHandle<OutputEnd>>,
    end: Option<OutputEnd>,
    /// Our end of the console, kept open after the thread stops reading (stdout closed) until
    /// `pith` stops the VM, so that the guest waits on its UART rather than QEMU seeing a
    /// disconnected console.
    _console: UnixStream,
}

impl OutputRelay {
    /// Starts copying `console` to `stdout`.
    pub fn start(
        console: UnixStream,
        stdout: impl Write + Send + 'static,
    ) -> std::io::Result<Self> {
        let kept_open = console.try_clone()?;
        let thread = std::thread::Builder::new()
            .name("console-output".into())
            .spawn(move || copy_output(console, stdout))?;
        Ok(Self {
            thread: Some(thread),
            end: None,
            _console: kept_open,
        })
    }

    /// How the copy ended, once it has; never waits.
    pub fn end(&mut self) -> Option<&OutputEnd> {
        if let Some(thread) = self.thread.take_if(|thread| thread.is_finished()) {
            self.end = Some(thread.join().unwrap_or_else(|_| {
                OutputEnd::WriteFailed(std::io::Error::other(
                    "the thread copying the console to stdout panicked",
                ))
            }));
        }
        self.end.as_ref()
    }

    /// Whether stdout's reader has gone.
    pub fn stdout_closed(&mut self) -> bool {
        matches!(self.end(), Some(OutputEnd::StdoutClosed))
    }
}

/// How sending stdin to the guest ended.
#[derive(Debug)]
pub enum InputEnd {
    /// Stdin reached end of file and the `InputEnd` record was sent.
    EndSent,
    /// Reading stdin failed; the guest was sent `InputEnd`, as for end of file.
    ReadFailed(std::io::Error),
    /// Writing to the console failed: QEMU has exited or is exiting.
    GuestGone(std::io::Error),
}

/// Sends what `stdin` gives, as it arrives, to `console` as `Input` records, then one `InputEnd`.
pub fn relay_input(mut stdin: impl Read, mut console: impl Write) -> InputEnd {
    let mut buffer = vec![0u8; CHUNK];
    let mut records = Vec::with_capacity(CHUNK + 16);
    let read_error = loop {
        let count = match stdin.read(&mut buffer) {
            Ok(0) => break None,
            Ok(count) => count,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            // A stdin left non-blocking by whoever started `pith`.
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(NONBLOCKING_STDIN_RETRY);
                continue;
            }
            Err(error) => break Some(error),
        };
        records.clear();
        encode_input(buffer.get(..count).unwrap_or_default(), |piece| {
            records.extend_from_slice(piece)
        });
        if let Err(error) = console.write_all(&records) {
            return InputEnd::GuestGone(error);
        }
    };
    records.clear();
    encode_input_end(|piece| records.extend_from_slice(piece));
    if let Err(error) = console.write_all(&records) {
        return InputEnd::GuestGone(error);
    }
    match read_error {
        None => InputEnd::EndSent,
        Some(error) => InputEnd::ReadFailed(error),
    }
}

/// The console socket's writing side, shared by the stdin thread and the signal path: each
/// `write_all` holds the lock for the whole of it, so records never interleave.
#[derive(Debug, Clone)]
pub struct ConsoleWriter(std::sync::Arc<std::sync::Mutex<UnixStream>>);

impl ConsoleWriter {
    pub fn new(socket: UnixStream) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(socket)))
    }

    /// Tells the guest the host's wall clock (a `Time` record).
    pub fn send_time(&self, realtime_ns: u64) -> std::io::Result<()> {
        let mut record = Vec::new();
        pith_loader::console_input::encode_time(realtime_ns, |piece| {
            record.extend_from_slice(piece)
        });
        self.clone().write_all(&record)
    }

    /// As `send_time`, but only if the socket is free right now: a periodic resync may skip a
    /// beat rather than wait behind the stdin thread.
    pub fn try_send_time(&self, realtime_ns: u64) -> bool {
        let Ok(mut socket) = self.0.try_lock() else {
            return false;
        };
        let mut record = Vec::new();
        pith_loader::console_input::encode_time(realtime_ns, |piece| {
            record.extend_from_slice(piece)
        });
        socket.write_all(&record).is_ok()
    }

    /// Asks the guest to send `signal` to the program.
    pub fn send_signal(&self, signal: u8) -> std::io::Result<()> {
        let mut record = Vec::new();
        pith_loader::console_input::encode_signal(signal, |piece| record.extend_from_slice(piece));
        self.clone().write_all(&record)
    }
}

impl Write for ConsoleWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut socket = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("the console writer was poisoned"))?;
        socket.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut socket = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("the console writer was poisoned"))?;
        socket.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the thread that sends our stdin to the guest, once `ready` says the guest's console
/// takes input. It is never joined: it may be blocked in a read of a terminal, or in a write to
/// a guest that never reads, when `pith` exits.
pub fn start_input_relay(
    console: ConsoleWriter,
    ready: std::sync::mpsc::Receiver<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || {
            // No input before the guest has set up its UART: QEMU would drop it.
            if ready.recv().is_err() {
                return;
            }
            if let InputEnd::ReadFailed(error) = relay_input(std::io::stdin(), console) {
                eprintln!(
                    "pith: reading stdin failed ({error}); the program sees end of file on fd 0"
                );
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pith_loader::console_input::{InputDecoder, InputEvent};
    use std::sync::{Arc, Mutex};

    /// A `Write` the test can look into after the thread that owns it has finished.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stdout whose reader is gone after `accepts` bytes.
    struct ClosesAfter {
        accepts: usize,
    }

    impl Write for ClosesAfter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.accepts == 0 {
                return Err(ErrorKind::BrokenPipe.into());
            }
            let count = bytes.len().min(self.accepts);
            self.accepts -= count;
            Ok(count)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stdin that gives its bytes in reads of at most `piece` bytes, with interruptions.
    struct Trickle {
        bytes: Vec<u8>,
        offset: usize,
        piece: usize,
        interrupt_next: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt_next = !self.interrupt_next;
            if self.interrupt_next {
                return Err(ErrorKind::Interrupted.into());
            }
            let rest = &self.bytes[self.offset..];
            let count = rest.len().min(self.piece).min(buffer.len());
            buffer[..count].copy_from_slice(&rest[..count]);
            self.offset += count;
            Ok(count)
        }
    }

    fn decoded(stream: &[u8]) -> (Vec<u8>, usize) {
        let mut decoder = InputDecoder::new();
        let mut data = Vec::new();
        let mut ends = 0;
        for &byte in stream {
            match decoder.push_byte(byte) {
                Some(InputEvent::Data(byte)) => {
                    assert_eq!(ends, 0, "data after the end");
                    data.push(byte);
                }
                Some(InputEvent::End) => ends += 1,
                Some(InputEvent::UnknownKind(kind)) => panic!("kind {kind}"),
                Some(InputEvent::Signal(signal)) => panic!("signal {signal}"),
                Some(InputEvent::Time(time)) => panic!("time {time}"),
                None => {}
            }
        }
        assert!(decoder.is_between_records());
        (data, ends)
    }

    #[test]
    fn stdin_is_sent_framed_then_ended() {
        let input: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
        for piece in [1, 1000, 65535, 65536, 1 << 20] {
            let mut console = Vec::new();
            let stdin = Trickle {
                bytes: input.clone(),
                offset: 0,
                piece,
                interrupt_next: false,
            };
            assert!(matches!(
                relay_input(stdin, &mut console),
                InputEnd::EndSent
            ));
            assert_eq!(decoded(&console), (input.clone(), 1), "reads of {piece}");
        }
    }

    #[test]
    fn empty_stdin_is_just_the_end() {
        let mut console = Vec::new();
        assert!(matches!(
            relay_input(std::io::empty(), &mut console),
            InputEnd::EndSent
        ));
        assert_eq!(console, [2, 0, 0]);
    }

    #[test]
    fn a_failing_stdin_ends_the_input() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(5)) // EIO: the terminal hung up
            }
        }
        let mut console = Vec::new();
        assert!(matches!(
            relay_input(Broken, &mut console),
            InputEnd::ReadFailed(_)
        ));
        assert_eq!(console, [2, 0, 0]);
    }

    #[test]
    fn a_vanished_guest_stops_the_input() {
        let (pith_side, qemu_side) = UnixStream::pair().expect("socket pair");
        drop(qemu_side);
        assert!(matches!(
            relay_input(&b"hello"[..], pith_side),
            InputEnd::GuestGone(_)
        ));
    }

    #[test]
    fn console_output_is_copied_exactly_until_qemu_closes_it() {
        let (pith_side, qemu_side) = UnixStream::pair().expect("socket pair");
        let stdout = Shared::default();
        let mut relay = OutputRelay::start(pith_side, stdout.clone()).expect("start");
        let output: Vec<u8> = (0..3_000_000u32).map(|index| (index % 253) as u8).collect();
        (&qemu_side).write_all(&output).expect("write");
        assert!(relay.end().is_none(), "the console is still open");
        drop(qemu_side);
        while relay.end().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(matches!(relay.end(), Some(OutputEnd::Finished)));
        assert!(!relay.stdout_closed());
        assert!(*stdout.0.lock().expect("lock") == output);
    }

    #[test]
    fn unread_input_at_qemus_exit_does_not_lose_output() {
        // QEMU exits with our input unread: the kernel reports ECONNRESET, after the data.
        let (pith_side, qemu_side) = UnixStream::pair().expect("socket pair");
        (&pith_side).write_all(b"input never read").expect("write");
        (&qemu_side).write_all(b"last words").expect("write");
        drop(qemu_side);
        let mut stdout = Vec::new();
        assert!(matches!(
            copy_output(&pith_side, &mut stdout),
            OutputEnd::Finished
        ));
        assert_eq!(stdout, b"last words");
    }

    #[test]
    fn a_closed_stdout_stops_the_copy() {
        let (pith_side, qemu_side) = UnixStream::pair().expect("socket pair");
        let mut relay = OutputRelay::start(pith_side, ClosesAfter { accepts: 10 }).expect("start");
        (&qemu_side).write_all(&[b'y'; 100]).expect("write");
        while relay.end().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(relay.stdout_closed());
    }
}
