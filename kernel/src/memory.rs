//! Physical memory: the direct map, the frame allocator (buddy) and the kernel heap (talc).

use crate::boot::{DIRECT_MAP_BASE, KERNEL_VMA};
use crate::pvh::{MemoryRegion, MEMMAP_TYPE_RAM};
use buddy_system_allocator::FrameAllocator;
use spin::Mutex;
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

pub const PAGE_SIZE: u64 = 4096;
/// The kernel heap starts as a sixteenth of RAM within these bounds: the app's memory comes
/// from frames, not the heap, which holds the kernel's bookkeeping (areas, fds, inodes of
/// tmpfs, rsext4's tables). It grows from the frame allocator by `HEAP_GROWTH` at a time when
/// it runs low (`grow_heap`): tens of thousands of files outgrow any fixed size.
const MIN_HEAP_SIZE: u64 = 1 << 20;
const MAX_HEAP_SIZE: u64 = 16 << 20;
const HEAP_GROWTH_FRAMES: usize = 512; // 2 MiB
/// The heap grows when less than this is free: enough that the frame allocator's own
/// bookkeeping (it allocates from the heap) never finds the heap empty while it grows it.
const HEAP_LOW_WATER: u64 = 1 << 20;
/// The first megabyte holds firmware tables and the start info: never hand it out.
const LOW_MEMORY_END: u64 = 1 << 20;
/// The boot page tables direct-map physical memory below this address.
pub const DIRECT_MAPPED_END: u64 = 4 << 30;

static HEAP: talc::TalcLock<spin::mutex::SpinMutex<()>, talc::source::Manual> =
    talc::TalcLock::new(talc::source::Manual);

/// The kernel's allocator: page-sized, page-aligned allocations (tmpfs's file pages) are
/// whole frames from the buddy allocator, through the direct map; everything else is heap.
/// The heap is a sixteenth of RAM at most, sized for bookkeeping, not for file data.
struct KernelAllocator;

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;

fn is_page(layout: core::alloc::Layout) -> bool {
    layout.size() == PAGE_SIZE as usize && layout.align() == PAGE_SIZE as usize
}

// SAFETY: page allocations are distinct frames handed out by the buddy allocator and
// returned to it once; the rest is talc's, whose GlobalAlloc contract holds.
unsafe impl core::alloc::GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if is_page(layout) {
            return match FRAMES.lock().alloc(1) {
                Some(number) => {
                    FRAMES_IN_USE.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                    phys_to_virt(number as u64 * PAGE_SIZE).as_mut_ptr()
                }
                None => core::ptr::null_mut(),
            };
        }
        // SAFETY: forwarded with the caller's layout, per GlobalAlloc's contract.
        let pointer = unsafe { core::alloc::GlobalAlloc::alloc(&HEAP, layout) };
        if pointer.is_null() {
            if grow_heap(layout.size() + layout.align()) {
                // SAFETY: as above, now with more memory claimed.
                return unsafe { core::alloc::GlobalAlloc::alloc(&HEAP, layout) };
            }
            return pointer;
        }
        if heap_free() < HEAP_LOW_WATER {
            grow_heap(0);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: core::alloc::Layout) {
        if is_page(layout) {
            let phys = pointer as u64 - DIRECT_MAP_BASE;
            FRAMES_IN_USE.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
            FRAMES.lock().dealloc((phys / PAGE_SIZE) as usize, 1);
            return;
        }
        // SAFETY: `pointer` came from HEAP with this layout (alloc above).
        unsafe { core::alloc::GlobalAlloc::dealloc(&HEAP, pointer, layout) }
    }
}

static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// Set while the heap grows: the frame allocator may allocate from the heap meanwhile, and
/// that allocation must not try to grow it again (FRAMES is not reentrant).
static GROWING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Bytes of the heap not allocated.
fn heap_free() -> u64 {
    let allocated = HEAP.lock().counters().allocated_bytes as u64;
    heap_size().saturating_sub(allocated)
}

/// Gives the heap `HEAP_GROWTH_FRAMES` more frames, contiguous, from the frame allocator, or
/// enough for an allocation of `at_least` bytes if that is more (each growth is a region of
/// its own: an allocation cannot span two); false if there are none, or it is growing
/// already, or the frame allocator is busy.
fn grow_heap(at_least: usize) -> bool {
    use core::sync::atomic::Ordering;
    if GROWING.swap(true, Ordering::Acquire) {
        return false;
    }
    // try_lock: this runs inside the allocator, which the frame allocator itself calls with
    // FRAMES held (its free lists live on the heap); then the heap grows another time.
    // Room for talc's own headers of the region besides the allocation.
    let count = HEAP_GROWTH_FRAMES
        .max((at_least + 4096).div_ceil(PAGE_SIZE as usize))
        .next_power_of_two();
    let first = FRAMES.try_lock().and_then(|mut frames| frames.alloc(count));
    let grown = match first {
        Some(number) => {
            let bytes = count as u64 * PAGE_SIZE;
            FRAMES_IN_USE.fetch_add(count as u64, Ordering::Relaxed);
            HEAP_BYTES.fetch_add(bytes, Ordering::Relaxed);
            // SAFETY: the frames were just handed out by the frame allocator, so nothing
            // else uses them; they are direct-mapped, and belong to the heap from now on
            // (never returned).
            unsafe {
                HEAP.lock().claim(
                    phys_to_virt(number as u64 * PAGE_SIZE).as_mut_ptr(),
                    bytes as usize,
                );
            }
            true
        }
        None => false,
    };
    GROWING.store(false, Ordering::Release);
    grown
}

/// Counts of physical frames, for the memory line in the boot log.
pub struct MemoryStats {
    pub total_frames: u64,
    pub heap_size: u64,
}

static HEAP_BYTES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Frames handed out and not yet returned: page tables, the program's pages, the vDSO.
static FRAMES_IN_USE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Frames the allocator was given at boot.
static TOTAL_FRAMES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The frames the allocator manages, and how many of them are free now (sysinfo).
pub fn ram_pages() -> (u64, u64) {
    let total = TOTAL_FRAMES.load(core::sync::atomic::Ordering::Relaxed);
    let used = FRAMES_IN_USE.load(core::sync::atomic::Ordering::Relaxed);
    (total, total.saturating_sub(used))
}

/// What the kernel occupies at a moment, in bytes: its image (code, data, bss with the boot
/// page tables and the stacks), the heap it claimed and the part of it in use, and frames.
pub struct Footprint {
    pub image: u64,
    pub heap_claimed: u64,
    pub heap_in_use: u64,
    pub frames: u64,
}

impl Footprint {
    /// What the kernel really uses: the image, the heap's allocations, the frames.
    pub fn in_use(&self) -> u64 {
        self.image + self.heap_in_use + self.frames
    }
}

/// The footprint now. Before the program is loaded, every frame in use is the kernel's.
pub fn footprint() -> Footprint {
    let (start, end) = kernel_image_phys();
    Footprint {
        image: end - start,
        heap_claimed: heap_size(),
        heap_in_use: HEAP.lock().counters().allocated_bytes as u64,
        frames: FRAMES_IN_USE.load(core::sync::atomic::Ordering::Relaxed) * PAGE_SIZE,
    }
}

/// The size of the kernel heap: claimed at boot, and grown since.
pub fn heap_size() -> u64 {
    HEAP_BYTES.load(core::sync::atomic::Ordering::Relaxed)
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

    let ram: u64 = map
        .iter()
        .filter(|region| region.kind == MEMMAP_TYPE_RAM)
        .map(|region| region.size)
        .sum();
    let heap_size = align_down((ram / 16).clamp(MIN_HEAP_SIZE, MAX_HEAP_SIZE));
    // The heap first: the frame allocator itself allocates from it.
    let mut heap = None;
    for_each_free_range(map, &Reserved(&reserved_list[..1 + count]), |start, end| {
        if heap.is_none() && end - start >= heap_size {
            heap = Some(start);
        }
    });
    let Some(heap_start) = heap else {
        crate::log_error!(
            "no {} MiB of contiguous RAM for the kernel heap",
            heap_size >> 20
        );
        crate::power::exit(125);
    };
    // SAFETY: [heap_start, heap_start + heap_size) is free RAM (not reserved, not the kernel),
    // direct-mapped, and from now on belongs to the heap alone (it is reserved below).
    unsafe {
        HEAP.lock()
            .claim(phys_to_virt(heap_start).as_mut_ptr(), heap_size as usize);
    }
    reserved_list[1 + count] = (heap_start, heap_start + heap_size);

    let mut frames = FRAMES.lock();
    let mut total = 0;
    for_each_free_range(map, &Reserved(&reserved_list[..2 + count]), |start, end| {
        frames.add_frame((start / PAGE_SIZE) as usize, (end / PAGE_SIZE) as usize);
        total += (end - start) / PAGE_SIZE;
    });
    HEAP_BYTES.store(heap_size, core::sync::atomic::Ordering::Relaxed);
    TOTAL_FRAMES.store(total, core::sync::atomic::Ordering::Relaxed);
    MemoryStats {
        total_frames: total,
        heap_size,
    }
}

/// Allocates one zeroed 4 KiB frame.
pub fn allocate_zeroed_frame() -> Option<PhysFrame> {
    let number = FRAMES.lock().alloc(1)?;
    FRAMES_IN_USE.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let phys = number as u64 * PAGE_SIZE;
    // SAFETY: the frame was just handed out by the allocator, so nothing else uses it, and it
    // is direct-mapped.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys).as_mut_ptr::<u8>(), 0, PAGE_SIZE as usize) };
    Some(PhysFrame::containing_address(PhysAddr::new(phys)))
}

/// Allocates `count` contiguous frames (a power of two), not zeroed; returns the first's
/// physical address.
pub fn allocate_contiguous(count: usize) -> Option<u64> {
    let number = FRAMES.lock().alloc(count)?;
    FRAMES_IN_USE.fetch_add(count as u64, core::sync::atomic::Ordering::Relaxed);
    Some(number as u64 * PAGE_SIZE)
}

/// Returns frames from `allocate_contiguous`.
pub fn free_contiguous(phys: u64, count: usize) {
    FRAMES_IN_USE.fetch_sub(count as u64, core::sync::atomic::Ordering::Relaxed);
    FRAMES.lock().dealloc((phys / PAGE_SIZE) as usize, count);
}

/// Returns a frame to the allocator.
pub fn free_frame(frame: PhysFrame) {
    FRAMES_IN_USE.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    FRAMES
        .lock()
        .dealloc((frame.start_address().as_u64() / PAGE_SIZE) as usize, 1);
}
