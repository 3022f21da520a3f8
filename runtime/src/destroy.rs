//! `mach_msg_destroy`: release every right and out-of-line region a message holds.
//!
//! Semantics of glibc's `__mach_msg_destroy` (typed GNU Mach messages):
//!
//! * the header's `msgh_remote_port` is destroyed according to `MACH_MSGH_BITS_REMOTE`
//!   (in a received message that is the reply right); `msgh_local_port` holds no right (a
//!   receive consumed the destination right) and is left alone;
//! * if the message is complex, every port in the body (inline, or in an out-of-line port
//!   array) is destroyed according to its descriptor's type: `MOVE_SEND`/`MOVE_SEND_ONCE`
//!   (the received `PORT_SEND`/`PORT_SEND_ONCE`) deallocate, `MOVE_RECEIVE` drops the receive
//!   right, `MAKE_SEND`/`MAKE_SEND_ONCE` make a right and destroy it (which can fire no-senders
//!   or a send-once notification), `COPY_SEND` does nothing;
//! * out-of-line memory is released: the message's side table is cleared ([`MsgBuf::clear_ool`]).
//!
//! Names are released through a [`PortSpaces`] in the message's space. Nothing here panics on
//! a malformed message: the body walk stops at the first descriptor that does not fit.

use crate::msg::MsgBuf;
use crate::rights::{port_spaces, PortSpaces, RightKind, SpaceId};
use crate::transport::Transport;
use crate::wire::{bytes, msgh_bits, type_name as tn, PortName, Target, TypeDesc};

/// Destroys one right named `name` with message type `ty` in `space`.
pub fn destroy_port(spaces: &dyn PortSpaces, space: SpaceId, name: PortName, ty: u32) {
    if !name.is_valid() {
        return;
    }
    match ty {
        tn::MOVE_SEND | tn::MOVE_SEND_ONCE => spaces.release(space, name, RightKind::Send),
        tn::MOVE_RECEIVE => spaces.release(space, name, RightKind::Receive),
        tn::MAKE_SEND if spaces.make_send(space, name).is_ok() => {
            spaces.release(space, name, RightKind::Send);
        }
        tn::MAKE_SEND_ONCE => {
            if let Ok(so) = spaces.make_send_once(space, name) {
                spaces.release(space, so, RightKind::SendOnce);
            }
        }
        _ => {}
    }
}

/// Calls `f(name, type)` for every port right the message carries: the remote header port,
/// then (complex messages only) each body port. Stops quietly at malformed data.
pub fn for_each_right(msg: &MsgBuf<'_>, target: Target, mut f: impl FnMut(PortName, u32)) {
    let h = match msg.header(target) {
        Ok(h) => h,
        Err(_) => return,
    };
    f(h.remote, msgh_bits::remote(h.bits));
    if h.bits & msgh_bits::COMPLEX == 0 {
        return;
    }
    let buf = msg.bytes();
    let end = (h.size as usize).min(buf.len());
    let align = target.align() as usize;
    let mut off = target.header_size() as usize;
    while off < end {
        let d = match TypeDesc::decode(target, &buf[..end], off) {
            Ok(d) => d,
            Err(_) => return,
        };
        off += d.wire_size;
        let desc = d.desc;
        let length = (u64::from(desc.number) * u64::from(desc.size)).div_ceil(8);
        let is_port = tn::is_port_any(desc.name);
        if desc.inline {
            if is_port {
                let stride = (desc.size / 8).max(1) as usize;
                for i in 0..desc.number as usize {
                    match i.checked_mul(stride).and_then(|x| x.checked_add(off)) {
                        Some(o) => match bytes::get_u32(&buf[..end], o) {
                            Ok(n) => f(PortName(n), desc.name),
                            Err(_) => return,
                        },
                        None => return,
                    }
                }
            }
            match usize::try_from(length)
                .ok()
                .and_then(|l| off.checked_add(l))
            {
                Some(o) => off = o,
                None => return,
            }
        } else {
            let ps = target.pointer_size() as usize;
            let addr = match target {
                Target::X86_64 => bytes::get_u64(&buf[..end], off),
                Target::I386 => bytes::get_u32(&buf[..end], off).map(u64::from),
            };
            let addr = match addr {
                Ok(a) => a,
                Err(_) => return,
            };
            if is_port && desc.number > 0 {
                let n = desc.number as usize;
                if let Some(region) = n.checked_mul(4).and_then(|len| msg.find_ool(addr, len)) {
                    for c in region.chunks_exact(4) {
                        f(
                            PortName(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                            desc.name,
                        );
                    }
                }
            }
            off += ps;
        }
        off = off.div_ceil(align) * align;
    }
}

/// `mach_msg_destroy(msg)` for a message whose names are in `space`.
pub fn mach_msg_destroy(
    msg: &mut MsgBuf<'_>,
    target: Target,
    space: SpaceId,
    spaces: &dyn PortSpaces,
) {
    let mut rights = alloc::vec::Vec::new();
    for_each_right(msg, target, |n, t| rights.push((n, t)));
    for (n, t) in rights {
        destroy_port(spaces, space, n, t);
    }
    msg.clear_ool();
}

/// `mach_msg_destroy` through a transport: names are in `transport.space()` and are released
/// with the installed [`PortSpaces`] (if none is installed only the memory is released).
pub fn mach_msg_destroy_with<T: Transport + ?Sized>(
    msg: &mut MsgBuf<'_>,
    target: Target,
    transport: &T,
) {
    match port_spaces() {
        Some(s) => mach_msg_destroy(msg, target, transport.space(), s),
        None => msg.clear_ool(),
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::build::{port_array, MsgBuilder};
    use crate::ipc::{Kernel, PortType};
    use crate::msg::OolBuffer;
    use crate::wire::{notify, option, KernReturn};

    const X: Target = Target::X86_64;

    #[test]
    fn destroys_a_received_message() {
        let k = Kernel::new();
        let srv = k.new_task();
        let cli = k.new_task();
        let port = srv.port_allocate(RightKind::Receive).unwrap();
        let s = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
        let reply = cli.port_allocate(RightKind::Receive).unwrap();
        let a = cli.port_allocate(RightKind::Receive).unwrap();
        let b = cli.port_allocate(RightKind::Receive).unwrap();
        let mut m = MsgBuf::with_capacity(512);
        let arr = m.attach_ool_owned(OolBuffer::from_vec(port_array(&[a, a])));
        let data = m.attach_ool_owned(OolBuffer::copy_from(&[9; 100]));
        let bytes = MsgBuilder::new(X)
            .header(
                msgh_bits::COMPLEX | msgh_bits::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
                s,
                reply,
                1,
            )
            .port(tn::MAKE_SEND, a)
            .port(tn::MOVE_RECEIVE, b)
            .ool_ports(tn::MAKE_SEND, 2, arr, true)
            .ool_bytes(100, data, true)
            .finish();
        m.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
        let r = cli.mach_msg(
            &mut m,
            option::SEND_MSG,
            bytes.len() as u32,
            0,
            PortName::NULL,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        let mut rcv = MsgBuf::with_capacity(512);
        let r = srv.mach_msg(&mut rcv, option::RCV_MSG, 0, 512, port, 0, PortName::NULL);
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        assert!(srv.space_snapshot().len() > 2);
        assert_eq!(rcv.ool_entries().len(), 2);
        let mut seen = alloc::vec::Vec::new();
        for_each_right(&rcv, X, |n, t| seen.push((n.is_valid(), t)));
        assert_eq!(seen.len(), 1 + 1 + 1 + 2);
        mach_msg_destroy_with(&mut rcv, X, &srv);
        assert!(rcv.ool_entries().is_empty());
        // Only the receive right for `port` remains in the server.
        let snap = srv.space_snapshot();
        assert_eq!(snap.get(&port).map(|x| x.0), Some(PortType::RECEIVE));
        assert_eq!(snap.len(), 1, "{snap:?}");
        // The reply right's destruction told the client (send-once notification); the
        // moved receive right died; the send rights to `a` are gone.
        let mut n = MsgBuf::with_capacity(64);
        let r = cli.mach_msg(
            &mut n,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            64,
            reply,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        assert_eq!(n.header(X).unwrap().id, notify::SEND_ONCE);
        assert!(!cli.port_get_receive_status(a).unwrap().srights);
        // port, reply, a and the two task ports: b is gone.
        assert_eq!(k.stats().ports, 5);
    }

    #[test]
    fn destroys_an_unsent_message_with_make_dispositions() {
        let k = Kernel::new();
        let t = k.new_task();
        let p = t.port_allocate(RightKind::Receive).unwrap();
        let np = t.port_allocate(RightKind::Receive).unwrap();
        t.port_request_notification(p, notify::NO_SENDERS, 1, np, tn::MAKE_SEND_ONCE)
            .unwrap();
        let bytes = MsgBuilder::new(X)
            .header(
                msgh_bits::COMPLEX | msgh_bits::make(tn::MAKE_SEND_ONCE, 0),
                p,
                PortName::NULL,
                1,
            )
            .port(tn::MAKE_SEND, p)
            .port(tn::COPY_SEND, p)
            .finish();
        let mut m = MsgBuf::from_bytes(&bytes);
        mach_msg_destroy_with(&mut m, X, &t);
        // MAKE_SEND made and destroyed a send right: no-senders (mscount 1). MAKE_SEND_ONCE
        // made and destroyed a send-once right: a send-once notification to p itself.
        let mut n = MsgBuf::with_capacity(64);
        let r = t.mach_msg(
            &mut n,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            64,
            np,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        assert_eq!(n.header(X).unwrap().id, notify::NO_SENDERS);
        let r = t.mach_msg(
            &mut n,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            64,
            p,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        assert_eq!(n.header(X).unwrap().id, notify::SEND_ONCE);
        assert_eq!(t.port_type(p), Ok(PortType::RECEIVE));
    }

    #[test]
    fn malformed_messages_do_not_panic() {
        for len in 0..80 {
            let mut v = alloc::vec![0xffu8; len];
            if len >= 8 {
                v[4..8].copy_from_slice(&1000u32.to_le_bytes());
            }
            let m = MsgBuf::from_bytes(&v);
            for t in Target::ALL {
                for_each_right(&m, t, |_, _| {});
            }
        }
    }
}
