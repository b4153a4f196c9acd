//! microvm's virtio-mmio transports: where they sit, and which device each one holds.

use crate::memory::phys_to_virt;
use core::ptr::NonNull;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

/// Where microvm puts its virtio-mmio transports (hw/i386/microvm.c VIRTIO_MMIO_BASE), 512
/// bytes each; up to 24 with the second I/O APIC.
const VIRTIO_MMIO_BASE: u64 = 0xfeb0_0000;
const VIRTIO_MMIO_SIZE: usize = 512;
const VIRTIO_MMIO_SLOTS: u64 = 24;
/// "virt", the magic at the start of a transport.
const VIRTIO_MAGIC: u32 = 0x7472_6976;

/// Offers each transport holding a `device` to `start` (with its slot and physical address)
/// until `start` takes one; true if one was taken.
pub fn find(
    device: DeviceType,
    mut start: impl FnMut(MmioTransport<'static>, u64, u64) -> bool,
) -> bool {
    for slot in 0..VIRTIO_MMIO_SLOTS {
        let phys = VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_SIZE as u64;
        let virt = phys_to_virt(phys).as_mut_ptr::<u32>();
        // SAFETY: the direct map covers the microvm MMIO window below 4 GiB; reading a
        // transport's magic and device id has no side effect, and an empty slot reads 0.
        let (magic, id) = unsafe { (virt.read_volatile(), virt.add(2).read_volatile()) };
        if magic != VIRTIO_MAGIC || id != device as u32 {
            continue;
        }
        let Some(header) = NonNull::new(virt as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: `header` is a virtio-mmio transport (magic checked) of VIRTIO_MMIO_SIZE
        // bytes, mapped for the kernel's life, and only the driver given it uses it.
        let transport = match unsafe { MmioTransport::new(header, VIRTIO_MMIO_SIZE) } {
            Ok(transport) => transport,
            Err(error) => {
                crate::log_warn!("virtio-mmio slot {slot}: {error:?}");
                continue;
            }
        };
        if transport.device_type() == device && start(transport, slot, phys) {
            return true;
        }
    }
    false
}
