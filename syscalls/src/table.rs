//! The syscall table: number → name → typed handler → status, as data. Dispatch and
//! `docs/syscalls.md` are both made from it.

use crate::args::{ArgKind, IntoReturn, SyscallArg};
use crate::args::{Fd, UserAddr, UserPath};
use crate::errno::Errno;
use crate::names::SYSCALL_NAMES;
use crate::platform::{Context, LogLevel};
use crate::{
    credentials, epoll, eventfd, files, fs, futex, mm, net, pipe, poll, process, random, sched,
    signal, thread, time, timerfd, xattr,
};

/// How far a syscall is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Linux's semantics, all of them.
    Supported,
    /// Implemented in part; the note says what is missing.
    Partial(&'static str),
    /// Deliberately answers ENOSYS; the note says why that is what apps expect.
    Unimplemented(&'static str),
}

/// Decodes the raw argument registers, runs the handler, and encodes its result as rax.
pub type Handler = fn(&mut Context, &[u64; 6]) -> u64;

/// One row of the table.
pub struct Syscall {
    pub number: usize,
    pub name: &'static str,
    pub args: &'static [ArgKind],
    pub handler: Handler,
    pub status: Status,
}

/// Declares the table: `number name(arg: Type, ...) => handler, status;`. Each argument is
/// decoded by its type's [`SyscallArg`] impl before the handler runs.
macro_rules! syscall_table {
    ($( $number:literal $name:ident ( $($arg:ident : $ty:ty),* ) => $handler:path, $status:expr; )*) => {
        /// Every syscall Pith implements, in number order.
        pub static SYSCALLS: &[Syscall] = &[
            $( Syscall {
                number: $number,
                name: stringify!($name),
                args: &[$(<$ty as SyscallArg>::KIND),*],
                handler: {
                    #[allow(unused_variables, unused_mut, unused_assignments)] // zero-argument rows
                    fn decode_and_run(context: &mut Context, raw: &[u64; 6]) -> Result<u64, Errno> {
                        let mut index = 0;
                        $(
                            let $arg = <$ty as SyscallArg>::from_raw(raw[index])?;
                            index += 1;
                        )*
                        $handler(context, $($arg),*).map(IntoReturn::into_return)
                    }
                    |context, raw| match decode_and_run(context, raw) {
                        Ok(value) => value,
                        Err(errno) => errno.to_return(),
                    }
                },
                status: $status,
            }, )*
        ];
    };
}

use Status::{Partial, Supported, Unimplemented};

syscall_table! {
    0 read(fd: Fd, buffer: UserAddr, count: usize) => fs::read, Partial("files and device nodes of the file tree, the console, pipes, sockets, eventfds, the /proc files and signalfds; O_NONBLOCK gives EAGAIN on the console when nothing waits");
    1 write(fd: Fd, buffer: UserAddr, count: usize) => fs::write, Partial("files and device nodes of the file tree, the console, pipes, sockets and eventfds; the /proc files and signalfds refuse writes as Linux");
    2 open(path: UserPath, flags: u32, mode: u32) => fs::open, Partial("the file tree (tmpfs or an ext4 image at /, ext4 volumes, tmpfs at /tmp and /dev/shm, the /dev nodes) with O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, O_PATH, O_TMPFILE, O_SYNC/O_DSYNC (each write durable when it returns); /proc's and /sys's generated files; /proc/self/fd/N and /dev/fd/N, /dev/stdin|stdout|stderr (a file opened again, a pipe or the console duplicated) and /proc/self/exe; O_DIRECT is accepted, its I/O going through the caches as any other");
    3 close(fd: Fd) => fs::close, Supported;
    4 stat(path: UserPath, stat: UserAddr) => fs::stat, Supported;
    5 fstat(fd: Fd, stat: UserAddr) => fs::fstat, Supported;
    6 lstat(path: UserPath, stat: UserAddr) => fs::lstat, Supported;
    7 poll(fds: UserAddr, count: u64, timeout: i32) => poll::poll, Supported;
    8 lseek(fd: Fd, offset: i64, whence: i32) => fs::lseek, Supported;
    9 mmap(address: UserAddr, length: u64, protection: u32, flags: u32, fd: Fd, offset: u64) => mm::mmap, Partial("anonymous memory backed on first touch (MAP_POPULATE prefaults); files of the tree read in at mmap, except that a private mapping shows the whole pages of an ELF file packed in the image where they lie until a store copies one (MAP_PRIVATE as Linux; MAP_SHARED mappings of one file share their pages, are coherent with read/write/sendfile/copy_file_range and are written back at msync, munmap and fsync); MAP_SHARED anonymous is private until there is fork; a MAP_GROWSDOWN area grows on a fault below it in the program, not on a syscall's copy there (EFAULT)");
    10 mprotect(address: UserAddr, length: u64, protection: u32) => mm::mprotect, Supported;
    11 munmap(address: UserAddr, length: u64) => mm::munmap, Supported;
    12 brk(address: UserAddr) => mm::brk, Supported;
    13 rt_sigaction(signal: i32, action: UserAddr, old_action: UserAddr, set_size: usize) => signal::rt_sigaction, Partial("handlers run for faults, timers, the host's SIGTERM and signals the program sends itself or one of its threads; SA_RESTART restarts interrupted waits");
    14 rt_sigprocmask(how: i32, set: UserAddr, old_set: UserAddr, set_size: usize) => signal::rt_sigprocmask, Supported;
    15 rt_sigreturn() => signal::rt_sigreturn, Supported;
    16 ioctl(fd: Fd, request: u32, argument: u64) => fs::ioctl, Partial("console: TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD; TCSETS* record the settings for TCGETS but the host terminal keeps its own mode (line editing and echo happen on the host); FIONREAD on regular files");
    17 pread64(fd: Fd, buffer: UserAddr, count: usize, offset: i64) => fs::pread64, Supported;
    18 pwrite64(fd: Fd, buffer: UserAddr, count: usize, offset: i64) => fs::pwrite64, Supported;
    19 readv(fd: Fd, vector: UserAddr, count: i32) => fs::readv, Supported;
    20 writev(fd: Fd, vector: UserAddr, count: i32) => fs::writev, Supported;
    21 access(path: UserPath, mode: i32) => fs::access, Partial("as root: read and write allowed on what exists, execute where an execute bit is set (directories: search)");
    22 pipe(fds: UserAddr) => pipe::pipe, Supported;
    23 select(count: i32, read: UserAddr, write: UserAddr, except: UserAddr, timeout: UserAddr) => poll::select, Supported;
    24 sched_yield() => process::sched_yield, Supported;
    25 mremap(old_address: UserAddr, old_size: u64, new_size: u64, flags: u32, new_address: UserAddr) => mm::mremap, Partial("anonymous memory: shrink, grow in place, MREMAP_MAYMOVE, MREMAP_FIXED; a file mapping that moves becomes anonymous memory holding its pages (a shared one's stores reach the file first, later ones do not); MREMAP_DONTUNMAP is EINVAL");
    26 msync(address: UserAddr, length: u64, flags: i32) => mm::msync, Partial("writes shared file mappings back (MS_SYNC also commits the filesystem)");
    27 mincore(address: UserAddr, length: u64, vector: UserAddr) => mm::mincore, Supported;
    28 madvise(address: UserAddr, length: u64, advice: i32) => mm::madvise, Partial("MADV_DONTNEED frees anonymous pages (they read back as zero), reads a private file mapping's pages again from the file, keeps a shared one's (the file's pages) and the program's own segments (no file to re-read); MADV_POPULATE_* prefault; the other valid values are hints with nothing to act on; MADV_COLLAPSE is EINVAL");
    32 dup(fd: Fd) => fs::dup, Supported;
    33 dup2(old_fd: Fd, new_fd: Fd) => fs::dup2, Supported;
    34 pause() => signal::pause, Supported;
    35 nanosleep(request: UserAddr, remaining: UserAddr) => time::nanosleep, Supported;
    36 getitimer(which: i32, value: UserAddr) => time::getitimer, Partial("ITIMER_REAL; ITIMER_VIRTUAL and ITIMER_PROF both count all CPU time (user and system time are not told apart)");
    37 alarm(seconds: u32) => time::alarm, Supported;
    38 setitimer(which: i32, new_value: UserAddr, old_value: UserAddr) => time::setitimer, Partial("ITIMER_REAL; ITIMER_VIRTUAL and ITIMER_PROF both count all CPU time (user and system time are not told apart)");
    39 getpid() => process::getpid, Supported;
    40 sendfile(out_fd: Fd, in_fd: Fd, offset: UserAddr, count: usize) => files::sendfile, Partial("from a file of the tree to a file, the console, a pipe or a connected TCP socket (to a TCP socket the file is read straight into its send buffer; elsewhere through a kernel buffer; never zero-copy)");
    41 socket(domain: i32, kind: u32, protocol: i32) => net::socket, Partial("AF_INET and AF_INET6, SOCK_STREAM (TCP) and SOCK_DGRAM (UDP) on the smoltcp stack; AF_UNIX SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET in the kernel; AF_NETLINK and raw IP sockets are EAFNOSUPPORT/ESOCKTNOSUPPORT");
    42 connect(fd: Fd, address: UserAddr, len: u32) => net::connect, Supported;
    43 accept(fd: Fd, address: UserAddr, len_address: UserAddr) => net::accept, Supported;
    44 sendto(fd: Fd, buffer: UserAddr, len: usize, flags: u32, address: UserAddr, address_len: u32) => net::sendto, Partial("MSG_DONTWAIT, MSG_NOSIGNAL; MSG_MORE is accepted (TCP_CORK-like batching is not done); MSG_OOB is EOPNOTSUPP");
    45 recvfrom(fd: Fd, buffer: UserAddr, len: usize, flags: u32, address: UserAddr, len_address: UserAddr) => net::recvfrom, Partial("MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC; no urgent data (MSG_OOB is EINVAL)");
    46 sendmsg(fd: Fd, message: UserAddr, flags: u32) => net::sendmsg, Partial("as sendto, with iovecs; AF_UNIX sockets pass SCM_RIGHTS and SCM_CREDENTIALS; ancillary data is ignored on IP sockets");
    47 recvmsg(fd: Fd, message: UserAddr, flags: u32) => net::recvmsg, Partial("as recvfrom, with iovecs; AF_UNIX sockets receive SCM_RIGHTS (MSG_CTRUNC, MSG_CMSG_CLOEXEC) and SCM_CREDENTIALS under SO_PASSCRED; IP sockets get no ancillary data (msg_controllen 0)");
    48 shutdown(fd: Fd, how: i32) => net::shutdown, Supported;
    49 bind(fd: Fd, address: UserAddr, len: u32) => net::bind, Partial("IP: the interface's own address or any; SO_REUSEPORT lets sockets share a port, but connections go to the first listener. AF_UNIX: paths (a socket file), abstract names, autobind");
    50 listen(fd: Fd, backlog: i32) => net::listen, Supported;
    51 getsockname(fd: Fd, address: UserAddr, len_address: UserAddr) => net::getsockname, Supported;
    52 getpeername(fd: Fd, address: UserAddr, len_address: UserAddr) => net::getpeername, Supported;
    53 socketpair(domain: i32, kind: u32, protocol: i32, fds: UserAddr) => net::socketpair, Supported;
    54 setsockopt(fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) => net::setsockopt, Partial("SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_RCVBUF/SO_SNDBUF (buffers of connections made after), SO_LINGER (0: reset at close), SO_RCVTIMEO/SO_SNDTIMEO, TCP_NODELAY, TCP_CORK, TCP_KEEPIDLE/INTVL/CNT (the idle time is the keep-alive interval), IPV6_V6ONLY (stored: an AF_INET6 listener takes IPv4 too); SO_PRIORITY, IP_TOS, IP_TTL, TCP_MAXSEG, TCP_DEFER_ACCEPT, TCP_QUICKACK, TCP_USER_TIMEOUT, TCP_FASTOPEN are stored and read back without effect; others ENOPROTOOPT. AF_UNIX: SO_SNDBUF/SO_RCVBUF, SO_RCVTIMEO/SO_SNDTIMEO, SO_PASSCRED");
    55 getsockopt(fd: Fd, level: i32, name: i32, value: UserAddr, len_address: UserAddr) => net::getsockopt, Partial("as setsockopt, and SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN; SO_PEERCRED on AF_UNIX sockets");
    56 clone(flags: u64, stack: UserAddr, parent_tid: UserAddr, child_tid: UserAddr, tls: u64) => thread::clone, Partial("threads (CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND and CLONE_THREAD together, as pthread_create and Go ask); fork and vfork shapes return ENOSYS, logged with what was asked");
    57 fork() => process::fork, Partial("Pith runs one process: EAGAIN (Linux's answer when it cannot make another), with a warning naming the program");
    58 vfork() => process::vfork, Partial("as fork");
    59 execve(path: UserPath, argv: UserAddr, envp: UserAddr) => process::execve, Partial("Pith runs the one program it booted: ENOMEM, with a warning naming the program and what it tried to run");
    60 exit(status: i32) => thread::exit, Supported;
    62 kill(pid: i32, signal: i32) => signal::kill, Partial("the program itself (pid 0, -1, 1): there is no other process");
    63 uname(buffer: UserAddr) => process::uname, Supported;
    72 fcntl(fd: Fd, command: i32, argument: u64) => fs::fcntl, Partial("F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETPIPE_SZ, F_SETPIPE_SZ; record locks (F_GETLK/SETLK/SETLKW and the F_OFD_ ones): POSIX locks are the process's, OFD locks their open file description's, and they conflict as on Linux; POSIX locks go when any fd of the file closes");
    73 flock(fd: Fd, operation: i32) => files::flock, Partial("files of the tree; pipes and the console: EINVAL");
    74 fsync(fd: Fd) => files::fsync, Partial("on ext4 (images, volumes) a commit of the whole journal and a device FLUSH, the file's shared mappings written back first; on tmpfs nothing to make durable");
    75 fdatasync(fd: Fd) => files::fdatasync, Partial("as fsync");
    76 truncate(path: UserPath, length: i64) => files::truncate, Supported;
    77 ftruncate(fd: Fd, length: i64) => files::ftruncate, Supported;
    79 getcwd(buffer: UserAddr, size: usize) => fs::getcwd, Supported;
    80 chdir(path: UserPath) => files::chdir, Supported;
    81 fchdir(fd: Fd) => files::fchdir, Supported;
    82 rename(old_path: UserPath, new_path: UserPath) => files::rename, Supported;
    83 mkdir(path: UserPath, mode: u32) => files::mkdir, Supported;
    84 rmdir(path: UserPath) => files::rmdir, Supported;
    85 creat(path: UserPath, mode: u32) => files::creat, Supported;
    86 link(old_path: UserPath, new_path: UserPath) => files::link, Supported;
    87 unlink(path: UserPath) => files::unlink, Supported;
    88 symlink(target: UserPath, path: UserPath) => files::symlink, Supported;
    89 readlink(path: UserPath, buffer: UserAddr, size: i32) => fs::readlink, Supported;
    90 chmod(path: UserPath, mode: u32) => files::chmod, Supported;
    91 fchmod(fd: Fd, mode: u32) => files::fchmod, Supported;
    92 chown(path: UserPath, uid: u32, gid: u32) => files::chown, Supported;
    93 fchown(fd: Fd, uid: u32, gid: u32) => files::fchown, Supported;
    94 lchown(path: UserPath, uid: u32, gid: u32) => files::lchown, Supported;
    95 umask(mask: u32) => process::umask, Supported;
    96 gettimeofday(time: UserAddr, zone: UserAddr) => time::gettimeofday, Supported;
    97 getrlimit(resource: u32, limit: UserAddr) => process::getrlimit, Supported;
    98 getrusage(who: i32, usage: UserAddr) => process::getrusage, Partial("CPU time all in ru_utime (syscalls are not told apart), RUSAGE_THREAD the process's, ru_maxrss the peak resident set; the other counters read 0");
    99 sysinfo(info: UserAddr) => process::sysinfo, Partial("uptime, RAM total and free as the allocator sees them, 1 process; load averages are not kept (0); no swap");
    100 times(buffer: UserAddr) => process::times, Partial("CPU time all in tms_utime, as getrusage");
    102 getuid() => credentials::getuid, Supported;
    104 getgid() => credentials::getgid, Supported;
    105 setuid(uid: u32) => credentials::setuid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    106 setgid(gid: u32) => credentials::setgid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    107 geteuid() => credentials::geteuid, Supported;
    108 getegid() => credentials::getegid, Supported;
    109 setpgid(pid: i32, pgid: i32) => process::setpgid, Supported;
    110 getppid() => process::getppid, Supported;
    111 getpgrp() => process::getpgrp, Supported;
    112 setsid() => process::setsid, Supported;
    113 setreuid(real: u32, effective: u32) => credentials::setreuid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    114 setregid(real: u32, effective: u32) => credentials::setregid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    115 getgroups(size: i32, list: UserAddr) => credentials::getgroups, Supported;
    116 setgroups(size: usize, list: UserAddr) => credentials::setgroups, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    117 setresuid(real: u32, effective: u32, saved: u32) => credentials::setresuid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    118 getresuid(real: UserAddr, effective: UserAddr, saved: UserAddr) => credentials::getresuid, Supported;
    119 setresgid(real: u32, effective: u32, saved: u32) => credentials::setresgid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    120 getresgid(real: UserAddr, effective: UserAddr, saved: UserAddr) => credentials::getresgid, Supported;
    121 getpgid(pid: i32) => process::getpgid, Supported;
    122 setfsuid(uid: u32) => credentials::setfsuid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    123 setfsgid(gid: u32) => credentials::setfsgid, Partial("the IDs are kept and reported; Pith checks no file permissions against them");
    124 getsid(pid: i32) => process::getsid, Supported;
    127 rt_sigpending(set: UserAddr, set_size: usize) => signal::rt_sigpending, Supported;
    128 rt_sigtimedwait(set: UserAddr, info: UserAddr, timeout: UserAddr, set_size: usize) => signal::rt_sigtimedwait, Supported;
    130 rt_sigsuspend(set: UserAddr, set_size: usize) => signal::rt_sigsuspend, Supported;
    131 sigaltstack(stack: UserAddr, old_stack: UserAddr) => signal::sigaltstack, Supported;
    132 utime(path: UserPath, times: UserAddr) => files::utime, Supported;
    137 statfs(path: UserPath, buffer: UserAddr) => files::statfs, Supported;
    138 fstatfs(fd: Fd, buffer: UserAddr) => files::fstatfs, Partial("files of the tree; pipes and the console: ENOSYS");
    140 getpriority(which: i32, who: i32) => sched::getpriority, Partial("recorded and read back as Linux would; once for the whole process; the scheduler is round-robin with one priority, so they change nothing yet");
    141 setpriority(which: i32, who: i32, nice: i32) => sched::setpriority, Partial("recorded and read back as Linux would; once for the whole process; the scheduler is round-robin with one priority, so they change nothing yet");
    142 sched_setparam(pid: i32, param: UserAddr) => sched::sched_setparam, Partial("recorded and read back as Linux would; once for the whole process; the scheduler is round-robin with one priority, so they change nothing yet");
    143 sched_getparam(pid: i32, param: UserAddr) => sched::sched_getparam, Partial("recorded and read back as Linux would; once for the whole process; the scheduler is round-robin with one priority, so they change nothing yet");
    144 sched_setscheduler(pid: i32, policy: i32, param: UserAddr) => sched::sched_setscheduler, Partial("SCHED_OTHER, BATCH, IDLE, FIFO, RR recorded and read back, once for the whole process; SCHED_DEADLINE needs sched_setattr (EINVAL); the scheduler is round-robin with one priority, so they change nothing yet");
    145 sched_getscheduler(pid: i32) => sched::sched_getscheduler, Supported;
    146 sched_get_priority_max(policy: i32) => sched::sched_get_priority_max, Supported;
    147 sched_get_priority_min(policy: i32) => sched::sched_get_priority_min, Supported;
    157 prctl(option: i32, argument: u64, argument3: u64, argument4: u64, argument5: u64) => process::prctl, Partial("PR_SET_NAME, PR_GET_NAME, PR_SET_DUMPABLE, PR_GET_DUMPABLE, PR_SET_PDEATHSIG, PR_GET_PDEATHSIG; other options EINVAL");
    158 arch_prctl(code: i32, address: UserAddr) => process::arch_prctl, Partial("ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_CPUID; GS belongs to the kernel (EPERM)");
    160 setrlimit(resource: u32, limit: UserAddr) => process::setrlimit, Partial("limits are recorded; RLIMIT_NOFILE is enforced; the stack's 8 MiB is fixed at start");
    162 sync() => files::sync, Supported;
    186 gettid() => process::gettid, Supported;
    188 setxattr(path: UserPath, name: UserAddr, value: UserAddr, size: usize, flags: i32) => xattr::setxattr, Partial("no filesystem keeps extended attributes: EOPNOTSUPP after the file and name are checked");
    189 lsetxattr(path: UserPath, name: UserAddr, value: UserAddr, size: usize, flags: i32) => xattr::lsetxattr, Partial("as setxattr");
    190 fsetxattr(fd: Fd, name: UserAddr, value: UserAddr, size: usize, flags: i32) => xattr::fsetxattr, Partial("as setxattr");
    191 getxattr(path: UserPath, name: UserAddr, value: UserAddr, size: usize) => xattr::getxattr, Partial("no attributes: ENODATA after the file and name are checked");
    192 lgetxattr(path: UserPath, name: UserAddr, value: UserAddr, size: usize) => xattr::lgetxattr, Partial("as getxattr");
    193 fgetxattr(fd: Fd, name: UserAddr, value: UserAddr, size: usize) => xattr::fgetxattr, Partial("as getxattr");
    194 listxattr(path: UserPath, list: UserAddr, size: usize) => xattr::listxattr, Partial("an empty list");
    195 llistxattr(path: UserPath, list: UserAddr, size: usize) => xattr::llistxattr, Partial("an empty list");
    196 flistxattr(fd: Fd, list: UserAddr, size: usize) => xattr::flistxattr, Partial("an empty list");
    197 removexattr(path: UserPath, name: UserAddr) => xattr::removexattr, Partial("EOPNOTSUPP after the file and name are checked");
    198 lremovexattr(path: UserPath, name: UserAddr) => xattr::lremovexattr, Partial("as removexattr");
    199 fremovexattr(fd: Fd, name: UserAddr) => xattr::fremovexattr, Partial("as removexattr");
    200 tkill(tid: i32, signal: i32) => signal::tkill, Supported;
    201 time(time: UserAddr) => time::time, Supported;
    202 futex(address: UserAddr, operation: i32, value: u32, timeout: UserAddr, address2: UserAddr, value3: u32) => futex::futex, Partial("WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, the BITSET pair, LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI (one priority: no boosting); private and shared keyed alike by address (one process); the requeue-PI operations are ENOSYS");
    203 sched_setaffinity(pid: i32, size: usize, mask: UserAddr) => process::sched_setaffinity, Supported;
    204 sched_getaffinity(pid: i32, size: usize, mask: UserAddr) => process::sched_getaffinity, Supported;
    213 epoll_create(size: i32) => epoll::epoll_create, Supported;
    217 getdents64(fd: Fd, buffer: UserAddr, count: usize) => files::getdents64, Supported;
    218 set_tid_address(address: UserAddr) => process::set_tid_address, Supported;
    222 timer_create(clock: i32, event: UserAddr, id: UserAddr) => time::timer_create, Partial("wall, monotonic and CPU-time clocks (a thread's CPU-time clock counts the process's); SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID");
    223 timer_settime(id: i32, flags: i32, new_value: UserAddr, old_value: UserAddr) => time::timer_settime, Supported;
    224 timer_gettime(id: i32, value: UserAddr) => time::timer_gettime, Supported;
    225 timer_getoverrun(id: i32) => time::timer_getoverrun, Supported;
    226 timer_delete(id: i32) => time::timer_delete, Supported;
    228 clock_gettime(clock: i32, time: UserAddr) => time::clock_gettime, Partial("CPU-time clocks: time since the program started less time halted (sleeps, waits for input), per thread for the thread clocks; kernel time in syscalls counts as the program's");
    229 clock_getres(clock: i32, resolution: UserAddr) => time::clock_getres, Supported;
    230 clock_nanosleep(clock: i32, flags: i32, request: UserAddr, remaining: UserAddr) => time::clock_nanosleep, Supported;
    231 exit_group(status: i32) => process::exit_group, Supported;
    232 epoll_wait(epoll_fd: Fd, events: UserAddr, max: i32, timeout: i32) => epoll::epoll_wait, Partial("level- and edge-triggered, EPOLLONESHOT, EPOLLRDHUP, EPOLLEXCLUSIVE accepted (one process: it changes nothing); each wait looks at every interest (the cost grows with the interest list)");
    233 epoll_ctl(epoll_fd: Fd, operation: i32, fd: Fd, event: UserAddr) => epoll::epoll_ctl, Partial("sockets, pipes, eventfds, signalfds, the console and epoll instances; regular files are EPERM as on Linux; an interest goes when its fd is closed, even if a dup of it stays open");
    234 tgkill(tgid: i32, tid: i32, signal: i32) => signal::tgkill, Supported;
    235 utimes(path: UserPath, times: UserAddr) => files::utimes, Supported;
    257 openat(dir_fd: Fd, path: UserPath, flags: u32, mode: u32) => fs::openat, Partial("as open");
    258 mkdirat(dir_fd: Fd, path: UserPath, mode: u32) => files::mkdirat, Supported;
    260 fchownat(dir_fd: Fd, path: UserPath, uid: u32, gid: u32, flags: i32) => files::fchownat, Supported;
    261 futimesat(dir_fd: Fd, path: UserAddr, times: UserAddr) => files::futimesat, Supported;
    262 newfstatat(dir_fd: Fd, path: UserPath, stat: UserAddr, flags: i32) => fs::newfstatat, Supported;
    263 unlinkat(dir_fd: Fd, path: UserPath, flags: i32) => files::unlinkat, Supported;
    264 renameat(old_dir_fd: Fd, old_path: UserPath, new_dir_fd: Fd, new_path: UserPath) => files::renameat, Supported;
    265 linkat(old_dir_fd: Fd, old_path: UserPath, new_dir_fd: Fd, new_path: UserPath, flags: i32) => files::linkat, Supported;
    266 symlinkat(target: UserPath, dir_fd: Fd, path: UserPath) => files::symlinkat, Supported;
    267 readlinkat(dir_fd: Fd, path: UserPath, buffer: UserAddr, size: i32) => fs::readlinkat, Supported;
    268 fchmodat(dir_fd: Fd, path: UserPath, mode: u32) => files::fchmodat, Supported;
    269 faccessat(dir_fd: Fd, path: UserPath, mode: i32) => fs::faccessat, Partial("as root: read and write allowed on what exists, execute where an execute bit is set (directories: search)");
    270 pselect6(count: i32, read: UserAddr, write: UserAddr, except: UserAddr, timeout: UserAddr, mask: UserAddr) => poll::pselect6, Supported;
    271 ppoll(fds: UserAddr, count: u64, timeout: UserAddr, mask: UserAddr, mask_size: usize) => poll::ppoll, Supported;
    273 set_robust_list(head: UserAddr, length: usize) => process::set_robust_list, Supported;
    274 get_robust_list(tid: i32, head: UserAddr, length: UserAddr) => process::get_robust_list, Supported;
    280 utimensat(dir_fd: Fd, path: UserAddr, times: UserAddr, flags: i32) => files::utimensat, Supported;
    281 epoll_pwait(epoll_fd: Fd, events: UserAddr, max: i32, timeout: i32, mask: UserAddr, mask_size: usize) => epoll::epoll_pwait, Partial("as epoll_wait");
    282 signalfd(fd: Fd, mask: UserAddr, mask_size: usize) => fs::signalfd, Partial("read, poll and epoll");
    283 timerfd_create(clock: i32, flags: i32) => timerfd::timerfd_create, Partial("CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME (the _ALARM clocks as those); read, poll and epoll");
    284 eventfd(initial: u32) => eventfd::eventfd, Supported;
    285 fallocate(fd: Fd, mode: i32, offset: i64, length: i64) => files::fallocate, Partial("mode 0 takes the blocks past the end (zeros written; ENOSPC undone), holes inside the file stay holes; KEEP_SIZE inside the file is a no-op, past its end EOPNOTSUPP; PUNCH_HOLE|KEEP_SIZE makes the range read as zeros without freeing its blocks; the other modes are EOPNOTSUPP");
    286 timerfd_settime(fd: Fd, flags: i32, new_value: UserAddr, old_value: UserAddr) => timerfd::timerfd_settime, Partial("TFD_TIMER_ABSTIME; TFD_TIMER_CANCEL_ON_SET is accepted, and the realtime clock is never set, so nothing is cancelled");
    287 timerfd_gettime(fd: Fd, current_value: UserAddr) => timerfd::timerfd_gettime, Supported;
    288 accept4(fd: Fd, address: UserAddr, len_address: UserAddr, flags: u32) => net::accept4, Supported;
    289 signalfd4(fd: Fd, mask: UserAddr, mask_size: usize, flags: i32) => fs::signalfd4, Partial("read, poll and epoll");
    290 eventfd2(initial: u32, flags: i32) => eventfd::eventfd2, Supported;
    291 epoll_create1(flags: i32) => epoll::epoll_create1, Supported;
    292 dup3(old_fd: Fd, new_fd: Fd, flags: i32) => fs::dup3, Supported;
    293 pipe2(fds: UserAddr, flags: u32) => pipe::pipe2, Partial("O_CLOEXEC and O_NONBLOCK; packet mode (O_DIRECT) is EINVAL");
    295 preadv(fd: Fd, vector: UserAddr, count: i32, offset: i64) => fs::preadv, Supported;
    296 pwritev(fd: Fd, vector: UserAddr, count: i32, offset: i64) => fs::pwritev, Supported;
    299 recvmmsg(fd: Fd, messages: UserAddr, count: u32, flags: u32, timeout: UserAddr) => net::recvmmsg, Partial("as recvmsg, message by message; MSG_WAITFORONE; the timeout is not looked at");
    302 prlimit64(pid: i32, resource: u32, new_limit: UserAddr, old_limit: UserAddr) => process::prlimit64, Partial("limits are recorded; RLIMIT_NOFILE is enforced; the stack's 8 MiB is fixed at start");
    306 syncfs(fd: Fd) => files::syncfs, Supported;
    307 sendmmsg(fd: Fd, messages: UserAddr, count: u32, flags: u32) => net::sendmmsg, Partial("as sendmsg, message by message");
    309 getcpu(cpu: UserAddr, node: UserAddr, cache: UserAddr) => process::getcpu, Supported;
    316 renameat2(old_dir_fd: Fd, old_path: UserPath, new_dir_fd: Fd, new_path: UserPath, flags: u32) => files::renameat2, Partial("RENAME_NOREPLACE and RENAME_EXCHANGE; RENAME_WHITEOUT is EINVAL");
    318 getrandom(buffer: UserAddr, count: usize, flags: u32) => random::getrandom, Supported;
    319 memfd_create(name: UserPath, flags: u32) => files::memfd_create, Partial("an unnamed tmpfs file; MFD_ALLOW_SEALING accepted, the F_ADD_SEALS commands are not there");
    322 execveat(dir_fd: Fd, path: UserPath, argv: UserAddr, envp: UserAddr, flags: i32) => process::execveat, Partial("as execve");
    324 membarrier(command: i32, flags: u32, cpu: i32) => sched::membarrier, Partial("one CPU: a switch between threads orders their memory, so every barrier holds at once; registration checked as Linux; the rseq commands are EINVAL (no rseq)");
    326 copy_file_range(fd_in: Fd, offset_in: UserAddr, fd_out: Fd, offset_out: UserAddr, length: usize, flags: u32) => files::copy_file_range, Supported;
    332 statx(dir_fd: Fd, path: UserPath, flags: i32, mask: u32, buffer: UserAddr) => files::statx, Supported;
    334 rseq(area: UserAddr, length: u32, flags: i32, signature: u32) => process::rseq, Unimplemented("ENOSYS: glibc and the Go runtime then run without restartable sequences, as on kernels before 4.18");
    435 clone3(args: UserAddr, size: usize) => thread::clone3, Partial("threads, as clone; set_tid and CLONE_INTO_CGROUP are EINVAL");
    436 close_range(first: u32, last: u32, flags: u32) => fs::close_range, Supported;
    437 openat2(dir_fd: Fd, path: UserPath, how: UserAddr, size: usize) => fs::openat2, Partial("as openat, strict about flags; RESOLVE_NO_XDEV, NO_SYMLINKS, BENEATH, IN_ROOT and NO_MAGICLINKS (the /proc/self/fd links); RESOLVE_CACHED opens as usual (every path is cached) but refuses O_CREAT, O_TRUNC and O_TMPFILE with EAGAIN");
    439 faccessat2(dir_fd: Fd, path: UserPath, mode: i32, flags: i32) => fs::faccessat2, Partial("as root: read and write allowed on what exists, execute where an execute bit is set (directories: search)");
    441 epoll_pwait2(epoll_fd: Fd, events: UserAddr, max: i32, timeout: UserAddr, mask: UserAddr, mask_size: usize) => epoll::epoll_pwait2, Partial("as epoll_wait");
}

/// The highest syscall number the table can hold.
pub const MAX_SYSCALL: usize = 512;

/// `SYSCALLS` indexed by number, built at compile time.
static BY_NUMBER: [Option<&Syscall>; MAX_SYSCALL] = {
    let mut table: [Option<&Syscall>; MAX_SYSCALL] = [None; MAX_SYSCALL];
    let mut index = 0;
    while index < SYSCALLS.len() {
        let entry = &SYSCALLS[index];
        assert!(entry.number < MAX_SYSCALL);
        assert!(
            table[entry.number].is_none(),
            "a syscall number appears twice"
        );
        table[entry.number] = Some(entry);
        index += 1;
    }
    table
};

/// The implemented syscall with this number.
pub fn lookup(number: u64) -> Option<&'static Syscall> {
    BY_NUMBER
        .get(usize::try_from(number).ok()?)
        .copied()
        .flatten()
}

/// Linux's name for a syscall number, implemented or not.
pub fn name_of(number: u64) -> Option<&'static str> {
    let number = usize::try_from(number).ok()?;
    SYSCALL_NAMES
        .binary_search_by_key(&number, |&(n, _)| n)
        .ok()
        .map(|i| SYSCALL_NAMES[i].1)
}

/// Runs syscall `number` with the raw argument registers; returns what goes into rax.
///
/// This is the hot path of every syscall: an implemented, untraced call is one table load
/// and one indirect call. Everything else is out of line.
#[inline]
pub fn dispatch(context: &mut Context, number: u64, args: &[u64; 6]) -> u64 {
    match lookup(number) {
        Some(entry)
            if !context.process.trace
                && context.process.missing_files.is_none()
                && matches!(entry.status, Status::Supported | Status::Partial(_)) =>
        {
            (entry.handler)(context, args)
        }
        entry => dispatch_slow(context, number, entry, args),
    }
}

/// Traced calls, calls watched for missing files, deliberate ENOSYS and unknown numbers.
#[cold]
#[inline(never)]
fn dispatch_slow(
    context: &mut Context,
    number: u64,
    entry: Option<&Syscall>,
    args: &[u64; 6],
) -> u64 {
    if context.process.trace && NO_RETURN.contains(&number) {
        // exit and exit_group do not come back: trace them first, as strace does ("= ?").
        crate::trace::trace_syscall(context, number, entry.map(|e| e.args), args, None);
    }
    let value = match entry {
        Some(entry) if matches!(entry.status, Status::Unimplemented(_)) => {
            log_unimplemented(context, number, LogLevel::Info);
            Errno::ENOSYS.to_return()
        }
        Some(entry) => (entry.handler)(context, args),
        None => {
            log_unimplemented(context, number, LogLevel::Warn);
            Errno::ENOSYS.to_return()
        }
    };
    if context.process.trace {
        crate::trace::trace_syscall(context, number, entry.map(|e| e.args), args, Some(value));
    }
    if context.process.missing_files.is_some() {
        crate::missing::note(context, number, args, value);
    }
    value
}

/// exit and exit_group.
const NO_RETURN: [u64; 2] = [60, 231];

/// Logs the first ENOSYS of each number: at `level` Warn for what the app may need, Info for
/// the deliberate ones that apps are known to handle.
fn log_unimplemented(context: &mut Context, number: u64, level: LogLevel) {
    if !context.process.first_unimplemented_call(number) {
        return;
    }
    match name_of(number) {
        Some(name) => context.platform.log(
            level,
            format_args!("syscall {name} ({number}) is not implemented: it returns ENOSYS"),
        ),
        None => context.platform.log(
            LogLevel::Warn,
            format_args!(
                "syscall number {number} does not exist on x86_64 Linux: it returns ENOSYS"
            ),
        ),
    }
}

/// `docs/syscalls.md`, generated from the table.
pub fn markdown() -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    let implemented = SYSCALLS
        .iter()
        .filter(|s| !matches!(s.status, Status::Unimplemented(_)))
        .count();
    let _ = writeln!(out, "# Syscalls\n");
    let _ = writeln!(
        out,
        "Generated from `syscalls/src/table.rs` by `PITH_BLESS=1 cargo test -p pith-syscalls docs`; a test keeps the two in step.\n"
    );
    let _ = writeln!(
        out,
        "{implemented} of the {} x86_64 Linux 6.1 syscalls are implemented. Every other number returns `-ENOSYS` and the kernel logs its name once.\n",
        SYSCALL_NAMES.len()
    );
    let _ = writeln!(out, "| # | syscall | status | notes |\n|---|---|---|---|");
    for &(number, name) in SYSCALL_NAMES {
        let (status, note) = match lookup(number as u64).map(|s| s.status) {
            Some(Status::Supported) => ("supported", ""),
            Some(Status::Partial(note)) => ("partial", note),
            Some(Status::Unimplemented(note)) => ("ENOSYS (deliberate)", note),
            None => ("ENOSYS", ""),
        };
        let _ = writeln!(out, "| {number} | `{name}` | {status} | {note} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_linuxs_name_for_its_number() {
        for entry in SYSCALLS {
            assert_eq!(
                name_of(entry.number as u64),
                Some(entry.name),
                "syscall {}",
                entry.number
            );
        }
    }

    #[test]
    fn rows_are_in_number_order() {
        for pair in SYSCALLS.windows(2) {
            assert!(
                pair[0].number < pair[1].number,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn names_are_sorted_and_unique() {
        for pair in SYSCALL_NAMES.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        assert_eq!(name_of(0), Some("read"));
        assert_eq!(name_of(231), Some("exit_group"));
        assert_eq!(name_of(400), None);
    }

    #[test]
    fn docs_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/syscalls.md");
        let generated = markdown();
        if std::env::var_os("PITH_BLESS").is_some() {
            std::fs::write(path, &generated).expect("write docs/syscalls.md");
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/syscalls.md is out of date: run `PITH_BLESS=1 cargo test -p pith-syscalls docs`"
        );
    }
}
