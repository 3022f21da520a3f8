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

/// A message in the kernel.
pub(crate) struct KMsg {
    /// `msgh_bits` in kernel form: `MACH_MSGH_BITS(dest type, reply type)` with received
    /// types, plus the other bits.
    pub bits: u32,
    /// `msgh_size` (the sender's `send_size`).
    pub size: u32,
    /// The destination right (`None` once released, e.g. for a dead destination).
    pub dest: Option<PortId>,
    pub reply: KObj,
    pub id: i32,
    pub seqno: u32,
    /// The whole message image, header included (`size` bytes).
    pub bytes: Vec<u8>,
    pub ports: Vec<KPort>,
    pub arrays: Vec<KPortArray>,
    pub ool: Vec<KOol>,
}

impl KMsg {
    /// An empty message (no image).
    pub(crate) fn empty() -> KMsg {
        KMsg {
            bits: 0,
            size: 0,
            dest: None,
            reply: KObj::Null,
            id: 0,
            seqno: 0,
            bytes: Vec::new(),
            ports: Vec::new(),
            arrays: Vec::new(),
            ool: Vec::new(),
        }
    }

    /// Resets every field, keeping the allocations.
    pub(crate) fn reset(&mut self) {
        self.bits = 0;
        self.size = 0;
        self.dest = None;
        self.reply = KObj::Null;
        self.id = 0;
        self.seqno = 0;
        self.bytes.clear();
        self.ports.clear();
        self.arrays.clear();
        self.ool.clear();
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
