//! A fake machine for unit tests: page-granular app memory, console buffers, fixed clocks.

use crate::errno::Errno;
use crate::mm::AddressSpace;
use crate::platform::{
    ConsoleStream, Context, LogLevel, MachineClock, Platform, Protection, WakeOn,
};
use crate::process::Process;
use std::collections::BTreeMap;
use std::fmt;

const PAGE: u64 = 4096;
/// Where `scratch` hands out test buffers; far from where mmap places things.
const SCRATCH_BASE: u64 = 0x5000_0000;

#[derive(Default)]
pub struct FakePlatform {
    pages: BTreeMap<u64, (Vec<u8>, Protection)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    input: Vec<u8>,
    pub input_open: bool,
    pub host_signals: u64,
    terminal: bool,
    monotonic: u64,
    realtime: u64,
    /// Nanoseconds spent in wait_until: CPU time is monotonic time less this.
    idle: u64,
    fs_base: u64,
    pub user_rsp: u64,
    pub signal_changes: u32,
    pub alarm: Option<u64>,
    random_state: u64,
    logs: Vec<String>,
    traces: Vec<String>,
    /// Threads started: (tid, stack, tls).
    pub spawned: Vec<(i32, Option<u64>, Option<u64>)>,
    /// Threads a futex wake made runnable, in order.
    pub woken: Vec<i32>,
    /// The app pages `lend_pages` showed a file's page at, in order.
    pub lent: Vec<u64>,
    pub wake_alls: u32,
    /// A network device that completes checksums both ways and cuts TCP segments over IPv4
    /// and IPv6 (QEMU's virtio-net on a tap); what it is given to send is kept in
    /// `device_sent`.
    pub offloading_device: bool,
    /// The frames that device gives the stack, when asked (oldest first).
    pub device_incoming: alloc::collections::VecDeque<Vec<u8>>,
    /// The frames given to that device, in order.
    pub device_sent: Vec<Vec<u8>>,
    /// Free RAM pages `ram_pages` reports instead of its own count, if set.
    pub free_ram_pages: Option<u64>,
}

impl FakePlatform {
    fn page_mut(&mut self, address: u64) -> Option<&mut (Vec<u8>, Protection)> {
        self.pages.get_mut(&(address & !(PAGE - 1)))
    }
}

impl Platform for FakePlatform {
    fn net_mac(&self) -> Option<[u8; 6]> {
        self.offloading_device
            .then_some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
    }
    fn net_checksum_offload(&self) -> crate::platform::ChecksumOffload {
        crate::platform::ChecksumOffload {
            transmit: self.offloading_device,
            receive: self.offloading_device,
        }
    }
    fn net_segmentation_offload(&self) -> crate::platform::SegmentationOffload {
        crate::platform::SegmentationOffload {
            tcpv4: self.offloading_device,
            tcpv6: self.offloading_device,
        }
    }
    fn net_can_transmit(&mut self) -> bool {
        self.offloading_device
    }
    fn net_transmit(
        &mut self,
        frame: Vec<u8>,
        _checksum: Option<crate::platform::PartialChecksum>,
        _segmentation: Option<crate::platform::TcpSegmentation>,
    ) {
        self.device_sent.push(frame);
    }
    /// As the device: true if frames wait (they raised no interrupt).
    fn net_arm_interrupt(&mut self) -> bool {
        !self.device_incoming.is_empty()
    }
    fn net_receive(&mut self, buffer: &mut [u8]) -> Option<crate::platform::ReceivedFrame> {
        let frame = self.device_incoming.pop_front()?;
        let len = frame.len().min(buffer.len());
        buffer[..len].copy_from_slice(&frame[..len]);
        Some(crate::platform::ReceivedFrame {
            len,
            checksum: crate::platform::FrameChecksum::Trusted,
        })
    }
    fn read_user(&self, address: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        for (offset, byte) in buffer.iter_mut().enumerate() {
            let at = address.checked_add(offset as u64).ok_or(Errno::EFAULT)?;
            let (page, protection) = self.pages.get(&(at & !(PAGE - 1))).ok_or(Errno::EFAULT)?;
            if !protection.read {
                return Err(Errno::EFAULT);
            }
            *byte = page[(at % PAGE) as usize];
        }
        Ok(())
    }
    fn write_user(&mut self, address: u64, data: &[u8]) -> Result<(), Errno> {
        for (offset, byte) in data.iter().enumerate() {
            let at = address.checked_add(offset as u64).ok_or(Errno::EFAULT)?;
            let (page, protection) = self.page_mut(at).ok_or(Errno::EFAULT)?;
            if !protection.write {
                return Err(Errno::EFAULT);
            }
            page[(at % PAGE) as usize] = *byte;
        }
        Ok(())
    }
    fn console_write(&mut self, stream: ConsoleStream, data: &[u8]) {
        match stream {
            ConsoleStream::Output => self.stdout.extend_from_slice(data),
            ConsoleStream::Error => self.stderr.extend_from_slice(data),
        }
    }
    fn console_read(&mut self, buffer: &mut [u8], nonblocking: bool) -> Option<usize> {
        // The fake's input is all there is: it ends where the bytes end, unless `input_open`.
        if self.input.is_empty() && self.input_open && nonblocking {
            return None;
        }
        let count = buffer.len().min(self.input.len());
        buffer[..count].copy_from_slice(&self.input[..count]);
        self.input.drain(..count);
        Some(count)
    }
    fn take_host_signals(&mut self) -> u64 {
        core::mem::take(&mut self.host_signals)
    }
    fn console_input_ended(&mut self) -> bool {
        !self.input_open && self.input.is_empty()
    }
    fn console_available(&mut self) -> usize {
        self.input.len()
    }
    fn console_is_terminal(&self) -> bool {
        self.terminal
    }
    fn console_window_size(&self) -> (u16, u16) {
        (24, 80)
    }
    fn map_anonymous(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno> {
        for page in (start..start + len).step_by(PAGE as usize) {
            self.pages
                .insert(page, (vec![0; PAGE as usize], protection));
        }
        Ok(())
    }
    fn populate(&mut self, _start: u64, _len: u64) -> Result<(), Errno> {
        Ok(()) // the fake backs everything eagerly
    }
    fn lend_pages(&mut self, address: u64, pages: &'static [u8]) -> u64 {
        // The fake copies (its pages are its own); it notes where a kernel would lend.
        let mut lent = 0;
        for page in pages.chunks_exact(4096) {
            let Some(entry) = self.page_mut(address + lent) else {
                break;
            };
            entry.0.copy_from_slice(page);
            self.lent.push(address + lent);
            lent += 4096;
        }
        lent
    }
    fn discard(&mut self, start: u64, len: u64) {
        for page in (start..start + len).step_by(PAGE as usize) {
            if let Some(entry) = self.pages.get_mut(&page) {
                entry.0.fill(0);
            }
        }
    }
    fn move_pages(
        &mut self,
        from: u64,
        to: u64,
        len: u64,
        protection: Protection,
    ) -> Result<(), Errno> {
        for offset in (0..len).step_by(PAGE as usize) {
            let page = self
                .pages
                .remove(&(from + offset))
                .map(|(bytes, _)| bytes)
                .unwrap_or_else(|| vec![0; PAGE as usize]);
            self.pages.insert(to + offset, (page, protection));
        }
        Ok(())
    }
    fn resident_pages(&mut self) -> u64 {
        self.pages.len() as u64
    }
    fn ram_pages(&mut self) -> (u64, u64) {
        // A 256 MiB machine.
        let free = self
            .free_ram_pages
            .unwrap_or(65536 - self.pages.len() as u64);
        (65536, free)
    }
    fn peak_resident_pages(&mut self) -> u64 {
        self.pages.len() as u64 // the fake keeps no history: its peak is now
    }
    fn residency(&mut self, start: u64, out: &mut [u8]) {
        for (index, byte) in out.iter_mut().enumerate() {
            *byte = self.pages.contains_key(&(start + index as u64 * PAGE)) as u8;
        }
    }
    fn unmap(&mut self, start: u64, len: u64) {
        for page in (start..start + len).step_by(PAGE as usize) {
            self.pages.remove(&page);
        }
    }
    fn protect(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno> {
        for page in (start..start + len).step_by(PAGE as usize) {
            if let Some(entry) = self.pages.get_mut(&page) {
                entry.1 = protection;
            }
        }
        Ok(())
    }
    fn now(&self, clock: MachineClock) -> u64 {
        match clock {
            MachineClock::Monotonic => self.monotonic,
            MachineClock::Realtime => self.realtime,
            MachineClock::CpuTime | MachineClock::ThreadCpuTime(_) => {
                self.monotonic.saturating_sub(self.idle)
            }
        }
    }
    fn wait_until(&mut self, _process: &mut Process, deadline: u64, _wake_on: WakeOn) {
        // The fake's time jumps to the deadline: sleeping takes no real time in tests, and
        // no CPU time.
        self.idle += deadline.saturating_sub(self.monotonic);
        self.monotonic = self.monotonic.max(deadline);
        self.realtime = self.realtime.max(self.monotonic);
    }
    fn yield_now(&mut self, _process: &mut Process) {}
    fn spawn_thread(
        &mut self,
        tid: i32,
        stack: Option<u64>,
        tls: Option<u64>,
    ) -> Result<(), Errno> {
        self.spawned.push((tid, stack, tls));
        Ok(())
    }
    fn wake_thread(&mut self, tid: i32) {
        self.woken.push(tid);
    }
    fn wake_all(&mut self) {
        self.wake_alls += 1;
    }
    fn exit_thread(&mut self, process: &mut Process) -> ! {
        panic!("thread {} exits", process.threads.current)
    }
    fn set_alarm(&mut self, deadline: Option<u64>) {
        self.alarm = deadline;
    }
    fn fill_random(&mut self, buffer: &mut [u8]) -> Result<(), Errno> {
        for byte in buffer {
            self.random_state = self
                .random_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *byte = (self.random_state >> 56) as u8;
        }
        Ok(())
    }
    fn signal_state_changed(&mut self) {
        self.signal_changes += 1;
    }
    fn user_stack_pointer(&self) -> u64 {
        self.user_rsp
    }
    fn set_fs_base(&mut self, base: u64) {
        self.fs_base = base;
    }
    fn fs_base(&self) -> u64 {
        self.fs_base
    }
    fn exit(&mut self, status: i32) -> ! {
        panic!("exit {status}")
    }
    fn log(&mut self, _level: LogLevel, message: fmt::Arguments) {
        self.logs.push(message.to_string());
    }
    fn trace(&mut self, line: &str) {
        self.traces.push(line.to_string());
    }
}

/// A process on a fake platform, driven by raw syscall numbers as an app would.
pub struct TestMachine {
    pub platform: FakePlatform,
    pub process: Process,
    next_scratch: u64,
}

impl TestMachine {
    pub fn new() -> TestMachine {
        let memory = AddressSpace::new(0x7000_0000_0000, 0x60_0000);
        TestMachine {
            platform: FakePlatform::default(),
            process: Process::new(
                b"/hello".to_vec(),
                memory,
                64 << 20,
                crate::files::TmpMount::Tmpfs(64 << 20),
                pith_fs::Timestamp::default(),
            ),
            next_scratch: SCRATCH_BASE,
        }
    }

    /// Runs a syscall; Err holds the errno the app would see.
    pub fn call(&mut self, number: u64, args: [u64; 6]) -> Result<u64, Errno> {
        let mut context = Context {
            platform: &mut self.platform,
            process: &mut self.process,
        };
        let value = crate::table::dispatch(&mut context, number, &args);
        match Errno::from_return(value) {
            Some(errno) => Err(errno),
            None => Ok(value),
        }
    }

    /// A fresh read-write buffer of `len` bytes in app memory.
    pub fn scratch(&mut self, len: usize) -> u64 {
        let address = self.next_scratch;
        let pages = (len as u64).div_ceil(PAGE).max(1);
        self.platform
            .map_anonymous(
                address,
                pages * PAGE,
                Protection {
                    read: true,
                    write: true,
                    execute: false,
                },
            )
            .unwrap();
        self.next_scratch += (pages + 1) * PAGE; // a guard page between buffers
        address
    }

    /// Copies `bytes` into a fresh buffer and returns its address.
    pub fn put(&mut self, bytes: &[u8]) -> u64 {
        let address = self.scratch(bytes.len());
        self.platform.write_user(address, bytes).unwrap();
        address
    }

    pub fn memory_at(&self, address: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.platform.read_user(address, &mut bytes).unwrap();
        bytes
    }
    pub fn read_u64(&self, address: u64) -> u64 {
        u64::from_le_bytes(self.memory_at(address, 8).try_into().unwrap())
    }
    pub fn write_bytes(&mut self, address: u64, bytes: &[u8]) {
        self.platform.write_user(address, bytes).unwrap();
    }
    pub fn write_u64(&mut self, address: u64, value: u64) {
        self.platform
            .write_user(address, &value.to_le_bytes())
            .unwrap();
    }
    pub fn is_backed(&self, address: u64, len: u64) -> bool {
        (address & !(PAGE - 1)..address + len)
            .step_by(PAGE as usize)
            .all(|page| self.platform.pages.contains_key(&page))
    }
    /// The fake's resident set in kB, as status should report it.
    pub fn platform_resident_kb(&self) -> u64 {
        self.platform.pages.len() as u64 * 4
    }
    pub fn stdout(&self) -> &[u8] {
        &self.platform.stdout
    }
    pub fn stderr(&self) -> &[u8] {
        &self.platform.stderr
    }
    pub fn set_input(&mut self, bytes: &[u8]) {
        self.platform.input = bytes.to_vec();
    }
    pub fn set_terminal(&mut self, terminal: bool) {
        self.platform.terminal = terminal;
    }
    pub fn set_clocks(&mut self, monotonic: u64, realtime: u64) {
        self.platform.monotonic = monotonic;
        self.platform.realtime = realtime;
        self.platform.idle = 0;
    }
    pub fn set_trace(&mut self, trace: bool) {
        self.process.trace = trace;
    }
    pub fn logs(&self) -> &[String] {
        &self.platform.logs
    }
    pub fn traces(&self) -> &[String] {
        &self.platform.traces
    }
}
