//! The network device: virtio-net on microvm's virtio-mmio transports, or on PCI where the
//! machine has it, through virtio-drivers' raw driver. Every receive buffer is posted to the
//! device at once, transmits are queued without waiting for the device to finish them, and
//! the device's interrupt ends the CPU's halt (the waiting threads then look at the sockets).

use crate::memory::phys_to_virt;
use crate::virtio_blk::PithHal;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use spin::Mutex;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, SomeTransport};

/// Descriptors per queue: 256 receive buffers in flight.
const QUEUE_SIZE: usize = 256;
/// One buffer: the virtio-net header and an Ethernet frame of up to 1514 bytes.
const BUFFER_LEN: usize = 2048;
/// The vector the device's interrupt arrives on.
pub const NET_VECTOR: u8 = 0x22;
const VIRTIO_MMIO_BASE: u64 = 0xfeb0_0000;
const VIRTIO_MMIO_SIZE: usize = 512;
const VIRTIO_MMIO_SLOTS: u64 = 24;
const VIRTIO_MAGIC: u32 = 0x7472_6976;

struct Nic {
    device: VirtIONetRaw<PithHal, SomeTransport<'static>, QUEUE_SIZE>,
    /// The receive buffers the device holds, by the token it gave for each.
    receiving: Vec<Option<Box<[u8]>>>,
    /// The frames being sent, by token, with their length.
    sending: Vec<Option<(Box<[u8]>, usize)>>,
    /// Transmit buffers the device gave back.
    spare: Vec<Box<[u8]>>,
    mac: [u8; 6],
}

static NIC: Mutex<Option<Nic>> = Mutex::new(None);

/// Finds the first virtio-net device (virtio-mmio slot `gsis` tells each slot's interrupt
/// line, from QEMU's `virtio_mmio.device=` words; or PCI) and brings it up.
pub fn init(rsdp_hint: u64, mmio_interrupts: &[(u64, u32)]) {
    for slot in 0..VIRTIO_MMIO_SLOTS {
        let phys = VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_SIZE as u64;
        let virt = phys_to_virt(phys).as_mut_ptr::<u32>();
        // SAFETY: the direct map covers the microvm MMIO window below 4 GiB; reading a
        // transport's magic and device id has no side effect, and an empty slot reads 0.
        let (magic, device) = unsafe { (virt.read_volatile(), virt.add(2).read_volatile()) };
        if magic != VIRTIO_MAGIC || device != DeviceType::Network as u32 {
            continue;
        }
        let Some(header) = NonNull::new(virt as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: `header` is a virtio-mmio transport (magic checked) of VIRTIO_MMIO_SIZE
        // bytes, mapped for the kernel's life, and only this driver uses it.
        let transport = match unsafe { MmioTransport::new(header, VIRTIO_MMIO_SIZE) } {
            Ok(transport) => transport,
            Err(error) => {
                crate::log_warn!("virtio-mmio slot {slot}: {error:?}");
                continue;
            }
        };
        let gsi = mmio_interrupts
            .iter()
            .find(|&&(base, _)| base == phys)
            .map(|&(_, gsi)| gsi)
            .unwrap_or_else(|| default_gsi(slot as u32));
        if start(SomeTransport::from(transport), "virtio-mmio") {
            crate::ioapic::route_level(gsi, NET_VECTOR, crate::apic::id());
            return;
        }
    }
    if let Some(transport) = crate::pci::find_virtio(rsdp_hint, DeviceType::Network) {
        // PCI's legacy interrupt lines are not routed: the device is polled at each wait's
        // end (the timer still wakes the CPU for the stack's deadlines).
        start(SomeTransport::from(transport), "PCI");
    }
}

/// The interrupt line of virtio-mmio slot `slot` when the command line does not say:
/// microvm wires slots to GSI 24 + slot with its second I/O APIC (QEMU 5.2+ by default).
fn default_gsi(slot: u32) -> u32 {
    24 + slot
}

fn start(transport: SomeTransport<'static>, place: &str) -> bool {
    let mut device = match VirtIONetRaw::<PithHal, _, QUEUE_SIZE>::new(transport) {
        Ok(device) => device,
        Err(error) => {
            crate::log_warn!("virtio-net on {place}: {error:?}");
            return false;
        }
    };
    let mut receiving: Vec<Option<Box<[u8]>>> = (0..QUEUE_SIZE).map(|_| None).collect();
    for _ in 0..QUEUE_SIZE {
        let mut buffer = vec![0u8; BUFFER_LEN].into_boxed_slice();
        // SAFETY: the buffer is kept in `receiving` under the token until receive_complete
        // returns it; the heap does not move it.
        match unsafe { device.receive_begin(&mut buffer) } {
            Ok(token) => receiving[token as usize] = Some(buffer),
            Err(_) => break,
        }
    }
    device.enable_interrupts();
    let mac = device.mac_address();
    crate::log_info!(
        "network: virtio-net on {place}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    *NIC.lock() = Some(Nic {
        device,
        receiving,
        sending: (0..QUEUE_SIZE).map(|_| None).collect(),
        spare: Vec::new(),
        mac,
    });
    true
}

/// The device's MAC address, if there is a device.
pub fn mac() -> Option<[u8; 6]> {
    NIC.lock().as_ref().map(|nic| nic.mac)
}

/// Takes one received frame into `buffer`: its length, or None when none waits.
pub fn receive(buffer: &mut [u8]) -> Option<usize> {
    let mut guard = NIC.lock();
    let nic = guard.as_mut()?;
    let token = nic.device.poll_receive()?;
    let mut received = nic.receiving.get_mut(token as usize)?.take()?;
    // SAFETY: `received` is the buffer receive_begin was given for this token.
    let completed = unsafe { nic.device.receive_complete(token, &mut received) };
    let result = completed.ok().map(|(header_len, frame_len)| {
        let len = frame_len.min(buffer.len());
        buffer[..len].copy_from_slice(&received[header_len..header_len + len]);
        len
    });
    // SAFETY: as in `start`: the buffer stays in `receiving` until it completes.
    if let Ok(token) = unsafe { nic.device.receive_begin(&mut received) } {
        if let Some(slot) = nic.receiving.get_mut(token as usize) {
            *slot = Some(received);
        }
    }
    result
}

impl Nic {
    /// Takes back the buffers of the frames the device has sent.
    fn reclaim(&mut self) {
        while let Some(token) = self.device.poll_transmit() {
            if let Some((buffer, len)) = self.sending.get_mut(token as usize).and_then(Option::take)
            {
                // SAFETY: the slice is the one transmit_begin was given for this token.
                let _ = unsafe { self.device.transmit_complete(token, &buffer[..len]) };
                self.spare.push(buffer);
            }
        }
    }
}

/// Whether a frame can be queued now.
pub fn can_transmit() -> bool {
    let mut guard = NIC.lock();
    let Some(nic) = guard.as_mut() else {
        return false;
    };
    nic.reclaim();
    nic.device.can_send()
}

/// Queues `frame` for sending; dropped if the device has no room (TCP sends it again).
pub fn transmit(frame: &[u8]) {
    let mut guard = NIC.lock();
    let Some(nic) = guard.as_mut() else {
        return;
    };
    nic.reclaim();
    let mut buffer = nic
        .spare
        .pop()
        .unwrap_or_else(|| vec![0u8; BUFFER_LEN].into_boxed_slice());
    let Ok(header_len) = nic.device.fill_buffer_header(&mut buffer) else {
        return;
    };
    if header_len + frame.len() > buffer.len() {
        return;
    }
    buffer[header_len..header_len + frame.len()].copy_from_slice(frame);
    let len = header_len + frame.len();
    // SAFETY: the buffer is kept in `sending` until transmit_complete gives it back.
    match unsafe { nic.device.transmit_begin(&buffer[..len]) } {
        Ok(token) => {
            if let Some(slot) = nic.sending.get_mut(token as usize) {
                *slot = Some((buffer, len));
            }
        }
        Err(_) => nic.spare.push(buffer),
    }
}

/// The device's interrupt: acknowledged at the device (which lowers its line); the frames
/// are taken by the threads it wakes.
pub fn interrupt() {
    if let Some(mut guard) = NIC.try_lock() {
        if let Some(nic) = guard.as_mut() {
            nic.device.ack_interrupt();
        }
    }
}
