//! The QEMU command line of docs/design/boot-protocol.md, the kernel command line, and finding QEMU.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::accel::Accelerator;
use crate::args::MemorySize;

/// The QEMU binary was not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QemuNotFound {
    #[error("{0} not found on PATH: install it with `apt-get install qemu-system-x86`, or pass --qemu PATH")]
    NotOnPath(String),
    #[error("--qemu {}: no such executable file: pass the path of qemu-system-x86_64", .0.display())]
    NoSuchFile(PathBuf),
}

/// Resolves `--qemu`: a value with a '/' is a path; a bare name is looked up in `path_variable`
/// (the value of $PATH) like a shell does. `is_executable` tells whether a path is an executable file.
pub fn find_qemu(
    qemu: &OsStr,
    path_variable: Option<&OsStr>,
    is_executable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, QemuNotFound> {
    let named = Path::new(qemu);
    if qemu.as_encoded_bytes().contains(&b'/') {
        return if is_executable(named) {
            Ok(named.to_path_buf())
        } else {
            Err(QemuNotFound::NoSuchFile(named.to_path_buf()))
        };
    }
    path_variable
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|directory| !directory.as_os_str().is_empty())
        .map(|directory| directory.join(named))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| QemuNotFound::NotOnPath(qemu.to_string_lossy().into_owned()))
}

/// The most verbose kernel log level the kernel sends (`pith.log=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLogLevel {
    Warn,
    Debug,
}

/// The words of the kernel command line (`-append`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCommandLine {
    pub tsc_khz: u64,
    pub realtime_ns: u128,
    pub log: KernelLogLevel,
    pub trace: bool,
    /// The program's console is a host terminal of (rows, columns): `pith.tty=1`,
    /// `pith.winsize=RxC`, so isatty() and TIOCGWINSZ answer as they would on the host.
    pub terminal: Option<(u16, u16)>,
    /// Where the disk's ext4 volume is mounted: `pith.volume=PATH`.
    pub volume: Option<String>,
    /// The disk is an image `pith build` made, to be `/`: `pith.root=disk`.
    pub root_on_disk: bool,
    /// `/` is read-only (a manifest's `writable = false`): `pith.root_ro=1`.
    pub root_read_only: bool,
    /// What /tmp is (`--tmp`): `pith.tmp=BYTES` or `pith.tmp=disk`.
    pub tmp: Option<crate::args::TmpSetting>,
    /// Report paths looked up in vain (`--missing-files`): `pith.missing=1`.
    pub missing_files: bool,
    /// `--no-aslr`: `pith.aslr=0`.
    pub no_aslr: bool,
    /// The guest network's addressing: `pith.net=ADDRESS/PREFIX,GATEWAY,DNS`.
    pub net: Option<crate::network::Addressing>,
}

impl KernelCommandLine {
    /// The words, space-separated. `pith.console=framed` is always there: the CLI always sends
    /// COM1 input as console input records.
    pub fn render(&self) -> String {
        let log = match self.log {
            KernelLogLevel::Warn => "warn",
            KernelLogLevel::Debug => "debug",
        };
        let mut text = format!(
            "pith.tsc_khz={} pith.realtime_ns={} pith.log={log} pith.console=framed",
            self.tsc_khz, self.realtime_ns
        );
        if self.trace {
            text.push_str(" pith.trace=1");
        }
        if let Some((rows, columns)) = self.terminal {
            text.push_str(&format!(" pith.tty=1 pith.winsize={rows}x{columns}"));
        }
        if let Some(path) = &self.volume {
            text.push_str(&format!(" pith.volume={path}"));
        }
        if self.root_on_disk {
            text.push_str(" pith.root=disk");
        }
        if self.root_read_only {
            text.push_str(" pith.root_ro=1");
        }
        if let Some(tmp) = self.tmp {
            text.push_str(&format!(" pith.tmp={}", tmp.kernel_value()));
        }
        if self.missing_files {
            text.push_str(" pith.missing=1");
        }
        if self.no_aslr {
            text.push_str(" pith.aslr=0");
        }
        if let Some(addressing) = &self.net {
            text.push_str(&format!(" pith.net={}", addressing.kernel_value()));
        }
        text
    }
}

/// Everything the QEMU command line depends on.
#[derive(Debug, Clone)]
pub struct QemuConfig<'a> {
    pub accelerator: Accelerator,
    pub memory: MemorySize,
    pub kernel: &'a Path,
    pub image: &'a Path,
    pub kernel_command_line: &'a str,
    /// The socket COM1 (the program's console) connects to.
    pub console_socket: &'a Path,
    /// The socket the host link (`isa-debugcon`) connects to.
    pub hostlink_socket: &'a Path,
    /// `-icount shift=0` (TCG only; the accelerator choice has checked that).
    pub icount: bool,
    /// A raw disk image, attached as a virtio-blk device (the kernel's /dev/vda).
    pub disk: Option<&'a Path>,
    /// The network device's arguments (`network::Network::qemu_args`).
    pub network: &'a [String],
}

/// QEMU's arguments (without the program name), as docs/design/boot-protocol.md shows them.
pub fn qemu_args(config: &QemuConfig<'_>) -> Vec<OsString> {
    let (accel, cpu) = match config.accelerator {
        Accelerator::Tcg => ("tcg", "max"),
        Accelerator::Kvm => ("kvm", "host"),
    };
    let mut args = Vec::new();
    extend(
        &mut args,
        &[
            "-M",
            "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
            "-accel",
            accel,
            "-cpu",
            cpu,
        ],
    );
    if config.icount {
        extend(&mut args, &["-icount", "shift=0"]);
    }
    extend(
        &mut args,
        &[
            "-m",
            &config.memory.qemu_value(),
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
        ],
    );
    args.extend([
        "-kernel".into(),
        config.kernel.into(),
        "-initrd".into(),
        config.image.into(),
        "-append".into(),
        config.kernel_command_line.into(),
    ]);
    args.extend([
        "-chardev".into(),
        socket_chardev("con", config.console_socket),
        "-serial".into(),
        "chardev:con".into(),
        "-chardev".into(),
        socket_chardev("hostlink", config.hostlink_socket),
    ]);
    extend(
        &mut args,
        &[
            "-device",
            "isa-debugcon,iobase=0xe9,chardev=hostlink",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ],
    );
    if let Some(disk) = config.disk {
        // Writes reach the host file as they are made; a guest FLUSH makes them durable.
        let mut drive = OsString::from("file=");
        drive.push(escape_option_value(disk.as_os_str()));
        drive.push(",format=raw,if=none,id=disk0,cache=writeback");
        args.extend(["-drive".into(), drive]);
        extend(&mut args, &["-device", "virtio-blk-device,drive=disk0"]);
    }
    args.extend(config.network.iter().map(OsString::from));
    args
}

/// `socket,id=<id>,path=<path>`: a chardev that connects, as a client, to a socket `pith` listens on.
fn socket_chardev(id: &str, path: &Path) -> OsString {
    let mut chardev = OsString::from(format!("socket,id={id},path="));
    chardev.push(escape_option_value(path.as_os_str()));
    chardev
}

fn extend(args: &mut Vec<OsString>, words: &[&str]) {
    args.extend(words.iter().map(OsString::from));
}

/// QEMU splits option lists such as `-chardev a=b,c=d` at commas; a comma inside a value is
/// written twice.
fn escape_option_value(value: &OsStr) -> OsString {
    let bytes = value.as_encoded_bytes();
    if !bytes.contains(&b',') {
        return value.to_os_string();
    }
    let mut escaped = Vec::with_capacity(bytes.len() + 4);
    for &byte in bytes {
        escaped.push(byte);
        if byte == b',' {
            escaped.push(b',');
        }
    }
    // Doubling an ASCII comma keeps the bytes valid in the OsStr encoding they came from.
    std::os::unix::ffi::OsStringExt::from_vec(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config<'a>(accelerator: Accelerator, icount: bool) -> QemuConfig<'a> {
        QemuConfig {
            accelerator,
            memory: MemorySize::from_mebibytes(256),
            kernel: Path::new("/k/pith-kernel"),
            image: Path::new("/tmp/pith-x/image.pith"),
            kernel_command_line: "pith.tsc_khz=2000000 pith.realtime_ns=5 pith.log=warn",
            disk: None,
            network: &[],
            console_socket: Path::new("/tmp/pith-x/console.sock"),
            hostlink_socket: Path::new("/tmp/pith-x/hostlink.sock"),
            icount,
        }
    }

    fn words(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn expected(accel_and_cpu: &[&str]) -> Vec<String> {
        let mut expected = vec![
            "-M",
            "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
        ];
        expected.extend_from_slice(accel_and_cpu);
        expected.extend_from_slice(&[
            "-m",
            "256M",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-kernel",
            "/k/pith-kernel",
            "-initrd",
            "/tmp/pith-x/image.pith",
            "-append",
            "pith.tsc_khz=2000000 pith.realtime_ns=5 pith.log=warn",
            "-chardev",
            "socket,id=con,path=/tmp/pith-x/console.sock",
            "-serial",
            "chardev:con",
            "-chardev",
            "socket,id=hostlink,path=/tmp/pith-x/hostlink.sock",
            "-device",
            "isa-debugcon,iobase=0xe9,chardev=hostlink",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ]);
        expected.into_iter().map(String::from).collect()
    }

    #[test]
    fn tcg_command_line() {
        assert_eq!(
            words(qemu_args(&config(Accelerator::Tcg, false))),
            expected(&["-accel", "tcg", "-cpu", "max"])
        );
    }

    #[test]
    fn kvm_command_line() {
        assert_eq!(
            words(qemu_args(&config(Accelerator::Kvm, false))),
            expected(&["-accel", "kvm", "-cpu", "host"])
        );
    }

    #[test]
    fn icount_command_line() {
        assert_eq!(
            words(qemu_args(&config(Accelerator::Tcg, true))),
            expected(&["-accel", "tcg", "-cpu", "max", "-icount", "shift=0"])
        );
    }

    #[test]
    fn commas_in_the_socket_path_are_doubled() {
        let mut config = config(Accelerator::Tcg, false);
        config.console_socket = Path::new("/tmp/a,b/console.sock");
        config.hostlink_socket = Path::new("/tmp/a,b/hostlink.sock");
        let words = words(qemu_args(&config));
        assert!(words.contains(&"socket,id=con,path=/tmp/a,,b/console.sock".to_owned()));
        assert!(words.contains(&"socket,id=hostlink,path=/tmp/a,,b/hostlink.sock".to_owned()));
    }

    #[test]
    fn kernel_command_lines() {
        let mut line = KernelCommandLine {
            volume: None,
            root_on_disk: false,
            root_read_only: false,
            tmp: None,
            missing_files: false,
            no_aslr: false,
            net: None,
            tsc_khz: 2_995_200,
            realtime_ns: 1_700_000_000_123_456_789,
            log: KernelLogLevel::Warn,
            trace: false,
            terminal: None,
        };
        assert_eq!(
            line.render(),
            "pith.tsc_khz=2995200 pith.realtime_ns=1700000000123456789 pith.log=warn pith.console=framed"
        );
        line.log = KernelLogLevel::Debug;
        line.trace = true;
        assert_eq!(
            line.render(),
            "pith.tsc_khz=2995200 pith.realtime_ns=1700000000123456789 pith.log=debug pith.console=framed pith.trace=1"
        );
        line.terminal = Some((50, 132));
        assert!(line
            .render()
            .ends_with(" pith.trace=1 pith.tty=1 pith.winsize=50x132"));
    }

    #[test]
    fn finding_qemu() {
        let only = |wanted: &'static str| move |path: &Path| path == Path::new(wanted);
        let path_variable = OsStr::new("/nothing::/usr/local/bin:/usr/bin");
        assert_eq!(
            find_qemu(
                OsStr::new("qemu-system-x86_64"),
                Some(path_variable),
                only("/usr/bin/qemu-system-x86_64")
            ),
            Ok(PathBuf::from("/usr/bin/qemu-system-x86_64"))
        );
        let missing = find_qemu(
            OsStr::new("qemu-system-x86_64"),
            Some(path_variable),
            |_| false,
        )
        .expect_err("not there");
        assert_eq!(
            missing.to_string(),
            "qemu-system-x86_64 not found on PATH: install it with `apt-get install qemu-system-x86`, or pass --qemu PATH"
        );
        assert!(find_qemu(OsStr::new("qemu-system-x86_64"), None, |_| true).is_err());
        assert_eq!(
            find_qemu(OsStr::new("./q"), Some(path_variable), only("./q")),
            Ok(PathBuf::from("./q"))
        );
        assert_eq!(
            find_qemu(OsStr::new("/opt/q"), Some(path_variable), |_| false),
            Err(QemuNotFound::NoSuchFile("/opt/q".into()))
        );
    }
}
