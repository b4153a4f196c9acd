//! The disk: a virtio-blk device on QEMU microvm's virtio-mmio transports, or on PCI where the
//! machine has it (`pci.rs`), through the virtio-drivers crate. Requests are polled to completion (one CPU; the kernel is not
//! preemptible); FLUSH makes earlier writes durable on the host.

use crate::memory::{phys_to_virt, PAGE_SIZE};
use core::ptr::NonNull;
use spin::Mutex;
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::{DeviceType, SomeTransport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// The kernel's side of virtio-drivers: DMA memory from the frame allocator, through the
/// direct map (physical and virtual addresses differ by DIRECT_MAP_BASE).
pub struct PithHal;

// SAFETY: dma_alloc returns zeroed, contiguous, direct-mapped frames owned by the caller until
// dma_dealloc; share gives the physical address of kernel memory (the image, or the direct
// map that covers the heap, the frames and the threads' stacks); nothing needs unsharing
// without an IOMMU.
unsafe impl Hal for PithHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let count = pages.next_power_of_two();
        let Some(phys) = crate::memory::allocate_contiguous(count) else {
            return (0, NonNull::dangling());
        };
        let virt = phys_to_virt(phys).as_mut_ptr::<u8>();
        // SAFETY: `count` frames at `phys` were just handed out and are direct-mapped.
        unsafe { core::ptr::write_bytes(virt, 0, count * PAGE_SIZE as usize) };
        (phys, NonNull::new(virt).unwrap_or(NonNull::dangling()))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        crate::memory::free_contiguous(paddr, pages.next_power_of_two());
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(phys_to_virt(paddr).as_mut_ptr()).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        // The driver's own request headers live on the kernel stack (in the kernel image,
        // loaded at physical = virtual - KERNEL_VMA); buffers are heap or frames (the direct
        // map). Both are physically contiguous.
        let address = buffer.as_ptr() as *mut u8 as u64;
        if address >= crate::boot::KERNEL_VMA {
            address - crate::boot::KERNEL_VMA
        } else {
            address - crate::boot::DIRECT_MAP_BASE
        }
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

type Disk = VirtIOBlk<PithHal, SomeTransport<'static>>;

static DISK: Mutex<Option<Disk>> = Mutex::new(None);

/// Finds the first virtio-blk device, on virtio-mmio or else on PCI (`rsdp_hint`: the PVH
/// start info's RSDP address, 0 if none), and brings it up; logs what it found.
pub fn init(rsdp_hint: u64) {
    if !init_mmio() {
        if let Some(transport) = crate::pci::find_virtio(rsdp_hint, DeviceType::Block) {
            start(SomeTransport::from(transport), "PCI");
        }
    }
}

/// Brings up the virtio-blk device on `transport` (`place` says where, for the log).
fn start(transport: SomeTransport<'static>, place: &str) -> bool {
    match VirtIOBlk::<PithHal, _>::new(transport) {
        Ok(disk) => {
            crate::log_info!(
                "disk: virtio-blk on {place}, {} sectors ({} MiB){}",
                disk.capacity(),
                (disk.capacity() * SECTOR_SIZE as u64) >> 20,
                if disk.readonly() { ", read-only" } else { "" }
            );
            *DISK.lock() = Some(disk);
            true
        }
        Err(error) => {
            crate::log_warn!("virtio-blk on {place}: {error:?}");
            false
        }
    }
}

/// The first virtio-blk device on microvm's virtio-mmio transports; false if none came up.
fn init_mmio() -> bool {
    crate::virtio_mmio::find(DeviceType::Block, |transport, _, _| {
        start(SomeTransport::from(transport), "virtio-mmio")
    })
}

/// The disk's size in bytes, if there is a disk.
pub fn capacity() -> Option<u64> {
    DISK.lock()
        .as_ref()
        .map(|disk| disk.capacity() * SECTOR_SIZE as u64)
}

/// Reads whole sectors from `sector` into `buffer` (a multiple of 512 bytes).
pub fn read_sectors(sector: u64, buffer: &mut [u8]) -> Result<(), ()> {
    let mut guard = DISK.lock();
    let disk = guard.as_mut().ok_or(())?;
    disk.read_blocks(sector as usize, buffer).map_err(|_| ())
}

/// Writes whole sectors at `sector` from `data` (a multiple of 512 bytes).
pub fn write_sectors(sector: u64, data: &[u8]) -> Result<(), ()> {
    let mut guard = DISK.lock();
    let disk = guard.as_mut().ok_or(())?;
    disk.write_blocks(sector as usize, data).map_err(|_| ())
}

/// Makes the writes so far durable (VIRTIO_BLK_T_FLUSH).
pub fn flush() -> Result<(), ()> {
    let mut guard = DISK.lock();
    let disk = guard.as_mut().ok_or(())?;
    disk.flush().map_err(|_| ())
}

/// The disk for the filesystem layer (pith_fs::ext4): bytes at offsets, in whole sectors.
pub struct VirtioDisk;

impl pith_fs::ext4::Disk for VirtioDisk {
    fn size(&self) -> u64 {
        capacity().unwrap_or(0)
    }

    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), pith_fs::Error> {
        if !offset.is_multiple_of(SECTOR_SIZE as u64) || !buffer.len().is_multiple_of(SECTOR_SIZE) {
            return Err(pith_fs::Error::Invalid);
        }
        read_sectors(offset / SECTOR_SIZE as u64, buffer).map_err(|()| pith_fs::Error::Io)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), pith_fs::Error> {
        if !offset.is_multiple_of(SECTOR_SIZE as u64) || !data.len().is_multiple_of(SECTOR_SIZE) {
            return Err(pith_fs::Error::Invalid);
        }
        write_sectors(offset / SECTOR_SIZE as u64, data).map_err(|()| pith_fs::Error::Io)
    }

    fn flush(&mut self) -> Result<(), pith_fs::Error> {
        flush().map_err(|()| pith_fs::Error::Io)
    }
}
