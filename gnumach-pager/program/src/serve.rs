//! The pager task: set-up, the receive loop, and the summary.

use crate::counting::{RECEIVED, SENT};
use crate::observe::Observed;
use crate::options::{Fault, Options};
use crate::worker::{self, phase_name};
use crate::worker_defs::server::{gnumach_pager_worker_server, GnumachPagerWorkerServer};
use crate::{fail, halt, store, TAG};
use alloc::boxed::Box;
use alloc::string::String;
use core::cell::Cell;
use default_pager::{Config, Core, Error as PagerError, SpinPlatform};
use mach_trap::env::{self, task_self, Borrowed};
use mach_trap::kernel::{gnumach, mach, mach_host, mach_port, routine_name};
use mach_trap::transport::MACH_PORT_RIGHT_RECEIVE;
use mach_trap::{kprint, kprintln, trap, Explain, TrapTransport};
use mig_runtime::destroy::mach_msg_destroy_with;
use mig_runtime::wire::{msg_return as mr, msgh_bits, option, type_name, Target};
use mig_runtime::{
    stub, AlignedBuf, KernReturn, MsgBuf, PortName, ReceiveRight, SendRight, SpaceId, Transport,
};

const T: Target = Target::X86_64;
/// `VM_WIRE_ALL` (current and future mappings), what the Hurd's `wire_task_self` asks.
const VM_WIRE_ALL: i32 = 3;
/// Receive buffer: every message the pager serves has a small inline part (page data
/// comes out of line).
const BUF: usize = 8192;
/// How long one receive waits before the loop checks for a stall.
const POLL_MS: u32 = 1000;

/// Message ids the kernel sends to the pager.
mod id {
    pub const INIT: i32 = 2200;
    pub const TERMINATE: i32 = 2201;
    pub const DATA_REQUEST: i32 = 2203;
    pub const DATA_RETURN: i32 = 2208;
    pub const CREATE: i32 = 2250;
    pub const DATA_INITIALIZE: i32 = 2251;
    pub const NO_SENDERS: i32 = 0o106;
    pub const EXCEPTION_RAISE: i32 = 2400;
    // What the pager sends on control ports.
    pub const DATA_UNAVAILABLE: i32 = 2039;
    pub const DATA_ERROR: i32 = 2090;
    pub const DATA_SUPPLY: i32 = 2093;
}

fn name_of(id: i32) -> &'static str {
    match id {
        id::INIT => "memory_object_init",
        id::TERMINATE => "memory_object_terminate",
        2202 => "memory_object_copy",
        id::DATA_REQUEST => "memory_object_data_request",
        2204 => "memory_object_data_unlock",
        id::DATA_RETURN => "memory_object_data_return",
        id::CREATE => "memory_object_create",
        id::DATA_INITIALIZE => "memory_object_data_initialize",
        id::NO_SENDERS => "no_senders",
        id::EXCEPTION_RAISE => "exception_raise",
        crate::worker_defs::WORKER_PROGRESS_ID => "worker_progress",
        crate::worker_defs::WORKER_DONE_ID => "worker_done",
        crate::worker_defs::WORKER_FAILED_ID => "worker_failed",
        _ => routine_name(id).unwrap_or("?"),
    }
}

/// Milliseconds of the kernel's clock (`host_get_time64`: seconds and nanoseconds, both
/// 64-bit; `host_get_time`'s `time_value_t` has 4 bytes of padding after its 32-bit
/// microseconds, which the generated `[i64; 2]` would include).
pub fn now_ms() -> u64 {
    match HOST.with(|h| mach_host::client::host_get_time64(&TrapTransport, &Borrowed::new(h))) {
        Ok([s, ns]) => (s as u64) * 1000 + (ns as u64) / 1_000_000,
        Err(_) => 0,
    }
}

/// The unprivileged host port, fetched once.
struct HostCell(core::sync::atomic::AtomicU32);
impl HostCell {
    fn with<R>(&self, f: impl FnOnce(PortName) -> R) -> R {
        use core::sync::atomic::Ordering;
        let mut n = self.0.load(Ordering::Relaxed);
        if n == 0 {
            n = trap::mach_host_self().0;
            self.0.store(n, Ordering::Relaxed);
        }
        f(PortName(n))
    }
}
static HOST: HostCell = HostCell(core::sync::atomic::AtomicU32::new(0));

fn allocate_receive(what: &str) -> ReceiveRight {
    match mach_port::client::mach_port_allocate(
        &TrapTransport,
        &task_self(),
        MACH_PORT_RIGHT_RECEIVE,
    ) {
        Ok(n) => ReceiveRight::from_raw(SpaceId::SELF, n),
        Err(e) => fail(format_args!(
            "kernel refused mach_port_allocate({what}): {}",
            Explain(e)
        )),
    }
}

/// What the worker reported.
#[derive(Clone, Copy, Default)]
struct Done {
    pages: u32,
    written: u32,
    verified: u32,
    zero_verified: u32,
    mismatches: u32,
    first_mismatch: i64,
    elapsed_ms: u64,
}

#[derive(Default)]
struct Reports {
    phase: Cell<(u32, u32, u32)>,
    done: Cell<Option<Done>>,
    failed: Cell<Option<(u32, i32)>>,
}

impl GnumachPagerWorkerServer for Reports {
    fn worker_progress(
        &self,
        _p: PortName,
        phase: u32,
        done: u32,
        total: u32,
    ) -> Result<(), KernReturn> {
        self.phase.set((phase, done, total));
        let pct = if total == 0 {
            0
        } else {
            u64::from(done) * 100 / u64::from(total)
        };
        kprintln!(
            "{TAG} worker: {} {done}/{total} pages ({pct}%)",
            phase_name(phase)
        );
        Ok(())
    }
    #[allow(clippy::too_many_arguments)]
    fn worker_done(
        &self,
        _p: PortName,
        pages: u32,
        written: u32,
        verified: u32,
        zero_verified: u32,
        mismatches: u32,
        first_mismatch: i64,
        elapsed_ms: u64,
    ) -> Result<(), KernReturn> {
        self.done.set(Some(Done {
            pages,
            written,
            verified,
            zero_verified,
            mismatches,
            first_mismatch,
            elapsed_ms,
        }));
        Ok(())
    }
    fn worker_failed(&self, _p: PortName, phase: u32, code: i32) -> Result<(), KernReturn> {
        self.failed.set(Some((phase, code)));
        Ok(())
    }
}

/// The integers of an `exception_raise` request (exception, code, subcode), read from the
/// typed message without a stub (GNU Mach's `exc.defs` is not among our `defs/`).
fn exception_words(msg: &MsgBuf<'_>) -> [i64; 3] {
    let b = msg.bytes();
    let size = (stub::msgh_size(b) as usize).min(b.len());
    let mut out = [0i64; 3];
    let mut n = 0;
    let mut off = T.header_size() as usize;
    while off < size && n < 3 {
        let Ok(d) = mig_runtime::wire::TypeDesc::decode(T, &b[..size], off) else {
            break;
        };
        off = (off + d.wire_size).div_ceil(8) * 8;
        let len = (u64::from(d.desc.size) * u64::from(d.desc.number)).div_ceil(8) as usize;
        if !d.desc.inline {
            off += 8;
            continue;
        }
        if !type_name::is_port_any(d.desc.name) && d.desc.number == 1 && off + len <= size {
            out[n] = match d.desc.size {
                64 => stub::rd_u64(b, off) as i64,
                _ => i64::from(stub::rd_u32(b, off) as i32),
            };
            n += 1;
        }
        off = (off + len).div_ceil(8) * 8;
    }
    out
}

fn exception_name(e: i64) -> &'static str {
    match e {
        1 => "EXC_BAD_ACCESS",
        2 => "EXC_BAD_INSTRUCTION",
        3 => "EXC_ARITHMETIC",
        4 => "EXC_EMULATION",
        5 => "EXC_SOFTWARE",
        6 => "EXC_BREAKPOINT",
        _ => "exception",
    }
}

fn kern_name(code: i64) -> String {
    match KernReturn(code as i32).name() {
        Some(n) => String::from(n),
        None => alloc::format!("{code}"),
    }
}

type Pager = Core<TrapTransport, SpinPlatform>;

fn count(id: i32) -> u64 {
    RECEIVED.get(id)
}

/// Runs the pager task. Never returns: it reboots the machine at the end.
pub fn run(opts: Options) -> ! {
    let t = TrapTransport;
    let t_start = now_ms();
    let host = env::host_priv().expect("host port");
    let master = env::device_master().expect("device master port");
    let me = task_self();
    kprintln!(
        "{TAG} started: pager task; host-priv port {}, device-master port {}; worker {} MiB, writes every {} page(s); fault={:?}",
        opts.host_priv.0,
        opts.device_master.0,
        opts.mem_mib,
        opts.write_every,
        opts.fault
    );

    if opts.fault == Fault::SecondDmm {
        // Fault injection: somebody else is the default memory manager already.
        let decoy = allocate_receive("decoy DMM");
        match mach::client::vm_set_default_memory_manager(&t, &host, &decoy) {
            Ok(previous) => drop(previous),
            Err(e) => fail(format_args!(
                "kernel refused vm_set_default_memory_manager(decoy): {}",
                Explain(e)
            )),
        }
        let _ = decoy.into_raw(); // stays registered
        kprintln!("{TAG} fault injection: a decoy default memory manager is registered first");
    }

    // The worker, created suspended (before wiring: the copy of our image is then cheap).
    let report = allocate_receive("worker report port");
    let exceptions = allocate_receive("worker exception port");
    let worker = match worker::create(&opts, &report, &exceptions) {
        Ok(w) => w,
        Err(e) => fail(format_args!("cannot create the worker: {e}")),
    };

    // Wire ourselves like the Hurd's pager (wire_task_self → vm_wire_all), and make this
    // thread VM-privileged (the Hurd's wire_thread → thread_wire).
    if let Err(e) = gnumach::client::vm_wire_all(&t, &host, &me, VM_WIRE_ALL) {
        fail(format_args!(
            "kernel refused vm_wire_all(VM_WIRE_ALL): {}",
            Explain(e)
        ));
    }
    let thread = SendRight::from_raw(SpaceId::SELF, trap::mach_thread_self());
    if let Err(e) = mach_host::client::thread_wire(&t, &host, &thread, 1) {
        fail(format_args!("kernel refused thread_wire: {}", Explain(e)));
    }
    drop(thread);
    kprintln!("{TAG} wired: vm_wire_all(VM_WIRE_ALL), thread_wire(TRUE)");

    let (store, what) = match store::open(&master, opts.store, opts.store_limit_mib) {
        Ok(s) => s,
        Err(e) => fail(format_args!("paging store: {e}")),
    };
    kprintln!("{TAG} paging store: {what}");

    let task = match me.try_clone() {
        Ok(s) => s,
        Err(e) => fail(format_args!(
            "kernel refused mach_port_mod_refs(task self, +1): {}",
            mach_trap::Code(e)
        )),
    };
    let cfg = Config {
        object_threads: 1,
        ..Config::default()
    };
    let core: Box<Pager> = Box::new(Core::new(TrapTransport, task, cfg));
    if let Err(e) = core.add_store(store) {
        fail(format_args!("paging store refused by the pager: {e}"));
    }
    let free_before = core.stats().paging_free;
    match core.register(&host) {
        Ok(()) => {}
        Err(PagerError::AlreadyRegistered) => fail(format_args!(
            "a default memory manager is already registered (vm_set_default_memory_manager \
             returned one); refusing to replace it"
        )),
        Err(e) => fail(format_args!(
            "cannot register as the default memory manager: {e}"
        )),
    }
    let t_registered = now_ms();
    kprintln!(
        "{TAG} registered as the default memory manager (port {}); paging space {} MiB free",
        core.dmm_port().0,
        free_before >> 20
    );

    // One thread serves everything: the DMM port, every object port (the core moves them
    // into its object set), the worker's report and exception ports.
    let set = core.object_set();
    for (p, what) in [
        (core.dmm_port(), "DMM port"),
        (report.name(), "report port"),
        (exceptions.name(), "exception port"),
    ] {
        if let Err(e) = mach_port::client::mach_port_move_member(&t, &me, p, set) {
            fail(format_args!(
                "kernel refused mach_port_move_member({what}): {}",
                Explain(e)
            ));
        }
    }

    if let Err(e) = mach::client::thread_resume(&t, &worker.thread) {
        fail(format_args!(
            "kernel refused thread_resume(worker): {}",
            Explain(e)
        ));
    }
    let t_resumed = now_ms();
    kprintln!("{TAG} worker resumed: {} pages", worker.pages);

    let reports = Reports::default();
    let observed = Observed::default();
    let done = serve_loop(&core, &opts, &reports, &observed, &report, &exceptions, set);
    let t_done = now_ms();

    // The workload is over: terminate the worker, then wait for its objects to go.
    if let Err(e) = mach::client::task_terminate(&t, &worker.task) {
        fail(format_args!(
            "kernel refused task_terminate(worker): {}",
            Explain(e)
        ));
    }
    let drained = drain(&core, &opts, &observed, set);
    let t_end = now_ms();

    summary(
        &core,
        &opts,
        &done,
        &observed,
        drained,
        free_before,
        [t_start, t_registered, t_resumed, t_done, t_end],
    );
    halt()
}

/// Receives and handles messages until the worker reports `done`.
fn serve_loop(
    core: &Pager,
    opts: &Options,
    reports: &Reports,
    observed: &Observed,
    report: &ReceiveRight,
    exceptions: &ReceiveRight,
    set: PortName,
) -> Done {
    let mut req = Box::new(AlignedBuf::<BUF>::new());
    let mut rep = Box::new(AlignedBuf::<BUF>::new());
    // Seconds in a row without any message (each receive waits POLL_MS).
    let mut idle = 0u64;
    let mut traced = 0u64;
    loop {
        let mut rq = MsgBuf::new(&mut req.0);
        let r = TrapTransport.mach_msg(
            &mut rq,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            BUF as u32,
            set,
            POLL_MS,
            PortName::NULL,
        );
        if r.0 as u32 == mr::RCV_TIMED_OUT {
            idle += 1;
            if idle >= opts.stall_secs {
                let (ph, d, tot) = reports.phase.get();
                fail(format_args!(
                    "stalled: no message for {} s; worker in phase {} at {d}/{tot} pages; \
                     pager counts: create={} data_request={} data_return={} data_supply={} \
                     data_unavailable={}",
                    idle,
                    phase_name(ph),
                    count(id::CREATE),
                    count(id::DATA_REQUEST),
                    count(id::DATA_RETURN),
                    SENT.get(id::DATA_SUPPLY),
                    SENT.get(id::DATA_UNAVAILABLE)
                ));
            }
            continue;
        }
        if r.0 != 0 {
            fail(format_args!(
                "mach_msg receive on the pager's port set failed: {r}"
            ));
        }
        idle = 0;
        let msg_id = stub::msgh_id(rq.bytes(), T);
        let local = stub::msgh_local(rq.bytes(), T);
        RECEIVED.bump(msg_id);
        if traced < opts.trace {
            traced += 1;
            kprintln!(
                "{TAG} trace: {} (id {msg_id}) on port {} seqno {}",
                name_of(msg_id),
                local.0,
                stub::msgh_seqno(rq.bytes(), T)
            );
        }

        if local == exceptions.name() {
            let [exc, code, sub] = exception_words(&rq);
            let (ph, d, tot) = reports.phase.get();
            let store_full = SENT.get(id::DATA_ERROR) > 0;
            fail(format_args!(
                "the worker took an exception: {} (code {} = {}, address {sub:#x}) in phase {} at \
                 {d}/{tot} pages{}",
                exception_name(exc),
                code,
                kern_name(code),
                phase_name(ph),
                if ph == worker::PHASE_TOUCH_FREED {
                    String::from(" — it touched memory it had deallocated")
                } else if store_full {
                    alloc::format!(
                        " — the pager answered data_error {} times (paging store full: {} of {} MiB free)",
                        SENT.get(id::DATA_ERROR),
                        core.stats().paging_free >> 20,
                        core.stats().paging_total >> 20
                    )
                } else {
                    String::new()
                }
            ));
        }

        let mut rp = MsgBuf::new(&mut rep.0);
        if local == report.name() {
            gnumach_pager_worker_server(reports, &mut rq, &mut rp);
            if let Some((phase, code)) = reports.failed.get() {
                fail(format_args!(
                    "the worker failed in phase {} (kern_return {})",
                    phase_name(phase),
                    kern_name(i64::from(code))
                ));
            }
            if let Some(d) = reports.done.get() {
                return d;
            }
            continue;
        }

        observed.look(&rq, opts.write_every);
        if msg_id == id::CREATE {
            let (ph, d, tot) = reports.phase.get();
            kprintln!(
                "{TAG} memory_object_create: an object of {} MiB (page size {}) gets its pager, \
                 while the worker is in phase {} at {d}/{tot} pages",
                observed.create_size.get() >> 20,
                observed.create_page_size.get(),
                phase_name(ph)
            );
        }
        core.demux(&mut rq, &mut rp);
        reply(&mut rq, &mut rp);
        if msg_id == id::DATA_RETURN {
            check_store(core);
        }
    }
}

/// Sends the reply the demux prepared, as `mach_msg_server` does.
fn reply(rq: &mut MsgBuf<'_>, rp: &mut MsgBuf<'_>) {
    let t = TrapTransport;
    let rc = stub::retcode(rp.bytes(), T);
    if rc == KernReturn::MIG_NO_REPLY {
        return;
    }
    if rc != KernReturn::KERN_SUCCESS {
        // Keep the reply right for the error reply; release everything else.
        stub::wr_u32(rq.bytes_mut(), 8, 0);
        stub::wr_u32(rq.bytes_mut(), 12, 0);
        mach_msg_destroy_with(rq, T, &t);
    }
    if stub::msgh_remote(rp.bytes()).is_null() {
        if stub::msgh_bits(rp.bytes()) & msgh_bits::COMPLEX != 0 {
            mach_msg_destroy_with(rp, T, &t);
        }
        return;
    }
    let size = stub::msgh_size(rp.bytes());
    let r = t.mach_msg(
        rp,
        option::SEND_MSG | option::SEND_TIMEOUT,
        size,
        0,
        PortName::NULL,
        0,
        PortName::NULL,
    );
    if r.0 != 0 {
        mach_msg_destroy_with(rp, T, &t);
    }
}

/// A full paging store is fatal for this demo: say so as soon as a page could not be
/// stored.
fn check_store(core: &Pager) {
    let s = core.stats();
    if s.no_space > 0 || s.pages_lost > 0 {
        fail(format_args!(
            "backing store full: {} page(s) could not be stored ({} of {} MiB free, {} pages out so far)",
            s.pages_lost.max(s.no_space),
            s.paging_free >> 20,
            s.paging_total >> 20,
            s.pages_out
        ));
    }
}

/// After the worker is terminated: serve until every object is gone (terminate and
/// no-senders handled), or 10 s pass without a message. Returns whether all went.
fn drain(core: &Pager, opts: &Options, observed: &Observed, set: PortName) -> bool {
    let mut req = Box::new(AlignedBuf::<BUF>::new());
    let mut rep = Box::new(AlignedBuf::<BUF>::new());
    let mut idle = 0;
    while core.stats().objects > 0 && idle < 10 {
        let mut rq = MsgBuf::new(&mut req.0);
        let r = TrapTransport.mach_msg(
            &mut rq,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            BUF as u32,
            set,
            POLL_MS,
            PortName::NULL,
        );
        if r.0 as u32 == mr::RCV_TIMED_OUT {
            idle += 1;
            continue;
        }
        if r.0 != 0 {
            fail(format_args!("mach_msg receive while draining failed: {r}"));
        }
        idle = 0;
        RECEIVED.bump(stub::msgh_id(rq.bytes(), T));
        observed.look(&rq, opts.write_every);
        let mut rp = MsgBuf::new(&mut rep.0);
        core.demux(&mut rq, &mut rp);
        reply(&mut rq, &mut rp);
    }
    core.stats().objects == 0
}

fn summary(
    core: &Pager,
    opts: &Options,
    d: &Done,
    o: &Observed,
    drained: bool,
    free_before: u64,
    times: [u64; 5],
) {
    let [t_start, t_registered, t_resumed, t_done, t_end] = times;
    let s = core.stats();
    let protocol: u64 = [
        id::CREATE,
        id::INIT,
        id::DATA_REQUEST,
        id::DATA_RETURN,
        id::DATA_INITIALIZE,
        id::TERMINATE,
        id::NO_SENDERS,
    ]
    .iter()
    .map(|&i| count(i))
    .sum::<u64>()
        + SENT.get(id::DATA_SUPPLY)
        + SENT.get(id::DATA_UNAVAILABLE)
        + SENT.get(id::DATA_ERROR);
    let run_ms = t_done.saturating_sub(t_resumed).max(1);
    let ok = d.mismatches == 0
        && d.verified == d.pages
        && d.pages as u64 == opts.mem_mib << 8
        && drained;

    kprintln!(
        "{TAG} worker done: {} pages, {} written, {} verified ({} never-written pages read as zeros), {} mismatches{}, {} ms in the worker",
        d.pages,
        d.written,
        d.verified,
        d.zero_verified,
        d.mismatches,
        if d.first_mismatch >= 0 { alloc::format!(" (first at offset {:#x})", d.first_mismatch) } else { String::new() },
        d.elapsed_ms
    );
    kprintln!("{TAG} core: {:?}", s.messages);
    kprintln!(
        "{TAG} core: data_supply={} data_unavailable={} data_error={} pages_in={} pages_out={} pages_unavailable={} rejected={} seqno_gaps={} wait_seqno={} objects_created={} objects_freed={} objects_live={}",
        s.data_supply, s.data_unavailable, s.data_error, s.pages_in, s.pages_out, s.pages_unavailable, s.rejected, s.seqno_gaps, s.wait_seqno, s.objects_created, s.objects_freed, s.objects
    );
    kprintln!(
        "{TAG} KERNEL data_request: read={} write={} not_one_page={} for_written_pages={} \
         for_unwritten_pages_below_32MiB={} for_unwritten_pages_above_32MiB={}; data_return: \
         messages={} pages={} max_pages_per_message={} dirty={} kernel_copy={} zero_pages={} \
         unwritten_pages={}",
        o.request_read.get(),
        o.request_write.get(),
        o.request_not_one_page.get(),
        o.request_written.get(),
        o.request_unwritten_below_32m.get(),
        o.request_unwritten_above_32m.get(),
        o.return_msgs.get(),
        o.return_pages.get(),
        o.return_max_pages.get(),
        o.return_dirty.get(),
        o.return_kernel_copy.get(),
        o.return_zero_pages.get(),
        o.return_unwritten_pages.get()
    );
    for r in core.rejections().iter().take(8) {
        kprintln!("{TAG} rejection: {r}");
    }
    kprint!("{TAG} CALLS");
    for (i, n) in SENT.entries() {
        kprint!(" {}={n}", name_of(i));
    }
    kprintln!();
    kprintln!(
        "{TAG} SUMMARY create={} data_request={} data_return={} data_initialize={} init={} terminate={} no_senders={} data_supply={} data_unavailable={} data_error={} pages={} written={} verified={} zero_verified={} mismatches={} objects_live={} paging_free_before={} paging_free_after={} paging_total={} protocol_messages={} messages_sent={} messages_received={} setup_ms={} run_ms={} drain_ms={} msgs_per_s={}",
        count(id::CREATE),
        count(id::DATA_REQUEST),
        count(id::DATA_RETURN),
        count(id::DATA_INITIALIZE),
        count(id::INIT),
        count(id::TERMINATE),
        count(id::NO_SENDERS),
        SENT.get(id::DATA_SUPPLY),
        SENT.get(id::DATA_UNAVAILABLE),
        SENT.get(id::DATA_ERROR),
        d.pages,
        d.written,
        d.verified,
        d.zero_verified,
        d.mismatches,
        s.objects,
        free_before,
        s.paging_free,
        s.paging_total,
        protocol,
        SENT.total(),
        RECEIVED.total(),
        t_registered.saturating_sub(t_start),
        run_ms,
        t_end.saturating_sub(t_done),
        protocol * 1000 / run_ms
    );
    if ok {
        kprintln!("{TAG} RESULT PASS");
    } else {
        kprintln!(
            "{TAG} RESULT FAIL {}",
            if d.mismatches > 0 {
                "pages read back differ from what was written"
            } else if d.verified != d.pages {
                "not every page was verified"
            } else {
                "objects were not all terminated after the worker ended"
            }
        );
    }
}
