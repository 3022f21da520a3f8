//! A scripted kernel for the pager's tests, over the runtime's userspace IPC.
//!
//! The kernel is the IPC's kernel task: it holds the receive rights of the host-privileged
//! port, of every task port, and of each object's control and name ports. It sends the
//! kernel → pager messages with the generated kernel-side clients
//! (`default_pager::kernel_side`), and serves the pager's calls with the generated `mach` and
//! `mach_port` servers on two threads, recording every call made on a control port.
#![allow(dead_code)]

use default_pager::kernel_side::mach::server::{mach_server, MachServer};
use default_pager::kernel_side::mach_port::server::{mach_port_server, MachPortServer};
use default_pager::kernel_side::{memory_object as mo, memory_object_default as mod_};
use default_pager::{
    BackingStore, Config, Error, Hooks, MsgKind, PagerHandle, Rejection, StoreError,
};
use mig_runtime::build::MsgBuilder;
use mig_runtime::ipc::{Kernel, Task};
use mig_runtime::rights::RightKind;
use mig_runtime::server::{mach_msg_server_threads, StopHandle};
use mig_runtime::wire::{msgh_bits, option, type_name as tn, Target};
use mig_runtime::{
    KernReturn, MsgBuf, OolBuffer, PortName, ReceiveRight, ReceivedRight, SendOnceRight, SendRight,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const PS: usize = 4096;
pub const PSU: u64 = PS as u64;
/// How long any wait in a test may take before it fails (never a hang).
pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const VM_PROT_READ: i32 = 1;

/// A call the pager made on a control port.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Supply {
        data: Vec<u8>,
        precious: i32,
        lock: i32,
    },
    Unavailable {
        size: u64,
    },
    Error {
        size: u64,
        code: i32,
    },
    Ready {
        may_cache: i32,
        strategy: i32,
    },
    ChangeAttributes,
    LockRequest,
    Destroy,
}

/// One recorded call: the control port (the kernel's name), the offset, what.
#[derive(Clone, Debug, PartialEq)]
pub struct KCall {
    pub ctl: PortName,
    pub offset: u64,
    pub call: Call,
}

pub struct KState {
    kt: Task,
    host: PortName,
    dmm: Mutex<Option<SendRight>>,
    tasks: Mutex<HashMap<u32, Task>>,
    calls: Mutex<Vec<KCall>>,
    cv: Condvar,
    dmm_calls: AtomicU64,
    /// While closed, `mach_port_get_receive_status` (which the pager calls while it sets up
    /// an object from `memory_object_create`) waits: tests queue messages on a new object
    /// before the pager has finished accepting it.
    gate: Mutex<Gate>,
    gate_cv: Condvar,
}

#[derive(Default)]
struct Gate {
    closed: bool,
    /// Calls waiting at the gate.
    waiting: u32,
}

impl KState {
    fn record(&self, ctl: PortName, offset: u64, call: Call) -> Result<(), KernReturn> {
        self.calls.lock().unwrap().push(KCall { ctl, offset, call });
        self.cv.notify_all();
        Ok(())
    }

    fn task(&self, port: PortName) -> Result<Task, KernReturn> {
        self.tasks
            .lock()
            .unwrap()
            .get(&port.0)
            .cloned()
            .ok_or(KernReturn::KERN_INVALID_TASK)
    }
}

fn right_kind(n: u32) -> Result<RightKind, KernReturn> {
    Ok(match n {
        0 => RightKind::Send,
        1 => RightKind::Receive,
        2 => RightKind::SendOnce,
        3 => RightKind::PortSet,
        4 => RightKind::DeadName,
        _ => return Err(KernReturn::KERN_INVALID_VALUE),
    })
}

impl MachServer for KState {
    fn vm_set_default_memory_manager(
        &self,
        host_priv: PortName,
        default_manager: SendRight,
    ) -> Result<SendRight, KernReturn> {
        self.dmm_calls.fetch_add(1, Ordering::Relaxed);
        if host_priv != self.host {
            return Err(KernReturn::KERN_INVALID_HOST);
        }
        let mut g = self.dmm.lock().unwrap();
        // GNU Mach: a non-null port replaces the manager and the old one is returned; a
        // null port only asks. The reply moves a send right (a KernelServer stub).
        if default_manager.is_valid() {
            Ok(g.replace(default_manager).unwrap_or_else(SendRight::null))
        } else {
            let _ = default_manager.into_raw();
            match g.as_ref() {
                Some(s) => Ok(s.try_clone()?),
                None => Ok(SendRight::null()),
            }
        }
    }
    fn memory_object_data_supply(
        &self,
        ctl: PortName,
        offset: u64,
        data: OolBuffer,
        lock_value: i32,
        precious: i32,
        _reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        self.record(
            ctl,
            offset,
            Call::Supply {
                data: data.to_vec(),
                precious,
                lock: lock_value,
            },
        )
    }
    fn memory_object_data_unavailable(
        &self,
        ctl: PortName,
        offset: u64,
        size: u64,
    ) -> Result<(), KernReturn> {
        self.record(ctl, offset, Call::Unavailable { size })
    }
    fn memory_object_data_error(
        &self,
        ctl: PortName,
        offset: u64,
        size: u64,
        code: i32,
    ) -> Result<(), KernReturn> {
        self.record(ctl, offset, Call::Error { size, code })
    }
    fn memory_object_ready(
        &self,
        ctl: PortName,
        may_cache: i32,
        strategy: i32,
    ) -> Result<(), KernReturn> {
        self.record(
            ctl,
            0,
            Call::Ready {
                may_cache,
                strategy,
            },
        )
    }
    fn memory_object_change_attributes(
        &self,
        ctl: PortName,
        _may_cache: i32,
        _copy_strategy: i32,
        _reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        self.record(ctl, 0, Call::ChangeAttributes)
    }
    fn memory_object_lock_request(
        &self,
        ctl: PortName,
        offset: u64,
        _size: u64,
        _should_return: i32,
        _should_flush: i32,
        _lock_value: i32,
        _reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        self.record(ctl, offset, Call::LockRequest)
    }
    fn memory_object_destroy(&self, ctl: PortName, _reason: i32) -> Result<(), KernReturn> {
        self.record(ctl, 0, Call::Destroy)
    }
}

impl MachPortServer for KState {
    fn mach_port_allocate(&self, task: PortName, right: u32) -> Result<PortName, KernReturn> {
        self.task(task)?.port_allocate(right_kind(right)?)
    }
    fn mach_port_destroy(&self, task: PortName, name: PortName) -> Result<(), KernReturn> {
        self.task(task)?.port_destroy(name)
    }
    fn mach_port_deallocate(&self, task: PortName, name: PortName) -> Result<(), KernReturn> {
        self.task(task)?.port_deallocate(name)
    }
    fn mach_port_get_refs(
        &self,
        task: PortName,
        name: PortName,
        right: u32,
    ) -> Result<u32, KernReturn> {
        self.task(task)?.port_get_refs(name, right_kind(right)?)
    }
    fn mach_port_mod_refs(
        &self,
        task: PortName,
        name: PortName,
        right: u32,
        delta: i32,
    ) -> Result<(), KernReturn> {
        self.task(task)?
            .port_mod_refs(name, right_kind(right)?, delta)
    }
    fn mach_port_move_member(
        &self,
        task: PortName,
        member: PortName,
        after: PortName,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_move_member(member, after)
    }
    fn mach_port_get_receive_status(
        &self,
        task: PortName,
        name: PortName,
    ) -> Result<[i32; 9], KernReturn> {
        {
            let mut g = self.gate.lock().unwrap();
            g.waiting += 1;
            self.gate_cv.notify_all();
            while g.closed {
                g = self.gate_cv.wait(g).unwrap();
            }
            g.waiting -= 1;
        }
        let s = self.task(task)?.port_get_receive_status(name)?;
        Ok([
            s.pset.0 as i32,
            s.seqno as i32,
            s.mscount as i32,
            s.qlimit as i32,
            s.msgcount as i32,
            s.sorights as i32,
            s.srights as i32,
            s.pdrequest as i32,
            s.nsrequest as i32,
        ])
    }
    fn mach_port_request_notification(
        &self,
        task: PortName,
        name: PortName,
        id: i32,
        sync: u32,
        notify: SendOnceRight,
    ) -> Result<SendOnceRight, KernReturn> {
        let t = self.task(task)?;
        // The send-once right arrived in the kernel's space; the request names it in the
        // task's space, so hand it back there first.
        let in_task = if notify.is_valid() {
            let n = self
                .kt
                .transfer_right(notify.name(), tn::MOVE_SEND_ONCE, &t)?;
            let _ = notify.into_raw();
            n
        } else {
            let _ = notify.into_raw();
            PortName::NULL
        };
        let prev = t.port_request_notification(name, id, sync, in_task, tn::MOVE_SEND_ONCE)?;
        if prev.is_valid() {
            let k = t.transfer_right(prev, tn::MOVE_SEND_ONCE, &self.kt)?;
            Ok(SendOnceRight::from_raw(self.kt.space_id(), k))
        } else {
            Ok(SendOnceRight::null())
        }
    }
}

/// The kernel's demuxer: `mach` then `mach_port` (KernelServer stubs: replies move the
/// rights the kernel holds, as GNU Mach's own stubs do).
fn kernel_demux(st: &KState, req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>) -> bool {
    mach_server(st, req, rep) || mach_port_server(st, req, rep)
}

/// An object as the kernel holds it: a send right to the object port, and the receive
/// rights of its control and name ports (all in the kernel's space).
pub struct KObj {
    pub obj: SendRight,
    pub ctl: ReceiveRight,
    pub name: ReceiveRight,
}

impl KObj {
    pub fn ctl_name(&self) -> PortName {
        self.ctl.name()
    }
}

/// Events the tests observe through the pager's hooks.
#[derive(Default)]
pub struct Recorder {
    pub admitted: Mutex<Vec<(u64, u32, MsgKind)>>,
    pub rejected: Mutex<Vec<Rejection>>,
    pub created: Mutex<Vec<u64>>,
    pub freed: Mutex<Vec<u64>>,
    /// A shared event log (admissions and store events interleaved).
    pub events: Mutex<Vec<String>>,
}

impl Hooks for Recorder {
    fn admitted(&self, object: u64, seqno: u32, kind: MsgKind) {
        self.admitted.lock().unwrap().push((object, seqno, kind));
        self.events
            .lock()
            .unwrap()
            .push(format!("admit {object} {seqno} {}", kind.name()));
    }
    fn rejected(&self, r: &Rejection) {
        self.rejected.lock().unwrap().push(*r);
    }
    fn object_created(&self, object: u64, _internal: bool, _size: u64) {
        self.created.lock().unwrap().push(object);
    }
    fn object_freed(&self, object: u64) {
        self.freed.lock().unwrap().push(object);
    }
}

impl Recorder {
    pub fn reasons(&self) -> Vec<default_pager::Reason> {
        self.rejected
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.reason)
            .collect()
    }
}

pub struct Kern {
    pub k: Kernel,
    pub kt: Task,
    pub host: PortName,
    pub set: PortName,
    pub state: Arc<KState>,
    stop: StopHandle,
    thread: Option<JoinHandle<KernReturn>>,
}

impl Kern {
    /// A kernel with a host-privileged port and its server threads running.
    pub fn new() -> Kern {
        let k = Kernel::new();
        let kt = k.kernel_task().clone();
        let host = kt.port_allocate(RightKind::Receive).unwrap();
        let set = kt.port_allocate(RightKind::PortSet).unwrap();
        kt.port_move_member(host, set).unwrap();
        let state = Arc::new(KState {
            kt: kt.clone(),
            host,
            dmm: Mutex::new(None),
            tasks: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            dmm_calls: AtomicU64::new(0),
            gate: Mutex::new(Gate::default()),
            gate_cv: Condvar::new(),
        });
        let stop = StopHandle::new();
        let (st, s2, kt2) = (Arc::clone(&state), stop.clone(), kt.clone());
        let thread = std::thread::spawn(move || {
            let d = |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| kernel_demux(&st, req, rep);
            mach_msg_server_threads(&d, 0, set, &kt2, 2, &s2)
        });
        Kern {
            k,
            kt,
            host,
            set,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the gate: the pager's next object setups stop in
    /// `mach_port_get_receive_status` until [`Kern::open_gate`].
    pub fn close_gate(&self) {
        self.state.gate.lock().unwrap().closed = true;
    }

    /// Waits until `n` object setups are stopped at the gate.
    pub fn wait_at_gate(&self, n: u32) {
        let deadline = Instant::now() + TIMEOUT;
        let mut g = self.state.gate.lock().unwrap();
        while g.waiting < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {n} setups at the gate"
            );
            g = self
                .state
                .gate_cv
                .wait_timeout(g, deadline - now)
                .unwrap()
                .0;
        }
    }

    pub fn open_gate(&self) {
        self.state.gate.lock().unwrap().closed = false;
        self.state.gate_cv.notify_all();
    }

    /// A new task whose task port the kernel serves (`mach_port_*`).
    pub fn new_task(&self) -> Task {
        let t = self.k.new_task();
        let port = self.k.task_port_name(&t).unwrap();
        self.state.tasks.lock().unwrap().insert(port.0, t.clone());
        self.kt.port_move_member(port, self.set).unwrap();
        t
    }

    /// Starts a pager in a new task.
    pub fn start_pager(
        &self,
        store: impl BackingStore + 'static,
        cfg: Config,
    ) -> (Task, Result<PagerHandle, Error>) {
        let pt = self.new_task();
        let task_self = SendRight::from_raw(pt.space_id(), pt.task_self().unwrap());
        let host = SendRight::from_raw(
            pt.space_id(),
            self.kt
                .transfer_right(self.host, tn::MAKE_SEND, &pt)
                .unwrap(),
        );
        let r = default_pager::Pager::start(pt.clone(), task_self, host, store, cfg);
        (pt, r)
    }

    /// Starts a pager that must start, with `hooks` recording.
    pub fn pager(
        &self,
        store: impl BackingStore + 'static,
        mut cfg: Config,
    ) -> (Task, PagerHandle, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        if cfg.hooks.is_none() {
            cfg.hooks = Some(rec.clone());
        }
        let (t, p) = self.start_pager(store, cfg);
        (t, p.expect("the pager starts"), rec)
    }

    /// A send right a generated stub decoded from a received message, checked to belong
    /// to the kernel task's space (received buffers record the receiving space).
    pub fn reown(&self, r: SendRight) -> SendRight {
        assert_eq!(
            r.space(),
            self.kt.space_id(),
            "decoded right in the wrong space"
        );
        r
    }

    /// The kernel's send right to the registered default memory manager.
    pub fn dmm(&self) -> Option<PortName> {
        self.state.dmm.lock().unwrap().as_ref().map(|s| s.name())
    }

    /// A new reference to the kernel's send right to the current default memory manager.
    pub fn state_dmm_clone(&self) -> SendRight {
        self.state
            .dmm
            .lock()
            .unwrap()
            .as_ref()
            .expect("a default memory manager is registered")
            .try_clone()
            .unwrap()
    }

    /// `memory_object_create` of a new internal object of `size` bytes.
    pub fn create(&self, size: u64) -> KObj {
        self.create_with_page_size(size, PSU).unwrap()
    }

    pub fn create_with_page_size(
        &self,
        size: u64,
        page_size: u64,
    ) -> Result<KObj, mig_runtime::RpcError> {
        let kt = &self.kt;
        let port = kt.allocate_receive().unwrap();
        let obj = port.make_send().unwrap();
        let ctl = kt.allocate_receive().unwrap();
        kt.port_move_member(ctl.name(), self.set).unwrap();
        let name = kt.allocate_receive().unwrap();
        let dmm = self.state_dmm_clone();
        mod_::client::memory_object_create(kt, dmm, port, size, &ctl, &name, page_size)?;
        Ok(KObj { obj, ctl, name })
    }

    pub fn data_request(&self, o: &KObj, offset: u64, len: u64) {
        mo::client::memory_object_data_request(&self.kt, &o.obj, &o.ctl, offset, len, VM_PROT_READ)
            .unwrap();
    }

    /// A data_request with the access a write fault asks for (read + write).
    pub fn data_request_rw(&self, o: &KObj, offset: u64, len: u64) {
        mo::client::memory_object_data_request(&self.kt, &o.obj, &o.ctl, offset, len, 3).unwrap();
    }

    pub fn data_return(&self, o: &KObj, offset: u64, data: &[u8]) {
        mo::client::memory_object_data_return(&self.kt, &o.obj, &o.ctl, offset, data, 1, 0)
            .unwrap();
    }

    pub fn data_initialize(&self, o: &KObj, offset: u64, data: &[u8]) {
        mod_::client::memory_object_data_initialize(&self.kt, &o.obj, &o.ctl, offset, data)
            .unwrap();
    }

    /// `memory_object_terminate`: the kernel's send right, the control and name receive
    /// rights go to the pager.
    pub fn terminate(&self, o: KObj) {
        mo::client::memory_object_terminate(&self.kt, o.obj, o.ctl, o.name).unwrap();
    }

    /// Sends raw bytes to `dest` (a send right in the kernel's space).
    pub fn send_raw(
        &self,
        dest: PortName,
        build: impl FnOnce(MsgBuilder) -> MsgBuilder,
        id: i32,
    ) -> KernReturn {
        let m = build(MsgBuilder::new(Target::X86_64).header(
            msgh_bits::make(tn::COPY_SEND, 0),
            dest,
            PortName::NULL,
            id,
        ))
        .finish();
        let mut b = MsgBuf::from_bytes(&m);
        self.kt.mach_msg(
            &mut b,
            option::SEND_MSG,
            m.len() as u32,
            0,
            PortName::NULL,
            0,
            PortName::NULL,
        )
    }

    /// Waits for, removes and returns the first recorded call matching `pred`.
    pub fn take_call(&self, what: &str, pred: impl Fn(&KCall) -> bool) -> KCall {
        let deadline = Instant::now() + TIMEOUT;
        let mut g = self.state.calls.lock().unwrap();
        loop {
            if let Some(i) = g.iter().position(&pred) {
                return g.remove(i);
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; calls so far: {:?}",
                *g
            );
            g = self.state.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// The answer to a request for `offset` on `o`.
    pub fn reply_for(&self, o: &KObj, offset: u64) -> Call {
        let ctl = o.ctl_name();
        self.take_call(&format!("an answer at {offset:#x} on {ctl:?}"), |c| {
            c.ctl == ctl && c.offset == offset
        })
        .call
    }

    /// Asserts no call matching `pred` arrives within `wait`.
    pub fn expect_no_call(&self, wait: Duration, pred: impl Fn(&KCall) -> bool) {
        std::thread::sleep(wait);
        let g = self.state.calls.lock().unwrap();
        assert!(!g.iter().any(pred), "unexpected call among {:?}", *g);
    }

    /// Every recorded call not taken yet.
    pub fn pending_calls(&self) -> Vec<KCall> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Data returned then requested comes back as a supply with exactly these bytes.
    pub fn expect_supply(&self, o: &KObj, offset: u64, want: &[u8]) {
        match self.reply_for(o, offset) {
            Call::Supply {
                data,
                precious,
                lock,
            } => {
                assert_eq!((precious, lock), (0, 0));
                assert!(
                    data == want,
                    "supplied page at {offset:#x} differs from what was returned"
                );
            }
            other => panic!("expected data_supply at {offset:#x}, got {other:?}"),
        }
    }

    pub fn expect_unavailable(&self, o: &KObj, offset: u64) {
        assert_eq!(
            self.reply_for(o, offset),
            Call::Unavailable { size: PSU },
            "at {offset:#x}"
        );
    }

    pub fn expect_error(&self, o: &KObj, offset: u64) -> (u64, i32) {
        match self.reply_for(o, offset) {
            Call::Error { size, code } => (size, code),
            other => panic!("expected data_error at {offset:#x}, got {other:?}"),
        }
    }
}

impl Drop for Kern {
    fn drop(&mut self) {
        self.open_gate();
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `cond` until it holds (or fails the test after [`TIMEOUT`]).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the pager's block maps hold `n` pages in all (a write bumps
/// `Stats::pages_out` just before it records the page in the map).
pub fn wait_stored(p: &PagerHandle, n: usize) {
    wait_until("the block maps", || {
        let c = p.core();
        c.object_ports()
            .iter()
            .map(|(_, port)| c.object_pages(*port).map_or(0, |v| v.len()))
            .sum::<usize>()
            == n
    });
}

/// A page of recognisable bytes for (object, page, round).
pub fn pattern(seed: u64, page: u64, round: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(page.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(round.wrapping_mul(0x94d0_49bb_1331_11eb))
        | 1;
    (0..PS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn cfg(threads: usize) -> Config {
    Config {
        object_threads: threads,
        ..Config::default()
    }
}

/// A store wrapper for fault injection: delays, failing writes, an event log.
pub struct TestStore<S> {
    pub inner: S,
    pub delay_us: u64,
    pub fail_writes: Arc<std::sync::atomic::AtomicBool>,
    pub log: Option<Arc<Recorder>>,
    seed: AtomicU64,
}

impl<S> TestStore<S> {
    pub fn new(inner: S) -> Self {
        TestStore {
            inner,
            delay_us: 0,
            fail_writes: Arc::default(),
            log: None,
            seed: AtomicU64::new(0x1234_5678),
        }
    }
    pub fn with_delay(mut self, max_us: u64) -> Self {
        self.delay_us = max_us;
        self
    }
    pub fn with_log(mut self, log: Arc<Recorder>) -> Self {
        self.log = Some(log);
        self
    }
    fn sleep(&self) {
        if self.delay_us > 0 {
            let mut x = self.seed.fetch_add(0x9e37_79b9, Ordering::Relaxed);
            x ^= x >> 13;
            x = x.wrapping_mul(0x5bd1_e995);
            std::thread::sleep(Duration::from_micros(x % self.delay_us));
        }
    }
}

impl<S: BackingStore> BackingStore for TestStore<S> {
    fn blocks(&self) -> u64 {
        self.inner.blocks()
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.sleep();
        self.inner.read_block(block, buf)
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        self.sleep();
        if self.fail_writes.load(Ordering::Relaxed) {
            return Err(StoreError::Io("injected write failure".into()));
        }
        let r = self.inner.write_block(block, data);
        if let Some(l) = &self.log {
            l.events.lock().unwrap().push(format!("write done {block}"));
        }
        r
    }
}

/// A deterministic pseudo-random generator (splitmix64) for test contents and choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// One page of random bytes, now and then one of the edge cases a pager could be
    /// tempted to treat specially (all zeros, all ones, a single bit set).
    pub fn page(&mut self) -> Vec<u8> {
        match self.below(8) {
            0 => vec![0u8; PS],
            1 => vec![0xffu8; PS],
            2 => {
                let mut v = vec![0u8; PS];
                let bit = self.below(PSU * 8);
                v[(bit / 8) as usize] = 1 << (bit % 8);
                v
            }
            _ => (0..PS / 8)
                .flat_map(|_| self.next().to_le_bytes())
                .collect(),
        }
    }
}

/// FNV-1a over a page: what the tests compare (with the bytes themselves).
pub fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A task holding a send right to the pager's `default_pager` port (the privileged port:
/// what an administrator gets from the pager's task).
pub fn admin_task(k: &Kern, pager_task: &Task, port: PortName) -> (Task, SendRight) {
    let a = k.k.new_task();
    let n = pager_task
        .transfer_right(port, tn::MAKE_SEND, &a)
        .expect("a send right to the default pager port");
    let s = SendRight::from_raw(a.space_id(), n);
    (a, s)
}

/// What the pager holds for one object, seen from outside: the offsets
/// `default_pager_object_pages` lists (asked through the admin port with a send right to
/// the object's name port) and, for each, the checksum of the page a `data_request`
/// supplies; plus `dpo_size` from `default_pager_objects`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub pages: Vec<(u64, u64)>,
}

impl Kern {
    /// `default_pager_object_pages` for `o`, through `adm` (holding the admin port `dps`).
    pub fn object_pages(&self, adm: &Task, dps: &SendRight, o: &KObj) -> Vec<u64> {
        let n = self
            .kt
            .transfer_right(o.name.name(), tn::MAKE_SEND, adm)
            .unwrap();
        let name = SendRight::from_raw(adm.space_id(), n);
        let pages = default_pager::kernel_side::default_pager::client::default_pager_object_pages(
            adm, dps, &name, 64,
        )
        .expect("default_pager_object_pages");
        pages.into_iter().map(|p| p as u64).collect()
    }

    /// The object's stored pages and their contents (each read back with a data_request).
    pub fn snapshot(&self, adm: &Task, dps: &SendRight, o: &KObj) -> Snapshot {
        let offs = self.object_pages(adm, dps, o);
        let pages = offs
            .into_iter()
            .map(|off| {
                self.data_request(o, off, PSU);
                match self.reply_for(o, off) {
                    Call::Supply { data, .. } => {
                        assert_eq!(data.len(), PS, "one page supplied at {off:#x}");
                        (off, checksum(&data))
                    }
                    other => panic!("stored page {off:#x} not supplied: {other:?}"),
                }
            })
            .collect();
        Snapshot { pages }
    }
}

/// `default_pager_info` through the admin port: (total, free, page size).
pub fn info(adm: &Task, dps: &SendRight) -> (u64, u64, u64) {
    let i = default_pager::kernel_side::default_pager::client::default_pager_info(adm, dps)
        .expect("default_pager_info");
    (i[0] as u64, i[1] as u64, i[2] as u64)
}
