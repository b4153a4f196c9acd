//! A run's working directory in TMPDIR: the image and the console and host-link sockets.
//! `pith run` holds a lock on it for its whole life; a `pith` that was killed (SIGKILL, the
//! OOM killer: no chance to clean up) leaves its directory unlocked, and a later run deletes
//! it once it has not changed for a minute. An image can be tens of MB, so a test suite or a
//! supervisor that kills runs would otherwise fill /tmp. The lock is flock(2) on the
//! directory, which the kernel drops with the process; unlike a PID in the name, it holds
//! across PID namespaces sharing a /tmp.

use anyhow::Context;
use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::path::Path;

/// The names of run directories start so; others in TMPDIR are never touched.
const PREFIX: &str = "pith-run-";
/// A directory changed more recently is left be: a run locks its new directory a moment
/// after making it, and a run starting meanwhile must not take it for a killed one's.
const QUIET: std::time::Duration = std::time::Duration::from_secs(60);

/// A run's directory, deleted when dropped, and locked until then.
pub struct WorkDir {
    directory: tempfile::TempDir,
    /// Holds the lock: the kernel drops it when the file closes, with us or at our death.
    _lock: File,
}

impl WorkDir {
    /// Deletes what killed runs left in TMPDIR, then makes and locks a new directory.
    pub fn create() -> anyhow::Result<WorkDir> {
        let temp = std::env::temp_dir();
        sweep_abandoned(&temp);
        WorkDir::create_in(&temp)
    }

    fn create_in(parent: &Path) -> anyhow::Result<WorkDir> {
        let directory = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(parent)
            .context("creating a temporary directory for the image and the console and host-link sockets (set TMPDIR to a writable directory)")?;
        let lock = File::open(directory.path())
            .and_then(|file| {
                flock(&file, FlockOperation::NonBlockingLockExclusive)?;
                Ok(file)
            })
            .with_context(|| format!("locking {}", directory.path().display()))?;
        Ok(WorkDir {
            directory,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        self.directory.path()
    }
}

/// Deletes the run directories in `parent` that no live `pith` holds and that have not
/// changed for a minute; returns how many.
/// Errors (another user's directory, one going away meanwhile) leave a directory be.
pub fn sweep_abandoned(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_run = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX));
        if !is_run || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let quiet = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age >= QUIET));
        if !quiet {
            continue;
        }
        let Ok(directory) = File::open(entry.path()) else {
            continue;
        };
        // Taken: its run is gone. The lock is kept while deleting, so two runs sweeping at
        // once do not both try; and the path must still name the directory locked (another
        // sweep may have deleted it between our open and our lock).
        if flock(&directory, FlockOperation::NonBlockingLockExclusive).is_ok()
            && same_file(&directory, &entry.path())
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether `path` names the very directory `open` is (same device and inode).
fn same_file(open: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (open.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_directory_is_deleted_and_a_live_ones_is_kept() {
        let parent = tempfile::tempdir().unwrap();
        let live = WorkDir::create_in(parent.path()).unwrap();
        std::fs::write(live.path().join("image.pith"), b"live").unwrap();
        // A killed run: its directory stays, its lock goes with its file descriptor.
        let killed = WorkDir::create_in(parent.path()).unwrap();
        let killed_path = killed.path().to_path_buf();
        std::fs::write(killed_path.join("image.pith"), b"killed").unwrap();
        let WorkDir { directory, _lock } = killed;
        let _ = directory.keep();
        drop(_lock);
        // Not a run directory: never touched.
        let other = parent.path().join("pith-XYZ123");
        std::fs::create_dir(&other).unwrap();

        assert_eq!(sweep_abandoned(parent.path()), 0, "all just changed");
        let long_ago = std::time::SystemTime::now() - 2 * QUIET;
        for path in [live.path(), &killed_path, &other] {
            File::open(path).unwrap().set_modified(long_ago).unwrap();
        }
        assert_eq!(sweep_abandoned(parent.path()), 1);
        assert!(
            !killed_path.exists(),
            "the killed run's directory is deleted"
        );
        assert!(
            live.path().join("image.pith").exists(),
            "the live run's is kept"
        );
        assert!(other.exists(), "another name is not ours");
        assert_eq!(sweep_abandoned(parent.path()), 0);
    }
}
