//! Files and images (issue 4): the file tree a program starts with (tmpfs at `/`, `/tmp` and
//! `/dev/shm`; the `/dev` nodes), the file syscalls on it and on ext4 volumes against native
//! Linux, volumes and images that persist, crash, fill up and are built by `pith build`.

use pith_tests::*;
use std::process::Command;

#[test]
fn files_directories_and_links_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "files",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// The same checks on an ext4 volume (the working directory is on it): the format under the
/// VFS changes nothing a program sees. The volume is clean afterwards.
#[test]
fn files_on_an_ext4_volume_behave_as_on_linux() {
    let image = std::env::temp_dir().join(format!("pith-files-ext4-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let volume = format!("{}:/data", image.display());
    assert_checks_pass_as_on_linux(
        "files",
        &[Toolchain::GlibcStatic],
        &["--volume", &volume, "-w", "/data"],
        None,
    );
    let fsck = check_volume(&image);
    let _ = std::fs::remove_file(&image);
    assert_eq!(fsck, Ok(()));
}

/// openat2: the struct and flag checks and every RESOLVE_* restriction, as Linux gives them.
#[test]
fn openat2_restricts_the_walk_as_on_linux() {
    let program = compile("openat2", Toolchain::GlibcStatic);
    let native = run_command(Command::new(&program), None);
    if native.stdout.contains("openat2 is not available here") {
        // This host's seccomp filter hides openat2: the checks' expected errnos (taken from
        // Linux) are still checked on Pith, without the side-by-side comparison.
        let outcome = pith_run(&[], &program, &[], &[]);
        assert_eq!(outcome.status, 0, "{}{}", outcome.stdout, outcome.stderr);
        assert!(
            outcome.stdout.ends_with("0 failures\n"),
            "{}",
            outcome.stdout
        );
        return;
    }
    assert_checks_pass_as_on_linux(
        "openat2",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// fcntl record locks (POSIX and OFD) and flock between open file descriptions, with a
/// thread waiting in F_OFD_SETLKW.
#[test]
fn record_locks_and_flock_conflict_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "locks",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn pipes_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "pipes",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

/// `pith run --dir HOST:GUEST --file HOST:GUEST -w DIR`: host files reach the VM's tree, with
/// their modes and symlinks, and the program starts in DIR; the program is at its own path.
#[test]
fn host_files_and_directories_reach_the_vm() {
    use std::os::unix::fs::PermissionsExt as _;
    let host = std::env::temp_dir().join(format!("pith-tree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(host.join("app/sub")).unwrap();
    std::fs::write(host.join("app/app.conf"), "port = 80\n").unwrap();
    std::fs::write(host.join("app/sub/nested.txt"), "nested\n").unwrap();
    std::fs::write(host.join("app/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        host.join("app/run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.conf", host.join("app/link")).unwrap();
    std::fs::write(host.join("one.txt"), "one line\n").unwrap();
    let program = compile("image_tree", Toolchain::MuslStatic);
    let dir = format!("{}:/etc/app", host.join("app").display());
    let file = format!("{}:/data/one.txt", host.join("one.txt").display());
    let outcome = pith_run(
        &["--dir", &dir, "--file", &file, "-w", "/etc/app"],
        &program,
        &[],
        &[],
    );
    let _ = std::fs::remove_dir_all(&host);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(
        outcome.stdout,
        "/etc/app/app.conf: port = 80\nsub/nested.txt: nested\n/data/one.txt: one line\n\
         link -> app.conf\ncwd: /etc/app\nown path readable: yes\nmode kept: yes\n"
    );
}

/// What programs read of /proc and /sys about the machine describes the VM: one processor,
/// its mounts, its hostname, and where open files point.
#[test]
fn proc_and_sys_describe_the_vm() {
    let program = compile("proc_files", Toolchain::GlibcStatic);
    let outcome = pith_run(&[], &program, &[], &[]);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(
        outcome.stdout,
        "processors: 1, sse2 among the flags: yes\nmount: / tmpfs\nmount: /dev devtmpfs\n\
         mount: /tmp tmpfs\nmount: /dev/shm tmpfs\nhostname: pith\nonline: 0\n\
         stat starts with cpu: yes\n\
         uptime: yes\nfd link: /tmp/marker\ncwd link: /tmp\npipe link starts with pipe:[ yes\n"
    );
}

/// `pith run --disk FILE`: the program sees a virtio-blk disk as /dev/vda; what it writes and
/// fsyncs is in the host file and there again at the next boot.
#[test]
fn a_disk_keeps_what_was_written_across_boots() {
    let disk = std::env::temp_dir().join(format!("pith-disk-{}.img", std::process::id()));
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let program = compile("disk", Toolchain::GlibcStatic);
    let disk_option = disk.to_str().unwrap();
    let first = pith_run(&["--disk", disk_option], &program, &["write"], &[]);
    let second = pith_run(&["--disk", disk_option], &program, &[], &[]);
    let host = std::fs::read(&disk).unwrap();
    let _ = std::fs::remove_file(&disk);
    assert_eq!(
        first.stdout, "block device: yes, size 1048576, SEEK_END 1048576\npwrite: 29, fsync: 0\n",
        "{}",
        first.stderr
    );
    assert_eq!(
        second.stdout,
        "block device: yes, size 1048576, SEEK_END 1048576\n\
         pread: 29: a record that outlives the VM\npast the end: 0\n",
        "{}",
        second.stderr
    );
    assert_eq!(&host[5000..5029], b"a record that outlives the VM");
}

/// `pith run --volume FILE:/data`: a volume the CLI makes and formats (ext4), which the
/// program's files survive in across boots, which e2fsck finds clean after the VM stops, and
/// which, damaged, is refused before the program runs.
#[test]
fn a_volume_keeps_files_across_boots_and_stays_clean() {
    let image = std::env::temp_dir().join(format!("pith-volume-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let volume = format!("{}:/data", image.display());
    let program = compile("volume", Toolchain::GlibcStatic);
    let first = pith_run(
        &["--volume", &volume, "--volume-size", "64M"],
        &program,
        &["write"],
        &[],
    );
    assert_eq!(
        first.stdout, "ext4: yes\nwrite: 18\nfsync: 0\nsymlink: 0\nlink: 0\n",
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("an ext4 volume of 64 MiB"),
        "{}",
        first.stderr
    );
    let second = pith_run(&["--volume", &volume], &program, &[], &[]);
    assert_eq!(
        second.stdout,
        "ext4: yes\nread: 18: REDIS0011 payload\nmode 640, links 2\ndirectory mode 750\n",
        "{}",
        second.stderr
    );
    let fsck = check_volume(&image);
    assert_eq!(fsck, Ok(()));
    // The host reads the same volume with `pith image`, without writing it.
    let before = std::fs::read(&image).unwrap();
    let inspect = |arguments: &[&str]| {
        let output = Command::new(pith_binary())
            .arg("image")
            .args(arguments)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let image_text = image.to_str().unwrap();
    let (status, listing) = inspect(&["ls", image_text, "/app"]);
    assert_eq!(status, Some(0), "{listing}");
    assert!(
        listing.contains("-rw-r-----   2     0     0         18 dump.rdb"),
        "{listing}"
    );
    assert_eq!(
        inspect(&["cat", image_text, "/latest"]),
        (Some(0), "REDIS0011 payload\n".to_owned())
    );
    let (status, report) = inspect(&["fsck", image_text]);
    assert_eq!(status, Some(0), "{report}");
    assert!(report.contains("0 problems"), "{report}");
    assert!(
        std::fs::read(&image).unwrap() == before,
        "pith image wrote to the image"
    );
    // A damaged superblock: refused at mount, with a message, and the program never runs.
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[1024..2048].fill(0xa5);
    std::fs::write(&image, &bytes).unwrap();
    let damaged = pith_run(&["--volume", &volume], &program, &[], &[]);
    let _ = std::fs::remove_file(&image);
    assert_eq!((damaged.status, damaged.stdout.as_str()), (126, ""));
    assert!(
        damaged
            .stderr
            .contains("the volume for /data cannot be mounted"),
        "{}",
        damaged.stderr
    );
}

/// A volume on PCI: QEMU's q35 machine with `virtio-blk-pci` (as cloud-hypervisor attaches
/// disks) instead of microvm's virtio-mmio. The kernel finds ECAM through ACPI's MCFG table and
/// the disk on bus 0; the files written there are read back by a second boot on microvm, so
/// the bytes went through the PCI device. `pith` has no q35 mode: a QEMU wrapper swaps the
/// machine and the device (and silences SeaBIOS's serial console, which is the program's).
#[test]
fn a_volume_on_pci_works_as_on_virtio_mmio() {
    let dir = std::env::temp_dir().join(format!("pith-pci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    let wrapper = pith_tests::q35_wrapper(&dir);
    let image = dir.join("volume.img");
    let volume = format!("{}:/data", image.display());
    let program = compile("volume", Toolchain::GlibcStatic);
    let wrapper_path = wrapper.display().to_string();
    let on_pci = pith_run(
        &[
            "-v",
            "--qemu",
            &wrapper_path,
            "--volume",
            &volume,
            "--volume-size",
            "64M",
        ],
        &program,
        &["write"],
        &[],
    );
    assert_eq!(
        on_pci.stdout, "ext4: yes\nwrite: 18\nfsync: 0\nsymlink: 0\nlink: 0\n",
        "{}",
        on_pci.stderr
    );
    assert!(
        on_pci.stderr.contains("pith: disk: virtio-blk on PCI"),
        "{}",
        on_pci.stderr
    );
    assert!(
        on_pci.stderr.contains("pith: network: virtio-net on PCI"),
        "{}",
        on_pci.stderr
    );
    let on_mmio = pith_run(&["--volume", &volume], &program, &[], &[]);
    assert_eq!(
        on_mmio.stdout,
        "ext4: yes\nread: 18: REDIS0011 payload\nmode 640, links 2\ndirectory mode 750\n",
        "{}",
        on_mmio.stderr
    );
    assert_eq!(check_volume(&image), Ok(()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// fsync, then a power cut: a program appends records with fsync on a volume; the test kills
/// the VM (SIGKILL to QEMU, through `pith`) mid-run, boots the same volume again and finds
/// every record whose fsync returned intact and in order, and no garbage after them (a torn
/// or wrong record); e2fsck then finds the volume clean.
#[test]
fn records_synced_before_a_power_cut_survive_it() {
    records_survive_a_power_cut("write");
}

/// The same with O_DSYNC instead of fsync: a write to such a file is durable when it returns.
#[test]
fn records_written_with_o_dsync_survive_a_power_cut() {
    records_survive_a_power_cut("write-dsync");
}

fn records_survive_a_power_cut(mode: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let image = std::env::temp_dir().join(format!("pith-crash-{mode}-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let volume = format!("{}:/data", image.display());
    let program = compile("synced_log", Toolchain::GlibcStatic);
    let mut writer = Command::new(pith_binary())
        .args(["run", "--volume", &volume, "--volume-size", "32M"])
        .arg(&program)
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pith starts");
    let mut last_synced = -1i64;
    for line in BufReader::new(writer.stdout.take().expect("piped stdout")).lines() {
        let line = line.expect("a line of the program's output");
        last_synced = line
            .strip_prefix("synced ")
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("not a synced record: {line}"));
        if last_synced >= 40 {
            break;
        }
    }
    // The power cut: SIGKILL to pith, whose QEMU dies with it (PR_SET_PDEATHSIG).
    writer.kill().expect("kill pith");
    writer.wait().expect("pith ends");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // As the power cut left it, the way Linux would find it (the journal replayed).
    let fsck_after_cut = check_volume(&image);
    let check = pith_run(&["--volume", &volume], &program, &["check"], &[]);
    let fsck = check_volume(&image);
    let _ = std::fs::remove_file(&image);
    assert_eq!(fsck_after_cut, Ok(()), "the volume as the cut left it");
    let counts: Vec<i64> = check
        .stdout
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [records, bad, tail] = counts[..] else {
        panic!("{}\n{}", check.stdout, check.stderr)
    };
    // Every acknowledged record; the program may have written (and synced) more before the
    // kill reached it, but nothing torn or wrong.
    assert!(
        records > last_synced && bad == 0 && tail == 0,
        "synced up to {last_synced}; after the cut: {}",
        check.stdout
    );
    assert_eq!(fsck, Ok(()));
}

/// `pith build -o IMAGE PROGRAM --dir ... -w DIR`, then `pith run --image IMAGE ARGS`: the
/// image is `/`, holds the program and its files, and keeps what the program writes from one
/// boot to the next; e2fsck finds it clean.
#[test]
fn a_built_image_boots_as_root_and_keeps_its_data() {
    let base = std::env::temp_dir().join(format!("pith-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("conf")).unwrap();
    std::fs::write(base.join("conf/app.conf"), "port = 80\n").unwrap();
    let image = base.join("app.img");
    let program = compile("image_root", Toolchain::GlibcStatic);
    let built = Command::new(pith_binary())
        .args(["build", "-o"])
        .arg(&image)
        .args(["--size", "32M", "--dir"])
        .arg(format!("{}:/etc/app", base.join("conf").display()))
        .args(["-w", "/var/lib/app"])
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    // The journal (16 MiB) and the inode tables are zeros, and holes: the image takes on
    // disk about what it holds (a static glibc program, 1 MB), not its 32 MiB.
    let allocated =
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&image).unwrap()) * 512;
    assert!(
        allocated < 4 << 20,
        "the 32 MiB image takes {allocated} bytes on disk"
    );
    let run = || pith_run_image(&image, &["one", "two"]);
    let (first, second) = (run(), run());
    let fsck = check_volume(&image);
    let _ = std::fs::remove_dir_all(&base);
    // The program keeps its absolute host path inside the image.
    let expected = |boots: u32| {
        format!(
            "argv: {} one two\ncwd: /var/lib/app\nconf: port = 80\nboots: {boots}\n",
            program.display()
        )
    };
    assert_eq!(first.stdout, expected(1), "{}", first.stderr);
    assert_eq!(second.stdout, expected(2), "{}", second.stderr);
    assert_eq!(fsck, Ok(()));
}

/// `--tmp`: /tmp is a tmpfs of the size given (full at that size: ENOSPC, as Linux's tmpfs
/// with size=), or with `--tmp disk` a directory of `/`, not a mount: on an image `pith
/// build --tmp disk` made, what the program leaves in /tmp is there at the next boot. The
/// default (half the VM's memory) is a tmpfs that starts empty.
#[test]
fn tmp_is_a_tmpfs_of_the_size_given_or_a_directory_of_the_image() {
    let program = compile("tmp", Toolchain::GlibcStatic);
    let small = pith_run(&["--tmp", "1M"], &program, &["2048"], &[]);
    assert_eq!(
        small.stdout,
        "tmpfs: yes\nsize: 1024 KiB\nmounted: yes\nfill: ENOSPC after 1024 KiB\nkept: no\n",
        "{}",
        small.stderr
    );
    // Its inodes are Linux's default whatever the size: half the RAM's pages.
    let inodes = pith_run(
        &["--tmp", "1M", "-m", "64M"],
        &program,
        &["0", "inodes"],
        &[],
    );
    assert_eq!(
        inodes.stdout.lines().nth(4),
        Some("inodes: ENOSPC after as many as statfs said files, room after an unlink"),
        "{}\n{}",
        inodes.stdout,
        inodes.stderr
    );
    // By default, half of the memory the kernel manages (a little under half of -m).
    let default = pith_run(&["-m", "256M"], &program, &["2048"], &[]);
    let lines: Vec<&str> = default.stdout.lines().collect();
    let size_kib: u64 = lines
        .get(1)
        .and_then(|line| line.strip_prefix("size: "))
        .and_then(|size| size.strip_suffix(" KiB"))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("{}\n{}", default.stdout, default.stderr));
    assert!(
        (100 << 10..=128 << 10).contains(&size_kib),
        "{}",
        default.stdout
    );
    assert_eq!(
        [lines[0], lines[2], lines[3], lines[4]],
        ["tmpfs: yes", "mounted: yes", "fill: 2048 KiB", "kept: no"],
        "{}",
        default.stderr
    );
    let refused = pith_run(&["--tmp", "lots"], &program, &[], &[]);
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("or `disk`"), "{}", refused.stderr);

    let base = std::env::temp_dir().join(format!("pith-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let image = base.join("tmp.img");
    let built = Command::new(pith_binary())
        .args(["build", "--tmp", "disk", "--size", "32M", "-o"])
        .arg(&image)
        .arg(&program)
        .arg("64")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let boot = || pith_run_image(&image, &[]);
    let (first, second) = (boot(), boot());
    let fsck = check_volume(&image);
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(
        first.stdout, "tmpfs: no\nmounted: no\nfill: 64 KiB\nkept: no\n",
        "{}",
        first.stderr
    );
    assert_eq!(
        second.stdout, "tmpfs: no\nmounted: no\nfill: 64 KiB\nkept: yes\n",
        "{}",
        second.stderr
    );
    assert_eq!(fsck, Ok(()));
}

/// A manifest with a glob, args, env, a working directory and `writable = false`: read by
/// `pith run --manifest` (the root is tmpfs) and by `pith build --manifest` (the root is the
/// ext4 image); the command line's `-e` and words replace the manifest's.
#[test]
fn a_manifest_sets_the_program_its_files_and_a_read_only_root() {
    let base = std::env::temp_dir().join(format!("pith-manifest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("conf")).unwrap();
    for name in ["a.conf", "b.conf", "notes.txt"] {
        std::fs::write(base.join("conf").join(name), "notes").unwrap();
    }
    let program = compile("manifest", Toolchain::GlibcStatic);
    std::fs::copy(&program, base.join("server")).unwrap();
    std::fs::write(
        base.join("pith.toml"),
        r#"
program = "server"
args = ["a", "b"]
workdir = "/srv"
env = { MODE = "prod" }

[[file]]
host = "conf/*.conf"
guest = "/etc/app/"

[[file]]
host = "conf/notes.txt"
guest = "/srv/README"

[image]
size = "32M"
writable = false
"#,
    )
    .unwrap();
    let manifest = base.join("pith.toml");
    let manifest_text = manifest.to_str().unwrap();
    let run = |words: &[&str]| {
        let mut command = Command::new(pith_binary());
        command.arg("run").args(words);
        run_command(command, None)
    };
    let expected = |argv: &str, mode: &str, root: &str| {
        format!(
            "argv: /server {argv}\nMODE={mode}\ncwd: /srv\n/etc/app: a.conf b.conf\n/srv/README: notes\n\
             create in /: EROFS\nwrite a file of /: EROFS\nmkdir in /: EROFS\naccess(W_OK) /srv: EROFS\n\
             create in /tmp: ok\n/ is {root} ro\n"
        )
    };
    let from_manifest = run(&["--manifest", manifest_text]);
    let overridden = run(&["--manifest", manifest_text, "-e", "MODE=dev", "--", "c"]);

    let image = base.join("app.img");
    let built = Command::new(pith_binary())
        .args([
            "build",
            "-o",
            image.to_str().unwrap(),
            "--manifest",
            manifest_text,
        ])
        .output()
        .unwrap();
    let from_image = run(&["--image", image.to_str().unwrap()]);
    let image_overridden = run(&["--image", image.to_str().unwrap(), "-e", "MODE=dev", "c"]);
    let fsck = check_volume(&image);
    let image_size = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&base);

    assert_eq!(
        from_manifest.stdout,
        expected("a b", "prod", "tmpfs"),
        "{}",
        from_manifest.stderr
    );
    assert_eq!(
        overridden.stdout,
        expected("c", "dev", "tmpfs"),
        "{}",
        overridden.stderr
    );
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(image_size, 32 << 20, "image.size sets the image's size");
    assert_eq!(
        from_image.stdout,
        expected("a b", "prod", "ext4"),
        "{}",
        from_image.stderr
    );
    assert_eq!(
        image_overridden.stdout,
        expected("c", "dev", "ext4"),
        "{}",
        image_overridden.stderr
    );
    assert_eq!(fsck, Ok(()));
}

/// A mistake in a manifest stops `pith` before any VM starts, naming the file and the line.
#[test]
fn a_bad_manifest_is_refused_with_where_the_mistake_is() {
    let base = std::env::temp_dir().join(format!("pith-bad-manifest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let manifest = base.join("pith.toml");
    std::fs::write(&manifest, "program = \"server\"\nwritable = false\n").unwrap();
    let output = Command::new(pith_binary())
        .args(["run", "--manifest", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&base);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("pith.toml") && stderr.contains("line 2") && stderr.contains("writable"),
        "{stderr}"
    );
}

/// A volume filled to the last block: writes fail with ENOSPC (not a hang, not a short write
/// forever), fsync still works, deleting gives the blocks back and writing works again; the
/// volume is consistent afterwards (its journal replayed, e2fsck finds nothing to fix).
#[test]
fn a_full_volume_says_enospc_and_recovers_after_deletes() {
    let image = std::env::temp_dir().join(format!("pith-full-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let volume = format!("{}:/data", image.display());
    let program = compile("disk_full", Toolchain::GlibcStatic);
    let outcome = pith_run(
        &["--volume", &volume, "--volume-size", "32M"],
        &program,
        &["/data"],
        &[],
    );
    let fsck = check_volume(&image);
    let _ = std::fs::remove_file(&image);
    assert_eq!(outcome.status, 0, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stdout.ends_with("0 failures\n"),
        "{}",
        outcome.stdout
    );
    assert_eq!(fsck, Ok(()));
}

/// A volume file cut short (truncated) is refused, naming both sizes: by the kernel before the
/// program runs, and by `pith image fsck` on the host.
#[test]
fn a_truncated_volume_is_refused_by_the_kernel_and_by_pith_image() {
    let image = std::env::temp_dir().join(format!("pith-cut-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let volume = format!("{}:/data", image.display());
    let program = compile("volume", Toolchain::GlibcStatic);
    let made = pith_run(
        &["--volume", &volume, "--volume-size", "64M"],
        &program,
        &["write"],
        &[],
    );
    std::fs::File::options()
        .write(true)
        .open(&image)
        .and_then(|file| file.set_len(20 << 20))
        .unwrap();
    let booted = pith_run(&["--volume", &volume], &program, &[], &[]);
    let fsck = Command::new(pith_binary())
        .args(["image", "fsck"])
        .arg(&image)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&image);
    assert_eq!(made.status, 0, "{}", made.stderr);
    assert_eq!(
        (booted.status, booted.stdout.as_str()),
        (126, ""),
        "{}",
        booted.stderr
    );
    assert!(
        booted
            .stderr
            .contains("is cut short: its filesystem is 65536 KiB, the disk 20480 KiB"),
        "{}",
        booted.stderr
    );
    let fsck_stderr = String::from_utf8_lossy(&fsck.stderr);
    assert_eq!(fsck.status.code(), Some(125), "{fsck_stderr}");
    assert!(
        fsck_stderr
            .contains("cut short: the ext4 volume in it is 65536 KiB but the file is 20480 KiB"),
        "{fsck_stderr}"
    );
}
