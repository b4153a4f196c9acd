//! Load plans of real programs built at test time by gcc and musl-gcc, and the errors for files that cannot run.

#[path = "support/compile.rs"]
mod compile;

use compile::{compile_bytes, ScratchDir, GCC, MUSL_GCC};
use pith_loader::elf::{EI_CLASS, ELFCLASS32, EM_AARCH64};
use pith_loader::{plan, ElfError, ElfKind, LoadPlan};

const HELLO: &str = r#"
#include <stdio.h>
__thread int counter = 1;
int main(int argc, char **argv) {
    counter += argc;
    printf("hello from %s (%d)\n", argv[0], counter);
    return 0;
}
"#;

/// What every runnable plan must satisfy, whatever built it.
fn check_common(plan: &LoadPlan, what: &str) {
    let entry_segment = plan
        .segment_containing(plan.entry)
        .unwrap_or_else(|| panic!("{what}: entry {:#x} is in no segment", plan.entry));
    assert!(
        entry_segment.flags.execute,
        "{what}: entry {:#x} is in a segment without PF_X",
        plan.entry
    );
    assert!(
        plan.segment_containing(plan.phdr_vaddr).is_some(),
        "{what}: phdr_vaddr {:#x} is in no PT_LOAD",
        plan.phdr_vaddr
    );
    assert_eq!(plan.phent, 56, "{what}");
    assert!(plan.phnum as usize > plan.segments.len(), "{what}");
    assert_eq!(plan.min_vaddr % 4096, 0, "{what}");
    assert_eq!(plan.max_vaddr % 4096, 0, "{what}");
    assert!(plan.min_vaddr < plan.max_vaddr, "{what}");
    for segment in &plan.segments {
        assert!(segment.file_size <= segment.mem_size, "{what}");
        assert!(
            segment.vaddr >= plan.min_vaddr && segment.end() <= plan.max_vaddr,
            "{what}"
        );
    }
    assert!(
        !plan.executable_stack,
        "{what}: modern toolchains mark the stack non-executable"
    );
    let tls = plan
        .tls
        .unwrap_or_else(|| panic!("{what}: the program has a __thread variable"));
    assert!(tls.mem_size >= 4, "{what}");
}

#[test]
fn gcc_static() {
    let scratch = ScratchDir::new("gcc-static");
    let elf = compile_bytes(
        GCC,
        &["-static", "-no-pie", "-O1"],
        HELLO,
        scratch.path(),
        "hello",
    );
    let plan = plan(&elf).expect("gcc -static output is runnable");
    assert_eq!(plan.kind, ElfKind::Executable);
    assert_eq!(plan.interpreter, None);
    assert!(plan.is_static());
    assert_eq!(plan.min_vaddr, 0x40_0000);
    check_common(&plan, "gcc -static");
}

#[test]
fn gcc_static_pie() {
    let scratch = ScratchDir::new("gcc-static-pie");
    let elf = compile_bytes(GCC, &["-static-pie", "-O1"], HELLO, scratch.path(), "hello");
    let plan = plan(&elf).expect("gcc -static-pie output is runnable");
    assert_eq!(plan.kind, ElfKind::PositionIndependent);
    assert_eq!(plan.interpreter, None);
    assert_eq!(plan.min_vaddr, 0);
    check_common(&plan, "gcc -static-pie");
}

#[test]
fn musl_gcc_static() {
    let scratch = ScratchDir::new("musl-static");
    let elf = compile_bytes(
        MUSL_GCC,
        &["-static", "-no-pie", "-O1"],
        HELLO,
        scratch.path(),
        "hello",
    );
    let plan = plan(&elf).expect("musl-gcc -static output is runnable");
    assert_eq!(plan.kind, ElfKind::Executable);
    assert_eq!(plan.interpreter, None);
    assert_eq!(plan.min_vaddr, 0x40_0000);
    check_common(&plan, "musl-gcc -static");
}

#[test]
fn gcc_dynamic() {
    let scratch = ScratchDir::new("gcc-dynamic");
    let elf = compile_bytes(GCC, &["-O1"], HELLO, scratch.path(), "hello");
    let plan = plan(&elf).expect("gcc output is runnable");
    assert_eq!(plan.kind, ElfKind::PositionIndependent);
    assert_eq!(
        plan.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert!(!plan.is_static());
    check_common(&plan, "gcc");
}

#[test]
fn object_file_is_not_executable() {
    let scratch = ScratchDir::new("gcc-object");
    let object = compile_bytes(GCC, &["-c"], HELLO, scratch.path(), "hello.o");
    let error = plan(&object).expect_err("an object file cannot run");
    assert_eq!(
        error,
        ElfError::NotExecutable {
            e_type: 1,
            name: "relocatable object"
        }
    );
}

#[test]
fn shell_script_is_not_elf() {
    let error = plan(b"#!/bin/sh\necho hello\n").expect_err("not an ELF");
    assert!(matches!(error, ElfError::NotElf { .. }), "{error:?}");
    assert!(error.to_string().starts_with("not an ELF file"), "{error}");
}

#[test]
fn aarch64_header_is_the_wrong_machine() {
    let scratch = ScratchDir::new("aarch64");
    let mut elf = compile_bytes(GCC, &["-static", "-no-pie"], HELLO, scratch.path(), "hello");
    elf[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes()); // e_machine
    let error = plan(&elf).expect_err("not x86_64");
    assert_eq!(
        error,
        ElfError::WrongMachine {
            machine: 183,
            name: "aarch64"
        }
    );
    assert!(error.to_string().contains("aarch64"), "{error}");
}

#[test]
fn thirty_two_bit_elf_is_rejected() {
    // An ELF32 i386 header (as gcc -m32 writes it), crafted so the test needs no multilib.
    let mut elf = vec![0u8; 52];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[EI_CLASS] = ELFCLASS32;
    elf[5] = 1; // ELFDATA2LSB
    elf[6] = 1; // EV_CURRENT
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
    let error = plan(&elf).expect_err("32-bit");
    assert_eq!(error, ElfError::Not64Bit { class: 1 });
    assert!(error.to_string().contains("32-bit"), "{error}");
}
