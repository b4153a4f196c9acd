//! The `pith` host tool: checks a program, packs it into an image and boots it under QEMU.
#![deny(unsafe_code)]

pub mod accel;
pub mod args;
pub mod build;
pub mod chardev_socket;
pub mod console;
pub mod deps;
pub mod hostlink;
pub mod image;
pub mod inspect;
pub mod kernel_path;
pub mod launch;
pub mod ldcache;
pub mod manifest;
pub mod network;
pub mod package;
pub mod program;
pub mod qemu;
pub mod qemu_process;
pub mod run;
pub mod signals;
pub mod terminal;
pub mod tsc;
pub mod volume;
pub mod workdir;
