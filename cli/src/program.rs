//! Reading the program to run and checking, before any VM starts, that Pith can run it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

use pith_loader::elf::{plan, ElfError};

/// The program, read and checked.
#[derive(Debug)]
pub struct Program {
    /// The ELF file's bytes.
    pub bytes: Vec<u8>,
    /// The file's name, without its directories (`/<name>` is where a program named by a
    /// relative path goes inside the VM: `image::program_path_in_vm`).
    pub file_name: OsString,
    /// A dynamically linked program's interpreter (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2.
    pub interpreter: Option<String>,
    /// Where it is on the host (for finding its libraries); None for one read from an image.
    pub host_path: Option<std::path::PathBuf>,
}

/// Why the program cannot run. Each message starts with the path as the user typed it.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("{path}: no such file")]
    Missing { path: Shown },
    #[error("{path}: is a directory, not a program")]
    Directory { path: Shown },
    #[error("{path}: not a regular file (Pith runs programs from ELF files)")]
    NotRegularFile { path: Shown },
    // The causes below are part of the message rather than a `source`, so that anyhow's `{:#}`
    // does not print them twice.
    #[error("{path}: cannot read it: {error}")]
    Unreadable { path: Shown, error: std::io::Error },
    #[error("{path}: {error}")]
    NotRunnableElf { path: Shown, error: ElfError },
}

/// A path as the user typed it, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(OsString);

impl fmt::Display for Shown {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", Path::new(&self.0).display())
    }
}

/// Reads the program at `typed` (as the user typed it) and checks it is an x86_64 ELF
/// executable the kernel can load (static, or with an interpreter that `pith` packs).
pub fn read_program(typed: &OsStr) -> Result<Program, ProgramError> {
    let path = Path::new(typed);
    let shown = || Shown(typed.to_os_string());
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => ProgramError::Missing { path: shown() },
        _ => ProgramError::Unreadable {
            path: shown(),
            error: source,
        },
    })?;
    if metadata.is_dir() {
        return Err(ProgramError::Directory { path: shown() });
    }
    if !metadata.is_file() {
        return Err(ProgramError::NotRegularFile { path: shown() });
    }
    let bytes = std::fs::read(path).map_err(|error| ProgramError::Unreadable {
        path: shown(),
        error,
    })?;
    let interpreter = check_elf(&bytes).map_err(|error| ProgramError::NotRunnableElf {
        path: shown(),
        error,
    })?;
    // `metadata` succeeded and it is a file, so the path has a last component.
    let file_name = path.file_name().unwrap_or(typed).to_os_string();
    let host_path = std::path::absolute(path).ok();
    Ok(Program {
        bytes,
        file_name,
        interpreter,
        host_path,
    })
}

/// The loader's own plan decides whether the kernel could load it; the answer is the
/// program's interpreter, if it has one.
fn check_elf(bytes: &[u8]) -> Result<Option<String>, ElfError> {
    Ok(plan(bytes)?.interpreter)
}

/// A program read from an image (`pith run --image`): its path inside and its bytes, checked
/// as `read_program` checks a host file.
pub fn program_from_bytes(path_inside: &[u8], bytes: Vec<u8>) -> Result<Program, ProgramError> {
    let shown = || {
        Shown(OsString::from(
            String::from_utf8_lossy(path_inside).into_owned(),
        ))
    };
    let interpreter = check_elf(&bytes).map_err(|error| ProgramError::NotRunnableElf {
        path: shown(),
        error,
    })?;
    let name = path_inside
        .rsplit(|&byte| byte == b'/')
        .next()
        .unwrap_or(path_inside);
    Ok(Program {
        bytes,
        file_name: OsString::from(String::from_utf8_lossy(name).into_owned()),
        interpreter,
        host_path: None,
    })
}

#[cfg(test)]
#[path = "../tests/support/minimal_elf.rs"]
mod minimal_elf;

#[cfg(test)]
mod tests {
    use super::*;
    use minimal_elf::{minimal_elf as elf, EM_AARCH64, EM_X86_64};
    use std::io::Write as _;

    fn write_temp(directory: &tempfile::TempDir, name: &str, bytes: &[u8]) -> OsString {
        let path = directory.path().join(name);
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(bytes).expect("write");
        path.into_os_string()
    }

    #[test]
    fn a_static_x86_64_program_is_accepted() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = write_temp(&directory, "hello", &elf(EM_X86_64, None));
        let program = read_program(&path).expect("static x86_64 ELF");
        assert_eq!(program.file_name, "hello");
        assert_eq!(program.bytes, elf(EM_X86_64, None));
    }

    #[test]
    fn a_missing_file() {
        let error = read_program(OsStr::new("./no-such-program-here")).expect_err("missing");
        assert_eq!(error.to_string(), "./no-such-program-here: no such file");
    }

    #[test]
    fn a_directory() {
        let directory = tempfile::tempdir().expect("tempdir");
        let error = read_program(directory.path().as_os_str()).expect_err("directory");
        assert!(matches!(error, ProgramError::Directory { .. }), "{error}");
    }

    #[test]
    fn not_an_elf() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = write_temp(&directory, "script.sh", b"#!/bin/sh\necho hi\n");
        let error = read_program(&path).expect_err("a script");
        assert!(
            matches!(
                error,
                ProgramError::NotRunnableElf {
                    error: ElfError::NotElf { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("not an ELF file"), "{error}");
    }

    #[test]
    fn another_machine_is_named() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = write_temp(&directory, "arm", &elf(EM_AARCH64, None));
        let error = read_program(&path).expect_err("aarch64");
        assert!(
            matches!(
                error,
                ProgramError::NotRunnableElf {
                    error: ElfError::WrongMachine {
                        machine: EM_AARCH64,
                        ..
                    },
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_dynamically_linked_program_is_taken_with_its_interpreter() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = write_temp(
            &directory,
            "prog",
            &elf(EM_X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
        );
        let program = read_program(&path).expect("dynamic programs are taken");
        assert_eq!(
            program.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(
            program.host_path.as_deref(),
            Some(std::path::absolute(&path).unwrap().as_path())
        );
    }
}
