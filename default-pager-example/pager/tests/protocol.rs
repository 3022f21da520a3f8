//! The message flow of the default-pager protocol, driven by a scripted kernel over the
//! runtime's userspace IPC (see `common/mod.rs`). Each test says which rule it checks.

mod common;

use common::*;
use default_pager::{MemStore, MsgKind, Reason};

/// Issue 7: "a data request that arrives right after memory_object_create, before anything
/// else, is served": memory_object_create needs no reply and no ready; the very next message
/// (a data_request for a page never written) is answered with data_unavailable, and the
/// pager never calls memory_object_ready for a kernel-created object.
#[test]
fn create_then_immediate_request_is_unavailable() {
    let k = Kern::new();
    let (_t, p, rec) = k.pager(MemStore::new(64), cfg(2));
    let o = k.create(16 * PSU);
    k.data_request(&o, 0, PSU);
    k.expect_unavailable(&o, 0);
    k.data_request(&o, 5 * PSU, PSU);
    k.expect_unavailable(&o, 5 * PSU);
    let s = p.stats();
    assert_eq!(s.messages.memory_object_create, 1);
    assert_eq!(s.messages.memory_object_data_request, 2);
    assert_eq!(
        (s.data_unavailable, s.pages_unavailable, s.data_supply),
        (2, 2, 0)
    );
    assert_eq!(
        s.ready, 0,
        "no memory_object_ready for memory_object_create"
    );
    assert!(k.pending_calls().is_empty(), "{:?}", k.pending_calls());
    // Never-written pages are not listed and take no space.
    let port = p.core().object_ports()[0].1;
    assert_eq!(p.core().object_pages(port), Some(vec![]));
    assert_eq!(s.paging_free, s.paging_total);
    assert!(rec.rejected.lock().unwrap().is_empty());
}

/// Round trip: what data_return stored comes back from data_request → data_supply with the
/// same bytes (the pager checksums at write and verifies at read), over many cycles of
/// rewriting the same pages with new contents.
#[test]
fn returned_pages_come_back_identical_over_many_cycles() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(64), cfg(3));
    let o = k.create(8 * PSU);
    for round in 0..150u64 {
        let page = round % 8;
        let data = pattern(1, page, round);
        k.data_return(&o, page * PSU, &data);
        k.data_request(&o, page * PSU, PSU);
        k.expect_supply(&o, page * PSU, &data);
    }
    let s = p.stats();
    assert_eq!(s.messages.memory_object_data_return, 150);
    assert_eq!((s.pages_out, s.pages_in, s.data_supply), (150, 150, 150));
    assert_eq!(s.checksum_errors, 0);
    // Eight pages written, eight blocks used (rewrites go in place).
    assert_eq!(s.paging_total - s.paging_free, 8 * PSU);
}

/// data_initialize writes only pages the pager does not hold: it never overwrites a page
/// that data_return stored, and it does store absent pages.
#[test]
fn data_initialize_never_overwrites() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let o = k.create(4 * PSU);
    let a = pattern(2, 0, 0);
    let b = pattern(2, 0, 1);
    let c = pattern(2, 1, 0);
    k.data_return(&o, 0, &a);
    k.data_initialize(&o, 0, &b);
    k.data_initialize(&o, PSU, &c);
    k.data_request(&o, 0, PSU);
    k.expect_supply(&o, 0, &a);
    k.data_request(&o, PSU, PSU);
    k.expect_supply(&o, PSU, &c);
    // A second initialize of the now-present page is skipped too.
    k.data_initialize(&o, PSU, &b);
    k.data_request(&o, PSU, PSU);
    k.expect_supply(&o, PSU, &c);
    let s = p.stats();
    assert_eq!(s.messages.memory_object_data_initialize, 3);
    assert_eq!(s.init_skipped, 2);
    assert_eq!(s.pages_out, 2);
}

/// Issue 7: the creation size is only a hint. Requests and returns past it (far past it,
/// too) are served with byte-identical round trips; pages past it never written are
/// unavailable; the block map grows only where data was written.
#[test]
fn offsets_beyond_creation_size_are_served() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let o = k.create(PSU);
    let offsets = [PSU, 100 * PSU, 1 << 40, (1u64 << 52) - PSU];
    for (i, &off) in offsets.iter().enumerate() {
        let d = pattern(3, i as u64, 0);
        k.data_return(&o, off, &d);
        k.data_request(&o, off, PSU);
        k.expect_supply(&o, off, &d);
    }
    k.data_request(&o, 1 << 41, PSU);
    k.expect_unavailable(&o, 1 << 41);
    let port = p.core().object_ports()[0].1;
    let mut want = offsets.to_vec();
    want.sort();
    assert_eq!(p.core().object_pages(port), Some(want));
    assert!(p.rejections().is_empty(), "{:?}", p.rejections());
}

/// terminate + no-senders: the pager destroys the control and name ports, then frees every
/// block and the object port; free space returns to 100 %. The no-senders notification
/// takes the seqno after terminate's.
#[test]
fn terminate_and_no_senders_free_everything() {
    let k = Kern::new();
    let (pt, p, rec) = k.pager(MemStore::new(64), cfg(2));
    let total = p.stats().paging_total;
    let objs: Vec<KObj> = (0..3).map(|_| k.create(8 * PSU)).collect();
    for (i, o) in objs.iter().enumerate() {
        for page in 0..(5 + i as u64) {
            k.data_return(o, page * PSU, &pattern(4, page, i as u64));
        }
    }
    wait_until("pages stored", || p.stats().pages_out == 18);
    assert_eq!(p.stats().paging_free, total - 18 * PSU);
    let names_before = pt.port_names().len();
    for o in objs {
        let (ctl, name) = (o.ctl.name(), o.name.name());
        k.terminate(o);
        // The kernel's control and name ports die with the pager's rights on them.
        let _ = (ctl, name);
    }
    wait_until("no-senders handled", || p.stats().objects_freed == 3);
    let s = p.stats();
    assert_eq!(s.messages.memory_object_terminate, 3);
    assert_eq!((s.objects, s.objects_freed), (0, 3));
    assert_eq!(s.paging_free, s.paging_total, "free space back to 100%");
    assert_eq!(rec.freed.lock().unwrap().len(), 3);
    // Per object: terminate then no-senders, in consecutive seqnos.
    let adm = rec.admitted.lock().unwrap().clone();
    for id in rec.created.lock().unwrap().iter() {
        let mine: Vec<_> = adm.iter().filter(|a| a.0 == *id).collect();
        let n = mine.len();
        assert!(n >= 2);
        assert_eq!(mine[n - 2].2, MsgKind::Terminate);
        assert_eq!(mine[n - 1].2, MsgKind::NoSenders);
        assert_eq!(mine[n - 1].1, mine[n - 2].1 + 1);
    }
    // The pager's space holds no object, control or name right any more.
    assert!(
        pt.port_names().len() < names_before,
        "{:?}",
        pt.port_names()
    );
    assert!(p.rejections().is_empty(), "{:?}", p.rejections());
    let _ = Reason::Malformed;
}

/// External objects (default_pager_object_create + memory_object_init): init is answered
/// with memory_object_ready(may_cache FALSE, COPY_DELAY); pages never written are
/// unavailable; requests past the object's size get data_error.
#[test]
fn external_object_init_ready_and_limit() {
    use default_pager::kernel_side::default_pager as dp;
    use default_pager::kernel_side::memory_object as mo;
    use mig_runtime::wire::type_name as tn;
    use mig_runtime::SendRight;
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    // The kernel holds the admin port in this test (as the Hurd's proxy gets it from
    // vm_set_default_memory_manager).
    let dpn = pt
        .transfer_right(p.admin_port(), tn::MAKE_SEND, &k.kt)
        .unwrap();
    let dps = SendRight::from_raw(k.kt.space_id(), dpn);
    let obj = k.reown(dp::client::default_pager_object_create(&k.kt, &dps, 4 * PSU).unwrap());
    // The client keeps a reference of its own; the kernel's (from vm_map) goes with
    // terminate.
    let client = obj.try_clone().unwrap();
    let ctl = k.kt.allocate_receive().unwrap();
    k.kt.port_move_member(ctl.name(), k.set).unwrap();
    let name = k.kt.allocate_receive().unwrap();
    mo::client::memory_object_init(&k.kt, &obj, &ctl, &name, PSU).unwrap();
    let c = k.take_call("memory_object_ready", |c| c.ctl == ctl.name());
    assert_eq!(
        c.call,
        Call::Ready {
            may_cache: 0,
            strategy: 2
        }
    );
    let o = KObj { obj, ctl, name };
    k.data_request(&o, 0, PSU);
    k.expect_unavailable(&o, 0);
    let d = pattern(9, 1, 1);
    k.data_return(&o, PSU, &d);
    k.data_request(&o, PSU, PSU);
    k.expect_supply(&o, PSU, &d);
    k.data_request(&o, 4 * PSU, PSU);
    let (size, code) = k.expect_error(&o, 4 * PSU);
    assert_eq!((size, code), (PSU, mig_runtime::KernReturn::KERN_FAILURE.0));
    assert_eq!(p.stats().ready, 1);
    // terminate; the object survives (the client still holds a send right) and may be
    // mapped again; once the last send right goes, no-senders frees it.
    k.terminate(o);
    wait_until("terminate", || {
        p.stats().messages.memory_object_terminate == 1
    });
    assert_eq!(p.stats().objects, 1);
    drop(client);
    wait_until("no-senders", || p.stats().objects_freed == 1);
    assert_eq!(p.stats().paging_free, p.stats().paging_total);
}

/// Port-reference hygiene (reference §4.2 item 6): every request brings a user reference
/// on the control port; the pager trims them once more than `max_urefs` accumulated (here
/// 5), and after terminate + no-senders its space holds exactly the names it had before the
/// object existed — no leaked control, name or object right.
#[test]
fn control_references_are_trimmed_and_nothing_leaks() {
    use mig_runtime::ipc::PortType;
    use mig_runtime::rights::RightKind;
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(
        MemStore::new(16),
        default_pager::Config {
            object_threads: 2,
            max_urefs: 5,
            ..default_pager::Config::default()
        },
    );
    // Warm up the reply ports of the pager's threads, then take the baseline.
    let o = k.create(4 * PSU);
    k.terminate(o);
    wait_until("freed", || p.stats().objects_freed == 1);
    let before = pt.port_names();
    let o = k.create(4 * PSU);
    k.data_return(&o, 0, &pattern(11, 0, 0));
    for _ in 0..50 {
        k.data_request(&o, 0, PSU);
        k.expect_supply(&o, 0, &pattern(11, 0, 0));
    }
    let after: Vec<_> = pt
        .port_names()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    let sends: Vec<_> = after.iter().filter(|(_, t)| *t == PortType::SEND).collect();
    assert_eq!(sends.len(), 2, "control and name: {after:?}");
    for (n, _) in sends {
        let refs = pt.port_get_refs(*n, RightKind::Send).unwrap();
        // At most max_urefs + 1 counted, plus the next request's reference arriving
        // before the previous trim ran.
        assert!(refs <= 7, "{refs} user references on {n:?}");
    }
    assert!(p.stats().urefs_trimmed >= 40, "{:?}", p.stats());
    k.terminate(o);
    wait_until("freed", || p.stats().objects_freed == 2);
    let now = pt.port_names();
    let gone: Vec<_> = before.iter().filter(|n| !now.contains(n)).collect();
    assert!(gone.is_empty(), "{gone:?}");
    // The only new names are reply ports of pager threads that made their first call
    // since the baseline: receive rights in no set, without send rights.
    for (n, t) in now.iter().filter(|n| !before.contains(n)) {
        let st = pt.port_get_receive_status(*n).unwrap();
        assert!(
            *t == PortType::RECEIVE && st.pset.is_null() && !st.srights,
            "leaked {n:?}: {t:?} {st:?}"
        );
    }
}
