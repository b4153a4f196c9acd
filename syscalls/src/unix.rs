//! AF_UNIX sockets (unix(7)), all in the kernel: stream, datagram and seqpacket sockets,
//! named by a path (a socket file in the tree) or an abstract name, or made in pairs by
//! socketpair(2). SCM_RIGHTS passes open files; SCM_CREDENTIALS carries the sender's ids.
//!
//! A connection is two sockets that hold each other's id; what one sends is queued on the
//! other. connect(2) makes the server's end at once and queues it on the listener, so a
//! client may write before accept(2) takes it, as on Linux. A file passed in flight holds a
//! reference on its open description (fs.rs's `hold`) until it is received or dropped.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_NONBLOCK, O_RDWR};
use crate::net::POLLRDHUP;
use crate::net::{
    Msghdr, Pieces, AF_UNIX, MSG_CMSG_CLOEXEC, MSG_DONTWAIT, MSG_OOB, MSG_PEEK, MSG_TRUNC,
    MSG_WAITALL, SHUT_RD, SHUT_RDWR, SHUT_WR, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM,
    SOL_SOCKET,
};
use crate::platform::{Context, MachineClock, WakeOn};
use crate::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use pith_fs::vfs::Node;

/// SOCK_RAW and SOCK_SEQPACKET (include/linux/net.h).
const SOCK_RAW: u32 = 3;
pub const SOCK_SEQPACKET: u32 = 5;
/// Control message types at SOL_SOCKET (include/linux/socket.h).
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// Options of AF_UNIX sockets (include/uapi/asm-generic/socket.h).
pub const SO_PASSCRED: i32 = 16;
pub const SO_PEERCRED: i32 = 17;
/// recvmsg's msg_flags: control data was cut short.
const MSG_CTRUNC: u32 = 0x8;
/// SCM_MAX_FD: the most files one message may carry.
const SCM_MAX_FD: usize = 253;
/// net.core.wmem_default: the bytes a socket may have waiting at its peer.
const DEFAULT_BUFFER: usize = 212_992;
/// What a queued segment costs its sender beyond its bytes: about the truesize of a small
/// sk_buff, so that a full send buffer holds as many small messages as on Linux (278).
const SEGMENT_OVERHEAD: usize = 768;
/// net.unix.max_dgram_qlen: past this many datagrams queued, senders wait.
const MAX_DGRAM_QLEN: usize = 10;
/// sizeof(struct sockaddr_un): the family and 108 bytes of sun_path.
const SOCKADDR_UN_SIZE: u32 = 110;
/// net.core.somaxconn: listen's backlog is cut to it.
const SOMAXCONN: usize = 4096;
/// A socket's shutdown bits (include/net/sock.h's RCV_SHUTDOWN and SEND_SHUTDOWN).
const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;

/// The socket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stream,
    Datagram,
    SeqPacket,
}

impl Kind {
    fn number(self) -> u32 {
        match self {
            Kind::Stream => SOCK_STREAM,
            Kind::Datagram => SOCK_DGRAM,
            Kind::SeqPacket => SOCK_SEQPACKET,
        }
    }

    /// Connection-oriented: listen, accept, end of file.
    fn connected_kind(self) -> bool {
        self != Kind::Datagram
    }
}

/// A socket's name, as sockaddr_un gives it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    /// A path (what bind was given, without the terminating NUL).
    Path(Vec<u8>),
    /// An abstract name: sun_path's bytes after its leading NUL.
    Abstract(Vec<u8>),
}

/// How a bound socket is found: by its socket file's node, or by its abstract name. Each
/// socket type has abstract names of its own, as in Linux's hash of them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    File(Node),
    Abstract(u32, Vec<u8>),
}

/// Where a socket stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Unconnected,
    /// listen(2) was called: the server ends of connections accept has not taken yet.
    Listening {
        backlog: usize,
        pending: VecDeque<u32>,
    },
    /// Connected to socket `peer`: a stream's or seqpacket's other end, or a datagram
    /// socket's default destination.
    Connected {
        peer: u32,
    },
    /// A stream's or seqpacket's other end was closed.
    Disconnected,
}

/// struct ucred (include/linux/socket.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One send's worth of queued data (a datagram, or a piece of a stream).
#[derive(Debug)]
struct Segment {
    bytes: Vec<u8>,
    /// How much of a stream segment was read already.
    read: usize,
    /// The sender's id (woken when this leaves the queue) and name.
    sender: u32,
    from: Option<Name>,
    /// Open descriptions in flight (SCM_RIGHTS).
    rights: Vec<u32>,
    credentials: Ucred,
    /// What the segment still costs its sender (its unread bytes and SEGMENT_OVERHEAD).
    charge: usize,
}

impl Segment {
    fn unread(&self) -> &[u8] {
        &self.bytes[self.read..]
    }
}

/// One AF_UNIX socket.
#[derive(Debug)]
pub struct UnixSocket {
    kind: Kind,
    state: State,
    name: Option<Name>,
    key: Option<Key>,
    queue: VecDeque<Segment>,
    /// Unread bytes in `queue`.
    queued: usize,
    /// What this socket has sent that is not read yet, overheads included (Linux's
    /// sk_wmem_alloc): sends wait while it is at SO_SNDBUF.
    in_flight: usize,
    shutdown: u8,
    /// An error reported once, at the next read (a peer gone with data unread).
    error: Option<Errno>,
    pass_credentials: bool,
    send_buffer: usize,
    receive_buffer: usize,
    /// SO_RCVTIMEO and SO_SNDTIMEO in ns; 0 is none.
    receive_timeout: u64,
    send_timeout: u64,
    /// Bumped at every change of what poll would say (epoll's EPOLLET).
    events: u32,
    /// An epoll instance watches it: its events are recorded in `touched`.
    watched: bool,
}

impl UnixSocket {
    fn new(kind: Kind) -> UnixSocket {
        UnixSocket {
            kind,
            state: State::Unconnected,
            name: None,
            key: None,
            queue: VecDeque::new(),
            queued: 0,
            in_flight: 0,
            shutdown: 0,
            error: None,
            pass_credentials: false,
            send_buffer: DEFAULT_BUFFER,
            receive_buffer: DEFAULT_BUFFER,
            receive_timeout: 0,
            send_timeout: 0,
            events: 0,
            watched: false,
        }
    }

    fn peer(&self) -> Option<u32> {
        match self.state {
            State::Connected { peer } => Some(peer),
            _ => None,
        }
    }

    /// Whether it may send now: what it has in flight is below a quarter of SO_SNDBUF
    /// (Linux's unix_writable, for POLLOUT).
    fn writable(&self) -> bool {
        self.in_flight * 4 <= self.send_buffer
    }
}

/// The process's AF_UNIX sockets and the names bound.
#[derive(Debug, Default)]
pub struct UnixSockets {
    sockets: BTreeMap<u32, UnixSocket>,
    bound: BTreeMap<Key, u32>,
    next_id: u32,
    /// The next autobind name (five hex digits, as Linux's).
    next_autobind: u32,
    /// Watched sockets with events epoll has not looked at yet.
    touched: BTreeSet<u32>,
}

impl UnixSockets {
    fn get(&mut self, id: u32) -> Result<&mut UnixSocket, Errno> {
        self.sockets.get_mut(&id).ok_or(Errno::EBADF)
    }

    fn add(&mut self, socket: UnixSocket) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.sockets.insert(id, socket);
        id
    }

    /// Whether `sender` must wait before sending to `receiver`: its send buffer is full, or
    /// the receiver is a datagram socket with a full queue and not connected back to it.
    fn must_wait(&self, sender: u32, receiver: u32) -> bool {
        let Some(socket) = self.sockets.get(&sender) else {
            return false;
        };
        if socket.in_flight >= socket.send_buffer {
            return true;
        }
        self.sockets.get(&receiver).is_some_and(|receiver| {
            receiver.kind == Kind::Datagram
                && receiver.peer() != Some(sender)
                && receiver.queue.len() > MAX_DGRAM_QLEN
        })
    }

    /// Queues `bytes` from `sender` on `receiver`, charged to the sender until they are read.
    fn enqueue(
        &mut self,
        sender: u32,
        receiver: u32,
        bytes: Vec<u8>,
        rights: Vec<u32>,
        credentials: Ucred,
    ) {
        let charge = bytes.len() + SEGMENT_OVERHEAD;
        let from = self.sockets.get_mut(&sender).and_then(|socket| {
            socket.in_flight += charge;
            socket.name.clone()
        });
        if let Some(socket) = self.sockets.get_mut(&receiver) {
            socket.queued += bytes.len();
            socket.queue.push_back(Segment {
                bytes,
                read: 0,
                sender,
                from,
                rights,
                credentials,
                charge,
            });
        }
        self.touch(receiver);
    }

    /// Gives `sender` back `amount` of its send buffer (its bytes were read or dropped).
    fn uncharge(&mut self, sender: u32, amount: usize) {
        if let Some(socket) = self.sockets.get_mut(&sender) {
            socket.in_flight = socket.in_flight.saturating_sub(amount);
        }
        self.touch(sender);
    }

    /// Counts an event of socket `id` (what poll says of it may have changed), and tells
    /// epoll if it watches the socket.
    fn touch(&mut self, id: u32) {
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.events = socket.events.wrapping_add(1);
            if socket.watched {
                self.touched.insert(id);
            }
        }
    }
}

fn sockets<'a>(context: &'a mut Context) -> &'a mut UnixSockets {
    &mut context.process.unix_sockets
}

fn parse_kind(kind: u32, protocol: i32) -> Result<(Kind, u32), Errno> {
    let flags = kind & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let kind = match kind & !(SOCK_NONBLOCK | SOCK_CLOEXEC) {
        SOCK_STREAM => Kind::Stream,
        // SOCK_RAW is taken as SOCK_DGRAM, as Linux's unix_create does.
        SOCK_DGRAM | SOCK_RAW => Kind::Datagram,
        SOCK_SEQPACKET => Kind::SeqPacket,
        11.. => return Err(Errno::EINVAL),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    // PF_UNIX is protocol 1 as well as 0.
    if protocol != 0 && protocol != AF_UNIX as i32 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((kind, flags))
}

/// Gives socket `id` an fd (SOCK_NONBLOCK and SOCK_CLOEXEC from `flags`); without one, the
/// socket is dropped again.
fn install(context: &mut Context, id: u32, flags: u32) -> Result<Fd, Errno> {
    let file = OpenFile {
        kind: FileKind::UnixSocket { id },
        status_flags: O_RDWR | (flags & O_NONBLOCK),
    };
    crate::fs::install(context, file, flags & SOCK_CLOEXEC != 0, |context| {
        release(context, id)
    })
}

/// socket(2) for AF_UNIX.
pub fn socket(context: &mut Context, kind: u32, protocol: i32) -> Result<i32, Errno> {
    let (kind, flags) = parse_kind(kind, protocol)?;
    let id = sockets(context).add(UnixSocket::new(kind));
    install(context, id, flags).map(|fd| fd.0)
}

/// socketpair(2) for AF_UNIX: two sockets connected to each other.
pub fn socketpair(
    context: &mut Context,
    kind: u32,
    protocol: i32,
    fds: UserAddr,
) -> Result<(), Errno> {
    let (kind, flags) = parse_kind(kind, protocol)?;
    let table = sockets(context);
    let first = table.add(UnixSocket::new(kind));
    let second = table.add(UnixSocket::new(kind));
    table.get(first)?.state = State::Connected { peer: second };
    table.get(second)?.state = State::Connected { peer: first };
    let first_fd = match install(context, first, flags) {
        Ok(fd) => fd,
        Err(errno) => {
            release(context, second);
            return Err(errno);
        }
    };
    let second_fd = match install(context, second, flags) {
        Ok(fd) => fd,
        Err(errno) => {
            let _ = context.process.files.close(first_fd);
            crate::files::settle_closes(context);
            return Err(errno);
        }
    };
    if let Err(errno) = context.write_struct(fds.0, &[first_fd.0, second_fd.0]) {
        let _ = context.process.files.close(first_fd);
        let _ = context.process.files.close(second_fd);
        crate::files::settle_closes(context);
        return Err(errno);
    }
    Ok(())
}

/// Closes socket `id` (its last open description closed, or a connection accept never
/// took): its peer sees end of file (ECONNRESET first if data was left unread), a
/// listener's pending connections are closed, and files in flight to it are dropped.
pub fn release(context: &mut Context, id: u32) {
    close_socket(context, id, false);
}

/// Closes socket `id`; `embryo`: a connection no accept took, whose client sees ECONNRESET.
fn close_socket(context: &mut Context, id: u32, embryo: bool) {
    let table = sockets(context);
    let Some(socket) = table.sockets.remove(&id) else {
        return;
    };
    if let Some(key) = &socket.key {
        table.bound.remove(key);
    }
    let reset = embryo || !socket.queue.is_empty();
    match socket.state {
        State::Connected { peer } if socket.kind.connected_kind() => {
            if let Ok(other) = table.get(peer) {
                other.state = State::Disconnected;
                other.shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
                if reset {
                    other.error = Some(Errno::ECONNRESET);
                }
            }
            table.touch(peer);
        }
        State::Listening { pending, .. } => {
            for server in pending {
                close_socket(context, server, true);
            }
        }
        _ => {}
    }
    // Datagram sockets connected here find out at their next send (ECONNREFUSED); their
    // waits for room end now.
    for segment in socket.queue {
        sockets(context).uncharge(segment.sender, segment.charge);
        for description in segment.rights {
            context.process.files.drop_held(description);
        }
    }
    context.platform.wake_all();
}

fn socket_of<'a>(context: &'a mut Context, id: u32) -> Result<&'a mut UnixSocket, Errno> {
    sockets(context).get(id)
}

/// Reads a sockaddr_un of `len` bytes: the name, or None for an address of the family alone
/// (bind's autobind).
fn read_name(context: &Context, address: UserAddr, len: u32) -> Result<Option<Name>, Errno> {
    if !(2..=SOCKADDR_UN_SIZE).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let bytes = context.read_bytes(address.0, len as usize)?;
    if u16::from_ne_bytes([bytes[0], bytes[1]]) != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &bytes[2..];
    match path.first() {
        None => Ok(None),
        Some(0) => Ok(Some(Name::Abstract(path[1..].to_vec()))),
        Some(_) => {
            let end = path
                .iter()
                .position(|&byte| byte == 0)
                .unwrap_or(path.len());
            Ok(Some(Name::Path(path[..end].to_vec())))
        }
    }
}

/// The sockaddr_un bytes of `name` (the family alone for an unnamed socket).
fn name_bytes(name: Option<&Name>) -> Vec<u8> {
    let mut bytes = AF_UNIX.to_ne_bytes().to_vec();
    match name {
        Some(Name::Path(path)) => {
            bytes.extend_from_slice(path);
            bytes.push(0);
        }
        Some(Name::Abstract(name)) => {
            bytes.push(0);
            bytes.extend_from_slice(name);
        }
        None => {}
    }
    bytes
}

/// bind(2) for AF_UNIX: a path makes a socket file (EADDRINUSE if the path exists); an
/// abstract name must be free; the family alone picks an abstract name ("autobind").
pub fn bind(context: &mut Context, id: u32, address: UserAddr, len: u32) -> Result<(), Errno> {
    let name = read_name(context, address, len)?;
    let named = socket_of(context, id)?.name.is_some();
    // Linux makes a path's file before it looks whether the socket has a name: a taken
    // path is EADDRINUSE even then.
    if let (true, Some(Name::Path(path))) = (named, &name) {
        let start = Fd(crate::fs::AT_FDCWD);
        if crate::files::resolve_at(context, start, path, false).is_ok() {
            return Err(Errno::EADDRINUSE);
        }
    }
    if named {
        return Err(Errno::EINVAL);
    }
    let kind = socket_of(context, id)?.kind.number();
    let (name, key) = match name {
        None => autobind_name(context, kind),
        Some(Name::Abstract(bytes)) => {
            let key = Key::Abstract(kind, bytes.clone());
            if sockets(context).bound.contains_key(&key) {
                return Err(Errno::EADDRINUSE);
            }
            (Name::Abstract(bytes), key)
        }
        Some(Name::Path(path)) => {
            let node = crate::files::make_socket_file(context, &path)?;
            (Name::Path(path), Key::File(node))
        }
    };
    let table = sockets(context);
    table.bound.insert(key.clone(), id);
    let socket = table.get(id)?;
    socket.name = Some(name);
    socket.key = Some(key);
    Ok(())
}

/// A free abstract name of five hex digits, as Linux's autobind picks.
fn autobind_name(context: &mut Context, kind: u32) -> (Name, Key) {
    let table = sockets(context);
    loop {
        let number = table.next_autobind & 0xfffff;
        table.next_autobind = table.next_autobind.wrapping_add(1);
        let bytes = alloc::format!("{number:05x}").into_bytes();
        let key = Key::Abstract(kind, bytes.clone());
        if !table.bound.contains_key(&key) {
            return (Name::Abstract(bytes), key);
        }
    }
}

/// The socket bound to `name`: ENOENT for a missing path, ECONNREFUSED where nobody is
/// bound (or no socket of type `kind` has that abstract name), EPROTOTYPE for a path bound
/// by another type of socket.
fn find(context: &mut Context, name: &Name, kind: Kind) -> Result<u32, Errno> {
    let key = match name {
        Name::Abstract(bytes) => Key::Abstract(kind.number(), bytes.clone()),
        Name::Path(path) => {
            let node = crate::files::resolve_at(context, Fd(crate::fs::AT_FDCWD), path, true)?;
            let metadata = context.process.vfs.metadata(node)?;
            if metadata.kind != pith_fs::FileType::Socket {
                return Err(Errno::ECONNREFUSED);
            }
            Key::File(node)
        }
    };
    let table = sockets(context);
    let id = *table.bound.get(&key).ok_or(Errno::ECONNREFUSED)?;
    if table.get(id)?.kind != kind {
        return Err(Errno::EPROTOTYPE);
    }
    Ok(id)
}

/// listen(2) for AF_UNIX.
pub fn listen(context: &mut Context, id: u32, backlog: i32) -> Result<(), Errno> {
    // Negative is huge, as Linux reads it unsigned.
    let backlog = (backlog as u32 as usize).min(SOMAXCONN);
    let socket = socket_of(context, id)?;
    if !socket.kind.connected_kind() {
        return Err(Errno::EOPNOTSUPP);
    }
    if socket.name.is_none() {
        return Err(Errno::EINVAL);
    }
    match &mut socket.state {
        State::Unconnected => {
            socket.state = State::Listening {
                backlog,
                pending: VecDeque::new(),
            }
        }
        State::Listening {
            backlog: current, ..
        } => *current = backlog,
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// Waits for any event before trying again: EAGAIN at once when `nonblocking` or past
/// `deadline`; a signal ends the wait with ERESTARTSYS, or EINTR under a timeout.
fn pause(context: &mut Context, nonblocking: bool, deadline: u64) -> Result<(), Errno> {
    if nonblocking || context.platform.now(MachineClock::Monotonic) >= deadline {
        return Err(Errno::EAGAIN);
    }
    crate::signal::wait_step(context, deadline, WakeOn::AnyEvent).map_err(|_| {
        if deadline == u64::MAX {
            Errno::ERESTARTSYS
        } else {
            Errno::EINTR
        }
    })
}

/// connect(2) for AF_UNIX: a stream or seqpacket socket queues a new connection on the
/// listener (waiting while its backlog is full); a datagram socket sets its destination
/// (AF_UNSPEC clears it).
pub fn connect(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    address: UserAddr,
    len: u32,
) -> Result<(), Errno> {
    let kind = socket_of(context, id)?.kind;
    if kind == Kind::Datagram && len >= 2 {
        let family: u16 = context.read_struct(address.0)?;
        if family == crate::net::AF_UNSPEC {
            socket_of(context, id)?.state = State::Unconnected;
            return Ok(());
        }
    }
    let name = read_name(context, address, len)?.ok_or(Errno::EINVAL)?;
    if kind == Kind::Datagram {
        let target = find(context, &name, kind)?;
        socket_of(context, id)?.state = State::Connected { peer: target };
        return Ok(());
    }
    match socket_of(context, id)?.state {
        State::Unconnected => {}
        State::Listening { .. } => return Err(Errno::EINVAL),
        State::Connected { .. } | State::Disconnected => return Err(Errno::EISCONN),
    }
    let nonblocking = file.status_flags & O_NONBLOCK != 0;
    let timeout = socket_of(context, id)?.send_timeout;
    let deadline = crate::net::deadline(context, timeout);
    loop {
        let listener = find(context, &name, kind)?;
        let table = sockets(context);
        let listening = table.get(listener)?;
        let listener_name = listening.name.clone();
        let State::Listening { backlog, pending } = &listening.state else {
            return Err(Errno::ECONNREFUSED);
        };
        // Linux's unix_recvq_full: more waiting than the backlog.
        if pending.len() <= *backlog {
            let mut server = UnixSocket::new(kind);
            server.state = State::Connected { peer: id };
            server.name = listener_name;
            let server = table.add(server);
            if let State::Listening { pending, .. } = &mut table.get(listener)?.state {
                pending.push_back(server);
            }
            table.touch(listener);
            table.get(id)?.state = State::Connected { peer: server };
            table.touch(id);
            context.platform.wake_all();
            return Ok(());
        }
        pause(context, nonblocking, deadline)?;
    }
}

/// accept4(2) for AF_UNIX: the oldest pending connection, and its peer's name.
pub fn accept(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    address: UserAddr,
    len_address: UserAddr,
    flags: u32,
) -> Result<i32, Errno> {
    let socket = socket_of(context, id)?;
    if !socket.kind.connected_kind() {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblocking = file.status_flags & O_NONBLOCK != 0;
    let timeout = socket.receive_timeout;
    let deadline = crate::net::deadline(context, timeout);
    let server = loop {
        let State::Listening { pending, .. } = &mut socket_of(context, id)?.state else {
            return Err(Errno::EINVAL);
        };
        if let Some(server) = pending.pop_front() {
            break server;
        }
        pause(context, nonblocking, deadline)?;
    };
    sockets(context).touch(id);
    let limit = crate::fs::nofile_limit(context);
    if !context.process.files.has_free_fd(limit) {
        // The connection stays queued for a later accept.
        if let State::Listening { pending, .. } = &mut socket_of(context, id)?.state {
            pending.push_front(server);
        }
        return Err(Errno::EMFILE);
    }
    let fd = install(context, server, flags)?;
    if !address.is_null() {
        let table = sockets(context);
        let peer = table.get(server)?.peer();
        let name = peer.and_then(|peer| table.sockets.get(&peer)?.name.clone());
        crate::net::write_sockaddr(context, address, len_address, &name_bytes(name.as_ref()))?;
    }
    Ok(fd.0)
}

/// What a receive brought.
struct Received {
    len: usize,
    truncated: bool,
    /// The sender's name (a datagram's; a stream's peer).
    from: Option<Name>,
    /// Files received, not yet given fds, and the sender's credentials.
    rights: Vec<u32>,
    credentials: Option<Ucred>,
}

/// One look at the queue of stream socket `id`: up to `room` bytes, stopping after a segment
/// that carries files (they come with the bytes they were sent with, as on Linux).
/// Ok(None): nothing there yet.
fn take_stream(
    context: &mut Context,
    id: u32,
    room: usize,
    peek: bool,
) -> Result<Option<(Received, Vec<u8>)>, Errno> {
    let table = sockets(context);
    let socket = table.get(id)?;
    let mut received = Received {
        len: 0,
        truncated: false,
        from: None,
        rights: Vec::new(),
        credentials: None,
    };
    let mut bytes: Vec<u8> = Vec::new();
    let mut uncharged = Vec::new();
    let mut index = 0;
    while bytes.len() < room && index < socket.queue.len() {
        let segment = &mut socket.queue[index];
        let unread = segment.unread();
        let take = unread.len().min(room - bytes.len());
        bytes.extend_from_slice(&unread[..take]);
        received.from = received.from.or_else(|| segment.from.clone());
        received.credentials = received.credentials.or(Some(segment.credentials));
        let carried = !segment.rights.is_empty();
        if carried {
            if peek {
                received.rights = segment.rights.clone();
            } else {
                received.rights = core::mem::take(&mut segment.rights);
            }
        }
        if !peek {
            segment.read += take;
            let mut amount = take;
            if segment.read == segment.bytes.len() {
                amount = segment.charge;
            }
            segment.charge -= amount;
            uncharged.push((segment.sender, amount));
        }
        if peek || segment.read < segment.bytes.len() {
            index += 1;
        } else {
            socket.queue.remove(index);
        }
        if carried {
            break;
        }
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    if !peek {
        socket.queued -= bytes.len();
        socket.events = socket.events.wrapping_add(1);
    }
    received.len = bytes.len();
    for (sender, amount) in uncharged {
        sockets(context).uncharge(sender, amount);
    }
    if peek {
        // A peek passes the files too, as new references (Linux's scm_fp_dup).
        for &description in &received.rights {
            context.process.files.hold_description(description);
        }
    } else {
        context.platform.wake_all(); // a writer may be waiting for room
    }
    Ok(Some((received, bytes)))
}

/// Receives from socket `id` into `pieces` (read, recv, recvfrom, recvmsg).
fn receive(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
    flags: u32,
) -> Result<Received, Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let socket = socket_of(context, id)?;
    let kind = socket.kind;
    match (&socket.state, kind) {
        (State::Listening { .. }, _) => return Err(Errno::EINVAL),
        (State::Unconnected, Kind::Stream) => return Err(Errno::EINVAL),
        (State::Unconnected, Kind::SeqPacket) => return Err(Errno::ENOTCONN),
        _ => {}
    }
    let nonblocking = file.status_flags & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let timeout = socket.receive_timeout;
    let deadline = crate::net::deadline(context, timeout);
    let room: usize = pieces.iter().map(|&(_, len)| len).sum();
    let peek = flags & MSG_PEEK != 0;
    if kind != Kind::Stream {
        return receive_message(context, id, pieces, flags, nonblocking, deadline);
    }
    let want = if flags & MSG_WAITALL != 0 && !peek {
        room
    } else {
        1
    };
    let mut done = 0;
    let mut total = Received {
        len: 0,
        truncated: false,
        from: None,
        rights: Vec::new(),
        credentials: None,
    };
    loop {
        if let Some((received, bytes)) = take_stream(context, id, room - done, peek)? {
            if let Err(errno) =
                crate::net::scatter(context.platform, &advance(pieces, done), &bytes)
            {
                // The bytes are consumed: Linux loses them alike on a bad buffer, and says
                // so only when nothing was copied.
                drop_rights(context, received.rights);
                if done == 0 {
                    return Err(errno);
                }
                break;
            }
            done += received.len;
            total.from = total.from.or(received.from);
            total.credentials = total.credentials.or(received.credentials);
            let carried = !received.rights.is_empty();
            total.rights = received.rights;
            if carried || done >= want {
                break;
            }
            continue;
        }
        let socket = socket_of(context, id)?;
        if let Some(error) = socket.error.take() {
            if done > 0 {
                socket.error = Some(error);
                break;
            }
            return Err(error);
        }
        if socket.shutdown & RCV_SHUTDOWN != 0 || done > 0 && done >= want {
            break;
        }
        match pause(context, nonblocking, deadline) {
            Ok(()) => {}
            Err(_) if done > 0 => break,
            Err(errno) => return Err(errno),
        }
    }
    total.len = done;
    Ok(total)
}

/// `pieces` less their first `done` bytes.
fn advance(pieces: &[(u64, usize)], mut done: usize) -> Pieces {
    let mut rest = Vec::with_capacity(pieces.len());
    for &(address, len) in pieces {
        if done >= len {
            done -= len;
            continue;
        }
        rest.push((address + done as u64, len - done));
        done = 0;
    }
    rest
}

/// Receives one message (datagram or seqpacket): cut to `pieces` (MSG_TRUNC says so, and
/// as a flag asks for the whole length).
fn receive_message(
    context: &mut Context,
    id: u32,
    pieces: &[(u64, usize)],
    flags: u32,
    nonblocking: bool,
    deadline: u64,
) -> Result<Received, Errno> {
    let room: usize = pieces.iter().map(|&(_, len)| len).sum();
    let peek = flags & MSG_PEEK != 0;
    loop {
        let socket = socket_of(context, id)?;
        if let Some(segment) = socket.queue.front() {
            let len = segment.bytes.len();
            let take = len.min(room);
            let bytes = segment.bytes[..take].to_vec();
            crate::net::scatter(context.platform, pieces, &bytes)?;
            let socket = socket_of(context, id)?;
            let (from, credentials, rights) = if peek {
                let segment = socket.queue.front().ok_or(Errno::EAGAIN)?;
                let rights = segment.rights.clone();
                let message = (segment.from.clone(), segment.credentials, rights.clone());
                // A peek passes the files too, as new references (Linux's scm_fp_dup).
                for description in rights {
                    context.process.files.hold_description(description);
                }
                message
            } else {
                let segment = socket.queue.pop_front().ok_or(Errno::EAGAIN)?;
                socket.queued -= len;
                socket.events = socket.events.wrapping_add(1);
                sockets(context).uncharge(segment.sender, segment.charge);
                context.platform.wake_all();
                (segment.from, segment.credentials, segment.rights)
            };
            return Ok(Received {
                len: if flags & MSG_TRUNC != 0 { len } else { take },
                truncated: take < len,
                from,
                rights,
                credentials: Some(credentials),
            });
        }
        if let Some(error) = socket.error.take() {
            return Err(error);
        }
        if socket.shutdown & RCV_SHUTDOWN != 0 {
            return Ok(Received {
                len: 0,
                truncated: false,
                from: None,
                rights: Vec::new(),
                credentials: None,
            });
        }
        pause(context, nonblocking, deadline)?;
    }
}

/// Reads sendmsg's control messages: the open descriptions SCM_RIGHTS passes, each held by a
/// reference now; SCM_CREDENTIALS must name the sender itself (EPERM otherwise).
fn read_control(context: &mut Context, header: &Msghdr) -> Result<Vec<u32>, Errno> {
    let mut rights = Vec::new();
    if header.msg_controllen == 0 {
        return Ok(rights);
    }
    // Linux's sock_kmalloc bound on the control buffer (net.core.optmem_max).
    if header.msg_controllen > 1 << 17 {
        return Err(Errno::ENOBUFS);
    }
    let bytes = context.read_bytes(header.msg_control, header.msg_controllen as usize)?;
    if let Err(errno) = parse_control(context, &bytes, &mut rights) {
        drop_rights(context, rights);
        return Err(errno);
    }
    Ok(rights)
}

fn parse_control(context: &mut Context, bytes: &[u8], rights: &mut Vec<u32>) -> Result<(), Errno> {
    let mut offset = 0;
    while offset + 16 <= bytes.len() {
        let field = |at: usize, size: usize| {
            let mut value = [0u8; 8];
            value[..size].copy_from_slice(&bytes[offset + at..offset + at + size]);
            u64::from_ne_bytes(value)
        };
        let len = field(0, 8) as usize;
        let level = field(8, 4) as u32 as i32;
        let kind = field(12, 4) as u32 as i32;
        if len < 16 || len > bytes.len() - offset {
            return Err(Errno::EINVAL);
        }
        let data = &bytes[offset + 16..offset + len];
        match (level, kind) {
            (SOL_SOCKET, SCM_RIGHTS) => {
                let count = data.len() / 4;
                if rights.len() + count > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                for chunk in data.chunks_exact(4) {
                    let fd = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    let description = context.process.files.hold(Fd(fd))?;
                    rights.push(description);
                }
            }
            (SOL_SOCKET, SCM_CREDENTIALS) => {
                if data.len() < 12 {
                    return Err(Errno::EINVAL);
                }
                let number = |at: usize| {
                    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                };
                if number(0) as i32 != context.process.pid || number(4) != 0 || number(8) != 0 {
                    return Err(Errno::EPERM);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        offset += (len + 7) & !7;
    }
    Ok(())
}

fn drop_rights(context: &mut Context, rights: Vec<u32>) {
    for description in rights {
        context.process.files.drop_held(description);
    }
    crate::files::settle_closes(context);
}

/// Gathers the bytes of `pieces` from the app's memory.
fn gather(context: &Context, pieces: &[(u64, usize)]) -> Result<Vec<u8>, Errno> {
    let len: usize = pieces.iter().map(|&(_, len)| len).sum();
    let mut data = Vec::with_capacity(len);
    for &(address, piece) in pieces {
        data.extend_from_slice(&context.read_bytes(address, piece)?);
    }
    Ok(data)
}

/// Sends `data` with the files `rights` on socket `id`, to `to` or its peer; the files are
/// dropped again if nothing was sent.
fn send(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    data: &[u8],
    flags: u32,
    to: Option<Name>,
    rights: Vec<u32>,
) -> Result<usize, Errno> {
    let mut rights = Some(rights);
    let result = send_inner(context, id, file, data, flags, to, &mut rights);
    if let Some(rights) = rights {
        drop_rights(context, rights);
    }
    result
}

/// send's work: `rights` is taken when they are queued with the first bytes.
fn send_inner(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    data: &[u8],
    flags: u32,
    to: Option<Name>,
    rights: &mut Option<Vec<u32>>,
) -> Result<usize, Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    // MSG_EOR and MSG_MORE are accepted: neither changes anything here.
    let socket = socket_of(context, id)?;
    let (kind, timeout) = (socket.kind, socket.send_timeout);
    let nonblocking = file.status_flags & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let deadline = crate::net::deadline(context, timeout);
    if kind == Kind::Datagram {
        return send_datagram(context, id, data, flags, to, rights, nonblocking, deadline);
    }
    let socket = socket_of(context, id)?;
    if to.is_some() {
        return Err(match socket.state {
            State::Connected { .. } | State::Disconnected => Errno::EISCONN,
            _ => Errno::EOPNOTSUPP,
        });
    }
    if kind == Kind::SeqPacket && data.len() > socket.send_buffer.saturating_sub(32) {
        return Err(Errno::EMSGSIZE);
    }
    let mut done = 0;
    loop {
        let socket = socket_of(context, id)?;
        let send_buffer = socket.send_buffer;
        let peer = match socket.state {
            State::Connected { peer } if socket.shutdown & SEND_SHUTDOWN == 0 => Some(peer),
            State::Connected { .. } | State::Disconnected => None,
            _ => return Err(Errno::ENOTCONN),
        };
        let credentials = credentials(context);
        let table = sockets(context);
        let peer = peer.filter(|peer| {
            table
                .sockets
                .get(peer)
                .is_some_and(|receiver| receiver.shutdown & RCV_SHUTDOWN == 0)
        });
        let Some(peer) = peer else {
            if done > 0 {
                return Ok(done);
            }
            return Err(crate::net::broken_pipe(context, flags));
        };
        // A stream carries no empty segment: writing nothing sends nothing (files
        // included), as Linux's unix_stream_sendmsg, once the connection is checked.
        if kind == Kind::Stream && data.is_empty() {
            return Ok(0);
        }
        if !table.must_wait(id, peer) {
            // A stream goes in pieces of at most half the send buffer, as Linux's.
            let left = data.len() - done;
            let take = match kind {
                Kind::SeqPacket => left,
                _ => left.min(send_buffer / 2),
            };
            let bytes = data[done..done + take].to_vec();
            table.enqueue(
                id,
                peer,
                bytes,
                rights.take().unwrap_or_default(),
                credentials,
            );
            done += take;
            context.platform.wake_all();
            if done == data.len() {
                return Ok(done);
            }
            continue;
        }
        match pause(context, nonblocking, deadline) {
            Ok(()) => {}
            Err(_) if done > 0 => return Ok(done),
            Err(errno) => return Err(errno),
        }
    }
}

/// The sender's credentials: this process, as root.
fn credentials(context: &Context) -> Ucred {
    Ucred {
        pid: context.process.pid,
        uid: 0,
        gid: 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn send_datagram(
    context: &mut Context,
    id: u32,
    data: &[u8],
    flags: u32,
    to: Option<Name>,
    rights: &mut Option<Vec<u32>>,
    nonblocking: bool,
    deadline: u64,
) -> Result<usize, Errno> {
    let socket = socket_of(context, id)?;
    if data.len() > socket.send_buffer.saturating_sub(32) {
        return Err(Errno::EMSGSIZE);
    }
    if socket.shutdown & SEND_SHUTDOWN != 0 {
        return Err(crate::net::broken_pipe(context, flags));
    }
    let connected = socket.peer();
    let target = match &to {
        Some(name) => find(context, name, Kind::Datagram)?,
        None => connected.ok_or(Errno::ENOTCONN)?,
    };
    let credentials = credentials(context);
    loop {
        let table = sockets(context);
        let Ok(receiver) = table.get(target) else {
            // The destination was closed: a socket connected to it is disconnected.
            if connected == Some(target) {
                table.get(id)?.state = State::Unconnected;
            }
            return Err(Errno::ECONNREFUSED);
        };
        // A socket connected elsewhere takes datagrams from its peer alone.
        if receiver.peer().is_some_and(|peer| peer != id) {
            return Err(Errno::EPERM);
        }
        if receiver.shutdown & RCV_SHUTDOWN != 0 {
            return Err(crate::net::broken_pipe(context, flags));
        }
        if !table.must_wait(id, target) {
            let rights = rights.take().unwrap_or_default();
            table.enqueue(id, target, data.to_vec(), rights, credentials);
            context.platform.wake_all();
            return Ok(data.len());
        }
        pause(context, nonblocking, deadline)?;
    }
}

/// read(2) and readv(2) on an AF_UNIX socket (files in flight to it are dropped).
pub fn read(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
) -> Result<usize, Errno> {
    let received = receive(context, id, file, pieces, 0)?;
    drop_rights(context, received.rights);
    Ok(received.len)
}

/// write(2) and writev(2) on an AF_UNIX socket.
pub fn write(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
) -> Result<usize, Errno> {
    let data = gather(context, pieces)?;
    send(context, id, file, &data, 0, None, Vec::new())
}

/// Writes bytes the kernel holds (sendfile's writer).
pub fn write_kernel_bytes(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    data: &[u8],
) -> Result<usize, Errno> {
    send(context, id, file, data, 0, None, Vec::new())
}

/// sendto(2) on an AF_UNIX socket.
pub fn sendto(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
    flags: u32,
    address: UserAddr,
    address_len: u32,
) -> Result<usize, Errno> {
    let to = if address.is_null() {
        None
    } else {
        read_name(context, address, address_len)?
    };
    let data = gather(context, pieces)?;
    send(context, id, file, &data, flags, to, Vec::new())
}

/// recvfrom(2) on an AF_UNIX socket.
pub fn recvfrom(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    pieces: &[(u64, usize)],
    flags: u32,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<usize, Errno> {
    let received = receive(context, id, file, pieces, flags)?;
    let Received {
        len, from, rights, ..
    } = received;
    drop_rights(context, rights);
    if !address.is_null() {
        write_source(context, from.as_ref(), address, len_address)?;
    }
    Ok(len)
}

/// Writes a received message's source: the sender's name, or a length of 0 for an unnamed
/// sender (Linux leaves msg_namelen 0 then).
fn write_source(
    context: &mut Context,
    from: Option<&Name>,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    match from {
        Some(name) => {
            crate::net::write_sockaddr(context, address, len_address, &name_bytes(Some(name)))
        }
        None => context.write_struct(len_address.0, &0u32),
    }
}

/// sendmsg(2) on an AF_UNIX socket: with SCM_RIGHTS and SCM_CREDENTIALS.
pub fn sendmsg(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    header: &Msghdr,
    pieces: &[(u64, usize)],
    flags: u32,
) -> Result<usize, Errno> {
    let to = if header.msg_name == 0 {
        None
    } else {
        read_name(context, UserAddr(header.msg_name), header.msg_namelen)?
    };
    let data = gather(context, pieces)?;
    let rights = read_control(context, header)?;
    send(context, id, file, &data, flags, to, rights)
}

/// recvmsg(2) on an AF_UNIX socket: the sender's credentials under SO_PASSCRED, then the
/// files passed, each given the lowest free fd (close-on-exec under MSG_CMSG_CLOEXEC).
/// Files that do not fit the control buffer, or find no free fd, are closed: MSG_CTRUNC.
pub fn recvmsg(
    context: &mut Context,
    id: u32,
    file: OpenFile,
    header: &mut Msghdr,
    pieces: &[(u64, usize)],
    flags: u32,
) -> Result<usize, Errno> {
    let received = receive(context, id, file, pieces, flags & !MSG_CMSG_CLOEXEC)?;
    let Received {
        len,
        truncated,
        from,
        rights,
        credentials,
    } = received;
    let mut message_flags = if truncated { MSG_TRUNC } else { 0 };
    if header.msg_name != 0 {
        let bytes = name_bytes(from.as_ref());
        header.msg_namelen = if from.is_some() {
            let take = bytes.len().min(header.msg_namelen as usize);
            context
                .platform
                .write_user(header.msg_name, &bytes[..take])?;
            bytes.len() as u32
        } else {
            0
        };
    }
    let mut control = Vec::new();
    let room = header.msg_controllen as usize;
    let pass_credentials = socket_of(context, id)?.pass_credentials;
    if let (true, Some(credentials)) = (pass_credentials, credentials) {
        let mut message = cmsg_header(16 + 12, SCM_CREDENTIALS);
        message.extend_from_slice(zerocopy::IntoBytes::as_bytes(&credentials));
        message.resize(32, 0);
        if control.len() + 28 <= room {
            let end = (control.len() + 32).min(room);
            control.extend_from_slice(&message[..end - control.len()]);
        } else {
            message_flags |= MSG_CTRUNC;
        }
    }
    if !rights.is_empty() {
        let fits = room.saturating_sub(control.len()).saturating_sub(16) / 4;
        let limit = crate::fs::nofile_limit(context);
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let mut fds = Vec::new();
        for description in rights {
            if fds.len() >= fits {
                context.process.files.drop_held(description);
                message_flags |= MSG_CTRUNC;
                continue;
            }
            match context
                .process
                .files
                .install_held(description, cloexec, limit)
            {
                Ok(fd) => fds.push(fd.0),
                Err(_) => {
                    context.process.files.drop_held(description);
                    message_flags |= MSG_CTRUNC;
                }
            }
        }
        crate::files::settle_closes(context);
        if !fds.is_empty() {
            let mut message = cmsg_header(16 + 4 * fds.len(), SCM_RIGHTS);
            for fd in &fds {
                message.extend_from_slice(&fd.to_ne_bytes());
            }
            let space = (message.len() + 7) & !7;
            message.resize(space, 0);
            let end = (control.len() + space).min(room);
            let take = end - control.len();
            control.extend_from_slice(&message[..take]);
        }
    }
    if !control.is_empty() {
        context.platform.write_user(header.msg_control, &control)?;
    }
    header.msg_controllen = control.len() as u64;
    header.msg_flags = message_flags;
    Ok(len)
}

fn cmsg_header(len: usize, kind: i32) -> Vec<u8> {
    let mut header = Vec::with_capacity(len + 8);
    header.extend_from_slice(&(len as u64).to_ne_bytes());
    header.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
    header.extend_from_slice(&kind.to_ne_bytes());
    header
}

/// shutdown(2) on an AF_UNIX socket: a connection's peer sees the mirror image (its reads
/// end where this side stopped writing).
pub fn shutdown(context: &mut Context, id: u32, how: i32) -> Result<(), Errno> {
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    let mut mine = 0;
    if how != SHUT_WR {
        mine |= RCV_SHUTDOWN;
    }
    if how != SHUT_RD {
        mine |= SEND_SHUTDOWN;
    }
    let table = sockets(context);
    let socket = table.get(id)?;
    let kind = socket.kind;
    let peer = match socket.state {
        State::Connected { peer } => Some(peer),
        State::Disconnected => None,
        _ if kind == Kind::Datagram => None,
        _ => return Err(Errno::ENOTCONN),
    };
    socket.shutdown |= mine;
    table.touch(id);
    if let (true, Some(peer)) = (kind.connected_kind(), peer) {
        if let Ok(other) = table.get(peer) {
            if mine & RCV_SHUTDOWN != 0 {
                other.shutdown |= SEND_SHUTDOWN;
            }
            if mine & SEND_SHUTDOWN != 0 {
                other.shutdown |= RCV_SHUTDOWN;
            }
        }
        table.touch(peer);
    }
    context.platform.wake_all();
    Ok(())
}

/// getsockname(2) on an AF_UNIX socket.
pub fn getsockname(
    context: &mut Context,
    id: u32,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    let name = socket_of(context, id)?.name.clone();
    crate::net::write_sockaddr(context, address, len_address, &name_bytes(name.as_ref()))
}

/// getpeername(2) on an AF_UNIX socket.
pub fn getpeername(
    context: &mut Context,
    id: u32,
    address: UserAddr,
    len_address: UserAddr,
) -> Result<(), Errno> {
    let table = sockets(context);
    let peer = table.get(id)?.peer().ok_or(Errno::ENOTCONN)?;
    let name = table.get(peer).ok().and_then(|peer| peer.name.clone());
    crate::net::write_sockaddr(context, address, len_address, &name_bytes(name.as_ref()))
}

/// setsockopt(2) at SOL_SOCKET on an AF_UNIX socket.
pub fn setsockopt(
    context: &mut Context,
    id: u32,
    level: i32,
    name: i32,
    value: UserAddr,
    len: u32,
) -> Result<(), Errno> {
    use crate::net::{
        SO_RCVBUF, SO_RCVBUFFORCE, SO_RCVTIMEO, SO_SNDBUF, SO_SNDBUFFORCE, SO_SNDTIMEO,
    };
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    match name {
        SO_RCVTIMEO | SO_SNDTIMEO => {
            let timeout = crate::net::read_timeval_option(context, value, len)?;
            let socket = socket_of(context, id)?;
            if name == SO_RCVTIMEO {
                socket.receive_timeout = timeout;
            } else {
                socket.send_timeout = timeout;
            }
            return Ok(());
        }
        _ => {}
    }
    let number = crate::net::read_int_option(context, value, len)?;
    let socket = socket_of(context, id)?;
    match name {
        // Linux doubles the value for its bookkeeping and reads back the doubled value.
        SO_SNDBUF | SO_SNDBUFFORCE => socket.send_buffer = (number.max(2304) as usize) * 2,
        SO_RCVBUF | SO_RCVBUFFORCE => socket.receive_buffer = (number.max(1152) as usize) * 2,
        SO_PASSCRED => socket.pass_credentials = number != 0,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

/// getsockopt(2) at SOL_SOCKET on an AF_UNIX socket: the option's bytes.
pub fn getsockopt(context: &mut Context, id: u32, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
    use crate::net::{
        SO_ACCEPTCONN, SO_DOMAIN, SO_ERROR, SO_PROTOCOL, SO_RCVBUF, SO_RCVTIMEO, SO_SNDBUF,
        SO_SNDTIMEO, SO_TYPE,
    };
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let pid = context.process.pid;
    let socket = socket_of(context, id)?;
    let int = |value: i32| value.to_ne_bytes().to_vec();
    Ok(match name {
        SO_TYPE => int(socket.kind.number() as i32),
        SO_DOMAIN => int(AF_UNIX as i32),
        SO_PROTOCOL => int(0),
        SO_ERROR => int(socket.error.take().map_or(0, |errno| errno as i32)),
        SO_ACCEPTCONN => int(matches!(socket.state, State::Listening { .. }) as i32),
        SO_SNDBUF => int(socket.send_buffer as i32),
        SO_RCVBUF => int(socket.receive_buffer as i32),
        SO_PASSCRED => int(socket.pass_credentials as i32),
        SO_RCVTIMEO | SO_SNDTIMEO => {
            let ns = if name == SO_RCVTIMEO {
                socket.receive_timeout
            } else {
                socket.send_timeout
            };
            let timeval = [
                (ns / 1_000_000_000) as i64,
                (ns % 1_000_000_000 / 1000) as i64,
            ];
            zerocopy::IntoBytes::as_bytes(&timeval).to_vec()
        }
        // The peer's credentials from connect time (socketpair's too): this process. An
        // unconnected socket has none: pid 0 and the overflow ids, as Linux says.
        SO_PEERCRED => {
            let connected = matches!(
                socket.state,
                State::Connected { .. } | State::Disconnected | State::Listening { .. }
            );
            let credentials = if connected && socket.kind.connected_kind() {
                Ucred {
                    pid,
                    uid: 0,
                    gid: 0,
                }
            } else {
                Ucred {
                    pid: 0,
                    uid: 65534,
                    gid: 65534,
                }
            };
            zerocopy::IntoBytes::as_bytes(&credentials).to_vec()
        }
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

/// poll's view of socket `id`.
pub fn readiness(context: &mut Context, id: u32) -> i16 {
    let table = sockets(context);
    let Some(socket) = table.sockets.get(&id) else {
        return POLLERR;
    };
    let mut ready = 0;
    if let State::Listening { pending, .. } = &socket.state {
        return if pending.is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        };
    }
    if socket.error.is_some() {
        ready |= POLLERR;
    }
    if !socket.queue.is_empty() || socket.shutdown & RCV_SHUTDOWN != 0 {
        ready |= POLLIN | POLLRDNORM;
    }
    if socket.shutdown & RCV_SHUTDOWN != 0 {
        ready |= POLLRDHUP;
    }
    let unconnected_stream = socket.kind.connected_kind() && socket.state == State::Unconnected;
    if socket.shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN || unconnected_stream {
        ready |= POLLHUP;
    }
    // A datagram socket also waits for its peer's queue (Linux's unix_dgram_poll).
    let peer_full = match socket.state {
        State::Connected { peer } if socket.kind == Kind::Datagram => table.must_wait(id, peer),
        _ => false,
    };
    let writable = socket.writable() && !peer_full;
    if writable {
        ready |= POLLOUT | POLLWRNORM;
    }
    ready
}

/// An epoll instance watches socket `id`: its events are recorded from now on.
pub fn watch(context: &mut Context, id: u32) {
    if let Ok(socket) = socket_of(context, id) {
        socket.watched = true;
    }
}

/// The watched sockets that had events since the last call.
pub fn take_touched(context: &mut Context) -> BTreeSet<u32> {
    core::mem::take(&mut sockets(context).touched)
}

/// A count that grows with each event of socket `id` (epoll's EPOLLET).
pub fn generation(context: &mut Context, id: u32) -> u32 {
    sockets(context)
        .sockets
        .get(&id)
        .map_or(0, |socket| socket.events)
}

/// How many bytes a read would get now (FIONREAD): a stream's all, a datagram's next one.
pub fn available(context: &mut Context, id: u32) -> Result<usize, Errno> {
    let socket = socket_of(context, id)?;
    Ok(match socket.kind {
        Kind::Stream | Kind::SeqPacket => socket.queued,
        Kind::Datagram => socket
            .queue
            .front()
            .map_or(0, |segment| segment.bytes.len()),
    })
}

/// The text of /proc/self/fd/N's link.
pub fn link_text(id: u32) -> Vec<u8> {
    alloc::format!("socket:[{}]", 0x4000_0000 + id).into_bytes()
}

#[cfg(test)]
mod tests {
    use crate::errno::Errno;
    use crate::testing::TestMachine;

    const WRITE: u64 = 1;
    const CLOSE: u64 = 3;
    const SOCKET: u64 = 41;
    const CONNECT: u64 = 42;
    const SENDMSG: u64 = 46;
    const RECVMSG: u64 = 47;
    const BIND: u64 = 49;
    const LISTEN: u64 = 50;
    const SOCKETPAIR: u64 = 53;
    const PIPE2: u64 = 293;
    const ACCEPT4: u64 = 288;
    const AF_UNIX: u64 = 1;
    const SOCK_STREAM: u64 = 1;
    const NONBLOCK: u64 = 0o4000;
    const MSG_PEEK: u64 = 2;

    fn pair(machine: &mut TestMachine, kind: u64) -> (u64, u64) {
        let fds = machine.scratch(8);
        assert_eq!(
            machine.call(SOCKETPAIR, [AF_UNIX, kind, 0, fds, 0, 0]),
            Ok(0)
        );
        let both = machine.read_u64(fds);
        (both & 0xffff_ffff, both >> 32)
    }

    fn pipe(machine: &mut TestMachine) -> (u64, u64) {
        let fds = machine.scratch(8);
        assert_eq!(machine.call(PIPE2, [fds, NONBLOCK, 0, 0, 0, 0]), Ok(0));
        let both = machine.read_u64(fds);
        (both & 0xffff_ffff, both >> 32)
    }

    /// A msghdr of one byte's iovec and a control buffer of `control_len` bytes, holding an
    /// SCM_RIGHTS message for `fds` if any.
    fn message(machine: &mut TestMachine, fds: &[i32], control_len: usize) -> u64 {
        let data = machine.scratch(8);
        machine.write_bytes(data, b"x");
        let iovec = machine.scratch(16);
        machine.write_u64(iovec, data);
        machine.write_u64(iovec + 8, 1);
        let control = machine.scratch(control_len.max(8));
        if !fds.is_empty() {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&(16 + 4 * fds.len() as u64).to_ne_bytes());
            bytes.extend_from_slice(&1i32.to_ne_bytes()); // SOL_SOCKET
            bytes.extend_from_slice(&1i32.to_ne_bytes()); // SCM_RIGHTS
            for fd in fds {
                bytes.extend_from_slice(&fd.to_ne_bytes());
            }
            machine.write_bytes(control, &bytes);
        }
        let header = machine.scratch(56);
        machine.write_u64(header + 16, iovec);
        machine.write_u64(header + 24, 1);
        machine.write_u64(header + 32, control);
        machine.write_u64(header + 40, control_len as u64);
        header
    }

    /// The fds an SCM_RIGHTS message received into `header` carries.
    fn received_fds(machine: &TestMachine, header: u64) -> Vec<i32> {
        let control = machine.read_u64(header + 32);
        let len = machine.read_u64(control) as usize;
        machine
            .memory_at(control + 16, len.saturating_sub(16))
            .chunks_exact(4)
            .map(|chunk| i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect()
    }

    #[test]
    fn a_file_in_flight_stays_open_until_received_and_closes_with_its_socket() {
        let mut machine = TestMachine::new();
        let (left, right) = pair(&mut machine, SOCK_STREAM);
        let (read_end, write_end) = pipe(&mut machine);
        let out = message(&mut machine, &[read_end as i32], 24);
        assert_eq!(machine.call(SENDMSG, [left, out, 0, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(CLOSE, [read_end, 0, 0, 0, 0, 0]), Ok(0));
        let byte = machine.put(b"y");
        assert_eq!(
            machine.call(WRITE, [write_end, byte, 1, 0, 0, 0]),
            Ok(1),
            "the read end in flight keeps the pipe open"
        );
        // Peeked, then received: two fds, each its own reference to the one read end.
        let peeked = message(&mut machine, &[], 24);
        assert_eq!(
            machine.call(RECVMSG, [right, peeked, MSG_PEEK, 0, 0, 0]),
            Ok(1)
        );
        let received = message(&mut machine, &[], 24);
        assert_eq!(machine.call(RECVMSG, [right, received, 0, 0, 0, 0]), Ok(1));
        let fds = [
            received_fds(&machine, peeked),
            received_fds(&machine, received),
        ];
        assert_eq!(fds[0].len(), 1);
        assert_eq!(fds[1].len(), 1);
        assert_ne!(fds[0], fds[1]);
        for fd in fds.iter().flatten() {
            assert_eq!(machine.call(CLOSE, [*fd as u64, 0, 0, 0, 0, 0]), Ok(0));
        }
        assert_eq!(
            machine.call(WRITE, [write_end, byte, 1, 0, 0, 0]),
            Err(Errno::EPIPE),
            "both references are gone"
        );
        // Sent again and never received: closing the receiver closes the file.
        let (read_end, write_end) = pipe(&mut machine);
        let out = message(&mut machine, &[read_end as i32], 24);
        assert_eq!(machine.call(SENDMSG, [left, out, 0, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(CLOSE, [read_end, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(CLOSE, [right, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            machine.call(WRITE, [write_end, byte, 1, 0, 0, 0]),
            Err(Errno::EPIPE)
        );
        assert_eq!(machine.call(CLOSE, [left, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.unix_sockets.sockets.len(), 0);
    }

    #[test]
    fn an_empty_stream_send_queues_nothing() {
        let mut machine = TestMachine::new();
        let (left, _right) = pair(&mut machine, SOCK_STREAM);
        let buffer = machine.scratch(8);
        assert_eq!(machine.call(44, [left, buffer, 0, 0, 0, 0]), Ok(0)); // sendto
        let sockets = &machine.process.unix_sockets.sockets;
        assert!(sockets
            .values()
            .all(|socket| socket.in_flight == 0 && socket.queue.is_empty()));
    }

    #[test]
    fn a_socket_in_flight_to_its_peer_is_freed_with_the_peer() {
        // The message in the peer's queue holds the sender's description: closing the
        // sender's fd does not release it; closing the peer drops the message and with it
        // the last reference.
        let mut machine = TestMachine::new();
        let (left, right) = pair(&mut machine, SOCK_STREAM);
        let out = message(&mut machine, &[left as i32], 24);
        assert_eq!(machine.call(SENDMSG, [left, out, 0, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(CLOSE, [left, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.unix_sockets.sockets.len(), 2);
        assert_eq!(machine.call(CLOSE, [right, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.unix_sockets.sockets.len(), 0);
    }

    #[test]
    fn a_listener_holds_its_backlog_plus_one_then_refuses_to_wait() {
        let mut machine = TestMachine::new();
        let name = machine.put(b"\x01\x00\x00listener");
        let listener = machine
            .call(SOCKET, [AF_UNIX, SOCK_STREAM, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(
            machine.call(LISTEN, [listener, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(BIND, [listener, name, 11, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(LISTEN, [listener, 0, 0, 0, 0, 0]), Ok(0));
        let client = |machine: &mut TestMachine| {
            let fd = machine
                .call(SOCKET, [AF_UNIX, SOCK_STREAM | NONBLOCK, 0, 0, 0, 0])
                .unwrap();
            machine.call(CONNECT, [fd, name, 11, 0, 0, 0])
        };
        assert_eq!(client(&mut machine), Ok(0));
        assert_eq!(client(&mut machine), Err(Errno::EAGAIN));
        let accepted = machine.call(ACCEPT4, [listener, 0, 0, 0, 0, 0]).unwrap();
        assert!(accepted > listener);
        assert_eq!(client(&mut machine), Ok(0), "room again after accept");
        // Closing the listener closes the connection it still held.
        let before = machine.process.unix_sockets.sockets.len();
        assert_eq!(machine.call(CLOSE, [listener, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.process.unix_sockets.sockets.len(), before - 2);
    }
}
