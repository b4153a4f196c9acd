//! The initial process stack (argc, argv, envp, auxv and the strings they point at), laid out as Linux does.
//!
//! The layout follows `do_execveat_common()` in fs/exec.c, which copies the strings, and
//! `create_elf_tables()` in fs/binfmt_elf.c, which builds the tables. From the top of the stack down:
//!
//! ```text
//! stack_top ->  8 zero bytes                       (bprm->p starts at vm_end - sizeof(void *))
//!               execfn string, NUL                 (copy_string_kernel(bprm->filename); AT_EXECFN)
//!               envp strings, NUL each             (copy_strings(envc, envp); envp[0] lowest)
//!               argv strings, NUL each             (copy_strings(argc, argv); argv[0] lowest)
//!               random_offset, then down to 16     (arch_align_stack())
//!               platform string, NUL               (AT_PLATFORM; not aligned)
//!               16 random bytes                    (AT_RANDOM; not aligned)
//!               0 to 15 zero bytes                 (STACK_ROUND())
//!               auxv pairs, ending with AT_NULL
//!               envp pointers, NULL
//!               argv pointers, NULL
//! rsp ------->  argc                               (16-byte aligned)
//! ```
//!
//! An empty argv gets one empty string, so argc is never 0 (fs/exec.c, since Linux 5.18).

use alloc::vec::Vec;
use core::fmt;

// Auxiliary vector types, from include/uapi/linux/auxvec.h unless noted.
/// End of the auxiliary vector (`AT_NULL`).
pub const AT_NULL: u64 = 0;
/// Address of the program headers (`AT_PHDR`).
pub const AT_PHDR: u64 = 3;
/// Size of one program header (`AT_PHENT`).
pub const AT_PHENT: u64 = 4;
/// Number of program headers (`AT_PHNUM`).
pub const AT_PHNUM: u64 = 5;
/// Page size (`AT_PAGESZ`).
pub const AT_PAGESZ: u64 = 6;
/// Base address of the interpreter (`AT_BASE`).
pub const AT_BASE: u64 = 7;
/// Flags (`AT_FLAGS`).
pub const AT_FLAGS: u64 = 8;
/// Entry point of the program (`AT_ENTRY`).
pub const AT_ENTRY: u64 = 9;
/// Real user id (`AT_UID`).
pub const AT_UID: u64 = 11;
/// Effective user id (`AT_EUID`).
pub const AT_EUID: u64 = 12;
/// Real group id (`AT_GID`).
pub const AT_GID: u64 = 13;
/// Effective group id (`AT_EGID`).
pub const AT_EGID: u64 = 14;
/// Address of the platform string (`AT_PLATFORM`).
pub const AT_PLATFORM: u64 = 15;
/// CPU capabilities (`AT_HWCAP`).
pub const AT_HWCAP: u64 = 16;
/// Frequency of times() (`AT_CLKTCK`).
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (`AT_SECURE`).
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes (`AT_RANDOM`).
pub const AT_RANDOM: u64 = 25;
/// More CPU capabilities (`AT_HWCAP2`).
pub const AT_HWCAP2: u64 = 26;
/// Address of the executed file's name (`AT_EXECFN`).
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO's ELF header (`AT_SYSINFO_EHDR`, arch/x86/include/uapi/asm/auxvec.h).
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal stack size for signal delivery (`AT_MINSIGSTKSZ`).
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Longest single argument or environment string, with its NUL: `MAX_ARG_STRLEN` = 32 pages
/// (include/uapi/linux/binfmts.h).
pub const MAX_ARG_STRLEN: u64 = 32 * 4096;
/// Room for argument and environment strings plus their pointers. `bprm_stack_limits()` (fs/exec.c) allows
/// min(3/4 of `_STK_LIM`, 1/4 of `RLIMIT_STACK`); with the default 8 MiB stack limit that is 2 MiB.
pub const ARG_SPACE_LIMIT: u64 = 2 * 1024 * 1024;
/// `random_offset` must be below this: x86's `arch_align_stack()` (arch/x86/kernel/process.c) subtracts
/// `get_random_u32_below(8192)`.
pub const RANDOM_OFFSET_LIMIT: u64 = 8192;

const WORD: u64 = 8;
const END_MARKER_SIZE: u64 = 8;
const RANDOM_BYTES: u64 = 16;
const STACK_ALIGN: u64 = 16;

/// The values of the auxiliary vector that are numbers (the kernel knows them; the builder adds the
/// addresses of the random bytes, execfn and platform strings itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuxValues {
    /// `AT_SYSINFO_EHDR`: the vDSO's address, or `None` to leave the entry out (no vDSO).
    pub sysinfo_ehdr: Option<u64>,
    /// `AT_MINSIGSTKSZ`.
    pub minsigstksz: u64,
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_PAGESZ`.
    pub pagesz: u64,
    /// `AT_CLKTCK`.
    pub clktck: u64,
    /// `AT_PHDR` (relocated).
    pub phdr: u64,
    /// `AT_PHENT`.
    pub phent: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_BASE`: the interpreter's load address, 0 for a static program.
    pub base: u64,
    /// `AT_FLAGS`.
    pub flags: u64,
    /// `AT_ENTRY`: the program's entry point (relocated), not the interpreter's.
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_SECURE`.
    pub secure: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
}

/// What goes on the initial stack.
#[derive(Debug, Clone)]
pub struct StackSpec<'a> {
    /// One past the highest byte of the stack; must be 16-byte aligned.
    pub stack_top: u64,
    /// Bytes left free between the strings and the platform string, as `arch_align_stack()` does with a random
    /// amount; 0 for a reproducible layout. Must be below [`RANDOM_OFFSET_LIMIT`].
    pub random_offset: u64,
    /// The arguments, without NULs; `argv[0]` first.
    pub argv: &'a [&'a [u8]],
    /// The environment, `KEY=VALUE` strings without NULs.
    pub envp: &'a [&'a [u8]],
    /// The path the program was executed by (`AT_EXECFN`), without a NUL.
    pub execfn: &'a [u8],
    /// The platform string (`AT_PLATFORM`), without a NUL: `b"x86_64"` on x86_64.
    pub platform: &'a [u8],
    /// The 16 bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
    /// The numeric auxiliary vector entries.
    pub aux: AuxValues,
}

/// The stack image and where its parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// The bytes from `base` up to `stack_top`.
    pub bytes: Vec<u8>,
    /// The address of `bytes[0]`; equal to `rsp`.
    pub base: u64,
    /// The initial stack pointer: the address of argc. 16-byte aligned.
    pub rsp: u64,
    /// Where the argv strings start (`mm->arg_start`, for /proc/self/cmdline).
    pub arg_start: u64,
    /// Where the argv strings end and the environment strings start (`mm->arg_end`, `mm->env_start`).
    pub arg_end: u64,
    /// Where the environment strings end (`mm->env_end`, for /proc/self/environ).
    pub env_end: u64,
    /// The auxiliary vector as written, ending with `(AT_NULL, 0)` (for /proc/self/auxv).
    pub auxv: Vec<(u64, u64)>,
}

impl InitialStack {
    /// One past the highest byte of the image: the `stack_top` it was built for.
    pub fn top(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// The value of auxiliary vector entry `key`, if it is present.
    pub fn aux_value(&self, key: u64) -> Option<u64> {
        self.auxv
            .iter()
            .find(|&&(entry, _)| entry == key)
            .map(|&(_, value)| value)
    }
}

/// Which string on the stack an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackString {
    /// `argv[n]`.
    Argument(usize),
    /// `envp[n]`.
    Environment(usize),
    /// The `AT_EXECFN` path.
    ExecFn,
    /// The `AT_PLATFORM` string.
    Platform,
}

impl fmt::Display for StackString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Argument(index) => write!(f, "argv[{index}]"),
            Self::Environment(index) => write!(f, "envp[{index}]"),
            Self::ExecFn => write!(f, "the execfn path (AT_EXECFN)"),
            Self::Platform => write!(f, "the platform string (AT_PLATFORM)"),
        }
    }
}

/// Why the initial stack cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackError {
    /// A string contains a NUL byte, which would cut it short.
    ContainsNul {
        /// Which string.
        string: StackString,
        /// Byte offset of the first NUL.
        position: usize,
    },
    /// One string, with its NUL, is longer than `MAX_ARG_STRLEN` (Linux says E2BIG).
    StringTooLong {
        /// Which string.
        string: StackString,
        /// Its length with the NUL.
        len: u64,
    },
    /// The strings and pointers together exceed [`ARG_SPACE_LIMIT`] (Linux says E2BIG).
    TooBig {
        /// Bytes the strings and pointers need.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// `stack_top` is not 16-byte aligned.
    MisalignedTop {
        /// The given stack top.
        stack_top: u64,
    },
    /// `random_offset` is not below [`RANDOM_OFFSET_LIMIT`].
    RandomOffsetTooLarge {
        /// The given offset.
        random_offset: u64,
    },
    /// The image would reach below address 0.
    TopTooLow {
        /// The given stack top.
        stack_top: u64,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ContainsNul { string, position } => {
                write!(f, "{string} contains a NUL byte at offset {position}")
            }
            Self::StringTooLong { string, len } => write!(
                f,
                "{string} is {len} bytes with its NUL, over MAX_ARG_STRLEN ({MAX_ARG_STRLEN} bytes) (E2BIG)"
            ),
            Self::TooBig { needed, limit } => write!(
                f,
                "argument and environment strings and pointers need {needed} bytes, over the {limit}-byte limit (E2BIG)"
            ),
            Self::MisalignedTop { stack_top } => {
                write!(f, "stack top {stack_top:#x} is not 16-byte aligned")
            }
            Self::RandomOffsetTooLarge { random_offset } => write!(
                f,
                "random stack offset {random_offset} is not below {RANDOM_OFFSET_LIMIT}"
            ),
            Self::TopTooLow { stack_top } => write!(
                f,
                "stack top {stack_top:#x} is too low to hold the initial stack"
            ),
        }
    }
}

impl core::error::Error for StackError {}

/// Builds the initial stack image for `spec`. The image covers `[rsp, stack_top)`; the kernel copies
/// `bytes` to `base` and starts the program with `rsp` (and rdx = 0, the other registers zero).
pub fn build_initial_stack(spec: &StackSpec<'_>) -> Result<InitialStack, StackError> {
    if !spec.stack_top.is_multiple_of(STACK_ALIGN) {
        return Err(StackError::MisalignedTop {
            stack_top: spec.stack_top,
        });
    }
    if spec.random_offset >= RANDOM_OFFSET_LIMIT {
        return Err(StackError::RandomOffsetTooLarge {
            random_offset: spec.random_offset,
        });
    }

    // An empty argv becomes [""] (do_execveat_common() in fs/exec.c).
    let empty_argv: [&[u8]; 1] = [b""];
    let argv: &[&[u8]] = if spec.argv.is_empty() {
        &empty_argv
    } else {
        spec.argv
    };

    let argv_bytes = string_bytes(argv, StackString::Argument)?;
    let envp_bytes = string_bytes(spec.envp, StackString::Environment)?;
    let execfn_bytes = checked_string_len(spec.execfn, StackString::ExecFn)?;
    // The platform string is the kernel's own; Linux applies no length limit to it.
    if let Some(position) = spec.platform.iter().position(|&byte| byte == 0) {
        return Err(StackError::ContainsNul {
            string: StackString::Platform,
            position,
        });
    }
    let platform_bytes = spec.platform.len() as u64 + 1;

    // bprm_stack_limits(): the pointers, then the strings, must fit in the argument space.
    let pointer_bytes = (argv.len() as u64)
        .saturating_add(spec.envp.len() as u64)
        .saturating_mul(WORD);
    let string_total = argv_bytes
        .saturating_add(envp_bytes)
        .saturating_add(execfn_bytes);
    let needed = pointer_bytes.saturating_add(string_total);
    if pointer_bytes >= ARG_SPACE_LIMIT || needed > ARG_SPACE_LIMIT {
        return Err(StackError::TooBig {
            needed,
            limit: ARG_SPACE_LIMIT,
        });
    }

    let auxv = auxiliary_vector_keys(&spec.aux);
    let too_low = StackError::TopTooLow {
        stack_top: spec.stack_top,
    };
    let below = |address: u64, size: u64| address.checked_sub(size).ok_or(too_low.clone());

    // Strings, from the top down.
    let execfn_address = below(spec.stack_top, END_MARKER_SIZE + execfn_bytes)?;
    let env_start = below(execfn_address, envp_bytes)?;
    let arg_start = below(env_start, argv_bytes)?;
    // arch_align_stack(), then the platform string and the random bytes, unaligned.
    let aligned = below(arg_start, spec.random_offset)? & !(STACK_ALIGN - 1);
    let platform_address = below(aligned, platform_bytes)?;
    let random_address = below(platform_address, RANDOM_BYTES)?;
    // STACK_ROUND(): room for auxv, then argc + argv + NULL + envp + NULL, rounded down to 16.
    let table_words =
        auxv.len() as u64 * 2 + 1 + (argv.len() as u64 + 1) + (spec.envp.len() as u64 + 1);
    let tables_unaligned = below(random_address, table_words * WORD)?;
    let rsp = tables_unaligned & !(STACK_ALIGN - 1);

    let auxv: Vec<(u64, u64)> = auxv
        .iter()
        .map(|&(key, value)| {
            let value = match value {
                AuxValue::Number(number) => number,
                AuxValue::RandomAddress => random_address,
                AuxValue::ExecFnAddress => execfn_address,
                AuxValue::PlatformAddress => platform_address,
            };
            (key, value)
        })
        .collect();

    // Emit the image from rsp upwards.
    let mut bytes = Vec::with_capacity((spec.stack_top - rsp) as usize);
    push_word(&mut bytes, argv.len() as u64);
    let mut address = arg_start;
    for argument in argv {
        push_word(&mut bytes, address);
        address += argument.len() as u64 + 1;
    }
    push_word(&mut bytes, 0);
    for variable in spec.envp {
        push_word(&mut bytes, address);
        address += variable.len() as u64 + 1;
    }
    push_word(&mut bytes, 0);
    for &(key, value) in &auxv {
        push_word(&mut bytes, key);
        push_word(&mut bytes, value);
    }
    push_zeros(&mut bytes, tables_unaligned - rsp);
    bytes.extend_from_slice(&spec.random);
    push_string(&mut bytes, spec.platform);
    push_zeros(&mut bytes, arg_start - aligned);
    for string in argv.iter().chain(spec.envp) {
        push_string(&mut bytes, string);
    }
    push_string(&mut bytes, spec.execfn);
    push_zeros(&mut bytes, END_MARKER_SIZE);

    Ok(InitialStack {
        bytes,
        base: rsp,
        rsp,
        arg_start,
        arg_end: env_start,
        env_end: execfn_address,
        auxv,
    })
}

/// An auxiliary vector value: a number, or the address of something the builder places.
#[derive(Clone, Copy)]
enum AuxValue {
    Number(u64),
    RandomAddress,
    ExecFnAddress,
    PlatformAddress,
}

/// The auxiliary vector in `create_elf_tables()` order for x86_64, ending with `AT_NULL`.
/// `ARCH_DLINFO` (arch/x86/include/asm/elf.h) comes first: `AT_SYSINFO_EHDR` when there is a vDSO, then
/// `AT_MINSIGSTKSZ`. Linux then adds `AT_RSEQ_FEATURE_SIZE` and `AT_RSEQ_ALIGN` (6.3+) after
/// `AT_PLATFORM`; Pith leaves them out until it implements rseq(2).
fn auxiliary_vector_keys(aux: &AuxValues) -> Vec<(u64, AuxValue)> {
    use AuxValue::{ExecFnAddress, Number, PlatformAddress, RandomAddress};
    let mut entries = Vec::with_capacity(21);
    if let Some(address) = aux.sysinfo_ehdr {
        entries.push((AT_SYSINFO_EHDR, Number(address)));
    }
    entries.extend_from_slice(&[
        (AT_MINSIGSTKSZ, Number(aux.minsigstksz)),
        (AT_HWCAP, Number(aux.hwcap)),
        (AT_PAGESZ, Number(aux.pagesz)),
        (AT_CLKTCK, Number(aux.clktck)),
        (AT_PHDR, Number(aux.phdr)),
        (AT_PHENT, Number(aux.phent)),
        (AT_PHNUM, Number(aux.phnum)),
        (AT_BASE, Number(aux.base)),
        (AT_FLAGS, Number(aux.flags)),
        (AT_ENTRY, Number(aux.entry)),
        (AT_UID, Number(aux.uid)),
        (AT_EUID, Number(aux.euid)),
        (AT_GID, Number(aux.gid)),
        (AT_EGID, Number(aux.egid)),
        (AT_SECURE, Number(aux.secure)),
        (AT_RANDOM, RandomAddress),
        (AT_HWCAP2, Number(aux.hwcap2)),
        (AT_EXECFN, ExecFnAddress),
        (AT_PLATFORM, PlatformAddress),
        (AT_NULL, Number(0)),
    ]);
    entries
}

/// Checks one argument-like string and returns its size with the NUL.
fn checked_string_len(string: &[u8], which: StackString) -> Result<u64, StackError> {
    if let Some(position) = string.iter().position(|&byte| byte == 0) {
        return Err(StackError::ContainsNul {
            string: which,
            position,
        });
    }
    let len = string.len() as u64 + 1;
    if len > MAX_ARG_STRLEN {
        return Err(StackError::StringTooLong { string: which, len });
    }
    Ok(len)
}

/// Checks a list of strings and returns their total size with NULs.
fn string_bytes(
    strings: &[&[u8]],
    which: impl Fn(usize) -> StackString,
) -> Result<u64, StackError> {
    let mut total = 0u64;
    for (index, string) in strings.iter().enumerate() {
        total = total.saturating_add(checked_string_len(string, which(index))?);
    }
    Ok(total)
}

fn push_word(bytes: &mut Vec<u8>, word: u64) {
    bytes.extend_from_slice(&word.to_le_bytes());
}

fn push_zeros(bytes: &mut Vec<u8>, count: u64) {
    bytes.extend(core::iter::repeat_n(0u8, count as usize));
}

fn push_string(bytes: &mut Vec<u8>, string: &[u8]) {
    bytes.extend_from_slice(string);
    bytes.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x7fff_ffff_f000;

    fn aux() -> AuxValues {
        AuxValues {
            sysinfo_ehdr: None,
            minsigstksz: 3376,
            hwcap: 0x178b_fbff,
            pagesz: 4096,
            clktck: 100,
            phdr: 0x40_0040,
            phent: 56,
            phnum: 10,
            base: 0,
            flags: 0,
            entry: 0x40_1000,
            uid: 1000,
            euid: 1001,
            gid: 1002,
            egid: 1003,
            secure: 0,
            hwcap2: 2,
        }
    }

    fn random() -> [u8; 16] {
        core::array::from_fn(|index| index as u8 + 0xa0)
    }

    fn spec<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]]) -> StackSpec<'a> {
        StackSpec {
            stack_top: TOP,
            random_offset: 0,
            argv,
            envp,
            execfn: b"/t",
            platform: b"x86_64",
            random: random(),
            aux: aux(),
        }
    }

    fn word_at(stack: &InitialStack, address: u64) -> u64 {
        let index = (address - stack.base) as usize;
        let mut word = [0; 8];
        word.copy_from_slice(&stack.bytes[index..index + 8]);
        u64::from_le_bytes(word)
    }

    fn c_string_at(stack: &InitialStack, address: u64) -> &[u8] {
        let start = (address - stack.base) as usize;
        let len = stack.bytes[start..]
            .iter()
            .position(|&byte| byte == 0)
            .expect("NUL-terminated");
        &stack.bytes[start..start + len]
    }

    /// One argument, one variable, no vDSO, hand-computed from the rules in create_elf_tables():
    /// marker at T-8, "/t\0" at T-11, "X=1\0" at T-15, "ab\0" at T-18; aligned down to T-32;
    /// "x86_64\0" at T-39; random bytes at T-55; 20 auxv pairs (320 bytes) and 5 words below that
    /// reach T-415, rounded down to rsp = T-416.
    #[test]
    fn small_stack_byte_for_byte() {
        let stack = build_initial_stack(&spec(&[b"ab"], &[b"X=1"])).expect("builds");
        let t = TOP;
        assert_eq!(stack.rsp, t - 416);
        assert_eq!(stack.base, stack.rsp);
        assert_eq!(stack.top(), t);
        assert_eq!(stack.rsp % 16, 0);
        assert_eq!(stack.bytes.len(), 416);

        let mut expected: Vec<u64> = vec![
            1,      // argc
            t - 18, // argv[0] -> "ab"
            0,
            t - 15, // envp[0] -> "X=1"
            0,
        ];
        expected.extend_from_slice(&[
            AT_MINSIGSTKSZ,
            3376,
            AT_HWCAP,
            0x178b_fbff,
            AT_PAGESZ,
            4096,
            AT_CLKTCK,
            100,
            AT_PHDR,
            0x40_0040,
            AT_PHENT,
            56,
            AT_PHNUM,
            10,
            AT_BASE,
            0,
            AT_FLAGS,
            0,
            AT_ENTRY,
            0x40_1000,
            AT_UID,
            1000,
            AT_EUID,
            1001,
            AT_GID,
            1002,
            AT_EGID,
            1003,
            AT_SECURE,
            0,
            AT_RANDOM,
            t - 55,
            AT_HWCAP2,
            2,
            AT_EXECFN,
            t - 11,
            AT_PLATFORM,
            t - 39,
            AT_NULL,
            0,
        ]);
        let mut image: Vec<u8> = expected
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        assert_eq!(image.len(), 360); // rsp + 360 = T-56
        image.push(0); // STACK_ROUND slack: T-56
        image.extend_from_slice(&random()); // T-55
        image.extend_from_slice(b"x86_64\0"); // T-39
        image.extend_from_slice(&[0; 14]); // T-32 .. T-18: arch_align_stack slack
        image.extend_from_slice(b"ab\0"); // T-18
        image.extend_from_slice(b"X=1\0"); // T-15
        image.extend_from_slice(b"/t\0"); // T-11
        image.extend_from_slice(&[0; 8]); // T-8: end marker
        assert_eq!(stack.bytes, image);

        assert_eq!(stack.arg_start, t - 18);
        assert_eq!(stack.arg_end, t - 15);
        assert_eq!(stack.env_end, t - 11);
        assert_eq!(stack.aux_value(AT_RANDOM), Some(t - 55));
        assert_eq!(stack.auxv.len(), 20);
    }

    #[test]
    fn pointers_lead_to_their_strings() {
        let argv: [&[u8]; 3] = [b"/bin/prog", b"--flag", b""];
        let envp: [&[u8]; 2] = [b"HOME=/", b"TERM=dumb"];
        let mut spec = spec(&argv, &envp);
        spec.aux.sysinfo_ehdr = Some(0x7fff_f7ff_d000);
        spec.random_offset = 1234;
        let stack = build_initial_stack(&spec).expect("builds");
        assert_eq!(stack.rsp % 16, 0);
        assert_eq!(word_at(&stack, stack.rsp), 3);
        for (index, argument) in argv.iter().enumerate() {
            let pointer = word_at(&stack, stack.rsp + 8 + 8 * index as u64);
            assert_eq!(c_string_at(&stack, pointer), *argument);
        }
        assert_eq!(word_at(&stack, stack.rsp + 8 * 4), 0);
        let envp_base = stack.rsp + 8 * 5;
        for (index, variable) in envp.iter().enumerate() {
            let pointer = word_at(&stack, envp_base + 8 * index as u64);
            assert_eq!(c_string_at(&stack, pointer), *variable);
        }
        assert_eq!(word_at(&stack, envp_base + 16), 0);
        // ARCH_DLINFO comes first.
        let auxv_base = envp_base + 24;
        assert_eq!(word_at(&stack, auxv_base), AT_SYSINFO_EHDR);
        assert_eq!(word_at(&stack, auxv_base + 8), 0x7fff_f7ff_d000);
        assert_eq!(word_at(&stack, auxv_base + 16), AT_MINSIGSTKSZ);
        let random_address = stack.aux_value(AT_RANDOM).expect("AT_RANDOM");
        let index = (random_address - stack.base) as usize;
        assert_eq!(stack.bytes[index..index + 16], random());
        let execfn = stack.aux_value(AT_EXECFN).expect("AT_EXECFN");
        assert_eq!(c_string_at(&stack, execfn), b"/t");
        let platform = stack.aux_value(AT_PLATFORM).expect("AT_PLATFORM");
        assert_eq!(c_string_at(&stack, platform), b"x86_64");
        // The random offset sits between the strings and the platform string.
        assert!(stack.arg_start - (platform + 7) >= 1234);
        assert_eq!(stack.auxv.last(), Some(&(AT_NULL, 0)));
        assert_eq!(stack.auxv.len(), 21);
    }

    #[test]
    fn rsp_is_aligned_for_every_shape() {
        let strings: [&[u8]; 5] = [b"a", b"bb", b"ccc", b"dddd", b"eeeeeeeeeeeeeeeee"];
        for argc in 0..5 {
            for envc in 0..5 {
                for offset in [0, 1, 7, 8, 15, 4095] {
                    let mut spec = spec(&strings[..argc], &strings[..envc]);
                    spec.random_offset = offset;
                    let stack = build_initial_stack(&spec).expect("builds");
                    assert_eq!(stack.rsp % 16, 0, "argc {argc} envc {envc} offset {offset}");
                    assert_eq!(stack.top(), TOP);
                }
            }
        }
    }

    #[test]
    fn empty_argv_gets_one_empty_string() {
        let stack = build_initial_stack(&spec(&[], &[b"A=b"])).expect("builds");
        assert_eq!(word_at(&stack, stack.rsp), 1);
        let argv0 = word_at(&stack, stack.rsp + 8);
        assert_eq!(c_string_at(&stack, argv0), b"");
        assert_eq!(word_at(&stack, stack.rsp + 16), 0);
        assert_eq!(argv0, stack.arg_start);
        assert_eq!(stack.arg_end, stack.arg_start + 1);
        let envp0 = word_at(&stack, stack.rsp + 24);
        assert_eq!(c_string_at(&stack, envp0), b"A=b");
    }

    #[test]
    fn empty_environment() {
        let stack = build_initial_stack(&spec(&[b"prog"], &[])).expect("builds");
        assert_eq!(word_at(&stack, stack.rsp), 1);
        assert_eq!(word_at(&stack, stack.rsp + 16), 0); // argv NULL
        assert_eq!(word_at(&stack, stack.rsp + 24), 0); // envp NULL
        assert_eq!(word_at(&stack, stack.rsp + 32), AT_MINSIGSTKSZ);
        assert_eq!(stack.arg_end, stack.env_end);
    }

    #[test]
    fn nul_in_a_string_is_an_error() {
        let error = build_initial_stack(&spec(&[b"ok", b"b\0d"], &[])).expect_err("NUL");
        assert_eq!(
            error,
            StackError::ContainsNul {
                string: StackString::Argument(1),
                position: 1
            }
        );
        assert_eq!(error.to_string(), "argv[1] contains a NUL byte at offset 1");
        let error = build_initial_stack(&spec(&[b"ok"], &[b"\0"])).expect_err("NUL");
        assert_eq!(error.to_string(), "envp[0] contains a NUL byte at offset 0");
        let mut bad = spec(&[b"ok"], &[]);
        bad.execfn = b"/a\0b";
        assert!(matches!(
            build_initial_stack(&bad),
            Err(StackError::ContainsNul {
                string: StackString::ExecFn,
                position: 2
            })
        ));
        bad = spec(&[b"ok"], &[]);
        bad.platform = b"x86\0";
        assert!(matches!(
            build_initial_stack(&bad),
            Err(StackError::ContainsNul {
                string: StackString::Platform,
                ..
            })
        ));
    }

    #[test]
    fn one_string_over_max_arg_strlen_is_e2big() {
        let long = vec![b'x'; MAX_ARG_STRLEN as usize];
        let argv: [&[u8]; 2] = [b"prog", &long];
        let error = build_initial_stack(&spec(&argv, &[])).expect_err("too long");
        assert_eq!(
            error,
            StackError::StringTooLong {
                string: StackString::Argument(1),
                len: MAX_ARG_STRLEN + 1
            }
        );
        assert!(error.to_string().contains("E2BIG"));
        // One byte shorter fits.
        let fits = vec![b'x'; MAX_ARG_STRLEN as usize - 1];
        let argv: [&[u8]; 2] = [b"prog", &fits];
        assert!(build_initial_stack(&spec(&argv, &[])).is_ok());
    }

    #[test]
    fn total_over_the_limit_is_e2big() {
        let chunk = vec![b'y'; 100_000];
        let envp: Vec<&[u8]> = (0..21).map(|_| chunk.as_slice()).collect();
        let error = build_initial_stack(&spec(&[b"prog"], &envp)).expect_err("too big");
        let StackError::TooBig { needed, limit } = error else {
            panic!("expected TooBig, got {error:?}");
        };
        assert_eq!(limit, ARG_SPACE_LIMIT);
        // 22 pointers, "prog\0", 21 * 100001 bytes, "/t\0".
        assert_eq!(needed, 22 * 8 + 5 + 21 * 100_001 + 3);
        assert_eq!(
            error.to_string(),
            format!("argument and environment strings and pointers need {needed} bytes, over the 2097152-byte limit (E2BIG)")
        );
    }

    #[test]
    fn bad_top_and_offset_are_errors() {
        let mut bad = spec(&[b"prog"], &[]);
        bad.stack_top = TOP + 8;
        assert_eq!(
            build_initial_stack(&bad),
            Err(StackError::MisalignedTop { stack_top: TOP + 8 })
        );
        bad = spec(&[b"prog"], &[]);
        bad.random_offset = RANDOM_OFFSET_LIMIT;
        assert!(matches!(
            build_initial_stack(&bad),
            Err(StackError::RandomOffsetTooLarge { .. })
        ));
        bad = spec(&[b"prog"], &[]);
        bad.stack_top = 256;
        assert_eq!(
            build_initial_stack(&bad),
            Err(StackError::TopTooLow { stack_top: 256 })
        );
    }
}
