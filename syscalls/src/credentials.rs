//! The user and group IDs the program runs as: real, effective, saved and filesystem IDs,
//! and the supplementary groups, with Linux's rules for changing them (kernel/sys.c). The
//! program starts as root, which may take any IDs; once its effective user ID is not 0 it
//! may only move among the IDs it holds, as on Linux without capabilities.
//!
//! Pith checks no file permissions (it has one user, and the program runs in ring 0 beside
//! the kernel): the IDs are kept and reported (getresuid, /proc/self/status, new files'
//! owners are not changed by them), which is what servers that drop root at start (nginx,
//! memcached, redis) look at. docs/syscalls.md lists the calls as partial for that.

use crate::args::UserAddr;
use crate::errno::Errno;
use crate::platform::Context;
use alloc::vec::Vec;

/// NGROUPS_MAX (include/uapi/linux/limits.h).
const NGROUPS_MAX: usize = 65536;
/// -1 as an ID argument: "leave it as it is" (setreuid, setresuid and their gid kin).
const UNCHANGED: u32 = u32::MAX;

/// One kind of ID (user or group): real, effective, saved set-ID and filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub filesystem: u32,
}

impl Ids {
    fn holds(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// setuid(2)/setgid(2): `privileged` sets all four; otherwise the effective (and
    /// filesystem) ID may become the real or saved one.
    fn set(&mut self, id: u32, privileged: bool) -> Result<(), Errno> {
        if id == UNCHANGED {
            return Err(Errno::EINVAL);
        }
        if privileged {
            *self = Ids {
                real: id,
                effective: id,
                saved: id,
                filesystem: id,
            };
        } else if id == self.real || id == self.saved {
            self.effective = id;
            self.filesystem = id;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setreuid(2)/setregid(2): the real ID may become the effective one, the effective any
    /// held; the saved ID follows the new effective one when the real ID is set or the
    /// effective one set to other than the old real ID.
    fn set_real_effective(
        &mut self,
        real: u32,
        effective: u32,
        privileged: bool,
    ) -> Result<(), Errno> {
        let old = *self;
        let mut new = old;
        if real != UNCHANGED {
            if !privileged && real != old.real && real != old.effective {
                return Err(Errno::EPERM);
            }
            new.real = real;
        }
        if effective != UNCHANGED {
            if !privileged && !old.holds(effective) {
                return Err(Errno::EPERM);
            }
            new.effective = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old.real) {
            new.saved = new.effective;
        }
        new.filesystem = new.effective;
        *self = new;
        Ok(())
    }

    /// setresuid(2)/setresgid(2): unprivileged, each new ID must be one already held.
    fn set_all(
        &mut self,
        real: u32,
        effective: u32,
        saved: u32,
        privileged: bool,
    ) -> Result<(), Errno> {
        let wanted = [real, effective, saved];
        if !privileged && wanted.iter().any(|&id| id != UNCHANGED && !self.holds(id)) {
            return Err(Errno::EPERM);
        }
        if real != UNCHANGED {
            self.real = real;
        }
        if effective != UNCHANGED {
            self.effective = effective;
        }
        if saved != UNCHANGED {
            self.saved = saved;
        }
        self.filesystem = self.effective;
        Ok(())
    }

    /// setfsuid(2)/setfsgid(2): the old filesystem ID, whether or not it changed.
    fn set_filesystem(&mut self, id: u32, privileged: bool) -> u32 {
        let old = self.filesystem;
        if id != UNCHANGED && (privileged || self.holds(id) || id == self.filesystem) {
            self.filesystem = id;
        }
        old
    }
}

/// The process's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: Ids,
    pub group: Ids,
    /// The supplementary group IDs, sorted (setgroups(2)); none at start.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// Whether the process may set any IDs (CAP_SETUID and CAP_SETGID): root's effective
    /// user ID, as Linux gives capabilities to it.
    fn privileged(&self) -> bool {
        self.user.effective == 0
    }
}

fn credentials<'a>(context: &'a mut Context) -> &'a mut Credentials {
    &mut context.process.credentials
}

/// Writes three IDs to three user addresses (getresuid, getresgid).
fn write_three(
    context: &mut Context,
    ids: [u32; 3],
    addresses: [UserAddr; 3],
) -> Result<(), Errno> {
    for (id, address) in ids.into_iter().zip(addresses) {
        context.platform.write_user(address.0, &id.to_le_bytes())?;
    }
    Ok(())
}

/// Implements getuid(2).
pub fn getuid(context: &mut Context) -> Result<i32, Errno> {
    Ok(credentials(context).user.real as i32)
}

/// Implements geteuid(2).
pub fn geteuid(context: &mut Context) -> Result<i32, Errno> {
    Ok(credentials(context).user.effective as i32)
}

/// Implements getgid(2).
pub fn getgid(context: &mut Context) -> Result<i32, Errno> {
    Ok(credentials(context).group.real as i32)
}

/// Implements getegid(2).
pub fn getegid(context: &mut Context) -> Result<i32, Errno> {
    Ok(credentials(context).group.effective as i32)
}

/// Implements setuid(2).
pub fn setuid(context: &mut Context, uid: u32) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials.user.set(uid, privileged)
}

/// Implements setgid(2).
pub fn setgid(context: &mut Context, gid: u32) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials.group.set(gid, privileged)
}

/// Implements setreuid(2).
pub fn setreuid(context: &mut Context, real: u32, effective: u32) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials
        .user
        .set_real_effective(real, effective, privileged)
}

/// Implements setregid(2).
pub fn setregid(context: &mut Context, real: u32, effective: u32) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials
        .group
        .set_real_effective(real, effective, privileged)
}

/// Implements setresuid(2).
pub fn setresuid(
    context: &mut Context,
    real: u32,
    effective: u32,
    saved: u32,
) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials.user.set_all(real, effective, saved, privileged)
}

/// Implements setresgid(2).
pub fn setresgid(
    context: &mut Context,
    real: u32,
    effective: u32,
    saved: u32,
) -> Result<(), Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    credentials
        .group
        .set_all(real, effective, saved, privileged)
}

/// Implements getresuid(2).
pub fn getresuid(
    context: &mut Context,
    real: UserAddr,
    effective: UserAddr,
    saved: UserAddr,
) -> Result<(), Errno> {
    let ids = credentials(context).user;
    write_three(
        context,
        [ids.real, ids.effective, ids.saved],
        [real, effective, saved],
    )
}

/// Implements getresgid(2).
pub fn getresgid(
    context: &mut Context,
    real: UserAddr,
    effective: UserAddr,
    saved: UserAddr,
) -> Result<(), Errno> {
    let ids = credentials(context).group;
    write_three(
        context,
        [ids.real, ids.effective, ids.saved],
        [real, effective, saved],
    )
}

/// Implements setfsuid(2): the old filesystem user ID.
pub fn setfsuid(context: &mut Context, uid: u32) -> Result<i32, Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    Ok(credentials.user.set_filesystem(uid, privileged) as i32)
}

/// Implements setfsgid(2): the old filesystem group ID.
pub fn setfsgid(context: &mut Context, gid: u32) -> Result<i32, Errno> {
    let credentials = credentials(context);
    let privileged = credentials.privileged();
    Ok(credentials.group.set_filesystem(gid, privileged) as i32)
}

/// Implements getgroups(2): the supplementary groups setgroups set (none at start).
pub fn getgroups(context: &mut Context, size: i32, list: UserAddr) -> Result<i32, Errno> {
    let count = credentials(context).groups.len();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(count as i32);
    }
    if (size as usize) < count {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = credentials(context)
        .groups
        .iter()
        .flat_map(|group| group.to_le_bytes())
        .collect();
    context.platform.write_user(list.0, &bytes)?;
    Ok(count as i32)
}

/// Implements setgroups(2): root's (CAP_SETGID) only.
pub fn setgroups(context: &mut Context, size: usize, list: UserAddr) -> Result<(), Errno> {
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    if !credentials(context).privileged() {
        return Err(Errno::EPERM);
    }
    let bytes = context.read_bytes(list.0, size * 4)?;
    let mut groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|group| u32::from_le_bytes([group[0], group[1], group[2], group[3]]))
        .collect();
    groups.sort_unstable();
    credentials(context).groups = groups;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Ids {
        Ids::default()
    }

    #[test]
    fn root_drops_to_a_user_for_good_with_setuid() {
        let mut ids = root();
        ids.set(1000, true).unwrap();
        assert_eq!(
            ids,
            Ids {
                real: 1000,
                effective: 1000,
                saved: 1000,
                filesystem: 1000
            }
        );
        // No longer privileged: root is not held any more.
        assert_eq!(ids.set(0, false), Err(Errno::EPERM));
        assert_eq!(
            ids.set_all(0, UNCHANGED, UNCHANGED, false),
            Err(Errno::EPERM)
        );
        assert_eq!(ids.set(UNCHANGED, false), Err(Errno::EINVAL));
    }

    #[test]
    fn seteuid_keeps_root_in_the_saved_id_to_come_back_to() {
        let mut ids = root();
        // seteuid(1000) is setresuid(-1, 1000, -1) in glibc.
        ids.set_all(UNCHANGED, 1000, UNCHANGED, true).unwrap();
        assert_eq!(
            (ids.real, ids.effective, ids.saved, ids.filesystem),
            (0, 1000, 0, 1000)
        );
        // Unprivileged now, but 0 is held (real and saved).
        ids.set_all(UNCHANGED, 0, UNCHANGED, false).unwrap();
        assert_eq!(ids.effective, 0);
    }

    #[test]
    fn setreuid_moves_the_saved_id_as_linux_does() {
        let mut ids = Ids {
            real: 1000,
            effective: 1000,
            saved: 1000,
            filesystem: 1000,
        };
        assert_eq!(
            ids.set_real_effective(UNCHANGED, 2000, false),
            Err(Errno::EPERM)
        );
        let mut ids2 = root();
        ids2.set_real_effective(1000, 1001, true).unwrap();
        assert_eq!((ids2.real, ids2.effective, ids2.saved), (1000, 1001, 1001));
        // Swapping real and effective, unprivileged: allowed.
        ids2.set_real_effective(1001, 1000, false).unwrap();
        assert_eq!((ids2.real, ids2.effective, ids2.saved), (1001, 1000, 1000));
        ids.set_real_effective(UNCHANGED, 1000, false).unwrap();
        assert_eq!(ids.saved, 1000);
    }

    #[test]
    fn setfsuid_answers_the_old_id_even_when_refused() {
        let mut ids = Ids {
            real: 1000,
            effective: 1000,
            saved: 1000,
            filesystem: 1000,
        };
        assert_eq!(ids.set_filesystem(0, false), 1000);
        assert_eq!(ids.filesystem, 1000);
        assert_eq!(ids.set_filesystem(1000, false), 1000);
        let mut ids = root();
        assert_eq!(ids.set_filesystem(5, true), 0);
        assert_eq!(ids.filesystem, 5);
    }
}
