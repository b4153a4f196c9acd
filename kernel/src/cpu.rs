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
