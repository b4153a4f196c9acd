//! The command line of `pith`, parsed with clap, and the checks on its values.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `pith`: run unmodified static Linux x86_64 programs as a Pith unikernel under QEMU.
#[derive(Debug, Parser)]
#[command(name = "pith", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot PROGRAM in a fresh VM with ARGS, and exit with its exit status.
    ///
    /// Everything after PROGRAM is passed to it unchanged, including words that start with '-'.
    /// A single `--` right after PROGRAM is dropped, so `pith run prog -- -x` passes just `-x`.
    Run(RunArgs),
    /// Look inside a volume image (ext4), read-only.
    #[command(subcommand)]
    Image(crate::inspect::ImageCommand),
    /// Write a bootable ext4 image: PROGRAM at /NAME, the --file/--dir entries; boot it with
    /// `pith run --image IMAGE [ARGS]`.
    Build(crate::build::BuildArgs),
    /// Packages: servers from Debian (redis, nginx, memcached) with a recipe each
    /// (packages/NAME/): list them, run one, or build its image.
    #[command(subcommand)]
    Pkg(crate::package::PkgCommand),
    /// List what a dynamically linked PROGRAM needs and why: its interpreter and each library
    /// (which DT_NEEDED of which object, found where), searched as glibc's ld.so searches,
    /// without running it.
    Deps(DepsArgs),
}

/// The options of `pith deps`.
#[derive(Debug, Args)]
pub struct DepsArgs {
    /// The program (an x86_64 ELF).
    pub program: std::path::PathBuf,
}

/// The options of `pith run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Set one environment variable of the program (repeatable). The program sees exactly these,
    /// not the host's environment.
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL", value_parser = parse_env_var)]
    pub env: Vec<EnvVar>,

    /// Put a host file into the VM's file tree: HOST:GUEST (GUEST an absolute path), or HOST
    /// alone for the same absolute path inside (repeatable).
    #[arg(long = "file", value_name = "HOST[:GUEST]", value_parser = parse_mapping)]
    pub files: Vec<PathMapping>,

    /// Put a host directory, with everything under it, into the VM's file tree: HOST:GUEST, or
    /// HOST alone for the same absolute path inside (repeatable).
    #[arg(long = "dir", value_name = "HOST[:GUEST]", value_parser = parse_mapping)]
    pub dirs: Vec<PathMapping>,

    /// A raw disk image file to attach (virtio-blk): the program sees it as /dev/vda, and what
    /// it writes there stays in the file.
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,

    /// Boot an image `pith build` made: it is `/` (what the program writes there stays in it),
    /// and it names the program; the words after the options are the program's arguments.
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["disk", "volume", "files", "dirs", "manifest"])]
    pub image: Option<PathBuf>,

    /// A manifest (pith.toml; docs/manifest.md): the program, its arguments, environment,
    /// working directory and files. Options given here add to it (-e, --file, --dir) or replace
    /// it (-w, and the words after the options replace its args).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// A persistent ext4 volume: FILE (made and formatted if it does not exist) mounted at PATH
    /// inside the VM. What the program writes there stays in FILE, which e2fsck and debugfs
    /// read, and Linux loop-mounts.
    #[arg(long, value_name = "FILE:PATH", value_parser = parse_volume, conflicts_with = "disk")]
    pub volume: Option<PathMapping>,

    /// The size of a volume `--volume` makes, e.g. 256M or 2G.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_memory_size)]
    pub volume_size: MemorySize,

    /// What /tmp is: a tmpfs of at most SIZE (e.g. 64M; the default is half the VM's memory,
    /// as Linux's tmpfs), or `disk` for a plain directory of `/` (on an image, what the
    /// program leaves there stays).
    #[arg(long, value_name = "SIZE|disk", value_parser = parse_tmp)]
    pub tmp: Option<TmpSetting>,

    /// The program's working directory inside the VM (made if it is not there). Default: /.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Forward a host port to the program (QEMU user-mode networking):
    /// [HOST_ADDRESS:][HOST_PORT:]GUEST_PORT[/udp], e.g. 8080, 127.0.0.1:18080:8080 or
    /// 5353:53/udp (repeatable). The host address defaults to all of them (0.0.0.0).
    #[arg(short = 'p', long = "publish", value_name = "PORTS", value_parser = crate::network::parse_port_forward)]
    pub publish: Vec<crate::network::PortForward>,

    /// The network: `user` (QEMU user-mode networking, the default: outgoing connections and
    /// -p), `tap=NAME[,ip=ADDRESS/PREFIX][,gw=ADDRESS]` (a tap device scripts/net-tap made;
    /// full speed, the guest reached at its address, 10.0.100.2/24 by default), or `none`.
    #[arg(long, value_name = "MODE", default_value = "user", value_parser = crate::network::parse_net_mode)]
    pub net: crate::network::NetMode,

    /// Which QEMU accelerator to use. auto picks kvm only when /dev/kvm opens read-write and the
    /// CPU has the vmx or svm flag, else tcg.
    #[arg(long, value_enum, default_value_t = AccelRequest::Auto)]
    pub accel: AccelRequest,

    /// Print a strace-style line on stderr for every system call the program makes.
    #[arg(long)]
    pub trace: bool,

    /// Turn address-space layout randomization off (for debugging): the program, its
    /// interpreter, stack and vDSO at the same addresses every run, as `setarch -R` on Linux.
    #[arg(long)]
    pub no_aslr: bool,

    /// Report, once each, every path the program looked for and did not find (open, stat,
    /// access, readlink saying ENOENT), as `pith: missing file: PATH (call)` on stderr: what to
    /// add with --file, --dir or the manifest.
    #[arg(long)]
    pub missing_files: bool,

    /// After Ctrl-C (or SIGTERM/SIGHUP), how many seconds the program has to exit once it is
    /// sent SIGTERM, before the VM is stopped. A second Ctrl-C stops it at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub stop_timeout: u64,

    /// Guest memory, e.g. 64M or 1G.
    #[arg(short = 'm', long = "memory", value_name = "SIZE", default_value = "256M", value_parser = parse_memory_size)]
    pub memory: MemorySize,

    /// The Pith kernel ELF. Default: $PITH_KERNEL, else the kernel built next to this `pith`
    /// (target/x86_64-unknown-none/release/pith-kernel, then debug).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,

    /// Count instructions instead of time (TCG only; for reproducible benchmarks): the guest
    /// TSC then ticks once per instruction.
    #[arg(long)]
    pub icount: bool,

    /// Show kernel log records of every level (by default only errors and warnings).
    #[arg(short, long)]
    pub verbose: bool,

    /// The QEMU binary: a path, or a name looked up on PATH.
    #[arg(long, value_name = "PATH", default_value = "qemu-system-x86_64")]
    pub qemu: OsString,

    /// The program to run, then its arguments.
    // trailing_var_arg alone: once PROGRAM is seen, every later word (even `-v` or `--help`)
    // belongs to the program, while an unknown option *before* PROGRAM is still an error.
    // allow_hyphen_values would instead take such a mistyped option as the program's name.
    #[arg(
        trailing_var_arg = true,
        required_unless_present_any = ["image", "manifest"],
        value_names = ["PROGRAM", "ARGS"]
    )]
    command: Vec<OsString>,
}

impl RunArgs {
    /// The program as the user typed it; it is also the program's argv[0], as a shell would pass.
    pub fn program(&self) -> &OsStr {
        // clap guarantees at least one value (`required = true`); an empty slice cannot happen,
        // but answering "" keeps this total, and "" then fails the program check with a message.
        self.command
            .first()
            .map_or(OsStr::new(""), OsString::as_os_str)
    }

    /// Whether any word follows the options.
    pub fn has_command(&self) -> bool {
        !self.command.is_empty()
    }

    /// With --image, or a manifest that names the program: every word after the options is
    /// the program's, without a leading `--`.
    pub fn image_args(&self) -> &[OsString] {
        match self.command.split_first() {
            Some((first, after)) if first == "--" => after,
            _ => &self.command,
        }
    }

    /// The arguments after the program (argv[1..]), without a `--` that directly follows it.
    pub fn program_args(&self) -> &[OsString] {
        let rest = self.command.get(1..).unwrap_or(&[]);
        match rest.split_first() {
            Some((first, after)) if first == "--" => after,
            _ => rest,
        }
    }
}

/// `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelRequest {
    /// kvm when it is real hardware virtualization, else tcg.
    Auto,
    /// KVM; an error if /dev/kvm cannot be opened read-write.
    Kvm,
    /// QEMU's software emulator.
    Tcg,
}

/// One `-e KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

impl fmt::Display for EnvVar {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}={}", self.key, self.value)
    }
}

/// Checks one `-e` value: it must be `KEY=VALUE` with a non-empty KEY.
pub fn parse_env_var(text: &str) -> Result<EnvVar, String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` has no '=': write it as KEY=VALUE (e.g. -e {text}=1, or -e {text}= for an empty value)"
        ));
    };
    if key.is_empty() {
        return Err(format!(
            "`{text}` has no name before '=': write it as KEY=VALUE"
        ));
    }
    Ok(EnvVar {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// `--file` and `--dir`: a host path and where it goes in the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMapping {
    pub host: PathBuf,
    pub guest: String,
}

/// Parses HOST:GUEST, or HOST alone (the guest path is then the host path made absolute).
pub fn parse_mapping(text: &str) -> Result<PathMapping, String> {
    let (host, guest) = match text.rsplit_once(':') {
        Some((host, guest)) if !host.is_empty() => (host, Some(guest)),
        _ => (text, None),
    };
    let host_path = PathBuf::from(host);
    let guest = match guest {
        Some(guest) => guest.to_owned(),
        None => std::path::absolute(&host_path)
            .map_err(|error| format!("`{host}`: {error}"))?
            .to_string_lossy()
            .into_owned(),
    };
    if !guest.starts_with('/') {
        return Err(format!(
            "`{text}`: the path inside the VM, `{guest}`, must be absolute (start with /)"
        ));
    }
    Ok(PathMapping {
        host: host_path,
        guest,
    })
}

/// `--volume FILE:PATH`: both parts required, PATH absolute.
pub fn parse_volume(text: &str) -> Result<PathMapping, String> {
    match text.rsplit_once(':') {
        Some((file, path)) if !file.is_empty() && path.starts_with('/') && path.len() > 1 => {
            Ok(PathMapping {
                host: PathBuf::from(file),
                guest: path.trim_end_matches('/').to_owned(),
            })
        }
        _ => Err(format!(
            "`{text}`: write it as FILE:PATH, PATH an absolute directory other than / (e.g. data.img:/data)"
        )),
    }
}

/// What `/tmp` is inside the VM (`--tmp`, a manifest's `[image] tmp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmpSetting {
    /// A tmpfs holding at most this much file data.
    Tmpfs(MemorySize),
    /// A directory of `/`, no mount.
    Disk,
}

impl TmpSetting {
    /// The kernel command line's value (`pith.tmp=`): bytes, or `disk`.
    pub fn kernel_value(self) -> String {
        match self {
            TmpSetting::Tmpfs(size) => (size.mebibytes() << 20).to_string(),
            TmpSetting::Disk => "disk".to_string(),
        }
    }

    /// How an image's record and a manifest write it: "64M", or "disk".
    pub fn text(self) -> String {
        match self {
            TmpSetting::Tmpfs(size) => format!("{}M", size.mebibytes()),
            TmpSetting::Disk => "disk".to_string(),
        }
    }
}

/// Checks a `--tmp` value: a size (64M, 1G) or `disk`.
pub fn parse_tmp(text: &str) -> Result<TmpSetting, String> {
    if text.trim() == "disk" {
        return Ok(TmpSetting::Disk);
    }
    parse_memory_size(text)
        .map(TmpSetting::Tmpfs)
        .map_err(|error| format!("{error}; or `disk` for a directory of `/`"))
}

/// `-m`: the guest's memory, a whole number of MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySize {
    mebibytes: u64,
}

impl MemorySize {
    pub fn from_mebibytes(mebibytes: u64) -> Self {
        Self { mebibytes }
    }

    pub fn mebibytes(self) -> u64 {
        self.mebibytes
    }

    /// The value of QEMU's `-m`.
    pub fn qemu_value(self) -> String {
        format!("{}M", self.mebibytes)
    }
}

/// The largest `-m` accepted: 1 TiB, far beyond any host this runs on, and safely inside u64.
const MAX_MEMORY_MEBIBYTES: u64 = 1024 * 1024;

/// Checks one `-m` value: a whole number followed by M (MiB) or G (GiB), e.g. 64M or 1G.
pub fn parse_memory_size(text: &str) -> Result<MemorySize, String> {
    let usage = "write a whole number followed by M or G, e.g. 64M or 1G";
    let trimmed = text.trim();
    let Some(unit) = trimmed.chars().last() else {
        return Err(format!("the size is empty: {usage}"));
    };
    let multiplier = match unit.to_ascii_uppercase() {
        'M' => 1,
        'G' => 1024,
        _ => return Err(format!("`{text}` has no unit: {usage}")),
    };
    let digits = &trimmed[..trimmed.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("`{text}` is not a size: {usage}"));
    }
    let mebibytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(multiplier))
        .filter(|&mebibytes| mebibytes <= MAX_MEMORY_MEBIBYTES)
        .ok_or_else(|| format!("`{text}` is too large: at most 1024G"))?;
    if mebibytes == 0 {
        return Err(format!("`{text}` is no memory at all: {usage}"));
    }
    Ok(MemorySize { mebibytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut argv = vec!["pith", "run"];
        argv.extend_from_slice(words);
        Cli::try_parse_from(argv).and_then(|cli| match cli.command {
            Command::Run(run) => Ok(run),
            Command::Image(_) | Command::Build(_) | Command::Deps(_) | Command::Pkg(_) => {
                Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))
            }
        })
    }

    fn strings(values: &[OsString]) -> Vec<&str> {
        values
            .iter()
            .map(|value| value.to_str().unwrap_or("<non-UTF-8>"))
            .collect()
    }

    #[test]
    fn words_after_the_program_go_to_the_program_even_with_hyphens() {
        let run = parse(&["-v", "./prog", "-v", "--help", "-e", "X", "--", "-m"]).expect("parses");
        assert!(run.verbose);
        assert!(run.env.is_empty());
        assert_eq!(run.program(), "./prog");
        assert_eq!(
            strings(run.program_args()),
            ["-v", "--help", "-e", "X", "--", "-m"]
        );
    }

    #[test]
    fn a_double_dash_right_after_the_program_is_a_separator() {
        let run = parse(&["./prog", "--", "a", "b c"]).expect("parses");
        assert_eq!(run.program(), "./prog");
        assert_eq!(strings(run.program_args()), ["a", "b c"]);

        let run = parse(&["./prog", "--", "--", "a"]).expect("parses");
        assert_eq!(strings(run.program_args()), ["--", "a"]);

        let run = parse(&["./prog", "a", "--", "b"]).expect("parses");
        assert_eq!(strings(run.program_args()), ["a", "--", "b"]);

        let run = parse(&["--", "-prog", "x"]).expect("parses");
        assert_eq!(run.program(), "-prog");
        assert_eq!(strings(run.program_args()), ["x"]);
    }

    #[test]
    fn options_before_the_program_are_ours() {
        let run = parse(&[
            "-e", "A=1", "--env", "B=x=y", "--accel", "tcg", "--trace", "-m", "1G", "--kernel",
            "/k", "--icount", "--qemu", "/q", "prog",
        ])
        .expect("parses");
        assert_eq!(
            run.env,
            [
                EnvVar {
                    key: "A".into(),
                    value: "1".into()
                },
                EnvVar {
                    key: "B".into(),
                    value: "x=y".into()
                }
            ]
        );
        assert_eq!(run.accel, AccelRequest::Tcg);
        assert!(run.trace && run.icount && !run.verbose);
        assert_eq!(run.memory.mebibytes(), 1024);
        assert_eq!(run.kernel, Some(PathBuf::from("/k")));
        assert_eq!(run.qemu, "/q");
        assert_eq!(run.program(), "prog");
        assert!(run.program_args().is_empty());
    }

    #[test]
    fn defaults() {
        let run = parse(&["prog"]).expect("parses");
        assert_eq!(run.accel, AccelRequest::Auto);
        assert_eq!(run.memory.qemu_value(), "256M");
        assert_eq!(run.qemu, "qemu-system-x86_64");
        assert_eq!(run.kernel, None);
        assert!(!run.trace && !run.icount && !run.verbose);
    }

    #[test]
    fn a_program_is_required_and_unknown_options_before_it_are_errors() {
        assert_eq!(
            parse(&[]).expect_err("no program").kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["-x", "prog"]).expect_err("unknown option").kind(),
            clap::error::ErrorKind::UnknownArgument
        );
        assert_eq!(
            parse(&["--accel", "hvf", "prog"])
                .expect_err("bad accel")
                .kind(),
            clap::error::ErrorKind::InvalidValue
        );
    }

    #[test]
    fn env_needs_an_equals_sign_and_a_name() {
        let error = parse(&["-e", "FOO", "prog"]).expect_err("no '='");
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(error.to_string().contains("`FOO` has no '='"), "{error}");

        assert!(parse_env_var("=x").is_err());
        assert_eq!(
            parse_env_var("EMPTY="),
            Ok(EnvVar {
                key: "EMPTY".into(),
                value: String::new()
            })
        );
        assert_eq!(
            parse_env_var("PATH=/bin:/usr/bin").map(|var| var.to_string()),
            Ok("PATH=/bin:/usr/bin".to_owned())
        );
    }

    #[test]
    fn memory_sizes() {
        let mebibytes = |text| parse_memory_size(text).map(MemorySize::mebibytes);
        assert_eq!(mebibytes("64M"), Ok(64));
        assert_eq!(mebibytes("64m"), Ok(64));
        assert_eq!(mebibytes("1G"), Ok(1024));
        assert_eq!(mebibytes("2g"), Ok(2048));
        assert_eq!(mebibytes("1024G"), Ok(1024 * 1024));
        for bad in [
            "",
            "M",
            "64",
            "64K",
            "0M",
            "-1M",
            "1.5G",
            "64MB",
            "1025G",
            "99999999999999999999G",
            "+5M",
        ] {
            assert!(
                parse_memory_size(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert_eq!(MemorySize::from_mebibytes(1024).qemu_value(), "1024M");
    }
}
