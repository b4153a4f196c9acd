//! Virtual memory (issue 3, first part): anonymous memory is backed on first touch and freed
//! on munmap, so a program can map far more than the VM has, as on Linux.

use pith_tests::*;

#[test]
fn memory_is_backed_when_touched_and_freed_when_unmapped() {
    // 256 MiB of VM: four rounds of 64 MiB touched only fit if munmap gives memory back, and a
    // 1 GiB or 64 GiB mapping only if nothing is allocated up front.
    assert_checks_pass_as_on_linux(
        "lazy_memory",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &["--memory", "256M"],
        None,
    );
}

#[test]
fn touching_memory_the_program_does_not_have_is_still_a_fault() {
    // Demand paging must not back what no mapping covers, nor what PROT_NONE protects.
    let program = compile("memory_faults", Toolchain::GlibcStatic);
    for violation in ["none", "readonly", "nx"] {
        let outcome = pith_run(&[], &program, &[violation], &[]);
        assert_eq!(outcome.status, 139, "{violation}: {outcome:?}");
    }
    let outcome = pith_run(&[], &compile("null_write", Toolchain::MuslStatic), &[], &[]);
    assert_eq!(outcome.status, 139, "{outcome:?}");
}

#[test]
fn the_i386_syscall_instruction_is_refused_not_ignored() {
    let program = compile("memory_faults", Toolchain::GlibcStatic);
    let outcome = pith_run(&[], &program, &["int80"], &[]);
    assert_eq!(outcome.status, 139, "{outcome:?}");
    assert!(
        outcome.stderr.contains("`int 0x80`") && outcome.stderr.contains("i386 syscall ABI"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stdout.contains("no fault"), "{}", outcome.stdout);
}

#[test]
fn proc_self_maps_describes_the_address_space() {
    assert_checks_pass_as_on_linux(
        "proc_maps",
        &[
            Toolchain::GlibcStatic,
            Toolchain::GlibcStaticPie,
            Toolchain::MuslStatic,
        ],
        &[],
        None,
    );
}

#[test]
fn mremap_and_mincore_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "remap",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// An ELF file's pages are shown where they lie in the image (to private mappings, and as the
/// program's own segments) until the program stores to one: stores and write(2) then behave as
/// on Linux, and none reaches the image, which every later reader of the file shares.
#[test]
fn image_pages_are_shared_until_a_store_as_on_linux() {
    let copy = std::env::temp_dir().join(format!("pith-image-pages-{}", std::process::id()));
    for toolchain in [Toolchain::GlibcDynamic, Toolchain::MuslStatic] {
        let program = compile("image_pages", toolchain);
        // Each run changes the file: each starts from a fresh copy of /usr/bin/true.
        std::fs::copy("/usr/bin/true", &copy).expect("copy /usr/bin/true");
        let native = native_run(&program, &[copy.to_str().unwrap()], &[]);
        assert_eq!(
            native.status, 0,
            "the checks must pass on Linux first: {}",
            native.stdout
        );
        std::fs::copy("/usr/bin/true", &copy).expect("copy /usr/bin/true");
        let file = format!("{}:/data/elf", copy.display());
        let outcome = pith_run(&["--file", &file], &program, &["/data/elf"], &[]);
        assert_eq!(
            outcome.status, 0,
            "{toolchain:?}: {}{}",
            outcome.stdout, outcome.stderr
        );
        assert_eq!(outcome.stdout, native.stdout, "{toolchain:?}");
    }
    let _ = std::fs::remove_file(&copy);
}

#[test]
fn hello_runs_in_a_16_mib_vm() {
    // Issue 3's target is 16 MiB of guest RAM; the kernel heap scales down with the machine.
    for memory in ["16M", "8M"] {
        let outcome = pith_run(
            &["--memory", memory],
            &compile("hello", Toolchain::GlibcStatic),
            &[],
            &[],
        );
        assert_eq!(
            (outcome.status, outcome.stdout.as_str()),
            (0, "hello, world\n"),
            "{memory}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn a_stack_overflow_is_caught_on_the_alternate_stack_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "stack_overflow",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// Debian's busybox `free` reads /proc/meminfo: the guest's RAM as the allocator sees it, most
/// of it free, no swap.
#[test]
fn busybox_free_sees_the_guests_memory() {
    let outcome = pith_run(
        &["-m", "64M"],
        std::path::Path::new("/bin/busybox"),
        &["free"],
        &[],
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    let mem: Vec<u64> = outcome
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line in {:?}", outcome.stdout))
        .split_whitespace()
        .map(|field| field.parse().unwrap())
        .collect();
    let (total, used, free) = (mem[0], mem[1], mem[2]);
    assert!(
        (40_000..65_536).contains(&total),
        "total {total} KiB of a 64 MiB guest"
    );
    assert!(free > total / 2 && used + free == total, "{mem:?}");
    assert!(
        outcome
            .stdout
            .contains("Swap:             0           0           0"),
        "{}",
        outcome.stdout
    );
}
