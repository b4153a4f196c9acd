//! The app's FPU/SSE/AVX state in signal frames: saved with XSAVE in Linux's format (the
//! `_fpx_sw_bytes` markers of arch/x86/include/uapi/asm/sigcontext.h), restored with XRSTOR.
//! The kernel itself never uses these registers, so the state saved is always the app's.

use pith_syscalls::sigframe::FpuFormat;
use spin::Mutex;

/// FP_XSTATE_MAGIC1 and FP_XSTATE_MAGIC2 (arch/x86/include/uapi/asm/sigcontext.h).
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where the software-reserved bytes of the FXSAVE area start.
const SW_RESERVED_OFFSET: usize = 464;
const MXCSR_OFFSET: usize = 24;
const XSTATE_BV_OFFSET: usize = 512;
const XSAVE_HEADER_END: usize = 576;
/// MXCSR's reserved bits must be zero, or XRSTOR faults.
const MXCSR_VALID: u32 = 0xffff;
/// The buffer is sized for every state component a CPU of today has (AVX-512: 2,696 bytes).
const BUFFER_SIZE: usize = 4096;

#[repr(C, align(64))]
struct XsaveBuffer([u8; BUFFER_SIZE]);

/// One buffer: signal delivery and sigreturn run with interrupts off, one at a time.
static BUFFER: Mutex<XsaveBuffer> = Mutex::new(XsaveBuffer([0; BUFFER_SIZE]));

/// The size of the legacy FXSAVE image, used where the CPU has no XSAVE.
const FXSAVE_SIZE: usize = 512;

/// CPUID's answers, asked once: CPUID is an exit to the hypervisor, and every switch between
/// threads saves and restores the FPU state. 0: not asked yet.
static XSAVE_SIZE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
const NO_XSAVE: usize = usize::MAX;

fn cached_xsave_size() -> usize {
    use core::sync::atomic::Ordering;
    let known = XSAVE_SIZE.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let size = if core::arch::x86_64::__cpuid(1).ecx & (1 << 26) != 0 {
        (core::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize).min(BUFFER_SIZE - 4)
    } else {
        NO_XSAVE
    };
    XSAVE_SIZE.store(size, Ordering::Relaxed);
    size
}

fn has_xsave() -> bool {
    cached_xsave_size() != NO_XSAVE
}

fn xcr0() -> u64 {
    x86_64::registers::xcontrol::XCr0::read_raw()
}

/// The size of an XSAVE image for the enabled components (CPUID.(EAX=0DH,ECX=0):EBX).
fn xsave_size() -> usize {
    cached_xsave_size()
}

/// What a signal frame holds: the XSAVE image and MAGIC2 after it, or a plain FXSAVE image.
pub fn format() -> FpuFormat {
    if has_xsave() {
        FpuFormat {
            size: xsave_size() as u64 + 4,
            xsave: true,
        }
    } else {
        FpuFormat {
            size: FXSAVE_SIZE as u64,
            xsave: false,
        }
    }
}

/// Saves the current (the app's) state in the signal-frame format; `write` copies it out.
pub fn save<R>(write: impl FnOnce(&[u8]) -> R) -> R {
    let mut buffer = BUFFER.lock();
    if !has_xsave() {
        // SAFETY: the buffer is 16-byte aligned and 512 bytes or more; FXSAVE only writes it.
        unsafe {
            core::arch::asm!("fxsave64 [{}]", in(reg) buffer.0.as_mut_ptr(), options(nostack, preserves_flags))
        };
        return write(&buffer.0[..FXSAVE_SIZE]);
    }
    let size = xsave_size();
    buffer.0[..XSAVE_HEADER_END].fill(0);
    let mask = xcr0();
    // SAFETY: the buffer is 64-byte aligned and large enough for every enabled component;
    // XSAVE only writes it, and reads the FPU registers, which belong to the app.
    unsafe {
        core::arch::asm!(
            "xsave64 [{}]",
            in(reg) buffer.0.as_mut_ptr(),
            in("eax") mask as u32,
            in("edx") (mask >> 32) as u32,
            options(nostack, preserves_flags)
        );
    }
    let sw = &mut buffer.0[SW_RESERVED_OFFSET..SW_RESERVED_OFFSET + 48];
    sw.fill(0);
    sw[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    sw[4..8].copy_from_slice(&((size + 4) as u32).to_le_bytes());
    sw[8..16].copy_from_slice(&mask.to_le_bytes());
    sw[16..20].copy_from_slice(&(size as u32).to_le_bytes());
    buffer.0[size..size + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    write(&buffer.0[..size + 4])
}

/// Loads the state rt_sigreturn found: `read` fills the buffer with the frame's image, or
/// `None` resets the FPU (a frame whose fpstate is NULL). The image is sanitized first, so
/// XRSTOR cannot fault on what the app wrote into its frame.
pub fn restore(read: Option<impl FnOnce(&mut [u8]) -> bool>) -> bool {
    let xsave = has_xsave();
    let size = if xsave { xsave_size() } else { FXSAVE_SIZE };
    let mut buffer = BUFFER.lock();
    let loaded = match read {
        Some(read) => read(&mut buffer.0[..size]),
        None => false,
    };
    if !loaded {
        // The initial state: every component in its init configuration.
        buffer.0[..XSAVE_HEADER_END].fill(0);
        buffer.0[MXCSR_OFFSET..MXCSR_OFFSET + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        // FCW as FNINIT leaves it (all exceptions masked, double extended precision).
        buffer.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    }
    let mxcsr = u32::from_le_bytes(
        buffer.0[MXCSR_OFFSET..MXCSR_OFFSET + 4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    buffer.0[MXCSR_OFFSET..MXCSR_OFFSET + 4].copy_from_slice(&(mxcsr & MXCSR_VALID).to_le_bytes());
    if !xsave {
        // SAFETY: a 16-byte aligned 512-byte image with a valid MXCSR; FXRSTOR only loads
        // the FPU registers, which are the app's.
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) buffer.0.as_ptr(), options(nostack, readonly, preserves_flags))
        };
        return loaded;
    }
    let mask = xcr0();
    let xstate_bv = u64::from_le_bytes(
        buffer.0[XSTATE_BV_OFFSET..XSTATE_BV_OFFSET + 8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    buffer.0[XSTATE_BV_OFFSET..XSTATE_BV_OFFSET + 8]
        .copy_from_slice(&(xstate_bv & mask).to_le_bytes());
    // XCOMP_BV and the reserved header bytes must be zero for the standard format.
    buffer.0[XSTATE_BV_OFFSET + 8..XSAVE_HEADER_END].fill(0);
    // SAFETY: the buffer is 64-byte aligned and holds a standard-format image whose header and
    // MXCSR were just made valid; XRSTOR only loads the FPU registers, which are the app's.
    unsafe {
        core::arch::asm!(
            "xrstor64 [{}]",
            in(reg) buffer.0.as_ptr(),
            in("eax") mask as u32,
            in("edx") (mask >> 32) as u32,
            options(nostack, readonly, preserves_flags)
        );
    }
    loaded
}

/// One thread's FPU/SSE/AVX registers while another thread runs: an XSAVE image of the
/// components XCR0 enables (FXSAVE where the CPU has no XSAVE), sized from CPUID.
pub struct FpuContext {
    area: core::ptr::NonNull<u8>,
    layout: core::alloc::Layout,
}

// SAFETY: the area is owned by its FpuContext alone; one CPU touches it at a time.
unsafe impl Send for FpuContext {}

impl FpuContext {
    /// A zeroed area (a valid XSAVE header: nothing saved yet), or None without memory.
    pub fn new() -> Option<FpuContext> {
        let size = if has_xsave() {
            xsave_size()
        } else {
            FXSAVE_SIZE
        };
        let layout = core::alloc::Layout::from_size_align(size, 64).ok()?;
        // SAFETY: the layout has a non-zero size.
        let area = core::ptr::NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })?;
        Some(FpuContext { area, layout })
    }

    /// Saves the registers (the app's: the kernel never uses them) into this area.
    pub fn save(&mut self) {
        let area = self.area.as_ptr();
        if !has_xsave() {
            // SAFETY: the area is 64-byte aligned and 512 bytes; FXSAVE only writes it.
            unsafe {
                core::arch::asm!("fxsave64 [{}]", in(reg) area, options(nostack, preserves_flags))
            };
            return;
        }
        let mask = xcr0();
        // SAFETY: the area is 64-byte aligned, sized by CPUID for XCR0's components, and
        // started zeroed, so its header stays valid for XRSTOR; XSAVE only writes it.
        unsafe {
            core::arch::asm!(
                "xsave64 [{}]",
                in(reg) area,
                in("eax") mask as u32,
                in("edx") (mask >> 32) as u32,
                options(nostack, preserves_flags)
            )
        };
    }

    /// Loads the registers from this area, as `save` left it (or zeroed: the init state).
    pub fn restore(&self) {
        let area = self.area.as_ptr();
        if !has_xsave() {
            // A zeroed FXSAVE image has MXCSR 0 (all exceptions unmasked): give it the
            // default before the first load.
            // SAFETY: bytes 24..28 lie inside the 512-byte area, which only this context owns.
            unsafe {
                let mxcsr = area.add(MXCSR_OFFSET) as *mut u32;
                if mxcsr.read() == 0 {
                    mxcsr.write(0x1f80);
                }
                core::arch::asm!("fxrstor64 [{}]", in(reg) area, options(nostack, readonly, preserves_flags));
            }
            return;
        }
        let mask = xcr0();
        // SAFETY: the area holds a standard-format image written by XSAVE (or zeros, which
        // XRSTOR takes as every component in its init state); it only loads the registers.
        unsafe {
            core::arch::asm!(
                "xrstor64 [{}]",
                in(reg) area,
                in("eax") mask as u32,
                in("edx") (mask >> 32) as u32,
                options(nostack, readonly, preserves_flags)
            )
        };
    }
}

impl Drop for FpuContext {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, and freed once.
        unsafe { alloc::alloc::dealloc(self.area.as_ptr(), self.layout) };
    }
}
