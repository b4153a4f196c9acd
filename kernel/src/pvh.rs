//! The PVH start info the hypervisor hands us: memory map, command line, modules (the image).
//!
//! Layouts from xen/include/public/arch-x86/hvm/start_info.h.

use crate::memory::phys_to_virt;

const HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// `XEN_HVM_MEMMAP_TYPE_RAM`: usable RAM (E820 type 1).
pub const MEMMAP_TYPE_RAM: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}
const _: () = assert!(core::mem::size_of::<HvmStartInfo>() == 56);

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}
const _: () = assert!(core::mem::size_of::<HvmModlistEntry>() == 32);

/// One entry of the memory map (E820-style).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
    reserved: u32,
}
const _: () = assert!(core::mem::size_of::<MemoryRegion>() == 24);

/// What the kernel needs from the start info, copied out of guest memory.
pub struct BootInfo {
    pub start_info_phys: u64,
    pub memory_map: &'static [MemoryRegion],
    pub command_line: &'static str,
    /// The first module: the Pith image (physical address, size).
    pub image: Option<(u64, u64)>,
    /// The ACPI RSDP's physical address, or 0 when the hypervisor gave none.
    pub rsdp: u64,
}

/// Why the start info cannot be used.
#[derive(Debug)]
pub enum BootInfoError {
    BadMagic(u32),
    NoMemoryMap(u32),
    /// Something the hypervisor handed us lies where the boot page tables do not map.
    OutOfReach(&'static str, u64),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            BootInfoError::BadMagic(magic) => write!(
                formatter,
                "magic {magic:#x}, expected {HVM_START_MAGIC_VALUE:#x}: not booted through PVH"
            ),
            BootInfoError::OutOfReach(what, address) => write!(
                formatter,
                "the {what} at {address:#x} is above the first 4 GiB, which is all the boot page tables map"
            ),
            BootInfoError::NoMemoryMap(version) => write!(
                formatter,
                "start info version {version} has no memory map (version 1 or later needed)"
            ),
        }
    }
}

/// Reads the start info at `phys`.
fn check_reach(what: &'static str, start: u64, len: u64) -> Result<(), BootInfoError> {
    match start.checked_add(len) {
        Some(end) if end <= crate::memory::DIRECT_MAPPED_END => Ok(()),
        _ => Err(BootInfoError::OutOfReach(what, start)),
    }
}

pub fn parse(phys: u64) -> Result<BootInfo, BootInfoError> {
    check_reach(
        "start info",
        phys,
        core::mem::size_of::<HvmStartInfo>() as u64,
    )?;
    // SAFETY: the hypervisor placed the start info at `phys`, inside the first 4 GiB that the
    // boot page tables direct-map, and nothing else writes it.
    let info: HvmStartInfo =
        unsafe { phys_to_virt(phys).as_ptr::<HvmStartInfo>().read_unaligned() };
    if info.magic != HVM_START_MAGIC_VALUE {
        return Err(BootInfoError::BadMagic(info.magic));
    }
    if info.version < 1 || info.memmap_paddr == 0 || info.memmap_entries == 0 {
        return Err(BootInfoError::NoMemoryMap(info.version));
    }
    check_reach(
        "memory map",
        info.memmap_paddr,
        info.memmap_entries as u64 * 24,
    )?;
    check_reach("command line", info.cmdline_paddr, 4096)?;
    check_reach(
        "module list",
        info.modlist_paddr,
        info.nr_modules as u64 * 32,
    )?;
    // SAFETY: the memory map is an array of `memmap_entries` entries in direct-mapped memory the
    // hypervisor reserved for it (it is not E820 RAM, so the frame allocator never hands it out).
    let memory_map = unsafe {
        core::slice::from_raw_parts(
            phys_to_virt(info.memmap_paddr).as_ptr::<MemoryRegion>(),
            info.memmap_entries as usize,
        )
    };
    let command_line = if info.cmdline_paddr == 0 {
        ""
    } else {
        // SAFETY: a NUL-terminated string in reserved, direct-mapped memory.
        let cstr = unsafe { core::ffi::CStr::from_ptr(phys_to_virt(info.cmdline_paddr).as_ptr()) };
        cstr.to_str().unwrap_or("")
    };
    let image = if info.nr_modules >= 1 && info.modlist_paddr != 0 {
        // SAFETY: the module list holds `nr_modules` entries in reserved, direct-mapped memory.
        let module = unsafe {
            phys_to_virt(info.modlist_paddr)
                .as_ptr::<HvmModlistEntry>()
                .read_unaligned()
        };
        check_reach("image (initrd)", module.paddr, module.size)?;
        Some((module.paddr, module.size))
    } else {
        None
    };
    Ok(BootInfo {
        start_info_phys: phys,
        memory_map,
        command_line,
        image,
        rsdp: info.rsdp_paddr,
    })
}
