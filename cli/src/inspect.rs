//! `pith image ls|cat|get|tree|fsck IMAGE [PATH]`: a volume's files, read on the host with the
//! same fs crate the kernel mounts it with; the image file is never written (a pending
//! journal is replayed in memory).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pith_fs::ext4::Ext4Fs;
use pith_fs::vfs::Vfs;
use pith_fs::FileType;

use crate::volume::{now, FileDisk};

/// What `pith image` does.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// List a directory of the volume (default /), as `ls -l`.
    Ls {
        image: PathBuf,
        path: Option<String>,
    },
    /// Print a file of the volume on stdout.
    Cat { image: PathBuf, path: String },
    /// Copy a file of the volume to a host file.
    Get {
        image: PathBuf,
        path: String,
        destination: PathBuf,
    },
    /// Print the whole tree of the volume.
    Tree { image: PathBuf },
    /// Check the volume: mount it (replaying its journal) and read every directory and file,
    /// with rsext4's checksums verified. Run e2fsck -fn for ext4's full check.
    Fsck { image: PathBuf },
}

fn open(image: &Path) -> anyhow::Result<Vfs> {
    let mut disk = FileDisk::open_read_only(image)?;
    crate::volume::refuse_if_cut_short(&mut disk, image)?;
    // A read-write mount over the in-memory overlay: the journal replays there, the file is
    // never written.
    let volume = Ext4Fs::mount(disk, now).map_err(|(_, reason)| {
        anyhow::anyhow!("{}: not a usable ext4 volume: {reason}", image.display())
    })?;
    Ok(Vfs::new(Box::new(volume), "ext4"))
}

fn lookup(vfs: &Vfs, image: &Path, path: &str) -> anyhow::Result<pith_fs::vfs::Node> {
    vfs.resolve(vfs.root(), path.as_bytes(), true)
        .map_err(|error| anyhow::anyhow!("{}: {path}: {error:?}", image.display()))
}

fn type_letter(kind: FileType) -> char {
    match kind {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::Regular => '-',
    }
}

fn mode_text(kind: FileType, permissions: u32) -> String {
    let mut text = String::from(type_letter(kind));
    for shift in [6, 3, 0] {
        let bits = (permissions >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

/// Every entry of `dir` but "." and "..".
fn entries(vfs: &Vfs, dir: pith_fs::vfs::Node) -> anyhow::Result<Vec<pith_fs::DirEntry>> {
    let fs = vfs
        .fs(dir.mount)
        .map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let mut position = 0;
    let mut found = Vec::new();
    while let Some((entry, next)) = fs
        .read_dir(dir.ino, position)
        .map_err(|error| anyhow::anyhow!("reading a directory: {error:?}"))?
    {
        if entry.name != b"." && entry.name != b".." {
            found.push(entry);
        }
        position = next;
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn read_all(vfs: &mut Vfs, node: pith_fs::vfs::Node) -> anyhow::Result<Vec<u8>> {
    let size = vfs
        .metadata(node)
        .map_err(|error| anyhow::anyhow!("{error:?}"))?
        .size;
    let fs = vfs
        .fs_mut(node.mount)
        .map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let mut bytes = vec![0u8; size as usize];
    let mut done = 0;
    while done < bytes.len() {
        let got = fs
            .read(node.ino, done as u64, &mut bytes[done..])
            .map_err(|error| anyhow::anyhow!("reading: {error:?}"))?;
        if got == 0 {
            break;
        }
        done += got;
    }
    bytes.truncate(done);
    Ok(bytes)
}

/// Runs `pith image ...`; returns the exit status.
pub fn run(command: &ImageCommand) -> anyhow::Result<u8> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match inspect(command, &mut out).and_then(|status| {
        out.flush().context("writing to stdout")?;
        Ok(status)
    }) {
        // `pith image ls IMAGE | head`: the reader went away, as a shell tool dies of SIGPIPE.
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(128 + 13)
        }
        other => other,
    }
}

fn inspect(command: &ImageCommand, out: &mut impl Write) -> anyhow::Result<u8> {
    match command {
        ImageCommand::Ls { image, path } => {
            let vfs = open(image)?;
            let dir = lookup(&vfs, image, path.as_deref().unwrap_or("/"))?;
            for entry in entries(&vfs, dir)? {
                let node = pith_fs::vfs::Node {
                    mount: dir.mount,
                    ino: entry.ino,
                };
                let metadata = vfs.metadata(node).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let name = String::from_utf8_lossy(&entry.name);
                let mut line = format!(
                    "{} {:>3} {:>5} {:>5} {:>10} {name}",
                    mode_text(metadata.kind, metadata.permissions),
                    metadata.links,
                    metadata.uid,
                    metadata.gid,
                    metadata.size,
                );
                if metadata.kind == FileType::Symlink {
                    let target = vfs
                        .fs(node.mount)
                        .and_then(|fs| fs.read_link(node.ino))
                        .unwrap_or_default();
                    line.push_str(&format!(" -> {}", String::from_utf8_lossy(&target)));
                }
                writeln!(out, "{line}")?;
            }
            Ok(0)
        }
        ImageCommand::Cat { image, path } => {
            let mut vfs = open(image)?;
            let node = lookup(&vfs, image, path)?;
            let bytes = read_all(&mut vfs, node)?;
            out.write_all(&bytes).context("writing to stdout")?;
            Ok(0)
        }
        ImageCommand::Get {
            image,
            path,
            destination,
        } => {
            let mut vfs = open(image)?;
            let node = lookup(&vfs, image, path)?;
            let bytes = read_all(&mut vfs, node)?;
            std::fs::write(destination, &bytes)
                .with_context(|| format!("writing {}", destination.display()))?;
            Ok(0)
        }
        ImageCommand::Tree { image } => {
            let vfs = open(image)?;
            let mut stack = vec![(vfs.root(), String::new())];
            while let Some((dir, prefix)) = stack.pop() {
                for entry in entries(&vfs, dir)?.into_iter().rev() {
                    let path = format!("{prefix}/{}", String::from_utf8_lossy(&entry.name));
                    writeln!(
                        out,
                        "{path}{}",
                        if entry.kind == FileType::Directory {
                            "/"
                        } else {
                            ""
                        }
                    )?;
                    if entry.kind == FileType::Directory {
                        stack.push((
                            pith_fs::vfs::Node {
                                mount: dir.mount,
                                ino: entry.ino,
                            },
                            path,
                        ));
                    }
                }
            }
            Ok(0)
        }
        ImageCommand::Fsck { image } => {
            let mut vfs = open(image)?;
            let (mut directories, mut files, mut bytes, mut problems) = (0u64, 0u64, 0u64, 0u64);
            let mut stack = vec![(vfs.root(), String::from("/"))];
            while let Some((dir, path)) = stack.pop() {
                directories += 1;
                let listed = match entries(&vfs, dir) {
                    Ok(listed) => listed,
                    Err(error) => {
                        writeln!(out, "{path}: {error}")?;
                        problems += 1;
                        continue;
                    }
                };
                for entry in listed {
                    let node = pith_fs::vfs::Node {
                        mount: dir.mount,
                        ino: entry.ino,
                    };
                    let child = format!("{}{}", path, String::from_utf8_lossy(&entry.name));
                    match entry.kind {
                        FileType::Directory => stack.push((node, format!("{child}/"))),
                        FileType::Regular => match read_all(&mut vfs, node) {
                            Ok(content) => {
                                files += 1;
                                bytes += content.len() as u64;
                            }
                            Err(error) => {
                                writeln!(out, "{child}: {error}")?;
                                problems += 1;
                            }
                        },
                        _ => files += 1,
                    }
                }
            }
            writeln!(
                out,
                "{}: {directories} directories, {files} files, {bytes} bytes read; {problems} problems",
                image.display()
            )?;
            Ok(if problems == 0 { 0 } else { 1 })
        }
    }
}
