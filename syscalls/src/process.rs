//! The process: its state, and the identity, limit and lifetime syscalls.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::fs::FdTable;
use crate::mm::AddressSpace;
use crate::platform::Context;
use crate::signal::SignalState;
use crate::uapi::*;
use alloc::vec::Vec;

/// The one process a Pith VM runs. Its pid is 1: it is the first and only program.
pub struct Process {
    pub pid: i32,
    /// The path the program has inside the VM (AT_EXECFN, /proc/self/exe).
    pub executable_path: Vec<u8>,
    pub files: FdTable,
    pub memory: AddressSpace,
    pub signals: SignalState,
    pub timers: crate::time::Timers,
    pub limits: [Rlimit; RLIM_NLIMITS],
    /// The running thread's set_tid_address and set_robust_list (the others' are parked in
    /// `threads`).
    pub clear_child_tid: u64,
    pub robust_list: (u64, usize),
    pub threads: crate::thread::Threads,
    /// The file tree and the working directory.
    pub vfs: pith_fs::vfs::Vfs,
    pub cwd: pith_fs::vfs::Node,
    pub futexes: crate::futex::FutexQueues,
    /// argv and the environment as /proc/self/cmdline and environ show them (NUL-separated).
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    /// Print every syscall (`pith run --trace`).
    pub trace: bool,
    /// The paths looked up in vain so far, when they are reported (`pith run
    /// --missing-files`, missing.rs); None when they are not.
    pub missing_files: Option<alloc::collections::BTreeSet<Vec<u8>>>,
    /// The thread's name (PR_SET_NAME; /proc/self/comm): at most 15 bytes.
    pub comm: [u8; 16],
    pub dumpable: bool,
    pub parent_death_signal: i32,
    /// The membarrier(2) REGISTER commands the program has issued (their bits).
    pub membarrier_registrations: i32,
    /// The file mode creation mask (umask(2)); 022 at start, as a shell would give.
    pub umask: u32,
    /// Niceness and scheduling policy, as set and read back (one thread: they change nothing).
    pub scheduling: crate::sched::Scheduling,
    /// One bit per syscall number whose ENOSYS was already logged.
    unimplemented_logged: [u64; 8],
    /// The kernel-side buffer of file reads and writes, kept between calls: allocating and
    /// zeroing a megabyte per read cost as much as the copy itself.
    pub io_buffer: Vec<u8>,
    /// Sockets and the TCP/IP stack (net.rs, inet.rs).
    pub network: crate::net::Network,
    /// AF_UNIX sockets (unix.rs).
    pub unix_sockets: crate::unix::UnixSockets,
    /// epoll instances and eventfds.
    pub epolls: crate::epoll::Epolls,
    pub eventfds: crate::eventfd::Eventfds,
    pub timerfds: crate::timerfd::Timerfds,
    /// The user and group IDs it runs as (root's at start; credentials.rs).
    pub credentials: crate::credentials::Credentials,
}

/// Linux's defaults for a process started as root (include/asm-generic/resource.h, with the
/// 8 MiB stack of Debian's default).
const fn default_limits() -> [Rlimit; RLIM_NLIMITS] {
    let unlimited = Rlimit {
        rlim_cur: RLIM_INFINITY,
        rlim_max: RLIM_INFINITY,
    };
    let mut limits = [unlimited; RLIM_NLIMITS];
    limits[RLIMIT_STACK as usize] = Rlimit {
        rlim_cur: 8 << 20,
        rlim_max: RLIM_INFINITY,
    };
    limits[RLIMIT_CORE as usize] = Rlimit {
        rlim_cur: 0,
        rlim_max: RLIM_INFINITY,
    };
    limits[RLIMIT_NPROC as usize] = Rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    limits[RLIMIT_NOFILE as usize] = Rlimit {
        rlim_cur: 1024,
        rlim_max: 4096,
    };
    limits[RLIMIT_MEMLOCK as usize] = Rlimit {
        rlim_cur: 8 << 20,
        rlim_max: 8 << 20,
    };
    limits[RLIMIT_SIGPENDING as usize] = Rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    limits[RLIMIT_MSGQUEUE as usize] = Rlimit {
        rlim_cur: 819_200,
        rlim_max: 819_200,
    };
    limits[RLIMIT_NICE as usize] = Rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    limits[RLIMIT_RTPRIO as usize] = Rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    limits
}

impl Process {
    /// A process whose file tree is the standard one (files.rs `standard_tree`), its tmpfs
    /// holding at most `tmpfs_bytes` each, `/tmp` as `tmp` says, with timestamps from `now`.
    pub fn new(
        executable_path: Vec<u8>,
        memory: AddressSpace,
        tmpfs_bytes: u64,
        tmp: crate::files::TmpMount,
        now: pith_fs::Timestamp,
    ) -> Process {
        let executable_path_for_comm = executable_path.clone();
        let vfs = crate::files::standard_tree(tmpfs_bytes, tmp, now, &executable_path);
        let cwd = vfs.root();
        Process {
            pid: 1,
            executable_path,
            files: FdTable::with_console(),
            memory,
            signals: SignalState::default(),
            timers: crate::time::Timers::default(),
            limits: default_limits(),
            clear_child_tid: 0,
            robust_list: (0, 0),
            threads: crate::thread::Threads::new(1),
            vfs,
            cwd,
            futexes: crate::futex::FutexQueues::default(),
            cmdline: Vec::new(),
            environ: Vec::new(),
            trace: false,
            comm: comm_from_path(&executable_path_for_comm),
            dumpable: true,
            parent_death_signal: 0,
            umask: 0o022,
            membarrier_registrations: 0,
            scheduling: crate::sched::Scheduling::default(),
            unimplemented_logged: [0; 8],
            io_buffer: Vec::new(),
            network: crate::net::Network::default(),
            unix_sockets: crate::unix::UnixSockets::default(),
            epolls: crate::epoll::Epolls::default(),
            eventfds: crate::eventfd::Eventfds::default(),
            timerfds: crate::timerfd::Timerfds::default(),
            credentials: crate::credentials::Credentials::default(),
            missing_files: None,
        }
    }

    /// True the first time it is asked about `number`, so ENOSYS is logged once per syscall.
    pub fn first_unimplemented_call(&mut self, number: u64) -> bool {
        let index = (number as usize).min(511);
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let first = self.unimplemented_logged[word] & bit == 0;
        self.unimplemented_logged[word] |= bit;
        first
    }

    pub fn tid(&self) -> i32 {
        self.threads.current
    }
}

/// Implements exit_group(2): the status a shell sees is the low 8 bits. The VM stops with the
/// program, so its volumes are unmounted first, as a clean shutdown would.
pub fn exit_group(context: &mut Context, status: i32) -> Result<(), Errno> {
    crate::net::flush_at_exit(context);
    crate::files::shutdown(context);
    context.platform.exit(status & 0xff)
}

/// Implements getpid(2).
pub fn getpid(context: &mut Context) -> Result<i32, Errno> {
    Ok(context.process.pid)
}

/// Implements gettid(2).
pub fn gettid(context: &mut Context) -> Result<i32, Errno> {
    Ok(context.process.tid())
}

/// Implements getppid(2): nothing started the program inside the VM, as for Linux's init.
pub fn getppid(_context: &mut Context) -> Result<i32, Errno> {
    Ok(0)
}

/// The program leads its own process group and session: their ids are its pid, as
/// /proc/self/stat shows. `pid` 0 or the program's own names it; any other is ESRCH.
fn own_group_or_session(context: &Context, pid: i32) -> Result<i32, Errno> {
    if pid == 0 || pid == context.process.pid {
        Ok(context.process.pid)
    } else {
        Err(Errno::ESRCH)
    }
}

/// Implements umask(2): sets the mask (its permission bits) and returns the one before. No
/// file is created yet, so it only takes effect once the filesystem lands.
pub fn umask(context: &mut Context, mask: u32) -> Result<i32, Errno> {
    Ok(core::mem::replace(&mut context.process.umask, mask & 0o777) as i32)
}

/// Implements getpgrp(2).
pub fn getpgrp(context: &mut Context) -> Result<i32, Errno> {
    Ok(context.process.pid)
}

/// Implements getpgid(2).
pub fn getpgid(context: &mut Context, pid: i32) -> Result<i32, Errno> {
    own_group_or_session(context, pid)
}

/// Implements getsid(2).
pub fn getsid(context: &mut Context, pid: i32) -> Result<i32, Errno> {
    own_group_or_session(context, pid)
}

/// Implements setsid(2): the program already leads a process group, so, as Linux answers a
/// group leader, EPERM.
pub fn setsid(_context: &mut Context) -> Result<i32, Errno> {
    Err(Errno::EPERM)
}

/// Implements setpgid(2) with Linux's checks in order: a negative group EINVAL, another
/// process ESRCH, and then, the program leading its session, EPERM.
pub fn setpgid(context: &mut Context, pid: i32, pgid: i32) -> Result<(), Errno> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    own_group_or_session(context, pid)?;
    Err(Errno::EPERM)
}

/// Implements sched_yield(2): the thread goes behind the other runnable ones.
pub fn sched_yield(context: &mut Context) -> Result<(), Errno> {
    context.platform.yield_now(context.process);
    Ok(())
}

/// The initial comm: the file name of the program, cut to 15 bytes (TASK_COMM_LEN - 1).
fn comm_from_path(path: &[u8]) -> [u8; 16] {
    let name = path.rsplit(|&byte| byte == b'/').next().unwrap_or(path);
    let mut comm = [0u8; 16];
    let len = name.len().min(15);
    comm[..len].copy_from_slice(&name[..len]);
    comm
}

/// prctl options (include/uapi/linux/prctl.h).
pub const PR_SET_PDEATHSIG: i32 = 1;
pub const PR_GET_PDEATHSIG: i32 = 2;
pub const PR_GET_DUMPABLE: i32 = 3;
pub const PR_SET_DUMPABLE: i32 = 4;
pub const PR_SET_NAME: i32 = 15;
pub const PR_GET_NAME: i32 = 16;

/// Implements prctl(2) for the name, dumpable and parent-death-signal options.
pub fn prctl(
    context: &mut Context,
    option: i32,
    argument: u64,
    _argument3: u64,
    _argument4: u64,
    _argument5: u64,
) -> Result<i32, Errno> {
    match option {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            // Linux copies up to 16 bytes and terminates at the 16th whatever the string says.
            let mut byte = [0u8; 1];
            for (index, slot) in name.iter_mut().take(15).enumerate() {
                context
                    .platform
                    .read_user(argument + index as u64, &mut byte)?;
                if byte[0] == 0 {
                    break;
                }
                *slot = byte[0];
            }
            context.process.comm = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let comm = context.process.comm;
            context.platform.write_user(argument, &comm)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(context.process.dumpable as i32),
        PR_SET_DUMPABLE => match argument {
            0 | 1 => {
                context.process.dumpable = argument == 1;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        },
        PR_SET_PDEATHSIG => {
            if argument > crate::signal::NSIG as u64 {
                return Err(Errno::EINVAL);
            }
            // Recorded; nothing started the program, so no parent can die.
            context.process.parent_death_signal = argument as i32;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let signal = context.process.parent_death_signal;
            context.write_struct(argument, &signal)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn field<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let len = text.len().min(N - 1);
    out[..len].copy_from_slice(&text.as_bytes()[..len]);
    out
}

/// The release uname reports: a Linux release glibc and musl accept, marked as Pith's.
pub const UTS_RELEASE: &str = "6.1.0-pith";

/// Implements uname(2).
pub fn uname(context: &mut Context, buffer: UserAddr) -> Result<(), Errno> {
    let name = NewUtsname {
        sysname: field("Linux"),
        nodename: field("pith"),
        release: field(UTS_RELEASE),
        version: field(concat!("#1 SMP Pith ", env!("CARGO_PKG_VERSION"))),
        machine: field("x86_64"),
        domainname: field("(none)"),
    };
    context.write_struct(buffer.0, &name)
}

fn check_resource(resource: u32) -> Result<usize, Errno> {
    let index = resource as usize;
    if index >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    Ok(index)
}

/// Implements prlimit64(2) for the calling process (pid 0 or its own pid).
pub fn prlimit64(
    context: &mut Context,
    pid: i32,
    resource: u32,
    new_limit: UserAddr,
    old_limit: UserAddr,
) -> Result<(), Errno> {
    if pid != 0 && !context.process.threads.exists(pid) {
        return Err(Errno::ESRCH);
    }
    let index = check_resource(resource)?;
    let new = if new_limit.is_null() {
        None
    } else {
        Some(context.read_struct::<Rlimit>(new_limit.0)?)
    };
    if let Some(new) = new {
        if new.rlim_cur > new.rlim_max {
            return Err(Errno::EINVAL);
        }
        if resource == RLIMIT_NOFILE && new.rlim_max > crate::fs::NR_OPEN {
            return Err(Errno::EPERM);
        }
    }
    if !old_limit.is_null() {
        let old = context.process.limits[index];
        context.write_struct(old_limit.0, &old)?;
    }
    if let Some(new) = new {
        context.process.limits[index] = new;
    }
    Ok(())
}

/// Implements getrlimit(2).
pub fn getrlimit(context: &mut Context, resource: u32, limit: UserAddr) -> Result<(), Errno> {
    prlimit64(context, 0, resource, UserAddr(0), limit)
}

/// Implements setrlimit(2).
pub fn setrlimit(context: &mut Context, resource: u32, limit: UserAddr) -> Result<(), Errno> {
    if limit.is_null() {
        return Err(Errno::EFAULT);
    }
    prlimit64(context, 0, resource, limit, UserAddr(0))
}

/// Implements set_tid_address(2).
pub fn set_tid_address(context: &mut Context, address: UserAddr) -> Result<i32, Errno> {
    context.process.clear_child_tid = address.0;
    Ok(context.process.tid())
}

/// `sizeof(struct robust_list_head)` (include/uapi/linux/futex.h).
const ROBUST_LIST_HEAD_SIZE: usize = 24;

/// Implements set_robust_list(2).
pub fn set_robust_list(context: &mut Context, head: UserAddr, length: usize) -> Result<(), Errno> {
    if length != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    context.process.robust_list = (head.0, length);
    Ok(())
}

/// Implements get_robust_list(2): the head set_robust_list registered for thread `tid` (0: the
/// caller), and its length.
pub fn get_robust_list(
    context: &mut Context,
    tid: i32,
    head: UserAddr,
    length: UserAddr,
) -> Result<(), Errno> {
    let (address, _) = if tid == 0 || tid == context.process.threads.current {
        context.process.robust_list
    } else {
        context
            .process
            .threads
            .parked_mut(tid)
            .map(|state| state.robust_list)
            .ok_or(Errno::ESRCH)?
    };
    // As Linux: the length is always the struct's size (the only one set_robust_list takes).
    context.write_struct(length.0, &(ROBUST_LIST_HEAD_SIZE as u64))?;
    context.write_struct(head.0, &address)
}

/// rseq(2) is deliberately unimplemented; the table routes it to ENOSYS before this runs.
pub fn rseq(
    _context: &mut Context,
    _area: UserAddr,
    _length: u32,
    _flags: i32,
    _signature: u32,
) -> Result<(), Errno> {
    Err(Errno::ENOSYS)
}

/// arch_prctl codes (arch/x86/include/uapi/asm/prctl.h).
pub const ARCH_SET_GS: i32 = 0x1001;
pub const ARCH_SET_FS: i32 = 0x1002;
pub const ARCH_GET_FS: i32 = 0x1003;
pub const ARCH_GET_GS: i32 = 0x1004;
pub const ARCH_GET_CPUID: i32 = 0x1011;
pub const ARCH_SET_CPUID: i32 = 0x1012;
/// TASK_SIZE_MAX on x86_64 with 4-level paging: the end of the lower half, less a guard page.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;

/// Implements arch_prctl(2).
pub fn arch_prctl(context: &mut Context, code: i32, address: UserAddr) -> Result<i32, Errno> {
    let address = address.0;
    match code {
        ARCH_SET_FS => {
            if address >= TASK_SIZE_MAX {
                return Err(Errno::EPERM);
            }
            context.platform.set_fs_base(address);
            Ok(0)
        }
        ARCH_GET_FS => {
            let base = context.platform.fs_base();
            context.write_struct(address, &base)?;
            Ok(0)
        }
        // The kernel keeps its per-CPU data behind GS (the app runs in ring 0 beside it).
        ARCH_SET_GS | ARCH_GET_GS => Err(Errno::EPERM),
        ARCH_GET_CPUID => Ok(1),
        // CPUID faulting is not available: what Linux says on hardware without it.
        ARCH_SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

/// getrusage(2)'s `who` (include/uapi/linux/resource.h).
pub const RUSAGE_SELF: i32 = 0;
pub const RUSAGE_CHILDREN: i32 = -1;
pub const RUSAGE_THREAD: i32 = 1;
/// The clock tick of times(2) and /proc: USER_HZ.
const USER_HZ: u64 = 100;

/// Implements getrusage(2): the CPU time the program ran, all of it as user time (the kernel's
/// share is not told apart: a syscall is a function call in the same ring), and its peak
/// resident set; the counters (faults, context switches, ...) read 0. No children exist.
pub fn getrusage(context: &mut Context, who: i32, usage: UserAddr) -> Result<(), Errno> {
    let mut result = Rusage::default();
    match who {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let cpu = context.platform.now(crate::platform::MachineClock::CpuTime);
            result.ru_utime = Timeval {
                tv_sec: (cpu / 1_000_000_000) as i64,
                tv_usec: (cpu % 1_000_000_000 / 1_000) as i64,
            };
            result.ru_maxrss = (context.platform.peak_resident_pages() * 4) as i64;
            // KiB
        }
        RUSAGE_CHILDREN => {}
        _ => return Err(Errno::EINVAL),
    }
    context.write_struct(usage.0, &result)
}

/// Implements times(2): the program's CPU time in clock ticks (all of it user time, as in
/// getrusage), and the ticks since boot, which only differences make sense of.
pub fn times(context: &mut Context, buffer: UserAddr) -> Result<i64, Errno> {
    let ticks = |nanoseconds: u64| (nanoseconds / (1_000_000_000 / USER_HZ)) as i64;
    if !buffer.is_null() {
        let cpu = context.platform.now(crate::platform::MachineClock::CpuTime);
        let usage = Tms {
            tms_utime: ticks(cpu),
            ..Tms::default()
        };
        context.write_struct(buffer.0, &usage)?;
    }
    Ok(ticks(
        context
            .platform
            .now(crate::platform::MachineClock::Monotonic),
    ))
}

/// Implements sysinfo(2): uptime, RAM as the allocator sees it (total, and free now), one
/// process; no swap, no high memory, no shared or buffer memory. Load averages are not kept
/// and read 0.
pub fn sysinfo(context: &mut Context, info: UserAddr) -> Result<(), Errno> {
    let now = context
        .platform
        .now(crate::platform::MachineClock::Monotonic);
    let (total, free) = context.platform.ram_pages();
    let result = Sysinfo {
        // Linux rounds a started second up (kernel/sys.c do_sysinfo).
        uptime: now.div_ceil(1_000_000_000) as i64,
        totalram: total * 4096,
        freeram: free * 4096,
        procs: 1,
        mem_unit: 1,
        ..Sysinfo::default()
    };
    context.write_struct(info.0, &result)
}

/// Implements sched_setaffinity(2): the mask must allow CPU 0, the only one.
pub fn sched_setaffinity(
    context: &mut Context,
    pid: i32,
    size: usize,
    mask: UserAddr,
) -> Result<(), Errno> {
    // As Linux: the mask is copied in (EFAULT) before the pid is looked up (ESRCH); an empty
    // one allows no CPU.
    let mut first = [0u8; 1];
    if size > 0 {
        context.platform.read_user(mask.0, &mut first)?;
    }
    if pid != 0 && !context.process.threads.exists(pid) {
        return Err(Errno::ESRCH);
    }
    if first[0] & 1 == 0 {
        return Err(Errno::EINVAL); // no CPU the mask allows exists
    }
    Ok(())
}

/// Implements getcpu(2): CPU 0 of node 0.
pub fn getcpu(
    context: &mut Context,
    cpu: UserAddr,
    node: UserAddr,
    _cache: UserAddr,
) -> Result<(), Errno> {
    if !cpu.is_null() {
        context.write_struct(cpu.0, &0u32)?;
    }
    if !node.is_null() {
        context.write_struct(node.0, &0u32)?;
    }
    Ok(())
}

/// fork(2) and vfork(2): unimplemented, as clone.
pub fn fork(context: &mut Context) -> Result<i32, Errno> {
    crate::thread::log_refused(context, 57, "fork", 17);
    Err(Errno::EAGAIN)
}

/// Implements vfork(2): as fork, the process Pith cannot make.
pub fn vfork(context: &mut Context) -> Result<i32, Errno> {
    crate::thread::log_refused(
        context,
        58,
        "vfork",
        crate::thread::CLONE_VM | crate::thread::CLONE_VFORK | 17,
    );
    Err(Errno::EAGAIN)
}

/// Implements execve(2) and execveat(2): Pith runs the one program it booted. ENOMEM, Linux's
/// answer when it cannot set up the new image, with a warning naming what was to be run.
pub fn execve(
    context: &mut Context,
    path: crate::args::UserPath,
    _argv: UserAddr,
    _envp: UserAddr,
) -> Result<i32, Errno> {
    let target = context.read_c_string(path.0, crate::platform::PATH_MAX - 1)?;
    // What Linux checks first: a path that names nothing is ENOENT (and so on), not ENOMEM.
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    crate::files::resolve_at(context, crate::args::Fd(crate::fs::AT_FDCWD), &target, true)?;
    if context.process.first_unimplemented_call(59) {
        let program =
            alloc::string::String::from_utf8_lossy(&context.process.executable_path).into_owned();
        let target = alloc::string::String::from_utf8_lossy(&target).into_owned();
        context.platform.log(
            crate::platform::LogLevel::Warn,
            format_args!(
                "{program}: execve of {target}: Pith runs the one program it booted; it returns ENOMEM"
            ),
        );
    }
    Err(Errno::ENOMEM)
}

/// Implements execveat(2): as execve.
pub fn execveat(
    context: &mut Context,
    _dir_fd: crate::args::Fd,
    path: crate::args::UserPath,
    argv: UserAddr,
    envp: UserAddr,
    _flags: i32,
) -> Result<i32, Errno> {
    execve(context, path, argv, envp)
}

/// Implements sched_getaffinity(2): one CPU.
pub fn sched_getaffinity(
    context: &mut Context,
    pid: i32,
    size: usize,
    mask: UserAddr,
) -> Result<usize, Errno> {
    if pid != 0 && !context.process.threads.exists(pid) {
        return Err(Errno::ESRCH);
    }
    const MASK_BYTES: usize = 8; // cpumask_size() for nr_cpu_ids <= 64
    if size < MASK_BYTES || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    context.write_struct(mask.0, &1u64)?;
    Ok(MASK_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn uname_reports_linux_x86_64() {
        let mut machine = TestMachine::new();
        let address = machine.scratch(512);
        machine.call(63, [address, 0, 0, 0, 0, 0]).unwrap();
        let bytes = machine.memory_at(address, 390);
        assert_eq!(&bytes[..6], b"Linux\0");
        assert_eq!(&bytes[65 * 4..65 * 4 + 7], b"x86_64\0");
        assert_eq!(
            &bytes[65 * 2..65 * 2 + UTS_RELEASE.len()],
            UTS_RELEASE.as_bytes()
        );
    }

    #[test]
    fn prlimit_reads_and_sets_the_stack_limit() {
        let mut machine = TestMachine::new();
        let old = machine.scratch(16);
        machine
            .call(302, [0, RLIMIT_STACK as u64, 0, old, 0, 0])
            .unwrap();
        assert_eq!(machine.read_u64(old), 8 << 20);
        let new = machine.scratch(16);
        machine.write_u64(new, 1 << 20);
        machine.write_u64(new + 8, 2 << 20);
        machine
            .call(302, [0, RLIMIT_STACK as u64, new, 0, 0, 0])
            .unwrap();
        machine
            .call(97, [RLIMIT_STACK as u64, old, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(
            (machine.read_u64(old), machine.read_u64(old + 8)),
            (1 << 20, 2 << 20)
        );
    }

    #[test]
    fn prlimit_rejects_bad_input() {
        let mut machine = TestMachine::new();
        let limit = machine.scratch(16);
        assert_eq!(
            machine.call(302, [0, 16, 0, limit, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(302, [77, 3, 0, limit, 0, 0]),
            Err(Errno::ESRCH)
        );
        machine.write_u64(limit, 10);
        machine.write_u64(limit + 8, 5);
        assert_eq!(
            machine.call(302, [0, 3, limit, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(302, [0, 3, 0, 0x10, 0, 0]), Err(Errno::EFAULT));
    }

    #[test]
    fn arch_prctl_sets_and_gets_fs() {
        let mut machine = TestMachine::new();
        machine
            .call(158, [ARCH_SET_FS as u64, 0x7000_1000, 0, 0, 0, 0])
            .unwrap();
        let out = machine.scratch(8);
        machine
            .call(158, [ARCH_GET_FS as u64, out, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(machine.read_u64(out), 0x7000_1000);
        assert_eq!(
            machine.call(158, [ARCH_SET_FS as u64, 0xffff_8000_0000_0000, 0, 0, 0, 0]),
            Err(Errno::EPERM)
        );
        assert_eq!(
            machine.call(158, [0x9999, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn prctl_names_the_thread() {
        let mut machine = TestMachine::new();
        let out = machine.scratch(16);
        assert_eq!(
            machine.call(157, [PR_GET_NAME as u64, out, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(&machine.memory_at(out, 6), b"hello\0");
        let name = machine.put(b"a-rather-long-thread-name\0");
        assert_eq!(
            machine.call(157, [PR_SET_NAME as u64, name, 0, 0, 0, 0]),
            Ok(0)
        );
        machine
            .call(157, [PR_GET_NAME as u64, out, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(&machine.memory_at(out, 16), b"a-rather-long-t\0");
        assert_eq!(
            machine.call(157, [PR_SET_DUMPABLE as u64, 2, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(157, [PR_SET_DUMPABLE as u64, 0, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(157, [PR_GET_DUMPABLE as u64, 0, 0, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.call(157, [9999, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
    }

    #[test]
    fn robust_list_length_must_match_the_struct() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(273, [0x1000, 24, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(273, [0x1000, 16, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn affinity_is_one_cpu() {
        let mut machine = TestMachine::new();
        let mask = machine.scratch(128);
        assert_eq!(machine.call(204, [0, 128, mask, 0, 0, 0]), Ok(8));
        assert_eq!(machine.read_u64(mask), 1);
        assert_eq!(machine.call(204, [0, 4, mask, 0, 0, 0]), Err(Errno::EINVAL));
    }

    #[test]
    fn unknown_and_unimplemented_syscalls_are_enosys_and_logged_once() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(400, [0; 6]), Err(Errno::ENOSYS));
        assert_eq!(machine.call(334, [0; 6]), Err(Errno::ENOSYS));
        assert_eq!(machine.call(334, [0; 6]), Err(Errno::ENOSYS));
        assert_eq!(machine.call(9999, [0; 6]), Err(Errno::ENOSYS));
        let logs = machine.logs();
        assert_eq!(
            logs.iter().filter(|line| line.contains("rseq")).count(),
            1,
            "{logs:?}"
        );
        assert!(logs.iter().any(|line| line.contains("400")), "{logs:?}");
    }

    #[test]
    fn getrusage_and_times_report_cpu_time_not_sleep() {
        let mut machine = TestMachine::new();
        machine.set_clocks(2_500_000_000, 0); // 2.5 s run, none of it asleep
        let usage = machine.scratch(144);
        assert_eq!(machine.call(98, [0, usage, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            (machine.read_u64(usage), machine.read_u64(usage + 8)),
            (2, 500_000)
        );
        assert_eq!(machine.call(98, [(-1i64) as u64, usage, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(usage), 0);
        assert_eq!(machine.call(98, [7, usage, 0, 0, 0, 0]), Err(Errno::EINVAL));
        let tms = machine.scratch(32);
        assert_eq!(machine.call(100, [tms, 0, 0, 0, 0, 0]), Ok(250));
        assert_eq!(machine.read_u64(tms), 250);
        assert_eq!(machine.call(100, [0; 6]), Ok(250));
    }

    #[test]
    fn sysinfo_reports_uptime_ram_and_one_process() {
        let mut machine = TestMachine::new();
        machine.set_clocks(2_500_000_000, 0);
        let info = machine.scratch(112);
        assert_eq!(machine.call(99, [info, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(info), 3); // 2.5 s, rounded up
        assert_eq!(machine.read_u64(info + 32), 256 << 20);
        assert!(machine.read_u64(info + 40) < 256 << 20);
        assert_eq!(machine.read_u64(info + 80) & 0xffff, 1);
        assert_eq!(machine.read_u64(info + 104) & 0xffff_ffff, 1);
        assert_eq!(machine.call(99, [0; 6]), Err(Errno::EFAULT));
    }

    #[test]
    fn umask_returns_the_mask_before() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(95, [0o077, 0, 0, 0, 0, 0]), Ok(0o022));
        assert_eq!(machine.call(95, [0o7777, 0, 0, 0, 0, 0]), Ok(0o077));
        assert_eq!(machine.call(95, [0, 0, 0, 0, 0, 0]), Ok(0o777));
    }

    #[test]
    fn the_program_leads_its_group_and_session() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(111, [0; 6]), Ok(1));
        assert_eq!(machine.call(121, [0; 6]), Ok(1));
        assert_eq!(machine.call(124, [1, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(124, [5, 0, 0, 0, 0, 0]), Err(Errno::ESRCH));
        assert_eq!(machine.call(112, [0; 6]), Err(Errno::EPERM));
        assert_eq!(
            machine.call(109, [0, (-1i64) as u64, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(109, [5, 0, 0, 0, 0, 0]), Err(Errno::ESRCH));
        assert_eq!(machine.call(109, [0, 0, 0, 0, 0, 0]), Err(Errno::EPERM));
    }

    #[test]
    fn a_refused_fork_warns_what_it_asked_for() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(57, [0; 6]), Err(Errno::EAGAIN));
        assert_eq!(machine.call(58, [0; 6]), Err(Errno::EAGAIN));
        let logs = machine.logs();
        assert!(
            logs.iter()
                .any(|line| line.contains("fork (flags 0x11) asked for a new process (fork)")),
            "{logs:?}"
        );
        assert!(
            logs.iter().any(|line| line
                .contains("vfork (flags 0x4111) asked for a process sharing this memory")),
            "{logs:?}"
        );
    }
}
