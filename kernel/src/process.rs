//! Starting the program: load its ELF from the image, lay out its stack, and jump to it in
//! ring 0. Also the process's global state that syscalls and faults consult.

use crate::memory::PAGE_SIZE;
use crate::paging;
use crate::platform::KernelPlatform;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use pith_loader::elf::{self, ElfKind, LoadPlan};
use pith_loader::image::Image;
use pith_loader::stack::{build_initial_stack, AuxValues, StackSpec};
use pith_syscalls::files::TmpMount;
use pith_syscalls::mm::{AddressSpace, Vma, VmaKind};
use pith_syscalls::platform::Protection;
use pith_syscalls::{Context, Process};
use spin::Mutex;

/// The process and the machine glue its syscalls use; locked for the length of a syscall.
static PROCESS: Mutex<Option<(Process, KernelPlatform)>> = Mutex::new(None);

/// Where the program is, for fault reports: load bias and span, set once at start.
static LOAD_BIAS: AtomicU64 = AtomicU64::new(0);
static LOAD_START: AtomicU64 = AtomicU64::new(0);
static LOAD_END: AtomicU64 = AtomicU64::new(0);
/// The main thread's stack, [limit, top), for fault reports.
static STACK_LIMIT: AtomicU64 = AtomicU64::new(0);
static STACK_TOP: AtomicU64 = AtomicU64::new(0);

/// The highest possible stack top (STACK_TOP on x86_64: the end of the lower half less a page).
const STACK_TOP_MAX: u64 = 0x7fff_ffff_f000;
/// Where position-independent programs go (ELF_ET_DYN_BASE, 2/3 of TASK_SIZE, page-aligned).
const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;
/// The gap between the stack's limit and where mmap starts placing areas.
const MMAP_GAP: u64 = 128 << 20;

/// Status a shell gives a program it cannot execute.
pub const CANNOT_EXECUTE_STATUS: i32 = 126;

fn fail(message: core::fmt::Arguments) -> ! {
    crate::log_error!("{}", message);
    crate::power::exit(CANNOT_EXECUTE_STATUS)
}

/// Address-space layout randomization is on (`pith run --no-aslr` turns it off, for
/// debugging: the same addresses every run, as Linux's `setarch -R`).
static ASLR: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// A random number of pages below 2^bits, or 0 with ASLR off.
fn random_pages(bits: u32) -> u64 {
    if !ASLR.load(Ordering::Relaxed) {
        return 0;
    }
    (crate::random::next_u64() & ((1 << bits) - 1)) * PAGE_SIZE
}

/// Maps the program's PT_LOAD segments at `bias`: a page wholly inside a segment's file bytes
/// is the image's own page, lent (copied if the program stores to it), when the bytes lie
/// page-aligned in the image; the other pages get the bytes copied in. Segments that share a
/// page get the union of their permissions there.
fn load_segments(plan: &LoadPlan, program: &[u8], bias: u64) {
    let writable = Protection {
        read: true,
        write: true,
        execute: false,
    };
    let mut mapped_end = 0u64;
    for (index, segment) in plan.segments.iter().enumerate() {
        let (start, end) = segment.page_range();
        let (start, end) = (start + bias, end + bias);
        // A page shared with the previous segment is mapped already, with its bytes in it.
        let from = start.max(mapped_end);
        if from < end {
            paging::map_anonymous(from, end - from, writable);
        }
        mapped_end = mapped_end.max(end);
        let file_start = segment.vaddr + bias;
        let file_end = file_start + segment.file_size;
        // The image shows the segment's whole pages of file bytes where they lie, in one
        // call; not a page shared with the previous segment (it holds bytes of both).
        let lent_start = from.max(crate::memory::align_up(file_start));
        let lent_len = crate::memory::align_down(file_end).saturating_sub(lent_start);
        let lent_offset = (segment.file_offset + (lent_start - file_start)) as usize;
        let lent_end = lent_start
            + program
                .get(lent_offset..lent_offset + lent_len as usize)
                .map_or(0, |bytes| {
                    paging::lend_pages(lent_start, bytes.as_ptr(), lent_len)
                });
        let mut page = start;
        while page < file_end {
            if (lent_start..lent_end).contains(&page) {
                page = lent_end;
                continue;
            }
            let piece_start = page.max(file_start);
            let piece_end = (page + PAGE_SIZE).min(file_end);
            let file_bytes = &program[(segment.file_offset + (piece_start - file_start)) as usize
                ..(segment.file_offset + (piece_end - file_start)) as usize];
            if let Err(error) = paging::populate(page, PAGE_SIZE) {
                fail(format_args!(
                    "cannot back segment {index} at {start:#x}: {error:?}"
                ));
            }
            // SAFETY: [piece_start, piece_end) lies inside the page just backed, writable
            // (its area is), in the app's lower half, which no Rust reference aliases. The
            // rest of the segment (its bss) is zero: the frames come zeroed.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    file_bytes.as_ptr(),
                    piece_start as *mut u8,
                    file_bytes.len(),
                );
            }
            page += PAGE_SIZE;
        }
    }
    // The real permissions: each segment's own, then the union on pages two segments share.
    let protection_of = |segment: &pith_loader::elf::Segment| Protection {
        read: segment.flags.read,
        write: segment.flags.write,
        execute: segment.flags.execute,
    };
    for segment in &plan.segments {
        let (start, end) = segment.page_range();
        paging::protect(start + bias, end - start, protection_of(segment));
    }
    for pair in plan.segments.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let shared = earlier.page_range().1 - PAGE_SIZE;
        if shared == later.page_range().0 {
            let (a, b) = (protection_of(earlier), protection_of(later));
            let union = Protection {
                read: a.read || b.read,
                write: a.write || b.write,
                execute: a.execute || b.execute,
            };
            paging::protect(shared + bias, PAGE_SIZE, union);
        }
    }
}

/// Loads the program in `image` and runs it; never returns.
pub fn start(image_bytes: &'static [u8], parameters: &crate::cmdline::LaunchParameters) -> ! {
    ASLR.store(parameters.aslr, Ordering::Relaxed);
    let image = Image::parse(image_bytes)
        .unwrap_or_else(|error| fail(format_args!("the image is unusable: {error}")));
    let program = image.program();
    let path = image.program_path();
    let path_text = core::str::from_utf8(path).unwrap_or("(program)");
    let plan =
        elf::plan(program).unwrap_or_else(|error| fail(format_args!("{path_text}: {error}")));
    // The file tree first: a dynamic program's interpreter is read from it.
    // Each tmpfs may take half of RAM, as Linux's default size=50%.
    let (ram_pages, _) = crate::memory::ram_pages();
    let now = pith_fs::Timestamp::from_nanoseconds(crate::clock::realtime_ns());
    let tmpfs_bytes = ram_pages * PAGE_SIZE / 2;
    let tmp = match parameters.tmp {
        Some(crate::cmdline::TmpParameter::Bytes(bytes)) => TmpMount::Tmpfs(bytes),
        Some(crate::cmdline::TmpParameter::Disk) => TmpMount::OnRoot,
        None => TmpMount::Tmpfs(tmpfs_bytes),
    };
    // The areas are filled in once the program is loaded (`process.memory` below).
    let mut process = Process::new(
        path.to_vec(),
        AddressSpace::new(0, 0),
        tmpfs_bytes,
        tmp,
        now,
    );
    if parameters.root_on_disk {
        // The image `pith build` made is `/`: the program and its files are on it already.
        let volume = open_volume("/");
        process.vfs = pith_syscalls::files::tree_on(
            alloc::boxed::Box::new(volume),
            "ext4",
            tmpfs_bytes,
            tmp,
            now,
            path,
        );
        process.cwd = process.vfs.root();
        if let Some(workdir) = image.workdir() {
            if let Ok(node) = pith_syscalls::files::make_directories(&mut process.vfs, workdir, now)
            {
                process.cwd = node;
            }
        }
    } else {
        populate_tree(&mut process, &image, now);
    }
    if parameters.root_read_only {
        // After the tree is filled and the mount points made: from here `/` is MS_RDONLY.
        let root = process.vfs.root();
        if let Err(error) = process.vfs.make_read_only(root.mount) {
            fail(format_args!("/ could not be made read-only: {error:?}"));
        }
    }
    if crate::virtio_blk::capacity().is_some() {
        if let Err(error) = pith_syscalls::files::add_disk_node(&mut process.vfs, now) {
            crate::log_warn!("/dev/vda could not be made: {error:?}");
        }
        if let Some(path) = parameters.volume {
            mount_volume(&mut process, path, now);
        }
    } else if let Some(path) = parameters.volume {
        fail(format_args!(
            "the volume for {path} has no disk: QEMU attached no virtio-blk device"
        ));
    }
    let interpreter = plan
        .interpreter
        .as_deref()
        .map(|interpreter| read_interpreter(&mut process, interpreter, path_text));
    let bias = match plan.kind {
        ElfKind::Executable => 0,
        // Linux's 28 bits of pages for a PIE (mmap_rnd_bits on x86_64): up to 1 TiB above the base.
        ElfKind::PositionIndependent => ELF_ET_DYN_BASE + random_pages(28) - plan.min_vaddr,
    };
    LOAD_BIAS.store(bias, Ordering::Relaxed);
    LOAD_START.store(plan.min_vaddr + bias, Ordering::Relaxed);
    LOAD_END.store(plan.max_vaddr + bias, Ordering::Relaxed);

    // The stack: RLIMIT_STACK (8 MiB) reserved below a randomized top.
    let stack_top = STACK_TOP_MAX - random_pages(16);
    let stack_limit = stack_top - (8 << 20);
    // The heap starts up to 32 MiB past the program, at random (arch_randomize_brk).
    let brk_start = plan.max_vaddr + bias + random_pages(13);
    load_segments(&plan, program, bias);

    // The vDSO and its time page, in the gap below the stack (Linux puts them near it too).
    let vdso_at = stack_limit - (16 << 20) - random_pages(8);
    let vdso = crate::vdso::map(vdso_at);
    if vdso.is_none() {
        crate::log_warn!("no memory for the vDSO: the program's clock calls will be syscalls");
    }

    // A dynamic program's interpreter (ld.so): at a random base below where mmap starts, as
    // Linux loads it (load_elf_binary), the rest being its work.
    // The mmap base: below the stack's gap, and up to 1 TiB lower at random, apart from the
    // stack's own randomness (arch_pick_mmap_layout).
    let mmap_base = stack_limit - MMAP_GAP - random_pages(28);
    let interpreter_at = interpreter.as_ref().map(|(bytes, interpreter_plan, _)| {
        let span = interpreter_plan.max_vaddr - interpreter_plan.min_vaddr;
        let base = (mmap_base - span - random_pages(16)) & !(PAGE_SIZE - 1);
        let interpreter_bias = base - interpreter_plan.min_vaddr;
        load_segments(interpreter_plan, bytes, interpreter_bias);
        (interpreter_bias, interpreter_plan.entry + interpreter_bias)
    });

    let argv: Vec<&[u8]> = image.args().collect();
    let envp: Vec<&[u8]> = image.env().collect();
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let aux = AuxValues {
        sysinfo_ehdr: vdso.map(|(base, _)| base),
        minsigstksz: crate::cpu::min_signal_stack_size(),
        hwcap: crate::cpu::hwcap(),
        pagesz: PAGE_SIZE,
        clktck: 100,
        phdr: plan.phdr_vaddr + bias,
        phent: plan.phent as u64,
        phnum: plan.phnum as u64,
        base: interpreter_at.map_or(0, |(interpreter_bias, _)| interpreter_bias),
        flags: 0,
        entry: plan.entry + bias,
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
        secure: 0,
        hwcap2: 0,
    };
    let spec = StackSpec {
        stack_top,
        random_offset: if ASLR.load(Ordering::Relaxed) {
            (crate::random::next_u64() % 8192) & !15
        } else {
            0
        },
        argv: &argv,
        envp: &envp,
        execfn: path,
        platform: b"x86_64",
        random,
        aux,
    };
    let stack = build_initial_stack(&spec)
        .unwrap_or_else(|error| fail(format_args!("{path_text}: {error}")));
    // RLIMIT_STACK of stack, backed as it is touched; the initial stack's own pages now.
    let stack_protection = Protection {
        read: true,
        write: true,
        execute: plan.executable_stack,
    };
    paging::map_anonymous(stack_limit, stack_top - stack_limit, stack_protection);
    if let Err(error) = paging::populate(stack.base, stack_top - stack.base) {
        fail(format_args!("cannot back the initial stack: {error:?}"));
    }
    STACK_LIMIT.store(stack_limit, Ordering::Relaxed);
    STACK_TOP.store(stack_top, Ordering::Relaxed);
    // SAFETY: [stack.base, stack_top) was just mapped read-write and backed, in the app's
    // lower half.
    unsafe {
        core::ptr::copy_nonoverlapping(
            stack.bytes.as_ptr(),
            stack.base as *mut u8,
            stack.bytes.len(),
        )
    };

    // The process's list of areas starts as the kernel's: the segments and the stack.
    let mut memory = AddressSpace::new(mmap_base, brk_start);
    // Each area costs the kernel about 200 bytes of heap (the process's list and paging's):
    // a small VM gets fewer than Linux's default 65530, rather than running out of heap.
    memory.max_map_count = memory
        .max_map_count
        .min((crate::memory::heap_size() / 256) as usize);
    for vma in paging::areas() {
        let kind = if vma.start >= stack_limit {
            VmaKind::Stack
        } else if let Some((base, end)) =
            vdso.filter(|&(_, end)| vma.start < end && vma.start >= vdso_at)
        {
            let _ = end;
            if vma.start < base {
                VmaKind::Vvar
            } else {
                VmaKind::Vdso
            }
        } else if let Some((interpreter_bias, (_, interpreter_plan, mapped))) = interpreter_at
            .map(|(interpreter_bias, _)| interpreter_bias)
            .zip(interpreter.as_ref())
            .filter(|(interpreter_bias, (_, interpreter_plan, _))| {
                (interpreter_plan.min_vaddr + interpreter_bias
                    ..interpreter_plan.max_vaddr + interpreter_bias)
                    .contains(&vma.start)
            })
        {
            // The interpreter's areas: a private mapping of its file, as on Linux.
            let file_offset = interpreter_plan
                .segments
                .iter()
                .find(|segment| {
                    let (start, end) = segment.page_range();
                    (start + interpreter_bias..end + interpreter_bias).contains(&vma.start)
                })
                .map_or(0, |segment| {
                    elf::page_round_down(segment.file_offset)
                        + (vma.start - (segment.page_range().0 + interpreter_bias))
                });
            let file = memory.file_id(mapped.clone(), &mut process.vfs);
            VmaKind::File {
                file_offset,
                file,
                shared: false,
            }
        } else {
            // Where in the file the area starts (for /proc/self/maps): through the segment
            // whose pages hold it.
            let file_offset = plan
                .segments
                .iter()
                .find(|segment| {
                    let (start, end) = segment.page_range();
                    (start + bias..end + bias).contains(&vma.start)
                })
                .map_or(0, |segment| {
                    elf::page_round_down(segment.file_offset)
                        + (vma.start - (segment.page_range().0 + bias))
                });
            VmaKind::Program { file_offset }
        };
        memory.insert(Vma { kind, ..vma });
    }
    process.memory = memory;
    for (list, strings) in [(&mut process.cmdline, &argv), (&mut process.environ, &envp)] {
        for string in strings.iter() {
            list.extend_from_slice(string);
            list.push(0);
        }
    }
    process.trace = parameters.trace;
    process.network.config = parameters.net;
    if parameters.missing_files {
        process.missing_files = Some(alloc::collections::BTreeSet::new());
    }
    *PROCESS.lock() = Some((process, KernelPlatform::new(parameters)));

    // A dynamic program starts in its interpreter, which finds the program through the auxv.
    let entry = interpreter_at.map_or(plan.entry + bias, |(_, entry)| entry);
    let ticks = crate::clock::read_tsc().wrapping_sub(crate::boot::first_instruction_tsc());
    crate::log_info!("boot: {ticks} TSC ticks from the kernel's first instruction to the program's ({path_text}, entry {entry:#x})");
    crate::clock::start_program_clock();
    crate::sched::init_first_thread(1);
    enter_program(entry, stack.rsp)
}

/// Reads the interpreter (PT_INTERP) of the program at `path_text` from the file tree and
/// plans its loading; one that is missing or unusable stops the VM with the reason.
fn read_interpreter(
    process: &mut Process,
    interpreter: &str,
    path_text: &str,
) -> (Vec<u8>, LoadPlan, pith_syscalls::mm::MappedFile) {
    let vfs = &mut process.vfs;
    let node = vfs
        .resolve(vfs.root(), interpreter.as_bytes(), true)
        .unwrap_or_else(|error| {
            fail(format_args!(
                "{path_text} needs its interpreter {interpreter}, which is not in the VM ({error:?}): `pith run` packs it from the host; `pith deps {path_text}` lists what is needed"
            ))
        });
    let size = vfs
        .metadata(node)
        .map(|metadata| metadata.size)
        .unwrap_or(0);
    let mut bytes = alloc::vec![0u8; size as usize];
    let mut done = 0;
    while done < bytes.len() {
        let got = vfs
            .fs_mut(node.mount)
            .and_then(|fs| fs.read(node.ino, done as u64, &mut bytes[done..]))
            .unwrap_or_else(|error| fail(format_args!("{interpreter}: cannot be read: {error:?}")));
        if got == 0 {
            break;
        }
        done += got;
    }
    bytes.truncate(done);
    let plan = elf::plan(&bytes).unwrap_or_else(|error| {
        fail(format_args!(
            "{interpreter} (the interpreter of {path_text}): {error}"
        ))
    });
    if plan.interpreter.is_some() || plan.kind != ElfKind::PositionIndependent {
        fail(format_args!(
            "{interpreter} (the interpreter of {path_text}) is not a position-independent ELF without an interpreter of its own, as ld.so is"
        ));
    }
    // What /proc/self/maps names its areas by: the file as ld.so itself maps libraries.
    let stat = vfs
        .metadata(node)
        .map(|metadata| pith_syscalls::files::stat_of(node, &metadata))
        .unwrap_or_default();
    let mapped = pith_syscalls::mm::MappedFile {
        path: vfs
            .path_of(node)
            .unwrap_or_else(|_| interpreter.as_bytes().to_vec()),
        node,
        device: stat.st_dev,
        ino: stat.st_ino,
    };
    (bytes, plan, mapped)
}

/// The wall clock, for the volume's inode times.
fn wall_clock() -> pith_fs::Timestamp {
    pith_fs::Timestamp::from_nanoseconds(crate::clock::realtime_ns())
}

/// Mounts the disk's ext4 volume at `path` (made if need be); a disk that is not a usable
/// ext4 volume stops the VM with rsext4's reason, before the program runs.
type Volume = pith_fs::ext4::Ext4Fs<pith_fs::ext4::CachedDisk<crate::virtio_blk::VirtioDisk>>;

/// Mounts the disk's ext4 volume (for `path`, in messages), behind a read cache of an eighth
/// of RAM; a disk that is not a usable ext4 volume stops the VM before the program runs.
fn open_volume(path: &str) -> Volume {
    if crate::virtio_blk::capacity().is_none() {
        fail(format_args!(
            "the volume for {path} has no disk: QEMU attached no virtio-blk device"
        ));
    }
    let (ram_pages, _) = crate::memory::ram_pages();
    // The caches take at most 3/16 of RAM: blocks (metadata, and data not in the page cache)
    // a sixteenth, file pages an eighth.
    let ram_bytes = ram_pages * PAGE_SIZE;
    if let Some((declared, actual)) = pith_fs::ext4::cut_short(&mut crate::virtio_blk::VirtioDisk) {
        fail(format_args!(
            "the volume for {path} is cut short: its filesystem is {} KiB, the disk {} KiB (a truncated image?)",
            declared >> 10,
            actual >> 10
        ));
    }
    if crate::cpu::emulated() {
        // ext4's metadata checksums: 4.4x faster in plain code than with TCG's CRC32.
        pith_fs::ext4::prefer_software_checksums();
    }
    let disk = pith_fs::ext4::CachedDisk::new(crate::virtio_blk::VirtioDisk, ram_bytes / 16);
    match pith_fs::ext4::Ext4Fs::mount(disk, wall_clock) {
        Ok(volume) => volume.with_page_cache(ram_bytes / 8),
        Err((_, reason)) => fail(format_args!(
            "the volume for {path} cannot be mounted: {reason} (check the image with `e2fsck -fn`)"
        )),
    }
}

fn mount_volume(process: &mut Process, path: &str, now: pith_fs::Timestamp) {
    let volume = open_volume(path);
    if let Err(error) =
        pith_syscalls::files::make_directories(&mut process.vfs, path.as_bytes(), now)
    {
        fail(format_args!(
            "the mount point {path} cannot be made: {error:?}"
        ));
    }
    match process
        .vfs
        .mount(path.as_bytes(), alloc::boxed::Box::new(volume), "ext4")
    {
        Ok(_) => crate::log_info!("volume: ext4 mounted at {path}"),
        Err(error) => fail(format_args!(
            "the volume cannot be mounted at {path}: {error:?}"
        )),
    }
}

/// Puts the program at its path in the file tree, and the image's files, directories and
/// symlinks; their bytes stay in the image, which stays in memory (a file is copied page by
/// page only when written). Starts the program in the image's working directory.
fn populate_tree(process: &mut Process, image: &Image<'static>, now: pith_fs::Timestamp) {
    use pith_loader::image::Entry;
    use pith_syscalls::files::{add_from_image, ImageNode};
    let vfs = &mut process.vfs;
    let report = |path: &[u8], result: Result<(), pith_fs::Error>| {
        if let Err(error) = result {
            let path = core::str::from_utf8(path).unwrap_or("(a path that is not UTF-8)");
            crate::log_warn!("the image's {path} could not be put in the file tree: {error:?}");
        }
    };
    let program = image.program_path();
    report(
        program,
        add_from_image(vfs, program, ImageNode::File(image.program()), 0o755, now),
    );
    for entry in image.entries() {
        let result = match entry {
            Entry::File {
                path,
                mode,
                content,
            } => add_from_image(vfs, path, ImageNode::File(content), mode, now),
            Entry::Directory { path, mode } => {
                add_from_image(vfs, path, ImageNode::Directory, mode, now)
            }
            Entry::Symlink { path, target } => {
                add_from_image(vfs, path, ImageNode::Symlink(target), 0o777, now)
            }
        };
        report(entry.path(), result);
    }
    // The image's nodes take none of the room the program has to create files in.
    let root = vfs.root().mount;
    if let Ok(fs) = vfs.fs_mut(root) {
        fs.preloaded();
    }
    if let Some(workdir) = image.workdir() {
        match pith_syscalls::files::make_directories(vfs, workdir, now) {
            Ok(node) => process.cwd = node,
            Err(error) => crate::log_warn!("the working directory could not be made: {error:?}"),
        }
    }
}

/// Jumps to the program's entry point with the registers the x86_64 ABI specifies for
/// process start: rsp at argc, rdx = 0 (no rtld_fini), everything else zero.
fn enter_program(entry: u64, rsp: u64) -> ! {
    // SAFETY: `entry` is the program's entry point inside its mapped, executable text, and
    // `rsp` its initial stack; the iretq frame switches rip, rflags (IF set, as in user mode)
    // and rsp at once, in ring 0 with the kernel's selectors.
    unsafe {
        core::arch::asm!(
            "push {ss}",
            "push {rsp}",
            "push 0x202",
            "push {cs}",
            "push {entry}",
            "xor eax, eax",
            "xor ebx, ebx",
            "xor ecx, ecx",
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor ebp, ebp",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xor r12d, r12d",
            "xor r13d, r13d",
            "xor r14d, r14d",
            "xor r15d, r15d",
            "iretq",
            ss = const crate::gdt::KERNEL_DATA as u64,
            cs = const crate::gdt::KERNEL_CODE as u64,
            rsp = in(reg) rsp,
            entry = in(reg) entry,
            options(noreturn)
        )
    }
}

/// Runs `f` with the process and its platform (on the way out of a syscall).
pub fn with_process<R>(f: impl FnOnce(&mut Process, &mut KernelPlatform) -> R) -> Option<R> {
    let mut guard = PROCESS.lock();
    let (process, platform) = guard.as_mut()?;
    Some(f(process, platform))
}

/// As `with_process`, but gives up if the process is locked: a fault inside a syscall is the
/// kernel's, and waiting would hang.
pub fn try_with_process<R>(f: impl FnOnce(&mut Process, &mut KernelPlatform) -> R) -> Option<R> {
    let mut guard = PROCESS.try_lock()?;
    let (process, platform) = guard.as_mut()?;
    Some(f(process, platform))
}

/// Lets go of the process lock for a thread switch (sched::hand_over): the thread that runs
/// next takes it.
///
/// # Safety
/// The caller holds the lock (a guard it keeps) and must call `reacquire_after_switch` before
/// it touches the process again, or never run again (an exited thread).
pub unsafe fn release_for_switch() {
    // SAFETY: the caller holds the lock, per the contract above.
    unsafe { PROCESS.force_unlock() };
}

/// Takes the process lock back after a switch, for the guard the caller still holds.
pub fn reacquire_after_switch() {
    core::mem::forget(PROCESS.lock());
}

/// Runs one syscall for the program.
#[inline]
pub fn run_syscall(number: u64, args: &[u64; 6]) -> u64 {
    let mut guard = PROCESS.lock();
    let Some((process, platform)) = guard.as_mut() else {
        return pith_syscalls::Errno::ENOSYS.to_return();
    };
    let mut context = Context { platform, process };
    pith_syscalls::dispatch(&mut context, number, args)
}

/// "(in /hello at offset 0x1234)" style text for a fault report.
pub fn describe_address(address: u64) -> AddressDescription {
    AddressDescription(address)
}

pub struct AddressDescription(u64);

impl core::fmt::Display for AddressDescription {
    fn fmt(&self, formatter: &mut core::fmt::Formatter) -> core::fmt::Result {
        let address = self.0;
        let (start, end, bias) = (
            LOAD_START.load(Ordering::Relaxed),
            LOAD_END.load(Ordering::Relaxed),
            LOAD_BIAS.load(Ordering::Relaxed),
        );
        if (start..end).contains(&address) {
            return write!(
                formatter,
                "(in the program at ELF address {:#x})",
                address - bias
            );
        }
        let (limit, top) = (
            STACK_LIMIT.load(Ordering::Relaxed),
            STACK_TOP.load(Ordering::Relaxed),
        );
        if (limit..top).contains(&address) {
            return write!(formatter, "(in the main stack)");
        }
        if address < 0x10000 {
            return write!(formatter, "(a NULL pointer dereference)");
        }
        if address >= crate::boot::KERNEL_VMA {
            return write!(
                formatter,
                "(in the kernel image at {:#x})",
                address - crate::boot::KERNEL_VMA
            );
        }
        write!(formatter, "(not in the program, its stack or the kernel)")
    }
}
