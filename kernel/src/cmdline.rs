//! The kernel command line: launch parameters from the `pith` CLI (docs/design/boot-protocol.md).

use crate::hostlink::LogLevel;

/// What the CLI passed on `-append`.
pub struct LaunchParameters {
    pub tsc_khz: Option<u64>,
    pub realtime_ns: Option<u64>,
    pub trace: bool,
    pub log_level: LogLevel,
    /// The console is a terminal on the host (`pith.tty=1`).
    pub terminal: bool,
    /// The host terminal's size, `pith.winsize=ROWSxCOLS`.
    pub window_size: (u16, u16),
    /// Console input arrives as records (`pith.console=framed`).
    pub framed_console: bool,
    /// Where the disk's ext4 volume is mounted (`pith.volume=/data`), if it is one.
    pub volume: Option<&'static str>,
    /// The disk's ext4 volume is `/` (`pith.root=disk`: an image `pith build` made).
    pub root_on_disk: bool,
    /// `/` is mounted read-only (`pith.root_ro=1`: a manifest's `writable = false`).
    pub root_read_only: bool,
    /// What /tmp is: `pith.tmp=BYTES` (a tmpfs of that size) or `pith.tmp=disk` (a directory
    /// of `/`); None: a tmpfs of half of RAM.
    pub tmp: Option<TmpParameter>,
    /// Report the paths the program looks up in vain (`pith.missing=1`: --missing-files).
    pub missing_files: bool,
    /// Randomize the address space's layout (`pith.aslr=0`: --no-aslr turns it off).
    pub aslr: bool,
    /// The network's addressing: `pith.net=ADDRESS/PREFIX,GATEWAY,DNS` (the last two may be
    /// empty).
    pub net: Option<pith_syscalls::inet::NetConfig>,
    /// The virtio-mmio transports QEMU listed (`virtio_mmio.device=512@BASE:GSI`), as
    /// (base, interrupt line); `virtio_mmio_count` of them.
    virtio_mmio: [(u64, u32); 24],
    virtio_mmio_count: usize,
}

impl LaunchParameters {
    /// The virtio-mmio transports QEMU put on the command line, as (base, interrupt line).
    pub fn virtio_mmio(&self) -> &[(u64, u32)] {
        &self.virtio_mmio[..self.virtio_mmio_count]
    }
}

/// Parses `ADDRESS/PREFIX,GATEWAY,DNS` (pith.net's value).
fn parse_net(value: &str) -> Option<pith_syscalls::inet::NetConfig> {
    use core::net::Ipv4Addr;
    let mut parts = value.split(',');
    let (address, prefix) = parts.next()?.split_once('/')?;
    let prefix_len: u8 = prefix.parse().ok().filter(|&prefix| prefix <= 32)?;
    let optional = |part: Option<&str>| part.and_then(|text| text.parse::<Ipv4Addr>().ok());
    Some(pith_syscalls::inet::NetConfig {
        address: address.parse().ok()?,
        prefix_len,
        gateway: optional(parts.next()),
        dns: optional(parts.next()),
    })
}

/// Parses `512@0xfeb00e00:12` (a virtio_mmio.device= value) into (base, interrupt line).
fn parse_virtio_mmio(value: &str) -> Option<(u64, u32)> {
    let (_, place) = value.split_once('@')?;
    let (base, line) = place.split_once(':')?;
    let base = u64::from_str_radix(base.strip_prefix("0x")?, 16).ok()?;
    Some((base, line.parse().ok()?))
}

/// `pith.tmp=`'s value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmpParameter {
    Bytes(u64),
    Disk,
}

pub fn parse(line: &'static str) -> LaunchParameters {
    let mut parameters = LaunchParameters {
        tsc_khz: None,
        realtime_ns: None,
        trace: false,
        log_level: LogLevel::Warn,
        terminal: false,
        window_size: (24, 80),
        framed_console: false,
        volume: None,
        root_on_disk: false,
        root_read_only: false,
        tmp: None,
        missing_files: false,
        aslr: true,
        net: None,
        virtio_mmio: [(0, 0); 24],
        virtio_mmio_count: 0,
    };
    for word in line.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "pith.tsc_khz" => parameters.tsc_khz = value.parse().ok().filter(|&khz| khz > 0),
            "pith.realtime_ns" => parameters.realtime_ns = value.parse().ok(),
            "pith.trace" => parameters.trace = value == "1",
            "pith.tty" => parameters.terminal = value == "1",
            "pith.console" => parameters.framed_console = value == "framed",
            "pith.volume" if value.starts_with('/') => parameters.volume = Some(value),
            "pith.root" => parameters.root_on_disk = value == "disk",
            "pith.root_ro" => parameters.root_read_only = value == "1",
            "pith.missing" => parameters.missing_files = value == "1",
            "pith.aslr" => parameters.aslr = value != "0",
            "pith.net" => parameters.net = parse_net(value),
            "virtio_mmio.device" => {
                if let Some(device) = parse_virtio_mmio(value) {
                    if parameters.virtio_mmio_count < parameters.virtio_mmio.len() {
                        parameters.virtio_mmio[parameters.virtio_mmio_count] = device;
                        parameters.virtio_mmio_count += 1;
                    }
                }
            }
            "pith.tmp" => {
                parameters.tmp = match value {
                    "disk" => Some(TmpParameter::Disk),
                    bytes => bytes.parse().ok().map(TmpParameter::Bytes),
                }
            }
            "pith.winsize" => {
                if let Some((rows, columns)) = value.split_once('x') {
                    if let (Ok(rows), Ok(columns)) = (rows.parse(), columns.parse()) {
                        parameters.window_size = (rows, columns);
                    }
                }
            }
            "pith.log" => {
                parameters.log_level = match value {
                    "error" => LogLevel::Error,
                    "info" => LogLevel::Info,
                    "debug" => LogLevel::Debug,
                    _ => LogLevel::Warn,
                }
            }
            _ => {}
        }
    }
    parameters
}
