//! fcntl's record locks: byte ranges of a file locked for reading (shared) or writing
//! (exclusive) by an owner. A POSIX lock (F_SETLK) belongs to the process, an OFD lock
//! (F_OFD_SETLK) to an open file description. Locks of one owner never conflict with each
//! other; one process's POSIX locks and OFD locks do, as do OFD locks of two descriptions.
//! An owner's new lock replaces what it held of the range (splitting what straddles it), and
//! its adjacent or overlapping locks of one type merge, as in fs/locks.c.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use pith_fs::vfs::Node;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A POSIX lock: the process's (there is one process).
    Process,
    /// An OFD lock: the open file description's.
    Description(u32),
}

/// One held range: [start, end), `end` u64::MAX for "to the end of the file, however far".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLock {
    pub owner: Owner,
    pub start: u64,
    pub end: u64,
    pub exclusive: bool,
}

/// What F_SETLK asks of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockRequest {
    Read,
    Write,
    Unlock,
}

/// Every record lock, by file.
#[derive(Default)]
pub struct RecordLocks {
    by_node: BTreeMap<Node, Vec<RecordLock>>,
}

impl RecordLocks {
    /// The first lock of another owner that keeps `owner` from locking [start, end)
    /// (exclusively or not): what F_GETLK reports.
    pub fn conflict(
        &self,
        node: Node,
        owner: Owner,
        start: u64,
        end: u64,
        exclusive: bool,
    ) -> Option<RecordLock> {
        self.by_node.get(&node)?.iter().copied().find(|lock| {
            lock.owner != owner
                && lock.start < end
                && start < lock.end
                && (exclusive || lock.exclusive)
        })
    }

    /// Sets `owner`'s lock on [start, end) (or unlocks it), without checking conflicts (the
    /// caller has).
    pub fn set(&mut self, node: Node, owner: Owner, start: u64, end: u64, request: LockRequest) {
        let locks = self.by_node.entry(node).or_default();
        // Cut the range out of the owner's locks.
        let mut kept = Vec::with_capacity(locks.len() + 1);
        for lock in locks.drain(..) {
            if lock.owner != owner || lock.end <= start || end <= lock.start {
                kept.push(lock);
                continue;
            }
            if lock.start < start {
                kept.push(RecordLock { end: start, ..lock });
            }
            if end < lock.end {
                kept.push(RecordLock { start: end, ..lock });
            }
        }
        if request != LockRequest::Unlock {
            let mut new = RecordLock {
                owner,
                start,
                end,
                exclusive: request == LockRequest::Write,
            };
            // Merge with the owner's touching locks of the same type.
            kept.retain(|lock| {
                let touching = lock.owner == owner
                    && lock.exclusive == new.exclusive
                    && lock.start <= new.end
                    && new.start <= lock.end;
                if touching {
                    new.start = new.start.min(lock.start);
                    new.end = new.end.max(lock.end);
                }
                !touching
            });
            kept.push(new);
        }
        kept.sort_by_key(|lock| lock.start);
        if kept.is_empty() {
            self.by_node.remove(&node);
        } else {
            *locks = kept;
        }
    }

    /// Drops every lock `owner` holds on `node`: a POSIX owner's when the process closes any
    /// fd of the file, a description's when its last fd closes.
    pub fn release(&mut self, node: Node, owner: Owner) {
        if let Some(locks) = self.by_node.get_mut(&node) {
            locks.retain(|lock| lock.owner != owner);
            if locks.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: Node = Node { mount: 0, ino: 5 };
    const A: Owner = Owner::Description(1);
    const B: Owner = Owner::Description(2);

    fn held(locks: &RecordLocks) -> Vec<(Owner, u64, u64, bool)> {
        locks.by_node.get(&FILE).map_or(Vec::new(), |all| {
            all.iter()
                .map(|lock| (lock.owner, lock.start, lock.end, lock.exclusive))
                .collect()
        })
    }

    #[test]
    fn owners_conflict_with_others_but_not_themselves() {
        let mut locks = RecordLocks::default();
        locks.set(FILE, A, 0, 100, LockRequest::Write);
        assert_eq!(locks.conflict(FILE, A, 0, 100, true), None);
        assert_eq!(
            locks.conflict(FILE, B, 50, 60, false).map(|l| l.owner),
            Some(A)
        );
        assert_eq!(
            locks.conflict(FILE, B, 100, 200, true),
            None,
            "ranges end before `end`"
        );
        assert_eq!(
            locks
                .conflict(FILE, Owner::Process, 99, 100, false)
                .map(|l| l.start),
            Some(0)
        );
        // Two readers share.
        locks.set(FILE, A, 0, 100, LockRequest::Read);
        assert_eq!(locks.conflict(FILE, B, 0, 100, false), None);
        assert!(locks.conflict(FILE, B, 0, 100, true).is_some());
    }

    #[test]
    fn a_new_lock_splits_and_merges_the_owners_own() {
        let mut locks = RecordLocks::default();
        locks.set(FILE, A, 0, 100, LockRequest::Read);
        locks.set(FILE, A, 40, 60, LockRequest::Write);
        assert_eq!(
            held(&locks),
            [(A, 0, 40, false), (A, 40, 60, true), (A, 60, 100, false)]
        );
        locks.set(FILE, A, 40, 60, LockRequest::Read);
        assert_eq!(held(&locks), [(A, 0, 100, false)], "merged back");
        locks.set(FILE, A, 100, u64::MAX, LockRequest::Read);
        assert_eq!(
            held(&locks),
            [(A, 0, u64::MAX, false)],
            "adjacent merges too"
        );
        locks.set(FILE, A, 10, 20, LockRequest::Unlock);
        assert_eq!(held(&locks), [(A, 0, 10, false), (A, 20, u64::MAX, false)]);
        locks.set(FILE, B, 10, 20, LockRequest::Write);
        locks.release(FILE, A);
        assert_eq!(held(&locks), [(B, 10, 20, true)]);
        locks.set(FILE, B, 0, u64::MAX, LockRequest::Unlock);
        assert!(locks.by_node.is_empty());
    }
}
