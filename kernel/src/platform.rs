//! The machine under the syscall layer: `pith_syscalls::Platform` on real hardware.

use crate::cmdline::LaunchParameters;
use crate::hostlink::{self, RecordKind};
use crate::memory::PAGE_SIZE;
use crate::paging::{self, MapError};
use core::fmt;
use pith_syscalls::platform::{ConsoleStream, LogLevel, MachineClock, Protection, WakeOn};
use pith_syscalls::{Errno, Platform, Process};
use x86_64::registers::model_specific::FsBase;
use x86_64::VirtAddr;

pub struct KernelPlatform {
    terminal: bool,
    window_size: (u16, u16),
}

impl KernelPlatform {
    pub fn new(parameters: &LaunchParameters) -> KernelPlatform {
        KernelPlatform {
            terminal: parameters.terminal,
            window_size: parameters.window_size,
        }
    }
}

/// Checks that [address, address + len) is app memory that may be accessed, backing pages on
/// first touch as the page-fault path would.
fn check_user_range(address: u64, len: usize, write: bool) -> Result<(), Errno> {
    if len == 0 || paging::ensure_accessible(address, len as u64, write) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Calls `piece(address, offset, length)` for each part of [address, address + len) within
/// one page: `offset` is its distance from `address`.
fn for_each_page_piece(address: u64, len: usize, mut piece: impl FnMut(u64, usize, usize)) {
    let mut offset = 0;
    while offset < len {
        let at = address + offset as u64;
        let length = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - offset);
        piece(at, offset, length);
        offset += length;
    }
}

fn map_error(error: MapError) -> Errno {
    match error {
        MapError::OutOfMemory => Errno::ENOMEM,
        MapError::AlreadyMapped => Errno::EEXIST,
    }
}

impl Platform for KernelPlatform {
    fn read_user(&self, address: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        check_user_range(address, buffer.len(), false)?;
        // SAFETY: the whole range is mapped, readable app memory (checked just above, and the
        // one app thread is inside this syscall, so nothing unmaps it meanwhile).
        unsafe {
            core::ptr::copy_nonoverlapping(address as *const u8, buffer.as_mut_ptr(), buffer.len())
        };
        Ok(())
    }

    fn write_user(&mut self, address: u64, data: &[u8]) -> Result<(), Errno> {
        check_user_range(address, data.len(), true)?;
        // SAFETY: the whole range is mapped, writable app memory, checked as in read_user.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), address as *mut u8, data.len()) };
        Ok(())
    }

    fn peek_mapping(&self, address: u64, buffer: &mut [u8]) -> bool {
        let mut all = true;
        for_each_page_piece(address, buffer.len(), |at, offset, length| {
            match crate::paging::physical_address(at) {
                // SAFETY: the frame is the app's page (owned by its area, which the one thread
                // inside this syscall keeps), read through the direct map.
                Some(phys) => unsafe {
                    core::ptr::copy_nonoverlapping(
                        crate::memory::phys_to_virt(phys).as_ptr::<u8>(),
                        buffer[offset..].as_mut_ptr(),
                        length,
                    )
                },
                None => all = false,
            }
        });
        all
    }

    fn page_stored_to(&self, address: u64) -> bool {
        crate::paging::page_dirty(address)
    }

    fn forget_stores(&mut self, start: u64, len: u64) {
        crate::paging::forget_stores(start, len)
    }

    fn poke_mapping(&mut self, address: u64, data: &[u8]) {
        for_each_page_piece(address, data.len(), |at, offset, length| {
            if let Some(phys) = crate::paging::writable_frame(at) {
                // SAFETY: as in peek_mapping; the write goes through the direct map, so the
                // page's own protection (a read-only mapping) does not apply, as Linux's page
                // cache writes reach read-only mappings.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        data[offset..].as_ptr(),
                        crate::memory::phys_to_virt(phys).as_mut_ptr::<u8>(),
                        length,
                    )
                }
            }
        });
    }

    fn console_write(&mut self, stream: ConsoleStream, data: &[u8]) {
        match stream {
            ConsoleStream::Output => crate::console::write(data),
            ConsoleStream::Error => hostlink::send(RecordKind::Stderr, data),
        }
    }

    fn console_read(&mut self, buffer: &mut [u8], _nonblocking: bool) -> Option<usize> {
        // Never blocks here: the syscall layer waits, watching for signals as it does.
        crate::console::read(buffer)
    }

    fn console_input_ended(&mut self) -> bool {
        crate::console::input_ended()
    }

    fn take_host_signals(&mut self) -> u64 {
        // Records still in the UART are decoded by its interrupt, which a wait's halt lets in
        // at once: no port reads here, on every step of every wait.
        crate::console::take_host_signals()
    }

    fn console_available(&mut self) -> usize {
        crate::console::available()
    }

    fn console_is_terminal(&self) -> bool {
        self.terminal
    }

    fn console_window_size(&self) -> (u16, u16) {
        self.window_size
    }

    fn map_anonymous(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno> {
        // Backed on first touch: a 64 GiB reservation costs nothing until it is used.
        paging::map_anonymous(start, len, protection);
        Ok(())
    }

    fn populate(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        paging::populate(start, len).map_err(map_error)
    }

    fn lend_pages(&mut self, address: u64, pages: &'static [u8]) -> u64 {
        paging::lend_pages(address, pages.as_ptr(), pages.len() as u64)
    }

    fn move_pages(
        &mut self,
        from: u64,
        to: u64,
        len: u64,
        protection: Protection,
    ) -> Result<(), Errno> {
        paging::move_pages(from, to, len, protection).map_err(map_error)
    }

    fn resident_pages(&mut self) -> u64 {
        paging::resident_pages()
    }

    fn ram_pages(&mut self) -> (u64, u64) {
        crate::memory::ram_pages()
    }

    fn peak_resident_pages(&mut self) -> u64 {
        paging::peak_resident_pages()
    }

    fn residency(&mut self, start: u64, out: &mut [u8]) {
        paging::residency(start, out)
    }

    fn discard(&mut self, start: u64, len: u64) {
        paging::discard(start, len)
    }

    fn share_pages(&mut self, source: u64, target: u64, len: u64) -> Result<(), Errno> {
        paging::share_pages(source, target, len).map_err(map_error)
    }

    fn unmap(&mut self, start: u64, len: u64) {
        paging::unmap(start, len)
    }

    fn protect(&mut self, start: u64, len: u64, protection: Protection) -> Result<(), Errno> {
        paging::protect(start, len, protection);
        Ok(())
    }

    fn now(&self, clock: MachineClock) -> u64 {
        match clock {
            MachineClock::Monotonic => crate::clock::monotonic_ns(),
            MachineClock::Realtime => crate::clock::realtime_ns(),
            MachineClock::CpuTime => crate::clock::program_cpu_ns(),
            MachineClock::ThreadCpuTime(tid) => crate::sched::thread_cpu_ns(tid),
        }
    }

    fn wait_until(&mut self, process: &mut Process, deadline: u64, wake_on: WakeOn) {
        crate::sched::wait_until(process, deadline, wake_on);
    }

    fn yield_now(&mut self, process: &mut Process) {
        crate::sched::yield_now(process);
    }

    fn spawn_thread(
        &mut self,
        tid: i32,
        stack: Option<u64>,
        tls: Option<u64>,
    ) -> Result<(), Errno> {
        crate::syscall::with_clone_frame(|frame| crate::sched::spawn(tid, frame, stack, tls))
            .unwrap_or(Err(Errno::ENOSYS))
    }

    fn wake_thread(&mut self, tid: i32) {
        crate::sched::wake(tid);
    }

    fn wake_all(&mut self) {
        crate::sched::wake_all();
    }

    fn wake_event_waiters(&mut self) {
        crate::sched::wake_event_waiters();
    }

    fn exit_thread(&mut self, process: &mut Process) -> ! {
        crate::sched::exit_current(process)
    }

    fn set_alarm(&mut self, deadline: Option<u64>) {
        crate::signals::set_alarm_deadline(deadline);
        crate::sched::arm_timer();
    }

    fn disk_size(&self) -> Option<u64> {
        crate::virtio_blk::capacity()
    }

    fn disk_read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        crate::virtio_blk::read_sectors(sector, buffer).map_err(|()| Errno::EIO)
    }

    fn disk_write(&mut self, sector: u64, data: &[u8]) -> Result<(), Errno> {
        crate::virtio_blk::write_sectors(sector, data).map_err(|()| Errno::EIO)
    }

    fn disk_flush(&mut self) -> Result<(), Errno> {
        crate::virtio_blk::flush().map_err(|()| Errno::EIO)
    }

    fn net_mac(&self) -> Option<[u8; 6]> {
        crate::virtio_net::mac()
    }

    fn net_polled(&self) -> bool {
        crate::virtio_net::polled()
    }

    fn net_checksum_offload(&self) -> pith_syscalls::platform::ChecksumOffload {
        crate::virtio_net::checksum_offload()
    }

    fn net_receive(&mut self, buffer: &mut [u8]) -> Option<pith_syscalls::platform::ReceivedFrame> {
        crate::virtio_net::receive(buffer)
    }

    fn net_arm_interrupt(&mut self) -> bool {
        crate::virtio_net::arm_receive_interrupt()
    }

    fn net_can_transmit(&mut self) -> bool {
        crate::virtio_net::can_transmit()
    }

    fn net_frame(&mut self, len: usize) -> alloc::vec::Vec<u8> {
        crate::virtio_net::frame(len)
    }

    fn net_segmentation_offload(&self) -> pith_syscalls::platform::SegmentationOffload {
        crate::virtio_net::segmentation_offload()
    }

    fn net_transmit(
        &mut self,
        frame: alloc::vec::Vec<u8>,
        checksum: Option<pith_syscalls::platform::PartialChecksum>,
        segmentation: Option<pith_syscalls::platform::TcpSegmentation>,
    ) {
        crate::virtio_net::transmit(frame, checksum, segmentation)
    }

    fn net_flush(&mut self) {
        crate::virtio_net::flush_if_due()
    }

    fn interrupt_counts(&self) -> pith_syscalls::platform::InterruptCounts {
        crate::interrupts::counts()
    }

    fn cpu_identity(&self) -> pith_syscalls::platform::CpuIdentity {
        crate::cpu::identity(crate::clock::tsc_khz())
    }

    fn fill_random(&mut self, buffer: &mut [u8]) -> Result<(), Errno> {
        if crate::random::fill(buffer) {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    }

    fn signal_state_changed(&mut self) {
        crate::syscall::set_exit_work(true);
    }

    fn user_stack_pointer(&self) -> u64 {
        crate::syscall::user_rsp()
    }

    fn set_fs_base(&mut self, base: u64) {
        // arch_prctl checked that `base` is below TASK_SIZE_MAX, so it is canonical.
        FsBase::write(VirtAddr::new_truncate(base));
    }

    fn fs_base(&self) -> u64 {
        FsBase::read().as_u64()
    }

    fn exit(&mut self, status: i32) -> ! {
        crate::log_debug!("the program exited with status {status}");
        crate::power::exit(status)
    }

    fn log(&mut self, level: LogLevel, message: fmt::Arguments) {
        let level = match level {
            LogLevel::Error => hostlink::LogLevel::Error,
            LogLevel::Warn => hostlink::LogLevel::Warn,
            LogLevel::Info => hostlink::LogLevel::Info,
            LogLevel::Debug => hostlink::LogLevel::Debug,
        };
        hostlink::log(level, message);
    }

    fn trace(&mut self, line: &str) {
        hostlink::send(RecordKind::Trace, line.as_bytes());
    }
}
