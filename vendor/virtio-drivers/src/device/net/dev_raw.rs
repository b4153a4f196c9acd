use super::{Config, EthernetAddress, Features, Flags, GsoType, VirtioNetHdr, VirtioNetHdrLegacy};
use super::{MIN_BUFFER_LEN, QUEUE_RECEIVE, QUEUE_TRANSMIT, SUPPORTED_FEATURES};
use crate::config::read_config;
use crate::hal::Hal;
use crate::queue::VirtQueue;
use crate::transport::{InterruptStatus, Transport};
use crate::{Error, Result};
use core::mem::size_of;
use log::{debug, info, warn};
use zerocopy::IntoBytes;

/// Raw driver for a VirtIO network device.
///
/// This is a raw version of the VirtIONet driver. It provides non-blocking
/// methods for transmitting and receiving raw slices, without the buffer
/// management. For more higher-level functions such as receive buffer backing,
/// see [`VirtIONet`].
///
/// [`VirtIONet`]: super::VirtIONet
pub struct VirtIONetRaw<H: Hal, T: Transport, const QUEUE_SIZE: usize> {
    transport: T,
    mac: EthernetAddress,
    recv_queue: VirtQueue<H, QUEUE_SIZE>,
    send_queue: VirtQueue<H, QUEUE_SIZE>,
    /// Whether `num_buffers` is missing in the `virtio_net_hdr` struct.
    pub(crate) legacy_header: bool,
    /// Pith: the checksum offloads negotiated (`new_with_checksum_offload`).
    offload: ChecksumOffload,
    /// Pith: the segmentation offloads negotiated (`new_with_checksum_offload`).
    segmentation: SegmentationOffload,
}

// Pith: TCP segmentation offload (TSO). With VIRTIO_NET_F_HOST_TSO4/6 the driver may hand the
// device one TCP segment of up to 64 KiB with a header saying the size of the segments to cut
// it into (`fill_buffer_header_tcp_segmentation`); QEMU passes it to its tap as it is, and the
// host's stack takes it whole or cuts it. Both need VIRTIO_NET_F_CSUM.
/// The segmentation offloads a device agreed to.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct SegmentationOffload {
    /// VIRTIO_NET_F_HOST_TSO4: the device cuts large TCP segments over IPv4.
    pub tcpv4: bool,
    /// VIRTIO_NET_F_HOST_TSO6: the device cuts large TCP segments over IPv6.
    pub tcpv6: bool,
}

// Pith: checksum offload. The crate negotiates none; a driver that fills the pseudo-header
// sum itself and can take frames whose checksum the device vouches for asks for
// VIRTIO_NET_F_CSUM and VIRTIO_NET_F_GUEST_CSUM (`new_with_checksum_offload`).
/// The checksum offloads a device agreed to.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct ChecksumOffload {
    /// VIRTIO_NET_F_CSUM: the device completes a sent frame's partial checksum
    /// ([`VirtIONetRaw::fill_buffer_header_partial_checksum`]).
    pub transmit: bool,
    /// VIRTIO_NET_F_GUEST_CSUM: received frames may say their checksum needs no check
    /// ([`VirtIONetRaw::received_checksum`]).
    pub receive: bool,
}

/// What a received frame's header says of its checksum (VIRTIO_NET_F_GUEST_CSUM).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ReceivedChecksum {
    /// Nothing: the driver checks it.
    Unchecked,
    /// VIRTIO_NET_HDR_F_DATA_VALID: the device checked it.
    Valid,
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: a partial checksum from a sender on the same host (the
    /// field holds only the pseudo-header's sum); the data is as the sender made it.
    Partial,
}

impl<H: Hal, T: Transport, const QUEUE_SIZE: usize> VirtIONetRaw<H, T, QUEUE_SIZE> {
    /// Create a new VirtIO-Net driver.
    pub fn new(transport: T) -> Result<Self> {
        Self::with_features(transport, SUPPORTED_FEATURES)
    }

    /// Creates the driver as [`new`](Self::new) does, also asking for checksum offload
    /// in both directions and for TCP segmentation offload;
    /// [`checksum_offload`](Self::checksum_offload) and
    /// [`segmentation_offload`](Self::segmentation_offload) say what the device agreed to.
    pub fn new_with_checksum_offload(transport: T) -> Result<Self> {
        Self::with_features(
            transport,
            SUPPORTED_FEATURES
                .union(Features::CSUM)
                .union(Features::GUEST_CSUM)
                .union(Features::HOST_TSO4)
                .union(Features::HOST_TSO6),
        )
    }

    fn with_features(mut transport: T, supported: Features) -> Result<Self> {
        let negotiated_features = transport.begin_init(supported);
        info!("negotiated_features {:?}", negotiated_features);

        // Read configuration space.
        let mac = transport.read_consistent(|| read_config!(transport, Config, mac))?;
        let status = read_config!(transport, Config, status)?;
        debug!("Got MAC={:02x?}, status={:?}", mac, status);

        let send_queue = VirtQueue::new(
            &mut transport,
            QUEUE_TRANSMIT,
            negotiated_features.contains(Features::RING_INDIRECT_DESC),
            negotiated_features.contains(Features::RING_EVENT_IDX),
        )?;
        let recv_queue = VirtQueue::new(
            &mut transport,
            QUEUE_RECEIVE,
            negotiated_features.contains(Features::RING_INDIRECT_DESC),
            negotiated_features.contains(Features::RING_EVENT_IDX),
        )?;

        transport.finish_init();

        Ok(VirtIONetRaw {
            transport,
            mac,
            recv_queue,
            send_queue,
            legacy_header: !negotiated_features.contains(Features::VERSION_1)
                && !negotiated_features.contains(Features::MRG_RXBUF),
            offload: ChecksumOffload {
                transmit: negotiated_features.contains(Features::CSUM),
                receive: negotiated_features.contains(Features::GUEST_CSUM),
            },
            // The spec lets a device offer TSO only with CSUM; a driver relies on neither alone.
            segmentation: SegmentationOffload {
                tcpv4: negotiated_features.contains(Features::CSUM | Features::HOST_TSO4),
                tcpv6: negotiated_features.contains(Features::CSUM | Features::HOST_TSO6),
            },
        })
    }

    /// The checksum offloads negotiated.
    pub fn checksum_offload(&self) -> ChecksumOffload {
        self.offload
    }

    /// The segmentation offloads negotiated.
    pub fn segmentation_offload(&self) -> SegmentationOffload {
        self.segmentation
    }

    /// The length of the header that precedes each frame sent or received.
    pub fn header_len(&self) -> usize {
        if self.legacy_header {
            size_of::<VirtioNetHdrLegacy>()
        } else {
            size_of::<VirtioNetHdr>()
        }
    }

    /// Fills `header` (at least [`header_len`](Self::header_len) bytes) as
    /// [`fill_buffer_header_partial_checksum`](Self::fill_buffer_header_partial_checksum)
    /// does, and asks the device to cut the frame's TCP segment into segments of
    /// `segment_size` bytes of payload, each with a copy of the frame's first `headers_len`
    /// bytes (Ethernet, IP and TCP headers with options). The TCP checksum field holds the
    /// pseudo-header's sum over the whole segment's length, as for a partial checksum. Only
    /// with [`SegmentationOffload`]'s `tcpv4` (or `tcpv6` when `ipv6`).
    pub fn fill_buffer_header_tcp_segmentation(
        &self,
        header: &mut [u8],
        checksum_start: u16,
        checksum_offset: u16,
        ipv6: bool,
        headers_len: u16,
        segment_size: u16,
    ) -> Result<usize> {
        let allowed = if ipv6 {
            self.segmentation.tcpv6
        } else {
            self.segmentation.tcpv4
        };
        if !allowed || segment_size == 0 {
            return Err(Error::Unsupported);
        }
        let gso_type = if ipv6 { GsoType::TCPV6 } else { GsoType::TCPV4 };
        macro_rules! fill {
            ($hdr:ty) => {{
                if header.len() < size_of::<$hdr>() {
                    return Err(Error::InvalidParam);
                }
                let mut value = <$hdr>::default();
                value.flags = Flags::NEEDS_CSUM;
                value.gso_type = gso_type;
                value.hdr_len = headers_len;
                value.gso_size = segment_size;
                value.csum_start = checksum_start;
                value.csum_offset = checksum_offset;
                header[..size_of::<$hdr>()].copy_from_slice(value.as_bytes());
                Ok(size_of::<$hdr>())
            }};
        }
        if self.legacy_header {
            fill!(VirtioNetHdrLegacy)
        } else {
            fill!(VirtioNetHdr)
        }
    }

    /// Fills the header of `buffer` as [`fill_buffer_header`](Self::fill_buffer_header)
    /// does, asking the device to complete the frame's checksum: it sums the frame from
    /// `start` to its end and stores the sum at `start + offset`, where the driver left the
    /// pseudo-header's sum. Only with [`ChecksumOffload::transmit`].
    pub fn fill_buffer_header_partial_checksum(
        &self,
        buffer: &mut [u8],
        start: u16,
        offset: u16,
    ) -> Result<usize> {
        if !self.offload.transmit {
            return Err(Error::Unsupported);
        }
        macro_rules! fill {
            ($hdr:ty) => {{
                if buffer.len() < size_of::<$hdr>() {
                    return Err(Error::InvalidParam);
                }
                let mut header = <$hdr>::default();
                header.flags = Flags::NEEDS_CSUM;
                header.csum_start = start;
                header.csum_offset = offset;
                buffer[..size_of::<$hdr>()].copy_from_slice(header.as_bytes());
                Ok(size_of::<$hdr>())
            }};
        }
        if self.legacy_header {
            fill!(VirtioNetHdrLegacy)
        } else {
            fill!(VirtioNetHdr)
        }
    }

    /// What the header of a received `rx_buf` (as [`receive_complete`](Self::receive_complete)
    /// left it) says of the frame's checksum.
    pub fn received_checksum(&self, rx_buf: &[u8]) -> ReceivedChecksum {
        // Both headers begin with the flags byte.
        let flags = Flags::from_bits_truncate(rx_buf.first().copied().unwrap_or(0));
        if !self.offload.receive {
            ReceivedChecksum::Unchecked
        } else if flags.contains(Flags::NEEDS_CSUM) {
            ReceivedChecksum::Partial
        } else if flags.contains(Flags::DATA_VALID) {
            ReceivedChecksum::Valid
        } else {
            ReceivedChecksum::Unchecked
        }
    }

    /// Acknowledge interrupt.
    pub fn ack_interrupt(&mut self) -> InterruptStatus {
        self.transport.ack_interrupt()
    }

    /// Disable interrupts.
    pub fn disable_interrupts(&mut self) {
        self.send_queue.set_dev_notify(false);
        self.recv_queue.set_dev_notify(false);
    }

    /// Enable interrupts.
    pub fn enable_interrupts(&mut self) {
        self.send_queue.set_dev_notify(true);
        self.recv_queue.set_dev_notify(true);
    }

    // Pith: each queue's interrupts on their own. A driver that reclaims its transmit
    // buffers when it next transmits needs no interrupt for them, and one that polls while
    // busy wants receive interrupts only when it is about to wait.
    /// Enables or disables the interrupts for received frames.
    pub fn set_receive_interrupts(&mut self, enable: bool) {
        self.recv_queue.set_dev_notify(enable);
    }

    /// Enables or disables the interrupts for completed transmissions.
    pub fn set_transmit_interrupts(&mut self, enable: bool) {
        self.send_queue.set_dev_notify(enable);
    }

    /// Get MAC address.
    pub fn mac_address(&self) -> EthernetAddress {
        self.mac
    }

    /// Whether can send packet.
    pub fn can_send(&self) -> bool {
        self.send_queue.available_desc() >= 2
    }

    /// Whether the length of the receive buffer is valid.
    fn check_rx_buf_len(rx_buf: &[u8]) -> Result<()> {
        if rx_buf.len() < MIN_BUFFER_LEN {
            warn!("Receive buffer len {} is too small", rx_buf.len());
            Err(Error::InvalidParam)
        } else {
            Ok(())
        }
    }

    /// Whether the length of the transmit buffer is valid.
    fn check_tx_buf_len(&self, tx_buf: &[u8]) -> Result<()> {
        let hdr_size = if self.legacy_header {
            size_of::<VirtioNetHdrLegacy>()
        } else {
            size_of::<VirtioNetHdr>()
        };
        if tx_buf.len() < hdr_size {
            warn!("Transmit buffer len {} is too small", tx_buf.len());
            Err(Error::InvalidParam)
        } else {
            Ok(())
        }
    }

    /// Fill the header of the `buffer` with [`VirtioNetHdr`].
    ///
    /// If the `buffer` is not large enough, it returns [`Error::InvalidParam`].
    pub fn fill_buffer_header(&self, buffer: &mut [u8]) -> Result<usize> {
        macro_rules! fill {
            ($hdr:ty) => {{
                if buffer.len() < size_of::<$hdr>() {
                    return Err(Error::InvalidParam);
                }
                let header = <$hdr>::default();
                buffer[..size_of::<$hdr>()].copy_from_slice(header.as_bytes());
                Ok(size_of::<$hdr>())
            }};
        }
        if self.legacy_header {
            fill!(VirtioNetHdrLegacy)
        } else {
            fill!(VirtioNetHdr)
        }
    }

    /// Submits a request to transmit a buffer immediately without waiting for
    /// the transmission to complete.
    ///
    /// It will submit request to the VirtIO net device and return a token
    /// identifying the position of the first descriptor in the chain. If there
    /// are not enough descriptors to allocate, then it returns
    /// [`Error::QueueFull`].
    ///
    /// The caller needs to fill the `tx_buf` with a header by calling
    /// [`fill_buffer_header`] before transmission. Then it calls [`poll_transmit`]
    /// with the returned token to check whether the device has finished handling
    /// the request. Once it has, the caller must call [`transmit_complete`] with
    /// the same buffer before reading the result (transmitted length).
    ///
    /// # Safety
    ///
    /// `tx_buf` is still borrowed by the underlying VirtIO net device even after
    /// this method returns. Thus, it is the caller's responsibility to guarantee
    /// that they are not accessed before the request is completed in order to
    /// avoid data races.
    ///
    /// [`fill_buffer_header`]: Self::fill_buffer_header
    /// [`poll_transmit`]: Self::poll_transmit
    /// [`transmit_complete`]: Self::transmit_complete
    pub unsafe fn transmit_begin(&mut self, tx_buf: &[u8]) -> Result<u16> {
        self.check_tx_buf_len(tx_buf)?;
        // SAFETY: The caller promises that `tx_buf` is not accessed before the request completes.
        let token = unsafe { self.send_queue.add(&[tx_buf], &mut [])? };
        if self.send_queue.should_notify() {
            self.transport.notify(QUEUE_TRANSMIT);
        }
        Ok(token)
    }

    // Pith: transmissions in batches. `transmit_begin` asks the event index whether to
    // notify; a driver that sends several frames in a row queues them without a notification
    // and notifies once after the last (each notification is an exit to the device).
    /// Queues a frame as `transmit_begin` does, without notifying the device: the caller
    /// calls [`notify_transmit`](Self::notify_transmit) after its last frame.
    ///
    /// # Safety
    ///
    /// As for [`transmit_begin`](Self::transmit_begin).
    pub unsafe fn transmit_begin_quiet(&mut self, tx_buf: &[u8]) -> Result<u16> {
        self.check_tx_buf_len(tx_buf)?;
        // SAFETY: The caller promises that `tx_buf` is not accessed before the request completes.
        unsafe { self.send_queue.add(&[tx_buf], &mut []) }
    }

    // Pith: a frame and its header in buffers of their own, so that a driver hands the
    // device the frame where its stack built it rather than copying it behind a header.
    /// Queues a frame as [`transmit_begin_quiet`](Self::transmit_begin_quiet) does, its
    /// header (filled by one of the `fill_buffer_header` functions) in `header` and the
    /// frame in `frame`.
    ///
    /// # Safety
    ///
    /// As for [`transmit_begin`](Self::transmit_begin), for both buffers.
    pub unsafe fn transmit_begin_parts_quiet(
        &mut self,
        header: &[u8],
        frame: &[u8],
    ) -> Result<u16> {
        if header.len() != self.header_len() {
            return Err(Error::InvalidParam);
        }
        // SAFETY: The caller promises that neither buffer is accessed before the request
        // completes.
        unsafe { self.send_queue.add(&[header, frame], &mut []) }
    }

    /// Completes a transmission queued by
    /// [`transmit_begin_parts_quiet`](Self::transmit_begin_parts_quiet), as
    /// [`transmit_complete`](Self::transmit_complete) does.
    ///
    /// # Safety
    ///
    /// `header` and `frame` are the buffers given to `transmit_begin_parts_quiet` for `token`.
    pub unsafe fn transmit_complete_parts(
        &mut self,
        token: u16,
        header: &[u8],
        frame: &[u8],
    ) -> Result<usize> {
        // SAFETY: The caller promises that the buffers are the ones given for this token.
        let len = unsafe { self.send_queue.pop_used(token, &[header, frame], &mut [])? };
        Ok(len as usize)
    }

    /// Tells the device that frames were queued by [`transmit_begin_quiet`](Self::transmit_begin_quiet).
    pub fn notify_transmit(&mut self) {
        self.transport.notify(QUEUE_TRANSMIT);
    }

    /// Tells the device that receive buffers were queued, whatever the event index says.
    pub fn notify_receive(&mut self) {
        self.transport.notify(QUEUE_RECEIVE);
    }

    /// Fetches the token of the next completed transmission request from the
    /// used ring and returns it, without removing it from the used ring. If
    /// there are no pending completed requests it returns [`None`].
    pub fn poll_transmit(&mut self) -> Option<u16> {
        self.send_queue.peek_used()
    }

    /// Completes a transmission operation which was started by [`transmit_begin`].
    /// Returns number of bytes transmitted.
    ///
    /// # Safety
    ///
    /// The same buffer must be passed in again as was passed to
    /// [`transmit_begin`] when it returned the token.
    ///
    /// [`transmit_begin`]: Self::transmit_begin
    pub unsafe fn transmit_complete(&mut self, token: u16, tx_buf: &[u8]) -> Result<usize> {
        // SAFETY: The caller promises that `tx_buf` is the same one passed to the corresponding
        // call to `transmit_begin`.
        let len = unsafe { self.send_queue.pop_used(token, &[tx_buf], &mut [])? };
        Ok(len as usize)
    }

    /// Submits a request to receive a buffer immediately without waiting for
    /// the reception to complete.
    ///
    /// It will submit request to the VirtIO net device and return a token
    /// identifying the position of the first descriptor in the chain. If there
    /// are not enough descriptors to allocate, then it returns
    /// [`Error::QueueFull`].
    ///
    /// The caller can then call [`poll_receive`] with the returned token to
    /// check whether the device has finished handling the request. Once it has,
    /// the caller must call [`receive_complete`] with the same buffer before
    /// reading the response.
    ///
    /// # Safety
    ///
    /// `rx_buf` is still borrowed by the underlying VirtIO net device even after
    /// this method returns. Thus, it is the caller's responsibility to guarantee
    /// that they are not accessed before the request is completed in order to
    /// avoid data races.
    ///
    /// [`poll_receive`]: Self::poll_receive
    /// [`receive_complete`]: Self::receive_complete
    pub unsafe fn receive_begin(&mut self, rx_buf: &mut [u8]) -> Result<u16> {
        Self::check_rx_buf_len(rx_buf)?;
        // SAFETY: The caller promises that `rx_buf` is not accessed before the request completes.
        let token = unsafe { self.recv_queue.add(&[], &mut [rx_buf])? };
        if self.recv_queue.should_notify() {
            self.transport.notify(QUEUE_RECEIVE);
        }
        Ok(token)
    }

    /// Fetches the token of the next completed reception request from the
    /// used ring and returns it, without removing it from the used ring. If
    /// there are no pending completed requests it returns [`None`].
    pub fn poll_receive(&self) -> Option<u16> {
        self.recv_queue.peek_used()
    }

    /// Completes a transmission operation which was started by [`receive_begin`].
    ///
    /// After completion, the `rx_buf` will contain a header followed by the
    /// received packet. It returns the length of the header and the length of
    /// the packet.
    ///
    /// # Safety
    ///
    /// The same buffer must be passed in again as was passed to
    /// [`receive_begin`] when it returned the token.
    ///
    /// [`receive_begin`]: Self::receive_begin
    pub unsafe fn receive_complete(
        &mut self,
        token: u16,
        rx_buf: &mut [u8],
    ) -> Result<(usize, usize)> {
        // SAFETY: The caller promises that `rx_buf` is the same one passed to the corresponding
        // call to `receive_begin`.
        let len = unsafe { self.recv_queue.pop_used(token, &[], &mut [rx_buf])? } as usize;
        let hdr_size = if self.legacy_header {
            size_of::<VirtioNetHdrLegacy>()
        } else {
            size_of::<VirtioNetHdr>()
        };
        let packet_len = len.checked_sub(hdr_size).ok_or(Error::IoError)?;
        Ok((hdr_size, packet_len))
    }

    /// Sends a packet to the network, and blocks until the request completed.
    pub fn send(&mut self, tx_buf: &[u8]) -> Result {
        macro_rules! send {
            ($header:expr) => {{
                let header = $header;
                if tx_buf.is_empty() {
                    // Special case sending an empty packet, to avoid adding an empty buffer to the
                    // virtqueue.
                    self.send_queue.add_notify_wait_pop(
                        &[header.as_bytes()],
                        &mut [],
                        &mut self.transport,
                    )?;
                } else {
                    self.send_queue.add_notify_wait_pop(
                        &[header.as_bytes(), tx_buf],
                        &mut [],
                        &mut self.transport,
                    )?;
                }
            }};
        }
        if self.legacy_header {
            send!(VirtioNetHdrLegacy::default())
        } else {
            send!(VirtioNetHdr::default())
        };
        Ok(())
    }

    /// Blocks and waits for a packet to be received.
    ///
    /// After completion, the `rx_buf` will contain a header followed by the
    /// received packet. It returns the length of the header and the length of
    /// the packet.
    pub fn receive_wait(&mut self, rx_buf: &mut [u8]) -> Result<(usize, usize)> {
        // SAFETY: After calling `receive_begin`, `rx_buf` is not accessed
        // until calling `receive_complete` when the request is complete.
        let token = unsafe { self.receive_begin(rx_buf)? };
        while self.poll_receive().is_none() {
            core::hint::spin_loop();
        }
        // SAFETY: This `rx_buf` is the same one passed to `receive_begin`.
        unsafe { self.receive_complete(token, rx_buf) }
    }
}

impl<H: Hal, T: Transport, const QUEUE_SIZE: usize> Drop for VirtIONetRaw<H, T, QUEUE_SIZE> {
    fn drop(&mut self) {
        // Clear any pointers pointing to DMA regions, so the device doesn't try to access them
        // after they have been freed.
        self.transport.queue_unset(QUEUE_RECEIVE);
        self.transport.queue_unset(QUEUE_TRANSMIT);
    }
}
