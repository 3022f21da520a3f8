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

fn count(p: &PagerHandle, reason: Reason) -> usize {
    reasons(p).iter().filter(|r| **r == reason).count()
}

/// A pager with an admin task, a target object `a` (pages 0 and 1 stored) and a bystander
/// object `b` (4 pages of random contents stored).
struct World {
    k: Kern,
    p: PagerHandle,
    adm: mig_runtime::ipc::Task,
    dps: mig_runtime::SendRight,
    a: KObj,
    b: KObj,
}

impl World {
    fn new(seed: u64) -> World {
        let k = Kern::new();
        let (pt, p, _rec) = k.pager(MemStore::new(32), cfg(2));
        let (adm, dps) = admin_task(&k, &pt, p.admin_port());
        let a = k.create(8 * PSU);
        let b = k.create(8 * PSU);
        let mut rng = Rng(seed);
        k.data_return(&a, 0, &[rng.page(), rng.page()].concat());
        for pg in [0u64, 2, 5, 7] {
            k.data_return(&b, pg * PSU, &rng.page());
        }
        wait_until("setup stored", || p.stats().pages_out == 6);
        wait_stored(&p, 6);
        World {
            k,
            p,
            adm,
            dps,
            a,
            b,
        }
    }

    fn state(&self, objs: &[&KObj]) -> (Vec<Snapshot>, u64) {
        state(&self.k, &self.adm, &self.dps, objs)
    }
}

/// What the pager holds: the objects' page lists and contents, and the free space.
fn state(
    k: &Kern,
    adm: &mig_runtime::ipc::Task,
    dps: &mig_runtime::SendRight,
    objs: &[&KObj],
) -> (Vec<Snapshot>, u64) {
    let snaps = objs.iter().map(|o| k.snapshot(adm, dps, o)).collect();
    (snaps, info(adm, dps).1)
}

/// Offsets that are not page-aligned. A data_request is answered with
/// `data_error(KERN_INVALID_ARGUMENT)` for exactly the range asked (the kernel may have a
/// fault waiting on it: it fails instead of hanging), never with data; a data_return or
/// data_initialize stores nothing (not even the whole pages it overlaps). Each is a logged
/// `Unaligned` rejection. Both objects' page lists and contents, and the free space, are
/// the same before and after.
#[test]
fn unaligned_offsets_are_refused() {
    let w = World::new(30);
    let (k, p, a) = (&w.k, &w.p, &w.a);
    let before = w.state(&[&w.a, &w.b]);
    let writes = p.stats().pages_out;
    for off in [1, 100, PSU - 1, PSU + 8, 5 * PSU + 2048] {
        k.data_request(a, off, PSU);
        assert_eq!(
            k.expect_error(a, off),
            (PSU, KernReturn::KERN_INVALID_ARGUMENT.0),
            "at {off:#x}"
        );
    }
    // Over the stored page 1, over a free page, and two pages from an odd offset.
    k.data_return(a, PSU + 1, &pattern(30, 1, 1));
    k.data_return(a, 3 * PSU + 100, &pattern(30, 3, 1));
    k.data_return(
        a,
        4 * PSU + 12,
        &[pattern(30, 4, 1), pattern(30, 5, 1)].concat(),
    );
    k.data_initialize(a, 2 * PSU + 8, &pattern(30, 2, 1));
    k.data_initialize(a, 7, &pattern(30, 0, 1));
    wait_until("ten refusals", || count(p, Reason::Unaligned) == 10);
    assert_eq!(p.stats().pages_out, writes, "nothing written");
    assert_eq!(w.state(&[&w.a, &w.b]), before);
    assert!(k.pending_calls().is_empty(), "{:?}", k.pending_calls());
    assert!(p.is_running());
}

/// Lengths the protocol does not allow. data_request must ask for exactly one page (GNU
/// Mach always does; the Hurd's pager panics otherwise): 0, 1 byte, a page ± 1, two pages,
/// sixteen pages, `u64::MAX`, and an offset + length that overflows are each answered with
/// `data_error(KERN_INVALID_ARGUMENT)` for the range asked — never a supply, even where the
/// first page is stored. data_return and data_initialize carry whole pages (any number):
/// empty data, 1, 100 bytes, a page ± 1, three pages less one byte store nothing, not even
/// over a stored page. Each is a `BadLength` rejection; whole-page multi-page returns and
/// initializes are accepted. Page lists, contents and free space are unchanged otherwise.
#[test]
fn bad_lengths_are_refused() {
    let w = World::new(32);
    let (k, p, a) = (&w.k, &w.p, &w.a);
    let before = w.state(&[&w.a, &w.b]);
    let writes = p.stats().pages_out;
    let lens = [0, 1, PSU - 1, PSU + 1, 2 * PSU, 16 * PSU, u64::MAX];
    for (i, len) in lens.into_iter().enumerate() {
        // Page 0 is stored: a two-page request there still gets no data.
        let off = (i as u64 % 4) * PSU;
        k.data_request(a, off, len);
        assert_eq!(
            k.reply_for(a, off),
            Call::Error {
                size: len,
                code: KernReturn::KERN_INVALID_ARGUMENT.0
            },
            "length {len:#x} at {off:#x}"
        );
    }
    k.data_request(a, u64::MAX - PSU + 1, PSU);
    assert_eq!(
        k.expect_error(a, u64::MAX - PSU + 1),
        (PSU, KernReturn::KERN_INVALID_ARGUMENT.0)
    );
    for (i, len) in [0, 1, 100, PS - 1, PS + 1, 3 * PS - 1]
        .into_iter()
        .enumerate()
    {
        // Over stored page 0 or 1, or free pages.
        k.data_return(a, (i as u64 % 3) * PSU, &vec![0xa5u8; len]);
    }
    for (i, len) in [0, 100, PS + 1, 2 * PS - 1].into_iter().enumerate() {
        k.data_initialize(a, (4 + i as u64) * PSU, &vec![0x5au8; len]);
    }
    wait_until("eighteen refusals", || count(p, Reason::BadLength) == 18);
    assert_eq!(p.stats().pages_out, writes, "nothing written");
    assert_eq!(w.state(&[&w.a, &w.b]), before);
    assert!(k.pending_calls().is_empty(), "{:?}", k.pending_calls());
    // Whole pages, several at once, are legal.
    let three: Vec<u8> = (0..3).flat_map(|pg| pattern(33, pg, 0)).collect();
    k.data_return(a, 2 * PSU, &three);
    let two: Vec<u8> = (0..2).flat_map(|pg| pattern(34, pg, 0)).collect();
    k.data_initialize(a, 6 * PSU, &two);
    for pg in 0..3 {
        k.data_request(a, (2 + pg) * PSU, PSU);
        k.expect_supply(a, (2 + pg) * PSU, &pattern(33, pg, 0));
    }
    for pg in 0..2 {
        k.data_request(a, (6 + pg) * PSU, PSU);
        k.expect_supply(a, (6 + pg) * PSU, &pattern(34, pg, 0));
    }
    assert_eq!(w.state(&[&w.b]).0, before.0[1..].to_vec());
    assert_eq!(count(p, Reason::BadLength), 18, "{:?}", reasons(p));
}

/// Messages on a terminated object (a kernel that kept a second send right to the object
/// port after `memory_object_terminate`): data_request (read and write access),
/// data_return, data_initialize and a second terminate are refused with `Terminated` and
/// get no answer (the control port is gone); their seqnos are consumed and the rights they
/// carried released (the second terminate's control and name ports are destroyed). The
/// no-senders that follows frees the object and all its space; the bystander object is
/// untouched throughout.
#[test]
fn messages_on_a_terminated_object_are_refused() {
    let World {
        k,
        p,
        adm,
        dps,
        a,
        b,
        ..
    } = World::new(34);
    let before_b = state(&k, &adm, &dps, &[&b]).0;
    let extra = a.obj.try_clone().unwrap();
    let ctl = k.kt.allocate_receive().unwrap();
    let ctl_name = ctl.name();
    k.terminate(a);
    wait_until("terminate", || {
        p.stats().messages.memory_object_terminate == 1
    });
    mo::client::memory_object_data_request(&k.kt, &extra, &ctl, 0, PSU, 1).unwrap();
    mo::client::memory_object_data_request(&k.kt, &extra, &ctl, PSU, PSU, 3).unwrap();
    mo::client::memory_object_data_return(&k.kt, &extra, &ctl, PSU, &pattern(34, 1, 0), 1, 0)
        .unwrap();
    mod_::client::memory_object_data_initialize(&k.kt, &extra, &ctl, 3 * PSU, &pattern(34, 3, 0))
        .unwrap();
    let (c2, n2) = (
        k.kt.allocate_receive().unwrap(),
        k.kt.allocate_receive().unwrap(),
    );
    let (c2s, n2s) = (c2.make_send().unwrap(), n2.make_send().unwrap());
    mo::client::memory_object_terminate(&k.kt, extra.try_clone().unwrap(), c2, n2).unwrap();
    wait_until("five refusals", || count(&p, Reason::Terminated) == 5);
    k.expect_no_call(std::time::Duration::from_millis(50), |c| c.ctl == ctl_name);
    wait_until("the second terminate's ports destroyed", || {
        k.kt.port_type(c2s.name()) == Ok(PortType::DEAD_NAME)
            && k.kt.port_type(n2s.name()) == Ok(PortType::DEAD_NAME)
    });
    assert_eq!(p.stats().objects, 2);
    assert_eq!(p.stats().pages_out, 6, "nothing written after terminate");
    drop(extra);
    wait_until("freed", || p.stats().objects_freed == 1);
    assert_eq!(state(&k, &adm, &dps, &[&b]).0, before_b);
    let s = p.stats();
    assert_eq!(
        s.paging_total - s.paging_free,
        4 * PSU,
        "only b's pages in use"
    );
}

/// A forged control port — the other object's control port, the object's own name port, a
/// fresh port — in data_request, data_return, data_initialize and terminate: refused with
/// `ForgedControl`; no answer goes to the forged port or to the real one; nothing is
/// stored (not even over a stored page); both objects' page lists and contents are the same
/// before and after.
#[test]
fn forged_control_ports_are_refused() {
    let w = World::new(35);
    let (k, p, a, b) = (&w.k, &w.p, &w.a, &w.b);
    let before = w.state(&[a, b]);
    let writes = p.stats().pages_out;
    // b's control port on a's object port, over a's stored page 0 and free page 4.
    mo::client::memory_object_data_request(&k.kt, &a.obj, &b.ctl, 0, PSU, 1).unwrap();
    mo::client::memory_object_data_return(&k.kt, &a.obj, &b.ctl, 0, &pattern(35, 0, 9), 1, 0)
        .unwrap();
    mod_::client::memory_object_data_initialize(&k.kt, &a.obj, &b.ctl, 4 * PSU, &pattern(35, 4, 9))
        .unwrap();
    // a's own name port as its control port.
    mo::client::memory_object_data_request(&k.kt, &a.obj, &a.name, PSU, PSU, 1).unwrap();
    // A fresh port as control, and as control and name in a terminate.
    let fresh = k.kt.allocate_receive().unwrap();
    let fresh_name = fresh.name();
    mo::client::memory_object_data_request(&k.kt, &a.obj, &fresh, PSU, PSU, 1).unwrap();
    let f1 = k.kt.allocate_receive().unwrap();
    let f2 = k.kt.allocate_receive().unwrap();
    mo::client::memory_object_terminate(&k.kt, a.obj.try_clone().unwrap(), f1, f2).unwrap();
    wait_until("six refusals", || count(p, Reason::ForgedControl) == 6);
    k.expect_no_call(std::time::Duration::from_millis(50), |c| {
        c.ctl == b.ctl_name()
            || c.ctl == a.ctl_name()
            || c.ctl == fresh_name
            || c.ctl == a.name.name()
    });
    assert_eq!(p.stats().pages_out, writes, "nothing written");
    assert_eq!(w.state(&[a, b]), before);
    assert_eq!(p.stats().objects, 2);
    assert!(p.is_running());
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
    // The log entry is pushed just after the counter moves: wait for the log.
    wait_until("seven refusals", || p.rejections().len() == 7);
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
    // The log entry is pushed just after the counter moves: wait for the log.
    wait_until("seven refusals", || p.rejections().len() == 7);
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
