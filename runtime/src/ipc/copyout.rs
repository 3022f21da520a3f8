//! Receive-side translation (`ipc_kmsg_copyout`): rights into the receiver's space,
//! out-of-line regions into the receiver's [`MsgBuf`], and the header in received form.

use super::kmsg::{KBox, KMsg, KObj};
use super::state::{et, Entry, Obj, PortId, Receiver, State, UREFS_MAX};
use crate::msg::{MsgBuf, OolBuffer};
use crate::wire::{msg_return as mr, msgh_bits, type_name as tn, MsgHeader, PortName, Target};

impl State {
    /// `ipc_right_copyout` into the (existing or fresh) entry `name`; consumes the
    /// message's reference.
    pub(crate) fn copyout_named(&mut self, slot: u32, name: PortName, p: PortId, ty: u32) {
        let mut e = self.entry(slot, name).unwrap_or(Entry {
            obj: Obj::Port(p),
            ty: 0,
            urefs: 0,
            request: false,
        });
        match ty {
            tn::PORT_SEND_ONCE => {
                e.obj = Obj::Port(p);
                e.ty |= et::SEND_ONCE;
                e.urefs = 1;
            }
            tn::PORT_SEND => {
                if e.ty & et::SEND != 0 {
                    if let Some(port) = self.pm(p) {
                        port.srights = port.srights.saturating_sub(1);
                    }
                    self.port_release(p);
                    if e.urefs + 1 < UREFS_MAX {
                        e.urefs += 1;
                    }
                } else if e.ty & et::RECEIVE != 0 {
                    self.port_release(p);
                    e.ty |= et::SEND;
                    e.urefs = 1;
                } else {
                    e.obj = Obj::Port(p);
                    e.ty |= et::SEND;
                    e.urefs = 1;
                    if let Some(sp) = self.spm(slot) {
                        sp.reverse.insert(p, name);
                    }
                }
            }
            tn::PORT_RECEIVE => {
                if let Some(port) = self.pm(p) {
                    port.receiver = Receiver::Space { slot, name };
                }
                if e.ty & et::SEND != 0 {
                    self.port_release(p);
                    if let Some(sp) = self.spm(slot) {
                        sp.reverse.remove(&p);
                    }
                } else {
                    e.obj = Obj::Port(p);
                }
                e.ty |= et::RECEIVE;
            }
            _ => {
                self.port_release(p);
                return;
            }
        }
        self.set_entry(slot, name, e);
    }

    /// `ipc_object_copyout` (with urefs overflow pegging): a right carried by a message into
    /// the space. Returns the name, `MACH_PORT_DEAD` if the port died meanwhile, or
    /// `MACH_PORT_NULL` if the space is full or gone (the right is destroyed then).
    pub(crate) fn copyout_object(&mut self, slot: u32, o: KObj, ty: u32) -> PortName {
        let p = match o {
            KObj::Null => return PortName::NULL,
            KObj::Dead => return PortName::DEAD,
            KObj::Port(p) => p,
        };
        if !self.space_active(slot) {
            self.destroy_obj(o, ty);
            return PortName::NULL;
        }
        if !self.port_active(p) {
            self.destroy_obj(o, ty);
            return PortName::DEAD;
        }
        let existing = if ty != tn::PORT_SEND_ONCE {
            self.reverse(slot, p)
        } else {
            None
        };
        let name = match existing {
            Some(n) => n,
            None => match self.alloc_name(slot) {
                Some(n) => n,
                None => {
                    self.destroy_obj(o, ty);
                    return PortName::NULL;
                }
            },
        };
        self.copyout_named(slot, name, p, ty);
        name
    }

    /// `ipc_object_copyout_dest`: the destination right is consumed; the result is the
    /// receiver's name for the port if this space holds its receive right.
    fn copyout_dest(&mut self, slot: u32, p: PortId, ty: u32) -> PortName {
        if !self.port_active(p) {
            self.port_release(p);
            return PortName::DEAD;
        }
        let mine = match self.p(p).map(|p| p.receiver) {
            Some(Receiver::Space { slot: s, name }) if s == slot => Some(name),
            _ => None,
        };
        match ty {
            tn::PORT_SEND => {
                self.release_send(p);
                mine.unwrap_or(PortName::NULL)
            }
            tn::PORT_SEND_ONCE => match mine {
                Some(name) => {
                    self.release_sonce(p);
                    name
                }
                None => {
                    self.notify_send_once(p);
                    PortName::NULL
                }
            },
            _ => {
                self.port_release(p);
                mine.unwrap_or(PortName::NULL)
            }
        }
    }

    fn header_bits(k: &KMsg) -> u32 {
        (msgh_bits::other(k.bits) & !msgh_bits::CIRCULAR)
            | msgh_bits::make(k.reply_type(), k.dest_type())
    }

    /// The header of `k` as its receiver sees it.
    fn received_header(k: &KMsg, remote: PortName, local: PortName) -> MsgHeader {
        MsgHeader {
            bits: Self::header_bits(k),
            size: k.size,
            remote,
            local,
            local_high: 0,
            seqno: k.seqno,
            id: k.id,
        }
    }

    /// Receives `k` into the space `slot` (`ipc_kmsg_copyout`): rights get names, regions
    /// get addresses, the header takes its received form; the result is ready to be
    /// installed into the receiver's buffer without the kernel lock. `limit` is the receive
    /// size and `cap` the buffer's capacity: a larger message is destroyed except for its
    /// header (`ipc_kmsg_copyout_dest`) and yields `MACH_RCV_TOO_LARGE`.
    pub(crate) fn copyout(&mut self, slot: u32, mut k: KBox, limit: u32, cap: usize) -> Prepared {
        if !self.space_active(slot) {
            self.destroy_kmsg(k);
            return Prepared::error(mr::RCV_PORT_DIED);
        }
        let (dt, rt) = (k.dest_type(), k.reply_type());
        if k.size > limit || (k.size as usize) > cap {
            // Only the header is delivered; everything else is destroyed.
            let dest = match k.dest.take() {
                Some(d) => self.copyout_dest(slot, d, dt),
                None => PortName::DEAD,
            };
            let reply = match k.reply {
                KObj::Port(_) => {
                    self.destroy_obj(k.reply, rt);
                    PortName::NULL
                }
                KObj::Dead => PortName::DEAD,
                KObj::Null => PortName::NULL,
            };
            k.reply = KObj::Null;
            let mut header = [0u8; 32];
            let _ = Self::received_header(&k, reply, dest).encode(Target::X86_64, &mut header);
            self.destroy_kmsg(k);
            let mut h = self.new_kmsg();
            h.bytes.extend_from_slice(&header);
            let len = if cap >= 32 { 32 } else { 0 };
            return Prepared {
                code: mr::RCV_TOO_LARGE,
                msg: Some(h),
                len,
            };
        }
        self.counters.kmsgs = self.counters.kmsgs.saturating_sub(1);
        self.counters.ool_bytes = self.counters.ool_bytes.saturating_sub(k.ool_bytes());
        let reply = self.copyout_object(slot, k.reply, rt);
        let dest = match k.dest.take() {
            Some(d) => self.copyout_dest(slot, d, dt),
            None => PortName::DEAD,
        };
        let km: &mut KMsg = &mut k;
        let header = Self::received_header(km, reply, dest);
        let _ = header.encode(Target::X86_64, &mut km.bytes);
        if !km.ports.is_empty() {
            let mut ports = core::mem::take(&mut km.ports);
            for p in ports.drain(..) {
                let name = self.copyout_object(slot, p.obj, p.ty);
                let off = p.off as usize;
                km.bytes[off..off + 8].copy_from_slice(&u64::from(name.0).to_le_bytes());
            }
            km.ports = ports;
        }
        if !km.arrays.is_empty() {
            for a in core::mem::take(&mut km.arrays) {
                let mut v = Vec::with_capacity(a.objs.len() * 4);
                for o in a.objs {
                    v.extend_from_slice(&self.copyout_object(slot, o, a.ty).0.to_le_bytes());
                }
                let b = OolBuffer::from_vec(v);
                let off = a.off as usize;
                km.bytes[off..off + 8].copy_from_slice(&(b.addr() as u64).to_le_bytes());
                km.received.push(b);
            }
        }
        if !km.ool.is_empty() {
            for o in km.ool.drain(..) {
                let off = o.off as usize;
                km.bytes[off..off + 8].copy_from_slice(&(o.data.addr() as u64).to_le_bytes());
                km.received.push(o.data);
            }
        }
        let len = k.size;
        Prepared {
            code: mr::SUCCESS,
            msg: Some(k),
            len,
        }
    }
}

/// A received message, translated for its receiver and waiting to be copied into the
/// receiver's buffer (`ipc_kmsg_put`). Small, so that it fits in a waiter's cache line.
pub(crate) struct Prepared {
    pub code: u32,
    /// How many bytes of the image to copy.
    pub len: u32,
    /// The kernel message whose image (`bytes`) is to be copied, and whose `received`
    /// regions go to the receiver; no rights left in it.
    pub msg: Option<KBox>,
}

impl Prepared {
    pub(crate) fn error(code: u32) -> Prepared {
        Prepared {
            code,
            len: 0,
            msg: None,
        }
    }

    /// Copies the message into `msg` (whose side table is replaced by the received
    /// regions) and returns the `mach_msg` code, and the emptied kernel message to recycle.
    pub(crate) fn install(mut self, msg: &mut MsgBuf<'_>) -> (u32, Option<KBox>) {
        if self.code == mr::SUCCESS || self.code == mr::RCV_TOO_LARGE {
            msg.clear_ool();
            if let Some(k) = &mut self.msg {
                let n = (self.len as usize).min(k.bytes.len()).min(msg.capacity());
                msg.bytes_mut()[..n].copy_from_slice(&k.bytes[..n]);
                for b in k.received.drain(..) {
                    msg.push_received_ool(b);
                }
            }
        }
        (self.code, self.msg)
    }
}
