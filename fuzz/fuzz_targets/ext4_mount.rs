//! Mounts damaged ext4 volumes the way the kernel does (pith_fs::ext4::Ext4Fs over a disk),
//! then walks, reads and writes them: every outcome must be an error or a success, never a
//! panic, a hang or an unbounded allocation.
//!
//! The input damages a valid volume rather than being one: a whole image is megabytes, far
//! beyond what libFuzzer mutates well. Bytes 0..4 choose a length to cut the image to (0: no
//! cut); each following group of 4 bytes is an offset (3 bytes, within the volume's first 16
//! MiB, where its metadata is) and a byte XORed into the image there.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use pith_fs::ext4::{format, Disk, Ext4Fs};
use pith_fs::{Creation, Error, FileSystem, FileType, Ino, NewNode, Timestamp};

#[derive(Clone)]
struct MemoryDisk(Arc<Mutex<Vec<u8>>>);

impl Disk for MemoryDisk {
    fn size(&self) -> u64 {
        self.0.lock().map(|data| data.len() as u64).unwrap_or(0)
    }
    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), Error> {
        let data = self.0.lock().map_err(|_| Error::Io)?;
        let start = usize::try_from(offset).map_err(|_| Error::Io)?;
        let source = data.get(start..start + buffer.len()).ok_or(Error::Io)?;
        buffer.copy_from_slice(source);
        Ok(())
    }
    fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let mut data = self.0.lock().map_err(|_| Error::Io)?;
        let start = usize::try_from(offset).map_err(|_| Error::Io)?;
        let target = data.get_mut(start..start + bytes.len()).ok_or(Error::Io)?;
        target.copy_from_slice(bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

fn clock() -> Timestamp {
    Timestamp {
        seconds: 1_700_000_000,
        nanoseconds: 0,
    }
}

const CREATE: Creation = Creation {
    permissions: 0o644,
    uid: 0,
    gid: 0,
    now: Timestamp {
        seconds: 1_700_000_000,
        nanoseconds: 0,
    },
};

/// A 24 MiB volume with directories, files of several sizes, a symlink and a hard link.
fn pristine() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let disk = MemoryDisk(Arc::new(Mutex::new(vec![0u8; 24 << 20])));
        let disk = format(disk, clock).expect("format");
        let mut fs = Ext4Fs::mount(disk.clone(), clock).map_err(|e| e.0).expect("mount");
        let root = fs.root();
        let dir = fs.create(root, b"dir", NewNode::Directory, CREATE).expect("mkdir");
        for index in 0..30u32 {
            let name = format!("file-{index}");
            let file = fs.create(dir, name.as_bytes(), NewNode::Regular, CREATE).expect("create");
            let content = vec![index as u8; 1500 * index as usize];
            fs.write(file, 0, &content, CREATE.now).expect("write");
        }
        fs.create(root, b"link", NewNode::Symlink(b"dir/file-3".to_vec()), CREATE)
            .expect("symlink");
        let target = fs.lookup(dir, b"file-4").expect("lookup");
        fs.link(root, b"hard", target, CREATE.now).expect("link");
        fs.unmount().expect("unmount");
        let image = disk.0.lock().expect("lock").clone();
        image
    })
}

fn walk(fs: &mut Ext4Fs<MemoryDisk>, dir: Ino, depth: u32) {
    if depth > 6 {
        return;
    }
    let mut position = 0;
    for _ in 0..512 {
        let Ok(Some((entry, next))) = fs.read_dir(dir, position) else {
            return;
        };
        position = next;
        if entry.name == b"." || entry.name == b".." {
            continue;
        }
        let _ = fs.metadata(entry.ino);
        match entry.kind {
            FileType::Directory => walk(fs, entry.ino, depth + 1),
            FileType::Symlink => {
                let _ = fs.read_link(entry.ino);
            }
            _ => {
                let mut buffer = vec![0u8; 64 * 1024];
                let _ = fs.read(entry.ino, 0, &mut buffer);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut image = pristine().clone();
    if input.len() >= 4 {
        let cut = u32::from_le_bytes([input[0], input[1], input[2], input[3]]) as usize;
        if cut != 0 {
            image.truncate(cut % image.len());
        }
        for change in input[4..].chunks_exact(4) {
            let at = (u32::from_le_bytes([change[0], change[1], change[2], 0]) as usize) % (16 << 20);
            if let Some(byte) = image.get_mut(at) {
                *byte ^= change[3];
            }
        }
    }
    let disk = MemoryDisk(Arc::new(Mutex::new(image)));
    let Ok(mut fs) = Ext4Fs::mount(disk, clock) else {
        return;
    };
    let root = fs.root();
    walk(&mut fs, root, 0);
    if let Ok(file) = fs.create(root, b"new", NewNode::Regular, CREATE) {
        let _ = fs.write(file, 0, &[7u8; 9000], CREATE.now);
        let _ = fs.truncate(file, 100, CREATE.now);
    }
    let _ = fs.unlink(root, b"hard", CREATE.now);
    let _ = fs.rename(root, b"link", root, b"moved", pith_fs::RenameMode::Replace, CREATE.now);
    let _ = fs.sync(None);
});
