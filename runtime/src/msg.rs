//! Message buffers and out-of-line memory.
//!
//! A [`MsgBuf`] is the byte buffer a stub encodes a request into and decodes a reply from
//! (one buffer for both, as GNU MIG's stubs use one union). Beside the bytes it carries a
//! side table of out-of-line regions:
//!
//! * on **send**, every region whose address a stub writes into an out-of-line descriptor is
//!   *attached* ([`MsgBuf::attach_ool`], [`MsgBuf::attach_ool_owned`]). A transport that
//!   emulates the kernel copies or moves only attached memory, so a forged address in a
//!   message can never make it read arbitrary memory (it answers
//!   `MACH_SEND_INVALID_MEMORY`). A transport that issues the real `mach_msg` trap ignores
//!   the table: the kernel reads the sender's address space itself.
//! * on **receive**, the transport records every region the message brought
//!   ([`MsgBuf::push_received_ool`]); the stub takes ownership with [`MsgBuf::take_ool`]. A
//!   region nobody takes is released when the buffer is cleared or dropped, which is the
//!   memory half of `mach_msg_destroy`.

use crate::rights::SpaceId;
use crate::wire::{self, MsgHeader, Target, WireError};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::Deref;
use core::ptr::NonNull;

/// How an [`OolBuffer`] gives its memory back.
#[derive(Clone, Copy)]
pub struct OolRelease {
    /// Called once with the region's address and length when the buffer is dropped.
    pub release: fn(addr: usize, len: usize),
}

impl fmt::Debug for OolRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OolRelease")
    }
}

/// An owned out-of-line memory region: what a message brought, or what a sender gives away
/// with `deallocate`. Dereferences to its bytes; dropping it releases the region
/// (`vm_deallocate` on a real kernel).
///
/// Two words, so that it (and `Option`/`Result`s of it) moves in registers: a heap or
/// static region is its pointer and length; a region mapped by a kernel, which also needs
/// its release hook, is a pointer to a small heap record of the three.
pub struct OolBuffer {
    /// What the region is, by `meta`:
    /// * `0`: empty (`ptr` dangling, nothing owned);
    /// * `1..FLAG`: a heap block of `meta` initialized bytes allocated as a `Box<[u8]>`;
    /// * `FLAG`: `ptr` is a `Box<Mapped>` turned into a pointer;
    /// * above `FLAG`: `meta - FLAG` bytes of a `&'static [u8]` at `ptr`, never released.
    ///
    /// Either way the bytes are readable and unchanged for the buffer's life, and only a
    /// static region is reached by anything else (shared, read-only).
    ptr: NonNull<u8>,
    meta: usize,
}

/// The flag in [`OolBuffer::meta`] for regions not on this buffer's heap (heap and slice
/// lengths never reach it: no object exceeds `isize::MAX` bytes).
const FLAG: usize = 1 << (usize::BITS - 1);

/// A region mapped by a kernel: `len > 0` readable bytes at `ptr`, given back by `release`.
struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
    release: OolRelease,
}

// SAFETY: an `OolBuffer` owns its region exclusively (like a `Box<[u8]>`), or shares a
// `&'static [u8]` (which is `Send` and `Sync`) read-only; so moving or sharing `&OolBuffer`
// across threads is as safe as for `Box<[u8]>`.
unsafe impl Send for OolBuffer {}
// SAFETY: see above; `&OolBuffer` only gives `&[u8]`.
unsafe impl Sync for OolBuffer {}

impl OolBuffer {
    /// An empty region (address 0, length 0 on the wire).
    #[inline]
    pub const fn empty() -> OolBuffer {
        OolBuffer {
            ptr: NonNull::dangling(),
            meta: 0,
        }
    }

    /// Takes ownership of heap bytes.
    #[inline]
    pub fn from_vec(v: Vec<u8>) -> OolBuffer {
        OolBuffer::from_box(v.into_boxed_slice())
    }

    /// Takes ownership of a boxed slice.
    #[inline]
    pub fn from_box(b: Box<[u8]>) -> OolBuffer {
        let len = b.len();
        if len == 0 {
            return OolBuffer::empty();
        }
        // The box becomes raw parts; `Drop` rebuilds it from them.
        let ptr = NonNull::from(Box::leak(b)).cast::<u8>();
        OolBuffer { ptr, meta: len }
    }

    /// Copies `data` into a new heap region.
    #[inline]
    pub fn copy_from(data: &[u8]) -> OolBuffer {
        OolBuffer::from_box(data.into())
    }

    /// A zero-filled region of `len` bytes.
    pub fn zeroed(len: usize) -> OolBuffer {
        OolBuffer::from_vec(vec![0; len])
    }

    /// A region that lives for the whole program and is never released: what a server
    /// hands out of memory it keeps (a kernel or transport copies it on send).
    #[inline]
    pub const fn from_static(data: &'static [u8]) -> OolBuffer {
        if data.is_empty() {
            return OolBuffer::empty();
        }
        OolBuffer {
            // SAFETY: a slice's pointer is never null. It is only read through.
            ptr: unsafe { NonNull::new_unchecked(data.as_ptr().cast_mut()) },
            meta: FLAG | data.len(),
        }
    }

    /// Wraps a region mapped into this address space by a kernel.
    ///
    /// # Safety
    /// `addr..addr+len` must be readable memory that nothing else owns or mutates for the
    /// life of the buffer, and `release` must be the right way to give it back.
    pub unsafe fn from_mapped(addr: usize, len: usize, release: OolRelease) -> OolBuffer {
        // The address comes from a kernel (or a test) as an integer: take the provenance it
        // was exposed with.
        match NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(addr)) {
            Some(ptr) if len > 0 => OolBuffer {
                ptr: NonNull::from(Box::leak(Box::new(Mapped { ptr, len, release }))).cast(),
                meta: FLAG,
            },
            _ => OolBuffer::empty(),
        }
    }

    /// Whether dropping the buffer gives memory back (false for empty and static regions).
    #[inline(always)]
    fn needs_release(&self) -> bool {
        self.meta != 0 && (self.meta & FLAG == 0 || self.meta == FLAG)
    }

    /// The region's first byte and length.
    #[inline(always)]
    fn parts(&self) -> (NonNull<u8>, usize) {
        if self.meta == FLAG {
            // SAFETY: `meta == FLAG`: `ptr` is a live `Box<Mapped>` this buffer owns.
            let m = unsafe { self.ptr.cast::<Mapped>().as_ref() };
            (m.ptr, m.len)
        } else {
            (self.ptr, self.meta & !FLAG)
        }
    }

    /// The address of the bytes: what goes into a message's data field.
    #[inline]
    pub fn addr(&self) -> usize {
        match self.parts() {
            (_, 0) => 0,
            (p, _) => p.as_ptr() as usize,
        }
    }

    /// Converts into a `Vec<u8>` (copies mapped memory).
    pub fn into_vec(self) -> Vec<u8> {
        if self.meta & FLAG != 0 || self.meta == 0 {
            return self.deref().to_vec();
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: a heap region with `meta > 0` is a `Box<[u8]>` of `meta` bytes as raw
        // parts (see the `ptr` field); `this` is not dropped, so the box is rebuilt once.
        unsafe {
            Box::from_raw(core::ptr::slice_from_raw_parts_mut(
                this.ptr.as_ptr(),
                this.meta,
            ))
        }
        .into_vec()
    }
}

impl Deref for OolBuffer {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        let (ptr, len) = self.parts();
        // SAFETY: the `ptr` field's invariant: `len` initialized bytes, readable and
        // unchanged while the buffer lives (a dangling pointer with `len == 0` is valid for
        // an empty slice).
        unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
    }
}

impl Drop for OolBuffer {
    #[inline]
    fn drop(&mut self) {
        if self.meta == FLAG {
            // SAFETY: `meta == FLAG`: `ptr` is a `Box<Mapped>` this buffer owns, rebuilt
            // once here.
            let m = unsafe { Box::from_raw(self.ptr.cast::<Mapped>().as_ptr()) };
            (m.release.release)(m.ptr.as_ptr() as usize, m.len);
        } else if self.meta != 0 && self.meta & FLAG == 0 {
            // SAFETY: a heap region with `meta > 0` (see the `ptr` field), dropped once.
            drop(unsafe {
                Box::from_raw(core::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    self.meta,
                ))
            });
        }
    }
}

impl fmt::Debug for OolBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OolBuffer({} bytes)", self.len())
    }
}

impl PartialEq for OolBuffer {
    fn eq(&self, other: &OolBuffer) -> bool {
        **self == **other
    }
}

impl From<Vec<u8>> for OolBuffer {
    fn from(v: Vec<u8>) -> OolBuffer {
        OolBuffer::from_vec(v)
    }
}

impl AsRef<[u8]> for OolBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// One out-of-line region attached to a message.
pub enum OolData<'a> {
    /// The sender keeps the memory; the receiver gets a copy.
    Borrowed(&'a [u8]),
    /// The sender gives the memory away (`deallocate`), or the message brought it.
    Owned(OolBuffer),
}

impl OolData<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            OolData::Borrowed(b) => b,
            OolData::Owned(b) => b,
        }
    }
}

impl fmt::Debug for OolData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OolData::Borrowed(b) => write!(f, "Borrowed({} bytes)", b.len()),
            OolData::Owned(b) => write!(f, "Owned({} bytes)", b.len()),
        }
    }
}

/// The address of a side-table entry as a message of `addr`'s width sees it: messages for
/// 32-bit targets built on a 64-bit host carry only the low half of host addresses.
#[inline]
fn entry_addr(entry: u64, addr: u64) -> u64 {
    if addr <= u32::MAX as u64 && entry > u32::MAX as u64 {
        entry & 0xffff_ffff
    } else {
        entry
    }
}

/// A side-table entry: the address written in the message and the region behind it.
#[derive(Debug)]
pub struct OolEntry<'a> {
    pub addr: u64,
    pub data: OolData<'a>,
}

/// The out-of-line side table: one entry in place (most messages carry none or one region,
/// and a stub's buffer lives for one call), more on the heap.
enum OolTable<'a> {
    Empty,
    One(OolEntry<'a>),
    /// Once on the heap, the table stays there (a kept buffer reuses the allocation).
    Many(Vec<OolEntry<'a>>),
}

impl<'a> OolTable<'a> {
    #[inline]
    fn as_slice(&self) -> &[OolEntry<'a>] {
        match self {
            OolTable::Empty => &[],
            OolTable::One(e) => core::slice::from_ref(e),
            OolTable::Many(v) => v,
        }
    }

    #[inline]
    fn push(&mut self, e: OolEntry<'a>) {
        match self {
            // The old value is `Empty`: nothing to drop (and no call to the drop glue).
            OolTable::Empty => core::mem::forget(core::mem::replace(self, OolTable::One(e))),
            OolTable::Many(v) => v.push(e),
            OolTable::One(_) => self.push_second(e),
        }
    }

    /// Pushes an owned region, building the entry in its place in the common case (an
    /// empty table) rather than moving a finished one in.
    #[inline(always)]
    fn push_owned(&mut self, addr: u64, data: OolBuffer) {
        match self {
            OolTable::Empty => core::mem::forget(core::mem::replace(
                self,
                OolTable::One(OolEntry {
                    addr,
                    data: OolData::Owned(data),
                }),
            )),
            _ => self.push(OolEntry {
                addr,
                data: OolData::Owned(data),
            }),
        }
    }

    #[inline(never)]
    fn push_second(&mut self, e: OolEntry<'a>) {
        match self {
            OolTable::Empty => *self = OolTable::One(e),
            OolTable::Many(v) => v.push(e),
            OolTable::One(_) => {
                if let OolTable::One(first) = core::mem::replace(self, OolTable::Empty) {
                    let mut v = Vec::with_capacity(4);
                    v.push(first);
                    v.push(e);
                    *self = OolTable::Many(v);
                }
            }
        }
    }

    /// Removes entry `i` (which must exist), moving the last entry into its place.
    #[inline]
    fn swap_remove(&mut self, i: usize) -> Option<OolEntry<'a>> {
        match self {
            OolTable::Empty => None,
            OolTable::One(_) => match core::mem::replace(self, OolTable::Empty) {
                OolTable::One(e) => Some(e),
                _ => None,
            },
            OolTable::Many(v) => (i < v.len()).then(|| v.swap_remove(i)),
        }
    }

    /// Drops every entry. The common cases, an empty table and one entry with nothing to
    /// release (borrowed memory, a static or empty buffer), are a few tests inline.
    #[inline(always)]
    fn clear(&mut self) {
        let nothing_to_release = match self {
            OolTable::Empty => return,
            OolTable::One(OolEntry {
                data: OolData::Borrowed(_),
                ..
            }) => true,
            OolTable::One(OolEntry {
                data: OolData::Owned(b),
                ..
            }) => !b.needs_release(),
            OolTable::Many(_) => false,
        };
        if nothing_to_release {
            // The entry owns nothing: no drop glue to run.
            core::mem::forget(core::mem::replace(self, OolTable::Empty));
        } else {
            self.clear_entries();
        }
    }

    #[inline(never)]
    fn clear_entries(&mut self) {
        match self {
            OolTable::Empty => {}
            OolTable::One(_) => *self = OolTable::Empty,
            OolTable::Many(v) => v.clear(),
        }
    }
}

/// A message buffer: bytes plus the out-of-line side table. See the module docs.
///
/// A buffer over [`UninitBuf`] memory ([`MsgBuf::new_uninit`]) starts with no initialized
/// bytes: [`MsgBuf::bytes`] and [`MsgBuf::init_mut`] see only what has been written
/// ([`MsgBuf::init_to`], [`MsgBuf::copy_in`]), and [`MsgBuf::bytes_mut`] zeroes the rest
/// before handing out the whole capacity. Other buffers are initialized throughout.
pub struct MsgBuf<'a> {
    /// The memory: `cap` bytes valid for reads and writes for as long as the buffer lives
    /// (borrowed for `'a`, or the heap block of `heap`), of which the first `init` are
    /// initialized (`init <= cap`; `init == cap` except for buffers over uninitialized
    /// memory). Only this buffer reaches it while it lives, and only through `&self` (reads)
    /// or `&mut self` (writes). Kept as a pointer and two lengths, the same for every kind of
    /// memory, so that [`MsgBuf::bytes`] and [`MsgBuf::init_mut`] do not branch on the kind.
    ptr: NonNull<u8>,
    cap: usize,
    init: usize,
    /// The owner of heap memory (`ptr` is its buffer and `cap` its length); `None` for
    /// caller memory, which cannot grow.
    heap: ManuallyDrop<Option<Vec<u8>>>,
    ool: ManuallyDrop<OolTable<'a>>,
    /// The IPC space the names in a received message belong to.
    space: SpaceId,
    /// The caller memory is borrowed for `'a`, as `&'a mut [u8]` would be.
    _mem: PhantomData<&'a mut [MaybeUninit<u8>]>,
}

// SAFETY: a `MsgBuf` owns its memory exclusively for its life, as the `&'a mut` slice or
// `Vec<u8>` it was made from does (those are `Send` and `Sync`); shared access only reads it.
// The side table holds `&'a [u8]` and `OolBuffer`s, which are `Send` and `Sync`.
unsafe impl Send for MsgBuf<'_> {}
// SAFETY: see above; `&MsgBuf` gives only `&[u8]` views of the memory.
unsafe impl Sync for MsgBuf<'_> {}

/// Storage with the alignment GNU Mach messages have in C (8), for stubs that keep their
/// buffer on the stack: `let mut s = AlignedBuf::<128>::new(); let mut m = MsgBuf::new(&mut s.0);`
#[repr(C, align(8))]
pub struct AlignedBuf<const N: usize>(pub [u8; N]);

impl<const N: usize> AlignedBuf<N> {
    pub const fn new() -> Self {
        AlignedBuf([0; N])
    }
}

impl<const N: usize> Default for AlignedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Uninitialized storage with the alignment of [`AlignedBuf`], for stubs that keep a large
/// buffer on the stack but write only the message they send and read only the one they
/// receive (as GNU MIG's stack union is): `let mut s = UninitBuf::<4096>::new(); let mut m =
/// MsgBuf::new_uninit(&mut s.0);`. Creating it costs nothing; see [`MsgBuf::new_uninit`].
#[repr(C, align(8))]
pub struct UninitBuf<const N: usize>(pub [MaybeUninit<u8>; N]);

impl<const N: usize> UninitBuf<N> {
    #[inline(always)]
    pub const fn new() -> Self {
        UninitBuf([MaybeUninit::uninit(); N])
    }
}

impl<const N: usize> Default for UninitBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> MsgBuf<'a> {
    /// A buffer over caller-provided bytes (its capacity is `bytes.len()`).
    pub fn new(bytes: &'a mut [u8]) -> MsgBuf<'a> {
        let cap = bytes.len();
        // SAFETY: the slice's `cap` bytes are initialized and, borrowed exclusively for
        // `'a` (which the buffer carries), reached only through the buffer.
        unsafe { MsgBuf::from_raw(NonNull::from(bytes).cast(), cap, cap, None) }
    }

    /// A buffer over caller-provided uninitialized memory (its capacity is `buf.len()`),
    /// with no byte initialized yet: write the message after [`MsgBuf::init_to`] (or let a
    /// transport [`MsgBuf::copy_in`] one). Nothing is read that was not written first.
    #[inline]
    pub fn new_uninit(buf: &'a mut [MaybeUninit<u8>]) -> MsgBuf<'a> {
        let cap = buf.len();
        // SAFETY: as in `new`, with none of the `cap` bytes taken as initialized.
        unsafe { MsgBuf::from_raw(NonNull::from(buf).cast(), cap, 0, None) }
    }

    /// A heap buffer of `capacity` zero bytes.
    pub fn with_capacity(capacity: usize) -> MsgBuf<'static> {
        MsgBuf::from_vec(vec![0; capacity])
    }

    /// A heap buffer holding a copy of `bytes` (capacity = length).
    pub fn from_bytes(bytes: &[u8]) -> MsgBuf<'static> {
        MsgBuf::from_vec(bytes.to_vec())
    }

    fn from_vec(mut v: Vec<u8>) -> MsgBuf<'static> {
        let cap = v.len();
        // `as_mut_ptr` makes no reference: the pointer stays valid until the vector
        // reallocates (only `grow` does, and it takes the new pointer) or is dropped.
        let ptr = NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling());
        // SAFETY: `ptr` is the vector's buffer, whose `cap` (its length) bytes are
        // initialized; the buffer owns the vector and reaches its bytes only through `ptr`.
        unsafe { MsgBuf::from_raw(ptr, cap, cap, Some(v)) }
    }

    /// # Safety
    /// `ptr` and the lengths must satisfy the invariant documented on the fields, for `'a`.
    #[inline(always)]
    unsafe fn from_raw(ptr: NonNull<u8>, cap: usize, init: usize, heap: Option<Vec<u8>>) -> Self {
        MsgBuf {
            ptr,
            cap,
            init,
            heap: ManuallyDrop::new(heap),
            ool: ManuallyDrop::new(OolTable::Empty),
            space: SpaceId::SELF,
            _mem: PhantomData,
        }
    }

    /// The IPC space names in this message belong to (set by the transport on receive).
    #[inline]
    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// Records which IPC space the names in this message belong to.
    #[inline]
    pub fn set_space(&mut self, space: SpaceId) {
        self.space = space;
    }

    /// The initialized bytes of the buffer: its whole capacity, except for a buffer over
    /// uninitialized memory ([`MsgBuf::new_uninit`]), where it is the prefix written so far.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the invariant of `ptr`: `init <= cap` bytes there are valid for reads and
        // initialized; nothing writes them while `self` is borrowed shared (writes need
        // `&mut self`), and the slice lives no longer than that borrow.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.init) }
    }

    /// The initialized bytes of the buffer, mutably (see [`MsgBuf::bytes`]). Stubs write
    /// their message through this after [`MsgBuf::init_to`] its size.
    #[inline(always)]
    pub fn init_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the exclusive borrow of `self` makes the slice the only
        // access to the bytes while it lives; what is written through it is `u8`s, so they
        // stay initialized.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.init) }
    }

    /// Makes the first `n` bytes (at most the capacity) initialized, zeroing those that
    /// were not. Does nothing to initialized buffers.
    #[inline]
    pub fn init_to(&mut self, n: usize) {
        let n = n.min(self.cap);
        if n > self.init {
            // SAFETY: `init < n <= cap`: the bytes `init..n` are inside the memory, valid
            // for writes and reached by nothing else while `&mut self` is held.
            unsafe { core::ptr::write_bytes(self.ptr.as_ptr().add(self.init), 0, n - self.init) };
            self.init = n;
        }
    }

    /// All bytes of the buffer (its whole capacity), mutably: what a transport hands to a
    /// kernel to receive into. A buffer over uninitialized memory first zeroes the bytes not
    /// written yet.
    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.init < self.cap {
            self.init_all();
        }
        self.init_mut()
    }

    #[inline(never)]
    fn init_all(&mut self) {
        self.init_to(usize::MAX);
    }

    /// Writes `src` at the start of the buffer (a transport receiving a message), growing an
    /// owned buffer if needed; afterwards at least `src.len()` bytes are initialized.
    /// `false` (nothing written) if a borrowed buffer is too small.
    #[inline(always)]
    pub fn copy_in(&mut self, src: &[u8]) -> bool {
        self.receive(src).is_some()
    }

    /// [`MsgBuf::copy_in`] that hands back the bytes just written (`src.len()` of them), so
    /// that a transport rewriting the message it received (a header, descriptors) need not
    /// look them up again. `None` (nothing written) if a borrowed buffer is too small.
    #[inline(always)]
    pub fn receive(&mut self, src: &[u8]) -> Option<&mut [u8]> {
        let n = src.len();
        if n > self.cap && !self.grow(n) {
            return None;
        }
        // SAFETY: `n <= cap`: the first `n` bytes of the memory are valid for writes and,
        // while `&mut self` is held, reached by nothing else; `src` is not among them (it is
        // borrowed shared while `self` is borrowed exclusively), so the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr(), n) };
        self.init = self.init.max(n);
        // SAFETY: the `n <= cap` bytes were all written just above, so they are initialized;
        // the exclusive borrow of `self` makes the slice their only access while it lives.
        Some(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), n) })
    }

    /// Capacity in bytes.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Grows an owned buffer to at least `capacity` bytes (borrowed buffers cannot grow).
    #[inline]
    pub fn reserve(&mut self, capacity: usize) -> bool {
        capacity <= self.cap || self.grow(capacity)
    }

    /// Grows a heap buffer to `n > cap` bytes, zero-filled; `false` for caller memory.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) -> bool {
        let Some(v) = &mut *self.heap else {
            return false;
        };
        v.resize(n, 0);
        // The vector may have moved its bytes: take its pointer again (see `from_vec`).
        self.ptr = NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling());
        self.cap = v.len();
        self.init = self.cap;
        true
    }

    /// The message's `msgh_size` field (0 if the buffer is too small to hold it).
    #[inline]
    pub fn msgh_size(&self) -> u32 {
        wire::bytes::get_u32(self.bytes(), wire::header::SIZE).unwrap_or(0)
    }

    /// The message bytes: the first `msgh_size` bytes, clamped to the capacity.
    pub fn message(&self) -> &[u8] {
        let b = self.bytes();
        &b[..(self.msgh_size() as usize).min(b.len())]
    }

    /// Decodes the header.
    pub fn header(&self, t: Target) -> Result<MsgHeader, WireError> {
        MsgHeader::decode(t, self.bytes())
    }

    /// Attaches borrowed out-of-line data for sending; returns the address to write into the
    /// descriptor's data field.
    #[inline]
    pub fn attach_ool(&mut self, data: &'a [u8]) -> u64 {
        let addr = if data.is_empty() {
            0
        } else {
            data.as_ptr() as u64
        };
        if addr != 0 {
            self.ool.push(OolEntry {
                addr,
                data: OolData::Borrowed(data),
            });
        }
        addr
    }

    /// Attaches owned out-of-line data the sender gives away (`deallocate`); returns the
    /// address to write.
    #[inline(always)]
    pub fn attach_ool_owned(&mut self, data: OolBuffer) -> u64 {
        let addr = data.addr() as u64;
        if addr != 0 {
            self.ool.push_owned(addr, data);
        }
        addr
    }

    /// Records a region the message brought (transports call this on receive).
    #[inline]
    pub fn push_received_ool(&mut self, data: OolBuffer) -> u64 {
        self.attach_ool_owned(data)
    }

    /// Records a region the message brought as a copy of `src` (transports call this on
    /// receive); returns its address (0 for an empty region). Same as
    /// `push_received_ool(OolBuffer::copy_from(src))`, but the region's entry is stored
    /// before its bytes are copied: a stub taking the region right after reads the entry
    /// without waiting for the copy's stores to drain.
    #[inline(never)]
    pub fn push_received_copy(&mut self, src: &[u8]) -> u64 {
        let n = src.len();
        if n == 0 {
            return 0;
        }
        let raw = Box::into_raw(Box::<[u8]>::new_uninit_slice(n));
        // SAFETY: `Box::into_raw` never returns null.
        let ptr = unsafe { NonNull::new_unchecked(raw.cast::<u8>()) };
        let addr = ptr.as_ptr() as usize as u64;
        // The buffer owns the allocation from here on (a `Box<[u8]>` of `n` bytes as raw
        // parts); its bytes are written just below, before anything can read them.
        self.ool.push_owned(addr, OolBuffer { ptr, meta: n });
        // SAFETY: `ptr` is a fresh allocation of `n` bytes, valid for writes and reached by
        // nothing else yet; `src` is another object, so they do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), n) };
        addr
    }

    /// Takes the received region at `addr`, which must hold at least `len` bytes. An address
    /// of 0 with length 0 gives an empty buffer. `None` if the message brought no such region.
    #[inline(always)]
    pub fn take_ool(&mut self, addr: u64, len: usize) -> Option<OolBuffer> {
        if addr == 0 && len == 0 {
            return Some(OolBuffer::empty());
        }
        // The common case, one region: moved straight out of the table.
        if let OolTable::One(e) = &*self.ool {
            let OolData::Owned(b) = &e.data else {
                return None;
            };
            if entry_addr(e.addr, addr) != addr || b.len() < len {
                return None;
            }
            let taken = OolBuffer {
                ptr: b.ptr,
                meta: b.meta,
            };
            // The region now belongs to `taken`: the table forgets its entry without
            // releasing it.
            core::mem::forget(core::mem::replace(&mut *self.ool, OolTable::Empty));
            return Some(taken);
        }
        self.take_ool_slow(addr, len)
    }

    /// [`MsgBuf::take_ool`] from a table of several regions.
    #[inline(never)]
    fn take_ool_slow(&mut self, addr: u64, len: usize) -> Option<OolBuffer> {
        let i = self.ool.as_slice().iter().position(|e| {
            entry_addr(e.addr, addr) == addr && matches!(e.data, OolData::Owned(_))
        })?;
        if self.ool.as_slice().get(i)?.data.bytes().len() < len {
            return None;
        }
        match self.ool.swap_remove(i)?.data {
            OolData::Owned(b) => Some(b),
            OolData::Borrowed(_) => None,
        }
    }

    /// Finds the attached region containing `addr..addr+len` (transports call this on send).
    #[inline(always)]
    pub fn find_ool(&self, addr: u64, len: usize) -> Option<&[u8]> {
        if len == 0 {
            return Some(&[]);
        }
        // The common case, one region, without walking a slice of the table.
        if let OolTable::One(e) = &*self.ool {
            return Self::within(e, addr, len);
        }
        self.find_ool_slow(addr, len)
    }

    /// [`MsgBuf::find_ool`] in a table of several regions.
    #[inline(never)]
    fn find_ool_slow(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.ool
            .as_slice()
            .iter()
            .find_map(|e| Self::within(e, addr, len))
    }

    /// The bytes `addr..addr+len` if entry `e` holds them.
    #[inline(always)]
    fn within<'e>(e: &'e OolEntry<'a>, addr: u64, len: usize) -> Option<&'e [u8]> {
        let off = usize::try_from(addr.checked_sub(entry_addr(e.addr, addr))?).ok()?;
        e.data.bytes().get(off..off.checked_add(len)?)
    }

    /// Removes and returns the attached entry starting exactly at `addr` (transports use it
    /// to move owned regions instead of copying).
    #[inline]
    pub fn remove_ool(&mut self, addr: u64) -> Option<OolEntry<'a>> {
        let i = self
            .ool
            .as_slice()
            .iter()
            .position(|e| entry_addr(e.addr, addr) == addr)?;
        self.ool.swap_remove(i)
    }

    /// The side table.
    pub fn ool_entries(&self) -> &[OolEntry<'a>] {
        self.ool.as_slice()
    }

    /// Drops every attached or received region (releasing owned ones).
    #[inline]
    pub fn clear_ool(&mut self) {
        self.ool.clear();
    }
}

/// A [`MsgBuf`] whose bytes are looked up once, for a stub that reads and writes many
/// fields in place: [`MsgView::bytes`] and [`MsgView::init_mut`] are the buffer's, but from
/// a pointer and length kept in the view (in registers), not reloaded from the buffer after
/// every store into the message (which could, as far as the compiler knows, have changed
/// them). Out-of-line and space calls go to the buffer, which they leave its bytes to.
pub struct MsgView<'v, 'a> {
    buf: &'v mut MsgBuf<'a>,
    /// `buf.ptr` and `buf.init`: only `bytes_mut` changes them, and it refreshes these.
    ptr: NonNull<u8>,
    init: usize,
}

impl<'v, 'a> MsgView<'v, 'a> {
    #[inline(always)]
    pub fn new(buf: &'v mut MsgBuf<'a>) -> MsgView<'v, 'a> {
        let (ptr, init) = (buf.ptr, buf.init);
        MsgView { buf, ptr, init }
    }

    /// [`MsgBuf::bytes`].
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` and `init` are the buffer's (see the fields), whose invariant makes
        // the `init` bytes initialized and readable; the view holds the buffer exclusively,
        // so nothing writes them while this shared borrow of the view lives.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.init) }
    }

    /// [`MsgBuf::init_mut`].
    #[inline(always)]
    pub fn init_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the exclusive borrow of the view makes the slice the
        // only access to the bytes while it lives.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.init) }
    }

    /// [`MsgBuf::bytes_mut`].
    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.init < self.buf.cap {
            self.buf.init_all();
            self.ptr = self.buf.ptr;
            self.init = self.buf.init;
        }
        self.init_mut()
    }

    /// [`MsgBuf::capacity`].
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.buf.cap
    }

    /// [`MsgBuf::space`].
    #[inline(always)]
    pub fn space(&self) -> SpaceId {
        self.buf.space
    }

    /// [`MsgBuf::attach_ool`].
    #[inline(always)]
    pub fn attach_ool(&mut self, data: &'a [u8]) -> u64 {
        self.buf.attach_ool(data)
    }

    /// [`MsgBuf::attach_ool_owned`].
    #[inline(always)]
    pub fn attach_ool_owned(&mut self, data: OolBuffer) -> u64 {
        self.buf.attach_ool_owned(data)
    }

    /// [`MsgBuf::take_ool`].
    #[inline(always)]
    pub fn take_ool(&mut self, addr: u64, len: usize) -> Option<OolBuffer> {
        self.buf.take_ool(addr, len)
    }
}

impl Drop for MsgBuf<'_> {
    /// Releases the heap memory and what the side table holds. Most buffers (a stub's, on
    /// its stack, after its regions were taken) hold neither: then this is two tests inline
    /// instead of a call to drop glue.
    #[inline(always)]
    fn drop(&mut self) {
        if self.heap.is_some() || !matches!(*self.ool, OolTable::Empty) {
            self.release();
        }
    }
}

impl MsgBuf<'_> {
    /// The fields' drop (they are `ManuallyDrop` so that [`Drop::drop`] can skip it): each
    /// is replaced by a value that owns nothing, dropping the old one here.
    #[inline(never)]
    fn release(&mut self) {
        *self.heap = None;
        *self.ool = OolTable::Empty;
    }
}

impl fmt::Debug for MsgBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgBuf")
            .field("capacity", &self.capacity())
            .field("msgh_size", &self.msgh_size())
            .field("ool", &self.ool.as_slice())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_find_take() {
        let data = [1u8, 2, 3, 4];
        let mut s = AlignedBuf::<64>::new();
        let mut m = MsgBuf::new(&mut s.0);
        let a = m.attach_ool(&data);
        assert_eq!(m.find_ool(a + 1, 2), Some(&data[1..3]));
        assert_eq!(m.find_ool(a + 3, 2), None);
        assert_eq!(m.find_ool(a.wrapping_sub(1), 1), None);
        // Borrowed regions are not "received": they cannot be taken.
        assert!(m.take_ool(a, 4).is_none());
        let b = m.push_received_ool(OolBuffer::copy_from(&[9, 9]));
        assert!(m.take_ool(b, 3).is_none());
        assert_eq!(m.take_ool(b, 2).as_deref(), Some(&[9u8, 9][..]));
        assert!(m.take_ool(b, 2).is_none());
        assert_eq!(m.take_ool(0, 0).map(|b| b.len()), Some(0));
    }

    #[test]
    fn uninit_buffers_expose_only_written_bytes() {
        let mut s = UninitBuf::<64>::new();
        let mut m = MsgBuf::new_uninit(&mut s.0);
        assert_eq!(m.capacity(), 64);
        assert!(m.bytes().is_empty());
        m.init_to(8);
        assert_eq!(m.bytes(), &[0; 8]);
        m.init_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        m.init_to(4);
        assert_eq!(m.bytes(), &[1, 2, 3, 4, 0, 0, 0, 0]);
        assert!(m.copy_in(&[9; 12]));
        assert_eq!(m.bytes(), &[9; 12]);
        assert!(!m.copy_in(&[7; 65]));
        assert_eq!(m.msgh_size(), 0x0909_0909);
        assert_eq!(m.message(), &[9; 12]);
        let all = m.bytes_mut();
        assert_eq!(all.len(), 64);
        assert_eq!(&all[12..], &[0; 52]);
        assert_eq!(m.bytes().len(), 64);
    }

    #[test]
    fn side_table_grows_past_one_entry_and_shrinks() {
        let data = [[1u8; 4], [2; 4], [3; 4]];
        let mut s = AlignedBuf::<64>::new();
        let mut m = MsgBuf::new(&mut s.0);
        let a: Vec<u64> = data.iter().map(|d| m.attach_ool(d)).collect();
        let r = m.push_received_ool(OolBuffer::copy_from(&[5; 3]));
        assert_eq!(m.ool_entries().len(), 4);
        assert_eq!(m.find_ool(a[1], 4), Some(&data[1][..]));
        assert_eq!(m.take_ool(r, 3).as_deref(), Some(&[5u8; 3][..]));
        assert!(m.remove_ool(a[0]).is_some());
        assert_eq!(m.ool_entries().len(), 2);
        m.clear_ool();
        assert!(m.ool_entries().is_empty());
        let b = m.push_received_ool(OolBuffer::copy_from(&[6; 2]));
        assert_eq!(m.take_ool(b, 2).as_deref(), Some(&[6u8; 2][..]));
        assert!(m.take_ool(b, 2).is_none());
    }

    #[test]
    fn buffers_of_every_kind_are_two_words_and_read_back() {
        assert_eq!(
            core::mem::size_of::<OolBuffer>(),
            2 * core::mem::size_of::<usize>()
        );
        assert_eq!(
            core::mem::size_of::<Option<OolBuffer>>(),
            core::mem::size_of::<OolBuffer>()
        );
        static PAGE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let s = OolBuffer::from_static(&PAGE[2..5]);
        assert_eq!(&*s, &[3, 4, 5]);
        assert_eq!(s.addr(), PAGE[2..].as_ptr() as usize);
        assert_eq!(s.into_vec(), vec![3, 4, 5]);
        assert_eq!(OolBuffer::from_static(&[]).addr(), 0);
        let h = OolBuffer::copy_from(&[9, 8]);
        assert_eq!(h.len(), 2);
        assert_eq!(h.to_vec(), vec![9, 8]);
        assert_eq!(h.into_vec(), vec![9, 8]);
        let e = OolBuffer::from_vec(Vec::new());
        assert!(e.is_empty());
        assert_eq!(e.addr(), 0);
        assert_eq!(OolBuffer::zeroed(3).into_vec(), vec![0; 3]);
        // A received copy is readable once its entry is taken.
        let mut st = AlignedBuf::<64>::new();
        let mut m = MsgBuf::new(&mut st.0);
        let a = m.push_received_copy(&PAGE);
        assert_eq!(m.take_ool(a, 8).as_deref(), Some(&PAGE[..]));
        assert_eq!(m.push_received_copy(&[]), 0);
    }

    #[test]
    fn views_see_the_buffer_and_follow_bytes_mut() {
        let mut s = UninitBuf::<64>::new();
        let mut m = MsgBuf::new_uninit(&mut s.0);
        m.init_to(8);
        let mut v = MsgView::new(&mut m);
        assert_eq!(v.bytes().len(), 8);
        v.init_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        // `bytes_mut` initializes the rest of the buffer and the view follows.
        assert_eq!(v.bytes_mut().len(), 64);
        assert_eq!(&v.bytes()[..6], &[1, 2, 3, 4, 0, 0]);
        assert_eq!(v.capacity(), 64);
        let a = v.attach_ool_owned(OolBuffer::copy_from(&[7; 3]));
        let b = v.attach_ool_owned(OolBuffer::copy_from(&[8; 2]));
        assert_eq!(v.take_ool(a, 3).as_deref(), Some(&[7u8; 3][..]));
        assert_eq!(v.space(), SpaceId::SELF);
        assert_eq!(m.bytes().len(), 64);
        assert_eq!(m.ool_entries().len(), 1);
        assert_eq!(m.ool_entries()[0].addr, b);
    }

    #[test]
    fn mapped_buffers_release_once() {
        use core::sync::atomic::{AtomicUsize, Ordering};
        static RELEASED: AtomicUsize = AtomicUsize::new(0);
        fn rel(_a: usize, len: usize) {
            RELEASED.fetch_add(len, Ordering::SeqCst);
        }
        // An immutable static stands for memory a kernel mapped: readable, owned by nobody
        // else, never mutated, and nothing to free.
        static BACKING: [u8; 16] = [7; 16];
        let addr = BACKING.as_ptr().expose_provenance();
        // SAFETY: the static is readable for 'static and nothing mutates it.
        let b = unsafe { OolBuffer::from_mapped(addr, 16, OolRelease { release: rel }) };
        assert_eq!(&b[..2], &[7, 7]);
        assert_eq!(b.addr(), addr);
        drop(b);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 16);
        // SAFETY: as above.
        let b = unsafe { OolBuffer::from_mapped(addr, 4, OolRelease { release: rel }) };
        assert_eq!(b.into_vec(), vec![7; 4]);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 20);
        // SAFETY: as above; an empty region is not mapped and not released.
        let b = unsafe { OolBuffer::from_mapped(addr, 0, OolRelease { release: rel }) };
        assert_eq!(b.addr(), 0);
        drop(b);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 20);
    }
}
