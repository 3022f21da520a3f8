//! Running GNU MIG's C demux beside mig-rs's on the same delivered request, and judging
//! the difference (shared by the differential test and the `demux_diff` fuzz target). See
//! `tests/differential.rs` for what is compared and what is excluded, and why.

use std::ffi::c_int;

use crate::common::{CServer, CSide, CBUF};
use crate::robust::{align8, rd32, wr64, Kmsg, Reply, COMPLEX, INLINE, MIG_BAD_ARGUMENTS};
use crate::rt::{RtInfo, SubInfo};
use crate::values::REPLY_PORT;
use crate::wire::{deliver, diff_bytes, masked, Delivered};

/// Bytes after the message that are set to a known pattern in the receive buffers.
pub const TAIL: usize = 4096;

/// What GNU MIG's stub makes of the variable-size fields of `m`.
#[derive(Default)]
pub struct CWalk {
    /// Its 32-bit size arithmetic wraps.
    pub overflow: bool,
    /// The message is simple but an inline-or-out-of-line field says "out-of-line".
    pub ool_in_simple: bool,
}

/// Walks the variable-size fields of request `m` as GNU MIG's stub does: each count is
/// read where the stub reads it (shifted by the sizes of the earlier fields).
pub fn c_walk(r: &RtInfo, m: &[u8]) -> CWalk {
    let mut w = CWalk::default();
    let simple = rd32(m, 0) & COMPLEX == 0;
    let mut shift = 0u64;
    for f in r.req_vars {
        let off = u64::from(f.desc) + shift;
        if off + 8 > m.len() as u64 {
            break;
        }
        let word = rd32(m, off as usize);
        let number = rd32(m, off as usize + 4);
        let delta = if f.indefinite && word & INLINE == 0 {
            w.ool_in_simple |= simple;
            8
        } else {
            let raw = u64::from(f.eb) * u64::from(number);
            if raw + 7 > u64::from(u32::MAX)
                || u64::from(r.req_min) + align8(raw) > u64::from(u32::MAX)
            {
                w.overflow = true;
                break;
            }
            align8(raw)
        };
        shift += delta;
    }
    w
}

/// Whether GNU MIG's stub can run safely on a request whose sizes wrap: one variable field
/// and no port array (it then only passes pointer and count on).
pub fn c_safe_on_overflow(r: &RtInfo) -> bool {
    r.req_vars.len() <= 1 && r.req_vars.iter().all(|f| !f.port)
}

/// Per-thread buffers of the C demux.
pub struct CBufs {
    input: Vec<u64>,
    output: Vec<u64>,
}

impl CBufs {
    pub fn new() -> CBufs {
        CBufs {
            input: vec![0; CBUF / 8],
            output: vec![0; CBUF / 8],
        }
    }
}

fn as_bytes(v: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u64; the length is in bytes.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 8) }
}

/// Runs GNU MIG's demux on `k` with `tail` bytes after the message.
pub fn c_run(
    s: &CServer,
    bufs: &mut CBufs,
    k: &Kmsg,
    v: usize,
    tail: u8,
    max_reply: usize,
) -> Result<Reply, String> {
    (s.rt.arena_reset)();
    (s.set_variant)(v as c_int);
    let n = k.bytes.len();
    if n + TAIL > CBUF {
        return Err(format!("request of {n} bytes is too large for the test"));
    }
    let mut arena: Vec<Box<[u8]>> = Vec::new();
    {
        let input = as_bytes(&mut bufs.input);
        input[..n].copy_from_slice(&k.bytes);
        input[n..n + TAIL].fill(tail);
        for (at, data) in &k.regions {
            if data.is_empty() {
                continue;
            }
            let b: Box<[u8]> = data.clone().into_boxed_slice();
            wr64(input, *at, b.as_ptr() as u64);
            arena.push(b);
        }
    }
    let out_len = max_reply.clamp(64, CBUF);
    as_bytes(&mut bufs.output)[..out_len].fill(0);
    let handled = (s.demux)(
        bufs.input.as_mut_ptr().cast::<u8>(),
        bufs.output.as_mut_ptr().cast::<u8>(),
    ) != 0;
    drop(arena);
    let output = as_bytes(&mut bufs.output);
    let size = (rd32(output, 4) as usize).min(out_len);
    let bytes = output[..size].to_vec();
    let regions = s.rt.regions(&bytes)?;
    Ok(Reply {
        handled,
        bytes: masked(&bytes),
        regions,
    })
}

/// GNU MIG's client request for (routine, variant), delivered.
pub fn c_request(c: &CSide, ri: usize, v: usize) -> Result<Delivered, String> {
    (c.user.arena_reset)();
    (c.user.rec_reset)();
    c.rec.reset();
    c.rec.set_reply_port(REPLY_PORT);
    let kr = (c.client)(ri as c_int, v as c_int);
    let sent = c.rec.sent();
    if sent.is_empty() {
        return Err(format!("GNU MIG's client sent nothing (returned {kr:#x})"));
    }
    let regions = c.user.regions(&sent)?;
    deliver(&sent, &regions)
}

/// How GNU MIG's answer compares with mig-rs's.
#[derive(Debug)]
pub enum Verdict {
    /// Same demux result, same reply bytes and regions.
    Identical,
    /// GNU MIG's 32-bit size arithmetic wraps and its stub cannot run safely: not run
    /// (mig-rs must have answered `MIG_BAD_ARGUMENTS`).
    NotRun,
    /// Different, because GNU MIG's 32-bit size arithmetic wrapped.
    Overflow,
    /// Different, because GNU MIG took an out-of-line pointer from a simple message.
    OolInSimple,
    /// Different, because GNU MIG read beyond `msgh_size`.
    Beyond,
    /// A real difference (or mig-rs accepted what it must reject), described.
    Mismatch(String),
}

/// The routine a demux dispatches request `m` to (by `msgh_id`).
pub fn dispatched<'a>(info: &'a SubInfo, m: &[u8]) -> Option<&'a RtInfo> {
    let id = rd32(m, 28) as i32;
    info.routines.iter().find(|r| r.msg_id == id)
}

/// Runs GNU MIG's demux of subsystem `info` on `k` (server variant `v`) and judges its
/// answer against mig-rs's (`ours`).
pub fn judge(
    info: &SubInfo,
    s: &CServer,
    bufs: &mut CBufs,
    k: &Kmsg,
    v: usize,
    ours: &Reply,
) -> Verdict {
    let max_reply = info.max_reply.max(64);
    let r = dispatched(info, &k.bytes);
    let cw = r.map(|r| c_walk(r, &k.bytes)).unwrap_or_default();
    let rejected = ours.retcode() == Some(MIG_BAD_ARGUMENTS);
    if cw.overflow && !r.is_some_and(c_safe_on_overflow) {
        return if rejected {
            Verdict::NotRun
        } else {
            Verdict::Mismatch(format!(
                "mig-rs accepted a request whose counts overflow: RetCode {:?}",
                ours.retcode()
            ))
        };
    }
    let theirs = match c_run(s, bufs, k, v, 0, max_reply) {
        Ok(x) => x,
        Err(e) => return Verdict::Mismatch(format!("GNU MIG reply: {e}")),
    };
    if theirs == *ours {
        return Verdict::Identical;
    }
    if cw.overflow {
        return if rejected {
            Verdict::Overflow
        } else {
            Verdict::Mismatch(format!(
                "mig-rs accepted a request whose counts overflow: RetCode {:?}",
                ours.retcode()
            ))
        };
    }
    if cw.ool_in_simple && rejected {
        return Verdict::OolInSimple;
    }
    // Did GNU MIG read beyond msgh_size?
    if let Ok(again) = c_run(s, bufs, k, v, 0xee, max_reply) {
        if again != theirs {
            return Verdict::Beyond;
        }
    }
    let mut msg = String::new();
    if theirs.handled != ours.handled {
        msg.push_str(&format!(
            "demux result: GNU MIG {}, mig-rs {}; ",
            theirs.handled, ours.handled
        ));
    }
    if theirs.retcode() != ours.retcode() {
        let rc = |x: Option<u32>| x.map(|c| format!("{c:#x}")).unwrap_or("none".into());
        msg.push_str(&format!(
            "RetCode: GNU MIG {}, mig-rs {}; ",
            rc(theirs.retcode()),
            rc(ours.retcode())
        ));
    }
    if theirs.bytes != ours.bytes {
        msg.push_str(&format!(
            "reply bytes: {}",
            diff_bytes(&theirs.bytes, &ours.bytes)
        ));
    }
    if theirs.regions != ours.regions {
        msg.push_str("out-of-line regions of the reply differ");
    }
    Verdict::Mismatch(msg)
}
