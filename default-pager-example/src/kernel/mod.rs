//! An emulated GNU Mach kernel on top of the runtime's userspace Mach IPC
//! ([`mig_runtime::ipc::Kernel`]), with real page faults.
//!
//! * **Host**: a host-privileged port (a receive right of the kernel task) served by the
//!   generated `mach` server: `vm_set_default_memory_manager` (null: query; non-null:
//!   replace; objects created before keep their manager).
//! * **Tasks** ([`EmuTask`]): an IPC space plus an address space. Their task ports are served
//!   by the generated `mach_port` server, forwarding to the [`ipc::Task`] methods of the task
//!   the port names (that is how the default pager manages its ports).
//! * **Virtual memory**: `vm_allocate` maps anonymous memory (`mmap`, `MADV_NOHUGEPAGE`)
//!   registered with userfaultfd (MISSING + WP); a handler thread turns the faults into GNU
//!   Mach's fault path (see [`vm`]): zero fill for objects without a pager,
//!   `memory_object_data_request` for objects that have one; an emulated physical-memory
//!   budget with a pageout daemon (high/low watermarks) evicts pages, creating the object's
//!   pager at its first pageout (`memory_object_create` to the default memory manager) and
//!   returning dirty pages (`memory_object_data_return`, one page per message, out of line,
//!   write-protected before the copy). The pager's answers arrive on the object's control
//!   port, served by the generated `mach` server (`data_supply` → `UFFDIO_COPY`,
//!   `data_unavailable` → zero fill, `data_error` → `UFFDIO_POISON`, …).
//! * **Portable mode**: without userfaultfd (non-root, sysctl), tasks use
//!   [`EmuTask::read`]/[`EmuTask::write`], which raise the same faults in software.
//!
//! Every kernel server runs on kernel threads (`mach_msg_server_threads`) over one port set
//! holding the kernel's receive rights: host-privileged, task, control and name ports.

mod backend;
mod server;
pub mod stats;
mod task;
pub mod uffd;
mod vm;

pub use stats::{Dir, KernelStats, LatencySummary, TraceEntry};
pub use task::{EmuTask, MemoryError};
pub use vm::ObjectInfo;

use crate::mig::memory_object_default as mod_client;
use backend::Backend;
use mig_runtime::destroy::mach_msg_destroy_with;
use mig_runtime::ipc;
use mig_runtime::rights::{RightKind, SpaceId};
use mig_runtime::server::{handle_request, mach_msg_server_threads, StopHandle};
use mig_runtime::wire::{msg_return, option, type_name, Target};
use mig_runtime::{KernReturn, MsgBuf, PortName, ReceiveRight, SendRight, Transport};
use stats::{Counters, Latency, Trace};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vm::VmObject;

/// GNU Mach's page size on x86 (`vm_page_size`), the `memory_object_page_size` the kernel
/// announces.
pub const PAGE: usize = 4096;
/// How often a kernel thread serves control-port messages that tasks sent without a
/// [`KernelTrap`] (which serves them at once).
const CONTROL_POLL: Duration = Duration::from_millis(2);
/// Receive buffer for control-port calls (their data is out of line).
const CONTROL_MSG_MAX: u32 = 8192;
/// Pages of an object GNU Mach's existence map covers (`vm_external.c`: 8192 pages, 32 MiB).
pub const PAGEMAP_PAGES: usize = 8192;

/// How the kernel gets page faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeChoice {
    /// userfaultfd if the system allows it, the portable mode otherwise (with a message).
    Auto,
    /// userfaultfd or fail.
    Userfaultfd,
    /// The portable mode even where userfaultfd works (tests).
    Portable,
}

/// The mode a kernel runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Real page faults through userfaultfd.
    Userfaultfd,
    /// Explicit access calls emulate faults in software.
    Portable,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Userfaultfd => "userfaultfd",
            Mode::Portable => "portable",
        })
    }
}

/// Kernel configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Emulated physical memory for task pages, in bytes.
    pub ram_bytes: usize,
    /// The pageout daemon starts above this share of RAM (percent)…
    pub high_water_pct: usize,
    /// …and stops below this one.
    pub low_water_pct: usize,
    /// `true`: GNU Mach's existence map (≤ 32 MiB of each object tracked; no data request for
    /// pages known never paged out — stock behaviour). `false`: every fault on a non-resident
    /// page of an object with a pager is a `data_request`, so never-written pages show up as
    /// `data_request` → `data_unavailable`.
    pub pagemap: bool,
    /// Coalesce a `vm_allocate` right after an existing allocation into its object, which
    /// then grows past the size announced in `memory_object_create` (GNU Mach's
    /// `vm_object_coalesce` only extends objects without a pager; this option extends any
    /// internal object, to exercise "the size is only a hint").
    pub coalesce: bool,
    /// Send `memory_object_create` when an object is created (`vm_allocate`) instead of at
    /// its first pageout — not what GNU Mach does; with `pagemap` off, every first touch is
    /// then `data_request` → `data_unavailable`, and a data request can be the very first
    /// message after `memory_object_create`.
    pub eager_pager: bool,
    /// Zero-fill read faults with a write-protected `UFFDIO_COPY` of zeros instead of one
    /// `UFFDIO_ZEROPAGE` (the default, which maps the shared zero page unprotected: it is
    /// write-protected and inspected when it is paged out).
    pub zero_fill_copy: bool,
    pub mode: ModeChoice,
    /// A fault waiting longer than this for its pager fails with a memory error.
    pub fault_timeout: Duration,
    /// A message to a pager that cannot be queued within this time fails (ms).
    pub send_timeout_ms: u32,
    /// How long a page stays failed after a memory error before the next access asks again.
    pub error_hold: Duration,
    /// Kernel server threads (host, task and control ports).
    pub server_threads: usize,
    /// Trace: keep the first `trace_per_kind` messages of each kind…
    pub trace_per_kind: usize,
    /// …and print every message to standard error as it happens.
    pub trace_live: bool,
    /// Print kernel errors (memory errors, refused calls) to standard error.
    pub log_errors: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ram_bytes: 64 << 20,
            high_water_pct: 95,
            low_water_pct: 85,
            pagemap: true,
            coalesce: false,
            eager_pager: false,
            zero_fill_copy: false,
            mode: ModeChoice::Auto,
            fault_timeout: Duration::from_secs(10),
            send_timeout_ms: 5000,
            error_hold: Duration::from_millis(200),
            server_threads: 2,
            trace_per_kind: 3,
            trace_live: false,
            log_errors: true,
        }
    }
}

/// A message [`Kernel::inject`] sends to an object's pager. GNU Mach never sends these
/// with the bad offsets, lengths or control ports tests give them: they check what the
/// pager does with bad input, over the emulated kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inject {
    /// `memory_object_data_request` with any offset, length and access.
    DataRequest {
        offset: u64,
        length: u64,
        access: i32,
    },
    /// `memory_object_data_return` of `data` (any length) at `offset` (dirty, not a kernel
    /// copy).
    DataReturn { offset: u64, data: Vec<u8> },
    /// `memory_object_data_initialize` of `data` (any length) at `offset`.
    DataInitialize { offset: u64, data: Vec<u8> },
}

/// What a kernel port stands for (GNU Mach's `ipc_kobject`).
#[derive(Clone)]
pub(crate) enum KObject {
    Host,
    Task(ipc::Task),
    Control(Weak<VmObject>),
    Name(Weak<VmObject>),
}

/// Everything the kernel threads share.
pub(crate) struct KInner {
    pub ipc: ipc::Kernel,
    pub ktask: ipc::Task,
    pub cfg: Config,
    pub mode: Mode,
    pub mode_note: String,
    pub backend: Backend,
    pub start: Instant,
    pub host_priv: PortName,
    pub kset: PortName,
    /// The control ports' set: served in the sending thread by [`KernelTrap`], with a
    /// polling kernel thread for senders that use the bare IPC.
    pub kctl: PortName,
    pub dmm: Mutex<Option<SendRight>>,
    pub kobjects: RwLock<HashMap<u32, KObject>>,
    pub regions: RwLock<BTreeMap<usize, Arc<VmObject>>>,
    pub resident: AtomicUsize,
    pub ram_pages: usize,
    pub high_pages: usize,
    pub low_pages: usize,
    pub lru: Mutex<VecDeque<(Weak<VmObject>, u32)>>,
    pub pageout_mx: Mutex<bool>,
    pub pageout_cv: Condvar,
    pub mem_cv: Condvar,
    pub watch: Mutex<VecDeque<vm::Watch>>,
    pub errored: Mutex<VecDeque<vm::Watch>>,
    pub page_errors: Mutex<HashMap<(u64, u32), String>>,
    pub portable_mx: Mutex<u64>,
    pub portable_cv: Condvar,
    pub counters: Counters,
    pub latency: Latency,
    pub trace: Trace,
    pub errors: Mutex<VecDeque<String>>,
    pub stop: AtomicBool,
    pub server_stop: StopHandle,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    pub next_object: AtomicU64,
    pub zeros: Vec<u8>,
}

/// Locks a mutex, ignoring poisoning (a panicking thread must not wedge the kernel).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kernel task's transport for messages the kernel sends: every send has a timeout, so a
/// pager that stops receiving cannot block a kernel thread forever.
pub(crate) struct KSend<'a> {
    pub task: &'a ipc::Task,
    pub timeout_ms: u32,
}

impl Transport for KSend<'_> {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        opt: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn {
        let (opt, timeout) = if opt & option::SEND_MSG != 0 && opt & option::RCV_MSG == 0 {
            (opt | option::SEND_TIMEOUT, self.timeout_ms)
        } else {
            (opt, timeout)
        };
        self.task
            .mach_msg(msg, opt, send_size, rcv_size, rcv_name, timeout, notify)
    }
    fn get_reply_port(&self) -> PortName {
        self.task.get_reply_port()
    }
    fn put_reply_port(&self, port: PortName) {
        self.task.put_reply_port(port)
    }
    fn dealloc_reply_port(&self, port: PortName) {
        self.task.dealloc_reply_port(port)
    }
    fn space(&self) -> SpaceId {
        self.task.space()
    }
}

impl KInner {
    pub fn sender(&self) -> KSend<'_> {
        KSend {
            task: &self.ktask,
            timeout_ms: self.cfg.send_timeout_ms,
        }
    }

    pub fn kspace(&self) -> SpaceId {
        self.ktask.space_id()
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records a kernel error: kept for [`Kernel::errors`], printed if configured.
    pub fn error(&self, msg: String) {
        if self.cfg.log_errors {
            eprintln!("emulated kernel: {msg}");
        }
        let mut e = lock(&self.errors);
        if e.len() >= 256 {
            e.pop_front();
        }
        e.push_back(msg);
    }

    pub fn kobject(&self, name: PortName) -> Option<KObject> {
        self.kobjects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name.0)
            .cloned()
    }

    pub fn add_kobject(&self, name: PortName, o: KObject) -> Result<(), KernReturn> {
        let set = match o {
            KObject::Control(_) => self.kctl,
            _ => self.kset,
        };
        self.ktask.port_move_member(name, set)?;
        self.kobjects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.0, o);
        Ok(())
    }

    pub fn remove_kobject(&self, name: PortName) {
        self.kobjects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name.0);
    }

    /// Wakes tasks waiting in the portable mode.
    pub fn notify_portable(&self) {
        if self.mode == Mode::Portable {
            let mut g = lock(&self.portable_mx);
            *g = g.wrapping_add(1);
            self.portable_cv.notify_all();
        }
    }
}

impl KInner {
    /// Serves every message queued on a control port, in the calling thread, until none is
    /// left (GNU Mach's `ipc_kobject_server`, which runs in the sender's context). The loop
    /// is glibc's `mach_msg_server` (as `mig_runtime::server` has it), with the thread's
    /// buffers kept from one call to the next.
    pub fn serve_control(self: &Arc<Self>) {
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        thread_local! {
            static BUFS: std::cell::Cell<Option<Box<(MsgBuf<'static>, MsgBuf<'static>)>>> =
                const { std::cell::Cell::new(None) };
        }
        let mut bufs = BUFS.take().unwrap_or_else(|| {
            Box::new((
                MsgBuf::with_capacity(CONTROL_MSG_MAX as usize),
                MsgBuf::with_capacity(CONTROL_MSG_MAX as usize),
            ))
        });
        let (req, rep) = &mut *bufs;
        let t = Target::X86_64;
        let srv = server::KernelServer {
            k: Arc::clone(self),
        };
        loop {
            let r = self.ktask.mach_msg(
                req,
                option::RCV_MSG | option::RCV_TIMEOUT,
                0,
                CONTROL_MSG_MAX,
                self.kctl,
                0,
                PortName::NULL,
            );
            match r.0 as u32 {
                msg_return::SUCCESS => {}
                // Too large for any control call: dropped, as the server loop does.
                msg_return::RCV_TOO_LARGE | msg_return::RCV_INVALID_DATA => continue,
                _ => break,
            }
            if !handle_request(&srv, req, rep, &self.ktask) {
                continue;
            }
            let size = rep.msgh_size();
            let r = self.ktask.mach_msg(
                rep,
                option::SEND_MSG | option::SEND_TIMEOUT,
                size,
                0,
                PortName::NULL,
                self.cfg.send_timeout_ms,
                PortName::NULL,
            );
            if r != KernReturn::KERN_SUCCESS {
                mach_msg_destroy_with(rep, t, &self.ktask);
            }
        }
        BUFS.set(Some(bufs));
    }
}

/// A task's `mach_msg` trap, as GNU Mach runs it for kernel objects: a message sent to a
/// memory object control port is handled by the kernel in the sending thread before the
/// call returns (`mach_msg_trap` → `ipc_kobject_server`), not handed to another thread.
///
/// The send goes through the IPC as usual (rights and out-of-line memory are copied in and
/// out exactly as for any message); then the calling thread serves the queue of the control
/// ports' port set, on which no kernel thread waits. A combined send + receive is split
/// into the send, the kernel's handling, and the receive (the reply of a kernel routine is
/// then already queued). Every other destination is unaffected. Messages that tasks send
/// through the bare [`ipc::Task`] are served by a kernel thread polling that set.
#[derive(Clone)]
pub struct KernelTrap {
    task: ipc::Task,
    k: Arc<KInner>,
}

impl KernelTrap {
    /// The task's IPC space.
    pub fn ipc(&self) -> &ipc::Task {
        &self.task
    }
}

impl Transport for KernelTrap {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        opt: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn {
        if opt & option::SEND_MSG == 0 {
            return self
                .task
                .mach_msg(msg, opt, send_size, rcv_size, rcv_name, timeout, notify);
        }
        let r = self.task.mach_msg(
            msg,
            opt & !(option::RCV_MSG | option::RCV_TIMEOUT | option::RCV_LARGE),
            send_size,
            0,
            PortName::NULL,
            timeout,
            notify,
        );
        if r != KernReturn::KERN_SUCCESS {
            return r;
        }
        self.k.serve_control();
        if opt & option::RCV_MSG == 0 {
            return r;
        }
        self.task.mach_msg(
            msg,
            opt & !(option::SEND_MSG | option::SEND_TIMEOUT),
            0,
            rcv_size,
            rcv_name,
            timeout,
            notify,
        )
    }
    fn get_reply_port(&self) -> PortName {
        self.task.get_reply_port()
    }
    fn put_reply_port(&self, port: PortName) {
        self.task.put_reply_port(port)
    }
    fn dealloc_reply_port(&self, port: PortName) {
        self.task.dealloc_reply_port(port)
    }
    fn space(&self) -> SpaceId {
        self.task.space()
    }
}

/// An emulated GNU Mach kernel. Cheap to clone (a handle); [`Kernel::shutdown`] stops its
/// threads (also done when the last handle is dropped).
#[derive(Clone)]
pub struct Kernel {
    pub(crate) k: Arc<KInner>,
    _guard: Arc<ShutdownGuard>,
}

struct ShutdownGuard(Weak<KInner>);

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        if let Some(k) = self.0.upgrade() {
            shutdown(&k);
        }
    }
}

fn shutdown(k: &Arc<KInner>) {
    if k.stop.swap(true, Ordering::AcqRel) {
        return;
    }
    k.server_stop.stop();
    k.pageout_cv.notify_all();
    k.mem_cv.notify_all();
    let threads: Vec<_> = lock(&k.threads).drain(..).collect();
    for t in threads {
        let _ = t.join();
    }
    // Drop the kernel's references to tasks (their task ports) and objects.
    k.kobjects
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    lock(&k.lru).clear();
    lock(&k.watch).clear();
    *lock(&k.dmm) = None;
}

impl Kernel {
    /// Boots a kernel: chooses the fault mode, creates the host and the kernel port set, and
    /// starts the kernel server threads, the fault handler, the pageout daemon and the
    /// watchdog.
    pub fn new(cfg: Config) -> Result<Kernel, String> {
        let (backend, mode, note) = match cfg.mode {
            ModeChoice::Portable => (
                Backend::Portable,
                Mode::Portable,
                "portable mode (forced): tasks access memory through EmuTask::read/write, \
                 which emulate page faults in software"
                    .to_string(),
            ),
            ModeChoice::Userfaultfd => {
                let u = uffd::Uffd::open()?;
                (
                    Backend::Uffd(u),
                    Mode::Userfaultfd,
                    "userfaultfd mode: task memory is registered with userfaultfd (MISSING + \
                     WP); page faults are real"
                        .to_string(),
                )
            }
            ModeChoice::Auto => match uffd::Uffd::open() {
                Ok(u) => (
                    Backend::Uffd(u),
                    Mode::Userfaultfd,
                    "userfaultfd mode: task memory is registered with userfaultfd (MISSING + \
                     WP); page faults are real"
                        .to_string(),
                ),
                Err(e) => (
                    Backend::Portable,
                    Mode::Portable,
                    format!(
                        "userfaultfd is not available ({e}); using the portable mode: tasks \
                         access memory through EmuTask::read/write, which emulate page faults \
                         in software"
                    ),
                ),
            },
        };
        let ipc = ipc::Kernel::new();
        let ktask = ipc.kernel_task().clone();
        let kset = ktask
            .port_allocate(RightKind::PortSet)
            .map_err(|e| format!("kernel port set: {e:?}"))?;
        let kctl = ktask
            .port_allocate(RightKind::PortSet)
            .map_err(|e| format!("control port set: {e:?}"))?;
        let host_priv = ktask
            .port_allocate(RightKind::Receive)
            .map_err(|e| format!("host port: {e:?}"))?;
        let ram_pages = (cfg.ram_bytes / PAGE).max(16);
        let high_pages = (ram_pages * cfg.high_water_pct.clamp(10, 100) / 100).max(8);
        let low_pages = (ram_pages * cfg.low_water_pct.clamp(5, 99) / 100).min(high_pages - 4);
        let start = Instant::now();
        let k = Arc::new(KInner {
            ipc,
            ktask,
            trace: Trace::new(start, cfg.trace_per_kind, cfg.trace_live),
            cfg,
            mode,
            mode_note: note,
            backend,
            start,
            host_priv,
            kset,
            kctl,
            dmm: Mutex::new(None),
            kobjects: RwLock::new(HashMap::new()),
            regions: RwLock::new(BTreeMap::new()),
            resident: AtomicUsize::new(0),
            ram_pages,
            high_pages,
            low_pages,
            lru: Mutex::new(VecDeque::new()),
            pageout_mx: Mutex::new(false),
            pageout_cv: Condvar::new(),
            mem_cv: Condvar::new(),
            watch: Mutex::new(VecDeque::new()),
            errored: Mutex::new(VecDeque::new()),
            page_errors: Mutex::new(HashMap::new()),
            portable_mx: Mutex::new(0),
            portable_cv: Condvar::new(),
            counters: Counters::default(),
            latency: Latency::default(),
            errors: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            server_stop: StopHandle::new(),
            threads: Mutex::new(Vec::new()),
            next_object: AtomicU64::new(1),
            zeros: vec![0u8; PAGE],
        });
        k.add_kobject(host_priv, KObject::Host)
            .map_err(|e| format!("host port into the kernel set: {e:?}"))?;
        let kernel = Kernel {
            _guard: Arc::new(ShutdownGuard(Arc::downgrade(&k))),
            k,
        };
        kernel.start_threads()?;
        Ok(kernel)
    }

    fn start_threads(&self) -> Result<(), String> {
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|e| format!("cannot start kernel thread {name}: {e}"))
        };
        let k = Arc::clone(&self.k);
        threads.push(spawn(
            "kernel-servers",
            Box::new(move || {
                let srv = server::KernelServer { k: Arc::clone(&k) };
                let n = k.cfg.server_threads.max(1);
                let r = mach_msg_server_threads(&srv, 8192, k.kset, &k.ktask, n, &k.server_stop);
                if r != KernReturn::KERN_SUCCESS && !k.stop.load(Ordering::Acquire) {
                    k.error(format!("kernel server threads stopped: {r:?}"));
                }
            }),
        )?);
        let k = Arc::clone(&self.k);
        threads.push(spawn(
            "kernel-control",
            Box::new(move || {
                // Messages on control ports from senders without a KernelTrap.
                while !k.stop.load(Ordering::Acquire) {
                    k.serve_control();
                    std::thread::sleep(CONTROL_POLL);
                }
            }),
        )?);
        if self.k.backend.is_uffd() {
            let k = Arc::clone(&self.k);
            threads.push(spawn(
                "kernel-faults",
                Box::new(move || vm::fault_thread(&k)),
            )?);
        }
        let k = Arc::clone(&self.k);
        threads.push(spawn(
            "kernel-pageout",
            Box::new(move || vm::pageout_daemon(&k)),
        )?);
        let k = Arc::clone(&self.k);
        threads.push(spawn(
            "kernel-watchdog",
            Box::new(move || vm::watchdog(&k)),
        )?);
        lock(&self.k.threads).extend(threads);
        Ok(())
    }

    /// The fault mode in use.
    pub fn mode(&self) -> Mode {
        self.k.mode
    }

    /// How the mode was chosen (for the user).
    pub fn mode_note(&self) -> &str {
        &self.k.mode_note
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.k.cfg
    }

    /// The IPC system (for tests that need raw port operations).
    pub fn ipc(&self) -> &ipc::Kernel {
        &self.k.ipc
    }

    /// `task`'s `mach_msg` trap: its calls on memory object control ports run in the calling
    /// thread, as in GNU Mach (see [`KernelTrap`]). The default pager's transport.
    pub fn trap(&self, task: &EmuTask) -> KernelTrap {
        KernelTrap {
            task: task.ipc().clone(),
            k: Arc::clone(&self.k),
        }
    }

    /// Creates a task (IPC space + empty address space).
    pub fn new_task(&self) -> Result<EmuTask, String> {
        EmuTask::new(self)
    }

    /// Gives `task` a send right to the host-privileged port (as GNU Mach gives it to
    /// privileged servers at boot).
    pub fn host_priv_for(&self, task: &EmuTask) -> Result<SendRight, KernReturn> {
        let name =
            self.k
                .ktask
                .transfer_right(self.k.host_priv, type_name::MAKE_SEND, task.ipc())?;
        Ok(SendRight::from_raw(task.ipc().space_id(), name))
    }

    /// Whether a default memory manager is registered.
    pub fn has_default_memory_manager(&self) -> bool {
        lock(&self.k.dmm).as_ref().is_some_and(|d| d.is_valid())
    }

    /// Counters.
    pub fn stats(&self) -> KernelStats {
        let mut s = self.k.counters.snapshot();
        s.resident_peak = s
            .resident_peak
            .max(self.k.resident.load(Ordering::Relaxed) as u64);
        s
    }

    /// Resets the latency histogram (e.g. between demo phases).
    pub fn reset_latency(&self) {
        self.k.latency.clear();
    }

    /// Fault latency (fault seen → page installed).
    pub fn latency(&self) -> LatencySummary {
        self.k.latency.summary()
    }

    /// Pages resident in the emulated RAM now.
    pub fn resident_pages(&self) -> usize {
        self.k.resident.load(Ordering::Relaxed)
    }

    /// Emulated RAM in pages.
    pub fn ram_pages(&self) -> usize {
        self.k.ram_pages
    }

    /// The kept protocol trace.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.k.trace.entries()
    }

    /// Adds a note to the trace.
    pub fn note(&self, kind: &'static str, text: String) {
        self.k.trace.record(Dir::Note, kind, 0, || text);
    }

    /// The latest kernel errors (memory errors, timeouts, refused calls).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.k.errors).iter().cloned().collect()
    }

    /// Live objects (for demos and tests).
    pub fn objects(&self) -> Vec<ObjectInfo> {
        let r = self.k.regions.read().unwrap_or_else(|e| e.into_inner());
        r.values().map(|o| o.info()).collect()
    }

    /// Test hook standing in for GNU Mach's copy-object push (`vm_fault.c`: a page pushed
    /// into a copy object that already has a pager goes out with
    /// `memory_object_data_initialize`): sends `data_initialize` for the page of the object
    /// mapped at `addr` with `data`, and records the page in the existence map as GNU Mach's
    /// `vm_pageout_setup` does. The page must not be resident (as after a push, where the
    /// copy object's page is no longer in memory).
    pub fn push_data_initialize(&self, addr: usize, data: &[u8]) -> Result<(), String> {
        if data.len() != PAGE {
            return Err(format!(
                "data_initialize takes one page, not {} bytes",
                data.len()
            ));
        }
        let (obj, idx) = vm::lookup(&self.k, addr).ok_or("address not mapped")?;
        obj.ensure_pager_and(&self.k, |k, ports, counter| {
            let r = mod_client::client::memory_object_data_initialize(
                &k.sender(),
                &ports.mo,
                &ports.ctl,
                (idx * PAGE) as u64,
                data,
            );
            k.counters
                .memory_object_data_initialize
                .fetch_add(1, Ordering::Relaxed);
            k.trace.record(
                Dir::ToPager,
                "memory_object_data_initialize",
                obj.id,
                || format!("offset {:#x} (test hook: copy-object push)", idx * PAGE),
            );
            let _ = counter;
            r.map_err(|e| format!("memory_object_data_initialize: {e}"))
        })?;
        obj.mark_initialized(idx);
        Ok(())
    }

    /// Test hook: sends `msg` on the pager port of the object mapped at `addr`, with the
    /// control port of the object mapped at `control_of` (normally `addr` itself; another
    /// object's address forges the control port). The object must have a pager; the message
    /// takes its number in the object's message sequence like any other. Fails, sending
    /// nothing, if the object was terminated: the kernel holds none of its ports any more
    /// (GNU Mach moved them to the pager with `memory_object_terminate`).
    pub fn inject(&self, addr: usize, control_of: usize, msg: Inject) -> Result<(), String> {
        let (obj, _) = vm::lookup(&self.k, addr).ok_or("address not mapped")?;
        let (cobj, _) = vm::lookup(&self.k, control_of).ok_or("control_of: address not mapped")?;
        for o in [&obj, &cobj] {
            let st = lock(&o.st);
            if st.terminated || !st.has_pager {
                return Err(format!(
                    "object {} has no pager ports (terminated, or never paged out)",
                    o.id
                ));
            }
        }
        let ctl_name = lock(&cobj.st).ctl_name;
        let sender = self.k.sender();
        let mut s = lock(&obj.send);
        let ports = s.ports.as_ref().ok_or("the object has no pager ports")?;
        let own = ports.ctl.name();
        let forged = std::mem::ManuallyDrop::new(krecv(&self.k, ctl_name));
        let ctl: &ReceiveRight = if ctl_name == own { &ports.ctl } else { &forged };
        let mo = &ports.mo;
        let what = format!("{msg:?}").chars().take(120).collect::<String>();
        let r = match &msg {
            Inject::DataRequest {
                offset,
                length,
                access,
            } => crate::mig::memory_object::client::memory_object_data_request(
                &sender, mo, ctl, *offset, *length, *access,
            ),
            Inject::DataReturn { offset, data } => {
                crate::mig::memory_object::client::memory_object_data_return(
                    &sender, mo, ctl, *offset, data, 1, 0,
                )
            }
            Inject::DataInitialize { offset, data } => {
                mod_client::client::memory_object_data_initialize(&sender, mo, ctl, *offset, data)
            }
        };
        if r.is_ok() {
            s.counter += 1;
        }
        drop(s);
        self.k.trace.record(Dir::ToPager, "injected", obj.id, || {
            format!(
                "test hook: {what}{}",
                if ctl_name == own {
                    String::new()
                } else {
                    format!(" with the control port of object {}", cobj.id)
                }
            )
        });
        r.map_err(|e| format!("inject: {e}"))
    }

    /// Stops the kernel threads. Tasks and objects stay as they are.
    pub fn shutdown(&self) {
        shutdown(&self.k);
    }
}

/// Moves the receive right `name` of the kernel task into a typed right.
pub(crate) fn krecv(k: &KInner, name: PortName) -> ReceiveRight {
    ReceiveRight::from_raw(k.kspace(), name)
}
