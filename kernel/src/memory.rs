//! Physical memory: the direct map, the frame allocator (buddy), the kernel heap (talc), and
//! the page table that the kernel and the app share.

use crate::boot::{DIRECT_MAP_BASE, KERNEL_VMA};
use crate::pvh::{MemoryRegion, MEMMAP_TYPE_RAM};
use buddy_system_allocator::FrameAllocator;
use spin::Mutex;
use x86_64::structures::paging::{
    page_table::PageTableEntry, PageTable, PageTableFlags, PhysFrame,
};
use x86_64::{PhysAddr, VirtAddr};

pub const PAGE_SIZE: u64 = 4096;
/// The kernel heap is claimed once at boot; the app's memory comes from frames, not the heap.
const HEAP_SIZE: u64 = 8 << 20;
/// The first megabyte holds firmware tables and the start info: never hand it out.
const LOW_MEMORY_END: u64 = 1 << 20;
/// The boot page tables direct-map physical memory below this address.
const DIRECT_MAPPED_END: u64 = 4 << 30;

#[global_allocator]
static HEAP: talc::TalcLock<spin::mutex::SpinMutex<()>, talc::source::Manual> =
    talc::TalcLock::new(talc::source::Manual);

static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// Counts of physical frames, for the footprint line in the boot log.
pub struct MemoryStats {
    pub total_frames: u64,
}

pub fn phys_to_virt(phys: u64) -> VirtAddr {
    VirtAddr::new(phys + DIRECT_MAP_BASE)
}

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

fn kernel_image_phys() -> (u64, u64) {
    // Only the addresses of the linker-script symbols are taken; nothing is read through them.
    let (start, end) = {
        (
            core::ptr::addr_of!(__kernel_start) as u64,
            core::ptr::addr_of!(__kernel_end) as u64,
        )
    };
    (start - KERNEL_VMA, end - KERNEL_VMA)
}

/// Ranges of physical memory to keep out of the allocators, as (start, end).
pub struct Reserved<'a>(pub &'a [(u64, u64)]);

impl Reserved<'_> {
    /// The first reserved range overlapping [start, end), if any.
    fn overlap(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        self.0
            .iter()
            .copied()
            .filter(|&(s, e)| s < end && start < e)
            .min_by_key(|&(s, _)| s)
    }
}

/// Calls `f` for each free piece of RAM: E820 RAM above 1 MiB and below the direct-mapped limit,
/// minus the reserved ranges, page-aligned.
fn for_each_free_range(map: &[MemoryRegion], reserved: &Reserved, mut f: impl FnMut(u64, u64)) {
    for region in map.iter().filter(|r| r.kind == MEMMAP_TYPE_RAM) {
        let mut start = align_up(region.addr.max(LOW_MEMORY_END));
        let end = align_down((region.addr + region.size).min(DIRECT_MAPPED_END));
        while start < end {
            match reserved.overlap(start, end) {
                Some((s, e)) => {
                    let s = align_down(s).max(start);
                    if s > start {
                        f(start, s);
                    }
                    start = align_up(e);
                }
                None => {
                    f(start, end);
                    break;
                }
            }
        }
    }
}

pub const fn align_up(value: u64) -> u64 {
    (value + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}
pub const fn align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

/// Sets up the heap and the frame allocator from the memory map. `extra_reserved` names what
/// the boot info occupies (the image, the start info); the kernel image is added here.
pub fn init(map: &[MemoryRegion], extra_reserved: &[(u64, u64)]) -> MemoryStats {
    let mut reserved_list = [(0u64, 0u64); 8];
    reserved_list[0] = kernel_image_phys();
    let count = extra_reserved.len().min(reserved_list.len() - 2);
    reserved_list[1..1 + count].copy_from_slice(&extra_reserved[..count]);

    // The heap first: the frame allocator itself allocates from it.
    let mut heap = None;
    for_each_free_range(map, &Reserved(&reserved_list[..1 + count]), |start, end| {
        if heap.is_none() && end - start >= HEAP_SIZE {
            heap = Some(start);
        }
    });
    let Some(heap_start) = heap else {
        crate::log_error!(
            "no {} MiB of contiguous RAM for the kernel heap",
            HEAP_SIZE >> 20
        );
        crate::power::exit(125);
    };
    // SAFETY: [heap_start, heap_start + HEAP_SIZE) is free RAM (not reserved, not the kernel),
    // direct-mapped, and from now on belongs to the heap alone (it is reserved below).
    unsafe {
        HEAP.lock()
            .claim(phys_to_virt(heap_start).as_mut_ptr(), HEAP_SIZE as usize);
    }
    reserved_list[1 + count] = (heap_start, heap_start + HEAP_SIZE);

    let mut frames = FRAMES.lock();
    let mut total = 0;
    for_each_free_range(map, &Reserved(&reserved_list[..2 + count]), |start, end| {
        frames.add_frame((start / PAGE_SIZE) as usize, (end / PAGE_SIZE) as usize);
        total += (end - start) / PAGE_SIZE;
    });
    MemoryStats {
        total_frames: total,
    }
}

/// Allocates one zeroed 4 KiB frame.
pub fn allocate_zeroed_frame() -> Option<PhysFrame> {
    let number = FRAMES.lock().alloc(1)?;
    let phys = number as u64 * PAGE_SIZE;
    // SAFETY: the frame was just handed out by the allocator, so nothing else uses it, and it
    // is direct-mapped.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys).as_mut_ptr::<u8>(), 0, PAGE_SIZE as usize) };
    Some(PhysFrame::containing_address(PhysAddr::new(phys)))
}

/// Returns a frame to the allocator.
pub fn free_frame(frame: PhysFrame) {
    FRAMES
        .lock()
        .dealloc((frame.start_address().as_u64() / PAGE_SIZE) as usize, 1);
}

/// The one page table the kernel and the app share (the boot PML4, kept for life).
fn pml4() -> &'static mut PageTable {
    let pml4_phys = crate::boot::boot_pml4_phys();
    // SAFETY: the boot PML4 is the active page table for the whole life of the kernel and is
    // direct-mapped; every caller holds ADDRESS_SPACE, so no two mutable views exist at once.
    unsafe { &mut *phys_to_virt(pml4_phys).as_mut_ptr::<PageTable>() }
}

fn table_at(phys: PhysAddr) -> &'static mut PageTable {
    // SAFETY: `phys` comes from a present non-leaf entry of our own page table, so it is a page
    // table frame we allocated (or the boot tables), direct-mapped, guarded by ADDRESS_SPACE.
    unsafe { &mut *phys_to_virt(phys.as_u64()).as_mut_ptr::<PageTable>() }
}

/// Serializes every change to the page table.
static ADDRESS_SPACE: Mutex<()> = Mutex::new(());

/// Software bit in a non-present entry: the entry still owns its frame (the page is PROT_NONE).
const PARKED: PageTableFlags = PageTableFlags::BIT_9;
const TABLE_FLAGS: PageTableFlags = PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE);

/// The level-1 entry for `address`, creating the tables above it when `create` is set.
fn leaf_entry(address: u64, create: bool) -> Result<Option<&'static mut PageTableEntry>, MapError> {
    let Ok(address) = VirtAddr::try_new(address) else {
        return Ok(None);
    };
    let indexes = [address.p4_index(), address.p3_index(), address.p2_index()];
    let mut table = pml4();
    for index in indexes {
        let entry = &mut table[index];
        if entry.flags().contains(PageTableFlags::HUGE_PAGE) {
            return Err(MapError::AlreadyMapped);
        }
        if !entry.flags().contains(PageTableFlags::PRESENT) {
            if !create {
                return Ok(None);
            }
            let frame = allocate_zeroed_frame().ok_or(MapError::OutOfMemory)?;
            entry.set_addr(frame.start_address(), TABLE_FLAGS);
        }
        table = table_at(entry.addr());
    }
    Ok(Some(&mut table[address.p1_index()]))
}

/// Drops the boot identity map: the lower half belongs to the app, and address 0 must fault.
pub fn drop_identity_map() {
    let _guard = ADDRESS_SPACE.lock();
    pml4()[0].set_unused();
    x86_64::instructions::tlb::flush_all();
}

/// Page protections of an app mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Protection {
    /// The leaf flags; `None` for PROT_NONE. App pages are supervisor pages (the app runs in
    /// ring 0), so U/S stays clear and SMEP/SMAP never apply.
    fn flags(self) -> Option<PageTableFlags> {
        if !(self.read || self.write || self.execute) {
            return None;
        }
        let mut flags = PageTableFlags::PRESENT;
        if self.write {
            flags |= PageTableFlags::WRITABLE;
        }
        if !self.execute {
            flags |= PageTableFlags::NO_EXECUTE;
        }
        Some(flags)
    }
}

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    OutOfMemory,
    AlreadyMapped,
}

fn owns_frame(entry: &PageTableEntry) -> bool {
    entry.flags().intersects(PageTableFlags::PRESENT | PARKED)
}

fn flush(address: u64) {
    x86_64::instructions::tlb::flush(VirtAddr::new(address));
}

/// Maps fresh zeroed frames over [start, start + len). PROT_NONE ranges get no frames until
/// mprotect makes them accessible. On failure the pages mapped so far are unmapped again.
pub fn map_anonymous(start: u64, len: u64, protection: Protection) -> Result<(), MapError> {
    let _guard = ADDRESS_SPACE.lock();
    let Some(flags) = protection.flags() else {
        return Ok(());
    };
    let mut address = start;
    while address < start + len {
        if let Err(error) = map_one(address, flags) {
            unmap_locked(start, address - start);
            return Err(error);
        }
        address += PAGE_SIZE;
    }
    Ok(())
}

fn map_one(address: u64, flags: PageTableFlags) -> Result<(), MapError> {
    let entry = leaf_entry(address, true)?.ok_or(MapError::OutOfMemory)?;
    if owns_frame(entry) {
        return Err(MapError::AlreadyMapped);
    }
    let frame = allocate_zeroed_frame().ok_or(MapError::OutOfMemory)?;
    entry.set_addr(frame.start_address(), flags);
    Ok(())
}

/// Unmaps [start, start + len), returning the frames to the allocator. Holes are fine.
pub fn unmap(start: u64, len: u64) {
    let _guard = ADDRESS_SPACE.lock();
    unmap_locked(start, len);
}

fn unmap_locked(start: u64, len: u64) {
    let mut address = start;
    while address < start + len {
        if let Ok(Some(entry)) = leaf_entry(address, false) {
            if owns_frame(entry) {
                let frame = PhysFrame::containing_address(entry.addr());
                entry.set_unused();
                flush(address);
                free_frame(frame);
            }
        }
        address += PAGE_SIZE;
    }
}

/// Changes the protection of [start, start + len). PROT_NONE keeps each page's frame (and so
/// its contents) behind a non-present entry; pages that become accessible and have no frame
/// yet get a zeroed one.
pub fn protect(start: u64, len: u64, protection: Protection) -> Result<(), MapError> {
    let _guard = ADDRESS_SPACE.lock();
    let mut address = start;
    while address < start + len {
        match protection.flags() {
            None => {
                if let Ok(Some(entry)) = leaf_entry(address, false) {
                    if owns_frame(entry) {
                        entry.set_flags(PARKED | PageTableFlags::NO_EXECUTE);
                        flush(address);
                    }
                }
            }
            Some(flags) => {
                let entry = leaf_entry(address, true)?.ok_or(MapError::OutOfMemory)?;
                if owns_frame(entry) {
                    entry.set_flags(flags);
                    flush(address);
                } else {
                    map_one(address, flags)?;
                }
            }
        }
        address += PAGE_SIZE;
    }
    Ok(())
}

/// Whether every page of [start, start + len) is present, and writable if `write`.
pub fn is_accessible(start: u64, len: u64, write: bool) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    let _guard = ADDRESS_SPACE.lock();
    let mut address = align_down(start);
    while address < end {
        let Ok(Some(entry)) = leaf_entry(address, false) else {
            return false;
        };
        let flags = entry.flags();
        if !flags.contains(PageTableFlags::PRESENT)
            || (write && !flags.contains(PageTableFlags::WRITABLE))
        {
            return false;
        }
        address += PAGE_SIZE;
    }
    true
}
