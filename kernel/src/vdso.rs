//! The vDSO and its time page, mapped into the program so that clock_gettime, gettimeofday,
//! time and getcpu make no syscall (kernel/vdso/vdso.c is the code).

use crate::memory::PAGE_SIZE;
use crate::paging;
use pith_syscalls::platform::Protection;

/// The vDSO as built by build.rs: an ELF shared object with no relocations, mapped as is.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// The time page's physical address (0 before it is mapped): the kernel updates the wall
/// clock in it through the direct map, the program's mapping being read-only.
static VVAR_PHYS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Puts the new wall-clock base into the time page, where the vDSO reads it (one aligned
/// 8-byte store: the vDSO never sees half of it).
pub fn update_realtime(realtime_at_boot_ns: u64) {
    let phys = VVAR_PHYS.load(core::sync::atomic::Ordering::Relaxed);
    if phys == 0 {
        return;
    }
    let field =
        crate::memory::phys_to_virt(phys + core::mem::offset_of!(Vvar, realtime_at_boot_ns) as u64);
    // SAFETY: `phys` is the time page's frame, owned by the program's read-only mapping for the
    // life of the program; the field is 8-byte aligned, and only this function writes it.
    unsafe {
        field
            .as_mut_ptr::<u64>()
            .write_volatile(realtime_at_boot_ns)
    };
}

/// The time page (vdso.c's `struct pith_vvar`): keep the two layouts in step.
#[repr(C)]
struct Vvar {
    tsc_at_boot: u64,
    mult: u64,
    realtime_at_boot_ns: u64,
}

/// Maps the time page at `at` and the vDSO right after it; returns the vDSO's address (for
/// AT_SYSINFO_EHDR) and the end of the mapping. Failing, the program runs without a vDSO.
pub fn map(at: u64) -> Option<(u64, u64)> {
    let writable = Protection {
        read: true,
        write: true,
        execute: false,
    };
    let image_pages = (IMAGE.len() as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let vdso = at + PAGE_SIZE;
    paging::map_anonymous(at, PAGE_SIZE + image_pages, writable);
    if paging::populate(at, PAGE_SIZE + image_pages).is_err() {
        paging::unmap(at, PAGE_SIZE + image_pages);
        return None;
    }
    let (tsc_at_boot, mult, realtime_at_boot_ns) = crate::clock::parameters();
    let vvar = Vvar {
        tsc_at_boot,
        mult,
        realtime_at_boot_ns,
    };
    // SAFETY: [at, at + PAGE_SIZE) and [vdso, vdso + image_pages) were just mapped writable
    // and backed, in the app's lower half; no Rust reference points there.
    unsafe {
        (at as *mut Vvar).write(vvar);
        core::ptr::copy_nonoverlapping(IMAGE.as_ptr(), vdso as *mut u8, IMAGE.len());
    }
    paging::protect(
        at,
        PAGE_SIZE,
        Protection {
            read: true,
            write: false,
            execute: false,
        },
    );
    VVAR_PHYS.store(
        paging::physical_address(at).unwrap_or(0),
        core::sync::atomic::Ordering::Relaxed,
    );
    paging::protect(
        vdso,
        image_pages,
        Protection {
            read: true,
            write: false,
            execute: true,
        },
    );
    Some((vdso, vdso + image_pages))
}
