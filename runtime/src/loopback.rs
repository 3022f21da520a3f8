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
        self.deliver_body(from, size, to, t)
    }

    /// The body of a complex message being delivered: received port types, normalized
    /// `msgt_deallocate` ([`TypeDesc::received`]), out-of-line regions copied or moved.
    /// Descriptors and addresses are read from the sender's copy (the received one was just
    /// written, and loads from it would wait for the copy's stores); a descriptor is
    /// rewritten in the received copy only if it changes.
    #[inline(always)]
    fn deliver_body(
        &self,
        from: &mut MsgBuf<'_>,
        size: usize,
        to: &mut MsgBuf<'_>,
        t: Target,
    ) -> Result<(), KernReturn> {
        let too_small = KernReturn(msg_return::SEND_MSG_TOO_SMALL as i32);
        let mut off = t.header_size() as usize;
        while off < size {
            let src = from.bytes().get(..size).ok_or(too_small)?;
            let d = TypeDesc::decode(t, src, off).map_err(|_| too_small)?;
            let sent = d.desc;
            let received = sent.received();
            // (An i386 long header with stray name/size/number bits is rewritten clean.)
            if received != sent || d.header_fields != 0 {
                match t {
                    // Only the first word of an x86_64 descriptor can change.
                    Target::X86_64 => {
                        if let Ok(w) = received.x86_64_word0() {
                            stub::wr_u32(to.init_mut(), off, w);
                        }
                    }
                    Target::I386 => {
                        let mut tmp = [0u8; 12];
                        if let Ok(n) = received.encode(t, &mut tmp) {
                            stub::wr_bytes(to.init_mut(), off, &tmp[..n]);
                        }
                    }
                }
            }
            let data = stub::align(t, off + d.wire_size);
            let len = (u64::from(sent.size) * u64::from(sent.number)).div_ceil(8);
            if sent.inline {
                let a = u64::from(t.align());
                let next = (data as u64).saturating_add(len).saturating_add(a - 1) & !(a - 1);
                off = usize::try_from(next).unwrap_or(usize::MAX);
            } else {
                let ptr = t.pointer_size() as usize;
                if data + ptr > size {
                    return Err(too_small);
                }
                let addr = match t {
                    Target::X86_64 => stub::rd_u64(src, data),
                    Target::I386 => u64::from(stub::rd_u32(src, data)),
                };
                let new = Self::deliver_ool(from, to, addr, len, sent.deallocate)?;
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
