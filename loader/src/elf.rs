//! The load plan of an x86_64 ELF executable: which bytes go where, checked the way Linux checks them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use goblin::container::Endian;
use goblin::elf64::header::Header;
use goblin::elf64::program_header::ProgramHeader;

// ELF identification and header values, from include/uapi/linux/elf.h (the same values are in glibc's <elf.h>).
/// The four bytes every ELF file starts with (`ELFMAG`, include/uapi/linux/elf.h).
pub const ELFMAG: [u8; 4] = *b"\x7fELF";
/// Index of the class byte in `e_ident` (`EI_CLASS`, include/uapi/linux/elf.h).
pub const EI_CLASS: usize = 4;
/// Index of the data-encoding byte in `e_ident` (`EI_DATA`, include/uapi/linux/elf.h).
pub const EI_DATA: usize = 5;
/// 32-bit objects (`ELFCLASS32`, include/uapi/linux/elf.h).
pub const ELFCLASS32: u8 = 1;
/// 64-bit objects (`ELFCLASS64`, include/uapi/linux/elf.h).
pub const ELFCLASS64: u8 = 2;
/// Two's complement, little endian (`ELFDATA2LSB`, include/uapi/linux/elf.h).
pub const ELFDATA2LSB: u8 = 1;
/// Two's complement, big endian (`ELFDATA2MSB`, include/uapi/linux/elf.h).
pub const ELFDATA2MSB: u8 = 2;

/// No file type (`ET_NONE`, include/uapi/linux/elf.h).
pub const ET_NONE: u16 = 0;
/// Relocatable object (`ET_REL`, include/uapi/linux/elf.h).
pub const ET_REL: u16 = 1;
/// Executable at fixed addresses (`ET_EXEC`, include/uapi/linux/elf.h).
pub const ET_EXEC: u16 = 2;
/// Shared object or position-independent executable (`ET_DYN`, include/uapi/linux/elf.h).
pub const ET_DYN: u16 = 3;
/// Core dump (`ET_CORE`, include/uapi/linux/elf.h).
pub const ET_CORE: u16 = 4;

/// No machine (`EM_NONE`, include/uapi/linux/elf-em.h).
pub const EM_NONE: u16 = 0;
/// Intel 80386 (`EM_386`, include/uapi/linux/elf-em.h).
pub const EM_386: u16 = 3;
/// MIPS (`EM_MIPS`, include/uapi/linux/elf-em.h).
pub const EM_MIPS: u16 = 8;
/// PowerPC (`EM_PPC`, include/uapi/linux/elf-em.h).
pub const EM_PPC: u16 = 20;
/// PowerPC 64-bit (`EM_PPC64`, include/uapi/linux/elf-em.h).
pub const EM_PPC64: u16 = 21;
/// IBM S/390 (`EM_S390`, include/uapi/linux/elf-em.h).
pub const EM_S390: u16 = 22;
/// 32-bit ARM (`EM_ARM`, include/uapi/linux/elf-em.h).
pub const EM_ARM: u16 = 40;
/// SPARC v9 64-bit (`EM_SPARCV9`, include/uapi/linux/elf-em.h).
pub const EM_SPARCV9: u16 = 43;
/// Intel Itanium (`EM_IA_64`, include/uapi/linux/elf-em.h).
pub const EM_IA_64: u16 = 50;
/// AMD x86-64 (`EM_X86_64`, include/uapi/linux/elf-em.h).
pub const EM_X86_64: u16 = 62;
/// ARM 64-bit (`EM_AARCH64`, include/uapi/linux/elf-em.h).
pub const EM_AARCH64: u16 = 183;
/// RISC-V (`EM_RISCV`, include/uapi/linux/elf-em.h).
pub const EM_RISCV: u16 = 243;
/// LoongArch (`EM_LOONGARCH`, include/uapi/linux/elf-em.h).
pub const EM_LOONGARCH: u16 = 258;

/// Loadable segment (`PT_LOAD`, include/uapi/linux/elf.h).
pub const PT_LOAD: u32 = 1;
/// Program interpreter path (`PT_INTERP`, include/uapi/linux/elf.h).
pub const PT_INTERP: u32 = 3;
/// The program header table itself (`PT_PHDR`, include/uapi/linux/elf.h).
pub const PT_PHDR: u32 = 6;
/// Thread-local storage template (`PT_TLS`, include/uapi/linux/elf.h).
pub const PT_TLS: u32 = 7;
/// Stack executability (`PT_GNU_STACK`, include/uapi/linux/elf.h).
pub const PT_GNU_STACK: u32 = 0x6474_e551;

/// Segment is executable (`PF_X`, include/uapi/linux/elf.h).
pub const PF_X: u32 = 1 << 0;
/// Segment is writable (`PF_W`, include/uapi/linux/elf.h).
pub const PF_W: u32 = 1 << 1;
/// Segment is readable (`PF_R`, include/uapi/linux/elf.h).
pub const PF_R: u32 = 1 << 2;

/// Size of the ELF64 file header, `sizeof(Elf64_Ehdr)` (include/uapi/linux/elf.h).
pub const ELF64_EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header, `sizeof(Elf64_Phdr)` (include/uapi/linux/elf.h).
pub const ELF64_PHDR_SIZE: u16 = 56;
/// The most program-header bytes Linux reads: `load_elf_phdrs()` in fs/binfmt_elf.c rejects more than 64 KiB.
pub const MAX_PROGRAM_HEADER_BYTES: u64 = 65536;
/// Longest interpreter path, with its NUL (`PATH_MAX`, include/uapi/linux/limits.h).
pub const PATH_MAX: u64 = 4096;

/// The page size the load plan is aligned to (`ELF_MIN_ALIGN` = `PAGE_SIZE` on x86_64, fs/binfmt_elf.c).
pub const PAGE_SIZE: u64 = 4096;
/// The end of user space with 4-level paging: `TASK_SIZE_MAX` = (1 << 47) - `PAGE_SIZE`
/// (arch/x86/include/asm/page_64_types.h). Every segment must end at or below it.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - PAGE_SIZE;

/// Whether the program is linked at fixed addresses or can be placed anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: the segments' addresses are where they must be loaded.
    Executable,
    /// `ET_DYN`: a position-independent executable (or a shared object run directly, like ld.so);
    /// the kernel picks a base and adds it to every address in the plan.
    PositionIndependent,
}

/// The access a segment asks for, from its `p_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFlags {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub execute: bool,
}

impl SegmentFlags {
    /// Decodes a program header's `p_flags`; bits other than `PF_R`, `PF_W` and `PF_X` are ignored, as Linux does.
    pub fn from_p_flags(p_flags: u32) -> Self {
        Self {
            read: p_flags & PF_R != 0,
            write: p_flags & PF_W != 0,
            execute: p_flags & PF_X != 0,
        }
    }
}

/// One `PT_LOAD` segment: `file_size` bytes from `file_offset` are copied to `vaddr`, and the rest of
/// `mem_size` is zero (the bss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`, unrelocated.
    pub vaddr: u64,
    /// `p_memsz`.
    pub mem_size: u64,
    /// `p_offset`.
    pub file_offset: u64,
    /// `p_filesz` (never more than `mem_size`).
    pub file_size: u64,
    /// `p_align`, as written in the file (informational; pages are always 4096 bytes).
    pub align: u64,
    /// `p_flags`.
    pub flags: SegmentFlags,
}

impl Segment {
    /// The first address past the segment in memory (`vaddr + mem_size`; checked not to overflow by `plan`).
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }

    /// Whether `address` (unrelocated) lies inside the segment's memory image.
    pub fn contains(&self, address: u64) -> bool {
        self.vaddr <= address && address < self.end()
    }

    /// The page-aligned range `[start, end)` of memory the segment touches. Two segments may share a page
    /// (their byte ranges never overlap); the kernel then gives that page the union of their permissions.
    pub fn page_range(&self) -> (u64, u64) {
        (page_round_down(self.vaddr), page_round_up(self.end()))
    }
}

/// The `PT_TLS` segment: the initial image of each thread's static TLS block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsTemplate {
    /// `p_vaddr`, unrelocated.
    pub vaddr: u64,
    /// `p_filesz`: bytes initialised from the file.
    pub file_size: u64,
    /// `p_memsz`: total size of the block; the rest is zero.
    pub mem_size: u64,
    /// `p_align`.
    pub align: u64,
}

/// Everything the kernel needs to map an ELF executable and start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// `ET_EXEC` or `ET_DYN`.
    pub kind: ElfKind,
    /// The `PT_LOAD` segments, in file order, at their unrelocated addresses.
    pub segments: Vec<Segment>,
    /// `e_entry`, unrelocated.
    pub entry: u64,
    /// Unrelocated address of the program headers in memory (for `AT_PHDR`): `PT_PHDR`'s `p_vaddr` if there
    /// is one, otherwise `e_phoff` translated through the `PT_LOAD` whose file bytes cover it.
    pub phdr_vaddr: u64,
    /// `e_phentsize` (always 56; for `AT_PHENT`).
    pub phent: u16,
    /// `e_phnum` (for `AT_PHNUM`).
    pub phnum: u16,
    /// The `PT_INTERP` path, without its NUL; `None` for a static program.
    pub interpreter: Option<String>,
    /// The lowest address of any `PT_LOAD`, rounded down to a page.
    pub min_vaddr: u64,
    /// The end of the highest `PT_LOAD`, rounded up to a page.
    pub max_vaddr: u64,
    /// Whether `PT_GNU_STACK` asks for an executable stack (`PF_X`); false when there is no `PT_GNU_STACK`.
    pub executable_stack: bool,
    /// The `PT_TLS` template, if the program has one.
    pub tls: Option<TlsTemplate>,
}

impl LoadPlan {
    /// True when the program has no `PT_INTERP`: the kernel jumps straight to its entry point.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none()
    }

    /// The size in bytes of the span `[min_vaddr, max_vaddr)` the program occupies.
    pub fn span(&self) -> u64 {
        self.max_vaddr - self.min_vaddr
    }

    /// The `PT_LOAD` segment whose memory image contains `address` (unrelocated), if any.
    pub fn segment_containing(&self, address: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|segment| segment.contains(address))
    }
}

/// Why an ELF file cannot be run. Each message names the field, the value and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not start with the ELF magic.
    NotElf {
        /// Up to the first four bytes of the file.
        start: [u8; 4],
        /// The file's length.
        len: usize,
    },
    /// The file has the ELF magic but is shorter than an ELF64 header.
    TruncatedHeader {
        /// The file's length.
        len: usize,
    },
    /// `e_ident[EI_CLASS]` is not `ELFCLASS64`.
    Not64Bit {
        /// The class byte.
        class: u8,
    },
    /// `e_ident[EI_DATA]` is not `ELFDATA2LSB`.
    NotLittleEndian {
        /// The data-encoding byte.
        data: u8,
    },
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine {
        /// `e_machine`.
        machine: u16,
        /// A human name for it.
        name: &'static str,
    },
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`.
    NotExecutable {
        /// `e_type`.
        e_type: u16,
        /// A human name for it.
        name: &'static str,
    },
    /// goblin could not read a header.
    Malformed {
        /// Which structure.
        what: &'static str,
        /// goblin's description.
        detail: String,
    },
    /// `e_phentsize` is not `sizeof(Elf64_Phdr)`.
    BadProgramHeaderSize {
        /// `e_phentsize`.
        phentsize: u16,
    },
    /// `e_phnum` is zero, or the table is over 64 KiB.
    BadProgramHeaderCount {
        /// `e_phnum`.
        phnum: u16,
    },
    /// The program header table does not fit in the file.
    ProgramHeadersOutsideFile {
        /// `e_phoff`.
        phoff: u64,
        /// `e_phnum * e_phentsize`.
        size: u64,
        /// The file's length.
        file_len: usize,
    },
    /// There is no `PT_LOAD` segment.
    NoLoadSegments,
    /// `p_offset + p_filesz` overflows or lies beyond the file.
    SegmentOutsideFile {
        /// Index of the program header.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        file_size: u64,
        /// The file's length.
        file_len: usize,
    },
    /// `p_filesz > p_memsz`.
    FileSizeOverMemorySize {
        /// Index of the program header.
        index: usize,
        /// `p_filesz`.
        file_size: u64,
        /// `p_memsz`.
        mem_size: u64,
    },
    /// `p_vaddr` and `p_offset` differ modulo the page size, so the file cannot be mapped.
    MisalignedSegment {
        /// Index of the program header.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_offset`.
        offset: u64,
    },
    /// `p_vaddr + p_memsz` overflows or ends above user space (`TASK_SIZE_MAX`).
    SegmentOutsideUserSpace {
        /// Index of the program header.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_memsz`.
        mem_size: u64,
    },
    /// Two `PT_LOAD` segments claim the same bytes of memory.
    OverlappingSegments {
        /// Index of the first program header.
        first: usize,
        /// Index of the second program header.
        second: usize,
    },
    /// `PT_INTERP` is malformed.
    BadInterpreter {
        /// Index of the program header.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Neither `PT_PHDR` nor a `PT_LOAD` covering `e_phoff` says where the program headers are in memory.
    ProgramHeadersNotLoaded {
        /// `e_phoff`.
        phoff: u64,
    },
    /// `PT_PHDR` points at memory no `PT_LOAD` maps.
    PhdrSegmentNotLoaded {
        /// `PT_PHDR`'s `p_vaddr`.
        vaddr: u64,
    },
    /// `e_entry` is not inside any `PT_LOAD`.
    EntryNotLoaded {
        /// `e_entry`.
        entry: u64,
    },
    /// `PT_TLS` has `p_filesz > p_memsz`.
    BadTls {
        /// Index of the program header.
        index: usize,
        /// `p_filesz`.
        file_size: u64,
        /// `p_memsz`.
        mem_size: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf { start, len } => {
                let shown = &start[..(*len).min(4)];
                write!(
                    f,
                    "not an ELF file: it starts with {shown:02x?} ({len} bytes), not the ELF magic 7f 45 4c 46"
                )
            }
            Self::TruncatedHeader { len } => write!(
                f,
                "ELF file is {len} bytes, shorter than the {ELF64_EHDR_SIZE}-byte ELF64 header"
            ),
            Self::Not64Bit { class } => {
                let name = match *class {
                    ELFCLASS32 => "ELFCLASS32, a 32-bit program",
                    _ => "not a known class",
                };
                write!(
                    f,
                    "e_ident[EI_CLASS] is {class} ({name}): only 64-bit (ELFCLASS64) x86_64 programs can run"
                )
            }
            Self::NotLittleEndian { data } => {
                let name = match *data {
                    ELFDATA2MSB => "ELFDATA2MSB, big endian",
                    _ => "not a known encoding",
                };
                write!(
                    f,
                    "e_ident[EI_DATA] is {data} ({name}): x86_64 programs are little endian (ELFDATA2LSB)"
                )
            }
            Self::WrongMachine { machine, name } => write!(
                f,
                "e_machine is {machine} ({name}): this program is not built for x86_64 (EM_X86_64 = {EM_X86_64})"
            ),
            Self::NotExecutable { e_type, name } => write!(
                f,
                "e_type is {e_type} ({name}): only executables (ET_EXEC) and position-independent executables (ET_DYN) can run"
            ),
            Self::Malformed { what, detail } => write!(f, "malformed {what}: {detail}"),
            Self::BadProgramHeaderSize { phentsize } => write!(
                f,
                "e_phentsize is {phentsize}, not {ELF64_PHDR_SIZE} (sizeof(Elf64_Phdr))"
            ),
            Self::BadProgramHeaderCount { phnum } => write!(
                f,
                "e_phnum is {phnum}: Linux needs between 1 and {} program headers ({MAX_PROGRAM_HEADER_BYTES} bytes)",
                MAX_PROGRAM_HEADER_BYTES / u64::from(ELF64_PHDR_SIZE)
            ),
            Self::ProgramHeadersOutsideFile {
                phoff,
                size,
                file_len,
            } => write!(
                f,
                "program headers: e_phoff ({phoff:#x}) + {size:#x} bytes runs beyond the file ({file_len:#x} bytes)"
            ),
            Self::NoLoadSegments => write!(f, "no PT_LOAD segment: nothing to load"),
            Self::SegmentOutsideFile {
                index,
                offset,
                file_size,
                file_len,
            } => match offset.checked_add(*file_size) {
                Some(end) => write!(
                    f,
                    "segment {index}: p_offset+p_filesz ({end:#x}) beyond the file ({file_len:#x} bytes)"
                ),
                None => write!(
                    f,
                    "segment {index}: p_offset ({offset:#x}) + p_filesz ({file_size:#x}) overflows"
                ),
            },
            Self::FileSizeOverMemorySize {
                index,
                file_size,
                mem_size,
            } => write!(
                f,
                "segment {index}: p_filesz ({file_size:#x}) is larger than p_memsz ({mem_size:#x})"
            ),
            Self::MisalignedSegment {
                index,
                vaddr,
                offset,
            } => write!(
                f,
                "segment {index}: p_vaddr ({vaddr:#x}) and p_offset ({offset:#x}) differ modulo the page size ({PAGE_SIZE:#x}), so the file cannot be mapped"
            ),
            Self::SegmentOutsideUserSpace {
                index,
                vaddr,
                mem_size,
            } => write!(
                f,
                "segment {index}: p_vaddr ({vaddr:#x}) + p_memsz ({mem_size:#x}) ends above user space ({TASK_SIZE_MAX:#x})"
            ),
            Self::OverlappingSegments { first, second } => write!(
                f,
                "segments {first} and {second}: their memory ranges overlap"
            ),
            Self::BadInterpreter { index, reason } => {
                write!(f, "segment {index} (PT_INTERP): {reason}")
            }
            Self::ProgramHeadersNotLoaded { phoff } => write!(
                f,
                "program headers at file offset {phoff:#x} are in no PT_LOAD and there is no PT_PHDR, so AT_PHDR has no address"
            ),
            Self::PhdrSegmentNotLoaded { vaddr } => write!(
                f,
                "PT_PHDR p_vaddr ({vaddr:#x}) is not inside any PT_LOAD segment"
            ),
            Self::EntryNotLoaded { entry } => write!(
                f,
                "entry point e_entry ({entry:#x}) is not inside any PT_LOAD segment"
            ),
            Self::BadTls {
                index,
                file_size,
                mem_size,
            } => write!(
                f,
                "segment {index} (PT_TLS): p_filesz ({file_size:#x}) is larger than p_memsz ({mem_size:#x})"
            ),
        }
    }
}

impl core::error::Error for ElfError {}

/// A human name for an `e_machine` value.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        EM_NONE => "no machine",
        EM_386 => "i386",
        EM_MIPS => "mips",
        EM_PPC => "powerpc",
        EM_PPC64 => "powerpc64",
        EM_S390 => "s390",
        EM_ARM => "arm",
        EM_SPARCV9 => "sparc64",
        EM_IA_64 => "ia64",
        EM_X86_64 => "x86_64",
        EM_AARCH64 => "aarch64",
        EM_RISCV => "riscv",
        EM_LOONGARCH => "loongarch",
        _ => "unknown machine",
    }
}

/// A human name for an `e_type` value.
pub fn file_type_name(e_type: u16) -> &'static str {
    match e_type {
        ET_NONE => "no file type",
        ET_REL => "relocatable object",
        ET_EXEC => "executable",
        ET_DYN => "position-independent executable or shared object",
        ET_CORE => "core dump",
        _ => "unknown file type",
    }
}

/// Rounds `address` down to a page boundary.
pub fn page_round_down(address: u64) -> u64 {
    address & !(PAGE_SIZE - 1)
}

/// Rounds `address` up to a page boundary, saturating at the last page of the address space.
pub fn page_round_up(address: u64) -> u64 {
    page_round_down(address.saturating_add(PAGE_SIZE - 1))
}

/// Reads and checks an ELF file and says how to load it. It makes the checks `load_elf_binary()`
/// (fs/binfmt_elf.c) makes on the file, turns the ones Linux leaves to mmap() or to a later fault into
/// errors up front (`p_vaddr`/`p_offset` congruence, segments above user space), and adds a few that
/// Linux does not make but that would only end in a crash (overlapping segments, an entry point or
/// `PT_PHDR` outside every `PT_LOAD`).
pub fn plan(elf: &[u8]) -> Result<LoadPlan, ElfError> {
    let header = parse_header(elf)?;
    let program_headers = parse_program_headers(elf, &header)?;

    let kind = match header.e_type {
        ET_EXEC => ElfKind::Executable,
        _ => ElfKind::PositionIndependent,
    };

    let mut segments = Vec::new();
    let mut segment_indices = Vec::new();
    let mut interpreter = None;
    let mut phdr_segment = None;
    let mut executable_stack = None;
    let mut tls = None;

    for (index, program_header) in program_headers.iter().enumerate() {
        match program_header.p_type {
            PT_LOAD => {
                segments.push(check_load_segment(index, program_header, elf.len())?);
                segment_indices.push(index);
            }
            // Like Linux, the first PT_INTERP and the first PT_GNU_STACK win.
            PT_INTERP if interpreter.is_none() => {
                interpreter = Some(read_interpreter(index, program_header, elf)?);
            }
            PT_GNU_STACK if executable_stack.is_none() => {
                executable_stack = Some(program_header.p_flags & PF_X != 0);
            }
            PT_PHDR if phdr_segment.is_none() => phdr_segment = Some(program_header.p_vaddr),
            PT_TLS if tls.is_none() => {
                if program_header.p_filesz > program_header.p_memsz {
                    return Err(ElfError::BadTls {
                        index,
                        file_size: program_header.p_filesz,
                        mem_size: program_header.p_memsz,
                    });
                }
                tls = Some(TlsTemplate {
                    vaddr: program_header.p_vaddr,
                    file_size: program_header.p_filesz,
                    mem_size: program_header.p_memsz,
                    align: program_header.p_align,
                });
            }
            _ => {}
        }
    }

    if segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }
    check_no_overlap(&segments, &segment_indices)?;

    let phdr_vaddr = match phdr_segment {
        Some(vaddr) => {
            if !segments.iter().any(|segment| segment.contains(vaddr)) {
                return Err(ElfError::PhdrSegmentNotLoaded { vaddr });
            }
            vaddr
        }
        None => program_headers_address(&segments, header.e_phoff)?,
    };

    if !segments
        .iter()
        .any(|segment| segment.contains(header.e_entry))
    {
        return Err(ElfError::EntryNotLoaded {
            entry: header.e_entry,
        });
    }

    let lowest = segments.iter().map(|segment| segment.vaddr).min();
    let highest = segments.iter().map(Segment::end).max();
    let (Some(lowest), Some(highest)) = (lowest, highest) else {
        return Err(ElfError::NoLoadSegments);
    };

    Ok(LoadPlan {
        kind,
        segments,
        entry: header.e_entry,
        phdr_vaddr,
        phent: header.e_phentsize,
        phnum: header.e_phnum,
        interpreter,
        min_vaddr: page_round_down(lowest),
        max_vaddr: page_round_up(highest),
        executable_stack: executable_stack.unwrap_or(false),
        tls,
    })
}

/// Checks `e_ident`, `e_machine` and `e_type` and reads the ELF64 header.
fn parse_header(elf: &[u8]) -> Result<Header, ElfError> {
    if elf.len() < ELFMAG.len() || elf[..ELFMAG.len()] != ELFMAG {
        let mut start = [0; 4];
        let shown = elf.len().min(4);
        start[..shown].copy_from_slice(&elf[..shown]);
        return Err(ElfError::NotElf {
            start,
            len: elf.len(),
        });
    }
    // The class and encoding come before the length check, so a short 32-bit file still says it is 32-bit.
    if let Some(&class) = elf.get(EI_CLASS) {
        if class != ELFCLASS64 {
            return Err(ElfError::Not64Bit { class });
        }
    }
    if let Some(&data) = elf.get(EI_DATA) {
        if data != ELFDATA2LSB {
            return Err(ElfError::NotLittleEndian { data });
        }
    }
    if elf.len() < ELF64_EHDR_SIZE {
        return Err(ElfError::TruncatedHeader { len: elf.len() });
    }
    let header = Header::parse(elf).map_err(|error| ElfError::Malformed {
        what: "ELF header",
        detail: alloc::format!("{error}"),
    })?;
    if header.e_machine != EM_X86_64 {
        return Err(ElfError::WrongMachine {
            machine: header.e_machine,
            name: machine_name(header.e_machine),
        });
    }
    if header.e_type != ET_EXEC && header.e_type != ET_DYN {
        return Err(ElfError::NotExecutable {
            e_type: header.e_type,
            name: file_type_name(header.e_type),
        });
    }
    Ok(header)
}

/// Checks the program header table's size and place and reads it.
fn parse_program_headers(elf: &[u8], header: &Header) -> Result<Vec<ProgramHeader>, ElfError> {
    if header.e_phentsize != ELF64_PHDR_SIZE {
        return Err(ElfError::BadProgramHeaderSize {
            phentsize: header.e_phentsize,
        });
    }
    let size = u64::from(header.e_phnum) * u64::from(ELF64_PHDR_SIZE);
    if header.e_phnum == 0 || size > MAX_PROGRAM_HEADER_BYTES {
        return Err(ElfError::BadProgramHeaderCount {
            phnum: header.e_phnum,
        });
    }
    let outside = ElfError::ProgramHeadersOutsideFile {
        phoff: header.e_phoff,
        size,
        file_len: elf.len(),
    };
    let end = header.e_phoff.checked_add(size).ok_or(outside.clone())?;
    if end > elf.len() as u64 {
        return Err(outside);
    }
    let offset = usize::try_from(header.e_phoff).map_err(|_| outside)?;
    ProgramHeader::parse(elf, offset, usize::from(header.e_phnum), Endian::Little).map_err(
        |error| ElfError::Malformed {
            what: "program header table",
            detail: alloc::format!("{error}"),
        },
    )
}

/// Checks one `PT_LOAD` against the file and the address space.
fn check_load_segment(
    index: usize,
    program_header: &ProgramHeader,
    file_len: usize,
) -> Result<Segment, ElfError> {
    let outside_file = ElfError::SegmentOutsideFile {
        index,
        offset: program_header.p_offset,
        file_size: program_header.p_filesz,
        file_len,
    };
    let file_end = program_header
        .p_offset
        .checked_add(program_header.p_filesz)
        .ok_or(outside_file.clone())?;
    if file_end > file_len as u64 {
        return Err(outside_file);
    }
    if program_header.p_filesz > program_header.p_memsz {
        return Err(ElfError::FileSizeOverMemorySize {
            index,
            file_size: program_header.p_filesz,
            mem_size: program_header.p_memsz,
        });
    }
    if program_header.p_vaddr % PAGE_SIZE != program_header.p_offset % PAGE_SIZE {
        return Err(ElfError::MisalignedSegment {
            index,
            vaddr: program_header.p_vaddr,
            offset: program_header.p_offset,
        });
    }
    let memory_end = program_header.p_vaddr.checked_add(program_header.p_memsz);
    if memory_end.is_none_or(|end| end > TASK_SIZE_MAX) {
        return Err(ElfError::SegmentOutsideUserSpace {
            index,
            vaddr: program_header.p_vaddr,
            mem_size: program_header.p_memsz,
        });
    }
    Ok(Segment {
        vaddr: program_header.p_vaddr,
        mem_size: program_header.p_memsz,
        file_offset: program_header.p_offset,
        file_size: program_header.p_filesz,
        align: program_header.p_align,
        flags: SegmentFlags::from_p_flags(program_header.p_flags),
    })
}

/// Reads the `PT_INTERP` path, with the checks of `load_elf_binary()`: 2 to `PATH_MAX` bytes, NUL-terminated.
fn read_interpreter(
    index: usize,
    program_header: &ProgramHeader,
    elf: &[u8],
) -> Result<String, ElfError> {
    let bad = |reason| ElfError::BadInterpreter { index, reason };
    if program_header.p_filesz < 2 || program_header.p_filesz > PATH_MAX {
        return Err(bad("p_filesz is not between 2 and PATH_MAX (4096) bytes"));
    }
    let start = usize::try_from(program_header.p_offset)
        .map_err(|_| bad("p_offset+p_filesz is beyond the file"))?;
    let end = start
        .checked_add(usize::try_from(program_header.p_filesz).unwrap_or(usize::MAX))
        .ok_or(bad("p_offset+p_filesz is beyond the file"))?;
    let bytes = elf
        .get(start..end)
        .ok_or(bad("p_offset+p_filesz is beyond the file"))?;
    let Some((&last, _)) = bytes.split_last() else {
        return Err(bad("the path is empty"));
    };
    if last != 0 {
        return Err(bad("the path does not end with a NUL byte"));
    }
    // Linux opens the path as a C string: it stops at the first NUL.
    let path_len = bytes.iter().position(|&byte| byte == 0).unwrap_or(0);
    if path_len == 0 {
        return Err(bad("the path is empty"));
    }
    let path =
        core::str::from_utf8(&bytes[..path_len]).map_err(|_| bad("the path is not UTF-8"))?;
    Ok(String::from(path))
}

/// Fails if any two `PT_LOAD` segments' memory ranges overlap. Sharing a page is allowed, and an empty
/// segment (`p_memsz` 0) overlaps nothing.
fn check_no_overlap(segments: &[Segment], indices: &[usize]) -> Result<(), ElfError> {
    let mut order: Vec<usize> = (0..segments.len())
        .filter(|&position| segments[position].mem_size != 0)
        .collect();
    order.sort_by_key(|&position| segments[position].vaddr);
    // The segment reaching highest so far; a later one that starts below its end overlaps it.
    let mut reaching: Option<usize> = None;
    for position in order {
        if let Some(previous) = reaching {
            if segments[position].vaddr < segments[previous].end() {
                let (first, second) = (indices[previous], indices[position]);
                return Err(ElfError::OverlappingSegments {
                    first: first.min(second),
                    second: first.max(second),
                });
            }
        }
        if reaching.is_none_or(|previous| segments[position].end() > segments[previous].end()) {
            reaching = Some(position);
        }
    }
    Ok(())
}

/// Finds the program headers in memory the way Linux computes `AT_PHDR` (`load_elf_binary()`,
/// fs/binfmt_elf.c): through the `PT_LOAD` whose file bytes contain `e_phoff`.
fn program_headers_address(segments: &[Segment], phoff: u64) -> Result<u64, ElfError> {
    segments
        .iter()
        .find(|segment| {
            segment.file_offset <= phoff && phoff - segment.file_offset < segment.file_size
        })
        .map(|segment| segment.vaddr + (phoff - segment.file_offset))
        .ok_or(ElfError::ProgramHeadersNotLoaded { phoff })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Phdr {
        p_type: u32,
        p_flags: u32,
        p_offset: u64,
        p_vaddr: u64,
        p_filesz: u64,
        p_memsz: u64,
        p_align: u64,
    }

    fn load(p_flags: u32, p_offset: u64, p_vaddr: u64, p_filesz: u64, p_memsz: u64) -> Phdr {
        Phdr {
            p_type: PT_LOAD,
            p_flags,
            p_offset,
            p_vaddr,
            p_filesz,
            p_memsz,
            p_align: 0x1000,
        }
    }

    fn other(p_type: u32, p_flags: u32, p_offset: u64, p_vaddr: u64, size: u64) -> Phdr {
        Phdr {
            p_type,
            p_flags,
            p_offset,
            p_vaddr,
            p_filesz: size,
            p_memsz: size,
            p_align: 8,
        }
    }

    /// An ELF64 header with the program headers right after it (e_phoff 64), padded to `file_len`.
    fn craft(e_type: u16, entry: u64, phdrs: &[Phdr], file_len: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&ELFMAG);
        bytes.extend_from_slice(&[ELFCLASS64, ELFDATA2LSB, 1, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&e_type.to_le_bytes());
        bytes.extend_from_slice(&EM_X86_64.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes()); // e_version
        bytes.extend_from_slice(&entry.to_le_bytes());
        bytes.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
        bytes.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        bytes.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        bytes.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        bytes.extend_from_slice(&ELF64_PHDR_SIZE.to_le_bytes());
        bytes.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        bytes.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        bytes.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(bytes.len(), ELF64_EHDR_SIZE);
        for phdr in phdrs {
            bytes.extend_from_slice(&phdr.p_type.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_flags.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_offset.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_vaddr.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_vaddr.to_le_bytes()); // p_paddr
            bytes.extend_from_slice(&phdr.p_filesz.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_memsz.to_le_bytes());
            bytes.extend_from_slice(&phdr.p_align.to_le_bytes());
        }
        assert!(bytes.len() <= file_len);
        bytes.resize(file_len, 0);
        bytes
    }

    /// Headers and rodata in one read-only page, code in the next, data and bss after.
    fn static_phdrs() -> Vec<Phdr> {
        vec![
            load(PF_R, 0, 0x40_0000, 0x1000, 0x1000),
            load(PF_R | PF_X, 0x1000, 0x40_1000, 0x800, 0x800),
            load(PF_R | PF_W, 0x1800, 0x40_2800, 0x100, 0x2000),
            other(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0),
        ]
    }

    fn static_elf() -> Vec<u8> {
        craft(ET_EXEC, 0x40_1010, &static_phdrs(), 0x1900)
    }

    fn error_of(bytes: &[u8]) -> ElfError {
        plan(bytes).expect_err("the ELF should be rejected")
    }

    #[test]
    fn constants_match_goblin() {
        use goblin::elf::header as gh;
        use goblin::elf::program_header as gp;
        assert_eq!(&ELFMAG, gh::ELFMAG);
        assert_eq!(ELFCLASS64, gh::ELFCLASS64);
        assert_eq!(ELFCLASS32, gh::ELFCLASS32);
        assert_eq!(ELFDATA2LSB, gh::ELFDATA2LSB);
        assert_eq!(ELFDATA2MSB, gh::ELFDATA2MSB);
        assert_eq!(
            [ET_NONE, ET_REL, ET_EXEC, ET_DYN, ET_CORE],
            [
                gh::ET_NONE,
                gh::ET_REL,
                gh::ET_EXEC,
                gh::ET_DYN,
                gh::ET_CORE
            ]
        );
        assert_eq!(
            [EM_386, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV, EM_PPC64, EM_S390],
            [
                gh::EM_386,
                gh::EM_ARM,
                gh::EM_X86_64,
                gh::EM_AARCH64,
                gh::EM_RISCV,
                gh::EM_PPC64,
                gh::EM_S390
            ]
        );
        assert_eq!(
            [PT_LOAD, PT_INTERP, PT_PHDR, PT_TLS, PT_GNU_STACK],
            [
                gp::PT_LOAD,
                gp::PT_INTERP,
                gp::PT_PHDR,
                gp::PT_TLS,
                gp::PT_GNU_STACK
            ]
        );
        assert_eq!([PF_X, PF_W, PF_R], [gp::PF_X, gp::PF_W, gp::PF_R]);
        assert_eq!(
            usize::from(ELF64_PHDR_SIZE),
            goblin::elf64::program_header::SIZEOF_PHDR
        );
        assert_eq!(ELF64_EHDR_SIZE, goblin::elf64::header::SIZEOF_EHDR);
    }

    #[test]
    fn static_executable_plan() {
        let plan = plan(&static_elf()).expect("valid");
        assert_eq!(plan.kind, ElfKind::Executable);
        assert!(plan.is_static());
        assert_eq!(plan.entry, 0x40_1010);
        assert_eq!(plan.segments.len(), 3);
        assert_eq!(
            plan.segments[2],
            Segment {
                vaddr: 0x40_2800,
                mem_size: 0x2000,
                file_offset: 0x1800,
                file_size: 0x100,
                align: 0x1000,
                flags: SegmentFlags {
                    read: true,
                    write: true,
                    execute: false
                },
            }
        );
        assert!(plan.segments[1].flags.execute);
        assert_eq!(plan.segments[2].page_range(), (0x40_2000, 0x40_5000));
        // No PT_PHDR: e_phoff 64 lies in the first PT_LOAD, at 0x400000 + 64.
        assert_eq!(plan.phdr_vaddr, 0x40_0040);
        assert_eq!((plan.phent, plan.phnum), (56, 4));
        assert_eq!((plan.min_vaddr, plan.max_vaddr), (0x40_0000, 0x40_5000));
        assert_eq!(plan.span(), 0x5000);
        assert!(!plan.executable_stack);
        assert_eq!(plan.tls, None);
        assert_eq!(
            plan.segment_containing(plan.entry)
                .map(|segment| segment.vaddr),
            Some(0x40_1000)
        );
    }

    #[test]
    fn dynamic_pie_with_phdr_interp_tls_and_executable_stack() {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let phdrs = [
            other(PT_PHDR, PF_R, 64, 64, 6 * 56),
            other(PT_INTERP, PF_R, 0x200, 0x200, interp.len() as u64),
            load(PF_R | PF_X, 0, 0, 0x300, 0x300),
            load(PF_R | PF_W, 0x300, 0x1300, 0x20, 0x40),
            other(PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0),
            Phdr {
                p_type: PT_TLS,
                p_flags: PF_R,
                p_offset: 0x300,
                p_vaddr: 0x1300,
                p_filesz: 0x8,
                p_memsz: 0x10,
                p_align: 8,
            },
        ];
        let mut bytes = craft(ET_DYN, 0x100, &phdrs, 0x320);
        bytes[0x200..0x200 + interp.len()].copy_from_slice(interp);
        let plan = plan(&bytes).expect("valid");
        assert_eq!(plan.kind, ElfKind::PositionIndependent);
        assert_eq!(
            plan.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(!plan.is_static());
        assert_eq!(plan.phdr_vaddr, 64);
        assert!(plan.executable_stack);
        assert_eq!(
            plan.tls,
            Some(TlsTemplate {
                vaddr: 0x1300,
                file_size: 8,
                mem_size: 0x10,
                align: 8
            })
        );
        assert_eq!((plan.min_vaddr, plan.max_vaddr), (0, 0x2000));
    }

    #[test]
    fn not_elf() {
        let error = error_of(b"#!/bin/sh\necho hi\n");
        assert_eq!(
            error,
            ElfError::NotElf {
                start: *b"#!/b",
                len: 18
            }
        );
        assert_eq!(
            error.to_string(),
            "not an ELF file: it starts with [23, 21, 2f, 62] (18 bytes), not the ELF magic 7f 45 4c 46"
        );
        assert_eq!(
            error_of(b"\x7fE"),
            ElfError::NotElf {
                start: [0x7f, b'E', 0, 0],
                len: 2
            }
        );
        assert_eq!(
            error_of(b"").to_string(),
            "not an ELF file: it starts with [] (0 bytes), not the ELF magic 7f 45 4c 46"
        );
    }

    #[test]
    fn truncated_header() {
        let bytes = static_elf();
        assert_eq!(
            error_of(&bytes[..40]),
            ElfError::TruncatedHeader { len: 40 }
        );
    }

    #[test]
    fn thirty_two_bit_and_big_endian() {
        let mut bytes = static_elf();
        bytes[EI_CLASS] = ELFCLASS32;
        let error = error_of(&bytes);
        assert_eq!(error, ElfError::Not64Bit { class: 1 });
        assert!(error.to_string().contains("ELFCLASS32"));
        let mut bytes = static_elf();
        bytes[EI_DATA] = ELFDATA2MSB;
        assert_eq!(error_of(&bytes), ElfError::NotLittleEndian { data: 2 });
    }

    #[test]
    fn wrong_machine() {
        let mut bytes = static_elf();
        bytes[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        let error = error_of(&bytes);
        assert_eq!(
            error,
            ElfError::WrongMachine {
                machine: 183,
                name: "aarch64"
            }
        );
        assert_eq!(
            error.to_string(),
            "e_machine is 183 (aarch64): this program is not built for x86_64 (EM_X86_64 = 62)"
        );
        bytes[18..20].copy_from_slice(&EM_386.to_le_bytes());
        assert!(matches!(
            error_of(&bytes),
            ElfError::WrongMachine { name: "i386", .. }
        ));
        bytes[18..20].copy_from_slice(&0x7777u16.to_le_bytes());
        assert!(matches!(
            error_of(&bytes),
            ElfError::WrongMachine {
                name: "unknown machine",
                ..
            }
        ));
    }

    #[test]
    fn relocatable_object_and_core_dump() {
        let bytes = craft(ET_REL, 0, &static_phdrs(), 0x1900);
        let error = error_of(&bytes);
        assert_eq!(
            error,
            ElfError::NotExecutable {
                e_type: 1,
                name: "relocatable object"
            }
        );
        assert_eq!(
            error.to_string(),
            "e_type is 1 (relocatable object): only executables (ET_EXEC) and position-independent executables (ET_DYN) can run"
        );
        let bytes = craft(ET_CORE, 0, &static_phdrs(), 0x1900);
        assert!(matches!(
            error_of(&bytes),
            ElfError::NotExecutable {
                name: "core dump",
                ..
            }
        ));
    }

    #[test]
    fn program_header_table_problems() {
        let mut bytes = static_elf();
        bytes[54..56].copy_from_slice(&32u16.to_le_bytes());
        assert_eq!(
            error_of(&bytes),
            ElfError::BadProgramHeaderSize { phentsize: 32 }
        );

        let bytes = craft(ET_EXEC, 0x40_1010, &[], 0x100);
        assert_eq!(
            error_of(&bytes),
            ElfError::BadProgramHeaderCount { phnum: 0 }
        );

        let mut bytes = static_elf();
        bytes[56..58].copy_from_slice(&2000u16.to_le_bytes());
        assert_eq!(
            error_of(&bytes),
            ElfError::BadProgramHeaderCount { phnum: 2000 }
        );

        let mut bytes = static_elf();
        bytes[32..40].copy_from_slice(&0x1880u64.to_le_bytes()); // e_phoff near the end
        let error = error_of(&bytes);
        assert_eq!(
            error,
            ElfError::ProgramHeadersOutsideFile {
                phoff: 0x1880,
                size: 4 * 56,
                file_len: 0x1900
            }
        );
        assert_eq!(
            error.to_string(),
            "program headers: e_phoff (0x1880) + 0xe0 bytes runs beyond the file (0x1900 bytes)"
        );
        bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            error_of(&bytes),
            ElfError::ProgramHeadersOutsideFile { .. }
        ));
    }

    #[test]
    fn no_load_segment() {
        let bytes = craft(ET_EXEC, 0, &[other(PT_GNU_STACK, PF_R, 0, 0, 0)], 0x100);
        assert_eq!(error_of(&bytes), ElfError::NoLoadSegments);
    }

    #[test]
    fn segment_beyond_the_file() {
        let mut phdrs = static_phdrs();
        phdrs[1].p_filesz = 0x1000; // 0x1000 + 0x1000 > 0x1900
        phdrs[1].p_memsz = 0x1000;
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900));
        assert_eq!(
            error.to_string(),
            "segment 1: p_offset+p_filesz (0x2000) beyond the file (0x1900 bytes)"
        );
        phdrs[1].p_offset = u64::MAX - 0xfff;
        phdrs[1].p_vaddr = 0x40_1000;
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900));
        assert!(error.to_string().contains("overflows"), "{error}");
    }

    #[test]
    fn file_size_over_memory_size() {
        let mut phdrs = static_phdrs();
        phdrs[2].p_memsz = 0x80;
        assert_eq!(
            error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900)),
            ElfError::FileSizeOverMemorySize {
                index: 2,
                file_size: 0x100,
                mem_size: 0x80
            }
        );
    }

    #[test]
    fn vaddr_and_offset_must_be_congruent() {
        let mut phdrs = static_phdrs();
        phdrs[2].p_vaddr = 0x40_2810;
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900));
        assert_eq!(
            error.to_string(),
            "segment 2: p_vaddr (0x402810) and p_offset (0x1800) differ modulo the page size (0x1000), so the file cannot be mapped"
        );
    }

    #[test]
    fn segments_must_stay_in_user_space() {
        let mut phdrs = static_phdrs();
        phdrs[2].p_vaddr = 0x7fff_ffff_e800;
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900));
        assert_eq!(
            error,
            ElfError::SegmentOutsideUserSpace {
                index: 2,
                vaddr: 0x7fff_ffff_e800,
                mem_size: 0x2000
            }
        );
        assert!(error
            .to_string()
            .contains("above user space (0x7ffffffff000)"));
        phdrs[2].p_vaddr = 0xffff_ffff_ffff_f800;
        assert!(matches!(
            error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900)),
            ElfError::SegmentOutsideUserSpace { index: 2, .. }
        ));
    }

    #[test]
    fn overlapping_segments() {
        let mut phdrs = static_phdrs();
        phdrs[2].p_vaddr = 0x40_1800; // inside [0x401000, 0x401800)? no: starts at its end
        assert!(plan(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900)).is_ok());
        phdrs[2].p_vaddr = 0x40_0800; // inside the first segment
        assert_eq!(
            error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900)),
            ElfError::OverlappingSegments {
                first: 0,
                second: 2
            }
        );
        // A big segment hiding behind an empty one is still caught.
        let phdrs = [
            load(PF_R | PF_X, 0, 0x40_0000, 0x100, 0x10_0000),
            load(PF_R, 0x100, 0x40_0100, 0, 0),
            load(PF_R, 0x200, 0x40_5200, 0x10, 0x10),
        ];
        assert_eq!(
            error_of(&craft(ET_EXEC, 0x40_0010, &phdrs, 0x300)),
            ElfError::OverlappingSegments {
                first: 0,
                second: 2
            }
        );
    }

    #[test]
    fn interpreter_problems() {
        let phdrs = |size: u64| {
            let mut phdrs = static_phdrs();
            phdrs.push(other(PT_INTERP, PF_R, 0x200, 0x40_0200, size));
            phdrs
        };
        let mut bytes = craft(ET_EXEC, 0x40_1010, &phdrs(8), 0x1900);
        bytes[0x200..0x208].copy_from_slice(b"/ld.so\0\0");
        assert_eq!(
            plan(&bytes).expect("valid").interpreter.as_deref(),
            Some("/ld.so")
        );

        bytes[0x207] = b'x';
        bytes[0x206] = b'x';
        let error = error_of(&bytes);
        assert_eq!(
            error.to_string(),
            "segment 4 (PT_INTERP): the path does not end with a NUL byte"
        );
        let bytes = craft(ET_EXEC, 0x40_1010, &phdrs(1), 0x1900);
        assert!(matches!(
            error_of(&bytes),
            ElfError::BadInterpreter { index: 4, .. }
        ));
        let bytes = craft(ET_EXEC, 0x40_1010, &phdrs(0x2000), 0x1900);
        assert!(matches!(
            error_of(&bytes),
            ElfError::BadInterpreter { index: 4, .. }
        ));
        let mut bytes = craft(ET_EXEC, 0x40_1010, &phdrs(0x10), 0x1900);
        bytes[0x200..0x210].fill(0);
        assert_eq!(
            error_of(&bytes).to_string(),
            "segment 4 (PT_INTERP): the path is empty"
        );
        let mut bytes = craft(ET_EXEC, 0x40_1010, &phdrs(4), 0x1900);
        bytes[0x200..0x204].copy_from_slice(b"\xff\xfe/\0");
        assert!(matches!(error_of(&bytes), ElfError::BadInterpreter { .. }));
        let mut far = phdrs(4);
        far[4].p_offset = 0x18ff;
        assert!(matches!(
            error_of(&craft(ET_EXEC, 0x40_1010, &far, 0x1900)),
            ElfError::BadInterpreter { .. }
        ));
    }

    #[test]
    fn where_the_program_headers_are() {
        // PT_PHDR outside every PT_LOAD.
        let mut phdrs = static_phdrs();
        phdrs.push(other(PT_PHDR, PF_R, 64, 0x10_0000, 5 * 56));
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900));
        assert_eq!(error, ElfError::PhdrSegmentNotLoaded { vaddr: 0x10_0000 });
        // No PT_PHDR and e_phoff in no PT_LOAD's file bytes.
        let phdrs = [load(PF_R | PF_X, 0x1000, 0x40_1000, 0x100, 0x100)];
        let error = error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1100));
        assert_eq!(error, ElfError::ProgramHeadersNotLoaded { phoff: 64 });
        assert_eq!(
            error.to_string(),
            "program headers at file offset 0x40 are in no PT_LOAD and there is no PT_PHDR, so AT_PHDR has no address"
        );
    }

    #[test]
    fn entry_outside_every_segment() {
        let error = error_of(&craft(ET_EXEC, 0x50_0000, &static_phdrs(), 0x1900));
        assert_eq!(error, ElfError::EntryNotLoaded { entry: 0x50_0000 });
        assert_eq!(
            error.to_string(),
            "entry point e_entry (0x500000) is not inside any PT_LOAD segment"
        );
    }

    #[test]
    fn tls_file_size_over_memory_size() {
        let mut phdrs = static_phdrs();
        phdrs.push(Phdr {
            p_type: PT_TLS,
            p_flags: PF_R,
            p_offset: 0x1800,
            p_vaddr: 0x40_2800,
            p_filesz: 0x20,
            p_memsz: 0x10,
            p_align: 8,
        });
        assert!(matches!(
            error_of(&craft(ET_EXEC, 0x40_1010, &phdrs, 0x1900)),
            ElfError::BadTls { index: 4, .. }
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = static_elf();
        for len in 0..bytes.len() {
            assert!(plan(&bytes[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn page_rounding() {
        assert_eq!(page_round_down(0x1fff), 0x1000);
        assert_eq!(page_round_up(0x1001), 0x2000);
        assert_eq!(page_round_up(0x1000), 0x1000);
        assert_eq!(page_round_up(u64::MAX), 0xffff_ffff_ffff_f000);
    }
}
