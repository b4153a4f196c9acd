//! The vDSO and its time page, mapped into the program so that clock_gettime, gettimeofday,
//! time and getcpu make no syscall (kernel/vdso/vdso.c is the code).

use crate::memory::PAGE_SIZE;
use crate::paging;
use pith_syscalls::platform::Protection;

/// The vDSO as built by build.rs: an ELF shared object with no relocations, mapped as is.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

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
