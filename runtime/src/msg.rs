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

enum OolInner {
    Heap(Box<[u8]>),
    /// Memory mapped by a kernel (e.g. a GNU Mach VM region), released by a hook.
    Mapped {
        ptr: NonNull<u8>,
        len: usize,
        release: OolRelease,
    },
}

/// An owned out-of-line memory region: what a message brought, or what a sender gives away
/// with `deallocate`. Dereferences to its bytes; dropping it releases the region
/// (`vm_deallocate` on a real kernel).
pub struct OolBuffer {
    inner: OolInner,
}

// SAFETY: an `OolBuffer` owns its region exclusively (like a `Box<[u8]>`); the `Mapped`
// variant's pointer is never shared with another owner, so moving or sharing `&OolBuffer`
// across threads is as safe as for `Box<[u8]>`.
unsafe impl Send for OolBuffer {}
// SAFETY: see above; `&OolBuffer` only gives `&[u8]`.
unsafe impl Sync for OolBuffer {}

impl OolBuffer {
    /// An empty region (address 0, length 0 on the wire).
    pub fn empty() -> OolBuffer {
        OolBuffer {
            inner: OolInner::Heap(Box::default()),
        }
    }

    /// Takes ownership of heap bytes.
    pub fn from_vec(v: Vec<u8>) -> OolBuffer {
        OolBuffer {
            inner: OolInner::Heap(v.into_boxed_slice()),
        }
    }

    /// Copies `data` into a new heap region.
    pub fn copy_from(data: &[u8]) -> OolBuffer {
        OolBuffer::from_vec(data.to_vec())
    }

    /// A zero-filled region of `len` bytes.
    pub fn zeroed(len: usize) -> OolBuffer {
        OolBuffer::from_vec(vec![0; len])
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
                inner: OolInner::Mapped { ptr, len, release },
            },
            _ => OolBuffer::empty(),
        }
    }

    /// The address of the bytes: what goes into a message's data field.
    pub fn addr(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.as_ptr() as usize
        }
    }

    /// Converts into a `Vec<u8>` (copies mapped memory).
    pub fn into_vec(mut self) -> Vec<u8> {
        match &mut self.inner {
            OolInner::Heap(b) => core::mem::take(b).into_vec(),
            OolInner::Mapped { .. } => self.deref().to_vec(),
        }
    }
}

impl Deref for OolBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            OolInner::Heap(b) => b,
            // SAFETY: `from_mapped`'s contract: the region is readable, owned by us, and
            // unchanged while we live.
            OolInner::Mapped { ptr, len, .. } => unsafe {
                core::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

impl AsRef<[u8]> for OolBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for OolBuffer {
    fn drop(&mut self) {
        if let OolInner::Mapped { ptr, len, release } = self.inner {
            (release.release)(ptr.as_ptr() as usize, len);
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

enum Storage<'a> {
    Borrowed(&'a mut [u8]),
    Owned(Vec<u8>),
}

/// A message buffer: bytes plus the out-of-line side table. See the module docs.
pub struct MsgBuf<'a> {
    storage: Storage<'a>,
    ool: Vec<OolEntry<'a>>,
    /// The IPC space the names in a received message belong to.
    space: SpaceId,
}

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

impl<'a> MsgBuf<'a> {
    /// A buffer over caller-provided bytes (its capacity is `bytes.len()`).
    pub fn new(bytes: &'a mut [u8]) -> MsgBuf<'a> {
        MsgBuf {
            storage: Storage::Borrowed(bytes),
            ool: Vec::new(),
            space: SpaceId::SELF,
        }
    }

    /// A heap buffer of `capacity` zero bytes.
    pub fn with_capacity(capacity: usize) -> MsgBuf<'static> {
        MsgBuf {
            storage: Storage::Owned(vec![0; capacity]),
            ool: Vec::new(),
            space: SpaceId::SELF,
        }
    }

    /// A heap buffer holding a copy of `bytes` (capacity = length).
    pub fn from_bytes(bytes: &[u8]) -> MsgBuf<'static> {
        MsgBuf {
            storage: Storage::Owned(bytes.to_vec()),
            ool: Vec::new(),
            space: SpaceId::SELF,
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

    /// All bytes of the buffer (its whole capacity).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Borrowed(b) => b,
            Storage::Owned(v) => v,
        }
    }

    /// All bytes of the buffer, mutably.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            Storage::Borrowed(b) => b,
            Storage::Owned(v) => v,
        }
    }

    /// Capacity in bytes.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.bytes().len()
    }

    /// Grows an owned buffer to at least `capacity` bytes (borrowed buffers cannot grow).
    #[inline]
    pub fn reserve(&mut self, capacity: usize) -> bool {
        match &mut self.storage {
            Storage::Owned(v) => {
                if v.len() < capacity {
                    v.resize(capacity, 0);
                }
                true
            }
            Storage::Borrowed(b) => b.len() >= capacity,
        }
    }

    /// The message's `msgh_size` field (0 if the buffer is too small to hold it).
    #[inline]
    pub fn msgh_size(&self) -> u32 {
        wire::bytes::get_u32(self.bytes(), wire::header::SIZE).unwrap_or(0)
    }

    /// The message bytes: the first `msgh_size` bytes, clamped to the capacity.
    pub fn message(&self) -> &[u8] {
        let n = (self.msgh_size() as usize).min(self.capacity());
        &self.bytes()[..n]
    }

    /// Decodes the header.
    pub fn header(&self, t: Target) -> Result<MsgHeader, WireError> {
        MsgHeader::decode(t, self.bytes())
    }

    /// Attaches borrowed out-of-line data for sending; returns the address to write into the
    /// descriptor's data field.
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
    pub fn attach_ool_owned(&mut self, data: OolBuffer) -> u64 {
        let addr = data.addr() as u64;
        if addr != 0 {
            self.ool.push(OolEntry {
                addr,
                data: OolData::Owned(data),
            });
        }
        addr
    }

    /// Records a region the message brought (transports call this on receive).
    pub fn push_received_ool(&mut self, data: OolBuffer) -> u64 {
        self.attach_ool_owned(data)
    }

    /// Takes the received region at `addr`, which must hold at least `len` bytes. An address
    /// of 0 with length 0 gives an empty buffer. `None` if the message brought no such region.
    pub fn take_ool(&mut self, addr: u64, len: usize) -> Option<OolBuffer> {
        if addr == 0 && len == 0 {
            return Some(OolBuffer::empty());
        }
        let i = self.ool.iter().position(|e| {
            entry_addr(e.addr, addr) == addr && matches!(e.data, OolData::Owned(_))
        })?;
        if self.ool[i].data.bytes().len() < len {
            return None;
        }
        match self.ool.swap_remove(i).data {
            OolData::Owned(b) => Some(b),
            OolData::Borrowed(_) => None,
        }
    }

    /// Finds the attached region containing `addr..addr+len` (transports call this on send).
    pub fn find_ool(&self, addr: u64, len: usize) -> Option<&[u8]> {
        if len == 0 {
            return Some(&[]);
        }
        self.ool.iter().find_map(|e| {
            let bytes = e.data.bytes();
            let off = addr.checked_sub(entry_addr(e.addr, addr))? as usize;
            let end = off.checked_add(len)?;
            bytes.get(off..end)
        })
    }

    /// Removes and returns the attached entry starting exactly at `addr` (transports use it
    /// to move owned regions instead of copying).
    pub fn remove_ool(&mut self, addr: u64) -> Option<OolEntry<'a>> {
        let i = self
            .ool
            .iter()
            .position(|e| entry_addr(e.addr, addr) == addr)?;
        Some(self.ool.swap_remove(i))
    }

    /// The side table.
    pub fn ool_entries(&self) -> &[OolEntry<'a>] {
        &self.ool
    }

    /// Drops every attached or received region (releasing owned ones).
    #[inline]
    pub fn clear_ool(&mut self) {
        self.ool.clear();
    }
}

impl fmt::Debug for MsgBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgBuf")
            .field("capacity", &self.capacity())
            .field("msgh_size", &self.msgh_size())
            .field("ool", &self.ool)
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
    }
}
