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
