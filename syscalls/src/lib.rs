//! The Linux system-call ABI layer: the syscall table, typed handlers and uapi types.
//!
//! Everything here is plain logic over the [`Platform`] trait, which the kernel implements
//! with real hardware and the unit tests implement with a fake; so this crate builds and is
//! tested on the host with `cargo test`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod args;
pub mod credentials;
pub mod epoll;
pub mod errno;
pub mod eventfd;
pub mod files;
pub mod fs;
pub mod futex;
pub mod inet;
pub mod locks;
pub mod missing;
pub mod mm;
pub mod names;
pub mod net;
pub mod offload;
pub mod pipe;
pub mod platform;
pub mod poll;
pub mod process;
pub mod procfs;
pub mod random;
pub mod sched;
pub mod sigframe;
pub mod signal;
pub mod table;
pub mod thread;
pub mod time;
pub mod timerfd;
pub mod trace;
pub mod uapi;
pub mod unix;
pub mod xattr;

#[cfg(test)]
mod testing;

pub use errno::Errno;
pub use platform::{Context, Platform};
pub use process::Process;
pub use table::dispatch;
