//! A small builder for typed messages, for tests, examples and hand-written clients.
//!
//! It follows the body layout rules of mig-language.md §4.3: every descriptor is followed by
//! its data (or an out-of-line address), and every item starts at a multiple of the target's
//! alignment. Inline ports take [`Target::port_size`] bytes each (`msgt_size` 64 on x86_64),
//! out-of-line port arrays hold 32-bit names.
//!
//! ```
//! use mig_runtime::build::MsgBuilder;
//! use mig_runtime::wire::{msgh_bits, type_name as tn, PortName, Target};
//! let m = MsgBuilder::new(Target::X86_64)
//!     .header(msgh_bits::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE), PortName(3), PortName(5), 21002)
//!     .int64(7)
//!     .int32(1)
//!     .finish();
//! assert_eq!(m.len(), 64);
//! ```

use crate::wire::{align_up, bytes, type_name as tn, MsgHeader, PortName, Target, TypeDesc};
use alloc::vec::Vec;

/// Builds a message image. Call [`MsgBuilder::header`] first; [`MsgBuilder::finish`] sets
/// `msgh_size`.
#[derive(Clone, Debug)]
pub struct MsgBuilder {
    target: Target,
    bytes: Vec<u8>,
}

impl MsgBuilder {
    pub fn new(target: Target) -> MsgBuilder {
        MsgBuilder {
            target,
            bytes: alloc::vec![0; target.header_size() as usize],
        }
    }

    /// Sets the header fields (size is filled in by [`MsgBuilder::finish`]).
    pub fn header(mut self, bits: u32, remote: PortName, local: PortName, id: i32) -> Self {
        let h = MsgHeader {
            bits,
            size: 0,
            remote,
            local,
            local_high: 0,
            seqno: 0,
            id,
        };
        let _ = h.encode(self.target, &mut self.bytes);
        self
    }

    fn pad(&mut self) {
        let n = align_up(self.bytes.len() as u32, self.target.align()) as usize;
        self.bytes.resize(n, 0);
    }

    /// Appends a descriptor and raw data (padded to the alignment).
    pub fn raw(mut self, desc: TypeDesc, data: &[u8]) -> Self {
        let mut d = [0u8; 12];
        if let Ok(n) = desc.encode(self.target, &mut d) {
            self.bytes.extend_from_slice(&d[..n]);
        }
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends just a descriptor (no data, no padding), for malformed-message tests.
    pub fn raw_desc(mut self, desc: TypeDesc) -> Self {
        let mut d = [0u8; 12];
        if let Ok(n) = desc.encode(self.target, &mut d) {
            self.bytes.extend_from_slice(&d[..n]);
        }
        self
    }

    /// Appends raw bytes with no descriptor.
    pub fn raw_bytes(mut self, data: &[u8]) -> Self {
        self.bytes.extend_from_slice(data);
        self
    }

    pub fn int32(self, v: i32) -> Self {
        self.raw(TypeDesc::inline(tn::INTEGER_32, 32, 1), &v.to_le_bytes())
    }

    pub fn int64(self, v: i64) -> Self {
        self.raw(TypeDesc::inline(tn::INTEGER_64, 64, 1), &v.to_le_bytes())
    }

    /// An inline char array (long form when it does not fit the short form's number
    /// field, as MIG does).
    pub fn chars(self, s: &[u8]) -> Self {
        let mut d = TypeDesc::inline(tn::CHAR, 8, s.len() as u32);
        d.longform = s.len() >= 4096;
        self.raw(d, s)
    }

    /// Inline port rights with one disposition.
    pub fn ports(self, disposition: u32, names: &[PortName]) -> Self {
        let t = self.target;
        let bits = t.port_size() * 8;
        let mut data = Vec::with_capacity(names.len() * t.port_size() as usize);
        for n in names {
            match t {
                Target::X86_64 => data.extend_from_slice(&u64::from(n.0).to_le_bytes()),
                Target::I386 => data.extend_from_slice(&n.0.to_le_bytes()),
            }
        }
        self.raw(
            TypeDesc::inline(disposition, bits, names.len() as u32),
            &data,
        )
    }

    /// One inline port right.
    pub fn port(self, disposition: u32, name: PortName) -> Self {
        self.ports(disposition, &[name])
    }

    /// An out-of-line region: descriptor (long form) plus the address.
    pub fn ool(self, name: u32, size: u32, number: u32, addr: u64, deallocate: bool) -> Self {
        let d = TypeDesc {
            name,
            size,
            number,
            inline: false,
            longform: true,
            deallocate,
            unused: 0,
        };
        let a = addr.to_le_bytes();
        let n = self.target.pointer_size() as usize;
        self.raw(d, &a[..n])
    }

    /// Out-of-line bytes (`CHAR`, 8 bits each).
    pub fn ool_bytes(self, len: u32, addr: u64, deallocate: bool) -> Self {
        self.ool(tn::CHAR, 8, len, addr, deallocate)
    }

    /// An out-of-line array of `count` port names (32 bits each) at `addr`.
    pub fn ool_ports(self, disposition: u32, count: u32, addr: u64, deallocate: bool) -> Self {
        self.ool(disposition, 32, count, addr, deallocate)
    }

    /// Current length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The message with `msgh_size` set to its length.
    pub fn finish(mut self) -> Vec<u8> {
        let n = self.bytes.len() as u32;
        let _ = bytes::put_u32(&mut self.bytes, crate::wire::header::SIZE, n);
        self.bytes
    }
}

/// Packs port names as an out-of-line port array (32-bit little-endian names).
pub fn port_array(names: &[PortName]) -> Vec<u8> {
    names.iter().flat_map(|n| n.0.to_le_bytes()).collect()
}
