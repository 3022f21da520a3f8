//! Helpers for generated stubs.
//!
//! Generated code encodes and decodes message fields at offsets mig-rs computed from the
//! `.defs` (or derived from checked counts). These helpers are the only way it touches
//! bytes: they never panic — an out-of-range read yields zero and an out-of-range write does
//! nothing — so a logic error can produce a wrong message but never undefined behaviour or
//! a crash. Stubs check message sizes before reading, so the fallbacks do not fire on valid
//! or invalid input alike.

/// The vector type generated code uses for variable-length values (`alloc`'s, so stubs
/// build without `std`).
pub use alloc::vec::Vec;

use crate::msg::MsgBuf;
use crate::rights::{port_spaces, RightKind, SpaceId};
use crate::wire::{desc_bits, type_name, DecodedDesc, KernReturn, PortName, Target, TypeDesc};

/// Reads a little-endian `u8`.
#[inline(always)]
pub fn rd_u8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}
/// Reads a little-endian `u16`.
#[inline(always)]
pub fn rd_u16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)).map(<[u8; 2]>::try_from) {
        Some(Ok(x)) => u16::from_le_bytes(x),
        _ => 0,
    }
}
/// Reads a little-endian `u32`.
#[inline(always)]
pub fn rd_u32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)).map(<[u8; 4]>::try_from) {
        Some(Ok(x)) => u32::from_le_bytes(x),
        _ => 0,
    }
}
/// Reads a little-endian `u64`.
#[inline(always)]
pub fn rd_u64(b: &[u8], off: usize) -> u64 {
    match b.get(off..off.wrapping_add(8)).map(<[u8; 8]>::try_from) {
        Some(Ok(x)) => u64::from_le_bytes(x),
        _ => 0,
    }
}
/// Writes a `u8`.
#[inline(always)]
pub fn wr_u8(b: &mut [u8], off: usize, v: u8) {
    if let Some(x) = b.get_mut(off) {
        *x = v;
    }
}
/// Writes a little-endian `u16`.
#[inline(always)]
pub fn wr_u16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(2)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
/// Writes a little-endian `u32`.
#[inline(always)]
pub fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(4)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
/// Writes a little-endian `u64`.
#[inline(always)]
pub fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(8)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
/// Copies `src` to `off`.
#[inline(always)]
pub fn wr_bytes(b: &mut [u8], off: usize, src: &[u8]) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(src.len())) {
        s.copy_from_slice(src);
    }
}
/// Zeroes `len` bytes at `off`.
#[inline(always)]
pub fn wr_zero(b: &mut [u8], off: usize, len: usize) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(len)) {
        s.fill(0);
    }
}
/// Zeroes the `len` bytes of padding at `off` after variable-size data (fewer than 8 on
/// either target): a few stores rather than a call to `memset`.
#[inline(always)]
pub fn wr_pad(b: &mut [u8], off: usize, len: usize) {
    if len >= 8 {
        wr_zero(b, off, len);
        return;
    }
    let mut o = off;
    if len & 4 != 0 {
        wr_u32(b, o, 0);
        o = o.wrapping_add(4);
    }
    if len & 2 != 0 {
        wr_u16(b, o, 0);
        o = o.wrapping_add(2);
    }
    if len & 1 != 0 {
        wr_u8(b, o, 0);
    }
}
/// Borrows `len` bytes at `off` (empty if out of range).
#[inline(always)]
pub fn rd_bytes(b: &[u8], off: usize, len: usize) -> &[u8] {
    b.get(off..off.wrapping_add(len)).unwrap_or(&[])
}

/// Borrows `len` bytes at `off` mutably (empty if out of range).
#[inline(always)]
pub fn bytes_at_mut(b: &mut [u8], off: usize, len: usize) -> &mut [u8] {
    b.get_mut(off..off.wrapping_add(len)).unwrap_or(&mut [])
}

/// Writes a message header.
#[inline(always)]
pub fn wr_header(
    b: &mut [u8],
    t: Target,
    bits: u32,
    size: u32,
    remote: PortName,
    local: PortName,
    id: i32,
) {
    wr_u32(b, 0, bits);
    wr_u32(b, 4, size);
    match t {
        Target::X86_64 => {
            wr_u64(b, 8, remote.0 as u64);
            wr_u64(b, 16, local.0 as u64);
            wr_u32(b, 24, 0);
            wr_u32(b, 28, id as u32);
        }
        Target::I386 => {
            wr_u32(b, 8, remote.0);
            wr_u32(b, 12, local.0);
            wr_u32(b, 16, 0);
            wr_u32(b, 20, id as u32);
        }
    }
}

/// `msgh_bits` of a message.
#[inline(always)]
pub fn msgh_bits(b: &[u8]) -> u32 {
    rd_u32(b, 0)
}
/// `msgh_size` of a message.
#[inline(always)]
pub fn msgh_size(b: &[u8]) -> u32 {
    rd_u32(b, 4)
}
/// `msgh_remote_port` (the reply port of a received request).
#[inline(always)]
pub fn msgh_remote(b: &[u8]) -> PortName {
    PortName(rd_u32(b, 8))
}
/// `msgh_local_port` (the request port of a received request).
#[inline(always)]
pub fn msgh_local(b: &[u8], t: Target) -> PortName {
    PortName(rd_u32(b, crate::wire::header::local(t)))
}
/// `msgh_seqno`.
#[inline(always)]
pub fn msgh_seqno(b: &[u8], t: Target) -> u32 {
    rd_u32(b, crate::wire::header::seqno(t))
}
/// `msgh_id`.
#[inline(always)]
pub fn msgh_id(b: &[u8], t: Target) -> i32 {
    rd_u32(b, crate::wire::header::id(t)) as i32
}

/// Writes an inline port: the name in a `port_size` slot (upper half zero on x86_64).
#[inline(always)]
pub fn wr_port(b: &mut [u8], off: usize, t: Target, name: PortName) {
    match t {
        Target::X86_64 => wr_u64(b, off, name.0 as u64),
        Target::I386 => wr_u32(b, off, name.0),
    }
}
/// Reads an inline port name.
#[inline(always)]
pub fn rd_port(b: &[u8], off: usize) -> PortName {
    PortName(rd_u32(b, off))
}
/// Reads an inline port name and replaces it with `MACH_PORT_NULL`: the right now belongs
/// to the caller, so destroying the message later must not release it again.
#[inline(always)]
pub fn take_port(b: &mut [u8], off: usize) -> PortName {
    let n = rd_u32(b, off);
    wr_u32(b, off, 0);
    PortName(n)
}

/// Writes a pre-encoded descriptor template.
#[inline(always)]
pub fn wr_desc(b: &mut [u8], off: usize, template: &[u8]) {
    wr_bytes(b, off, template)
}

/// Sets `msgt_number` of the descriptor at `off` (`msgtl_number` for i386 long forms).
#[inline(always)]
pub fn desc_set_number(b: &mut [u8], off: usize, t: Target, long: bool, n: u32) {
    match (t, long) {
        (Target::X86_64, _) => wr_u32(b, off + 4, n),
        (Target::I386, true) => wr_u32(b, off + 8, n),
        (Target::I386, false) => {
            let w = rd_u32(b, off);
            wr_u32(b, off, (w & !0x0fff_0000) | ((n & 0xfff) << 16));
        }
    }
}
/// Sets `msgt_name` (`msgtl_name` for i386 long forms).
#[inline(always)]
pub fn desc_set_name(b: &mut [u8], off: usize, t: Target, long: bool, name: u32) {
    match (t, long) {
        (Target::I386, true) => wr_u16(b, off + 4, name as u16),
        _ => wr_u8(b, off, name as u8),
    }
}
/// Sets `msgt_size` (`msgtl_size` for i386 long forms).
#[inline(always)]
pub fn desc_set_size(b: &mut [u8], off: usize, t: Target, long: bool, size: u32) {
    match (t, long) {
        (Target::X86_64, _) => wr_u16(b, off + 1, size as u16),
        (Target::I386, true) => wr_u16(b, off + 6, size as u16),
        (Target::I386, false) => wr_u8(b, off + 1, size as u8),
    }
}
fn set_flag(b: &mut [u8], off: usize, bit: u32, v: bool) {
    let w = rd_u32(b, off);
    wr_u32(b, off, if v { w | bit } else { w & !bit });
}
/// Sets `msgt_inline`.
#[inline(always)]
pub fn desc_set_inline(b: &mut [u8], off: usize, t: Target, v: bool) {
    let bit = match t {
        Target::X86_64 => desc_bits::x86_64::INLINE,
        Target::I386 => desc_bits::i386::INLINE,
    };
    set_flag(b, off, bit, v)
}
/// Sets `msgt_deallocate`.
#[inline(always)]
pub fn desc_set_dealloc(b: &mut [u8], off: usize, t: Target, v: bool) {
    let bit = match t {
        Target::X86_64 => desc_bits::x86_64::DEALLOCATE,
        Target::I386 => desc_bits::i386::DEALLOCATE,
    };
    set_flag(b, off, bit, v)
}
/// Decodes the descriptor at `off` (a zeroed descriptor if out of range).
#[inline(always)]
pub fn rd_desc(b: &[u8], off: usize, t: Target) -> DecodedDesc {
    TypeDesc::decode(t, b, off).unwrap_or(DecodedDesc {
        desc: TypeDesc::default(),
        wire_size: 0,
        header_fields: 0,
    })
}
/// GNU MIG's quick check: the descriptor's raw word(s) equal the template.
#[inline(always)]
pub fn desc_is(b: &[u8], off: usize, template: &[u8]) -> bool {
    rd_bytes(b, off, template.len()) == template
}

/// `mig_strncpy(dst, src, len)` into a field of `len` bytes: copies at most `len - 1`
/// bytes of `src` (up to its first NUL), zero-fills the rest of the field, returns the
/// number of bytes copied.
pub fn wr_cstr(b: &mut [u8], off: usize, len: usize, src: &[u8]) -> u32 {
    if len == 0 {
        return 0;
    }
    let n = src
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(src.len())
        .min(len - 1);
    wr_bytes(b, off, &src[..n]);
    wr_zero(b, off + n, len - n);
    n as u32
}
/// The string in a field of `len` bytes: up to its first NUL (or all `len` bytes).
#[inline]
pub fn rd_cstr(b: &[u8], off: usize, len: usize) -> &[u8] {
    let s = rd_bytes(b, off, len);
    let n = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    &s[..n]
}

/// Rounds `n` up to the body alignment of `t`.
#[inline(always)]
pub const fn align(t: Target, n: usize) -> usize {
    let a = t.align() as usize;
    (n + a - 1) & !(a - 1)
}

/// Sets `RetCode` in a reply.
#[inline(always)]
pub fn set_retcode(b: &mut [u8], t: Target, code: KernReturn) {
    wr_u32(b, t.retcode_offset() as usize, code.0 as u32)
}
/// `RetCode` of a reply.
#[inline(always)]
pub fn retcode(b: &[u8], t: Target) -> KernReturn {
    KernReturn(rd_u32(b, t.retcode_offset() as usize) as i32)
}

/// Prepares a reply as GNU MIG's demux does: header addressed to the request's reply port,
/// `msgh_id + 100`, the INTEGER_32 `RetCode` descriptor, and `RetCode = MIG_BAD_ID`
/// until a routine sets it. Returns the request id.
#[inline]
pub fn reply_setup(request: &[u8], reply: &mut [u8], t: Target) -> i32 {
    // With both headers in range (always, past a demux's capacity check) the fields are
    // read and written at known offsets of slices of known length: no check per field.
    match (
        request.get(..t.header_size() as usize),
        reply.get_mut(..t.reply_header_size() as usize),
    ) {
        (Some(rq), Some(rp)) => reply_setup_in(rq, rp, t),
        _ => reply_setup_in(request, reply, t),
    }
}

#[inline(always)]
fn reply_setup_in(request: &[u8], reply: &mut [u8], t: Target) -> i32 {
    let bits = msgh_bits(request);
    let id = msgh_id(request, t);
    let reply_port = msgh_remote(request);
    let size = t.reply_header_size();
    // Every byte of the reply header is written once: the header (all of its fields), the
    // `RetCode` descriptor, `RetCode` and the padding after it.
    wr_header(
        reply,
        t,
        crate::wire::msgh_bits::make(crate::wire::msgh_bits::remote(bits), 0),
        size,
        reply_port,
        PortName::NULL,
        id.wrapping_add(100),
    );
    // `RetCodeType`: INTEGER_32, 32 bits, 1, inline (`TypeDesc::inline(INTEGER_32, 32, 1)`).
    let rc: &[u8] = match t {
        Target::X86_64 => &[0x02, 0x20, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00],
        Target::I386 => &[0x02, 0x20, 0x01, 0x10],
    };
    wr_bytes(reply, t.header_size() as usize, rc);
    set_retcode(reply, t, KernReturn::MIG_BAD_ID);
    let end = t.retcode_offset() as usize + 4;
    wr_zero(reply, end, (size as usize).saturating_sub(end));
    id
}

/// Finishes a successful reply: `RetCode = KERN_SUCCESS`, `MACH_MSGH_BITS_COMPLEX` if
/// `complex`, and `msgh_size`, written through one slice of the reply header's length.
#[inline(always)]
pub fn finish_reply(b: &mut [u8], t: Target, complex: bool, size: u32) {
    let Some(h) = b.get_mut(..t.reply_header_size() as usize) else {
        return;
    };
    set_retcode(h, t, KernReturn::KERN_SUCCESS);
    // Bits and size in one 8-byte store: a read-modify-write of the bits alone compiles to
    // a one-byte `or`, and the receiver's 4-byte read of the bits would then wait for it to
    // drain instead of being forwarded.
    let bits = msgh_bits(h)
        | if complex {
            crate::wire::msgh_bits::COMPLEX
        } else {
            0
        };
    wr_u64(h, 0, u64::from(bits) | (u64::from(size) << 32));
}

/// Ensures a reply buffer can hold `size` bytes (growing owned buffers), all of them
/// initialized (zeroed if they were not).
#[inline(always)]
pub fn reply_capacity(reply: &mut MsgBuf<'_>, size: usize) -> bool {
    // The common case, a kept buffer already that large, is one comparison.
    reply.bytes().len() >= size || reply_capacity_grow(reply, size)
}

#[inline(never)]
fn reply_capacity_grow(reply: &mut MsgBuf<'_>, size: usize) -> bool {
    if !reply.reserve(size) {
        return false;
    }
    reply.init_to(size);
    true
}

/// Releases a right named in a received message that no typed value took (destroying
/// what a failed stub leaves behind).
pub fn release_name(space: SpaceId, name: PortName, msgt_name: u32) {
    if !name.is_valid() {
        return;
    }
    let kind = match RightKind::from_received(msgt_name) {
        Some(k) => k,
        None => return,
    };
    if let Some(s) = port_spaces() {
        s.release(space, name, kind);
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The element type of an inline array that the `_into` stubs exchange as a slice: a
/// primitive integer or float (every bit pattern is a value, no padding). Sealed.
pub trait WireElem: Copy + Default + sealed::Sealed {
    /// Wire (and memory) size of one element.
    const SIZE: usize;
    /// The element from its `SIZE` little-endian bytes (zero if `b` is shorter).
    fn from_le(b: &[u8]) -> Self;
    /// Writes the element's little-endian bytes into the first `SIZE` bytes of `b`
    /// (nothing if `b` is shorter).
    fn write_le(self, b: &mut [u8]);
}

macro_rules! wire_elem {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl WireElem for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline(always)]
            fn from_le(b: &[u8]) -> Self {
                match b.get(..Self::SIZE).and_then(|b| b.try_into().ok()) {
                    Some(a) => <$t>::from_le_bytes(a),
                    None => Self::default(),
                }
            }
            #[inline(always)]
            fn write_le(self, b: &mut [u8]) {
                if let Some(d) = b.get_mut(..Self::SIZE) {
                    d.copy_from_slice(&self.to_le_bytes());
                }
            }
        }
    )*};
}
wire_elem!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// The end of `n` elements of `T` at `off` in the `len` bytes at `base`, if they can be
/// viewed in place: in range, aligned for `T`, and on a little-endian host (the wire's byte
/// order).
#[inline(always)]
fn elems_end<T: WireElem>(base: *const u8, len: usize, off: usize, n: usize) -> Option<usize> {
    if cfg!(target_endian = "big") {
        return None;
    }
    let end = off.checked_add(n.checked_mul(T::SIZE)?)?;
    (end <= len && base.wrapping_add(off).cast::<T>().is_aligned()).then_some(end)
}

/// `n` elements at `off` viewed in place (see [`elems_end`]); `None` if they cannot be.
#[inline(always)]
fn elems_mut<T: WireElem>(b: &mut [u8], off: usize, n: usize) -> Option<&mut [T]> {
    let end = elems_end::<T>(b.as_ptr(), b.len(), off, n)?;
    let bytes = b.get_mut(off..end)?;
    // SAFETY: `bytes` is `n * size_of::<T>()` initialized bytes, exclusively borrowed for
    // the returned lifetime, and aligned for `T` (`elems_end`). `T` is one of the sealed
    // primitive integers or floats: it has no padding and every bit pattern is a valid value,
    // so the bytes are `n` valid `T`s, and whatever is written through the slice leaves them
    // initialized bytes. On a little-endian host (`elems_end`) their memory order is the
    // wire's.
    Some(unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), n) })
}

/// The shared counterpart of [`elems_mut`].
#[inline(always)]
fn elems<T: WireElem>(b: &[u8], off: usize, n: usize) -> Option<&[T]> {
    let end = elems_end::<T>(b.as_ptr(), b.len(), off, n)?;
    let bytes = b.get(off..end)?;
    // SAFETY: as in `elems_mut`, for a shared borrow: `n * size_of::<T>()` initialized,
    // aligned bytes that stay unchanged while the returned slice lives.
    Some(unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), n) })
}

/// Calls `f` with `n` elements of type `T` at `off` of a message being built (a server's
/// reply array): in place when [`WireElem`]s can be viewed there (aligned, little-endian
/// host), else through a temporary whose elements are then written at `off` in wire form.
/// Either way, afterwards the bytes at `off` hold what `f` wrote.
#[inline(always)]
pub fn with_elems_mut<T: WireElem, R>(
    b: &mut [u8],
    off: usize,
    n: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    match elems_mut::<T>(b, off, n) {
        Some(s) => f(s),
        None => with_elems_copied(b, off, n, f),
    }
}

#[cold]
#[inline(never)]
fn with_elems_copied<T: WireElem, R>(
    b: &mut [u8],
    off: usize,
    n: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut tmp = alloc::vec![T::default(); n];
    let r = f(&mut tmp);
    for (c, x) in bytes_at_mut(b, off, n.saturating_mul(T::SIZE))
        .chunks_exact_mut(T::SIZE)
        .zip(tmp.iter())
    {
        x.write_le(c);
    }
    r
}

/// Copies `out.len()` elements of a received inline array at `off` into `out` (zeros for
/// what lies past the end of `b`).
#[inline(always)]
pub fn rd_elems_into<T: WireElem>(b: &[u8], off: usize, out: &mut [T]) {
    match elems::<T>(b, off, out.len()) {
        Some(s) => out.copy_from_slice(s),
        None => rd_elems_slow(b, off, out),
    }
}

#[cold]
#[inline(never)]
fn rd_elems_slow<T: WireElem>(b: &[u8], off: usize, out: &mut [T]) {
    for (i, x) in out.iter_mut().enumerate() {
        *x = T::from_le(rd_bytes(b, off.wrapping_add(i * T::SIZE), T::SIZE));
    }
}

/// Releases every right and out-of-line region a received message holds, after a stub
/// rejected it (the client side of `mach_msg_destroy`). Header rights are not touched
/// (a reply's remote port is the caller's reply port, already consumed). Bounded by the
/// message size; garbage stops the walk.
pub fn destroy_body(msg: &mut MsgBuf<'_>, t: Target) {
    let space = msg.space();
    let size = (msgh_size(msg.bytes()) as usize).min(msg.bytes().len());
    let mut off = t.header_size() as usize;
    let mut releases: alloc::vec::Vec<(PortName, u32)> = alloc::vec::Vec::new();
    while off < size {
        let Ok(d) = TypeDesc::decode(t, &msg.bytes()[..size], off) else {
            break;
        };
        off = align(t, off + d.wire_size);
        let name = d.desc.name;
        let bits = d.desc.size as u64 * d.desc.number as u64;
        if d.desc.inline {
            let bytes = bits.div_ceil(8) as usize;
            if type_name::is_port_any_right(name) && d.desc.size > 0 {
                let step = (d.desc.size / 8) as usize;
                for i in 0..d.desc.number as usize {
                    let p = off + i * step;
                    if p + 4 > size {
                        break;
                    }
                    releases.push((rd_port(msg.bytes(), p), name));
                    wr_u32(msg.init_mut(), p, 0);
                }
            }
            off = align(t, off.saturating_add(bytes));
        } else {
            let addr = match t {
                Target::X86_64 => rd_u64(msg.bytes(), off),
                Target::I386 => rd_u32(msg.bytes(), off) as u64,
            };
            let bytes = bits.div_ceil(8) as usize;
            if let Some(buf) = msg.take_ool(addr, bytes) {
                if type_name::is_port_any_right(name) {
                    for c in buf.chunks_exact(4) {
                        releases
                            .push((PortName(u32::from_le_bytes([c[0], c[1], c[2], c[3]])), name));
                    }
                }
                drop(buf);
            }
            off = align(t, off + t.pointer_size() as usize);
        }
    }
    for (n, k) in releases {
        release_name(space, n, k);
    }
    msg.clear_ool();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_never_panic() {
        let mut b = [0u8; 8];
        wr_u64(&mut b, 4, 1);
        assert_eq!(b, [0; 8]);
        wr_u32(&mut b, usize::MAX - 1, 1);
        assert_eq!(rd_u32(&b, usize::MAX - 1), 0);
        assert_eq!(rd_u64(&b, 1), 0);
        wr_u32(&mut b, 4, 0xdead_beef);
        assert_eq!(rd_u32(&b, 4), 0xdead_beef);
        assert_eq!(rd_bytes(&b, 6, 10), &[] as &[u8]);
    }

    #[test]
    fn cstr_copies_like_mig_strncpy() {
        let mut b = [0xffu8; 8];
        assert_eq!(wr_cstr(&mut b, 0, 8, b"abc"), 3);
        assert_eq!(b, [b'a', b'b', b'c', 0, 0, 0, 0, 0]);
        assert_eq!(wr_cstr(&mut b, 0, 4, b"abcdef"), 3);
        assert_eq!(&b[..4], b"abc\0");
        assert_eq!(rd_cstr(&b, 0, 8), b"abc");
        assert_eq!(wr_cstr(&mut b, 0, 8, b"x\0yz"), 1);
    }

    #[test]
    fn descriptor_patching_both_targets() {
        for t in Target::ALL {
            for long in [false, true] {
                let d = TypeDesc {
                    name: 9,
                    size: 8,
                    number: 0,
                    inline: true,
                    longform: long,
                    deallocate: false,
                    unused: 0,
                };
                let mut b = [0u8; 16];
                let n = d.encode(t, &mut b).unwrap();
                desc_set_number(&mut b, 0, t, long, 100);
                desc_set_inline(&mut b, 0, t, false);
                desc_set_dealloc(&mut b, 0, t, true);
                desc_set_name(&mut b, 0, t, long, 17);
                desc_set_size(&mut b, 0, t, long, 32);
                let got = TypeDesc::decode(t, &b, 0).unwrap();
                assert_eq!(got.wire_size, n);
                assert_eq!(
                    got.desc,
                    TypeDesc {
                        name: 17,
                        size: 32,
                        number: 100,
                        inline: false,
                        longform: long,
                        deallocate: true,
                        unused: 0
                    },
                    "{t:?} long={long}"
                );
            }
        }
    }

    #[test]
    fn reply_setup_matches_gnu_mig() {
        let mut req = [0u8; 32];
        wr_header(
            &mut req,
            Target::X86_64,
            0x1200 | 0x12,
            32,
            PortName(5),
            PortName(9),
            2250,
        );
        let mut rep = [0xaau8; 48];
        assert_eq!(reply_setup(&req, &mut rep, Target::X86_64), 2250);
        assert_eq!(msgh_bits(&rep), 0x12);
        assert_eq!(msgh_size(&rep), 48);
        assert_eq!(msgh_remote(&rep), PortName(5));
        assert_eq!(msgh_id(&rep, Target::X86_64), 2350);
        assert_eq!(rd_u64(&rep, 32), 0x0000_0001_2000_2002);
        assert_eq!(retcode(&rep, Target::X86_64), KernReturn::MIG_BAD_ID);
        assert_eq!(&rep[44..48], &[0, 0, 0, 0]);
    }

    #[test]
    fn reply_setup_retcode_type_is_the_encoded_descriptor() {
        for t in [Target::X86_64, Target::I386] {
            let mut want = [0u8; 12];
            let n = TypeDesc::inline(type_name::INTEGER_32, 32, 1)
                .encode(t, &mut want)
                .unwrap();
            let req = [0u8; 32];
            let mut rep = [0xaau8; 48];
            reply_setup(&req, &mut rep, t);
            let h = t.header_size() as usize;
            assert_eq!(&rep[h..h + n], &want[..n], "{t:?}");
        }
    }

    #[test]
    fn elems_in_place_and_copied() {
        // Aligned: in place.
        let mut buf = crate::msg::AlignedBuf::<64>::new();
        let r = with_elems_mut::<i32, usize>(&mut buf.0, 8, 4, |s| {
            assert_eq!(s.len(), 4);
            s[0] = -2;
            s[3] = 7;
            2
        });
        assert_eq!(r, 2);
        assert_eq!(rd_u32(&buf.0, 8), (-2i32) as u32);
        assert_eq!(rd_u32(&buf.0, 20), 7);
        let mut out = [0i32; 4];
        rd_elems_into(&buf.0, 8, &mut out);
        assert_eq!(out, [-2, 0, 0, 7]);
        // Misaligned: through a temporary, same bytes.
        with_elems_mut::<u64, ()>(&mut buf.0, 9, 2, |s| {
            assert_eq!(s.len(), 2);
            s[1] = 0x0102_0304_0506_0708;
        });
        assert_eq!(rd_u64(&buf.0, 17), 0x0102_0304_0506_0708);
        let mut out = [0u64; 2];
        rd_elems_into(&buf.0, 9, &mut out);
        assert_eq!(out, [0, 0x0102_0304_0506_0708]);
        // Out of range: never panics; what lies outside reads as zero.
        let mut out = [1u16; 4];
        rd_elems_into(&buf.0, 60, &mut out);
        assert_eq!(out, [0, 0, 0, 0]);
        with_elems_mut::<f32, ()>(&mut buf.0, 60, 8, |s| s.fill(1.0));
        with_elems_mut::<u8, ()>(&mut buf.0, usize::MAX, 8, |s| s.fill(1));
    }

    #[test]
    fn wr_pad_zeroes_exactly() {
        for len in 0..12 {
            let mut b = [0xffu8; 24];
            wr_pad(&mut b, 3, len);
            for (i, x) in b.iter().enumerate() {
                let want = if (3..3 + len).contains(&i) { 0 } else { 0xff };
                assert_eq!(*x, want, "len {len} byte {i}");
            }
        }
        let mut b = [0xffu8; 4];
        wr_pad(&mut b, 2, 7);
        wr_pad(&mut b, 3, 4);
        assert_eq!(b, [0xff, 0xff, 0xff, 0xff]);
    }
}
