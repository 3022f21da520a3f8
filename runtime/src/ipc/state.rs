//! The kernel's IPC state: spaces (name tables), ports, port sets, message queues, and the
//! right operations GNU Mach builds everything from (`ipc_right_*`, `ipc_port_*`,
//! `ipc_object_*`, `ipc_notify_*`).
//!
//! Everything here runs under the one kernel lock. Operations that wake threads push their
//! waiters onto [`State::wake`]; the caller unparks them after releasing the lock.
//!
//! Reference counting follows GNU Mach: a port's `refs` counts the space entries naming it,
//! every right to it carried by a message (destination, reply, body), and every
//! notification request (a send-once right) stored in another port. A dead port is freed
//! when its last reference goes. Send rights to a dead port turn into dead names lazily, the
//! next time their name is used ([`State::right_check`]), as in GNU Mach.

use super::hash::Map;
use super::kmsg::{KBox, KMsg, KObj, KPort};
use super::wait::{Delivery, Waiter};
use crate::rights::SpaceId;
use crate::wire::{msg_return as mr, msgh_bits, notify, type_name as tn, PortName, TypeDesc};
use std::collections::VecDeque;

/// `MACH_PORT_QLIMIT_DEFAULT`.
pub(crate) const QLIMIT_DEFAULT: u32 = 5;
/// `MACH_PORT_QLIMIT_MAX`.
pub(crate) const QLIMIT_MAX: u32 = 16;
/// `MACH_PORT_UREFS_MAX`.
pub(crate) const UREFS_MAX: u32 = 0xffff;

/// Entry type bits: `MACH_PORT_TYPE_*` shifted right by 16.
pub(crate) mod et {
    pub const SEND: u8 = 1;
    pub const RECEIVE: u8 = 2;
    pub const SEND_ONCE: u8 = 4;
    pub const PORT_SET: u8 = 8;
    pub const DEAD_NAME: u8 = 16;
    pub const SEND_RIGHTS: u8 = SEND | SEND_ONCE;
    pub const PORT_RIGHTS: u8 = SEND_RIGHTS | RECEIVE;
    pub const PORT_OR_DEAD: u8 = PORT_RIGHTS | DEAD_NAME;
}

/// A port object (index + generation in the kernel's port table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PortId {
    pub idx: u32,
    pub gen: u32,
}

/// A port set object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PsetId {
    pub idx: u32,
    pub gen: u32,
}

/// What an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Obj {
    None,
    Port(PortId),
    Pset(PsetId),
}

/// A name's entry in a space (`ipc_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub obj: Obj,
    /// [`et`] bits. Zero only transiently inside a copyin.
    pub ty: u8,
    /// User references (send rights and dead names; 1 for send-once; 0 for receive-only
    /// entries and port sets).
    pub urefs: u32,
    /// A dead-name request is (or was, if the port died) registered for this name.
    pub request: bool,
}

impl Entry {
    pub(crate) fn port(&self) -> Option<PortId> {
        match self.obj {
            Obj::Port(p) => Some(p),
            _ => None,
        }
    }
}

/// Where a port's receive right is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// Held in a space under a name.
    Space { slot: u32, name: PortName },
    /// Carried by a message to the given destination (`ip_destination`).
    Transit(Option<PortId>),
}

/// Names are allocated in index order; a freed index is reused only after this many other
/// indexes were freed (and with its generation bumped), so a stale name does not come back
/// soon.
const NAME_REUSE_DELAY: usize = 64;
const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// A space's names (`ipc_entry` table). An allocated name's index is its slot in a directly
/// indexed table, so finding an entry costs no hashing; the rare names that do not fit there
/// (a caller-chosen name whose index is beyond the table, or whose slot holds another name)
/// go to a hash map, which is looked at only when it is not empty.
pub(crate) struct NameTable {
    slots: Vec<NameSlot>,
    overflow: Map<u32, Entry>,
}

#[derive(Clone, Copy)]
struct NameSlot {
    /// The name stored here, or 0 (`MACH_PORT_NULL` is never an entry's name).
    name: u32,
    /// The generation the index gets at its next allocation (the name's upper 8 bits).
    gen: u8,
    entry: Entry,
}

const NO_ENTRY: Entry = Entry {
    obj: Obj::None,
    ty: 0,
    urefs: 0,
    request: false,
};

impl NameTable {
    fn new() -> NameTable {
        // Index 0 is never allocated (name 0 is MACH_PORT_NULL).
        NameTable {
            slots: vec![NameSlot {
                name: 0,
                gen: 0,
                entry: NO_ENTRY,
            }],
            overflow: Map::default(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, name: u32) -> Option<&Entry> {
        match self.slots.get((name & INDEX_MASK) as usize) {
            Some(s) if s.name == name && name != 0 => Some(&s.entry),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get(&name),
        }
    }

    #[inline]
    fn get_mut(&mut self, name: u32) -> Option<&mut Entry> {
        match self.slots.get_mut((name & INDEX_MASK) as usize) {
            Some(s) if s.name == name && name != 0 => Some(&mut s.entry),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get_mut(&name),
        }
    }

    pub(crate) fn contains_key(&self, name: u32) -> bool {
        self.get(name).is_some()
    }

    /// Inserts or replaces `name`'s entry; returns the old one.
    #[inline]
    pub(crate) fn insert(&mut self, name: u32, e: Entry) -> Option<Entry> {
        if let Some(old) = self.get_mut(name) {
            return Some(core::mem::replace(old, e));
        }
        match self.slots.get_mut((name & INDEX_MASK) as usize) {
            Some(s) if s.name == 0 && name != 0 => {
                s.name = name;
                s.entry = e;
            }
            _ => {
                self.overflow.insert(name, e);
            }
        }
        None
    }

    #[inline]
    pub(crate) fn remove(&mut self, name: u32) -> Option<Entry> {
        match self.slots.get_mut((name & INDEX_MASK) as usize) {
            Some(s) if s.name == name && name != 0 => {
                s.name = 0;
                Some(core::mem::replace(&mut s.entry, NO_ENTRY))
            }
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.remove(&name),
        }
    }

    /// Every (name, entry), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.slots
            .iter()
            .filter(|s| s.name != 0)
            .map(|s| (s.name, &s.entry))
            .chain(self.overflow.iter().map(|(&n, e)| (n, e)))
    }

    /// Every name in use, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|(n, _)| n)
    }

    /// Removes every entry (generations stay).
    pub(crate) fn drain(&mut self) -> Vec<(u32, Entry)> {
        let mut v: Vec<(u32, Entry)> = Vec::new();
        for s in &mut self.slots {
            if s.name != 0 {
                v.push((s.name, s.entry));
                s.name = 0;
                s.entry = NO_ENTRY;
            }
        }
        v.extend(self.overflow.drain());
        v
    }

    /// The number of indexes allocation has reached.
    fn indexes(&self) -> usize {
        self.slots.len()
    }

    /// Extends the table by one index.
    fn push_index(&mut self) {
        self.slots.push(NameSlot {
            name: 0,
            gen: 0,
            entry: NO_ENTRY,
        });
    }

    fn gen_mut(&mut self, idx: u32) -> Option<&mut u8> {
        self.slots.get_mut(idx as usize).map(|s| &mut s.gen)
    }
}

/// A task's IPC space. Aligned so that two tasks' spaces never share a cache line; what
/// every lookup reads (the flag and the table) fills the first line, what allocating and
/// freeing names writes is on the next.
#[repr(C, align(64))]
pub(crate) struct Space {
    pub active: bool,
    pub entries: NameTable,
    free: VecDeque<u32>,
    /// Reverse lookup for send-only entries (`ipc_hash`): port → name.
    pub reverse: Map<PortId, PortName>,
    /// The task's kernel port (receive right held by the kernel space).
    pub task_port: Option<PortId>,
}

impl Space {
    fn new() -> Space {
        Space {
            active: true,
            entries: NameTable::new(),
            free: VecDeque::new(),
            reverse: Map::default(),
            task_port: None,
        }
    }

    /// Allocates a fresh name (`ipc_entry_alloc`). The entry is not inserted.
    pub(crate) fn alloc_name(&mut self) -> Option<PortName> {
        for _ in 0..1024 {
            let idx = if self.free.len() > NAME_REUSE_DELAY {
                self.free.pop_front()?
            } else {
                let idx = self.entries.indexes() as u32;
                if idx >= INDEX_MASK {
                    self.free.pop_front()?
                } else {
                    self.entries.push_index();
                    idx
                }
            };
            let g = self.entries.gen_mut(idx)?;
            let gen = *g;
            let name = ((gen as u32) << INDEX_BITS) | idx;
            if PortName(name).is_valid() && !self.entries.contains_key(name) {
                return Some(PortName(name));
            }
            // Taken by a caller-chosen name (or MACH_PORT_DEAD): skip this generation.
            if let Some(g) = self.entries.gen_mut(idx) {
                *g = gen.wrapping_add(1);
            }
            self.free.push_back(idx);
        }
        None
    }

    /// Removes the entry and makes its index reusable later (`ipc_entry_dealloc`).
    pub(crate) fn free_name(&mut self, name: PortName) {
        self.entries.remove(name.0);
        let idx = name.0 & INDEX_MASK;
        let gen = (name.0 >> INDEX_BITS) as u8;
        if let Some(g) = self.entries.gen_mut(idx) {
            if idx != 0 && *g == gen {
                *g = gen.wrapping_add(1);
                self.free.push_back(idx);
            }
        }
    }
}

/// Where a message queue lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MqRef {
    Port(PortId),
    Pset(PsetId),
}

/// A receiver blocked on a queue.
pub(crate) struct RcvWaiter {
    pub w: &'static Waiter,
    /// Largest message it takes (`u32::MAX` without `MACH_RCV_LARGE`).
    pub max: u32,
    /// Its receive size and buffer capacity (for the copyout done at handoff).
    pub limit: u32,
    pub cap: u32,
    /// Its space.
    pub slot: u32,
}

/// The receivers blocked on a queue, in arrival order. The first is kept inline (usually
/// the only one: a server thread waiting for a request, a client for its reply), so a sender
/// finds it in the port's first cache line.
#[derive(Default)]
#[repr(C)]
pub(crate) struct WaitQueue {
    /// `None` only if `rest` is empty too.
    first: Option<RcvWaiter>,
    rest: VecDeque<RcvWaiter>,
}

impl WaitQueue {
    pub(crate) fn push_back(&mut self, w: RcvWaiter) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push_back(w);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<RcvWaiter> {
        let w = self.first.take()?;
        if !self.rest.is_empty() {
            self.first = self.rest.pop_front();
        }
        Some(w)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&RcvWaiter) -> bool) {
        let all = core::mem::take(self);
        for w in all {
            if keep(&w) {
                self.push_back(w);
            }
        }
    }
}

impl IntoIterator for WaitQueue {
    type Item = RcvWaiter;
    type IntoIter = core::iter::Chain<
        core::option::IntoIter<RcvWaiter>,
        std::collections::vec_deque::IntoIter<RcvWaiter>,
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// A message queue (`ipc_mqueue`): blocked receivers and messages.
#[derive(Default)]
#[repr(C)]
pub(crate) struct MQueue {
    pub waiters: WaitQueue,
    pub msgs: VecDeque<KBox>,
}

/// A port. The fields are laid out by who writes them, so that a message between two
/// threads moves as few cache lines as possible: the first line (with the slot's
/// generation) holds the queue state both the sender and the receiver touch; the
/// reference and right counts, which the sending side changes, are on a line of their own;
/// the rest is rarely written.
#[repr(C)]
pub(crate) struct Port {
    pub active: bool,
    pub seqno: u32,
    pub qlimit: u32,
    pub msgcount: u32,
    pub pset: Option<PsetId>,
    /// The first blocked receiver lives here (see [`WaitQueue`]).
    pub mq: MQueue,
    pub refs: u32,
    pub srights: u32,
    pub sorights: u32,
    pub mscount: u32,
    pub receiver: Receiver,
    pub nsrequest: Option<PortId>,
    pub pdrequest: Option<PortId>,
    /// Senders waiting for room in the queue.
    pub blocked: VecDeque<&'static Waiter>,
    /// Dead-name requests: (space slot, name) → send-once right to notify.
    pub dnrequests: Map<(u32, PortName), PortId>,
}

pub(crate) struct Pset {
    pub active: bool,
    pub mq: MQueue,
    pub members: Vec<PortId>,
}

/// A port or port set with the generation of its table slot. Slots start on cache lines,
/// so two ports never share one.
#[repr(C, align(64))]
struct Slot<T> {
    gen: u32,
    val: Option<T>,
}

/// Counters for tests and benchmarks.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Counters {
    pub active_ports: usize,
    pub port_objects: usize,
    pub port_sets: usize,
    pub kmsgs: usize,
    pub queued: usize,
    pub ool_bytes: usize,
}

/// The whole IPC state of one kernel. The counters come first: they are written by every
/// message, and (see [`super::Shared`]) share the lock's cache line, which every kernel
/// entry moves to its thread anyway; the rest is read-mostly.
#[repr(C)]
pub(crate) struct State {
    pub counters: Counters,
    pub spaces: Vec<Option<Space>>,
    free_spaces: Vec<u32>,
    ports: Vec<Slot<Port>>,
    free_ports: Vec<u32>,
    psets: Vec<Slot<Pset>>,
    free_psets: Vec<u32>,
    /// Waiters to unpark once the lock is released.
    pub wake: Vec<&'static Waiter>,
    trash: Vec<KBox>,
    draining: bool,
    /// Recycled kernel messages (with their image buffers).
    kmsg_pool: Vec<KBox>,
    /// The copyin journal (one transaction at a time, under the lock).
    pub(crate) txn: super::copyin::Txn,
}

const KMSG_POOL_MAX: usize = 64;

thread_local! {
    /// A kernel message a receiver finished with, reused by this thread's next send
    /// without taking the kernel lock to recycle it.
    static SPARE_KMSG: core::cell::RefCell<Option<KBox>> = const { core::cell::RefCell::new(None) };
}

fn take_spare_kmsg() -> Option<KBox> {
    SPARE_KMSG.with(|s| s.borrow_mut().take())
}

/// Keeps `k` as the calling thread's spare kernel message (dropped if it has one).
pub(crate) fn keep_spare_kmsg(mut k: KBox) {
    if k.bytes.capacity() <= KMSG_POOL_LARGEST {
        k.reset();
        SPARE_KMSG.with(|s| {
            let mut s = s.borrow_mut();
            if s.is_none() {
                *s = Some(k);
            }
        });
    }
}
const KMSG_POOL_LARGEST: usize = 64 * 1024;

impl State {
    pub(crate) fn new() -> State {
        State {
            spaces: Vec::new(),
            free_spaces: Vec::new(),
            ports: Vec::new(),
            free_ports: Vec::new(),
            psets: Vec::new(),
            free_psets: Vec::new(),
            wake: Vec::new(),
            trash: Vec::new(),
            draining: false,
            counters: Counters::default(),
            kmsg_pool: Vec::new(),
            txn: Default::default(),
        }
    }

    // ---------------------------------------------------------------- buffers

    /// An empty kernel message: the calling thread's spare, or one from the pool.
    pub(crate) fn new_kmsg(&mut self) -> KBox {
        if let Some(k) = take_spare_kmsg() {
            return k;
        }
        match self.kmsg_pool.pop() {
            Some(k) => k,
            None => Box::new(KMsg::empty()),
        }
    }

    /// Gives a kernel message (and its buffers) back to the pool.
    pub(crate) fn recycle_kmsg(&mut self, mut k: KBox) {
        if self.kmsg_pool.len() < KMSG_POOL_MAX && k.bytes.capacity() <= KMSG_POOL_LARGEST {
            k.reset();
            self.kmsg_pool.push(k);
        }
    }

    // ---------------------------------------------------------------- spaces

    pub(crate) fn new_space(&mut self, id: SpaceId) -> u32 {
        let _ = id;
        let sp = Space::new();
        match self.free_spaces.pop() {
            Some(slot) => {
                self.spaces[slot as usize] = Some(sp);
                slot
            }
            None => {
                self.spaces.push(Some(sp));
                (self.spaces.len() - 1) as u32
            }
        }
    }

    pub(crate) fn sp(&self, slot: u32) -> Option<&Space> {
        self.spaces.get(slot as usize).and_then(|s| s.as_ref())
    }

    pub(crate) fn spm(&mut self, slot: u32) -> Option<&mut Space> {
        self.spaces.get_mut(slot as usize).and_then(|s| s.as_mut())
    }

    pub(crate) fn space_active(&self, slot: u32) -> bool {
        self.sp(slot).is_some_and(|s| s.active)
    }

    /// The entry for `name`, if the name is in use (of any type).
    pub(crate) fn entry(&self, slot: u32, name: PortName) -> Option<Entry> {
        self.sp(slot)?.entries.get(name.0).copied()
    }

    pub(crate) fn set_entry(&mut self, slot: u32, name: PortName, e: Entry) {
        if let Some(sp) = self.spm(slot) {
            sp.entries.insert(name.0, e);
        }
    }

    pub(crate) fn free_name(&mut self, slot: u32, name: PortName) {
        if let Some(sp) = self.spm(slot) {
            sp.free_name(name);
        }
    }

    pub(crate) fn alloc_name(&mut self, slot: u32) -> Option<PortName> {
        self.spm(slot)?.alloc_name()
    }

    /// The space's name for `p` that a send right would merge with (`ipc_right_reverse`):
    /// the receive right's name, or a send-only entry's.
    pub(crate) fn reverse(&self, slot: u32, p: PortId) -> Option<PortName> {
        let port = self.p(p)?;
        if !port.active {
            return None;
        }
        if let Receiver::Space { slot: s, name } = port.receiver {
            if s == slot {
                return Some(name);
            }
        }
        self.sp(slot)?.reverse.get(&p).copied()
    }

    // ---------------------------------------------------------------- ports

    pub(crate) fn p(&self, id: PortId) -> Option<&Port> {
        let s = self.ports.get(id.idx as usize)?;
        if s.gen == id.gen {
            s.val.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn pm(&mut self, id: PortId) -> Option<&mut Port> {
        let s = self.ports.get_mut(id.idx as usize)?;
        if s.gen == id.gen {
            s.val.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn ports_iter(&self) -> impl Iterator<Item = (PortId, &Port)> {
        self.ports.iter().enumerate().filter_map(|(i, s)| {
            s.val.as_ref().map(|p| {
                (
                    PortId {
                        idx: i as u32,
                        gen: s.gen,
                    },
                    p,
                )
            })
        })
    }

    pub(crate) fn psets_iter(&self) -> impl Iterator<Item = (PsetId, &Pset)> {
        self.psets.iter().enumerate().filter_map(|(i, s)| {
            s.val.as_ref().map(|p| {
                (
                    PsetId {
                        idx: i as u32,
                        gen: s.gen,
                    },
                    p,
                )
            })
        })
    }

    pub(crate) fn psm_ref(&self, id: PsetId) -> Option<&Pset> {
        let s = self.psets.get(id.idx as usize)?;
        if s.gen == id.gen {
            s.val.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn port_active(&self, id: PortId) -> bool {
        self.p(id).is_some_and(|p| p.active)
    }

    /// Creates an active port with one reference (for its receive right).
    pub(crate) fn alloc_port(&mut self, receiver: Receiver) -> PortId {
        let port = Port {
            refs: 1,
            active: true,
            receiver,
            srights: 0,
            sorights: 0,
            mscount: 0,
            seqno: 0,
            qlimit: QLIMIT_DEFAULT,
            msgcount: 0,
            pset: None,
            mq: MQueue::default(),
            blocked: VecDeque::new(),
            nsrequest: None,
            pdrequest: None,
            dnrequests: Map::default(),
        };
        self.counters.active_ports += 1;
        self.counters.port_objects += 1;
        match self.free_ports.pop() {
            Some(idx) => {
                let s = &mut self.ports[idx as usize];
                s.val = Some(port);
                PortId { idx, gen: s.gen }
            }
            None => {
                self.ports.push(Slot {
                    gen: 0,
                    val: Some(port),
                });
                PortId {
                    idx: (self.ports.len() - 1) as u32,
                    gen: 0,
                }
            }
        }
    }

    pub(crate) fn port_ref(&mut self, id: PortId) {
        if let Some(p) = self.pm(id) {
            p.refs += 1;
        }
    }

    /// Drops a reference; frees a dead port with no references left.
    pub(crate) fn port_release(&mut self, id: PortId) {
        let free = match self.pm(id) {
            Some(p) => {
                p.refs = p.refs.saturating_sub(1);
                p.refs == 0 && !p.active
            }
            None => false,
        };
        if free {
            let s = &mut self.ports[id.idx as usize];
            s.val = None;
            s.gen = s.gen.wrapping_add(1);
            self.free_ports.push(id.idx);
            self.counters.port_objects -= 1;
        }
    }

    // ---------------------------------------------------------------- port sets

    pub(crate) fn psm(&mut self, id: PsetId) -> Option<&mut Pset> {
        let s = self.psets.get_mut(id.idx as usize)?;
        if s.gen == id.gen {
            s.val.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn alloc_pset(&mut self) -> PsetId {
        let ps = Pset {
            active: true,
            mq: MQueue::default(),
            members: Vec::new(),
        };
        self.counters.port_sets += 1;
        match self.free_psets.pop() {
            Some(idx) => {
                let s = &mut self.psets[idx as usize];
                s.val = Some(ps);
                PsetId { idx, gen: s.gen }
            }
            None => {
                self.psets.push(Slot {
                    gen: 0,
                    val: Some(ps),
                });
                PsetId {
                    idx: (self.psets.len() - 1) as u32,
                    gen: 0,
                }
            }
        }
    }

    /// Adds a port to a set (`ipc_pset_add`): its queued messages move to the set's queue,
    /// and threads receiving on the port itself get `MACH_RCV_PORT_CHANGED`.
    pub(crate) fn pset_add(&mut self, s: PsetId, p: PortId) {
        let (msgs, waiters) = match self.pm(p) {
            Some(port) => {
                port.pset = Some(s);
                (
                    core::mem::take(&mut port.mq.msgs),
                    core::mem::take(&mut port.mq.waiters),
                )
            }
            None => return,
        };
        if let Some(set) = self.psm(s) {
            set.members.push(p);
        }
        for m in msgs {
            self.counters.queued -= 1;
            if let Some(port) = self.pm(p) {
                port.msgcount = port.msgcount.saturating_sub(1);
            }
            self.mq_push(MqRef::Pset(s), m);
        }
        for rw in waiters {
            self.complete(rw.w, Some(Delivery::Error(mr::RCV_PORT_CHANGED)));
        }
    }

    /// Removes a port from its set (`ipc_pset_remove`): its messages move back.
    pub(crate) fn pset_remove(&mut self, s: PsetId, p: PortId) {
        let mut mine = VecDeque::new();
        if let Some(set) = self.psm(s) {
            set.members.retain(|&m| m != p);
            let all = core::mem::take(&mut set.mq.msgs);
            for m in all {
                if m.dest == Some(p) {
                    mine.push_back(m);
                } else {
                    set.mq.msgs.push_back(m);
                }
            }
        }
        if let Some(port) = self.pm(p) {
            port.pset = None;
            port.mq.msgs.extend(mine);
        }
    }

    /// Destroys a port set (`ipc_pset_destroy`): receivers get `MACH_RCV_PORT_DIED`, members
    /// leave the set with their messages.
    pub(crate) fn pset_destroy(&mut self, s: PsetId) {
        let (waiters, members) = match self.psm(s) {
            Some(set) => {
                set.active = false;
                (
                    core::mem::take(&mut set.mq.waiters),
                    core::mem::take(&mut set.members),
                )
            }
            None => return,
        };
        for rw in waiters {
            self.complete(rw.w, Some(Delivery::Error(mr::RCV_PORT_DIED)));
        }
        for p in members {
            self.pset_remove(s, p);
        }
        let slot = &mut self.psets[s.idx as usize];
        // Members were removed, so the set's queue is empty.
        slot.val = None;
        slot.gen = slot.gen.wrapping_add(1);
        self.free_psets.push(s.idx);
        self.counters.port_sets -= 1;
    }

    // ---------------------------------------------------------------- queues

    pub(crate) fn complete(&mut self, w: &'static Waiter, d: Option<Delivery>) {
        if w.complete(d) {
            self.wake.push(w);
        }
    }

    pub(crate) fn mq(&mut self, r: MqRef) -> Option<&mut MQueue> {
        match r {
            MqRef::Port(p) => self.pm(p).map(|p| &mut p.mq),
            MqRef::Pset(s) => self.psm(s).map(|s| &mut s.mq),
        }
    }

    /// The queue a message to `p` goes to.
    fn mq_of(&self, p: PortId) -> MqRef {
        match self.p(p).and_then(|port| port.pset) {
            Some(s) => MqRef::Pset(s),
            None => MqRef::Port(p),
        }
    }

    fn take_seqno(&mut self, p: Option<PortId>) -> u32 {
        match p.and_then(|p| self.pm(p)) {
            Some(port) => {
                let s = port.seqno;
                port.seqno = port.seqno.wrapping_add(1);
                s
            }
            None => 0,
        }
    }

    /// Hands `m` to the first receiver that can take it, or queues it (the core of
    /// `ipc_mqueue_send`).
    pub(crate) fn mq_push(&mut self, r: MqRef, mut m: KBox) {
        loop {
            let rw = match self.mq(r) {
                Some(q) => q.waiters.pop_front(),
                None => None,
            };
            match rw {
                None => break,
                Some(rw) => {
                    if m.size <= rw.max {
                        m.seqno = self.take_seqno(m.dest);
                        let p = self.copyout(rw.slot, m, rw.limit, rw.cap as usize);
                        self.complete(rw.w, Some(Delivery::Msg(p)));
                        return;
                    }
                    let size = m.size;
                    self.complete(rw.w, Some(Delivery::TooLarge(size)));
                }
            }
        }
        if let Some(p) = m.dest.and_then(|p| self.pm(p)) {
            p.msgcount += 1;
        }
        match self.mq(r) {
            Some(q) => {
                q.msgs.push_back(m);
                self.counters.queued += 1;
            }
            None => self.destroy_kmsg(m),
        }
    }

    /// Dequeues the first message if it fits in `max` bytes; `Err(size)` if it does not
    /// (it stays queued). Assigns the sequence number and wakes a blocked sender.
    pub(crate) fn dequeue(&mut self, r: MqRef, max: u32) -> Result<Option<KBox>, u32> {
        let q = match self.mq(r) {
            Some(q) => q,
            None => return Ok(None),
        };
        match q.msgs.front() {
            None => return Ok(None),
            Some(m) if m.size > max => return Err(m.size),
            Some(_) => {}
        }
        let mut m = match q.msgs.pop_front() {
            Some(m) => m,
            None => return Ok(None),
        };
        self.counters.queued -= 1;
        m.seqno = self.take_seqno(m.dest);
        let mut wake = None;
        if let Some(port) = m.dest.and_then(|p| self.pm(p)) {
            port.msgcount = port.msgcount.saturating_sub(1);
            if port.active && port.msgcount < port.qlimit {
                wake = port.blocked.pop_front();
            }
        }
        if let Some(w) = wake {
            self.complete(w, None);
        }
        Ok(Some(m))
    }

    // ---------------------------------------------------------------- sending

    /// Delivers a kernel-originated or copied-in message (`ipc_mqueue_send` after the queue
    /// limit check): a dead destination or a circular receive right destroys it.
    pub(crate) fn send_kmsg(&mut self, mut m: KBox) {
        let dest = match m.dest {
            Some(d) => d,
            None => return self.destroy_kmsg(m),
        };
        if !self.port_active(dest) {
            // Pretend it was sent and then destroyed; drop the destination reference
            // without generating notifications for it.
            m.dest = None;
            self.port_release(dest);
            return self.destroy_kmsg(m);
        }
        if m.bits & msgh_bits::CIRCULAR != 0 {
            return self.destroy_kmsg(m);
        }
        let r = self.mq_of(dest);
        self.mq_push(r, m);
    }

    // ---------------------------------------------------------------- destruction

    /// Destroys a message and everything it carries (`ipc_kmsg_destroy`). Nested
    /// destructions (a receive right in the message whose port has queued messages…) are
    /// processed iteratively.
    pub(crate) fn destroy_kmsg(&mut self, m: KBox) {
        self.trash.push(m);
        if self.draining {
            return;
        }
        self.draining = true;
        while let Some(m) = self.trash.pop() {
            self.clean_kmsg(m);
        }
        self.draining = false;
    }

    fn clean_kmsg(&mut self, mut m: KBox) {
        self.counters.kmsgs = self.counters.kmsgs.saturating_sub(1);
        self.counters.ool_bytes = self.counters.ool_bytes.saturating_sub(m.ool_bytes());
        let (dt, rt) = (m.dest_type(), m.reply_type());
        if let Some(d) = m.dest {
            self.destroy_obj(KObj::Port(d), dt);
        }
        self.destroy_obj(m.reply, rt);
        for p in core::mem::take(&mut m.ports) {
            self.destroy_obj(p.obj, p.ty);
        }
        for a in core::mem::take(&mut m.arrays) {
            for o in a.objs {
                self.destroy_obj(o, a.ty);
            }
        }
        self.recycle_kmsg(m);
    }

    /// Destroys a right held by a message (`ipc_object_destroy`).
    pub(crate) fn destroy_obj(&mut self, o: KObj, ty: u32) {
        let p = match o {
            KObj::Port(p) => p,
            _ => return,
        };
        match ty {
            tn::PORT_SEND => self.release_send(p),
            tn::PORT_SEND_ONCE => self.notify_send_once(p),
            tn::PORT_RECEIVE => self.destroy_receive(p),
            _ => self.port_release(p),
        }
    }

    /// Releases a send right (`ipc_port_release_send`), maybe firing no-senders.
    pub(crate) fn release_send(&mut self, p: PortId) {
        let ns = match self.pm(p) {
            Some(port) if port.active => {
                port.srights = port.srights.saturating_sub(1);
                if port.srights == 0 {
                    port.nsrequest.take().map(|n| (n, port.mscount))
                } else {
                    None
                }
            }
            _ => None,
        };
        self.port_release(p);
        if let Some((n, mscount)) = ns {
            self.notify_no_senders(n, mscount);
        }
    }

    /// Releases a send-once right without a notification (`ipc_port_release_sonce`).
    pub(crate) fn release_sonce(&mut self, p: PortId) {
        if let Some(port) = self.pm(p) {
            port.sorights = port.sorights.saturating_sub(1);
        }
        self.port_release(p);
    }

    /// Destroys a receive right carried by a message (`ipc_port_release_receive`).
    pub(crate) fn destroy_receive(&mut self, p: PortId) {
        self.port_destroy(p);
    }

    /// Takes the receive right away from its holder (`ipc_port_clear_receiver`): leaves its
    /// set, wakes receivers with `MACH_RCV_PORT_DIED`, resets the make-send count and the
    /// sequence number.
    pub(crate) fn clear_receiver(&mut self, p: PortId) {
        let (set, waiters) = match self.pm(p) {
            Some(port) => {
                port.mscount = 0;
                port.seqno = 0;
                (port.pset, core::mem::take(&mut port.mq.waiters))
            }
            None => return,
        };
        if let Some(s) = set {
            self.pset_remove(s, p);
        }
        for rw in waiters {
            self.complete(rw.w, Some(Delivery::Error(mr::RCV_PORT_DIED)));
        }
    }

    /// Is sending receive right `r` to `dest` circular (`ipc_port_check_circularity`)?
    pub(crate) fn circular(&self, r: PortId, dest: PortId) -> bool {
        let mut cur = dest;
        for _ in 0..=self.ports.len() {
            if cur == r {
                return true;
            }
            match self.p(cur).map(|p| p.receiver) {
                Some(Receiver::Transit(Some(next))) => cur = next,
                _ => return false,
            }
        }
        true
    }

    /// Destroys a port whose receive right is gone (`ipc_port_destroy`); consumes one
    /// reference. With a port-destroyed request the receive right is sent to the requester
    /// instead.
    pub(crate) fn port_destroy(&mut self, p: PortId) {
        let pd = match self.pm(p) {
            Some(port) if port.active => port.pdrequest.take(),
            Some(_) => return self.port_release(p),
            None => return,
        };
        if let Some(pd) = pd {
            if let Some(port) = self.pm(p) {
                port.receiver = Receiver::Transit(None);
            }
            if !self.circular(p, pd) {
                // Consumes our reference for the port and the send-once right.
                return self.notify_port_destroyed(pd, p);
            }
            self.release_sonce(pd);
        }
        let (blocked, waiters, ns, msgs, dn) = match self.pm(p) {
            Some(port) => {
                port.active = false;
                port.msgcount = 0;
                (
                    core::mem::take(&mut port.blocked),
                    core::mem::take(&mut port.mq.waiters),
                    port.nsrequest.take(),
                    core::mem::take(&mut port.mq.msgs),
                    core::mem::take(&mut port.dnrequests),
                )
            }
            None => return,
        };
        self.counters.active_ports -= 1;
        for w in blocked {
            self.complete(w, None);
        }
        for rw in waiters {
            self.complete(rw.w, Some(Delivery::Error(mr::RCV_PORT_DIED)));
        }
        if let Some(ns) = ns {
            self.notify_send_once(ns);
        }
        for mut m in msgs {
            self.counters.queued -= 1;
            if let Some(d) = m.dest.take() {
                self.port_release(d);
            }
            self.destroy_kmsg(m);
        }
        let mut dn: Vec<_> = dn.into_iter().collect();
        dn.sort_by_key(|((slot, name), _)| (*slot, name.0));
        for ((_, name), so) in dn {
            self.notify_dead_name(so, name);
        }
        self.port_release(p);
    }

    /// Converts `name` into a dead name if it is a send or send-once right to a dead port
    /// (`ipc_right_check`). Returns whether the entry is (now) a dead name.
    pub(crate) fn right_check(&mut self, slot: u32, name: PortName) -> bool {
        self.checked_entry(slot, name)
            .is_some_and(|e| e.ty & et::DEAD_NAME != 0)
    }

    /// The entry for `name` after [`State::right_check`] (one lookup in the common case).
    pub(crate) fn checked_entry(&mut self, slot: u32, name: PortName) -> Option<Entry> {
        let e = self.entry(slot, name)?;
        let p = match e.port() {
            Some(p) if e.ty & et::SEND_RIGHTS != 0 && e.ty & et::RECEIVE == 0 => p,
            _ => return Some(e),
        };
        if self.port_active(p) {
            return Some(e);
        }
        if let Some(sp) = self.spm(slot) {
            if sp.reverse.get(&p) == Some(&name) {
                sp.reverse.remove(&p);
            }
        }
        self.port_release(p);
        let mut urefs = if e.ty & et::SEND != 0 { e.urefs } else { 1 };
        if e.request {
            urefs = (urefs + 1).min(UREFS_MAX);
        }
        let dead = Entry {
            obj: Obj::None,
            ty: et::DEAD_NAME,
            urefs,
            request: false,
        };
        self.set_entry(slot, name, dead);
        Some(dead)
    }

    /// Cancels the dead-name request of `name` on `p`, returning its send-once right.
    pub(crate) fn dncancel(&mut self, slot: u32, p: PortId, name: PortName) -> Option<PortId> {
        self.pm(p)?.dnrequests.remove(&(slot, name))
    }

    // ---------------------------------------------------------------- entries

    /// Destroys the entry `name` entirely (`ipc_right_destroy`); the entry must exist.
    pub(crate) fn right_destroy(&mut self, slot: u32, name: PortName) {
        let e = match self.entry(slot, name) {
            Some(e) => e,
            None => return,
        };
        self.free_name(slot, name);
        self.right_clean(slot, name, e);
    }

    /// Releases what an already-removed entry held (`ipc_right_clean`).
    pub(crate) fn right_clean(&mut self, slot: u32, name: PortName, e: Entry) {
        match e.obj {
            Obj::Pset(s) => self.pset_destroy(s),
            Obj::Port(p) => {
                if e.ty & et::SEND != 0 && e.ty & et::RECEIVE == 0 {
                    if let Some(sp) = self.spm(slot) {
                        if sp.reverse.get(&p) == Some(&name) {
                            sp.reverse.remove(&p);
                        }
                    }
                }
                if !self.port_active(p) {
                    return self.port_release(p);
                }
                let dn = self.dncancel(slot, p, name);
                let mut ns = None;
                if e.ty & et::SEND != 0 {
                    if let Some(port) = self.pm(p) {
                        port.srights = port.srights.saturating_sub(1);
                        if port.srights == 0 {
                            ns = port.nsrequest.take().map(|n| (n, port.mscount));
                        }
                    }
                }
                if e.ty & et::RECEIVE != 0 {
                    self.clear_receiver(p);
                    self.port_destroy(p);
                } else if e.ty & et::SEND_ONCE != 0 {
                    self.notify_send_once(p);
                } else {
                    self.port_release(p);
                }
                if let Some((n, mscount)) = ns {
                    self.notify_no_senders(n, mscount);
                }
                if let Some(dn) = dn {
                    self.notify_port_deleted(dn, name);
                }
            }
            Obj::None => {}
        }
    }

    /// Tears a space down (`ipc_space_destroy`): every right it holds is destroyed.
    pub(crate) fn terminate_space(&mut self, slot: u32) {
        let (entries, task_port) = match self.spm(slot) {
            Some(sp) if sp.active => {
                sp.active = false;
                let mut v: Vec<(u32, Entry)> = sp.entries.drain();
                v.sort_by_key(|(n, _)| *n);
                (v, sp.task_port.take())
            }
            _ => return,
        };
        for (name, e) in entries {
            self.right_clean(slot, PortName(name), e);
        }
        if let Some(sp) = self.spm(slot) {
            sp.reverse.clear();
        }
        if let Some(tp) = task_port {
            if let Some(Receiver::Space { slot: ks, name }) = self.p(tp).map(|p| p.receiver) {
                if self.space_active(ks) {
                    self.right_destroy(ks, name);
                }
            }
        }
    }

    /// Frees a terminated space's slot.
    pub(crate) fn free_space(&mut self, slot: u32) {
        if let Some(s) = self.spaces.get_mut(slot as usize) {
            if s.take().is_some() {
                self.free_spaces.push(slot);
            }
        }
    }

    // ---------------------------------------------------------------- notifications

    /// A kernel message to the send-once right `so` (which it consumes).
    fn notification(&mut self, so: PortId, id: i32, size: u32) -> KBox {
        let mut m = self.new_kmsg();
        m.bytes.resize(size as usize, 0);
        m.size = size;
        m.bits = msgh_bits::make(tn::PORT_SEND_ONCE, 0);
        m.dest = Some(so);
        m.id = id;
        m
    }

    fn send_notification(&mut self, m: KBox) {
        self.counters.kmsgs += 1;
        self.send_kmsg(m);
    }

    fn put_desc(m: &mut KBox, desc: TypeDesc) {
        let _ = desc.encode(crate::wire::Target::X86_64, &mut m.bytes[32..40]);
    }

    fn name_notification(&mut self, so: PortId, id: i32, name: PortName) {
        let mut m = self.notification(so, id, 48);
        Self::put_desc(&mut m, TypeDesc::inline(tn::PORT_NAME, 32, 1));
        m.bytes[40..44].copy_from_slice(&name.0.to_le_bytes());
        self.send_notification(m);
    }

    /// `mach_notify_port_deleted` (0101).
    pub(crate) fn notify_port_deleted(&mut self, so: PortId, name: PortName) {
        self.name_notification(so, notify::PORT_DELETED, name);
    }

    /// `mach_notify_dead_name` (0110).
    pub(crate) fn notify_dead_name(&mut self, so: PortId, name: PortName) {
        self.name_notification(so, notify::DEAD_NAME, name);
    }

    /// `mach_notify_no_senders` (0106).
    pub(crate) fn notify_no_senders(&mut self, so: PortId, mscount: u32) {
        let mut m = self.notification(so, notify::NO_SENDERS, 48);
        Self::put_desc(&mut m, TypeDesc::inline(tn::INTEGER_32, 32, 1));
        m.bytes[40..44].copy_from_slice(&mscount.to_le_bytes());
        self.send_notification(m);
    }

    /// `mach_notify_send_once` (0107): the send-once right `so` was destroyed unused.
    pub(crate) fn notify_send_once(&mut self, so: PortId) {
        let m = self.notification(so, notify::SEND_ONCE, 32);
        self.send_notification(m);
    }

    /// `mach_notify_port_destroyed` (0105): carries the receive right for `port`
    /// (consuming a reference on it).
    pub(crate) fn notify_port_destroyed(&mut self, so: PortId, port: PortId) {
        let mut m = self.notification(so, notify::PORT_DESTROYED, 48);
        m.bits |= msgh_bits::COMPLEX;
        Self::put_desc(&mut m, TypeDesc::inline(tn::PORT_RECEIVE, 64, 1));
        m.ports.push(KPort {
            off: 40,
            obj: KObj::Port(port),
            ty: tn::PORT_RECEIVE,
        });
        if let Some(pp) = self.pm(port) {
            pp.receiver = Receiver::Transit(Some(so));
        }
        self.send_notification(m);
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// The cache-line layout the hot path relies on (see the type docs).
    #[test]
    fn hot_fields_are_on_the_intended_cache_lines() {
        let line = |off: usize| off / 64;
        // A port: the queue state and the first blocked receiver with the slot's generation;
        // the counts on another line.
        let port = offset_of!(Slot<Port>, val);
        assert_eq!(size_of::<Slot<Port>>() % 64, 0);
        assert_eq!(line(offset_of!(Slot<Port>, gen)), 0);
        for off in [
            offset_of!(Port, active),
            offset_of!(Port, seqno),
            offset_of!(Port, qlimit),
            offset_of!(Port, msgcount),
            offset_of!(Port, pset),
            offset_of!(Port, mq.waiters.first) + size_of::<Option<RcvWaiter>>() - 1,
        ] {
            assert_eq!(line(port + off), 0, "queue state at {off}");
        }
        for off in [offset_of!(Port, refs), offset_of!(Port, receiver)] {
            assert_ne!(line(port + off), 0, "counts at {off}");
        }
        // A space: what lookups read on the first line, the free list elsewhere.
        assert_eq!(size_of::<Space>() % 64, 0);
        assert_eq!(line(offset_of!(Space, active)), 0);
        assert_eq!(
            line(offset_of!(Space, entries) + size_of::<NameTable>() - 1),
            0
        );
        assert_ne!(line(offset_of!(Space, free)), 0);
        // A kernel message: header fields and a 64-byte inline image in two lines.
        let image = offset_of!(KMsg, bytes) + offset_of!(super::super::kmsg::Image, inline);
        assert!(image + 64 <= 128, "inline image at {image}");
        // The counters share the kernel lock's line.
        let m = std::sync::Mutex::new(State::new());
        let a = &m as *const _ as usize;
        let g = m.lock().unwrap();
        let data = &*g as *const State as usize - a;
        assert!(data + offset_of!(State, counters) + size_of::<Counters>() <= 64);
    }
}
