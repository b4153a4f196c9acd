//! The network device: virtio-net on microvm's virtio-mmio transports, or on PCI where the
//! machine has it, through virtio-drivers' raw driver. Every receive buffer is posted to the
//! device at once, transmits are queued without waiting for the device to finish them, and
//! the device's interrupt ends the CPU's halt (the waiting threads then look at the sockets).

use crate::virtio_blk::PithHal;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use pith_syscalls::platform::{
    ChecksumOffload, FrameChecksum, PartialChecksum, ReceivedFrame, SegmentationOffload,
    TcpSegmentation, FRAME_HEADERS_ZEROED,
};
use spin::Mutex;
use virtio_drivers::device::net::{ReceivedChecksum, VirtIONetRaw};
use virtio_drivers::transport::{DeviceType, SomeTransport};

/// Descriptors per queue: 256 receive buffers in flight.
const QUEUE_SIZE: usize = 256;
/// One receive buffer: the virtio-net header and an Ethernet frame of up to 1514 bytes.
const BUFFER_LEN: usize = 2048;
/// The largest frame the link takes (a 1,500-byte IP packet): larger ones go out only for
/// the device to cut (TCP segmentation offload).
const FRAME_MAX: usize = 1514;
/// The vector the device's interrupt arrives on.
pub const NET_VECTOR: u8 = 0x22;

struct Nic {
    device: VirtIONetRaw<PithHal, SomeTransport<'static>, QUEUE_SIZE>,
    /// The receive buffers the device holds, by the token it gave for each.
    receiving: Vec<Option<Box<[u8]>>>,
    /// The frames being sent, by token.
    sending: Vec<Option<Sending>>,
    /// Headers of sent frames the device gave back.
    spare: Vec<Box<[u8]>>,
    /// Frames the device has sent, for the stack's next ones (`frame`): those the link takes
    /// whole, and larger ones for the device to cut.
    spare_frames: Vec<Vec<u8>>,
    spare_large_frames: Vec<Vec<u8>>,
    mac: [u8; 6],
    /// The device interrupts for the next received frame (a thread is about to wait).
    receive_armed: bool,
    /// Frames queued since the device was last notified (`flush`).
    unnotified: usize,
    /// When the oldest of them was queued (monotonic ns).
    unnotified_since: u64,
    /// The timer is armed for their backstop (`flush_deadline`).
    backstop_armed: bool,
    /// Frames received since the device was last told of receive buffers (they went back
    /// to it without a notification).
    received: usize,
    /// The watch over a program that computes without a system call (`watch_expired`), and
    /// whether a pass of the stack looked at the device since it was last timed.
    watch: Watch,
    looked: bool,
    /// Frames taken since boot (`frames_taken`).
    taken: u64,
}

/// A frame the device is sending: its virtio-net header, and the frame where the stack built
/// it.
struct Sending {
    header: Box<[u8]>,
    frame: Vec<u8>,
}

static NIC: Mutex<Option<Nic>> = Mutex::new(None);
/// The device's interrupt is not routed (PCI): waits look at it every millisecond instead.
static POLLED: AtomicBool = AtomicBool::new(false);
/// The I/O APIC line its interrupt comes on (u32::MAX: none).
static LINE: AtomicU32 = AtomicU32::new(u32::MAX);

/// The I/O APIC line the device interrupts on, if it does (/proc/interrupts).
pub fn interrupt_line() -> Option<u32> {
    let line = LINE.load(Ordering::Relaxed);
    (line != u32::MAX).then_some(line)
}

/// Finds the first virtio-net device (on virtio-mmio, whose interrupt lines
/// `mmio_interrupts` gives from QEMU's `virtio_mmio.device=` words; or on PCI) and brings it
/// up.
pub fn init(rsdp_hint: u64, mmio_interrupts: &[(u64, u32)]) {
    let found = crate::virtio_mmio::find(DeviceType::Network, |transport, slot, phys| {
        let gsi = mmio_interrupts
            .iter()
            .find(|&&(base, _)| base == phys)
            .map(|&(_, gsi)| gsi)
            .unwrap_or_else(|| default_gsi(slot as u32));
        let started = start(SomeTransport::from(transport), "virtio-mmio");
        if started {
            crate::ioapic::route_level(gsi, NET_VECTOR, crate::apic::id());
            LINE.store(gsi, Ordering::Relaxed);
        }
        started
    });
    if found {
        return;
    }
    if let Some(transport) = crate::pci::find_virtio(rsdp_hint, DeviceType::Network) {
        // PCI's legacy interrupt lines are not routed: waits for the network end every
        // millisecond to look at the device (`polled`).
        if start(SomeTransport::from(transport), "PCI") {
            POLLED.store(true, Ordering::Relaxed);
        }
    }
}

/// The interrupt line of virtio-mmio slot `slot` when the command line does not say:
/// microvm wires slots to GSI 24 + slot with its second I/O APIC (QEMU 5.2+ by default).
fn default_gsi(slot: u32) -> u32 {
    24 + slot
}

fn start(transport: SomeTransport<'static>, place: &str) -> bool {
    // Checksum offload where the device offers it (QEMU does on a tap, not with user-mode
    // networking): the stack uses it only when it goes both ways (`offload.rs`).
    let mut device =
        match VirtIONetRaw::<PithHal, _, QUEUE_SIZE>::new_with_checksum_offload(transport) {
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
    // No interrupt for sent frames: their buffers are taken back at the next transmit. None
    // for received frames either while the stack polls the device: a thread about to wait
    // arms one (`arm_receive_interrupt`), as Linux's NAPI turns them on only when idle.
    device.set_transmit_interrupts(false);
    device.set_receive_interrupts(false);
    let mac = device.mac_address();
    let offload = device.checksum_offload();
    let segmentation = device.segmentation_offload();
    crate::log_info!(
        "network: virtio-net on {place}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, checksum offload: {}, TCP segmentation offload: {}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        match (offload.transmit, offload.receive) {
            (true, true) => "yes",
            (false, false) => "no",
            _ => "one way only (unused)",
        },
        // What the stack uses: IPv4 only, whatever the device offers for IPv6 (`inet.rs`
        // says why).
        if segmentation.tcpv4 && offload.transmit && offload.receive {
            "IPv4"
        } else {
            "no"
        }
    );
    *NIC.lock() = Some(Nic {
        device,
        receiving,
        sending: (0..QUEUE_SIZE).map(|_| None).collect(),
        spare: Vec::new(),
        spare_frames: Vec::new(),
        spare_large_frames: Vec::new(),
        mac,
        receive_armed: false,
        unnotified: 0,
        unnotified_since: 0,
        backstop_armed: false,
        received: 0,
        watch: Watch::Off,
        looked: false,
        taken: 0,
    });
    true
}

/// Whether the device raises no interrupt, and waits must poll it.
pub fn polled() -> bool {
    POLLED.load(Ordering::Relaxed)
}

/// The device's MAC address, if there is a device.
pub fn mac() -> Option<[u8; 6]> {
    NIC.lock().as_ref().map(|nic| nic.mac)
}

/// The checksum offloads the device agreed to.
pub fn checksum_offload() -> ChecksumOffload {
    NIC.lock()
        .as_ref()
        .map(|nic| {
            let offload = nic.device.checksum_offload();
            ChecksumOffload {
                transmit: offload.transmit,
                receive: offload.receive,
            }
        })
        .unwrap_or_default()
}

/// The TCP segmentation the device agreed to do (only used with checksum offload both ways).
pub fn segmentation_offload() -> SegmentationOffload {
    NIC.lock()
        .as_ref()
        .map(|nic| {
            let offload = nic.device.segmentation_offload();
            SegmentationOffload {
                tcpv4: offload.tcpv4,
                tcpv6: offload.tcpv6,
            }
        })
        .unwrap_or_default()
}

/// Takes one received frame into `buffer`: its length and what the device says of its
/// checksum, or None when none waits.
pub fn receive(buffer: &mut [u8]) -> Option<ReceivedFrame> {
    let mut guard = NIC.lock();
    let nic = guard.as_mut()?;
    // If the program goes on computing without looking, the watch catches it: a pass starts
    // it, or starts it again when the device interrupted until now (a timed watch was off
    // the timer meanwhile, its deadline long past).
    let was_armed = core::mem::replace(&mut nic.receive_armed, false);
    if was_armed {
        // The stack is polling again: no interrupts until the next wait.
        nic.device.set_receive_interrupts(false);
    }
    nic.looked = true;
    if nic.watch == Watch::Off || (was_armed && nic.watch != Watch::Started) {
        nic.watch = Watch::Started;
        WATCH_STARTED.store(true, Ordering::Relaxed);
    }
    let token = nic.device.poll_receive()?;
    let mut received = nic.receiving.get_mut(token as usize)?.take()?;
    // SAFETY: `received` is the buffer receive_begin was given for this token.
    let completed = unsafe { nic.device.receive_complete(token, &mut received) };
    let result = completed.ok().map(|(header_len, frame_len)| {
        let len = frame_len.min(buffer.len());
        buffer[..len].copy_from_slice(&received[header_len..header_len + len]);
        let checksum = match nic.device.received_checksum(&received) {
            ReceivedChecksum::Unchecked => FrameChecksum::Unchecked,
            ReceivedChecksum::Valid | ReceivedChecksum::Partial => FrameChecksum::Trusted,
        };
        ReceivedFrame { len, checksum }
    });
    nic.received += 1;
    nic.taken += 1;
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
            if let Some(Sending { header, frame }) =
                self.sending.get_mut(token as usize).and_then(Option::take)
            {
                // SAFETY: the buffers are the ones transmit_begin_parts_quiet was given for
                // this token.
                let _ = unsafe { self.device.transmit_complete_parts(token, &header, &frame) };
                self.spare.push(header);
                let pool = if frame.capacity() > FRAME_MAX {
                    &mut self.spare_large_frames
                } else {
                    &mut self.spare_frames
                };
                if pool.len() < SPARE_FRAMES {
                    pool.push(frame);
                }
            }
        }
    }
}

/// How many sent frames of each size are kept for the stack's next ones: a burst's worth
/// (their memory stays taken: up to 64 KiB each for the large ones).
const SPARE_FRAMES: usize = 32;

/// A buffer for the stack's next frame of `len` bytes (`Platform::net_frame`): a frame the
/// device has sent if there is one, so that a 64 KiB frame is not zeroed for each segment
/// (zeroing them was 12% of nginx's time sending large files). Its headers' room is zeroed;
/// the stack overwrites the rest.
pub fn frame(len: usize) -> Vec<u8> {
    // No reclaim here: the stack asked `can_transmit`, which reclaims, just before.
    let reused = NIC.lock().as_mut().and_then(|nic| {
        // A large one for a large frame: growing one that held a small frame would zero
        // nearly all of it.
        if len > FRAME_MAX {
            nic.spare_large_frames.pop()
        } else {
            nic.spare_frames.pop()
        }
    });
    let Some(mut frame) = reused else {
        return vec![0; len];
    };
    if frame.len() >= len {
        frame.truncate(len);
    } else {
        frame.resize(len, 0);
    }
    let headers = len.min(FRAME_HEADERS_ZEROED);
    frame[..headers].fill(0);
    frame
}

/// A thread is about to wait for the network: the next received frame interrupts. True if
/// frames came already (they raised no interrupt): the caller takes them rather than wait.
pub fn arm_receive_interrupt() -> bool {
    let mut guard = NIC.lock();
    let Some(nic) = guard.as_mut() else {
        return false;
    };
    if !nic.receive_armed {
        nic.device.set_receive_interrupts(true);
        nic.receive_armed = true;
    }
    // After arming: a frame that came before raised nothing, one after will interrupt. The
    // fence orders the store of the ring's used_event before the load of its used index:
    // without it, QEMU's thread could miss the one while this reads the other's old value,
    // and the frame would wake nobody (Linux's virtqueue_enable_cb has the same barrier).
    core::sync::atomic::fence(Ordering::SeqCst);
    nic.device.poll_receive().is_some()
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

/// Queues `frame` for sending, with the partial checksum the device completes and the
/// segmentation it does, if any; dropped if the device has no room (TCP sends it again).
/// The device reads the frame where the stack built it: only its header is written here.
pub fn transmit(
    frame: Vec<u8>,
    checksum: Option<PartialChecksum>,
    segmentation: Option<TcpSegmentation>,
) {
    let mut guard = NIC.lock();
    let Some(nic) = guard.as_mut() else {
        return;
    };
    nic.reclaim();
    let header_len = nic.device.header_len();
    let mut header = nic
        .spare
        .pop()
        .unwrap_or_else(|| vec![0u8; header_len].into_boxed_slice());
    let filled = match (checksum, segmentation) {
        (Some(partial), Some(gso)) => nic.device.fill_buffer_header_tcp_segmentation(
            &mut header,
            partial.start,
            partial.offset,
            gso.ipv6,
            gso.headers_len,
            gso.segment_size,
        ),
        (Some(partial), None) => nic.device.fill_buffer_header_partial_checksum(
            &mut header,
            partial.start,
            partial.offset,
        ),
        (None, None) => nic.device.fill_buffer_header(&mut header),
        // Segmentation without a partial checksum is no request the device takes.
        (None, Some(_)) => Err(virtio_drivers::Error::InvalidParam),
    };
    if filled.is_err() || (frame.len() > FRAME_MAX && segmentation.is_none()) {
        nic.spare.push(header);
        return;
    }
    // SAFETY: the header and the frame are kept in `sending` until transmit_complete_parts
    // gives them back; neither the heap nor the Vec moves their bytes meanwhile.
    match unsafe { nic.device.transmit_begin_parts_quiet(&header, &frame) } {
        Ok(token) => {
            if let Some(slot) = nic.sending.get_mut(token as usize) {
                *slot = Some(Sending { header, frame });
            }
            if nic.unnotified == 0 {
                nic.unnotified_since = crate::clock::monotonic_ns();
            }
            nic.unnotified += 1;
            // A long burst keeps the device busy meanwhile.
            if nic.unnotified >= FLUSH_EVERY {
                nic.device.notify_transmit();
                nic.unnotified = 0;
                nic.backstop_armed = false;
            }
        }
        Err(_) => nic.spare.push(header),
    }
}

/// How many frames a burst queues before the device is told of them anyway.
const FLUSH_EVERY: usize = 32;

/// How long a queued frame may wait for its notification while the program keeps running
/// (it goes at once when the CPU is about to halt, and after `FLUSH_EVERY` frames).
const FLUSH_DELAY_NS: u64 = 100_000;
/// How long it may wait at most when the program makes no syscall meanwhile: the timer
/// interrupt's backstop. Longer than `FLUSH_DELAY_NS`, so that under load (syscalls all
/// along) it seldom fires: a timer interrupt every 100 us halved redis' requests per second.
const FLUSH_BACKSTOP_NS: u64 = 1_000_000;

/// Tells the device of the frames queued since it was last told. Each notification is an
/// exit to the device, which under TCG costs as much as sending a frame: a server answering
/// many clients in one turn of its event loop (redis writes each reply on its own) queues
/// their frames and tells the device once, when the CPU is about to halt (`sched`), after
/// `FLUSH_EVERY` frames, or once the oldest has waited `FLUSH_DELAY_NS` (looked at after each
/// pass of the stack). Linux batches the same way with xmit_more and its event index.
pub fn flush() {
    notify(true);
}

/// As `flush`, if the oldest queued frame has waited `FLUSH_DELAY_NS` (the stack's passes
/// and the timer interrupt call this). Frames that must wait more arm the timer for their
/// deadline, so a program that computes without a syscall after sending does not hold
/// them (`flush_deadline`).
pub fn flush_if_due() {
    notify(false);
    let arm = NIC.try_lock().is_some_and(|mut guard| {
        guard.as_mut().is_some_and(|nic| {
            let arm = nic.unnotified > 0 && !nic.backstop_armed;
            nic.backstop_armed |= arm;
            arm
        })
    });
    if arm {
        crate::sched::arm_timer();
    }
}

/// How long the program may compute without a system call that looks at the device before
/// the kernel looks for it (`watch_expired`), and lets the device interrupt from then on.
/// Linux takes every frame on arrival; a program here takes them at its next pass of the
/// stack, and one that computes for seconds would leave ARP requests, pings, handshakes and
/// ACKs unanswered, and its own retransmissions unsent, all that time. A watch, not an
/// interrupt for every frame: under load the program looks at the device constantly, and an
/// interrupt per frame would cost more than the frames.
const WATCH_NS: u64 = 10_000_000;

/// The watch's state. It is on the timer only while the program runs: a pass of the stack
/// starts it, the way back to the program from that system call times it (`time_watch`),
/// and a halt stops it (the program was not computing). So a halt never sleeps with a watch
/// deadline on the timer that would wake it again and again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Watch {
    Off,
    /// A pass started it; the way back to the program times it.
    Started,
    /// Due at this monotonic time.
    Timed(u64),
}

/// A pass started the watch: the syscall's way out times it (`time_watch`). An atomic, so
/// that every other syscall's way out costs one load.
static WATCH_STARTED: AtomicBool = AtomicBool::new(false);

/// The way back to the program: times the watch a pass of the stack started, and arms the
/// timer for it.
pub fn time_watch() {
    // A load first: the swap is a locked instruction, and this runs at every system call.
    if !WATCH_STARTED.load(Ordering::Relaxed) || !WATCH_STARTED.swap(false, Ordering::Relaxed) {
        return;
    }
    // lock, not try_lock: on the way back to the program nothing holds it, and a miss would
    // leave the watch started and never timed.
    let started = NIC.lock().as_mut().is_some_and(|nic| {
        let started = nic.watch == Watch::Started;
        if started {
            nic.watch = Watch::Timed(crate::clock::monotonic_ns() + WATCH_NS);
            // The pass that started it does not count as a look.
            nic.looked = false;
        }
        started
    });
    if started {
        crate::sched::arm_timer();
    }
}

/// When the watch is due, if it is timed and the device would not interrupt anyway (the
/// scheduler arms the timer for it while the program runs).
pub fn watch_deadline() -> Option<u64> {
    // try_lock: the scheduler asks with its own lock held, and never while this is held.
    let guard = NIC.try_lock()?;
    let nic = guard.as_ref()?;
    let interrupts = nic.receive_armed && !POLLED.load(Ordering::Relaxed);
    match nic.watch {
        Watch::Timed(at) if !interrupts => Some(at),
        _ => None,
    }
}

/// The timer interrupted the program: true if it has not looked at the device for a watch's
/// length, and the kernel should (`signals::on_network_in_program`). If it looked, the watch
/// goes on from now.
pub fn watch_expired(now: u64) -> bool {
    let Some(mut guard) = NIC.try_lock() else {
        return false;
    };
    let Some(nic) = guard.as_mut() else {
        return false;
    };
    let Watch::Timed(at) = nic.watch else {
        return false;
    };
    if now < at {
        return false;
    }
    if core::mem::replace(&mut nic.looked, false) {
        nic.watch = Watch::Timed(now + WATCH_NS);
        return false;
    }
    // The kernel's pass starts it again (`after_background_pass`).
    nic.watch = Watch::Off;
    true
}

/// The CPU halted: the program was not computing, and the watch stops (the next pass of the
/// stack starts it again).
pub fn after_halt() {
    if let Some(nic) = NIC.try_lock().as_mut().and_then(|guard| guard.as_mut()) {
        nic.watch = Watch::Off;
    }
}

/// A pass of the stack for a computing program ended (`signals::poll_network`): it does not
/// count as the program looking, and the watch it started is timed (needed where the device
/// does not interrupt: on PCI, or after a flood the pass left waiting). The caller arms the
/// timer.
pub fn after_background_pass() {
    WATCH_STARTED.store(false, Ordering::Relaxed);
    if let Some(nic) = NIC.lock().as_mut() {
        // From now, whatever it was: an old deadline would send the next pass at once.
        nic.watch = Watch::Timed(crate::clock::monotonic_ns() + WATCH_NS);
        nic.looked = false;
    }
}

/// How many frames the stack has taken since boot.
pub fn frames_taken() -> u64 {
    NIC.try_lock()
        .and_then(|guard| guard.as_ref().map(|nic| nic.taken))
        .unwrap_or(0)
}

/// When the frames queued and not yet told of must be told of at the latest, if there are
/// any (the scheduler arms the timer for it).
pub fn flush_deadline() -> Option<u64> {
    // try_lock: the scheduler asks with its own lock held, and never while this is held.
    let guard = NIC.try_lock()?;
    let nic = guard.as_ref()?;
    (nic.unnotified > 0).then_some(nic.unnotified_since + FLUSH_BACKSTOP_NS)
}

fn notify(now: bool) {
    // try_lock: the timer interrupt calls this too (the kernel holds the lock only with
    // interrupts off, so it is free then; a miss is caught at the next halt or pass).
    let Some(mut guard) = NIC.try_lock() else {
        return;
    };
    let Some(nic) = guard.as_mut() else {
        return;
    };
    let due =
        now || crate::clock::monotonic_ns().saturating_sub(nic.unnotified_since) >= FLUSH_DELAY_NS;
    if nic.unnotified > 0 && due {
        nic.device.notify_transmit();
        nic.unnotified = 0;
        nic.backstop_armed = false;
    }
    // Receive buffers go back to the device with a notification only when its event index
    // asks (rarely: QEMU asks when it ran out). After a burst that used a quarter of them,
    // it is told anyway: a device that ran dry waiting for a notification it missed would
    // receive nothing more.
    if nic.received >= QUEUE_SIZE / 4 {
        nic.device.notify_receive();
        nic.received = 0;
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
