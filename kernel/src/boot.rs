//! PVH entry: the 32-bit code QEMU/Firecracker/cloud-hypervisor jump to, up to long mode in the higher half.
//!
//! The hypervisor starts us in 32-bit protected mode with paging off, `ebx` holding the physical
//! address of `struct hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h). We build
//! boot page tables that map the first 4 GiB of physical memory three times: identity (only
//! until we are running in the higher half), the direct map at `DIRECT_MAP_BASE`, and the kernel
//! image at `KERNEL_VMA` (the top 2 GiB), then enter long mode and call `kernel_main`.

use core::arch::global_asm;

/// Where the kernel image is linked: physical address + KERNEL_VMA (see linker.ld).
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// The direct map of all physical memory: physical address + DIRECT_MAP_BASE.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;

// The PVH ELF note: XEN_ELFNOTE_PHYS32_ENTRY (18, xen/include/public/elfnote.h) holding the
// 32-bit physical address of `pvh_start`.
global_asm!(
    r#"
    .section .note.pvh, "a"
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long pvh_start - 0xffffffff80000000
    "#,
    options(att_syntax)
);

global_asm!(
    r#"
    .set KVMA, 0xffffffff80000000
    .section .text.boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    /* The first instruction's TSC, for the boot-time debug line. */
    rdtsc
    movl %eax, (boot_tsc - KVMA)
    movl %edx, (boot_tsc + 4 - KVMA)
    movl %ebx, %esi

    /* Four page directories of 2 MiB pages map physical 0..4 GiB. */
    movl $(boot_pd - KVMA), %edi
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax                 /* present | writable | huge */
    movl %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jne 1b

    /* PDPT for the low half and the direct map: four 1 GiB slots. */
    movl $(boot_pdpt_low - KVMA), %edi
    movl $(boot_pd - KVMA + 0x0003), %eax
    movl %eax, 0(%edi)
    addl $0x1000, %eax
    movl %eax, 8(%edi)
    addl $0x1000, %eax
    movl %eax, 16(%edi)
    addl $0x1000, %eax
    movl %eax, 24(%edi)

    /* PDPT for the top 2 GiB: slots 510 and 511 map physical 0..2 GiB. */
    movl $(boot_pdpt_high - KVMA), %edi
    movl $(boot_pd - KVMA + 0x0003), %eax
    movl %eax, (510 * 8)(%edi)
    addl $0x1000, %eax
    movl %eax, (511 * 8)(%edi)

    movl $(boot_pml4 - KVMA), %edi
    movl $(boot_pdpt_low - KVMA + 0x0003), %eax
    movl %eax, 0(%edi)              /* identity, dropped once in the higher half */
    movl %eax, (256 * 8)(%edi)      /* direct map at 0xffff800000000000 */
    movl $(boot_pdpt_high - KVMA + 0x0003), %eax
    movl %eax, (511 * 8)(%edi)      /* kernel image at 0xffffffff80000000 */

    /* CR4: PAE | OSFXSR | OSXMMEXCPT (the app uses SSE; the kernel never does). */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl %edi, %cr3
    /* EFER: SCE (syscall) | LME (long mode) | NXE (no-execute pages). */
    movl $0xc0000080, %ecx
    rdmsr
    orl $((1 << 0) | (1 << 8) | (1 << 11)), %eax
    wrmsr
    /* CR0: PG | WP (read-only pages bind ring 0 too) | MP | NE; clear EM and TS. */
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1)), %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    movl %eax, %cr0

    lgdt (boot_gdtr - KVMA)
    ljmp $0x08, $(pvh_start64 - KVMA)

    .code64
pvh_start64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    movabsq $pvh_start_higher_half, %rax
    jmp *%rax

    .section .text
pvh_start_higher_half:
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movl %esi, %edi                 /* hvm_start_info physical address, zero-extended */
    call kernel_main
2:  hlt
    jmp 2b

    .section .rodata
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdtr:
    .word boot_gdtr - boot_gdt - 1
    .quad boot_gdt - KVMA

    .section .bss
    .balign 4096
    .global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
    .balign 16
boot_stack:     .skip 65536
boot_stack_top:
    .balign 8
    .global boot_tsc
boot_tsc:       .skip 8
    "#,
    options(att_syntax)
);

extern "C" {
    static boot_tsc: u64;
    static boot_pml4: u8;
}

/// The TSC value read by the very first instruction of the kernel.
pub fn first_instruction_tsc() -> u64 {
    // SAFETY: boot_tsc is written once by the 32-bit entry code, before any Rust runs.
    unsafe { core::ptr::addr_of!(boot_tsc).read_volatile() }
}

/// The physical address of the boot PML4, which stays the kernel's page table.
pub fn boot_pml4_phys() -> u64 {
    let virt = core::ptr::addr_of!(boot_pml4) as u64;
    virt - KERNEL_VMA
}
