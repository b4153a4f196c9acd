use core::fmt;
use managed::ManagedSlice;

use super::socket_meta::Meta;
use crate::socket::{AnySocket, PollAt, Socket};
use crate::time::Instant;

/// Pith: how many changed sockets the set lists for the next egress pass; more make that pass
/// visit every socket.
const PENDING_MAX: usize = 32;

/// Opaque struct with space for storing one socket.
///
/// This is public so you can use it to allocate space for storing
/// sockets when creating an Interface.
#[derive(Debug, Default)]
pub struct SocketStorage<'a> {
    inner: Option<Item<'a>>,
}

impl<'a> SocketStorage<'a> {
    pub const EMPTY: Self = Self { inner: None };
}

/// An item of a socket set.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    pub(crate) meta: Meta,
    pub(crate) socket: Socket<'a>,
    // Pith: the egress pass skips a socket that did not change since it was last
    // dispatched (`egress_pending` false: not added, handed out by `get_mut` or given a
    // packet since) until `egress_at`, the time its dispatch then said it wants next.
    // Asking every socket whether it has something to send was most of the time a server
    // with fifty connections spent.
    pub(crate) egress_pending: bool,
    pub(crate) egress_at: PollAt,
}

/// A handle, identifying a socket in an Interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketHandle(usize);

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An extensible set of sockets.
///
/// The lifetime `'a` is used when storing a `Socket<'a>`.  If you're using
/// owned buffers for your sockets (passed in as `Vec`s) you can use
/// `SocketSet<'static>`.
#[derive(Debug)]
pub struct SocketSet<'a> {
    sockets: ManagedSlice<'a, SocketStorage<'a>>,
    // Pith: the neighbor cache's generation at the last egress pass (see `Item`).
    pub(crate) neighbor_generation: u32,
    // Pith: so that an egress pass need not even look at the sockets that did not change
    // (with fifty connections, walking past them was a fifth of the instructions a request
    // took): the indices of the items whose `egress_pending` was set since the last pass
    // (each once), or `full_pass` if they did not fit or another kind of socket is in the set;
    // and the earliest `egress_at` of the others, as the last passes left them (`None`: no
    // timer). Invariant: an item with `egress_pending` is listed, or `full_pass` is set.
    pending: [u32; PENDING_MAX],
    pending_len: usize,
    pub(crate) full_pass: bool,
    pub(crate) earliest_egress: Option<Instant>,
    // Pith: for each slot of a TCP connection's hash (`tcp_hint_slot`), the socket (index + 1;
    // 0 for none) its last packet went to, so that the next one need not ask every socket.
    #[cfg(feature = "socket-tcp")]
    tcp_hints: [u32; TCP_HINTS],
}

/// Pith: the number of slots in `SocketSet::tcp_hints` (a power of two).
#[cfg(feature = "socket-tcp")]
const TCP_HINTS: usize = 256;

impl<'a> SocketSet<'a> {
    /// Create a socket set using the provided storage.
    pub fn new<SocketsT>(sockets: SocketsT) -> SocketSet<'a>
    where
        SocketsT: Into<ManagedSlice<'a, SocketStorage<'a>>>,
    {
        let sockets = sockets.into();
        SocketSet {
            sockets,
            neighbor_generation: 0,
            pending: [0; PENDING_MAX],
            pending_len: 0,
            full_pass: true,
            earliest_egress: None,
            #[cfg(feature = "socket-tcp")]
            tcp_hints: [0; TCP_HINTS],
        }
    }

    /// Add a socket to the set, and return its handle.
    ///
    /// # Panics
    /// This function panics if the storage is fixed-size (not a `Vec`) and is full.
    pub fn add<T: AnySocket<'a>>(&mut self, socket: T) -> SocketHandle {
        fn put<'a>(index: usize, slot: &mut SocketStorage<'a>, socket: Socket<'a>) -> SocketHandle {
            net_trace!("[{}]: adding", index);
            let handle = SocketHandle(index);
            let mut meta = Meta::default();
            meta.handle = handle;
            *slot = SocketStorage {
                inner: Some(Item {
                    meta,
                    socket,
                    egress_pending: true,
                    egress_at: PollAt::Now,
                }),
            };
            handle
        }

        let socket = socket.upcast();

        let free = self.sockets.iter().position(|slot| slot.inner.is_none());
        let handle = match free {
            Some(index) => put(index, &mut self.sockets[index], socket),
            None => match &mut self.sockets {
                ManagedSlice::Borrowed(_) => panic!("adding a socket to a full SocketSet"),
                #[cfg(feature = "alloc")]
                ManagedSlice::Owned(sockets) => {
                    sockets.push(SocketStorage { inner: None });
                    let index = sockets.len() - 1;
                    put(index, &mut sockets[index], socket)
                }
            },
        };
        // Pith: it starts pending (see `SocketSet::pending`).
        self.note_pending(handle.0);
        handle
    }

    /// Get a socket from the set by its handle, as mutable.
    ///
    /// # Panics
    /// This function may panic if the handle does not belong to this socket set
    /// or the socket has the wrong type.
    pub fn get<T: AnySocket<'a>>(&self, handle: SocketHandle) -> &T {
        match self.sockets[handle.0].inner.as_ref() {
            Some(item) => {
                T::downcast(&item.socket).expect("handle refers to a socket of a wrong type")
            }
            None => panic!("handle does not refer to a valid socket"),
        }
    }

    /// Get a mutable socket from the set by its handle, as mutable.
    ///
    /// # Panics
    /// This function may panic if the handle does not belong to this socket set
    /// or the socket has the wrong type.
    pub fn get_mut<T: AnySocket<'a>>(&mut self, handle: SocketHandle) -> &mut T {
        // Pith: the caller may change it (see `Item`).
        self.mark_pending(handle.0);
        match self.sockets[handle.0].inner.as_mut() {
            Some(item) => T::downcast_mut(&mut item.socket)
                .expect("handle refers to a socket of a wrong type"),
            None => panic!("handle does not refer to a valid socket"),
        }
    }

    /// Remove a socket from the set, without changing its state.
    ///
    /// # Panics
    /// This function may panic if the handle does not belong to this socket set.
    pub fn remove(&mut self, handle: SocketHandle) -> Socket<'a> {
        net_trace!("[{}]: removing", handle.0);
        match self.sockets[handle.0].inner.take() {
            Some(item) => item.socket,
            None => panic!("handle does not refer to a valid socket"),
        }
    }

    /// Get an iterator to the inner sockets.
    pub fn iter(&self) -> impl Iterator<Item = (SocketHandle, &Socket<'a>)> {
        self.items().map(|i| (i.meta.handle, &i.socket))
    }

    /// Get a mutable iterator to the inner sockets.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SocketHandle, &mut Socket<'a>)> {
        // Pith: every socket may change: the next egress pass looks at all.
        self.full_pass = true;
        self.items_mut().map(|i| {
            // Pith: the caller may change it (see `Item`).
            i.egress_pending = true;
            (i.meta.handle, &mut i.socket)
        })
    }

    /// Iterate every socket in this set.
    pub(crate) fn items(&self) -> impl Iterator<Item = &Item<'a>> + '_ {
        self.sockets.iter().filter_map(|x| x.inner.as_ref())
    }

    /// Iterate every socket in this set.
    pub(crate) fn items_mut(&mut self) -> impl Iterator<Item = &mut Item<'a>> + '_ {
        self.sockets.iter_mut().filter_map(|x| x.inner.as_mut())
    }

    /// Pith: the number of slots (an index below it may be empty).
    pub(crate) fn slots(&self) -> usize {
        self.sockets.len()
    }

    /// Pith: the item in a slot, if any.
    pub(crate) fn item(&self, index: usize) -> Option<&Item<'a>> {
        self.sockets.get(index).and_then(|slot| slot.inner.as_ref())
    }

    /// Pith: the item in a slot, if any, without marking it pending.
    pub(crate) fn item_mut(&mut self, index: usize) -> Option<&mut Item<'a>> {
        self.sockets
            .get_mut(index)
            .and_then(|slot| slot.inner.as_mut())
    }

    /// Pith: marks an item as changed since its last dispatch (see `Item`).
    pub(crate) fn mark_pending(&mut self, index: usize) {
        if let Some(item) = self.item_mut(index) {
            if !item.egress_pending {
                item.egress_pending = true;
                self.note_pending(index);
            }
        }
    }

    /// Pith: lists an item whose `egress_pending` was just set (see `SocketSet::pending`).
    pub(crate) fn note_pending(&mut self, index: usize) {
        if self.pending_len < PENDING_MAX {
            self.pending[self.pending_len] = index as u32;
            self.pending_len += 1;
        } else {
            self.full_pass = true;
        }
    }

    /// Pith: what an egress pass left an item wanting: now (listed for the next pass), at a
    /// time (which may be the earliest), or a packet.
    pub(crate) fn note_egress_at(&mut self, index: usize, egress_at: PollAt) {
        match egress_at {
            PollAt::Now => self.mark_pending(index),
            PollAt::Time(at) => {
                self.earliest_egress = Some(self.earliest_egress.map_or(at, |t| t.min(at)));
            }
            PollAt::Ingress => {}
        }
    }

    /// Pith: the socket a TCP packet of this hash slot went to last, if any (see `tcp_hints`).
    #[cfg(feature = "socket-tcp")]
    pub(crate) fn tcp_hint(&self, slot: usize) -> Option<usize> {
        self.tcp_hints[slot % TCP_HINTS]
            .checked_sub(1)
            .map(|index| index as usize)
    }

    /// Pith: remembers the socket a TCP packet of this hash slot went to.
    #[cfg(feature = "socket-tcp")]
    pub(crate) fn set_tcp_hint(&mut self, slot: usize, index: usize) {
        self.tcp_hints[slot % TCP_HINTS] = index as u32 + 1;
    }

    /// Pith: the listed items, the list emptied for the pass that visits them.
    pub(crate) fn take_pending(&mut self) -> ([u32; PENDING_MAX], usize) {
        let taken = (self.pending, self.pending_len);
        self.pending_len = 0;
        taken
    }

    /// Pith: the listed items, for `Interface::poll_at` (see `SocketSet::pending`).
    pub(crate) fn pending(&self) -> &[u32] {
        &self.pending[..self.pending_len]
    }
}
