//! The mount table and path resolution as Linux's namei does it: absolute and relative paths,
//! `.` and `..` (which leave a mounted filesystem through its mount point, and stop at `/`),
//! symlinks anywhere in the path (40 at most in all: ELOOP), ENOTDIR, ENAMETOOLONG for a path
//! of PATH_MAX bytes or a component over NAME_MAX, and a trailing slash that asks for a
//! directory.

use crate::node::*;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// PATH_MAX, the terminating NUL included.
pub const PATH_MAX: usize = 4096;
/// MAXSYMLINKS: how many symlinks one resolution follows.
pub const MAX_SYMLINKS: u32 = 40;

pub type MountId = usize;

/// A node anywhere in the tree: which mounted filesystem, which node in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    pub mount: MountId,
    pub ino: Ino,
}

struct Mount {
    fs: Box<dyn FileSystem + Send>,
    /// The directory it covers, in the filesystem it is mounted on (None for `/`).
    covers: Option<Node>,
    /// Where it is mounted and what it is, for /proc/mounts.
    path: Vec<u8>,
    kind: &'static str,
}

/// The tree of mounted filesystems.
pub struct Vfs {
    mounts: Vec<Mount>,
    /// Mount points: the covered directory -> the filesystem mounted there.
    mounted_on: BTreeMap<Node, MountId>,
}

/// What resolving a path for a create, unlink or rename gives: the directory the last
/// component is in, and that component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub dir: Node,
    /// The last component; "." or ".." when the path ends with one, empty for "/".
    pub name: Vec<u8>,
    /// The path ended with '/': the last component must be a directory.
    pub trailing_slash: bool,
}

/// openat2's RESOLVE_* restrictions on a path walk (include/uapi/linux/openat2.h).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// RESOLVE_NO_XDEV: crossing a mount point, either way, is EXDEV.
    pub no_xdev: bool,
    /// RESOLVE_NO_SYMLINKS: any symlink on the way is ELOOP.
    pub no_symlinks: bool,
    /// RESOLVE_BENEATH: leaving the starting directory (an absolute path or symlink, `..`
    /// above it) is EXDEV.
    pub beneath: bool,
    /// RESOLVE_IN_ROOT: the starting directory is `/` for this walk (absolute paths and
    /// symlinks start there, `..` stops there).
    pub in_root: bool,
}

/// A walk's rules: where `/` is, what it may not leave, and the restrictions.
struct Rules {
    root: Node,
    beneath: Option<Node>,
    restrictions: Restrictions,
}

impl Vfs {
    /// A tree whose `/` is `root` (of kind `kind`, for /proc/mounts).
    pub fn new(root: Box<dyn FileSystem + Send>, kind: &'static str) -> Vfs {
        Vfs {
            mounts: alloc::vec![Mount {
                fs: root,
                covers: None,
                path: b"/".to_vec(),
                kind,
            }],
            mounted_on: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> Node {
        Node {
            mount: 0,
            ino: self.mounts[0].fs.root(),
        }
    }

    /// Mounts `fs` on the directory `path` names (resolved from `/`).
    pub fn mount(
        &mut self,
        path: &[u8],
        fs: Box<dyn FileSystem + Send>,
        kind: &'static str,
    ) -> Result<MountId, Error> {
        let at = self.resolve(self.root(), path, true)?;
        if self.kind(at)? != FileType::Directory {
            return Err(Error::NotDirectory);
        }
        if self.mounted_on.contains_key(&at) {
            return Err(Error::Busy);
        }
        let id = self.mounts.len();
        self.mounts.push(Mount {
            fs,
            covers: Some(at),
            path: path.to_vec(),
            kind,
        });
        self.mounted_on.insert(at, id);
        Ok(id)
    }

    /// Puts a mount behind `ReadOnly` (MS_RDONLY): from now on every change in it is EROFS.
    pub fn make_read_only(&mut self, mount: MountId) -> Result<(), Error> {
        if mount >= self.mounts.len() {
            return Err(Error::NotFound);
        }
        if self.mounts[mount].fs.read_only() {
            return Ok(());
        }
        // Out and back in at the same index, so that no MountId changes.
        let Mount {
            fs,
            covers,
            path,
            kind,
        } = self.mounts.remove(mount);
        self.mounts.insert(
            mount,
            Mount {
                fs: Box::new(crate::readonly::ReadOnly { inner: fs }),
                covers,
                path,
                kind,
            },
        );
        Ok(())
    }

    /// The filesystem a node is in.
    pub fn fs(&self, mount: MountId) -> Result<&(dyn FileSystem + Send), Error> {
        self.mounts
            .get(mount)
            .map(|mount| &*mount.fs)
            .ok_or(Error::NotFound)
    }

    pub fn fs_mut(&mut self, mount: MountId) -> Result<&mut (dyn FileSystem + Send), Error> {
        match self.mounts.get_mut(mount) {
            Some(mount) => Ok(&mut *mount.fs),
            None => Err(Error::NotFound),
        }
    }

    pub fn metadata(&self, node: Node) -> Result<Metadata, Error> {
        self.fs(node.mount)?.metadata(node.ino)
    }

    /// The node's type (`FileSystem::kind`).
    pub fn kind(&self, node: Node) -> Result<FileType, Error> {
        self.fs(node.mount)?.kind(node.ino)
    }

    /// /proc/mounts: one line per mount, as Linux writes them.
    pub fn mounts_text(&self) -> Vec<u8> {
        let mut text = Vec::new();
        for mount in &self.mounts {
            for part in [
                mount.kind.as_bytes(),
                b" ",
                &mount.path,
                b" ",
                mount.kind.as_bytes(),
            ] {
                text.extend_from_slice(part);
            }
            text.extend_from_slice(if mount.fs.read_only() {
                b" ro,relatime 0 0\n"
            } else {
                b" rw,relatime 0 0\n"
            });
        }
        text
    }

    /// The node a mount point shows: the root of what is mounted there, if anything is.
    fn cross_mounts(&self, mut node: Node) -> Node {
        while let Some(&mount) = self.mounted_on.get(&node) {
            node = Node {
                mount,
                ino: self.mounts[mount].fs.root(),
            };
        }
        node
    }

    /// `..` of `dir`: out of a mounted filesystem through its mount point; `/` is its own.
    fn parent_of(&self, mut dir: Node) -> Result<Node, Error> {
        loop {
            let fs = self.fs(dir.mount)?;
            if dir.ino != fs.root() {
                let parent = fs.lookup(dir.ino, b"..")?;
                return Ok(self.cross_mounts(Node {
                    mount: dir.mount,
                    ino: parent,
                }));
            }
            match self.mounts[dir.mount].covers {
                Some(covered) => dir = covered,
                None => return Ok(dir), // the root's parent is the root
            }
        }
    }

    fn step(&self, dir: Node, name: &[u8], rules: &Rules) -> Result<Node, Error> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        if self.kind(dir)? != FileType::Directory {
            return Err(Error::NotDirectory);
        }
        let next = match name {
            b"." => dir,
            b".." if dir == rules.root => dir,
            b".." if rules.beneath == Some(dir) => return Err(Error::CrossDevice),
            b".." => self.parent_of(dir)?,
            _ => {
                let ino = self.fs(dir.mount)?.lookup(dir.ino, name)?;
                self.cross_mounts(Node {
                    mount: dir.mount,
                    ino,
                })
            }
        };
        if rules.restrictions.no_xdev && next.mount != dir.mount {
            return Err(Error::CrossDevice);
        }
        Ok(next)
    }

    /// The ordinary rules: `/` is the tree's root, nothing restricted.
    fn plain_rules(&self) -> Rules {
        Rules {
            root: self.root(),
            beneath: None,
            restrictions: Restrictions::default(),
        }
    }

    /// `resolve` under openat2's restrictions, from `start` (the directory fd, or the working
    /// directory), which RESOLVE_BENEATH and RESOLVE_IN_ROOT take as the walk's limit.
    pub fn resolve_restricted(
        &self,
        start: Node,
        path: &[u8],
        follow_last: bool,
        restrictions: Restrictions,
    ) -> Result<Node, Error> {
        let rules = Rules {
            root: if restrictions.in_root {
                start
            } else {
                self.root()
            },
            beneath: restrictions.beneath.then_some(start),
            restrictions,
        };
        self.resolve_with(start, path, follow_last, &rules)
    }

    /// `resolve_parent` under openat2's restrictions (see `resolve_restricted`).
    pub fn resolve_parent_restricted(
        &self,
        start: Node,
        path: &[u8],
        restrictions: Restrictions,
    ) -> Result<Parent, Error> {
        let rules = Rules {
            root: if restrictions.in_root {
                start
            } else {
                self.root()
            },
            beneath: restrictions.beneath.then_some(start),
            restrictions,
        };
        self.walk(start, path, &mut MAX_SYMLINKS.clone(), &rules)
    }

    /// Resolves `path` from `start` (the working directory, or a directory fd's node).
    /// `follow_last`: a symlink as the last component is followed (not for lstat, O_NOFOLLOW,
    /// AT_SYMLINK_NOFOLLOW).
    pub fn resolve(&self, start: Node, path: &[u8], follow_last: bool) -> Result<Node, Error> {
        self.resolve_with(start, path, follow_last, &self.plain_rules())
    }

    fn resolve_with(
        &self,
        start: Node,
        path: &[u8],
        follow_last: bool,
        rules: &Rules,
    ) -> Result<Node, Error> {
        let mut budget = MAX_SYMLINKS;
        let parent = self.walk(start, path, &mut budget, rules)?;
        if parent.name.is_empty() {
            return Ok(parent.dir); // "/"
        }
        let node = self.step(parent.dir, &parent.name, rules)?;
        let must_be_directory = parent.trailing_slash;
        let node = if follow_last || must_be_directory {
            self.follow(parent.dir, node, &mut budget, rules)?
        } else {
            node
        };
        if must_be_directory && self.kind(node)? != FileType::Directory {
            return Err(Error::NotDirectory);
        }
        Ok(node)
    }

    /// If `node` (found in `dir`) is a symlink, what it leads to (followed all the way).
    fn follow(
        &self,
        dir: Node,
        mut node: Node,
        budget: &mut u32,
        rules: &Rules,
    ) -> Result<Node, Error> {
        let mut dir = dir;
        while self.kind(node)? == FileType::Symlink {
            if *budget == 0 || rules.restrictions.no_symlinks {
                return Err(Error::Loop);
            }
            *budget -= 1;
            let target = self.fs(node.mount)?.read_link(node.ino)?;
            let parent = self.walk(dir, &target, budget, rules)?;
            if parent.name.is_empty() {
                return Ok(parent.dir);
            }
            let next = self.step(parent.dir, &parent.name, rules)?;
            if parent.trailing_slash {
                let followed = self.follow(parent.dir, next, budget, rules)?;
                if self.kind(followed)? != FileType::Directory {
                    return Err(Error::NotDirectory);
                }
                return Ok(followed);
            }
            dir = parent.dir;
            node = next;
        }
        Ok(node)
    }

    /// Resolves all but the last component of `path` (following every symlink on the way) and
    /// gives the directory and that component.
    pub fn resolve_parent(&self, start: Node, path: &[u8]) -> Result<Parent, Error> {
        self.walk(start, path, &mut MAX_SYMLINKS.clone(), &self.plain_rules())
    }

    fn walk(
        &self,
        start: Node,
        path: &[u8],
        budget: &mut u32,
        rules: &Rules,
    ) -> Result<Parent, Error> {
        if path.is_empty() {
            return Err(Error::NotFound);
        }
        if path.len() >= PATH_MAX {
            return Err(Error::NameTooLong);
        }
        let mut dir = if path[0] == b'/' {
            if rules.beneath.is_some() {
                return Err(Error::CrossDevice);
            }
            rules.root
        } else {
            start
        };
        let trailing_slash = path.len() > 1 && path.ends_with(b"/");
        let mut components: VecDeque<&[u8]> = path
            .split(|&byte| byte == b'/')
            .filter(|component| !component.is_empty())
            .collect();
        let Some(last) = components.pop_back() else {
            return Ok(Parent {
                dir,
                name: Vec::new(),
                trailing_slash: false,
            });
        };
        while let Some(name) = components.pop_front() {
            let node = self.step(dir, name, rules)?;
            let node = self.follow(dir, node, budget, rules)?;
            if self.kind(node)? != FileType::Directory {
                return Err(Error::NotDirectory);
            }
            dir = node;
        }
        if last.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        if self.kind(dir)? != FileType::Directory {
            return Err(Error::NotDirectory);
        }
        Ok(Parent {
            dir,
            name: last.to_vec(),
            trailing_slash,
        })
    }

    /// The absolute path of directory `dir` (getcwd), walking `..` up to `/`.
    pub fn path_of(&self, dir: Node) -> Result<Vec<u8>, Error> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut node = dir;
        let root = self.root();
        while node != root {
            let parent = self.parent_of(node)?;
            let name = self.name_in(parent, node)?;
            parts.push(name);
            node = parent;
        }
        let mut path = Vec::new();
        for part in parts.iter().rev() {
            path.push(b'/');
            path.extend_from_slice(part);
        }
        if path.is_empty() {
            path.push(b'/');
        }
        Ok(path)
    }

    /// The name `child` has in directory `parent` (a mounted root: its mount point's name).
    fn name_in(&self, parent: Node, child: Node) -> Result<Vec<u8>, Error> {
        // A filesystem's root is known in its parent by the directory it covers.
        let child = if child.ino == self.fs(child.mount)?.root() {
            self.mounts[child.mount].covers.unwrap_or(child)
        } else {
            child
        };
        if parent.mount != child.mount {
            return Err(Error::NotFound);
        }
        let fs = self.fs(parent.mount)?;
        let mut position = 2;
        while let Some((entry, next)) = fs.read_dir(parent.ino, position)? {
            if entry.ino == child.ino {
                return Ok(entry.name);
            }
            position = next;
        }
        Err(Error::NotFound) // the directory was removed (getcwd's "(unreachable)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfs::MemFs;

    const NOW: Timestamp = Timestamp {
        seconds: 1,
        nanoseconds: 0,
    };
    const CREATE: Creation = Creation {
        permissions: 0o755,
        uid: 0,
        gid: 0,
        now: NOW,
    };

    fn tree() -> Vfs {
        let mut vfs = Vfs::new(Box::new(MemFs::new(0o755, 1 << 20, NOW)), "tmpfs");
        let root = vfs.root();
        let fs = vfs.fs_mut(0).unwrap();
        let usr = fs
            .create(root.ino, b"usr", NewNode::Directory, CREATE)
            .unwrap();
        let bin = fs.create(usr, b"bin", NewNode::Directory, CREATE).unwrap();
        fs.create(bin, b"prog", NewNode::Regular, CREATE).unwrap();
        fs.create(root.ino, b"tmp", NewNode::Directory, CREATE)
            .unwrap();
        fs.create(
            root.ino,
            b"bin",
            NewNode::Symlink(b"usr/bin".to_vec()),
            CREATE,
        )
        .unwrap();
        fs.create(
            root.ino,
            b"loop",
            NewNode::Symlink(b"loop".to_vec()),
            CREATE,
        )
        .unwrap();
        fs.create(
            root.ino,
            b"abs",
            NewNode::Symlink(b"/usr/bin/prog".to_vec()),
            CREATE,
        )
        .unwrap();
        vfs.mount(b"/tmp", Box::new(MemFs::new(0o1777, 1 << 20, NOW)), "tmpfs")
            .unwrap();
        vfs
    }

    #[test]
    fn paths_resolve_through_symlinks_dots_and_mounts() {
        let vfs = tree();
        let root = vfs.root();
        let prog = vfs.resolve(root, b"/usr/bin/prog", true).unwrap();
        assert_eq!(vfs.resolve(root, b"/bin/prog", true), Ok(prog));
        assert_eq!(vfs.resolve(root, b"bin/../bin/./prog", true), Ok(prog));
        assert_eq!(vfs.resolve(root, b"/abs", true), Ok(prog));
        assert_ne!(
            vfs.resolve(root, b"/abs", false),
            Ok(prog),
            "lstat sees the link"
        );
        assert_eq!(vfs.resolve(root, b"/loop", true), Err(Error::Loop));
        assert_eq!(
            vfs.resolve(root, b"/usr/bin/prog/x", true),
            Err(Error::NotDirectory)
        );
        assert_eq!(
            vfs.resolve(root, b"/usr/bin/prog/", true),
            Err(Error::NotDirectory)
        );
        assert_eq!(vfs.resolve(root, b"/nope/x", true), Err(Error::NotFound));
        assert_eq!(vfs.resolve(root, b"", true), Err(Error::NotFound));
        assert_eq!(
            vfs.resolve(root, b"/..", true),
            Ok(root),
            "the root is its own parent"
        );
        let long = alloc::vec![b'a'; 256];
        assert_eq!(vfs.resolve(root, &long, true), Err(Error::NameTooLong));
        let tmp = vfs.resolve(root, b"/tmp", true).unwrap();
        assert_eq!(tmp.mount, 1, "a mount point shows the mounted root");
        assert_eq!(vfs.resolve(tmp, b"..", true), Ok(root));
        assert_eq!(vfs.resolve(tmp, b"../usr/bin/prog", true), Ok(prog));
        let bin = vfs.resolve(root, b"/bin", true).unwrap();
        assert_eq!(vfs.path_of(bin).unwrap(), b"/usr/bin");
        assert_eq!(vfs.path_of(tmp).unwrap(), b"/tmp");
        assert_eq!(vfs.path_of(root).unwrap(), b"/");
    }

    #[test]
    fn the_parent_of_a_path_is_where_it_would_be_made() {
        let vfs = tree();
        let root = vfs.root();
        let parent = vfs.resolve_parent(root, b"/bin/new/").unwrap();
        assert_eq!(parent.dir, vfs.resolve(root, b"/usr/bin", true).unwrap());
        assert_eq!(
            (parent.name.as_slice(), parent.trailing_slash),
            (&b"new"[..], true)
        );
        assert_eq!(
            vfs.resolve_parent(root, b"/usr/bin/prog/new"),
            Err(Error::NotDirectory)
        );
        let tmp_file = vfs.resolve_parent(root, b"/tmp/f").unwrap();
        assert_eq!(tmp_file.dir.mount, 1);
        assert!(vfs.mounts_text().starts_with(b"tmpfs / tmpfs rw"));
    }

    #[test]
    fn a_read_only_mount_refuses_every_change_and_reads_as_before() {
        let mut vfs = tree();
        let root = vfs.root();
        let prog = vfs.resolve(root, b"/usr/bin/prog", true).unwrap();
        vfs.fs_mut(0)
            .unwrap()
            .write(prog.ino, 0, b"text", NOW)
            .unwrap();
        vfs.make_read_only(0).unwrap();
        assert_eq!(
            vfs.resolve(root, b"/bin/prog", true),
            Ok(prog),
            "mount ids unchanged"
        );
        let fs = vfs.fs_mut(0).unwrap();
        assert!(fs.read_only());
        let mut buffer = [0u8; 8];
        assert_eq!(fs.read(prog.ino, 0, &mut buffer), Ok(4));
        assert_eq!(fs.write(prog.ino, 0, b"x", NOW), Err(Error::ReadOnly));
        assert_eq!(fs.truncate(prog.ino, 0, NOW), Err(Error::ReadOnly));
        assert_eq!(
            fs.create(root.ino, b"new", NewNode::Regular, CREATE),
            Err(Error::ReadOnly)
        );
        assert_eq!(fs.unlink(root.ino, b"abs", NOW), Err(Error::ReadOnly));
        assert_eq!(
            fs.set_attributes(prog.ino, Changes::default(), NOW),
            Err(Error::ReadOnly)
        );
        // /tmp, mounted on it, stays writable.
        let tmp = vfs.resolve(root, b"/tmp", true).unwrap();
        let tmp_fs = vfs.fs_mut(tmp.mount).unwrap();
        assert!(tmp_fs
            .create(tmp.ino, b"f", NewNode::Regular, CREATE)
            .is_ok());
        assert!(vfs
            .mounts_text()
            .starts_with(b"tmpfs / tmpfs ro,relatime 0 0\ntmpfs /tmp tmpfs rw"));
    }

    #[test]
    fn restricted_walks_refuse_what_openat2_refuses() {
        let vfs = tree();
        let root = vfs.root();
        let usr = vfs.resolve(root, b"/usr", true).unwrap();
        let prog = vfs.resolve(root, b"/usr/bin/prog", true).unwrap();
        let beneath = Restrictions {
            beneath: true,
            ..Restrictions::default()
        };
        assert_eq!(
            vfs.resolve_restricted(usr, b"bin/prog", true, beneath),
            Ok(prog)
        );
        assert_eq!(
            vfs.resolve_restricted(usr, b"bin/../bin/prog", true, beneath),
            Ok(prog)
        );
        assert_eq!(
            vfs.resolve_restricted(usr, b"../usr/bin/prog", true, beneath),
            Err(Error::CrossDevice)
        );
        assert_eq!(
            vfs.resolve_restricted(usr, b"/usr/bin/prog", true, beneath),
            Err(Error::CrossDevice)
        );
        // /abs -> /usr/bin/prog: absolute, so it leaves.
        assert_eq!(
            vfs.resolve_restricted(root, b"abs", true, beneath),
            Err(Error::CrossDevice)
        );

        let in_root = Restrictions {
            in_root: true,
            ..Restrictions::default()
        };
        let bin = vfs.resolve(root, b"/usr/bin", true).unwrap();
        assert_eq!(
            vfs.resolve_restricted(usr, b"/bin/prog", true, in_root),
            Ok(prog)
        );
        assert_eq!(
            vfs.resolve_restricted(usr, b"../../bin", true, in_root),
            Ok(bin)
        );

        let no_symlinks = Restrictions {
            no_symlinks: true,
            ..Restrictions::default()
        };
        assert_eq!(
            vfs.resolve_restricted(root, b"/bin/prog", true, no_symlinks),
            Err(Error::Loop)
        );
        assert!(vfs
            .resolve_restricted(root, b"/abs", false, no_symlinks)
            .is_ok());

        let no_xdev = Restrictions {
            no_xdev: true,
            ..Restrictions::default()
        };
        assert_eq!(
            vfs.resolve_restricted(root, b"/tmp", true, no_xdev),
            Err(Error::CrossDevice)
        );
        let tmp = vfs.resolve(root, b"/tmp", true).unwrap();
        assert_eq!(
            vfs.resolve_restricted(tmp, b"..", true, no_xdev),
            Err(Error::CrossDevice)
        );
        assert_eq!(
            vfs.resolve_restricted(root, b"/usr/bin/prog", true, no_xdev),
            Ok(prog)
        );
    }
}
