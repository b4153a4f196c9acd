//! Sockets (socket(7), tcp(7), udp(7), ip(7), ipv6(7)): the socket syscalls, the table of
//! open sockets, and their reads, writes and readiness. AF_INET and AF_INET6 run on the
//! smoltcp stack (`inet.rs`).

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::inet::{NetConfig, Stack};
use crate::platform::{Context, LogLevel, MachineClock, WakeOn};
use crate::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::uapi::Iovec;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::Waker;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, Ipv4Address, Ipv6Address};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Address families (include/linux/socket.h).
pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// Socket types and the flags or'd into them (include/linux/net.h).
pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_NONBLOCK: u32 = O_NONBLOCK;
pub const SOCK_CLOEXEC: u32 = O_CLOEXEC;
/// IP protocols (include/uapi/linux/in.h).
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
/// Message flags (include/linux/socket.h).
pub const MSG_OOB: u32 = 0x1;
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_EOR: u32 = 0x80;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_MORE: u32 = 0x8000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;
/// shutdown(2)'s `how`.
pub const SHUT_RD: i32 = 0;
pub const SHUT_WR: i32 = 1;
pub const SHUT_RDWR: i32 = 2;
/// Socket option levels and names (include/uapi/asm-generic/socket.h, linux/tcp.h,
/// linux/in.h, linux/in6.h).
pub const SOL_SOCKET: i32 = 1;
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_OOBINLINE: i32 = 10;
pub const SO_PRIORITY: i32 = 12;
pub const SO_LINGER: i32 = 13;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO: i32 = 20;
pub const SO_SNDTIMEO: i32 = 21;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;
pub const TCP_NODELAY: i32 = 1;
pub const TCP_MAXSEG: i32 = 2;
pub const TCP_CORK: i32 = 3;
pub const TCP_KEEPIDLE: i32 = 4;
pub const TCP_KEEPINTVL: i32 = 5;
pub const TCP_KEEPCNT: i32 = 6;
pub const TCP_DEFER_ACCEPT: i32 = 9;
pub const TCP_QUICKACK: i32 = 12;
pub const TCP_USER_TIMEOUT: i32 = 18;
pub const TCP_FASTOPEN: i32 = 23;
pub const IP_TOS: i32 = 1;
pub const IP_TTL: i32 = 2;
pub const IPV6_V6ONLY: i32 = 26;

/// `struct sockaddr_in` (include/uapi/linux/in.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SockaddrIn {
    pub sin_family: u16,
    /// Network byte order.
    pub sin_port: [u8; 2],
    pub sin_addr: [u8; 4],
    pub sin_zero: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<SockaddrIn>() == 16);

/// `struct sockaddr_in6` (include/uapi/linux/in6.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SockaddrIn6 {
    pub sin6_family: u16,
    pub sin6_port: [u8; 2],
    pub sin6_flowinfo: u32,
    pub sin6_addr: [u8; 16],
    pub sin6_scope_id: u32,
}
const _: () = assert!(core::mem::size_of::<SockaddrIn6>() == 28);

/// `struct linger` (include/linux/socket.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Linger {
    pub l_onoff: i32,
    pub l_linger: i32,
}

/// `struct msghdr` (include/linux/socket.h, the user's layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Msghdr {
    pub msg_name: u64,
    pub msg_namelen: u32,
    pub pad0: u32,
    pub msg_iov: u64,
    pub msg_iovlen: u64,
    pub msg_control: u64,
    pub msg_controllen: u64,
    pub msg_flags: u32,
    pub pad1: u32,
}
const _: () = assert!(core::mem::size_of::<Msghdr>() == 56);

/// `struct mmsghdr` (include/linux/socket.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Mmsghdr {
    pub msg_hdr: Msghdr,
    pub msg_len: u32,
    pub pad: u32,
}

/// An IPv4 or IPv6 socket's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    fn number(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }
}

/// Where a socket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Created, perhaps bound; no smoltcp socket yet.
    Idle,
    /// listen(2) was called: the stack's listener of this socket's id.
    Listening,
    /// A TCP connection (connecting, connected or closed by the peer).
    Connection(SocketHandle),
    /// A bound UDP socket.
    Datagram(SocketHandle),
}

/// Options as setsockopt left them.
#[derive(Clone, Copy)]
struct Options {
    reuse_address: bool,
    reuse_port: bool,
    keepalive: bool,
    broadcast: bool,
    no_delay: bool,
    cork: bool,
    v6_only: bool,
    receive_buffer: usize,
    send_buffer: usize,
    /// SO_SNDBUF was given: the send buffer keeps its size (no autotuning, as on Linux).
    send_buffer_set: bool,
    linger: Option<i32>,
    /// SO_RCVTIMEO and SO_SNDTIMEO in ns; 0 is none.
    receive_timeout: u64,
    send_timeout: u64,
    keepalive_idle: i32,
    keepalive_interval: i32,
    keepalive_count: i32,
    /// Options stored and read back that change nothing here (SO_PRIORITY, IP_TOS...), by
    /// (level, name).
    inert: [(i32, i32, i32); 8],
}

impl Default for Options {
    fn default() -> Options {
        Options {
            reuse_address: false,
            reuse_port: false,
            keepalive: false,
            broadcast: false,
            no_delay: false,
            cork: false,
            v6_only: false,
            receive_buffer: crate::inet::DEFAULT_TCP_BUFFER,
            send_buffer: crate::inet::DEFAULT_TCP_BUFFER,
            send_buffer_set: false,
            linger: None,
            receive_timeout: 0,
            send_timeout: 0,
            // Linux's defaults: tcp_keepalive_time 7200 s, intvl 75 s, probes 9.
            keepalive_idle: 7200,
            keepalive_interval: 75,
            keepalive_count: 9,
            inert: [(0, 0, 0); 8],
        }
    }
}

/// One socket.
#[derive(Debug)]
pub struct Socket {
    family: Family,
    stream: bool,
    /// The bound address (None: any) and port (0: none yet).
    local: (Option<IpAddress>, u16),
    /// A UDP socket's connected peer.
    peer: Option<IpEndpoint>,
    state: State,
    options: Options,
    shut_read: bool,
    shut_write: bool,
    /// The connection was established once (so a CLOSED state now means reset).
    connected: bool,
    /// A reset was reported already; later reads see end of file.
    reset_reported: bool,
    /// Counts what smoltcp reported of the socket (epoll's EPOLLET).
    events: Arc<EventCount>,
}

/// The sockets smoltcp woke since epoll last looked (their wakers push their ids here).
#[derive(Debug, Default)]
pub struct Woken(spin::Mutex<Vec<u32>>);

/// A socket's waker: smoltcp wakes it when data, room or a state change comes. It counts
/// the events (epoll's EPOLLET) and, once an epoll instance watches the socket, queues the
/// socket's id for epoll's ready list (once until epoll takes it).
#[derive(Debug)]
struct EventCount {
    id: u32,
    count: AtomicU32,
    watched: AtomicBool,
    queued: AtomicBool,
    woken: Arc<Woken>,
}

impl EventCount {
    fn note(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.watched.load(Ordering::Relaxed) && !self.queued.swap(true, Ordering::Relaxed) {
            self.woken.0.lock().push(self.id);
        }
    }
}

impl Wake for EventCount {
    fn wake(self: Arc<Self>) {
        self.note();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.note();
    }
}

/// An epoll instance watches socket `id`: its events are queued for epoll from now on.
pub fn watch(context: &mut Context, id: u32) {
    if let Ok(socket) = socket_mut(context, id) {
        socket.events.watched.store(true, Ordering::Relaxed);
    }
}

/// Counts an event the program's own call caused on socket `id` (a connect, a listen, a
/// bind: a state smoltcp has no waker for yet).
fn note(context: &mut Context, id: u32) {
    if let Ok(socket) = socket_mut(context, id) {
        socket.events.note();
    }
}

/// The watched sockets that had events since the last call: those smoltcp woke, and
/// listeners with a new connection to accept.
pub fn take_woken(context: &mut Context) -> Vec<u32> {
    let network = &mut context.process.network;
    let mut woken = core::mem::take(&mut *network.woken.0.lock());
    for id in &woken {
        if let Some(socket) = network.sockets.get(id) {
            socket.events.queued.store(false, Ordering::Relaxed);
        }
    }
    if let Some(stack) = network.stack.as_mut() {
        for id in stack.take_listener_events() {
            let watched = network
                .sockets
                .get(&id)
                .is_some_and(|socket| socket.events.watched.load(Ordering::Relaxed));
            if watched {
                woken.push(id);
            }
        }
    }
    woken
}

/// A count that grows with each event of socket `id` (epoll's EPOLLET): the wakers are
/// registered again, as smoltcp forgets them once woken.
pub fn generation(context: &mut Context, id: u32) -> u32 {
    let Ok(socket) = socket_mut(context, id) else {
        return 0;
    };
    let (state, events) = (socket.state, socket.events.clone());
    let Some(stack) = context.process.network.stack.as_mut() else {
        return 0;
    };
    let waker = Waker::from(events.clone());
    match state {
        State::Connection(handle) => {
            let connection = stack.tcp(handle);
            connection.register_recv_waker(&waker);
            connection.register_send_waker(&waker);
        }
        State::Datagram(handle) => {
            let udp = stack.udp(handle);
            udp.register_recv_waker(&waker);
            udp.register_send_waker(&waker);
        }
        State::Listening => return stack.listener_generation(id),
        State::Idle => {}
    }
    events.count.load(Ordering::Relaxed)
}

impl core::fmt::Debug for Options {
    fn fmt(&self, formatter: &mut core::fmt::Formatter) -> core::fmt::Result {
        formatter.write_str("Options")
    }
}

/// The sockets and the stack under them.
impl Socket {
    /// The IP versions the socket takes (`inet::Versions`).
    fn versions(&self) -> crate::inet::Versions {
        versions(self.family, self.local.0, self.options.v6_only)
    }

    /// Whether binding this socket to `address` (None: any) would overlap `other`'s binding
    /// of the same port: an IP version both take, and the same address or a wildcard.
    fn overlaps(&self, address: Option<IpAddress>, other: &Socket) -> bool {
        let mine = versions(self.family, address, self.options.v6_only);
        let theirs = other.versions();
        let common = (mine.v4 && theirs.v4) || (mine.v6 && theirs.v6);
        common && (address.is_none() || other.local.0.is_none() || address == other.local.0)
    }
}

/// The IP versions a socket of `family` bound to `address` (None: any) takes.
fn versions(family: Family, address: Option<IpAddress>, v6_only: bool) -> crate::inet::Versions {
    let (v4, v6) = match (family, address) {
        (_, Some(IpAddress::Ipv4(_))) | (Family::Inet, _) => (true, false),
        (Family::Inet6, Some(IpAddress::Ipv6(_))) => (false, true),
        (Family::Inet6, None) => (!v6_only, true),
    };
    crate::inet::Versions { v4, v6 }
}

#[derive(Default)]
pub struct Network {
    /// How the interface is addressed (from the kernel command line), until the stack starts.
    pub config: Option<NetConfig>,
    stack: Option<Stack>,
    sockets: BTreeMap<u32, Socket>,
    next_id: u32,
    /// Where the sockets' wakers queue their ids for epoll.
    woken: Arc<Woken>,
}

impl core::fmt::Debug for Network {
    fn fmt(&self, formatter: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(formatter, "Network({} sockets)", self.sockets.len())
    }
}

impl Network {
    /// The stack, started on first use (loopback alone if the machine has no network
    /// device).
    fn stack(&mut self, platform: &mut dyn crate::Platform) -> Result<&mut Stack, Errno> {
        let config = self.config;
        let stack = self
            .stack
            .get_or_insert_with(|| Stack::new(platform, config));
        // A socket call may change what the stack's timers are.
        stack.forget_next_poll();
        Ok(stack)
    }

    /// How many sockets are open, and how many smoltcp sockets the stack holds.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.sockets.len(),
            self.stack.as_ref().map_or(0, Stack::socket_count),
        )
    }
}

/// Moves the stack's packets (received frames in, queued data out); cheap when nothing
/// happened. Every wait of a socket, poll or epoll calls it.
pub fn poll_stack(context: &mut Context) {
    if let Some(stack) = context.process.network.stack.as_mut() {
        stack.poll(context.platform);
    }
}

/// The program is computing without a system call, and the network device has something for
/// it (its interrupt came) or has not been looked at for a while (the kernel's watch): the
/// stack takes what arrived and sends what is due, as Linux does on arrival. ARP and pings
/// are answered, handshakes completed, data acknowledged, retransmissions sent; sockets'
/// wakers mark what epoll will find. Then the device interrupts at the next frame, until a
/// system call polls again. False without a stack (no socket was ever made): the frames wait.
pub fn poll_while_computing(context: &mut Context) -> bool {
    if context.process.network.stack.is_none() {
        return false;
    }
    // Frames that come during a pass raise nothing (the pass disarmed the device): take
    // them too, a few passes at most, so that a flood cannot keep the program from running.
    // The last pass arms nothing: with frames still waiting, the device would interrupt for
    // none after them, and the timer's watch looks instead.
    for pass in 0..4 {
        poll_stack(context);
        if pass == 3 || !context.platform.net_arm_interrupt() {
            break;
        }
    }
    true
}

/// A thread is about to wait, or has waited, for something other than the network (a sleep,
/// a futex, a pipe): frames that came meanwhile are taken now, the stack's due timers run
/// (delayed ACKs, retransmissions), and the device is armed so that the next frame ends
/// the wait (and interrupts the program once it runs again). Linux takes frames on arrival
/// and runs its timers whoever waits; without this, a program that slept and then computed
/// left them in the device until its next network call. Returns when the wait should end
/// for the network's sake: the stack's next timer, or soon if frames still wait after the
/// passes (a flood the device will not interrupt for).
pub fn serve_while_waiting(context: &mut Context) -> Option<u64> {
    context.process.network.stack.as_ref()?;
    let now = context.platform.now(MachineClock::Monotonic);
    let frames = context.platform.net_arm_interrupt();
    let due = context
        .process
        .network
        .stack
        .as_mut()
        .and_then(|stack| stack.next_poll_since_pass(context.platform))
        .is_some_and(|at| at <= now);
    if frames || due {
        poll_while_computing(context);
        if frames {
            // A thread waiting on a socket may have something now; its own wait saw
            // nothing. Futex waiters are left be: a frame is no business of theirs.
            context.platform.wake_event_waiters();
        }
        if context.platform.net_arm_interrupt() {
            // From after the passes, which a flood can make long.
            let now = context.platform.now(MachineClock::Monotonic);
            return Some(now.saturating_add(FLOOD_RECHECK_NS));
        }
    }
    // Never sooner than a moment from now (after the passes): a timer a pass left due (a
    // full transmit queue) would otherwise make every wait return at once.
    let now = context.platform.now(MachineClock::Monotonic);
    context
        .process
        .network
        .stack
        .as_mut()
        .and_then(|stack| stack.next_poll_since_pass(context.platform))
        .map(|at| at.max(now.saturating_add(FLOOD_RECHECK_NS)))
}

/// How soon a wait looks again at frames the passes left (`serve_while_waiting`).
const FLOOD_RECHECK_NS: u64 = 1_000_000;

/// How often a wait looks at a network device that raises no interrupt.
const POLLED_DEVICE_NS: u64 = 1_000_000;

/// Waits for an event until `deadline` or the stack's next timer, whichever is first: the
/// caller polls the stack and looks again.
pub fn wait(context: &mut Context, deadline: u64) -> Result<(), Errno> {
    // The device interrupts while the stack polls it no more: arm it for the next frame,
    // and if frames came meanwhile, take them now instead.
    if context.process.network.stack.is_some() && context.platform.net_arm_interrupt() {
        return Ok(());
    }
    let timer = context
        .process
        .network
        .stack
        .as_mut()
        .and_then(|stack| stack.next_poll(context.platform));
    let wake = timer.map_or(deadline, |timer| timer.min(deadline));
    // A timerfd's expiry is an event too.
    let wake = crate::timerfd::next_deadline(context).map_or(wake, |timer| timer.min(wake));
    // A device without an interrupt (virtio-net on PCI) is looked at every millisecond.
    let wake = if context.platform.net_polled() && context.process.network.stack.is_some() {
        let soon = context
            .platform
            .now(MachineClock::Monotonic)
            .saturating_add(POLLED_DEVICE_NS);
        wake.min(soon)
    } else {
        wake
    };
    crate::signal::wait_step_for_network(context, wake, WakeOn::AnyEvent)
}

/// The AF_UNIX socket `fd` refers to, if it is one (unix.rs serves it).
fn unix_socket(context: &Context, fd: Fd) -> Option<(u32, OpenFile)> {
    let file = context.process.files.get(fd).ok()?;
    match file.kind {
        FileKind::UnixSocket { id } => Some((id, file)),
        _ => None,
    }
}

fn socket_id(context: &Context, fd: Fd) -> Result<(u32, OpenFile), Errno> {
    let file = context.process.files.get(fd)?;
    match file.kind {
        FileKind::Socket { id } => Ok((id, file)),
        _ => Err(Errno::ENOTSOCK),
    }
}

fn socket_mut<'a>(context: &'a mut Context, id: u32) -> Result<&'a mut Socket, Errno> {
    context
        .process
        .network
        .sockets
        .get_mut(&id)
        .ok_or(Errno::EBADF)
}

/// Implements socket(2).
pub fn socket(context: &mut Context, domain: i32, kind: u32, protocol: i32) -> Result<i32, Errno> {
    let flags = kind & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let base = kind & !(SOCK_NONBLOCK | SOCK_CLOEXEC);
    let family = match u16::try_from(domain).map_err(|_| Errno::EAFNOSUPPORT)? {
        AF_UNIX => return crate::unix::socket(context, kind, protocol),
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    let stream = match (base, protocol) {
        (SOCK_STREAM, IPPROTO_IP | IPPROTO_TCP) => true,
        (SOCK_DGRAM, IPPROTO_IP | IPPROTO_UDP) => false,
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        // SOCK_MAX is 11: past it is no type at all.
        (11.., _) => return Err(Errno::EINVAL),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let socket = Socket {
        family,
        stream,
        local: (None, 0),
        peer: None,
        state: State::Idle,
        options: Options::default(),
        shut_read: false,
        shut_write: false,
        connected: false,
        reset_reported: false,
        events: new_events(&mut context.process.network),
    };
    install(context, socket, flags).map(|fd| fd.0)
}

/// A new socket's event count, under the id `install` gives the socket next.
fn new_events(network: &mut Network) -> Arc<EventCount> {
    Arc::new(EventCount {
        id: network.next_id,
        count: AtomicU32::new(0),
        watched: AtomicBool::new(false),
        queued: AtomicBool::new(false),
        woken: network.woken.clone(),
    })
}

/// Gives `socket` its id (the one `new_events` named) and an fd (with
/// SOCK_NONBLOCK/SOCK_CLOEXEC from `flags`).
fn install(context: &mut Context, socket: Socket, flags: u32) -> Result<Fd, Errno> {
    let network = &mut context.process.network;
    let id = network.next_id;
    network.next_id = network.next_id.wrapping_add(1);
    network.sockets.insert(id, socket);
    let file = OpenFile {
        kind: FileKind::Socket { id },
        status_flags: O_RDWR | (flags & O_NONBLOCK),
    };
    crate::fs::install(context, file, flags & SOCK_CLOEXEC != 0, |context| {
        context.process.network.sockets.remove(&id);
    })
}

/// Closes socket `id` (its last open description was closed): a connection gets its FIN (or
/// a reset), a listener resets what it had not handed over, the port is free again.
pub fn release(context: &mut Context, id: u32) {
    let Some(socket) = context.process.network.sockets.remove(&id) else {
        return;
    };
    let Some(stack) = context.process.network.stack.as_mut() else {
        return;
    };
    match socket.state {
        State::Idle => {}
        State::Listening => stack.close_listener(id),
        State::Connection(handle) => {
            stack.close_connection(handle, socket.options.linger == Some(0))
        }
        State::Datagram(handle) => stack.close_udp(handle),
    }
    if socket.local.1 != 0 {
        stack.release_port(socket.stream, socket.local.1);
    }
    stack.poll(context.platform);
}

/// How long the program's last words may take to leave once it exits.
const FLUSH_AT_EXIT_NS: u64 = 2_000_000_000;

/// The program is exiting, and the VM with it: on Linux its connections would go on without
/// it, sending what was written and a FIN. Here they are closed so, and the stack runs until
/// each peer has acknowledged everything (or FLUSH_AT_EXIT_NS passed): a server's last
/// answer is not lost with the VM.
pub fn flush_at_exit(context: &mut Context) {
    let ids: Vec<u32> = context.process.network.sockets.keys().copied().collect();
    if ids.is_empty() || context.process.network.stack.is_none() {
        return;
    }
    for id in ids {
        release(context, id);
    }
    let deadline = context
        .platform
        .now(MachineClock::Monotonic)
        .saturating_add(FLUSH_AT_EXIT_NS);
    loop {
        poll_stack(context);
        let delivered = context
            .process
            .network
            .stack
            .as_ref()
            .is_none_or(Stack::all_delivered);
        let now = context.platform.now(MachineClock::Monotonic);
        if delivered || now >= deadline {
            return;
        }
        let timer = context
            .process
            .network
            .stack
            .as_mut()
            .and_then(|stack| stack.next_poll(context.platform));
        let wake = timer.map_or(deadline, |timer| timer.min(deadline));
        // Halting lets the device's interrupt end the wait; with other threads, a wait would
        // run them, and they are ending: the stack is polled without waiting instead.
        if context.process.threads.count() == 1 {
            if context.platform.net_arm_interrupt() {
                continue; // frames came: take them
            }
            context
                .platform
                .wait_until(context.process, wake.max(now + 1), WakeOn::AnyEvent);
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Reads a socket address of `family` (AF_INET6 sockets take IPv4 as ::ffff:a.b.c.d).
fn read_sockaddr(
    context: &Context,
    address: UserAddr,
    len: u32,
    family: Family,
) -> Result<IpEndpoint, Errno> {
    if address.is_null() {
        return Err(Errno::EFAULT);
    }
    if !(2..=128).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let given: u16 = context.read_struct(address.0)?;
    match (family, given) {
        (Family::Inet, AF_INET) => {
            if len < 16 {
                return Err(Errno::EINVAL);
            }
            let sockaddr: SockaddrIn = context.read_struct(address.0)?;
            Ok(IpEndpoint::new(
                IpAddress::Ipv4(Ipv4Address::from(sockaddr.sin_addr)),
                u16::from_be_bytes(sockaddr.sin_port),
            ))
        }
        (Family::Inet6, AF_INET6) => {
            if len < 24 {
                return Err(Errno::EINVAL);
            }
            let mut bytes = [0u8; 28];
            context
                .platform
                .read_user(address.0, &mut bytes[..len.min(28) as usize])?;
            let sockaddr = SockaddrIn6::read_from_bytes(&bytes).map_err(|_| Errno::EINVAL)?;
            let v6 = Ipv6Address::from(sockaddr.sin6_addr);
            let address = match v6.to_ipv4_mapped() {
                Some(v4) => IpAddress::Ipv4(v4),
                None => IpAddress::Ipv6(v6),
            };
            Ok(IpEndpoint::new(
                address,
                u16::from_be_bytes(sockaddr.sin6_port),
            ))
        }
        (Family::Inet, _) => Err(Errno::EAFNOSUPPORT),
        (Family::Inet6, AF_INET) => Err(Errno::EINVAL),
        (Family::Inet6, _) => Err(Errno::EAFNOSUPPORT),
    }
}

/// The bytes of a socket address of `family` for `endpoint` (None: the unspecified address).
fn sockaddr_bytes(family: Family, address: Option<IpAddress>, port: u16) -> Vec<u8> {
    match family {
        Family::Inet => {
            let v4 = match address {
                Some(IpAddress::Ipv4(v4)) => v4.octets(),
                _ => [0; 4],
            };
            SockaddrIn {
                sin_family: AF_INET,
                sin_port: port.to_be_bytes(),
                sin_addr: v4,
                sin_zero: [0; 8],
            }
            .as_bytes()
            .to_vec()
        }
        Family::Inet6 => {
            let v6 = match address {
                Some(IpAddress::Ipv4(v4)) => v4.to_ipv6_mapped().octets(),
                Some(IpAddress::Ipv6(v6)) => v6.octets(),
                None => [0; 16],
            };
            SockaddrIn6 {
                sin6_family: AF_INET6,
                sin6_port: port.to_be_bytes(),
                sin6_flowinfo: 0,
                sin6_addr: v6,
                sin6_scope_id: 0,
            }
            .as_bytes()
            .to_vec()
        }
    }
}

/// Writes a socket address to (`address`, `*len_address`) as accept, recvfrom and getsockname
/// do: truncated to the room given, with the full length stored back.
pub(crate) fn write_sockaddr(
    context: &mut Context,
    address: UserAddr,
    len_address: UserAddr,
    bytes: &[u8],
) -> Result<(), Errno> {
    if address.is_null() {
        return Ok(());
    }
    let room: u32 = context.read_struct(len_address.0)?;
    if (room as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let take = bytes.len().min(room as usize);
    context.platform.write_user(address.0, &bytes[..take])?;
    context.write_struct(len_address.0, &(bytes.len() as u32))
}

/// The endpoint to bind or listen on for (address, port): None is any address.
fn listen_endpoint(local: (Option<IpAddress>, u16)) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: local.0,
        port: local.1,
    }
}

/// Implements bind(2).
pub fn bind(context: &mut Context, fd: Fd, address: UserAddr, len: u32) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::bind(context, id, address, len);
    }
    let (id, _) = socket_id(context, fd)?;
    let family = socket_mut(context, id)?.family;
    let endpoint = read_sockaddr(context, address, len, family)?;
    let socket = socket_mut(context, id)?;
    if socket.local.1 != 0 || socket.state != State::Idle {
        return Err(Errno::EINVAL);
    }
    let (stream, reuse_port) = (socket.stream, socket.options.reuse_port);
    let unspecified = endpoint.addr.is_unspecified();
    let stack = context.process.network.stack(context.platform)?;
    if !unspecified && !stack.is_local(endpoint.addr) {
        return Err(Errno::EADDRNOTAVAIL);
    }
    let port = if endpoint.port == 0 {
        stack.ephemeral_port(stream).ok_or(Errno::EADDRINUSE)?
    } else {
        let held = stack.port_holders(stream, endpoint.port);
        if held > 0 && !reuse_port {
            let network = &context.process.network;
            let binding = network.sockets.get(&id).ok_or(Errno::EBADF)?;
            let address = (!unspecified).then_some(endpoint.addr);
            // Every holder is a socket here whose addresses do not overlap (IPv4 beside an
            // IPv6-only socket, or two specific addresses): the port is shared. A holder not
            // here (a connection closing after its program closed it) keeps it.
            let holders: Vec<&Socket> = network
                .sockets
                .values()
                .filter(|other| other.stream == stream && other.local.1 == endpoint.port)
                .collect();
            let shared = holders.len() == held
                && holders
                    .iter()
                    .all(|other| !binding.overlaps(address, other));
            if !shared {
                return Err(Errno::EADDRINUSE);
            }
        }
        endpoint.port
    };
    let stack = context.process.network.stack(context.platform)?;
    stack.hold_port(stream, port);
    let address = (!unspecified).then_some(endpoint.addr);
    let socket = socket_mut(context, id)?;
    socket.local = (address, port);
    if !socket.stream {
        bind_datagram(context, id)?;
    }
    Ok(())
}

/// Gives a UDP socket its smoltcp socket on its bound address and port.
fn bind_datagram(context: &mut Context, id: u32) -> Result<SocketHandle, Errno> {
    let socket = socket_mut(context, id)?;
    if let State::Datagram(handle) = socket.state {
        return Ok(handle);
    }
    let local = socket.local;
    let network = &mut context.process.network;
    let stack = network.stack(context.platform)?;
    let local = if local.1 == 0 {
        let port = stack.ephemeral_port(false).ok_or(Errno::EAGAIN)?;
        stack.hold_port(false, port);
        (local.0, port)
    } else {
        local
    };
    let handle = stack
        .bind_udp(listen_endpoint(local))
        .map_err(|_| Errno::EINVAL)?;
    let socket = socket_mut(context, id)?;
    socket.local = local;
    socket.state = State::Datagram(handle);
    note(context, id);
    Ok(handle)
}

/// Binds an unbound TCP socket to an ephemeral port (listen and connect do).
fn bind_ephemeral(context: &mut Context, id: u32) -> Result<(), Errno> {
    let socket = socket_mut(context, id)?;
    if socket.local.1 != 0 {
        return Ok(());
    }
    let stream = socket.stream;
    let stack = context.process.network.stack(context.platform)?;
    let port = stack.ephemeral_port(stream).ok_or(Errno::EADDRNOTAVAIL)?;
    stack.hold_port(stream, port);
    socket_mut(context, id)?.local.1 = port;
    Ok(())
}

/// Implements listen(2).
pub fn listen(context: &mut Context, fd: Fd, backlog: i32) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::listen(context, id, backlog);
    }
    let (id, _) = socket_id(context, fd)?;
    let socket = socket_mut(context, id)?;
    if !socket.stream {
        return Err(Errno::EOPNOTSUPP);
    }
    if !matches!(socket.state, State::Idle | State::Listening) {
        return Err(Errno::EINVAL);
    }
    let backlog = if backlog < 0 {
        crate::inet::SOMAXCONN
    } else {
        (backlog as usize).min(crate::inet::SOMAXCONN)
    };
    bind_ephemeral(context, id)?;
    let socket = socket_mut(context, id)?;
    let endpoint = listen_endpoint(socket.local);
    let sizes = (socket.options.receive_buffer, socket.options.send_buffer);
    let versions = socket.versions();
    socket.state = State::Listening;
    let stack = context.process.network.stack(context.platform)?;
    // Frames that came before the call are answered as they would have been on arrival,
    // when nothing listened (Linux's stack runs as frames come, Pith's when a thread looks):
    // a SYN a client sent while the program was starting gets its RST, not a connection the
    // client gave up on long ago (a client that retries sent a SYN per try).
    stack.poll(context.platform);
    stack.listen(id, endpoint, versions, backlog, sizes);
    note(context, id);
    Ok(())
}

/// The deadline of a wait that SO_RCVTIMEO or SO_SNDTIMEO (`timeout` ns, 0: none) bounds.
pub(crate) fn deadline(context: &Context, timeout: u64) -> u64 {
    if timeout == 0 {
        u64::MAX
    } else {
        context
            .platform
            .now(MachineClock::Monotonic)
            .saturating_add(timeout)
    }
}

/// Runs `attempt` until it is done, waiting between tries; EAGAIN at once when
/// `nonblocking`, or at `deadline`. A signal ends the wait: ERESTARTSYS, or EINTR where a
/// timeout is set (socket(7): such calls are not restarted).
fn wait_until_done<T>(
    context: &mut Context,
    nonblocking: bool,
    deadline: u64,
    mut attempt: impl FnMut(&mut Context) -> Result<T, Errno>,
) -> Result<T, Errno> {
    loop {
        poll_stack(context);
        match attempt(context) {
            Err(Errno::EAGAIN) => {}
            other => return other,
        }
        if nonblocking || context.platform.now(MachineClock::Monotonic) >= deadline {
            return Err(Errno::EAGAIN);
        }
        if wait(context, deadline).is_err() {
            return Err(if deadline == u64::MAX {
                Errno::ERESTARTSYS
            } else {
                Errno::EINTR
            });
        }
    }
}

/// Implements accept4(2).
pub fn accept4(
    context: &mut Context,
    fd: Fd,
    address: UserAddr,
    len_address: UserAddr,
    flags: u32,
) -> Result<i32, Errno> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((id, file)) = unix_socket(context, fd) {
        return crate::unix::accept(context, id, file, address, len_address, flags);
    }
    let (id, file) = socket_id(context, fd)?;
    let listener = socket_mut(context, id)?;
    if listener.state != State::Listening {
        return Err(Errno::EINVAL);
    }
    let (family, options, timeout) = (
        listener.family,
        listener.options,
        listener.options.receive_timeout,
    );
    let deadline = deadline(context, timeout);
    let limit = crate::fs::nofile_limit(context);
    let handle = wait_until_done(
        context,
        file.status_flags & O_NONBLOCK != 0,
        deadline,
        |context| {
            let stack = context.process.network.stack(context.platform)?;
            if !stack.acceptable(id) {
                return Err(Errno::EAGAIN);
            }
            // Without a free fd the connection stays queued, as on Linux (EMFILE).
            if !context.process.files.has_free_fd(limit) {
                return Err(Errno::EMFILE);
            }
            let stack = context.process.network.stack(context.platform)?;
            stack.accept(id).ok_or(Errno::EAGAIN)
        },
    )?;
    let stack = context.process.network.stack(context.platform)?;
    let connection = stack.tcp(handle);
    connection.set_nagle_enabled(!options.no_delay);
    if options.keepalive {
        connection.set_keep_alive(Some(smoltcp::time::Duration::from_secs(
            options.keepalive_idle.max(1) as u64,
        )));
    }
    let local = connection.local_endpoint();
    let remote = connection.remote_endpoint();
    let socket = Socket {
        family,
        stream: true,
        local: (
            local.map(|endpoint| endpoint.addr),
            local.map_or(0, |e| e.port),
        ),
        peer: None,
        state: State::Connection(handle),
        options: Options {
            inert: [(0, 0, 0); 8],
            ..options
        },
        shut_read: false,
        shut_write: false,
        connected: true,
        reset_reported: false,
        events: new_events(&mut context.process.network),
    };
    let new_fd = match install(context, socket, flags) {
        Ok(fd) => fd,
        Err(errno) => {
            // No fd for it: the connection is reset, as Linux does when accept fails late.
            if let Ok(stack) = context.process.network.stack(context.platform) {
                stack.close_connection(handle, true);
            }
            return Err(errno);
        }
    };
    if let Some(remote) = remote {
        let bytes = sockaddr_bytes(family, Some(remote.addr), remote.port);
        if let Err(errno) = write_sockaddr(context, address, len_address, &bytes) {
            let _ = context.process.files.close(new_fd);
            crate::files::settle_closes(context);
            return Err(errno);
        }
    }
    Ok(new_fd.0)
}

/// Implements accept(2).
pub fn accept(
    context: &mut Context,
    fd: Fd,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<i32, Errno> {
    accept4(context, fd, address, len_address, 0)
}

/// Implements connect(2).
pub fn connect(context: &mut Context, fd: Fd, address: UserAddr, len: u32) -> Result<(), Errno> {
    if let Some((id, file)) = unix_socket(context, fd) {
        return crate::unix::connect(context, id, file, address, len);
    }
    let (id, file) = socket_id(context, fd)?;
    let socket = socket_mut(context, id)?;
    let family = socket.family;
    if !socket.stream {
        // A datagram socket's default peer; AF_UNSPEC forgets it.
        let given: u16 = context.read_struct(address.0)?;
        if given == AF_UNSPEC {
            socket_mut(context, id)?.peer = None;
            return Ok(());
        }
        let remote = read_sockaddr(context, address, len, family)?;
        bind_datagram(context, id)?;
        socket_mut(context, id)?.peer = Some(remote);
        return Ok(());
    }
    match socket.state {
        State::Listening => return Err(Errno::EISCONN),
        State::Connection(handle) => {
            let stack = context.process.network.stack(context.platform)?;
            return match stack.tcp_ref(handle).state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(Errno::EALREADY),
                _ => Err(Errno::EISCONN),
            };
        }
        _ => {}
    }
    let remote = read_sockaddr(context, address, len, family)?;
    if remote.addr.is_unspecified() || remote.port == 0 {
        return Err(Errno::ECONNREFUSED);
    }
    bind_ephemeral(context, id)?;
    let socket = socket_mut(context, id)?;
    let (local, options) = (socket.local, socket.options);
    let stack = context.process.network.stack(context.platform)?;
    let handle = stack
        .connect(
            remote,
            listen_endpoint(local),
            (options.receive_buffer, options.send_buffer),
        )
        .map_err(|_| Errno::ENETUNREACH)?;
    stack.tcp(handle).set_nagle_enabled(!options.no_delay);
    socket_mut(context, id)?.state = State::Connection(handle);
    note(context, id);
    poll_stack(context);
    if file.status_flags & O_NONBLOCK != 0 {
        return Err(Errno::EINPROGRESS);
    }
    let deadline = deadline(context, options.send_timeout);
    let result = wait_until_done(context, false, deadline, |context| match connection_state(
        context, id,
    )? {
        tcp::State::SynSent | tcp::State::SynReceived => Err(Errno::EAGAIN),
        tcp::State::Closed => Err(Errno::ECONNREFUSED),
        _ => Ok(()),
    });
    match result {
        Ok(()) => {
            socket_mut(context, id)?.connected = true;
            Ok(())
        }
        // A timeout leaves the connect in progress, as Linux does.
        Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
        Err(Errno::ERESTARTSYS) => Err(Errno::EINTR),
        Err(errno) => {
            forget_connection(context, id);
            Err(errno)
        }
    }
}

/// The free space of a TCP connection's send buffer (grown first if the program filled it,
/// `grow_send_buffer`); None for any other socket.
pub fn send_room(context: &mut Context, id: u32) -> Option<usize> {
    let socket = socket_mut(context, id).ok()?;
    let State::Connection(handle) = socket.state else {
        return None;
    };
    let may_grow = !socket.options.send_buffer_set;
    let Context { platform, process } = context;
    let connection = process.network.stack(&mut **platform).ok()?.tcp(handle);
    if connection.send_queue() == connection.send_capacity() && may_grow {
        grow_send_buffer(connection, &mut **platform);
    }
    Some(connection.send_capacity() - connection.send_queue())
}

/// How large a connection's send buffer grows by itself: eight times the default, 512 KiB.
/// Linux's autotuning grows it up to 4 MiB (tcp_wmem) as the congestion window grows; here a
/// connection that fills its buffer doubles it, up to this. With 64 KiB, a connection had at
/// most 64 KiB on the way to the peer: nginx sending a 1 MiB file to 50 clients did 355-390
/// requests/s, against 430-490 growing to 256 KiB and 480-490 to 512 KiB (by hand, TCG).
/// Requests and replies that fit the default never grow it.
const SEND_BUFFER_GROWN_MAX: usize = 8 * crate::inet::DEFAULT_TCP_BUFFER;

/// Doubles a connection's send buffer, the program having filled it, up to
/// `SEND_BUFFER_GROWN_MAX` (the caller checks that SO_SNDBUF did not fix its size), if the
/// machine keeps an eighth of its RAM free after (Linux's tcp_mem puts TCP under pressure
/// long before memory runs out; here a buffer just stops growing). Whether it grew.
fn grow_send_buffer(
    connection: &mut tcp::Socket<'static>,
    platform: &mut dyn crate::Platform,
) -> bool {
    let size = connection.send_capacity();
    if size >= SEND_BUFFER_GROWN_MAX {
        return false;
    }
    let grown = (size * 2).min(SEND_BUFFER_GROWN_MAX);
    let (total, free) = platform.ram_pages();
    if free < (grown / 4096) as u64 + 1 + total / 8 {
        return false;
    }
    connection.grow_send_capacity(grown)
}

/// sendfile to a TCP connection: the file's bytes read straight into the socket's send
/// buffer, as many as it has room for and at most `count` (one copy fewer than through a
/// kernel buffer); Ok(0) at the file's end. None where this does not apply, for the caller's
/// way through `write_kernel_bytes`: not a connection that takes bytes now, or a file with
/// shared mappings (their bytes come through `mm::read_through_mappings`).
pub fn send_from_file(
    context: &mut Context,
    id: u32,
    from: pith_fs::vfs::Node,
    at: u64,
    count: usize,
) -> Option<Result<usize, Errno>> {
    let socket = socket_mut(context, id).ok()?;
    let State::Connection(handle) = socket.state else {
        return None;
    };
    if socket.shut_write || crate::mm::has_shared_mappings(context, from) {
        return None;
    }
    let Context { platform, process } = context;
    let stack = process.network.stack(&mut **platform).ok()?;
    let connection = stack.tcp(handle);
    if !matches!(
        connection.state(),
        tcp::State::Established | tcp::State::CloseWait
    ) || connection.send_queue() == connection.send_capacity()
    {
        return None;
    }
    let fs = match process.vfs.fs_mut(from.mount) {
        Ok(fs) => fs,
        Err(error) => return Some(Err(error.into())),
    };
    let mut sent = 0;
    let mut failed = None;
    // The free space may wrap around the ring's end: two pieces at most.
    for _ in 0..2 {
        if sent == count {
            break;
        }
        let piece = connection.send(|buffer| {
            let want = buffer.len().min(count - sent);
            match fs.read(from.ino, at + sent as u64, &mut buffer[..want]) {
                Ok(got) => (got, Ok(got)),
                Err(error) => (0, Err(error)),
            }
        });
        match piece {
            // The socket takes nothing (smoltcp's state says so): the caller's way decides.
            Err(_) if sent == 0 => return None,
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(got)) => sent += got,
            Ok(Err(error)) => {
                failed = Some(error);
                break;
            }
        }
    }
    if sent > 0 {
        stack.poll(&mut **platform);
        return Some(Ok(sent));
    }
    Some(failed.map_or(Ok(0), |error| Err(error.into())))
}

/// The smoltcp state of socket `id`'s connection (marking it connected once established).
fn connection_state(context: &mut Context, id: u32) -> Result<tcp::State, Errno> {
    let State::Connection(handle) = socket_mut(context, id)?.state else {
        return Err(Errno::ENOTCONN);
    };
    let state = context
        .process
        .network
        .stack(context.platform)?
        .tcp_ref(handle)
        .state();
    if !matches!(
        state,
        tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Closed
    ) {
        socket_mut(context, id)?.connected = true;
    }
    Ok(state)
}

/// Drops a connection that never was (a refused connect): the socket may connect again.
fn forget_connection(context: &mut Context, id: u32) {
    let Ok(socket) = socket_mut(context, id) else {
        return;
    };
    if let State::Connection(handle) = socket.state {
        socket.state = State::Idle;
        if let Ok(stack) = context.process.network.stack(context.platform) {
            stack.close_connection(handle, true);
        }
    }
}

/// The app memory a read or write moves, as (address, length) pieces.
pub(crate) type Pieces = Vec<(u64, usize)>;

fn iovec_pieces(context: &Context, vector: UserAddr, count: u64) -> Result<Pieces, Errno> {
    if count > crate::uapi::UIO_MAXIOV as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut pieces = Vec::with_capacity(count as usize);
    let mut total: u64 = 0;
    for index in 0..count {
        let iovec: Iovec = context.read_struct(vector.0 + index * 16)?;
        total = total
            .checked_add(iovec.iov_len)
            .filter(|&total| total <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
        if iovec.iov_len > 0 {
            pieces.push((iovec.iov_base, iovec.iov_len as usize));
        }
    }
    Ok(pieces)
}

/// What a receive brought: the bytes, the sender, whether a datagram was cut.
struct Received {
    len: usize,
    from: Option<IpEndpoint>,
    truncated: bool,
}

/// Receives into `pieces` from socket `id` (read, recvfrom, recvmsg).
fn receive(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
    flags: u32,
) -> Result<Received, Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL); // no urgent data is ever kept
    }
    let socket = socket_mut(context, id)?;
    let nonblocking = file.status_flags & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let (timeout, stream) = (socket.options.receive_timeout, socket.stream);
    let deadline = deadline(context, timeout);
    let total: usize = pieces.iter().map(|piece| piece.1).sum();
    if stream {
        let wait_all = flags & MSG_WAITALL != 0 && flags & MSG_PEEK == 0;
        let mut done = 0;
        let result = wait_until_done(
            context,
            nonblocking,
            deadline,
            |context| match receive_stream(context, id, pieces, done, flags) {
                Ok(0) if done == 0 || wait_all => Err(Errno::EAGAIN),
                Ok(got) => {
                    done += got;
                    if wait_all && done < total {
                        Err(Errno::EAGAIN)
                    } else {
                        Ok(done)
                    }
                }
                Err(TCP_END) => Ok(done),
                Err(_) if done > 0 => Ok(done),
                Err(errno) => Err(errno),
            },
        );
        let len = match result {
            Ok(len) => len,
            Err(Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR) if done > 0 => done,
            Err(errno) => return Err(errno),
        };
        return Ok(Received {
            len,
            from: None,
            truncated: false,
        });
    }
    let handle = bind_datagram(context, id)?;
    let peer = socket_mut(context, id)?.peer;
    wait_until_done(context, nonblocking, deadline, |context| {
        let stack = context.process.network.stack(context.platform)?;
        let udp = stack.udp(handle);
        loop {
            let (payload, metadata) = if flags & MSG_PEEK != 0 {
                match udp.peek() {
                    Ok((payload, metadata)) => (payload, *metadata),
                    Err(_) => return Err(Errno::EAGAIN),
                }
            } else {
                match udp.recv() {
                    Ok(datagram) => datagram,
                    Err(_) => return Err(Errno::EAGAIN),
                }
            };
            // A connected datagram socket takes datagrams from its peer only.
            if peer.is_some_and(|peer| peer != metadata.endpoint) && flags & MSG_PEEK == 0 {
                continue;
            }
            let len = payload.len();
            scatter(context.platform, pieces, payload)?;
            return Ok(Received {
                len: if flags & MSG_TRUNC != 0 {
                    len
                } else {
                    len.min(total)
                },
                from: Some(metadata.endpoint),
                truncated: len > total,
            });
        }
    })
}

/// Stands for "the peer closed and all was read" inside receive's loop.
const TCP_END: Errno = Errno::ENODATA;

/// Copies `data` into `pieces` (as far as they reach).
pub(crate) fn scatter(
    platform: &mut dyn crate::Platform,
    pieces: &[(u64, usize)],
    data: &[u8],
) -> Result<(), Errno> {
    let mut offset = 0;
    for &(address, len) in pieces {
        if offset >= data.len() {
            break;
        }
        let take = len.min(data.len() - offset);
        platform.write_user(address, &data[offset..offset + take])?;
        offset += take;
    }
    Ok(())
}

/// One try at reading a connection into `pieces` past `skip` bytes: what it took (0: nothing
/// there yet), TCP_END at the end of the stream, or the connection's error.
fn receive_stream(
    context: &mut Context,
    id: u32,
    pieces: &[(u64, usize)],
    skip: usize,
    flags: u32,
) -> Result<usize, Errno> {
    let socket = socket_mut(context, id)?;
    if socket.shut_read {
        return Err(TCP_END);
    }
    let State::Connection(handle) = socket.state else {
        return Err(Errno::ENOTCONN);
    };
    let state = connection_state(context, id)?;
    let stack = context.process.network.stack(context.platform)?;
    let connection = stack.tcp(handle);
    let platform = &mut *context.platform;
    let mut done = 0;
    if flags & MSG_PEEK != 0 {
        let total: usize = pieces.iter().map(|piece| piece.1).sum();
        let mut bytes = alloc::vec![0; total.min(connection.recv_queue())];
        done = connection.peek_slice(&mut bytes).unwrap_or(0);
        scatter(platform, pieces, &bytes[..done])?;
    } else {
        let mut position = 0;
        for &(address, len) in pieces {
            // Skip what an earlier try filled.
            let cut = skip.saturating_sub(position).min(len);
            position += len;
            let (address, len) = (address + cut as u64, len - cut);
            let mut filled = 0;
            // The receive ring may wrap: a second take gets the rest.
            while filled < len {
                let result = connection.recv(|buffer| {
                    let take = buffer.len().min(len - filled);
                    match platform.write_user(address + filled as u64, &buffer[..take]) {
                        Ok(()) => (take, Ok(take)),
                        Err(errno) => (0, Err(errno)),
                    }
                });
                let got = match result {
                    Ok(Ok(got)) => got,
                    Ok(Err(errno)) if done + filled == 0 => return Err(errno),
                    _ => 0,
                };
                if got == 0 {
                    break;
                }
                filled += got;
            }
            done += filled;
            if filled < len {
                break;
            }
        }
    }
    let may_recv = connection.may_recv();
    if done > 0 {
        return Ok(done);
    }
    match state {
        tcp::State::SynSent | tcp::State::SynReceived => Ok(0),
        tcp::State::Closed => {
            let socket = socket_mut(context, id)?;
            if socket.connected && !socket.reset_reported {
                socket.reset_reported = true;
                Err(Errno::ECONNRESET)
            } else if socket.connected {
                Err(TCP_END)
            } else {
                Err(Errno::ENOTCONN)
            }
        }
        _ if !may_recv => Err(TCP_END),
        _ => Ok(0),
    }
}

/// Raises SIGPIPE for the running thread unless MSG_NOSIGNAL, and says EPIPE.
pub(crate) fn broken_pipe(context: &mut Context, flags: u32) -> Errno {
    if flags & MSG_NOSIGNAL == 0 {
        let tid = context.process.threads.current;
        let info = crate::signal::user_siginfo(13, crate::signal::SI_USER, context.process.pid);
        context.process.raise_for_thread(tid, 13, info);
        context.platform.signal_state_changed();
    }
    Errno::EPIPE
}

/// Sends `pieces` on socket `id` (write, sendto, sendmsg); `to` for datagrams.
fn send(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
    flags: u32,
    to: Option<IpEndpoint>,
) -> Result<usize, Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let socket = socket_mut(context, id)?;
    let nonblocking = file.status_flags & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let (timeout, stream, peer) = (socket.options.send_timeout, socket.stream, socket.peer);
    let (shut_write, state) = (socket.shut_write, socket.state);
    let deadline = deadline(context, timeout);
    let total: usize = pieces.iter().map(|piece| piece.1).sum();
    if !stream {
        let destination = to.or(peer).ok_or(Errno::EDESTADDRREQ)?;
        if total > crate::inet::UDP_MAX_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        if destination.port == 0 {
            return Err(Errno::EINVAL);
        }
        let mut data = alloc::vec![0u8; total];
        let mut offset = 0;
        for &(address, len) in pieces {
            context
                .platform
                .read_user(address, &mut data[offset..offset + len])?;
            offset += len;
        }
        let handle = bind_datagram(context, id)?;
        let result = wait_until_done(context, nonblocking, deadline, |context| {
            let stack = context.process.network.stack(context.platform)?;
            match stack.udp(handle).send_slice(&data, destination) {
                Ok(()) => Ok(total),
                Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
                Err(udp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
            }
        });
        poll_stack(context);
        return result;
    }
    // A stream socket ignores `to` (sendto(2): "the arguments dest_addr and addrlen are
    // ignored" on a connection-mode socket).
    if shut_write {
        return Err(broken_pipe(context, flags));
    }
    let State::Connection(handle) = state else {
        return Err(Errno::ENOTCONN);
    };
    let mut done = 0;
    let result = wait_until_done(context, nonblocking, deadline, |context| {
        let state = connection_state(context, id)?;
        match state {
            tcp::State::SynSent | tcp::State::SynReceived => return Err(Errno::EAGAIN),
            tcp::State::Established | tcp::State::CloseWait => {}
            tcp::State::Closed => {
                let socket = socket_mut(context, id)?;
                if socket.connected && !socket.reset_reported {
                    socket.reset_reported = true;
                    return Err(Errno::ECONNRESET);
                }
                return Err(broken_pipe(context, flags));
            }
            _ => return Err(broken_pipe(context, flags)),
        }
        let may_grow = !socket_mut(context, id)?.options.send_buffer_set;
        let stack = context.process.network.stack(context.platform)?;
        let connection = stack.tcp(handle);
        let platform = &mut *context.platform;
        let mut sent_now = 0;
        let mut position = 0;
        for &(address, len) in pieces {
            if position + len <= done {
                position += len;
                continue;
            }
            let skip = done.saturating_sub(position);
            let (mut address, mut len) = (address + skip as u64, len - skip);
            position += skip;
            while len > 0 {
                let result = connection.send(|buffer| {
                    let take = buffer.len().min(len);
                    match platform.read_user(address, &mut buffer[..take]) {
                        Ok(()) => (take, Ok(take)),
                        Err(errno) => (0, Err(errno)),
                    }
                });
                let took = match result {
                    Ok(Ok(took)) => took,
                    Ok(Err(errno)) => {
                        if done + sent_now > 0 {
                            done += sent_now;
                            return Ok(done);
                        }
                        return Err(errno);
                    }
                    Err(_) => 0,
                };
                if took == 0 {
                    // Full: a bulk sender gets a larger buffer (`grow_send_buffer`).
                    if may_grow
                        && connection.send_queue() == connection.send_capacity()
                        && grow_send_buffer(connection, platform)
                    {
                        continue;
                    }
                    break;
                }
                sent_now += took;
                position += took;
                address += took as u64;
                len -= took;
            }
            if len > 0 {
                break;
            }
        }
        done += sent_now;
        if sent_now > 0 {
            stack.poll(platform);
        }
        if done == total {
            Ok(done)
        } else {
            Err(Errno::EAGAIN)
        }
    });
    match result {
        Err(Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR) if done > 0 => Ok(done),
        other => other,
    }
}

/// Implements read(2) and readv(2) on a socket.
pub fn read(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
) -> Result<usize, Errno> {
    receive(context, id, file, pieces, 0).map(|received| received.len)
}

/// Implements write(2) and writev(2) on a socket.
pub fn write(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
) -> Result<usize, Errno> {
    send(context, id, file, pieces, 0, None)
}

/// Implements sendto(2).
pub fn sendto(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    len: usize,
    flags: u32,
    address: UserAddr,
    address_len: u32,
) -> Result<usize, Errno> {
    let len = len.min(i32::MAX as usize);
    if let Some((id, file)) = unix_socket(context, fd) {
        let pieces = [(buffer.0, len)];
        return crate::unix::sendto(context, id, file, &pieces, flags, address, address_len);
    }
    let (id, file) = socket_id(context, fd)?;
    let to = if address.is_null() {
        None
    } else {
        let family = socket_mut(context, id)?.family;
        Some(read_sockaddr(context, address, address_len, family)?)
    };
    let len = len.min(i32::MAX as usize);
    send(context, id, file, &[(buffer.0, len)], flags, to)
}

/// Implements recvfrom(2).
pub fn recvfrom(
    context: &mut Context,
    fd: Fd,
    buffer: UserAddr,
    len: usize,
    flags: u32,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<usize, Errno> {
    let len = len.min(i32::MAX as usize);
    if let Some((id, file)) = unix_socket(context, fd) {
        let pieces = [(buffer.0, len)];
        return crate::unix::recvfrom(context, id, file, &pieces, flags, address, len_address);
    }
    let (id, file) = socket_id(context, fd)?;
    let received = receive(context, id, file, &[(buffer.0, len)], flags)?;
    write_source(context, id, &received, address, len_address)?;
    Ok(received.len)
}

/// Writes where a datagram came from (a stream's peer) for recvfrom and recvmsg.
fn write_source(
    context: &mut Context,
    id: u32,
    received: &Received,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    if address.is_null() {
        return Ok(());
    }
    let family = socket_mut(context, id)?.family;
    match received.from {
        Some(from) => {
            let bytes = sockaddr_bytes(family, Some(from.addr), from.port);
            write_sockaddr(context, address, len_address, &bytes)
        }
        // A stream socket leaves the address alone and says it is empty.
        None => context.write_struct(len_address.0, &0u32),
    }
}

/// Implements sendmsg(2) (no ancillary data is sent on IP sockets).
pub fn sendmsg(
    context: &mut Context,
    fd: Fd,
    message: UserAddr,
    flags: u32,
) -> Result<usize, Errno> {
    let header: Msghdr = context.read_struct(message.0)?;
    let pieces = iovec_pieces(context, UserAddr(header.msg_iov), header.msg_iovlen)?;
    if let Some((id, file)) = unix_socket(context, fd) {
        return crate::unix::sendmsg(context, id, file, &header, &pieces, flags);
    }
    let (id, file) = socket_id(context, fd)?;
    let to = if header.msg_name == 0 {
        None
    } else {
        let family = socket_mut(context, id)?.family;
        Some(read_sockaddr(
            context,
            UserAddr(header.msg_name),
            header.msg_namelen,
            family,
        )?)
    };
    send(context, id, file, &pieces, flags, to)
}

/// Implements recvmsg(2) (no ancillary data comes on IP sockets: msg_controllen is 0).
pub fn recvmsg(
    context: &mut Context,
    fd: Fd,
    message: UserAddr,
    flags: u32,
) -> Result<usize, Errno> {
    let mut header: Msghdr = context.read_struct(message.0)?;
    let pieces = iovec_pieces(context, UserAddr(header.msg_iov), header.msg_iovlen)?;
    if let Some((id, file)) = unix_socket(context, fd) {
        let len = crate::unix::recvmsg(context, id, file, &mut header, &pieces, flags)?;
        context.write_struct(message.0, &header)?;
        return Ok(len);
    }
    let (id, file) = socket_id(context, fd)?;
    let received = receive(context, id, file, &pieces, flags & !MSG_CMSG_CLOEXEC)?;
    if header.msg_name != 0 {
        let family = socket_mut(context, id)?.family;
        header.msg_namelen = match received.from {
            Some(from) => {
                let bytes = sockaddr_bytes(family, Some(from.addr), from.port);
                let take = bytes.len().min(header.msg_namelen as usize);
                context
                    .platform
                    .write_user(header.msg_name, &bytes[..take])?;
                bytes.len() as u32
            }
            None => 0,
        };
    }
    header.msg_controllen = 0;
    header.msg_flags = if received.truncated { MSG_TRUNC } else { 0 };
    context.write_struct(message.0, &header)?;
    Ok(received.len)
}

/// Implements sendmmsg(2): each message in turn; the count sent, or the first one's error.
pub fn sendmmsg(
    context: &mut Context,
    fd: Fd,
    messages: UserAddr,
    count: u32,
    flags: u32,
) -> Result<usize, Errno> {
    let count = count.min(crate::uapi::UIO_MAXIOV as u32);
    let size = core::mem::size_of::<Mmsghdr>() as u64;
    for index in 0..count as u64 {
        let address = messages.0 + index * size;
        match sendmsg(context, fd, UserAddr(address), flags) {
            Ok(len) => context.write_struct(address + 56, &(len as u32))?,
            Err(errno) if index == 0 => return Err(errno),
            Err(_) => return Ok(index as usize),
        }
    }
    Ok(count as usize)
}

/// Implements recvmmsg(2) (its timeout is looked at between messages, as Linux does).
pub fn recvmmsg(
    context: &mut Context,
    fd: Fd,
    messages: UserAddr,
    count: u32,
    flags: u32,
    _timeout: UserAddr,
) -> Result<usize, Errno> {
    const MSG_WAITFORONE: u32 = 0x10000;
    let count = count.min(crate::uapi::UIO_MAXIOV as u32);
    let size = core::mem::size_of::<Mmsghdr>() as u64;
    let mut flags = flags;
    for index in 0..count as u64 {
        let address = messages.0 + index * size;
        match recvmsg(context, fd, UserAddr(address), flags & !MSG_WAITFORONE) {
            Ok(len) => context.write_struct(address + 56, &(len as u32))?,
            Err(errno) if index == 0 => return Err(errno),
            Err(_) => return Ok(index as usize),
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
    }
    Ok(count as usize)
}

/// Implements shutdown(2).
pub fn shutdown(context: &mut Context, fd: Fd, how: i32) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::shutdown(context, id, how);
    }
    let (id, _) = socket_id(context, fd)?;
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    let socket = socket_mut(context, id)?;
    let handle = match socket.state {
        State::Connection(handle) => handle,
        State::Datagram(_) if socket.peer.is_some() => {
            socket.shut_read |= how != SHUT_WR;
            socket.shut_write |= how != SHUT_RD;
            return Ok(());
        }
        State::Listening if how != SHUT_WR => {
            // Linux wakes the accept waiters with EINVAL: the listener stops.
            socket.state = State::Idle;
            let stack = context.process.network.stack(context.platform)?;
            stack.close_listener(id);
            return Ok(());
        }
        _ => return Err(Errno::ENOTCONN),
    };
    socket.shut_read |= how != SHUT_WR;
    let write = how != SHUT_RD && !socket.shut_write;
    socket.shut_write |= how != SHUT_RD;
    if write {
        let stack = context.process.network.stack(context.platform)?;
        stack.tcp(handle).close();
        poll_stack(context);
    }
    Ok(())
}

/// Implements getsockname(2).
pub fn getsockname(
    context: &mut Context,
    fd: Fd,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::getsockname(context, id, address, len_address);
    }
    let (id, _) = socket_id(context, fd)?;
    let socket = socket_mut(context, id)?;
    let (family, mut local, state) = (socket.family, socket.local, socket.state);
    if let State::Connection(handle) = state {
        let stack = context.process.network.stack(context.platform)?;
        if let Some(endpoint) = stack.tcp_ref(handle).local_endpoint() {
            local = (Some(endpoint.addr), endpoint.port);
        }
    }
    let bytes = sockaddr_bytes(family, local.0, local.1);
    write_sockaddr(context, address, len_address, &bytes)
}

/// Implements getpeername(2).
pub fn getpeername(
    context: &mut Context,
    fd: Fd,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::getpeername(context, id, address, len_address);
    }
    let (id, _) = socket_id(context, fd)?;
    let socket = socket_mut(context, id)?;
    let (family, peer, state) = (socket.family, socket.peer, socket.state);
    let remote = match state {
        State::Connection(handle) => {
            let state = connection_state(context, id)?;
            if matches!(
                state,
                tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Closed
            ) {
                return Err(Errno::ENOTCONN);
            }
            let stack = context.process.network.stack(context.platform)?;
            stack.tcp_ref(handle).remote_endpoint()
        }
        _ => peer,
    }
    .ok_or(Errno::ENOTCONN)?;
    let bytes = sockaddr_bytes(family, Some(remote.addr), remote.port);
    write_sockaddr(context, address, len_address, &bytes)
}

/// Implements socketpair(2): AF_UNIX sockets only, as on Linux.
pub fn socketpair(
    context: &mut Context,
    domain: i32,
    kind: u32,
    protocol: i32,
    fds: UserAddr,
) -> Result<(), Errno> {
    match u16::try_from(domain) {
        Ok(AF_UNIX) => crate::unix::socketpair(context, kind, protocol, fds),
        Ok(AF_INET | AF_INET6) => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

pub(crate) fn read_int_option(context: &Context, value: UserAddr, len: u32) -> Result<i32, Errno> {
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    context.read_struct(value.0)
}

/// A `struct timeval` option in ns (SO_RCVTIMEO, SO_SNDTIMEO).
pub(crate) fn read_timeval_option(
    context: &Context,
    value: UserAddr,
    len: u32,
) -> Result<u64, Errno> {
    if len < 16 {
        return Err(Errno::EINVAL);
    }
    let time: crate::uapi::Timeval = context.read_struct(value.0)?;
    if !(0..1_000_000).contains(&time.tv_usec) {
        return Err(Errno::EDOM);
    }
    if time.tv_sec < 0 {
        return Ok(0);
    }
    Ok((time.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(time.tv_usec as u64 * 1000))
}

/// The options that are stored and read back but change nothing in Pith.
fn is_inert(level: i32, name: i32) -> bool {
    matches!(
        (level, name),
        (
            SOL_SOCKET,
            SO_DEBUG | SO_DONTROUTE | SO_OOBINLINE | SO_PRIORITY | SO_RCVLOWAT | SO_SNDLOWAT
        ) | (
            IPPROTO_TCP,
            TCP_MAXSEG | TCP_DEFER_ACCEPT | TCP_QUICKACK | TCP_USER_TIMEOUT | TCP_FASTOPEN
        ) | (IPPROTO_IP, IP_TOS | IP_TTL)
    )
}

/// Implements setsockopt(2).
pub fn setsockopt(
    context: &mut Context,
    fd: Fd,
    level: i32,
    name: i32,
    value: UserAddr,
    len: u32,
) -> Result<(), Errno> {
    if let Some((id, _)) = unix_socket(context, fd) {
        return crate::unix::setsockopt(context, id, level, name, value, len);
    }
    let (id, _) = socket_id(context, fd)?;
    let stream = socket_mut(context, id)?.stream;
    if level == IPPROTO_TCP && !stream {
        return Err(Errno::ENOPROTOOPT);
    }
    let mut options = socket_mut(context, id)?.options;
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR) => {
            options.reuse_address = read_int_option(context, value, len)? != 0
        }
        (SOL_SOCKET, SO_REUSEPORT) => {
            options.reuse_port = read_int_option(context, value, len)? != 0
        }
        (SOL_SOCKET, SO_KEEPALIVE) => {
            options.keepalive = read_int_option(context, value, len)? != 0
        }
        (SOL_SOCKET, SO_BROADCAST) => {
            options.broadcast = read_int_option(context, value, len)? != 0
        }
        // Linux doubles the value asked for (bookkeeping room) and has a floor.
        (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => {
            options.receive_buffer = (read_int_option(context, value, len)?.max(1152) as usize)
                .saturating_mul(2)
                .min(4 << 20)
        }
        (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
            options.send_buffer = (read_int_option(context, value, len)?.max(2304) as usize)
                .saturating_mul(2)
                .min(4 << 20);
            options.send_buffer_set = true;
        }
        (SOL_SOCKET, SO_LINGER) => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let linger: Linger = context.read_struct(value.0)?;
            options.linger = (linger.l_onoff != 0).then_some(linger.l_linger);
        }
        (SOL_SOCKET, SO_RCVTIMEO) => {
            options.receive_timeout = read_timeval_option(context, value, len)?
        }
        (SOL_SOCKET, SO_SNDTIMEO) => {
            options.send_timeout = read_timeval_option(context, value, len)?
        }
        (IPPROTO_TCP, TCP_NODELAY) => options.no_delay = read_int_option(context, value, len)? != 0,
        (IPPROTO_TCP, TCP_CORK) => options.cork = read_int_option(context, value, len)? != 0,
        (IPPROTO_TCP, TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT) => {
            let seconds = read_int_option(context, value, len)?;
            let limit = if name == TCP_KEEPCNT { 127 } else { 32767 };
            if !(1..=limit).contains(&seconds) {
                return Err(Errno::EINVAL);
            }
            match name {
                TCP_KEEPIDLE => options.keepalive_idle = seconds,
                TCP_KEEPINTVL => options.keepalive_interval = seconds,
                _ => options.keepalive_count = seconds,
            }
        }
        (IPPROTO_IPV6, IPV6_V6ONLY) => {
            if socket_mut(context, id)?.family != Family::Inet6 {
                return Err(Errno::ENOPROTOOPT);
            }
            options.v6_only = read_int_option(context, value, len)? != 0;
        }
        _ if is_inert(level, name) => {
            let number = read_int_option(context, value, len)?;
            let slot = options
                .inert
                .iter()
                .position(|&(l, n, _)| (l, n) == (level, name))
                .or_else(|| options.inert.iter().position(|&(l, n, _)| (l, n) == (0, 0)))
                .ok_or(Errno::ENOMEM)?;
            options.inert[slot] = (level, name, number);
        }
        _ => {
            context.platform.log(
                LogLevel::Debug,
                format_args!("setsockopt: level {level} option {name} is not there: ENOPROTOOPT"),
            );
            return Err(Errno::ENOPROTOOPT);
        }
    }
    let socket = socket_mut(context, id)?;
    socket.options = options;
    // Options that reach the connection at once.
    if let State::Connection(handle) = socket.state {
        let stack = context.process.network.stack(context.platform)?;
        let connection = stack.tcp(handle);
        connection.set_nagle_enabled(!options.no_delay && !options.cork);
        connection.set_keep_alive(
            options
                .keepalive
                .then(|| smoltcp::time::Duration::from_secs(options.keepalive_idle.max(1) as u64)),
        );
        if !options.cork {
            // Uncorked (or never corked): what waits goes now, Nagle or not, as Linux pushes
            // the pending frames when TCP_CORK is cleared. Nagle comes back after this pass
            // (nginx corks the header and the file, then uncorks: with Nagle holding the
            // body until the header's ACK, each response waited for a delayed ACK).
            connection.set_nagle_enabled(false);
            poll_stack(context);
            if let Ok(stack) = context.process.network.stack(context.platform) {
                stack.tcp(handle).set_nagle_enabled(!options.no_delay);
            }
        }
    }
    Ok(())
}

/// Implements getsockopt(2).
pub fn getsockopt(
    context: &mut Context,
    fd: Fd,
    level: i32,
    name: i32,
    value: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    let room: i32 = context.read_struct(len_address.0)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((id, _)) = unix_socket(context, fd) {
        let bytes = crate::unix::getsockopt(context, id, level, name)?;
        return write_option(context, value, len_address, room, &bytes);
    }
    let (id, _) = socket_id(context, fd)?;
    let socket = socket_mut(context, id)?;
    let options = socket.options;
    let flag = |on: bool| on as i32;
    let integer: i32 = match (level, name) {
        (SOL_SOCKET, SO_TYPE) => {
            if socket.stream {
                SOCK_STREAM as i32
            } else {
                SOCK_DGRAM as i32
            }
        }
        (SOL_SOCKET, SO_DOMAIN) => socket.family.number() as i32,
        (SOL_SOCKET, SO_PROTOCOL) => {
            if socket.stream {
                IPPROTO_TCP
            } else {
                IPPROTO_UDP
            }
        }
        (SOL_SOCKET, SO_ERROR) => {
            // A connect refused while nobody waited for it: said once, then forgotten.
            let mut error = 0;
            if let State::Connection(_) = socket.state {
                let connected = socket.connected;
                if connection_state(context, id)? == tcp::State::Closed && !connected {
                    error = Errno::ECONNREFUSED as i32;
                    forget_connection(context, id);
                }
            }
            error
        }
        (SOL_SOCKET, SO_ACCEPTCONN) => flag(socket.state == State::Listening),
        (SOL_SOCKET, SO_REUSEADDR) => flag(options.reuse_address),
        (SOL_SOCKET, SO_REUSEPORT) => flag(options.reuse_port),
        (SOL_SOCKET, SO_KEEPALIVE) => flag(options.keepalive),
        (SOL_SOCKET, SO_BROADCAST) => flag(options.broadcast),
        (SOL_SOCKET, SO_RCVBUF) => options.receive_buffer as i32,
        // A connection's buffer may have grown (`grow_send_buffer`): its size now, as Linux
        // reports sk_sndbuf.
        (SOL_SOCKET, SO_SNDBUF) => match socket.state {
            State::Connection(handle) if socket.stream => context
                .process
                .network
                .stack(context.platform)?
                .tcp_ref(handle)
                .send_capacity() as i32,
            _ => options.send_buffer as i32,
        },
        (SOL_SOCKET, SO_LINGER) => {
            let linger = Linger {
                l_onoff: options.linger.is_some() as i32,
                l_linger: options.linger.unwrap_or(0),
            };
            return write_option(context, value, len_address, room, linger.as_bytes());
        }
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
            let ns = if name == SO_RCVTIMEO {
                options.receive_timeout
            } else {
                options.send_timeout
            };
            let time = crate::uapi::Timeval {
                tv_sec: (ns / 1_000_000_000) as i64,
                tv_usec: ((ns % 1_000_000_000) / 1000) as i64,
            };
            return write_option(context, value, len_address, room, time.as_bytes());
        }
        (IPPROTO_TCP, _) if !socket.stream => return Err(Errno::ENOPROTOOPT),
        (IPPROTO_TCP, TCP_NODELAY) => flag(options.no_delay),
        (IPPROTO_TCP, TCP_CORK) => flag(options.cork),
        (IPPROTO_TCP, TCP_KEEPIDLE) => options.keepalive_idle,
        (IPPROTO_TCP, TCP_KEEPINTVL) => options.keepalive_interval,
        (IPPROTO_TCP, TCP_KEEPCNT) => options.keepalive_count,
        (IPPROTO_IPV6, IPV6_V6ONLY) if socket.family == Family::Inet6 => flag(options.v6_only),
        _ if is_inert(level, name) => options
            .inert
            .iter()
            .find(|&&(l, n, _)| (l, n) == (level, name))
            .map_or(
                match (level, name) {
                    (IPPROTO_IP, IP_TTL) => 64,
                    (IPPROTO_TCP, TCP_MAXSEG) => 1460,
                    _ => 0,
                },
                |&(_, _, number)| number,
            ),
        _ => return Err(Errno::ENOPROTOOPT),
    };
    write_option(context, value, len_address, room, &integer.to_ne_bytes())
}

/// Writes an option's bytes, cut to `room`, and their length.
fn write_option(
    context: &mut Context,
    value: UserAddr,
    len_address: UserAddr,
    room: i32,
    bytes: &[u8],
) -> Result<(), Errno> {
    let take = bytes.len().min(room as usize);
    context.platform.write_user(value.0, &bytes[..take])?;
    context.write_struct(len_address.0, &(take as u32))
}

/// What socket `id` is ready for now (poll events), after the stack has moved its packets.
pub fn readiness(context: &mut Context, id: u32) -> i16 {
    let Ok(socket) = socket_mut(context, id) else {
        return crate::poll::POLLNVAL;
    };
    let (state, shut_read, shut_write, stream, connected) = (
        socket.state,
        socket.shut_read,
        socket.shut_write,
        socket.stream,
        socket.connected,
    );
    let Ok(stack) = context.process.network.stack(context.platform) else {
        return POLLOUT | POLLWRNORM | POLLHUP;
    };
    let readable = POLLIN | POLLRDNORM;
    let writable = POLLOUT | POLLWRNORM;
    let mut ready = 0;
    let mut now_connected = false;
    match state {
        State::Idle if stream => ready |= writable | POLLHUP,
        State::Idle => ready |= writable,
        State::Listening => {
            if stack.acceptable(id) {
                ready |= readable;
            }
        }
        State::Datagram(handle) => {
            let udp = stack.udp(handle);
            if udp.can_recv() || shut_read {
                ready |= readable;
            }
            if udp.can_send() {
                ready |= writable;
            }
        }
        State::Connection(handle) => {
            let connection = stack.tcp_ref(handle);
            match connection.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {}
                // A refused connect: Linux says POLLOUT | POLLERR | POLLHUP.
                tcp::State::Closed if !connected => ready |= writable | POLLERR | POLLHUP,
                tcp::State::Closed => ready |= readable | writable | POLLERR | POLLHUP,
                _ => {
                    now_connected = true;
                    if connection.can_recv() || !connection.may_recv() || shut_read {
                        ready |= readable;
                    }
                    if !connection.may_recv() {
                        ready |= POLLRDHUP;
                    }
                    if connection.can_send() || !connection.may_send() {
                        ready |= writable;
                    }
                    if shut_write && (!connection.may_recv() || shut_read) {
                        ready |= POLLHUP;
                    }
                }
            }
        }
    }
    if now_connected {
        if let Ok(socket) = socket_mut(context, id) {
            socket.connected = true;
        }
    }
    ready
}

/// POLLRDHUP (include/uapi/asm-generic/poll.h): the peer shut its writing half.
pub const POLLRDHUP: i16 = 0x2000;

/// How many bytes a read would get now (FIONREAD, SIOCINQ).
pub fn available(context: &mut Context, id: u32) -> Result<usize, Errno> {
    poll_stack(context);
    let state = socket_mut(context, id)?.state;
    let stack = context.process.network.stack(context.platform)?;
    Ok(match state {
        State::Connection(handle) => stack.tcp_ref(handle).recv_queue(),
        State::Datagram(handle) => stack
            .udp(handle)
            .peek()
            .map_or(0, |(payload, _)| payload.len()),
        State::Listening => return Err(Errno::EINVAL),
        State::Idle => 0,
    })
}

/// Writes bytes the kernel holds to socket `id` (sendfile's writer).
pub fn write_kernel_bytes(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    data: &[u8],
) -> Result<usize, Errno> {
    let socket = socket_mut(context, id)?;
    let State::Connection(handle) = socket.state else {
        return Err(if socket.stream {
            Errno::ENOTCONN
        } else {
            Errno::EINVAL
        });
    };
    if socket.shut_write {
        return Err(broken_pipe(context, 0));
    }
    let nonblocking = file.status_flags & O_NONBLOCK != 0;
    let timeout = socket.options.send_timeout;
    let deadline = deadline(context, timeout);
    let mut done = 0;
    let result = wait_until_done(context, nonblocking, deadline, |context| {
        match connection_state(context, id)? {
            tcp::State::SynSent | tcp::State::SynReceived => return Err(Errno::EAGAIN),
            tcp::State::Established | tcp::State::CloseWait => {}
            _ => return Err(broken_pipe(context, 0)),
        }
        let stack = context.process.network.stack(context.platform)?;
        let took = stack.tcp(handle).send_slice(&data[done..]).unwrap_or(0);
        done += took;
        if took > 0 {
            stack.poll(context.platform);
        }
        if done == data.len() {
            Ok(done)
        } else {
            Err(Errno::EAGAIN)
        }
    });
    match result {
        Err(Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR) if done > 0 => Ok(done),
        other => other,
    }
}

/// The text of /proc/self/fd/N's link for a socket.
pub fn link_text(id: u32) -> Vec<u8> {
    alloc::format!("socket:[{}]", 0x2000 + id).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::poll_while_computing;
    use crate::errno::Errno;
    use crate::platform::Context;
    use crate::testing::TestMachine;

    const SOCKET: u64 = 41;
    const CONNECT: u64 = 42;
    const ACCEPT4: u64 = 288;
    const BIND: u64 = 49;
    const LISTEN: u64 = 50;
    const GETSOCKNAME: u64 = 51;
    const GETSOCKOPT: u64 = 55;
    const NONBLOCK: u64 = 0o4000;
    const NANOSLEEP: u64 = 35;

    /// A sockaddr_in for 127.0.0.1:`port` in app memory.
    fn loopback(machine: &mut TestMachine, port: u16) -> u64 {
        let mut bytes = [0u8; 16];
        bytes[0] = 2; // AF_INET
        bytes[2..4].copy_from_slice(&port.to_be_bytes());
        bytes[4..8].copy_from_slice(&[127, 0, 0, 1]);
        machine.put(&bytes)
    }

    /// The host (10.0.2.2, QEMU's user-mode gateway) and the fake offloading device
    /// (10.0.2.15): their Ethernet and IPv4 addresses.
    const HOST_MAC: smoltcp::wire::EthernetAddress =
        smoltcp::wire::EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);
    const DEVICE_MAC: smoltcp::wire::EthernetAddress =
        smoltcp::wire::EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const HOST_IP: smoltcp::wire::Ipv4Address = smoltcp::wire::Ipv4Address::new(10, 0, 2, 2);
    const DEVICE_IP: smoltcp::wire::Ipv4Address = smoltcp::wire::Ipv4Address::new(10, 0, 2, 15);

    /// An Ethernet frame from the host to the device, its payload `len` bytes `emit` writes.
    fn from_host(
        ethertype: smoltcp::wire::EthernetProtocol,
        len: usize,
        emit: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        let mut frame = alloc::vec![0; 14 + len];
        smoltcp::wire::EthernetRepr {
            src_addr: HOST_MAC,
            dst_addr: DEVICE_MAC,
            ethertype,
        }
        .emit(&mut smoltcp::wire::EthernetFrame::new_unchecked(
            &mut frame[..],
        ));
        emit(&mut frame[14..]);
        frame
    }

    /// The host asks who has the device's address (and so tells its own).
    fn arp_request_from_host() -> Vec<u8> {
        let arp = smoltcp::wire::ArpRepr::EthernetIpv4 {
            operation: smoltcp::wire::ArpOperation::Request,
            source_hardware_addr: HOST_MAC,
            source_protocol_addr: HOST_IP,
            target_hardware_addr: smoltcp::wire::EthernetAddress([0; 6]),
            target_protocol_addr: DEVICE_IP,
        };
        from_host(
            smoltcp::wire::EthernetProtocol::Arp,
            arp.buffer_len(),
            |payload| arp.emit(&mut smoltcp::wire::ArpPacket::new_unchecked(payload)),
        )
    }

    /// A SYN from the host's port 40000 to the device's `port` (its TCP checksum left to the
    /// device, which vouches for received frames).
    fn syn_from_host(port: u16) -> Vec<u8> {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket};
        let tcp = smoltcp::wire::TcpRepr {
            src_port: 40000,
            dst_port: port,
            control: smoltcp::wire::TcpControl::Syn,
            seq_number: smoltcp::wire::TcpSeqNumber(1000),
            ack_number: None,
            window_len: 64240,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: HOST_IP,
            dst_addr: DEVICE_IP,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let len = ip.buffer_len() + tcp.buffer_len();
        from_host(smoltcp::wire::EthernetProtocol::Ipv4, len, |payload| {
            let checksums = ChecksumCapabilities::default();
            ip.emit(
                &mut Ipv4Packet::new_unchecked(&mut payload[..20]),
                &checksums,
            );
            tcp.emit(
                &mut TcpPacket::new_unchecked(&mut payload[20..]),
                &HOST_IP.into(),
                &DEVICE_IP.into(),
                &checksums,
            );
        })
    }

    /// The TCP flags (RST, SYN and ACK) of each IPv4 TCP segment sent to the device.
    fn tcp_segments_sent(machine: &TestMachine) -> Vec<(bool, bool, bool)> {
        use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
        machine
            .platform
            .device_sent
            .iter()
            .filter_map(|frame| {
                let ethernet = EthernetFrame::new_checked(&frame[..]).ok()?;
                (ethernet.ethertype() == EthernetProtocol::Ipv4).then_some(())?;
                let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
                (ip.next_header() == IpProtocol::Tcp).then_some(())?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                Some((tcp.rst(), tcp.syn(), tcp.ack()))
            })
            .collect()
    }

    #[test]
    fn a_syn_that_came_before_listen_is_refused_as_on_arrival() {
        let mut machine = wired_machine();
        let server = bound_to_any(&mut machine, 8080);
        // A client tried while the program was still starting: nothing listened then.
        let incoming = &mut machine.platform.device_incoming;
        incoming.push_back(arp_request_from_host());
        incoming.push_back(syn_from_host(8080));
        assert_eq!(machine.call(LISTEN, [server, 8, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(ACCEPT4, [server, 0, 0, NONBLOCK, 0, 0]),
            Err(Errno::EAGAIN)
        );
        let segments = tcp_segments_sent(&machine);
        assert!(
            segments.iter().any(|&(rst, _, _)| rst),
            "the SYN gets a RST: {segments:?}"
        );
        assert!(
            !segments.iter().any(|&(_, syn, ack)| syn && ack),
            "no SYN-ACK for it: {segments:?}"
        );
    }

    /// A SYN for a listener while the program computes is answered without a system call,
    /// when the kernel polls for it (its interrupt or its watch), as Linux answers one in
    /// the background; a program with no socket has no stack to poll.
    #[test]
    fn a_syn_that_comes_while_the_program_computes_is_answered() {
        let mut machine = TestMachine::new();
        machine.platform.offloading_device = true;
        machine
            .platform
            .device_incoming
            .push_back(arp_request_from_host());
        let mut context = Context {
            platform: &mut machine.platform,
            process: &mut machine.process,
        };
        assert!(!poll_while_computing(&mut context), "no stack yet");
        assert!(machine.platform.device_sent.is_empty());
        machine.process.network.config = Some(wired_config());
        listen_on_8080(&mut machine);
        // The program computes; a client connects.
        machine
            .platform
            .device_incoming
            .push_back(syn_from_host(8080));
        let mut context = Context {
            platform: &mut machine.platform,
            process: &mut machine.process,
        };
        assert!(poll_while_computing(&mut context));
        assert_syn_acked(&machine);
    }

    /// A thread that waits for something else than the network (here nanosleep) takes the
    /// frames that came, as Linux takes them on arrival: a SYN for a listener is answered.
    #[test]
    fn a_wait_for_something_else_serves_the_network() {
        let mut machine = wired_machine();
        listen_on_8080(&mut machine);
        let incoming = &mut machine.platform.device_incoming;
        incoming.push_back(arp_request_from_host());
        incoming.push_back(syn_from_host(8080));
        let ten_ms = machine.put(&[0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x96, 0x98, 0, 0, 0, 0, 0]);
        assert_eq!(machine.call(NANOSLEEP, [ten_ms, 0, 0, 0, 0, 0]), Ok(0));
        assert_syn_acked(&machine);
    }

    /// A listener on 0.0.0.0:8080, and nothing sent yet.
    fn listen_on_8080(machine: &mut TestMachine) {
        let server = bound_to_any(machine, 8080);
        assert_eq!(machine.call(LISTEN, [server, 8, 0, 0, 0, 0]), Ok(0));
        machine.platform.device_sent.clear();
    }

    /// Every frame the device held was taken, and a SYN-ACK went out.
    fn assert_syn_acked(machine: &TestMachine) {
        assert!(machine.platform.device_incoming.is_empty());
        let segments = tcp_segments_sent(machine);
        assert!(
            segments.iter().any(|&(rst, syn, ack)| syn && ack && !rst),
            "a SYN-ACK: {segments:?}"
        );
    }

    /// The device's address on the host's network.
    fn wired_config() -> crate::inet::NetConfig {
        crate::inet::NetConfig {
            address: DEVICE_IP,
            prefix_len: 24,
            gateway: Some(HOST_IP),
            dns: None,
        }
    }

    /// A machine on the host's network, its device offloading checksums.
    fn wired_machine() -> TestMachine {
        let mut machine = TestMachine::new();
        machine.platform.offloading_device = true;
        machine.process.network.config = Some(wired_config());
        machine
    }

    /// A non-blocking TCP socket bound to 0.0.0.0:`port`: its fd.
    fn bound_to_any(machine: &mut TestMachine, port: u16) -> u64 {
        let fd = machine.call(SOCKET, [2, 1 | NONBLOCK, 0, 0, 0, 0]).unwrap();
        let mut any = [0u8; 16];
        any[0] = 2;
        any[2..4].copy_from_slice(&port.to_be_bytes());
        let any = machine.put(&any);
        assert_eq!(machine.call(BIND, [fd, any, 16, 0, 0, 0]), Ok(0));
        fd
    }

    /// A listener on 127.0.0.1 with `backlog`: its fd and port.
    fn listener(machine: &mut TestMachine, backlog: u64) -> (u64, u16) {
        let fd = machine.call(SOCKET, [2, 1 | NONBLOCK, 0, 0, 0, 0]).unwrap();
        let address = loopback(machine, 0);
        assert_eq!(machine.call(BIND, [fd, address, 16, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(LISTEN, [fd, backlog, 0, 0, 0, 0]), Ok(0));
        let name = machine.scratch(16);
        let len = machine.put(&16u32.to_le_bytes());
        assert_eq!(machine.call(GETSOCKNAME, [fd, name, len, 0, 0, 0]), Ok(0));
        let port = u16::from_be_bytes(machine.memory_at(name + 2, 2).try_into().unwrap());
        (fd, port)
    }

    /// A non-blocking connect to 127.0.0.1:`port` (in progress or done).
    fn connect(machine: &mut TestMachine, port: u16) -> u64 {
        let fd = machine.call(SOCKET, [2, 1 | NONBLOCK, 0, 0, 0, 0]).unwrap();
        let address = loopback(machine, port);
        let result = machine.call(CONNECT, [fd, address, 16, 0, 0, 0]);
        assert!(
            matches!(result, Ok(0) | Err(Errno::EINPROGRESS)),
            "{result:?}"
        );
        fd
    }

    /// Runs the stack once, as a wait's pass does.
    fn poll(machine: &mut TestMachine) {
        super::poll_stack(&mut crate::platform::Context {
            platform: &mut machine.platform,
            process: &mut machine.process,
        });
    }

    /// Reads what non-blocking `fd` has, through the 64 KiB `buffer`, onto `into`.
    fn read_available(machine: &mut TestMachine, fd: u64, buffer: u64, into: &mut Vec<u8>) {
        while let Ok(got) = machine.call(0, [fd, buffer, 1 << 16, 0, 0, 0]) {
            into.extend(machine.memory_at(buffer, got as usize));
        }
    }

    fn so_error(machine: &mut TestMachine, fd: u64) -> i32 {
        let value = machine.scratch(4);
        let len = machine.put(&4u32.to_le_bytes());
        assert_eq!(machine.call(GETSOCKOPT, [fd, 1, 4, value, len, 0]), Ok(0));
        i32::from_le_bytes(machine.memory_at(value, 4).try_into().unwrap())
    }

    /// A sockaddr for the wildcard address of `family` (2 or 10) and `port`.
    fn wildcard(machine: &mut TestMachine, family: u8, port: u16) -> (u64, u64) {
        let mut bytes = [0u8; 28];
        bytes[0] = family;
        bytes[2..4].copy_from_slice(&port.to_be_bytes());
        let len = if family == 2 { 16 } else { 28 };
        (machine.put(&bytes[..len]), len as u64)
    }

    /// A sockaddr_in6 for ::1:`port`.
    fn loopback6(machine: &mut TestMachine, port: u16) -> u64 {
        let mut bytes = [0u8; 28];
        bytes[0] = 10; // AF_INET6
        bytes[2..4].copy_from_slice(&port.to_be_bytes());
        bytes[23] = 1;
        machine.put(&bytes)
    }

    #[test]
    fn an_ipv4_and_an_ipv6_only_listener_share_a_port_and_each_gets_its_own() {
        const SETSOCKOPT: u64 = 54;
        let mut machine = TestMachine::new();
        let port = 6379;
        let v4 = machine.call(SOCKET, [2, 1 | NONBLOCK, 0, 0, 0, 0]).unwrap();
        let (address, len) = wildcard(&mut machine, 2, port);
        assert_eq!(machine.call(BIND, [v4, address, len, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(LISTEN, [v4, 8, 0, 0, 0, 0]), Ok(0));
        // A dual-stack IPv6 socket overlaps the IPv4 one: refused, as on Linux.
        let dual = machine
            .call(SOCKET, [10, 1 | NONBLOCK, 0, 0, 0, 0])
            .unwrap();
        let (address6, len6) = wildcard(&mut machine, 10, port);
        assert_eq!(
            machine.call(BIND, [dual, address6, len6, 0, 0, 0]),
            Err(Errno::EADDRINUSE)
        );
        // So does a second IPv4 socket on a specific address.
        let specific = machine.call(SOCKET, [2, 1, 0, 0, 0, 0]).unwrap();
        let address = loopback(&mut machine, port);
        assert_eq!(
            machine.call(BIND, [specific, address, 16, 0, 0, 0]),
            Err(Errno::EADDRINUSE)
        );
        // An IPv6-only one does not (redis binds `* -::*` so).
        let v6 = machine
            .call(SOCKET, [10, 1 | NONBLOCK, 0, 0, 0, 0])
            .unwrap();
        let one = machine.put(&1i32.to_le_bytes());
        assert_eq!(machine.call(SETSOCKOPT, [v6, 41, 26, one, 4, 0]), Ok(0));
        assert_eq!(machine.call(BIND, [v6, address6, len6, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(LISTEN, [v6, 8, 0, 0, 0, 0]), Ok(0));
        // Clients of each version reach the listener of theirs, whichever smoltcp's
        // armed socket took the SYN (the IPv6 client first: the IPv4 listener's armed
        // socket comes first in smoltcp's set and takes it).
        for _ in 0..3 {
            let client6 = machine
                .call(SOCKET, [10, 1 | NONBLOCK, 0, 0, 0, 0])
                .unwrap();
            let address = loopback6(&mut machine, port);
            let result = machine.call(CONNECT, [client6, address, 28, 0, 0, 0]);
            assert!(
                matches!(result, Ok(0) | Err(Errno::EINPROGRESS)),
                "{result:?}"
            );
            let client4 = connect(&mut machine, port);
            let (peer4, peer6) = (machine.scratch(28), machine.scratch(28));
            let (len4, len6) = (
                machine.put(&28u32.to_le_bytes()),
                machine.put(&28u32.to_le_bytes()),
            );
            let mut accepted = (None, None);
            for _ in 0..10 {
                if accepted.0.is_none() {
                    accepted.0 = machine.call(ACCEPT4, [v4, peer4, len4, 0, 0, 0]).ok();
                }
                if accepted.1.is_none() {
                    accepted.1 = machine.call(ACCEPT4, [v6, peer6, len6, 0, 0, 0]).ok();
                }
            }
            assert!(accepted.0.is_some() && accepted.1.is_some(), "{accepted:?}");
            // The IPv4 listener's peer is 127.0.0.1, the IPv6 one's ::1.
            assert_eq!(machine.memory_at(peer4, 2), [2, 0]);
            assert_eq!(machine.memory_at(peer4 + 4, 4), [127, 0, 0, 1]);
            assert_eq!(machine.memory_at(peer6, 2), [10, 0]);
            assert_eq!(machine.memory_at(peer6 + 23, 1), [1]);
            assert_eq!(
                machine.call(ACCEPT4, [v4, 0, 0, 0, 0, 0]),
                Err(Errno::EAGAIN)
            );
            assert_eq!(
                machine.call(ACCEPT4, [v6, 0, 0, 0, 0, 0]),
                Err(Errno::EAGAIN)
            );
            assert_eq!(so_error(&mut machine, client4), 0);
            assert_eq!(so_error(&mut machine, client6), 0);
        }
    }

    #[test]
    fn a_connection_over_loopback_carries_bytes_both_ways_and_ends() {
        let mut machine = TestMachine::new();
        let (server, port) = listener(&mut machine, 8);
        let client = connect(&mut machine, port);
        let connection = machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(so_error(&mut machine, client), 0);
        let text = machine.put(b"ping");
        assert_eq!(machine.call(1, [client, text, 4, 0, 0, 0]), Ok(4));
        let buffer = machine.scratch(16);
        assert_eq!(machine.call(0, [connection, buffer, 16, 0, 0, 0]), Ok(4));
        assert_eq!(machine.memory_at(buffer, 4), b"ping");
        assert_eq!(
            machine.call(0, [connection, buffer, 16, 0, 0, 0]),
            Err(Errno::EAGAIN),
            "nothing more yet"
        );
        let answer = machine.put(b"pong!");
        assert_eq!(machine.call(1, [connection, answer, 5, 0, 0, 0]), Ok(5));
        assert_eq!(machine.call(0, [client, buffer, 16, 0, 0, 0]), Ok(5));
        assert_eq!(machine.call(3, [client, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(0, [connection, buffer, 16, 0, 0, 0]),
            Ok(0),
            "the peer closed: end of file"
        );
        assert_eq!(machine.call(3, [connection, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(3, [server, 0, 0, 0, 0, 0]), Ok(0));
        // Everything closed is reaped once the last segments went: no socket stays behind.
        poll(&mut machine);
        assert_eq!(machine.process.network.counts(), (0, 0));
    }

    /// Beside a device that cuts TCP segments (QEMU on a tap), TCP over loopback builds
    /// segments larger than the link takes: over 127.0.0.1 they loop whole (as on Linux's
    /// 64 KiB loopback), and over ::1 (whose path in smoltcp has no segmentation) a mebibyte
    /// must still go through, in order.
    #[test]
    fn a_large_transfer_over_loopback_goes_through_beside_an_offloading_device() {
        for ipv6 in [false, true] {
            let mut machine = TestMachine::new();
            machine.platform.offloading_device = true;
            let (family, len) = if ipv6 { (10u64, 28u64) } else { (2, 16) };
            let address = |machine: &mut TestMachine, port: u16| {
                if ipv6 {
                    loopback6(machine, port)
                } else {
                    loopback(machine, port)
                }
            };
            let server = machine
                .call(SOCKET, [family, 1 | NONBLOCK, 0, 0, 0, 0])
                .unwrap();
            let any = address(&mut machine, 0);
            assert_eq!(machine.call(BIND, [server, any, len, 0, 0, 0]), Ok(0));
            assert_eq!(machine.call(LISTEN, [server, 8, 0, 0, 0, 0]), Ok(0));
            let name = machine.scratch(28);
            let name_len = machine.put(&28u32.to_le_bytes());
            assert_eq!(
                machine.call(GETSOCKNAME, [server, name, name_len, 0, 0, 0]),
                Ok(0)
            );
            let port = u16::from_be_bytes(machine.memory_at(name + 2, 2).try_into().unwrap());
            let client = machine
                .call(SOCKET, [family, 1 | NONBLOCK, 0, 0, 0, 0])
                .unwrap();
            let to = address(&mut machine, port);
            let connected = machine.call(CONNECT, [client, to, len, 0, 0, 0]);
            assert!(matches!(connected, Ok(0) | Err(Errno::EINPROGRESS)));
            let connection = machine
                .call(ACCEPT4, [server, 0, 0, NONBLOCK, 0, 0])
                .unwrap();
            let content: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
            let data = machine.put(&content);
            let buffer = machine.scratch(1 << 16);
            let (mut sent, mut received) = (0usize, Vec::new());
            // Bounded: a stalled connection makes no progress however often it is asked.
            for _ in 0..5_000 {
                if received.len() == content.len() {
                    break;
                }
                if sent < content.len() {
                    let left = (content.len() - sent) as u64;
                    if let Ok(count) = machine.call(1, [client, data + sent as u64, left, 0, 0, 0])
                    {
                        sent += count as usize;
                    }
                }
                read_available(&mut machine, connection, buffer, &mut received);
                poll(&mut machine);
            }
            assert!(
                received == content,
                "ipv6 {ipv6}: {} of {} bytes came ({sent} written)",
                received.len(),
                content.len()
            );
            assert!(
                machine.platform.device_sent.is_empty(),
                "nothing for loopback goes to the device"
            );
        }
    }

    /// A connection whose program fills its send buffer gets a larger one, up to 512 KiB
    /// (Linux's autotuning, smaller); SO_SNDBUF fixes the size, as on Linux, and so does a
    /// machine short of free RAM.
    #[test]
    fn a_filled_send_buffer_grows_unless_so_sndbuf_fixed_it() {
        const SETSOCKOPT: u64 = 54;
        let mut machine = TestMachine::new();
        let (server, port) = listener(&mut machine, 8);
        let data = machine.put(&[7u8; 1 << 20]);
        let size = machine.scratch(4);
        let size_len = machine.scratch(4);
        let send_buffer = |machine: &mut TestMachine, fd: u64| {
            machine.write_bytes(size_len, &4u32.to_le_bytes());
            assert_eq!(
                machine.call(GETSOCKOPT, [fd, 1, 7, size, size_len, 0]),
                Ok(0)
            );
            u32::from_le_bytes(machine.memory_at(size, 4).try_into().unwrap())
        };
        let autotuned = connect(&mut machine, port);
        let fixed = connect(&mut machine, port);
        let wanted = machine.put(&32768u32.to_le_bytes());
        assert_eq!(machine.call(SETSOCKOPT, [fixed, 1, 7, wanted, 4, 0]), Ok(0));
        for _ in 0..2 {
            machine
                .call(ACCEPT4, [server, 0, 0, NONBLOCK, 0, 0])
                .unwrap();
        }
        assert_eq!(so_error(&mut machine, autotuned), 0);
        assert_eq!(send_buffer(&mut machine, autotuned), 65536);
        assert_eq!(
            machine.call(1, [autotuned, data, 1 << 20, 0, 0, 0]),
            Ok(512 << 10),
            "the buffer doubled to 512 KiB as the write filled it"
        );
        assert_eq!(send_buffer(&mut machine, autotuned), 512 << 10);
        // The peer reads nothing: once its window is full, writes find no room, and the
        // buffer grows no further.
        let mut writes = 0;
        while machine.call(1, [autotuned, data, 1 << 20, 0, 0, 0]).is_ok() {
            writes += 1;
            assert!(writes < 10, "the writes never filled the buffer");
        }
        assert_eq!(send_buffer(&mut machine, autotuned), 512 << 10);
        assert_eq!(send_buffer(&mut machine, fixed), 65536);
        assert_eq!(machine.call(1, [fixed, data, 1 << 20, 0, 0, 0]), Ok(65536));
        assert_eq!(send_buffer(&mut machine, fixed), 65536);
        // With little RAM free (an eighth of it stays so), buffers stay as they are.
        let starved = connect(&mut machine, port);
        machine
            .call(ACCEPT4, [server, 0, 0, NONBLOCK, 0, 0])
            .unwrap();
        assert_eq!(so_error(&mut machine, starved), 0);
        machine.platform.free_ram_pages = Some(65536 / 8);
        assert_eq!(
            machine.call(1, [starved, data, 1 << 20, 0, 0, 0]),
            Ok(65536)
        );
        assert_eq!(send_buffer(&mut machine, starved), 65536);
    }

    /// sendfile to a TCP connection (the file read straight into the send buffer): each
    /// call sends what fits, moves the offset (its own or the one given) by that, says
    /// EAGAIN when the buffer is full, and the other end gets the file whole and in order.
    #[test]
    fn sendfile_to_a_tcp_connection_sends_what_fits_and_the_file_arrives_whole() {
        let mut machine = TestMachine::new();
        let path = machine.put(b"/big\0");
        let file = machine.call(2, [path, 0o100 | 2, 0o644, 0, 0, 0]).unwrap();
        let content: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
        let data = machine.put(&content);
        let total = content.len() as u64;
        assert_eq!(machine.call(1, [file, data, total, 0, 0, 0]), Ok(total));
        let (server, port) = listener(&mut machine, 8);
        let client = connect(&mut machine, port);
        let connection = machine
            .call(ACCEPT4, [server, 0, 0, NONBLOCK, 0, 0])
            .unwrap();
        assert_eq!(so_error(&mut machine, client), 0);
        // The first half from the file's own offset, the rest from an offset given.
        assert_eq!(machine.call(8, [file, 0, 0, 0, 0, 0]), Ok(0));
        let offset = machine.put(&(total / 2).to_le_bytes());
        let buffer = machine.scratch(1 << 16);
        let (mut sent, mut received, mut full) = (0u64, Vec::new(), 0);
        // Bounded: a sendfile that lost what went would go round forever.
        for _ in 0..10_000 {
            if sent == total {
                break;
            }
            let (pointer, want) = if sent < total / 2 {
                (0, total / 2 - sent)
            } else {
                (offset, total - sent)
            };
            match machine.call(40, [connection, file, pointer, want, 0, 0]) {
                Ok(count) => {
                    assert!(count > 0 && count <= want, "{count} of {want}");
                    sent += count;
                    if sent <= total / 2 {
                        assert_eq!(machine.call(8, [file, 0, 1, 0, 0, 0]), Ok(sent));
                    } else {
                        let at =
                            u64::from_le_bytes(machine.memory_at(offset, 8).try_into().unwrap());
                        assert_eq!(at, sent, "the offset given moved by what went");
                    }
                }
                Err(Errno::EAGAIN) => {
                    // Part of what waits: the send buffer's free space then wraps around its
                    // end, and the next sendfile fills it in two pieces.
                    full += 1;
                    if let Ok(got) = machine.call(0, [client, buffer, 20_000, 0, 0, 0]) {
                        received.extend(machine.memory_at(buffer, got as usize));
                    }
                    poll(&mut machine);
                }
                Err(other) => panic!("sendfile: {other:?}"),
            }
        }
        assert!(full > 0, "600,000 bytes fit a 64 KiB send buffer at once");
        for _ in 0..100 {
            read_available(&mut machine, client, buffer, &mut received);
            if received.len() == content.len() {
                break;
            }
            poll(&mut machine);
        }
        assert!(
            received == content,
            "{} bytes came of {sent} sent",
            received.len()
        );
        // At the file's end: nothing more, not an error.
        let end = machine.put(&total.to_le_bytes());
        assert_eq!(machine.call(40, [connection, file, end, 100, 0, 0]), Ok(0));
    }

    #[test]
    fn a_listener_queues_connections_up_to_its_backlog_and_drops_syns_past_it() {
        let mut machine = TestMachine::new();
        let (server, port) = listener(&mut machine, 1);
        // As on Linux, a backlog of one holds two connections that accept has not taken.
        let connect_and_settle = |machine: &mut TestMachine| {
            let client = connect(machine, port);
            // Polling moves the packets: the handshake completes on both sides.
            let pollfd = machine.put(&[client as u8, 0, 0, 0, 4, 0, 0, 0]); // POLLOUT
            let mut ready = 0;
            for _ in 0..3 {
                ready = machine.call(7, [pollfd, 1, 0, 0, 0, 0]).unwrap();
            }
            (client, ready)
        };
        assert_eq!(connect_and_settle(&mut machine).1, 1);
        assert_eq!(connect_and_settle(&mut machine).1, 1);
        // The third SYN is dropped, not refused: the client is still trying (not writable,
        // no error).
        let (third, ready) = connect_and_settle(&mut machine);
        assert_eq!(ready, 0);
        assert_eq!(so_error(&mut machine, third), 0);
        assert!(machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]).is_ok());
        assert!(machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]).is_ok());
        assert_eq!(
            machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]),
            Err(Errno::EAGAIN)
        );
        // A port nobody listens on refuses.
        let (other, other_port) = listener(&mut machine, 1);
        assert_eq!(machine.call(3, [other, 0, 0, 0, 0, 0]), Ok(0));
        let refused = connect(&mut machine, other_port);
        assert_eq!(so_error(&mut machine, refused), Errno::ECONNREFUSED as i32);
    }

    #[test]
    fn accept_without_a_free_fd_leaves_the_connection_queued() {
        let mut machine = TestMachine::new();
        let (server, port) = listener(&mut machine, 4);
        connect(&mut machine, port);
        let limit = crate::fs::nofile_limit(&crate::platform::Context {
            platform: &mut machine.platform,
            process: &mut machine.process,
        }) as u64;
        // Fill every fd below the limit.
        while machine.call(32, [0, 0, 0, 0, 0, 0]).is_ok() {}
        assert_eq!(
            machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]),
            Err(Errno::EMFILE)
        );
        assert_eq!(machine.call(3, [limit - 1, 0, 0, 0, 0, 0]), Ok(0));
        assert!(machine.call(ACCEPT4, [server, 0, 0, 0, 0, 0]).is_ok());
    }
}
