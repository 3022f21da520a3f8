//! The std layer: server threads over the two port sets, as in the Hurd pager — one default
//! thread on the default-memory-manager/admin port (the runtime's `mach_msg_server_threads`),
//! N object threads on the set of object ports ([`ObjectPool`]) — and `std::sync` for
//! admission.

use crate::pager::{Config, Core, Error};
use crate::platform::StdPlatform;
use crate::space::SpaceInfo;
use crate::stats::{Rejection, Stats};
use crate::store::BackingStore;
use mig_runtime::destroy::mach_msg_destroy_with;
use mig_runtime::msg::MsgBuf;
use mig_runtime::rights::SpaceId;
use mig_runtime::server::{
    handle_request, mach_msg_server_threads, run_threads, StopHandle, POOL_POLL_MS,
};
use mig_runtime::wire::{msg_return as mr, option};
use mig_runtime::{Demux, KernReturn, PortName, SendRight, Target, Transport};
use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Any transport, type-erased (so [`PagerHandle`] is not generic).
pub struct DynTransport(Box<dyn Transport + Send + Sync>);

impl Transport for DynTransport {
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
        self.0
            .mach_msg(msg, option, send_size, rcv_size, rcv_name, timeout, notify)
    }
    fn get_reply_port(&self) -> PortName {
        self.0.get_reply_port()
    }
    fn put_reply_port(&self, port: PortName) {
        self.0.put_reply_port(port)
    }
    fn dealloc_reply_port(&self, port: PortName) {
        self.0.dealloc_reply_port(port)
    }
    fn space(&self) -> SpaceId {
        self.0.space()
    }
    fn target(&self) -> Target {
        self.0.target()
    }
}

/// The pager core as the std layer runs it.
pub type StdCore = Core<DynTransport, StdPlatform>;

/// Starts the default pager (see the crate documentation for the contract).
pub struct Pager;

impl Pager {
    /// Starts a default pager in the task whose IPC `transport` speaks for:
    ///
    /// 1. allocates its ports with `mach_port_allocate` on `task_self`;
    /// 2. asks `vm_set_default_memory_manager(host_priv, MACH_PORT_NULL)` whether a default
    ///    memory manager is registered, and returns [`Error::AlreadyRegistered`] if so;
    /// 3. registers its port with `vm_set_default_memory_manager(host_priv, port)`;
    /// 4. starts one default thread (memory_object_create, admin RPCs) and
    ///    `config.object_threads` object threads.
    ///
    /// `host_priv` is given back (`mach_port_deallocate`) once registered.
    pub fn start<T, S>(
        transport: T,
        task_self: SendRight,
        host_priv: SendRight,
        store: S,
        config: Config,
    ) -> Result<PagerHandle, Error>
    where
        T: Transport + Send + Sync + 'static,
        S: BackingStore + 'static,
    {
        Pager::start_with_store(transport, task_self, host_priv, Arc::new(store), config)
    }

    /// [`Pager::start`] with a shared store.
    pub fn start_with_store<T>(
        transport: T,
        task_self: SendRight,
        host_priv: SendRight,
        store: Arc<dyn BackingStore>,
        config: Config,
    ) -> Result<PagerHandle, Error>
    where
        T: Transport + Send + Sync + 'static,
    {
        let threads = config.object_threads.max(1);
        let core: Arc<StdCore> = Arc::new(Core::new(
            DynTransport(Box::new(transport)),
            task_self,
            config,
        ));
        core.add_store(store)?;
        let reg = core.register(&host_priv);
        let host = host_priv.into_raw();
        let _ = crate::gen::mach_port::client::mach_port_deallocate(
            core.transport(),
            core.task(),
            host,
        );
        reg?;
        let stop = StopHandle::new();
        let mut handles = Vec::new();
        let mut pools = vec![(core.object_set(), threads, "dp-objects")];
        if !core.config().one_port_set {
            pools.insert(0, (core.default_set(), 1, "dp-default"));
        }
        for (set, n, name) in pools {
            let (c, s) = (Arc::clone(&core), stop.clone());
            let h = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    if set == c.object_set() {
                        ObjectPool::run(&*c, set, c.transport(), n, &s)
                    } else {
                        mach_msg_server_threads(&*c, 0, set, c.transport(), n, &s)
                    }
                });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.stop();
                    for h in handles {
                        let _ = h.join();
                    }
                    core.teardown();
                    return Err(Error::Thread(e.to_string()));
                }
            }
        }
        Ok(PagerHandle {
            core,
            stop,
            threads: Mutex::new(handles),
            result: Mutex::new(None),
        })
    }
}

/// A running pager.
pub struct PagerHandle {
    core: Arc<StdCore>,
    stop: StopHandle,
    threads: Mutex<Vec<JoinHandle<KernReturn>>>,
    result: Mutex<Option<KernReturn>>,
}

impl PagerHandle {
    /// Message counts, pages in/out/unavailable, paging space total/free, …
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The pager's `default_pager` port (the name of its receive right in the pager's
    /// task); it is also the port registered as default memory manager. Whoever holds a
    /// send right to it may use the admin interface.
    pub fn admin_port(&self) -> PortName {
        self.core.dmm_port()
    }

    /// Adds a paging store (recovery after "paging space full").
    pub fn add_store(&self, store: impl BackingStore + 'static) -> Result<u16, Error> {
        self.core.add_store(Arc::new(store))
    }

    /// Total and free paging space, in blocks.
    pub fn space_info(&self) -> SpaceInfo {
        self.core.space_info()
    }

    /// The latest refused messages.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.core.rejections()
    }

    /// The core (object table queries for tests and demos).
    pub fn core(&self) -> &StdCore {
        &self.core
    }

    /// Whether the server threads are still running (they stop on shutdown, or when a
    /// receive fails, e.g. the pager's task died).
    pub fn is_running(&self) -> bool {
        self.threads
            .lock()
            .map(|t| t.iter().any(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the server threads (each finishes the message it is handling), destroys the
    /// pager's ports (the kernel sees its default memory manager and its objects' pagers
    /// die) and returns the final statistics.
    pub fn shutdown(&self) -> Stats {
        self.stop.stop();
        let handles: Vec<_> = match self.threads.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let mut result = KernReturn::KERN_SUCCESS;
        for h in handles {
            let r = h.join().unwrap_or(KernReturn::KERN_FAILURE);
            if result == KernReturn::KERN_SUCCESS {
                result = r;
            }
        }
        if let Ok(mut g) = self.result.lock() {
            if g.is_none() {
                *g = Some(result);
                self.core.teardown();
            }
        }
        self.core.stats()
    }

    /// What the server threads returned (after [`PagerHandle::shutdown`]).
    pub fn exit_code(&self) -> Option<KernReturn> {
        self.result.lock().ok().and_then(|g| *g)
    }
}

impl Drop for PagerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The object threads: they take turns receiving on the object port set. One thread at a
/// time (the receiver) waits in `mach_msg`; the others wait here. The receiver serves the
/// message it got and receives again; only before it may block — an admission wait, I/O on
/// a store that may block ([`crate::BackingStore::may_block`]) — does it hand the receive
/// role to another thread ([`before_block`]), and it waits for the role again once done.
///
/// Why: Mach's receive queue is first come, first served, so with every object thread
/// waiting in `mach_msg` each request would go to the thread that has waited longest — the
/// one sure to have gone to sleep — while the thread that just answered spins in vain. With
/// one receiver, a stream of requests is served by a thread that is still running, and
/// messages are still served concurrently whenever a handler blocks.
pub struct ObjectPool {
    st: Mutex<PoolState>,
    cv: Condvar,
}

struct PoolState {
    /// A thread holds the receive role.
    taken: bool,
}

thread_local! {
    /// The pool whose receive role this thread holds.
    static ROLE: Cell<*const ObjectPool> = const { Cell::new(std::ptr::null()) };
}

/// Called before the calling thread may block: if it holds an object pool's receive role,
/// another thread of the pool takes it over (so the messages the blocked thread may be
/// waiting for are still received). A no-op on other threads.
pub fn before_block() {
    let p = ROLE.replace(std::ptr::null());
    if !p.is_null() {
        // SAFETY: the role is held only inside `ObjectPool::run`, which outlives it (the
        // pointer is cleared before `run`'s borrow of the pool ends).
        unsafe { &*p }.give_back();
    }
}

/// Gives the role back if the thread still holds it (the end of a turn, or a panic).
struct RoleGuard;

impl Drop for RoleGuard {
    fn drop(&mut self) {
        before_block();
    }
}

impl ObjectPool {
    fn give_back(&self) {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.taken = false;
        drop(g);
        self.cv.notify_one();
    }

    /// Waits for the receive role; `false` once `stop` is set.
    fn take(&self, stop: &StopHandle) -> bool {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        while g.taken {
            if stop.is_stopped() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(POOL_POLL_MS.into()))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g.taken = true;
        drop(g);
        ROLE.set(self);
        !stop.is_stopped()
    }

    fn holds(&self) -> bool {
        std::ptr::eq(ROLE.get(), self)
    }

    /// Serves `set` with `threads` threads until `stop` (then `KERN_SUCCESS`) or a receive
    /// fails (that error; the other threads stop too), like `mach_msg_server_threads`. Each
    /// thread runs glibc's `mach_msg_server` loop while it holds the receive role.
    pub fn run<D, T>(
        demux: &D,
        set: PortName,
        transport: &T,
        threads: usize,
        stop: &StopHandle,
    ) -> KernReturn
    where
        D: Demux + Sync + ?Sized,
        T: Transport + Sync + ?Sized,
    {
        let pool = ObjectPool {
            st: Mutex::new(PoolState { taken: false }),
            cv: Condvar::new(),
        };
        let pool = &pool;
        run_threads(threads, || {
            let r = pool.serve(demux, set, transport, stop);
            if r != KernReturn::KERN_SUCCESS {
                stop.stop();
                pool.cv.notify_all();
            }
            r
        })
    }

    /// One thread: glibc's server loop (`mig_runtime::server` documents it), receiving only
    /// while holding the role.
    fn serve<D, T>(&self, demux: &D, set: PortName, transport: &T, stop: &StopHandle) -> KernReturn
    where
        D: Demux + ?Sized,
        T: Transport + ?Sized,
    {
        let target = transport.target();
        let opt = option::RCV_LARGE | option::RCV_TIMEOUT;
        let mut max: u32 = 2 * 4096;
        let mut request = MsgBuf::with_capacity(max as usize);
        let mut reply = MsgBuf::with_capacity(max as usize);
        let rcv = |m: &mut MsgBuf<'static>, max: u32| {
            transport.mach_msg(
                m,
                option::RCV_MSG | opt,
                0,
                max,
                set,
                POOL_POLL_MS,
                PortName::NULL,
            )
        };
        loop {
            if !self.take(stop) {
                before_block();
                return KernReturn::KERN_SUCCESS;
            }
            let _guard = RoleGuard;
            let mut r = rcv(&mut request, max);
            // Serve while holding the role.
            while r.0 as u32 == mr::SUCCESS {
                let send = handle_request(demux, &mut request, &mut reply, transport);
                let receive = self.holds() && !stop.is_stopped();
                if !send {
                    if !receive {
                        break;
                    }
                    r = rcv(&mut request, max);
                    continue;
                }
                core::mem::swap(&mut request, &mut reply);
                let size = request.msgh_size();
                if !receive {
                    let r = transport.mach_msg(
                        &mut request,
                        option::SEND_MSG,
                        size,
                        0,
                        PortName::NULL,
                        0,
                        PortName::NULL,
                    );
                    if r.0 as u32 == mr::SEND_INVALID_DEST {
                        mach_msg_destroy_with(&mut request, target, transport);
                    }
                    break;
                }
                r = transport.mach_msg(
                    &mut request,
                    option::SEND_MSG | option::RCV_MSG | opt,
                    size,
                    max,
                    set,
                    POOL_POLL_MS,
                    PortName::NULL,
                );
            }
            match r.0 as u32 {
                mr::SUCCESS | mr::RCV_TIMED_OUT | mr::RCV_INVALID_DATA => {}
                mr::RCV_TOO_LARGE => {
                    // The request is still queued; its size is in our header.
                    let need = request.msgh_size().max(max);
                    if need > max {
                        max = need;
                        request.reserve(max as usize);
                        reply.reserve(max as usize);
                    }
                }
                mr::SEND_INVALID_DEST => mach_msg_destroy_with(&mut request, target, transport),
                _ => {
                    before_block();
                    return r;
                }
            }
        }
    }
}
