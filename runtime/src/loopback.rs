//! An in-process loopback transport: a client's `mach_msg` is delivered straight to a
//! demux function and the reply straight back, with the rewriting the kernel does in transit
//! but without port name translation (one name space) and without threads.
//!
//! It is for tests and benchmarks of generated stubs (client → demux → reply → client):
//! * the header's ports swap sides and dispositions become received forms
//!   (`MACH_MSGH_BITS(received(local), received(remote))`);
//! * body port descriptors get their received type name (`COPY_SEND` → `PORT_SEND`…) and
//!   `msgt_deallocate` is normalized (false inline, true out-of-line);
//! * out-of-line regions attached to the sent message are copied (or moved, when owned and
//!   deallocated) into regions of the receiving message, whose addresses replace the
//!   sender's.
//!
//! Messages are x86_64 or i386 as the transport's `Target` says. Rights are not counted;
//! use the userspace IPC for that.

use crate::msg::{MsgBuf, OolBuffer, OolData};
use crate::rights::SpaceId;
use crate::stub;
use crate::transport::{Demux, Transport};
use crate::wire::{msg_return, msgh_bits, type_name, KernReturn, PortName, Target, TypeDesc};
use core::cell::{Cell, RefCell};

/// The reply port name loopback stubs use.
pub const REPLY_PORT: PortName = PortName(0x103);

/// A transport that delivers every message to a demux in the calling thread.
///
/// The receive buffers of the demux (request and reply) are kept between calls, as a server
/// loop keeps its buffers: bytes after a message are whatever earlier messages left there.
/// A demux that calls back into the same transport gets fresh buffers for the inner call.
pub struct Loopback<D> {
    demux: D,
    target: Target,
    space: SpaceId,
    seqno: Cell<u32>,
    /// The demux's request and reply buffers.
    buffers: RefCell<(MsgBuf<'static>, MsgBuf<'static>)>,
    /// Size of the reply buffer handed to the demux.
    pub reply_capacity: usize,
}

impl<D: Demux> Loopback<D> {
    pub fn new(demux: D, target: Target) -> Loopback<D> {
        Loopback {
            demux,
            target,
            space: SpaceId::SELF,
            seqno: Cell::new(0),
            buffers: RefCell::new((MsgBuf::with_capacity(0), MsgBuf::with_capacity(0))),
            reply_capacity: 8192,
        }
    }

    /// Delivers `from` (sent bytes plus its attachments) into a fresh receive buffer. `t`
    /// is `self.target`, passed as a constant by each caller's per-target copy.
    #[inline(always)]
    fn deliver(
        &self,
        from: &mut MsgBuf<'_>,
        size: usize,
        to: &mut MsgBuf<'_>,
        t: Target,
    ) -> Result<(), KernReturn> {
        let too_small = KernReturn(msg_return::SEND_MSG_TOO_SMALL as i32);
        if size < t.header_size() as usize {
            return Err(too_small);
        }
        let Some(m) = from.bytes().get(..size) else {
            return Err(too_small);
        };
        // The header is read from the sender's copy before the message is copied, and the
        // rewritten one stored over the copy: no load waits for the copy's stores.
        let h = SentHeader::read(m, t);
        let Some(dst) = to.receive(m) else {
            return Err(too_small);
        };
        let seq = self.seqno.get();
        self.seqno.set(seq.wrapping_add(1));
        h.write(dst, t, size, seq);
        to.set_space(self.space);
        if h.bits & msgh_bits::COMPLEX == 0 {
            return Ok(());
        }
        match t {
            Target::X86_64 => self.deliver_body_x86_64(from, size, to),
            Target::I386 => self.deliver_body_i386(from, size, to),
        }
    }

    /// The body of a complex x86_64 message being delivered (see [`Loopback::deliver_body`]):
    /// every descriptor is one 8-byte word pair whose name byte and deallocate bit are
    /// patched in place, and only when they change.
    #[inline(always)]
    fn deliver_body_x86_64(
        &self,
        from: &mut MsgBuf<'_>,
        size: usize,
        to: &mut MsgBuf<'_>,
    ) -> Result<(), KernReturn> {
        use crate::wire::desc_bits::x86_64::{DEALLOCATE, INLINE};
        let too_small = KernReturn(msg_return::SEND_MSG_TOO_SMALL as i32);
        let mut off = Target::X86_64.header_size() as usize;
        while off < size {
            // Read from the sender's copy (the received one was just written, and loads
            // from it would wait for the copy's stores); `deliver` checked it holds `size`.
            let src = from.bytes();
            let data = off + 8;
            if data > size {
                return Err(too_small);
            }
            let w0 = stub::rd_u32(src, off);
            let number = stub::rd_u32(src, off + 4);
            let name = w0 & 0xff;
            let inline = w0 & INLINE != 0;
            let mut w = w0;
            if type_name::is_port_any(name) {
                w = (w & !0xff) | type_name::received_form(name);
            }
            w = if inline {
                w & !DEALLOCATE
            } else {
                w | DEALLOCATE
            };
            if w != w0 {
                stub::wr_u32(to.init_mut(), off, w);
            }
            let len = (u64::from((w0 >> 8) & 0xffff) * u64::from(number)).div_ceil(8);
            if inline {
                let next = (data as u64 + len + 7) & !7;
                off = usize::try_from(next).unwrap_or(usize::MAX);
            } else {
                if data + 8 > size {
                    return Err(too_small);
                }
                let addr = stub::rd_u64(src, data);
                let new = Self::deliver_ool(from, to, addr, len, w0 & DEALLOCATE != 0)?;
                stub::wr_u64(to.init_mut(), data, new);
                off = data + 8;
            }
        }
        Ok(())
    }

    /// [`Loopback::deliver_body`] for i386 messages.
    #[inline(never)]
    fn deliver_body_i386(
        &self,
        from: &mut MsgBuf<'_>,
        size: usize,
        to: &mut MsgBuf<'_>,
    ) -> Result<(), KernReturn> {
        self.deliver_body(from, size, to, Target::I386)
    }

    /// The body of a complex message being delivered: received port types, normalized
    /// `msgt_deallocate`, out-of-line regions copied or moved. Any target; x86_64 messages
    /// take [`Loopback::deliver_body_x86_64`].
    #[inline(always)]
    fn deliver_body(
        &self,
        from: &mut MsgBuf<'_>,
        size: usize,
        to: &mut MsgBuf<'_>,
        t: Target,
    ) -> Result<(), KernReturn> {
        // Walk the body. Descriptors and addresses are read from the sender's copy (the
        // received one was just written, and loads from it would wait for the copy's stores)
        // and the rewritten ones stored into the received copy.
        let too_small = KernReturn(msg_return::SEND_MSG_TOO_SMALL as i32);
        let mut off = t.header_size() as usize;
        while off < size {
            let d = TypeDesc::decode(t, from.bytes().get(..size).unwrap_or(&[]), off)
                .map_err(|_| too_small)?;
            let mut desc = d.desc;
            let data = stub::align(t, off + d.wire_size);
            let bits_total = desc.size as u64 * desc.number as u64;
            if type_name::is_port_any(desc.name) {
                desc.name = type_name::received_form(desc.name);
            }
            desc.deallocate = !desc.inline;
            let mut tmp = [0u8; 12];
            if let Ok(n) = desc.encode(t, &mut tmp) {
                stub::wr_bytes(to.init_mut(), off, &tmp[..n]);
            }
            if desc.inline {
                off = stub::align(t, data + bits_total.div_ceil(8) as usize);
            } else {
                let ptr = t.pointer_size() as usize;
                if data + ptr > size {
                    return Err(too_small);
                }
                let addr = match t {
                    Target::X86_64 => stub::rd_u64(from.bytes(), data),
                    Target::I386 => stub::rd_u32(from.bytes(), data) as u64,
                };
                let len = bits_total.div_ceil(8);
                let new = Self::deliver_ool(from, to, addr, len, d.desc.deallocate)?;
                match t {
                    Target::X86_64 => stub::wr_u64(to.init_mut(), data, new),
                    Target::I386 => stub::wr_u32(to.init_mut(), data, new as u32),
                }
                off = data + ptr;
            }
        }
        Ok(())
    }

    /// Delivers the out-of-line region of `len` bytes at `addr` in `from` (moved if the
    /// sender deallocates an owned region of exactly that size, copied otherwise) into
    /// `to`; returns its address there.
    #[inline(always)]
    fn deliver_ool(
        from: &mut MsgBuf<'_>,
        to: &mut MsgBuf<'_>,
        addr: u64,
        len: u64,
        deallocate: bool,
    ) -> Result<u64, KernReturn> {
        let invalid = KernReturn(msg_return::SEND_INVALID_MEMORY as i32);
        let len = usize::try_from(len).map_err(|_| invalid)?;
        // Each way pushes its region itself: a region value merged from several ways would
        // go through the stack, and its move into the side table would wait on the stores
        // just made.
        Ok(if len == 0 {
            to.push_received_ool(OolBuffer::empty())
        } else if deallocate {
            match from.remove_ool(addr) {
                Some(e) => match e.data {
                    OolData::Owned(b) if b.len() == len => to.push_received_ool(b),
                    other => to.push_received_copy(other.bytes().get(..len).unwrap_or(&[])),
                },
                None => return Err(invalid),
            }
        } else {
            match from.find_ool(addr, len) {
                Some(bytes) => to.push_received_copy(bytes),
                None => return Err(invalid),
            }
        })
    }
}

/// The fields of a sent header that delivery rewrites or keeps.
#[derive(Clone, Copy)]
struct SentHeader {
    bits: u32,
    remote: PortName,
    local: PortName,
    id: i32,
}

impl SentHeader {
    /// Reads the header of a message being sent (`b` holds at least its header).
    #[inline(always)]
    fn read(b: &[u8], t: Target) -> SentHeader {
        SentHeader {
            bits: stub::msgh_bits(b),
            remote: stub::msgh_remote(b),
            local: stub::msgh_local(b, t),
            id: stub::msgh_id(b, t),
        }
    }

    /// Writes the delivered header into `b` (which holds at least a header): ports swapped
    /// with their received dispositions, `msgh_size` and a sequence number.
    #[inline(always)]
    fn write(self, b: &mut [u8], t: Target, size: usize, seq: u32) {
        let Some(b) = b.get_mut(..t.header_size() as usize) else {
            return;
        };
        let nb = msgh_bits::make(
            type_name::received_form(msgh_bits::local(self.bits)),
            type_name::received_form(msgh_bits::remote(self.bits)),
        ) | msgh_bits::other(self.bits);
        stub::wr_header(b, t, nb, size as u32, self.local, self.remote, self.id);
        stub::wr_u32(b, crate::wire::header::seqno(t), seq);
    }
}

impl<D: Demux> Transport for Loopback<D> {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        _rcv_name: PortName,
        _timeout: u32,
        _notify: PortName,
    ) -> KernReturn {
        use crate::wire::option::SEND_MSG;
        if option & SEND_MSG == 0 {
            return KernReturn(msg_return::RCV_INVALID_NAME as i32);
        }
        let Ok(mut kept) = self.buffers.try_borrow_mut() else {
            // A nested call (the demux called this transport).
            return self.mach_msg_nested(msg, option, send_size, rcv_size);
        };
        let (req, rep) = &mut *kept;
        self.call(msg, option, send_size, rcv_size, req, rep)
    }

    fn get_reply_port(&self) -> PortName {
        REPLY_PORT
    }

    fn dealloc_reply_port(&self, _port: PortName) {}

    fn space(&self) -> SpaceId {
        self.space
    }
}

impl<D: Demux> Loopback<D> {
    /// A `mach_msg` made while the kept buffers are in use: with fresh ones.
    #[cold]
    #[inline(never)]
    fn mach_msg_nested(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
    ) -> KernReturn {
        let mut req = MsgBuf::with_capacity(0);
        let mut rep = MsgBuf::with_capacity(0);
        self.call(msg, option, send_size, rcv_size, &mut req, &mut rep)
    }

    /// One `mach_msg` with the demux's buffers `req` and `rep`.
    #[inline(always)]
    fn call(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        req: &mut MsgBuf<'static>,
        rep: &mut MsgBuf<'static>,
    ) -> KernReturn {
        rep.reserve(self.reply_capacity);
        // One copy of the whole exchange per target, so that its offsets are constants.
        let r = match self.target {
            Target::X86_64 => self.rpc(msg, option, send_size, rcv_size, req, rep, Target::X86_64),
            Target::I386 => self.rpc(msg, option, send_size, rcv_size, req, rep, Target::I386),
        };
        // What the demux left in the buffers is released, as a server loop does.
        req.clear_ool();
        rep.clear_ool();
        r
    }

    /// One `mach_msg`: delivers `msg` into `req`, runs the demux with `rep`, delivers the
    /// reply back into `msg`. `t` is `self.target`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn rpc(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        req: &mut MsgBuf<'static>,
        rep: &mut MsgBuf<'static>,
        t: Target,
    ) -> KernReturn {
        use crate::wire::option::RCV_MSG;
        if let Err(e) = self.deliver(msg, send_size as usize, req, t) {
            return e;
        }
        msg.clear_ool();
        // No stale reply: a demux that writes nothing leaves a null reply port.
        stub::wr_port(
            rep.init_mut(),
            crate::wire::header::REMOTE,
            t,
            PortName::NULL,
        );
        self.demux.demux(req, rep);
        if option & RCV_MSG == 0 {
            return KernReturn::KERN_SUCCESS;
        }
        let rb = rep.bytes();
        let code = stub::retcode(rb, t);
        if code == KernReturn::MIG_NO_REPLY || stub::msgh_remote(rb).is_null() {
            return KernReturn(msg_return::RCV_TIMED_OUT as i32);
        }
        let size = stub::msgh_size(rb) as usize;
        if size > rcv_size as usize {
            return KernReturn(msg_return::RCV_TOO_LARGE as i32);
        }
        match self.deliver(rep, size, msg, t) {
            Ok(()) => KernReturn::KERN_SUCCESS,
            Err(e) => e,
        }
    }
}
