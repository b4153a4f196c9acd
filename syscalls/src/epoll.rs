//! epoll(7): interest lists over fds, level- or edge-triggered, with EPOLLONESHOT. Readiness
//! is what poll(2) sees of each file; the edge-triggered mode reports a file again when its
//! readiness rises or when something new came (each file kind's event count: data or room
//! on a socket, a pipe's read or write, an eventfd's change, a connection to accept).
//!
//! A wait looks only at the interests on its ready list, as Linux's does: those whose file
//! had an event since (sockets' wakers, pipes, eventfds and AF_UNIX sockets record theirs),
//! and the level-triggered ones that were ready at the last look. Idle connections cost a
//! wait nothing. Files that report no events (timerfds, the console, signalfds, nested
//! epoll instances, device nodes) are looked at in every wait.

use crate::args::{Fd, UserAddr};
use crate::errno::Errno;
use crate::fs::{FileKind, OpenFile, O_CLOEXEC, O_RDWR};
use crate::platform::{Context, MachineClock};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// epoll_create1 and epoll_ctl constants (include/uapi/linux/eventpoll.h).
pub const EPOLL_CLOEXEC: i32 = O_CLOEXEC as i32;
pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLPRI: u32 = 0x002;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLRDNORM: u32 = 0x040;
pub const EPOLLRDBAND: u32 = 0x080;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLMSG: u32 = 0x400;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// The events a file can report (the rest of the bits are input flags).
const EVENT_BITS: u32 = EPOLLIN
    | EPOLLPRI
    | EPOLLOUT
    | EPOLLERR
    | EPOLLHUP
    | EPOLLRDNORM
    | EPOLLRDBAND
    | EPOLLWRNORM
    | EPOLLWRBAND
    | EPOLLMSG
    | EPOLLRDHUP;
/// EP_MAX_EVENTS: maxevents above INT_MAX / sizeof(struct epoll_event) is EINVAL.
const MAX_EVENTS: i32 = i32::MAX / 12;

/// `struct epoll_event` (include/uapi/linux/eventpoll.h): packed on x86_64, 12 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}
const _: () = assert!(core::mem::size_of::<EpollEvent>() == 12);

/// An interest's key: the fd and its open file description, as Linux keys them.
type Key = (i32, u32);

/// One fd in an interest list.
#[derive(Clone, Copy, Debug)]
struct Interest {
    /// The file, whose events put the interest on the ready list.
    kind: FileKind,
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: nothing more is reported until EPOLL_CTL_MOD.
    disarmed: bool,
    /// For EPOLLET: the readiness and event count when last looked at.
    last_ready: u32,
    last_generation: u32,
}

/// One epoll instance.
#[derive(Debug, Default)]
pub struct Epoll {
    interests: BTreeMap<Key, Interest>,
    /// The interests the next wait looks at: files with events since the last look, and
    /// level-triggered interests that were ready then.
    ready: BTreeSet<Key>,
    /// Interests on files that report no events: every wait looks at them.
    polled: BTreeSet<Key>,
    /// Where the last wait that filled its array stopped: the next starts after it, so
    /// that every ready file gets its turn.
    resume_after: Option<Key>,
}

/// The epoll instances by id, and the interests on each file.
#[derive(Debug, Default)]
pub struct Epolls {
    instances: BTreeMap<u32, Epoll>,
    next_id: u32,
    watchers: BTreeMap<FileKind, Vec<(u32, Key)>>,
    /// How many interests waits have looked at, in all (what a wait costs, for tests).
    looks: u64,
}

impl Epolls {
    /// Drops instance `id` (its last description closed).
    pub fn release(&mut self, id: u32) {
        if let Some(instance) = self.instances.remove(&id) {
            for (key, interest) in instance.interests {
                self.unwatch(interest.kind, id, key);
            }
        }
    }

    fn unwatch(&mut self, kind: FileKind, id: u32, key: Key) {
        if let Some(watchers) = self.watchers.get_mut(&kind) {
            watchers.retain(|&watcher| watcher != (id, key));
            if watchers.is_empty() {
                self.watchers.remove(&kind);
            }
        }
    }

    /// Removes interest `key` of instance `id` altogether.
    fn remove(&mut self, id: u32, key: Key) -> Option<Interest> {
        let instance = self.instances.get_mut(&id)?;
        let interest = instance.interests.remove(&key)?;
        instance.ready.remove(&key);
        instance.polled.remove(&key);
        self.unwatch(interest.kind, id, key);
        Some(interest)
    }
}

/// Whether a file of this kind reports its events to epoll (else every wait looks at it).
fn reports_events(kind: FileKind) -> bool {
    matches!(
        kind,
        FileKind::Socket { .. }
            | FileKind::UnixSocket { .. }
            | FileKind::Pipe { .. }
            | FileKind::Eventfd { .. }
    )
}

/// Asks the owner of `kind` to record its events from now on.
fn watch_file(context: &mut Context, kind: FileKind) {
    context.process.files.epoll_watch(kind);
    match kind {
        FileKind::Socket { id } => crate::net::watch(context, id),
        FileKind::UnixSocket { id } => crate::unix::watch(context, id),
        _ => {}
    }
}

/// Puts the interests on files that had events onto their instances' ready lists, and
/// drops the interests on descriptions closed for good.
fn absorb_events(context: &mut Context) {
    let mut files: Vec<FileKind> = crate::net::take_woken(context)
        .into_iter()
        .map(|id| FileKind::Socket { id })
        .collect();
    files.extend(
        crate::unix::take_touched(context)
            .into_iter()
            .map(|id| FileKind::UnixSocket { id }),
    );
    files.extend(context.process.files.take_epoll_touched());
    forget_closed(context);
    let epolls = &mut context.process.epolls;
    for kind in files {
        let Some(watchers) = epolls.watchers.get(&kind) else {
            continue;
        };
        for &(id, key) in watchers {
            if let Some(instance) = epolls.instances.get_mut(&id) {
                instance.ready.insert(key);
            }
        }
    }
}

/// Drops the interests on descriptions closed for good (called at every close too, so that
/// a program that stopped waiting does not pile them up).
pub fn forget_closed(context: &mut Context) {
    let closed = context.process.files.take_epoll_closed();
    let epolls = &mut context.process.epolls;
    for (description, kind) in closed {
        let doomed: Vec<(u32, Key)> = epolls
            .watchers
            .get(&kind)
            .map(|watchers| {
                watchers
                    .iter()
                    .copied()
                    .filter(|&(_, key)| key.1 == description)
                    .collect()
            })
            .unwrap_or_default();
        for (id, key) in doomed {
            epolls.remove(id, key);
        }
    }
}

/// Implements epoll_create1(2).
pub fn epoll_create1(context: &mut Context, flags: i32) -> Result<i32, Errno> {
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let epolls = &mut context.process.epolls;
    let id = epolls.next_id;
    epolls.next_id = epolls.next_id.wrapping_add(1);
    epolls.instances.insert(id, Epoll::default());
    let file = OpenFile {
        kind: FileKind::Epoll { id },
        status_flags: O_RDWR,
    };
    let fd = crate::fs::install(context, file, flags & EPOLL_CLOEXEC != 0, |context| {
        context.process.epolls.instances.remove(&id);
    })?;
    Ok(fd.0)
}

/// Implements epoll_create(2): `size` only has to be positive.
pub fn epoll_create(context: &mut Context, size: i32) -> Result<i32, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    epoll_create1(context, 0)
}

fn epoll_id(context: &Context, fd: Fd) -> Result<u32, Errno> {
    match context.process.files.get(fd)?.kind {
        FileKind::Epoll { id } => Ok(id),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements epoll_ctl(2).
pub fn epoll_ctl(
    context: &mut Context,
    epoll_fd: Fd,
    operation: i32,
    fd: Fd,
    event: UserAddr,
) -> Result<(), Errno> {
    let id = epoll_id(context, epoll_fd)?;
    let (description, file) = context.process.files.description(fd)?;
    if fd == epoll_fd {
        return Err(Errno::EINVAL);
    }
    // Files that are always ready cannot be watched (epoll_ctl(2): EPERM).
    if let FileKind::Node(node) = file.kind {
        let kind = context.process.vfs.metadata(node)?.kind;
        if matches!(
            kind,
            pith_fs::FileType::Regular | pith_fs::FileType::Directory
        ) {
            return Err(Errno::EPERM);
        }
    }
    if matches!(file.kind, FileKind::Generated) {
        return Err(Errno::EPERM);
    }
    if let FileKind::Epoll { id: inner } = file.kind {
        if contains_epoll(context, inner, id) {
            return Err(Errno::ELOOP);
        }
    }
    let wanted = if operation == EPOLL_CTL_DEL {
        EpollEvent::default()
    } else {
        context.read_struct::<EpollEvent>(event.0)?
    };
    let events = wanted.events;
    let key = (fd.0, description);
    let kind = file.kind;
    let instance = context
        .process
        .epolls
        .instances
        .get_mut(&id)
        .ok_or(Errno::EBADF)?;
    match operation {
        EPOLL_CTL_ADD => {
            if instance.interests.contains_key(&key) {
                return Err(Errno::EEXIST);
            }
            if events & EPOLLEXCLUSIVE != 0
                && events
                    & !(EPOLLEXCLUSIVE
                        | EPOLLIN
                        | EPOLLOUT
                        | EPOLLERR
                        | EPOLLHUP
                        | EPOLLWAKEUP
                        | EPOLLET
                        | EPOLLRDHUP
                        | EPOLLRDNORM
                        | EPOLLWRNORM)
                    != 0
            {
                return Err(Errno::EINVAL);
            }
            instance.interests.insert(
                key,
                Interest {
                    kind,
                    events,
                    data: wanted.data,
                    disarmed: false,
                    last_ready: 0,
                    last_generation: 0,
                },
            );
            // Looked at in the next wait, as Linux's ep_insert polls the file at once.
            if reports_events(kind) {
                instance.ready.insert(key);
            } else {
                instance.polled.insert(key);
            }
            let epolls = &mut context.process.epolls;
            epolls.watchers.entry(kind).or_default().push((id, key));
            watch_file(context, kind);
        }
        EPOLL_CTL_MOD => {
            let interest = instance.interests.get_mut(&key).ok_or(Errno::ENOENT)?;
            if events & EPOLLEXCLUSIVE != 0 || interest.events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            *interest = Interest {
                kind,
                events,
                data: wanted.data,
                disarmed: false,
                last_ready: 0,
                last_generation: 0,
            };
            if reports_events(kind) {
                instance.ready.insert(key);
            }
        }
        EPOLL_CTL_DEL => {
            context
                .process
                .epolls
                .remove(id, key)
                .ok_or(Errno::ENOENT)?;
        }
        _ => return Err(Errno::EINVAL),
    }
    // A new or changed interest may be ready now: a waiting thread looks again.
    context.platform.wake_all();
    Ok(())
}

/// Whether epoll instance `inner` is, or watches (through nested instances), `outer`.
fn contains_epoll(context: &Context, inner: u32, outer: u32) -> bool {
    if inner == outer {
        return true;
    }
    let Some(instance) = context.process.epolls.instances.get(&inner) else {
        return false;
    };
    instance.interests.keys().any(|&(fd, description)| {
        context.process.files.refers_to(Fd(fd), description)
            && matches!(
                context.process.files.get(Fd(fd)).map(|file| file.kind),
                Ok(FileKind::Epoll { id }) if contains_epoll(context, id, outer)
            )
    })
}

/// The count of things that happened to a file, for EPOLLET (0 where only readiness counts).
fn generation(context: &mut Context, kind: FileKind) -> u32 {
    match kind {
        FileKind::Socket { id } => crate::net::generation(context, id),
        FileKind::UnixSocket { id } => crate::unix::generation(context, id),
        FileKind::Pipe { id, .. } => context
            .process
            .files
            .pipe_mut(id)
            .map_or(0, |pipe| pipe.generation),
        FileKind::Eventfd { id } => context
            .process
            .eventfds
            .get(id)
            .map_or(0, |eventfd| eventfd.generation),
        FileKind::Timerfd { id } => crate::timerfd::generation(context, id),
        _ => 0,
    }
}

/// Collects up to `max` ready events of instance `id` from its ready list: level-triggered
/// interests while ready, edge-triggered ones when something new happened, one-shot ones
/// once. With `consume` false it only looks (an epoll fd's own readiness) and changes no
/// interest.
fn collect(context: &mut Context, id: u32, max: usize, consume: bool) -> Vec<EpollEvent> {
    absorb_events(context);
    let Some(instance) = context.process.epolls.instances.get(&id) else {
        return Vec::new();
    };
    // The ready list and the polled interests, in key order from where the last full wait
    // stopped.
    let mut keys: Vec<Key> = instance.ready.union(&instance.polled).copied().collect();
    if let Some(after) = instance.resume_after {
        let start = keys.partition_point(|&key| key <= after);
        keys.rotate_left(start);
    }
    let mut ready_events = Vec::new();
    let mut last_reported = None;
    for key in keys {
        if ready_events.len() >= max {
            break;
        }
        let (fd, description) = key;
        let Some(&interest) = context
            .process
            .epolls
            .instances
            .get(&id)
            .and_then(|instance| instance.interests.get(&key))
        else {
            continue;
        };
        if !context.process.files.refers_to(Fd(fd), description) {
            // The fd was closed (or now holds another file): the interest goes.
            if consume {
                context.process.epolls.remove(id, key);
            }
            continue;
        }
        context.process.epolls.looks += 1;
        let (report, updated) = look_at(context, fd, interest);
        if report.is_some() {
            last_reported = Some(key);
        }
        if let Some(events) = report {
            ready_events.push(EpollEvent {
                events,
                data: interest.data,
            });
        }
        if !consume {
            continue;
        }
        let Some(instance) = context.process.epolls.instances.get_mut(&id) else {
            break;
        };
        if let Some(slot) = instance.interests.get_mut(&key) {
            *slot = updated;
        }
        // A level-triggered interest stays on the list while it is ready: the next wait
        // reports it again. Others leave it until their file's next event.
        let level = interest.events & (EPOLLET | EPOLLONESHOT) == 0;
        if !(level && report.is_some()) {
            instance.ready.remove(&key);
        }
    }
    if consume {
        if let Some(instance) = context.process.epolls.instances.get_mut(&id) {
            instance.resume_after = if ready_events.len() >= max {
                last_reported
            } else {
                None
            };
        }
    }
    ready_events
}

/// Looks at one interest: the events to report (None: nothing now) and the interest as it
/// stands after the look.
fn look_at(context: &mut Context, fd: i32, interest: Interest) -> (Option<u32>, Interest) {
    let mut updated = interest;
    if interest.disarmed {
        return (None, updated);
    }
    // For a socket this also registers its wakers again: smoltcp forgets them once woken.
    let count = generation(context, interest.kind);
    let wanted = (interest.events & EVENT_BITS) | EPOLLERR | EPOLLHUP;
    let ready = crate::poll::readiness(context, Fd(fd), wanted as i16) as u16 as u32 & wanted;
    let report = if interest.events & EPOLLET != 0 {
        let new =
            ready != 0 && (ready & !interest.last_ready != 0 || count != interest.last_generation);
        updated.last_ready = ready;
        updated.last_generation = count;
        new
    } else {
        ready != 0
    };
    if !report {
        return (None, updated);
    }
    if interest.events & EPOLLONESHOT != 0 {
        updated.disarmed = true;
    }
    (Some(ready), updated)
}

/// What epoll instance `id` is ready for, as a file (nested in poll or another epoll).
pub fn readiness(context: &mut Context, id: u32) -> i16 {
    if collect(context, id, 1, false).is_empty() {
        0
    } else {
        crate::poll::POLLIN | crate::poll::POLLRDNORM
    }
}

/// Waits for events on instance `epoll_fd` until `deadline`, and writes them out.
fn wait(
    context: &mut Context,
    epoll_fd: Fd,
    events: UserAddr,
    max: i32,
    deadline: u64,
) -> Result<usize, Errno> {
    if max <= 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let id = epoll_id(context, epoll_fd)?;
    // As Linux (access_ok): the array must lie in the app's half; only the events returned
    // are written, and a write that fails is EFAULT. Writing the whole array up front cost
    // redis, whose array has room for 10,000 events, 120 KB of copying per wait.
    let size = max as u64 * core::mem::size_of::<EpollEvent>() as u64;
    if events
        .0
        .checked_add(size)
        .is_none_or(|end| end > crate::mm::TASK_SIZE)
    {
        return Err(Errno::EFAULT);
    }
    loop {
        crate::net::poll_stack(context);
        let ready = collect(context, id, max as usize, true);
        if !ready.is_empty() {
            let bytes: Vec<u8> = ready
                .iter()
                .flat_map(|event| event.as_bytes())
                .copied()
                .collect();
            context.platform.write_user(events.0, &bytes)?;
            return Ok(ready.len());
        }
        if context.platform.now(MachineClock::Monotonic) >= deadline {
            return Ok(0);
        }
        crate::net::wait(context, deadline)?;
    }
}

fn deadline_after_ms(context: &Context, timeout: i32) -> u64 {
    if timeout < 0 {
        u64::MAX
    } else {
        context
            .platform
            .now(MachineClock::Monotonic)
            .saturating_add(timeout as u64 * 1_000_000)
    }
}

/// Implements epoll_wait(2). A signal interrupts it with EINTR, never a restart.
pub fn epoll_wait(
    context: &mut Context,
    epoll_fd: Fd,
    events: UserAddr,
    max: i32,
    timeout: i32,
) -> Result<usize, Errno> {
    let deadline = deadline_after_ms(context, timeout);
    wait(context, epoll_fd, events, max, deadline)
}

/// Implements epoll_pwait(2).
pub fn epoll_pwait(
    context: &mut Context,
    epoll_fd: Fd,
    events: UserAddr,
    max: i32,
    timeout: i32,
    mask: UserAddr,
    mask_size: usize,
) -> Result<usize, Errno> {
    let deadline = deadline_after_ms(context, timeout);
    crate::poll::with_mask(context, mask, mask_size, |context| {
        wait(context, epoll_fd, events, max, deadline)
    })
}

/// Implements epoll_pwait2(2): the timeout is a timespec (NULL: none).
pub fn epoll_pwait2(
    context: &mut Context,
    epoll_fd: Fd,
    events: UserAddr,
    max: i32,
    timeout: UserAddr,
    mask: UserAddr,
    mask_size: usize,
) -> Result<usize, Errno> {
    let deadline = crate::poll::timespec_deadline(context, timeout)?;
    crate::poll::with_mask(context, mask, mask_size, |context| {
        wait(context, epoll_fd, events, max, deadline)
    })
}

#[cfg(test)]
mod tests {
    use crate::errno::Errno;
    use crate::testing::TestMachine;

    const EPOLL_CREATE1: u64 = 291;
    const EPOLL_CTL: u64 = 233;
    const EPOLL_WAIT: u64 = 232;

    /// Watches `fd` for `events` with `data`.
    fn watch(
        machine: &mut TestMachine,
        epoll: u64,
        operation: u64,
        fd: u64,
        events: u32,
        data: u64,
    ) {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&events.to_le_bytes());
        bytes[4..].copy_from_slice(&data.to_le_bytes());
        let event = machine.put(&bytes);
        assert_eq!(
            machine.call(EPOLL_CTL, [epoll, operation, fd, event, 0, 0]),
            Ok(0)
        );
    }

    /// The (events, data) pairs a zero-timeout wait reports.
    fn ready(machine: &mut TestMachine, epoll: u64) -> Vec<(u32, u64)> {
        let events = machine.scratch(12 * 8);
        let count = machine
            .call(EPOLL_WAIT, [epoll, events, 8, 0, 0, 0])
            .unwrap();
        (0..count)
            .map(|index| {
                let bytes = machine.memory_at(events + index * 12, 12);
                (
                    u32::from_le_bytes(bytes[..4].try_into().unwrap()),
                    u64::from_le_bytes(bytes[4..].try_into().unwrap()),
                )
            })
            .collect()
    }

    fn pipe(machine: &mut TestMachine) -> (u64, u64) {
        let fds = machine.scratch(8);
        assert_eq!(machine.call(22, [fds, 0, 0, 0, 0, 0]), Ok(0));
        let pair = machine.read_u64(fds);
        (pair & 0xffff_ffff, pair >> 32)
    }

    #[test]
    fn only_the_events_returned_are_written_as_on_linux() {
        let mut machine = TestMachine::new();
        let epoll = machine.call(EPOLL_CREATE1, [0, 0, 0, 0, 0, 0]).unwrap();
        let (read_end, write_end) = pipe(&mut machine);
        watch(&mut machine, epoll, 1, read_end, super::EPOLLIN, 7);
        // Room for 1,000 events, one page of it mapped: nothing is ready, nothing is written.
        let events = machine.scratch(4096);
        assert_eq!(
            machine.call(EPOLL_WAIT, [epoll, events, 1000, 0, 0, 0]),
            Ok(0)
        );
        let byte = machine.put(b"x");
        assert_eq!(machine.call(1, [write_end, byte, 1, 0, 0, 0]), Ok(1));
        assert_eq!(
            machine.call(EPOLL_WAIT, [epoll, events, 1000, 0, 0, 0]),
            Ok(1)
        );
        assert_eq!(machine.memory_at(events, 4), 1u32.to_le_bytes());
        // An array past the app's half is EFAULT at once (access_ok); one unmapped where an
        // event goes, when it is written.
        let top = super::super::mm::TASK_SIZE - 12;
        assert_eq!(
            machine.call(EPOLL_WAIT, [epoll, top, 2, 0, 0, 0]),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            machine.call(EPOLL_WAIT, [epoll, 0x1000, 1, 0, 0, 0]),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn level_triggered_reports_while_ready_edge_triggered_once_per_event() {
        let mut machine = TestMachine::new();
        let epoll = machine.call(EPOLL_CREATE1, [0, 0, 0, 0, 0, 0]).unwrap();
        let (level_read, level_write) = pipe(&mut machine);
        let (edge_read, edge_write) = pipe(&mut machine);
        watch(&mut machine, epoll, 1, level_read, super::EPOLLIN, 1);
        watch(
            &mut machine,
            epoll,
            1,
            edge_read,
            super::EPOLLIN | super::EPOLLET,
            2,
        );
        assert_eq!(ready(&mut machine, epoll), []);
        let byte = machine.put(b"x");
        assert_eq!(machine.call(1, [level_write, byte, 1, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(1, [edge_write, byte, 1, 0, 0, 0]), Ok(1));
        assert_eq!(ready(&mut machine, epoll), [(1, 1), (1, 2)]);
        assert_eq!(ready(&mut machine, epoll), [(1, 1)], "edge: reported once");
        assert_eq!(machine.call(1, [edge_write, byte, 1, 0, 0, 0]), Ok(1));
        assert_eq!(
            ready(&mut machine, epoll),
            [(1, 1), (1, 2)],
            "edge: a new write is a new event, though the pipe was never drained"
        );
    }

    #[test]
    fn a_wait_looks_only_at_files_with_events_not_at_idle_ones() {
        let mut machine = TestMachine::new();
        let epoll = machine.call(EPOLL_CREATE1, [0, 0, 0, 0, 0, 0]).unwrap();
        // 500 idle pipes: 1,000 fds, near the default limit of 1,024.
        for index in 0..500 {
            let (read_end, _) = pipe(&mut machine);
            watch(&mut machine, epoll, 1, read_end, super::EPOLLIN, index);
        }
        let (level_read, level_write) = pipe(&mut machine);
        let (edge_read, edge_write) = pipe(&mut machine);
        watch(&mut machine, epoll, 1, level_read, super::EPOLLIN, 2000);
        let edge = super::EPOLLIN | super::EPOLLET;
        watch(&mut machine, epoll, 1, edge_read, edge, 3000);
        assert_eq!(
            ready(&mut machine, epoll),
            [],
            "each is looked at once when added"
        );
        let before = machine.process.epolls.looks;
        assert_eq!(ready(&mut machine, epoll), []);
        assert_eq!(
            machine.process.epolls.looks, before,
            "idle: nothing to look at"
        );
        let byte = machine.put(b"x");
        assert_eq!(machine.call(1, [level_write, byte, 1, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(1, [edge_write, byte, 1, 0, 0, 0]), Ok(1));
        let before = machine.process.epolls.looks;
        assert_eq!(ready(&mut machine, epoll), [(1, 2000), (1, 3000)]);
        assert_eq!(machine.process.epolls.looks - before, 2);
        // Level-triggered and still ready: looked at again, and reported; the edge is not.
        assert_eq!(ready(&mut machine, epoll), [(1, 2000)]);
        assert_eq!(machine.process.epolls.looks - before, 3);
        let buffer = machine.scratch(8);
        assert_eq!(machine.call(0, [level_read, buffer, 8, 0, 0, 0]), Ok(1));
        assert_eq!(ready(&mut machine, epoll), []);
        assert_eq!(ready(&mut machine, epoll), []);
        assert_eq!(
            machine.process.epolls.looks - before,
            4,
            "drained: looked at once more, then left alone"
        );
    }

    #[test]
    fn a_full_array_resumes_where_it_stopped() {
        let mut machine = TestMachine::new();
        let epoll = machine.call(EPOLL_CREATE1, [0, 0, 0, 0, 0, 0]).unwrap();
        let byte = machine.put(b"x");
        for index in 0..3 {
            let (read_end, write_end) = pipe(&mut machine);
            assert_eq!(machine.call(1, [write_end, byte, 1, 0, 0, 0]), Ok(1));
            watch(&mut machine, epoll, 1, read_end, super::EPOLLIN, index);
        }
        let first = |machine: &mut TestMachine| {
            let events = machine.scratch(12);
            assert_eq!(machine.call(EPOLL_WAIT, [epoll, events, 1, 0, 0, 0]), Ok(1));
            u64::from_le_bytes(machine.memory_at(events + 4, 8).try_into().unwrap())
        };
        let turns: Vec<u64> = (0..4).map(|_| first(&mut machine)).collect();
        assert_eq!(turns, [0, 1, 2, 0], "every ready file gets its turn");
    }

    #[test]
    fn one_shot_reports_once_until_modified_and_closed_fds_leave_the_set() {
        let mut machine = TestMachine::new();
        let epoll = machine.call(EPOLL_CREATE1, [0, 0, 0, 0, 0, 0]).unwrap();
        let (read_end, write_end) = pipe(&mut machine);
        let byte = machine.put(b"x");
        assert_eq!(machine.call(1, [write_end, byte, 1, 0, 0, 0]), Ok(1));
        watch(
            &mut machine,
            epoll,
            1,
            read_end,
            super::EPOLLIN | super::EPOLLONESHOT,
            7,
        );
        assert_eq!(ready(&mut machine, epoll), [(1, 7)]);
        assert_eq!(ready(&mut machine, epoll), []);
        watch(
            &mut machine,
            epoll,
            3,
            read_end,
            super::EPOLLIN | super::EPOLLONESHOT,
            8,
        );
        assert_eq!(ready(&mut machine, epoll), [(1, 8)]);
        // The write end watched for POLLOUT; closing the read end makes it EPOLLERR.
        watch(&mut machine, epoll, 1, write_end, super::EPOLLOUT, 9);
        assert_eq!(ready(&mut machine, epoll), [(4, 9)]);
        assert_eq!(machine.call(3, [read_end, 0, 0, 0, 0, 0]), Ok(0));
        let events = ready(&mut machine, epoll);
        assert_eq!(events.len(), 1);
        assert_ne!(events[0].0 & super::EPOLLERR, 0, "{events:?}");
        assert_eq!(machine.call(3, [write_end, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(ready(&mut machine, epoll), [], "closed fds are dropped");
        let event = machine.put(&[0u8; 12]);
        assert_eq!(
            machine.call(EPOLL_CTL, [epoll, 2, write_end, event, 0, 0]),
            Err(Errno::EBADF)
        );
    }
}
