//! Checksum offload: what the stack does around a network device that completes the TCP
//! checksums of the frames it sends and vouches for those of frames it receives (virtio-net's
//! CSUM and GUEST_CSUM, which QEMU offers on a tap). Under it, smoltcp computes and checks no
//! TCP checksum (`inet.rs` sets its capabilities): a frame for the device gets the
//! pseudo-header's sum, which the device completes over the segment, as Linux's
//! CHECKSUM_PARTIAL; a received frame the device does not vouch for is checked here.
//!
//! UDP keeps its checksums in software: smoltcp fragments large datagrams after computing
//! theirs, and a fragment cannot be summed alone. A received UDP frame whose checksum the
//! host left partial gets it completed here, so that smoltcp's check passes.

use crate::platform::{FrameChecksum, PartialChecksum, TcpSegmentation};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    UdpPacket,
};

/// An Ethernet header's length.
const ETHERNET_HEADER: usize = 14;
/// The TCP checksum field's offset in its header.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// Where a frame's transport segment is.
#[derive(Debug, PartialEq, Eq)]
struct Segment {
    protocol: IpProtocol,
    source: IpAddress,
    destination: IpAddress,
    /// The segment's offset in the frame.
    start: usize,
    /// Where it ends, as the IP header says (a short frame may be padded after it).
    end: usize,
    /// Part of a fragmented datagram: its checksum covers bytes this frame lacks.
    fragment: bool,
}

/// Finds the transport segment of an IPv4 or IPv6 frame (through IPv6's extension headers).
fn segment(frame: &[u8]) -> Option<Segment> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => {
            let packet = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
            Some(Segment {
                protocol: packet.next_header(),
                source: IpAddress::Ipv4(packet.src_addr()),
                destination: IpAddress::Ipv4(packet.dst_addr()),
                start: ETHERNET_HEADER + usize::from(packet.header_len()),
                end: ETHERNET_HEADER + usize::from(packet.total_len()),
                fragment: packet.more_frags() || packet.frag_offset() != 0,
            })
        }
        EthernetProtocol::Ipv6 => {
            let packet = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
            let headers = ethernet.payload();
            let mut protocol = packet.next_header();
            let mut offset = 40;
            let mut fragment = false;
            // Hop-by-hop, routing, fragment and destination options headers come before the
            // segment: each says what follows and (but the fragment header) its length in
            // 8-byte units past the first 8.
            while matches!(
                protocol,
                IpProtocol::HopByHop
                    | IpProtocol::Ipv6Route
                    | IpProtocol::Ipv6Frag
                    | IpProtocol::Ipv6Opts
            ) {
                let header = headers.get(offset..offset + 8)?;
                let length = if protocol == IpProtocol::Ipv6Frag {
                    fragment = true;
                    8
                } else {
                    (usize::from(header[1]) + 1) * 8
                };
                protocol = IpProtocol::from(header[0]);
                offset += length;
            }
            Some(Segment {
                protocol,
                source: IpAddress::Ipv6(packet.src_addr()),
                destination: IpAddress::Ipv6(packet.dst_addr()),
                start: ETHERNET_HEADER + offset,
                end: ETHERNET_HEADER + 40 + usize::from(packet.payload_len()),
                fragment,
            })
        }
        _ => None,
    }
}

/// The ones' complement sum of the pseudo-header (RFC 793 for IPv4, RFC 8200 for IPv6),
/// folded and not inverted: what a partial checksum's field holds.
fn pseudo_header_sum(
    source: IpAddress,
    destination: IpAddress,
    protocol: IpProtocol,
    length: usize,
) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    };
    match (source, destination) {
        (IpAddress::Ipv4(source), IpAddress::Ipv4(destination)) => {
            add(&source.octets());
            add(&destination.octets());
        }
        (IpAddress::Ipv6(source), IpAddress::Ipv6(destination)) => {
            add(&source.octets());
            add(&destination.octets());
        }
        _ => {}
    }
    add(&(length as u32).to_be_bytes());
    add(&[0, u8::from(protocol)]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Readies a frame smoltcp built without a TCP checksum for a device that completes it: the
/// field gets the pseudo-header's sum, and the device is told where the segment starts.
/// None for anything else (smoltcp summed it).
pub fn prepare_partial(frame: &mut [u8]) -> Option<PartialChecksum> {
    let segment = segment(frame)?;
    if segment.protocol != IpProtocol::Tcp || segment.fragment {
        return None;
    }
    // The device sums to the frame's end: smoltcp pads nothing after the segment.
    if segment.end != frame.len() {
        return None;
    }
    let length = segment.end.checked_sub(segment.start)?;
    let field = segment.start + usize::from(TCP_CHECKSUM_OFFSET);
    if length < 20 {
        return None;
    }
    let sum = pseudo_header_sum(
        segment.source,
        segment.destination,
        segment.protocol,
        length,
    );
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Some(PartialChecksum {
        start: u16::try_from(segment.start).ok()?,
        offset: TCP_CHECKSUM_OFFSET,
    })
}

/// The segmentation a device is to do on a frame whose TCP segment smoltcp built larger than
/// the link takes (it said so in the frame's metadata, with `segment_size`): where the
/// headers end (Ethernet, IP, TCP with options: the device copies them in front of each
/// segment) and the IP version. The frame must have been readied by `prepare_partial`
/// first: the pseudo-header's sum over the whole segment's length is what a device that
/// cuts it adjusts for each piece, as Linux's tcp_gso_segment does. None for a frame that
/// is not one TCP segment.
pub fn segmentation(frame: &[u8], segment_size: u16) -> Option<TcpSegmentation> {
    let segment = segment(frame)?;
    if segment.protocol != IpProtocol::Tcp || segment.fragment || segment_size == 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(frame.get(segment.start..segment.end)?).ok()?;
    let headers_len = segment.start + usize::from(tcp.header_len());
    Some(TcpSegmentation {
        segment_size,
        headers_len: u16::try_from(headers_len).ok()?,
        ipv6: matches!(segment.source, IpAddress::Ipv6(_)),
    })
}

/// Whether a frame from the device may go to smoltcp (which checks no TCP checksum under
/// offload): a TCP segment the device did not vouch for must sum right here; one that is a
/// fragment cannot be summed alone and is dropped. A UDP datagram whose checksum the
/// sender left partial gets it completed.
pub fn accept_received(frame: &mut [u8], checksum: FrameChecksum) -> bool {
    let Some(segment) = segment(frame) else {
        return true;
    };
    let Some(bytes) = frame.get_mut(segment.start..segment.end) else {
        return true;
    };
    match (segment.protocol, checksum) {
        (IpProtocol::Tcp, FrameChecksum::Unchecked) => {
            !segment.fragment
                && TcpPacket::new_checked(&*bytes)
                    .is_ok_and(|tcp| tcp.verify_checksum(&segment.source, &segment.destination))
        }
        (IpProtocol::Udp, FrameChecksum::Trusted) if !segment.fragment => {
            if let Ok(mut udp) = UdpPacket::new_checked(bytes) {
                udp.fill_checksum(&segment.source, &segment.destination);
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, Ipv6Address, Ipv6Repr, TcpControl,
        TcpRepr, TcpSeqNumber, UdpRepr,
    };

    const V4_SOURCE: Ipv4Address = Ipv4Address::new(10, 0, 100, 2);
    const V4_DESTINATION: Ipv4Address = Ipv4Address::new(10, 0, 100, 1);

    fn tcp_repr(payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 8080,
            dst_port: 40000,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(7),
            ack_number: Some(TcpSeqNumber(9)),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        }
    }

    fn ethernet(ethertype: EthernetProtocol, frame: &mut [u8]) {
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype,
        }
        .emit(&mut EthernetFrame::new_unchecked(frame));
    }

    /// An IPv4 TCP frame; its checksum summed when `checksums` says.
    fn tcp_v4_frame(payload: &[u8], checksums: &ChecksumCapabilities) -> Vec<u8> {
        let tcp = tcp_repr(payload);
        let ip = Ipv4Repr {
            src_addr: V4_SOURCE,
            dst_addr: V4_DESTINATION,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut frame = vec![0; 14 + ip.buffer_len() + tcp.buffer_len()];
        ethernet(EthernetProtocol::Ipv4, &mut frame);
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut frame[14..34]),
            &ChecksumCapabilities::default(),
        );
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[34..]),
            &V4_SOURCE.into(),
            &V4_DESTINATION.into(),
            checksums,
        );
        frame
    }

    fn tcp_v6_frame(payload: &[u8], checksums: &ChecksumCapabilities) -> Vec<u8> {
        let (source, destination) = (
            Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
            Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        );
        let tcp = tcp_repr(payload);
        let ip = Ipv6Repr {
            src_addr: source,
            dst_addr: destination,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut frame = vec![0; 14 + ip.buffer_len() + tcp.buffer_len()];
        ethernet(EthernetProtocol::Ipv6, &mut frame);
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut frame[14..54]));
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[54..]),
            &source.into(),
            &destination.into(),
            checksums,
        );
        frame
    }

    /// An IPv4 UDP frame from port 53 to 5353, its checksum summed.
    fn udp_v4_frame(payload: &[u8]) -> Vec<u8> {
        let udp = UdpRepr {
            src_port: 53,
            dst_port: 5353,
        };
        let ip = Ipv4Repr {
            src_addr: V4_SOURCE,
            dst_addr: V4_DESTINATION,
            next_header: IpProtocol::Udp,
            payload_len: 8 + payload.len(),
            hop_limit: 64,
        };
        let mut frame = vec![0; 14 + 20 + 8 + payload.len()];
        ethernet(EthernetProtocol::Ipv4, &mut frame);
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut frame[14..34]),
            &ChecksumCapabilities::default(),
        );
        udp.emit(
            &mut UdpPacket::new_unchecked(&mut frame[34..]),
            &V4_SOURCE.into(),
            &V4_DESTINATION.into(),
            payload.len(),
            |room| room.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        frame
    }

    fn no_checksums() -> ChecksumCapabilities {
        ChecksumCapabilities::ignored()
    }

    /// What the device does with a partial checksum (virtio 1.2, 5.1.6.2).
    fn complete(frame: &mut [u8], partial: PartialChecksum) {
        let start = usize::from(partial.start);
        let mut sum: u64 = 0;
        for pair in frame[start..].chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let field = start + usize::from(partial.offset);
        frame[field..field + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    fn tcp_sums_right(frame: &[u8]) -> bool {
        let segment = segment(frame).unwrap();
        TcpPacket::new_checked(&frame[segment.start..segment.end])
            .unwrap()
            .verify_checksum(&segment.source, &segment.destination)
    }

    /// What a device that cuts TCP segments does (Linux's tcp_gso_segment behind a tap):
    /// each piece gets a copy of the headers with its IP length (and IPv4 identification
    /// and header checksum), its sequence number, PSH and FIN only on the last; the
    /// checksum field's pseudo-header sum moves from the whole segment's length to the
    /// piece's, and the device completes it as a partial checksum.
    fn cut(frame: &[u8], partial: PartialChecksum, gso: TcpSegmentation) -> Vec<Vec<u8>> {
        let headers = usize::from(gso.headers_len);
        let start = usize::from(partial.start);
        let field = start + usize::from(partial.offset);
        let whole_len = frame.len() - start;
        let pseudo = u16::from_be_bytes([frame[field], frame[field + 1]]);
        let seq = u32::from_be_bytes(frame[start + 4..start + 8].try_into().unwrap());
        let payload = &frame[headers..];
        let pieces: Vec<&[u8]> = payload.chunks(usize::from(gso.segment_size)).collect();
        let mut frames = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            let mut out = frame[..headers].to_vec();
            out.extend_from_slice(piece);
            let piece_len = out.len() - start;
            if gso.ipv6 {
                let payload_len = (out.len() - 14 - 40) as u16;
                out[18..20].copy_from_slice(&payload_len.to_be_bytes());
            } else {
                let total = (out.len() - 14) as u16;
                out[16..18].copy_from_slice(&total.to_be_bytes());
                let id = u16::from_be_bytes([out[18], out[19]]).wrapping_add(index as u16);
                out[18..20].copy_from_slice(&id.to_be_bytes());
                Ipv4Packet::new_unchecked(&mut out[14..start]).fill_checksum();
            }
            let piece_seq = seq.wrapping_add((index * usize::from(gso.segment_size)) as u32);
            out[start + 4..start + 8].copy_from_slice(&piece_seq.to_be_bytes());
            if index + 1 < pieces.len() {
                out[start + 13] &= !0x09; // PSH and FIN
            }
            // The ones' complement sum with the whole length taken out, the piece's put in.
            let mut sum = u32::from(pseudo) + u32::from(!(whole_len as u16)) + piece_len as u32;
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            out[field..field + 2].copy_from_slice(&(sum as u16).to_be_bytes());
            complete(&mut out, partial);
            frames.push(out);
        }
        frames
    }

    /// A TCP frame with the timestamp option (a 32-byte TCP header), as smoltcp sends them.
    fn tcp_frame_with_timestamps(payload: &[u8], ipv6: bool) -> Vec<u8> {
        let mut tcp = tcp_repr(payload);
        tcp.timestamp = Some(smoltcp::wire::TcpTimestampRepr::new(1, 2));
        let (source, destination): (IpAddress, IpAddress) = if ipv6 {
            (
                Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).into(),
                Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into(),
            )
        } else {
            (V4_SOURCE.into(), V4_DESTINATION.into())
        };
        let ip_len = if ipv6 { 40 } else { 20 };
        let mut frame = vec![0; 14 + ip_len + tcp.buffer_len()];
        if ipv6 {
            ethernet(EthernetProtocol::Ipv6, &mut frame);
            Ipv6Repr {
                src_addr: Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
                dst_addr: Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut frame[14..54]));
        } else {
            ethernet(EthernetProtocol::Ipv4, &mut frame);
            Ipv4Repr {
                src_addr: V4_SOURCE,
                dst_addr: V4_DESTINATION,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            }
            .emit(
                &mut Ipv4Packet::new_unchecked(&mut frame[14..34]),
                &ChecksumCapabilities::default(),
            );
        }
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[14 + ip_len..]),
            &source,
            &destination,
            &no_checksums(),
        );
        frame
    }

    #[test]
    fn a_large_segment_cut_by_the_device_gives_right_segments_with_the_whole_payload() {
        let payload: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for ipv6 in [false, true] {
            let mut frame = tcp_frame_with_timestamps(&payload, ipv6);
            let partial = prepare_partial(&mut frame).unwrap();
            // smoltcp's segment size: what a 1,500-byte packet holds behind the headers.
            let ip_len = if ipv6 { 40 } else { 20 };
            let size = 1500 - ip_len - 32;
            let gso = segmentation(&frame, size as u16).unwrap();
            assert_eq!(
                gso,
                TcpSegmentation {
                    segment_size: size as u16,
                    headers_len: (14 + ip_len + 32) as u16,
                    ipv6,
                }
            );
            let pieces = cut(&frame, partial, gso);
            assert_eq!(pieces.len(), 20_000usize.div_ceil(size));
            let mut joined = Vec::new();
            for (index, piece) in pieces.iter().enumerate() {
                assert!(
                    piece.len() <= 14 + 1500,
                    "piece {index}: {} bytes",
                    piece.len()
                );
                assert!(tcp_sums_right(piece), "piece {index}'s checksum");
                let segment = segment(piece).unwrap();
                let tcp = TcpPacket::new_checked(&piece[segment.start..segment.end]).unwrap();
                assert_eq!(tcp.seq_number(), TcpSeqNumber(7 + (index * size) as i32));
                joined.extend_from_slice(tcp.payload());
            }
            assert_eq!(joined, payload);
        }
    }

    #[test]
    fn only_a_whole_tcp_segment_is_given_to_the_device_to_cut() {
        // UDP, a fragment, a size of zero, and a frame that is no IP packet.
        assert_eq!(segmentation(&udp_v4_frame(&[1; 3000]), 1448), None);
        let mut frame = tcp_frame_with_timestamps(&[5; 3000], false);
        assert_eq!(segmentation(&frame, 0), None);
        frame[20] |= 0x20; // IPv4 "more fragments"
        assert_eq!(segmentation(&frame, 1448), None);
        assert_eq!(segmentation(&[0u8; 10], 1448), None);
    }

    #[test]
    fn a_partial_checksum_completed_by_the_device_is_the_right_one() {
        // Odd and even lengths, IPv4 and IPv6.
        for payload in [&b""[..], b"x", b"hello, world", &[0xffu8; 1459][..]] {
            for mut frame in [
                tcp_v4_frame(payload, &no_checksums()),
                tcp_v6_frame(payload, &no_checksums()),
            ] {
                assert!(!tcp_sums_right(&frame) || payload.is_empty());
                let partial = prepare_partial(&mut frame).expect("a TCP frame");
                assert_eq!(partial.offset, 16);
                assert!(partial.start == 34 || partial.start == 54);
                complete(&mut frame, partial);
                assert!(tcp_sums_right(&frame), "payload of {}", payload.len());
            }
        }
    }

    #[test]
    fn only_whole_tcp_segments_are_left_to_the_device() {
        let mut frame = udp_v4_frame(b"abc");
        let before = frame.clone();
        assert_eq!(prepare_partial(&mut frame), None);
        assert_eq!(frame, before);

        // A fragment's checksum covers bytes it lacks.
        let mut fragment = tcp_v4_frame(b"data", &no_checksums());
        Ipv4Packet::new_unchecked(&mut fragment[14..]).set_more_frags(true);
        assert_eq!(prepare_partial(&mut fragment), None);
        // ARP, and a frame cut short.
        assert_eq!(prepare_partial(&mut [0u8; 20]), None);
    }

    #[test]
    fn received_tcp_is_checked_unless_the_device_vouches_for_it() {
        let good = tcp_v4_frame(b"payload", &ChecksumCapabilities::default());
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(accept_received(&mut good.clone(), FrameChecksum::Unchecked));
        assert!(!accept_received(&mut bad.clone(), FrameChecksum::Unchecked));
        // A short frame padded to Ethernet's 60 bytes sums over the segment alone.
        let mut padded = tcp_v4_frame(b"", &ChecksumCapabilities::default());
        padded.resize(60, 0xaa);
        assert!(accept_received(&mut padded, FrameChecksum::Unchecked));
        // The host's own frames carry a partial checksum and are trusted.
        assert!(accept_received(&mut bad, FrameChecksum::Trusted));
        let good = tcp_v6_frame(b"payload", &ChecksumCapabilities::default());
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(accept_received(&mut good.clone(), FrameChecksum::Unchecked));
        assert!(!accept_received(&mut bad, FrameChecksum::Unchecked));
        // An unchecked fragment of a TCP segment cannot be summed alone.
        let mut fragment = tcp_v4_frame(b"data", &ChecksumCapabilities::default());
        Ipv4Packet::new_unchecked(&mut fragment[14..]).set_more_frags(true);
        assert!(!accept_received(&mut fragment, FrameChecksum::Unchecked));
    }

    #[test]
    fn a_partial_udp_checksum_is_completed_for_smoltcp() {
        let mut frame = udp_v4_frame(b"hello");
        let right = frame.clone();
        // As the host sends it: the pseudo-header's sum alone.
        let sum = pseudo_header_sum(V4_SOURCE.into(), V4_DESTINATION.into(), IpProtocol::Udp, 13);
        frame[40..42].copy_from_slice(&sum.to_be_bytes());
        assert!(!UdpPacket::new_checked(&frame[34..])
            .unwrap()
            .verify_checksum(&V4_SOURCE.into(), &V4_DESTINATION.into()));
        assert!(accept_received(&mut frame, FrameChecksum::Trusted));
        assert_eq!(frame, right);
    }

    #[test]
    fn extension_headers_are_walked_to_the_segment() {
        let mut frame = tcp_v6_frame(b"abc", &ChecksumCapabilities::default());
        // A hop-by-hop header of 8 bytes (a PadN option) before the TCP segment.
        let mut with_option = frame[..54].to_vec();
        with_option.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        with_option.extend_from_slice(&frame[54..]);
        with_option[14 + 6] = 0; // next header: hop-by-hop
        let length = u16::from_be_bytes([with_option[18], with_option[19]]) + 8;
        with_option[18..20].copy_from_slice(&length.to_be_bytes());
        let found = segment(&with_option).unwrap();
        assert_eq!((found.protocol, found.start), (IpProtocol::Tcp, 62));
        assert!(accept_received(&mut with_option, FrameChecksum::Unchecked));
        frame[60] ^= 0x40;
        assert!(!accept_received(&mut frame, FrameChecksum::Unchecked));
    }
}
