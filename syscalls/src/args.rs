//! Typed syscall arguments: each handler states what its raw registers mean.

use crate::errno::Errno;

/// How `--trace` prints an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A signed 32-bit int (fds, flags printed as numbers).
    Int,
    /// An unsigned 64-bit count or size.
    Unsigned,
    /// A number best read in hex (flags, addresses that are not pointers).
    Hex,
    /// A pointer into app memory.
    Pointer,
    /// A pointer to a NUL-terminated path.
    Path,
}

/// An argument type a handler can take: decoded from the raw 64-bit register.
pub trait SyscallArg: Sized {
    const KIND: ArgKind;
    fn from_raw(raw: u64) -> Result<Self, Errno>;
}

/// A file descriptor. The kernel reads `unsigned int fd`, so only the low 32 bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub i32);

/// An address in the app's memory; dereferenced only through [`crate::Context`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserAddr(pub u64);

/// The address of a NUL-terminated path in app memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPath(pub u64);

impl UserAddr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl SyscallArg for Fd {
    const KIND: ArgKind = ArgKind::Int;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(Fd(raw as u32 as i32))
    }
}
impl SyscallArg for UserAddr {
    const KIND: ArgKind = ArgKind::Pointer;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(UserAddr(raw))
    }
}
impl SyscallArg for UserPath {
    const KIND: ArgKind = ArgKind::Path;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(UserPath(raw))
    }
}
impl SyscallArg for u64 {
    const KIND: ArgKind = ArgKind::Unsigned;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(raw)
    }
}
impl SyscallArg for usize {
    const KIND: ArgKind = ArgKind::Unsigned;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(raw as usize)
    }
}
impl SyscallArg for i64 {
    const KIND: ArgKind = ArgKind::Int;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(raw as i64)
    }
}
/// `int` arguments: the kernel sees the low 32 bits.
impl SyscallArg for i32 {
    const KIND: ArgKind = ArgKind::Int;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(raw as u32 as i32)
    }
}
/// `unsigned int` arguments (flags): the low 32 bits.
impl SyscallArg for u32 {
    const KIND: ArgKind = ArgKind::Hex;
    fn from_raw(raw: u64) -> Result<Self, Errno> {
        Ok(raw as u32)
    }
}

/// What a handler's success value becomes in rax.
pub trait IntoReturn {
    fn into_return(self) -> u64;
}
impl IntoReturn for u64 {
    fn into_return(self) -> u64 {
        self
    }
}
impl IntoReturn for usize {
    fn into_return(self) -> u64 {
        self as u64
    }
}
impl IntoReturn for i32 {
    fn into_return(self) -> u64 {
        self as i64 as u64
    }
}
impl IntoReturn for i64 {
    fn into_return(self) -> u64 {
        self as u64
    }
}
impl IntoReturn for () {
    fn into_return(self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arguments_take_the_low_32_bits() {
        assert_eq!(Fd::from_raw(0xffff_ffff_0000_0003), Ok(Fd(3)));
        assert_eq!(Fd::from_raw(0xffff_ffff), Ok(Fd(-1)));
        assert_eq!(i32::from_raw(0x1_0000_0005), Ok(5));
        assert_eq!(u32::from_raw(0xdead_0000_0001), Ok(1));
    }

    #[test]
    fn returns_encode_as_rax() {
        assert_eq!((-1i32).into_return(), u64::MAX);
        assert_eq!(().into_return(), 0);
        assert_eq!(7usize.into_return(), 7);
    }
}
