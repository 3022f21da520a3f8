//! Messages inside the kernel ("kmsgs"): the sender's bytes after copyin, with every port
//! right and out-of-line region lifted out into side vectors.
//!
//! The byte image keeps the sender's layout (x86_64: 32-byte header, 8-byte descriptors,
//! 8-byte inline port slots, 8-byte out-of-line addresses). Copyin already rewrote each port
//! descriptor's `msgt_name` to the received form and set `msgt_deallocate` on out-of-line
//! descriptors, as GNU Mach does; copyout only writes names and addresses.

use super::state::PortId;
use crate::msg::OolBuffer;

/// A port object carried by a message: a right to a port, or one of the two invalid names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KObj {
    Null,
    Dead,
    Port(PortId),
}

/// One inline port slot.
pub(crate) struct KPort {
    /// Offset of the 8-byte slot in the message.
    pub off: u32,
    pub obj: KObj,
    /// Received type (`MACH_MSG_TYPE_PORT_RECEIVE/SEND/SEND_ONCE`).
    pub ty: u32,
}

/// An out-of-line port array.
pub(crate) struct KPortArray {
    /// Offset of the address slot in the message.
    pub off: u32,
    pub objs: Vec<KObj>,
    pub ty: u32,
}

/// An out-of-line data region.
pub(crate) struct KOol {
    /// Offset of the address slot in the message.
    pub off: u32,
    pub data: OolBuffer,
}

/// Kernel messages are boxed (cheap to move through queues) and recycled.
pub(crate) type KBox = Box<KMsg>;

/// Images up to this size live inside the kernel message.
pub(crate) const INLINE: usize = 128;

/// A message image. A small one is stored inline, right after the kernel message's header
/// fields, so that a receiving thread finds the whole message in the first cache lines of
/// one allocation (no pointer to chase to another line); a larger one on the heap. The bytes
/// are inline exactly when the length is at most [`INLINE`].
#[repr(C)]
pub(crate) struct Image {
    len: usize,
    pub(super) inline: InlineBytes,
    heap: Vec<u8>,
}

#[repr(C)]
pub(super) struct InlineBytes([u8; INLINE]);

impl Image {
    fn new() -> Image {
        Image {
            len: 0,
            inline: InlineBytes([0; INLINE]),
            heap: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for `new_len` bytes, moving the image to the heap if it no longer fits
    /// inline; returns the whole (resized) image.
    fn grow(&mut self, new_len: usize) -> &mut [u8] {
        if new_len <= INLINE {
            self.len = new_len;
            return &mut self.inline.0[..new_len];
        }
        if self.len <= INLINE {
            self.heap.clear();
            self.heap.extend_from_slice(&self.inline.0[..self.len]);
        } else {
            self.heap.truncate(self.len);
        }
        self.heap.resize(new_len, 0);
        self.len = new_len;
        &mut self.heap[..]
    }

    pub(crate) fn extend_from_slice(&mut self, src: &[u8]) {
        let old = self.len;
        let new_len = old + src.len();
        if new_len <= INLINE {
            self.inline.0[old..new_len].copy_from_slice(src);
        } else {
            if old <= INLINE {
                self.heap.clear();
                self.heap.extend_from_slice(&self.inline.0[..old]);
            } else {
                self.heap.truncate(old);
            }
            self.heap.extend_from_slice(src);
        }
        self.len = new_len;
    }

    /// Resizes to `n` bytes, new bytes set to `v`.
    pub(crate) fn resize(&mut self, n: usize, v: u8) {
        let old = self.len;
        if n <= old {
            self.len = n;
            if old > INLINE && n <= INLINE {
                self.inline.0[..n].copy_from_slice(&self.heap[..n]);
            }
            return;
        }
        self.grow(n)[old..].fill(v);
    }

    /// The allocation kept for reuse.
    pub(crate) fn capacity(&self) -> usize {
        INLINE.max(self.heap.capacity())
    }
}

impl core::ops::Deref for Image {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.len <= INLINE {
            &self.inline.0[..self.len]
        } else {
            &self.heap[..self.len]
        }
    }
}

impl core::ops::DerefMut for Image {
    fn deref_mut(&mut self) -> &mut [u8] {
        if self.len <= INLINE {
            &mut self.inline.0[..self.len]
        } else {
            &mut self.heap[..self.len]
        }
    }
}

/// A message in the kernel. The fields a receiver reads come first, then the inline image
/// (see [`Image`]); the side vectors, usually empty and then never written, come last.
#[repr(C, align(64))]
pub(crate) struct KMsg {
    /// `msgh_bits` in kernel form: `MACH_MSGH_BITS(dest type, reply type)` with received
    /// types, plus the other bits.
    pub bits: u32,
    /// `msgh_size` (the sender's `send_size`).
    pub size: u32,
    pub id: i32,
    pub seqno: u32,
    /// The destination right (`None` once released, e.g. for a dead destination).
    pub dest: Option<PortId>,
    pub reply: KObj,
    /// The whole message image, header included (`size` bytes).
    pub bytes: Image,
    pub ports: Vec<KPort>,
    pub arrays: Vec<KPortArray>,
    pub ool: Vec<KOol>,
    /// After copyout: the regions the receiver gets (port arrays and data, in message
    /// order).
    pub received: Vec<OolBuffer>,
}

impl KMsg {
    /// An empty message (no image).
    pub(crate) fn empty() -> KMsg {
        KMsg {
            bits: 0,
            size: 0,
            id: 0,
            seqno: 0,
            dest: None,
            reply: KObj::Null,
            bytes: Image::new(),
            ports: Vec::new(),
            arrays: Vec::new(),
            ool: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Resets every field, keeping the allocations. Side vectors that are already empty are
    /// not written (their cache line then stays shared between threads).
    pub(crate) fn reset(&mut self) {
        self.bits = 0;
        self.size = 0;
        self.dest = None;
        self.reply = KObj::Null;
        self.id = 0;
        self.seqno = 0;
        self.bytes.clear();
        if !self.ports.is_empty() {
            self.ports.clear();
        }
        if !self.arrays.is_empty() {
            self.arrays.clear();
        }
        if !self.ool.is_empty() {
            self.ool.clear();
        }
        if !self.received.is_empty() {
            self.received.clear();
        }
    }

    /// Bytes of out-of-line data the message holds.
    pub(crate) fn ool_bytes(&self) -> usize {
        self.ool.iter().map(|o| o.data.len()).sum()
    }

    /// `MACH_MSGH_BITS_REMOTE` of the kernel bits: the destination's type.
    pub(crate) fn dest_type(&self) -> u32 {
        crate::wire::msgh_bits::remote(self.bits)
    }

    /// `MACH_MSGH_BITS_LOCAL` of the kernel bits: the reply's type.
    pub(crate) fn reply_type(&self) -> u32 {
        crate::wire::msgh_bits::local(self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_moves_between_inline_and_heap() {
        let mut i = Image::new();
        let data: Vec<u8> = (0..=255).collect();
        i.extend_from_slice(&data[..100]);
        assert_eq!(&i[..], &data[..100]);
        i.extend_from_slice(&data[100..200]);
        assert_eq!(&i[..], &data[..200]);
        i[150] = 7;
        assert_eq!(i[150], 7);
        i.resize(40, 0);
        assert_eq!(&i[..], &data[..40]);
        i.resize(300, 9);
        assert_eq!(&i[..40], &data[..40]);
        assert!(i[40..].iter().all(|&b| b == 9));
        i.clear();
        assert!(i.is_empty());
        i.extend_from_slice(&data[..INLINE]);
        assert_eq!(&i[..], &data[..INLINE]);
        i.extend_from_slice(&data[..1]);
        assert_eq!(i.len(), INLINE + 1);
        assert_eq!(i[INLINE], 0);
        assert!(i.capacity() > INLINE);
    }
}
