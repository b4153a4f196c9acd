//! Compiles small C programs with the host's C compilers for the loader's integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this helper"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A C compiler driver and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Compiler {
    pub program: &'static str,
    pub debian_package: &'static str,
}

pub const GCC: Compiler = Compiler {
    program: "gcc",
    debian_package: "gcc",
};

pub const MUSL_GCC: Compiler = Compiler {
    program: "musl-gcc",
    debian_package: "musl-tools",
};

/// A fresh directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "pith-loader-test-{}-{name}-{unique}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Compiles `source` with `compiler` and `flags` into `directory/name` and returns the output's path.
/// Panics (failing the test) if the compiler is missing, naming the Debian package to install.
pub fn compile(
    compiler: Compiler,
    flags: &[&str],
    source: &str,
    directory: &Path,
    name: &str,
) -> PathBuf {
    let source_path = directory.join(format!("{name}.c"));
    std::fs::write(&source_path, source)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", source_path.display()));
    let output_path = directory.join(name);
    let output = Command::new(compiler.program)
        .args(flags)
        .arg("-o")
        .arg(&output_path)
        .arg(&source_path)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{}` is not installed; these tests need it: install the Debian package `{}` (apt-get install {})",
            compiler.program, compiler.debian_package, compiler.debian_package
        ),
        Err(error) => panic!("cannot run `{}`: {error}", compiler.program),
    };
    assert!(
        output.status.success(),
        "`{} {} -o {} {}` failed ({}):\n{}",
        compiler.program,
        flags.join(" "),
        output_path.display(),
        source_path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output_path
}

/// Compiles like [`compile`] and returns the output file's bytes.
pub fn compile_bytes(
    compiler: Compiler,
    flags: &[&str],
    source: &str,
    directory: &Path,
    name: &str,
) -> Vec<u8> {
    let path = compile(compiler, flags, source, directory, name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}
