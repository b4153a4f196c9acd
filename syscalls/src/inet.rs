//! The TCP/IP stack under AF_INET and AF_INET6 sockets: smoltcp over the machine's network
//! device (`Platform::net_*`), with what smoltcp leaves to its user: loopback (127.0.0.0/8,
//! ::1 and the interface's own addresses: such frames never reach the device), listening
//! sockets with an accept backlog, ephemeral ports, closing connections reaped once they are
//! done, and the deadline of the stack's next timer (retransmits, keep-alives) for the waits.

use crate::platform::{ChecksumOffload, MachineClock, Platform, SegmentationOffload};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium, PacketMeta, RxToken, TxToken};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpPacket, EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress,
    IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Address,
    Ipv6Packet, TcpPacket,
};

/// The Ethernet MTU; frames carry 14 more bytes of header.
pub const MTU: usize = 1500;
/// Ephemeral ports, as Linux's ip_local_port_range default.
const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 32768..=60999;
/// A TCP socket's buffers unless SO_RCVBUF/SO_SNDBUF say otherwise.
pub const DEFAULT_TCP_BUFFER: usize = 64 * 1024;
/// A UDP socket's receive buffer: payload bytes, and how many datagrams.
const UDP_BUFFER: usize = 64 * 1024;
const UDP_DATAGRAMS: usize = 64;
/// The largest UDP payload (a 64 KiB IPv4 datagram less its headers).
pub const UDP_MAX_PAYLOAD: usize = 65507;
/// SOMAXCONN: listen(2) caps its backlog at this (Linux's default since 5.4).
pub const SOMAXCONN: usize = 4096;
/// How long a connection that the program closed may take to finish (FIN_WAIT, LAST_ACK)
/// before it is dropped: Linux's tcp_fin_timeout.
const FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// A handshake that a client never completes is dropped after this (Linux retries SYN-ACKs
/// for about a minute).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// How the interface is addressed: from the kernel command line (`pith run` prints it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub address: Ipv4Address,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Address>,
    pub dns: Option<Ipv4Address>,
}

/// Which IP versions a socket takes connections of: an AF_INET socket IPv4's, an AF_INET6
/// one IPv6's and, unless IPV6_V6ONLY, IPv4's too (as IPv4-mapped addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub v4: bool,
    pub v6: bool,
}

impl Versions {
    fn take(self, address: IpAddress) -> bool {
        match address {
            IpAddress::Ipv4(_) => self.v4,
            IpAddress::Ipv6(_) => self.v6,
        }
    }
}

/// A listening socket: smoltcp has one socket per connection, so a listener keeps one socket
/// armed in LISTEN and, as each takes a SYN, queues it and arms another, up to the backlog.
struct Listener {
    endpoint: IpListenEndpoint,
    /// smoltcp's listening sockets take either version: a connection of the other goes to
    /// a listener on the same port that takes it (an IPv4 and an IPv6-only listener side by
    /// side, as redis binds), or is reset.
    versions: Versions,
    backlog: usize,
    armed: Option<SocketHandle>,
    /// Connections the program has not accepted yet, oldest first (SYN_RECEIVED ones too:
    /// accept takes only the established).
    queue: VecDeque<SocketHandle>,
    buffer_sizes: (usize, usize),
    /// Connections accepted so far (with the established ones queued: an event count).
    accepted: u32,
    /// That count when epoll was last told of the listener.
    noted_generation: u32,
}

/// The stack: smoltcp's interface and sockets, and the listeners.
pub struct Stack {
    interface: Interface,
    sockets: SocketSet<'static>,
    wire: Wire,
    listeners: BTreeMap<u32, Listener>,
    /// Connections the program closed, reaped once they are done.
    closing: Vec<SocketHandle>,
    /// Ports bound, by protocol (true: TCP), and how many sockets hold each.
    ports: BTreeMap<(bool, u16), usize>,
    next_port: u16,
    /// Listeners that got a connection to accept, for epoll (take_listener_events).
    listener_events: Vec<u32>,
    /// `next_poll` as of the last pass, once asked (`next_poll_since_pass`).
    next_poll_memo: Option<Option<u64>>,
}

/// What the device under smoltcp keeps from one poll to the next.
struct Wire {
    /// Scratch for one received frame: `frame[..frame_len]`. The buffer keeps its full size
    /// between frames (cutting it to each frame and growing it back zeroed the difference,
    /// a frame's worth, for every frame received).
    frame: Vec<u8>,
    frame_len: usize,
    /// Frames sent to the stack's own addresses, to be received next.
    looped: VecDeque<Vec<u8>>,
    /// The interface's IPv4 and IPv6 addresses (loopback's included).
    local: Vec<IpAddress>,
    /// The machine has a network device (else only looped frames go anywhere).
    wired: bool,
    /// The device completes and checks TCP checksums (`offload.rs`); only when it does
    /// both.
    offload: bool,
    /// The TCP segmentation the device does (used with `offload`, over IPv4 only).
    segmentation: SegmentationOffload,
}

/// The largest frame smoltcp hands a device that cuts TCP segments: an IPv4 packet's
/// longest (its length field's limit) behind the Ethernet header, as Linux's 64 KiB GSO
/// limit. Fewer, larger frames: the per-frame work (the stack's pass, the ring, the
/// device's exit under TCG) is paid once per 44 segments of 1,460 bytes.
const SEGMENTATION_FRAME_MAX: usize = 14 + 65_535;

/// The device under smoltcp: the platform's network device. SYNs to the ports in `full`
/// (listeners whose backlog is full) are dropped, as Linux drops them: the client tries
/// again, rather than being refused.
struct Nic<'a> {
    platform: &'a mut dyn Platform,
    full: &'a [u16],
    wire: &'a mut Wire,
}

struct Received<'a>(&'a [u8]);
struct Transmit<'a> {
    platform: &'a mut dyn Platform,
    looped: &'a mut VecDeque<Vec<u8>>,
    local: &'a [IpAddress],
    offload: bool,
    /// The payload size of the segments a large TCP segment is to be cut into, if smoltcp
    /// built one (`set_meta`; only with the device's segmentation offload).
    segment_size: Option<u16>,
}

impl RxToken for Received<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for Transmit<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.platform.net_frame(len);
        let result = f(&mut frame);
        if destination(&frame).is_some_and(|address| self.local.contains(&address)) {
            // Under offload its TCP checksum is left out: a looped frame is not checked. A
            // large segment stays whole, as on Linux's loopback (its MTU is 64 KiB).
            self.looped.push_back(frame);
        } else {
            let checksum = if self.offload {
                crate::offload::prepare_partial(&mut frame)
            } else {
                None
            };
            let segmentation = match (checksum, self.segment_size) {
                (Some(_), Some(size)) => crate::offload::segmentation(&frame, size),
                _ => None,
            };
            if self.segment_size.is_some() && segmentation.is_none() {
                // smoltcp built a segment only the device could cut, and it cannot: dropped,
                // as a full ring drops one (TCP sends it again). Not expected: smoltcp is
                // told of segmentation only when the device does it.
                return result;
            }
            // A full ring drops the frame: TCP sends it again, as from a lossy link.
            self.platform.net_transmit(frame, checksum, segmentation);
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.segment_size = meta.segmentation_offload_size.map(|size| size.get());
    }
}

/// The IP address a frame is for: an IP packet's destination, or the address an ARP packet
/// asks about or answers for.
fn destination(frame: &[u8]) -> Option<IpAddress> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(ethernet.payload())
            .ok()
            .map(|packet| IpAddress::Ipv4(packet.dst_addr())),
        EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(ethernet.payload())
            .ok()
            .map(|packet| IpAddress::Ipv6(packet.dst_addr())),
        EthernetProtocol::Arp => ArpPacket::new_checked(ethernet.payload())
            .ok()
            .and_then(|packet| <[u8; 4]>::try_from(packet.target_protocol_addr()).ok())
            .map(|target| IpAddress::Ipv4(Ipv4Address::from(target))),
        _ => None,
    }
}

/// Whether `address` may only come from this machine (127.0.0.0/8, ::1): a frame from the
/// wire that claims it is dropped, as Linux drops martians.
fn is_loopback(address: IpAddress) -> bool {
    match address {
        IpAddress::Ipv4(v4) => v4.is_loopback(),
        IpAddress::Ipv6(v6) => v6.is_loopback(),
    }
}

impl Device for Nic<'_> {
    type RxToken<'a>
        = Received<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Transmit<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Received<'_>, Transmit<'_>)> {
        let wire = &mut *self.wire;
        if let Some(frame) = wire.looped.pop_front() {
            wire.frame = frame;
            wire.frame_len = wire.frame.len();
            if is_syn_to(&wire.frame, self.full) {
                // Dropped as one from the wire would be: the client sends it again.
                wire.frame_len = 0;
            }
        } else {
            loop {
                if wire.frame.len() < MTU + 14 {
                    wire.frame.resize(MTU + 14, 0);
                }
                let received = self.platform.net_receive(&mut wire.frame)?;
                wire.frame_len = received.len.min(wire.frame.len());
                let frame = &mut wire.frame[..wire.frame_len];
                let martian = destination(frame).is_some_and(is_loopback);
                // Under offload smoltcp checks no TCP checksum: a bad one is dropped here.
                let damaged =
                    wire.offload && !crate::offload::accept_received(frame, received.checksum);
                if !martian && !damaged && !is_syn_to(frame, self.full) {
                    break;
                }
            }
        }
        Some((
            Received(&wire.frame[..wire.frame_len]),
            Transmit {
                platform: &mut *self.platform,
                looped: &mut wire.looped,
                local: &wire.local,
                offload: wire.offload,
                segment_size: None,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Transmit<'_>> {
        // Without a device there is still loopback (frames elsewhere are dropped).
        if !self.wire.wired || self.platform.net_can_transmit() {
            Some(Transmit {
                platform: &mut *self.platform,
                looped: &mut self.wire.looped,
                local: &self.wire.local,
                offload: self.wire.offload,
                segment_size: None,
            })
        } else {
            None
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MTU + 14;
        if self.wire.offload {
            // The device sums what goes out; what comes in is checked by `receive` unless
            // the device vouched for it; looped frames are never checked (as Linux's
            // loopback). UDP stays with smoltcp (`offload.rs` says why).
            capabilities.checksum.tcp = Checksum::None;
            // smoltcp builds TCP segments up to this size, each with the segment size the
            // device is to cut it into (`set_meta`). IPv4 only: smoltcp 0.14's IPv6 path
            // drops a packet larger than the MTU and gives the device no metadata, so a
            // large IPv6 segment would be lost at every retransmission (the connection
            // stalls; `a_large_transfer_over_loopback_goes_through_beside_an_offloading_device`).
            if self.wire.segmentation.tcpv4 {
                capabilities.segmentation.tcpv4 =
                    core::num::NonZeroUsize::new(SEGMENTATION_FRAME_MAX);
            }
        }
        capabilities
    }
}

/// Whether `frame` is a TCP SYN (not an ACK) to one of `ports`.
fn is_syn_to(frame: &[u8], ports: &[u16]) -> bool {
    if ports.is_empty() {
        return false;
    }
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let segment = match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => match Ipv4Packet::new_checked(ethernet.payload()) {
            Ok(packet) if packet.next_header() == IpProtocol::Tcp => {
                TcpPacket::new_checked(packet.payload())
                    .ok()
                    .map(|tcp| (tcp.syn() && !tcp.ack(), tcp.dst_port()))
            }
            _ => None,
        },
        EthernetProtocol::Ipv6 => match Ipv6Packet::new_checked(ethernet.payload()) {
            Ok(packet) if packet.next_header() == IpProtocol::Tcp => {
                TcpPacket::new_checked(packet.payload())
                    .ok()
                    .map(|tcp| (tcp.syn() && !tcp.ack(), tcp.dst_port()))
            }
            _ => None,
        },
        _ => None,
    };
    matches!(segment, Some((true, port)) if ports.contains(&port))
}

fn instant(platform: &dyn Platform) -> Instant {
    Instant::from_micros((platform.now(MachineClock::Monotonic) / 1000) as i64)
}

impl Stack {
    /// The stack on the platform's network device, addressed by `config`, with loopback;
    /// without a device, loopback alone.
    pub fn new(platform: &mut dyn Platform, config: Option<NetConfig>) -> Stack {
        let device_mac = platform.net_mac();
        // Without a device: a locally administered address for loopback's frames.
        let mac = device_mac.unwrap_or([0x02, 0, 0, 0, 0, 1]);
        let mut seed = [0u8; 8];
        let _ = platform.fill_random(&mut seed);
        let mut interface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        interface_config.random_seed = u64::from_le_bytes(seed);
        let mut wire = Wire {
            frame: Vec::new(),
            frame_len: 0,
            looped: VecDeque::new(),
            local: Vec::new(),
            wired: device_mac.is_some(),
            offload: platform.net_checksum_offload()
                == ChecksumOffload {
                    transmit: true,
                    receive: true,
                },
            segmentation: platform.net_segmentation_offload(),
        };
        let now = instant(platform);
        let mut nic = Nic {
            platform,
            full: &[],
            wire: &mut wire,
        };
        let mut interface = Interface::new(interface_config, &mut nic, now);
        let config = config.filter(|_| device_mac.is_some());
        interface.update_ip_addrs(|addresses| {
            if let Some(config) = config {
                let _ = addresses.push(IpCidr::new(
                    IpAddress::Ipv4(config.address),
                    config.prefix_len,
                ));
                // The link-local IPv6 address from the MAC (EUI-64), as Linux configures.
                let link_local = Ipv6Address::new(
                    0xfe80,
                    0,
                    0,
                    0,
                    u16::from_be_bytes([mac[0] ^ 2, mac[1]]),
                    u16::from_be_bytes([mac[2], 0xff]),
                    u16::from_be_bytes([0xfe, mac[3]]),
                    u16::from_be_bytes([mac[4], mac[5]]),
                );
                let _ = addresses.push(IpCidr::new(IpAddress::Ipv6(link_local), 64));
            }
            let _ = addresses.push(IpCidr::new(
                IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)),
                8,
            ));
            let _ = addresses.push(IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128));
        });
        if let Some(gateway) = config.and_then(|config| config.gateway) {
            let _ = interface.routes_mut().add_default_ipv4_route(gateway);
        }
        wire.local = interface
            .ip_addrs()
            .iter()
            .map(|cidr| cidr.address())
            .collect();
        let seed_port = u16::from_le_bytes([seed[6], seed[7]]);
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start() + 1;
        Stack {
            interface,
            sockets: SocketSet::new(Vec::new()),
            wire,
            listeners: BTreeMap::new(),
            closing: Vec::new(),
            ports: BTreeMap::new(),
            next_port: EPHEMERAL_PORTS.start() + seed_port % span,
            listener_events: Vec::new(),
            next_poll_memo: None,
        }
    }

    /// Moves packets: takes what the device received (and what looped back), one frame at a
    /// time (a listener arms its next socket between frames), sends what the sockets have to
    /// send, again while frames loop back, and reaps closed connections.
    pub fn poll(&mut self, platform: &mut dyn Platform) {
        self.next_poll_memo = None;
        let now = instant(platform);
        // Each round can loop frames back (a SYN, its SYN-ACK, the ACK...): bounded, as a
        // program waits for the rest at its next call.
        for _ in 0..16 {
            loop {
                // A few listeners at most: a list (a set here was a tree built at every poll).
                let full: Vec<u16> = self
                    .listeners
                    .values()
                    .filter(|listener| listener.armed.is_none())
                    .map(|listener| listener.endpoint.port)
                    .collect();
                let mut nic = Nic {
                    platform: &mut *platform,
                    full: &full,
                    wire: &mut self.wire,
                };
                let result = self
                    .interface
                    .poll_ingress_single(now, &mut nic, &mut self.sockets);
                if result == smoltcp::iface::PollIngressSingleResult::None {
                    break;
                }
                self.rearm_listeners();
            }
            let mut nic = Nic {
                platform: &mut *platform,
                full: &[],
                wire: &mut self.wire,
            };
            while self.interface.poll_egress(now, &mut nic, &mut self.sockets)
                != smoltcp::iface::PollResult::None
            {}
            // The device is told of the burst (the platform may hold the notification for a
            // later burst: virtio_net::flush).
            platform.net_flush();
            if self.wire.looped.is_empty() {
                break;
            }
        }
        self.reap();
    }

    /// `next_poll`, worked out at most once between passes: a thread that waits for
    /// something else than the network asks at every wait (`net::serve_while_waiting`), and
    /// smoltcp looks at every socket to answer. A pass forgets it, and so does every socket
    /// call (`forget_next_poll`, from `Network::stack`).
    pub fn next_poll_since_pass(&mut self, platform: &dyn Platform) -> Option<u64> {
        if let Some(memo) = self.next_poll_memo {
            return memo;
        }
        let next = self.next_poll(platform);
        self.next_poll_memo = Some(next);
        next
    }

    /// A socket changed: `next_poll_since_pass` works it out again.
    pub fn forget_next_poll(&mut self) {
        self.next_poll_memo = None;
    }

    /// The monotonic time (ns) by which `poll` must run again for the stack's timers, if any.
    pub fn next_poll(&mut self, platform: &dyn Platform) -> Option<u64> {
        if !self.wire.looped.is_empty() {
            return Some(0);
        }
        let now = instant(platform);
        self.interface
            .poll_at(now, &self.sockets)
            .map(|at| (at.total_micros().max(0) as u64).saturating_mul(1000))
    }

    /// The listeners that got a connection to accept since the last call (epoll's ready
    /// list: no waker tells of them).
    pub fn take_listener_events(&mut self) -> Vec<u32> {
        core::mem::take(&mut self.listener_events)
    }

    /// Queues the connections that armed listening sockets took, and arms new ones.
    fn rearm_listeners(&mut self) {
        // Connections of the IP version their listener does not take, for another.
        let mut strays = Vec::new();
        for listener in self.listeners.values_mut() {
            if let Some(handle) = listener.armed {
                let socket = self.sockets.get::<tcp::Socket>(handle);
                if socket.state() != tcp::State::Listen {
                    let remote = socket.remote_endpoint().map(|endpoint| endpoint.addr);
                    if remote.is_some_and(|address| !listener.versions.take(address)) {
                        strays.push((handle, listener.endpoint.port));
                    } else {
                        listener.queue.push_back(handle);
                    }
                    listener.armed = None;
                }
            }
        }
        for (handle, port) in strays {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let local = socket.local_endpoint().map(|endpoint| endpoint.addr);
            let remote = socket.remote_endpoint().map(|endpoint| endpoint.addr);
            let home = self.listeners.values_mut().find(|listener| {
                listener.endpoint.port == port
                    && remote.is_some_and(|address| listener.versions.take(address))
                    && (listener.endpoint.addr.is_none() || listener.endpoint.addr == local)
            });
            match home {
                Some(listener) => listener.queue.push_back(handle),
                None => {
                    // Nobody listens for it: reset, as Linux answers a SYN to a port
                    // without a listener of its version.
                    socket.abort();
                    self.closing.push(handle);
                }
            }
        }
        for (&id, listener) in self.listeners.iter_mut() {
            listener.queue.retain(|&handle| {
                let gone = self.sockets.get::<tcp::Socket>(handle).state() == tcp::State::Closed;
                if gone {
                    self.sockets.remove(handle);
                }
                !gone
            });
            // The backlog bounds the connections waiting for accept; handshakes in progress
            // have their own queue of that size, whose oldest entry goes when a SYN comes
            // past it (a flood of SYNs from addresses that never answer must not shut
            // clients out), as Linux's SYN queue drops its oldest requests.
            let sockets = &self.sockets;
            let state = |handle: &SocketHandle| sockets.get::<tcp::Socket>(*handle).state();
            let waiting = listener
                .queue
                .iter()
                .filter(|handle| established(state(handle)))
                .count();
            let half_open = listener.queue.len() - waiting;
            if half_open > listener.backlog {
                let oldest = listener
                    .queue
                    .iter()
                    .position(|handle| state(handle) == tcp::State::SynReceived);
                if let Some(handle) = oldest.and_then(|position| listener.queue.remove(position)) {
                    self.sockets.get_mut::<tcp::Socket>(handle).abort();
                    self.closing.push(handle);
                }
            }
            if listener.armed.is_none() && waiting < listener.backlog {
                listener.armed = arm(&mut self.sockets, listener);
            }
            let generation = listener.accepted.wrapping_add(waiting as u32);
            if generation != listener.noted_generation {
                listener.noted_generation = generation;
                self.listener_events.push(id);
            }
        }
    }

    /// Removes the closed connections that are done (CLOSED or TIME_WAIT).
    fn reap(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|&handle| {
            let state = sockets.get::<tcp::Socket>(handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(handle);
            }
            !done
        });
    }

    /// Whether every connection the program closed has had all it sent, and its FIN,
    /// acknowledged by the peer.
    pub fn all_delivered(&self) -> bool {
        self.closing.iter().all(|&handle| {
            matches!(
                self.sockets.get::<tcp::Socket>(handle).state(),
                tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed
            )
        })
    }

    /// A port for a socket that bound none: the next free ephemeral one.
    pub fn ephemeral_port(&mut self, tcp: bool) -> Option<u16> {
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start() + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL_PORTS.end() {
                *EPHEMERAL_PORTS.start()
            } else {
                port + 1
            };
            if !self.ports.contains_key(&(tcp, port)) {
                return Some(port);
            }
        }
        None
    }

    /// How many sockets hold `port`.
    pub fn port_holders(&self, tcp: bool, port: u16) -> usize {
        self.ports.get(&(tcp, port)).copied().unwrap_or(0)
    }

    pub fn hold_port(&mut self, tcp: bool, port: u16) {
        *self.ports.entry((tcp, port)).or_insert(0) += 1;
    }

    pub fn release_port(&mut self, tcp: bool, port: u16) {
        if let Some(count) = self.ports.get_mut(&(tcp, port)) {
            *count -= 1;
            if *count == 0 {
                self.ports.remove(&(tcp, port));
            }
        }
    }

    /// Starts listening as socket `id` on `endpoint`.
    pub fn listen(
        &mut self,
        id: u32,
        endpoint: IpListenEndpoint,
        versions: Versions,
        backlog: usize,
        buffer_sizes: (usize, usize),
    ) {
        if let Some(listener) = self.listeners.get_mut(&id) {
            // listen(2) again changes the backlog.
            listener.backlog = backlog.max(1);
            return;
        }
        let mut listener = Listener {
            endpoint,
            versions,
            backlog: backlog.max(1),
            armed: None,
            queue: VecDeque::new(),
            buffer_sizes,
            accepted: 0,
            noted_generation: 0,
        };
        listener.armed = arm(&mut self.sockets, &listener);
        self.listeners.insert(id, listener);
    }

    /// Whether listener `id` has an established connection to accept.
    pub fn acceptable(&self, id: u32) -> bool {
        self.listeners.get(&id).is_some_and(|listener| {
            listener
                .queue
                .iter()
                .any(|&handle| established(self.sockets.get::<tcp::Socket>(handle).state()))
        })
    }

    /// A count that grows with every connection listener `id` gets (epoll's EPOLLET).
    pub fn listener_generation(&self, id: u32) -> u32 {
        self.listeners.get(&id).map_or(0, |listener| {
            let queued = listener
                .queue
                .iter()
                .filter(|&&handle| established(self.sockets.get::<tcp::Socket>(handle).state()))
                .count() as u32;
            listener.accepted.wrapping_add(queued)
        })
    }

    /// Takes listener `id`'s oldest established connection.
    pub fn accept(&mut self, id: u32) -> Option<SocketHandle> {
        let listener = self.listeners.get_mut(&id)?;
        let position = listener
            .queue
            .iter()
            .position(|&handle| established(self.sockets.get::<tcp::Socket>(handle).state()))?;
        let handle = listener.queue.remove(position)?;
        listener.accepted = listener.accepted.wrapping_add(1);
        if listener.armed.is_none() {
            listener.armed = arm(&mut self.sockets, listener);
        }
        self.sockets
            .get_mut::<tcp::Socket>(handle)
            .set_timeout(None);
        Some(handle)
    }

    /// Stops listener `id`: the connections it had not handed over are reset.
    pub fn close_listener(&mut self, id: u32) {
        if let Some(listener) = self.listeners.remove(&id) {
            for handle in listener.armed.into_iter().chain(listener.queue) {
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
                self.closing.push(handle);
            }
        }
    }

    /// A new TCP connection from `local` to `remote` (SYN sent at the next poll).
    pub fn connect(
        &mut self,
        remote: IpEndpoint,
        local: IpListenEndpoint,
        buffer_sizes: (usize, usize),
    ) -> Result<SocketHandle, tcp::ConnectError> {
        let mut socket = tcp_socket(buffer_sizes);
        socket.connect(self.interface.context(), remote, local)?;
        Ok(self.sockets.add(socket))
    }

    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    pub fn tcp_ref(&self, handle: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(handle)
    }

    /// Closes a connection the program is done with: FIN after what is queued, or a reset
    /// (`abort`, as Linux does when unread data is thrown away or SO_LINGER is 0).
    pub fn close_connection(&mut self, handle: SocketHandle, abort: bool) {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if abort || socket.recv_queue() > 0 {
            socket.abort();
        } else {
            socket.close();
            socket.set_timeout(Some(FIN_TIMEOUT));
        }
        self.closing.push(handle);
    }

    /// A UDP socket bound to `endpoint`.
    pub fn bind_udp(&mut self, endpoint: IpListenEndpoint) -> Result<SocketHandle, udp::BindError> {
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_DATAGRAMS],
                vec![0; UDP_BUFFER],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(endpoint)?;
        Ok(self.sockets.add(socket))
    }

    pub fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(handle)
    }

    pub fn close_udp(&mut self, handle: SocketHandle) {
        self.sockets.remove(handle);
    }

    /// Whether `address` is one of the interface's own.
    pub fn is_local(&self, address: IpAddress) -> bool {
        self.interface.has_ip_addr(address)
    }

    /// How many smoltcp sockets there are (the set each packet is matched against).
    pub fn socket_count(&self) -> usize {
        self.sockets.iter().count()
    }
}

fn tcp_socket((receive, send): (usize, usize)) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; receive]),
        tcp::SocketBuffer::new(vec![0; send]),
    );
    // Linux acknowledges at once when the program is waiting on data (quick ack); a 10 ms
    // delay would cost every request/response exchange that much.
    socket.set_ack_delay(None);
    socket
}

/// A socket in LISTEN for `listener`, added to the set (None if smoltcp refuses the endpoint).
fn arm(sockets: &mut SocketSet<'static>, listener: &Listener) -> Option<SocketHandle> {
    let mut socket = tcp_socket(listener.buffer_sizes);
    socket.listen(listener.endpoint).ok()?;
    socket.set_timeout(Some(HANDSHAKE_TIMEOUT));
    Some(sockets.add(socket))
}

/// Whether a queued connection can be accepted: the handshake is done (data or a FIN may
/// have come after it).
fn established(state: tcp::State) -> bool {
    !matches!(
        state,
        tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent | tcp::State::Closed
    )
}
