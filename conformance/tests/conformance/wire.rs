//! The simulated kernel (x86_64 typed messages): finding out-of-line regions, delivering a
//! message as GNU Mach's copyin/copyout would, and comparing messages.

use mig_runtime::{MsgBuf, OolBuffer};

use crate::values::{received_form, SEQNO};

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn rd64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn wr64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

const INLINE: u32 = 0x2000_0000;
const DEALLOC: u32 = 0x8000_0000;

/// An out-of-line region named by a message.
#[derive(Debug, Clone, Copy)]
pub struct OolField {
    /// Offset of the address field.
    pub at: usize,
    pub addr: u64,
    /// Bytes (`msgt_number · msgt_size / 8`).
    pub len: usize,
}

/// One descriptor: offset, word 0, number.
fn descriptors(msg: &[u8]) -> Result<Vec<(usize, u32, u32)>, String> {
    if msg.len() < 32 {
        return Err(format!("{} bytes: shorter than a header", msg.len()));
    }
    let size = rd32(msg, 4) as usize;
    if size > msg.len() {
        return Err(format!("msgh_size {size} > {} bytes", msg.len()));
    }
    let mut out = Vec::new();
    let mut off = 32;
    while off < size {
        if off + 8 > size {
            return Err(format!("truncated descriptor at {off}"));
        }
        let w = rd32(msg, off);
        let number = rd32(msg, off + 4);
        out.push((off, w, number));
        let bits = ((w >> 8) & 0xffff) as u64;
        off += 8;
        if w & INLINE != 0 {
            let bytes = (number as u64 * bits).div_ceil(8);
            off += bytes.div_ceil(8) as usize * 8;
        } else {
            off += 8;
        }
    }
    if off != size {
        return Err(format!("descriptors end at {off}, msgh_size is {size}"));
    }
    Ok(out)
}

/// The out-of-line regions of a message, in order.
pub fn ool_fields(msg: &[u8]) -> Result<Vec<OolField>, String> {
    Ok(descriptors(msg)?
        .into_iter()
        .filter(|(_, w, _)| w & INLINE == 0)
        .map(|(off, w, number)| OolField {
            at: off + 8,
            addr: rd64(msg, off + 8),
            len: (number as u64 * ((w >> 8) & 0xffff) as u64).div_ceil(8) as usize,
        })
        .collect())
}

/// The message with its out-of-line address fields zeroed (addresses are compared by the
/// content of their regions).
pub fn masked(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    if let Ok(fields) = ool_fields(msg) {
        for f in fields {
            wr64(&mut m, f.at, 0);
        }
    }
    m
}

/// A delivered message: received form, address fields zero, regions to map.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub bytes: Vec<u8>,
    /// (offset of the address field, bytes).
    pub regions: Vec<(usize, Vec<u8>)>,
}

/// Delivers `msg` (sent form) with its out-of-line `regions` as GNU Mach does to a receiver
/// in the same name space: header ports swapped and their dispositions turned into
/// received types, `msgh_seqno` set, port descriptors' names turned into received types
/// (inline and out-of-line), `msgt_deallocate` cleared for inline and set for out-of-line
/// data, and the regions copied (empty regions get address 0).
pub fn deliver(msg: &[u8], regions: &[Vec<u8>]) -> Result<Delivered, String> {
    let descs = descriptors(msg)?;
    let size = rd32(msg, 4) as usize;
    let mut m = msg[..size].to_vec();
    let bits = rd32(&m, 0);
    let remote = received_form(bits & 0xff);
    let local = received_form((bits >> 8) & 0xff);
    wr32(&mut m, 0, (bits & !0xffff) | local | (remote << 8));
    let (a, b) = (rd64(&m, 8), rd64(&m, 16));
    wr64(&mut m, 8, b);
    wr64(&mut m, 16, a);
    wr32(&mut m, 24, SEQNO);
    let mut out = Vec::new();
    let mut k = 0;
    for (off, w, number) in descs {
        let name = w & 0xff;
        let inline = w & INLINE != 0;
        let mut nw = w;
        if (16..=21).contains(&name) {
            nw = (nw & !0xff) | received_form(name);
        }
        if inline {
            nw &= !DEALLOC;
        } else {
            nw |= DEALLOC;
            let len = (number as u64 * ((w >> 8) & 0xffff) as u64).div_ceil(8) as usize;
            let data = regions
                .get(k)
                .ok_or_else(|| format!("no content for out-of-line region {k}"))?;
            if data.len() != len {
                return Err(format!(
                    "out-of-line region {k} has {} bytes, its descriptor says {len}",
                    data.len()
                ));
            }
            k += 1;
            wr64(&mut m, off + 8, 0);
            out.push((off + 8, data.clone()));
        }
        wr32(&mut m, off, nw);
    }
    Ok(Delivered {
        bytes: m,
        regions: out,
    })
}

/// The delivered message for a C receiver: regions copied into `arena` (kept alive by the
/// caller), addresses written.
pub fn for_c(d: &Delivered, arena: &mut Vec<Box<[u8]>>) -> Vec<u8> {
    let mut m = d.bytes.clone();
    for (at, data) in &d.regions {
        if data.is_empty() {
            continue;
        }
        let b: Box<[u8]> = data.clone().into_boxed_slice();
        wr64(&mut m, *at, b.as_ptr() as u64);
        arena.push(b);
    }
    m
}

/// Writes the delivered message into a mig-rs message buffer (regions become received
/// out-of-line memory of the buffer).
pub fn into_msgbuf(d: &Delivered, msg: &mut MsgBuf<'_>) {
    let n = d.bytes.len();
    msg.bytes_mut()[..n].copy_from_slice(&d.bytes);
    for (at, data) in &d.regions {
        if data.is_empty() {
            continue;
        }
        let b = OolBuffer::copy_from(data);
        let addr = b.addr() as u64;
        wr64(msg.bytes_mut(), *at, addr);
        msg.push_received_ool(b);
    }
}

/// The delivered message as a fresh mig-rs message buffer.
pub fn for_rust(d: &Delivered) -> MsgBuf<'static> {
    let mut m = MsgBuf::with_capacity(d.bytes.len());
    into_msgbuf(d, &mut m);
    m
}

/// Describes how `ours` (mig-rs) differs from `theirs` (GNU MIG).
pub fn diff_bytes(theirs: &[u8], ours: &[u8]) -> String {
    let mut s = String::new();
    if theirs.len() != ours.len() {
        s.push_str(&format!(
            "length: GNU MIG {} bytes, mig-rs {} bytes; ",
            theirs.len(),
            ours.len()
        ));
    }
    let n = theirs.len().min(ours.len());
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < n {
        if theirs[i] != ours[i] {
            let start = i;
            while i < n && theirs[i] != ours[i] {
                i += 1;
            }
            ranges.push((start, i));
        } else {
            i += 1;
        }
    }
    for (k, (a, b)) in ranges.iter().enumerate() {
        if k == 8 {
            s.push_str(&format!("… {} more ranges", ranges.len() - 8));
            break;
        }
        let hex = |x: &[u8]| {
            let mut h: Vec<String> = x.iter().take(24).map(|b| format!("{b:02x}")).collect();
            if x.len() > 24 {
                h.push("…".into());
            }
            h.join(" ")
        };
        s.push_str(&format!(
            "bytes {a}..{b} (0x{a:x}): GNU MIG [{}] mig-rs [{}]; ",
            hex(&theirs[*a..*b]),
            hex(&ours[*a..*b])
        ));
    }
    s
}

/// Describes how two renderings differ (around the first difference).
pub fn diff_text(expected: &str, got: &str) -> String {
    let e = expected.as_bytes();
    let g = got.as_bytes();
    let i = e.iter().zip(g).take_while(|(a, b)| a == b).count();
    // Start at the beginning of the field.
    let start = expected[..i].rfind(';').map(|p| p + 1).unwrap_or(0);
    let cut = |s: &str| {
        let s = &s[start.min(s.len())..];
        if s.len() > 160 {
            format!("{}…", &s[..160])
        } else {
            s.to_string()
        }
    };
    format!("expected `{}` got `{}`", cut(expected), cut(got))
}
