//! The std layer: server threads over the two port sets, as in the Hurd pager — one default
//! thread on the default-memory-manager/admin port, N object threads on the set of object
//! ports — using the runtime's `mach_msg_server_threads`, and `std::sync` for admission.

use crate::pager::{Config, Core, Error};
use crate::platform::StdPlatform;
use crate::space::SpaceInfo;
use crate::stats::{Rejection, Stats};
use crate::store::BackingStore;
use mig_runtime::msg::MsgBuf;
use mig_runtime::rights::SpaceId;
use mig_runtime::server::{mach_msg_server_threads, StopHandle};
use mig_runtime::{KernReturn, PortName, SendRight, Target, Transport};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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
                .spawn(move || mach_msg_server_threads(&*c, 0, set, c.transport(), n, &s));
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
