//! Admission in seqno order with parallel I/O (reference §4.2 items 4 and 5).

mod common;

use common::*;
use default_pager::{Config, MemStore, MsgKind, Reason};
use std::sync::Arc;

/// Four object threads, four objects each driven by its own kernel thread, I/O delayed at
/// random (up to 2 ms per block): data_return(p) immediately followed by data_request(p),
/// rounds of them, plus per object a malformed message, a message with an unknown id, an
/// unexpected `data_unlock`, then terminate and no-senders. Checks that
///
/// * per object, the admission log (object, seqno) is strictly increasing by 1 from 0, with
///   no gap: the malformed, unknown and unexpected messages and no-senders consumed their
///   seqnos;
/// * every request returned the contents of the return just before it (a read never
///   overtakes an earlier write of its page), and never-written pages were unavailable;
/// * terminate was admitted last but for no-senders, and the space is free again.
#[test]
fn admission_is_strictly_in_seqno_order_under_parallel_delayed_io() {
    const OBJECTS: usize = 4;
    const ROUNDS: u64 = 24;
    let k = Kern::new();
    let rec = Arc::new(Recorder::default());
    let store = TestStore::new(MemStore::new(4096)).with_delay(2000);
    let (_t, p, _) = k.pager(
        store,
        Config {
            object_threads: 4,
            hooks: Some(rec.clone()),
            ..Config::default()
        },
    );
    std::thread::scope(|s| {
        for i in 0..OBJECTS as u64 {
            let k = &k;
            s.spawn(move || {
                let o = k.create(ROUNDS * PSU);
                for phase in 0..2u64 {
                    for r in 0..ROUNDS {
                        let d = pattern(i, r, phase);
                        k.data_return(&o, r * PSU, &d);
                        k.data_request(&o, r * PSU, PSU);
                        if phase == 0 {
                            // A page never written, asked between writes.
                            k.data_request(&o, (ROUNDS + r) * PSU, PSU);
                        }
                        if r == ROUNDS / 2 {
                            let dest = o.obj.name();
                            // Malformed: a data_request id with a body the stub rejects.
                            k.send_raw(dest, |m| m.int64(7), 2203);
                            // An id none of the pager's subsystems has.
                            k.send_raw(dest, |m| m.int32(1), 2299);
                            // A message the default pager never expects.
                            default_pager::kernel_side::memory_object::client::memory_object_data_unlock(
                                &k.kt, &o.obj, &o.ctl, 0, PSU, 1,
                            )
                            .unwrap();
                        }
                    }
                    for r in 0..ROUNDS {
                        k.expect_supply(&o, r * PSU, &pattern(i, r, phase));
                        if phase == 0 {
                            k.expect_unavailable(&o, (ROUNDS + r) * PSU);
                        }
                    }
                }
                k.terminate(o);
            });
        }
    });
    wait_until("all no-senders", || {
        p.stats().objects_freed == OBJECTS as u64
    });
    let log = rec.admitted.lock().unwrap().clone();
    let ids = rec.created.lock().unwrap().clone();
    assert_eq!(ids.len(), OBJECTS);
    for id in ids {
        let mine: Vec<(u32, MsgKind)> = log
            .iter()
            .filter(|a| a.0 == id)
            .map(|a| (a.1, a.2))
            .collect();
        let seqnos: Vec<u32> = mine.iter().map(|a| a.0).collect();
        let want: Vec<u32> = (0..mine.len() as u32).collect();
        assert_eq!(
            seqnos, want,
            "object {id}: admission order must be seqno order without gaps"
        );
        // 2 phases × ROUNDS × (return + request) + ROUNDS unavailable requests + 3 odd
        // messages per phase + terminate + no-senders.
        assert_eq!(
            mine.len() as u64,
            2 * ROUNDS * 2 + ROUNDS + 2 * 3 + 2,
            "object {id}"
        );
        for k in [MsgKind::Malformed, MsgKind::UnknownId, MsgKind::Unexpected] {
            assert_eq!(
                mine.iter().filter(|a| a.1 == k).count(),
                2,
                "object {id}: {k:?}"
            );
        }
        let n = mine.len();
        assert_eq!(
            (mine[n - 2].1, mine[n - 1].1),
            (MsgKind::Terminate, MsgKind::NoSenders)
        );
    }
    let s = p.stats();
    assert_eq!(s.paging_free, s.paging_total);
    assert_eq!(s.checksum_errors, 0);
    assert_eq!(s.seqno_gaps, 0);
    assert!(
        s.wait_seqno > 0 || s.wait_io > 0,
        "with 4 threads and delays some admission waited: {s:?}"
    );
    let reasons = rec.reasons();
    for r in [Reason::Malformed, Reason::UnknownId, Reason::Unexpected] {
        assert_eq!(
            reasons.iter().filter(|x| **x == r).count(),
            2 * OBJECTS,
            "{r:?}"
        );
    }
    assert_eq!(reasons.len(), 6 * OBJECTS, "{reasons:?}");
}

/// terminate is admitted only after the reads and writes admitted before it finished (the
/// store takes up to 30 ms per write here, and terminate is sent right behind the
/// returns): in the shared event log every "write done" precedes the terminate admission.
#[test]
fn terminate_waits_for_in_flight_writes() {
    let k = Kern::new();
    let rec = Arc::new(Recorder::default());
    let store = TestStore::new(MemStore::new(64))
        .with_delay(30_000)
        .with_log(rec.clone());
    let (_t, p, _) = k.pager(
        store,
        Config {
            object_threads: 4,
            hooks: Some(rec.clone()),
            ..Config::default()
        },
    );
    let o = k.create(8 * PSU);
    for page in 0..6 {
        k.data_return(&o, page * PSU, &pattern(5, page, 0));
    }
    k.terminate(o);
    wait_until("no-senders", || p.stats().objects_freed == 1);
    let ev = rec.events.lock().unwrap().clone();
    let term = ev
        .iter()
        .position(|e| e.ends_with("memory_object_terminate"))
        .unwrap_or_else(|| panic!("no terminate admission in {ev:?}"));
    let writes: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("write done"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(writes.len(), 6, "{ev:?}");
    assert!(writes.iter().all(|&w| w < term), "{ev:?}");
    assert_eq!(p.stats().paging_free, p.stats().paging_total);
}

/// A read never overtakes an earlier write of its page (XNU: "the kernel might generate a
/// data-request for a page on the heels of a data-write for the same page"): with slow
/// writes and several threads, a request sent right after a return gets the returned data,
/// never data_unavailable or older contents.
#[test]
fn request_after_return_of_same_page_sees_the_new_data() {
    let k = Kern::new();
    let (_t, _p, _rec) = k.pager(TestStore::new(MemStore::new(64)).with_delay(20_000), cfg(4));
    let o = k.create(4 * PSU);
    for round in 0..6 {
        let d = pattern(6, 0, round);
        k.data_return(&o, 0, &d);
        k.data_request(&o, 0, PSU);
        k.expect_supply(&o, 0, &d);
    }
}

/// A seqno that never arrives (here: the object port's counter is moved forward behind
/// the pager's back, as if the kernel had dequeued and lost a message) does not hang the
/// object: after `seqno_gap_timeout_ms` the pager logs a seqno gap and serves the request.
#[test]
fn a_missing_seqno_is_skipped_after_the_timeout() {
    let k = Kern::new();
    let (pt, p, rec) = k.pager(
        MemStore::new(16),
        Config {
            object_threads: 2,
            seqno_gap_timeout_ms: Some(300),
            ..Config::default()
        },
    );
    let o = k.create(4 * PSU);
    k.data_request(&o, 0, PSU);
    k.expect_unavailable(&o, 0);
    let port = p.core().object_ports()[0].1;
    pt.port_set_seqno(port, 5).unwrap();
    k.data_request(&o, PSU, PSU);
    k.expect_unavailable(&o, PSU);
    assert_eq!(p.stats().seqno_gaps, 1);
    assert!(
        rec.reasons().contains(&Reason::SeqnoGap { expected: 1 }),
        "{:?}",
        rec.reasons()
    );
    // And the object goes on normally from there.
    k.data_request(&o, 2 * PSU, PSU);
    k.expect_unavailable(&o, 2 * PSU);
}
