//! Console input records (docs/design/boot-protocol.md): the CLI's encoder and the kernel's byte-at-a-time decoder.
//!
//! With `pith.console=framed`, every byte the CLI sends to COM1 belongs to a record
//! `kind: u8, len: u16 LE, payload[len]`. An `Input` record carries bytes for the program's fd 0;
//! an `InputEnd` record (no payload) says the host's stdin reached end of file. Other kinds are
//! reserved: the decoder skips their payload and reports the kind once per record.
//!
//! The decoder needs no allocation and holds a few bytes of state, so the kernel can keep one in a
//! static and feed it each byte as it comes out of the UART.

// The same framing as the host link's records, in the other direction.
pub use crate::hostlink::{MAX_RECORD_PAYLOAD, RECORD_HEADER_SIZE};

/// The kinds of console input record this version knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InputRecordKind {
    /// Bytes for the program's fd 0.
    Input = 1,
    /// The host's stdin reached end of file; no payload.
    InputEnd = 2,
    /// One byte: a signal the host asks to be sent to the program (SIGTERM for Ctrl-C).
    Signal = 3,
    /// Eight bytes, u64 LE: the host's CLOCK_REALTIME in ns when it sent the record.
    Time = 4,
}

impl InputRecordKind {
    /// The kind for a raw byte, or `None` if it is not one this version knows.
    pub const fn from_u8(kind: u8) -> Option<Self> {
        match kind {
            1 => Some(Self::Input),
            2 => Some(Self::InputEnd),
            3 => Some(Self::Signal),
            4 => Some(Self::Time),
            _ => None,
        }
    }
}

/// What one byte of the stream completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    /// One payload byte of an `Input` record: the next byte of the program's fd 0.
    Data(u8),
    /// An `InputEnd` record is complete: fd 0 is at end of file.
    End,
    /// A `Signal` record is complete: the host asks for this signal to be sent to the program.
    Signal(u8),
    /// A `Time` record is complete: the host's wall clock, in ns since the epoch.
    Time(u64),
    /// A record of this unknown kind is complete; its payload was skipped.
    UnknownKind(u8),
}

/// Where the decoder is inside the current record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte is a record's kind.
    Kind,
    /// The next byte is the low byte of the length.
    LengthLow { kind: u8 },
    /// The next byte is the high byte of the length.
    LengthHigh { kind: u8, low: u8 },
    /// `remaining` (at least 1) of `length` payload bytes are still to come; `value` gathers
    /// the first eight, little-endian (a Time record's).
    Payload {
        kind: u8,
        remaining: u16,
        length: u16,
        value: u64,
    },
}

/// Turns the console input stream, one byte at a time, into [`InputEvent`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDecoder {
    state: State,
}

impl InputDecoder {
    /// A decoder at the start of a stream.
    pub const fn new() -> Self {
        Self { state: State::Kind }
    }

    /// Takes the next byte of the stream; the event it completes, if any. An `Input` record of
    /// length 0 yields nothing; an `InputEnd` record yields [`InputEvent::End`] once its (normally
    /// empty) payload is consumed; any other kind yields [`InputEvent::UnknownKind`] once, when its
    /// payload has been skipped.
    pub fn push_byte(&mut self, byte: u8) -> Option<InputEvent> {
        match self.state {
            State::Kind => {
                self.state = State::LengthLow { kind: byte };
                None
            }
            State::LengthLow { kind } => {
                self.state = State::LengthHigh { kind, low: byte };
                None
            }
            State::LengthHigh { kind, low } => match u16::from_le_bytes([low, byte]) {
                0 => {
                    self.state = State::Kind;
                    record_complete(kind)
                }
                remaining => {
                    self.state = State::Payload {
                        kind,
                        remaining,
                        length: remaining,
                        value: 0,
                    };
                    None
                }
            },
            State::Payload {
                kind,
                remaining,
                length,
                value,
            } => {
                let index = length - remaining;
                let value = if index < 8 {
                    value | (byte as u64) << (8 * index)
                } else {
                    value
                };
                let remaining = remaining - 1;
                self.state = if remaining == 0 {
                    State::Kind
                } else {
                    State::Payload {
                        kind,
                        remaining,
                        length,
                        value,
                    }
                };
                match InputRecordKind::from_u8(kind) {
                    Some(InputRecordKind::Input) => Some(InputEvent::Data(byte)),
                    // The signal number is the (last) payload byte.
                    Some(InputRecordKind::Signal) if remaining == 0 => {
                        Some(InputEvent::Signal(byte))
                    }
                    Some(InputRecordKind::Time) if remaining == 0 && length == 8 => {
                        Some(InputEvent::Time(value))
                    }
                    _ if remaining == 0 => record_complete(kind),
                    _ => None,
                }
            }
        }
    }

    /// Whether the decoder is between records (no record is partly received).
    pub const fn is_between_records(&self) -> bool {
        matches!(self.state, State::Kind)
    }
}

impl Default for InputDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The event for a record of `kind` whose last byte has just arrived (an `Input` record's data
/// was already delivered byte by byte).
fn record_complete(kind: u8) -> Option<InputEvent> {
    match InputRecordKind::from_u8(kind) {
        Some(InputRecordKind::Input) => None,
        Some(InputRecordKind::InputEnd) => Some(InputEvent::End),
        // A signal record without its number names no signal; a time record no time.
        Some(InputRecordKind::Signal) | Some(InputRecordKind::Time) => None,
        None => Some(InputEvent::UnknownKind(kind)),
    }
}

/// The header of a record of `kind` with `len` payload bytes.
pub fn input_record_header(kind: InputRecordKind, len: u16) -> [u8; RECORD_HEADER_SIZE] {
    let [low, high] = len.to_le_bytes();
    [kind as u8, low, high]
}

/// Sends `bytes` for the program's fd 0 as `Input` records of at most 65535 bytes each. `sink` is
/// called with each header and then each payload piece. Empty `bytes` sends nothing: an empty
/// `Input` record would carry no information.
pub fn encode_input(bytes: &[u8], mut sink: impl FnMut(&[u8])) {
    for piece in bytes.chunks(MAX_RECORD_PAYLOAD) {
        let len = u16::try_from(piece.len()).unwrap_or(u16::MAX);
        sink(&input_record_header(InputRecordKind::Input, len));
        sink(piece);
    }
}

/// Sends the `InputEnd` record: the host's stdin reached end of file.
pub fn encode_input_end(mut sink: impl FnMut(&[u8])) {
    sink(&input_record_header(InputRecordKind::InputEnd, 0));
}

/// Asks for `signal` to be sent to the program (one `Signal` record).
pub fn encode_signal(signal: u8, mut sink: impl FnMut(&[u8])) {
    sink(&input_record_header(InputRecordKind::Signal, 1));
    sink(&[signal]);
}

/// Tells the guest the host's wall clock (`Time` record): ns since the epoch, now.
pub fn encode_time(realtime_ns: u64, mut sink: impl FnMut(&[u8])) {
    sink(&input_record_header(InputRecordKind::Time, 8));
    sink(&realtime_ns.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn collect(encode: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(&mut |piece: &[u8]| bytes.extend_from_slice(piece));
        bytes
    }

    fn decode(decoder: &mut InputDecoder, bytes: &[u8]) -> Vec<InputEvent> {
        bytes
            .iter()
            .filter_map(|&byte| decoder.push_byte(byte))
            .collect()
    }

    fn decode_all(bytes: &[u8]) -> Vec<InputEvent> {
        let mut decoder = InputDecoder::new();
        let events = decode(&mut decoder, bytes);
        assert!(decoder.is_between_records(), "stream ends mid-record");
        events
    }

    fn data(bytes: &[u8]) -> Vec<InputEvent> {
        bytes.iter().map(|&byte| InputEvent::Data(byte)).collect()
    }

    /// xorshift64: a fixed, dependency-free source of "arbitrary" lengths and bytes.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, limit: usize) -> usize {
            (self.next() % limit as u64) as usize
        }
    }

    #[test]
    fn exact_encodings() {
        assert_eq!(
            collect(|sink| encode_input(b"hi\n", sink)),
            [1, 3, 0, b'h', b'i', b'\n']
        );
        assert_eq!(collect(|sink| encode_input_end(sink)), [2, 0, 0]);
        assert_eq!(collect(|sink| encode_input(b"", sink)), []);
        assert_eq!(
            input_record_header(InputRecordKind::Input, 0x1234),
            [1, 0x34, 0x12]
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(InputRecordKind::from_u8(1), Some(InputRecordKind::Input));
        assert_eq!(InputRecordKind::from_u8(2), Some(InputRecordKind::InputEnd));
        assert_eq!(InputRecordKind::from_u8(0), None);
        assert_eq!(InputRecordKind::from_u8(3), Some(InputRecordKind::Signal));
        assert_eq!(InputRecordKind::from_u8(4), Some(InputRecordKind::Time));
        assert_eq!(InputRecordKind::from_u8(5), None);
    }

    #[test]
    fn input_then_end() {
        let mut stream = collect(|sink| encode_input(b"abc", sink));
        stream.extend(collect(|sink| encode_input_end(sink)));
        let mut expected = data(b"abc");
        expected.push(InputEvent::End);
        assert_eq!(decode_all(&stream), expected);
    }

    #[test]
    fn each_data_byte_comes_out_as_its_byte_arrives() {
        let mut decoder = InputDecoder::new();
        assert_eq!(decoder.push_byte(1), None);
        assert_eq!(decoder.push_byte(2), None);
        assert_eq!(decoder.push_byte(0), None);
        assert!(!decoder.is_between_records());
        assert_eq!(decoder.push_byte(b'x'), Some(InputEvent::Data(b'x')));
        assert!(!decoder.is_between_records());
        assert_eq!(decoder.push_byte(b'y'), Some(InputEvent::Data(b'y')));
        assert!(decoder.is_between_records());
        assert_eq!(decoder.push_byte(2), None);
        assert_eq!(decoder.push_byte(0), None);
        assert_eq!(decoder.push_byte(0), Some(InputEvent::End));
        assert!(decoder.is_between_records());
    }

    #[test]
    fn empty_input_records_yield_nothing() {
        let stream = [1, 0, 0, 1, 0, 0, 1, 1, 0, b'z', 1, 0, 0, 2, 0, 0];
        assert_eq!(
            decode_all(&stream),
            [InputEvent::Data(b'z'), InputEvent::End]
        );
    }

    #[test]
    fn every_byte_value_passes_through() {
        // Including bytes that look like record kinds and headers.
        let payload: Vec<u8> = (0..=255u8).chain([1, 0, 0, 2, 0, 0]).collect();
        let stream = collect(|sink| encode_input(&payload, sink));
        assert_eq!(decode_all(&stream), data(&payload));
    }

    #[test]
    fn a_record_of_exactly_65535_bytes_is_one_record() {
        let payload = vec![0x5a; MAX_RECORD_PAYLOAD];
        let mut calls = Vec::new();
        encode_input(&payload, |piece| calls.push(piece.to_vec()));
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], [1, 0xff, 0xff]);
        assert_eq!(decode_all(&calls.concat()), data(&payload));
    }

    #[test]
    fn long_input_is_split_into_full_records() {
        let payload: Vec<u8> = (0..200_000u32).map(|index| (index * 7) as u8).collect();
        let mut calls = Vec::new();
        encode_input(&payload, |piece| calls.push(piece.to_vec()));
        // header, piece, header, piece, ...: 65535 + 65535 + 65535 + 3395.
        assert_eq!(calls.len(), 8);
        for header in [&calls[0], &calls[2], &calls[4]] {
            assert_eq!(header, &[1, 0xff, 0xff]);
        }
        assert_eq!(calls[6], [1, 0x43, 0x0d]);
        assert_eq!(calls[7].len(), 200_000 - 3 * 65535);
        assert_eq!(decode_all(&calls.concat()), data(&payload));
    }

    #[test]
    fn unknown_kinds_are_skipped_and_reported_once() {
        let mut stream = collect(|sink| encode_input(b"a", sink));
        // Kind 5 with a payload that looks like an Input record, kind 0 and kind 0xff empty.
        stream.extend_from_slice(&[5, 4, 0, 1, 1, 0, b'!']);
        stream.extend_from_slice(&[0, 0, 0, 0xff, 0, 0]);
        stream.extend(collect(|sink| encode_input(b"b", sink)));
        stream.extend(collect(|sink| encode_input_end(sink)));
        assert_eq!(
            decode_all(&stream),
            [
                InputEvent::Data(b'a'),
                InputEvent::UnknownKind(5),
                InputEvent::UnknownKind(0),
                InputEvent::UnknownKind(0xff),
                InputEvent::Data(b'b'),
                InputEvent::End,
            ]
        );
    }

    #[test]
    fn a_long_unknown_record_is_skipped_whole() {
        let mut stream = vec![9, 0xff, 0xff];
        stream.extend(core::iter::repeat_n(1u8, MAX_RECORD_PAYLOAD));
        stream.extend(collect(|sink| encode_input(b"ok", sink)));
        assert_eq!(
            decode_all(&stream),
            [
                InputEvent::UnknownKind(9),
                InputEvent::Data(b'o'),
                InputEvent::Data(b'k')
            ]
        );
    }

    #[test]
    fn an_input_end_with_a_payload_ends_after_it() {
        // The CLI never sends one; a decoder must still stay in step with the stream.
        let stream = [2, 2, 0, b'x', b'y', 1, 1, 0, b'z'];
        assert_eq!(
            decode_all(&stream),
            [InputEvent::End, InputEvent::Data(b'z')]
        );
    }

    #[test]
    fn round_trips_over_arbitrary_chunkings() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for round in 0..50 {
            // The host's stdin as it arrives: in reads of arbitrary sizes, some empty, some
            // longer than a record.
            let total = random.below(300_000);
            let input: Vec<u8> = (0..total).map(|_| random.next() as u8).collect();
            let mut stream = Vec::new();
            let mut sent = 0;
            while sent < input.len() {
                let read = match random.below(4) {
                    0 => 0,
                    1 => random.below(16),
                    2 => random.below(4096),
                    _ => random.below(2 * MAX_RECORD_PAYLOAD),
                }
                .min(input.len() - sent);
                encode_input(&input[sent..sent + read], |piece| {
                    stream.extend_from_slice(piece)
                });
                sent += read;
            }
            encode_input_end(|piece| stream.extend_from_slice(piece));

            // The guest reads the UART in pieces of arbitrary sizes, keeping the decoder between them.
            let mut decoder = InputDecoder::new();
            let mut received = Vec::new();
            let mut ends = 0;
            let mut offset = 0;
            while offset < stream.len() {
                let piece = (1 + random.below(100_000)).min(stream.len() - offset);
                for event in decode(&mut decoder, &stream[offset..offset + piece]) {
                    match event {
                        InputEvent::Data(byte) => {
                            assert_eq!(ends, 0, "round {round}: data after End");
                            received.push(byte);
                        }
                        InputEvent::End => ends += 1,
                        InputEvent::UnknownKind(kind) => {
                            panic!("round {round}: unknown kind {kind}")
                        }
                        InputEvent::Signal(signal) => panic!("round {round}: signal {signal}"),
                        InputEvent::Time(time) => panic!("round {round}: time {time}"),
                    }
                }
                offset += piece;
            }
            assert!(decoder.is_between_records());
            assert_eq!(ends, 1, "round {round}");
            assert_eq!(received, input, "round {round}");
        }
    }

    #[test]
    fn a_decoder_fits_in_a_static() {
        static DECODER: InputDecoder = InputDecoder::new();
        assert!(DECODER.is_between_records());
        assert_eq!(InputDecoder::default(), InputDecoder::new());
        assert!(core::mem::size_of::<InputDecoder>() <= 24);
    }

    #[test]
    fn signal_records_carry_their_number() {
        let mut bytes = Vec::new();
        encode_input(b"ab", |piece| bytes.extend_from_slice(piece));
        encode_signal(15, |piece| bytes.extend_from_slice(piece));
        bytes.extend_from_slice(&[3, 0, 0]); // a signal record without a number
        let mut decoder = InputDecoder::new();
        let events: Vec<InputEvent> = bytes
            .iter()
            .filter_map(|&byte| decoder.push_byte(byte))
            .collect();
        assert_eq!(
            events,
            vec![
                InputEvent::Data(b'a'),
                InputEvent::Data(b'b'),
                InputEvent::Signal(15)
            ]
        );
        assert!(decoder.is_between_records());
    }

    #[test]
    fn time_records_carry_eight_bytes() {
        let mut bytes = Vec::new();
        encode_time(1_795_000_000_123_456_789, |piece| {
            bytes.extend_from_slice(piece)
        });
        let mut decoder = InputDecoder::new();
        let events: Vec<InputEvent> = bytes
            .iter()
            .filter_map(|&byte| decoder.push_byte(byte))
            .collect();
        assert_eq!(events, vec![InputEvent::Time(1_795_000_000_123_456_789)]);
        // A short one names no time.
        let events: Vec<InputEvent> = [4u8, 2, 0, 1, 2]
            .iter()
            .filter_map(|&byte| decoder.push_byte(byte))
            .collect();
        assert!(events.is_empty());
    }
}
