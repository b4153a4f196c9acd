//! Scheduling policy and niceness: getpriority, setpriority and the sched_*scheduler/param
//! calls. Pith runs one thread on one CPU, so there is nobody to be scheduled against: the
//! values are recorded and read back as Linux would, and change nothing yet.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::Context;

/// getpriority/setpriority's `which` (include/uapi/linux/resource.h).
pub const PRIO_PROCESS: i32 = 0;
pub const PRIO_PGRP: i32 = 1;
pub const PRIO_USER: i32 = 2;

/// Scheduling policies (include/uapi/linux/sched.h).
pub const SCHED_OTHER: i32 = 0;
pub const SCHED_FIFO: i32 = 1;
pub const SCHED_RR: i32 = 2;
pub const SCHED_BATCH: i32 = 3;
pub const SCHED_IDLE: i32 = 5;
pub const SCHED_DEADLINE: i32 = 6;
pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// The scheduling attributes of the program's thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scheduling {
    /// -20 (most favoured) to 19.
    pub nice: i32,
    /// A SCHED_* policy, with SCHED_RESET_ON_FORK if asked.
    pub policy: i32,
    /// sched_priority: 1 to 99 for SCHED_FIFO and SCHED_RR, 0 otherwise.
    pub priority: i32,
}

/// membarrier(2) commands (include/uapi/linux/membarrier.h).
pub const MEMBARRIER_CMD_QUERY: i32 = 0;
pub const MEMBARRIER_CMD_GLOBAL: i32 = 1;
pub const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i32 = 2;
pub const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 4;
pub const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 8;
pub const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 16;
pub const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 32;
pub const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 64;
/// The commands Pith has: all but the rseq ones (no rseq) and GET_REGISTRATIONS (Linux 6.3).
const MEMBARRIER_SUPPORTED: i32 = 127;

/// Implements membarrier(2). One CPU runs the program's one thread, so every barrier it asks
/// for already holds when the call returns (the syscall itself orders memory); what is
/// checked is what Linux checks: the flags, and registration before a private expedited
/// barrier (EPERM).
pub fn membarrier(
    context: &mut Context,
    command: i32,
    flags: u32,
    _cpu: i32,
) -> Result<i32, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let registered = &mut context.process.membarrier_registrations;
    match command {
        MEMBARRIER_CMD_QUERY => Ok(MEMBARRIER_SUPPORTED),
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => Ok(0),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            *registered |= command;
            Ok(0)
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            // Each needs its REGISTER command (the next bit up) first.
            if *registered & (command << 1) == 0 {
                return Err(Errno::EPERM);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Whether `who` of kind `which` names the program (pid, process group and session are all
/// its pid; the user is root), as Linux's lookup would find it; ESRCH if not, EINVAL for an
/// unknown `which`.
fn names_the_program(context: &Context, which: i32, who: i32) -> Result<(), Errno> {
    let found = match which {
        PRIO_PROCESS => who == 0 || context.process.threads.exists(who),
        PRIO_PGRP => who == 0 || who == context.process.pid,
        PRIO_USER => who == 0, // uid 0: root, the program's user
        _ => return Err(Errno::EINVAL),
    };
    if found {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// Implements getpriority(2): as the raw syscall, 20 - nice (1 to 40), never negative.
pub fn getpriority(context: &mut Context, which: i32, who: i32) -> Result<i64, Errno> {
    names_the_program(context, which, who)?;
    Ok((20 - context.process.scheduling.nice) as i64)
}

/// Implements setpriority(2): the nice value, clamped to -20..=19 as Linux does. The program
/// runs as root, so lowering it is allowed.
pub fn setpriority(context: &mut Context, which: i32, who: i32, nice: i32) -> Result<(), Errno> {
    names_the_program(context, which, who)?;
    context.process.scheduling.nice = nice.clamp(-20, 19);
    Ok(())
}

/// The program's pid or 0; EINVAL for a negative pid, ESRCH for another.
fn find_task(context: &Context, pid: i32) -> Result<(), Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && !context.process.threads.exists(pid) {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

/// The priority range of a policy: sched_get_priority_min/max.
fn priority_range(policy: i32) -> Result<(i32, i32), Errno> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_setscheduler and sched_setparam (`policy` None: keep it). As Linux: the parameter is
/// read before the pid is looked up; SCHED_DEADLINE needs sched_setattr (EINVAL here).
fn set_scheduler(
    context: &mut Context,
    pid: i32,
    policy: Option<i32>,
    param: UserAddr,
) -> Result<(), Errno> {
    if param.is_null() || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority: i32 = context.read_struct(param.0)?;
    find_task(context, pid)?;
    let current = context.process.scheduling.policy;
    let policy = policy.unwrap_or(current);
    let base = policy & !SCHED_RESET_ON_FORK;
    if base == SCHED_DEADLINE {
        return Err(Errno::EINVAL);
    }
    let (lowest, highest) = priority_range(base)?;
    if !(lowest..=highest).contains(&priority) {
        return Err(Errno::EINVAL);
    }
    context.process.scheduling.policy = policy;
    context.process.scheduling.priority = priority;
    Ok(())
}

/// Implements sched_setscheduler(2).
pub fn sched_setscheduler(
    context: &mut Context,
    pid: i32,
    policy: i32,
    param: UserAddr,
) -> Result<(), Errno> {
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    set_scheduler(context, pid, Some(policy), param)
}

/// Implements sched_setparam(2).
pub fn sched_setparam(context: &mut Context, pid: i32, param: UserAddr) -> Result<(), Errno> {
    set_scheduler(context, pid, None, param)
}

/// Implements sched_getscheduler(2).
pub fn sched_getscheduler(context: &mut Context, pid: i32) -> Result<i32, Errno> {
    find_task(context, pid)?;
    Ok(context.process.scheduling.policy)
}

/// Implements sched_getparam(2).
pub fn sched_getparam(context: &mut Context, pid: i32, param: UserAddr) -> Result<(), Errno> {
    if param.is_null() || pid < 0 {
        return Err(Errno::EINVAL);
    }
    find_task(context, pid)?;
    let priority = context.process.scheduling.priority;
    context.write_struct(param.0, &priority)
}

/// Implements sched_get_priority_max(2).
pub fn sched_get_priority_max(_context: &mut Context, policy: i32) -> Result<i32, Errno> {
    Ok(priority_range(policy)?.1)
}

/// Implements sched_get_priority_min(2).
pub fn sched_get_priority_min(_context: &mut Context, policy: i32) -> Result<i32, Errno> {
    Ok(priority_range(policy)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMachine;

    #[test]
    fn niceness_is_recorded_clamped_and_read_back_as_20_minus_nice() {
        let mut machine = TestMachine::new();
        assert_eq!(
            machine.call(140, [PRIO_PROCESS as u64, 0, 0, 0, 0, 0]),
            Ok(20)
        );
        assert_eq!(
            machine.call(141, [PRIO_PROCESS as u64, 0, 5, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(
            machine.call(140, [PRIO_PROCESS as u64, 1, 0, 0, 0, 0]),
            Ok(15)
        );
        assert_eq!(
            machine.call(141, [PRIO_USER as u64, 0, 100, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.call(140, [PRIO_PGRP as u64, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(
            machine.call(140, [PRIO_PROCESS as u64, 2, 0, 0, 0, 0]),
            Err(Errno::ESRCH)
        );
        assert_eq!(
            machine.call(140, [PRIO_USER as u64, 1000, 0, 0, 0, 0]),
            Err(Errno::ESRCH)
        );
        assert_eq!(machine.call(140, [3, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
    }

    #[test]
    fn membarrier_checks_registration_and_flags() {
        let mut machine = TestMachine::new();
        assert_eq!(machine.call(324, [0; 6]), Ok(127));
        assert_eq!(
            machine.call(324, [MEMBARRIER_CMD_GLOBAL as u64, 0, 0, 0, 0, 0]),
            Ok(0)
        );
        let private = MEMBARRIER_CMD_PRIVATE_EXPEDITED as u64;
        assert_eq!(
            machine.call(324, [private, 0, 0, 0, 0, 0]),
            Err(Errno::EPERM)
        );
        let register = MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED as u64;
        assert_eq!(machine.call(324, [register, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(324, [private, 0, 0, 0, 0, 0]), Ok(0));
        let sync_core = MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE as u64;
        assert_eq!(
            machine.call(324, [sync_core, 0, 0, 0, 0, 0]),
            Err(Errno::EPERM)
        );
        assert_eq!(
            machine.call(324, [private, 1, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(324, [128, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
    }

    #[test]
    fn policies_and_priorities_follow_linux_rules() {
        let mut machine = TestMachine::new();
        let param = machine.scratch(4);
        machine.write_u64(param, 10);
        assert_eq!(
            machine.call(145, [0, 0, 0, 0, 0, 0]),
            Ok(SCHED_OTHER as u64)
        );
        // SCHED_OTHER takes priority 0 only; SCHED_FIFO 1 to 99.
        assert_eq!(
            machine.call(144, [0, SCHED_OTHER as u64, param, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(144, [0, SCHED_FIFO as u64, param, 0, 0, 0]),
            Ok(0)
        );
        assert_eq!(machine.call(145, [1, 0, 0, 0, 0, 0]), Ok(SCHED_FIFO as u64));
        let out = machine.scratch(4);
        assert_eq!(machine.call(143, [0, out, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.read_u64(out) & 0xffff_ffff, 10);
        machine.write_u64(param, 0);
        assert_eq!(
            machine.call(142, [0, param, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(144, [0, SCHED_DEADLINE as u64, param, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(144, [0, 4, param, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(144, [0, SCHED_BATCH as u64, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            machine.call(144, [7, SCHED_BATCH as u64, param, 0, 0, 0]),
            Err(Errno::ESRCH)
        );
        assert_eq!(
            machine.call(145, [(-1i64) as u64, 0, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(machine.call(146, [SCHED_RR as u64, 0, 0, 0, 0, 0]), Ok(99));
        assert_eq!(machine.call(147, [SCHED_RR as u64, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(machine.call(147, [SCHED_IDLE as u64, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(machine.call(146, [4, 0, 0, 0, 0, 0]), Err(Errno::EINVAL));
    }
}
