//! Building the image (QEMU's initrd) that hands the program, its argv and its environment to the kernel.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pith_loader::image::{Entry, ImageBuilder};

use crate::args::{EnvVar, PathMapping};
use crate::program::Program;

/// The image's file name inside the run's temporary directory.
pub const IMAGE_FILE_NAME: &str = "image.pith";

/// What goes into the image besides the program's bytes.
#[derive(Debug)]
pub struct ImageContents<'a> {
    pub program: &'a Program,
    /// Where the program is inside the VM (`program_path_in_vm`).
    pub program_path: &'a [u8],
    /// argv[0]: the program as the user typed it, as a shell passes it.
    pub argv0: &'a OsStr,
    /// argv[1..].
    pub args: &'a [OsString],
    /// The program's whole environment.
    pub env: &'a [EnvVar],
    /// Host files and directories to put in the VM's tree.
    pub files: &'a [PathMapping],
    pub dirs: &'a [PathMapping],
    /// The working directory inside the VM.
    pub workdir: Option<&'a str>,
}

/// A file, directory or symlink read from the host, for the image.
#[derive(Debug)]
pub enum TreeEntry {
    /// A host file, read when it is written (so a large tree is never all in memory).
    File {
        guest: Vec<u8>,
        mode: u32,
        host: PathBuf,
        size: u64,
    },
    Directory {
        guest: Vec<u8>,
        mode: u32,
    },
    Symlink {
        guest: Vec<u8>,
        target: Vec<u8>,
    },
    /// A file `pith` writes itself (the default `/etc` files).
    Generated {
        guest: Vec<u8>,
        mode: u32,
        bytes: Vec<u8>,
    },
}

impl TreeEntry {
    /// Where the entry goes inside the VM.
    pub fn guest(&self) -> &[u8] {
        match self {
            TreeEntry::File { guest, .. }
            | TreeEntry::Directory { guest, .. }
            | TreeEntry::Symlink { guest, .. }
            | TreeEntry::Generated { guest, .. } => guest,
        }
    }
}

/// The files every program expects in `/etc` (glibc reads them for user names, host names
/// and name service), each added unless the tree already has something there: the program
/// runs as root, on a host named `pith` (uname's and /proc's answer), with QEMU's user-mode
/// DNS server (10.0.2.3) for when it has a network, and the host's time zone.
pub fn default_etc_files(tree: &[TreeEntry]) -> Vec<TreeEntry> {
    let taken = |path: &[u8]| {
        tree.iter().any(|entry| {
            let guest = entry.guest();
            guest == path || (path.starts_with(guest) && path.get(guest.len()) == Some(&b'/'))
        })
    };
    let mut files: Vec<(&[u8], Vec<u8>)> = vec![
        (
            b"/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                .to_vec(),
        ),
        (b"/etc/group", b"root:x:0:\nnogroup:x:65534:\n".to_vec()),
        (
            b"/etc/hosts",
            b"127.0.0.1\tlocalhost\n127.0.1.1\tpith\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                .to_vec(),
        ),
        (b"/etc/hostname", b"pith\n".to_vec()),
        (
            b"/etc/nsswitch.conf",
            b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
                .to_vec(),
        ),
        (b"/etc/resolv.conf", b"nameserver 10.0.2.3\n".to_vec()),
    ];
    // The host's zone, as its TZif data (`/etc/localtime` is usually a symlink into
    // /usr/share/zoneinfo, which the VM does not have).
    if let Ok(zone) = std::fs::read("/etc/localtime") {
        files.push((b"/etc/localtime", zone));
    }
    files
        .into_iter()
        .filter(|(path, _)| !taken(path))
        .map(|(path, bytes)| TreeEntry::Generated {
            guest: path.to_vec(),
            mode: 0o644,
            bytes,
        })
        .collect()
}

/// Reads the host side of `--file` and `--dir` (recursively, symlinks kept as symlinks).
pub fn collect_tree(files: &[PathMapping], dirs: &[PathMapping]) -> anyhow::Result<Vec<TreeEntry>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut entries = Vec::new();
    for mapping in files {
        let metadata = std::fs::metadata(&mapping.host)
            .with_context(|| format!("--file {}: cannot read it", mapping.host.display()))?;
        if !metadata.is_file() {
            anyhow::bail!(
                "--file {}: not a regular file (use --dir for a directory)",
                mapping.host.display()
            );
        }
        entries.push(TreeEntry::File {
            guest: mapping.guest.as_bytes().to_vec(),
            mode: metadata.permissions().mode() & 0o7777,
            host: mapping.host.clone(),
            size: metadata.len(),
        });
    }
    for mapping in dirs {
        let metadata = std::fs::metadata(&mapping.host)
            .with_context(|| format!("--dir {}: cannot read it", mapping.host.display()))?;
        if !metadata.is_dir() {
            anyhow::bail!(
                "--dir {}: not a directory (use --file for a file)",
                mapping.host.display()
            );
        }
        walk(
            &mapping.host,
            mapping.guest.trim_end_matches('/').as_bytes(),
            &mut entries,
        )?;
    }
    later_mappings_win(&mut entries);
    Ok(entries)
}

/// Where two mappings put something at the same path, the later one's stays (a manifest's
/// entries come first, the command line's after: `--dir ./site:/var/www/html` replaces a
/// recipe's page of the same name). A directory stays where it first came, before what is in
/// it.
fn later_mappings_win(entries: &mut Vec<TreeEntry>) {
    let mut keep_at = std::collections::HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let directory = matches!(entry, TreeEntry::Directory { .. });
        let slot = keep_at.entry(entry.guest().to_vec()).or_insert(index);
        if !directory {
            *slot = index;
        }
    }
    let mut index = 0;
    entries.retain(|entry| {
        let kept = keep_at.get(entry.guest()) == Some(&index);
        index += 1;
        kept
    });
}

fn walk(host: &Path, guest: &[u8], entries: &mut Vec<TreeEntry>) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::symlink_metadata(host)
        .with_context(|| format!("--dir: cannot read {}", host.display()))?;
    let mode = metadata.permissions().mode() & 0o7777;
    let guest_path = if guest.is_empty() {
        b"/".to_vec()
    } else {
        guest.to_vec()
    };
    if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(host)
            .with_context(|| format!("--dir: cannot read the link {}", host.display()))?;
        entries.push(TreeEntry::Symlink {
            guest: guest_path,
            target: target.as_os_str().as_bytes().to_vec(),
        });
    } else if metadata.is_dir() {
        entries.push(TreeEntry::Directory {
            guest: guest_path,
            mode,
        });
        let mut children: Vec<_> = std::fs::read_dir(host)
            .with_context(|| format!("--dir: cannot list {}", host.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("--dir: cannot list {}", host.display()))?;
        children.sort_by_key(|child| child.file_name());
        for child in children {
            let mut child_guest = guest.to_vec();
            child_guest.push(b'/');
            child_guest.extend_from_slice(child.file_name().as_bytes());
            walk(&child.path(), &child_guest, entries)?;
        }
    } else if metadata.is_file() {
        entries.push(TreeEntry::File {
            guest: guest_path,
            mode,
            host: host.to_path_buf(),
            size: metadata.len(),
        });
    }
    // Sockets, fifos and devices are left out: the VM has its own.
    Ok(())
}

/// The program's path inside the VM: `/` and its file name.
pub fn path_in_vm(file_name: &OsStr) -> Vec<u8> {
    let mut path = b"/".to_vec();
    path.extend_from_slice(file_name.as_encoded_bytes());
    path
}

/// Where a program the user named as `typed` goes inside the VM: at its own path when that
/// is absolute (`pith run /usr/bin/redis-server` puts it at /usr/bin/redis-server, so that
/// argv[0] and /proc/self/exe name a file that is there), else at `/` and its file name (a
/// relative path means nothing inside). A path through `..`, or into /proc, /sys or /dev
/// (the VM's own), also goes to `/NAME`.
pub fn program_path_in_vm(typed: &OsStr, file_name: &OsStr) -> Vec<u8> {
    use std::path::Component;
    let path = Path::new(typed);
    if !path.is_absolute() {
        return path_in_vm(file_name);
    }
    let mut inside = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                inside.push(b'/');
                inside.extend_from_slice(name.as_encoded_bytes());
            }
            Component::ParentDir | Component::Prefix(_) => return path_in_vm(file_name),
        }
    }
    let own = [&b"/proc/"[..], b"/sys/", b"/dev/"];
    if inside.is_empty() || own.iter().any(|prefix| inside.starts_with(prefix)) {
        return path_in_vm(file_name);
    }
    inside
}

/// Where a program goes inside, and the argv[0] it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramPlacement {
    pub inside: Vec<u8>,
    pub argv0: Vec<u8>,
}

/// Where a program named by the absolute host path `path` goes inside (`program_path_in_vm`,
/// `real_program_path`), and its argv[0]: the path as named, as a shell passes it, even where
/// the program goes to its real path (Debian's redis-server is a symlink to redis-check-rdb,
/// and chooses its role by argv[0]). Packed at its own path, a program reached through a
/// symlink is packed once, not also as its own dependency. `at_own_path` false (a manifest's
/// path relative to itself, a project's own build): at `/NAME`, which is also argv[0].
pub fn place_program(program: &Program, path: &Path, at_own_path: bool) -> ProgramPlacement {
    if !at_own_path {
        let inside = path_in_vm(&program.file_name);
        return ProgramPlacement {
            argv0: inside.clone(),
            inside,
        };
    }
    let named = program_path_in_vm(path.as_os_str(), &program.file_name);
    ProgramPlacement {
        inside: real_program_path(program, named.clone()),
        argv0: named,
    }
}

/// Where a dynamically linked program goes when the path the user typed runs through a
/// symlink on the host (Debian's alternatives: /usr/bin/java -> /etc/alternatives/java ->
/// /usr/lib/jvm/.../bin/java): at its real path, with the typed one a symlink to it, as on the
/// host, so that ld.so's $ORIGIN (from /proc/self/exe, the real path) finds what its
/// DT_RUNPATH names. `inside` is where `program_path_in_vm` put it; anything else keeps that.
pub fn real_program_path(program: &Program, inside: Vec<u8>) -> Vec<u8> {
    let (Some(_), Some(host_path)) = (&program.interpreter, &program.host_path) else {
        return inside;
    };
    if inside.as_slice() != host_path.as_os_str().as_encoded_bytes() {
        return inside;
    }
    match std::fs::canonicalize(host_path) {
        Ok(real) if real != *host_path => real.as_os_str().as_encoded_bytes().to_vec(),
        _ => inside,
    }
}

/// A dynamically linked program's interpreter and libraries, found on the host as ld.so would
/// find them (`deps::resolve`), as image entries at the same paths (`deps::tree_entries`).
/// None for a static program, or one read from an image (whose libraries are in it).
/// Keeps the first entry for each path: a library both found as a dependency and under a
/// `--dir` (the JDK's libjli.so) is packed once.
pub fn dedupe(tree: &mut Vec<TreeEntry>) {
    let mut seen = std::collections::HashSet::new();
    tree.retain(|entry| seen.insert(entry.guest().to_vec()));
}

/// Whether a dependency's entry would stand where the program goes (the program itself, or
/// a symlinked directory on its path, e.g. Debian's `/lib64` when the program is
/// `/lib64/ld-linux-x86-64.so.2`): the program's own path wins.
pub fn in_the_way(entry: &TreeEntry, program_path: &[u8]) -> bool {
    let guest = entry.guest();
    guest == program_path
        || (program_path.starts_with(guest) && program_path.get(guest.len()) == Some(&b'/'))
}

/// When the program is an interpreter itself (`pith run /lib64/ld-linux-x86-64.so.2
/// /usr/bin/prog`, as one runs ld.so on Linux), the program it is to run (named by an absolute
/// path, after ld.so's own options) goes in too, with its dependencies.
pub fn dependency_entries(program: &Program, args: &[OsString]) -> anyhow::Result<Vec<TreeEntry>> {
    let config = crate::deps::SearchConfig::default();
    if let (Some(interpreter), Some(host_path)) = (&program.interpreter, &program.host_path) {
        // From the real path: $ORIGIN is its directory.
        let real = std::fs::canonicalize(host_path).unwrap_or_else(|_| host_path.clone());
        let mut dependencies = crate::deps::resolve(&real, &config)?;
        if real != *host_path {
            // The symlinks from the typed path to the program (`real_program_path`).
            dependencies.push(crate::deps::Dependency {
                path: host_path.clone(),
                found: crate::deps::Found::Interpreter,
                by: None,
            });
        }
        let mut entries = crate::deps::tree_entries(&dependencies)?;
        entries.extend(search_configuration(interpreter));
        return Ok(entries);
    }
    let is_interpreter = program.interpreter.is_none()
        && program
            .file_name
            .to_str()
            .is_some_and(|name| name.starts_with("ld-linux") || name.starts_with("ld-musl"));
    if !is_interpreter {
        return Ok(Vec::new());
    }
    let Some(target) = ld_so_program(args) else {
        return Ok(Vec::new());
    };
    let target = Path::new(target);
    let dependencies = crate::deps::resolve(target, &config)?;
    // The program itself at the path ld.so is given, then what it needs.
    let all: Vec<crate::deps::Dependency> = dependencies
        .into_iter()
        .map(|mut dependency| {
            if dependency.found == crate::deps::Found::Program {
                dependency.found = crate::deps::Found::Interpreter;
            }
            dependency
        })
        .collect();
    crate::deps::tree_entries(&all)
}

/// The host's table of where libraries are, for the VM's ld.so, which would not otherwise
/// find a library the host's table names outside its default directories (/usr/local/lib):
/// glibc's /etc/ld.so.cache, musl's /etc/ld-musl-x86_64.path. Entries for libraries not in
/// the image are harmless: ld.so goes on to its directories.
fn search_configuration(interpreter: &str) -> Option<TreeEntry> {
    let table = if interpreter.contains("ld-musl-") {
        "/etc/ld-musl-x86_64.path"
    } else {
        "/etc/ld.so.cache"
    };
    let metadata = std::fs::metadata(table).ok()?;
    Some(TreeEntry::File {
        guest: table.as_bytes().to_vec(),
        mode: 0o644,
        host: PathBuf::from(table),
        size: metadata.len(),
    })
}

/// The libraries that shared objects put in the tree by `--file`, `--dir` or a manifest need
/// (python's `lib-dynload/_hashlib*.so` needs libcrypto), found and packed as a program's
/// are; what the tree has already is left out.
pub fn library_entries(tree: &[TreeEntry]) -> anyhow::Result<Vec<TreeEntry>> {
    use std::io::Read as _;
    let config = crate::deps::SearchConfig::default();
    let mut have: std::collections::HashSet<Vec<u8>> =
        tree.iter().map(|entry| entry.guest().to_vec()).collect();
    let mut added = Vec::new();
    for entry in tree {
        let TreeEntry::File { host, guest, .. } = entry else {
            continue;
        };
        if !guest.ends_with(b".so") && !guest.windows(4).any(|window| window == b".so.") {
            continue;
        }
        let mut magic = [0u8; 4];
        let is_elf = std::fs::File::open(host)
            .and_then(|mut file| file.read_exact(&mut magic))
            .is_ok()
            && magic == *b"\x7fELF";
        if !is_elf {
            continue;
        }
        // A library whose own needs cannot be met is packed all the same (ld.so reports it if
        // it is ever loaded); only what can be found is added.
        let Ok(dependencies) = crate::deps::resolve(host, &config) else {
            continue;
        };
        for library in crate::deps::tree_entries(&dependencies)? {
            if have.insert(library.guest().to_vec()) {
                added.push(library);
            }
        }
    }
    Ok(added)
}

/// The program an ld.so command line runs: the first word that is not one of ld.so's options
/// (those of `--library-path`, `--preload`, `--audit`, `--argv0` take a value), if it is an
/// absolute path to a file.
fn ld_so_program(args: &[OsString]) -> Option<&OsStr> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let text = word.to_str()?;
        if matches!(text, "--library-path" | "--preload" | "--audit" | "--argv0") {
            words.next();
            continue;
        }
        if text.starts_with("--") {
            continue;
        }
        return (text.starts_with('/') && Path::new(text).is_file()).then_some(word.as_os_str());
    }
    None
}

/// Builds the image bytes with the loader's builder, so the format lives in one place.
pub fn build_image(contents: &ImageContents<'_>) -> anyhow::Result<Vec<u8>> {
    let program_path = contents.program_path.to_vec();
    let env: Vec<String> = contents.env.iter().map(EnvVar::to_string).collect();
    let mut tree = dependency_entries(contents.program, contents.args)?;
    tree.extend(collect_tree(contents.files, contents.dirs)?);
    let libraries = library_entries(&tree)?;
    tree.extend(libraries);
    tree.retain(|entry| !in_the_way(entry, &program_path));
    dedupe(&mut tree);
    let etc = default_etc_files(&tree);
    tree.extend(etc);
    // The initrd is built in memory whole: the files' bytes are read first.
    let file_bytes = tree
        .iter()
        .map(|entry| match entry {
            TreeEntry::File { host, .. } => {
                std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))
            }
            TreeEntry::Generated { bytes, .. } => Ok(bytes.clone()),
            _ => Ok(Vec::new()),
        })
        .collect::<anyhow::Result<Vec<Vec<u8>>>>()?;
    let mut builder = ImageBuilder::new(&contents.program.bytes, &program_path)
        .arg(contents.argv0.as_encoded_bytes())
        .args(contents.args.iter().map(|arg| arg.as_encoded_bytes()))
        .envs(env.iter().map(String::as_bytes));
    for (entry, content) in tree.iter().zip(&file_bytes) {
        builder = builder.entry(match entry {
            TreeEntry::File { guest, mode, .. } | TreeEntry::Generated { guest, mode, .. } => {
                Entry::File {
                    path: guest,
                    mode: *mode,
                    content,
                }
            }
            TreeEntry::Directory { guest, mode } => Entry::Directory {
                path: guest,
                mode: *mode,
            },
            TreeEntry::Symlink { guest, target } => Entry::Symlink {
                path: guest,
                target,
            },
        });
    }
    if let Some(workdir) = contents.workdir {
        if !workdir.starts_with('/') {
            anyhow::bail!("--workdir {workdir}: it must be an absolute path inside the VM");
        }
        builder = builder.workdir(workdir.as_bytes());
    }
    builder.build().with_context(|| {
        format!(
            "packing {} into an image",
            Path::new(contents.argv0).display()
        )
    })
}

/// Writes the image into `directory` and returns its path.
pub fn write_image(directory: &Path, image: &[u8]) -> anyhow::Result<PathBuf> {
    let path = directory.join(IMAGE_FILE_NAME);
    std::fs::write(&path, image).with_context(|| {
        format!(
            "writing the image to {} (is the disk full?)",
            path.display()
        )
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pith_loader::image::Image;

    #[test]
    fn a_later_mapping_replaces_an_earlier_ones_file_at_the_same_path() {
        let base = std::env::temp_dir().join(format!("pith-later-wins-{}", std::process::id()));
        let (recipe, mine) = (base.join("recipe"), base.join("mine"));
        std::fs::create_dir_all(&recipe).unwrap();
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(recipe.join("index.html"), "recipe's").unwrap();
        std::fs::write(recipe.join("404.html"), "recipe's 404").unwrap();
        std::fs::write(mine.join("index.html"), "mine").unwrap();
        let mapping = |host: &Path| PathMapping {
            host: host.to_path_buf(),
            guest: "/var/www/html".into(),
        };
        let tree = collect_tree(&[], &[mapping(&recipe), mapping(&mine)]).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        let found: Vec<(String, Option<PathBuf>)> = tree
            .iter()
            .map(|entry| {
                let host = match entry {
                    TreeEntry::File { host, .. } => Some(host.clone()),
                    _ => None,
                };
                (String::from_utf8_lossy(entry.guest()).into_owned(), host)
            })
            .collect();
        let index: Vec<_> = found
            .iter()
            .filter(|(guest, _)| guest == "/var/www/html/index.html")
            .collect();
        assert_eq!(index.len(), 1, "{found:?}");
        assert_eq!(
            index[0].1.as_deref(),
            Some(mine.join("index.html").as_path())
        );
        // The directory comes once, first; the earlier mapping's other files stay.
        assert_eq!(found[0].0, "/var/www/html");
        assert_eq!(
            found
                .iter()
                .filter(|(guest, _)| guest == "/var/www/html")
                .count(),
            1
        );
        assert!(found
            .iter()
            .any(|(guest, _)| guest == "/var/www/html/404.html"));
    }

    #[test]
    fn the_image_holds_the_program_its_path_argv_and_only_the_given_environment() {
        let program = Program {
            bytes: b"\x7fELF pretend".to_vec(),
            file_name: "hello".into(),
            interpreter: None,
            host_path: None,
        };
        let image = build_image(&ImageContents {
            program: &program,
            program_path: b"/hello",
            argv0: OsStr::new("./bin/hello"),
            args: &["-v".into(), "b c".into(), "".into()],
            env: &[
                EnvVar {
                    key: "A".into(),
                    value: "1".into(),
                },
                EnvVar {
                    key: "EMPTY".into(),
                    value: String::new(),
                },
            ],
            files: &[],
            dirs: &[],
            workdir: None,
        })
        .expect("builds");
        let image = Image::parse(&image).expect("parses");
        assert_eq!(image.program(), b"\x7fELF pretend");
        assert_eq!(image.program_path(), b"/hello");
        assert_eq!(
            image.args().collect::<Vec<_>>(),
            [&b"./bin/hello"[..], b"-v", b"b c", b""]
        );
        assert_eq!(image.env().collect::<Vec<_>>(), [&b"A=1"[..], b"EMPTY="]);
    }

    #[test]
    fn a_program_named_by_an_absolute_path_keeps_it_inside() {
        let at = |typed: &str| {
            String::from_utf8(program_path_in_vm(OsStr::new(typed), OsStr::new("prog"))).unwrap()
        };
        assert_eq!(at("/usr/bin/prog"), "/usr/bin/prog");
        assert_eq!(at("/usr//bin/./prog"), "/usr/bin/prog");
        assert_eq!(at("./prog"), "/prog");
        assert_eq!(at("bin/prog"), "/prog");
        assert_eq!(at("/opt/../bin/prog"), "/prog");
        assert_eq!(at("/proc/self/prog"), "/prog");
        assert_eq!(at("/dev/prog"), "/prog");
    }

    #[test]
    fn a_program_named_through_a_link_goes_to_its_real_path_and_keeps_its_name_as_argv0() {
        let base = std::env::temp_dir().join(format!("pith-placement-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let real = base.join("server-real");
        std::fs::copy("/usr/bin/true", &real).unwrap(); // dynamically linked
        let link = base.join("server");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("server-real", &link).unwrap();
        let program = crate::program::read_program(link.as_os_str()).unwrap();
        let own = place_program(&program, &link, true);
        let relative = place_program(&program, &link, false);
        let real = std::fs::canonicalize(&real).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(own.inside, real.as_os_str().as_encoded_bytes());
        assert_eq!(own.argv0, link.as_os_str().as_encoded_bytes());
        assert_eq!(
            (relative.inside.as_slice(), relative.argv0.as_slice()),
            (&b"/server"[..], &b"/server"[..])
        );
    }

    #[test]
    fn a_file_name_that_is_not_utf8_is_kept_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(path_in_vm(OsStr::from_bytes(b"caf\xe9")), b"/caf\xe9");
    }
}
