//! Pith: the egress pass visits only the sockets listed as changed (`SocketSet::pending`),
//! and every socket whose timer is due.

use super::*;
use crate::iface::SocketHandle;
use crate::phy::Loopback;
use crate::socket::tcp;
use crate::time::Duration;
use crate::wire::{IpAddress, IpCidr, Ipv4Address};

const ADDRESS: Ipv4Address = Ipv4Address::new(127, 0, 0, 1);

fn loopback() -> (Interface, Loopback) {
    let mut device = Loopback::new(Medium::Ip);
    let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
    iface.update_ip_addrs(|addresses| {
        addresses
            .push(IpCidr::new(IpAddress::Ipv4(ADDRESS), 8))
            .unwrap();
    });
    (iface, device)
}

/// A TCP socket that sends and acknowledges at once (no Nagle, no delayed ACK): the loopback's
/// clock does not move unless a test moves it.
fn tcp_socket<'a>() -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

/// Polls until nothing moves; whether anything was sent.
fn settle(
    iface: &mut Interface,
    device: &mut Loopback,
    sockets: &mut SocketSet,
    now: Instant,
) -> bool {
    let mut sent = false;
    for _ in 0..64 {
        while iface.poll_ingress_single(now, device, sockets) != PollIngressSingleResult::None {}
        if iface.poll_egress(now, device, sockets) == PollResult::None && device.queue.is_empty() {
            return sent;
        }
        sent = true;
    }
    panic!("the loopback did not settle");
}

/// Forty idle listeners, and a connection between a client and a server over loopback.
fn connected<'a>(
    iface: &mut Interface,
    device: &mut Loopback,
    sockets: &mut SocketSet<'a>,
) -> (SocketHandle, SocketHandle) {
    for port in 1000..1040 {
        let mut idle = tcp_socket();
        idle.listen(port).unwrap();
        sockets.add(idle);
    }
    let mut server = tcp_socket();
    server.listen(80).unwrap();
    let server = sockets.add(server);
    let client = sockets.add(tcp_socket());
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (ADDRESS, 80), 49152)
        .unwrap();
    settle(iface, device, sockets, Instant::ZERO);
    assert_eq!(
        sockets.get::<tcp::Socket>(client).state(),
        tcp::State::Established
    );
    assert_eq!(
        sockets.get::<tcp::Socket>(server).state(),
        tcp::State::Established
    );
    (client, server)
}

#[test]
fn a_quiet_set_lists_nothing_and_a_changed_socket_alone_is_listed() {
    let (mut iface, mut device) = loopback();
    let mut sockets = SocketSet::new(vec![]);
    let (client, server) = connected(&mut iface, &mut device, &mut sockets);
    assert!(!sockets.full_pass);
    assert!(sockets.pending().is_empty());

    sockets
        .get_mut::<tcp::Socket>(client)
        .send_slice(b"hello")
        .unwrap();
    sockets.get_mut::<tcp::Socket>(client);
    let listed: Vec<u32> = sockets.pending().to_vec();
    assert_eq!(listed.len(), 1, "listed once");
    assert_eq!(
        sockets
            .item(listed[0] as usize)
            .map(|item| item.meta.handle),
        Some(client)
    );
    settle(&mut iface, &mut device, &mut sockets, Instant::ZERO);
    let mut received = [0; 8];
    let length = sockets
        .get_mut::<tcp::Socket>(server)
        .recv_slice(&mut received)
        .unwrap();
    assert_eq!(&received[..length], b"hello");
}

#[test]
fn a_timer_that_comes_due_is_served_without_the_socket_being_touched() {
    let (mut iface, mut device) = loopback();
    let mut sockets = SocketSet::new(vec![]);
    let (client, _server) = connected(&mut iface, &mut device, &mut sockets);
    let socket = sockets.get_mut::<tcp::Socket>(client);
    socket.set_keep_alive(Some(Duration::from_secs(1)));
    settle(&mut iface, &mut device, &mut sockets, Instant::ZERO);
    assert!(sockets.pending().is_empty());

    let at = iface
        .poll_at(Instant::ZERO, &sockets)
        .expect("the keep-alive timer");
    assert!(at > Instant::ZERO && at <= Instant::from_secs(1), "{at}");
    assert!(
        !settle(
            &mut iface,
            &mut device,
            &mut sockets,
            Instant::from_millis(500)
        ),
        "nothing is due yet"
    );
    assert!(
        settle(
            &mut iface,
            &mut device,
            &mut sockets,
            Instant::from_millis(1500)
        ),
        "the keep-alive probe goes out"
    );
}

#[test]
fn more_changed_sockets_than_the_list_holds_make_a_full_pass() {
    let (mut iface, mut device) = loopback();
    let mut sockets = SocketSet::new(vec![]);
    let (_client, _server) = connected(&mut iface, &mut device, &mut sockets);
    let handles: Vec<SocketHandle> = sockets.iter().map(|(handle, _)| handle).collect();
    for &handle in &handles {
        sockets.get_mut::<tcp::Socket>(handle);
    }
    assert!(sockets.full_pass);
    settle(&mut iface, &mut device, &mut sockets, Instant::ZERO);
    assert!(!sockets.full_pass);
    assert!(sockets.pending().is_empty());

    sockets.iter_mut().count();
    assert!(sockets.full_pass, "iter_mut may change any socket");
}

/// A connection from the client port `port` to the server, over loopback.
fn connect_pair(
    iface: &mut Interface,
    device: &mut Loopback,
    sockets: &mut SocketSet,
    port: u16,
) -> (SocketHandle, SocketHandle) {
    let mut server = tcp_socket();
    server.listen(80).unwrap();
    let server = sockets.add(server);
    let client = sockets.add(tcp_socket());
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (ADDRESS, 80), port)
        .unwrap();
    settle(iface, device, sockets, Instant::ZERO);
    assert_eq!(
        sockets.get::<tcp::Socket>(server).state(),
        tcp::State::Established
    );
    (client, server)
}

/// Each client sends its own port number; each server must get its client's.
fn exchange(
    iface: &mut Interface,
    device: &mut Loopback,
    sockets: &mut SocketSet,
    pairs: &[(u16, SocketHandle, SocketHandle)],
) {
    for &(port, client, server) in pairs {
        sockets
            .get_mut::<tcp::Socket>(client)
            .send_slice(&port.to_be_bytes())
            .unwrap();
    }
    settle(iface, device, sockets, Instant::ZERO);
    for &(port, _, server) in pairs {
        let mut received = [0; 2];
        let socket = sockets.get_mut::<tcp::Socket>(server);
        assert_eq!(socket.recv_slice(&mut received), Ok(2), "port {port}");
        assert_eq!(u16::from_be_bytes(received), port);
    }
}

#[test]
fn packets_of_many_connections_reach_their_own_sockets_as_sockets_come_and_go() {
    let (mut iface, mut device) = loopback();
    let mut sockets = SocketSet::new(vec![]);
    let mut pairs: Vec<(u16, SocketHandle, SocketHandle)> = (0..40)
        .map(|n| {
            let port = 40000 + n;
            let (client, server) = connect_pair(&mut iface, &mut device, &mut sockets, port);
            (port, client, server)
        })
        .collect();
    exchange(&mut iface, &mut device, &mut sockets, &pairs);
    // Half go; new connections take their slots (where the old ones' packets were
    // remembered), from other ports.
    for (_, client, server) in pairs.drain(..20) {
        sockets.get_mut::<tcp::Socket>(client).abort();
        settle(&mut iface, &mut device, &mut sockets, Instant::ZERO);
        sockets.remove(client);
        sockets.remove(server);
    }
    for n in 0..20 {
        let port = 50000 + n;
        let (client, server) = connect_pair(&mut iface, &mut device, &mut sockets, port);
        pairs.push((port, client, server));
    }
    exchange(&mut iface, &mut device, &mut sockets, &pairs);
    exchange(&mut iface, &mut device, &mut sockets, &pairs);
}

/// A loopback with room for only so many frames until it is given more, as a device whose
/// transmit ring is full.
struct Cramped {
    loopback: Loopback,
    room: usize,
}

impl Device for Cramped {
    type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
    type TxToken<'a> = <Loopback as Device>::TxToken<'a>;

    fn capabilities(&self) -> crate::phy::DeviceCapabilities {
        self.loopback.capabilities()
    }

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.loopback.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.room = self.room.checked_sub(1)?;
        self.loopback.transmit(now)
    }
}

#[test]
fn a_full_device_leaves_every_socket_it_did_not_get_to_listed() {
    let (mut iface, mut loopback) = loopback();
    let mut sockets = SocketSet::new(vec![]);
    let pairs: Vec<(u16, SocketHandle, SocketHandle)> = (0..3)
        .map(|n| {
            let port = 40000 + n;
            let (client, server) = connect_pair(&mut iface, &mut loopback, &mut sockets, port);
            (port, client, server)
        })
        .collect();
    for &(port, client, _) in &pairs {
        sockets
            .get_mut::<tcp::Socket>(client)
            .send_slice(&port.to_be_bytes())
            .unwrap();
    }
    let mut device = Cramped { loopback, room: 1 };
    // One frame goes; the device is full for the second socket, and the third is not reached.
    iface.poll_egress(Instant::ZERO, &mut device, &mut sockets);
    assert_eq!(device.loopback.queue.len(), 1);
    assert!(!sockets.full_pass);
    assert_eq!(
        sockets.pending().len(),
        2,
        "the two that did not send stay listed"
    );
    // Room again: the next passes send the rest, and every server gets its client's bytes.
    device.room = usize::MAX;
    for _ in 0..64 {
        while iface.poll_ingress_single(Instant::ZERO, &mut device, &mut sockets)
            != PollIngressSingleResult::None
        {}
        if iface.poll_egress(Instant::ZERO, &mut device, &mut sockets) == PollResult::None
            && device.loopback.queue.is_empty()
        {
            break;
        }
    }
    for &(port, _, server) in &pairs {
        let mut received = [0; 2];
        let socket = sockets.get_mut::<tcp::Socket>(server);
        assert_eq!(socket.recv_slice(&mut received), Ok(2), "port {port}");
        assert_eq!(u16::from_be_bytes(received), port);
    }
}
