//! The page table the kernel and the app share, and the app's memory: backed on first touch
//! (demand paging), with page permissions enforced.
//!
//! The syscall layer (`pith_syscalls::mm`) decides where areas go and keeps the process's list
//! of them; every change it makes is followed by a call here with the same range. This file
//! keeps its own copy of those ranges and their protections (`BACKING`), because it must
//! answer page faults, and user-memory checks inside syscalls, without the process lock that a
//! running syscall holds. The two lists change together and so stay identical.

use crate::memory::{align_down, allocate_zeroed_frame, free_frame, phys_to_virt, PAGE_SIZE};
use core::sync::atomic::{AtomicU64, Ordering};
use pith_syscalls::mm::{AddressSpace, Vma, VmaKind, TASK_SIZE};
use pith_syscalls::platform::Protection as AreaProtection;
use spin::Mutex;
use x86_64::structures::paging::{
    page_table::PageTableEntry, PageTable, PageTableFlags, PhysFrame,
};
use x86_64::{PhysAddr, VirtAddr};

/// The app's areas as this file needs them: where pages may be backed, and how. Guarded by
/// its mutex, which also serializes every change to the page table.
static BACKING: Mutex<Option<AddressSpace>> = Mutex::new(None);

/// Frames mapped at more than one address (the pages of one file in two MAP_SHARED mappings):
/// how many mappings each has beyond its first. A frame in here is freed only when its last
/// mapping goes. Changed only with BACKING held.
static SHARED_FRAMES: Mutex<alloc::collections::BTreeMap<u64, u32>> =
    Mutex::new(alloc::collections::BTreeMap::new());

/// How many pages of app memory have a frame (the program's resident set).
static APP_PAGES: AtomicU64 = AtomicU64::new(0);

/// The most pages of app memory that had a frame at once.
static PEAK_APP_PAGES: AtomicU64 = AtomicU64::new(0);

/// The program's resident set, in pages (/proc/self/status VmRSS).
pub fn resident_pages() -> u64 {
    APP_PAGES.load(Ordering::Relaxed)
}

/// The program's largest resident set so far, in pages (VmHWM, getrusage's ru_maxrss).
pub fn peak_resident_pages() -> u64 {
    PEAK_APP_PAGES.load(Ordering::Relaxed)
}

/// Counts one more page of app memory with a frame.
fn count_app_page() {
    count_app_pages(1);
}

/// Counts `pages` more pages of app memory with a frame.
fn count_app_pages(pages: u64) {
    let now = APP_PAGES.fetch_add(pages, Ordering::Relaxed) + pages;
    PEAK_APP_PAGES.fetch_max(now, Ordering::Relaxed);
}

/// Software bit in a non-present entry: the entry still owns its frame (the page is PROT_NONE).
const PARKED: PageTableFlags = PageTableFlags::BIT_9;
/// Software bit: the entry shows a frame it does not own, an image file's page lent to a
/// private mapping (`lend_pages`). Such an entry is never writable: a store by the program
/// copies the page first (`fault_in`), and the kernel copies it before writing it
/// (`writable_frame`), so the image stays as the CLI packed it.
const LENT: PageTableFlags = PageTableFlags::BIT_10;

/// The physical range of the image (the initrd), whose pages may be lent: it is reserved and
/// never written for the VM's life. Set once at boot (`set_lendable`).
static LENDABLE: spin::Once<(u64, u64)> = spin::Once::new();

/// The image's physical range [start, end): its whole pages may be lent to mappings.
pub fn set_lendable(start: u64, end: u64) {
    LENDABLE.call_once(|| (start, end));
}

/// The physical address of the image page at `bytes`, if it is one.
fn lendable_frame(bytes: *const u8) -> Option<PhysAddr> {
    let virt = bytes as u64;
    let phys = virt.checked_sub(crate::boot::DIRECT_MAP_BASE)?;
    let &(start, end) = LENDABLE.get()?;
    let whole = phys.is_multiple_of(PAGE_SIZE) && phys >= start && phys + PAGE_SIZE <= end;
    whole.then(|| PhysAddr::new(phys))
}
const TABLE_FLAGS: PageTableFlags = PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE);

/// Page protections of an app mapping.
pub type Protection = AreaProtection;

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    OutOfMemory,
    AlreadyMapped,
}

/// How the app touched a page, from the page-fault error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    pub execute: bool,
}

/// The one page table (the boot PML4, kept for life).
fn pml4() -> &'static mut PageTable {
    let pml4_phys = crate::boot::boot_pml4_phys();
    // SAFETY: the boot PML4 is the active page table for the whole life of the kernel and is
    // direct-mapped; every caller holds BACKING, so no two mutable views exist at once.
    unsafe { &mut *phys_to_virt(pml4_phys).as_mut_ptr::<PageTable>() }
}

fn table_at(phys: PhysAddr) -> &'static mut PageTable {
    // SAFETY: `phys` comes from a present non-leaf entry of our own page table, so it is a page
    // table frame we allocated (or the boot tables), direct-mapped, guarded by BACKING.
    unsafe { &mut *phys_to_virt(phys.as_u64()).as_mut_ptr::<PageTable>() }
}

/// The level-1 entry for `address`, creating the tables above it when `create` is set.
fn leaf_entry(address: u64, create: bool) -> Result<Option<&'static mut PageTableEntry>, MapError> {
    let Ok(address) = VirtAddr::try_new(address) else {
        return Ok(None);
    };
    Ok(leaf_table(address, create)?.map(|table| &mut table[address.p1_index()]))
}

/// The level-1 table that maps `address`, creating it and the tables above it when `create`
/// is set.
fn leaf_table(address: VirtAddr, create: bool) -> Result<Option<&'static mut PageTable>, MapError> {
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
    Ok(Some(table))
}

/// Drops the boot identity map (the lower half belongs to the app, and address 0 must fault)
/// and starts the app's (empty) list of areas.
pub fn init() {
    let mut backing = BACKING.lock();
    pml4()[0].set_unused();
    x86_64::instructions::tlb::flush_all();
    *backing = Some(AddressSpace::new(0, 0));
}

/// The leaf flags of a protection; `None` for PROT_NONE. App pages are supervisor pages (the
/// app runs in ring 0), so U/S stays clear and SMEP/SMAP never apply.
fn leaf_flags(protection: Protection) -> Option<PageTableFlags> {
    if !(protection.read || protection.write || protection.execute) {
        return None;
    }
    let mut flags = PageTableFlags::PRESENT;
    if protection.write {
        flags |= PageTableFlags::WRITABLE;
    }
    if !protection.execute {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    Some(flags)
}

/// Whether the entry shows a frame (its own, or a lent one), present or parked.
fn owns_frame(entry: &PageTableEntry) -> bool {
    entry.flags().intersects(PageTableFlags::PRESENT | PARKED)
}

fn is_lent(entry: &PageTableEntry) -> bool {
    entry.flags().contains(LENT)
}

/// The flags of a page with a frame under `protection`: PROT_NONE parks the frame behind a
/// non-present entry; a lent page stays read-only and keeps its mark.
fn backed_flags(protection: Protection, lent: bool) -> PageTableFlags {
    let flags = leaf_flags(protection).unwrap_or(PARKED | PageTableFlags::NO_EXECUTE);
    if lent {
        (flags - PageTableFlags::WRITABLE) | LENT
    } else {
        flags
    }
}

/// Clears an entry that shows a frame: its own frame goes back (`release_frame`), a lent one
/// stays where it is.
fn drop_entry(page: u64, entry: &mut PageTableEntry) {
    let frame = PhysFrame::containing_address(entry.addr());
    let lent = is_lent(entry);
    entry.set_unused();
    flush(page);
    if lent {
        APP_PAGES.fetch_sub(1, Ordering::Relaxed);
    } else {
        release_frame(frame);
    }
}

/// Gives a lent page's entry a frame of its own with the same bytes, mapped with `flags`.
fn copy_lent(
    page: u64,
    entry: &mut PageTableEntry,
    flags: PageTableFlags,
) -> Result<(), FaultError> {
    // Not zeroed: every byte is copied over.
    let copy = crate::memory::allocate_contiguous(1).ok_or(FaultError::OutOfMemory)?;
    // SAFETY: both frames are direct-mapped and a page long; the lent one is only read, and
    // the new one is ours alone until the entry below shows it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(entry.addr().as_u64()).as_ptr::<u8>(),
            phys_to_virt(copy).as_mut_ptr::<u8>(),
            PAGE_SIZE as usize,
        );
    }
    entry.set_addr(PhysAddr::new(copy), flags - LENT);
    flush(page);
    Ok(())
}

fn flush(address: u64) {
    x86_64::instructions::tlb::flush(VirtAddr::new_truncate(address));
}

fn pages(start: u64, len: u64) -> impl Iterator<Item = u64> {
    (align_down(start)..start.saturating_add(len)).step_by(PAGE_SIZE as usize)
}

/// The level-1 table that maps `address`, or, where a level above has no table, how much
/// address space around it (512 GiB, 1 GiB or 2 MiB, aligned) has none.
fn level1_table(address: VirtAddr) -> Result<&'static mut PageTable, u64> {
    let levels = [
        (address.p4_index(), 1u64 << 39),
        (address.p3_index(), 1 << 30),
        (address.p2_index(), 1 << 21),
    ];
    let mut table = pml4();
    for (index, span) in levels {
        let entry = &table[index];
        if !entry.flags().contains(PageTableFlags::PRESENT)
            || entry.flags().contains(PageTableFlags::HUGE_PAGE)
        {
            return Err(span);
        }
        table = table_at(entry.addr());
    }
    Ok(table)
}

/// Calls `f` with each page of [start, start + len) that has a level-1 entry, skipping whole
/// spans without tables: madvise and munmap of a large, mostly untouched range (a thread's
/// 8 MiB stack, a 64 GiB reservation) cost what is mapped, not what is reserved.
fn for_each_entry(start: u64, len: u64, mut f: impl FnMut(u64, &mut PageTableEntry)) {
    let end = start.saturating_add(len).min(TASK_SIZE);
    let mut page = align_down(start);
    while page < end {
        let Ok(address) = VirtAddr::try_new(page) else {
            return;
        };
        match level1_table(address) {
            Ok(table) => {
                let table_end = ((page >> 21) + 1) << 21;
                while page < end.min(table_end) {
                    let index = VirtAddr::new_truncate(page).p1_index();
                    f(page, &mut table[index]);
                    page += PAGE_SIZE;
                }
            }
            Err(span) => page = (page / span + 1) * span,
        }
    }
}

/// Makes [start, start + len) app memory of `protection`, backed on first touch. Whatever was
/// there before is dropped.
pub fn map_anonymous(start: u64, len: u64, protection: Protection) {
    let mut guard = BACKING.lock();
    let Some(backing) = guard.as_mut() else {
        return;
    };
    unmap_pages(start, len);
    backing.remove(start, start + len);
    backing.insert(Vma {
        start,
        end: start + len,
        protection,
        kind: VmaKind::Anonymous,
    });
    backing.merge_around(start, start + len);
}

/// Adds an area the process's list grew (a MAP_GROWSDOWN area's growth), backed on touch.
pub fn add_area(area: Vma) {
    let mut guard = BACKING.lock();
    if let Some(backing) = guard.as_mut() {
        if backing.is_free(area.start, area.end) {
            backing.insert(area);
            backing.merge_around(area.start, area.end);
        }
    }
}

/// Backs every page of [start, start + len) now (MAP_POPULATE, and the program's segments the
/// loader copies into).
pub fn populate(start: u64, len: u64) -> Result<(), MapError> {
    let guard = BACKING.lock();
    let Some(backing) = guard.as_ref() else {
        return Ok(());
    };
    for page in pages(start, len) {
        let Some(vma) = backing.find(page) else {
            continue;
        };
        let Some(flags) = leaf_flags(vma.protection) else {
            continue;
        };
        let entry = leaf_entry(page, true)?.ok_or(MapError::OutOfMemory)?;
        if !owns_frame(entry) {
            let frame = allocate_zeroed_frame().ok_or(MapError::OutOfMemory)?;
            entry.set_addr(frame.start_address(), flags);
            count_app_page();
        }
    }
    Ok(())
}

/// Drops [start, start + len): its frames go back to the allocator and its pages no longer
/// exist. Holes are fine.
pub fn unmap(start: u64, len: u64) {
    let mut guard = BACKING.lock();
    unmap_pages(start, len);
    if let Some(backing) = guard.as_mut() {
        backing.remove(start, start.saturating_add(len));
    }
}

/// Frees the frames of [start, start + len) but keeps the areas: the pages read back as zero
/// on the next touch (MADV_DONTNEED).
pub fn discard(start: u64, len: u64) {
    let _guard = BACKING.lock();
    unmap_pages(start, len);
}

fn unmap_pages(start: u64, len: u64) {
    for_each_entry(start, len, |page, entry| {
        if owns_frame(entry) {
            drop_entry(page, entry);
        }
    });
}

/// One mapping of `frame` is gone: the frame goes back to the allocator unless another
/// mapping still shows it (`SHARED_FRAMES`).
fn release_frame(frame: PhysFrame) {
    let address = frame.start_address().as_u64();
    let mut shared = SHARED_FRAMES.lock();
    match shared.get_mut(&address) {
        Some(others) if *others > 1 => *others -= 1,
        Some(_) => {
            shared.remove(&address);
        }
        None => free_frame(frame),
    }
    APP_PAGES.fetch_sub(1, Ordering::Relaxed);
}

/// Maps the frames of [source, source + len) at [target, target + len) as well, so that both
/// show the same bytes (two MAP_SHARED mappings of one file's pages): a store through one is
/// seen through the other. `target` must be an area already; a frame it had is released.
/// Pages of the source without a frame are left alone at the target.
pub fn share_pages(source: u64, target: u64, len: u64) -> Result<(), MapError> {
    let guard = BACKING.lock();
    let Some(backing) = guard.as_ref() else {
        return Ok(());
    };
    for offset in (0..len).step_by(PAGE_SIZE as usize) {
        let (from, to) = (source + offset, target + offset);
        let frame = match leaf_entry(from, false)? {
            Some(entry) if owns_frame(entry) => entry.addr(),
            _ => continue,
        };
        let Some(vma) = backing.find(to) else {
            continue;
        };
        let flags = leaf_flags(vma.protection).unwrap_or(PARKED | PageTableFlags::NO_EXECUTE);
        let entry = leaf_entry(to, true)?.ok_or(MapError::OutOfMemory)?;
        if owns_frame(entry) {
            if entry.addr() == frame {
                continue;
            }
            drop_entry(to, entry);
        }
        entry.set_addr(frame, flags);
        flush(to);
        *SHARED_FRAMES.lock().entry(frame.as_u64()).or_insert(0) += 1;
        count_app_page();
    }
    Ok(())
}

/// Changes the protection of [start, start + len), keeping the contents: backed pages take
/// the new flags (PROT_NONE parks their frame behind a non-present entry); the others stay
/// unbacked until touched.
pub fn protect(start: u64, len: u64, protection: Protection) {
    let mut guard = BACKING.lock();
    if let Some(backing) = guard.as_mut() {
        // The syscall layer checked that the range is fully mapped.
        let _ = backing.protect(start, start.saturating_add(len), protection);
    }
    for_each_entry(start, len, |page, entry| {
        if !owns_frame(entry) {
            return;
        }
        // Whether the program stored to the page survives (`page_dirty`).
        let dirty = entry.flags() & PageTableFlags::DIRTY;
        entry.set_flags(backed_flags(protection, is_lent(entry)) | dirty);
        flush(page);
    });
}

/// Why a page fault could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No area covers the address (SEGV_MAPERR).
    NotMapped,
    /// An area covers it, but not for this access (SEGV_ACCERR).
    AccessDenied,
    /// The page could not be backed.
    OutOfMemory,
}

/// Backs the page at `address` if its area allows `access`; the faulting instruction can then
/// run again.
pub fn handle_page_fault(address: u64, access: Access) -> Result<(), FaultError> {
    let guard = BACKING.lock();
    fault_in(guard.as_ref(), address, access)
}

fn fault_in(
    backing: Option<&AddressSpace>,
    address: u64,
    access: Access,
) -> Result<(), FaultError> {
    if address >= TASK_SIZE {
        return Err(FaultError::NotMapped);
    }
    let vma = backing
        .and_then(|backing| backing.find(address))
        .ok_or(FaultError::NotMapped)?;
    let protection = vma.protection;
    let allowed = (protection.read || protection.write || protection.execute)
        && (!access.write || protection.write)
        && (!access.execute || protection.execute);
    if !allowed {
        return Err(FaultError::AccessDenied);
    }
    let flags = leaf_flags(protection).ok_or(FaultError::AccessDenied)?;
    let entry = leaf_entry(address, true)
        .map_err(|_| FaultError::OutOfMemory)?
        .ok_or(FaultError::OutOfMemory)?;
    if is_lent(entry) && access.write {
        // A store to an image's page: the mapping is private, so the page becomes its own.
        return copy_lent(align_down(address), entry, flags);
    }
    if owns_frame(entry) {
        // Backed already, but its entry does not allow what the area allows (a parked
        // PROT_NONE page mprotect opened, or a stale TLB): make the entry agree with the
        // area, so the retry cannot fault again.
        let dirty = entry.flags() & PageTableFlags::DIRTY;
        entry.set_flags(backed_flags(protection, is_lent(entry)) | dirty);
        flush(address);
        return Ok(());
    }
    let frame = allocate_zeroed_frame().ok_or(FaultError::OutOfMemory)?;
    entry.set_addr(frame.start_address(), flags);
    count_app_page();
    Ok(())
}

/// Whether every page of [start, start + len) may be accessed (written, if `write`), backing
/// pages on first touch as the fault handler would: the check before a syscall copies to or
/// from the app.
pub fn ensure_accessible(start: u64, len: u64, write: bool) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    if end > TASK_SIZE {
        return false;
    }
    let guard = BACKING.lock();
    let mut address = align_down(start);
    while address < end {
        let present = match leaf_entry(address, false) {
            Ok(Some(entry)) => {
                let flags = entry.flags();
                flags.contains(PageTableFlags::PRESENT)
                    && (!write || flags.contains(PageTableFlags::WRITABLE))
            }
            _ => false,
        };
        if !present
            && fault_in(
                guard.as_ref(),
                address,
                Access {
                    write,
                    execute: false,
                },
            )
            .is_err()
        {
            return false;
        }
        address += PAGE_SIZE;
    }
    true
}

/// The areas as this file has them: the process's list starts as a copy, so the two agree.
pub fn areas() -> alloc::vec::Vec<Vma> {
    BACKING
        .lock()
        .as_ref()
        .map(|backing| backing.vmas().copied().collect())
        .unwrap_or_default()
}

/// Moves the frames of [from, from + len) to [to, to + len), with `protection`; the old
/// entries are cleared. The target's area was made by map_anonymous just before (mremap).
pub fn move_pages(from: u64, to: u64, len: u64, protection: Protection) -> Result<(), MapError> {
    let _guard = BACKING.lock();
    // First make every target entry (the tables above it may need frames), so that running out
    // of memory leaves everything where it was.
    for offset in (0..len).step_by(PAGE_SIZE as usize) {
        if let Ok(Some(old)) = leaf_entry(from + offset, false) {
            if owns_frame(old) {
                leaf_entry(to + offset, true)?.ok_or(MapError::OutOfMemory)?;
            }
        }
    }
    for offset in (0..len).step_by(PAGE_SIZE as usize) {
        let Ok(Some(old)) = leaf_entry(from + offset, false) else {
            continue;
        };
        if !owns_frame(old) {
            continue;
        }
        let frame = old.addr();
        let lent = is_lent(old);
        let dirty = old.flags() & PageTableFlags::DIRTY;
        old.set_unused();
        flush(from + offset);
        let Ok(Some(new)) = leaf_entry(to + offset, false) else {
            continue;
        };
        new.set_addr(frame, backed_flags(protection, lent) | dirty);
    }
    Ok(())
}

/// Whether each page from `start` on has its memory (one byte per page in `out`, bit 0).
pub fn residency(start: u64, out: &mut [u8]) {
    let _guard = BACKING.lock();
    for (index, byte) in out.iter_mut().enumerate() {
        let address = start + index as u64 * PAGE_SIZE;
        *byte = matches!(leaf_entry(address, false), Ok(Some(entry)) if owns_frame(entry)) as u8;
    }
}

/// Whether the page at `address` has a frame the program stored to since its dirty bit was
/// last cleared (`forget_stores`).
pub fn page_dirty(address: u64) -> bool {
    let _guard = BACKING.lock();
    match leaf_entry(address, false) {
        Ok(Some(entry)) if owns_frame(entry) => entry.flags().contains(PageTableFlags::DIRTY),
        _ => false,
    }
}

/// Clears the dirty bits of [start, start + len), so that the next store sets them again.
pub fn forget_stores(start: u64, len: u64) {
    let _guard = BACKING.lock();
    for_each_entry(start, len, |page, entry| {
        if owns_frame(entry) && entry.flags().contains(PageTableFlags::DIRTY) {
            entry.set_flags(entry.flags() - PageTableFlags::DIRTY);
            flush(page);
        }
    });
}

/// Shows the image pages at `bytes` (`len` bytes, whole pages) from `address` on, pages of
/// areas, in place of whatever was there: read-only until the program stores to one (then it
/// is copied, `fault_in`). Returns how many bytes from the start it showed: 0 if `bytes` is
/// not whole pages of the image; short of `len` where the areas end. One look-up of the area
/// and one walk of the tables per 2 MiB, not per page: ld.so maps every library whole.
pub fn lend_pages(address: u64, bytes: *const u8, len: u64) -> u64 {
    let len = align_down(len);
    if len == 0 || !address.is_multiple_of(PAGE_SIZE) {
        return 0;
    }
    let (Some(first), Some(_)) = (
        lendable_frame(bytes),
        lendable_frame(bytes.wrapping_add(len.saturating_sub(PAGE_SIZE) as usize)),
    ) else {
        return 0;
    };
    let guard = BACKING.lock();
    let Some(backing) = guard.as_ref() else {
        return 0;
    };
    let end = address.saturating_add(len);
    let mut page = address;
    while page < end {
        let Some(vma) = backing.find(page) else {
            break;
        };
        let flags = backed_flags(vma.protection, true);
        let stop = vma.end.min(end);
        while page < stop {
            let Ok(virt) = VirtAddr::try_new(page) else {
                break;
            };
            let Ok(Some(table)) = leaf_table(virt, true) else {
                break;
            };
            // The end of the 2 MiB this level-1 table maps.
            let block_end = ((page | ((1 << 21) - 1)) + 1).min(stop);
            let mut shown = 0;
            while page < block_end {
                let entry = &mut table[VirtAddr::new_truncate(page).p1_index()];
                // A fresh entry needs no flush: nothing caches a translation that was not
                // present. One that showed a frame is dropped (and flushed) first.
                if owns_frame(entry) {
                    drop_entry(page, entry);
                }
                entry.set_addr(first + (page - address), flags);
                page += PAGE_SIZE;
                shown += 1;
            }
            count_app_pages(shown);
        }
        if page < stop {
            break;
        }
    }
    page - address
}

/// The physical address of the page at `address` for the kernel to write through the direct
/// map (a write(2) reaching a mapping of the file): a lent page is first given a copy of its
/// own, with its dirty bit clear, as the program has not stored to it.
pub fn writable_frame(address: u64) -> Option<u64> {
    let _guard = BACKING.lock();
    let entry = match leaf_entry(address, false) {
        Ok(Some(entry)) if owns_frame(entry) => entry,
        _ => return None,
    };
    if is_lent(entry) {
        let flags = entry.flags();
        copy_lent(align_down(address), entry, flags).ok()?;
    }
    Some(entry.addr().as_u64() + address % PAGE_SIZE)
}

/// The physical address behind app address `address`, if its page has a frame (to read: a
/// lent page is the image's own, see `writable_frame`).
pub fn physical_address(address: u64) -> Option<u64> {
    let _guard = BACKING.lock();
    match leaf_entry(address, false) {
        Ok(Some(entry)) if owns_frame(entry) => Some(entry.addr().as_u64() + address % PAGE_SIZE),
        _ => None,
    }
}
