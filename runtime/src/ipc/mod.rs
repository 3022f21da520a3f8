//! A userspace Mach IPC for Linux: the emulated kernel's ports, rights, message queues and
//! notifications, with GNU Mach's semantics and the x86_64 message layout.
//!
//! * A [`Kernel`] is one IPC system. Tests create as many as they like; nothing is global
//!   except the registry that lets typed rights ([`crate::rights`]) find their space when
//!   dropped.
//! * A [`Task`] is a cheap, cloneable, `Send + Sync` handle to one task's port name space. It
//!   implements [`Transport`], so generated stubs run on it; its `port_*` methods are the
//!   `mach_port_*` calls. The task ends when [`Task::terminate`] is called or the last handle
//!   is dropped; all its rights are then destroyed, as when a Mach task dies.
//! * The kernel has its own task ([`Kernel::kernel_task`]) holding the receive rights of
//!   kernel objects (each task's task port, see [`Task::task_self`]), so a kernel-side server
//!   can receive on them with the ordinary server loop.
//!
//! What follows GNU Mach (gnumach `ipc/`): header and body copyin/copyout with the same
//! checks and error codes, user references merged per name, lazy dead names, sequence
//! numbers assigned at dequeue and reset when a receive right moves, queue limits (send-once
//! messages and notifications exempt), `MACH_RCV_TOO_LARGE` with and without
//! `MACH_RCV_LARGE`, circular receive rights, and the five notifications with the message
//! layout of `notify.defs`. Deliberate differences:
//!
//! * a failed send leaves the sender's rights and memory exactly as they were (GNU Mach
//!   destroys what it had already copied in when the body is bad);
//! * a sender blocked on a full queue holds on to its message's rights while it waits and
//!   retries the whole copyin when woken, so if the destination dies meanwhile it gets
//!   `MACH_SEND_INVALID_DEST` and keeps its rights (GNU Mach reports success and destroys the
//!   message);
//! * out-of-line memory comes only from the message's side table ([`crate::msg`]): a region
//!   is moved when the descriptor says `deallocate` and the sender attached an owned buffer
//!   of exactly that length, copied otherwise;
//! * `MACH_SEND_NOTIFY`, `MACH_SEND_CANCEL`, `MACH_RCV_NOTIFY`, interrupts and protected
//!   payloads are not implemented (the options are ignored); the msg-accepted notification
//!   is therefore never sent.
//!
//! Design: one mutex guards the whole state ([`Kernel::check_consistency`] can recompute it).
//! A send copies in, then hands the message straight to a receiver blocked on the queue if
//! there is one — copying it out into the receiver's space right there, under the same lock
//! hold — or queues it. The woken receiver then only copies bytes into its buffer, without
//! taking the lock again. `mach_msg(SEND|RCV)` takes the lock once for both halves when the
//! reply is not there yet. Blocked threads poll a private flag briefly, yield, then park.
//!
//! Performance notes (an RPC between two threads is bounded by the cache lines that travel
//! between their cores, not by instructions):
//! * the header copyin has GNU Mach's fast paths for a request (`COPY_SEND` +
//!   `MAKE_SEND_ONCE`), a one-way message and a reply (`MOVE_SEND_ONCE`): they check
//!   everything before changing anything, so they need no journal (`copyin.rs`);
//! * names are found by their index in a directly indexed table, not by hashing
//!   (`state.rs`, `NameTable`);
//! * hot structures are laid out by who writes them: the state's counters share the lock's
//!   cache line, each port keeps its queue state and first blocked receiver on its first
//!   line and its counts on another, spaces and ports never share a line, a small message
//!   image is inline in its kernel message (`kmsg.rs`);
//! * a waiter is a per-thread `&'static` (no reference count per wait) whose flag and
//!   delivery share one cache line, handed over with one atomic operation (`wait.rs`).

mod check;
mod copyin;
mod copyout;
mod hash;
mod kmsg;
mod ops;
mod registry;
mod state;
mod wait;

use crate::msg::MsgBuf;
use crate::rights::{ReceiveRight, RightKind, SpaceId};
use crate::transport::Transport;
use crate::wire::{msg_return as mr, option, KernReturn, PortName};
use hash::Map;
use state::{MqRef, RcvWaiter, State};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use wait::{Delivery, Waiter};

/// The largest message a task may send (`MACH_SEND_NO_BUFFER` above).
pub(crate) const MAX_MSG_SIZE: usize = 64 << 20;

/// `MACH_PORT_QLIMIT_DEFAULT`.
pub const QLIMIT_DEFAULT: u32 = state::QLIMIT_DEFAULT;
/// `MACH_PORT_QLIMIT_MAX`.
pub const QLIMIT_MAX: u32 = state::QLIMIT_MAX;
/// `MACH_PORT_UREFS_MAX`.
pub const UREFS_MAX: u32 = state::UREFS_MAX;

/// A `mach_port_type_t`: the rights a name denotes (`MACH_PORT_TYPE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortType(pub u32);

impl PortType {
    pub const NONE: PortType = PortType(0);
    pub const SEND: PortType = PortType(1 << 16);
    pub const RECEIVE: PortType = PortType(1 << 17);
    pub const SEND_ONCE: PortType = PortType(1 << 18);
    pub const PORT_SET: PortType = PortType(1 << 19);
    pub const DEAD_NAME: PortType = PortType(1 << 20);
    /// A dead-name request is registered (`MACH_PORT_TYPE_DNREQUEST`).
    pub const DNREQUEST: PortType = PortType(0x8000_0000);
    pub const SEND_RECEIVE: PortType = PortType((1 << 16) | (1 << 17));

    /// Does this type include every bit of `other`?
    pub const fn contains(self, other: PortType) -> bool {
        self.0 & other.0 == other.0
    }
    /// The type without request bits.
    pub const fn rights(self) -> PortType {
        PortType(self.0 & 0x001f_0000)
    }
    /// The type bit of a [`RightKind`].
    pub const fn of(kind: RightKind) -> PortType {
        PortType(1 << (kind.number() + 16))
    }
}

impl core::ops::BitOr for PortType {
    type Output = PortType;
    fn bitor(self, o: PortType) -> PortType {
        PortType(self.0 | o.0)
    }
}

impl fmt::Debug for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (PortType::SEND, "SEND"),
            (PortType::RECEIVE, "RECEIVE"),
            (PortType::SEND_ONCE, "SEND_ONCE"),
            (PortType::PORT_SET, "PORT_SET"),
            (PortType::DEAD_NAME, "DEAD_NAME"),
            (PortType::DNREQUEST, "DNREQUEST"),
        ];
        let mut first = true;
        for (t, n) in names {
            if self.contains(t) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("NONE")?;
        }
        Ok(())
    }
}

/// `mach_port_status_t` (`mach_port_get_receive_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// The containing port set's name, or null.
    pub pset: PortName,
    pub seqno: u32,
    pub mscount: u32,
    pub qlimit: u32,
    pub msgcount: u32,
    pub sorights: u32,
    pub srights: bool,
    pub pdrequest: bool,
    pub nsrequest: bool,
}

/// Accounting for tests: what the kernel holds right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KernelStats {
    /// Live ports (with a receive right somewhere).
    pub ports: usize,
    /// Port objects still allocated (live ports plus dead ports still named or referenced).
    pub port_objects: usize,
    /// Live port sets.
    pub port_sets: usize,
    /// Messages inside the kernel (queued or being handed to a receiver).
    pub messages: usize,
    /// Messages sitting in queues.
    pub queued: usize,
    /// Bytes of out-of-line memory held by messages inside the kernel.
    pub ool_bytes: usize,
    /// Tasks alive, the kernel task included.
    pub tasks: usize,
}

thread_local! {
    /// Where [`Shared::unlock`] keeps the waiters to wake (a reused allocation).
    static WAKE_SPARE: std::cell::RefCell<Vec<&'static Waiter>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The kernel lock and the state it guards, starting on a cache line of their own (see
/// [`State`]).
#[repr(align(64))]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases the lock, then wakes the threads the locked operation completed.
    fn unlock(&self, mut g: MutexGuard<'_, State>) {
        if g.wake.is_empty() {
            return;
        }
        WAKE_SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            core::mem::swap(&mut *spare, &mut g.wake);
            drop(g);
            for w in spare.drain(..) {
                w.unpark();
            }
        });
    }

    /// Keeps a finished kernel message for this thread's next send (no lock needed).
    fn give_back(&self, k: Option<kmsg::KBox>) {
        if let Some(k) = k {
            state::keep_spare_kmsg(k);
        }
    }

    /// Runs `f` under the lock and wakes whoever it completed.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g);
        self.unlock(g);
        r
    }
}

struct KernelInner {
    shared: Arc<Shared>,
    ktask: Task,
}

/// One emulated IPC system. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<KernelInner>,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Kernel {
    /// A new IPC system with only the kernel task. Also installs (once per process) the
    /// [`crate::rights::PortSpaces`] that lets typed rights release themselves in
    /// emulated tasks.
    pub fn new() -> Kernel {
        registry::ensure_installed();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
        });
        let id = registry::new_space_id();
        let slot = shared.lock().new_space(id);
        let ktask = Task::register(Arc::clone(&shared), id, slot);
        Kernel {
            inner: Arc::new(KernelInner { shared, ktask }),
        }
    }

    /// Creates a task with an empty space (and its kernel task port).
    pub fn new_task(&self) -> Task {
        let shared = &self.inner.shared;
        let id = registry::new_space_id();
        let kslot = self.inner.ktask.inner.slot;
        let slot = shared.with(|st| {
            let slot = st.new_space(id);
            if let Ok(kname) = st.op_allocate(kslot, RightKind::Receive) {
                if let Some(p) = st.entry(kslot, kname).and_then(|e| e.port()) {
                    if let Some(sp) = st.spm(slot) {
                        sp.task_port = Some(p);
                    }
                }
            }
            slot
        });
        Task::register(Arc::clone(shared), id, slot)
    }

    /// The kernel's own task: it holds the receive rights of kernel objects (task ports).
    pub fn kernel_task(&self) -> &Task {
        &self.inner.ktask
    }

    /// The kernel task's name for `task`'s task port (its receive right), if the task is
    /// alive and belongs to this kernel.
    pub fn task_port_name(&self, task: &Task) -> Option<PortName> {
        if !Arc::ptr_eq(&task.inner.shared, &self.inner.shared) {
            return None;
        }
        self.inner.shared.with(|st| {
            let p = st.sp(task.inner.slot)?.task_port?;
            match st.p(p)?.receiver {
                state::Receiver::Space { slot, name } if slot == self.inner.ktask.inner.slot => {
                    Some(name)
                }
                _ => None,
            }
        })
    }

    /// Recomputes every port's references and right counts from the spaces, the queued
    /// messages and the stored notification requests, and compares them with the kernel's
    /// bookkeeping (for tests; meaningful when no thread is inside `mach_msg`).
    pub fn check_consistency(&self) -> Result<(), String> {
        self.inner.shared.with(|st| st.check())
    }

    /// What the kernel holds right now.
    pub fn stats(&self) -> KernelStats {
        self.inner.shared.with(|st| {
            let c = st.counters;
            KernelStats {
                ports: c.active_ports,
                port_objects: c.port_objects,
                port_sets: c.port_sets,
                messages: c.kmsgs,
                queued: c.queued,
                ool_bytes: c.ool_bytes,
                tasks: st
                    .spaces
                    .iter()
                    .filter(|s| s.as_ref().is_some_and(|s| s.active))
                    .count(),
            }
        })
    }
}

struct TaskInner {
    shared: Arc<Shared>,
    space: SpaceId,
    slot: u32,
    replies: Mutex<Map<ThreadId, PortName>>,
}

impl Drop for TaskInner {
    fn drop(&mut self) {
        registry::unregister(self.space);
        let slot = self.slot;
        self.shared.with(|st| {
            st.terminate_space(slot);
            st.free_space(slot);
        });
    }
}

/// A task: a port name space in a [`Kernel`]. Cheap to clone; the task dies with its last
/// handle (or [`Task::terminate`]).
#[derive(Clone)]
pub struct Task {
    inner: Arc<TaskInner>,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Task(space {})", self.inner.space.0)
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Task) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

type Kr<T> = Result<T, KernReturn>;

impl Task {
    fn register(shared: Arc<Shared>, id: SpaceId, slot: u32) -> Task {
        registry::register(id, &shared, slot);
        Task {
            inner: Arc::new(TaskInner {
                shared,
                space: id,
                slot,
                replies: Mutex::new(Map::default()),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, u32) -> R) -> R {
        let slot = self.inner.slot;
        self.inner.shared.with(|st| f(st, slot))
    }

    fn same_kernel(&self, other: &Task) -> bool {
        Arc::ptr_eq(&self.inner.shared, &other.inner.shared)
    }

    /// The task's space id (what typed rights record).
    pub fn space_id(&self) -> SpaceId {
        self.inner.space
    }

    /// Whether the task is still alive.
    pub fn is_active(&self) -> bool {
        self.with(|st, slot| st.space_active(slot))
    }

    /// Terminates the task now: every right it holds is destroyed (receive rights destroy
    /// their ports, send-once rights send send-once notifications, …). Later calls fail with
    /// `KERN_INVALID_TASK` (port calls) or `MACH_SEND_INVALID_DEST`/`MACH_RCV_INVALID_NAME`.
    pub fn terminate(&self) {
        self.with(|st, slot| st.terminate_space(slot));
    }

    /// `mach_task_self()`: a send right to the task's kernel port, adding a user reference
    /// each call (the same name every time while the right lives).
    pub fn task_self(&self) -> Kr<PortName> {
        self.with(|st, slot| {
            if !st.space_active(slot) {
                return Err(KernReturn::KERN_INVALID_TASK);
            }
            let p = st
                .sp(slot)
                .and_then(|s| s.task_port)
                .filter(|&p| st.port_active(p))
                .ok_or(KernReturn::KERN_INVALID_TASK)?;
            if let Some(port) = st.pm(p) {
                port.mscount = port.mscount.wrapping_add(1);
                port.srights += 1;
                port.refs += 1;
            }
            Ok(st.copyout_object(slot, kmsg::KObj::Port(p), crate::wire::type_name::PORT_SEND))
        })
    }

    /// `mach_port_allocate(task, right, &name)`: a receive right, port set or dead name.
    pub fn port_allocate(&self, right: RightKind) -> Kr<PortName> {
        self.with(|st, slot| st.op_allocate(slot, right))
    }

    /// Allocates a receive right as a typed [`ReceiveRight`].
    pub fn allocate_receive(&self) -> Kr<ReceiveRight> {
        let name = self.port_allocate(RightKind::Receive)?;
        Ok(ReceiveRight::from_raw(self.space_id(), name))
    }

    /// `mach_port_deallocate`: releases one user reference of a send, send-once or dead-name
    /// right.
    pub fn port_deallocate(&self, name: PortName) -> Kr<()> {
        self.with(|st, slot| st.op_deallocate(slot, name))
    }

    /// `mach_port_destroy`: removes every right the name denotes.
    pub fn port_destroy(&self, name: PortName) -> Kr<()> {
        self.with(|st, slot| st.op_destroy(slot, name))
    }

    /// `mach_port_mod_refs`.
    pub fn port_mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Kr<()> {
        self.with(|st, slot| st.op_mod_refs(slot, name, right, delta))
    }

    /// `mach_port_get_refs`.
    pub fn port_get_refs(&self, name: PortName, right: RightKind) -> Kr<u32> {
        self.with(|st, slot| st.op_get_refs(slot, name, right))
    }

    /// `mach_port_type`.
    pub fn port_type(&self, name: PortName) -> Kr<PortType> {
        self.with(|st, slot| st.op_info(slot, name).map(|(t, _)| t))
    }

    /// `mach_port_insert_right(self, name, poly, disposition)`: makes or copies a right from
    /// `poly` (a name in this task) and inserts it under `name` in this task. The usual use
    /// is `insert_right(n, n, MACH_MSG_TYPE_MAKE_SEND)`.
    pub fn port_insert_right(&self, name: PortName, poly: PortName, disposition: u32) -> Kr<()> {
        self.with(|st, slot| st.op_insert_right(slot, name, slot, poly, disposition))
    }

    /// `mach_port_insert_right(target, name, poly, disposition)` called by this task: the
    /// right comes from this task's `poly` and is inserted into `target` under `name`.
    pub fn port_insert_right_into(
        &self,
        target: &Task,
        name: PortName,
        poly: PortName,
        disposition: u32,
    ) -> Kr<()> {
        if !self.same_kernel(target) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        let dst = target.inner.slot;
        self.with(|st, slot| st.op_insert_right(dst, name, slot, poly, disposition))
    }

    /// Gives `to` a right made from this task's `name` with `disposition`, exactly as if a
    /// message carried it (the right lands under a name `to` chooses, merging with rights
    /// it already has). Not a Mach call: a bootstrap shortcut for tests and examples.
    /// Errors: `MACH_SEND_INVALID_RIGHT` if this task lacks the right.
    pub fn transfer_right(&self, name: PortName, disposition: u32, to: &Task) -> Kr<PortName> {
        if !self.same_kernel(to) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        let dst = to.inner.slot;
        self.with(|st, slot| st.op_transfer(slot, name, disposition, dst))
    }

    /// `mach_port_extract_right(self, name, disposition)`: takes the right out of `name` and
    /// gives it back under a (possibly new) name, with its received type.
    pub fn port_extract_right(&self, name: PortName, disposition: u32) -> Kr<(PortName, u32)> {
        self.with(|st, slot| st.op_extract_right(slot, name, disposition))
    }

    /// `mach_port_move_member`: moves a receive right into the set `after` (null: out of
    /// any set).
    pub fn port_move_member(&self, member: PortName, after: PortName) -> Kr<()> {
        self.with(|st, slot| st.op_move_member(slot, member, after))
    }

    /// `mach_port_request_notification(self, name, id, sync, notify, disposition)`.
    /// `disposition` is `MACH_MSG_TYPE_MAKE_SEND_ONCE` (from a receive right) or
    /// `MACH_MSG_TYPE_MOVE_SEND_ONCE`; a null `notify` cancels. Returns the previously
    /// registered send-once right (now named in this task) or null.
    pub fn port_request_notification(
        &self,
        name: PortName,
        id: i32,
        sync: u32,
        notify: PortName,
        disposition: u32,
    ) -> Kr<PortName> {
        self.with(|st, slot| st.op_request_notification(slot, name, id, sync, notify, disposition))
    }

    /// `mach_port_get_receive_status`.
    pub fn port_get_receive_status(&self, name: PortName) -> Kr<PortStatus> {
        self.with(|st, slot| st.op_receive_status(slot, name))
    }

    /// `mach_port_set_qlimit` (at most [`QLIMIT_MAX`]).
    pub fn port_set_qlimit(&self, name: PortName, qlimit: u32) -> Kr<()> {
        self.with(|st, slot| st.op_set_qlimit(slot, name, qlimit))
    }

    /// `mach_port_set_mscount`.
    pub fn port_set_mscount(&self, name: PortName, mscount: u32) -> Kr<()> {
        self.with(|st, slot| st.op_set_mscount(slot, name, mscount))
    }

    /// `mach_port_set_seqno`.
    pub fn port_set_seqno(&self, name: PortName, seqno: u32) -> Kr<()> {
        self.with(|st, slot| st.op_set_seqno(slot, name, seqno))
    }

    /// `mach_port_rename`.
    pub fn port_rename(&self, old: PortName, new: PortName) -> Kr<()> {
        self.with(|st, slot| st.op_rename(slot, old, new))
    }

    /// `mach_port_names`: every name in use with its type, in name order.
    pub fn port_names(&self) -> Vec<(PortName, PortType)> {
        self.space_snapshot()
            .into_iter()
            .map(|(n, (t, _))| (n, t))
            .collect()
    }

    /// Every name with its type and user references (send/dead-name urefs; 1 for send-once;
    /// 0 for receive-only and port sets), after converting rights to dead ports into dead
    /// names. For tests.
    pub fn space_snapshot(&self) -> BTreeMap<PortName, (PortType, u32)> {
        self.with(|st, slot| {
            let names: Vec<PortName> = match st.sp(slot) {
                Some(sp) if sp.active => sp.entries.keys().map(PortName).collect(),
                _ => return BTreeMap::new(),
            };
            names
                .into_iter()
                .filter_map(|n| st.op_info(slot, n).ok().map(|(t, u)| (n, (t, u))))
                .collect()
        })
    }

    /// The full `mach_msg` call (also available through [`Transport`]). `timeout` is in
    /// milliseconds and applies with `MACH_SEND_TIMEOUT`/`MACH_RCV_TIMEOUT` (0 polls).
    /// `notify` is ignored.
    #[allow(clippy::too_many_arguments)]
    pub fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        _notify: PortName,
    ) -> KernReturn {
        // Names in the buffer, sent or received, are this task's: typed rights the stubs take
        // out of a received message must release into this space when dropped.
        msg.set_space(self.inner.space);
        KernReturn(self.msg(msg, option, send_size, rcv_size, rcv_name, timeout) as i32)
    }

    fn msg(
        &self,
        msg: &mut MsgBuf<'_>,
        opt: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
    ) -> u32 {
        let shared = &*self.inner.shared;
        let slot = self.inner.slot;
        let mut g = shared.lock();
        if opt & option::SEND_MSG != 0 {
            let mut deadline = None;
            loop {
                let k = match g.copyin(slot, msg, send_size) {
                    Ok(x) => x,
                    Err(c) => {
                        shared.unlock(g);
                        return c;
                    }
                };
                let full = k.dest.and_then(|d| g.p(d)).is_some_and(|port| {
                    k.dest_type() != crate::wire::type_name::PORT_SEND_ONCE
                        && port.msgcount >= port.qlimit
                });
                if !full {
                    let mut k = k;
                    g.commit(slot, msg, &mut k);
                    g.send_kmsg(k);
                    break;
                }
                let dest = k.dest;
                g.abort_copyin(slot, k);
                if opt & option::SEND_TIMEOUT != 0 && timeout == 0 {
                    shared.unlock(g);
                    return mr::SEND_TIMED_OUT;
                }
                if opt & option::SEND_TIMEOUT != 0 && deadline.is_none() {
                    deadline = Some(Instant::now() + Duration::from_millis(u64::from(timeout)));
                }
                let w = Waiter::current();
                if let Some(port) = dest.and_then(|d| g.pm(d)) {
                    port.blocked.push_back(w);
                }
                shared.unlock(g);
                w.wait(deadline);
                g = shared.lock();
                if !w.is_woken() {
                    if let Some(port) = dest.and_then(|d| g.pm(d)) {
                        port.blocked.retain(|x| !core::ptr::eq(*x, w));
                    }
                    shared.unlock(g);
                    return mr::SEND_TIMED_OUT;
                }
            }
        }
        if opt & option::RCV_MSG == 0 {
            shared.unlock(g);
            return mr::SUCCESS;
        }
        let limit = rcv_size.min(u32::try_from(msg.capacity()).unwrap_or(u32::MAX));
        let max = if opt & option::RCV_LARGE != 0 {
            limit
        } else {
            u32::MAX
        };
        let timed = opt & option::RCV_TIMEOUT != 0;
        let mut deadline = None;
        loop {
            let target = match receive_target(&mut g, slot, rcv_name) {
                Ok(t) => t,
                Err(c) => {
                    shared.unlock(g);
                    return c;
                }
            };
            match g.dequeue(target, max) {
                Ok(Some(k)) => {
                    let p = g.copyout(slot, k, limit, msg.capacity());
                    shared.unlock(g);
                    return install(shared, p, msg);
                }
                Err(size) => {
                    shared.unlock(g);
                    return too_large(msg, size);
                }
                Ok(None) => {}
            }
            if timed && timeout == 0 {
                shared.unlock(g);
                return mr::RCV_TIMED_OUT;
            }
            if timed && deadline.is_none() {
                deadline = Some(Instant::now() + Duration::from_millis(u64::from(timeout)));
            }
            let w = Waiter::current();
            if let Some(q) = g.mq(target) {
                q.waiters.push_back(RcvWaiter {
                    w,
                    max,
                    limit,
                    cap: u32::try_from(msg.capacity()).unwrap_or(u32::MAX),
                    slot,
                });
            }
            shared.unlock(g);
            if !w.wait(deadline) {
                g = shared.lock();
                if !w.is_woken() {
                    if let Some(q) = g.mq(target) {
                        q.waiters.retain(|x| !core::ptr::eq(x.w, w));
                    }
                    shared.unlock(g);
                    return mr::RCV_TIMED_OUT;
                }
                shared.unlock(g);
            }
            // Woken: whoever woke us filled the slot under the kernel lock before setting
            // the flag, so no lock is needed to read it.
            match w.take() {
                Some(Delivery::Msg(p)) => return install(shared, p, msg),
                Some(Delivery::TooLarge(size)) => return too_large(msg, size),
                Some(Delivery::Error(c)) => return c,
                // Woken without a delivery: look again.
                None => {
                    g = shared.lock();
                    continue;
                }
            }
        }
    }
}

#[cfg(test)]
impl Task {
    /// How many threads are blocked receiving on `name` (a port or a port set), for tests that
    /// must act only once a receiver waits.
    pub(crate) fn blocked_receivers(&self, name: PortName) -> usize {
        self.with(|st, slot| match receive_target(st, slot, name) {
            Ok(t) => st.mq(t).map_or(0, |q| q.waiters.len()),
            Err(_) => 0,
        })
    }
}

/// Copies a prepared message into the caller's buffer.
fn install(shared: &Shared, p: copyout::Prepared, msg: &mut MsgBuf<'_>) -> u32 {
    let (code, k) = p.install(msg);
    shared.give_back(k);
    code
}

/// `MACH_RCV_TOO_LARGE` with `MACH_RCV_LARGE`: the message stays queued and the caller
/// learns its size in `msgh_size`.
fn too_large(msg: &mut MsgBuf<'_>, size: u32) -> u32 {
    let _ = crate::wire::bytes::put_u32(msg.bytes_mut(), crate::wire::header::SIZE, size);
    mr::RCV_TOO_LARGE
}

/// `ipc_mqueue_copyin`: the queue a receive on `name` waits on.
fn receive_target(st: &mut State, slot: u32, name: PortName) -> Result<MqRef, u32> {
    if !st.space_active(slot) {
        return Err(mr::RCV_INVALID_NAME);
    }
    let e = st.entry(slot, name).ok_or(mr::RCV_INVALID_NAME)?;
    match e.obj {
        state::Obj::Port(p) if e.ty & state::et::RECEIVE != 0 => {
            if st.p(p).is_some_and(|port| port.pset.is_some()) {
                Err(mr::RCV_IN_SET)
            } else {
                Ok(MqRef::Port(p))
            }
        }
        state::Obj::Pset(s) if e.ty & state::et::PORT_SET != 0 => Ok(MqRef::Pset(s)),
        _ => Err(mr::RCV_INVALID_NAME),
    }
}

impl Transport for Task {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn {
        Task::mach_msg(
            self, msg, option, send_size, rcv_size, rcv_name, timeout, notify,
        )
    }

    /// glibc's `__mig_get_reply_port`: one receive right per (thread, task), made on first
    /// use.
    fn get_reply_port(&self) -> PortName {
        let tid = std::thread::current().id();
        let mut map = self.inner.replies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&n) = map.get(&tid) {
            return n;
        }
        match self.port_allocate(RightKind::Receive) {
            Ok(n) => {
                map.insert(tid, n);
                n
            }
            Err(_) => PortName::NULL,
        }
    }

    /// glibc's `__mig_put_reply_port`: nothing.
    fn put_reply_port(&self, _port: PortName) {}

    /// glibc's `__mig_dealloc_reply_port`: destroys the calling thread's reply port
    /// (ignoring the argument); the next call makes a new one.
    fn dealloc_reply_port(&self, _port: PortName) {
        let tid = std::thread::current().id();
        let old = self
            .inner
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tid);
        if let Some(n) = old {
            let _ = self.port_mod_refs(n, RightKind::Receive, -1);
        }
    }

    fn space(&self) -> SpaceId {
        self.inner.space
    }
}

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;
