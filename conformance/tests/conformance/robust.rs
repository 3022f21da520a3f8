//! Running a mig-rs demux on hostile requests, shared by the differential test and the
//! `demux` fuzz target (`fuzz/fuzz_targets/demux.rs`): a model of GNU Mach's delivery
//! ([`kernel`]), and [`rust_run`], which runs a generated demux under `catch_unwind` and
//! checks the reply's form and the accounting of rights and out-of-line memory.
//!
//! The accounting needs the process-wide port spaces: call [`install_counting_spaces`]
//! once before [`rust_run`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mig_runtime::destroy::for_each_right;
use mig_runtime::msg::OolRelease;
use mig_runtime::rights::{install_port_spaces, PortSpaces, RightKind, SpaceId};
use mig_runtime::wire::Target;
use mig_runtime::{KernReturn, MsgBuf, OolBuffer, PortName};

use crate::rt::SubEntry;
use crate::values::received_form;
use crate::wire::{self, masked};

/// Largest out-of-line region the simulated kernel materialises.
pub const REGION_CAP: u64 = 1 << 20;

pub const MIG_BAD_ARGUMENTS: u32 = KernReturn::MIG_BAD_ARGUMENTS.0 as u32;
pub const MIG_BAD_ID: u32 = KernReturn::MIG_BAD_ID.0 as u32;

pub const COMPLEX: u32 = 0x8000_0000;
pub const INLINE: u32 = 0x2000_0000;
pub const LONGFORM: u32 = 0x4000_0000;
pub const DEALLOC: u32 = 0x8000_0000;
pub const UNUSED: u32 = 0x1f00_0000;

pub fn rd32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(x) => u32::from_le_bytes([x[0], x[1], x[2], x[3]]),
        None => 0,
    }
}
pub fn wr32(b: &mut [u8], at: usize, v: u32) {
    if let Some(x) = b.get_mut(at..at + 4) {
        x.copy_from_slice(&v.to_le_bytes());
    }
}
pub fn wr64(b: &mut [u8], at: usize, v: u64) {
    if let Some(x) = b.get_mut(at..at + 8) {
        x.copy_from_slice(&v.to_le_bytes());
    }
}
pub fn align8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

// ---- rights and regions accounting (mig-rs side) ---------------------------------------

thread_local! {
    /// Names released through the port spaces on this thread.
    static RELEASED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Live request regions: address → length.
    static LIVE: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
    /// Releases of regions that were not live (double releases).
    static BAD_RELEASES: Cell<u32> = const { Cell::new(0) };
}

/// Port spaces that only count releases.
struct Counting;

impl PortSpaces for Counting {
    fn release(&self, _space: SpaceId, name: PortName, _kind: RightKind) {
        RELEASED.with(|r| r.borrow_mut().push(name.0));
    }
    fn add_send_ref(&self, _space: SpaceId, _name: PortName) -> Result<(), KernReturn> {
        Ok(())
    }
    fn make_send(&self, _space: SpaceId, _name: PortName) -> Result<(), KernReturn> {
        Ok(())
    }
}

static COUNTING: Counting = Counting;

/// Installs the counting port spaces (once per process; later calls do nothing).
pub fn install_counting_spaces() {
    install_port_spaces(&COUNTING);
}

fn release_region(addr: usize, len: usize) {
    let known = LIVE.with(|l| l.borrow_mut().remove(&addr));
    if known == Some(len) {
        let p = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        // SAFETY: `addr`/`len` came from `Box::into_raw` of a `Box<[u8]>` of `len` bytes in
        // `region` and were live (released once: the entry is removed above).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) });
    } else {
        BAD_RELEASES.with(|b| b.set(b.get() + 1));
    }
}

/// A received region whose release is counted.
fn region(data: &[u8]) -> OolBuffer {
    if data.is_empty() {
        return OolBuffer::empty();
    }
    let b: Box<[u8]> = data.into();
    let len = b.len();
    let addr = (Box::into_raw(b) as *mut u8).expose_provenance();
    LIVE.with(|l| l.borrow_mut().insert(addr, len));
    // SAFETY: the bytes are a leaked heap block of `len` bytes that only this buffer owns
    // and nothing mutates; `release_region` frees it exactly once.
    unsafe {
        OolBuffer::from_mapped(
            addr,
            len,
            OolRelease {
                release: release_region,
            },
        )
    }
}

fn live_regions() -> usize {
    LIVE.with(|l| l.borrow().len())
}

/// Forgets leaked regions (after reporting them), so one leak is reported once.
fn forget_regions() {
    LIVE.with(|l| l.borrow_mut().clear());
    BAD_RELEASES.with(|b| b.set(0));
}

/// The valid names of the rights in the body of `msg` (what `mach_msg_destroy` would
/// release, the header's reply right aside), sorted.
fn body_rights(msg: &MsgBuf<'_>) -> Vec<u32> {
    let mut v = Vec::new();
    let mut first = true;
    for_each_right(msg, Target::X86_64, |n, ty| {
        if std::mem::take(&mut first) {
            return; // the header's remote port
        }
        if n.is_valid() && (16..=18).contains(&ty) {
            v.push(n.0);
        }
    });
    v.sort_unstable();
    v
}

// ---- the simulated kernel --------------------------------------------------------------

/// One descriptor of a message: offset, word 0, number.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub off: usize,
    pub word: u32,
    pub number: u32,
}

impl Desc {
    pub fn name(&self) -> u32 {
        self.word & 0xff
    }
    pub fn size(&self) -> u32 {
        (self.word >> 8) & 0xffff
    }
    pub fn inline(&self) -> bool {
        self.word & INLINE != 0
    }
    pub fn is_port(&self) -> bool {
        (16..=21).contains(&self.name())
    }
    pub fn bytes(&self) -> u64 {
        (u64::from(self.number) * u64::from(self.size())).div_ceil(8)
    }
}

/// Walks the body of `m` (the first `m.len()` bytes) as GNU Mach does, as far as it parses.
pub fn walk(m: &[u8]) -> Vec<Desc> {
    let n = m.len();
    let mut out = Vec::new();
    let mut off = 32usize;
    while off + 8 <= n {
        let d = Desc {
            off,
            word: rd32(m, off),
            number: rd32(m, off + 4),
        };
        out.push(d);
        off += 8;
        let len = if d.inline() { d.bytes() } else { 8 };
        match usize::try_from(align8(off as u64 + len)) {
            Ok(x) if x <= n => off = x,
            _ => break,
        }
    }
    out
}

/// A message as the kernel delivers it.
pub struct Kmsg {
    pub bytes: Vec<u8>,
    /// (offset of the address field, contents) of each out-of-line region.
    pub regions: Vec<(usize, Vec<u8>)>,
}

/// Why a mutant cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refused {
    /// `msgh_size` is not the number of bytes given (the kernel sets it on delivery).
    SizeField,
    /// Shorter than a header or not a multiple of 4 (`MACH_SEND_MSG_TOO_SMALL`).
    Size,
    /// A descriptor does not fit (`MACH_SEND_MSG_TOO_SMALL`).
    Body,
    /// `msgt_unused`, inline `msgt_deallocate`, port size (`MACH_SEND_INVALID_TYPE`).
    Type,
    /// An out-of-line region larger than the sender could have (`MACH_SEND_INVALID_MEMORY`).
    Memory,
}

/// Delivers mutant `m` (whose `msgh_size` field must be its length) as GNU Mach would.
/// Out-of-line regions take their contents from `orig` (the regions of the unmutated
/// request, by address-field offset), cut or zero-extended to the descriptor's size.
pub fn kernel(mut m: Vec<u8>, orig: &[(usize, Vec<u8>)]) -> Result<Kmsg, Refused> {
    let n = m.len();
    if rd32(&m, 4) as usize != n {
        return Err(Refused::SizeField);
    }
    if n < 32 || n & 3 != 0 {
        return Err(Refused::Size);
    }
    let mut regions = Vec::new();
    if rd32(&m, 0) & COMPLEX == 0 {
        return Ok(Kmsg { bytes: m, regions });
    }
    let mut complex = false;
    let mut off = 32usize;
    while off < n {
        if n - off < 8 {
            return Err(Refused::Body);
        }
        let d = Desc {
            off,
            word: rd32(&m, off),
            number: rd32(&m, off + 4),
        };
        let port = d.is_port();
        if (port && d.size() != if d.inline() { 64 } else { 32 })
            || d.word & UNUSED != 0
            || (d.word & DEALLOC != 0 && d.inline())
        {
            return Err(Refused::Type);
        }
        off += 8;
        let len = d.bytes();
        let mut word = d.word;
        if port {
            word = (word & !0xff) | received_form(d.name());
            complex = true;
        }
        if d.inline() {
            if ((n - off) as u64) < len {
                return Err(Refused::Body);
            }
            if port {
                // The kernel writes each received name as a whole 8-byte slot.
                for i in 0..d.number as usize {
                    wr32(&mut m, off + 8 * i + 4, 0);
                }
            }
            off += len as usize;
        } else {
            if n - off < 8 {
                return Err(Refused::Body);
            }
            if len > REGION_CAP {
                return Err(Refused::Memory);
            }
            let mut data = orig
                .iter()
                .find(|(at, _)| *at == off)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            data.resize(len as usize, 0);
            wr64(&mut m, off, 0);
            regions.push((off, data));
            word |= DEALLOC;
            complex = true;
            off += 8;
        }
        wr32(&mut m, d.off, word);
        off = align8(off as u64) as usize;
    }
    if !complex {
        let bits = rd32(&m, 0);
        wr32(&mut m, 0, bits & !COMPLEX);
    }
    Ok(Kmsg { bytes: m, regions })
}

// ---- running mig-rs ---------------------------------------------------------------------

/// A reply: the demux's result, the bytes with out-of-line addresses masked, the regions.
#[derive(PartialEq, Eq, Debug)]
pub struct Reply {
    pub handled: bool,
    pub bytes: Vec<u8>,
    pub regions: Vec<Vec<u8>>,
}

impl Reply {
    pub fn retcode(&self) -> Option<u32> {
        (self.bytes.len() >= 44).then(|| rd32(&self.bytes, 40))
    }
}

/// What the mig-rs side did with one request.
pub struct RustRun {
    pub reply: Result<Reply, String>,
    /// Rejected with rights in the body (their accounting was checked).
    pub rights_checked: bool,
    /// The request brought out-of-line regions.
    pub had_regions: bool,
    /// Panic message, rights or memory problems.
    pub problems: Vec<String>,
}

/// Runs the mig-rs demux on `bytes` (+ `regions`), with `capacity` bytes of buffer (`0xee`
/// after the bytes), checking the reply's form and the accounting of rights and memory.
pub fn rust_run(
    entry: &SubEntry,
    bytes: &[u8],
    regions: &[(usize, Vec<u8>)],
    capacity: usize,
    v: usize,
) -> RustRun {
    let mut problems = Vec::new();
    RELEASED.with(|r| r.borrow_mut().clear());
    let mut req = MsgBuf::with_capacity(capacity.max(bytes.len()));
    {
        let b = req.bytes_mut();
        b[..bytes.len()].copy_from_slice(bytes);
        b[bytes.len()..].fill(0xee);
    }
    for (at, data) in regions {
        let r = region(data);
        let addr = r.addr() as u64;
        if addr != 0 {
            wr64(req.bytes_mut(), *at, addr);
            req.push_received_ool(r);
        }
    }
    let rights_before = body_rights(&req);
    let regions_before = req.ool_entries().len();
    let max_reply = entry.info.max_reply.max(64);
    let mut rep = MsgBuf::with_capacity(max_reply);
    rep.bytes_mut().fill(0xa5);
    let res = catch_unwind(AssertUnwindSafe(|| (entry.demux)(v, &mut req, &mut rep)));
    let handled = match res {
        Ok((h, _log)) => h,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            problems.push(format!("mig-rs panicked: {msg}"));
            forget_regions();
            return RustRun {
                reply: Err("panicked".into()),
                rights_checked: false,
                had_regions: regions_before > 0,
                problems,
            };
        }
    };
    // The reply's form.
    let size = rd32(rep.bytes(), 4) as usize;
    let retcode = rd32(rep.bytes(), 40);
    if size > rep.capacity() || size < 48 {
        problems.push(format!(
            "reply msgh_size {size} outside 48..={} (buffer)",
            rep.capacity()
        ));
    }
    if bytes.len() >= 32 && rd32(rep.bytes(), 28) != rd32(bytes, 28).wrapping_add(100) {
        problems.push(format!(
            "reply msgh_id {} for request id {}",
            rd32(rep.bytes(), 28) as i32,
            rd32(bytes, 28) as i32
        ));
    }
    if !handled && retcode != MIG_BAD_ID {
        problems.push(format!("demux returned false with RetCode {retcode:#x}"));
    }
    // Rights: a rejected request keeps what it brought, less what the stub released.
    let rejected = retcode == MIG_BAD_ARGUMENTS || retcode == MIG_BAD_ID;
    if rejected {
        let mut accounted = body_rights(&req);
        RELEASED.with(|r| accounted.extend(r.borrow().iter().copied()));
        accounted.sort_unstable();
        if accounted != rights_before {
            problems.push(format!(
                "rights: the request brought {rights_before:x?}; released by the demux + left for mach_msg_destroy: {accounted:x?}"
            ));
        }
        if req.ool_entries().len() > regions_before {
            problems.push("the request gained out-of-line regions".into());
        }
    }
    let bytes_out = rep.message().to_vec();
    let reply = match wire::ool_fields(&bytes_out) {
        Ok(fields) => {
            let mut regs = Vec::new();
            let mut err = None;
            for f in fields {
                match rep.find_ool(f.addr, f.len) {
                    Some(b) => regs.push(b.to_vec()),
                    None => {
                        err = Some(format!(
                            "the reply names out-of-line memory at {:#x} ({} bytes) that is not attached",
                            f.addr, f.len
                        ))
                    }
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(Reply {
                    handled,
                    bytes: masked(&bytes_out),
                    regions: regs,
                }),
            }
        }
        Err(e) => Err(format!("reply does not parse: {e}")),
    };
    drop(req);
    drop(rep);
    let live = live_regions();
    let bad = BAD_RELEASES.with(|b| b.get());
    if live != 0 || bad != 0 {
        problems.push(format!(
            "out-of-line memory: {live} request regions never released, {bad} released twice"
        ));
        forget_regions();
    }
    RustRun {
        reply,
        rights_checked: rejected && !rights_before.is_empty(),
        had_regions: regions_before > 0,
        problems,
    }
}
