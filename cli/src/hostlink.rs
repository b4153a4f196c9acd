//! The host link: reading QEMU's connection on hostlink.sock and printing the records it carries.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use pith_loader::hostlink::{Decoder, LogLevel, Record};

/// Whether the host link is still open after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    /// QEMU closed it: it has exited, or is exiting.
    Closed,
}

/// QEMU's end of the host link, read with a short timeout so the caller can watch for signals.
#[derive(Debug)]
pub struct HostLinkReader {
    stream: UnixStream,
    decoder: Decoder,
    printer: RecordPrinter,
}

impl HostLinkReader {
    pub fn new(
        stream: UnixStream,
        printer: RecordPrinter,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        Ok(Self {
            stream,
            decoder: Decoder::new(),
            printer,
        })
    }

    /// Reads what has arrived (waiting at most the timeout) and prints every complete record to `out`.
    pub fn read_once(&mut self, out: &mut impl Write) -> std::io::Result<LinkState> {
        let mut buffer = [0u8; 16 * 1024];
        let count = match self.stream.read(&mut buffer) {
            Ok(0) => return Ok(LinkState::Closed),
            Ok(count) => count,
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                return Ok(LinkState::Open)
            }
            Err(error) => return Err(error),
        };
        self.decoder.push(&buffer[..count]);
        while let Some(decoded) = self.decoder.next_record() {
            match decoded {
                Ok(record) => self.printer.print(record, out)?,
                // The decoder has skipped the bad record; say so and go on with the next.
                Err(error) => writeln!(out, "pith: {error}")?,
            }
        }
        out.flush()?;
        Ok(LinkState::Open)
    }

    /// The status of the Exit record, if one has arrived.
    pub fn exit_status(&self) -> Option<i32> {
        self.printer.exit_status
    }

    /// Whether the guest's console takes input yet.
    pub fn console_ready(&self) -> bool {
        self.printer.console_ready
    }
}

/// Prints host-link records the way `pith` shows them, and remembers the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPrinter {
    /// Show kernel log records of every level, not only errors and warnings.
    pub verbose: bool,
    /// The status of the Exit record, once it has arrived.
    pub exit_status: Option<i32>,
    /// The guest said its console takes input (ConsoleReady).
    pub console_ready: bool,
}

impl RecordPrinter {
    pub fn new(verbose: bool) -> Self {
        Self {
            verbose,
            exit_status: None,
            console_ready: false,
        }
    }

    /// Writes one record to `out` (our stderr): the program's stderr bytes unchanged, kernel
    /// log lines as `pith: <text>` (errors and warnings only unless verbose), trace lines as
    /// they are.
    pub fn print(&mut self, record: Record, out: &mut impl Write) -> std::io::Result<()> {
        match record {
            Record::Stderr(bytes) => out.write_all(&bytes),
            Record::Log { level, text } => {
                if self.verbose || matches!(level, LogLevel::Error | LogLevel::Warn) {
                    writeln!(out, "pith: {text}")
                } else {
                    Ok(())
                }
            }
            Record::Trace(line) => writeln!(out, "{line}"),
            Record::Exit(status) => {
                self.exit_status = Some(status);
                Ok(())
            }
            Record::ConsoleReady => {
                self.console_ready = true;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(verbose: bool, records: Vec<Record>) -> (String, Option<i32>) {
        let mut printer = RecordPrinter::new(verbose);
        let mut out = Vec::new();
        for record in records {
            printer.print(record, &mut out).expect("writing to a Vec");
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            printer.exit_status,
        )
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Stderr(b"partial ".to_vec()),
            Record::Log {
                level: LogLevel::Error,
                text: "e".into(),
            },
            Record::Log {
                level: LogLevel::Warn,
                text: "w".into(),
            },
            Record::Log {
                level: LogLevel::Info,
                text: "i".into(),
            },
            Record::Log {
                level: LogLevel::Debug,
                text: "d".into(),
            },
            Record::Stderr(b"line\n".to_vec()),
            Record::Trace("write(2, \"x\", 1) = 1".into()),
            Record::Exit(3),
        ]
    }

    #[test]
    fn by_default_only_errors_and_warnings_are_shown() {
        assert_eq!(
            printed(false, sample()),
            (
                "partial pith: e\npith: w\nline\nwrite(2, \"x\", 1) = 1\n".to_owned(),
                Some(3)
            )
        );
    }

    #[test]
    fn verbose_shows_every_level() {
        assert_eq!(
            printed(true, sample()).0,
            "partial pith: e\npith: w\npith: i\npith: d\nline\nwrite(2, \"x\", 1) = 1\n"
        );
    }

    #[test]
    fn a_stream_read_from_the_socket_is_decoded_and_a_bad_record_skipped() {
        use pith_loader::hostlink::{encode_exit, encode_log, encode_stderr};
        let (kernel_side, pith_side) = UnixStream::pair().expect("socket pair");
        let mut stream = Vec::new();
        encode_stderr(b"out", |bytes| stream.extend_from_slice(bytes));
        stream.extend_from_slice(&[0x7f, 1, 0, b'?']); // kind 0x7f does not exist
        encode_log(LogLevel::Warn, "careful", |bytes| {
            stream.extend_from_slice(bytes)
        });
        encode_exit(42, |bytes| stream.extend_from_slice(bytes));
        let mut reader = HostLinkReader::new(
            pith_side,
            RecordPrinter::new(false),
            Duration::from_millis(50),
        )
        .expect("reader");
        let mut out = Vec::new();
        (&kernel_side).write_all(&stream[..2]).expect("write");
        assert_eq!(reader.read_once(&mut out).expect("read"), LinkState::Open);
        assert!(out.is_empty(), "half a header is not a record");
        (&kernel_side).write_all(&stream[2..]).expect("write");
        drop(kernel_side);
        while reader.read_once(&mut out).expect("read") == LinkState::Open {}
        assert_eq!(
            String::from_utf8_lossy(&out),
            "outpith: host-link record at stream offset 6 has unknown kind byte 0x7f\npith: careful\n"
        );
        assert_eq!(reader.exit_status(), Some(42));
    }

    #[test]
    fn a_quiet_link_stays_open_until_the_timeout() {
        let (_kernel_side, pith_side) = UnixStream::pair().expect("socket pair");
        let mut reader = HostLinkReader::new(
            pith_side,
            RecordPrinter::new(false),
            Duration::from_millis(10),
        )
        .expect("reader");
        assert_eq!(
            reader.read_once(&mut Vec::new()).expect("read"),
            LinkState::Open
        );
        assert_eq!(reader.exit_status(), None);
    }

    #[test]
    fn no_exit_record_no_status() {
        assert_eq!(printed(false, vec![Record::Stderr(b"x".to_vec())]).1, None);
    }
}
