//! Profiles the small-file path of scripts/bench --files on the host: create, write 1 KiB,
//! fsync and close FILES files in one directory of an ext4 volume in memory, with the caches
//! the kernel uses. Prints the time per file for each tenth of the run, and the disk's
//! writes and flushes per file. For instruction profiles:
//! `valgrind --tool=callgrind target/release/examples/small_files 2000`.

use pith_fs::ext4::{format, CachedDisk, Disk, Ext4Fs};
use pith_fs::{Creation, Error, FileSystem, NewNode, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// The disk's writes, bytes written and flushes so far.
static WRITES: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static FLUSHES: AtomicU64 = AtomicU64::new(0);

struct MemoryDisk {
    bytes: Vec<u8>,
}

impl Disk for MemoryDisk {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error> {
        let at = offset as usize;
        buffer.copy_from_slice(&self.bytes[at..at + buffer.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let at = offset as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        WRITES.fetch_add(1, Relaxed);
        WRITTEN.fetch_add(data.len() as u64, Relaxed);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        FLUSHES.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn now() -> Timestamp {
    Timestamp {
        seconds: 1_700_000_000,
        nanoseconds: 0,
    }
}

fn main() {
    let files: u64 = std::env::args()
        .nth(1)
        .and_then(|count| count.parse().ok())
        .unwrap_or(10_000);
    // An image file (say, from mkfs.ext4) as the second argument, else a volume rsext4 formats.
    let image = std::env::args().nth(2);
    let bytes = match &image {
        Some(path) => std::fs::read(path).expect("the image"),
        None => vec![0; 256 << 20],
    };
    let disk = MemoryDisk { bytes };
    let disk = match image {
        Some(_) => disk,
        None => format(disk, now).expect("mkfs"),
    };
    let cached = CachedDisk::new(disk, 16 << 20);
    let mut fs = Ext4Fs::mount(cached, now)
        .map_err(|failure| failure.1)
        .expect("mount")
        .with_page_cache(32 << 20);
    let creation = Creation {
        permissions: 0o644,
        uid: 0,
        gid: 0,
        now: now(),
    };
    let root = fs.root();
    let dir = fs
        .create(root, b"bench", NewNode::Directory, creation)
        .expect("mkdir");
    let counters = || {
        (
            WRITES.load(Relaxed),
            WRITTEN.load(Relaxed),
            FLUSHES.load(Relaxed),
        )
    };
    let (writes_before, written_before, flushes_before) = counters();
    let payload = [b'x'; 1024];
    let tenth = (files / 10).max(1);
    let mut start = Instant::now();
    for i in 0..files {
        let name = format!("small-{i}");
        if fs.lookup(dir, name.as_bytes()) != Err(Error::NotFound) {
            panic!("{name} exists");
        }
        let ino = fs
            .create(dir, name.as_bytes(), NewNode::Regular, creation)
            .expect("create");
        fs.open(ino);
        fs.write(ino, 0, &payload, now()).expect("write");
        fs.sync(Some(ino)).expect("fsync");
        fs.close(ino);
        if (i + 1) % tenth == 0 {
            let each = start.elapsed().as_nanos() as u64 / tenth;
            println!(
                "files {:>6}..{:>6}: {:>7} ns each",
                i + 1 - tenth,
                i + 1,
                each
            );
            start = Instant::now();
        }
    }
    let (writes, written, flushes) = counters();
    println!(
        "per file: {:.1} disk writes, {:.1} KiB written, {:.2} flushes",
        (writes - writes_before) as f64 / files as f64,
        (written - written_before) as f64 / 1024.0 / files as f64,
        (flushes - flushes_before) as f64 / files as f64
    );
}
