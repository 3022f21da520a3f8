//! Tasks: an IPC space of the userspace Mach IPC plus an address space of anonymous memory
//! objects. Task threads are ordinary threads of this process; in the userfaultfd mode they
//! touch the memory directly (the returned addresses are real), in the portable mode through
//! [`EmuTask::read`] and [`EmuTask::write`].

use super::uffd::mem;
use super::vm::{self, St, VmObject};
use super::{lock, KInner, KObject, Kernel, Mode, PAGE};
use mig_runtime::ipc;
use mig_runtime::{KernReturn, SendRight};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Address space reserved for each task (never reused, so a stale pointer into a deallocated
/// region can never reach newer memory).
const WINDOW: usize = 1 << 38;

/// Why an access through [`EmuTask::read`]/[`EmuTask::write`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// The address is not allocated (never, or deallocated): GNU Mach's
    /// `KERN_INVALID_ADDRESS`, SIGSEGV for a direct access.
    InvalidAddress(usize),
    /// The page could not be provided: the memory manager answered `data_error`, did not
    /// answer in time, or is gone — GNU Mach's `KERN_MEMORY_ERROR`, SIGBUS for a direct
    /// access. The text says which.
    Memory { addr: usize, reason: String },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::InvalidAddress(a) => {
                write!(f, "invalid address {a:#x}: not allocated in this task")
            }
            MemoryError::Memory { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for MemoryError {}

struct TaskVm {
    window: usize,
    next: usize,
    objects: BTreeMap<usize, Arc<VmObject>>,
}

/// An emulated task. Cheap to clone.
#[derive(Clone)]
pub struct EmuTask {
    k: Arc<KInner>,
    ipc: ipc::Task,
    vm: Arc<Mutex<TaskVm>>,
    _life: Arc<TaskLife>,
}

struct TaskLife {
    k: Arc<KInner>,
    ipc: ipc::Task,
    vm: Arc<Mutex<TaskVm>>,
}

impl Drop for TaskLife {
    fn drop(&mut self) {
        terminate_task(&self.k, &self.ipc, &self.vm);
    }
}

fn terminate_task(k: &Arc<KInner>, t: &ipc::Task, vm_: &Arc<Mutex<TaskVm>>) {
    let (objs, window) = {
        let mut g = lock(vm_);
        let objs: Vec<_> = std::mem::take(&mut g.objects).into_values().collect();
        let w = std::mem::replace(&mut g.window, 0);
        (objs, w)
    };
    for o in objs {
        k.regions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&o.base);
        vm::terminate(k, &o, true);
    }
    if let Some(name) = k.ipc.task_port_name(t) {
        k.remove_kobject(name);
    }
    t.terminate();
    if window != 0 {
        mem::release(window, WINDOW);
    }
}

impl fmt::Debug for EmuTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmuTask({:?})", self.ipc)
    }
}

impl EmuTask {
    pub(crate) fn new(kernel: &Kernel) -> Result<EmuTask, String> {
        let k = Arc::clone(&kernel.k);
        let ipc = k.ipc.new_task();
        let window = mem::reserve(WINDOW)?;
        if let Some(name) = k.ipc.task_port_name(&ipc) {
            k.add_kobject(name, KObject::Task(ipc.clone()))
                .map_err(|e| format!("task port into the kernel set: {e:?}"))?;
        }
        let vm = Arc::new(Mutex::new(TaskVm {
            window,
            next: window,
            objects: BTreeMap::new(),
        }));
        Ok(EmuTask {
            _life: Arc::new(TaskLife {
                k: Arc::clone(&k),
                ipc: ipc.clone(),
                vm: Arc::clone(&vm),
            }),
            k,
            ipc,
            vm,
        })
    }

    /// The task's IPC space (its `Transport`).
    pub fn ipc(&self) -> &ipc::Task {
        &self.ipc
    }

    /// `mach_task_self()` as a typed send right.
    pub fn task_self(&self) -> Result<SendRight, KernReturn> {
        let n = self.ipc.task_self()?;
        Ok(SendRight::from_raw(self.ipc.space_id(), n))
    }

    /// `vm_allocate(task, &addr, size, anywhere=TRUE)`: zero-filled memory, page-aligned.
    pub fn vm_allocate(&self, size: usize) -> Result<usize, KernReturn> {
        self.allocate(None, size)
    }

    /// `vm_allocate(task, &addr, size, anywhere=FALSE)`. With the kernel's `coalesce` option, an
    /// address right after an existing allocation extends that allocation's object.
    pub fn vm_allocate_at(&self, addr: usize, size: usize) -> Result<usize, KernReturn> {
        self.allocate(Some(addr), size)
    }

    fn allocate(&self, at: Option<usize>, size: usize) -> Result<usize, KernReturn> {
        if size == 0 {
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        let size = size.div_ceil(PAGE) * PAGE;
        let k = &self.k;
        let mut g = lock(&self.vm);
        if g.window == 0 {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        let end_of_window = g.window + WINDOW;
        let addr = match at {
            None => g.next,
            Some(a) => {
                if a % PAGE != 0
                    || a < g.next
                    || a.checked_add(size).is_none_or(|e| e > end_of_window)
                {
                    // Only fresh addresses (at or after the highest allocation) are accepted:
                    // addresses of deallocated memory stay quarantined.
                    let prev = g
                        .objects
                        .range(..=a)
                        .next_back()
                        .map(|(_, o)| o.base + o.len());
                    if prev != Some(a) || a < g.window {
                        return Err(KernReturn::KERN_NO_SPACE);
                    }
                }
                a
            }
        };
        if addr.checked_add(size).is_none_or(|e| e > end_of_window) {
            return Err(KernReturn::KERN_NO_SPACE);
        }
        mem::map_rw(addr, size).map_err(|e| {
            k.error(e);
            KernReturn::KERN_RESOURCE_SHORTAGE
        })?;
        if let super::backend::Backend::Uffd(u) = &k.backend {
            if let Err(e) = u.register(addr, size, true) {
                k.error(e);
                let _ = mem::quarantine(addr, size);
                return Err(KernReturn::KERN_RESOURCE_SHORTAGE);
            }
        }
        // Coalescing: extend the object that ends right here.
        if k.cfg.coalesce {
            let prev = g
                .objects
                .range(..addr)
                .next_back()
                .map(|(_, o)| Arc::clone(o))
                .filter(|o| o.base + o.len() == addr);
            if let Some(o) = prev {
                let mut st = lock(&o.st);
                if !st.terminated {
                    let add = size / PAGE;
                    let old = st.pages.len();
                    st.pages.resize(old + add, vm::Page::default());
                    o.pages.store(old + add, Ordering::Release);
                    let hint = st.create_size;
                    let has_pager = st.has_pager;
                    drop(st);
                    k.counters.objects_coalesced.fetch_add(1, Ordering::Relaxed);
                    k.trace.record(super::Dir::Note, "object_coalesced", o.id, || {
                        format!(
                            "vm_allocate {addr:#x}+{size:#x} coalesced: object grows {:#x} → {:#x}{}",
                            old * PAGE,
                            (old + add) * PAGE,
                            if has_pager {
                                format!(" (past the size hint {hint:#x} given to memory_object_create)")
                            } else {
                                String::new()
                            }
                        )
                    });
                    g.next = g.next.max(addr + size + PAGE);
                    return Ok(addr);
                }
            }
        }
        let id = k.next_object.fetch_add(1, Ordering::Relaxed);
        let obj = Arc::new(VmObject::new(id, addr, size / PAGE));
        g.objects.insert(addr, Arc::clone(&obj));
        // One guard page between allocations, so only explicit coalescing makes them adjacent.
        g.next = g.next.max(addr + size + PAGE);
        k.regions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr, Arc::clone(&obj));
        drop(g);
        if k.cfg.eager_pager {
            if let Err(e) = obj.ensure_pager(k) {
                k.error(format!("eager memory_object_create for object {id}: {e}"));
            }
        }
        Ok(addr)
    }

    /// `vm_deallocate` of a whole allocation (as returned by `vm_allocate`, including what
    /// coalescing added). The object is terminated: its pages are freed without cleaning and,
    /// if it has a pager, `memory_object_terminate` is sent. The addresses stay reserved and
    /// inaccessible: touching them afterwards is a memory error (SIGSEGV), never someone
    /// else's memory.
    pub fn vm_deallocate(&self, addr: usize, size: usize) -> Result<(), KernReturn> {
        let obj = {
            let mut g = lock(&self.vm);
            match g.objects.get(&addr) {
                Some(o) if o.len() == size.div_ceil(PAGE) * PAGE => {}
                _ => return Err(KernReturn::KERN_INVALID_ARGUMENT),
            }
            match g.objects.remove(&addr) {
                Some(o) => o,
                None => return Err(KernReturn::KERN_INVALID_ARGUMENT),
            }
        };
        self.k
            .regions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr);
        vm::terminate(&self.k, &obj, true);
        Ok(())
    }

    /// Pages the resident pages of `addr..addr+len` out now, as the pageout daemon would
    /// (dirty pages: write-protect, copy, `memory_object_data_return`, creating the object's
    /// pager at the first one; clean pages: dropped). What `memory_object_lock_request`
    /// with `should_return = DIRTY` and `should_flush` does; tests and the demo use it to evict
    /// deterministically. Returns how many pages left memory.
    pub fn pageout(&self, addr: usize, len: usize) -> Result<usize, String> {
        let mut n = 0;
        let mut a = addr & !(PAGE - 1);
        while a < addr + len {
            let (obj, idx) =
                vm::lookup(&self.k, a).ok_or_else(|| format!("{a:#x} is not mapped"))?;
            if vm::clean_page(&self.k, &obj, idx, true, false)? {
                n += 1;
            }
            a += PAGE;
        }
        Ok(n)
    }

    /// The kernel's id of the object mapped at `addr`.
    pub fn object_at(&self, addr: usize) -> Option<super::ObjectInfo> {
        vm::lookup(&self.k, addr).map(|(o, _)| o.info())
    }

    /// Reads task memory. In the userfaultfd mode this is a plain copy that faults for real
    /// (a failing page raises SIGBUS in the calling thread); in the portable mode each page is
    /// faulted in software and a failure is returned as [`MemoryError`].
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.access(
            addr,
            buf.len(),
            |off, page_addr, n| {
                // SAFETY: `page_addr..+n` lies in a mapped region of this task (checked by
                // `access`); in the portable mode the page is resident and locked.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        page_addr as *const u8,
                        buf[off..].as_mut_ptr(),
                        n,
                    )
                }
            },
            false,
        )
    }

    /// Writes task memory (see [`EmuTask::read`]).
    pub fn write(&self, addr: usize, data: &[u8]) -> Result<(), MemoryError> {
        self.access(
            addr,
            data.len(),
            |off, page_addr, n| {
                // SAFETY: as in `read`.
                unsafe {
                    std::ptr::copy_nonoverlapping(data[off..].as_ptr(), page_addr as *mut u8, n)
                }
            },
            true,
        )
    }

    fn access(
        &self,
        addr: usize,
        len: usize,
        mut f: impl FnMut(usize, usize, usize),
        write: bool,
    ) -> Result<(), MemoryError> {
        let mut off = 0;
        while off < len {
            let a = addr + off;
            let n = (PAGE - a % PAGE).min(len - off);
            let Some((obj, idx)) = vm::lookup(&self.k, a) else {
                return Err(MemoryError::InvalidAddress(a));
            };
            if !lock(&self.vm).objects.contains_key(&obj.base) {
                return Err(MemoryError::InvalidAddress(a));
            }
            if self.k.mode == Mode::Userfaultfd {
                f(off, a, n);
            } else {
                self.portable_page(&obj, idx, a, write, |pa| f(off, pa, n))?;
            }
            off += n;
        }
        Ok(())
    }

    /// The portable mode's fault loop for one page.
    fn portable_page(
        &self,
        obj: &Arc<VmObject>,
        idx: usize,
        a: usize,
        write: bool,
        f: impl FnOnce(usize),
    ) -> Result<(), MemoryError> {
        let k = &self.k;
        let deadline = Instant::now() + k.cfg.fault_timeout + Duration::from_secs(2);
        let mut f = Some(f);
        let mut faulted = false;
        loop {
            let gen = *lock(&k.portable_mx);
            {
                let mut st = lock(&obj.st);
                if st.terminated {
                    return Err(MemoryError::InvalidAddress(a));
                }
                let Some(p) = st.pages.get_mut(idx) else {
                    return Err(MemoryError::InvalidAddress(a));
                };
                match p.st {
                    St::Resident => {
                        if write && !p.dirty {
                            p.dirty = true;
                            p.zero = false;
                            k.counters.faults.fetch_add(1, Ordering::Relaxed);
                            k.counters.wp_faults.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(f) = f.take() {
                            f(a);
                        }
                        return Ok(());
                    }
                    St::Error => {
                        let reason = lock(&k.page_errors)
                            .get(&(obj.id, idx as u32))
                            .cloned()
                            .unwrap_or_else(|| format!("memory error at {a:#x}"));
                        return Err(MemoryError::Memory { addr: a, reason });
                    }
                    St::Absent if !faulted => {
                        drop(st);
                        faulted = true;
                        vm::fault(k, a & !(PAGE - 1), write, false, k.now_ns());
                        continue;
                    }
                    St::Absent => {
                        // Evicted again before we got to it: fault again.
                        faulted = false;
                        continue;
                    }
                    St::Busy | St::PagingOut => {}
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(MemoryError::Memory {
                    addr: a,
                    reason: format!("memory error at {a:#x}: fault not resolved in time"),
                });
            }
            let g = lock(&k.portable_mx);
            if *g == gen {
                let _ = k
                    .portable_cv
                    .wait_timeout(g, Duration::from_millis(20))
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Terminates the task: deallocates all its memory (terminating its objects) and destroys
    /// its IPC space.
    pub fn terminate(&self) {
        terminate_task(&self.k, &self.ipc, &self.vm);
    }
}
