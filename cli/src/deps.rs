//! What a dynamically linked program needs, found without running it: its interpreter
//! (PT_INTERP), then each DT_NEEDED library of each object, searched as glibc's ld.so searches
//! (elf/dl-load.c `_dl_map_object`): DT_RPATH of the object and of the objects that loaded it
//! (where they have no DT_RUNPATH), DT_RUNPATH of the object, the host's ld.so.cache, then the
//! system directories. `ops` runs the program with LD_TRACE_LOADED_OBJECTS to learn this; we
//! do not execute what we package. LD_LIBRARY_PATH is not read: the host's environment is
//! not the VM's.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ldcache::LdCache;

/// Debian's x86_64 system directories, in ld.so's order (`ld.so --help`).
pub const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// Where the host's tables live; tests point them elsewhere.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    pub ld_cache: PathBuf,
    pub system_dirs: Vec<PathBuf>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            ld_cache: PathBuf::from("/etc/ld.so.cache"),
            system_dirs: SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

/// How a dependency was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The program itself.
    Program,
    /// The PT_INTERP of `by`.
    Interpreter,
    /// DT_NEEDED `name` of `by`, through `how`.
    Needed { name: String, how: Search },
}

/// Which of ld.so's search steps found a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// The name has a '/': it is a path.
    Path,
    Rpath,
    Runpath,
    LdCache,
    SystemDir,
}

impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Search::Path => "a path",
            Search::Rpath => "DT_RPATH",
            Search::Runpath => "DT_RUNPATH",
            Search::LdCache => "ld.so.cache",
            Search::SystemDir => "a system directory",
        })
    }
}

/// One object the program needs: the path ld.so would open, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub path: PathBuf,
    pub found: Found,
    /// The object that asked for it (none for the program).
    pub by: Option<PathBuf>,
}

/// Why the dependencies cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an ELF file: {reason}")]
    NotElf { path: String, reason: String },
    #[error("{path} is not an x86_64 ELF (e_machine {machine}, {bits}-bit)")]
    WrongMachine {
        path: String,
        machine: u16,
        bits: u8,
    },
    #[error("{name}, needed by {by}, is in none of the places ld.so would look ({searched}){passed_over}")]
    NotFound {
        name: String,
        by: String,
        searched: String,
        /// Files of that name ld.so would pass over, and why ("; passed over: ...").
        passed_over: String,
    },
}

/// What one object says about linking.
struct Object {
    interpreter: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    soname: Option<String>,
}

/// Reads what ld.so reads of an object to link it: the ELF header, the program headers,
/// PT_INTERP, and the dynamic section with the strings it names, each from where it lies.
/// A server's libraries are megabytes and their dynamic sections a few hundred bytes:
/// reading and parsing whole files (symbols, relocations) was half of what `pith run` took to
/// pack redis.
fn read_object(path: &Path) -> Result<Object, DepsError> {
    use std::os::unix::fs::FileExt;

    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| DepsError::Read {
        path: shown.clone(),
        source,
    })?;
    let not_elf = |reason: String| DepsError::NotElf {
        path: shown.clone(),
        reason,
    };
    let read_at = |offset: u64, length: u64, what: &str| -> Result<Vec<u8>, DepsError> {
        let length = usize::try_from(length)
            .ok()
            .filter(|&length| length <= OBJECT_PART_MAX)
            .ok_or_else(|| not_elf(format!("its {what} is {length} bytes long")))?;
        let mut bytes = vec![0; length];
        file.read_exact_at(&mut bytes, offset).map_err(|error| {
            if error.kind() == std::io::ErrorKind::UnexpectedEof {
                not_elf(format!("its {what} lies past the end of the file"))
            } else {
                not_elf(format!("its {what} cannot be read: {error}"))
            }
        })?;
        Ok(bytes)
    };
    // Up to the header's 64 bytes: a shorter file says what it is by its first bytes.
    let mut header = Vec::with_capacity(64);
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, 64), &mut header).map_err(
        |source| DepsError::Read {
            path: shown.clone(),
            source,
        },
    )?;
    if !header.starts_with(b"\x7fELF") {
        let start: String = header[..header.len().min(8)].escape_ascii().to_string();
        return Err(not_elf(format!(
            "it does not start with the ELF magic number (it starts with \"{start}\")"
        )));
    }
    if header.len() < 64 {
        return Err(not_elf("shorter than an ELF header".to_string()));
    }
    let (class, data) = (header[4], header[5]);
    let machine = if data == ELFDATA2LSB {
        u16_at(&header, 18)
    } else {
        u16::from_be_bytes([header[18], header[19]])
    };
    if class != ELFCLASS64 || machine != EM_X86_64 {
        return Err(DepsError::WrongMachine {
            path: shown,
            machine,
            bits: if class == ELFCLASS64 { 64 } else { 32 },
        });
    }
    if data != ELFDATA2LSB {
        return Err(not_elf("big-endian".to_string()));
    }
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 32),
        u16_at(&header, 54),
        u16_at(&header, 56),
    );
    if phnum > 0 && usize::from(phentsize) != PROGRAM_HEADER_SIZE {
        return Err(not_elf(format!("program headers of {phentsize} bytes")));
    }
    let table = read_at(
        phoff,
        u64::from(phnum) * PROGRAM_HEADER_SIZE as u64,
        "program header table",
    )?;
    let mut interpreter = None;
    let mut dynamic = None;
    let mut loads = Vec::new();
    for entry in table.chunks_exact(PROGRAM_HEADER_SIZE) {
        let (offset, vaddr, filesz) = (u64_at(entry, 8), u64_at(entry, 16), u64_at(entry, 32));
        match u32_at(entry, 0) {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            // The first, as the kernel's ELF loader takes it.
            PT_INTERP if interpreter.is_none() => interpreter = Some((offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let interpreter = match interpreter {
        Some((offset, size)) => {
            let bytes = read_at(offset, size, "PT_INTERP")?;
            match string_from(&bytes, 0) {
                Some(path) if !path.is_empty() => Some(path),
                Some(_) => return Err(not_elf("an empty PT_INTERP".into())),
                None => return Err(not_elf("a PT_INTERP that is not text".into())),
            }
        }
        None => None,
    };
    let mut object = Object {
        interpreter,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        soname: None,
    };
    let Some((offset, size)) = dynamic else {
        return Ok(object);
    };
    let section = read_at(offset, size, "dynamic section")?;
    let entries: Vec<(u64, u64)> = section
        .chunks_exact(16)
        .map(|entry| (u64_at(entry, 0), u64_at(entry, 8)))
        .take_while(|&(tag, _)| tag != DT_NULL)
        .collect();
    // The last of a tag, as ld.so's get-dynamic-info keeps it.
    let value_of = |wanted: u64| {
        entries
            .iter()
            .rev()
            .find(|&&(tag, _)| tag == wanted)
            .map(|&(_, value)| value)
    };
    let (Some(strtab), Some(strsz)) = (value_of(DT_STRTAB), value_of(DT_STRSZ)) else {
        return Ok(object);
    };
    // DT_STRTAB is an address: the PT_LOAD segment that holds it says where it lies in the file.
    let strtab_offset = loads
        .iter()
        .find(|&&(vaddr, _, filesz)| strtab >= vaddr && strtab - vaddr < filesz)
        .and_then(|&(vaddr, offset, _)| offset.checked_add(strtab - vaddr))
        .ok_or_else(|| not_elf(format!("DT_STRTAB {strtab:#x} is in no loaded segment")))?;
    let strings = read_at(strtab_offset, strsz, "dynamic string table")?;
    let string = |index: u64| {
        usize::try_from(index)
            .ok()
            .and_then(|index| string_from(&strings, index))
            .ok_or_else(|| not_elf(format!("a dynamic string at {index} outside its table")))
    };
    let split = |entry: String| -> Vec<String> {
        entry
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(str::to_string)
            .collect()
    };
    for &(tag, value) in &entries {
        match tag {
            DT_NEEDED => object.needed.push(string(value)?),
            DT_SONAME => object.soname = Some(string(value)?),
            DT_RUNPATH => object.runpath.extend(split(string(value)?)),
            DT_RPATH => object.rpath.extend(split(string(value)?)),
            _ => {}
        }
    }
    // ld.so ignores DT_RPATH when DT_RUNPATH is there, empty or not (elf/get-dynamic-info.h).
    if entries.iter().any(|&(tag, _)| tag == DT_RUNPATH) {
        object.rpath.clear();
    }
    Ok(object)
}

/// ELF constants (include/uapi/linux/elf.h, elf/elf.h).
const EM_X86_64: u16 = 62;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const PROGRAM_HEADER_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// The most read of any one part of an object (a header table, the dynamic section or its
/// strings): a corrupt size must not ask for gigabytes.
const OBJECT_PART_MAX: usize = 64 << 20;

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

/// The NUL-terminated UTF-8 string at `index` of `bytes` (to the end if no NUL), if any.
fn string_from(bytes: &[u8], index: usize) -> Option<String> {
    let rest = bytes.get(index..)?;
    let end = rest
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

/// Expands ld.so's dynamic string tokens in a search directory of the object at `origin_of`:
/// $ORIGIN (the object's directory), $LIB and $PLATFORM (Debian x86_64's values).
fn expand(dir: &str, origin_of: &Path) -> String {
    let origin = origin_of
        .parent()
        .map(|parent| parent.display().to_string())
        .unwrap_or_else(|| ".".to_string());
    dir.replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin)
        .replace("${LIB}", "lib/x86_64-linux-gnu")
        .replace("$LIB", "lib/x86_64-linux-gnu")
        .replace("${PLATFORM}", "x86_64")
        .replace("$PLATFORM", "x86_64")
}

/// Whether `path` is an x86_64 ELF ld.so would accept (it skips other machines and classes
/// and goes on searching).
fn usable(path: &Path) -> bool {
    path.is_file() && read_object(path).is_ok()
}

/// Why a file at `path` that is there would be passed over (a symlink to nothing, another
/// machine's ELF, not an ELF); None if it is usable or not there at all.
fn unusable(path: &Path) -> Option<String> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if metadata.file_type().is_symlink() && !path.exists() {
        let target = std::fs::read_link(path).unwrap_or_default();
        return Some(format!(
            "{} is a symlink to {}, which is not there",
            path.display(),
            target.display()
        ));
    }
    match read_object(path) {
        Ok(_) => None,
        Err(error) => Some(error.to_string()),
    }
}

fn alloc_passed_over(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!("; passed over: {}", notes.join("; "))
    }
}

/// The program at `program`, its interpreter and every library it needs, in the order
/// ld.so loads them (breadth first), each once.
pub fn resolve(program: &Path, config: &SearchConfig) -> Result<Vec<Dependency>, DepsError> {
    let main = read_object(program)?;
    // musl's dynamic linker is its libc ("libc.so" is itself), reads no ld.so.cache, and
    // searches /etc/ld-musl-x86_64.path's directories, else /lib:/usr/local/lib:/usr/lib
    // (musl's ldso/dynlink.c).
    let musl = main.interpreter.as_deref().is_some_and(|interpreter| {
        Path::new(interpreter)
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("ld-musl-"))
    });
    let musl_config;
    let (cache, config) = if musl {
        let listed = std::fs::read_to_string("/etc/ld-musl-x86_64.path").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = listed
            .split([':', '\n'])
            .filter(|dir| !dir.trim().is_empty())
            .map(|dir| PathBuf::from(dir.trim()))
            .collect();
        if dirs.is_empty() {
            dirs = ["/lib", "/usr/local/lib", "/usr/lib"]
                .iter()
                .map(PathBuf::from)
                .collect();
        }
        musl_config = SearchConfig {
            ld_cache: config.ld_cache.clone(),
            system_dirs: dirs,
        };
        (LdCache::default(), &musl_config)
    } else {
        (LdCache::read(&config.ld_cache), config)
    };
    let mut out = vec![Dependency {
        path: program.to_path_buf(),
        found: Found::Program,
        by: None,
    }];
    let mut seen_paths: HashSet<PathBuf> = HashSet::new();
    let mut seen_names: HashSet<String> = HashSet::new();
    seen_paths.insert(program.to_path_buf());
    if let Some(interpreter) = &main.interpreter {
        let path = PathBuf::from(interpreter);
        if !path.is_file() {
            return Err(DepsError::NotFound {
                name: interpreter.clone(),
                by: program.display().to_string(),
                searched: "its PT_INTERP path".to_string(),
                passed_over: unusable(&path)
                    .map(|why| alloc_passed_over(&[why]))
                    .unwrap_or_default(),
            });
        }
        if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
            seen_names.insert(name.to_string());
        }
        if musl {
            seen_names.insert("libc.so".to_string());
        }
        if let Some(soname) = read_object(&path).ok().and_then(|object| object.soname) {
            seen_names.insert(soname);
        }
        seen_paths.insert(path.clone());
        out.push(Dependency {
            path,
            found: Found::Interpreter,
            by: Some(program.to_path_buf()),
        });
    }
    // Each queued object with the chain of objects that loaded it (for DT_RPATH).
    let mut queue: VecDeque<(PathBuf, Object, Vec<Vec<String>>)> = VecDeque::new();
    let main_rpaths = vec![main
        .rpath
        .iter()
        .map(|dir| expand(dir, program))
        .collect::<Vec<_>>()];
    queue.push_back((program.to_path_buf(), main, main_rpaths));
    while let Some((path, object, loader_rpaths)) = queue.pop_front() {
        for name in &object.needed {
            if seen_names.contains(name) {
                continue;
            }
            let (found, how) = find_library(name, &path, &object, &loader_rpaths, &cache, config)?;
            seen_names.insert(name.clone());
            if !seen_paths.insert(found.clone()) {
                continue;
            }
            let library = read_object(&found)?;
            if let Some(soname) = &library.soname {
                seen_names.insert(soname.clone());
            }
            let mut rpaths = loader_rpaths.clone();
            rpaths.insert(
                0,
                library
                    .rpath
                    .iter()
                    .map(|dir| expand(dir, &found))
                    .collect(),
            );
            out.push(Dependency {
                path: found.clone(),
                found: Found::Needed {
                    name: name.clone(),
                    how,
                },
                by: Some(path.clone()),
            });
            queue.push_back((found, library, rpaths));
        }
    }
    Ok(out)
}

/// ld.so's search for DT_NEEDED `name` of the object at `by`.
fn find_library(
    name: &str,
    by: &Path,
    object: &Object,
    loader_rpaths: &[Vec<String>],
    cache: &LdCache,
    config: &SearchConfig,
) -> Result<(PathBuf, Search), DepsError> {
    if name.contains('/') {
        let path = PathBuf::from(expand(name, by));
        if usable(&path) {
            return Ok((path, Search::Path));
        }
        return Err(DepsError::NotFound {
            name: name.to_string(),
            by: by.display().to_string(),
            searched: "the path it names".to_string(),
            passed_over: unusable(&path)
                .map(|why| alloc_passed_over(&[why]))
                .unwrap_or_default(),
        });
    }
    let mut searched = Vec::new();
    let mut passed_over: Vec<String> = Vec::new();
    let mut try_dirs = |dirs: &[String], how: Search, searched: &mut Vec<String>| {
        for dir in dirs {
            let candidate = Path::new(dir).join(name);
            searched.push(dir.clone());
            if usable(&candidate) {
                return Some((candidate, how));
            }
            if let Some(why) = unusable(&candidate) {
                if !passed_over.contains(&why) {
                    passed_over.push(why);
                }
            }
        }
        None
    };
    // DT_RPATH of this object and the objects that loaded it, when it has no DT_RUNPATH.
    if object.runpath.is_empty() {
        for dirs in loader_rpaths {
            if let Some(found) = try_dirs(dirs, Search::Rpath, &mut searched) {
                return Ok(found);
            }
        }
    }
    let runpath: Vec<String> = object.runpath.iter().map(|dir| expand(dir, by)).collect();
    if let Some(found) = try_dirs(&runpath, Search::Runpath, &mut searched) {
        return Ok(found);
    }
    if let Some(path) = cache.lookup(name).filter(|path| usable(path)) {
        return Ok((path.to_path_buf(), Search::LdCache));
    }
    searched.push(config.ld_cache.display().to_string());
    let system: Vec<String> = config
        .system_dirs
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    if let Some(found) = try_dirs(&system, Search::SystemDir, &mut searched) {
        return Ok(found);
    }
    Err(DepsError::NotFound {
        name: name.to_string(),
        by: by.display().to_string(),
        searched: searched.join(", "),
        passed_over: alloc_passed_over(&passed_over),
    })
}

/// The image entries that put `dependencies` (all but the program itself) in the VM at the
/// paths ld.so will open: each symlink on the way (a symlinked directory such as Debian's
/// `/lib` -> `usr/lib` included) as a symlink, and the file at its real path.
pub fn tree_entries(dependencies: &[Dependency]) -> anyhow::Result<Vec<crate::image::TreeEntry>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut entries = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for dependency in dependencies {
        if dependency.found == Found::Program {
            continue;
        }
        // Resolve the path one component at a time, as the VM's path walk will.
        // `..` kept: a library found through `$ORIGIN/../lib` is reached as ld.so reaches it.
        let mut pending: VecDeque<std::ffi::OsString> = dependency
            .path
            .components()
            .filter_map(|component| match component {
                std::path::Component::Normal(name) => Some(name.to_os_string()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut at = PathBuf::from("/");
        let mut hops = 0;
        while let Some(name) = pending.pop_front() {
            let next = at.join(&name);
            let metadata = std::fs::symlink_metadata(&next).map_err(|error| {
                anyhow::anyhow!(
                    "{} (for {}): {error}",
                    next.display(),
                    dependency.path.display()
                )
            })?;
            if metadata.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    anyhow::bail!("{}: too many symlinks (a loop?)", dependency.path.display());
                }
                let target = std::fs::read_link(&next)?;
                if seen.insert(next.clone()) {
                    entries.push(crate::image::TreeEntry::Symlink {
                        guest: next.as_os_str().as_encoded_bytes().to_vec(),
                        target: target.as_os_str().as_encoded_bytes().to_vec(),
                    });
                }
                // The target's components replace the link's, from / or from its directory.
                let mut rest: VecDeque<std::ffi::OsString> = target
                    .components()
                    .filter_map(|component| match component {
                        std::path::Component::Normal(name) => Some(name.to_os_string()),
                        std::path::Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                if target.is_absolute() {
                    at = PathBuf::from("/");
                }
                rest.extend(pending);
                pending = rest;
                continue;
            }
            if name == ".." {
                at.pop();
                continue;
            }
            at = next;
            if pending.is_empty() && metadata.is_file() && seen.insert(at.clone()) {
                entries.push(crate::image::TreeEntry::File {
                    guest: at.as_os_str().as_encoded_bytes().to_vec(),
                    mode: metadata.permissions().mode() & 0o7777,
                    host: at.clone(),
                    size: metadata.len(),
                });
            }
        }
    }
    Ok(entries)
}

/// `pith deps PROGRAM`'s lines: each path, and why it is packed.
pub fn describe(dependencies: &[Dependency]) -> Vec<String> {
    let width = dependencies
        .iter()
        .map(|dependency| dependency.path.display().to_string().len())
        .max()
        .unwrap_or(0);
    dependencies
        .iter()
        .map(|dependency| {
            let by = dependency
                .by
                .as_ref()
                .map(|by| by.display().to_string())
                .unwrap_or_default();
            let why = match &dependency.found {
                Found::Program => "the program".to_string(),
                Found::Interpreter => format!("the interpreter (PT_INTERP) of {by}"),
                Found::Needed { name, how } => {
                    format!("DT_NEEDED {name} of {by}, found through {how}")
                }
            };
            format!(
                "{:width$}  {why}",
                dependency.path.display().to_string(),
                width = width
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> SearchConfig {
        SearchConfig::default()
    }

    /// Compiles `source` with `compiler` in `dir` (the source first: libraries named after
    /// it are searched for its symbols), with `args` (an `-o` among them).
    fn cc(compiler: &str, dir: &Path, source: &str, args: &[&str]) {
        static SOURCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let number = SOURCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let source_path = dir.join(format!("source{number}.c"));
        std::fs::write(&source_path, source).expect("source");
        let status = std::process::Command::new(compiler)
            .arg(&source_path)
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap_or_else(|error| panic!("{compiler}: {error}"));
        assert!(status.success(), "{compiler} {args:?}");
    }

    #[test]
    fn a_debian_program_needs_its_interpreter_and_libc() {
        // /usr/bin/ls from coreutils: libselinux and libc through ld.so.cache, pcre2 from
        // libselinux.
        let deps = resolve(Path::new("/usr/bin/ls"), &host()).expect("resolves");
        assert_eq!(deps[0].found, Found::Program);
        assert_eq!(deps[1].path, Path::new("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(deps[1].found, Found::Interpreter);
        let libc = deps
            .iter()
            .find(|dep| matches!(&dep.found, Found::Needed { name, .. } if name == "libc.so.6"))
            .expect("libc.so.6");
        assert!(libc.path.ends_with("libc.so.6"), "{}", libc.path.display());
        assert!(
            deps.iter()
                .any(|dep| dep.by.as_deref() != Some(Path::new("/usr/bin/ls"))
                    && matches!(dep.found, Found::Needed { .. })),
            "a library of a library: {deps:#?}"
        );
        // Each once.
        let unique: HashSet<_> = deps.iter().map(|dep| &dep.path).collect();
        assert_eq!(unique.len(), deps.len());
    }

    #[test]
    fn a_static_program_needs_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("static");
        cc(
            "gcc",
            dir.path(),
            "int main(void) { return 0; }",
            &["-static", "-o", "static"],
        );
        let deps = resolve(&program, &host()).expect("resolves");
        assert_eq!(deps.len(), 1);
    }

    #[test]
    fn runpath_with_origin_is_searched_before_the_cache() {
        // A program linked against a library in $ORIGIN/lib, with DT_RUNPATH.
        let dir = tempfile::tempdir().expect("tempdir");
        let lib_dir = dir.path().join("lib");
        std::fs::create_dir(&lib_dir).expect("mkdir");
        let gcc = |args: &[&str], source: &str| cc("gcc", dir.path(), source, args);
        gcc(
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libpithdep.so.1",
                "-o",
                "lib/libpithdep.so.1",
            ],
            "int pith_dep(void) { return 7; }",
        );
        std::os::unix::fs::symlink("libpithdep.so.1", lib_dir.join("libpithdep.so"))
            .expect("symlink");
        gcc(
            &[
                "-o",
                "prog",
                "-Llib",
                "-lpithdep",
                "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib",
            ],
            "int pith_dep(void); int main(void) { return pith_dep(); }",
        );
        let program = dir.path().join("prog");
        let deps = resolve(&program, &host()).expect("resolves");
        let found = deps
            .iter()
            .find(
                |dep| matches!(&dep.found, Found::Needed { name, .. } if name == "libpithdep.so.1"),
            )
            .expect("libpithdep.so.1");
        assert_eq!(found.path, lib_dir.join("libpithdep.so.1"));
        assert_eq!(
            found.found,
            Found::Needed {
                name: "libpithdep.so.1".to_string(),
                how: Search::Runpath
            }
        );
        // Another machine's library of that name is passed over, and the error says so.
        let mut foreign = std::fs::read(lib_dir.join("libpithdep.so.1")).expect("read");
        foreign[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        std::fs::write(lib_dir.join("libpithdep.so.1"), foreign).expect("write");
        let error = resolve(&program, &host())
            .expect_err("wrong machine")
            .to_string();
        assert!(error.contains("passed over: "), "{error}");
        assert!(
            error.contains("is not an x86_64 ELF (e_machine 183"),
            "{error}"
        );
        // A symlink to nothing, likewise.
        std::fs::remove_file(lib_dir.join("libpithdep.so.1")).expect("rm");
        std::os::unix::fs::symlink("gone.so", lib_dir.join("libpithdep.so.1")).expect("symlink");
        let error = resolve(&program, &host())
            .expect_err("dangling")
            .to_string();
        assert!(
            error.contains("is a symlink to gone.so, which is not there"),
            "{error}"
        );
        // Without the library, the error names it, who needs it and where ld.so looked.
        std::fs::remove_file(lib_dir.join("libpithdep.so.1")).expect("rm");
        let error = resolve(&program, &host()).expect_err("missing").to_string();
        assert!(error.starts_with("libpithdep.so.1, needed by "), "{error}");
        assert!(
            error.contains(&format!("{}/lib", dir.path().display())),
            "{error}"
        );
        assert!(error.contains("/etc/ld.so.cache"), "{error}");
        assert!(!error.contains("passed over"), "{error}");
    }

    #[test]
    fn entries_follow_symlinked_directories_to_the_real_files() {
        // Debian 12 merges /usr: /lib64 -> usr/lib64, whose ld-linux-x86-64.so.2 links to
        // /lib/x86_64-linux-gnu/..., with /lib -> usr/lib.
        let deps = resolve(Path::new("/usr/bin/ls"), &host()).expect("resolves");
        let entries = tree_entries(&deps).expect("entries");
        let files: Vec<String> = entries
            .iter()
            .filter_map(|entry| match entry {
                crate::image::TreeEntry::File { guest, .. } => {
                    Some(String::from_utf8_lossy(guest).into_owned())
                }
                _ => None,
            })
            .collect();
        // Every file at its real path: no symlink on the way.
        for file in &files {
            assert_eq!(
                std::fs::canonicalize(file).expect("exists"),
                Path::new(file),
                "{file}"
            );
        }
        let interpreter = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("ld.so");
        assert!(
            files.contains(&interpreter.display().to_string()),
            "{files:?}"
        );
        // And each symlink ld.so's path goes through is there as a symlink.
        let links: Vec<String> = entries
            .iter()
            .filter_map(|entry| match entry {
                crate::image::TreeEntry::Symlink { guest, .. } => {
                    Some(String::from_utf8_lossy(guest).into_owned())
                }
                _ => None,
            })
            .collect();
        let mut walked = PathBuf::from("/");
        for component in Path::new("/lib64/ld-linux-x86-64.so.2")
            .components()
            .skip(1)
        {
            walked.push(component);
            if walked.is_symlink() {
                assert!(links.contains(&walked.display().to_string()), "{links:?}");
                break;
            }
        }
    }

    #[test]
    fn a_musl_program_needs_only_musls_loader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("musl");
        cc(
            "musl-gcc",
            dir.path(),
            "int main(void) { return 0; }",
            &["-o", "musl"],
        );
        let deps = resolve(&program, &host()).expect("resolves");
        let paths: Vec<&Path> = deps.iter().map(|dep| dep.path.as_path()).collect();
        assert_eq!(
            paths,
            [program.as_path(), Path::new("/lib/ld-musl-x86_64.so.1")]
        );
    }

    #[test]
    fn a_library_through_origin_dot_dot_is_packed_at_its_real_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["bin", "lib"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        let library = dir.path().join("lib/libpithup.so.1");
        cc(
            "gcc",
            dir.path(),
            "int pith_up(void) { return 3; }",
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libpithup.so.1",
                "-o",
                "lib/libpithup.so.1",
            ],
        );
        std::os::unix::fs::symlink("libpithup.so.1", dir.path().join("lib/libpithup.so"))
            .expect("symlink");
        let program = dir.path().join("bin/prog");
        cc(
            "gcc",
            dir.path(),
            "int pith_up(void); int main(void) { return pith_up(); }",
            &[
                "-o",
                "bin/prog",
                "-Llib",
                "-lpithup",
                "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
            ],
        );
        let deps = resolve(&program, &host()).expect("resolves");
        let entries = tree_entries(&deps).expect("entries");
        let real = std::fs::canonicalize(&library).expect("the library");
        assert!(
            entries.iter().any(|entry| matches!(entry,
                crate::image::TreeEntry::File { guest, .. } if guest.as_slice() == real.as_os_str().as_encoded_bytes())),
            "{entries:?}"
        );
    }

    #[test]
    fn origin_and_lib_tokens_expand() {
        let object = Path::new("/opt/app/bin/prog");
        assert_eq!(expand("$ORIGIN/../lib", object), "/opt/app/bin/../lib");
        assert_eq!(
            expand("${ORIGIN}/x:/$LIB", object),
            "/opt/app/bin/x:/lib/x86_64-linux-gnu"
        );
    }

    #[test]
    fn a_file_that_is_not_elf_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").expect("write");
        let error = resolve(&path, &host()).expect_err("not ELF").to_string();
        assert!(error.contains("is not an ELF file"), "{error}");
        assert!(error.contains("it starts with \"#!/bin/s\""), "{error}");
    }

    #[test]
    fn a_big_endian_object_is_named_by_its_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s390x");
        let mut header = vec![0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x02");
        header[18..20].copy_from_slice(&22u16.to_be_bytes()); // EM_S390
        std::fs::write(&path, &header).expect("write");
        match read_object(&path) {
            Err(DepsError::WrongMachine { machine, bits, .. }) => {
                assert_eq!((machine, bits), (22, 64))
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("read as x86_64"),
        }
    }

    #[test]
    fn a_damaged_object_is_refused_with_what_is_wrong_never_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        cc(
            "gcc",
            dir.path(),
            "int main(void) { return 0; }",
            &["-o", "prog"],
        );
        let good = std::fs::read(dir.path().join("prog")).expect("read");
        let object = read_object(&dir.path().join("prog")).expect("a good program");
        assert_eq!(object.needed, ["libc.so.6"]);
        assert_eq!(
            object.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        let damaged = |name: &str, change: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            change(&mut bytes);
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).expect("write");
            match read_object(&path) {
                Err(error) => error.to_string(),
                Ok(_) => panic!("{name}: read as a good object"),
            }
        };
        let phoff = u64_at(&good, 32) as usize;
        let error = damaged("cut", &|bytes| bytes.truncate(40));
        assert!(error.contains("shorter than an ELF header"), "{error}");
        let error = damaged("huge-table", &|bytes| {
            bytes[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        });
        assert!(
            error.contains("program header table lies past the end"),
            "{error}"
        );
        // The dynamic section's size, made absurd.
        // Where the PT_DYNAMIC program header is.
        let dynamic_header = |bytes: &[u8]| {
            (0..usize::from(u16_at(bytes, 56)))
                .map(|index| phoff + index * PROGRAM_HEADER_SIZE)
                .find(|&entry| u32_at(bytes, entry) == PT_DYNAMIC)
                .expect("a PT_DYNAMIC")
        };
        let error = damaged("huge-dynamic", &|bytes| {
            let entry = dynamic_header(bytes);
            bytes[entry + 32..entry + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        });
        assert!(
            error.contains("dynamic section is 1099511627776 bytes"),
            "{error}"
        );
        // Its string table's address, moved out of every segment.
        let error = damaged("lost-strings", &|bytes| {
            let entry = dynamic_header(bytes);
            let (offset, size) = (u64_at(bytes, entry + 8), u64_at(bytes, entry + 32));
            for at in (offset..offset + size).step_by(16) {
                let at = at as usize;
                if u64_at(bytes, at) == DT_STRTAB {
                    bytes[at + 8..at + 16].copy_from_slice(&(1u64 << 50).to_le_bytes());
                }
            }
        });
        assert!(error.contains("is in no loaded segment"), "{error}");
    }
}
