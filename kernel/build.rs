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
}
