//! Tests of the userspace IPC against GNU Mach's rules.

use super::*;
use crate::build::{port_array, MsgBuilder};
use crate::msg::OolBuffer;
use crate::wire::{
    bytes, msg_return as mr, msgh_bits as mb, notify, option as opt, type_name as tn, MsgHeader,
    Target, TypeDesc,
};

const X: Target = Target::X86_64;
const NULL: PortName = PortName::NULL;

fn kr(c: u32) -> KernReturn {
    KernReturn(c as i32)
}

fn send(t: &Task, m: &[u8]) -> KernReturn {
    let mut b = MsgBuf::from_bytes(m);
    t.mach_msg(&mut b, opt::SEND_MSG, m.len() as u32, 0, NULL, 0, NULL)
}

fn send_opt(t: &Task, b: &mut MsgBuf<'_>, extra: u32, timeout: u32) -> KernReturn {
    let n = b.msgh_size();
    t.mach_msg(b, opt::SEND_MSG | extra, n, 0, NULL, timeout, NULL)
}

fn recv_opt(
    t: &Task,
    name: PortName,
    extra: u32,
    timeout: u32,
    size: usize,
) -> (KernReturn, MsgBuf<'static>) {
    let mut b = MsgBuf::with_capacity(size);
    let r = t.mach_msg(
        &mut b,
        opt::RCV_MSG | extra,
        0,
        size as u32,
        name,
        timeout,
        NULL,
    );
    (r, b)
}

/// Receives with a 5 s safety timeout.
fn recv(t: &Task, name: PortName) -> MsgBuf<'static> {
    let (r, b) = recv_opt(t, name, opt::RCV_TIMEOUT, 5000, 4096);
    assert_eq!(r, KernReturn::KERN_SUCCESS, "receive failed");
    b
}

/// Waits (at most 5 s) until a thread is blocked receiving on `name` (a fixed sleep is not
/// enough on a loaded machine).
fn wait_for_receiver(t: &Task, name: PortName) {
    let t0 = Instant::now();
    while t.blocked_receivers(name) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no receiver on {name:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn poll(t: &Task, name: PortName) -> KernReturn {
    recv_opt(t, name, opt::RCV_TIMEOUT, 0, 4096).0
}

fn hdr(b: &MsgBuf<'_>) -> MsgHeader {
    b.header(X).unwrap()
}

fn simple(bits: u32, remote: PortName, local: PortName, id: i32) -> Vec<u8> {
    MsgBuilder::new(X).header(bits, remote, local, id).finish()
}

fn u32_at(b: &MsgBuf<'_>, off: usize) -> u32 {
    bytes::get_u32(b.bytes(), off).unwrap()
}

fn u64_at(b: &MsgBuf<'_>, off: usize) -> u64 {
    bytes::get_u64(b.bytes(), off).unwrap()
}

fn refs(t: &Task, n: PortName) -> (PortType, u32) {
    t.space_snapshot()
        .get(&n)
        .copied()
        .unwrap_or((PortType::NONE, 0))
}

/// A server task with a receive right, and a client holding a send right to it.
fn client_server() -> (Kernel, Task, Task, PortName, PortName) {
    let k = Kernel::new();
    let srv = k.new_task();
    let cli = k.new_task();
    let port = srv.port_allocate(RightKind::Receive).unwrap();
    let sname = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
    (k, srv, cli, port, sname)
}

fn assert_clean(k: &Kernel) {
    k.check_consistency().unwrap();
    let s = k.stats();
    assert_eq!(s.ports, 0, "{s:?}");
    assert_eq!(s.port_objects, 0, "{s:?}");
    assert_eq!(s.port_sets, 0, "{s:?}");
    assert_eq!(s.messages, 0, "{s:?}");
    assert_eq!(s.queued, 0, "{s:?}");
    assert_eq!(s.ool_bytes, 0, "{s:?}");
}

// ------------------------------------------------------------------ names and rights

#[test]
fn allocate_and_names_are_not_reused_immediately() {
    let k = Kernel::new();
    let t = k.new_task();
    let a = t.port_allocate(RightKind::Receive).unwrap();
    let s = t.port_allocate(RightKind::PortSet).unwrap();
    let d = t.port_allocate(RightKind::DeadName).unwrap();
    assert!(a.is_valid() && s.is_valid() && d.is_valid());
    assert_eq!(refs(&t, a), (PortType::RECEIVE, 0));
    assert_eq!(refs(&t, s), (PortType::PORT_SET, 0));
    assert_eq!(refs(&t, d), (PortType::DEAD_NAME, 1));
    assert_eq!(
        t.port_allocate(RightKind::Send),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    let mut seen = std::collections::HashSet::new();
    seen.insert(a);
    t.port_destroy(a).unwrap();
    for _ in 0..200 {
        let n = t.port_allocate(RightKind::Receive).unwrap();
        assert!(seen.insert(n), "name {n:?} reused too soon");
        t.port_destroy(n).unwrap();
    }
    assert_eq!(t.port_destroy(a), Err(KernReturn::KERN_INVALID_NAME));
    t.port_destroy(s).unwrap();
    t.port_deallocate(d).unwrap();
    assert!(t.space_snapshot().is_empty());
    drop(t);
    assert_clean(&k);
}

#[test]
fn send_rights_merge_under_the_receive_name() {
    let k = Kernel::new();
    let t = k.new_task();
    let p = t.port_allocate(RightKind::Receive).unwrap();
    t.port_insert_right(p, p, tn::MAKE_SEND).unwrap();
    t.port_insert_right(p, p, tn::MAKE_SEND).unwrap();
    assert_eq!(refs(&t, p), (PortType::SEND_RECEIVE, 2));
    assert_eq!(t.port_get_refs(p, RightKind::Send), Ok(2));
    assert_eq!(t.port_get_refs(p, RightKind::Receive), Ok(1));
    assert_eq!(t.port_get_refs(p, RightKind::SendOnce), Ok(0));
    let st = t.port_get_receive_status(p).unwrap();
    assert_eq!(st.mscount, 2);
    assert!(st.srights);
    // A different name for the same port is refused.
    let other = PortName(0x4242_0001);
    assert_eq!(
        t.port_insert_right(other, p, tn::MAKE_SEND),
        Err(KernReturn::KERN_RIGHT_EXISTS)
    );
    // mod_refs / deallocate
    t.port_mod_refs(p, RightKind::Send, 3).unwrap();
    assert_eq!(t.port_get_refs(p, RightKind::Send), Ok(5));
    assert_eq!(
        t.port_mod_refs(p, RightKind::Send, -6),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    assert_eq!(
        t.port_mod_refs(p, RightKind::Send, UREFS_MAX as i32),
        Err(KernReturn::KERN_UREFS_OVERFLOW)
    );
    t.port_mod_refs(p, RightKind::Send, -5).unwrap();
    assert_eq!(refs(&t, p), (PortType::RECEIVE, 0));
    assert!(!t.port_get_receive_status(p).unwrap().srights);
    assert_eq!(t.port_deallocate(p), Err(KernReturn::KERN_INVALID_RIGHT));
    assert_eq!(
        t.port_mod_refs(p, RightKind::Receive, -2),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    t.port_mod_refs(p, RightKind::Receive, -1).unwrap();
    assert!(t.space_snapshot().is_empty());
    drop(t);
    assert_clean(&k);
}

#[test]
fn insert_right_at_a_chosen_name_and_rename() {
    let k = Kernel::new();
    let a = k.new_task();
    let b = k.new_task();
    let p = a.port_allocate(RightKind::Receive).unwrap();
    let chosen = PortName(0x0012_3456);
    a.port_insert_right_into(&b, chosen, p, tn::MAKE_SEND)
        .unwrap();
    assert_eq!(refs(&b, chosen), (PortType::SEND, 1));
    // Same port again under the same name merges; under another name is refused.
    a.port_insert_right_into(&b, chosen, p, tn::MAKE_SEND)
        .unwrap();
    assert_eq!(refs(&b, chosen), (PortType::SEND, 2));
    assert_eq!(
        a.port_insert_right_into(&b, PortName(77), p, tn::MAKE_SEND),
        Err(KernReturn::KERN_RIGHT_EXISTS)
    );
    let q = a.port_allocate(RightKind::Receive).unwrap();
    assert_eq!(
        a.port_insert_right_into(&b, chosen, q, tn::MAKE_SEND),
        Err(KernReturn::KERN_NAME_EXISTS)
    );
    // The refused make-send was destroyed again: no send right to q left behind.
    assert!(!a.port_get_receive_status(q).unwrap().srights);
    assert_eq!(
        a.port_insert_right_into(&b, NULL, p, tn::MAKE_SEND),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    assert_eq!(
        a.port_insert_right_into(&b, PortName(9), PortName(0x777), tn::MAKE_SEND),
        Err(kr(mr::SEND_INVALID_RIGHT))
    );
    b.port_rename(chosen, PortName(0x55)).unwrap();
    assert_eq!(refs(&b, PortName(0x55)), (PortType::SEND, 2));
    assert_eq!(
        b.port_deallocate(chosen),
        Err(KernReturn::KERN_INVALID_NAME)
    );
    drop((a, b));
    assert_clean(&k);
}

// ------------------------------------------------------------------ messages

#[test]
fn request_reply_header_translation() {
    let (k, srv, cli, port, sname) = client_server();
    let reply = cli.port_allocate(RightKind::Receive).unwrap();
    let m = MsgBuilder::new(X)
        .header(
            mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
            sname,
            reply,
            2000,
        )
        .int32(42)
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    // The client still has its send right; the reply port has a send-once right out.
    assert_eq!(refs(&cli, sname), (PortType::SEND, 1));
    assert_eq!(cli.port_get_receive_status(reply).unwrap().sorights, 1);
    let st = srv.port_get_receive_status(port).unwrap();
    assert_eq!((st.msgcount, st.seqno), (1, 0));
    let r = recv(&srv, port);
    let h = hdr(&r);
    assert_eq!(h.bits, mb::make(tn::PORT_SEND_ONCE, tn::PORT_SEND));
    assert_eq!(h.local, port, "local = the receiver's name for the port");
    assert_eq!(h.size, 48);
    assert_eq!(h.id, 2000);
    assert_eq!(h.seqno, 0);
    assert_eq!(u32_at(&r, 40), 42);
    let so = h.remote;
    assert_eq!(refs(&srv, so), (PortType::SEND_ONCE, 1));
    assert_eq!(srv.port_get_receive_status(port).unwrap().seqno, 1);
    // Reply.
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::MOVE_SEND_ONCE, 0), so, NULL, 2100)
        .int32(0)
        .finish();
    assert_eq!(send(&srv, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&srv, so), (PortType::NONE, 0));
    let r = recv(&cli, reply);
    let h = hdr(&r);
    assert_eq!(h.bits, mb::make(0, tn::PORT_SEND_ONCE));
    assert_eq!((h.remote, h.local, h.id), (NULL, reply, 2100));
    assert_eq!(cli.port_get_receive_status(reply).unwrap().sorights, 0);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn received_buffers_name_the_receivers_space() {
    // Typed rights a stub takes out of a received message release into the receiver's
    // space: the buffer must say which one it is.
    let (k, srv, cli, port, sname) = client_server();
    let m = simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 7);
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    let r = recv(&srv, port);
    assert_eq!(r.space(), srv.space_id());
    assert_ne!(srv.space_id(), cli.space_id());
    drop(r);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn move_send_destination_fires_no_senders_at_delivery() {
    let (k, srv, cli, port, sname) = client_server();
    let notify_port = srv.port_allocate(RightKind::Receive).unwrap();
    let prev = srv
        .port_request_notification(port, notify::NO_SENDERS, 0, notify_port, tn::MAKE_SEND_ONCE)
        .unwrap();
    assert_eq!(prev, NULL);
    assert!(srv.port_get_receive_status(port).unwrap().nsrequest);
    let m = simple(mb::make(tn::MOVE_SEND, 0), sname, NULL, 1);
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert!(cli.space_snapshot().is_empty(), "the send right moved");
    // Still in transit: no notification yet.
    assert_eq!(poll(&srv, notify_port), kr(mr::RCV_TIMED_OUT));
    let r = recv(&srv, port);
    assert_eq!(hdr(&r).bits, mb::make(0, tn::PORT_SEND));
    // Delivery consumed the last send right.
    let n = recv(&srv, notify_port);
    let h = hdr(&n);
    assert_eq!(h.id, notify::NO_SENDERS);
    assert_eq!(h.size, 48);
    assert_eq!(h.bits, mb::make(0, tn::PORT_SEND_ONCE));
    assert_eq!((h.remote, h.local), (NULL, notify_port));
    assert_eq!(
        bytes::get_u64(n.bytes(), 32).unwrap(),
        TypeDesc::inline(tn::INTEGER_32, 32, 1)
            .x86_64_u64()
            .unwrap()
    );
    assert_eq!(u32_at(&n, 40), 1, "make-send count");
    assert!(!srv.port_get_receive_status(port).unwrap().nsrequest);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn body_rights_are_translated_and_rewritten() {
    let (k, srv, cli, port, sname) = client_server();
    let mine = cli.port_allocate(RightKind::Receive).unwrap();
    let other = cli.port_allocate(RightKind::Receive).unwrap();
    cli.port_insert_right(other, other, tn::MAKE_SEND).unwrap();
    let moved = cli.port_allocate(RightKind::Receive).unwrap();
    let so_src = cli.port_allocate(RightKind::Receive).unwrap();
    let (so, t) = cli.port_extract_right(so_src, tn::MAKE_SEND_ONCE).unwrap();
    assert_eq!(t, tn::PORT_SEND_ONCE);
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 7)
        .port(tn::MAKE_SEND, mine)
        .port(tn::COPY_SEND, other)
        .port(tn::MOVE_RECEIVE, moved)
        .port(tn::MOVE_SEND_ONCE, so)
        .ports(tn::MAKE_SEND_ONCE, &[mine, NULL, PortName::DEAD])
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&cli, moved), (PortType::NONE, 0));
    assert_eq!(refs(&cli, so), (PortType::NONE, 0));
    assert_eq!(refs(&cli, other), (PortType::SEND_RECEIVE, 1));
    let r = recv(&srv, port);
    let h = hdr(&r);
    assert_eq!(h.bits & mb::COMPLEX, mb::COMPLEX);
    let mut off = 32;
    let expect = [
        (tn::PORT_SEND, PortType::SEND, 1),
        (tn::PORT_SEND, PortType::SEND, 1),
        (tn::PORT_RECEIVE, PortType::RECEIVE, 0),
        (tn::PORT_SEND_ONCE, PortType::SEND_ONCE, 1),
    ];
    let mut names = Vec::new();
    for (ty, pt, urefs) in expect {
        let d = TypeDesc::decode(X, r.bytes(), off).unwrap().desc;
        assert_eq!(d, TypeDesc::inline(ty, 64, 1));
        let n = PortName(u64_at(&r, off + 8) as u32);
        assert_eq!(u64_at(&r, off + 8) >> 32, 0);
        assert_eq!(refs(&srv, n), (pt, urefs), "{ty}");
        names.push(n);
        off += 16;
    }
    let d = TypeDesc::decode(X, r.bytes(), off).unwrap().desc;
    assert_eq!(d, TypeDesc::inline(tn::PORT_SEND_ONCE, 64, 3));
    let a = PortName(u64_at(&r, off + 8) as u32);
    assert_eq!(u64_at(&r, off + 16), 0);
    assert_eq!(u64_at(&r, off + 24), u64::from(PortName::DEAD.0));
    assert_eq!(refs(&srv, a), (PortType::SEND_ONCE, 1));
    assert_ne!(a, names[3]);
    assert_eq!(cli.port_get_receive_status(mine).unwrap().sorights, 1);
    assert_eq!(cli.port_get_receive_status(mine).unwrap().mscount, 1);
    // The moved receive right works in its new space.
    let moved_there = names[2];
    assert_eq!(srv.port_get_receive_status(moved_there).unwrap().seqno, 0);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn received_send_rights_merge_with_existing_names() {
    let (k, srv, cli, port, sname) = client_server();
    // The client sends the server's own port back to it: it lands under the receive name.
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .port(tn::COPY_SEND, sname)
        .port(tn::COPY_SEND, sname)
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    let r = recv(&srv, port);
    assert_eq!(u32_at(&r, 40), port.0);
    assert_eq!(u32_at(&r, 56), port.0);
    assert_eq!(refs(&srv, port), (PortType::SEND_RECEIVE, 2));
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn seqnos_count_dequeues_and_reset_when_the_receive_right_moves() {
    let (k, srv, cli, port, sname) = client_server();
    for i in 0..3 {
        assert_eq!(
            send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sname, NULL, i)),
            KernReturn::KERN_SUCCESS
        );
    }
    for i in 0..2 {
        let r = recv(&srv, port);
        assert_eq!((hdr(&r).seqno, hdr(&r).id), (i as u32, i));
    }
    assert_eq!(srv.port_get_receive_status(port).unwrap().seqno, 2);
    // Move the receive right (with one message still queued) to the client.
    let there = srv.transfer_right(port, tn::MOVE_RECEIVE, &cli).unwrap();
    assert_eq!(there, sname, "merged with the client's send right");
    let st = cli.port_get_receive_status(there).unwrap();
    assert_eq!((st.seqno, st.msgcount, st.mscount), (0, 1, 0));
    let r = recv(&cli, there);
    assert_eq!((hdr(&r).seqno, hdr(&r).id), (0, 2));
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn capability_safety_forged_and_stale_names() {
    let (k, srv, cli, port, sname) = client_server();
    let intruder = k.new_task();
    // The intruder has no rights at all: every name is invalid for it, including the
    // numeric names that mean something in other tasks.
    for n in [
        port,
        sname,
        PortName(1),
        PortName(0x0100_0001),
        PortName::DEAD,
    ] {
        let m = simple(mb::make(tn::COPY_SEND, 0), n, NULL, 1);
        assert_eq!(send(&intruder, &m), kr(mr::SEND_INVALID_DEST), "{n:?}");
        let m = simple(mb::make(tn::MAKE_SEND, 0), n, NULL, 1);
        assert_eq!(send(&intruder, &m), kr(mr::SEND_INVALID_DEST), "{n:?}");
        assert_eq!(poll(&intruder, n), kr(mr::RCV_INVALID_NAME));
    }
    assert_eq!(
        intruder.transfer_right(port, tn::MAKE_SEND, &cli),
        Err(kr(mr::SEND_INVALID_RIGHT))
    );
    // A stale name: the client deallocates its right, then tries to use the name.
    cli.port_deallocate(sname).unwrap();
    let m = simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1);
    assert_eq!(send(&cli, &m), kr(mr::SEND_INVALID_DEST));
    // A client cannot make rights from a send right.
    let s2 = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
    let m = simple(mb::make(tn::MAKE_SEND, 0), s2, NULL, 1);
    assert_eq!(send(&cli, &m), kr(mr::SEND_INVALID_DEST));
    assert_eq!(poll(&srv, port), kr(mr::RCV_TIMED_OUT));
    assert!(intruder.space_snapshot().is_empty());
    drop((srv, cli, intruder));
    assert_clean(&k);
}

// ------------------------------------------------------------------ queues and waiting

#[test]
fn queue_limit_blocks_senders_send_once_bypasses() {
    let (k, srv, cli, port, sname) = client_server();
    srv.port_set_qlimit(port, 2).unwrap();
    assert_eq!(
        srv.port_set_qlimit(port, QLIMIT_MAX + 1),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    let m = simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1);
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    // Full: a send with a zero timeout fails and the sender keeps everything.
    let mine = cli.port_allocate(RightKind::Receive).unwrap();
    let full = MsgBuilder::new(X)
        .header(
            mb::COMPLEX | mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
            sname,
            mine,
            1,
        )
        .port(tn::MOVE_RECEIVE, mine)
        .finish();
    let before = cli.space_snapshot();
    drop(full);
    // (MOVE_RECEIVE of the reply port itself would be odd; use another port.)
    let other = cli.port_allocate(RightKind::Receive).unwrap();
    let full = MsgBuilder::new(X)
        .header(
            mb::COMPLEX | mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
            sname,
            mine,
            1,
        )
        .port(tn::MOVE_RECEIVE, other)
        .finish();
    let before2 = cli.space_snapshot();
    let mut b = MsgBuf::from_bytes(&full);
    assert_eq!(
        send_opt(&cli, &mut b, opt::SEND_TIMEOUT, 0),
        kr(mr::SEND_TIMED_OUT)
    );
    assert_eq!(cli.space_snapshot(), before2);
    assert!(before.len() < before2.len());
    let t0 = Instant::now();
    assert_eq!(
        send_opt(&cli, &mut b, opt::SEND_TIMEOUT, 30),
        kr(mr::SEND_TIMED_OUT)
    );
    assert!(t0.elapsed() >= Duration::from_millis(25));
    assert_eq!(cli.space_snapshot(), before2);
    // Send-once destinations ignore the limit.
    let (so, _) = srv.port_extract_right(port, tn::MAKE_SEND_ONCE).unwrap();
    let m1 = simple(mb::make(tn::MOVE_SEND_ONCE, 0), so, NULL, 9);
    assert_eq!(send(&srv, &m1), KernReturn::KERN_SUCCESS);
    assert_eq!(srv.port_get_receive_status(port).unwrap().msgcount, 3);
    // A blocked sender proceeds when the receiver makes room.
    let cli2 = cli.clone();
    let h = std::thread::spawn(move || {
        let mut b = MsgBuf::from_bytes(&full);
        send_opt(&cli2, &mut b, 0, 0)
    });
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(srv.port_get_receive_status(port).unwrap().msgcount, 3);
    let _ = recv(&srv, port);
    let _ = recv(&srv, port);
    assert_eq!(h.join().unwrap(), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&cli, other), (PortType::NONE, 0));
    let mut ids = Vec::new();
    while let (KernReturn::KERN_SUCCESS, r) = recv_opt(&srv, port, opt::RCV_TIMEOUT, 0, 4096) {
        ids.push(hdr(&r).id);
    }
    assert_eq!(ids, vec![9, 1]);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn receive_timeouts() {
    let (k, srv, _cli, port, _sname) = client_server();
    assert_eq!(poll(&srv, port), kr(mr::RCV_TIMED_OUT));
    let t0 = Instant::now();
    let (r, _) = recv_opt(&srv, port, opt::RCV_TIMEOUT, 40, 64);
    assert_eq!(r, kr(mr::RCV_TIMED_OUT));
    assert!(t0.elapsed() >= Duration::from_millis(35));
    // No waiter is left behind after a timeout.
    assert_eq!(k.stats().queued, 0);
    drop(srv);
}

#[test]
fn too_large_with_and_without_rcv_large() {
    let (k, srv, cli, port, sname) = client_server();
    let reply = cli.port_allocate(RightKind::Receive).unwrap();
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE), sname, reply, 5)
        .chars(&[b'x'; 100])
        .finish();
    assert_eq!(m.len(), 32 + 8 + 104);
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    // MACH_RCV_LARGE: the message stays queued, the size is reported.
    let (r, b) = recv_opt(&srv, port, opt::RCV_TIMEOUT | opt::RCV_LARGE, 0, 64);
    assert_eq!(r, kr(mr::RCV_TOO_LARGE));
    assert_eq!(b.msgh_size(), 144);
    assert_eq!(srv.port_get_receive_status(port).unwrap().msgcount, 1);
    assert_eq!(srv.port_get_receive_status(port).unwrap().seqno, 0);
    // Without: the message is dequeued and destroyed, only the header comes back, and the
    // destroyed reply right sends a send-once notification to the client.
    let (r, b) = recv_opt(&srv, port, opt::RCV_TIMEOUT, 0, 64);
    assert_eq!(r, kr(mr::RCV_TOO_LARGE));
    let h = hdr(&b);
    assert_eq!(
        (h.size, h.id, h.local, h.remote, h.seqno),
        (144, 5, port, NULL, 0)
    );
    assert_eq!(h.bits, mb::make(tn::PORT_SEND_ONCE, tn::PORT_SEND));
    assert_eq!(srv.port_get_receive_status(port).unwrap().msgcount, 0);
    assert_eq!(srv.port_get_receive_status(port).unwrap().seqno, 1);
    assert!(srv.space_snapshot().keys().all(|&n| n == port));
    let n = recv(&cli, reply);
    assert_eq!((hdr(&n).id, hdr(&n).size), (notify::SEND_ONCE, 32));
    // A blocked receiver with MACH_RCV_LARGE is told the size too.
    let srv2 = srv.clone();
    let h = std::thread::spawn(move || {
        let (r, b) = recv_opt(&srv2, port, opt::RCV_TIMEOUT | opt::RCV_LARGE, 5000, 64);
        (r, b.msgh_size())
    });
    std::thread::sleep(Duration::from_millis(20));
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::COPY_SEND, 0), sname, NULL, 6)
        .chars(&[b'y'; 100])
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(h.join().unwrap(), (kr(mr::RCV_TOO_LARGE), 144));
    let r = recv(&srv, port);
    assert_eq!(hdr(&r).id, 6);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn receive_errors_and_port_death_while_receiving() {
    let (k, srv, _cli, port, _sname) = client_server();
    assert_eq!(poll(&srv, PortName(0x999)), kr(mr::RCV_INVALID_NAME));
    let d = srv.port_allocate(RightKind::DeadName).unwrap();
    assert_eq!(poll(&srv, d), kr(mr::RCV_INVALID_NAME));
    let set = srv.port_allocate(RightKind::PortSet).unwrap();
    srv.port_move_member(port, set).unwrap();
    assert_eq!(poll(&srv, port), kr(mr::RCV_IN_SET));
    assert_eq!(poll(&srv, set), kr(mr::RCV_TIMED_OUT));
    srv.port_move_member(port, NULL).unwrap();
    assert_eq!(
        srv.port_move_member(port, NULL),
        Err(KernReturn::KERN_NOT_IN_SET)
    );
    // The port dies while a thread receives on it.
    let srv2 = srv.clone();
    let h = std::thread::spawn(move || recv_opt(&srv2, port, opt::RCV_TIMEOUT, 5000, 64).0);
    wait_for_receiver(&srv, port);
    srv.port_destroy(port).unwrap();
    assert_eq!(h.join().unwrap(), kr(mr::RCV_PORT_DIED));
    // The set dies while a thread receives on it.
    let srv2 = srv.clone();
    let h = std::thread::spawn(move || recv_opt(&srv2, set, opt::RCV_TIMEOUT, 5000, 64).0);
    wait_for_receiver(&srv, set);
    srv.port_destroy(set).unwrap();
    assert_eq!(h.join().unwrap(), kr(mr::RCV_PORT_DIED));
    // A port moved into a set while a thread receives on it.
    let p2 = srv.port_allocate(RightKind::Receive).unwrap();
    let set2 = srv.port_allocate(RightKind::PortSet).unwrap();
    let srv2 = srv.clone();
    let h = std::thread::spawn(move || recv_opt(&srv2, p2, opt::RCV_TIMEOUT, 5000, 64).0);
    wait_for_receiver(&srv, p2);
    srv.port_move_member(p2, set2).unwrap();
    assert_eq!(h.join().unwrap(), kr(mr::RCV_PORT_CHANGED));
    drop(srv);
    drop(_cli);
    assert_clean(&k);
}

#[test]
fn port_sets_receive_from_all_members_in_order() {
    let k = Kernel::new();
    let srv = k.new_task();
    let cli = k.new_task();
    let a = srv.port_allocate(RightKind::Receive).unwrap();
    let b = srv.port_allocate(RightKind::Receive).unwrap();
    let sa = srv.transfer_right(a, tn::MAKE_SEND, &cli).unwrap();
    let sb = srv.transfer_right(b, tn::MAKE_SEND, &cli).unwrap();
    // Messages queued before joining the set move with the port.
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sa, NULL, 1));
    let set = srv.port_allocate(RightKind::PortSet).unwrap();
    srv.port_move_member(a, set).unwrap();
    srv.port_move_member(b, set).unwrap();
    assert_eq!(srv.port_get_receive_status(a).unwrap().pset, set);
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sb, NULL, 2));
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sa, NULL, 3));
    let got: Vec<_> = (0..3)
        .map(|_| {
            let h = hdr(&recv(&srv, set));
            (h.id, h.local, h.seqno)
        })
        .collect();
    assert_eq!(got, vec![(1, a, 0), (2, b, 0), (3, a, 1)]);
    // Leaving the set takes the port's queued messages along.
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sb, NULL, 4));
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sa, NULL, 5));
    srv.port_move_member(b, NULL).unwrap();
    assert_eq!(hdr(&recv(&srv, b)).id, 4);
    assert_eq!(hdr(&recv(&srv, set)).id, 5);
    drop((srv, cli));
    assert_clean(&k);
}

// ------------------------------------------------------------------ notifications

#[test]
fn dead_name_notification_and_lazy_dead_names() {
    let (k, srv, cli, port, sname) = client_server();
    let np = cli.port_allocate(RightKind::Receive).unwrap();
    cli.port_mod_refs(sname, RightKind::Send, 2).unwrap();
    let prev = cli
        .port_request_notification(sname, notify::DEAD_NAME, 0, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    assert_eq!(prev, NULL);
    assert_eq!(refs(&cli, sname).0, PortType::SEND | PortType::DNREQUEST);
    srv.port_destroy(port).unwrap();
    let n = recv(&cli, np);
    let h = hdr(&n);
    assert_eq!(
        (h.id, h.size, h.bits),
        (notify::DEAD_NAME, 48, mb::make(0, tn::PORT_SEND_ONCE))
    );
    assert_eq!((h.remote, h.local), (NULL, np));
    assert_eq!(
        bytes::get_u64(n.bytes(), 32).unwrap(),
        TypeDesc::inline(tn::PORT_NAME, 32, 1).x86_64_u64().unwrap()
    );
    assert_eq!(u32_at(&n, 40), sname.0);
    // The send right is now a dead name with one extra reference for the notification.
    assert_eq!(refs(&cli, sname), (PortType::DEAD_NAME, 4));
    assert_eq!(cli.port_get_refs(sname, RightKind::DeadName), Ok(4));
    let m = simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1);
    assert_eq!(send(&cli, &m), kr(mr::SEND_INVALID_DEST));
    for _ in 0..4 {
        cli.port_deallocate(sname).unwrap();
    }
    assert_eq!(refs(&cli, sname), (PortType::NONE, 0));
    // Immediate notification for a name that is already dead.
    let d = cli.port_allocate(RightKind::DeadName).unwrap();
    assert_eq!(
        cli.port_request_notification(d, notify::DEAD_NAME, 0, np, tn::MAKE_SEND_ONCE),
        Err(KernReturn::KERN_INVALID_ARGUMENT)
    );
    // The refused request's send-once right was destroyed: a send-once notification.
    assert_eq!(hdr(&recv(&cli, np)).id, notify::SEND_ONCE);
    cli.port_request_notification(d, notify::DEAD_NAME, 1, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    let n = recv(&cli, np);
    assert_eq!((hdr(&n).id, u32_at(&n, 40)), (notify::DEAD_NAME, d.0));
    assert_eq!(refs(&cli, d), (PortType::DEAD_NAME, 2));
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn port_deleted_notification() {
    let (k, srv, cli, _port, sname) = client_server();
    let np = cli.port_allocate(RightKind::Receive).unwrap();
    cli.port_request_notification(sname, notify::DEAD_NAME, 0, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    // Replacing the request returns the previous send-once right.
    let prev = cli
        .port_request_notification(sname, notify::DEAD_NAME, 0, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    assert_eq!(refs(&cli, prev), (PortType::SEND_ONCE, 1));
    cli.port_deallocate(prev).unwrap();
    assert_eq!(hdr(&recv(&cli, np)).id, notify::SEND_ONCE);
    cli.port_deallocate(sname).unwrap();
    let n = recv(&cli, np);
    assert_eq!(
        (hdr(&n).id, hdr(&n).size, u32_at(&n, 40)),
        (notify::PORT_DELETED, 48, sname.0)
    );
    assert_eq!(poll(&cli, np), kr(mr::RCV_TIMED_OUT));
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn no_senders_sync_semantics() {
    let k = Kernel::new();
    let t = k.new_task();
    let p = t.port_allocate(RightKind::Receive).unwrap();
    let np = t.port_allocate(RightKind::Receive).unwrap();
    // No send rights and sync <= mscount (0 <= 0): fires at once.
    t.port_request_notification(p, notify::NO_SENDERS, 0, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    let n = recv(&t, np);
    assert_eq!((hdr(&n).id, u32_at(&n, 40)), (notify::NO_SENDERS, 0));
    // sync > mscount: armed, fires when the send rights made after it are gone.
    t.port_request_notification(p, notify::NO_SENDERS, 1, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    assert_eq!(poll(&t, np), kr(mr::RCV_TIMED_OUT));
    t.port_insert_right(p, p, tn::MAKE_SEND).unwrap();
    t.port_insert_right(p, p, tn::MAKE_SEND).unwrap();
    t.port_deallocate(p).unwrap();
    assert_eq!(poll(&t, np), kr(mr::RCV_TIMED_OUT));
    t.port_deallocate(p).unwrap();
    let n = recv(&t, np);
    assert_eq!((hdr(&n).id, u32_at(&n, 40)), (notify::NO_SENDERS, 2));
    // Cancel returns the previous request.
    t.port_request_notification(p, notify::NO_SENDERS, 5, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    let prev = t
        .port_request_notification(p, notify::NO_SENDERS, 0, NULL, 0)
        .unwrap();
    assert_eq!(refs(&t, prev), (PortType::SEND_ONCE, 1));
    t.port_deallocate(prev).unwrap();
    assert_eq!(hdr(&recv(&t, np)).id, notify::SEND_ONCE);
    assert_eq!(
        t.port_request_notification(p, 0o111, 0, NULL, 0),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    assert_eq!(
        t.port_request_notification(np, notify::PORT_DESTROYED, 1, NULL, 0),
        Err(KernReturn::KERN_INVALID_VALUE)
    );
    drop(t);
    assert_clean(&k);
}

#[test]
fn send_once_notification_is_how_a_client_sees_mig_server_died() {
    let (k, srv, cli, port, sname) = client_server();
    let reply = cli.port_allocate(RightKind::Receive).unwrap();
    let m = simple(
        mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
        sname,
        reply,
        100,
    );
    // The client's RPC: SEND|RCV on its reply port, from another thread.
    let cli2 = cli.clone();
    let h = std::thread::spawn(move || {
        let mut b = MsgBuf::with_capacity(256);
        b.bytes_mut()[..m.len()].copy_from_slice(&m);
        let r = cli2.mach_msg(
            &mut b,
            opt::SEND_MSG | opt::RCV_MSG | opt::RCV_TIMEOUT,
            m.len() as u32,
            256,
            reply,
            5000,
            NULL,
        );
        (r, hdr(&b))
    });
    let r = recv(&srv, port);
    // The server dies (drops the reply right without answering).
    let so = hdr(&r).remote;
    assert_eq!(refs(&srv, so).0, PortType::SEND_ONCE);
    srv.terminate();
    let (r, h2) = h.join().unwrap();
    assert_eq!(r, KernReturn::KERN_SUCCESS);
    assert_eq!(h2.id, notify::SEND_ONCE);
    assert_eq!(h2.size, 32);
    assert_eq!(h2.bits, mb::make(0, tn::PORT_SEND_ONCE));
    assert_eq!((h2.remote, h2.local), (NULL, reply));
    // The client's send right is now a dead name.
    assert_eq!(refs(&cli, sname), (PortType::DEAD_NAME, 1));
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn port_destroyed_notification_sends_the_receive_right() {
    let (k, srv, cli, port, sname) = client_server();
    let backup = srv.port_allocate(RightKind::Receive).unwrap();
    send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1));
    srv.port_request_notification(port, notify::PORT_DESTROYED, 0, backup, tn::MAKE_SEND_ONCE)
        .unwrap();
    assert!(srv.port_get_receive_status(port).unwrap().pdrequest);
    srv.port_mod_refs(port, RightKind::Receive, -1).unwrap();
    // The port lives on: the client's send right still works.
    assert_eq!(
        send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 2)),
        KernReturn::KERN_SUCCESS
    );
    // port, backup and the two task ports.
    assert_eq!(k.stats().ports, 4);
    let n = recv(&srv, backup);
    let h = hdr(&n);
    assert_eq!((h.id, h.size), (notify::PORT_DESTROYED, 48));
    assert_eq!(h.bits, mb::COMPLEX | mb::make(0, tn::PORT_SEND_ONCE));
    assert_eq!(
        bytes::get_u64(n.bytes(), 32).unwrap(),
        TypeDesc::inline(tn::PORT_RECEIVE, 64, 1)
            .x86_64_u64()
            .unwrap()
    );
    let back = PortName(u32_at(&n, 40));
    assert_eq!(refs(&srv, back), (PortType::RECEIVE, 0));
    let st = srv.port_get_receive_status(back).unwrap();
    assert_eq!((st.msgcount, st.seqno, st.pdrequest), (2, 0, false));
    assert_eq!(hdr(&recv(&srv, back)).id, 1);
    drop((srv, cli));
    assert_clean(&k);
}

// ------------------------------------------------------------------ bad messages

/// Sends `m` (with the given attached regions) and checks that it fails with `code` and that
/// nothing changed: the sender's space, the kernel's counters, the buffer's side table.
fn rejects(k: &Kernel, t: &Task, m: &[u8], send_size: u32, code: u32) {
    let before = (t.space_snapshot(), k.stats());
    let mut b = MsgBuf::from_bytes(m);
    let r = t.mach_msg(&mut b, opt::SEND_MSG, send_size, 0, NULL, 0, NULL);
    assert_eq!(r, kr(code), "{}", crate::trace::format_message(m, X));
    assert_eq!((t.space_snapshot(), k.stats()), before);
}

#[test]
fn invalid_headers() {
    let (k, srv, cli, port, sname) = client_server();
    let reply = cli.port_allocate(RightKind::Receive).unwrap();
    let so_src = cli.port_allocate(RightKind::Receive).unwrap();
    let (so, _) = cli.port_extract_right(so_src, tn::MAKE_SEND_ONCE).unwrap();
    let h = |bits, r, l| simple(bits, r, l, 1);
    // Destination dispositions must yield a send or send-once right.
    for d in [0, 1, tn::MOVE_RECEIVE, 22, 0xff] {
        rejects(
            &k,
            &cli,
            &h(mb::make(d, 0), sname, NULL),
            32,
            mr::SEND_INVALID_HEADER,
        );
    }
    // A reply name without a disposition, or a bad reply disposition.
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, 0), sname, reply),
        32,
        mr::SEND_INVALID_HEADER,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, tn::MOVE_RECEIVE), sname, reply),
        32,
        mr::SEND_INVALID_HEADER,
    );
    // Destination errors.
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, 0), NULL, NULL),
        32,
        mr::SEND_INVALID_DEST,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, 0), reply, NULL),
        32,
        mr::SEND_INVALID_DEST,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::MOVE_SEND_ONCE, 0), sname, NULL),
        32,
        mr::SEND_INVALID_DEST,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::MAKE_SEND, 0), sname, NULL),
        32,
        mr::SEND_INVALID_DEST,
    );
    // Reply errors.
    rejects(
        &k,
        &cli,
        &h(
            mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
            sname,
            PortName(0x7777),
        ),
        32,
        mr::SEND_INVALID_REPLY,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE), sname, sname),
        32,
        mr::SEND_INVALID_REPLY,
    );
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::COPY_SEND, tn::MOVE_SEND), sname, so),
        32,
        mr::SEND_INVALID_REPLY,
    );
    // Same name for both, with a move-send-once: GNU Mach reports the destination.
    rejects(
        &k,
        &cli,
        &h(mb::make(tn::MOVE_SEND_ONCE, tn::MOVE_SEND_ONCE), so, so),
        32,
        mr::SEND_INVALID_DEST,
    );
    // Bad sizes.
    let ok = h(mb::make(tn::COPY_SEND, 0), sname, NULL);
    rejects(&k, &cli, &ok, 24, mr::SEND_MSG_TOO_SMALL);
    rejects(&k, &cli, &ok, 0, mr::SEND_MSG_TOO_SMALL);
    let mut padded = ok.clone();
    padded.extend_from_slice(&[0; 4]);
    rejects(&k, &cli, &padded, 36, mr::SEND_MSG_TOO_SMALL);
    rejects(&k, &cli, &ok, 40, mr::SEND_INVALID_DATA);
    assert_eq!(poll(&srv, port), kr(mr::RCV_TIMED_OUT));
    // Sending with msgh_size wrong but send_size right: the kernel uses send_size.
    let mut m = ok.clone();
    m[4] = 200;
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(hdr(&recv(&srv, port)).size, 32);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn invalid_bodies_roll_back_everything() {
    let (k, srv, cli, port, sname) = client_server();
    let mine = cli.port_allocate(RightKind::Receive).unwrap();
    cli.port_insert_right(mine, mine, tn::MAKE_SEND).unwrap();
    let other = cli.port_allocate(RightKind::Receive).unwrap();
    let np = cli.port_allocate(RightKind::Receive).unwrap();
    cli.port_request_notification(sname, notify::DEAD_NAME, 0, np, tn::MAKE_SEND_ONCE)
        .unwrap();
    let hd = |b: MsgBuilder| {
        b.header(
            mb::COMPLEX | mb::make(tn::MOVE_SEND, tn::MAKE_SEND_ONCE),
            sname,
            mine,
            3,
        )
    };
    let good_prefix = |b: MsgBuilder| {
        hd(b)
            .port(tn::MOVE_RECEIVE, other)
            .port(tn::MOVE_SEND, mine)
            .port(tn::MAKE_SEND_ONCE, mine)
    };
    let with = |tail: fn(MsgBuilder) -> MsgBuilder| tail(good_prefix(MsgBuilder::new(X))).finish();
    // Reserved bits.
    let mut d = TypeDesc::inline(tn::INTEGER_32, 32, 1);
    d.unused = 1;
    let m = good_prefix(MsgBuilder::new(X)).raw(d, &[0; 4]).finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_TYPE);
    d.unused = 0x10;
    let m = good_prefix(MsgBuilder::new(X)).raw(d, &[0; 4]).finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_TYPE);
    // deallocate on inline data.
    let mut d = TypeDesc::inline(tn::INTEGER_32, 32, 1);
    d.deallocate = true;
    let m = good_prefix(MsgBuilder::new(X)).raw(d, &[0; 4]).finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_TYPE);
    // Wrong port sizes: 32-bit inline ports, 64-bit out-of-line names.
    let m = good_prefix(MsgBuilder::new(X))
        .raw(
            TypeDesc::inline(tn::COPY_SEND, 32, 1),
            &sname.0.to_le_bytes(),
        )
        .finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_TYPE);
    let m = good_prefix(MsgBuilder::new(X))
        .ool(tn::COPY_SEND, 64, 1, 0, false)
        .finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_TYPE);
    // Counts past the end of the message, truncated descriptors.
    let m = with(|b| {
        b.raw_desc(TypeDesc::inline(tn::INTEGER_32, 32, 3))
            .raw_bytes(&[0; 8])
    });
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_MSG_TOO_SMALL);
    let m = with(|b| b.raw_desc(TypeDesc::inline(tn::INTEGER_32, 32, u32::MAX)));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_MSG_TOO_SMALL);
    let m = with(|b| {
        b.raw_desc(TypeDesc::inline(tn::COPY_SEND, 64, 2))
            .raw_bytes(&[0; 8])
    });
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_MSG_TOO_SMALL);
    let m = with(|b| b.ool(tn::CHAR, 8, 10, 0, false));
    rejects(&k, &cli, &m, m.len() as u32 - 8, mr::SEND_MSG_TOO_SMALL);
    // Rights the sender does not hold, moved twice, or dead for a receive.
    let m = with(|b| b.port(tn::COPY_SEND, PortName(0x0abc_def0)));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    let m = with(|b| b.port(tn::MOVE_RECEIVE, PortName(0x0abc_def0)));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    let m = with(|b| b.port(tn::MOVE_SEND, PortName(0x0abc_def0)));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    let m = with(|b| b.port(tn::MOVE_RECEIVE, PortName(1)));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    // The prefix already moved `other`'s receive right and `mine`'s only send right.
    let m = with(|b| {
        b.port(tn::MOVE_RECEIVE, PortName(0))
            .port(tn::MOVE_SEND, PortName(0))
    });
    // (null names are fine: this one succeeds later; skip)
    drop(m);
    let m = good_prefix(MsgBuilder::new(X))
        .port(tn::MOVE_SEND, mine)
        .finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    let m = good_prefix(MsgBuilder::new(X))
        .port(tn::MAKE_SEND, other)
        .finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    // Send right used as a receive right.
    let m = good_prefix(MsgBuilder::new(X))
        .port(tn::MAKE_SEND_ONCE, sname)
        .finish();
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_RIGHT);
    // Out-of-line memory that is not attached.
    let m = with(|b| b.ool_bytes(16, 0x1000, false));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_MEMORY);
    let m = with(|b| b.ool_ports(tn::COPY_SEND, 2, 0x1000, false));
    rejects(&k, &cli, &m, m.len() as u32, mr::SEND_INVALID_MEMORY);
    // The notification request survived every rollback (no port-deleted was sent).
    assert_eq!(poll(&cli, np), kr(mr::RCV_TIMED_OUT));
    assert_eq!(refs(&cli, sname).0, PortType::SEND | PortType::DNREQUEST);
    // And the good message goes through, moving the rights.
    let m = good_prefix(MsgBuilder::new(X)).int32(5).finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&cli, other), (PortType::NONE, 0));
    assert_eq!(refs(&cli, mine), (PortType::RECEIVE, 0));
    assert_eq!(refs(&cli, sname), (PortType::NONE, 0));
    // Moving the last send right cancelled the dead-name request: port-deleted.
    let n = recv(&cli, np);
    assert_eq!(
        (hdr(&n).id, u32_at(&n, 40)),
        (notify::PORT_DELETED, sname.0)
    );
    let r = recv(&srv, port);
    assert_eq!(hdr(&r).size as usize, m.len());
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn a_complex_message_without_rights_arrives_simple() {
    let (k, srv, cli, port, sname) = client_server();
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 3)
        .int32(1)
        .chars(b"hello")
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    let r = recv(&srv, port);
    assert_eq!(hdr(&r).bits, mb::make(0, tn::PORT_SEND));
    // A simple message's port descriptors are plain data: no translation.
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::COPY_SEND, 0), sname, NULL, 4)
        .port(tn::MOVE_RECEIVE, PortName(0x1234))
        .finish();
    assert_eq!(send(&cli, &m), KernReturn::KERN_SUCCESS);
    let r = recv(&srv, port);
    assert_eq!(&r.message()[32..], &m[32..]);
    drop((srv, cli));
    assert_clean(&k);
}

// ------------------------------------------------------------------ out-of-line memory

#[test]
fn out_of_line_memory_moved_or_copied() {
    let (k, srv, cli, port, sname) = client_server();
    let data: Vec<u8> = (0..200u8).collect();
    let owned = OolBuffer::copy_from(&data);
    let owned_addr = owned.addr() as u64;
    let borrowed = vec![7u8; 40];
    let mut b = MsgBuf::with_capacity(256);
    let a1 = b.attach_ool_owned(owned);
    let a2 = b.attach_ool(&borrowed);
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .ool_bytes(200, a1, true)
        .ool_bytes(40, a2, false)
        .ool_bytes(20, a2 + 10, true)
        .ool_bytes(0, 0, false)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    // The owned region left the sender's buffer; the borrowed one stays attached.
    assert_eq!(b.ool_entries().len(), 1);
    assert_eq!(k.stats().ool_bytes, 260);
    let mut r = recv(&srv, port);
    assert_eq!(k.stats().ool_bytes, 0);
    let mut off = 32;
    let mut regions = Vec::new();
    for len in [200usize, 40, 20, 0] {
        let d = TypeDesc::decode(X, r.bytes(), off).unwrap().desc;
        assert!(
            d.deallocate && !d.inline,
            "received out-of-line data is always dealloc"
        );
        let addr = u64_at(&r, off + 8);
        regions.push(r.take_ool(addr, len).unwrap());
        off += 16;
    }
    assert_eq!(&*regions[0], &data[..]);
    assert_eq!(regions[0].addr() as u64, owned_addr, "moved, not copied");
    assert_eq!(&*regions[1], &borrowed[..]);
    assert_ne!(regions[1].addr(), borrowed.as_ptr() as usize);
    assert_eq!(&*regions[2], &borrowed[10..30]);
    assert!(regions[3].is_empty());
    assert_eq!(u64_at(&r, 32 + 3 * 16 + 8), 0);
    // A region moved by the message cannot be referenced again by the same message.
    let mut b = MsgBuf::with_capacity(256);
    let a = b.attach_ool_owned(OolBuffer::copy_from(&[1; 16]));
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .ool_bytes(16, a, true)
        .ool_bytes(8, a, false)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    let before = k.stats();
    assert_eq!(send_opt(&cli, &mut b, 0, 0), kr(mr::SEND_INVALID_MEMORY));
    assert_eq!(b.ool_entries().len(), 1, "the failed send kept the region");
    assert_eq!(k.stats(), before);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn out_of_line_port_arrays() {
    let (k, srv, cli, port, sname) = client_server();
    let p1 = cli.port_allocate(RightKind::Receive).unwrap();
    let p2 = cli.port_allocate(RightKind::Receive).unwrap();
    let names = port_array(&[p1, NULL, p2, p1]);
    let mut b = MsgBuf::with_capacity(256);
    let a = b.attach_ool_owned(OolBuffer::from_vec(names));
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .ool_ports(tn::MAKE_SEND, 4, a, true)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    assert!(b.ool_entries().is_empty(), "deallocated");
    assert_eq!(cli.port_get_receive_status(p1).unwrap().mscount, 2);
    let mut r = recv(&srv, port);
    let d = TypeDesc::decode(X, r.bytes(), 32).unwrap().desc;
    assert_eq!(
        (d.name, d.size, d.number, d.inline, d.deallocate),
        (tn::PORT_SEND, 32, 4, false, true)
    );
    let arr = r.take_ool(u64_at(&r, 40), 16).unwrap();
    let got: Vec<u32> = arr
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got[1], 0);
    assert_eq!(got[0], got[3], "same port, same name");
    assert_eq!(refs(&srv, PortName(got[0])), (PortType::SEND, 2));
    assert_eq!(refs(&srv, PortName(got[2])), (PortType::SEND, 1));
    drop((srv, cli));
    assert_clean(&k);
}

// ------------------------------------------------------------------ port death, tasks

#[test]
fn circular_receive_rights_are_destroyed() {
    let k = Kernel::new();
    let t = k.new_task();
    let a = t.port_allocate(RightKind::Receive).unwrap();
    let b = t.port_allocate(RightKind::Receive).unwrap();
    t.port_insert_right(a, a, tn::MAKE_SEND).unwrap();
    // a's receive right sent to a itself.
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), a, NULL, 1)
        .port(tn::MOVE_RECEIVE, a)
        .finish();
    assert_eq!(send(&t, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&t, a), (PortType::DEAD_NAME, 1));
    // b's receive right to a port whose receive right travels to b: a two-cycle.
    let c = t.port_allocate(RightKind::Receive).unwrap();
    t.port_insert_right(b, b, tn::MAKE_SEND).unwrap();
    t.port_insert_right(c, c, tn::MAKE_SEND).unwrap();
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), c, NULL, 1)
        .port(tn::MOVE_RECEIVE, b)
        .finish();
    assert_eq!(send(&t, &m), KernReturn::KERN_SUCCESS);
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), b, NULL, 1)
        .port(tn::MOVE_RECEIVE, c)
        .finish();
    assert_eq!(send(&t, &m), KernReturn::KERN_SUCCESS);
    assert_eq!(refs(&t, b), (PortType::DEAD_NAME, 1));
    assert_eq!(refs(&t, c), (PortType::DEAD_NAME, 1));
    t.terminate();
    assert_clean(&k);
}

#[test]
fn task_termination_destroys_everything() {
    let (k, srv, cli, port, sname) = client_server();
    let reply = cli.port_allocate(RightKind::Receive).unwrap();
    let set = srv.port_allocate(RightKind::PortSet).unwrap();
    srv.port_move_member(port, set).unwrap();
    let mut b = MsgBuf::with_capacity(128);
    let a = b.attach_ool_owned(OolBuffer::copy_from(&[3; 64]));
    let m = MsgBuilder::new(X)
        .header(
            mb::COMPLEX | mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
            sname,
            reply,
            1,
        )
        .ool_bytes(64, a, true)
        .port(tn::MAKE_SEND, reply)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    assert_eq!(k.stats().ool_bytes, 64);
    assert!(srv.task_self().is_ok());
    srv.terminate();
    assert!(!srv.is_active());
    assert_eq!(
        srv.port_allocate(RightKind::Receive),
        Err(KernReturn::KERN_INVALID_TASK)
    );
    assert_eq!(poll(&srv, port), kr(mr::RCV_INVALID_NAME));
    // The queued request was destroyed: its reply right sent a send-once notification, its
    // send right to the reply port is gone.
    let n = recv(&cli, reply);
    assert_eq!(hdr(&n).id, notify::SEND_ONCE);
    assert!(!cli.port_get_receive_status(reply).unwrap().srights);
    assert_eq!(refs(&cli, sname), (PortType::DEAD_NAME, 1));
    assert_eq!(k.stats().ool_bytes, 0);
    assert_eq!(
        send(&cli, &simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1)),
        kr(mr::SEND_INVALID_DEST)
    );
    drop(cli);
    assert_clean(&k);
    assert_eq!(k.stats().tasks, 1, "only the kernel task is alive");
    drop(srv);
    assert_eq!(k.stats().tasks, 1);
}

#[test]
fn task_self_is_a_send_right_to_a_kernel_port() {
    let k = Kernel::new();
    let t = k.new_task();
    let a = t.task_self().unwrap();
    let b = t.task_self().unwrap();
    assert_eq!(a, b);
    assert_eq!(refs(&t, a), (PortType::SEND, 2));
    let kt = k.kernel_task();
    let kname = k.task_port_name(&t).unwrap();
    assert_eq!(refs(kt, kname), (PortType::RECEIVE, 0));
    // A message to the task port lands in the kernel task's queue.
    assert_eq!(
        send(&t, &simple(mb::make(tn::COPY_SEND, 0), a, NULL, 3000)),
        KernReturn::KERN_SUCCESS
    );
    let r = recv(kt, kname);
    assert_eq!((hdr(&r).id, hdr(&r).local), (3000, kname));
    drop(t);
    assert_eq!(
        k.task_port_name(&k.new_task()).map(|n| n.is_valid()),
        Some(true)
    );
    assert_clean(&k);
}

#[test]
fn typed_rights_release_in_their_task() {
    let k = Kernel::new();
    let t = k.new_task();
    let u = k.new_task();
    let r = t.allocate_receive().unwrap();
    let s = r.make_send().unwrap();
    let s2 = s.try_clone().unwrap();
    assert_eq!(refs(&t, r.name()), (PortType::SEND_RECEIVE, 2));
    // A name with the same number in another task is unaffected.
    let un = u.port_allocate(RightKind::Receive).unwrap();
    drop(s);
    drop(s2);
    assert_eq!(refs(&t, r.name()), (PortType::RECEIVE, 0));
    let name = r.name();
    drop(r);
    assert_eq!(refs(&t, name), (PortType::NONE, 0));
    assert_eq!(refs(&u, un), (PortType::RECEIVE, 0));
    drop((t, u));
    assert_clean(&k);
}

#[test]
fn reply_ports_are_per_thread_and_per_task() {
    let k = Kernel::new();
    let t = k.new_task();
    let u = k.new_task();
    let a = t.get_reply_port();
    assert_eq!(t.get_reply_port(), a);
    assert_eq!(refs(&t, a), (PortType::RECEIVE, 0));
    let b = u.get_reply_port();
    assert!(b.is_valid());
    let t2 = t.clone();
    let other = std::thread::spawn(move || t2.get_reply_port())
        .join()
        .unwrap();
    assert_ne!(other, a);
    t.put_reply_port(a);
    assert_eq!(t.get_reply_port(), a);
    t.dealloc_reply_port(PortName(12345));
    assert_eq!(refs(&t, a), (PortType::NONE, 0));
    let c = t.get_reply_port();
    assert!(c.is_valid() && c != a);
    drop((t, u));
    assert_clean(&k);
}

// ------------------------------------------------------------------ concurrency

#[test]
fn seqnos_under_concurrency_are_gapless_and_ordered() {
    const SENDERS: usize = 4;
    const RECEIVERS: usize = 3;
    const PORTS: usize = 3;
    const PER_SENDER: usize = 300;
    let k = Kernel::new();
    let srv = k.new_task();
    let set = srv.port_allocate(RightKind::PortSet).unwrap();
    let ports: Vec<PortName> = (0..PORTS)
        .map(|_| {
            let p = srv.port_allocate(RightKind::Receive).unwrap();
            srv.port_move_member(p, set).unwrap();
            p
        })
        .collect();
    let clients: Vec<(Task, Vec<PortName>)> = (0..SENDERS)
        .map(|_| {
            let c = k.new_task();
            let names = ports
                .iter()
                .map(|&p| srv.transfer_right(p, tn::MAKE_SEND, &c).unwrap())
                .collect();
            (c, names)
        })
        .collect();
    let log = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..RECEIVERS {
            let srv = srv.clone();
            let log = &log;
            s.spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let (r, b) = recv_opt(&srv, set, opt::RCV_TIMEOUT, 500, 128);
                    if r != KernReturn::KERN_SUCCESS {
                        break;
                    }
                    let h = hdr(&b);
                    let sender = u32_at(&b, 40);
                    let count = u32_at(&b, 56);
                    mine.push((h.local, h.seqno, sender, count));
                }
                log.lock().unwrap().push(mine);
            });
        }
        for (i, (c, names)) in clients.iter().enumerate() {
            s.spawn(move || {
                for n in 0..PER_SENDER {
                    let p = names[n % PORTS];
                    let m = MsgBuilder::new(X)
                        .header(mb::make(tn::COPY_SEND, 0), p, NULL, 1)
                        .int32(i as i32)
                        .int32(n as i32)
                        .finish();
                    assert_eq!(send(c, &m), KernReturn::KERN_SUCCESS);
                }
            });
        }
    });
    let logs = log.into_inner().unwrap();
    let all: Vec<_> = logs.iter().flatten().copied().collect();
    assert_eq!(all.len(), SENDERS * PER_SENDER);
    for &p in &ports {
        // Per port: seqnos 0..n exactly once each.
        let mut seqs: Vec<u32> = all.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
        seqs.sort_unstable();
        let n = seqs.len() as u32;
        assert_eq!(seqs, (0..n).collect::<Vec<_>>());
        // Each receiver saw a port's seqnos in increasing order.
        for l in &logs {
            let s: Vec<u32> = l.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
        // FIFO per (sender, port): a later message has a later seqno.
        for i in 0..SENDERS as u32 {
            let mut v: Vec<(u32, u32)> = all
                .iter()
                .filter(|m| m.0 == p && m.2 == i)
                .map(|m| (m.3, m.1))
                .collect();
            v.sort_unstable();
            assert!(v.windows(2).all(|w| w[0].1 < w[1].1));
        }
    }
    drop((srv, clients));
    assert_clean(&k);
}

#[test]
fn rpc_ping_pong_between_threads() {
    let (k, srv, cli, port, sname) = client_server();
    const N: u32 = 2000;
    std::thread::scope(|s| {
        let srv = &srv;
        s.spawn(move || {
            let mut b = MsgBuf::with_capacity(128);
            let mut r = srv.mach_msg(&mut b, opt::RCV_MSG, 0, 128, port, 0, NULL);
            for _ in 0..N {
                assert_eq!(r, KernReturn::KERN_SUCCESS);
                let h = hdr(&b);
                let v = u32_at(&b, 40);
                let m = MsgBuilder::new(X)
                    .header(mb::make(tn::MOVE_SEND_ONCE, 0), h.remote, NULL, h.id + 100)
                    .int32(v as i32 + 1)
                    .finish();
                b.bytes_mut()[..m.len()].copy_from_slice(&m);
                let rcv = if h.id == 1 + N as i32 {
                    0
                } else {
                    opt::RCV_MSG
                };
                r = srv.mach_msg(
                    &mut b,
                    opt::SEND_MSG | rcv,
                    m.len() as u32,
                    128,
                    port,
                    0,
                    NULL,
                );
                if rcv == 0 {
                    break;
                }
            }
        });
        let reply = cli.get_reply_port();
        let mut b = MsgBuf::with_capacity(128);
        for i in 1..=N {
            let m = MsgBuilder::new(X)
                .header(
                    mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
                    sname,
                    reply,
                    1 + i as i32,
                )
                .int32(i as i32)
                .finish();
            b.bytes_mut()[..m.len()].copy_from_slice(&m);
            let r = cli.mach_msg(
                &mut b,
                opt::SEND_MSG | opt::RCV_MSG,
                m.len() as u32,
                128,
                reply,
                0,
                NULL,
            );
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            assert_eq!(u32_at(&b, 40), i + 1);
            assert_eq!(hdr(&b).id, 101 + i as i32);
        }
    });
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn out_of_line_regions_are_released_exactly_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Regions "mapped by a kernel": static memory with a counting release hook.
    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    static REGION_A: [u8; 32] = [1; 32];
    static REGION_B: [u8; 32] = [2; 32];
    fn rel(_addr: usize, len: usize) {
        RELEASED.fetch_add(len, Ordering::SeqCst);
    }
    let mapped = |r: &'static [u8; 32]| {
        // SAFETY: the statics are readable for 'static and never mutated.
        unsafe {
            OolBuffer::from_mapped(
                r.as_ptr().expose_provenance(),
                32,
                crate::msg::OolRelease { release: rel },
            )
        }
    };
    let (k, srv, cli, port, sname) = client_server();
    // Moved (deallocate): the receiver gets the very region and releases it when done.
    let mut b = MsgBuf::with_capacity(128);
    let a = b.attach_ool_owned(mapped(&REGION_A));
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .ool_bytes(32, a, true)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    drop(b);
    assert_eq!(
        RELEASED.load(Ordering::SeqCst),
        0,
        "in flight, not released"
    );
    let mut r = recv(&srv, port);
    let got = r.take_ool(u64_at(&r, 40), 32).unwrap();
    assert_eq!(got.addr(), REGION_A.as_ptr() as usize);
    drop(r);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 0);
    drop(got);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 32);
    // Moved into a message that is then destroyed with its port: released once.
    let mut b = MsgBuf::with_capacity(128);
    let a = b.attach_ool_owned(mapped(&REGION_B));
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), sname, NULL, 1)
        .ool_bytes(32, a, true)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    drop(b);
    assert_eq!(k.stats().ool_bytes, 32);
    srv.port_destroy(port).unwrap();
    assert_eq!(k.stats().ool_bytes, 0);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 64);
    // Copied (no deallocate): the sender's region stays, released when the sender drops it.
    let mut b = MsgBuf::with_capacity(128);
    let a = b.attach_ool_owned(mapped(&REGION_A));
    let p2 = srv.port_allocate(RightKind::Receive).unwrap();
    let s2 = srv.transfer_right(p2, tn::MAKE_SEND, &cli).unwrap();
    let m = MsgBuilder::new(X)
        .header(mb::COMPLEX | mb::make(tn::COPY_SEND, 0), s2, NULL, 1)
        .ool_bytes(32, a, false)
        .finish();
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    assert_eq!(send_opt(&cli, &mut b, 0, 0), KernReturn::KERN_SUCCESS);
    let r = recv(&srv, p2);
    drop(r);
    assert_eq!(
        RELEASED.load(Ordering::SeqCst),
        64,
        "the copy was heap memory"
    );
    drop(b);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 96);
    drop((srv, cli));
    assert_clean(&k);
}

#[test]
fn oversized_messages_are_refused() {
    let (k, _srv, cli, _port, sname) = client_server();
    let big = MAX_MSG_SIZE + 8;
    let mut b = MsgBuf::with_capacity(big);
    let m = simple(mb::make(tn::COPY_SEND, 0), sname, NULL, 1);
    b.bytes_mut()[..m.len()].copy_from_slice(&m);
    let before = (cli.space_snapshot(), k.stats());
    let r = cli.mach_msg(&mut b, opt::SEND_MSG, big as u32, 0, NULL, 0, NULL);
    assert_eq!(r, kr(mr::SEND_NO_BUFFER));
    assert_eq!((cli.space_snapshot(), k.stats()), before);
}
