//! The image the CLI hands the kernel as its initrd (docs/design/boot-protocol.md): a parser and a builder.
//!
//! Layout: the 8-byte magic `PITHIMG1`, then sections `tag: u32 LE, len: u32 LE, payload[len]`, each
//! padded with zero bytes to a multiple of 8, ending with an `End` section (tag 0, len 0). Bytes after
//! `End` are ignored, so a loader may hand over a page-rounded region.
//!
//! The program and the larger ELF files of the tree start on a page boundary (counted from the
//! image's first byte, which the boot loader puts on a page boundary): the kernel then maps
//! their pages where they lie instead of copying them (`PageAlignedFile`, `Padding`).

use alloc::vec::Vec;
use core::fmt;

/// The first eight bytes of every image.
pub const IMAGE_MAGIC: [u8; 8] = *b"PITHIMG1";
/// Size of a section header (tag and length).
pub const SECTION_HEADER_SIZE: usize = 8;
/// Sections start and end on this alignment.
pub const SECTION_ALIGN: usize = 8;
/// The page size the program's and mappable files' contents are aligned to.
pub const CONTENT_ALIGN: usize = 4096;

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
    /// A file as `File`, whose contents start on a page boundary: mode (u32 LE), path length
    /// (u32 LE), the absolute path, zero bytes up to the next multiple of 4096 counted from
    /// the image's start, the contents.
    PageAlignedFile = 9,
    /// Zero bytes that put the next section where the builder wants it (the Program's bytes
    /// on a page boundary); ignored.
    Padding = 10,
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
            9 => Some(Self::PageAlignedFile),
            10 => Some(Self::Padding),
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
            Self::PageAlignedFile => "PageAlignedFile",
            Self::Padding => "Padding",
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
                SectionTag::File
                | SectionTag::PageAlignedFile
                | SectionTag::Directory
                | SectionTag::Symlink => {
                    let payload_at = offset + SECTION_HEADER_SIZE;
                    decode_entry(tag, section.payload, payload_at)
                        .map_err(|why| ImageError::BadEntry { tag, offset, why })?;
                }
                SectionTag::Padding => {
                    if let Some(position) = section.payload.iter().position(|&byte| byte != 0) {
                        return Err(ImageError::NonZeroPadding {
                            offset: offset + SECTION_HEADER_SIZE + position,
                        });
                    }
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
            let payload_at = IMAGE_MAGIC.len() + offset + SECTION_HEADER_SIZE;
            offset = section.next;
            let tag = match SectionTag::from_u32(section.tag) {
                Some(
                    tag @ (SectionTag::File
                    | SectionTag::PageAlignedFile
                    | SectionTag::Directory
                    | SectionTag::Symlink),
                ) => tag,
                _ => continue,
            };
            if let Ok(entry) = decode_entry(tag, section.payload, payload_at) {
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

/// Where a PageAlignedFile's contents start in its payload, which starts `payload_at` bytes
/// into the image and holds the path up to `path_end`.
fn aligned_content_start(payload_at: usize, path_end: usize) -> usize {
    (payload_at + path_end).next_multiple_of(CONTENT_ALIGN) - payload_at
}

/// Reads a File, PageAlignedFile, Directory or Symlink payload, which starts `payload_at`
/// bytes into the image.
fn decode_entry(
    tag: SectionTag,
    payload: &[u8],
    payload_at: usize,
) -> Result<Entry<'_>, &'static str> {
    match tag {
        SectionTag::File | SectionTag::PageAlignedFile => {
            let mode = u32_at(payload, 0).ok_or("shorter than its header")?;
            let length = u32_at(payload, 4).ok_or("shorter than its header")? as usize;
            let path_end = 8usize.saturating_add(length);
            let path = payload
                .get(8..path_end)
                .ok_or("its path runs past the section")?;
            check_entry_path(path)?;
            let content_start = if tag == SectionTag::PageAlignedFile {
                let start = aligned_content_start(payload_at, path_end);
                let gap = payload
                    .get(path_end..start)
                    .ok_or("its alignment runs past the section")?;
                if gap.iter().any(|&byte| byte != 0) {
                    return Err("the bytes before its page-aligned contents are not zero");
                }
                start
            } else {
                path_end
            };
            Ok(Entry::File {
                path,
                mode,
                content: &payload[content_start..],
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

    /// Writes the image: Program (on a page boundary), ProgramPath, the Args, the Envs, the
    /// tree's entries (ELF files of a page or more as PageAlignedFile), the Workdir, End.
    pub fn build(&self) -> Result<Vec<u8>, ImageError> {
        let mut entries = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            entries.push(encode_entry(entry)?);
        }
        let strings = core::iter::once((SectionTag::ProgramPath, self.program_path))
            .chain(self.args.iter().map(|&arg| (SectionTag::Arg, arg)))
            .chain(self.env.iter().map(|&variable| (SectionTag::Env, variable)));
        let workdir = self.workdir.map(|path| (SectionTag::Workdir, path));
        check_len(SectionTag::Program, self.program.len())?;
        // The magic, the Padding (at most a page) and the End.
        let mut total = IMAGE_MAGIC.len() + CONTENT_ALIGN + SECTION_HEADER_SIZE;
        total += SECTION_HEADER_SIZE + padded_len(self.program.len() as u64) as usize;
        for (tag, payload) in strings.clone().chain(workdir) {
            check_len(tag, payload.len())?;
            check_no_nul(tag, 0, payload)?;
            total += SECTION_HEADER_SIZE + padded_len(payload.len() as u64) as usize;
        }
        for entry in &entries {
            // The alignment gap may make a PageAlignedFile's payload up to a page longer.
            let gap = if entry.tag == SectionTag::PageAlignedFile {
                CONTENT_ALIGN
            } else {
                0
            };
            let len = entry.head.len() + gap + entry.content.len();
            check_len(entry.tag, len)?;
            total = total.saturating_add(SECTION_HEADER_SIZE + padded_len(len as u64) as usize);
        }
        let mut image = Vec::with_capacity(total);
        image.extend_from_slice(&IMAGE_MAGIC);
        push_padding_before_program(&mut image);
        push_section(&mut image, SectionTag::Program, &[self.program]);
        for (tag, payload) in strings {
            push_section(&mut image, tag, &[payload]);
        }
        let zeros = [0u8; CONTENT_ALIGN];
        for entry in &entries {
            let gap = if entry.tag == SectionTag::PageAlignedFile {
                let payload_at = image.len() + SECTION_HEADER_SIZE;
                aligned_content_start(payload_at, entry.head.len()) - entry.head.len()
            } else {
                0
            };
            push_section(
                &mut image,
                entry.tag,
                &[&entry.head, &zeros[..gap], entry.content],
            );
        }
        if let Some((tag, payload)) = workdir {
            push_section(&mut image, tag, &[payload]);
        }
        push_section(&mut image, SectionTag::End, &[]);
        Ok(image)
    }
}

/// A payload's length must fit the u32 length field.
fn check_len(tag: SectionTag, len: usize) -> Result<(), ImageError> {
    match u32::try_from(len) {
        Ok(_) => Ok(()),
        Err(_) => Err(ImageError::SectionTooLarge { tag, len }),
    }
}

/// Appends one section whose payload is `pieces` one after the other; its length was checked
/// to fit in a u32.
fn push_section(image: &mut Vec<u8>, tag: SectionTag, pieces: &[&[u8]]) {
    let len: usize = pieces.iter().map(|piece| piece.len()).sum();
    image.extend_from_slice(&(tag as u32).to_le_bytes());
    image.extend_from_slice(&(len as u32).to_le_bytes());
    for piece in pieces {
        image.extend_from_slice(piece);
    }
    let padding = padded_len(len as u64) as usize - len;
    image.extend(core::iter::repeat_n(0u8, padding));
}

/// Appends a Padding section, if one is needed, so that the Program section that follows has
/// its bytes on a page boundary. A Padding section is at least its own header, so it may take
/// up to a page more than the gap.
fn push_padding_before_program(image: &mut Vec<u8>) {
    let payload_at = image.len() + SECTION_HEADER_SIZE;
    if payload_at.is_multiple_of(CONTENT_ALIGN) {
        return;
    }
    // The padding's own header moves the target: aim at the boundary past it.
    let target = (payload_at + SECTION_HEADER_SIZE).next_multiple_of(CONTENT_ALIGN);
    let zeros = target - payload_at - SECTION_HEADER_SIZE;
    push_section(
        image,
        SectionTag::Padding,
        &[&[0u8; CONTENT_ALIGN][..zeros]],
    );
}

/// A tree entry, encoded: its section's tag, the payload up to the contents, and the contents
/// (a PageAlignedFile's alignment gap goes between the two when the image is written).
struct EncodedEntry<'a> {
    tag: SectionTag,
    head: Vec<u8>,
    content: &'a [u8],
}

/// Whether a file's contents are worth a page boundary: an ELF file of a page or more is
/// mapped by the dynamic loader, and the kernel maps its whole pages in place; other files
/// are read, and padding each to a page would only grow the image.
fn mappable(content: &[u8]) -> bool {
    content.len() >= CONTENT_ALIGN && content.starts_with(b"\x7fELF")
}

/// A tree entry's section.
fn encode_entry<'a>(entry: &Entry<'a>) -> Result<EncodedEntry<'a>, ImageError> {
    let bad = |tag, why| ImageError::BadEntry {
        tag,
        offset: 0,
        why,
    };
    let mut head = Vec::new();
    let mut content: &[u8] = &[];
    let tag = match *entry {
        Entry::File {
            path,
            mode,
            content: bytes,
        } => {
            let tag = if mappable(bytes) {
                SectionTag::PageAlignedFile
            } else {
                SectionTag::File
            };
            head.extend_from_slice(&mode.to_le_bytes());
            let length = u32::try_from(path.len()).map_err(|_| bad(tag, "path too long"))?;
            head.extend_from_slice(&length.to_le_bytes());
            head.extend_from_slice(path);
            content = bytes;
            tag
        }
        Entry::Directory { path, mode } => {
            head.extend_from_slice(&mode.to_le_bytes());
            head.extend_from_slice(path);
            SectionTag::Directory
        }
        Entry::Symlink { path, target } => {
            let length =
                u32::try_from(path.len()).map_err(|_| bad(SectionTag::Symlink, "path too long"))?;
            head.extend_from_slice(&length.to_le_bytes());
            head.extend_from_slice(path);
            head.extend_from_slice(target);
            SectionTag::Symlink
        }
    };
    // Checked as a File would be read: the path and, for a link, the target.
    let check_tag = if tag == SectionTag::PageAlignedFile {
        SectionTag::File
    } else {
        tag
    };
    decode_entry(check_tag, &head, 0).map_err(|why| bad(tag, why))?;
    Ok(EncodedEntry { tag, head, content })
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
        // magic, Padding to the page, Program (empty), ProgramPath "/p" padded to 8, End.
        assert_eq!(bytes.len(), 4096 + 16 + 8);
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
        // The Padding section puts the Program's bytes at 4096: 8 (magic) + 8 (its header) +
        // 4072 zeros + 8 (the Program's header).
        let expected = image_of(&[
            section(10, &[0; 4072]),
            section(1, b"ELF"),
            section(2, b"/a"),
            section(3, b"a1"),
            section(4, b"K=V"),
            section(0, b""),
        ]);
        assert_eq!(bytes, expected);
        assert_eq!(&bytes[4088..4096], &[1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[4096..4104], b"ELF\0\0\0\0\0");
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
        let bytes = image_of(&[section(1, b"p"), section(99, b"zz"), section(0, b"")]);
        let error = Image::parse(&bytes).expect_err("unknown tag");
        assert_eq!(
            error,
            ImageError::UnknownTag {
                tag: 99,
                offset: 24
            }
        );
        assert_eq!(
            error.to_string(),
            "image section at offset 0x18 has unknown tag 99"
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

    /// An ELF file of `pages` pages and `extra` bytes, each byte naming its page.
    fn elf_of(pages: usize, extra: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..pages * CONTENT_ALIGN + extra)
            .map(|at| (at / CONTENT_ALIGN) as u8 + 1)
            .collect();
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes
    }

    #[test]
    fn the_program_and_elf_files_start_on_a_page_and_read_back_whole() {
        let program = elf_of(2, 100);
        let library = elf_of(3, 7);
        let other_library = elf_of(1, 0);
        let text = vec![b'x'; 3 * CONTENT_ALIGN]; // not ELF: packed as File
        let small_elf = elf_of(0, 64); // under a page: File
        let files: [(&[u8], &[u8]); 4] = [
            (b"/lib/libone.so", &library),
            (b"/etc/big.txt", &text),
            (b"/lib/libtwo.so.1.2.3", &other_library),
            (b"/lib/tiny.so", &small_elf),
        ];
        let mut builder = ImageBuilder::new(&program, b"/prog").arg(b"prog");
        for (path, content) in files {
            builder = builder.entry(Entry::File {
                path,
                mode: 0o644,
                content,
            });
        }
        let bytes = builder.build().unwrap();
        let image = Image::parse(&bytes).unwrap();
        let offset_of = |content: &[u8]| content.as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(image.program(), &program[..]);
        assert_eq!(offset_of(image.program()) % CONTENT_ALIGN, 0);
        let entries: Vec<Entry> = image.entries().collect();
        assert_eq!(entries.len(), files.len());
        for ((path, content), entry) in files.iter().zip(&entries) {
            let Entry::File {
                path: read_path,
                content: read,
                ..
            } = *entry
            else {
                panic!("{entry:?} is not a file");
            };
            assert_eq!(read_path, *path);
            assert_eq!(read, *content, "{}", String::from_utf8_lossy(path));
            let aligned = offset_of(read) % CONTENT_ALIGN == 0;
            assert_eq!(
                aligned,
                mappable(content),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
        let tags: Vec<u32> = sections_of(&bytes).collect();
        assert_eq!(tags, [10, 1, 2, 3, 9, 5, 9, 5, 0]);
    }

    /// The tags of an image's sections, in order.
    fn sections_of(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
        let mut offset = IMAGE_MAGIC.len();
        core::iter::from_fn(move || {
            let section = read_section(bytes, offset).ok()?;
            offset = section.next;
            Some(section.tag)
        })
    }

    #[test]
    fn a_page_aligned_file_with_a_bad_gap_is_refused() {
        let library = elf_of(1, 1);
        let bytes = ImageBuilder::new(b"\x7fELF", b"/prog")
            .entry(Entry::File {
                path: b"/lib/libone.so",
                mode: 0o644,
                content: &library,
            })
            .build()
            .unwrap();
        // The gap: after the Program (at 4096, 8 bytes padded), ProgramPath (8 + 8), the
        // PageAlignedFile's header (8), mode and length (8) and the path (14 bytes).
        let gap_at = 4096 + 8 + 16 + 8 + 8 + 14;
        assert_eq!(&bytes[gap_at - 14..gap_at], b"/lib/libone.so");
        let mut bad = bytes.clone();
        bad[gap_at + 1] = 1;
        assert_eq!(
            Image::parse(&bad).unwrap_err(),
            ImageError::BadEntry {
                tag: SectionTag::PageAlignedFile,
                offset: 4096 + 8 + 16,
                why: "the bytes before its page-aligned contents are not zero"
            }
        );
        let mut bad_padding = bytes;
        bad_padding[100] = 1; // inside the Padding section before the Program
        assert_eq!(
            Image::parse(&bad_padding).unwrap_err(),
            ImageError::NonZeroPadding { offset: 100 }
        );
    }
}
