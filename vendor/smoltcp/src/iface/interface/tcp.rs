use super::*;

use crate::socket::tcp::Socket;

impl InterfaceInner {
    pub(crate) fn process_tcp<'frame>(
        &mut self,
        sockets: &mut SocketSet,
        handled_by_raw_socket: bool,
        ip_repr: IpRepr,
        ip_payload: &'frame [u8],
    ) -> Option<Packet<'frame>> {
        let (src_addr, dst_addr) = (ip_repr.src_addr(), ip_repr.dst_addr());

        // Per RFC 1122 §3.2.1.3, the unspecified address must never appear as a source
        // or destination in any IP datagram. Drop such TCP segments early to avoid
        // creating sockets with unspecified peers (which would later panic on egress).
        // This is not done at the iface level because it might be useful with
        // UDP or raw sockets, but it's definitely not useful for TCP.
        if src_addr.is_unspecified() || dst_addr.is_unspecified() {
            return None;
        }

        let tcp_packet = check!(TcpPacket::new_checked(ip_payload));
        let tcp_repr = check!(TcpRepr::parse(
            &tcp_packet,
            &src_addr,
            &dst_addr,
            &self.caps.checksum
        ));

        // Pith: by index, so the socket the packet is for can be marked (see
        // `socket_set::Item`): a packet may give it something to send. A packet that carries
        // an ACK is for the one connection with its four addresses and ports (no listener
        // takes it): the set remembers where the last such packet went (`SocketSet::tcp_hint`)
        // and only if that socket does not take it are they all asked, in order. With fifty
        // connections, asking them all was a twentieth of the instructions a request took.
        let accepts = |inner: &mut InterfaceInner, sockets: &SocketSet, index: usize| {
            sockets
                .item(index)
                .and_then(|item| Socket::downcast(&item.socket))
                .is_some_and(|tcp_socket: &Socket<'_>| {
                    tcp_socket.accepts(inner, &ip_repr, &tcp_repr)
                })
        };
        let hint = tcp_repr
            .ack_number
            .map(|_| tcp_hint_slot(&ip_repr, &tcp_repr));
        let hinted = hint
            .and_then(|slot| sockets.tcp_hint(slot))
            .filter(|&index| accepts(self, sockets, index));
        let found =
            hinted.or_else(|| (0..sockets.slots()).find(|&index| accepts(self, sockets, index)));
        if let (Some(slot), Some(index)) = (hint, found) {
            sockets.set_tcp_hint(slot, index);
        }
        if let Some(index) = found {
            sockets.mark_pending(index);
            if let Some(tcp_socket) = sockets
                .item_mut(index)
                .and_then(|item| Socket::downcast_mut(&mut item.socket))
            {
                return tcp_socket
                    .process(self, &ip_repr, &tcp_repr)
                    .map(|(ip, tcp)| Packet::new(ip, IpPayload::Tcp(tcp)));
            }
        }

        if tcp_repr.control == TcpControl::Rst
            || ip_repr.dst_addr().is_unspecified()
            || ip_repr.src_addr().is_unspecified()
            || handled_by_raw_socket
        {
            // Never reply to a TCP RST packet with another TCP RST packet.
            // Never send a TCP RST packet with unspecified addresses.
            // Never send a TCP RST when packet has been handled by raw socket.
            None
        } else {
            // The packet wasn't handled by a socket, send a TCP RST packet.
            let (ip, tcp) = tcp::Socket::rst_reply(&ip_repr, &tcp_repr);
            Some(Packet::new(ip, IpPayload::Tcp(tcp)))
        }
    }
}

/// Pith: where a TCP packet's connection is remembered in `SocketSet::tcp_hint`: a hash of its
/// source address and both ports (any two connections may share a slot; the socket found there
/// is asked whether it takes the packet).
fn tcp_hint_slot(ip_repr: &IpRepr, tcp_repr: &TcpRepr) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    let mut mix = |byte: u8| hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    match ip_repr.src_addr() {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(address) => address.octets().into_iter().for_each(&mut mix),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(address) => address.octets().into_iter().for_each(&mut mix),
    }
    tcp_repr
        .src_port
        .to_be_bytes()
        .into_iter()
        .for_each(&mut mix);
    tcp_repr
        .dst_port
        .to_be_bytes()
        .into_iter()
        .for_each(&mut mix);
    hash as usize
}
