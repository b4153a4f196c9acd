//! The image the CLI hands the kernel as its initrd (docs/design/boot-protocol.md): a parser and a builder.
//!
//! Layout: the 8-byte magic `PITHIMG1`, then sections `tag: u32 LE, len: u32 LE, payload[len]`, each
//! padded with zero bytes to a multiple of 8, ending with an `End` section (tag 0, len 0). Bytes after
//! `End` are ignored, so a loader may hand over a page-rounded region.

use alloc::vec::Vec;
use core::fmt;

/// The first eight bytes of every image.
pub const IMAGE_MAGIC: [u8; 8] = *b"PITHIMG1";
/// Size of a section header (tag and length).
pub const SECTION_HEADER_SIZE: usize = 8;
/// Sections start and end on this alignment.
pub const SECTION_ALIGN: usize = 8;

/// The kind of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionTag {
    /// The last section; no payload.
    End = 0,
    /// The ELF file's bytes, unchanged.
    Program = 1,
    /// The program's path inside the VM (`AT_EXECFN`, /proc/self/exe).
    ProgramPath = 2,
    /// One argv string, no NUL; in order, `argv[0]` first.
    Arg = 3,
    /// One `KEY=VALUE` environment string, no NUL; in order.
    Env = 4,
    /// A file of the VM's tree: mode (u32 LE), path length (u32 LE), the absolute path, the
    /// contents.
    File = 5,
    /// A directory: mode (u32 LE), the absolute path.
    Directory = 6,
    /// A symbolic link: path length (u32 LE), the absolute path, the target.
    Symlink = 7,
    /// The program's working directory (absolute path); `/` without one.
    Workdir = 8,
}

impl SectionTag {
    /// The tag for a raw value, or `None` if it is not one this version knows.
    pub fn from_u32(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::End),
            1 => Some(Self::Program),
            2 => Some(Self::ProgramPath),
            3 => Some(Self::Arg),
            4 => Some(Self::Env),
            5 => Some(Self::File),
            6 => Some(Self::Directory),
            7 => Some(Self::Symlink),
            8 => Some(Self::Workdir),
            _ => None,
        }
    }

    /// The section's name as the protocol document spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::End => "End",
            Self::Program => "Program",
            Self::ProgramPath => "ProgramPath",
            Self::Arg => "Arg",
            Self::Env => "Env",
            Self::File => "File",
            Self::Directory => "Directory",
            Self::Symlink => "Symlink",
            Self::Workdir => "Workdir",
        }
    }
}

impl fmt::Display for SectionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (tag {})", self.name(), *self as u32)
    }
}

/// Why an image cannot be read or built. Offsets are byte offsets from the start of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// The image does not start with `PITHIMG1`.
    BadMagic {
        /// Up to the first eight bytes.
        found: [u8; 8],
        /// The image's length.
        len: usize,
    },
    /// A section header or payload runs past the end of the image.
    TruncatedSection {
        /// Where the section starts.
        offset: usize,
        /// Bytes the section needs from `offset`.
        needed: u64,
        /// Bytes left from `offset`.
        available: usize,
    },
    /// A section's tag is not one this version knows.
    UnknownTag {
        /// The tag.
        tag: u32,
        /// Where the section starts.
        offset: usize,
    },
    /// A padding byte after a payload is not zero.
    NonZeroPadding {
        /// Where the bad byte is.
        offset: usize,
    },
    /// The `End` section has a payload.
    EndNotEmpty {
        /// Where the section starts.
        offset: usize,
        /// Its length field.
        len: u32,
    },
    /// The image ends without an `End` section.
    MissingEnd {
        /// The image's length.
        len: usize,
    },
    /// A required section is missing.
    MissingSection {
        /// Which one.
        tag: SectionTag,
    },
    /// A section that must appear once appears again.
    DuplicateSection {
        /// Which one.
        tag: SectionTag,
        /// Where the first one starts.
        first_offset: usize,
        /// Where the second one starts.
        offset: usize,
    },
    /// A string section (ProgramPath, Arg, Env) contains a NUL byte.
    ContainsNul {
        /// Which kind of section.
        tag: SectionTag,
        /// Where the section starts (0 when building).
        offset: usize,
        /// Byte offset of the NUL in the payload.
        position: usize,
    },
    /// A File, Directory or Symlink section is malformed.
    BadEntry {
        /// Which kind of section.
        tag: SectionTag,
        /// Where the section starts (0 when building).
        offset: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// A payload is too long for the u32 length field (when building).
    SectionTooLarge {
        /// Which kind of section.
        tag: SectionTag,
        /// The payload's length.
        len: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { found, len } => {
                let shown = &found[..(*len).min(8)];
                write!(
                    f,
                    "not a Pith image: it starts with {shown:02x?} ({len} bytes), not the magic \"PITHIMG1\""
                )
            }
            Self::TruncatedSection {
                offset,
                needed,
                available,
            } => write!(
                f,
                "image section at offset {offset:#x} needs {needed} bytes but only {available} remain"
            ),
            Self::UnknownTag { tag, offset } => {
                write!(f, "image section at offset {offset:#x} has unknown tag {tag}")
            }
            Self::NonZeroPadding { offset } => {
                write!(f, "image padding byte at offset {offset:#x} is not zero")
            }
            Self::EndNotEmpty { offset, len } => write!(
                f,
                "image End section at offset {offset:#x} has length {len}, not 0"
            ),
            Self::MissingEnd { len } => write!(
                f,
                "image ends at offset {len:#x} without an End section"
            ),
            Self::MissingSection { tag } => write!(f, "image has no {tag} section"),
            Self::DuplicateSection {
                tag,
                first_offset,
                offset,
            } => write!(
                f,
                "image has a second {tag} section at offset {offset:#x}; the first is at {first_offset:#x}"
            ),
            Self::ContainsNul {
                tag,
                offset,
                position,
            } => write!(
                f,
                "image {tag} section at offset {offset:#x} contains a NUL byte at payload offset {position}"
            ),
            Self::BadEntry { tag, offset, why } => {
                write!(f, "image {tag} section at offset {offset:#x}: {why}")
            }
            Self::SectionTooLarge { tag, len } => write!(
                f,
                "{tag} section payload is {len} bytes, over the u32 length limit ({} bytes)",
                u32::MAX
            ),
        }
    }
}

impl core::error::Error for ImageError {}

/// A parsed image, borrowing the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image<'a> {
    program: &'a [u8],
    program_path: &'a [u8],
    /// The validated sections: from after the magic up to and including the `End` section.
    sections: &'a [u8],
}

impl<'a> Image<'a> {
    /// Checks an image and returns a view of it. Nothing is copied.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        if bytes.len() < IMAGE_MAGIC.len() || bytes[..IMAGE_MAGIC.len()] != IMAGE_MAGIC {
            let mut found = [0; 8];
            let shown = bytes.len().min(8);
            found[..shown].copy_from_slice(&bytes[..shown]);
            return Err(ImageError::BadMagic {
                found,
                len: bytes.len(),
            });
        }
        let mut program: Option<(usize, &[u8])> = None;
        let mut program_path: Option<(usize, &[u8])> = None;
        let mut offset = IMAGE_MAGIC.len();
        loop {
            let section = read_section(bytes, offset)?;
            let Some(tag) = SectionTag::from_u32(section.tag) else {
                return Err(ImageError::UnknownTag {
                    tag: section.tag,
                    offset,
                });
            };
            match tag {
                SectionTag::End => {
                    if !section.payload.is_empty() {
                        return Err(ImageError::EndNotEmpty {
                            offset,
                            len: section.tag_len,
                        });
                    }
                    let (_, program) = program.ok_or(ImageError::MissingSection {
                        tag: SectionTag::Program,
                    })?;
                    let (_, program_path) = program_path.ok_or(ImageError::MissingSection {
                        tag: SectionTag::ProgramPath,
                    })?;
                    return Ok(Self {
                        program,
                        program_path,
                        sections: &bytes[IMAGE_MAGIC.len()..section.next],
                    });
                }
                SectionTag::Program => set_once(&mut program, tag, offset, section.payload)?,
                SectionTag::ProgramPath => {
                    check_no_nul(tag, offset, section.payload)?;
                    set_once(&mut program_path, tag, offset, section.payload)?;
                }
                SectionTag::Arg | SectionTag::Env | SectionTag::Workdir => {
                    check_no_nul(tag, offset, section.payload)?
                }
                SectionTag::File | SectionTag::Directory | SectionTag::Symlink => {
                    decode_entry(tag, section.payload).map_err(|why| ImageError::BadEntry {
                        tag,
                        offset,
                        why,
                    })?;
                }
            }
            offset = section.next;
        }
    }

    /// The ELF file.
    pub fn program(&self) -> &'a [u8] {
        self.program
    }

    /// The program's path inside the VM.
    pub fn program_path(&self) -> &'a [u8] {
        self.program_path
    }

    /// The argv strings, `argv[0]` first.
    pub fn args(&self) -> Payloads<'a> {
        Payloads {
            sections: self.sections,
            offset: 0,
            tag: SectionTag::Arg,
        }
    }

    /// The environment strings, in order.
    pub fn env(&self) -> Payloads<'a> {
        Payloads {
            sections: self.sections,
            offset: 0,
            tag: SectionTag::Env,
        }
    }
}

impl<'a> Image<'a> {
    /// The files, directories and symlinks to put in the VM's tree, in the order the image
    /// lists them: a symlink the CLI lists before a file under it (Debian's `/lib` ->
    /// `usr/lib`, then a file the user put at `/lib/...`) is made first, so the file goes
    /// through it.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + 'a {
        let sections = self.sections;
        let mut offset = 0;
        core::iter::from_fn(move || loop {
            // The sections were validated by Image::parse; a read that fails ends the walk.
            let section = read_section(sections, offset).ok()?;
            if section.tag == SectionTag::End as u32 {
                return None;
            }
            offset = section.next;
            let tag = match SectionTag::from_u32(section.tag) {
                Some(tag @ (SectionTag::File | SectionTag::Directory | SectionTag::Symlink)) => tag,
                _ => continue,
            };
            if let Ok(entry) = decode_entry(tag, section.payload) {
                return Some(entry);
            }
        })
    }

    /// The working directory the program starts in, if the image names one.
    pub fn workdir(&self) -> Option<&'a [u8]> {
        Payloads {
            sections: self.sections,
            offset: 0,
            tag: SectionTag::Workdir,
        }
        .last()
    }
}

/// A file, directory or symlink of the VM's tree, as the image carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    File {
        path: &'a [u8],
        mode: u32,
        content: &'a [u8],
    },
    Directory {
        path: &'a [u8],
        mode: u32,
    },
    Symlink {
        path: &'a [u8],
        target: &'a [u8],
    },
}

impl<'a> Entry<'a> {
    pub fn path(&self) -> &'a [u8] {
        match self {
            Entry::File { path, .. }
            | Entry::Directory { path, .. }
            | Entry::Symlink { path, .. } => path,
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

fn check_entry_path(path: &[u8]) -> Result<(), &'static str> {
    if !path.starts_with(b"/") {
        return Err("the path is not absolute");
    }
    if path.contains(&0) {
        return Err("the path contains a NUL byte");
    }
    Ok(())
}

/// Reads a File, Directory or Symlink payload.
fn decode_entry(tag: SectionTag, payload: &[u8]) -> Result<Entry<'_>, &'static str> {
    match tag {
        SectionTag::File => {
            let mode = u32_at(payload, 0).ok_or("shorter than its header")?;
            let length = u32_at(payload, 4).ok_or("shorter than its header")? as usize;
            let path = payload
                .get(8..8usize.saturating_add(length))
                .ok_or("its path runs past the section")?;
            check_entry_path(path)?;
            Ok(Entry::File {
                path,
                mode,
                content: &payload[8 + length..],
            })
        }
        SectionTag::Directory => {
            let mode = u32_at(payload, 0).ok_or("shorter than its header")?;
            let path = &payload[4..];
            check_entry_path(path)?;
            Ok(Entry::Directory { path, mode })
        }
        SectionTag::Symlink => {
            let length = u32_at(payload, 0).ok_or("shorter than its header")? as usize;
            let path = payload
                .get(4..4usize.saturating_add(length))
                .ok_or("its path runs past the section")?;
            check_entry_path(path)?;
            let target = &payload[4 + length..];
            if target.is_empty() || target.contains(&0) {
                return Err("the target is empty or contains a NUL byte");
            }
            Ok(Entry::Symlink { path, target })
        }
        _ => Err("not a tree entry"),
    }
}

/// The payloads of every section with one tag, in order. Made by [`Image::args`] and [`Image::env`].
#[derive(Debug, Clone)]
pub struct Payloads<'a> {
    sections: &'a [u8],
    offset: usize,
    tag: SectionTag,
}

impl<'a> Iterator for Payloads<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // The sections were validated by Image::parse; a read that fails here just ends the iteration.
        loop {
            let section = read_section(self.sections, self.offset).ok()?;
            if section.tag == SectionTag::End as u32 {
                return None;
            }
            self.offset = section.next;
            if section.tag == self.tag as u32 {
                return Some(section.payload);
            }
        }
    }
}

/// One section as read from the image.
struct RawSection<'a> {
    tag: u32,
    tag_len: u32,
    payload: &'a [u8],
    /// Offset of the next section.
    next: usize,
}

/// Reads the section at `offset`, checking it lies within `bytes` and its padding is zero.
fn read_section(bytes: &[u8], offset: usize) -> Result<RawSection<'_>, ImageError> {
    let remaining = bytes.get(offset..).unwrap_or(&[]);
    if remaining.is_empty() {
        return Err(ImageError::MissingEnd { len: bytes.len() });
    }
    let Some((header, rest)) = remaining.split_first_chunk::<SECTION_HEADER_SIZE>() else {
        return Err(ImageError::TruncatedSection {
            offset,
            needed: SECTION_HEADER_SIZE as u64,
            available: remaining.len(),
        });
    };
    let (tag_bytes, len_bytes) = header.split_at(4);
    let tag = u32::from_le_bytes([tag_bytes[0], tag_bytes[1], tag_bytes[2], tag_bytes[3]]);
    let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    let padded = padded_len(len as u64);
    let truncated = ImageError::TruncatedSection {
        offset,
        needed: SECTION_HEADER_SIZE as u64 + padded,
        available: remaining.len(),
    };
    let padded_len = usize::try_from(padded).map_err(|_| truncated.clone())?;
    let body = rest.get(..padded_len).ok_or(truncated)?;
    let (payload, padding) = body.split_at(len as usize);
    if let Some(position) = padding.iter().position(|&byte| byte != 0) {
        return Err(ImageError::NonZeroPadding {
            offset: offset + SECTION_HEADER_SIZE + len as usize + position,
        });
    }
    Ok(RawSection {
        tag,
        tag_len: len,
        payload,
        next: offset + SECTION_HEADER_SIZE + padded_len,
    })
}

fn set_once<'a>(
    slot: &mut Option<(usize, &'a [u8])>,
    tag: SectionTag,
    offset: usize,
    payload: &'a [u8],
) -> Result<(), ImageError> {
    if let Some((first_offset, _)) = *slot {
        return Err(ImageError::DuplicateSection {
            tag,
            first_offset,
            offset,
        });
    }
    *slot = Some((offset, payload));
    Ok(())
}

fn check_no_nul(tag: SectionTag, offset: usize, payload: &[u8]) -> Result<(), ImageError> {
    match payload.iter().position(|&byte| byte == 0) {
        Some(position) => Err(ImageError::ContainsNul {
            tag,
            offset,
            position,
        }),
        None => Ok(()),
    }
}

/// `len` rounded up to the section alignment.
fn padded_len(len: u64) -> u64 {
    len.div_ceil(SECTION_ALIGN as u64) * SECTION_ALIGN as u64
}

/// Builds an image. Strings are checked for NULs and lengths when [`ImageBuilder::build`] runs.
#[derive(Debug, Clone)]
pub struct ImageBuilder<'a> {
    program: &'a [u8],
    program_path: &'a [u8],
    args: Vec<&'a [u8]>,
    env: Vec<&'a [u8]>,
    entries: Vec<Entry<'a>>,
    workdir: Option<&'a [u8]>,
}

impl<'a> ImageBuilder<'a> {
    /// Starts an image for `program` (the ELF file), which will be at `program_path` inside the VM.
    pub fn new(program: &'a [u8], program_path: &'a [u8]) -> Self {
        Self {
            program,
            program_path,
            args: Vec::new(),
            env: Vec::new(),
            entries: Vec::new(),
            workdir: None,
        }
    }

    /// Adds a file, directory or symlink to the VM's tree.
    pub fn entry(mut self, entry: Entry<'a>) -> Self {
        self.entries.push(entry);
        self
    }

    /// Sets the program's working directory.
    pub fn workdir(mut self, path: &'a [u8]) -> Self {
        self.workdir = Some(path);
        self
    }

    /// Appends one argv string (`argv[0]` first).
    pub fn arg(mut self, arg: &'a [u8]) -> Self {
        self.args.push(arg);
        self
    }

    /// Appends argv strings.
    pub fn args<I: IntoIterator<Item = &'a [u8]>>(mut self, args: I) -> Self {
        self.args.extend(args);
        self
    }

    /// Appends one `KEY=VALUE` environment string.
    pub fn env(mut self, variable: &'a [u8]) -> Self {
        self.env.push(variable);
        self
    }

    /// Appends environment strings.
    pub fn envs<I: IntoIterator<Item = &'a [u8]>>(mut self, variables: I) -> Self {
        self.env.extend(variables);
        self
    }

    /// Writes the image: Program, ProgramPath, the Args, the Envs, the tree's entries, the
    /// Workdir, End.
    pub fn build(&self) -> Result<Vec<u8>, ImageError> {
        let mut encoded: Vec<(SectionTag, Vec<u8>)> = Vec::new();
        for entry in &self.entries {
            let (tag, payload) = encode_entry(entry)?;
            encoded.push((tag, payload));
        }
        let sections = core::iter::once((SectionTag::Program, self.program))
            .chain(core::iter::once((
                SectionTag::ProgramPath,
                self.program_path,
            )))
            .chain(self.args.iter().map(|&arg| (SectionTag::Arg, arg)))
            .chain(self.env.iter().map(|&variable| (SectionTag::Env, variable)))
            .chain(
                encoded
                    .iter()
                    .map(|(tag, payload)| (*tag, payload.as_slice())),
            )
            .chain(self.workdir.map(|path| (SectionTag::Workdir, path)));
        let mut total = IMAGE_MAGIC.len() + SECTION_HEADER_SIZE;
        for (tag, payload) in sections.clone() {
            let len = u32::try_from(payload.len()).map_err(|_| ImageError::SectionTooLarge {
                tag,
                len: payload.len(),
            })?;
            if !matches!(
                tag,
                SectionTag::Program
                    | SectionTag::File
                    | SectionTag::Directory
                    | SectionTag::Symlink
            ) {
                check_no_nul(tag, 0, payload)?;
            }
            total = total.saturating_add(SECTION_HEADER_SIZE + padded_len(u64::from(len)) as usize);
        }
        let mut image = Vec::with_capacity(total);
        image.extend_from_slice(&IMAGE_MAGIC);
        for (tag, payload) in sections {
            push_section(&mut image, tag, payload);
        }
        push_section(&mut image, SectionTag::End, &[]);
        Ok(image)
    }
}

/// Appends one section; its length was checked to fit in a u32.
fn push_section(image: &mut Vec<u8>, tag: SectionTag, payload: &[u8]) {
    image.extend_from_slice(&(tag as u32).to_le_bytes());
    image.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    image.extend_from_slice(payload);
    let padding = padded_len(payload.len() as u64) as usize - payload.len();
    image.extend(core::iter::repeat_n(0u8, padding));
}

/// A tree entry's section payload.
fn encode_entry(entry: &Entry<'_>) -> Result<(SectionTag, Vec<u8>), ImageError> {
    let bad = |tag, why| ImageError::BadEntry {
        tag,
        offset: 0,
        why,
    };
    let mut payload = Vec::new();
    let tag = match *entry {
        Entry::File {
            path,
            mode,
            content,
        } => {
            payload.extend_from_slice(&mode.to_le_bytes());
            let length =
                u32::try_from(path.len()).map_err(|_| bad(SectionTag::File, "path too long"))?;
            payload.extend_from_slice(&length.to_le_bytes());
            payload.extend_from_slice(path);
            payload.extend_from_slice(content);
            SectionTag::File
        }
        Entry::Directory { path, mode } => {
            payload.extend_from_slice(&mode.to_le_bytes());
            payload.extend_from_slice(path);
            SectionTag::Directory
        }
        Entry::Symlink { path, target } => {
            let length =
                u32::try_from(path.len()).map_err(|_| bad(SectionTag::Symlink, "path too long"))?;
            payload.extend_from_slice(&length.to_le_bytes());
            payload.extend_from_slice(path);
            payload.extend_from_slice(target);
            SectionTag::Symlink
        }
    };
    decode_entry(tag, &payload).map_err(|why| bad(tag, why))?;
    Ok((tag, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(tag: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(payload);
        while bytes.len() % 8 != 0 {
            bytes.push(0);
        }
        bytes
    }

    fn image_of(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = IMAGE_MAGIC.to_vec();
        for section in sections {
            bytes.extend_from_slice(section);
        }
        bytes
    }

    #[test]
    fn round_trip() {
        let program = b"\x7fELF not really an elf, 37 bytes long";
        let bytes = ImageBuilder::new(program, b"/hello")
            .arg(b"hello")
            .arg(b"")
            .arg(b"second arg")
            .env(b"HOME=/")
            .envs([b"TERM=dumb".as_slice(), b"X=".as_slice()])
            .build()
            .expect("builds");
        assert_eq!(bytes.len() % 8, 0);
        let image = Image::parse(&bytes).expect("parses");
        assert_eq!(image.program(), program);
        assert_eq!(image.program_path(), b"/hello");
        let args: Vec<&[u8]> = image.args().collect();
        assert_eq!(args, [b"hello".as_slice(), b"", b"second arg"]);
        let env: Vec<&[u8]> = image.env().collect();
        assert_eq!(env, [b"HOME=/".as_slice(), b"TERM=dumb", b"X="]);
    }

    #[test]
    fn round_trip_without_args_or_env() {
        let bytes = ImageBuilder::new(b"", b"/p").build().expect("builds");
        // magic, Program (empty), ProgramPath "/p" padded to 8, End.
        assert_eq!(bytes.len(), 8 + 8 + 16 + 8);
        let image = Image::parse(&bytes).expect("parses");
        assert_eq!(image.program(), b"");
        assert_eq!(image.args().count(), 0);
        assert_eq!(image.env().count(), 0);
    }

    #[test]
    fn exact_encoding() {
        let bytes = ImageBuilder::new(b"ELF", b"/a")
            .arg(b"a1")
            .env(b"K=V")
            .build()
            .expect("builds");
        let expected = image_of(&[
            section(1, b"ELF"),
            section(2, b"/a"),
            section(3, b"a1"),
            section(4, b"K=V"),
            section(0, b""),
        ]);
        assert_eq!(bytes, expected);
        assert_eq!(&bytes[8..16], &[1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[16..24], b"ELF\0\0\0\0\0");
    }

    #[test]
    fn sections_may_come_in_any_order_and_trailing_bytes_are_ignored() {
        let mut bytes = image_of(&[
            section(3, b"arg0"),
            section(4, b"E=1"),
            section(2, b"/x"),
            section(3, b"arg1"),
            section(1, b"program"),
            section(0, b""),
        ]);
        bytes.extend_from_slice(&[0xff; 100]);
        let image = Image::parse(&bytes).expect("parses");
        assert_eq!(image.program(), b"program");
        assert_eq!(
            image.args().collect::<Vec<_>>(),
            [b"arg0".as_slice(), b"arg1"]
        );
    }

    #[test]
    fn bad_magic() {
        let error = Image::parse(b"PITHIMG2rest").expect_err("bad magic");
        assert!(matches!(error, ImageError::BadMagic { len: 12, .. }));
        assert_eq!(
            error.to_string(),
            "not a Pith image: it starts with [50, 49, 54, 48, 49, 4d, 47, 32] (12 bytes), not the magic \"PITHIMG1\""
        );
        assert!(matches!(
            Image::parse(b"PIT"),
            Err(ImageError::BadMagic { len: 3, .. })
        ));
        assert!(matches!(
            Image::parse(b""),
            Err(ImageError::BadMagic { len: 0, .. })
        ));
    }

    #[test]
    fn truncated_header_and_payload() {
        let mut bytes = image_of(&[section(1, b"program")]);
        bytes.extend_from_slice(&[2, 0, 0]);
        let error = Image::parse(&bytes).expect_err("truncated header");
        assert_eq!(
            error,
            ImageError::TruncatedSection {
                offset: 24,
                needed: 8,
                available: 3
            }
        );
        assert_eq!(
            error.to_string(),
            "image section at offset 0x18 needs 8 bytes but only 3 remain"
        );

        let mut bytes = image_of(&[]);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 50]);
        let error = Image::parse(&bytes).expect_err("truncated payload");
        assert_eq!(
            error,
            ImageError::TruncatedSection {
                offset: 8,
                needed: 8 + 104,
                available: 58
            }
        );

        // A huge length must not overflow anything.
        let mut bytes = image_of(&[]);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Image::parse(&bytes),
            Err(ImageError::TruncatedSection { offset: 8, .. })
        ));
    }

    #[test]
    fn missing_end() {
        let bytes = image_of(&[section(1, b"p"), section(2, b"/p")]);
        let error = Image::parse(&bytes).expect_err("no End");
        assert_eq!(error, ImageError::MissingEnd { len: 40 });
        assert_eq!(
            error.to_string(),
            "image ends at offset 0x28 without an End section"
        );
        assert_eq!(
            Image::parse(&IMAGE_MAGIC),
            Err(ImageError::MissingEnd { len: 8 })
        );
    }

    #[test]
    fn missing_program_or_path() {
        let bytes = image_of(&[section(2, b"/p"), section(0, b"")]);
        let error = Image::parse(&bytes).expect_err("no Program");
        assert_eq!(
            error,
            ImageError::MissingSection {
                tag: SectionTag::Program
            }
        );
        assert_eq!(error.to_string(), "image has no Program (tag 1) section");
        let bytes = image_of(&[section(1, b"p"), section(0, b"")]);
        assert_eq!(
            Image::parse(&bytes).expect_err("no path"),
            ImageError::MissingSection {
                tag: SectionTag::ProgramPath
            }
        );
    }

    #[test]
    fn duplicate_program_or_path() {
        let bytes = image_of(&[
            section(1, b"p"),
            section(2, b"/p"),
            section(1, b"q"),
            section(0, b""),
        ]);
        let error = Image::parse(&bytes).expect_err("two Programs");
        assert_eq!(
            error,
            ImageError::DuplicateSection {
                tag: SectionTag::Program,
                first_offset: 8,
                offset: 40
            }
        );
        assert_eq!(
            error.to_string(),
            "image has a second Program (tag 1) section at offset 0x28; the first is at 0x8"
        );
        let bytes = image_of(&[
            section(2, b"/p"),
            section(2, b"/q"),
            section(1, b"p"),
            section(0, b""),
        ]);
        assert!(matches!(
            Image::parse(&bytes),
            Err(ImageError::DuplicateSection {
                tag: SectionTag::ProgramPath,
                ..
            })
        ));
    }

    #[test]
    fn unknown_tag() {
        let bytes = image_of(&[section(1, b"p"), section(9, b"zz"), section(0, b"")]);
        let error = Image::parse(&bytes).expect_err("unknown tag");
        assert_eq!(error, ImageError::UnknownTag { tag: 9, offset: 24 });
        assert_eq!(
            error.to_string(),
            "image section at offset 0x18 has unknown tag 9"
        );
    }

    #[test]
    fn end_with_payload_padding_and_nul() {
        let bytes = image_of(&[section(1, b"p"), section(2, b"/p"), section(0, b"x")]);
        assert_eq!(
            Image::parse(&bytes),
            Err(ImageError::EndNotEmpty { offset: 40, len: 1 })
        );

        let mut bytes = image_of(&[section(1, b"p"), section(2, b"/p"), section(0, b"")]);
        bytes[17] = 7; // the byte after Program's one-byte payload
        assert_eq!(
            Image::parse(&bytes),
            Err(ImageError::NonZeroPadding { offset: 17 })
        );

        let bytes = image_of(&[
            section(1, b"p"),
            section(2, b"/p"),
            section(3, b"a\0b"),
            section(0, b""),
        ]);
        let error = Image::parse(&bytes).expect_err("NUL");
        assert_eq!(
            error,
            ImageError::ContainsNul {
                tag: SectionTag::Arg,
                offset: 40,
                position: 1
            }
        );
        assert_eq!(
            error.to_string(),
            "image Arg (tag 3) section at offset 0x28 contains a NUL byte at payload offset 1"
        );
    }

    #[test]
    fn builder_rejects_nul_in_strings_but_not_in_the_program() {
        assert!(ImageBuilder::new(b"\0\0ELF\0", b"/p").build().is_ok());
        assert_eq!(
            ImageBuilder::new(b"p", b"/p").env(b"A=\0").build(),
            Err(ImageError::ContainsNul {
                tag: SectionTag::Env,
                offset: 0,
                position: 2
            })
        );
        assert!(ImageBuilder::new(b"p", b"/\0").build().is_err());
    }

    #[test]
    fn builder_rejects_a_section_over_u32_max() {
        // vec![0; n] is calloc'd: the 4 GiB are reserved but never touched, and build() fails before copying.
        let huge = vec![0u8; u32::MAX as usize + 1];
        let error = ImageBuilder::new(&huge, b"/p")
            .build()
            .expect_err("too large");
        assert_eq!(
            error,
            ImageError::SectionTooLarge {
                tag: SectionTag::Program,
                len: 1 << 32
            }
        );
        assert_eq!(
            error.to_string(),
            "Program (tag 1) section payload is 4294967296 bytes, over the u32 length limit (4294967295 bytes)"
        );
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    #[test]
    fn tree_entries_and_the_workdir_round_trip() {
        let image = ImageBuilder::new(b"\x7fELF", b"/app/prog")
            .entry(Entry::Directory {
                path: b"/etc",
                mode: 0o755,
            })
            .entry(Entry::File {
                path: b"/etc/app.conf",
                mode: 0o644,
                content: b"port = 80\n",
            })
            .entry(Entry::Symlink {
                path: b"/etc/link",
                target: b"app.conf",
            })
            .workdir(b"/app")
            .build()
            .unwrap();
        let parsed = Image::parse(&image).unwrap();
        let entries: Vec<Entry> = parsed.entries().collect();
        assert_eq!(entries.len(), 3);
        assert!(entries.contains(&Entry::File {
            path: b"/etc/app.conf",
            mode: 0o644,
            content: b"port = 80\n"
        }));
        assert_eq!(parsed.workdir(), Some(&b"/app"[..]));
        let relative = ImageBuilder::new(b"\x7fELF", b"/prog")
            .entry(Entry::Directory {
                path: b"etc",
                mode: 0o755,
            })
            .build();
        assert!(matches!(relative, Err(ImageError::BadEntry { .. })));
    }
}
