//! The default pager over the emulated kernel: the invariants of the reference (§4.2) and the
//! kernel-side rules of issue 7, in both modes (each test prints which one ran).

mod common;

use common::*;
use default_pager::MsgKind;
use default_pager_example::faults::{run_guarded, Outcome};
use default_pager_example::kernel::ModeChoice;
use default_pager_example::system::start_pager;
use default_pager_example::{MemoryError, PAGE};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Never-written pages: `data_request` → `data_unavailable` (pagemap off), and the pager never
/// lists them in `default_pager_object_pages`.
#[test]
fn never_written_pages_are_unavailable_and_never_listed() {
    let _deadline = deadline("never_written_pages_are_unavailable_and_never_listed", 240);
    for mode in modes("never_written") {
        println!("mode: {}", mode_name(mode));
        let mut k = kcfg(mode, 64);
        k.pagemap = false;
        let s = boot(k, 4096, pcfg(3));
        let (t, base) = alloc(&s.kernel, 256);
        for p in (0..256).step_by(4) {
            write_page(&t, base, p, &page(1, p as u64));
        }
        t.pageout(base, 256 * PAGE).expect("pageout");
        for p in 0..256 {
            let got = read_page(&t, base, p);
            if p % 4 == 0 {
                assert_eq!(got, page(1, p as u64), "page {p}");
            } else {
                assert!(got.iter().all(|&b| b == 0), "page {p} not zero");
            }
        }
        let ks = s.kernel.stats();
        let ps = s.pager.stats();
        assert!(ks.memory_object_data_unavailable >= 192, "{ks:?}");
        assert_eq!(ks.zero_fill_unavailable, ks.memory_object_data_unavailable);
        assert!(ps.pages_unavailable >= 192);
        let objs = s.objects().expect("default_pager_objects");
        assert_eq!(objs.len(), 1);
        let (_, dpo_size, offs) = &objs[0];
        assert_eq!(
            *dpo_size,
            64 * PAGE as u64,
            "dpo_size counts only written pages"
        );
        assert_eq!(offs.len(), 64);
        for o in offs {
            assert_eq!(
                (o / PAGE as u64) % 4,
                0,
                "never-written offset {o:#x} listed"
            );
        }
    }
}

/// Byte-identical round trips after repeated eviction under memory pressure.
#[test]
fn round_trip_under_pressure_is_byte_identical() {
    let _deadline = deadline("round_trip_under_pressure_is_byte_identical", 240);
    for mode in modes("round_trip") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 128), 8192, pcfg(4));
        let n = 1024usize; // 8x the RAM
        let (t, base) = alloc(&s.kernel, n);
        for round in 0..3u64 {
            let mut sums = Vec::new();
            for p in 0..n {
                let d = page(round, p as u64);
                sums.push(checksum(&d));
                write_page(&t, base, p, &d);
            }
            for (p, sum) in sums.iter().enumerate() {
                assert_eq!(
                    checksum(&read_page(&t, base, p)),
                    *sum,
                    "round {round} page {p}"
                );
            }
        }
        let ks = s.kernel.stats();
        assert!(ks.pageouts >= 2 * n as u64, "{ks:?}");
        assert!(ks.pageins >= n as u64, "{ks:?}");
        assert!(ks.resident_peak <= 128 + 2, "{ks:?}");
        assert_eq!(s.pager.stats().checksum_errors, 0);
    }
}

/// `data_initialize` (driven by the kernel's copy-object push hook) never overwrites a page
/// the pager holds; it stores pages it does not hold.
#[test]
fn data_initialize_never_overwrites() {
    let _deadline = deadline("data_initialize_never_overwrites", 240);
    for mode in modes("data_initialize") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let (t, base) = alloc(&s.kernel, 16);
        write_page(&t, base, 0, &page(1, 0));
        assert_eq!(t.pageout(base, PAGE).expect("pageout"), 1);
        // Page 0 is held by the pager: initialize must not replace it.
        s.kernel
            .push_data_initialize(base, &page(9, 0))
            .expect("data_initialize");
        // Page 5 was never written: initialize stores it.
        s.kernel
            .push_data_initialize(base + 5 * PAGE, &page(9, 5))
            .expect("data_initialize");
        assert!(wait_until(10, || s
            .pager
            .stats()
            .messages
            .memory_object_data_initialize
            == 2));
        assert_eq!(
            read_page(&t, base, 0),
            page(1, 0),
            "data_initialize overwrote page 0"
        );
        assert_eq!(read_page(&t, base, 5), page(9, 5));
        assert_eq!(s.pager.stats().init_skipped, 1);
        assert_eq!(s.kernel.stats().memory_object_data_initialize, 2);
    }
}

/// Per-object admission strictly in seqno order with 4 pager threads and random I/O delays,
/// under adversarial return-then-request sequences; every read gets the latest write.
#[test]
fn admission_is_strictly_by_seqno() {
    let _deadline = deadline("admission_is_strictly_by_seqno", 240);
    for mode in modes("seqno_order") {
        println!("mode: {}", mode_name(mode));
        let adm = Arc::new(Admissions::default());
        let store = Arc::new(DelayStore {
            inner: default_pager::MemStore::new(4096),
            max_us: 300,
            seed: AtomicU64::new(7),
        });
        let kernel = default_pager_example::Kernel::new(kcfg(mode, 96)).expect("kernel");
        let mut p = pcfg(4);
        p.hooks = Some(adm.clone());
        let (_ptask, pager) = start_pager(&kernel, store, p).expect("pager");
        let n = 128usize;
        let mut tasks = Vec::new();
        for _ in 0..2 {
            tasks.push(alloc(&kernel, n));
        }
        std::thread::scope(|sc| {
            for (ti, (t, base)) in tasks.iter().enumerate() {
                sc.spawn(move || {
                    for round in 0..4u64 {
                        for p in 0..n {
                            write_page(t, *base, p, &page(round * 10 + ti as u64, p as u64));
                            if p % 3 == 0 {
                                // Return it, then ask for it right away.
                                t.pageout(*base + p * PAGE, PAGE).expect("pageout");
                                assert_eq!(
                                    read_page(t, *base, p),
                                    page(round * 10 + ti as u64, p as u64)
                                );
                            }
                        }
                        for p in 0..n {
                            assert_eq!(
                                read_page(t, *base, p),
                                page(round * 10 + ti as u64, p as u64),
                                "task {ti} round {round} page {p}"
                            );
                        }
                    }
                });
            }
        });
        drop(tasks);
        assert!(wait_until(10, || {
            let log = adm.log.lock().unwrap();
            log.len() == 2
                && log
                    .values()
                    .all(|v| v.last().map(|x| x.1) == Some(MsgKind::NoSenders))
        }));
        let log = adm.log.lock().unwrap();
        let mut objects = 0;
        for (obj, v) in log.iter() {
            objects += 1;
            for (i, (seq, _)) in v.iter().enumerate() {
                assert_eq!(
                    *seq as usize, i,
                    "object {obj}: admission {i} had seqno {seq}: {v:?}"
                );
            }
            assert!(v.len() > 100, "object {obj} saw only {} messages", v.len());
            assert_eq!(v.last().map(|x| x.1), Some(MsgKind::NoSenders));
        }
        assert_eq!(objects, 2);
        let st = pager.stats();
        println!("pager waits: seqno {} io {}", st.wait_seqno, st.wait_io);
        assert_eq!(st.seqno_gaps, 0);
        pager.shutdown();
        kernel.shutdown();
    }
}

/// After terminate and no-senders, the paging space is all free again.
#[test]
fn free_space_back_after_terminate() {
    let _deadline = deadline("free_space_back_after_terminate", 240);
    for mode in modes("free_space") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 2048, pcfg(3));
        let (total, free0, _) = s.info().expect("info");
        assert_eq!(total, free0);
        let (t, base) = alloc(&s.kernel, 512);
        for p in 0..512 {
            write_page(&t, base, p, &page(3, p as u64));
        }
        t.pageout(base, 512 * PAGE).expect("pageout");
        // The pager writes asynchronously: wait until it has stored all 512 pages.
        assert!(wait_until(10, || s
            .info()
            .map(|i| free0 - i.1)
            .unwrap_or(0)
            == 512 * PAGE as u64));
        t.vm_deallocate(base, 512 * PAGE).expect("vm_deallocate");
        assert!(wait_until(10, || s.info().map(|i| i.1).unwrap_or(0) == free0));
        let ps = s.pager.stats();
        assert_eq!(ps.messages.memory_object_terminate, 1);
        assert_eq!(ps.messages.no_senders, 1);
        assert_eq!(ps.objects, 0);
        assert_eq!(s.kernel.stats().memory_object_terminate, 1);
    }
}

/// Paging space full: the lost page's fault fails (SIGBUS in the task thread with
/// userfaultfd, a memory error in the portable mode); after space is added, paging works
/// again.
#[test]
fn paging_full_memory_error_then_recovery() {
    let _deadline = deadline("paging_full_memory_error_then_recovery", 240);
    for mode in modes("paging_full") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 32, pcfg(2));
        let (t, base) = alloc(&s.kernel, 64);
        for p in 0..64 {
            write_page(&t, base, p, &page(4, p as u64));
        }
        t.pageout(base, 64 * PAGE).expect("pageout");
        assert!(wait_until(10, || s.pager.stats().pages_out
            + s.pager.stats().no_space
            >= 64));
        assert!(s.pager.stats().no_space >= 32, "{:?}", s.pager.stats());
        // Find a lost page: its fault must fail, never hang and never give wrong data.
        let mut failed = None;
        for p in 0..64 {
            let addr = base + p * PAGE;
            if mode == ModeChoice::Userfaultfd {
                let t2 = t.clone();
                match run_guarded(Duration::from_secs(30), move || {
                    read_page(&t2, addr - p * PAGE, p)
                }) {
                    Outcome::Completed(d) => assert_eq!(d, page(4, p as u64), "page {p}"),
                    Outcome::Fault(c) => {
                        assert_eq!(c.signal, libc::SIGBUS, "{c:?}");
                        assert_eq!(c.addr & !(PAGE - 1), addr);
                        failed = Some(p);
                        break;
                    }
                    o => panic!("page {p}: {o:?}"),
                }
            } else {
                let mut b = vec![0u8; PAGE];
                match t.read(addr, &mut b) {
                    Ok(()) => assert_eq!(b, page(4, p as u64), "page {p}"),
                    Err(MemoryError::Memory { reason, .. }) => {
                        assert!(reason.contains("data_error"), "{reason}");
                        failed = Some(p);
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        let lost = failed.expect("a lost page fails");
        println!("page {lost} failed as it should");
        assert!(s.kernel.errors().iter().any(|e| e.contains("data_error")));
        // Recovery: more paging space, then new pageouts and pageins work.
        s.pager
            .add_store(default_pager::MemStore::new(1024))
            .expect("add_store");
        let (t2, b2) = alloc(&s.kernel, 128);
        for p in 0..128 {
            write_page(&t2, b2, p, &page(5, p as u64));
        }
        t2.pageout(b2, 128 * PAGE).expect("pageout");
        for p in 0..128 {
            assert_eq!(read_page(&t2, b2, p), page(5, p as u64));
        }
    }
}

/// A second default memory manager is refused; replacing the manager at run time keeps old
/// objects with the old one, sends new objects to the new one, and the query form returns
/// the current one.
#[test]
fn default_memory_manager_registration() {
    let _deadline = deadline("default_memory_manager_registration", 240);
    for mode in modes("dmm") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let e = start_pager(
            &s.kernel,
            Arc::new(default_pager::MemStore::new(16)),
            pcfg(1),
        )
        .err()
        .expect("second pager refused");
        assert!(e.contains("already registered"), "{e}");
        // An object with the first manager.
        let (t1, b1) = alloc(&s.kernel, 8);
        write_page(&t1, b1, 0, &page(6, 0));
        t1.pageout(b1, PAGE).expect("pageout");
        assert!(wait_until(10, || s
            .pager
            .stats()
            .messages
            .memory_object_create
            == 1));
        // Replace it.
        let fake = FakePager::start(&s.kernel, Script::Hang);
        assert!(fake.previous.is_some(), "the old manager comes back");
        let host = s.kernel.host_priv_for(&fake.task).expect("host");
        let null = mig_runtime::ReceiveRight::null();
        let cur = default_pager_example::mig::mach::client::vm_set_default_memory_manager(
            fake.task.ipc(),
            &host,
            &null,
        )
        .expect("query");
        assert_eq!(
            cur.name(),
            fake.port,
            "the query returns the current manager"
        );
        // A new object goes to the new manager…
        let (t2, b2) = alloc(&s.kernel, 8);
        write_page(&t2, b2, 0, &page(7, 0));
        t2.pageout(b2, PAGE).expect("pageout");
        assert!(
            wait_until(10, || fake.seen().contains(&2250)),
            "{:?}",
            fake.seen()
        );
        assert_eq!(s.pager.stats().messages.memory_object_create, 1);
        // …the old one stays with the old manager.
        write_page(&t1, b1, 1, &page(6, 1));
        t1.pageout(b1, 2 * PAGE).expect("pageout");
        assert_eq!(read_page(&t1, b1, 0), page(6, 0));
        assert_eq!(read_page(&t1, b1, 1), page(6, 1));
        assert!(s.pager.stats().messages.memory_object_data_return >= 2);
        drop(t2);
    }
}

/// A dead or hung pager: faults fail with a clear error within the fault timeout, never hang.
#[test]
fn dead_or_hung_pager_faults_time_out() {
    let _deadline = deadline("dead_or_hung_pager_faults_time_out", 240);
    for mode in modes("dead_pager") {
        for script in [Script::Hang, Script::Die] {
            println!("mode: {} pager: {script:?}", mode_name(mode));
            let mut kc = kcfg(mode, 64);
            kc.fault_timeout = Duration::from_millis(800);
            let k = default_pager_example::Kernel::new(kc).expect("kernel");
            let _fake = FakePager::start(&k, script);
            let (t, base) = alloc(&k, 8);
            write_page(&t, base, 0, &page(8, 0));
            let _ = t.pageout(base, PAGE);
            let t0 = std::time::Instant::now();
            if mode == ModeChoice::Userfaultfd {
                let t2 = t.clone();
                match run_guarded(Duration::from_secs(30), move || read_page(&t2, base, 0)) {
                    Outcome::Fault(c) => assert_eq!(c.signal, libc::SIGBUS),
                    o => panic!("{o:?}"),
                }
            } else {
                let mut b = vec![0u8; PAGE];
                match t.read(base, &mut b) {
                    Err(MemoryError::Memory { reason, .. }) => println!("error: {reason}"),
                    r => panic!("{r:?}"),
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(20));
            let errs = k.errors().join("\n");
            let want = match script {
                Script::Hang => "no answer from the memory manager",
                _ => "memory error",
            };
            assert!(errs.contains(want), "{errs}");
            println!(
                "kernel said: {}",
                k.errors().last().cloned().unwrap_or_default()
            );
            k.shutdown();
        }
    }
}

/// A pager answering garbage gets its calls refused with clear errors; the fault then times
/// out (no hang) and other objects are not affected.
#[test]
fn garbage_from_pager_is_refused() {
    let _deadline = deadline("garbage_from_pager_is_refused", 240);
    for mode in modes("garbage") {
        println!("mode: {}", mode_name(mode));
        let mut kc = kcfg(mode, 64);
        kc.fault_timeout = Duration::from_millis(800);
        let k = default_pager_example::Kernel::new(kc).expect("kernel");
        let _fake = FakePager::start(&k, Script::Garbage);
        let (t, base) = alloc(&k, 8);
        write_page(&t, base, 0, &page(9, 0));
        write_page(&t, base, 1, &page(9, 1));
        let _ = t.pageout(base, PAGE);
        if mode == ModeChoice::Userfaultfd {
            let t2 = t.clone();
            match run_guarded(Duration::from_secs(30), move || read_page(&t2, base, 0)) {
                Outcome::Fault(c) => assert_eq!(c.signal, libc::SIGBUS),
                o => panic!("{o:?}"),
            }
        } else {
            let mut b = vec![0u8; PAGE];
            assert!(matches!(
                t.read(base, &mut b),
                Err(MemoryError::Memory { .. })
            ));
        }
        assert!(
            wait_until(5, || k.stats().bad_pager_calls >= 5),
            "{:?}",
            k.stats()
        );
        let errs = k.errors().join("\n");
        for want in [
            "not page-aligned",
            "not a positive multiple",
            "past the end",
            "malformed message",
        ] {
            assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
        }
        // The other page of the object, still resident, is intact.
        assert_eq!(read_page(&t, base, 1), page(9, 1));
        k.shutdown();
    }
}

/// Touching memory after `vm_deallocate` is a memory error (SIGSEGV / invalid address), and
/// the addresses are never reused.
#[test]
fn touching_deallocated_memory_is_an_error() {
    let _deadline = deadline("touching_deallocated_memory_is_an_error", 240);
    for mode in modes("deallocated") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let (t, base) = alloc(&s.kernel, 16);
        write_page(&t, base, 3, &page(10, 3));
        t.vm_deallocate(base, 16 * PAGE).expect("vm_deallocate");
        let again = t.vm_allocate(16 * PAGE).expect("vm_allocate");
        assert!(again >= base + 16 * PAGE, "address reused");
        let mut b = vec![0u8; PAGE];
        assert_eq!(
            t.read(base + 3 * PAGE, &mut b),
            Err(MemoryError::InvalidAddress(base + 3 * PAGE))
        );
        if mode == ModeChoice::Userfaultfd {
            let addr = base + 3 * PAGE;
            match run_guarded(Duration::from_secs(10), move || {
                // SAFETY: deliberately touching deallocated (quarantined) memory: it must fault.
                unsafe { std::ptr::read_volatile(addr as *const u8) }
            }) {
                Outcome::Fault(c) => {
                    assert_eq!(c.signal, libc::SIGSEGV);
                    assert_eq!(c.addr, addr);
                }
                o => panic!("{o:?}"),
            }
        }
    }
}

/// Issue 7: a data request right after `memory_object_create` is served; requests and returns
/// past the creation size (coalesced object) round-trip byte for byte; contents returned
/// equal contents supplied across cycles.
#[test]
fn object_grows_past_its_size_hint() {
    let _deadline = deadline("object_grows_past_its_size_hint", 240);
    for mode in modes("size_hint") {
        println!("mode: {}", mode_name(mode));
        let mut kc = kcfg(mode, 64);
        kc.coalesce = true;
        kc.pagemap = false;
        let s = boot(kc, 2048, pcfg(3));
        let (t, base) = alloc(&s.kernel, 16);
        // First pageout creates the pager; the very next message is a data request.
        write_page(&t, base, 0, &page(11, 0));
        t.pageout(base, PAGE).expect("pageout");
        assert_eq!(read_page(&t, base, 1), vec![0u8; PAGE]);
        let info = t.object_at(base).expect("object");
        assert_eq!(info.create_size, 16 * PAGE as u64);
        // Coalesce: the object grows past the hint.
        let b2 = t
            .vm_allocate_at(base + 16 * PAGE, 48 * PAGE)
            .expect("coalesced");
        assert_eq!(b2, base + 16 * PAGE);
        let info = t.object_at(b2).expect("object");
        assert_eq!(info.id, t.object_at(base).expect("object").id);
        assert_eq!(info.size, 64 * PAGE);
        for round in 0..3u64 {
            for p in 0..64 {
                write_page(&t, base, p, &page(12 + round, p as u64));
            }
            t.pageout(base, 64 * PAGE).expect("pageout");
            for p in 0..64 {
                assert_eq!(
                    read_page(&t, base, p),
                    page(12 + round, p as u64),
                    "round {round} page {p}"
                );
            }
        }
        let objs = s.objects().expect("objects");
        assert!(
            objs[0].2.iter().any(|&o| o >= 16 * PAGE as u64),
            "pages past the hint stored"
        );
        assert!(s
            .kernel
            .trace()
            .iter()
            .any(|e| e.kind == "object_coalesced"));
        assert_eq!(s.pager.stats().rejected, 0);
    }
}

/// Issue 7: a data request that arrives right after `memory_object_create`, before anything
/// else, is served (the kernel's `eager_pager` knob creates the pager at `vm_allocate`).
#[test]
fn data_request_right_after_create_is_served() {
    let _deadline = deadline("request_after_create", 240);
    for mode in modes("request_after_create") {
        println!("mode: {}", mode_name(mode));
        let adm = std::sync::Arc::new(Admissions::default());
        let mut kc = kcfg(mode, 64);
        kc.eager_pager = true;
        kc.pagemap = false;
        let mut p = pcfg(3);
        p.hooks = Some(adm.clone());
        let s = boot(kc, 1024, p);
        let (t, base) = alloc(&s.kernel, 32);
        // The first touch: data_request is the object's first message after create.
        assert_eq!(read_page(&t, base, 7), vec![0u8; PAGE]);
        write_page(&t, base, 8, &page(14, 8));
        t.pageout(base, 32 * PAGE).expect("pageout");
        assert_eq!(read_page(&t, base, 8), page(14, 8));
        let log = adm.log.lock().unwrap();
        let v = log.values().next().expect("one object");
        assert_eq!(v[0], (0, MsgKind::DataRequest), "{v:?}");
        assert!(s.kernel.stats().memory_object_data_unavailable >= 2);
    }
}

/// Issue 7: a task that was never given the object, control or name port, or the pager's
/// port, cannot send to them.
#[test]
fn unrelated_tasks_cannot_reach_pager_ports() {
    let _deadline = deadline("unrelated_tasks_cannot_reach_pager_ports", 240);
    for mode in modes("isolation") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let (t, base) = alloc(&s.kernel, 8);
        write_page(&t, base, 0, &page(13, 0));
        t.pageout(base, PAGE).expect("pageout");
        let intruder = s.kernel.new_task().expect("task");
        // Guess every small name: none is a right the intruder holds.
        let page0 = vec![0u8; PAGE];
        for n in 1..64u32 {
            let ctl = std::mem::ManuallyDrop::new(mig_runtime::SendRight::from_raw(
                intruder.ipc().space_id(),
                mig_runtime::PortName(n),
            ));
            let none = mig_runtime::ReceiveRight::null();
            let r = default_pager_example::mig::mach::client::memory_object_data_supply(
                intruder.ipc(),
                &ctl,
                0,
                mig_runtime::msg::OolData::Borrowed(&page0),
                0,
                0,
                &none,
            );
            match r {
                Err(mig_runtime::RpcError::Transport(code)) => {
                    assert_eq!(
                        code.0 as u32,
                        mig_runtime::wire::msg_return::SEND_INVALID_DEST,
                        "name {n}"
                    )
                }
                other => {
                    // Only the intruder's own task port (its name) could be valid.
                    let own = intruder.ipc().port_names();
                    assert!(own.iter().any(|(x, _)| x.0 == n), "name {n}: {other:?}");
                }
            }
        }
        assert_eq!(read_page(&t, base, 0), page(13, 0));
    }
}

/// Bad offsets and lengths from a pager, and calls on a terminated object: refused, counted,
/// no corruption of other objects.
#[test]
fn forged_control_port_is_refused() {
    let _deadline = deadline("forged_control_port_is_refused", 240);
    for mode in modes("forged_control") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let k = &s.kernel;
        // The pager's host_priv right is a kernel port but not a control port.
        let task = k.new_task().expect("task");
        let host = k.host_priv_for(&task).expect("host");
        let page0 = vec![1u8; PAGE];
        let none = mig_runtime::ReceiveRight::null();
        let _ = default_pager_example::mig::mach::client::memory_object_data_supply(
            task.ipc(),
            &host,
            0,
            mig_runtime::msg::OolData::Borrowed(&page0),
            0,
            0,
            &none,
        );
        assert!(wait_until(5, || k.stats().bad_pager_calls >= 1));
        assert!(k
            .errors()
            .iter()
            .any(|e| e.contains("not a memory object control port")));
    }
}

/// The memory manager's other calls on a control port: `lock_request` (clean + flush, then
/// `lock_completed`), `change_attributes` (`change_completed`), `get_attributes`, `ready`,
/// and `destroy` (the kernel terminates the object; later faults are memory errors).
#[test]
fn manager_calls_on_the_control_port() {
    let _deadline = deadline("control_calls", 240);
    use default_pager_example::mig::mach::client as mach;
    use mig_runtime::wire::option;
    for mode in modes("control_calls") {
        println!("mode: {}", mode_name(mode));
        let mut kc = kcfg(mode, 64);
        kc.fault_timeout = Duration::from_millis(800);
        let k = default_pager_example::Kernel::new(kc).expect("kernel");
        let fake = FakePager::start(&k, Script::Hang);
        let (t, base) = alloc(&k, 8);
        write_page(&t, base, 0, &page(15, 0));
        write_page(&t, base, 1, &page(15, 1));
        t.pageout(base, PAGE).expect("pageout");
        assert!(wait_until(10, || fake
            .seen()
            .iter()
            .filter(|&&i| i == 2208)
            .count()
            == 1));
        let ft = fake.task.ipc();
        let ctl = fake.state.ctl.lock().unwrap()[0].try_clone().expect("ctl");
        let reply = ft.allocate_receive().expect("reply port");
        let recv_id = |timeout_ms: u32| -> i32 {
            let mut b = mig_runtime::MsgBuf::with_capacity(512);
            let r = ft.mach_msg(
                &mut b,
                option::RCV_MSG | option::RCV_TIMEOUT,
                0,
                512,
                reply.name(),
                timeout_ms,
                mig_runtime::PortName::NULL,
            );
            if r != mig_runtime::KernReturn::KERN_SUCCESS {
                return -1;
            }
            mig_runtime::stub::msgh_id(b.bytes(), mig_runtime::wire::Target::X86_64)
        };
        // lock_request: return dirty pages and flush.
        mach::memory_object_lock_request(ft, &ctl, 0, 2 * PAGE as u64, 1, 1, 0, &reply)
            .expect("lock_request");
        assert_eq!(recv_id(10_000), 2206, "lock_completed");
        assert!(
            wait_until(10, || fake.seen().iter().filter(|&&i| i == 2208).count()
                == 2),
            "page 1 returned: {:?}",
            fake.seen()
        );
        assert_eq!(t.object_at(base).expect("object").resident, 0);
        // change_attributes → change_completed; get_attributes reflects it; ready.
        mach::memory_object_change_attributes(ft, &ctl, 1, 2, &reply).expect("change_attributes");
        assert_eq!(recv_id(10_000), 2209, "change_completed");
        mach::memory_object_ready(ft, &ctl, 1, 2).expect("ready");
        let a = mach::memory_object_get_attributes(ft, &ctl).expect("get_attributes");
        assert_eq!((a.object_ready, a.may_cache, a.copy_strategy), (1, 1, 2));
        // destroy: the kernel sends terminate; the mapping's faults now fail.
        mach::memory_object_destroy(ft, &ctl, 0).expect("destroy");
        assert!(
            wait_until(10, || fake.seen().contains(&2201)),
            "terminate: {:?}",
            fake.seen()
        );
        let ks = k.stats();
        assert_eq!(
            (
                ks.memory_object_lock_request,
                ks.memory_object_change_attributes,
                ks.memory_object_destroy
            ),
            (1, 1, 1)
        );
        if mode == ModeChoice::Userfaultfd {
            let t2 = t.clone();
            match run_guarded(Duration::from_secs(30), move || read_page(&t2, base, 2)) {
                Outcome::Fault(c) => assert_eq!(c.signal, libc::SIGBUS),
                o => panic!("{o:?}"),
            }
        } else {
            let mut b = vec![0u8; PAGE];
            assert!(t.read(base + 2 * PAGE, &mut b).is_err());
        }
        k.shutdown();
    }
}

/// Read-ahead (unsolicited `data_supply` of following pages) under memory pressure, with
/// slow I/O and two task threads rewriting their pages: never stale data (the kernel drops
/// read-ahead pages whose latest `data_return` the pager may not have seen, and asks again
/// for a requested page in that case).
#[test]
fn read_ahead_never_installs_stale_pages() {
    let _deadline = deadline("read_ahead", 240);
    for mode in modes("read_ahead") {
        println!("mode: {}", mode_name(mode));
        let store = Arc::new(DelayStore {
            inner: default_pager::MemStore::new(8192),
            max_us: 200,
            seed: AtomicU64::new(11),
        });
        let kernel = default_pager_example::Kernel::new(kcfg(mode, 96)).expect("kernel");
        let mut p = pcfg(4);
        p.read_ahead = 15;
        let (_pt, pager) = start_pager(&kernel, store, p).expect("pager");
        let n = 256usize;
        let (t, base) = alloc(&kernel, 2 * n);
        std::thread::scope(|sc| {
            for th in 0..2usize {
                let t = &t;
                sc.spawn(move || {
                    let lo = th * n;
                    for round in 0..4u64 {
                        for p in lo..lo + n {
                            write_page(t, base, p, &page(round, p as u64));
                        }
                        for p in (lo..lo + n).rev() {
                            assert_eq!(
                                read_page(t, base, p),
                                page(round, p as u64),
                                "thread {th} round {round} page {p}"
                            );
                        }
                    }
                });
            }
        });
        let ks = kernel.stats();
        println!(
            "read-ahead installed {}, ignored {}, stale re-requests {}",
            ks.read_ahead_installed, ks.supply_ignored, ks.stale_rerequests
        );
        assert!(ks.read_ahead_installed > 0, "{ks:?}");
        drop(t);
        pager.shutdown();
        kernel.shutdown();
    }
}
