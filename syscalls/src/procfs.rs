//! The /proc files Pith has: /proc/self's maps, status, stat, statm, cmdline, environ, comm, and
//! /proc/meminfo, in the formats of fs/proc (array.c, task_mmu.c, base.c, meminfo.c). Each
//! is made when it is opened.

use crate::mm::{VmaKind, PAGE_SIZE};
use crate::platform::Context;
use alloc::vec::Vec;
use core::fmt::Write;

/// The text of /proc/self/NAME, if Pith has that file.
pub fn generate(context: &mut Context, name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"maps" => Some(
            context
                .process
                .memory
                .maps_text(&context.process.executable_path),
        ),
        b"status" => Some(status(context)),
        b"stat" => Some(stat(context)),
        b"statm" => Some(statm(context)),
        b"cmdline" => Some(context.process.cmdline.clone()),
        b"environ" => Some(context.process.environ.clone()),
        b"comm" => Some(alloc::format!("{}\n", self::name(context)).into_bytes()),
        b"mounts" => Some(context.process.vfs.mounts_text()),
        _ => None,
    }
}

/// The text of the system-wide /proc/NAME, if Pith has that file.
pub fn generate_system(context: &mut Context, name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"meminfo" => Some(meminfo(context)),
        b"mounts" => Some(context.process.vfs.mounts_text()),
        b"cpuinfo" => Some(cpuinfo(context)),
        b"stat" => Some(system_stat(context)),
        b"uptime" => Some(uptime(context)),
        b"interrupts" => Some(interrupts(context)),
        b"sys/kernel/hostname" => Some(b"pith\n".to_vec()),
        b"sys/kernel/osrelease" => {
            Some(alloc::format!("{}\n", crate::process::UTS_RELEASE).into_bytes())
        }
        b"sys/kernel/ostype" => Some(b"Linux\n".to_vec()),
        b"sys/kernel/pid_max" => Some(b"4194304\n".to_vec()),
        b"sys/vm/overcommit_memory" => Some(b"0\n".to_vec()),
        _ => None,
    }
}

/// /sys files programs read to count CPUs: one CPU, number 0.
pub fn generate_sys(name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"devices/system/cpu/online"
        | b"devices/system/cpu/possible"
        | b"devices/system/cpu/present" => Some(b"0\n".to_vec()),
        _ => None,
    }
}

/// /proc/cpuinfo: one processor, as the machine describes itself (CPUID).
fn cpuinfo(context: &mut Context) -> Vec<u8> {
    let cpu = context.platform.cpu_identity();
    let mut text = alloc::string::String::new();
    let _ = write!(
        text,
        "processor\t: 0\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: {}\n\
         stepping\t: {}\ncpu MHz\t\t: {}.{:03}\ncache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: 1\n\
         core id\t\t: 0\ncpu cores\t: 1\napicid\t\t: 0\ninitial apicid\t: 0\nfpu\t\t: yes\n\
         fpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {}\nbogomips\t: {}.{:02}\n\
         clflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 48 bits physical, 48 bits virtual\n\
         power management:\n\n",
        cpu.vendor,
        cpu.family,
        cpu.model,
        cpu.brand,
        cpu.stepping,
        cpu.khz / 1000,
        cpu.khz % 1000,
        cpu.max_leaf,
        cpu.flags,
        cpu.khz * 2 / 1000,
        (cpu.khz * 2 / 10) % 100,
    );
    text.into_bytes()
}

/// /proc/stat: the CPU time lines (in USER_HZ ticks: the program's run time as user time,
/// the halted time as idle), boot time, and one process.
fn system_stat(context: &mut Context) -> Vec<u8> {
    let ticks = |nanoseconds: u64| nanoseconds / 10_000_000;
    let busy = ticks(context.platform.now(crate::platform::MachineClock::CpuTime));
    let up = ticks(
        context
            .platform
            .now(crate::platform::MachineClock::Monotonic),
    );
    let idle = up.saturating_sub(busy);
    let realtime = context
        .platform
        .now(crate::platform::MachineClock::Realtime);
    let monotonic = context
        .platform
        .now(crate::platform::MachineClock::Monotonic);
    let boot = realtime.saturating_sub(monotonic) / 1_000_000_000;
    let threads = context.process.threads.count();
    let mut text = alloc::string::String::new();
    for cpu in ["cpu ", "cpu0"] {
        let _ = writeln!(text, "{cpu} {busy} 0 0 {idle} 0 0 0 0 0 0");
    }
    let _ = write!(
        text,
        "intr 0\nctxt 0\nbtime {boot}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n"
    );
    let _ = threads;
    text.into_bytes()
}

/// /proc/uptime: seconds up and seconds idle, to the hundredth.
fn uptime(context: &mut Context) -> Vec<u8> {
    let up = context
        .platform
        .now(crate::platform::MachineClock::Monotonic)
        / 10_000_000;
    let busy = context.platform.now(crate::platform::MachineClock::CpuTime) / 10_000_000;
    let idle = up.saturating_sub(busy);
    alloc::format!(
        "{}.{:02} {}.{:02}\n",
        up / 100,
        up % 100,
        idle / 100,
        idle % 100
    )
    .into_bytes()
}

/// /proc/interrupts (kernel/irq/proc.c show_interrupts, arch/x86's arch_show_interrupts): one
/// CPU column; the serial line and the network device by the I/O APIC pin QEMU's microvm
/// gives them, then the local timer (LOC). Programs and tests read LOC to see that an idle
/// machine is not woken over and over.
fn interrupts(context: &mut Context) -> Vec<u8> {
    let counts = context.platform.interrupt_counts();
    let mut text = alloc::format!("{:11}CPU0       \n", "");
    let mut device = |line: u32, count: u64, kind: &str, name: &str| {
        let _ = writeln!(
            text,
            "{line:>3}: {count:>10}   IO-APIC {line:>3}-{kind:<8}  {name}"
        );
    };
    device(4, counts.serial, "edge", "ttyS0");
    if let Some(line) = counts.network_line {
        device(line, counts.network, "fasteoi", "virtio0");
    }
    let _ = writeln!(text, "LOC: {:>10}   Local timer interrupts", counts.timer);
    let _ = writeln!(text, "ERR: {:>10}", 0);
    text.into_bytes()
}

/// /proc/meminfo (fs/proc/meminfo.c), the lines `free` and most programs read: RAM as the
/// allocator sees it, no page cache (there are no files yet), no swap.
fn meminfo(context: &mut Context) -> Vec<u8> {
    let (total, free) = context.platform.ram_pages();
    let kib = |pages: u64| pages * (PAGE_SIZE / 1024);
    let mut text = alloc::string::String::new();
    for (name, value) in [
        ("MemTotal:", kib(total)),
        ("MemFree:", kib(free)),
        ("MemAvailable:", kib(free)),
        ("Buffers:", 0),
        ("Cached:", 0),
        ("SwapCached:", 0),
        ("Shmem:", 0),
        ("SReclaimable:", 0),
        ("SwapTotal:", 0),
        ("SwapFree:", 0),
    ] {
        let _ = writeln!(text, "{name:<16}{value:>8} kB");
    }
    text.into_bytes()
}

/// Sizes in pages: the whole address space, the stack, the program's own segments, data.
struct Sizes {
    total: u64,
    stack: u64,
    program: u64,
    data: u64,
    resident: u64,
    peak_resident: u64,
}

fn sizes(context: &mut Context) -> Sizes {
    let mut sizes = Sizes {
        total: 0,
        stack: 0,
        program: 0,
        data: 0,
        resident: context.platform.resident_pages(),
        peak_resident: context.platform.peak_resident_pages(),
    };
    for vma in context.process.memory.vmas() {
        let pages = (vma.end - vma.start) / PAGE_SIZE;
        sizes.total += pages;
        match vma.kind {
            VmaKind::Stack => sizes.stack += pages,
            VmaKind::Program { .. } if vma.protection.execute => sizes.program += pages,
            VmaKind::Vvar | VmaKind::Vdso => {}
            _ if vma.protection.write => sizes.data += pages,
            _ => {}
        }
    }
    sizes
}

fn name(context: &Context) -> alloc::string::String {
    let comm = &context.process.main_thread_comm();
    let len = comm
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(comm.len());
    alloc::string::String::from_utf8_lossy(&comm[..len]).into_owned()
}

fn status(context: &mut Context) -> Vec<u8> {
    let sizes = sizes(context);
    let kb = |pages: u64| pages * PAGE_SIZE / 1024;
    let pid = context.process.pid;
    let signals = &context.process.signals;
    let ignored = (1..=crate::signal::NSIG)
        .filter(|&signal| signals.action(signal).sa_handler == crate::signal::SIG_IGN)
        .fold(0u64, |mask, signal| mask | crate::signal::bit(signal));
    let caught = (1..=crate::signal::NSIG)
        .filter(|&signal| signals.action(signal).sa_handler > crate::signal::SIG_IGN)
        .fold(0u64, |mask, signal| mask | crate::signal::bit(signal));
    let credentials = &context.process.credentials;
    let (user, group) = (credentials.user, credentials.group);
    // Each group followed by a space, as Linux prints them.
    let groups: alloc::string::String = credentials
        .groups
        .iter()
        .map(|group| alloc::format!("{group} "))
        .collect();
    let mut text = alloc::string::String::new();
    let _ = write!(
        text,
        "Name:\t{}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t0\nTracerPid:\t0\n\
         Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\n\
         VmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmLck:\t{:8} kB\nVmPin:\t{:8} kB\nVmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\n\
         RssAnon:\t{:8} kB\nRssFile:\t{:8} kB\nRssShmem:\t{:8} kB\nVmData:\t{:8} kB\nVmStk:\t{:8} kB\nVmExe:\t{:8} kB\n\
         VmLib:\t{:8} kB\nVmPTE:\t{:8} kB\nVmSwap:\t{:8} kB\nThreads:\t{}\nSigQ:\t0/4096\n\
         SigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\nSigCgt:\t{:016x}\n\
         Cpus_allowed:\t1\nCpus_allowed_list:\t0\n",
        name(context),
        context.process.umask,
        user.real,
        user.effective,
        user.saved,
        user.filesystem,
        group.real,
        group.effective,
        group.saved,
        group.filesystem,
        groups,
        kb(sizes.total),
        kb(sizes.total),
        0,
        0,
        kb(sizes.peak_resident),
        kb(sizes.resident),
        kb(sizes.resident),
        0,
        0,
        kb(sizes.data),
        kb(sizes.stack),
        kb(sizes.program),
        0,
        0,
        0,
        context.process.threads.count(),
        signals.thread_pending,
        signals.pending,
        signals.blocked,
        ignored,
        caught,
    );
    text.into_bytes()
}

/// /proc/self/stat: 52 fields (fs/proc/array.c do_task_stat); utime is the CPU time in clock
/// ticks, stime 0, as getrusage tells them.
fn stat(context: &mut Context) -> Vec<u8> {
    let sizes = sizes(context);
    let pid = context.process.pid;
    let mut text = alloc::string::String::new();
    let _ = write!(
        text,
        "{pid} ({}) R 0 {pid} {pid} 0 -1 4194560 0 0 0 0 {} 0 0 0 20 0 {} 0 0 {} {}",
        name(context),
        context.platform.now(crate::platform::MachineClock::CpuTime) / 10_000_000, // USER_HZ
        context.process.threads.count(),                                           // num_threads
        sizes.total * PAGE_SIZE,
        sizes.resident
    );
    // rsslim and the rest: addresses and signal masks Linux shows as 0 to others, and zeros.
    text.push_str(" 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
    text.into_bytes()
}

/// /proc/self/statm: size resident shared text lib data dt, in pages.
fn statm(context: &mut Context) -> Vec<u8> {
    let sizes = sizes(context);
    alloc::format!(
        "{} {} 0 {} 0 {} 0\n",
        sizes.total,
        sizes.resident,
        sizes.program,
        sizes.data + sizes.stack
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use crate::testing::TestMachine;

    fn read_proc(machine: &mut TestMachine, name: &str) -> String {
        read_path(machine, &format!("/proc/self/{name}"))
    }

    fn read_path(machine: &mut TestMachine, path: &str) -> String {
        let path = machine.put(format!("{path}\0").as_bytes());
        let fd = machine.call(2, [path, 0, 0, 0, 0, 0]).unwrap();
        let buffer = machine.scratch(8192);
        let count = machine.call(0, [fd, buffer, 8192, 0, 0, 0]).unwrap() as usize;
        machine.call(3, [fd, 0, 0, 0, 0, 0]).unwrap();
        String::from_utf8(machine.memory_at(buffer, count)).unwrap()
    }

    #[test]
    fn meminfo_reports_ram_in_linux_layout() {
        let mut machine = TestMachine::new();
        let text = read_path(&mut machine, "/proc/meminfo");
        assert!(
            text.starts_with("MemTotal:         262144 kB\nMemFree:  "),
            "{text}"
        );
        assert!(text.contains("SwapTotal:             0 kB\n"), "{text}");
    }

    /// Linux's layout: a CPU0 header, the serial line, the network device's line only when it
    /// interrupts, then LOC (the local timer) and ERR.
    #[test]
    fn interrupts_counts_the_timer_as_loc() {
        let mut machine = TestMachine::new();
        let text = read_path(&mut machine, "/proc/interrupts");
        assert_eq!(
            text,
            "           CPU0       \n  4:          0   IO-APIC   4-edge      ttyS0\nLOC:          0   Local timer interrupts\nERR:          0\n"
        );
    }

    #[test]
    fn status_reports_the_resident_set_and_the_signals() {
        let mut machine = TestMachine::new();
        let anon = 0x22; // MAP_PRIVATE | MAP_ANONYMOUS
        machine.call(9, [0, 1 << 20, 3, anon, 0, 0]).unwrap();
        let status = read_proc(&mut machine, "status");
        assert!(status.starts_with("Name:\thello\n"), "{status}");
        let rss: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().strip_suffix(" kB"))
            .and_then(|number| number.trim().parse().ok())
            .expect("a VmRSS line");
        assert!(
            rss >= 1024 && rss <= machine.platform_resident_kb(),
            "{status}"
        );
        assert!(status.contains("VmSize:\t    1024 kB\n"), "{status}");
        assert!(status.contains("Pid:\t1\n") && status.contains("Threads:\t1\n"));
        let statm = read_proc(&mut machine, "statm");
        assert!(statm.starts_with("256 "), "{statm}");
        let stat = read_proc(&mut machine, "stat");
        assert!(stat.starts_with("1 (hello) R 0 1 1 "), "{stat}");
        assert_eq!(stat.split(' ').count(), 52, "{stat}");
    }

    #[test]
    fn cmdline_and_environ_are_nul_separated() {
        let mut machine = TestMachine::new();
        machine.process.cmdline = b"/hello\0a b\0".to_vec();
        machine.process.environ = b"HOME=/\0".to_vec();
        assert_eq!(read_proc(&mut machine, "cmdline"), "/hello\0a b\0");
        assert_eq!(read_proc(&mut machine, "environ"), "HOME=/\0");
    }
}
