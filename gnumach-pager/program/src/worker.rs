//! The worker: a second task that allocates more memory than the machine has, writes a
//! pattern to some pages, reads every page back, deallocates, and reports.
//!
//! It is created by the pager with generated stubs only: `task_create(inherit_memory =
//! FALSE)` gives an empty task; this program's image is copied into it region by region
//! (`vm_region` on ourselves, then `vm_allocate` at the same address, `vm_write`,
//! `vm_protect` in the child), a stack is allocated, the send rights the worker needs are
//! inserted under the names they have here (`mach_port_insert_right`), the pager's
//! exception port is set (`task_set_special_port`), and a thread is created
//! (`thread_create`) with its registers set (`thread_set_state`, `i386_THREAD_STATE`:
//! `rip` = [`worker_entry`], `ursp` = the stack) — the pager resumes it (`thread_resume`)
//! once it is the default memory manager. Being a copy of the image, the worker starts with
//! the pager's statics; [`worker_entry`] resets what names the pager's own space.

use crate::options::Fault;
use crate::worker_defs::client as report;
use crate::{HEAP, ROLE, ROLE_WORKER, TAG};
use alloc::format;
use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use mach_trap::env::{self, task_self, Borrowed};
use mach_trap::kernel::{gnumach, mach, mach_host, mach_port};
use mach_trap::{kprintln, trap, Explain, TrapTransport};
use mig_runtime::{Poly, PortName, ReceiveRight, SendRight};

const PAGE: u64 = 4096;
const WORDS: usize = PAGE as usize / 8;
const STACK: u64 = 256 * 1024;

/// `i386_THREAD_STATE` and its size in 32-bit words on x86_64 (`struct i386_thread_state`:
/// r8…r15, rdi, rsi, rbp, rsp, rbx, rdx, rcx, rax, rip, cs, rfl, ursp, ss = 168 bytes).
const I386_THREAD_STATE: i32 = 1;
const THREAD_STATE_WORDS: usize = 42;
/// Word offsets of `rip` and `ursp` (the user stack pointer the kernel loads; `rsp` is
/// ignored by `thread_set_state`).
const STATE_RIP: usize = 128 / 4;
const STATE_URSP: usize = 152 / 4;
/// `TASK_EXCEPTION_PORT`.
const TASK_EXCEPTION_PORT: i32 = 3;

/// Phases, as reported in `worker_progress`/`worker_failed`.
pub const PHASE_ALLOCATE: u32 = 0;
pub const PHASE_WRITE: u32 = 1;
pub const PHASE_VERIFY: u32 = 2;
pub const PHASE_DEALLOCATE: u32 = 3;
pub const PHASE_TOUCH_FREED: u32 = 4;
pub const PHASE_PANIC: u32 = 9;

pub fn phase_name(p: u32) -> &'static str {
    match p {
        PHASE_ALLOCATE => "allocate",
        PHASE_WRITE => "write",
        PHASE_VERIFY => "verify",
        PHASE_DEALLOCATE => "deallocate",
        PHASE_TOUCH_FREED => "touch-after-free",
        PHASE_PANIC => "panic",
        _ => "?",
    }
}

/// What the worker does; written by the pager before the image is copied, so the worker
/// reads its copy.
struct Config {
    pages: AtomicU64,
    write_every: AtomicU64,
    report: AtomicU32,
    touch_after_free: AtomicU8,
    phase: AtomicU32,
}

static CFG: Config = Config {
    pages: AtomicU64::new(0),
    write_every: AtomicU64::new(2),
    report: AtomicU32::new(0),
    touch_after_free: AtomicU8::new(0),
    phase: AtomicU32::new(0),
};

/// The worker task and its thread (send rights in the pager's space).
pub struct Worker {
    pub task: SendRight,
    pub thread: SendRight,
    pub pages: u64,
}

/// Which call failed while creating the worker.
pub struct CreateError(pub String);

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refused(call: &str, e: mig_runtime::RpcError) -> CreateError {
    CreateError(format!("kernel refused {call}: {}", Explain(e)))
}

extern "C" {
    /// The start of this program's ELF image (defined by the linker).
    static __ehdr_start: u8;
    /// The end of its data and bss (defined by the linker).
    static _end: u8;
}

/// Copies this program's image into `child` at the same addresses.
fn copy_image(child: &SendRight) -> Result<u64, CreateError> {
    let t = TrapTransport;
    let me = task_self();
    let start = (&raw const __ehdr_start).expose_provenance() as u64 & !(PAGE - 1);
    let end = ((&raw const _end).expose_provenance() as u64).div_ceil(PAGE) * PAGE;
    let mut addr = start;
    let mut copied = 0;
    while addr < end {
        let r = mach::client::vm_region(&t, &me, addr).map_err(|e| refused("vm_region", e))?;
        if r.address >= end || r.size == 0 {
            break;
        }
        let lo = r.address.max(start);
        let hi = (r.address + r.size).min(end);
        let len = hi - lo;
        mach::client::vm_allocate(&t, child, lo, len, 0)
            .map_err(|e| refused("vm_allocate(worker image)", e))?;
        // SAFETY: `lo..hi` lies in a region of our own image that `vm_region` reports
        // mapped (readable: our code and data); nothing writes it while we read (one thread).
        let data = unsafe {
            core::slice::from_raw_parts(
                core::ptr::with_exposed_provenance::<u8>(lo as usize),
                len as usize,
            )
        };
        mach::client::vm_write(&t, child, lo, data)
            .map_err(|e| refused("vm_write(worker image)", e))?;
        mach::client::vm_protect(&t, child, lo, len, 0, r.protection)
            .map_err(|e| refused("vm_protect(worker image)", e))?;
        copied += len;
        addr = r.address + r.size;
    }
    Ok(copied)
}

/// Creates the worker, suspended. `report` receives its reports, `exceptions` its
/// exception messages.
pub fn create(
    opts: &crate::options::Options,
    report: &ReceiveRight,
    exceptions: &ReceiveRight,
) -> Result<Worker, CreateError> {
    let t = TrapTransport;
    let me = task_self();
    let pages = (opts.mem_mib << 20) / PAGE;
    CFG.pages.store(pages, Ordering::Relaxed);
    CFG.write_every.store(opts.write_every, Ordering::Relaxed);
    CFG.report.store(report.name().0, Ordering::Relaxed);
    CFG.touch_after_free.store(
        u8::from(opts.fault == Fault::TouchAfterFree),
        Ordering::Relaxed,
    );

    let child = mach::client::task_create(&t, &me, 0).map_err(|e| refused("task_create", e))?;
    let _ = gnumach::client::task_set_name(&t, &child, b"worker");
    let copied = copy_image(&child)?;
    let stack = mach::client::vm_allocate(&t, &child, 0, STACK, 1)
        .map_err(|e| refused("vm_allocate(worker stack)", e))?;

    mach_port::client::mach_port_insert_right(&t, &child, report.name(), Poly::MakeSend(report))
        .map_err(|e| refused("mach_port_insert_right(report port)", e))?;
    if let Some(c) = mach_trap::console::port() {
        mach_port::client::mach_port_insert_right(&t, &child, c.name(), Poly::CopySend(&c))
            .map_err(|e| refused("mach_port_insert_right(console)", e))?;
    }
    let exc = exceptions.make_send().map_err(|e| {
        CreateError(format!(
            "cannot make a send right to the exception port: {}",
            mach_trap::Code(e)
        ))
    })?;
    mach::client::task_set_special_port(&t, &child, TASK_EXCEPTION_PORT, &exc)
        .map_err(|e| refused("task_set_special_port(TASK_EXCEPTION_PORT)", e))?;
    drop(exc);

    let thread =
        mach::client::thread_create(&t, &child).map_err(|e| refused("thread_create", e))?;
    let mut state = [0u32; THREAD_STATE_WORDS];
    let rip = (worker_entry as *const ()).expose_provenance() as u64;
    // At a function's entry the stack is 8 bytes off 16-byte alignment (a return address
    // was pushed); the fresh stack reads 0 there.
    let rsp = stack + STACK - 8;
    state[STATE_RIP] = rip as u32;
    state[STATE_RIP + 1] = (rip >> 32) as u32;
    state[STATE_URSP] = rsp as u32;
    state[STATE_URSP + 1] = (rsp >> 32) as u32;
    mach::client::thread_set_state(&t, &thread, I386_THREAD_STATE, &state)
        .map_err(|e| refused("thread_set_state", e))?;
    kprintln!(
        "{TAG} worker task created: image {} KiB copied, stack at {stack:#x}, entry {rip:#x}",
        copied >> 10
    );
    Ok(Worker {
        task: child,
        thread,
        pages,
    })
}

// ---------------------------------------------------------------------------------------
// In the worker task.

fn report_port() -> Borrowed {
    Borrowed::new(PortName(CFG.report.load(Ordering::Relaxed)))
}

/// The worker's failure path (also its panic handler): tell the pager, then stop.
pub fn fail_in_worker(cause: fmt::Arguments<'_>) -> ! {
    kprintln!("{TAG} worker: {cause}");
    let phase = CFG.phase.load(Ordering::Relaxed);
    let _ = report::worker_failed(&TrapTransport, &report_port(), phase, -1);
    stop()
}

fn stop() -> ! {
    let me = trap::mach_thread_self();
    let thread = Borrowed::new(me);
    loop {
        // The pager terminates this task; until then, sleep.
        let _ = mach::client::thread_suspend(&TrapTransport, &thread);
        trap::swtch();
    }
}

fn failed(phase: u32, what: &str, e: mig_runtime::RpcError) -> ! {
    kprintln!("{TAG} worker: kernel refused {what}: {}", Explain(e));
    let _ = report::worker_failed(&TrapTransport, &report_port(), phase, e.code().0);
    stop()
}

/// The pattern word `j` of page `i`: distinct for every page and word, never 0.
#[inline]
fn pattern(i: u64, j: u64) -> u64 {
    ((i << 32) | j) ^ 0x9e37_79b9_7f4a_7c15
}

fn now_ms(host: &SendRight) -> u64 {
    match mach_host::client::host_get_time64(&TrapTransport, host) {
        Ok([s, ns]) => (s as u64) * 1000 + (ns as u64) / 1_000_000,
        Err(_) => 0,
    }
}

fn progress(phase: u32, done: u64, total: u64) {
    CFG.phase.store(phase, Ordering::Relaxed);
    let _ = report::worker_progress(
        &TrapTransport,
        &report_port(),
        phase,
        done as u32,
        total as u32,
    );
}

/// The worker task's entry point (its thread starts here, see [`create`]).
pub extern "C" fn worker_entry() -> ! {
    ROLE.store(ROLE_WORKER, Ordering::Relaxed);
    env::reset_after_fork();
    HEAP.reset_after_fork();
    run()
}

fn run() -> ! {
    let t = TrapTransport;
    let me = task_self();
    let host = Borrowed::new(trap::mach_host_self());
    let pages = CFG.pages.load(Ordering::Relaxed);
    let every = CFG.write_every.load(Ordering::Relaxed).max(1);
    let size = pages * PAGE;
    let step = (pages / 8).max(1);
    let t0 = now_ms(&host);

    progress(PHASE_ALLOCATE, 0, pages);
    let addr = match mach::client::vm_allocate(&t, &me, 0, size, 1) {
        Ok(a) => a,
        Err(e) => failed(PHASE_ALLOCATE, "vm_allocate(workload)", e),
    };
    let base: *mut u64 = core::ptr::with_exposed_provenance_mut(addr as usize);

    let mut written = 0u64;
    for i in 0..pages {
        if i % step == 0 {
            progress(PHASE_WRITE, i, pages);
        }
        if i % every == 0 {
            for j in 0..WORDS {
                // SAFETY: page `i` word `j` is inside the `size`-byte region we allocated
                // (and still hold); the kernel pages it in and out behind our back, which
                // is the point.
                unsafe {
                    base.add(i as usize * WORDS + j)
                        .write_volatile(pattern(i, j as u64))
                };
            }
            written += 1;
        }
    }

    let (mut verified, mut zero_ok, mut mismatches, mut first_bad) = (0u64, 0u64, 0u64, -1i64);
    for i in 0..pages {
        if i % step == 0 {
            progress(PHASE_VERIFY, i, pages);
        }
        let was_written = i % every == 0;
        let mut bad = false;
        for j in 0..WORDS {
            // SAFETY: as in the write loop.
            let w = unsafe { base.add(i as usize * WORDS + j).read_volatile() };
            let want = if was_written { pattern(i, j as u64) } else { 0 };
            if w != want {
                bad = true;
            }
        }
        if bad {
            mismatches += 1;
            if first_bad < 0 {
                first_bad = (i * PAGE) as i64;
            }
        } else {
            verified += 1;
            if !was_written {
                zero_ok += 1;
            }
        }
    }

    progress(PHASE_DEALLOCATE, pages, pages);
    if let Err(e) = mach::client::vm_deallocate(&t, &me, addr, size) {
        failed(PHASE_DEALLOCATE, "vm_deallocate(workload)", e);
    }
    if CFG.touch_after_free.load(Ordering::Relaxed) != 0 {
        progress(PHASE_TOUCH_FREED, 0, 1);
        // SAFETY: none — this deliberately reads memory that was just deallocated, to check
        // that the kernel raises an exception and the pager reports it (fault injection).
        let _ = unsafe { base.read_volatile() };
    }
    let elapsed = now_ms(&host).saturating_sub(t0);
    let _ = report::worker_done(
        &t,
        &report_port(),
        pages as u32,
        written as u32,
        verified as u32,
        zero_ok as u32,
        mismatches as u32,
        first_bad,
        elapsed,
    );
    stop()
}
