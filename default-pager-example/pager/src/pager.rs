//! The pager core: ports, the object table, the paging space, and one handler per message.
//! Generic over the transport (the `mach_msg` the generated stubs call) and the platform's
//! locks, and free of `std`.

use crate::checksum::checksum;
use crate::gen::{mach, mach_port};
use crate::map::Slot;
use crate::object::{seq_before, ObjState, Object};
use crate::platform::{Lock, Platform};
use crate::space::{AddStoreError, BlockAddr, PagingSpace, SpaceInfo};
use crate::stats::{add, bump, Counters, Hooks, MsgKind, Reason, Rejection, ReplyKind, Stats};
use crate::store::BackingStore;
use crate::PAGE_SIZE;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use mig_runtime::msg::OolData;
use mig_runtime::rights::RightKind;
use mig_runtime::wire::{notify, type_name};
use mig_runtime::{
    KernReturn, OolBuffer, Poly, PortName, ReceiveRight, RpcError, SendRight, Transport,
};

/// `VM_PROT_NONE`: supplied pages are not locked.
const VM_PROT_NONE: i32 = 0;
/// `MEMORY_OBJECT_COPY_DELAY`, the copy strategy the pager asks for external objects.
pub const MEMORY_OBJECT_COPY_DELAY: i32 = 2;

/// The pager's configuration.
#[derive(Clone)]
pub struct Config {
    /// Threads serving object ports (the std layer's "internal" threads). Default: the
    /// Hurd's `min(cpus, 32) / 4 + 3`.
    pub object_threads: usize,
    /// Read-ahead: with each requested page, also supply up to this many following pages
    /// that are stored, in the same `memory_object_data_supply` (0, the default, turns it
    /// off). Unsolicited pages are legal in GNU Mach, but a page the kernel evicted after
    /// sending the request (its `data_return` still queued behind it) would be supplied
    /// with older contents; use it only with kernels that cannot race like that.
    pub read_ahead: u32,
    /// Give back control-port user references once more than this many accumulated (every
    /// request brings one; the Hurd's `default_pager_max_urefs`, 10000).
    pub max_urefs: u32,
    /// How long a message waits for an earlier seqno before the pager decides the message
    /// with that seqno was lost (e.g. the kernel dequeued it but could not deliver it) and
    /// skips ahead, logging a [`Reason::SeqnoGap`]. `None` waits forever. Platforms
    /// without a clock ignore it.
    pub seqno_gap_timeout_ms: Option<u32>,
    /// How many rejections to keep for [`Core::rejections`].
    pub rejection_log: usize,
    /// Put the default-memory-manager port into the object port set, so that one server
    /// loop (one thread, e.g. a bare GNU Mach program) serves everything. The std layer then
    /// runs only the object threads. Default `false` (the Hurd's two sets).
    pub one_port_set: bool,
    /// Observation hooks (traces, tests).
    pub hooks: Option<Arc<dyn Hooks>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            object_threads: default_object_threads(),
            read_ahead: 0,
            max_urefs: 10_000,
            seqno_gap_timeout_ms: Some(30_000),
            rejection_log: 64,
            one_port_set: false,
            hooks: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("object_threads", &self.object_threads)
            .field("read_ahead", &self.read_ahead)
            .field("max_urefs", &self.max_urefs)
            .field("seqno_gap_timeout_ms", &self.seqno_gap_timeout_ms)
            .field("rejection_log", &self.rejection_log)
            .field("one_port_set", &self.one_port_set)
            .field("hooks", &self.hooks.is_some())
            .finish()
    }
}

/// The Hurd's number of internal threads: `min(cpus, 32) / 4 + 3`.
pub fn default_object_threads() -> usize {
    #[cfg(feature = "std")]
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(not(feature = "std"))]
    let cpus = 1;
    cpus.min(32) / 4 + 3
}

/// Why the pager could not start, or a setup call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `vm_set_default_memory_manager` says another default memory manager is registered
    /// (the Hurd's `main.c` refuses to start then, and so does this pager).
    AlreadyRegistered,
    /// A kernel call failed.
    Kernel { call: &'static str, error: RpcError },
    /// A paging store was refused.
    Store(AddStoreError),
    /// The pager was started twice, or used after shutdown.
    State(&'static str),
    /// The std layer could not start its threads.
    Thread(alloc::string::String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRegistered => {
                f.write_str("another default memory manager is already registered with the kernel")
            }
            Error::Kernel { call, error } => write!(f, "{call} failed: {error}"),
            Error::Store(AddStoreError::BlockSize { store, pager }) => write!(
                f,
                "paging store has {store}-byte blocks, the pager's page size is {pager}"
            ),
            Error::Store(AddStoreError::TooMany) => f.write_str("too many paging stores"),
            Error::State(s) => f.write_str(s),
            Error::Thread(s) => write!(f, "cannot start server threads: {s}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

fn kerr(call: &'static str) -> impl FnOnce(RpcError) -> Error {
    move |error| Error::Kernel { call, error }
}

/// The per-message context: which message is being handled, and whether its seqno was
/// consumed (the demux consumes it for messages that never reached a handler).
pub(crate) struct Cx {
    pub msg_id: i32,
    pub port: PortName,
    pub seqno: u32,
    pub consumed: Cell<bool>,
    pub kind: Cell<Option<MsgKind>>,
}

/// What an admitted data_request does.
enum ReadPlan {
    /// Refused; `counted`: the control right was counted (keep it), else release it;
    /// `reply`: answer data_error for the requested range (the caller may be waiting).
    Reject {
        reason: Reason,
        counted: bool,
        reply: Option<KernReturn>,
    },
    Unavailable,
    Error(KernReturn),
    Read(Vec<(BlockAddr, u32)>),
}

/// What an admitted data_return / data_initialize does.
enum WritePlan {
    Reject {
        reason: Reason,
        counted: bool,
    },
    /// Write page `first + i` for every `Some(existing)` in `pages` (the existing block is
    /// rewritten in place; `None` inside means skip the page).
    Write {
        first: u64,
        pages: Vec<Option<Option<BlockAddr>>>,
    },
}

/// The outcome of storing one page.
enum Stored {
    Ok {
        addr: BlockAddr,
        sum: u32,
    },
    Lost {
        code: KernReturn,
        /// A block allocated for this write that must go back.
        free: Option<BlockAddr>,
    },
}

/// The default pager, independent of threads and of `std`: give it messages with
/// [`Core::demux`] (it implements [`mig_runtime::Demux`]) from any number of server
/// threads receiving on [`Core::default_set`] and [`Core::object_set`].
pub struct Core<T: Transport, P: Platform> {
    transport: T,
    task: SendRight,
    cfg: Config,
    page_size: usize,
    dmm: AtomicU32,
    default_set: AtomicU32,
    object_set: AtomicU32,
    registered: AtomicBool,
    objects: P::Lock<BTreeMap<u32, Arc<Object<P>>>>,
    space: PagingSpace<P>,
    counters: Counters,
    log: P::Lock<VecDeque<Rejection>>,
    next_id: AtomicU64,
    next_token: AtomicU64,
}

impl<T: Transport, P: Platform> Core<T, P> {
    /// A pager that will talk to the kernel through `transport`, with `task_self` a send
    /// right to its own task port (all `mach_port_*` calls go there). Nothing is sent yet.
    pub fn new(transport: T, task_self: SendRight, cfg: Config) -> Self {
        Core {
            transport,
            task: task_self,
            cfg,
            page_size: PAGE_SIZE,
            dmm: AtomicU32::new(0),
            default_set: AtomicU32::new(0),
            object_set: AtomicU32::new(0),
            registered: AtomicBool::new(false),
            objects: Lock::new(BTreeMap::new()),
            space: PagingSpace::new(PAGE_SIZE),
            counters: Counters::default(),
            log: Lock::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
            next_token: AtomicU64::new(1),
        }
    }

    /// Adds a paging store (at any time; this is how the pager recovers when full).
    pub fn add_store(&self, store: Arc<dyn BackingStore>) -> Result<u16, Error> {
        self.space.add(store).map_err(Error::Store)
    }

    /// Allocates the pager's ports (the default-memory-manager port, which is also the
    /// `default_pager` admin port, and the two port sets), refuses to go on if the kernel
    /// already has a default memory manager (`vm_set_default_memory_manager` with a null
    /// port only asks), then registers the port. `host_priv` is used for these two calls
    /// only.
    pub fn register(&self, host_priv: &SendRight) -> Result<(), Error> {
        if self.registered.swap(true, Ordering::AcqRel) {
            return Err(Error::State("the pager is already registered"));
        }
        let r = self.register_inner(host_priv);
        if r.is_err() {
            self.destroy_own_ports();
            self.registered.store(false, Ordering::Release);
        }
        r
    }

    fn register_inner(&self, host_priv: &SendRight) -> Result<(), Error> {
        let t = &self.transport;
        let oset =
            mach_port::client::mach_port_allocate(t, &self.task, RightKind::PortSet.number())
                .map_err(kerr("mach_port_allocate(PORT_SET)"))?;
        self.object_set.store(oset.0, Ordering::Release);
        let dset = if self.cfg.one_port_set {
            oset
        } else {
            let d =
                mach_port::client::mach_port_allocate(t, &self.task, RightKind::PortSet.number())
                    .map_err(kerr("mach_port_allocate(PORT_SET)"))?;
            self.default_set.store(d.0, Ordering::Release);
            d
        };
        let dmm = mach_port::client::mach_port_allocate(t, &self.task, RightKind::Receive.number())
            .map_err(kerr("mach_port_allocate(RECEIVE)"))?;
        self.dmm.store(dmm.0, Ordering::Release);
        mach_port::client::mach_port_move_member(t, &self.task, dmm, dset)
            .map_err(kerr("mach_port_move_member"))?;

        // Like the Hurd's main.c: ask first, and refuse to replace a running one.
        let current =
            mach::client::vm_set_default_memory_manager(t, host_priv, &ReceiveRight::null())
                .map_err(kerr("vm_set_default_memory_manager(query)"))?;
        if current.is_valid() {
            self.release_send(current.into_raw());
            return Err(Error::AlreadyRegistered);
        }
        let _ = current.into_raw();
        let me = ManuallyDrop::new(ReceiveRight::from_raw(t.space(), dmm));
        let previous = mach::client::vm_set_default_memory_manager(t, host_priv, &me)
            .map_err(kerr("vm_set_default_memory_manager"))?;
        // Someone registered between the two calls: they are replaced now (the kernel has no
        // way to put them back from here); drop our right to their port.
        if previous.is_valid() {
            self.release_send(previous.into_raw());
        } else {
            let _ = previous.into_raw();
        }
        Ok(())
    }

    /// The default-memory-manager port (the pager's receive right), which also serves the
    /// `default_pager` admin interface. Null before [`Core::register`].
    pub fn dmm_port(&self) -> PortName {
        PortName(self.dmm.load(Ordering::Acquire))
    }

    /// The port set of the default thread (the DMM/admin port); the object set with
    /// [`Config::one_port_set`].
    pub fn default_set(&self) -> PortName {
        if self.cfg.one_port_set {
            return self.object_set();
        }
        PortName(self.default_set.load(Ordering::Acquire))
    }

    /// The port set of the object threads (every object port).
    pub fn object_set(&self) -> PortName {
        PortName(self.object_set.load(Ordering::Acquire))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The send right to the pager's own task port.
    pub fn task(&self) -> &SendRight {
        &self.task
    }

    /// A snapshot of the counters, with the live object count and the paging space.
    pub fn stats(&self) -> Stats {
        let mut s = self.counters.snapshot();
        let info = self.space.info();
        let ps = self.page_size as u64;
        s.objects = self.objects.with(|o| o.len() as u64);
        s.paging_total = info.total_blocks * ps;
        s.paging_free = info.free_blocks * ps;
        s.stores = info.stores as u64;
        s.page_size = ps;
        s
    }

    /// Total and free paging space in blocks.
    pub fn space_info(&self) -> SpaceInfo {
        self.space.info()
    }

    /// The most recent rejections, oldest first.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.log.with(|l| l.iter().copied().collect())
    }

    /// The object ports the pager serves, with their serial numbers.
    pub fn object_ports(&self) -> Vec<(u64, PortName)> {
        self.objects
            .with(|o| o.values().map(|ob| (ob.id, ob.port)).collect())
    }

    /// Page offsets stored for the object with port `port` (what
    /// `default_pager_object_pages` reports).
    pub fn object_pages(&self, port: PortName) -> Option<Vec<u64>> {
        let obj = self.object(port)?;
        let ps = self.page_size as u64;
        Some(obj.st.with(|s| {
            s.map
                .stored_page_indices()
                .into_iter()
                .map(|p| p * ps)
                .collect()
        }))
    }

    /// Destroys every port the pager holds (objects, their control and name rights, the
    /// DMM port and the sets) and forgets every object; their blocks go back to the
    /// paging space. Call it once the server threads are stopped.
    pub fn teardown(&self) {
        let objs: Vec<Arc<Object<P>>> = self
            .objects
            .with(|o| core::mem::take(o).into_values().collect());
        for obj in objs {
            let (ctl, name, name_refs, blocks) = obj.st.with(|s| {
                s.dead = true;
                let r = (
                    core::mem::replace(&mut s.control, PortName::NULL),
                    core::mem::replace(&mut s.name, PortName::NULL),
                    s.name_refs,
                    s.map.take_blocks(),
                );
                s.seqno = s.seqno.wrapping_add(1);
                r
            });
            obj.st.notify_all();
            for b in blocks {
                self.space.release(b);
            }
            self.drop_kernel_ports(ctl, name, name_refs);
            self.destroy_receive(obj.port);
        }
        self.destroy_own_ports();
    }

    fn destroy_own_ports(&self) {
        for p in [&self.dmm, &self.default_set, &self.object_set] {
            let n = PortName(p.swap(0, Ordering::AcqRel));
            if n.is_valid() {
                let _ = mach_port::client::mach_port_destroy(&self.transport, &self.task, n);
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Kernel calls through the generated stubs.

    fn with_send<R>(&self, name: PortName, f: impl FnOnce(&SendRight) -> R) -> R {
        let r = ManuallyDrop::new(SendRight::from_raw(self.transport.space(), name));
        f(&r)
    }

    /// `mach_port_deallocate`: gives back one user reference.
    fn release_send(&self, name: PortName) {
        if name.is_valid() {
            if let Err(e) =
                mach_port::client::mach_port_deallocate(&self.transport, &self.task, name)
            {
                self.note_kernel_failure("mach_port_deallocate", e);
            }
        }
    }

    /// `mach_port_mod_refs(RECEIVE, -1)`: destroys a port the pager received.
    fn destroy_receive(&self, name: PortName) {
        if name.is_valid() {
            if let Err(e) = mach_port::client::mach_port_mod_refs(
                &self.transport,
                &self.task,
                name,
                RightKind::Receive.number(),
                -1,
            ) {
                self.note_kernel_failure("mach_port_mod_refs(RECEIVE, -1)", e);
            }
        }
    }

    /// Drops the pager's rights on an object's control and name ports (after terminate,
    /// when the pager holds their receive rights, or at teardown). The control port is
    /// destroyed; for the name port only the pager's own send references are dropped
    /// before its receive right, so a reference handed out by `default_pager_objects` and
    /// not yet delivered stays valid (as a dead name).
    fn drop_kernel_ports(&self, ctl: PortName, name: PortName, name_refs: u32) {
        if ctl.is_valid() {
            if let Err(e) = mach_port::client::mach_port_destroy(&self.transport, &self.task, ctl) {
                self.note_kernel_failure("mach_port_destroy(control)", e);
            }
        }
        if name.is_valid() {
            if name_refs > 0 {
                let _ = mach_port::client::mach_port_mod_refs(
                    &self.transport,
                    &self.task,
                    name,
                    RightKind::Send.number(),
                    -(name_refs.min(i32::MAX as u32) as i32),
                );
            }
            // Only there if terminate brought it.
            let _ = mach_port::client::mach_port_mod_refs(
                &self.transport,
                &self.task,
                name,
                RightKind::Receive.number(),
                -1,
            );
        }
    }

    fn trim_ctl_refs(&self, ctl: PortName, trim: u32) {
        if trim == 0 {
            return;
        }
        match mach_port::client::mach_port_mod_refs(
            &self.transport,
            &self.task,
            ctl,
            RightKind::Send.number(),
            -(trim.min(i32::MAX as u32) as i32),
        ) {
            Ok(()) => add(&self.counters.urefs_trimmed, trim.into()),
            Err(e) => self.note_kernel_failure("mach_port_mod_refs(SEND)", e),
        }
    }

    fn note_kernel_failure(&self, call: &'static str, e: RpcError) {
        self.push_rejection(Rejection {
            msg_id: 0,
            port: PortName::NULL,
            seqno: 0,
            object: None,
            offset: None,
            reason: Reason::KernelCall {
                call,
                code: e.code(),
            },
        });
    }

    /// Calls the kernel on `ctl`. The call is counted before it is sent (so whoever
    /// receives it sees it counted) and uncounted if the send fails.
    fn reply(
        &self,
        obj: &Object<P>,
        ctl: PortName,
        kind: ReplyKind,
        offset: u64,
        data: OolData<'_>,
        len: u64,
    ) {
        let (counter, name) = match kind {
            ReplyKind::Supply => (&self.counters.data_supply, "memory_object_data_supply"),
            ReplyKind::Unavailable => (
                &self.counters.data_unavailable,
                "memory_object_data_unavailable",
            ),
            ReplyKind::Error(_) => (&self.counters.data_error, "memory_object_data_error"),
            ReplyKind::Ready => (&self.counters.ready, "memory_object_ready"),
        };
        bump(counter);
        if let Some(h) = &self.cfg.hooks {
            h.replied(obj.id, kind, offset, len);
        }
        let t = &self.transport;
        let r = self.with_send(ctl, |c| match kind {
            ReplyKind::Supply => mach::client::memory_object_data_supply(
                t,
                c,
                offset,
                data,
                VM_PROT_NONE,
                0,
                &ReceiveRight::null(),
            ),
            ReplyKind::Unavailable => {
                mach::client::memory_object_data_unavailable(t, c, offset, len)
            }
            ReplyKind::Error(code) => {
                mach::client::memory_object_data_error(t, c, offset, len, code.0)
            }
            ReplyKind::Ready => {
                mach::client::memory_object_ready(t, c, 0, MEMORY_OBJECT_COPY_DELAY)
            }
        });
        if let Err(e) = r {
            counter.fetch_sub(1, Ordering::Relaxed);
            self.push_rejection(Rejection {
                msg_id: 0,
                port: obj.port,
                seqno: 0,
                object: Some(obj.id),
                offset: Some(offset),
                reason: Reason::KernelCall {
                    call: name,
                    code: e.code(),
                },
            });
        }
    }

    // ---------------------------------------------------------------------------------
    // Bookkeeping.

    pub(crate) fn object(&self, port: PortName) -> Option<Arc<Object<P>>> {
        if !port.is_valid() {
            return None;
        }
        self.objects.with(|o| o.get(&port.0).cloned())
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    fn push_rejection(&self, r: Rejection) {
        bump(&self.counters.rejected);
        if let Some(h) = &self.cfg.hooks {
            h.rejected(&r);
        }
        let cap = self.cfg.rejection_log;
        if cap > 0 {
            self.log.with(|l| {
                while l.len() >= cap {
                    l.pop_front();
                }
                l.push_back(r);
            });
        }
    }

    pub(crate) fn reject(&self, cx: &Cx, object: Option<u64>, offset: Option<u64>, reason: Reason) {
        self.push_rejection(Rejection {
            msg_id: cx.msg_id,
            port: cx.port,
            seqno: cx.seqno,
            object,
            offset,
            reason,
        });
    }

    pub(crate) fn count(&self, cx: &Cx, kind: MsgKind) {
        cx.kind.set(Some(kind));
        self.counters.message(kind);
    }

    /// Admits message `seqno` on `obj`: waits until every earlier message on the object was
    /// admitted, then until `f` (run with the object locked, again after every change)
    /// returns `Some`, and then lets the next seqno in. `f` must change nothing when it
    /// returns `None`. Marks the message's seqno consumed.
    pub(crate) fn admit<R>(
        &self,
        cx: &Cx,
        obj: &Object<P>,
        seqno: u32,
        kind: MsgKind,
        mut f: impl FnMut(&mut ObjState) -> Option<R>,
    ) -> R {
        cx.consumed.set(true);
        let mut waited = false;
        let arrived = obj.st.wait(self.cfg.seqno_gap_timeout_ms, |s| {
            if s.seqno == seqno || seq_before(seqno, s.seqno) {
                Some(())
            } else {
                waited = true;
                None
            }
        });
        if waited {
            bump(&self.counters.wait_seqno);
        }
        if arrived.is_none() {
            let expected = obj.st.with(|s| {
                let e = s.seqno;
                if seq_before(s.seqno, seqno) {
                    s.seqno = seqno;
                }
                e
            });
            obj.st.notify_all();
            bump(&self.counters.seqno_gaps);
            self.reject(cx, Some(obj.id), None, Reason::SeqnoGap { expected });
        }
        let mut waited_io = false;
        let mut late = false;
        let hooks = &self.cfg.hooks;
        let r = loop {
            let r = obj.st.wait(None, |s| {
                let is_late = s.seqno != seqno;
                match f(s) {
                    Some(r) => {
                        if is_late {
                            late = true;
                        } else {
                            s.seqno = seqno.wrapping_add(1);
                        }
                        if let Some(h) = hooks {
                            h.admitted(obj.id, seqno, kind);
                        }
                        Some(r)
                    }
                    None => {
                        waited_io = true;
                        None
                    }
                }
            });
            if let Some(r) = r {
                break r;
            }
        };
        obj.st.notify_all();
        if waited_io {
            bump(&self.counters.wait_io);
        }
        if late {
            self.reject(cx, Some(obj.id), None, Reason::LateSeqno);
        }
        r
    }

    /// Consumes the seqno of a message on `obj` that does nothing else.
    pub(crate) fn skip(&self, cx: &Cx, obj: &Object<P>, seqno: u32, kind: MsgKind) {
        self.admit(cx, obj, seqno, kind, |_| Some(()));
    }

    fn finish_io(&self, obj: &Object<P>, token: u64) {
        obj.st.with(|s| s.end_io(token));
        obj.st.notify_all();
    }

    fn read_page(&self, addr: BlockAddr, buf: &mut [u8]) -> Result<(), KernReturn> {
        let store = self.space.store(addr).ok_or(KernReturn::KERN_FAILURE)?;
        if store.may_block() {
            P::before_block();
        }
        store.read_block(addr.block, buf).map_err(|_| {
            bump(&self.counters.read_errors);
            KernReturn::KERN_FAILURE
        })
    }

    fn write_page(&self, existing: Option<BlockAddr>, data: &[u8]) -> Stored {
        let (addr, fresh) = match existing {
            Some(a) => (a, false),
            None => match self.space.alloc() {
                Some(a) => (a, true),
                None => {
                    bump(&self.counters.no_space);
                    return Stored::Lost {
                        code: KernReturn::KERN_RESOURCE_SHORTAGE,
                        free: None,
                    };
                }
            },
        };
        let store = match self.space.store(addr) {
            Some(s) => s,
            None => {
                return Stored::Lost {
                    code: KernReturn::KERN_FAILURE,
                    free: fresh.then_some(addr),
                }
            }
        };
        if store.may_block() {
            P::before_block();
        }
        match store.write_block(addr.block, data) {
            Ok(()) => {
                bump(&self.counters.pages_out);
                Stored::Ok {
                    addr,
                    sum: checksum(data),
                }
            }
            Err(_) => {
                bump(&self.counters.write_errors);
                Stored::Lost {
                    code: KernReturn::KERN_FAILURE,
                    free: fresh.then_some(addr),
                }
            }
        }
    }

    /// Checks a range: offset page-aligned, length a non-zero multiple of the page size
    /// (exactly one page if `one_page`), no overflow.
    fn check_range(&self, offset: u64, len: u64, one_page: bool) -> Result<(u64, u64), Reason> {
        let ps = self.page_size as u64;
        if offset % ps != 0 {
            return Err(Reason::Unaligned);
        }
        let ok_len = if one_page {
            len == ps
        } else {
            len != 0 && len % ps == 0
        };
        if !ok_len || offset.checked_add(len).is_none() {
            return Err(Reason::BadLength);
        }
        Ok((offset / ps, len / ps))
    }

    // ---------------------------------------------------------------------------------
    // memory_object_default

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_create(
        &self,
        cx: &Cx,
        dmm: PortName,
        new_object: ReceiveRight,
        size: u64,
        control: SendRight,
        name: SendRight,
        page_size: u64,
    ) -> Result<(), KernReturn> {
        let (mo, ctl, nm) = (new_object.into_raw(), control.into_raw(), name.into_raw());
        let refuse = |reason: Reason| {
            self.reject(cx, None, None, reason);
            self.destroy_receive(mo);
            self.release_send(ctl);
            self.release_send(nm);
        };
        if dmm != self.dmm_port() || !dmm.is_valid() {
            refuse(Reason::WrongPort);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        self.count(cx, MsgKind::Create);
        if !mo.is_valid() || !ctl.is_valid() || !nm.is_valid() {
            refuse(Reason::MissingPort);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        if page_size != self.page_size as u64 {
            refuse(Reason::BadPageSize);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        let mut st = ObjState::new(size);
        st.control = ctl;
        st.ctl_refs = 1;
        st.name = nm;
        st.name_refs = 1;
        match self.install_object(mo, true, st, 0) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.reject(
                    cx,
                    None,
                    None,
                    Reason::KernelCall {
                        call: "object setup",
                        code: e,
                    },
                );
                self.release_send(ctl);
                self.release_send(nm);
                Err(e)
            }
        }
    }

    /// Registers an object whose receive right the pager holds under `port`: asks for its
    /// no-senders notification (sent to the port itself, so it takes the next seqno), reads
    /// the seqno its next message will get, and moves the port into the object set. On
    /// failure the port is destroyed.
    fn install_object(
        &self,
        port: PortName,
        internal: bool,
        mut st: ObjState,
        sync: u32,
    ) -> Result<u64, KernReturn> {
        let t = &self.transport;
        // The next seqno: 0 on GNU Mach for a port whose receive right just moved (or was
        // just allocated), but asking costs little and copes with kernels that differ.
        if let Ok(status) = mach_port::client::mach_port_get_receive_status(t, &self.task, port) {
            st.seqno = status[1] as u32;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let size = st.size;
        let obj = Arc::new(Object {
            id,
            port,
            internal,
            st: Lock::new(st),
        });
        self.objects.with(|o| o.insert(port.0, obj));
        let setup = (|| {
            let prev = mach_port::client::mach_port_request_notification(
                t,
                &self.task,
                port,
                notify::NO_SENDERS,
                sync,
                Poly::Raw(port, type_name::MAKE_SEND_ONCE),
            )
            .map_err(|e| e.code())?;
            if prev.is_valid() {
                self.release_send(prev.into_raw());
            } else {
                let _ = prev.into_raw();
            }
            mach_port::client::mach_port_move_member(t, &self.task, port, self.object_set())
                .map_err(|e| e.code())
        })();
        if let Err(e) = setup {
            self.objects.with(|o| o.remove(&port.0));
            self.destroy_receive(port);
            return Err(e);
        }
        bump(&self.counters.objects_created);
        if let Some(h) = &self.cfg.hooks {
            h.object_created(id, internal, size);
        }
        Ok(id)
    }

    pub(crate) fn on_data_initialize(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: SendRight,
        offset: u64,
        data: OolBuffer,
    ) -> Result<(), KernReturn> {
        self.on_write(cx, mo, seqno, control, offset, data, true)
    }

    // ---------------------------------------------------------------------------------
    // memory_object

    pub(crate) fn on_data_request(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: SendRight,
        offset: u64,
        len: u64,
    ) -> Result<(), KernReturn> {
        let ctl = control.into_raw();
        let Some(obj) = self.object(mo) else {
            self.release_send(ctl);
            self.reject(cx, None, Some(offset), Reason::NotAnObject);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        };
        self.count(cx, MsgKind::DataRequest);
        let token = self.token();
        let ra = u64::from(self.cfg.read_ahead);
        let max_urefs = self.cfg.max_urefs;
        let range = self.check_range(offset, len, true);
        let mut trim = 0;
        let plan = self.admit(cx, &obj, seqno, MsgKind::DataRequest, |s| {
            if let Err(reason) = s.control_ok(ctl) {
                return Some(ReadPlan::Reject {
                    reason,
                    counted: false,
                    reply: None,
                });
            }
            let (page, plan) = match range {
                Err(reason) => (
                    None,
                    ReadPlan::Reject {
                        reason,
                        counted: true,
                        reply: Some(KernReturn::KERN_INVALID_ARGUMENT),
                    },
                ),
                Ok(_) if !obj.internal && offset >= s.size => (
                    None,
                    ReadPlan::Reject {
                        reason: Reason::BeyondLimit,
                        counted: true,
                        reply: Some(KernReturn::KERN_FAILURE),
                    },
                ),
                Ok((page, _)) => {
                    if s.conflicts(page, 1, false) {
                        return None;
                    }
                    let plan = match s.map.get(page) {
                        Slot::Absent => ReadPlan::Unavailable,
                        Slot::Lost(code) => ReadPlan::Error(code),
                        Slot::Stored { addr, sum } => {
                            let mut pages = vec![(addr, sum)];
                            for q in page.saturating_add(1)..page.saturating_add(1 + ra) {
                                let limit_ok = obj.internal
                                    || q.saturating_mul(self.page_size as u64) < s.size;
                                match s.map.get(q) {
                                    Slot::Stored { addr, sum }
                                        if limit_ok && !s.conflicts(q, 1, false) =>
                                    {
                                        pages.push((addr, sum))
                                    }
                                    _ => break,
                                }
                            }
                            ReadPlan::Read(pages)
                        }
                    };
                    (Some(page), plan)
                }
            };
            // Admitted: keep the control reference, and hold the object until the answer
            // is sent (terminate waits for it).
            trim = s.count_ctl_ref(max_urefs);
            let count = match &plan {
                ReadPlan::Read(p) => p.len() as u64,
                _ => 0,
            };
            s.start_io(token, page.unwrap_or(0), count, false);
            Some(plan)
        });
        let ps = self.page_size as u64;
        let result = match plan {
            ReadPlan::Reject {
                reason,
                counted,
                reply,
            } => {
                self.reject(cx, Some(obj.id), Some(offset), reason);
                if let Some(code) = reply {
                    self.reply(
                        &obj,
                        ctl,
                        ReplyKind::Error(code),
                        offset,
                        OolData::Borrowed(&[]),
                        len,
                    );
                }
                if !counted {
                    self.release_send(ctl);
                    return Err(KernReturn::KERN_INVALID_ARGUMENT);
                }
                Err(KernReturn::KERN_INVALID_ARGUMENT)
            }
            ReadPlan::Unavailable => {
                bump(&self.counters.pages_unavailable);
                self.reply(
                    &obj,
                    ctl,
                    ReplyKind::Unavailable,
                    offset,
                    OolData::Borrowed(&[]),
                    ps,
                );
                Ok(())
            }
            ReadPlan::Error(code) => {
                self.reply(
                    &obj,
                    ctl,
                    ReplyKind::Error(code),
                    offset,
                    OolData::Borrowed(&[]),
                    ps,
                );
                Ok(())
            }
            ReadPlan::Read(pages) => {
                let psz = self.page_size;
                let mut buf = vec![0u8; psz * pages.len()];
                let mut good = 0usize;
                let mut first_error = None;
                for (i, (addr, sum)) in pages.iter().enumerate() {
                    let chunk = &mut buf[i * psz..(i + 1) * psz];
                    let r = self.read_page(*addr, chunk).and_then(|()| {
                        if checksum(chunk) == *sum {
                            Ok(())
                        } else {
                            bump(&self.counters.checksum_errors);
                            Err(KernReturn::KERN_MEMORY_ERROR)
                        }
                    });
                    match r {
                        Ok(()) => good += 1,
                        Err(code) => {
                            if i == 0 {
                                first_error = Some(code);
                            }
                            break;
                        }
                    }
                }
                if let Some(code) = first_error {
                    self.reply(
                        &obj,
                        ctl,
                        ReplyKind::Error(code),
                        offset,
                        OolData::Borrowed(&[]),
                        ps,
                    );
                } else {
                    add(&self.counters.pages_in, good as u64);
                    add(
                        &self.counters.pages_read_ahead,
                        good.saturating_sub(1) as u64,
                    );
                    // The buffer goes to the kernel with the message (`deallocate`, as the
                    // Hurd's pager sends regions it allocated): no copy on the way.
                    buf.truncate(good * psz);
                    let len = buf.len() as u64;
                    self.reply(
                        &obj,
                        ctl,
                        ReplyKind::Supply,
                        offset,
                        OolData::Owned(OolBuffer::from_vec(buf)),
                        len,
                    );
                }
                Ok(())
            }
        };
        self.trim_ctl_refs(ctl, trim);
        self.finish_io(&obj, token);
        result
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_data_return(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: SendRight,
        offset: u64,
        data: OolBuffer,
    ) -> Result<(), KernReturn> {
        self.on_write(cx, mo, seqno, control, offset, data, false)
    }

    /// data_return (`initialize == false`) and data_initialize (only pages never written).
    #[allow(clippy::too_many_arguments)]
    fn on_write(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: SendRight,
        offset: u64,
        data: OolBuffer,
        initialize: bool,
    ) -> Result<(), KernReturn> {
        let ctl = control.into_raw();
        let Some(obj) = self.object(mo) else {
            self.release_send(ctl);
            self.reject(cx, None, Some(offset), Reason::NotAnObject);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        };
        let kind = if initialize {
            MsgKind::DataInitialize
        } else {
            MsgKind::DataReturn
        };
        self.count(cx, kind);
        let token = self.token();
        let max_urefs = self.cfg.max_urefs;
        let range = self.check_range(offset, data.len() as u64, false);
        let mut trim = 0;
        let mut skipped = 0u64;
        let plan = self.admit(cx, &obj, seqno, kind, |s| {
            if let Err(reason) = s.control_ok(ctl) {
                return Some(WritePlan::Reject {
                    reason,
                    counted: false,
                });
            }
            let plan = match range {
                Err(reason) => WritePlan::Reject {
                    reason,
                    counted: true,
                },
                Ok(_) if !obj.internal && offset.saturating_add(data.len() as u64) > s.size => {
                    WritePlan::Reject {
                        reason: Reason::BeyondLimit,
                        counted: true,
                    }
                }
                Ok((first, n)) => {
                    if s.conflicts(first, n, true) {
                        return None;
                    }
                    let mut pages = Vec::with_capacity(n as usize);
                    skipped = 0;
                    for p in first..first + n {
                        pages.push(match s.map.get(p) {
                            Slot::Stored { addr, .. } if !initialize => Some(Some(addr)),
                            Slot::Absent => Some(None),
                            Slot::Lost(_) if !initialize => Some(None),
                            // data_initialize never overwrites a page the pager holds (or
                            // lost: its contents were newer than these).
                            _ => {
                                skipped += 1;
                                None
                            }
                        });
                    }
                    s.start_io(token, first, n, true);
                    WritePlan::Write { first, pages }
                }
            };
            if matches!(plan, WritePlan::Reject { .. }) {
                // Hold the object while the control reference may be trimmed below.
                s.start_io(token, 0, 0, false);
            }
            trim = s.count_ctl_ref(max_urefs);
            Some(plan)
        });
        let result = match plan {
            WritePlan::Reject { reason, counted } => {
                self.reject(cx, Some(obj.id), Some(offset), reason);
                if !counted {
                    self.release_send(ctl);
                }
                Err(KernReturn::KERN_INVALID_ARGUMENT)
            }
            WritePlan::Write { first, pages } => {
                add(&self.counters.init_skipped, skipped);
                let psz = self.page_size;
                let outcomes: Vec<Option<Stored>> = pages
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        w.map(|existing| self.write_page(existing, &data[i * psz..(i + 1) * psz]))
                    })
                    .collect();
                let mut frees = Vec::new();
                let mut lost = 0;
                obj.st.with(|s| {
                    for (i, o) in outcomes.into_iter().enumerate() {
                        let page = first + i as u64;
                        let new = match o {
                            None => continue,
                            Some(Stored::Ok { addr, sum }) => Slot::Stored { addr, sum },
                            Some(Stored::Lost { code, free }) => {
                                frees.extend(free);
                                lost += 1;
                                Slot::Lost(code)
                            }
                        };
                        if let Slot::Stored { addr: old, .. } = s.map.set(page, new) {
                            if !matches!(new, Slot::Stored { addr, .. } if addr == old) {
                                frees.push(old);
                            }
                        }
                    }
                });
                for b in frees {
                    self.space.release(b);
                }
                add(&self.counters.pages_lost, lost);
                Ok(())
            }
        };
        // The data goes back to the kernel's VM (vm_deallocate on a real kernel).
        drop(data);
        self.trim_ctl_refs(ctl, trim);
        self.finish_io(&obj, token);
        result
    }

    pub(crate) fn on_init(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: SendRight,
        name: SendRight,
        page_size: u64,
    ) -> Result<(), KernReturn> {
        let (ctl, nm) = (control.into_raw(), name.into_raw());
        let Some(obj) = self.object(mo) else {
            self.release_send(ctl);
            self.release_send(nm);
            self.reject(cx, None, None, Reason::NotAnObject);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        };
        self.count(cx, MsgKind::Init);
        let token = self.token();
        let ps = self.page_size as u64;
        let r = self.admit(cx, &obj, seqno, MsgKind::Init, |s| {
            if obj.internal || s.dead || s.control.is_valid() {
                return Some(Err(Reason::AlreadyInitialized));
            }
            if page_size != ps || !ctl.is_valid() || !nm.is_valid() {
                return Some(Err(Reason::BadPageSize));
            }
            s.control = ctl;
            s.ctl_refs = 1;
            s.name = nm;
            s.name_refs = 1;
            s.terminated = false;
            s.start_io(token, 0, 0, false);
            Some(Ok(()))
        });
        match r {
            Ok(()) => {
                self.reply(&obj, ctl, ReplyKind::Ready, 0, OolData::Borrowed(&[]), 0);
                self.finish_io(&obj, token);
                Ok(())
            }
            Err(reason) => {
                self.reject(cx, Some(obj.id), None, reason);
                self.release_send(ctl);
                self.release_send(nm);
                Err(KernReturn::KERN_INVALID_ARGUMENT)
            }
        }
    }

    pub(crate) fn on_terminate(
        &self,
        cx: &Cx,
        mo: PortName,
        seqno: u32,
        control: ReceiveRight,
        name: ReceiveRight,
    ) -> Result<(), KernReturn> {
        let (ctl, nm) = (control.into_raw(), name.into_raw());
        let Some(obj) = self.object(mo) else {
            self.destroy_receive(ctl);
            self.destroy_receive(nm);
            self.reject(cx, None, None, Reason::NotAnObject);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        };
        self.count(cx, MsgKind::Terminate);
        let token = self.token();
        let r = self.admit(cx, &obj, seqno, MsgKind::Terminate, |s| {
            // Like the Hurd: wait for readers and writers.
            if !s.inflight.is_empty() {
                return None;
            }
            if let Err(reason) = s.control_ok(ctl) {
                return Some(Err(reason));
            }
            if nm != s.name {
                return Some(Err(Reason::ForgedControl));
            }
            let taken = (
                core::mem::replace(&mut s.control, PortName::NULL),
                core::mem::replace(&mut s.name, PortName::NULL),
                core::mem::replace(&mut s.name_refs, 0),
            );
            s.ctl_refs = 0;
            // Internal objects are done; external ones may be mapped (and init'ed) again.
            s.terminated = obj.internal;
            // Hold the object until the ports are gone: the no-senders that follows waits.
            s.start_io(token, 0, 0, false);
            Some(Ok(taken))
        });
        match r {
            Ok((ctl, nm, name_refs)) => {
                self.drop_kernel_ports(ctl, nm, name_refs);
                self.finish_io(&obj, token);
                Ok(())
            }
            Err(reason) => {
                self.reject(cx, Some(obj.id), None, reason);
                // The receive rights came with the message: they are ours to destroy.
                self.destroy_receive(ctl);
                self.destroy_receive(nm);
                Err(KernReturn::KERN_INVALID_ARGUMENT)
            }
        }
    }

    /// A message the default pager never expects: refused (after consuming its seqno if it
    /// came on an object port), its rights released.
    pub(crate) fn on_unexpected(
        &self,
        cx: &Cx,
        port: PortName,
        seqno: u32,
        send: Option<SendRight>,
        receive: Option<ReceiveRight>,
    ) -> Result<(), KernReturn> {
        self.count(cx, MsgKind::Unexpected);
        let obj = self.object(port);
        if let Some(obj) = &obj {
            self.skip(cx, obj, seqno, MsgKind::Unexpected);
        }
        self.reject(cx, obj.as_ref().map(|o| o.id), None, Reason::Unexpected);
        if let Some(s) = send {
            self.release_send(s.into_raw());
        }
        if let Some(r) = receive {
            self.destroy_receive(r.into_raw());
        }
        Err(KernReturn::KERN_FAILURE)
    }

    // ---------------------------------------------------------------------------------
    // notify

    pub(crate) fn on_no_senders(
        &self,
        cx: &Cx,
        port: PortName,
        seqno: u32,
        _mscount: u32,
    ) -> Result<(), KernReturn> {
        let Some(obj) = self.object(port) else {
            self.reject(cx, None, None, Reason::NotAnObject);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        };
        self.count(cx, MsgKind::NoSenders);
        let (ctl, nm, name_refs, blocks) = self.admit(cx, &obj, seqno, MsgKind::NoSenders, |s| {
            if !s.inflight.is_empty() {
                return None;
            }
            s.dead = true;
            s.ctl_refs = 0;
            Some((
                core::mem::replace(&mut s.control, PortName::NULL),
                core::mem::replace(&mut s.name, PortName::NULL),
                core::mem::replace(&mut s.name_refs, 0),
                s.map.take_blocks(),
            ))
        });
        self.objects.with(|o| {
            if o.get(&port.0).is_some_and(|x| Arc::ptr_eq(x, &obj)) {
                o.remove(&port.0);
            }
        });
        for b in blocks {
            self.space.release(b);
        }
        // Not terminated first (the kernel dropped the object without terminate): the
        // pager still holds send rights only.
        self.drop_kernel_ports(ctl, nm, name_refs);
        self.destroy_receive(port);
        bump(&self.counters.objects_freed);
        if let Some(h) = &self.cfg.hooks {
            h.object_freed(obj.id);
        }
        Ok(())
    }

    /// A notification other than no-senders.
    pub(crate) fn on_other_notification(
        &self,
        cx: &Cx,
        port: PortName,
        seqno: u32,
        receive: Option<ReceiveRight>,
    ) -> Result<(), KernReturn> {
        self.on_unexpected(cx, port, seqno, None, receive)
    }

    // ---------------------------------------------------------------------------------
    // default_pager (admin)

    fn admin_check(&self, cx: &Cx, port: PortName) -> Result<(), KernReturn> {
        self.count(cx, MsgKind::Admin);
        if port != self.dmm_port() || !port.is_valid() {
            if let Some(obj) = self.object(port) {
                self.skip(cx, &obj, cx.seqno, MsgKind::Admin);
            }
            self.reject(cx, None, None, Reason::WrongPort);
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        Ok(())
    }

    pub(crate) fn admin_object_create(
        &self,
        cx: &Cx,
        port: PortName,
        size: u64,
    ) -> Result<PortName, KernReturn> {
        self.admin_check(cx, port)?;
        let p = mach_port::client::mach_port_allocate(
            &self.transport,
            &self.task,
            RightKind::Receive.number(),
        )
        .map_err(|e| e.code())?;
        // sync 1: no notification before the reply has made the first send right.
        self.install_object(p, false, ObjState::new(size), 1)?;
        Ok(p)
    }

    pub(crate) fn admin_info(&self, cx: &Cx, port: PortName) -> Result<[i64; 3], KernReturn> {
        self.admin_check(cx, port)?;
        let i = self.space.info();
        let ps = self.page_size as u64;
        Ok([
            (i.total_blocks * ps) as i64,
            (i.free_blocks * ps) as i64,
            ps as i64,
        ])
    }

    /// Every object: `[dpo_object, dpo_size]` (its serial number and the bytes it has
    /// stored) and a send right to its name port (null for an external object not mapped
    /// yet). Object and control ports are never handed out.
    pub(crate) fn admin_objects(
        &self,
        cx: &Cx,
        port: PortName,
    ) -> Result<(Vec<[i64; 2]>, Vec<PortName>), KernReturn> {
        self.admin_check(cx, port)?;
        let objs: Vec<Arc<Object<P>>> = self.objects.with(|o| o.values().cloned().collect());
        let ps = self.page_size as u64;
        let mut objects = Vec::with_capacity(objs.len());
        let mut ports = Vec::with_capacity(objs.len());
        for obj in objs {
            // With the object locked, so terminate cannot drop the name in between; the
            // extra reference travels in the reply.
            let (size, name) = obj.st.with(|s| {
                let mut name = PortName::NULL;
                if s.name.is_valid()
                    && mach_port::client::mach_port_mod_refs(
                        &self.transport,
                        &self.task,
                        s.name,
                        RightKind::Send.number(),
                        1,
                    )
                    .is_ok()
                {
                    name = s.name;
                }
                (s.map.stored_pages() * ps, name)
            });
            objects.push([obj.id as i64, size as i64]);
            ports.push(name);
        }
        Ok((objects, ports))
    }

    /// The offsets of the pages stored for the object named by `object` (its name port, or
    /// for an external object its object port).
    pub(crate) fn admin_object_pages(
        &self,
        cx: &Cx,
        port: PortName,
        object: SendRight,
    ) -> Result<Vec<i64>, KernReturn> {
        let named = object.into_raw();
        let r = (|| {
            self.admin_check(cx, port)?;
            let objs: Vec<Arc<Object<P>>> = self.objects.with(|o| o.values().cloned().collect());
            let ps = self.page_size as u64;
            for obj in objs {
                let pages = obj.st.with(|s| {
                    let hit = named.is_valid()
                        && !s.dead
                        && (s.name == named || (!obj.internal && obj.port == named));
                    hit.then(|| s.map.stored_page_indices())
                });
                if let Some(p) = pages {
                    return Ok(p.into_iter().map(|x| (x * ps) as i64).collect());
                }
            }
            self.reject(cx, None, None, Reason::UnknownObject);
            Err(KernReturn::KERN_INVALID_ARGUMENT)
        })();
        self.release_send(named);
        r
    }

    pub(crate) fn admin_unsupported(
        &self,
        cx: &Cx,
        port: PortName,
        rights: &mut dyn Iterator<Item = SendRight>,
    ) -> Result<(), KernReturn> {
        let r = self.admin_check(cx, port);
        for s in rights {
            self.release_send(s.into_raw());
        }
        r?;
        self.reject(cx, None, None, Reason::NotSupported);
        Err(KernReturn::MIG_BAD_ID)
    }

    // ---------------------------------------------------------------------------------

    /// Records a message that never reached a handler (bad id, failed type check): its
    /// seqno is consumed if it came on an object port, so later messages do not wait for
    /// it forever.
    pub(crate) fn unhandled(&self, cx: &Cx, kind: MsgKind) {
        self.count(cx, kind);
        let obj = self.object(cx.port);
        if let Some(obj) = &obj {
            if !cx.consumed.get() {
                self.skip(cx, obj, cx.seqno, kind);
            }
        }
        let reason = if kind == MsgKind::Malformed {
            Reason::Malformed
        } else {
            Reason::UnknownId
        };
        self.reject(cx, obj.map(|o| o.id), None, reason);
    }
}
