//! `pith run --volume FILE:PATH`: a persistent ext4 volume. A FILE that does not exist is made
//! (sparse) and formatted with the same fs crate the kernel mounts it with.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use anyhow::Context as _;
use pith_fs::ext4::Disk;

/// An image file as a disk. Opened read-only, its writes (a journal replay) stay in memory.
pub struct FileDisk {
    file: File,
    size: u64,
    overlay: Option<std::collections::BTreeMap<u64, Vec<u8>>>,
}

/// The overlay's unit: rsext4 reads and writes whole 4 KiB blocks.
const BLOCK: u64 = 4096;

impl FileDisk {
    /// Opens an existing image for reading and writing (`pith build` fills it).
    pub fn open_read_write(path: &Path) -> anyhow::Result<FileDisk> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open it", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", path.display()))?
            .len();
        Ok(FileDisk {
            file,
            size,
            overlay: None,
        })
    }

    /// Opens an existing image for reading (`pith image`).
    pub fn open_read_only(path: &Path) -> anyhow::Result<FileDisk> {
        let file =
            File::open(path).with_context(|| format!("{}: cannot open it", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", path.display()))?
            .len();
        Ok(FileDisk {
            file,
            size,
            overlay: Some(std::collections::BTreeMap::new()),
        })
    }
}

impl Disk for FileDisk {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), pith_fs::Error> {
        self.file
            .read_exact_at(buffer, offset)
            .map_err(|_| pith_fs::Error::Io)?;
        if let Some(overlay) = &self.overlay {
            for (index, chunk) in buffer.chunks_mut(BLOCK as usize).enumerate() {
                if let Some(block) = overlay.get(&(offset + index as u64 * BLOCK)) {
                    chunk.copy_from_slice(&block[..chunk.len()]);
                }
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), pith_fs::Error> {
        match &mut self.overlay {
            Some(overlay) => {
                for (index, chunk) in data.chunks(BLOCK as usize).enumerate() {
                    overlay.insert(offset + index as u64 * BLOCK, chunk.to_vec());
                }
                Ok(())
            }
            None => self
                .file
                .write_all_at(data, offset)
                .map_err(|_| pith_fs::Error::Io),
        }
    }
    fn flush(&mut self) -> Result<(), pith_fs::Error> {
        if self.overlay.is_some() {
            return Ok(());
        }
        self.file.sync_data().map_err(|_| pith_fs::Error::Io)
    }
}

pub fn now() -> pith_fs::Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    pith_fs::Timestamp {
        seconds: since.as_secs() as i64,
        nanoseconds: since.subsec_nanos(),
    }
}

/// Gives the host filesystem back the all-zero 4 KiB blocks of a volume file (a hole reads
/// as zeros, so the volume is unchanged) and returns how many bytes that freed. mkfs writes
/// the journal (16 MiB) and the inode tables as zeros: without this a redis image took 36
/// MB of disk for 17 MB of content. A filesystem that cannot punch holes keeps the blocks:
/// the image is the same, only larger.
pub fn dig_holes(file: &File) -> std::io::Result<u64> {
    use rustix::fs::{fallocate, seek, FallocateFlags, SeekFrom};
    let size = file.metadata()?.len();
    let punch = |start: u64, len: u64| -> std::io::Result<u64> {
        match fallocate(
            file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            start,
            len,
        ) {
            Ok(()) => Ok(len),
            Err(rustix::io::Errno::OPNOTSUPP) => Ok(0),
            Err(error) => Err(error.into()),
        }
    };
    let mut buffer = vec![0u8; 1 << 20];
    let mut freed = 0;
    let mut at = 0;
    while at < size {
        // Only the data regions are read: the holes set_len made stay as they are. A region
        // may start inside a 4 KiB block (a host filesystem of 1 KiB blocks): its block is
        // read whole, and the region's end is asked from inside it, so `at` always moves on.
        let data = match seek(file, SeekFrom::Data(at)) {
            Ok(data) => data,
            Err(rustix::io::Errno::NXIO) => break,
            Err(error) => return Err(error.into()),
        };
        let start = data - data % BLOCK;
        let end = seek(file, SeekFrom::Hole(data))?.min(size);
        let mut zeros_from = None;
        let mut offset = start;
        while offset < end {
            let len = (end - offset).min(buffer.len() as u64) as usize;
            file.read_exact_at(&mut buffer[..len], offset)?;
            for (index, block) in buffer[..len].chunks(BLOCK as usize).enumerate() {
                let block_at = offset + index as u64 * BLOCK;
                let zero = block.len() == BLOCK as usize && block.iter().all(|&byte| byte == 0);
                match (zero, zeros_from) {
                    (true, None) => zeros_from = Some(block_at),
                    (false, Some(from)) => {
                        freed += punch(from, block_at - from)?;
                        zeros_from = None;
                    }
                    _ => {}
                }
            }
            offset += len as u64;
        }
        if let Some(from) = zeros_from {
            freed += punch(from, end - from)?;
        }
        at = end;
    }
    Ok(freed)
}

/// dig_holes, where failing leaves a good volume that only takes more room: a warning.
pub fn warn_unless_sparse(file: &File, path: &Path) {
    if let Err(error) = dig_holes(file) {
        eprintln!(
            "pith: warning: {}: cannot give its zero blocks back to the host filesystem ({error}); the volume is whole, only larger on disk",
            path.display()
        );
    }
}

/// Makes `path` an empty ext4 volume of `bytes` unless it exists; says so when it makes one.
pub fn ensure_volume(path: &Path, bytes: u64) -> anyhow::Result<()> {
    if path.exists() {
        if !path.is_file() {
            anyhow::bail!("--volume {}: not a regular file", path.display());
        }
        return Ok(());
    }
    // rsext4's mkfs needs 19 MiB for its journal, tables and root; a round number above it.
    const MINIMUM: u64 = 32 << 20;
    if bytes < MINIMUM {
        anyhow::bail!(
            "{}: {} MiB is too small for an ext4 volume: make it 32M or more",
            path.display(),
            bytes >> 20
        );
    }
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("--volume {}: cannot create it", path.display()))?;
    file.set_len(bytes)
        .with_context(|| format!("--volume {}: cannot size it", path.display()))?;
    let disk = FileDisk {
        file,
        size: bytes,
        overlay: None,
    };
    match pith_fs::ext4::format(disk, now) {
        Ok(mut disk) => {
            let _ = disk.flush();
            warn_unless_sparse(&disk.file, path);
            eprintln!(
                "pith: made {} an ext4 volume of {} MiB",
                path.display(),
                bytes >> 20
            );
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(path);
            anyhow::bail!(
                "{}: formatting it as ext4 failed: {error:?}",
                path.display()
            )
        }
    }
}

/// Refuses a volume file shorter than the ext4 volume its superblock declares (cut short by
/// `truncate` or a partial copy), naming both sizes.
pub fn refuse_if_cut_short(disk: &mut FileDisk, path: &Path) -> anyhow::Result<()> {
    match pith_fs::ext4::cut_short(disk) {
        Some((declared, actual)) => anyhow::bail!(
            "{}: cut short: the ext4 volume in it is {} KiB but the file is {} KiB (truncated, or copied in part?)",
            path.display(),
            declared >> 10,
            actual >> 10
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{dig_holes, BLOCK};
    use std::os::unix::fs::{FileExt as _, MetadataExt as _};

    /// The zero blocks among data become holes, the bytes read the same, and blocks that
    /// hold anything stay; a block with one non-zero byte is data.
    #[test]
    fn dig_holes_frees_zero_blocks_and_keeps_the_bytes() {
        let path = std::env::temp_dir().join(format!("pith-dig-{}", std::process::id()));
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        // 64 blocks written: data at 0, 10 and 63 (one byte at its end), zeros elsewhere;
        // then a hole of 64 blocks set_len leaves.
        let mut contents = vec![0u8; 64 * BLOCK as usize];
        contents[..BLOCK as usize].fill(7);
        contents[10 * BLOCK as usize + 5] = 1;
        *contents.last_mut().unwrap() = 9;
        file.write_all_at(&contents, 0).unwrap();
        file.set_len(128 * BLOCK).unwrap();
        file.sync_all().unwrap();
        let blocks_before = file.metadata().unwrap().blocks() * 512;
        // A filesystem that stores zeros compressed (ZFS, btrfs with compression) or cannot
        // punch holes has nothing to show here.
        let punches = rustix::fs::fallocate(
            &file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            100 * BLOCK,
            BLOCK,
        ) != Err(rustix::io::Errno::OPNOTSUPP);
        if blocks_before < 64 * BLOCK || !punches {
            eprintln!("skipped: {} cannot show holes ({blocks_before} bytes allocated, punching: {punches})", path.display());
            std::fs::remove_file(&path).unwrap();
            return;
        }
        let freed = dig_holes(&file).unwrap();
        assert_eq!(freed, 61 * BLOCK);
        let blocks_after = file.metadata().unwrap().blocks() * 512;
        assert!(
            blocks_after <= 3 * BLOCK + BLOCK,
            "{blocks_after} bytes allocated after, {blocks_before} before"
        );
        let mut read = vec![0u8; 128 * BLOCK as usize];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(&read[..contents.len()], &contents[..]);
        assert!(read[contents.len()..].iter().all(|&byte| byte == 0));
        assert_eq!(file.metadata().unwrap().len(), 128 * BLOCK);
        std::fs::remove_file(&path).unwrap();
    }
}
