//! getrandom(2), from the CPU's random number generator.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::Context;

/// getrandom flags (include/uapi/linux/random.h).
pub const GRND_NONBLOCK: u32 = 0x1;
pub const GRND_RANDOM: u32 = 0x2;
pub const GRND_INSECURE: u32 = 0x4;
/// Linux returns at most this many bytes per call (MAX_RW_COUNT >> 6 would be larger; the
/// urandom path caps at INT_MAX pages too): callers loop anyway.
const MAX_PER_CALL: usize = 32 << 20;

/// Implements getrandom(2). The CPU generator never runs dry, so it never blocks.
pub fn getrandom(
    context: &mut Context,
    buffer: UserAddr,
    count: usize,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let count = count.min(MAX_PER_CALL);
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < count {
        let take = (count - done).min(chunk.len());
        context.platform.fill_random(&mut chunk[..take])?;
        if let Err(errno) = context
            .platform
            .write_user(buffer.0 + done as u64, &chunk[..take])
        {
            return if done > 0 { Ok(done) } else { Err(errno) };
        }
        done += take;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn fills_the_buffer_and_checks_flags() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(600);
        assert_eq!(machine.call(318, [out, 600, 0, 0, 0, 0]), Ok(600));
        assert!(machine.memory_at(out, 600).iter().any(|&b| b != 0));
        assert_eq!(
            machine.call(318, [out, 16, 0x8, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(318, [out, 16, 0x6, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(318, [0, 16, 0, 0, 0, 0]), Err(Errno::EFAULT));
    }
}
