//! Links the kernel with its linker script (higher-half layout, PVH note), and builds the vDSO
//! (vdso/vdso.c) with the C compiler into a shared object the kernel embeds.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("linker.ld").display()
    );
    println!("cargo:rustc-link-arg-bins=-znoexecstack");
    println!("cargo:rerun-if-changed=linker.ld");
    for file in ["vdso/vdso.c", "vdso/vdso.lds", "vdso/vdso.map"] {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-env-changed=CC");

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let vdso = dir.join("vdso");
    let status = Command::new(&compiler)
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-builtin",
            "-mno-red-zone",
            "-Wall",
            "-Werror",
        ])
        .arg(format!("-Wl,-T,{}", vdso.join("vdso.lds").display()))
        .arg(format!(
            "-Wl,--version-script={}",
            vdso.join("vdso.map").display()
        ))
        .args([
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--no-undefined",
        ])
        .arg("-o")
        .arg(out.join("vdso.so"))
        .arg(vdso.join("vdso.c"))
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building the vDSO with {compiler} failed ({status})"),
        Err(error) => panic!("cannot run {compiler} to build the vDSO ({error}): install gcc (`apt-get install gcc`) or set CC"),
    }
    let image = std::fs::read(out.join("vdso.so")).expect("read the vDSO just built");
    if let Some(section) = relocation_section(&image) {
        panic!("the vDSO has a relocation section ({section}): the kernel maps it as is, so it must need none");
    }
}

/// The index of a SHT_REL or SHT_RELA section with contents, if the ELF64 `image` has one.
fn relocation_section(image: &[u8]) -> Option<usize> {
    let word = |at: usize, size: usize| -> u64 {
        image.get(at..at + size).map_or(0, |bytes| {
            bytes
                .iter()
                .rev()
                .fold(0, |value, &byte| value << 8 | byte as u64)
        })
    };
    let (table, entry_size, count) = (
        word(0x28, 8) as usize,
        word(0x3a, 2) as usize,
        word(0x3c, 2) as usize,
    );
    (0..count).find(|index| {
        let header = table + index * entry_size;
        let kind = word(header + 4, 4);
        (kind == 4 || kind == 9) && word(header + 0x20, 8) > 0 // SHT_RELA, SHT_REL; sh_size
    })
}
