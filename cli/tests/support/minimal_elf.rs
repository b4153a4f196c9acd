//! A minimal ELF64 x86_64 executable, built byte by byte for tests that need a program file.

/// `EM_X86_64` (include/uapi/linux/elf-em.h).
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64` (include/uapi/linux/elf-em.h).
pub const EM_AARCH64: u16 = 183;

/// An ET_EXEC for `machine` with one PT_LOAD covering the whole file, and a PT_INTERP naming
/// `interpreter` when there is one. It is never run: only its headers are read.
pub fn minimal_elf(machine: u16, interpreter: Option<&str>) -> Vec<u8> {
    const PT_LOAD: u32 = 1;
    const PT_INTERP: u32 = 3;
    let phnum: u16 = if interpreter.is_some() { 2 } else { 1 };
    let interp_offset = 64 + 56 * u64::from(phnum);
    let interp = interpreter
        .map(|text| format!("{text}\0"))
        .unwrap_or_default();
    let interp_len = interp.len() as u64;
    let file_len = interp_offset + interp_len;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\x7fELF");
    bytes.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    bytes.extend_from_slice(&machine.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes()); // e_version
    bytes.extend_from_slice(&0x40_0000u64.to_le_bytes()); // e_entry
    bytes.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    bytes.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    bytes.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    bytes.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    bytes.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    bytes.extend_from_slice(&phnum.to_le_bytes());
    bytes.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    bytes.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    bytes.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    let mut program_header = |p_type: u32, p_flags: u32, offset: u64, size: u64, align: u64| {
        let vaddr = 0x40_0000 + offset;
        for field in [p_type, p_flags] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        for field in [offset, vaddr, vaddr, size, size, align] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
    };
    program_header(PT_LOAD, 5, 0, file_len, 0x1000); // R+X
    if interpreter.is_some() {
        program_header(PT_INTERP, 4, interp_offset, interp_len, 1);
    }
    bytes.extend_from_slice(interp.as_bytes());
    bytes
}
