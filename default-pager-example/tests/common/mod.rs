//! Helpers shared by the integration tests: which modes to run, booting a system, a delaying
//! store, an admission recorder, and scripted (fake) default memory managers.
#![allow(dead_code)]

use default_pager::{BackingStore, Hooks, MsgKind, ReplyKind, StoreError};
use default_pager_example::kernel::{self, uffd::Uffd, ModeChoice};
use default_pager_example::mig;
use default_pager_example::system::{Paging, System};
use default_pager_example::{EmuTask, Kernel, PAGE};
use mig_runtime::rights::RightKind;
use mig_runtime::wire::option;
use mig_runtime::{KernReturn, MsgBuf, PortName, ReceiveRight, SendRight, Transport};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Aborts the whole test process if the test is still running after `secs` (so a bug can
/// never hang CI): call first thing in a test and keep the guard.
pub struct Deadline(Arc<AtomicBool>);

pub fn deadline(test: &'static str, secs: u64) -> Deadline {
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if d2.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("TEST HUNG: {test} still running after {secs} s; aborting the test process");
        std::process::abort();
    });
    Deadline(done)
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The modes to run a test in: always the portable mode; userfaultfd where the system allows
/// it (a printed SKIP line otherwise).
pub fn modes(test: &str) -> Vec<ModeChoice> {
    let mut v = vec![ModeChoice::Portable];
    match Uffd::open() {
        Ok(_) => v.push(ModeChoice::Userfaultfd),
        Err(e) => println!("SKIP: {test}: userfaultfd mode not run: {e}"),
    }
    v
}

pub fn mode_name(m: ModeChoice) -> &'static str {
    match m {
        ModeChoice::Portable => "portable",
        ModeChoice::Userfaultfd => "userfaultfd",
        ModeChoice::Auto => "auto",
    }
}

pub fn kcfg(mode: ModeChoice, ram_pages: usize) -> kernel::Config {
    kernel::Config {
        ram_bytes: ram_pages * PAGE,
        mode,
        fault_timeout: Duration::from_secs(20),
        trace_per_kind: 4,
        log_errors: false,
        ..kernel::Config::default()
    }
}

pub fn pcfg(threads: usize) -> default_pager::Config {
    default_pager::Config {
        object_threads: threads,
        seqno_gap_timeout_ms: Some(20_000),
        ..default_pager::Config::default()
    }
}

pub fn boot(k: kernel::Config, paging_pages: u64, p: default_pager::Config) -> System {
    let s = System::start(
        k,
        &Paging::Memory {
            bytes: paging_pages * PAGE as u64,
        },
        p,
    )
    .expect("system starts");
    println!("mode: {}", s.kernel.mode());
    s
}

/// The page content for round `r` of page `p`.
pub fn page(r: u64, p: u64) -> Vec<u8> {
    let mut v = vec![0u8; PAGE];
    default_pager_example::demo::pattern(r.wrapping_mul(1_000_003).wrapping_add(p), &mut v);
    v
}

pub fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

pub fn write_page(t: &EmuTask, base: usize, p: usize, data: &[u8]) {
    t.write(base + p * PAGE, data).expect("write");
}

pub fn read_page(t: &EmuTask, base: usize, p: usize) -> Vec<u8> {
    let mut v = vec![0u8; PAGE];
    t.read(base + p * PAGE, &mut v).expect("read");
    v
}

/// Polls `f` until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let d = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < d {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// A store that sleeps a random time (0..max_us) in every read and write.
pub struct DelayStore {
    pub inner: default_pager::MemStore,
    pub max_us: u64,
    pub seed: AtomicU64,
}

impl DelayStore {
    fn delay(&self) {
        let s = self
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let z = (s ^ (s >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        std::thread::sleep(Duration::from_micros((z >> 33) % self.max_us.max(1)));
    }
}

impl BackingStore for DelayStore {
    fn blocks(&self) -> u64 {
        self.inner.blocks()
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.delay();
        self.inner.read_block(block, buf)
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        self.delay();
        self.inner.write_block(block, data)
    }
}

/// Records the admission order the pager reports, and its answers on control ports.
#[derive(Default)]
pub struct Admissions {
    pub log: Mutex<BTreeMap<u64, Vec<(u32, MsgKind)>>>,
    /// (object, answer, offset, length).
    pub replies: Mutex<Vec<(u64, ReplyKind, u64, u64)>>,
}

impl Hooks for Admissions {
    fn admitted(&self, object: u64, seqno: u32, kind: MsgKind) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(object)
            .or_default()
            .push((seqno, kind));
    }
    fn replied(&self, object: u64, kind: ReplyKind, offset: u64, len: u64) {
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((object, kind, offset, len));
    }
}

/// What a scripted default memory manager does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Accepts objects and never answers a request (a hung pager).
    Hang,
    /// Destroys each object port as soon as it gets it (a dead pager).
    Die,
    /// Answers every request with garbage: misaligned, short, out-of-range supplies and a
    /// malformed message.
    Garbage,
}

/// A scripted default memory manager in its own task, registered with
/// `vm_set_default_memory_manager` through the generated client.
pub struct FakePager {
    pub task: EmuTask,
    pub port: PortName,
    pub stop: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Vec<i32>>>,
    pub previous: Option<SendRight>,
    pub state: Arc<FakeState>,
    h: Option<std::thread::JoinHandle<()>>,
}

pub struct FakeState {
    t: mig_runtime::ipc::Task,
    set: PortName,
    script: Script,
    pub ctl: Mutex<Vec<SendRight>>,
    objects: Mutex<Vec<ReceiveRight>>,
}

impl mig::memory_object_default::server::MemoryObjectDefaultServer for FakeState {
    fn memory_object_create(
        &self,
        _dmm: PortName,
        new_memory_object: ReceiveRight,
        _size: u64,
        new_control_port: SendRight,
        _new_name: SendRight,
        _page_size: u64,
    ) -> Result<(), KernReturn> {
        if self.script == Script::Die {
            drop(new_memory_object);
            drop(new_control_port);
            return Ok(());
        }
        let _ = self.t.port_move_member(new_memory_object.name(), self.set);
        self.objects.lock().unwrap().push(new_memory_object);
        self.ctl.lock().unwrap().push(new_control_port);
        Ok(())
    }
}

impl mig::memory_object::server::MemoryObjectServer for FakeState {
    fn memory_object_data_request(
        &self,
        _mo: PortName,
        ctl: SendRight,
        offset: u64,
        _len: u64,
        _access: i32,
    ) -> Result<(), KernReturn> {
        if self.script != Script::Garbage {
            return Ok(());
        }
        let t = &self.t;
        let none = ReceiveRight::null();
        let page = vec![7u8; PAGE];
        use mig::mach::client::memory_object_data_supply as supply;
        use mig_runtime::msg::OolData;
        // Misaligned offset, a short buffer, a range past the end.
        let _ = supply(t, &ctl, offset + 1, OolData::Borrowed(&page), 0, 0, &none);
        let _ = supply(
            t,
            &ctl,
            offset,
            OolData::Borrowed(&page[..100]),
            0,
            0,
            &none,
        );
        let _ = supply(t, &ctl, 1 << 40, OolData::Borrowed(&page), 0, 0, &none);
        let _ = mig::mach::client::memory_object_data_unavailable(t, &ctl, offset + 3, 17);
        // A malformed message with the data_supply id: only a header and garbage.
        let mut b = MsgBuf::with_capacity(64);
        let bits = mig_runtime::wire::msgh_bits::make(mig_runtime::wire::type_name::COPY_SEND, 0);
        mig_runtime::stub::wr_header(
            b.bytes_mut(),
            mig_runtime::wire::Target::X86_64,
            bits,
            40,
            ctl.name(),
            PortName::NULL,
            2093,
        );
        b.bytes_mut()[32..40].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
        let _ = t.mach_msg(
            &mut b,
            option::SEND_MSG | option::SEND_TIMEOUT,
            40,
            0,
            PortName::NULL,
            1000,
            PortName::NULL,
        );
        Ok(())
    }
}

impl FakePager {
    /// Starts a scripted manager and registers it (replacing the current one; the previous
    /// manager's send right is kept in `previous`).
    pub fn start(k: &Kernel, script: Script) -> FakePager {
        let task = k.new_task().expect("task");
        let t = task.ipc().clone();
        let port = t.port_allocate(RightKind::Receive).expect("port");
        let set = t.port_allocate(RightKind::PortSet).expect("set");
        t.port_move_member(port, set).expect("member");
        let host = k.host_priv_for(&task).expect("host");
        let recv = std::mem::ManuallyDrop::new(ReceiveRight::from_raw(t.space_id(), port));
        let prev = mig::mach::client::vm_set_default_memory_manager(&t, &host, &recv)
            .expect("vm_set_default_memory_manager");
        let previous = if prev.is_valid() { Some(prev) } else { None };
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let st = Arc::new(FakeState {
            t: t.clone(),
            set,
            script,
            ctl: Mutex::new(Vec::new()),
            objects: Mutex::new(Vec::new()),
        });
        let (s2, seen2) = (Arc::clone(&stop), Arc::clone(&seen));
        let state = Arc::clone(&st);
        let h = std::thread::spawn(move || {
            while !s2.load(Ordering::Acquire) {
                let mut req = MsgBuf::with_capacity(8192);
                let mut rep = MsgBuf::with_capacity(8192);
                let r = t.mach_msg(
                    &mut req,
                    option::RCV_MSG | option::RCV_TIMEOUT,
                    0,
                    8192,
                    set,
                    20,
                    PortName::NULL,
                );
                if r != KernReturn::KERN_SUCCESS {
                    continue;
                }
                req.set_space(t.space_id());
                let id = mig_runtime::stub::msgh_id(req.bytes(), mig_runtime::wire::Target::X86_64);
                seen2.lock().unwrap().push(id);
                let _ =
                    mig::memory_object_default::server::memory_object_default_server(
                        &*st, &mut req, &mut rep,
                    ) || mig::memory_object::server::memory_object_server(&*st, &mut req, &mut rep);
            }
        });
        FakePager {
            task,
            port,
            stop,
            seen,
            previous,
            state,
            h: Some(h),
        }
    }

    pub fn seen(&self) -> Vec<i32> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakePager {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
    }
}

/// Allocates `pages` pages in a new task.
pub fn alloc(k: &Kernel, pages: usize) -> (EmuTask, usize) {
    let t = k.new_task().expect("task");
    let a = t.vm_allocate(pages * PAGE).expect("vm_allocate");
    (t, a)
}

pub fn transport_of(t: &EmuTask) -> &impl Transport {
    t.ipc()
}

/// A deterministic pseudo-random generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A page of random bytes; now and then all zeros, all ones or a single bit.
    pub fn page(&mut self) -> Vec<u8> {
        match self.below(8) {
            0 => vec![0u8; PAGE],
            1 => vec![0xffu8; PAGE],
            2 => {
                let mut v = vec![0u8; PAGE];
                let bit = self.below(PAGE as u64 * 8);
                v[(bit / 8) as usize] = 1 << (bit % 8);
                v
            }
            _ => (0..PAGE / 8)
                .flat_map(|_| self.next().to_le_bytes())
                .collect(),
        }
    }
}

/// Sends a message with only a header (no reply port, so the sender allocates nothing)
/// from `t` to `name`; returns the send's result.
pub fn probe(t: &mig_runtime::ipc::Task, name: PortName, id: i32) -> KernReturn {
    let m = mig_runtime::build::MsgBuilder::new(mig_runtime::wire::Target::X86_64)
        .header(
            mig_runtime::wire::msgh_bits::make(mig_runtime::wire::type_name::COPY_SEND, 0),
            name,
            PortName::NULL,
            id,
        )
        .finish();
    let mut mb = MsgBuf::from_bytes(&m);
    t.mach_msg(
        &mut mb,
        option::SEND_MSG,
        m.len() as u32,
        0,
        PortName::NULL,
        0,
        PortName::NULL,
    )
}

/// A send right of `t`'s to the host-privileged port.
pub fn host_for(k: &Kernel, t: &EmuTask) -> SendRight {
    k.host_priv_for(t).expect("host_priv")
}

/// Reads every page of `0..pages` at `base` after paging the range out, so that each read
/// comes from the pager; returns the checksums.
pub fn checksums_from_pager(t: &EmuTask, base: usize, pages: usize) -> Vec<u64> {
    t.pageout(base, pages * PAGE).expect("pageout");
    (0..pages)
        .map(|p| checksum(&read_page(t, base, p)))
        .collect()
}
