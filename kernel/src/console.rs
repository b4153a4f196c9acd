//! The program's console: output goes to COM1; input comes from COM1 as console input records
//! (docs/design/boot-protocol.md), so that the end of the host's stdin reaches the program.

use pith_loader::console_input::{InputDecoder, InputEvent};
use spin::Mutex;

struct ConsoleInput {
    decoder: InputDecoder,
    /// Input arrives framed (`pith.console=framed`); otherwise raw bytes that never end.
    framed: bool,
    /// The host's stdin ended: reads return 0 from now on.
    ended: bool,
    /// Record kinds already reported as unknown, one bit each.
    unknown_logged: [u64; 4],
}

static INPUT: Mutex<ConsoleInput> = Mutex::new(ConsoleInput {
    decoder: InputDecoder::new(),
    framed: false,
    ended: false,
    unknown_logged: [0; 4],
});

pub fn init(framed: bool) {
    INPUT.lock().framed = framed;
}

pub fn write(bytes: &[u8]) {
    crate::serial::write(bytes)
}

/// Reads the program's input: blocks until at least one byte or the end of input (0), then
/// returns what is already waiting, up to `buffer.len()`.
pub fn read(buffer: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    if input.ended || buffer.is_empty() {
        return 0;
    }
    let mut count = 0;
    loop {
        let Some(byte) = crate::serial::try_read_byte() else {
            if count > 0 {
                return count;
            }
            // Nothing yet: wait. (Interrupt-driven input, and halting meanwhile, come with
            // the scheduler.)
            crate::serial::back_off();
            continue;
        };
        if !input.framed {
            buffer[count] = byte;
            count += 1;
        } else {
            match input.decoder.push_byte(byte) {
                Some(InputEvent::Data(data)) => {
                    buffer[count] = data;
                    count += 1;
                }
                Some(InputEvent::End) => {
                    input.ended = true;
                    return count;
                }
                Some(InputEvent::UnknownKind(kind)) => {
                    let (word, bit) = (kind as usize / 64, 1u64 << (kind % 64));
                    if input.unknown_logged[word] & bit == 0 {
                        input.unknown_logged[word] |= bit;
                        crate::log_warn!("console input record of unknown kind {kind} skipped");
                    }
                }
                None => {}
            }
        }
        if count == buffer.len() {
            return count;
        }
    }
}
