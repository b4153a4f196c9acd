//! Linux ABI structs and constants, with the spellings of the uapi headers they mirror.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct timespec` (include/uapi/linux/time_types.h, `__kernel_timespec`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// `struct timeval` (include/uapi/linux/time.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct timezone` (include/uapi/linux/time.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timezone {
    pub tz_minuteswest: i32,
    pub tz_dsttime: i32,
}

/// `struct iovec` (include/uapi/linux/uio.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Iovec {
    pub iov_base: u64,
    pub iov_len: u64,
}
/// UIO_MAXIOV (include/uapi/linux/uio.h).
pub const UIO_MAXIOV: i32 = 1024;

/// `struct new_utsname` (include/uapi/linux/utsname.h): six fields of 65 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NewUtsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}

/// `struct rlimit64` (include/uapi/linux/resource.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rlimit {
    pub rlim_cur: u64,
    pub rlim_max: u64,
}
/// RLIM_INFINITY (include/uapi/asm-generic/resource.h).
pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIMIT_CPU: u32 = 0;
pub const RLIMIT_FSIZE: u32 = 1;
pub const RLIMIT_DATA: u32 = 2;
pub const RLIMIT_STACK: u32 = 3;
pub const RLIMIT_CORE: u32 = 4;
pub const RLIMIT_RSS: u32 = 5;
pub const RLIMIT_NPROC: u32 = 6;
pub const RLIMIT_NOFILE: u32 = 7;
pub const RLIMIT_MEMLOCK: u32 = 8;
pub const RLIMIT_AS: u32 = 9;
pub const RLIMIT_LOCKS: u32 = 10;
pub const RLIMIT_SIGPENDING: u32 = 11;
pub const RLIMIT_MSGQUEUE: u32 = 12;
pub const RLIMIT_NICE: u32 = 13;
pub const RLIMIT_RTPRIO: u32 = 14;
pub const RLIMIT_RTTIME: u32 = 15;
pub const RLIM_NLIMITS: usize = 16;

/// `struct stat` for x86_64 (arch/x86/include/uapi/asm/stat.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub __pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub __unused: [i64; 3],
}
/// File type bits of st_mode (include/uapi/linux/stat.h).
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFSOCK: u32 = 0o140000;

/// `struct termios` as TCGETS returns it (include/uapi/asm-generic/termbits.h; NCCS = 19).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}

/// `struct winsize` (include/uapi/asm-generic/termios.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}

/// The x86_64 `struct sigaction` that rt_sigaction takes (arch/x86/include/asm/signal.h's
/// kernel view: handler, flags, restorer, mask).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sigaction {
    pub sa_handler: u64,
    pub sa_flags: u64,
    pub sa_restorer: u64,
    pub sa_mask: u64,
}

/// `struct itimerval` (include/uapi/linux/time.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerval {
    pub it_interval: Timeval,
    pub it_value: Timeval,
}

/// `struct itimerspec` (include/uapi/linux/time_types.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerspec {
    pub it_interval: Timespec,
    pub it_value: Timespec,
}

/// `struct sigevent`'s head (include/uapi/asm-generic/siginfo.h): 64 bytes in all.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sigevent {
    pub sigev_value: u64,
    pub sigev_signo: i32,
    pub sigev_notify: i32,
    /// _sigev_un: for SIGEV_THREAD_ID, the thread id first.
    pub sigev_tid: i32,
    pub __pad: [i32; 11],
}
const _: () = assert!(core::mem::size_of::<Sigevent>() == 64);

/// `struct rusage` (include/uapi/linux/resource.h): two timevals, then fourteen longs.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub ru_maxrss: i64,
    /// ru_ixrss, ru_idrss, ru_isrss, ru_minflt, ru_majflt, ru_nswap, ru_inblock, ru_oublock,
    /// ru_msgsnd, ru_msgrcv, ru_nsignals, ru_nvcsw, ru_nivcsw.
    pub rest: [i64; 13],
}

/// `struct tms` (include/uapi/linux/times.h), in clock ticks of USER_HZ.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Tms {
    pub tms_utime: i64,
    pub tms_stime: i64,
    pub tms_cutime: i64,
    pub tms_cstime: i64,
}

/// `struct sysinfo` (include/uapi/linux/sysinfo.h) on x86_64: 112 bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub pad2: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub pad3: u32,
}

const _: () = {
    assert!(core::mem::size_of::<Sysinfo>() == 112);
    assert!(core::mem::offset_of!(Sysinfo, procs) == 80);
    assert!(core::mem::offset_of!(Sysinfo, mem_unit) == 104);
    assert!(core::mem::size_of::<Rusage>() == 144);
    assert!(core::mem::size_of::<Tms>() == 32);
    assert!(core::mem::size_of::<Timespec>() == 16);
    assert!(core::mem::size_of::<Timeval>() == 16);
    assert!(core::mem::size_of::<Iovec>() == 16);
    assert!(core::mem::size_of::<NewUtsname>() == 390);
    assert!(core::mem::size_of::<Rlimit>() == 16);
    assert!(core::mem::size_of::<Stat>() == 144);
    assert!(core::mem::offset_of!(Stat, st_mode) == 24);
    assert!(core::mem::offset_of!(Stat, st_rdev) == 40);
    assert!(core::mem::offset_of!(Stat, st_blksize) == 56);
    assert!(core::mem::offset_of!(Stat, st_mtime) == 88);
    assert!(core::mem::size_of::<Termios>() == 36);
    assert!(core::mem::size_of::<Winsize>() == 8);
    assert!(core::mem::size_of::<Sigaction>() == 32);
};

/// `stack_t` (include/uapi/asm-generic/signal.h): sigaltstack's argument and uc_stack.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StackT {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub __pad: u32,
    pub ss_size: u64,
}

/// `struct sigcontext` for x86_64 (arch/x86/include/uapi/asm/sigcontext.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sigcontext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    /// Address of the FPU state (an XSAVE or FXSAVE image), 0 if none.
    pub fpstate: u64,
    pub reserved1: [u64; 8],
}

/// `struct ucontext` for x86_64 (arch/x86/include/uapi/asm/ucontext.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Ucontext {
    pub uc_flags: u64,
    pub uc_link: u64,
    pub uc_stack: StackT,
    pub uc_mcontext: Sigcontext,
    pub uc_sigmask: u64,
}

/// `siginfo_t` (include/uapi/asm-generic/siginfo.h): 128 bytes; the union starts at 16.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Siginfo {
    pub si_signo: i32,
    pub si_errno: i32,
    pub si_code: i32,
    pub __pad: i32,
    /// _sigfault.si_addr, or _kill.si_pid (low 4 bytes) and si_uid (high 4 bytes).
    pub fields: [u64; 14],
}

/// The x86_64 `struct rt_sigframe` (arch/x86/include/asm/sigframe.h): what the handler's
/// stack pointer points at. The FPU state lives separately, below it.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct RtSigframe {
    /// sa_restorer: the handler's return address.
    pub pretcode: u64,
    pub uc: Ucontext,
    pub info: Siginfo,
}

const _: () = {
    assert!(core::mem::size_of::<StackT>() == 24);
    assert!(core::mem::size_of::<Sigcontext>() == 256);
    assert!(core::mem::offset_of!(Sigcontext, rip) == 128);
    assert!(core::mem::offset_of!(Sigcontext, cs) == 144);
    assert!(core::mem::offset_of!(Sigcontext, err) == 152);
    assert!(core::mem::offset_of!(Sigcontext, fpstate) == 184);
    assert!(core::mem::size_of::<Ucontext>() == 304);
    assert!(core::mem::offset_of!(Ucontext, uc_mcontext) == 40);
    assert!(core::mem::offset_of!(Ucontext, uc_sigmask) == 296);
    assert!(core::mem::size_of::<Siginfo>() == 128);
    assert!(core::mem::offset_of!(RtSigframe, uc) == 8);
    assert!(core::mem::offset_of!(RtSigframe, info) == 312);
    assert!(core::mem::size_of::<RtSigframe>() == 440);
};

/// `struct statx_timestamp` (include/uapi/linux/stat.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub __reserved: i32,
}

/// `struct statx` (include/uapi/linux/stat.h): 256 bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub __spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub stx_mnt_id: u64,
    pub stx_dio_mem_align: u32,
    pub stx_dio_offset_align: u32,
    pub __spare3: [u64; 12],
}
const _: () = assert!(core::mem::size_of::<Statx>() == 256);

/// `struct statfs` for x86_64 (include/uapi/asm-generic/statfs.h): 120 bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}
const _: () = assert!(core::mem::size_of::<Statfs>() == 120);
