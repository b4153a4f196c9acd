//! CPU features the app expects the OS to enable: SSE is on from boot; here XSAVE/AVX.

use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

/// Enables XSAVE and every user state component the CPU has (x87, SSE, AVX, AVX-512), so
/// glibc's CPU dispatch sees AVX where the hardware has it.
pub fn init() {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    let has_xsave = leaf1.ecx & (1 << 26) != 0;
    if !has_xsave {
        return;
    }
    // SAFETY: CPUID says XSAVE exists; setting OSXSAVE only allows XGETBV/XSETBV and AVX use.
    unsafe { Cr4::update(|flags| flags.insert(Cr4Flags::OSXSAVE)) };
    let supported = core::arch::x86_64::__cpuid_count(0xd, 0).eax as u64;
    let wanted = XCr0Flags::X87.bits()
        | XCr0Flags::SSE.bits()
        | XCr0Flags::AVX.bits()
        | XCr0Flags::OPMASK.bits()
        | XCr0Flags::ZMM_HI256.bits()
        | XCr0Flags::HI16_ZMM.bits();
    let mut enabled = supported & wanted;
    // AVX-512 state is all-or-nothing.
    let avx512 =
        XCr0Flags::OPMASK.bits() | XCr0Flags::ZMM_HI256.bits() | XCr0Flags::HI16_ZMM.bits();
    if enabled & avx512 != avx512 {
        enabled &= !avx512;
    }
    // SAFETY: only components CPUID reports as supported are set, with x87 and SSE included.
    unsafe { XCr0::write_raw(enabled) };
}

/// AT_HWCAP on x86_64: CPUID.1:EDX (arch/x86/include/asm/elf.h ELF_HWCAP).
pub fn hwcap() -> u64 {
    core::arch::x86_64::__cpuid(1).edx as u64
}

/// AT_MINSIGSTKSZ: the signal frame size Linux computes from the XSAVE area (at least 2 KiB).
pub fn min_signal_stack_size() -> u64 {
    let xsave_size = if core::arch::x86_64::__cpuid(1).ecx & (1 << 26) != 0 {
        core::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64
    } else {
        512
    };
    (xsave_size + 1024).max(2048)
}

/// Linux's names for the CPUID feature bits /proc/cpuinfo lists (arch/x86/include/asm/
/// cpufeatures.h): leaf 1 EDX, leaf 1 ECX, leaf 7 EBX.
const LEAF1_EDX: [(u32, &str); 20] = [
    (0, "fpu"),
    (1, "vme"),
    (2, "de"),
    (3, "pse"),
    (4, "tsc"),
    (5, "msr"),
    (6, "pae"),
    (7, "mce"),
    (8, "cx8"),
    (9, "apic"),
    (11, "sep"),
    (12, "mtrr"),
    (13, "pge"),
    (14, "mca"),
    (15, "cmov"),
    (16, "pat"),
    (19, "clflush"),
    (23, "mmx"),
    (24, "fxsr"),
    (25, "sse"),
];
const LEAF1_EDX_MORE: [(u32, &str); 1] = [(26, "sse2")];
const LEAF1_ECX: [(u32, &str); 14] = [
    (0, "pni"),
    (1, "pclmulqdq"),
    (9, "ssse3"),
    (12, "fma"),
    (13, "cx16"),
    (19, "sse4_1"),
    (20, "sse4_2"),
    (22, "movbe"),
    (23, "popcnt"),
    (25, "aes"),
    (26, "xsave"),
    (28, "avx"),
    (29, "f16c"),
    (30, "rdrand"),
];
const LEAF7_EBX: [(u32, &str); 9] = [
    (0, "fsgsbase"),
    (3, "bmi1"),
    (5, "avx2"),
    (8, "bmi2"),
    (9, "erms"),
    (16, "avx512f"),
    (18, "rdseed"),
    (19, "adx"),
    (29, "sha_ni"),
];

/// What /proc/cpuinfo says of this CPU.
pub fn identity(tsc_khz: u64) -> pith_syscalls::platform::CpuIdentity {
    use alloc::string::String;
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    let leaf0 = __cpuid(0);
    let mut vendor = String::new();
    for register in [leaf0.ebx, leaf0.edx, leaf0.ecx] {
        vendor.extend(register.to_le_bytes().iter().map(|&byte| byte as char));
    }
    let mut brand = String::new();
    if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004u32 {
            let part = __cpuid(leaf);
            for register in [part.eax, part.ebx, part.ecx, part.edx] {
                brand.extend(
                    register
                        .to_le_bytes()
                        .iter()
                        .filter(|&&byte| byte != 0)
                        .map(|&byte| byte as char),
                );
            }
        }
    }
    let leaf1 = __cpuid(1);
    let base_family = (leaf1.eax >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((leaf1.eax >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((leaf1.eax >> 4) & 0xf) | (((leaf1.eax >> 16) & 0xf) << 4)
    } else {
        (leaf1.eax >> 4) & 0xf
    };
    let leaf7 = if leaf0.eax >= 7 {
        __cpuid_count(7, 0).ebx
    } else {
        0
    };
    let mut flags = String::new();
    let lists: [(&[(u32, &str)], u32); 4] = [
        (&LEAF1_EDX, leaf1.edx),
        (&LEAF1_EDX_MORE, leaf1.edx),
        (&LEAF1_ECX, leaf1.ecx),
        (&LEAF7_EBX, leaf7),
    ];
    for (names, register) in lists {
        for &(bit, name) in names {
            if register & (1 << bit) != 0 {
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str(name);
            }
        }
    }
    pith_syscalls::platform::CpuIdentity {
        vendor,
        brand: String::from(brand.trim()),
        family,
        model,
        stepping: leaf1.eax & 0xf,
        max_leaf: leaf0.eax,
        khz: tsc_khz,
        flags,
    }
}

/// Whether the CPU is QEMU's TCG emulator: its hypervisor CPUID leaf (0x4000_0000, present
/// when CPUID.1:ECX bit 31 says a hypervisor runs) signs "TCGTCGTCGTCG". Instructions that an
/// emulator runs through a helper call per instruction (CRC32) are then slower than plain
/// code.
pub fn emulated() -> bool {
    if core::arch::x86_64::__cpuid(1).ecx & (1 << 31) == 0 {
        return false;
    }
    let leaf = core::arch::x86_64::__cpuid(0x4000_0000);
    let mut signature = [0u8; 12];
    signature[..4].copy_from_slice(&leaf.ebx.to_le_bytes());
    signature[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
    signature[8..].copy_from_slice(&leaf.edx.to_le_bytes());
    &signature == b"TCGTCGTCGTCG"
}
