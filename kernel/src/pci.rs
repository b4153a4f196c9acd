//! PCI, for virtio devices on machines that put them there (QEMU's q35, cloud-hypervisor): the
//! ECAM window from ACPI's MCFG table, bus 0 enumerated through virtio-drivers. The firmware
//! or the VMM has placed the BARs (SeaBIOS does on q35; cloud-hypervisor itself); a device
//! with a BAR left unplaced is reported and not used, rather than placed where RAM might be.

use crate::memory::phys_to_virt;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Cam, Command, DeviceFunction, MmioCam, PciRoot,
};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;

/// Where the BIOS area is searched for an RSDP when the PVH start info names none (ACPI 6.5,
/// 5.2.5.1: the 16-byte boundaries of 0xE0000..0xFFFFF).
const BIOS_AREA: core::ops::Range<u64> = 0xe_0000..0x10_0000;

/// Reads `length` bytes of physical memory below 4 GiB (ACPI tables, in reserved RAM that the
/// direct map covers).
fn physical(address: u64, length: usize) -> Option<&'static [u8]> {
    if address.checked_add(length as u64)? > 1 << 32 {
        return None;
    }
    // SAFETY: below 4 GiB everything is direct-mapped (boot.rs); ACPI tables are firmware
    // data nothing writes after boot.
    Some(unsafe { core::slice::from_raw_parts(phys_to_virt(address).as_ptr::<u8>(), length) })
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, byte| sum.wrapping_add(*byte)) == 0
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32_at(bytes, at)) | (u64::from(u32_at(bytes, at + 4)) << 32)
}

/// The RSDP: where the PVH start info says, else found in the BIOS area.
fn rsdp(hint: u64) -> Option<&'static [u8]> {
    let valid = |address: u64| {
        let bytes = physical(address, 36)?;
        (&bytes[..8] == b"RSD PTR " && checksum_ok(&bytes[..20])).then_some(bytes)
    };
    if hint != 0 {
        return valid(hint);
    }
    BIOS_AREA.step_by(16).find_map(valid)
}

/// A system description table (checked) at `address`.
fn table(address: u64) -> Option<&'static [u8]> {
    let header = physical(address, 36)?;
    let length = u32_at(header, 4) as usize;
    let bytes = physical(address, length.max(36))?;
    checksum_ok(bytes).then_some(bytes)
}

/// The physical base of PCI segment 0's ECAM, from the MCFG table.
pub fn ecam_base(rsdp_hint: u64) -> Option<u64> {
    let Some(rsdp) = rsdp(rsdp_hint) else {
        crate::log_debug!("pci: no ACPI RSDP (start info: {rsdp_hint:#x})");
        return None;
    };
    // ACPI 2.0 and later: the XSDT (64-bit entries); 1.0: the RSDT (32-bit entries).
    let (root, entry_size) = if rsdp[15] >= 2 && u64_at(rsdp, 24) != 0 {
        (table(u64_at(rsdp, 24))?, 8)
    } else {
        (table(u64::from(u32_at(rsdp, 16)))?, 4)
    };
    let mcfg = root[36..]
        .chunks_exact(entry_size)
        .map(|entry| {
            if entry_size == 8 {
                u64_at(entry, 0)
            } else {
                u64::from(u32_at(entry, 0))
            }
        })
        .filter_map(table)
        .find(|table| &table[..4] == b"MCFG");
    // QEMU's microvm (with pcie=on) describes its ECAM only in the DSDT's AML, which is not
    // read here: PCI is found on machines with an MCFG table (q35, cloud-hypervisor).
    let Some(mcfg) = mcfg else {
        crate::log_debug!("pci: no MCFG table: no PCI");
        return None;
    };
    // After the header, 8 reserved bytes, then 16-byte entries: base, segment, bus range.
    mcfg.get(44..)?
        .chunks_exact(16)
        .find(|entry| u16::from_le_bytes([entry[8], entry[9]]) == 0 && entry[10] == 0)
        .map(|entry| u64_at(entry, 0))
}

/// Checks that every memory BAR of `function` has an address, then turns on memory decoding
/// and bus mastering (the device reads and writes the queues in RAM).
fn enable(
    root: &mut PciRoot<MmioCam<'static>>,
    function: DeviceFunction,
) -> Result<(), &'static str> {
    let bars = root
        .bars(function)
        .map_err(|_| "a BAR of an unknown type")?;
    for bar in bars.iter().flatten() {
        if let BarInfo::Memory {
            address: 0,
            size: 1..,
            ..
        } = bar
        {
            return Err("a memory BAR the firmware left unplaced");
        }
    }
    let (_, command) = root.get_status_command(function);
    root.set_command(
        function,
        command | Command::MEMORY_SPACE | Command::BUS_MASTER,
    );
    Ok(())
}

/// The transport of the first virtio device of type `wanted` on PCI bus 0, if the machine
/// has PCI (an MCFG table).
pub fn find_virtio(rsdp_hint: u64, wanted: DeviceType) -> Option<PciTransport> {
    let base = ecam_base(rsdp_hint)?;
    crate::log_debug!("pci: ECAM at {base:#x}");
    if base.checked_add(256 << 20).is_none_or(|end| end > 1 << 32) {
        crate::log_warn!("pci: ECAM at {base:#x} is not below 4 GiB, where the direct map reaches");
        return None;
    }
    // SAFETY: the MCFG table names a 256 MiB ECAM region for buses 0..=255 of segment 0; it
    // lies below 4 GiB (checked), which the direct map covers, and only this driver uses it.
    let cam = unsafe { MmioCam::new(phys_to_virt(base).as_mut_ptr(), Cam::Ecam) };
    let mut root = PciRoot::new(cam);
    let found = root
        .enumerate_bus(0)
        .find(|(_, info)| virtio_device_type(info) == Some(wanted))
        .map(|(function, _)| function)?;
    if let Err(reason) = enable(&mut root, found) {
        crate::log_warn!("pci: virtio device at {found}: {reason}");
        return None;
    }
    match PciTransport::new::<crate::virtio_blk::PithHal, _>(&mut root, found) {
        Ok(transport) => {
            crate::log_info!("pci: virtio {wanted:?} at {found}");
            Some(transport)
        }
        Err(error) => {
            crate::log_warn!("pci: virtio device at {found}: {error:?}");
            None
        }
    }
}
