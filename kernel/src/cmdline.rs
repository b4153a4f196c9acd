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
