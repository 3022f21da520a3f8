//! Virtual memory: objects and their pages, the fault path, the pageout daemon, the
//! watchdog, and what the kernel does with a pager's answers.
//!
//! # Page states
//!
//! `Absent` (not in memory) → a fault either zero-fills the page in the kernel (object without
//! a pager, or the existence map knows the pager has nothing) or sends
//! `memory_object_data_request` and makes it `Busy` until the pager answers (`data_supply` →
//! `Resident`, `data_unavailable` → zero-filled `Resident`, `data_error` → `Error`, poisoned so
//! the faulting thread takes SIGBUS). The pageout daemon takes `Resident` pages: a clean one is
//! dropped, a dirty (or precious) one is write-protected, copied, made `PagingOut` and sent with
//! `memory_object_data_return`, then dropped. Every state change and the matching page-table
//! operation happen under the object's lock.
//!
//! Clean pages are write-protected (userfaultfd WP), so the first write to one raises a
//! write-protect fault and makes it dirty: that is the dirty bit GNU Mach gets from the pmap.
//! The exception is a page zero-filled for a read fault: it maps the shared zero page
//! without protection (one ioctl on the fault path), so a write copies it silently; such a
//! page is write-protected when the pageout code looks at it, and counts as dirty if its
//! contents are no longer zero.
//!
//! # Ordering and read-ahead
//!
//! The kernel numbers the messages it sends on each object port (they are the pager's seqnos
//! up to a constant). A page's `last_return` is the number of its latest `data_return`, a busy
//! page's `req` that of its `data_request`. A pager answering request *n* has seen every return
//! numbered below *n*; so a supplied page is installed only if its latest return is older than
//! the oldest request the supply can be answering. Stale read-ahead is dropped; a requested page
//! whose data may be stale is requested again.

use super::stats::Dir;
use super::uffd::{mem, Event};
use super::{lock, KInner, KObject, PAGE, PAGEMAP_PAGES};
use crate::mig::memory_object as mo_client;
use crate::mig::memory_object_default as mod_client;
use mig_runtime::{KernReturn, PortName, ReceiveRight, SendRight};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// `VM_PROT_READ` / `VM_PROT_WRITE`.
const VM_PROT_READ: i32 = 1;
const VM_PROT_WRITE: i32 = 2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum St {
    #[default]
    Absent,
    Busy,
    Resident,
    PagingOut,
    Error,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Page {
    pub st: St,
    /// Resident and modified since it was installed.
    pub dirty: bool,
    /// Resident as the shared zero page (installed for a read fault, never written as far
    /// as write-protect faults tell).
    pub zero: bool,
    /// Supplied as precious: returned even when clean.
    pub precious: bool,
    /// A fault arrived while the page was being paged out: wake the range afterwards.
    pub wake_after: bool,
    /// Busy for a write fault.
    pub write: bool,
    /// Busy: the number of its data_request (0 while the request is being sent).
    pub req: u64,
    /// Busy: when the fault was seen (ns since boot).
    pub since: u64,
    /// Busy: when its data_request was queued (ns since boot).
    pub sent: u64,
    /// The number of its latest data_return (0: never returned).
    pub last_return: u64,
    /// Recorded in the existence map by data_initialize.
    pub initialized: bool,
}

/// The ports of an object's pager (kernel side).
pub(crate) struct PagerPorts {
    /// The kernel's send right to the memory object port.
    pub mo: SendRight,
    /// The control port (receive right of the kernel).
    pub ctl: ReceiveRight,
    /// The name port (receive right of the kernel).
    pub name: ReceiveRight,
}

pub(crate) struct SendState {
    /// Messages sent on the object port so far.
    pub counter: u64,
    pub ports: Option<PagerPorts>,
}

pub(crate) struct ObjState {
    pub pages: Vec<Page>,
    pub terminated: bool,
    pub destroyed: bool,
    pub has_pager: bool,
    pub pager_dead: Option<String>,
    pub create_size: u64,
    pub ready: bool,
    pub may_cache: bool,
    pub copy_strategy: i32,
    pub ctl_name: PortName,
}

/// A temporary (internal) memory object, mapped once in one task at `base`.
pub(crate) struct VmObject {
    pub id: u64,
    pub base: usize,
    pub pages: std::sync::atomic::AtomicUsize,
    pub st: Mutex<ObjState>,
    pub send: Mutex<SendState>,
}

/// A public description of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The kernel's id (traces use it).
    pub id: u64,
    /// Where it is mapped.
    pub address: usize,
    /// Its current size in bytes.
    pub size: usize,
    /// Whether it has a pager (created at its first pageout).
    pub has_pager: bool,
    /// The size announced in `memory_object_create`.
    pub create_size: u64,
    /// Pages resident now.
    pub resident: usize,
    /// Pages ever returned to the pager.
    pub returned: usize,
}

/// An outstanding request (or a failed page) the watchdog looks at.
pub(crate) struct Watch {
    pub at: Instant,
    pub obj: Weak<VmObject>,
    pub idx: u32,
    pub req: u64,
}

impl VmObject {
    pub fn new(id: u64, base: usize, pages: usize) -> VmObject {
        VmObject {
            id,
            base,
            pages: std::sync::atomic::AtomicUsize::new(pages),
            st: Mutex::new(ObjState {
                pages: vec![Page::default(); pages],
                terminated: false,
                destroyed: false,
                has_pager: false,
                pager_dead: None,
                create_size: 0,
                ready: true,
                may_cache: false,
                copy_strategy: 2,
                ctl_name: PortName::NULL,
            }),
            send: Mutex::new(SendState {
                counter: 0,
                ports: None,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.pages.load(Ordering::Acquire) * PAGE
    }

    pub fn addr(&self, idx: usize) -> usize {
        self.base + idx * PAGE
    }

    pub fn info(&self) -> ObjectInfo {
        let st = lock(&self.st);
        ObjectInfo {
            id: self.id,
            address: self.base,
            size: st.pages.len() * PAGE,
            has_pager: st.has_pager,
            create_size: st.create_size,
            resident: st
                .pages
                .iter()
                .filter(|p| matches!(p.st, St::Resident | St::PagingOut))
                .count(),
            returned: st.pages.iter().filter(|p| p.last_return != 0).count(),
        }
    }

    pub fn mark_initialized(&self, idx: usize) {
        if let Some(p) = lock(&self.st).pages.get_mut(idx) {
            p.initialized = true;
        }
    }

    /// Creates the object's pager now if it has none (the emulator's `eager_pager` knob).
    pub fn ensure_pager(self: &Arc<Self>, k: &KInner) -> Result<(), String> {
        let mut s = lock(&self.send);
        if s.ports.is_none() {
            create_pager(k, self, &mut s)?;
        }
        Ok(())
    }

    /// Runs `f` with the pager's ports (creating the pager first if needed) and the message
    /// counter, which `f`'s message takes.
    pub fn ensure_pager_and<R>(
        self: &Arc<Self>,
        k: &KInner,
        f: impl FnOnce(&KInner, &PagerPorts, u64) -> Result<R, String>,
    ) -> Result<R, String> {
        let mut s = lock(&self.send);
        if s.ports.is_none() {
            create_pager(k, self, &mut s)?;
        }
        s.counter += 1;
        let c = s.counter;
        match s.ports.as_ref() {
            Some(p) => f(k, p, c),
            None => Err("object has no pager".into()),
        }
    }
}

/// Finds the object and page index of `addr`.
pub(crate) fn lookup(k: &KInner, addr: usize) -> Option<(Arc<VmObject>, usize)> {
    let r = k.regions.read().unwrap_or_else(|e| e.into_inner());
    let (base, obj) = r.range(..=addr).next_back()?;
    let off = addr - base;
    if off >= obj.len() {
        return None;
    }
    Some((Arc::clone(obj), off / PAGE))
}

/// GNU Mach's `vm_object_pager_create`: a new object port (the kernel keeps a send right and
/// moves the receive right), control and name ports (the kernel keeps the receive rights and
/// sends MAKE_SEND), and `memory_object_create` to the default memory manager.
fn create_pager(k: &KInner, obj: &Arc<VmObject>, s: &mut SendState) -> Result<(), String> {
    let dmm = {
        let g = lock(&k.dmm);
        match g.as_ref() {
            Some(d) if d.is_valid() => d
                .try_clone()
                .map_err(|e| format!("copy of the default memory manager right: {e:?}"))?,
            _ => return Err("no default memory manager is registered".into()),
        }
    };
    let t = &k.ktask;
    let kr = |what: &str, e: KernReturn| format!("{what}: {e:?}");
    let mo = t.allocate_receive().map_err(|e| kr("object port", e))?;
    let mo_send = mo.make_send().map_err(|e| kr("object send right", e))?;
    let _ = t.port_set_qlimit(mo.name(), mig_runtime::ipc::QLIMIT_MAX);
    let ctl = t.allocate_receive().map_err(|e| kr("control port", e))?;
    let _ = t.port_set_qlimit(ctl.name(), mig_runtime::ipc::QLIMIT_MAX);
    let name = t.allocate_receive().map_err(|e| kr("name port", e))?;
    k.add_kobject(ctl.name(), KObject::Control(Arc::downgrade(obj)))
        .map_err(|e| kr("control port into the kernel set", e))?;
    if let Err(e) = k.add_kobject(name.name(), KObject::Name(Arc::downgrade(obj))) {
        k.remove_kobject(ctl.name());
        return Err(kr("name port into the kernel set", e));
    }
    let size = obj.len() as u64;
    let r = mod_client::client::memory_object_create(
        &k.sender(),
        dmm,
        mo,
        size,
        &ctl,
        &name,
        PAGE as u64,
    );
    if let Err(e) = r {
        k.remove_kobject(ctl.name());
        k.remove_kobject(name.name());
        return Err(format!(
            "memory_object_create to the default memory manager: {e}"
        ));
    }
    k.counters
        .memory_object_create
        .fetch_add(1, Ordering::Relaxed);
    k.counters.objects_created.fetch_add(1, Ordering::Relaxed);
    k.trace.record(Dir::ToPager, "memory_object_create", obj.id, || {
        format!(
            "size hint {size:#x} ({} MiB), page size {PAGE}, object port MOVE_RECEIVE, control+name MAKE_SEND",
            size >> 20
        )
    });
    {
        let mut st = lock(&obj.st);
        st.has_pager = true;
        st.create_size = size;
        st.ctl_name = ctl.name();
    }
    s.counter = 0;
    s.ports = Some(PagerPorts {
        mo: mo_send,
        ctl,
        name,
    });
    Ok(())
}

/// The userfaultfd reader: batches events, hands each fault to [`fault`].
pub(crate) fn fault_thread(k: &Arc<KInner>) {
    let u = match &k.backend {
        super::backend::Backend::Uffd(u) => u,
        super::backend::Backend::Portable => return,
    };
    let mut events = Vec::with_capacity(64);
    while !k.stop.load(Ordering::Acquire) {
        if !u.poll(50) {
            continue;
        }
        if u.read_events(&mut events) == 0 {
            continue;
        }
        let now = k.now_ns();
        for ev in events.iter() {
            match *ev {
                Event::Fault { addr, write, wp } => {
                    // A bug in one fault must not leave every later fault waiting forever.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        fault(k, addr & !(PAGE - 1), write, wp, now)
                    }));
                    if r.is_err() {
                        k.error(format!("internal error handling the fault at {addr:#x}"));
                        k.backend.wake(addr & !(PAGE - 1), PAGE);
                    }
                }
                Event::Other(e) => k.error(format!("unexpected userfaultfd event {e}")),
            }
        }
    }
}

fn record_latency(k: &KInner, since: u64) {
    let now = k.now_ns();
    k.latency.record_ns(now.saturating_sub(since));
}

/// Accounts an answered request: pager share (request queued → answer) and install share.
fn record_stages(k: &KInner, sent: u64, answer_at: u64) {
    if sent == 0 {
        return;
    }
    let now = k.now_ns();
    k.counters
        .t_pager_ns
        .fetch_add(answer_at.saturating_sub(sent), Ordering::Relaxed);
    k.counters
        .t_install_ns
        .fetch_add(now.saturating_sub(answer_at), Ordering::Relaxed);
    k.counters.t_answered.fetch_add(1, Ordering::Relaxed);
}

fn push_lru(k: &KInner, obj: &Arc<VmObject>, idx: usize) {
    lock(&k.lru).push_back((Arc::downgrade(obj), idx as u32));
}

fn add_resident(k: &KInner, n: usize) {
    let r = k.resident.fetch_add(n, Ordering::AcqRel).wrapping_add(n);
    let peak = &k.counters.resident_peak;
    let mut p = peak.load(Ordering::Relaxed);
    while (r as u64) > p {
        match peak.compare_exchange_weak(p, r as u64, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(x) => p = x,
        }
    }
    if r > k.high_pages {
        k.pageout_cv.notify_one();
    }
}

fn sub_resident(k: &KInner, n: usize) {
    k.resident.fetch_sub(n, Ordering::AcqRel);
}

/// Waits (bounded) until the emulated RAM has a free page.
fn wait_for_memory(k: &KInner) {
    if k.resident.load(Ordering::Acquire) < k.ram_pages {
        return;
    }
    if lock(&k.dmm).as_ref().is_none_or(|d| !d.is_valid()) {
        // Nothing can be paged out without a default memory manager: go over the budget
        // rather than stall every fault.
        return;
    }
    k.counters.memory_waits.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut g = lock(&k.pageout_mx);
    while k.resident.load(Ordering::Acquire) >= k.ram_pages && !k.stop.load(Ordering::Acquire) {
        k.pageout_cv.notify_one();
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let (g2, _) = k
            .mem_cv
            .wait_timeout(g, (deadline - now).min(Duration::from_millis(20)))
            .unwrap_or_else(|e| e.into_inner());
        g = g2;
    }
}

/// GNU Mach's `vm_fault` for one page: `write` for a write access, `wp` for a write-protect
/// fault on a present page.
pub(crate) fn fault(k: &Arc<KInner>, addr: usize, write: bool, wp: bool, t0: u64) {
    let Some((obj, idx)) = lookup(k, addr) else {
        // Not (or no longer) ours: let the thread retry; it takes SIGSEGV on the quarantine.
        k.backend.wake(addr, PAGE);
        return;
    };
    k.counters.faults.fetch_add(1, Ordering::Relaxed);
    if wp {
        k.counters.wp_faults.fetch_add(1, Ordering::Relaxed);
    }
    let a = obj.addr(idx);
    let mut waited = false;
    loop {
        let mut st = lock(&obj.st);
        if st.terminated {
            drop(st);
            if lookup(k, addr).is_some() {
                fail_page(
                    k,
                    &obj,
                    idx,
                    "the object was destroyed by its memory manager",
                );
            } else {
                k.backend.wake(a, PAGE);
            }
            return;
        }
        let pager_dead = st.pager_dead.clone();
        let has_pager = st.has_pager;
        let pagemap = k.cfg.pagemap;
        let Some(p) = st.pages.get_mut(idx) else {
            k.backend.wake(a, PAGE);
            return;
        };
        match p.st {
            St::Resident => {
                if write || wp {
                    // First write to a clean page (or a write that raced its install): it is
                    // dirty from now on; unprotecting also wakes the writer.
                    p.dirty = true;
                    p.zero = false;
                    if let Err(e) = k.backend.protect(a, false) {
                        k.error(format!("unprotect {a:#x}: errno {e}"));
                        k.backend.wake(a, PAGE);
                    }
                } else {
                    k.backend.wake(a, PAGE);
                }
                return;
            }
            St::Busy => return,
            St::PagingOut => {
                p.wake_after = true;
                return;
            }
            St::Absent | St::Error => {}
        }
        let ask =
            has_pager && (!pagemap || idx >= PAGEMAP_PAGES || p.last_return != 0 || p.initialized);
        if ask {
            if let Some(why) = pager_dead {
                drop(st);
                fail_page(k, &obj, idx, &format!("the object's pager is gone ({why})"));
                return;
            }
        }
        if !waited && k.resident.load(Ordering::Acquire) >= k.ram_pages {
            drop(st);
            wait_for_memory(k);
            waited = true;
            continue;
        }
        if ask {
            p.st = St::Busy;
            p.write = write;
            p.req = 0;
            p.since = t0;
            p.sent = 0;
            drop(st);
            send_request(k, &obj, idx);
            return;
        }
        // Zero fill in the kernel (GNU Mach: vm_page_zero_fill, zero_fill_count++).
        match k
            .backend
            .zero_fill(a, write, &k.zeros, k.cfg.zero_fill_copy)
        {
            Ok(r) => {
                if r == super::backend::Installed::Present {
                    k.counters.eexist.fetch_add(1, Ordering::Relaxed);
                }
                p.st = St::Resident;
                p.dirty = write;
                p.zero = !write;
                p.precious = false;
                p.wake_after = false;
                // Count it before anyone can evict it (under the object lock).
                add_resident(k, 1);
                drop(st);
                k.backend.wake(a, PAGE);
                push_lru(k, &obj, idx);
                k.counters.zero_fill_local.fetch_add(1, Ordering::Relaxed);
                record_latency(k, t0);
                k.notify_portable();
            }
            Err(e) => {
                drop(st);
                k.error(format!("zero fill at {a:#x}: errno {e}"));
                k.backend.wake(a, PAGE);
            }
        }
        return;
    }
}

/// Sends `memory_object_data_request` for a page made Busy.
fn send_request(k: &Arc<KInner>, obj: &Arc<VmObject>, idx: usize) {
    let r = {
        let mut s = lock(&obj.send);
        match s.ports.as_ref() {
            None => Err("the object has no pager".to_string()),
            Some(_) => {
                s.counter += 1;
                let c = s.counter;
                let write = {
                    let mut st = lock(&obj.st);
                    match st.pages.get_mut(idx) {
                        Some(p) if p.st == St::Busy && p.req == 0 => {
                            p.req = c;
                            Some(p.write)
                        }
                        _ => None,
                    }
                };
                match (write, s.ports.as_ref()) {
                    (Some(write), Some(ports)) => {
                        let access = if write {
                            VM_PROT_READ | VM_PROT_WRITE
                        } else {
                            VM_PROT_READ
                        };
                        let off = (idx * PAGE) as u64;
                        // Traced before the send, so the answer never shows up first.
                        k.trace
                            .record(Dir::ToPager, "memory_object_data_request", obj.id, || {
                                format!(
                                    "offset {off:#x} length {PAGE} access {} (msg #{c})",
                                    if write { "rw" } else { "r" }
                                )
                            });
                        note_past_hint(k, obj, "past hint: data_request", off);
                        let r = mo_client::client::memory_object_data_request(
                            &k.sender(),
                            &ports.mo,
                            &ports.ctl,
                            off,
                            PAGE as u64,
                            access,
                        );
                        k.counters
                            .memory_object_data_request
                            .fetch_add(1, Ordering::Relaxed);
                        {
                            let now = k.now_ns();
                            let mut st = lock(&obj.st);
                            if let Some(p) = st.pages.get_mut(idx) {
                                if p.st == St::Busy && p.req == c {
                                    p.sent = now;
                                    k.counters
                                        .t_request_ns
                                        .fetch_add(now.saturating_sub(p.since), Ordering::Relaxed);
                                }
                            }
                        }
                        lock(&k.watch).push_back(Watch {
                            at: Instant::now(),
                            obj: Arc::downgrade(obj),
                            idx: idx as u32,
                            req: c,
                        });
                        r.map_err(|e| format!("memory_object_data_request failed: {e}"))
                    }
                    _ => Ok(()),
                }
            }
        }
    };
    if let Err(why) = r {
        k.counters.pager_failures.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = lock(&obj.st);
            if st.pager_dead.is_none() && why.contains("INVALID_DEST") {
                st.pager_dead = Some(why.clone());
            }
        }
        fail_page(k, obj, idx, &why);
    }
}

/// Notes (first few of each `kind`) a message about the page at `offset` when it lies past the
/// size the kernel announced in `memory_object_create`: the object grew by coalescing, and
/// the pager serves it like any other page (the size is only a hint).
pub(crate) fn note_past_hint(k: &KInner, obj: &VmObject, kind: &'static str, offset: u64) {
    if !k.trace.wants(kind) {
        return;
    }
    let hint = lock(&obj.st).create_size;
    if hint != 0 && offset >= hint {
        k.trace.record(Dir::Note, kind, obj.id, || {
            format!(
                "offset {offset:#x} is past the size hint {hint:#x} of memory_object_create (the object grew)"
            )
        });
    }
}

/// Fails the fault on a page: `UFFDIO_POISON` (the thread takes SIGBUS) or, in the portable
/// mode, an error for the access; the page is asked for again after `error_hold`.
pub(crate) fn fail_page(k: &Arc<KInner>, obj: &Arc<VmObject>, idx: usize, why: &str) {
    let a = obj.addr(idx);
    let msg = format!(
        "memory error at {a:#x} (object {}, offset {:#x}): {why}",
        obj.id,
        idx * PAGE
    );
    {
        let mut st = lock(&obj.st);
        if let Some(p) = st.pages.get_mut(idx) {
            if matches!(p.st, St::Resident | St::PagingOut) {
                return;
            }
            p.st = St::Error;
            p.req = 0;
            if let Err(e) = k.backend.poison(a) {
                k.error(format!("poison {a:#x}: errno {e}"));
                k.backend.wake(a, PAGE);
            }
        }
    }
    lock(&k.page_errors).insert((obj.id, idx as u32), msg.clone());
    lock(&k.errored).push_back(Watch {
        at: Instant::now(),
        obj: Arc::downgrade(obj),
        idx: idx as u32,
        req: 0,
    });
    k.trace
        .record(Dir::Note, "memory_error", obj.id, || msg.clone());
    k.error(msg);
    k.notify_portable();
}

/// Which pages of `offset..offset+len` a control-port call may touch.
fn check_range(
    obj: &VmObject,
    offset: u64,
    len: u64,
    call: &str,
) -> Result<(usize, usize), String> {
    if offset % PAGE as u64 != 0 {
        return Err(format!("{call}: offset {offset:#x} is not page-aligned"));
    }
    if len == 0 || len % PAGE as u64 != 0 {
        return Err(format!(
            "{call}: length {len:#x} is not a positive multiple of the page size"
        ));
    }
    let first = (offset / PAGE as u64) as usize;
    let n = (len / PAGE as u64) as usize;
    let pages = obj.pages.load(Ordering::Acquire);
    if first.checked_add(n).is_none_or(|e| e > pages) {
        return Err(format!(
            "{call}: range {offset:#x}+{len:#x} is past the end of the object ({:#x} bytes)",
            pages * PAGE
        ));
    }
    Ok((first, n))
}

/// `memory_object_data_supply`: installs the supplied pages (see the module docs for which).
pub(crate) fn supply(
    k: &Arc<KInner>,
    obj: &Arc<VmObject>,
    offset: u64,
    data: &[u8],
    precious: bool,
) -> Result<(), String> {
    let answer_at = k.now_ns();
    let (first, n) = check_range(obj, offset, data.len() as u64, "memory_object_data_supply")?;
    let mut rerequest = Vec::new();
    let mut installed = 0;
    {
        let mut st = lock(&obj.st);
        if st.terminated {
            return Err("memory_object_data_supply on a terminated object".into());
        }
        let oldest = st.pages[first..first + n]
            .iter()
            .filter(|p| p.st == St::Busy && p.req != 0)
            .map(|p| p.req)
            .min();
        // Decide page by page, then install runs of adjacent pages with one UFFDIO_COPY.
        let mut plan: Vec<(usize, bool, bool)> = Vec::with_capacity(n); // (idx, writable, requested)
        let mut budget = k
            .ram_pages
            .saturating_sub(k.resident.load(Ordering::Acquire));
        for idx in first..first + n {
            let p = &mut st.pages[idx];
            let fresh = oldest.is_some_and(|o| p.last_return < o);
            match p.st {
                St::Busy if fresh => plan.push((idx, p.write, true)),
                St::Busy if p.req != 0 => {
                    // Possibly read before this page's latest data_return: ask again.
                    p.req = 0;
                    rerequest.push(idx);
                    k.counters.stale_rerequests.fetch_add(1, Ordering::Relaxed);
                }
                St::Absent if fresh && budget > 0 => {
                    budget -= 1;
                    plan.push((idx, false, false));
                }
                _ => {
                    k.counters.supply_ignored.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Runs of adjacent pages with the same protection, requested and read-ahead pages
        // together: a cluster is one UFFDIO_COPY, which wakes the faulting threads once.
        let mut i = 0;
        while i < plan.len() {
            let (start, writable, _) = plan[i];
            let mut j = i + 1;
            while j < plan.len() && plan[j].0 == start + (j - i) && plan[j].1 == writable {
                j += 1;
            }
            let src = &data[(start - first) * PAGE..(start - first + (j - i)) * PAGE];
            let a = obj.addr(start);
            let mut r = k.backend.install_run(a, src, writable);
            if j - i > 1 && matches!(r, Ok(super::backend::Installed::Present)) {
                // Part of the run was already there: page by page.
                r = Ok(super::backend::Installed::Done);
                for (q, chunk) in src.chunks_exact(PAGE).enumerate() {
                    if let Ok(super::backend::Installed::Present) =
                        k.backend.install(a + q * PAGE, chunk, writable)
                    {
                        k.counters.eexist.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            match r {
                Ok(x) => {
                    if x == super::backend::Installed::Present {
                        k.counters.eexist.fetch_add(1, Ordering::Relaxed);
                    }
                    for &(idx, writable, requested) in &plan[i..j] {
                        let p = &mut st.pages[idx];
                        let since = p.since;
                        p.st = St::Resident;
                        p.dirty = writable;
                        p.zero = false;
                        p.precious = precious;
                        p.wake_after = false;
                        installed += 1;
                        add_resident(k, 1);
                        if requested {
                            k.counters.pageins.fetch_add(1, Ordering::Relaxed);
                            record_latency(k, since);
                            record_stages(k, p.sent, answer_at);
                        } else {
                            k.counters
                                .read_ahead_installed
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(e) => k.error(format!("UFFDIO_COPY at {a:#x}: errno {e}")),
            }
            i = j;
        }
    }
    // Wake the faulting threads now that the object is unlocked.
    k.backend.wake(obj.addr(first), n * PAGE);
    if installed > 0 {
        let mut l = lock(&k.lru);
        let st = lock(&obj.st);
        for i in first..first + n {
            if st.pages[i].st == St::Resident {
                l.push_back((Arc::downgrade(obj), i as u32));
            }
        }
    }
    k.notify_portable();
    for idx in rerequest {
        {
            let mut st = lock(&obj.st);
            if let Some(p) = st.pages.get_mut(idx) {
                if p.st != St::Busy || p.req != 0 {
                    continue;
                }
                p.since = k.now_ns();
            }
        }
        send_request(k, obj, idx);
    }
    Ok(())
}

/// `memory_object_data_unavailable`: zero-fills the busy pages of the range.
pub(crate) fn unavailable(
    k: &Arc<KInner>,
    obj: &Arc<VmObject>,
    offset: u64,
    size: u64,
) -> Result<(), String> {
    let answer_at = k.now_ns();
    let (first, n) = check_range(obj, offset, size, "memory_object_data_unavailable")?;
    let mut filled = Vec::new();
    {
        let mut st = lock(&obj.st);
        if st.terminated {
            return Err("memory_object_data_unavailable on a terminated object".into());
        }
        for idx in first..first + n {
            let a = obj.addr(idx);
            let p = &mut st.pages[idx];
            if p.st != St::Busy || p.req == 0 {
                continue;
            }
            match k
                .backend
                .zero_fill(a, p.write, &k.zeros, k.cfg.zero_fill_copy)
            {
                Ok(r) => {
                    if r == super::backend::Installed::Present {
                        k.counters.eexist.fetch_add(1, Ordering::Relaxed);
                    }
                    p.st = St::Resident;
                    p.dirty = p.write;
                    p.zero = !p.write;
                    p.precious = false;
                    add_resident(k, 1);
                    record_stages(k, p.sent, answer_at);
                    filled.push((idx, p.since));
                }
                Err(e) => k.error(format!("zero fill at {a:#x}: errno {e}")),
            }
        }
    }
    if !filled.is_empty() {
        k.backend.wake(obj.addr(first), n * PAGE);
        for &(idx, since) in &filled {
            push_lru(k, obj, idx);
            record_latency(k, since);
        }
        k.counters
            .zero_fill_unavailable
            .fetch_add(filled.len() as u64, Ordering::Relaxed);
    }
    k.notify_portable();
    Ok(())
}

/// `memory_object_data_error`: the busy pages of the range fail (SIGBUS for the task).
pub(crate) fn data_error(
    k: &Arc<KInner>,
    obj: &Arc<VmObject>,
    offset: u64,
    size: u64,
    code: i32,
) -> Result<(), String> {
    let (first, n) = check_range(obj, offset, size, "memory_object_data_error")?;
    let busy: Vec<usize> = {
        let st = lock(&obj.st);
        (first..first + n)
            .filter(|&i| st.pages[i].st == St::Busy && st.pages[i].req != 0)
            .collect()
    };
    for idx in busy {
        k.counters.data_errors.fetch_add(1, Ordering::Relaxed);
        fail_page(
            k,
            obj,
            idx,
            &format!(
                "the memory manager answered memory_object_data_error({})",
                KernReturn(code).name_or_number()
            ),
        );
    }
    Ok(())
}

trait KrName {
    fn name_or_number(self) -> String;
}

impl KrName for KernReturn {
    fn name_or_number(self) -> String {
        format!("{self:?}")
    }
}

/// Cleans a resident page: if it is dirty (or precious, or `force`), write-protects it,
/// copies it out and sends `memory_object_data_return` (creating the pager first if the
/// object has none). With `flush` the page is dropped afterwards. Returns whether the page
/// left memory (flush) or was cleaned.
pub(crate) fn clean_page(
    k: &Arc<KInner>,
    obj: &Arc<VmObject>,
    idx: usize,
    flush: bool,
    force: bool,
) -> Result<bool, String> {
    let a = obj.addr(idx);
    let mut buf = vec![0u8; PAGE];
    let dirty;
    {
        let mut st = lock(&obj.st);
        if st.terminated {
            return Ok(false);
        }
        let Some(p) = st.pages.get_mut(idx) else {
            return Ok(false);
        };
        if p.st != St::Resident {
            return Ok(false);
        }
        let mut protected = false;
        if p.zero && !p.dirty {
            // Mapped as the zero page, not write-protected (see `Backend::zero_fill`): a
            // write since then copied it without a fault. Write-protect it now (a write from
            // here on faults and waits for us), then look: non-zero contents were written.
            k.backend
                .protect(a, true)
                .map_err(|e| format!("write-protect {a:#x}: errno {e}"))?;
            protected = true;
            // SAFETY: the page is resident (mapped) and write-protected; reading it cannot
            // fault and nothing writes it while we hold the object lock.
            let s = unsafe { std::slice::from_raw_parts(a as *const u8, PAGE) };
            if s.iter().any(|&b| b != 0) {
                p.dirty = true;
                p.zero = false;
            }
        }
        if !(p.dirty || p.precious || force) {
            if !flush {
                return Ok(false);
            }
            // Clean: dropped without a message.
            let _ = k.backend.discard(a, PAGE);
            p.st = St::Absent;
            p.zero = false;
            let wake = std::mem::take(&mut p.wake_after);
            drop(st);
            if wake {
                k.backend.wake(a, PAGE);
            }
            sub_resident(k, 1);
            k.counters.clean_evictions.fetch_add(1, Ordering::Relaxed);
            k.notify_portable();
            return Ok(true);
        }
        dirty = p.dirty;
        if p.dirty && !protected {
            // Write-protect before the copy: a write now faults and waits (no lost write).
            k.backend
                .protect(a, true)
                .map_err(|e| format!("write-protect {a:#x}: errno {e}"))?;
        }
        p.st = St::PagingOut;
        // SAFETY: resident, write-protected page of our mapping; see above.
        let s = unsafe { std::slice::from_raw_parts(a as *const u8, PAGE) };
        buf.copy_from_slice(s);
    }
    let off = (idx * PAGE) as u64;
    let r = obj.ensure_pager_and(k, |k, ports, c| {
        {
            let mut st = lock(&obj.st);
            if let Some(p) = st.pages.get_mut(idx) {
                p.last_return = c;
            }
        }
        note_past_hint(k, obj, "past hint: data_return", off);
        let r = mo_client::client::memory_object_data_return(
            &k.sender(),
            &ports.mo,
            &ports.ctl,
            off,
            &buf,
            i32::from(dirty),
            0,
        );
        k.counters
            .memory_object_data_return
            .fetch_add(1, Ordering::Relaxed);
        k.trace
            .record(Dir::ToPager, "memory_object_data_return", obj.id, || {
                format!("offset {off:#x} {PAGE} bytes out-of-line dirty={} kernel_copy=FALSE (msg #{c})", if dirty { "TRUE" } else { "FALSE" })
            });
        r.map_err(|e| format!("memory_object_data_return failed: {e}"))
    });
    let mut st = lock(&obj.st);
    let terminated = st.terminated;
    let Some(p) = st.pages.get_mut(idx) else {
        return Ok(false);
    };
    if terminated {
        return Ok(false);
    }
    match r {
        Ok(()) => {
            k.counters.pageouts.fetch_add(1, Ordering::Relaxed);
            p.dirty = false;
            p.precious = false;
            p.zero = false;
            if flush {
                let _ = k.backend.discard(a, PAGE);
                p.st = St::Absent;
                let wake = std::mem::take(&mut p.wake_after);
                drop(st);
                if wake {
                    k.backend.wake(a, PAGE);
                }
                sub_resident(k, 1);
            } else {
                p.st = St::Resident;
                let wake = std::mem::take(&mut p.wake_after);
                drop(st);
                if wake {
                    k.backend.wake(a, PAGE);
                }
            }
            k.notify_portable();
            Ok(true)
        }
        Err(e) => {
            // Keep the page: it is still dirty.
            p.st = St::Resident;
            p.dirty = dirty || p.dirty;
            let _ = k.backend.protect(a, false);
            let wake = std::mem::take(&mut p.wake_after);
            drop(st);
            if wake {
                k.backend.wake(a, PAGE);
            }
            k.notify_portable();
            Err(e)
        }
    }
}

/// The pageout daemon: above the high watermark, evicts pages (oldest installed first) until
/// the low watermark.
pub(crate) fn pageout_daemon(k: &Arc<KInner>) {
    let mut last_error = String::new();
    while !k.stop.load(Ordering::Acquire) {
        {
            let g = lock(&k.pageout_mx);
            if k.resident.load(Ordering::Acquire) <= k.high_pages {
                let _ = k
                    .pageout_cv
                    .wait_timeout(g, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        if k.resident.load(Ordering::Acquire) <= k.high_pages {
            k.mem_cv.notify_all();
            continue;
        }
        let mut failures = 0usize;
        while k.resident.load(Ordering::Acquire) > k.low_pages && !k.stop.load(Ordering::Acquire) {
            let victim = lock(&k.lru).pop_front();
            let Some((w, idx)) = victim else { break };
            let Some(obj) = w.upgrade() else { continue };
            match clean_page(k, &obj, idx as usize, true, false) {
                Ok(_) => {}
                Err(e) => {
                    failures += 1;
                    // Keep it for later.
                    lock(&k.lru).push_back((w, idx));
                    if e != last_error {
                        k.error(format!("pageout of object {} failed: {e}", obj.id));
                        last_error = e;
                    }
                    if failures > 64 {
                        break;
                    }
                }
            }
            if k.resident.load(Ordering::Acquire) < k.ram_pages {
                k.mem_cv.notify_all();
            }
        }
        k.mem_cv.notify_all();
        if failures > 64 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The watchdog: fails faults whose pager did not answer within `fault_timeout`, and lets
/// failed pages be asked for again after `error_hold`.
pub(crate) fn watchdog(k: &Arc<KInner>) {
    while !k.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        loop {
            let w = {
                let mut q = lock(&k.watch);
                match q.front() {
                    Some(w) if now.duration_since(w.at) >= k.cfg.fault_timeout => q.pop_front(),
                    _ => None,
                }
            };
            let Some(w) = w else { break };
            let Some(obj) = w.obj.upgrade() else { continue };
            let still = {
                let st = lock(&obj.st);
                st.pages
                    .get(w.idx as usize)
                    .is_some_and(|p| p.st == St::Busy && p.req == w.req)
            };
            if still {
                k.counters.fault_timeouts.fetch_add(1, Ordering::Relaxed);
                fail_page(
                    k,
                    &obj,
                    w.idx as usize,
                    &format!(
                        "no answer from the memory manager to memory_object_data_request within {:?} (pager dead or hung)",
                        k.cfg.fault_timeout
                    ),
                );
            }
        }
        loop {
            let w = {
                let mut q = lock(&k.errored);
                match q.front() {
                    Some(w) if now.duration_since(w.at) >= k.cfg.error_hold => q.pop_front(),
                    _ => None,
                }
            };
            let Some(w) = w else { break };
            let Some(obj) = w.obj.upgrade() else { continue };
            let mut st = lock(&obj.st);
            if st.terminated {
                continue;
            }
            if let Some(p) = st.pages.get_mut(w.idx as usize) {
                if p.st == St::Error {
                    // GNU Mach frees the error page once the fault has failed: the next
                    // access asks the pager again.
                    let _ = k.backend.discard(obj.addr(w.idx as usize), PAGE);
                    p.st = St::Absent;
                }
            }
            drop(st);
            lock(&k.page_errors).remove(&(obj.id, w.idx));
        }
    }
}

/// Terminates an object (its mapping went away, or its manager destroyed it): frees its
/// pages without cleaning them and sends `memory_object_terminate` (MOVE_SEND of the object
/// port, MOVE_RECEIVE of control and name); the pager then gets no-senders.
pub(crate) fn terminate(k: &Arc<KInner>, obj: &Arc<VmObject>, unmap: bool) {
    let len = obj.len();
    let freed = {
        let mut st = lock(&obj.st);
        if st.terminated {
            return;
        }
        st.terminated = true;
        st.destroyed = !unmap;
        let mut n = 0;
        for p in st.pages.iter_mut() {
            if matches!(p.st, St::Resident | St::PagingOut) {
                n += 1;
            }
            p.st = St::Absent;
        }
        let _ = k.backend.discard(obj.base, len);
        if unmap {
            if let Err(e) = mem::quarantine(obj.base, len) {
                k.error(e);
            }
        }
        n
    };
    sub_resident(k, freed);
    k.backend.wake(obj.base, len);
    let ports = lock(&obj.send).ports.take();
    if let Some(p) = ports {
        k.remove_kobject(p.ctl.name());
        k.remove_kobject(p.name.name());
        let r = mo_client::client::memory_object_terminate(&k.sender(), p.mo, p.ctl, p.name);
        k.counters
            .memory_object_terminate
            .fetch_add(1, Ordering::Relaxed);
        k.trace.record(Dir::ToPager, "memory_object_terminate", obj.id, || {
            "object MOVE_SEND, control MOVE_RECEIVE, name MOVE_RECEIVE (the pager gets no-senders next)".into()
        });
        if let Err(e) = r {
            k.error(format!("memory_object_terminate of object {}: {e}", obj.id));
        }
    }
    k.counters
        .objects_terminated
        .fetch_add(1, Ordering::Relaxed);
    k.notify_portable();
    k.mem_cv.notify_all();
}
