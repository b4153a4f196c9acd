//! `pith build -o IMAGE PROGRAM`: an ext4 disk image holding the program at /NAME, the
//! `--file`/`--dir` entries and a `/.pith/program` record of what to run; `pith run --image
//! IMAGE` boots it with the image as `/`, which keeps what the program writes.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pith_fs::ext4::Ext4Fs;
use pith_fs::vfs::{Node, Vfs};
use pith_fs::{Creation, NewNode};

use std::ffi::OsString;

use crate::args::{EnvVar, MemorySize, PathMapping};
use crate::image::{collect_tree, TreeEntry};
use crate::manifest::{merged_env, read_manifest, Manifest};
use crate::volume::{now, FileDisk};

/// Where the image records its program: `path=...` and `workdir=...` lines.
pub const PROGRAM_RECORD: &str = "/.pith/program";

/// What `pith build` was asked.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The image file to write (it must not exist).
    #[arg(short = 'o', long = "output", value_name = "IMAGE")]
    pub output: PathBuf,
    /// The image's size, e.g. 256M or 2G. Default: the manifest's image.size, else 256M.
    #[arg(long, value_name = "SIZE", value_parser = crate::args::parse_memory_size)]
    pub size: Option<MemorySize>,
    /// A manifest (pith.toml; docs/manifest.md): the program, its arguments, environment,
    /// working directory and files. Options given here add to it or replace it.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Set one environment variable the program will see (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL", value_parser = crate::args::parse_env_var)]
    pub env: Vec<EnvVar>,
    /// A host file to put in the image: HOST[:GUEST] (repeatable).
    #[arg(long = "file", value_name = "HOST[:GUEST]", value_parser = crate::args::parse_mapping)]
    pub files: Vec<PathMapping>,
    /// A host directory to put in the image, with everything under it: HOST[:GUEST].
    #[arg(long = "dir", value_name = "HOST[:GUEST]", value_parser = crate::args::parse_mapping)]
    pub dirs: Vec<PathMapping>,
    /// The working directory the program starts in. Default: /.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// What /tmp is when the image boots: a tmpfs of at most SIZE, or `disk` for a directory
    /// of the image (kept). Default: a tmpfs of half the VM's memory.
    #[arg(long, value_name = "SIZE|disk", value_parser = crate::args::parse_tmp)]
    pub tmp: Option<crate::args::TmpSetting>,
    /// The program the image runs (unless the manifest names it), then its arguments.
    #[arg(trailing_var_arg = true, value_names = ["PROGRAM", "ARGS"])]
    pub command: Vec<OsString>,
}

/// What the image will run, with the manifest and the options put together.
struct Plan {
    program: crate::program::Program,
    /// Where the program goes in the image.
    program_path: Vec<u8>,
    /// Its argv[0] (`place_program`).
    argv0: Vec<u8>,
    args: Vec<String>,
    env: Vec<EnvVar>,
    files: Vec<PathMapping>,
    dirs: Vec<PathMapping>,
    workdir: Option<String>,
    size: MemorySize,
    writable: bool,
    tmp: Option<crate::args::TmpSetting>,
}

/// The default size of an image.
const DEFAULT_IMAGE_MEBIBYTES: u64 = 256;

fn plan(args: &BuildArgs) -> anyhow::Result<Plan> {
    let manifest = match &args.manifest {
        Some(path) => read_manifest(path)?,
        None => Manifest {
            writable: true,
            ..Default::default()
        },
    };
    let words: Vec<String> = args
        .command
        .iter()
        .map(|word| {
            word.to_str().map(str::to_owned).ok_or_else(|| {
                anyhow::anyhow!("{}: not UTF-8", std::path::Path::new(word).display())
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let (program_path, mut words) = match (&manifest.program, words.split_first()) {
        (Some(path), _) => (path.clone(), words.clone()),
        (None, Some((first, rest))) => (PathBuf::from(first), rest.to_vec()),
        (None, None) => anyhow::bail!(
            "no program to build an image for: name one, or as `program = \"...\"` in the manifest"
        ),
    };
    if words.first().is_some_and(|word| word == "--") {
        words.remove(0);
    }
    let program = crate::program::read_program(program_path.as_os_str())?;
    // One named here goes to its own absolute path; one the manifest names, there too if the
    // manifest gives an absolute path, else to /NAME (`place_program`).
    let at_own_path = manifest.program.is_none() || manifest.program_absolute;
    let placement = crate::image::place_program(&program, &program_path, at_own_path);
    let mut files = manifest.files;
    files.extend_from_slice(&args.files);
    let mut dirs = manifest.dirs;
    dirs.extend_from_slice(&args.dirs);
    Ok(Plan {
        program,
        program_path: placement.inside,
        argv0: placement.argv0,
        args: if words.is_empty() {
            manifest.args
        } else {
            words
        },
        env: merged_env(&manifest.env, &args.env),
        files,
        dirs,
        workdir: args.workdir.clone().or(manifest.workdir),
        size: args
            .size
            .or(manifest.size)
            .unwrap_or(MemorySize::from_mebibytes(DEFAULT_IMAGE_MEBIBYTES)),
        writable: manifest.writable,
        tmp: args.tmp.or(manifest.tmp),
    })
}

/// The program record: one `key=value` per line (`arg` and `env` repeat, in order).
fn program_record(plan: &Plan, program_path: &[u8]) -> anyhow::Result<String> {
    let mut record = format!("path={}\n", String::from_utf8_lossy(program_path));
    if plan.argv0 != program_path {
        // The program went to its real path, through a symlink: argv[0] is the named path.
        record.push_str(&format!("argv0={}\n", String::from_utf8_lossy(&plan.argv0)));
    }
    let mut line = |key: &str, value: &str| -> anyhow::Result<()> {
        if value.contains('\n') {
            anyhow::bail!("{key} `{value}`: a newline cannot be recorded in the image");
        }
        record.push_str(&format!("{key}={value}\n"));
        Ok(())
    };
    if let Some(workdir) = &plan.workdir {
        line("workdir", workdir)?;
    }
    for arg in &plan.args {
        line("arg", arg)?;
    }
    for var in &plan.env {
        line("env", &var.to_string())?;
    }
    if !plan.writable {
        line("writable", "no")?;
    }
    if let Some(tmp) = plan.tmp {
        line("tmp", &tmp.text())?;
    }
    Ok(record)
}

fn creation(permissions: u32) -> Creation {
    Creation {
        permissions,
        uid: 0,
        gid: 0,
        now: now(),
    }
}

fn fs_error(what: &str, error: pith_fs::Error) -> anyhow::Error {
    match error {
        pith_fs::Error::NoSpace => anyhow::anyhow!(
            "{what}: the image is full (make it larger with --size, or [image] size in the manifest)"
        ),
        pith_fs::Error::NameTooLong => {
            anyhow::anyhow!("{what}: a name is longer than 255 bytes")
        }
        pith_fs::Error::NotDirectory => {
            anyhow::anyhow!("{what}: a part of the path is not a directory in the image")
        }
        other => anyhow::anyhow!("{what}: {other:?}"),
    }
}

/// `mkdir -p` on the image; returns the directory.
fn directories(vfs: &mut Vfs, path: &[u8]) -> anyhow::Result<Node> {
    let mut dir = vfs.root();
    for name in path
        .split(|&byte| byte == b'/')
        .filter(|name| !name.is_empty())
    {
        dir = match vfs.resolve(dir, name, true) {
            Ok(node) => node,
            Err(pith_fs::Error::NotFound) => {
                let fs = vfs
                    .fs_mut(dir.mount)
                    .map_err(|e| fs_error("the image", e))?;
                let ino = fs
                    .create(dir.ino, name, NewNode::Directory, creation(0o755))
                    .map_err(|e| fs_error(&String::from_utf8_lossy(path), e))?;
                Node {
                    mount: dir.mount,
                    ino,
                }
            }
            Err(error) => return Err(fs_error(&String::from_utf8_lossy(path), error)),
        };
    }
    Ok(dir)
}

/// What a regular file put in the image holds.
enum Content<'a> {
    Bytes(&'a [u8]),
    /// A host file, copied a chunk at a time.
    HostFile(&'a Path),
}

/// How much of a host file is read and written at a time.
const CHUNK: usize = 1 << 20;

/// Puts one file, directory or symlink at `path` (absolute), making what is above it;
/// `progress` counts the file's bytes as they are written.
fn put(
    vfs: &mut Vfs,
    path: &[u8],
    node: NewNode,
    mode: u32,
    content: Content<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let at = path.iter().rposition(|&byte| byte == b'/').unwrap_or(0);
    let (parent, name) = (&path[..at], &path[at + 1..]);
    let dir = directories(vfs, parent)?;
    if name.is_empty() {
        return Ok(());
    }
    let directory = node == NewNode::Directory;
    let fs = vfs.fs_mut(dir.mount).map_err(|e| fs_error(&shown, e))?;
    let ino = match fs.create(dir.ino, name, node, creation(mode)) {
        Ok(ino) => ino,
        Err(pith_fs::Error::Exists) if directory => return Ok(()),
        Err(error) => return Err(fs_error(&shown, error)),
    };
    let mut write = |offset: usize, bytes: &[u8]| -> anyhow::Result<()> {
        fs.write(ino, offset as u64, bytes, now())
            .map_err(|e| fs_error(&shown, e))?;
        progress.inc(bytes.len() as u64);
        Ok(())
    };
    match content {
        Content::Bytes(bytes) => {
            for (index, chunk) in bytes.chunks(CHUNK).enumerate() {
                write(index * CHUNK, chunk)?;
            }
        }
        Content::HostFile(host) => {
            use std::io::Read as _;
            let mut file = std::fs::File::open(host)
                .with_context(|| format!("cannot read {}", host.display()))?;
            let mut buffer = vec![0u8; CHUNK];
            let mut offset = 0;
            loop {
                let got = file
                    .read(&mut buffer)
                    .with_context(|| format!("cannot read {}", host.display()))?;
                if got == 0 {
                    break;
                }
                write(offset, &buffer[..got])?;
                offset += got;
            }
        }
    }
    Ok(())
}

/// A progress bar on stderr for a large tree (none for a small one, nor when stderr is not a
/// terminal: indicatif draws nothing then).
fn progress_bar(tree: &[TreeEntry]) -> ProgressBar {
    let bytes: u64 = tree
        .iter()
        .map(|entry| match entry {
            TreeEntry::File { size, .. } => *size,
            _ => 0,
        })
        .sum();
    if bytes < 64 << 20 && tree.len() < 2000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(bytes);
    if let Ok(style) = ProgressStyle::with_template(
        "pith: packing {msg} [{bar:20}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("{} entries", tree.len()));
    bar
}

/// Runs `pith build`.
pub fn build(args: &BuildArgs) -> anyhow::Result<u8> {
    let plan = plan(args)?;
    if args.output.exists() {
        anyhow::bail!(
            "{}: already exists (pith build makes a new image)",
            args.output.display()
        );
    }
    if let Some(workdir) = &plan.workdir {
        if !workdir.starts_with('/') {
            anyhow::bail!("--workdir {workdir}: it must be an absolute path inside the VM");
        }
    }
    let program_path = plan.program_path.clone();
    let record = program_record(&plan, &program_path)?;
    let words: Vec<std::ffi::OsString> = plan.args.iter().map(std::ffi::OsString::from).collect();
    let mut tree = crate::image::dependency_entries(&plan.program, &words)?;
    tree.extend(collect_tree(&plan.files, &plan.dirs)?);
    let libraries = crate::image::library_entries(&tree)?;
    tree.extend(libraries);
    tree.retain(|entry| !crate::image::in_the_way(entry, &plan.program_path));
    crate::image::dedupe(&mut tree);
    let etc = crate::image::default_etc_files(&tree);
    tree.extend(etc);
    crate::volume::ensure_volume(&args.output, plan.size.mebibytes() << 20)?;
    let result = fill(&args.output, &plan, &program_path, &record, &tree);
    if result.is_err() {
        let _ = std::fs::remove_file(&args.output);
    }
    result.map(|()| 0)
}

fn fill(
    output: &Path,
    plan: &Plan,
    program_path: &[u8],
    record: &str,
    tree: &[TreeEntry],
) -> anyhow::Result<()> {
    let disk = FileDisk::open_read_write(output)?;
    let volume = Ext4Fs::mount(disk, now)
        .map_err(|(_, reason)| anyhow::anyhow!("{}: {reason}", output.display()))?;
    let mut vfs = Vfs::new(Box::new(volume), "ext4");
    let hidden = ProgressBar::hidden();
    put(
        &mut vfs,
        program_path,
        NewNode::Regular,
        0o755,
        Content::Bytes(&plan.program.bytes),
        &hidden,
    )?;
    let progress = progress_bar(tree);
    for entry in tree {
        match entry {
            TreeEntry::File {
                guest, mode, host, ..
            } => put(
                &mut vfs,
                guest,
                NewNode::Regular,
                *mode,
                Content::HostFile(host),
                &progress,
            )?,
            TreeEntry::Directory { guest, mode } => put(
                &mut vfs,
                guest,
                NewNode::Directory,
                *mode,
                Content::Bytes(&[]),
                &progress,
            )?,
            TreeEntry::Symlink { guest, target } => put(
                &mut vfs,
                guest,
                NewNode::Symlink(target.clone()),
                0o777,
                Content::Bytes(&[]),
                &progress,
            )?,
            TreeEntry::Generated { guest, mode, bytes } => put(
                &mut vfs,
                guest,
                NewNode::Regular,
                *mode,
                Content::Bytes(bytes),
                &progress,
            )?,
        }
    }
    progress.finish_and_clear();
    put(
        &mut vfs,
        PROGRAM_RECORD.as_bytes(),
        NewNode::Regular,
        0o644,
        Content::Bytes(record.as_bytes()),
        &hidden,
    )?;
    vfs.fs_mut(0)
        .map_err(|e| fs_error("the image", e))?
        .unmount()
        .map_err(|e| fs_error("writing the image", e))?;
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(output)
        .with_context(|| format!("{}: cannot reopen it", output.display()))?;
    crate::volume::warn_unless_sparse(&file, output);
    eprintln!(
        "pith: built {}: {} ({} bytes) and {} more entries",
        output.display(),
        String::from_utf8_lossy(program_path),
        plan.program.bytes.len(),
        tree.len()
    );
    Ok(())
}

/// What an image built by `pith build` runs: the program's path and bytes, and its workdir.
pub struct ImageProgram {
    pub path: Vec<u8>,
    /// argv[0] when it is not `path` (a program packed at its real path, named through a
    /// symlink).
    pub argv0: Option<Vec<u8>>,
    pub bytes: Vec<u8>,
    pub workdir: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub writable: bool,
    pub tmp: Option<crate::args::TmpSetting>,
}

/// Reads an image's program record and the program itself (without writing the image).
pub fn read_image_program(image: &Path) -> anyhow::Result<ImageProgram> {
    let mut disk = FileDisk::open_read_only(image)?;
    crate::volume::refuse_if_cut_short(&mut disk, image)?;
    let volume = Ext4Fs::mount(disk, now).map_err(|(_, reason)| {
        anyhow::anyhow!(
            "--image {}: not a usable ext4 image: {reason}",
            image.display()
        )
    })?;
    let mut vfs = Vfs::new(Box::new(volume), "ext4");
    let read = |vfs: &mut Vfs, path: &[u8]| -> anyhow::Result<Vec<u8>> {
        let node = vfs.resolve(vfs.root(), path, true).map_err(|error| {
            anyhow::anyhow!(
                "--image {}: {}: {error:?} (was it made by pith build?)",
                image.display(),
                String::from_utf8_lossy(path)
            )
        })?;
        let size = vfs
            .metadata(node)
            .map_err(|e| fs_error("the image", e))?
            .size;
        let fs = vfs
            .fs_mut(node.mount)
            .map_err(|e| fs_error("the image", e))?;
        let mut bytes = vec![0u8; size as usize];
        let mut done = 0;
        while done < bytes.len() {
            let got = fs
                .read(node.ino, done as u64, &mut bytes[done..])
                .map_err(|e| fs_error("reading the image", e))?;
            if got == 0 {
                break;
            }
            done += got;
        }
        bytes.truncate(done);
        Ok(bytes)
    };
    let record = String::from_utf8(read(&mut vfs, PROGRAM_RECORD.as_bytes())?)
        .context("the image's program record is not text")?;
    let field = |key: &str| {
        record
            .lines()
            .find_map(|line| line.strip_prefix(key).map(str::to_owned))
    };
    let path = field("path=").context("the image's program record names no path")?;
    let bytes = read(&mut vfs, path.as_bytes())?;
    let all = |key: &str| -> Vec<String> {
        record
            .lines()
            .filter_map(|line| line.strip_prefix(key).map(str::to_owned))
            .collect()
    };
    let env = all("env=")
        .iter()
        .map(|text| crate::args::parse_env_var(text))
        .collect::<Result<_, _>>()
        .map_err(|error| anyhow::anyhow!("the image's program record: {error}"))?;
    Ok(ImageProgram {
        argv0: field("argv0=").map(String::into_bytes),
        path: path.into_bytes(),
        bytes,
        workdir: field("workdir="),
        args: all("arg="),
        env,
        writable: field("writable=").as_deref() != Some("no"),
        tmp: match field("tmp=") {
            Some(text) => Some(
                crate::args::parse_tmp(&text)
                    .map_err(|error| anyhow::anyhow!("the image's program record: tmp: {error}"))?,
            ),
            None => None,
        },
    })
}
