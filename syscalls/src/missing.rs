//! `pith run --missing-files`: every path the program asked for that the VM's tree does not
//! have (an open, stat, access or readlink that said ENOENT), logged once each, so the user
//! can add it to the manifest. ld.so's search of its directories shows up here too: each
//! directory it tried before the one holding a library.

use crate::args::UserPath;
use crate::errno::Errno;
use crate::platform::{Context, LogLevel, PATH_MAX};
use alloc::vec::Vec;

/// Which argument of a syscall (by number) is the path it looks up.
fn path_argument(number: u64) -> Option<usize> {
    match number {
        2 /* open */ | 4 /* stat */ | 6 /* lstat */ | 21 /* access */ | 85 /* creat */
        | 89 /* readlink */ | 59 /* execve */ => Some(0),
        257 /* openat */ | 262 /* newfstatat */ | 267 /* readlinkat */ | 269 /* faccessat */
        | 322 /* execveat */ | 332 /* statx */ | 437 /* openat2 */ | 439 /* faccessat2 */ => Some(1),
        _ => None,
    }
}

/// After syscall `number` with `args` returned `value`: if the program asked for a path
/// that is not there, the path (made absolute from the working directory) is logged the
/// first time.
pub fn note(context: &mut Context, number: u64, args: &[u64; 6], value: u64) {
    if value != Errno::ENOENT.to_return() {
        return;
    }
    let Some(index) = path_argument(number) else {
        return;
    };
    let Ok(mut path) = context.read_c_string(UserPath(args[index]).0, PATH_MAX - 1) else {
        return;
    };
    if path.is_empty() {
        return;
    }
    if !path.starts_with(b"/") {
        let cwd = context.process.cwd;
        let mut absolute: Vec<u8> = context.process.vfs.path_of(cwd).unwrap_or_default();
        if absolute.last() != Some(&b'/') {
            absolute.push(b'/');
        }
        absolute.extend_from_slice(&path);
        path = absolute;
    }
    let Some(seen) = context.process.missing_files.as_mut() else {
        return;
    };
    if seen.insert(path.clone()) {
        let shown = alloc::string::String::from_utf8_lossy(&path);
        let call = crate::table::name_of(number).unwrap_or("?");
        context.platform.log(
            LogLevel::Warn,
            format_args!("missing file: {shown} ({call})"),
        );
    }
}
