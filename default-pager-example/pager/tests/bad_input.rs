//! Bad input (issue 7's list, and messages the default pager never expects): each gets a
//! clear error (a logged `Rejection` with its reason, and `data_error` where the kernel may
//! be waiting for an answer), never a panic or a hang, and never corrupts other objects.

mod common;

use common::*;
use default_pager::kernel_side::memory_object as mo;
use default_pager::kernel_side::memory_object_default as mod_;
use default_pager::{MemStore, PagerHandle, Reason};
use mig_runtime::ipc::PortType;
use mig_runtime::wire::{type_name as tn, TypeDesc};
use mig_runtime::{KernReturn, Poly};

/// After the bad input: the pager's threads still run, `good` still round-trips its page.
fn still_healthy(k: &Kern, p: &PagerHandle, good: &KObj, page: u64, data: &[u8]) {
    assert!(p.is_running());
    k.data_request(good, page * PSU, PSU);
    k.expect_supply(good, page * PSU, data);
}

fn reasons(p: &PagerHandle) -> Vec<Reason> {
    p.rejections().iter().map(|r| r.reason).collect()
}

/// Offsets that are not page-aligned: a data_request is answered with data_error
/// (KERN_INVALID_ARGUMENT) for the range asked, so a waiting fault fails instead of
/// hanging; a data_return or data_initialize stores nothing. Other pages and objects are
/// untouched.
#[test]
fn unaligned_offsets_are_refused() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(4 * PSU);
    let b = k.create(4 * PSU);
    let da = pattern(30, 0, 0);
    let db = pattern(31, 0, 0);
    k.data_return(&a, 0, &da);
    k.data_return(&b, 0, &db);
    k.data_request(&a, 100, PSU);
    assert_eq!(
        k.expect_error(&a, 100),
        (PSU, KernReturn::KERN_INVALID_ARGUMENT.0)
    );
    k.data_return(&a, PSU + 1, &pattern(30, 1, 0));
    k.data_initialize(&a, 2 * PSU + 8, &pattern(30, 2, 0));
    k.data_request(&a, PSU, PSU);
    k.expect_unavailable(&a, PSU);
    k.data_request(&a, 2 * PSU, PSU);
    k.expect_unavailable(&a, 2 * PSU);
    assert_eq!(
        reasons(&p)
            .iter()
            .filter(|r| **r == Reason::Unaligned)
            .count(),
        3
    );
    still_healthy(&k, &p, &a, 0, &da);
    still_healthy(&k, &p, &b, 0, &db);
    assert_eq!(p.stats().pages_out, 2);
}

/// Lengths other than one page for data_request (0, less, more, absurd) get data_error for
/// the range asked; data_return with a length that is not a whole number of pages stores
/// nothing (several whole pages are legal and are all stored).
#[test]
fn bad_lengths_are_refused() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(8 * PSU);
    let d = pattern(32, 0, 0);
    k.data_return(&a, 0, &d);
    for (i, len) in [0, PSU - 1, 2 * PSU, u64::MAX].into_iter().enumerate() {
        let off = (i as u64 + 1) * PSU;
        k.data_request(&a, off, len);
        assert_eq!(
            k.reply_for(&a, off),
            Call::Error {
                size: len,
                code: KernReturn::KERN_INVALID_ARGUMENT.0
            }
        );
    }
    // An offset + length that overflows.
    k.data_request(&a, u64::MAX - PSU + 1, PSU);
    k.expect_error(&a, u64::MAX - PSU + 1);
    k.data_return(&a, 5 * PSU, &[7u8; 100]);
    k.data_return(&a, 6 * PSU, &[]);
    let three: Vec<u8> = (0..3).flat_map(|pg| pattern(33, pg, 0)).collect();
    k.data_return(&a, 2 * PSU, &three);
    for pg in 0..3 {
        k.data_request(&a, (2 + pg) * PSU, PSU);
        k.expect_supply(&a, (2 + pg) * PSU, &pattern(33, pg, 0));
    }
    k.data_request(&a, 5 * PSU, PSU);
    k.expect_unavailable(&a, 5 * PSU);
    let r = reasons(&p);
    assert_eq!(
        r.iter().filter(|x| **x == Reason::BadLength).count(),
        7,
        "{r:?}"
    );
    still_healthy(&k, &p, &a, 0, &d);
}

/// Messages on a terminated object (the kernel kept a second send right): refused with
/// `Terminated`, no answer, their seqnos consumed; the no-senders that follows frees the
/// object and all its space.
#[test]
fn messages_on_a_terminated_object_are_refused() {
    let k = Kern::new();
    let (_t, p, rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(4 * PSU);
    k.data_return(&a, 0, &pattern(34, 0, 0));
    let extra = a.obj.try_clone().unwrap();
    let ctl = k.kt.allocate_receive().unwrap();
    let ctl_name = ctl.name();
    k.terminate(a);
    wait_until("terminate", || {
        rec.admitted
            .lock()
            .unwrap()
            .iter()
            .any(|x| x.2 == default_pager::MsgKind::Terminate)
    });
    mo::client::memory_object_data_request(&k.kt, &extra, &ctl, 0, PSU, 1).unwrap();
    mo::client::memory_object_data_return(&k.kt, &extra, &ctl, PSU, &pattern(34, 1, 0), 1, 0)
        .unwrap();
    wait_until("two refusals", || {
        reasons(&p)
            .iter()
            .filter(|r| **r == Reason::Terminated)
            .count()
            == 2
    });
    k.expect_no_call(std::time::Duration::from_millis(50), |c| c.ctl == ctl_name);
    assert_eq!(p.stats().objects, 1);
    drop(extra);
    wait_until("freed", || p.stats().objects_freed == 1);
    assert_eq!(p.stats().paging_free, p.stats().paging_total);
    // Seqnos 0..=4 admitted in order: return, terminate, request, return, no-senders.
    let seq: Vec<u32> = rec.admitted.lock().unwrap().iter().map(|x| x.1).collect();
    assert_eq!(seq, vec![0, 1, 2, 3, 4]);
}

/// A forged control port (another object's, or a fresh port) in a data_request,
/// data_return or terminate: refused with `ForgedControl`; no answer goes to the forged
/// port or to the real one; nothing is stored; both objects keep working.
#[test]
fn forged_control_ports_are_refused() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(4 * PSU);
    let b = k.create(4 * PSU);
    let da = pattern(35, 0, 0);
    let db = pattern(36, 0, 0);
    k.data_return(&a, 0, &da);
    k.data_return(&b, 0, &db);
    // b's control port on a's object port.
    mo::client::memory_object_data_request(&k.kt, &a.obj, &b.ctl, 0, PSU, 1).unwrap();
    mo::client::memory_object_data_return(&k.kt, &a.obj, &b.ctl, 0, &pattern(35, 0, 9), 1, 0)
        .unwrap();
    // A fresh port as control, and as control and name in a terminate.
    let fresh = k.kt.allocate_receive().unwrap();
    let fresh_name = fresh.name();
    mo::client::memory_object_data_request(&k.kt, &a.obj, &fresh, PSU, PSU, 1).unwrap();
    let f1 = k.kt.allocate_receive().unwrap();
    let f2 = k.kt.allocate_receive().unwrap();
    mo::client::memory_object_terminate(&k.kt, a.obj.try_clone().unwrap(), f1, f2).unwrap();
    wait_until("four refusals", || {
        reasons(&p)
            .iter()
            .filter(|r| **r == Reason::ForgedControl)
            .count()
            == 4
    });
    k.expect_no_call(std::time::Duration::from_millis(50), |c| {
        c.ctl == b.ctl_name() || c.ctl == a.ctl_name() || c.ctl == fresh_name
    });
    still_healthy(&k, &p, &a, 0, &da);
    still_healthy(&k, &p, &b, 0, &db);
    assert_eq!(p.stats().objects, 2);
}

/// Messages a default pager never expects — memory_object_copy, data_unlock,
/// lock_completed, supply_completed, change_completed, memory_object_init on a kernel
/// object, a dead-name notification — are refused (`Unexpected` / `AlreadyInitialized`)
/// without a panic; the rights they carried are released (copy's new object port is
/// destroyed); the object's seqnos move on.
#[test]
fn unexpected_messages_are_refused_not_fatal() {
    let k = Kern::new();
    let (_t, p, rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(4 * PSU);
    let d = pattern(37, 0, 0);
    k.data_return(&a, 0, &d);
    let new_obj = k.kt.allocate_receive().unwrap();
    let new_obj_send = new_obj.make_send().unwrap();
    mo::client::memory_object_copy(&k.kt, &a.obj, &a.ctl, 0, PSU, new_obj).unwrap();
    mo::client::memory_object_data_unlock(&k.kt, &a.obj, &a.ctl, 0, PSU, 2).unwrap();
    let me = || Poly::Raw(a.obj.name(), tn::COPY_SEND);
    mo::client::memory_object_lock_completed(&k.kt, me(), &a.ctl, 0, PSU).unwrap();
    mo::client::memory_object_supply_completed(&k.kt, me(), &a.ctl, 0, PSU, 0, 0).unwrap();
    mo::client::memory_object_change_completed(&k.kt, me(), 0, 2).unwrap();
    let n2 = k.kt.allocate_receive().unwrap();
    mo::client::memory_object_init(&k.kt, &a.obj, &a.ctl, &n2, PSU).unwrap();
    k.send_raw(
        a.obj.name(),
        |m| m.raw(TypeDesc::inline(tn::PORT_NAME, 32, 1), &7u32.to_le_bytes()),
        72,
    );
    wait_until("seven refusals", || p.stats().rejected == 7);
    let r = reasons(&p);
    assert_eq!(
        r.iter().filter(|x| **x == Reason::Unexpected).count(),
        6,
        "{r:?}"
    );
    assert_eq!(
        r.iter()
            .filter(|x| **x == Reason::AlreadyInitialized)
            .count(),
        1,
        "{r:?}"
    );
    // The copy's new object port was destroyed by the pager.
    assert_eq!(k.kt.port_type(new_obj_send.name()), Ok(PortType::DEAD_NAME));
    still_healthy(&k, &p, &a, 0, &d);
    let seq: Vec<u32> = rec.admitted.lock().unwrap().iter().map(|x| x.1).collect();
    assert_eq!(seq, (0..9).collect::<Vec<u32>>());
}

/// Malformed messages (a data_request too short for its id, a data_return whose data is
/// inline instead of out of line, an unknown id) on object ports and on the default pager's
/// port; memory_object_create with a bad page size or sent to an object port instead of the
/// default pager's. Each is refused; a refused create destroys the object port it brought
/// (the kernel sees a dead pager, not a hang); the objects keep working.
#[test]
fn malformed_messages_and_bad_creates_are_refused() {
    let k = Kern::new();
    let (_t, p, rec) = k.pager(MemStore::new(16), cfg(2));
    let a = k.create(4 * PSU);
    let d = pattern(38, 0, 0);
    k.data_return(&a, 0, &d);
    k.send_raw(a.obj.name(), |m| m.int64(1).int64(2), 2203);
    k.send_raw(
        a.obj.name(),
        |m| m.int64(0).int32(0).int32(0).int32(0).int32(0).int32(0),
        2208,
    );
    k.send_raw(a.obj.name(), |m| m, 9999);
    let dmm = k.dmm().unwrap();
    k.send_raw(dmm, |m| m.int32(5), 2250);
    k.send_raw(dmm, |m| m, 31337);
    // A create with an 8 KiB page size.
    let bad = k.create_with_page_size(PSU, 2 * PSU).unwrap();
    // A create sent to an object port.
    let port = k.kt.allocate_receive().unwrap();
    let port_send = port.make_send().unwrap();
    let ctl = k.kt.allocate_receive().unwrap();
    let name = k.kt.allocate_receive().unwrap();
    mod_::client::memory_object_create(
        &k.kt,
        a.obj.try_clone().unwrap(),
        port,
        PSU,
        &ctl,
        &name,
        PSU,
    )
    .unwrap();
    wait_until("seven refusals", || p.stats().rejected == 7);
    let r = reasons(&p);
    for (reason, n) in [
        (Reason::Malformed, 3),
        (Reason::UnknownId, 2),
        (Reason::BadPageSize, 1),
        (Reason::WrongPort, 1),
    ] {
        assert_eq!(
            r.iter().filter(|x| **x == reason).count(),
            n,
            "{reason:?} in {r:?}"
        );
    }
    wait_until("refused object ports destroyed", || {
        k.kt.port_type(bad.obj.name()) == Ok(PortType::DEAD_NAME)
            && k.kt.port_type(port_send.name()) == Ok(PortType::DEAD_NAME)
    });
    assert_eq!(p.stats().objects, 1);
    still_healthy(&k, &p, &a, 0, &d);
    // Seqnos of `a`: return, 3 malformed/unknown, the misrouted create, the request.
    let seq: Vec<u32> = rec
        .admitted
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.0 == 1)
        .map(|x| x.1)
        .collect();
    assert_eq!(seq, (0..6).collect::<Vec<u32>>());
}
