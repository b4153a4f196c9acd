//! What the syscall layer needs from the machine, and checked access to the app's memory.

use crate::errno::Errno;
use alloc::vec::Vec;
use core::fmt;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Which console stream a write goes to: the host shows fd 2 separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsoleStream {
    Output,
    Error,
}

/// Page protections, as mmap(2)'s PROT_* bits decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Protection {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

/// The clocks the machine keeps; the others are derived from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineClock {
    /// Nanoseconds since boot; never goes back.
    Monotonic,
    /// Nanoseconds since the Unix epoch.
    Realtime,
    /// Nanoseconds the program has run since it started: time not spent halted waiting for a
    /// deadline or input (the process's CPU-time clock: one CPU runs all its threads).
    CpuTime,
    /// Nanoseconds thread `tid` has run (its CPU-time clock).
    ThreadCpuTime(i32),
}

/// What, besides its deadline, ends a thread's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeOn {
    /// Any interrupt (console input, a timer) or signal: the waiter looks at what it waits
    /// for (poll, sleeps, sigtimedwait, console reads).
    AnyEvent,
    /// Only `wake_thread` or a signal (futex waits).
    Wake,
}

/// The checksum work a network device takes on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumOffload {
    /// It completes a sent frame's TCP/UDP checksum from the pseudo-header's sum
    /// (`PartialChecksum`).
    pub transmit: bool,
    /// It marks received frames whose checksum needs no check (`FrameChecksum::Trusted`).
    pub receive: bool,
}

/// A partial checksum for the device to complete: it sums the frame from `start` to its end
/// (the field at `start + offset` holds the pseudo-header's sum) and stores the sum there,
/// as Linux's CHECKSUM_PARTIAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    pub start: u16,
    pub offset: u16,
}

/// The TCP segmentation a network device takes on (TSO: virtio-net's HOST_TSO4/6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentationOffload {
    /// It cuts a large TCP segment over IPv4 into segments of a given size
    /// (`TcpSegmentation`).
    pub tcpv4: bool,
    /// The same over IPv6.
    pub tcpv6: bool,
}

/// A TCP segment larger than the link takes, for the device to cut (Linux's GSO): each
/// segment it sends carries `segment_size` bytes of the payload behind a copy of the frame's
/// first `headers_len` bytes (Ethernet, IP and TCP headers), with lengths, sequence numbers
/// and checksums made right. Always with a `PartialChecksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegmentation {
    pub segment_size: u16,
    pub headers_len: u16,
    pub ipv6: bool,
}

/// How much of a frame `Platform::net_frame` gives is zeroed: room for the longest headers
/// (Ethernet 14, IPv6 40, TCP 60), whose padding smoltcp leaves as it finds it.
pub const FRAME_HEADERS_ZEROED: usize = 128;

/// What the device says of a received frame's TCP/UDP checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameChecksum {
    /// Nothing: the stack checks it.
    Unchecked,
    /// The device checked it, or the frame comes from a sender on the same host that left
    /// the checksum to the hardware (its field holds only the pseudo-header's sum).
    Trusted,
}

/// A frame `net_receive` took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedFrame {
    pub len: usize,
    pub checksum: FrameChecksum,
}

/// The interrupts the CPU has taken since boot, for /proc/interrupts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterruptCounts {
    /// The local APIC's timer (Linux's LOC line).
    pub timer: u64,
    /// The network device's, and its interrupt line (None: it raises none).
    pub network: u64,
    pub network_line: Option<u32>,
    /// The serial console's (input).
    pub serial: u64,
}

/// What /proc/cpuinfo says of the CPU (from CPUID).
#[derive(Clone, Debug, Default)]
pub struct CpuIdentity {
    pub vendor: alloc::string::String,
    pub brand: alloc::string::String,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    pub max_leaf: u32,
    /// The TSC's frequency in kHz (cpu MHz).
    pub khz: u64,
    /// Linux's names of the feature flags, space-separated.
    pub flags: alloc::string::String,
}

/// Severity of a kernel log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// The machine under the syscall layer. The kernel implements it; tests use a fake.
pub trait Platform {
    /// Copies `buffer.len()` bytes of app memory from `address`: EFAULT unless every byte is
    /// mapped, readable app memory.
    fn read_user(&self, address: u64, buffer: &mut [u8]) -> Result<(), Errno>;
    /// Copies `data` into app memory at `address`: EFAULT unless every byte is mapped and
    /// writable app memory.
    fn write_user(&mut self, address: u64, data: &[u8]) -> Result<(), Errno>;
    /// Reads the app's pages at `address` whatever their protection, as the kernel reads a
    /// shared file mapping's pages: only pages that have a frame; false where one has none
    /// (that part of `buffer` is left as it is).
    fn peek_mapping(&self, address: u64, buffer: &mut [u8]) -> bool {
        self.read_user(address, buffer).is_ok()
    }
    /// Writes the app's pages at `address` whatever their protection (a write(2) to a file
    /// reaching its shared mapping); pages without a frame are skipped.
    fn poke_mapping(&mut self, address: u64, data: &[u8]) {
        let _ = self.write_user(address, data);
    }
    /// Whether the program has stored to the page at `address` since `forget_stores` (the
    /// page table's dirty bit): a private file mapping's page it has not written still shows
    /// the file. A platform that cannot tell says true (the page is left alone).
    fn page_stored_to(&self, _address: u64) -> bool {
        true
    }
    /// Forgets the stores to [start, start + len) (after the kernel filled the pages).
    fn forget_stores(&mut self, _start: u64, _len: u64) {}

    fn console_write(&mut self, stream: ConsoleStream, data: &[u8]);
    /// Reads console input: at least one byte, or 0 at end of input. Blocks for it, or with
    /// `nonblocking` returns None when nothing is waiting.
    fn console_read(&mut self, buffer: &mut [u8], nonblocking: bool) -> Option<usize>;
    /// Signals the host asked for (Ctrl-C at `pith run` is SIGTERM), one bit each, taken.
    fn take_host_signals(&mut self) -> u64;
    /// Whether console input has ended (the host's stdin reached its end).
    fn console_input_ended(&mut self) -> bool;
    /// How many bytes of console input are waiting (FIONREAD).
    fn console_available(&mut self) -> usize;
    /// Whether the console is a terminal on the host (isatty on the user's side).
    fn console_is_terminal(&self) -> bool;
    /// The host terminal's size as (rows, columns), when it is a terminal.
    fn console_window_size(&self) -> (u16, u16);

    /// Backs [start, start + len) with zeroed memory of the given protection.
    fn map_anonymous(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno>;
    /// Backs [start, start + len) now rather than on first touch (MAP_POPULATE).
    fn populate(&mut self, start: u64, len: u64) -> Result<(), Errno>;
    /// Drops the contents of [start, start + len) but keeps it mapped: it reads back as zero
    /// (MADV_DONTNEED), and its memory goes back to the machine.
    fn discard(&mut self, start: u64, len: u64);
    /// Shows the memory of [source, source + len) at [target, target + len) too (an area
    /// already), so a store through either is seen through both: two MAP_SHARED mappings of
    /// one file's pages. What the target held is dropped. A platform that cannot share pages
    /// says ENOSYS, and the caller keeps copies instead.
    fn share_pages(&mut self, _source: u64, _target: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// Shows `pages`, whole pages of a file that live as long as the VM, from `address` on
    /// (pages of one area of a private file mapping) without copying them: a store by the
    /// program then copies a page first (copy on write), and nothing else ever writes them.
    /// Returns how many bytes from the start it showed (whole pages; 0 when the platform
    /// cannot): the caller copies the rest in.
    fn lend_pages(&mut self, _address: u64, _pages: &'static [u8]) -> u64 {
        0
    }
    /// Moves the pages of [from, from + len) to [to, to + len), contents and all, leaving the
    /// old range unmapped; the new range was free. (mremap)
    fn move_pages(
        &mut self,
        from: u64,
        to: u64,
        len: u64,
        protection: Protection,
    ) -> Result<(), Errno>;
    /// How many pages of the program's memory are in memory (its resident set).
    fn resident_pages(&mut self) -> u64;
    /// The most pages the program has had in memory at once (VmHWM, ru_maxrss).
    fn peak_resident_pages(&mut self) -> u64;
    /// The RAM pages the allocator manages, and how many of them are free now.
    fn ram_pages(&mut self) -> (u64, u64);
    /// Whether each page of [start, start + len) is in memory: one byte per page, bit 0.
    fn residency(&mut self, start: u64, out: &mut [u8]);
    /// Drops the memory of [start, start + len); unmapped pages in the range are fine.
    fn unmap(&mut self, start: u64, len: u64);
    /// Changes the protection of [start, start + len), keeping the contents.
    fn protect(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno>;

    fn now(&self, clock: MachineClock) -> u64;
    /// Waits until the monotonic time `deadline`, or less: the caller looks again at what it
    /// waits for when this returns. Other threads run meanwhile, and may change `process`:
    /// the running thread's state in it is swapped out and back in around the wait.
    fn wait_until(&mut self, process: &mut crate::process::Process, deadline: u64, wake_on: WakeOn);
    /// Lets another runnable thread run (sched_yield); returns when this one runs again.
    fn yield_now(&mut self, process: &mut crate::process::Process);
    /// Starts thread `tid` as a copy of the running thread at this syscall (clone), returning
    /// 0 there, on `stack` (or the parent's stack pointer), with `tls` as its FS base (or the
    /// parent's). The syscall layer has made its state; ENOMEM without memory for it.
    fn spawn_thread(&mut self, tid: i32, stack: Option<u64>, tls: Option<u64>)
        -> Result<(), Errno>;
    /// Makes thread `tid`, waiting with `WakeOn::Wake`, runnable (a futex wake).
    fn wake_thread(&mut self, tid: i32);
    /// Makes every waiting thread look again (a signal was raised for the process).
    fn wake_all(&mut self);
    /// Makes the threads waiting with `WakeOn::AnyEvent` look again (frames came: those
    /// waiting on sockets may have something), leaving futex waiters be.
    fn wake_event_waiters(&mut self) {
        self.wake_all();
    }
    /// Ends the running thread (not the last: exit_group ends the program) and runs another.
    fn exit_thread(&mut self, process: &mut crate::process::Process) -> !;
    /// Arms the machine's timer for the process's next timer deadline (monotonic), or
    /// disarms it: no timer interrupt comes when nothing is due.
    fn set_alarm(&mut self, deadline: Option<u64>);
    /// The disk's size in bytes (/dev/vda), or None without a disk.
    fn disk_size(&self) -> Option<u64> {
        None
    }
    /// Reads whole 512-byte sectors from `sector` into `buffer`: EIO if the device fails.
    fn disk_read(&mut self, _sector: u64, _buffer: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENXIO)
    }
    /// Writes whole 512-byte sectors at `sector`.
    fn disk_write(&mut self, _sector: u64, _data: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENXIO)
    }
    /// Makes the disk's earlier writes durable (a FLUSH).
    fn disk_flush(&mut self) -> Result<(), Errno> {
        Err(Errno::ENXIO)
    }
    /// The network device's MAC address, or None without one.
    fn net_mac(&self) -> Option<[u8; 6]> {
        None
    }
    /// The checksum work the network device takes on (virtio-net's CSUM and GUEST_CSUM).
    fn net_checksum_offload(&self) -> ChecksumOffload {
        ChecksumOffload::default()
    }
    /// Takes one received Ethernet frame into `buffer` (room for MTU + 14 bytes): its length
    /// and what the device says of its checksum, or None when nothing waits.
    fn net_receive(&mut self, _buffer: &mut [u8]) -> Option<ReceivedFrame> {
        None
    }
    /// Whether the network device raises no interrupt for what it receives (then a wait for
    /// the network must end now and then to look).
    fn net_polled(&self) -> bool {
        false
    }
    /// About to wait for the network: the device interrupts for the next frame it receives
    /// (it does not while the stack polls it). True if frames are already waiting: the
    /// caller takes them instead of waiting.
    fn net_arm_interrupt(&mut self) -> bool {
        false
    }
    /// Whether the device has room to queue a frame now.
    fn net_can_transmit(&mut self) -> bool {
        false
    }
    /// A buffer of `len` bytes for a frame to send (then given to `net_transmit`): the
    /// platform may hand back one the device is done with. Its first
    /// `FRAME_HEADERS_ZEROED` bytes are zero; the rest may hold an earlier frame's bytes, which
    /// the stack overwrites (it writes every byte past its headers).
    fn net_frame(&mut self, len: usize) -> Vec<u8> {
        alloc::vec![0; len]
    }
    /// The TCP segmentation the network device takes on (virtio-net's HOST_TSO4/6).
    fn net_segmentation_offload(&self) -> SegmentationOffload {
        SegmentationOffload::default()
    }
    /// Queues one Ethernet frame for sending (dropped if the device has no room: the
    /// caller asked `net_can_transmit` first); the device may read it where it is, so the
    /// platform takes it. It may wait for `net_flush`. With `checksum`, the device
    /// completes the frame's TCP or UDP checksum (only when `net_checksum_offload` says it
    /// can); with `segmentation`, it cuts the frame's TCP segment (only when
    /// `net_segmentation_offload` says it can).
    fn net_transmit(
        &mut self,
        _frame: Vec<u8>,
        _checksum: Option<PartialChecksum>,
        _segmentation: Option<TcpSegmentation>,
    ) {
    }
    /// The stack's burst is over: the device sends what was queued (the platform may hold
    /// the notification briefly to cover several bursts with one; the kernel does).
    fn net_flush(&mut self) {}
    /// The CPU's identity, for /proc/cpuinfo.
    fn cpu_identity(&self) -> CpuIdentity {
        CpuIdentity::default()
    }
    /// The interrupts taken since boot, for /proc/interrupts.
    fn interrupt_counts(&self) -> InterruptCounts {
        InterruptCounts::default()
    }
    /// Fills `buffer` from the CPU's random number generator.
    fn fill_random(&mut self, buffer: &mut [u8]) -> Result<(), Errno>;

    /// Says that this syscall changed what signals can be delivered (or asked for
    /// rt_sigreturn): the way out of it must look. Only such syscalls pay for that check.
    fn signal_state_changed(&mut self);
    /// The app's stack pointer at the syscall being handled.
    fn user_stack_pointer(&self) -> u64;

    fn set_fs_base(&mut self, base: u64);
    fn fs_base(&self) -> u64;

    /// Ends the program with `status` (what `pith run` exits with) and stops the machine.
    fn exit(&mut self, status: i32) -> !;
    fn log(&mut self, level: LogLevel, message: fmt::Arguments);
    /// Sends one `--trace` line to the host.
    fn trace(&mut self, line: &str);
}

/// What a handler works with: the machine and the process's state.
pub struct Context<'a> {
    pub platform: &'a mut dyn Platform,
    pub process: &'a mut crate::process::Process,
}

impl Context<'_> {
    /// Reads a plain-old-data ABI struct from app memory.
    pub fn read_struct<T: FromBytes + IntoBytes>(&self, address: u64) -> Result<T, Errno> {
        let mut value = T::new_zeroed();
        self.platform.read_user(address, value.as_mut_bytes())?;
        Ok(value)
    }

    /// Writes a plain-old-data ABI struct into app memory.
    pub fn write_struct<T: IntoBytes + Immutable>(
        &mut self,
        address: u64,
        value: &T,
    ) -> Result<(), Errno> {
        self.platform.write_user(address, value.as_bytes())
    }

    /// Reads `len` bytes of app memory.
    pub fn read_bytes(&self, address: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut bytes = alloc::vec![0; len];
        self.platform.read_user(address, &mut bytes)?;
        Ok(bytes)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL): ENAMETOOLONG
    /// when longer, EFAULT when it runs into unmapped memory.
    pub fn read_c_string(&self, address: u64, max: usize) -> Result<Vec<u8>, Errno> {
        read_c_string(&*self.platform, address, max)
    }
}

/// PATH_MAX from include/uapi/linux/limits.h.
pub const PATH_MAX: usize = 4096;

pub fn read_c_string(platform: &dyn Platform, address: u64, max: usize) -> Result<Vec<u8>, Errno> {
    // A few hundred bytes at a time, never past a page's end (the string may end just before
    // an unmapped page): most paths are short, and a page's worth per call (zeroed, copied
    // and scanned) was most of what an open or stat cost beside the file system.
    const CHUNK: usize = 256;
    let mut result = Vec::new();
    let mut cursor = address;
    let mut buffer = [0u8; CHUNK];
    while result.len() <= max {
        let to_page_end = 4096 - (cursor % 4096) as usize;
        let chunk = &mut buffer[..to_page_end.min(CHUNK)];
        platform.read_user(cursor, chunk)?;
        if let Some(nul) = chunk.iter().position(|&byte| byte == 0) {
            result.extend_from_slice(&chunk[..nul]);
            return if result.len() > max {
                Err(Errno::ENAMETOOLONG)
            } else {
                Ok(result)
            };
        }
        result.extend_from_slice(chunk);
        cursor = cursor
            .checked_add(chunk.len() as u64)
            .ok_or(Errno::EFAULT)?;
    }
    Err(Errno::ENAMETOOLONG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn a_c_string_is_read_to_its_nul_across_chunks_and_up_to_an_unmapped_page() {
        let mut machine = TestMachine::new();
        // 300 bytes: more than one read's worth.
        let long: Vec<u8> = (0..300).map(|at| b'a' + (at % 26) as u8).collect();
        let mut with_nul = long.clone();
        with_nul.push(0);
        let address = machine.put(&with_nul);
        assert_eq!(
            read_c_string(&machine.platform, address, PATH_MAX),
            Ok(long)
        );
        // Its NUL the last byte of a page an unmapped one follows.
        let page = machine.scratch(4096);
        let name = b"/ends/at/the/page";
        let at = page + 4096 - name.len() as u64 - 1;
        machine.write_bytes(at, name);
        machine.write_bytes(page + 4095, &[0]);
        assert_eq!(
            read_c_string(&machine.platform, at, PATH_MAX),
            Ok(name.to_vec())
        );
        // No NUL before the unmapped page: EFAULT.
        machine.write_bytes(page + 4095, b"x");
        assert_eq!(
            read_c_string(&machine.platform, at, PATH_MAX),
            Err(Errno::EFAULT)
        );
        // Longer than `max`: ENAMETOOLONG, with or without a NUL further on.
        assert_eq!(
            read_c_string(&machine.platform, address, 299),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(
            read_c_string(&machine.platform, address, 300).map(|bytes| bytes.len()),
            Ok(300)
        );
    }

    #[test]
    fn a_path_of_path_max_bytes_is_too_long_one_less_is_looked_for() {
        let mut machine = TestMachine::new();
        let mut path = vec![b'/'; PATH_MAX - 1];
        path.push(0);
        let slashes = machine.put(&path);
        assert_eq!(
            machine.call(21, [slashes, 0, 0, 0, 0, 0]),
            Ok(0),
            "4,095 bytes: /"
        ); // access
        let mut path = vec![b'/'; PATH_MAX];
        path.push(0);
        let long = machine.put(&path);
        assert_eq!(
            machine.call(21, [long, 0, 0, 0, 0, 0]),
            Err(Errno::ENAMETOOLONG)
        );
    }
}
