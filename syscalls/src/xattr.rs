//! Extended attributes (getxattr(2) and its family). Pith's filesystems keep none: a read
//! finds no attribute (ENODATA, Linux's answer for a file that has none), a list is empty, and
//! setting or removing one is EOPNOTSUPP, Linux's answer on a filesystem without xattr
//! support. The file (path or fd) and the name are checked first, in Linux's order
//! (fs/xattr.c), so a missing file is still ENOENT and a bad name ERANGE: `ls -l`, `cp -a`
//! and Python's `shutil.copystat` then behave as on such a filesystem.

use crate::args::{Fd, UserAddr, UserPath};
use crate::errno::Errno;
use crate::files::resolve_at;
use crate::fs::AT_FDCWD;
use crate::platform::{Context, PATH_MAX};

/// XATTR_NAME_MAX (include/uapi/linux/limits.h).
const XATTR_NAME_MAX: usize = 255;
/// setxattr's flags (include/uapi/linux/xattr.h).
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

/// The file a path names (following a last symlink unless `follow` is false).
fn check_path(context: &Context, path: UserPath, follow: bool) -> Result<(), Errno> {
    let path = context.read_c_string(path.0, PATH_MAX - 1)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    resolve_at(context, Fd(AT_FDCWD), &path, follow).map(|_| ())
}

fn check_fd(context: &Context, fd: Fd) -> Result<(), Errno> {
    context.process.files.get(fd).map(|_| ())
}

/// An attribute's name: 1 to XATTR_NAME_MAX bytes, else ERANGE.
fn check_name(context: &Context, name: UserAddr) -> Result<(), Errno> {
    let name = context.read_c_string(name.0, XATTR_NAME_MAX + 1)?;
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(())
}

fn check_flags(flags: i32) -> Result<(), Errno> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Implements getxattr(2).
pub fn getxattr(
    context: &mut Context,
    path: UserPath,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_path(context, path, true)?;
    check_name(context, name)?;
    Err(Errno::ENODATA)
}

/// Implements lgetxattr(2).
pub fn lgetxattr(
    context: &mut Context,
    path: UserPath,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_path(context, path, false)?;
    check_name(context, name)?;
    Err(Errno::ENODATA)
}

/// Implements fgetxattr(2).
pub fn fgetxattr(
    context: &mut Context,
    fd: Fd,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_fd(context, fd)?;
    check_name(context, name)?;
    Err(Errno::ENODATA)
}

/// Implements listxattr(2): no names.
pub fn listxattr(
    context: &mut Context,
    path: UserPath,
    _list: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_path(context, path, true).map(|()| 0)
}

/// Implements llistxattr(2).
pub fn llistxattr(
    context: &mut Context,
    path: UserPath,
    _list: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_path(context, path, false).map(|()| 0)
}

/// Implements flistxattr(2).
pub fn flistxattr(
    context: &mut Context,
    fd: Fd,
    _list: UserAddr,
    _size: usize,
) -> Result<usize, Errno> {
    check_fd(context, fd).map(|()| 0)
}

/// Implements setxattr(2).
pub fn setxattr(
    context: &mut Context,
    path: UserPath,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
    flags: i32,
) -> Result<(), Errno> {
    check_flags(flags)?;
    check_path(context, path, true)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// Implements lsetxattr(2).
pub fn lsetxattr(
    context: &mut Context,
    path: UserPath,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
    flags: i32,
) -> Result<(), Errno> {
    check_flags(flags)?;
    check_path(context, path, false)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// Implements fsetxattr(2).
pub fn fsetxattr(
    context: &mut Context,
    fd: Fd,
    name: UserAddr,
    _value: UserAddr,
    _size: usize,
    flags: i32,
) -> Result<(), Errno> {
    check_flags(flags)?;
    check_fd(context, fd)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// Implements removexattr(2).
pub fn removexattr(context: &mut Context, path: UserPath, name: UserAddr) -> Result<(), Errno> {
    check_path(context, path, true)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// Implements lremovexattr(2).
pub fn lremovexattr(context: &mut Context, path: UserPath, name: UserAddr) -> Result<(), Errno> {
    check_path(context, path, false)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// Implements fremovexattr(2).
pub fn fremovexattr(context: &mut Context, fd: Fd, name: UserAddr) -> Result<(), Errno> {
    check_fd(context, fd)?;
    check_name(context, name)?;
    Err(Errno::EOPNOTSUPP)
}
