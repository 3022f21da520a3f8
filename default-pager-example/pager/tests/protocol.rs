//! The message flow of the default-pager protocol, driven by a scripted kernel over the
//! runtime's userspace IPC (see `common/mod.rs`). Each test says which rule it checks.

mod common;

use common::*;
use default_pager::{MemStore, MsgKind, Reason};
use std::collections::BTreeMap;

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

/// Issue 7: "memory_object_create needs no reply and no change_attributes confirmation: the
/// manager must be ready for data requests as soon as it has accepted the object". For 8
/// objects in turn, the scripted kernel holds the pager inside its setup of the new object
/// (at `mach_port_get_receive_status`) and queues three data requests on the object port
/// meanwhile — read and write access, one past the size hint. Nothing is handled before
/// the setup ends; then all three are answered (`data_unavailable`, one page each), admitted
/// as the object's seqnos 0, 1, 2, and the pager never sends `memory_object_ready`,
/// `change_attributes` or anything else for a kernel-created object.
#[test]
fn requests_queued_while_create_is_handled_are_served() {
    let k = Kern::new();
    let (_t, p, rec) = k.pager(MemStore::new(16), cfg(3));
    let mut objs = Vec::new();
    for i in 0..8u64 {
        k.close_gate();
        let o = k.create(4 * PSU);
        k.wait_at_gate(1);
        let offs = [0, 3 * PSU, (100 + i) * PSU];
        k.data_request(&o, offs[0], PSU);
        k.data_request_rw(&o, offs[1], PSU);
        k.data_request(&o, offs[2], PSU);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(
            p.stats().messages.memory_object_data_request,
            3 * i,
            "a request was handled before the object was set up"
        );
        k.open_gate();
        for off in offs {
            k.expect_unavailable(&o, off);
        }
        objs.push(o);
    }
    let s = p.stats();
    assert_eq!(s.messages.memory_object_create, 8);
    assert_eq!(
        (s.data_unavailable, s.data_supply, s.data_error),
        (24, 0, 0)
    );
    assert_eq!(
        s.ready, 0,
        "no memory_object_ready for memory_object_create"
    );
    assert!(k.pending_calls().is_empty(), "{:?}", k.pending_calls());
    let adm = rec.admitted.lock().unwrap().clone();
    for id in rec.created.lock().unwrap().iter() {
        let mine: Vec<(u32, MsgKind)> = adm
            .iter()
            .filter(|a| a.0 == *id)
            .map(|a| (a.1, a.2))
            .collect();
        assert_eq!(
            mine,
            vec![
                (0, MsgKind::DataRequest),
                (1, MsgKind::DataRequest),
                (2, MsgKind::DataRequest)
            ]
        );
    }
    assert!(p.rejections().is_empty(), "{:?}", p.rejections());
    assert_eq!(s.paging_free, s.paging_total, "nothing stored");
}

/// Issue 7: "the pager never writes into, or supplies modified data for, a page it was
/// given: contents returned equal contents supplied, bit for bit, across any number of
/// cycles". 3 objects × 24 pages (half of them past the size hint), 2000 random operations:
/// `data_return` of 1–3 pages of random contents (with all-zero, all-ones and single-bit
/// pages among them), `data_initialize` of one page, `data_request` with read or write
/// access. Every supply is checked against a model, bytes and checksum; pages never written
/// are `data_unavailable`; the pager sends nothing it was not asked for; at the end every
/// page of every object is read back once more.
#[test]
fn contents_supplied_equal_contents_returned_over_many_cycles() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(128), cfg(3));
    const PAGES: u64 = 24;
    let objs: Vec<KObj> = (0..3).map(|_| k.create(12 * PSU)).collect();
    let mut model: Vec<Vec<Option<Vec<u8>>>> = vec![vec![None; PAGES as usize]; 3];
    let mut rng = Rng(0x5eed_0007);
    let (mut supplies, mut unavailable, mut stored_pages) = (0u64, 0u64, 0u64);
    let mut check = |k: &Kern, o: &KObj, m: &Option<Vec<u8>>, off: u64| match m {
        Some(want) => match k.reply_for(o, off) {
            Call::Supply {
                data,
                precious,
                lock,
            } => {
                assert_eq!((precious, lock), (0, 0));
                assert_eq!(checksum(&data), checksum(want), "checksum at {off:#x}");
                assert!(data == *want, "supplied page at {off:#x} differs");
                supplies += 1;
            }
            other => panic!("expected data_supply at {off:#x}, got {other:?}"),
        },
        None => {
            k.expect_unavailable(o, off);
            unavailable += 1;
        }
    };
    for _ in 0..2000 {
        let oi = rng.below(3) as usize;
        let o = &objs[oi];
        match rng.below(10) {
            0..=3 => {
                let n = 1 + rng.below(3);
                let first = rng.below(PAGES - n + 1);
                let pages: Vec<Vec<u8>> = (0..n).map(|_| rng.page()).collect();
                let data: Vec<u8> = pages.concat();
                k.data_return(o, first * PSU, &data);
                for (i, pg) in pages.into_iter().enumerate() {
                    model[oi][(first + i as u64) as usize] = Some(pg);
                }
                stored_pages += n;
            }
            4 => {
                let pg = rng.below(PAGES);
                let d = rng.page();
                k.data_initialize(o, pg * PSU, &d);
                let slot = &mut model[oi][pg as usize];
                if slot.is_none() {
                    *slot = Some(d);
                    stored_pages += 1;
                }
            }
            r => {
                let pg = rng.below(PAGES);
                if r % 2 == 0 {
                    k.data_request(o, pg * PSU, PSU);
                } else {
                    k.data_request_rw(o, pg * PSU, PSU);
                }
                check(&k, o, &model[oi][pg as usize], pg * PSU);
            }
        }
    }
    for (oi, o) in objs.iter().enumerate() {
        for pg in 0..PAGES {
            k.data_request(o, pg * PSU, PSU);
            check(&k, o, &model[oi][pg as usize], pg * PSU);
        }
    }
    assert!(k.pending_calls().is_empty(), "{:?}", k.pending_calls());
    let s = p.stats();
    assert_eq!((s.data_supply, s.pages_in), (supplies, supplies));
    assert_eq!(s.data_unavailable, unavailable);
    assert_eq!(
        (s.data_error, s.checksum_errors, s.pages_read_ahead),
        (0, 0, 0)
    );
    assert_eq!(s.pages_out, stored_pages);
    assert!(
        supplies > 500 && unavailable > 0,
        "{supplies} {unavailable}"
    );
    // Rewrites go in place: one block per page ever stored.
    let held: u64 = model.iter().flatten().filter(|m| m.is_some()).count() as u64;
    assert_eq!(s.paging_total - s.paging_free, held * PSU);
    assert!(p.rejections().is_empty(), "{:?}", p.rejections());
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

/// Issue 7: the creation size is only a hint. Requests and returns past it (just past it,
/// and far past it) are served with byte-identical round trips, and the block map and the
/// paging space grow with them, which the admin interface shows: after each `data_return`
/// past the hint, `default_pager_object_pages` lists exactly one more offset,
/// `default_pager_objects` one more page in `dpo_size`, and `default_pager_info` one page
/// less free. A multi-page return straddling the hint and a `data_initialize` past it grow
/// it too; pages past the hint never written are unavailable and take no space. Hints of 0
/// and `u64::MAX` change nothing.
#[test]
fn offsets_beyond_creation_size_are_served() {
    use default_pager::kernel_side::default_pager as dp;
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let (adm, dps) = admin_task(&k, &pt, p.admin_port());
    let (_, free0, _) = info(&adm, &dps);
    let o = k.create(2 * PSU);
    // offset → contents; and how many page writes the pager has done.
    let mut want: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut writes = 0u64;
    let mut grow = |want: &mut BTreeMap<u64, Vec<u8>>, off: u64, d: Vec<u8>, via_init: bool| {
        if via_init {
            k.data_initialize(&o, off, &d);
        } else {
            k.data_return(&o, off, &d);
        }
        for (i, pg) in d.chunks(PS).enumerate() {
            want.insert(off + i as u64 * PSU, pg.to_vec());
            writes += 1;
        }
        let n = want.len() as u64;
        wait_until("the pages stored", || p.stats().pages_out == writes);
        let offs: Vec<u64> = want.keys().copied().collect();
        // (The map is updated just after the store write.)
        wait_until("the block map grew", || {
            k.object_pages(&adm, &dps, &o) == offs
        });
        assert_eq!(
            info(&adm, &dps).1,
            free0 - n * PSU,
            "the paging space in use grew"
        );
        let objs = dp::client::default_pager_objects(&adm, &dps, 4, 4).unwrap();
        assert_eq!(objs.objects.len(), 1);
        assert_eq!(objs.objects[0][1] as u64, n * PSU, "dpo_size");
    };
    grow(&mut want, 0, pattern(3, 0, 0), false);
    for (i, off) in [2 * PSU, 100 * PSU, 1 << 40, (1u64 << 52) - PSU]
        .into_iter()
        .enumerate()
    {
        grow(&mut want, off, pattern(3, 1 + i as u64, 0), false);
    }
    // Three pages from inside the hint to past it (page 2 is rewritten in place), and an
    // initialize past it.
    let straddle: Vec<u8> = (0..3).flat_map(|i| pattern(4, i, 0)).collect();
    grow(&mut want, PSU, straddle, false);
    grow(&mut want, 7 * PSU, pattern(5, 0, 0), true);
    for (off, d) in &want {
        k.data_request(&o, *off, PSU);
        k.expect_supply(&o, *off, d);
    }
    for off in [5 * PSU, 1 << 41, (1u64 << 52) - 2 * PSU] {
        k.data_request(&o, off, PSU);
        k.expect_unavailable(&o, off);
    }
    assert_eq!(info(&adm, &dps).1, free0 - want.len() as u64 * PSU);
    assert!(p.rejections().is_empty(), "{:?}", p.rejections());
    // Terminate: every block comes back.
    k.terminate(o);
    wait_until("freed", || p.stats().objects_freed == 1);
    assert_eq!(info(&adm, &dps).1, free0);
    // Absurd hints are only hints too: nothing is sized after them.
    for hint in [0, u64::MAX] {
        let o = k.create(hint);
        let d = pattern(6, hint & 7, 0);
        k.data_return(&o, 5 * PSU, &d);
        k.data_request(&o, 5 * PSU, PSU);
        k.expect_supply(&o, 5 * PSU, &d);
        k.data_request(&o, 1 << 30, PSU);
        k.expect_unavailable(&o, 1 << 30);
        assert_eq!(k.object_pages(&adm, &dps, &o), vec![5 * PSU]);
        k.terminate(o);
    }
    wait_until("freed", || p.stats().objects_freed == 3);
    assert_eq!(info(&adm, &dps).1, free0);
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
