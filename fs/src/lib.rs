//! Pith's filesystems, `no_std` + `alloc`, host-tested: what a file, a directory and a
//! filesystem are to the rest of Pith (`node`), the in-memory filesystem that backs `/` and
//! `/tmp` until images land (`memfs`), and the mount table with Linux's path resolution
//! (`vfs`). The kernel's syscall layer reaches files only through these.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod ext4;
pub mod memfs;
pub mod node;
pub mod pagecache;
pub mod readonly;
pub mod vfs;

pub use node::{
    Changes, Creation, DirEntry, Error, FileSystem, FileType, FsStats, Ino, Metadata, NewNode,
    RenameMode, Timestamp,
};
