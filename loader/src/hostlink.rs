//! Host-link records (docs/design/boot-protocol.md): the kernel's allocation-free encoder and the CLI's decoder.
//!
//! Each record is `kind: u8, len: u16 LE, payload[len]`. A payload longer than 65535 bytes is sent as
//! several records of the same kind. A long `Log` or `Trace` line is split on UTF-8 character boundaries,
//! and every `Log` piece starts with the level byte, so each record decodes on its own.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Size of a record header: kind and length.
pub const RECORD_HEADER_SIZE: usize = 3;
/// The most payload bytes one record carries.
pub const MAX_RECORD_PAYLOAD: usize = u16::MAX as usize;

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// Bytes the program wrote to fd 2.
    Stderr = 1,
    /// A level byte, then one line of kernel log text.
    Log = 2,
    /// The status `pith run` exits with, as an i32 LE.
    Exit = 3,
    /// One strace-style line.
    Trace = 4,
    /// No payload: the guest's console is set up, and console input may flow. (Input that
    /// reaches the UART earlier is lost when the guest enables its FIFO.)
    ConsoleReady = 5,
}

impl RecordKind {
    /// The kind for a raw byte, or `None` if it is not one this version knows.
    pub fn from_u8(kind: u8) -> Option<Self> {
        match kind {
            1 => Some(Self::Stderr),
            2 => Some(Self::Log),
            3 => Some(Self::Exit),
            4 => Some(Self::Trace),
            5 => Some(Self::ConsoleReady),
            _ => None,
        }
    }
}

/// The level of a `Log` record; lower is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    /// Something failed.
    Error = 0,
    /// Something is wrong but the program goes on.
    Warn = 1,
    /// Worth knowing.
    Info = 2,
    /// For people working on Pith.
    Debug = 3,
}

impl LogLevel {
    /// The level for a raw byte, or `None` if it is not one this version knows.
    pub fn from_u8(level: u8) -> Option<Self> {
        match level {
            0 => Some(Self::Error),
            1 => Some(Self::Warn),
            2 => Some(Self::Info),
            3 => Some(Self::Debug),
            _ => None,
        }
    }

    /// The level's name as `pith.log=` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The header of a record of `kind` with `len` payload bytes.
pub fn record_header(kind: RecordKind, len: u16) -> [u8; RECORD_HEADER_SIZE] {
    let [low, high] = len.to_le_bytes();
    [kind as u8, low, high]
}

/// Sends `payload` as records of `kind`, splitting it into pieces of at most 65535 bytes. `sink` is called
/// with each header and then each payload piece. An empty payload sends one empty record. Use
/// [`encode_log`] and [`encode_trace`] for text, which must not be split inside a character.
pub fn encode_records(kind: RecordKind, payload: &[u8], mut sink: impl FnMut(&[u8])) {
    if payload.is_empty() {
        sink(&record_header(kind, 0));
        return;
    }
    for piece in payload.chunks(MAX_RECORD_PAYLOAD) {
        sink(&record_header(kind, piece_len(piece)));
        sink(piece);
    }
}

/// Sends bytes the program wrote to fd 2.
pub fn encode_stderr(bytes: &[u8], sink: impl FnMut(&[u8])) {
    encode_records(RecordKind::Stderr, bytes, sink);
}

/// Sends one kernel log line (without its newline). A line over 65534 bytes becomes several records, each
/// starting with the level byte and split between characters.
pub fn encode_log(level: LogLevel, text: &str, mut sink: impl FnMut(&[u8])) {
    let level_byte = [level as u8];
    for piece in text_pieces(text, MAX_RECORD_PAYLOAD - 1) {
        sink(&record_header(RecordKind::Log, piece_len(piece) + 1));
        sink(&level_byte);
        sink(piece);
    }
}

/// Sends one `--trace` line (without its newline), split between characters if it is over 65535 bytes.
pub fn encode_trace(text: &str, mut sink: impl FnMut(&[u8])) {
    for piece in text_pieces(text, MAX_RECORD_PAYLOAD) {
        sink(&record_header(RecordKind::Trace, piece_len(piece)));
        sink(piece);
    }
}

/// Sends the exit status.
pub fn encode_exit(status: i32, mut sink: impl FnMut(&[u8])) {
    sink(&record_header(RecordKind::Exit, 4));
    sink(&status.to_le_bytes());
}

/// The length of a piece known to be at most 65535 bytes.
fn piece_len(piece: &[u8]) -> u16 {
    u16::try_from(piece.len()).unwrap_or(u16::MAX)
}

/// Splits `text` into pieces of at most `limit` bytes (`limit` >= 4), never inside a character.
/// Empty text gives one empty piece.
fn text_pieces(text: &str, limit: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    core::iter::from_fn(move || {
        let current = rest?;
        if current.len() <= limit {
            rest = None;
            return Some(current.as_bytes());
        }
        let mut cut = limit;
        while !current.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = current.split_at(cut);
        rest = Some(tail);
        Some(piece.as_bytes())
    })
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Bytes the program wrote to fd 2.
    Stderr(Vec<u8>),
    /// A kernel log line (or a piece of a long one).
    Log {
        /// Its level.
        level: LogLevel,
        /// The text, without a newline.
        text: String,
    },
    /// The status `pith run` exits with.
    Exit(i32),
    /// A `--trace` line (or a piece of a long one).
    Trace(String),
    /// The guest's console takes input from now on.
    ConsoleReady,
}

/// A record that could not be decoded. The decoder has skipped it and goes on with the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostLinkError {
    /// The kind byte is not one this version knows.
    UnknownKind {
        /// The kind byte.
        kind: u8,
        /// Offset of the record in the stream.
        offset: u64,
    },
    /// A `Log` record has no level byte.
    EmptyLog {
        /// Offset of the record in the stream.
        offset: u64,
    },
    /// A `Log` record's level byte is not a known level.
    UnknownLogLevel {
        /// The level byte.
        level: u8,
        /// Offset of the record in the stream.
        offset: u64,
    },
    /// An `Exit` record's payload is not 4 bytes.
    BadExitLength {
        /// The payload length.
        len: u16,
        /// Offset of the record in the stream.
        offset: u64,
    },
    /// A `Log` or `Trace` record's text is not UTF-8.
    InvalidUtf8 {
        /// Which kind of record.
        kind: RecordKind,
        /// Offset of the record in the stream.
        offset: u64,
    },
}

impl fmt::Display for HostLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind { kind, offset } => write!(
                f,
                "host-link record at stream offset {offset} has unknown kind byte {kind:#04x}"
            ),
            Self::EmptyLog { offset } => write!(
                f,
                "host-link Log record at stream offset {offset} is empty: it has no level byte"
            ),
            Self::UnknownLogLevel { level, offset } => write!(
                f,
                "host-link Log record at stream offset {offset} has unknown level byte {level}"
            ),
            Self::BadExitLength { len, offset } => write!(
                f,
                "host-link Exit record at stream offset {offset} has a {len}-byte payload, not 4"
            ),
            Self::InvalidUtf8 { kind, offset } => write!(
                f,
                "host-link {kind:?} record at stream offset {offset} is not valid UTF-8"
            ),
        }
    }
}

impl core::error::Error for HostLinkError {}

/// Reassembles records from a byte stream that arrives in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already consumed.
    start: usize,
    /// Stream offset of `buffer[start]`.
    offset: u64,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record, `None` if more bytes are needed. A malformed record gives one `Err` and
    /// is skipped, so the caller may keep calling.
    pub fn next_record(&mut self) -> Option<Result<Record, HostLinkError>> {
        let pending = self.buffer.get(self.start..)?;
        let (header, rest) = pending.split_first_chunk::<RECORD_HEADER_SIZE>()?;
        let [kind, low, high] = *header;
        let len = u16::from_le_bytes([low, high]);
        let payload = rest.get(..usize::from(len))?;
        let offset = self.offset;
        let record = decode_record(kind, len, payload, offset);
        let consumed = RECORD_HEADER_SIZE + usize::from(len);
        self.start += consumed;
        self.offset += consumed as u64;
        Some(record)
    }

    /// Bytes received but not yet returned as a record (a partial record at the end of a stream).
    pub fn buffered_len(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// Stream offset of the next record.
    pub fn stream_offset(&self) -> u64 {
        self.offset
    }
}

fn decode_record(kind: u8, len: u16, payload: &[u8], offset: u64) -> Result<Record, HostLinkError> {
    let Some(kind) = RecordKind::from_u8(kind) else {
        return Err(HostLinkError::UnknownKind { kind, offset });
    };
    let text = |bytes: &[u8]| {
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| HostLinkError::InvalidUtf8 { kind, offset })
    };
    match kind {
        RecordKind::Stderr => Ok(Record::Stderr(payload.to_vec())),
        RecordKind::Log => {
            let Some((&level, line)) = payload.split_first() else {
                return Err(HostLinkError::EmptyLog { offset });
            };
            let level =
                LogLevel::from_u8(level).ok_or(HostLinkError::UnknownLogLevel { level, offset })?;
            Ok(Record::Log {
                level,
                text: text(line)?,
            })
        }
        RecordKind::Exit => {
            let status: [u8; 4] = payload
                .try_into()
                .map_err(|_| HostLinkError::BadExitLength { len, offset })?;
            Ok(Record::Exit(i32::from_le_bytes(status)))
        }
        RecordKind::Trace => Ok(Record::Trace(text(payload)?)),
        RecordKind::ConsoleReady => Ok(Record::ConsoleReady),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(encode: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(&mut |piece: &[u8]| bytes.extend_from_slice(piece));
        bytes
    }

    fn decode_all(bytes: &[u8]) -> Vec<Result<Record, HostLinkError>> {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        let records = core::iter::from_fn(|| decoder.next_record()).collect();
        assert_eq!(decoder.buffered_len(), 0);
        records
    }

    #[test]
    fn header_layout() {
        assert_eq!(record_header(RecordKind::Stderr, 0x1234), [1, 0x34, 0x12]);
        assert_eq!(record_header(RecordKind::Trace, 65535), [4, 0xff, 0xff]);
    }

    #[test]
    fn exact_encodings() {
        assert_eq!(
            collect(|sink| encode_exit(-2, sink)),
            [3, 4, 0, 0xfe, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            collect(|sink| encode_log(LogLevel::Warn, "hi", sink)),
            [2, 3, 0, 1, b'h', b'i']
        );
        assert_eq!(collect(|sink| encode_stderr(b"", sink)), [1, 0, 0]);
        assert_eq!(collect(|sink| encode_trace("", sink)), [4, 0, 0]);
    }

    #[test]
    fn round_trip_every_kind() {
        let mut stream = Vec::new();
        let mut sink = |piece: &[u8]| stream.extend_from_slice(piece);
        encode_stderr(b"oops\n\xff", &mut sink);
        encode_log(LogLevel::Error, "page fault at 0x0", &mut sink);
        encode_log(LogLevel::Debug, "", &mut sink);
        encode_trace("write(2, \"x\", 1) = 1", &mut sink);
        encode_exit(137, &mut sink);
        let records: Vec<Record> = decode_all(&stream)
            .into_iter()
            .map(|record| record.expect("valid"))
            .collect();
        assert_eq!(
            records,
            [
                Record::Stderr(b"oops\n\xff".to_vec()),
                Record::Log {
                    level: LogLevel::Error,
                    text: "page fault at 0x0".into()
                },
                Record::Log {
                    level: LogLevel::Debug,
                    text: String::new()
                },
                Record::Trace("write(2, \"x\", 1) = 1".into()),
                Record::Exit(137),
            ]
        );
    }

    #[test]
    fn records_split_across_any_push_boundaries() {
        let mut stream = Vec::new();
        let mut sink = |piece: &[u8]| stream.extend_from_slice(piece);
        encode_stderr(b"first", &mut sink);
        encode_log(LogLevel::Info, "second", &mut sink);
        encode_exit(0, &mut sink);
        let expected: Vec<Record> = decode_all(&stream)
            .into_iter()
            .map(|record| record.expect("valid"))
            .collect();
        assert_eq!(expected.len(), 3);
        for piece_size in 1..=stream.len() {
            let mut decoder = Decoder::new();
            let mut records = Vec::new();
            for piece in stream.chunks(piece_size) {
                decoder.push(piece);
                while let Some(record) = decoder.next_record() {
                    records.push(record.expect("valid"));
                }
            }
            assert_eq!(records, expected, "pieces of {piece_size} bytes");
            assert_eq!(decoder.buffered_len(), 0);
            assert_eq!(decoder.stream_offset(), stream.len() as u64);
        }
    }

    #[test]
    fn partial_record_waits_for_more() {
        let mut decoder = Decoder::new();
        decoder.push(&[3, 4]);
        assert_eq!(decoder.next_record(), None);
        decoder.push(&[0, 1, 0]);
        assert_eq!(decoder.next_record(), None);
        assert_eq!(decoder.buffered_len(), 5);
        decoder.push(&[0, 0]);
        assert_eq!(decoder.next_record(), Some(Ok(Record::Exit(1))));
        assert_eq!(decoder.next_record(), None);
    }

    #[test]
    fn long_payload_is_split_into_full_records() {
        let payload: Vec<u8> = (0..200_000u32).map(|index| index as u8).collect();
        let mut calls = Vec::new();
        encode_stderr(&payload, |piece| calls.push(piece.to_vec()));
        // header, piece, header, piece, ...: 65535 + 65535 + 65535 + 3395.
        assert_eq!(calls.len(), 8);
        assert_eq!(calls[0], [1, 0xff, 0xff]);
        assert_eq!(calls[1].len(), 65535);
        assert_eq!(calls[6], [1, 0x43, 0x0d]);
        assert_eq!(calls[7].len(), 200_000 - 3 * 65535);
        let stream: Vec<u8> = calls.concat();
        let mut joined = Vec::new();
        for record in decode_all(&stream) {
            match record.expect("valid") {
                Record::Stderr(bytes) => joined.extend_from_slice(&bytes),
                other => panic!("unexpected record {other:?}"),
            }
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn long_text_is_split_between_characters() {
        // 'é' is two bytes; 40000 of them is 80000 bytes, so the cut lands mid-character unless handled.
        let line: String = core::iter::repeat_n('é', 40_000).collect::<String>() + "!";
        let stream = collect(|sink| encode_log(LogLevel::Info, &line, sink));
        let mut joined = String::new();
        for record in decode_all(&stream) {
            match record.expect("every piece is valid UTF-8") {
                Record::Log { level, text } => {
                    assert_eq!(level, LogLevel::Info);
                    assert!(text.len() < MAX_RECORD_PAYLOAD);
                    joined.push_str(&text);
                }
                other => panic!("unexpected record {other:?}"),
            }
        }
        assert_eq!(joined, line);

        let stream = collect(|sink| encode_trace(&line, sink));
        let pieces: Vec<Record> = decode_all(&stream)
            .into_iter()
            .map(|record| record.expect("valid"))
            .collect();
        assert_eq!(pieces.len(), 2);
        let Record::Trace(first) = &pieces[0] else {
            panic!("expected Trace");
        };
        assert_eq!(first.len(), 65534); // 65535 would cut 'é' in half
    }

    #[test]
    fn unknown_kind_is_reported_and_skipped() {
        let mut stream = vec![7, 2, 0, b'z', b'z'];
        stream.extend(collect(|sink| encode_exit(5, sink)));
        let records = decode_all(&stream);
        assert_eq!(
            records[0],
            Err(HostLinkError::UnknownKind { kind: 7, offset: 0 })
        );
        assert_eq!(
            records[0].clone().expect_err("unknown").to_string(),
            "host-link record at stream offset 0 has unknown kind byte 0x07"
        );
        assert_eq!(records[1], Ok(Record::Exit(5)));
    }

    #[test]
    fn malformed_records() {
        let records = decode_all(&[
            2, 0, 0, // Log without a level
            2, 2, 0, 9, b'x', // Log with level 9
            3, 2, 0, 1, 2, // Exit with 2 bytes
            4, 1, 0, 0xff, // Trace that is not UTF-8
        ]);
        assert_eq!(
            records,
            [
                Err(HostLinkError::EmptyLog { offset: 0 }),
                Err(HostLinkError::UnknownLogLevel {
                    level: 9,
                    offset: 3
                }),
                Err(HostLinkError::BadExitLength { len: 2, offset: 8 }),
                Err(HostLinkError::InvalidUtf8 {
                    kind: RecordKind::Trace,
                    offset: 13
                }),
            ]
        );
        assert_eq!(
            records[2].clone().expect_err("bad").to_string(),
            "host-link Exit record at stream offset 8 has a 2-byte payload, not 4"
        );
    }
}
