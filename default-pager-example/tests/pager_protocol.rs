//! The default pager over the emulated kernel: the invariants of the reference (§4.2) and the
//! kernel-side rules of issue 7, in both modes (each test prints which one ran).

mod common;

use common::*;
use default_pager::{MsgKind, ReplyKind};
use default_pager_example::faults::{run_guarded, Outcome};
use default_pager_example::kernel::ModeChoice;
use default_pager_example::system::start_pager;
use default_pager_example::{EmuTask, MemoryError, PAGE};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Issue 7, "only pages actually written ever reach the manager, and for any page not
/// written before, a data request is answered with `memory_object_data_unavailable`":
/// with the existence map off every non-resident page faults to the pager (and the RAM
/// holds all 256 pages, so no eviction adds faults and the counts are exact). Of 256 pages,
/// the 64 written ones are returned once each (and only they reach the pager), and every
/// one of the 192 never-written pages is `data_request` → `data_unavailable` (zero-filled,
/// never a supplied zero page); `default_pager_object_pages` lists exactly the written
/// offsets and `dpo_size` counts only them.
#[test]
fn never_written_pages_are_unavailable_and_never_listed() {
    let _deadline = deadline("never_written_pages_are_unavailable_and_never_listed", 240);
    for mode in modes("never_written") {
        println!("mode: {}", mode_name(mode));
        let mut k = kcfg(mode, 512);
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
        // The kernel counts an install just after it wakes the faulting thread.
        assert!(wait_until(10, || s.kernel.stats().zero_fill_unavailable == 192));
        let ks = s.kernel.stats();
        let ps = s.pager.stats();
        assert_eq!(
            ks.memory_object_data_return, 64,
            "only written pages returned"
        );
        assert_eq!((ks.zero_fill_local, ks.clean_evictions), (64, 0), "{ks:?}");
        assert_eq!(ps.pages_out, 64);
        assert_eq!(ks.memory_object_data_request, 256, "{ks:?}");
        assert_eq!(ks.memory_object_data_unavailable, 192, "{ks:?}");
        assert_eq!((ps.pages_unavailable, ps.data_supply), (192, 64));
        let objs = s.objects().expect("default_pager_objects");
        assert_eq!(objs.len(), 1);
        let (_, dpo_size, offs) = &objs[0];
        assert_eq!(
            *dpo_size,
            64 * PAGE as u64,
            "dpo_size counts only written pages"
        );
        let want: Vec<u64> = (0..256).step_by(4).map(|p| (p * PAGE) as u64).collect();
        assert_eq!(*offs, want, "exactly the written offsets");
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
        assert!(wait_until(5, || s
            .kernel
            .errors()
            .iter()
            .any(|e| e.contains("data_error"))));
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

/// Issue 7, "the default memory manager is a trusted component identified to the kernel at
/// start-up and changeable at run time": a second pager is refused at start-up; the query
/// form (null port) returns the current manager (a right through which the pager answers
/// `default_pager_info`); after another manager registers, objects created before stay
/// with the old pager (it gets their returns and requests, the new one sees none of them)
/// and new objects go to the new manager; the old pager then takes over again (its task
/// re-registers its port): the query returns it, new objects come back to it, and the other
/// manager's object stays with that manager.
#[test]
fn default_memory_manager_registration() {
    use default_pager_example::mig::default_pager::client as dp;
    use default_pager_example::mig::mach::client::vm_set_default_memory_manager as set_dmm;
    use mig_runtime::ReceiveRight;
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
        // The query, from a privileged task: a right to the running pager.
        let admin = s.kernel.new_task().expect("task");
        let host = host_for(&s.kernel, &admin);
        let cur = set_dmm(admin.ipc(), &host, &ReceiveRight::null()).expect("query");
        let i = dp::default_pager_info(admin.ipc(), &cur).expect("the pager answers");
        assert_eq!(i[0] as u64, s.pager.stats().paging_total);
        drop(cur);
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
        let q = set_dmm(
            fake.task.ipc(),
            &host_for(&s.kernel, &fake.task),
            &ReceiveRight::null(),
        )
        .expect("query");
        assert_eq!(q.name(), fake.port, "the query returns the current manager");
        // A new object goes to the new manager…
        let (t2, b2) = alloc(&s.kernel, 8);
        write_page(&t2, b2, 0, &page(7, 0));
        t2.pageout(b2, PAGE).expect("pageout");
        assert!(
            wait_until(10, || fake.seen() == vec![2250, 2208]),
            "{:?}",
            fake.seen()
        );
        // …the old one stays with the old manager.
        let before = s.pager.stats();
        write_page(&t1, b1, 1, &page(6, 1));
        t1.pageout(b1, 2 * PAGE).expect("pageout");
        assert_eq!(read_page(&t1, b1, 0), page(6, 0));
        assert_eq!(read_page(&t1, b1, 1), page(6, 1));
        let after = s.pager.stats();
        assert_eq!(after.messages.memory_object_create, 1);
        assert_eq!(
            after.messages.memory_object_data_return - before.messages.memory_object_data_return,
            1
        );
        assert_eq!(
            after.messages.memory_object_data_request - before.messages.memory_object_data_request,
            2
        );
        assert_eq!(
            fake.seen(),
            vec![2250, 2208],
            "the new manager saw none of it"
        );
        // The old pager takes over again.
        let pt = s.pager_task.ipc();
        let mine = std::mem::ManuallyDrop::new(ReceiveRight::from_raw(
            pt.space_id(),
            s.pager.admin_port(),
        ));
        let replaced =
            set_dmm(pt, &host_for(&s.kernel, &s.pager_task), &mine).expect("re-register");
        assert!(replaced.is_valid());
        let cur = set_dmm(admin.ipc(), &host, &ReceiveRight::null()).expect("query");
        dp::default_pager_info(admin.ipc(), &cur).expect("the pager again");
        let (t3, b3) = alloc(&s.kernel, 8);
        write_page(&t3, b3, 0, &page(8, 0));
        t3.pageout(b3, PAGE).expect("pageout");
        assert_eq!(read_page(&t3, b3, 0), page(8, 0));
        assert_eq!(s.pager.stats().messages.memory_object_create, 2);
        // The other manager's object stays with it.
        write_page(&t2, b2, 1, &page(7, 1));
        t2.pageout(b2, 2 * PAGE).expect("pageout");
        assert!(
            wait_until(10, || fake.seen() == vec![2250, 2208, 2208]),
            "{:?}",
            fake.seen()
        );
        drop((t2, t3));
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
            // Page 1 below is never written: with the existence map off its fault asks the
            // pager whatever became of page 0's data_return (a dead pager may refuse it).
            kc.pagemap = false;
            let k = default_pager_example::Kernel::new(kc).expect("kernel");
            let fake = FakePager::start(&k, script);
            let (t, base) = alloc(&k, 8);
            write_page(&t, base, 0, &page(8, 0));
            let _ = t.pageout(base, PAGE);
            assert!(wait_until(10, || fake.seen().contains(&2250)));
            let t0 = std::time::Instant::now();
            if mode == ModeChoice::Userfaultfd {
                let t2 = t.clone();
                match run_guarded(Duration::from_secs(30), move || read_page(&t2, base, 1)) {
                    Outcome::Fault(c) => assert_eq!(c.signal, libc::SIGBUS),
                    o => panic!("{o:?}"),
                }
            } else {
                let mut b = vec![0u8; PAGE];
                match t.read(base + PAGE, &mut b) {
                    Err(MemoryError::Memory { reason, .. }) => println!("error: {reason}"),
                    r => panic!("{r:?}"),
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(20));
            let want = match script {
                Script::Hang => "no answer from the memory manager",
                _ => "memory error",
            };
            // The kernel logs the error just after failing the page (the reader can be first).
            assert!(
                wait_until(5, || k.errors().join("\n").contains(want)),
                "{:?}",
                k.errors()
            );
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
        // Each refusal is counted, then logged: wait for the log too.
        let wants = [
            "not page-aligned",
            "not a positive multiple",
            "past the end",
            "malformed message",
        ];
        wait_until(5, || {
            let errs = k.errors().join("\n");
            wants.iter().all(|w| errs.contains(w))
        });
        let errs = k.errors().join("\n");
        for want in wants {
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

/// Issue 7, "the size given to `memory_object_create` is only a hint: the kernel may
/// coalesce adjacent temporary objects, so the object can appear to grow, and requests past
/// the initial size are legal". A 16-page object gets its pager (size hint 16 pages), then
/// the kernel coalesces 48 and then 16 more pages into it. Over three rounds of random
/// contents every page of the first 64 is returned and read back with identical checksums;
/// the 16 last pages, never written, are requested and answered `data_unavailable`. The
/// admin interface shows the block map and the paging space growing past the hint: before
/// the growth one page listed, one page in use; after it exactly the 64 written offsets,
/// `dpo_size` 64 pages, 64 pages of the paging space in use. The pager's answers past the
/// hint (supplies and unavailables) are seen through its hooks; nothing is refused.
#[test]
fn object_grows_past_its_size_hint() {
    let _deadline = deadline("object_grows_past_its_size_hint", 240);
    for mode in modes("size_hint") {
        println!("mode: {}", mode_name(mode));
        // RAM for all 80 pages: no eviction adds faults, so the counts below are exact.
        let mut kc = kcfg(mode, 256);
        kc.coalesce = true;
        kc.pagemap = false;
        let adm = Arc::new(Admissions::default());
        let mut pc = pcfg(3);
        pc.hooks = Some(adm.clone());
        let s = boot(kc, 2048, pc);
        let (total, free0, _) = s.info().expect("info");
        let (t, base) = alloc(&s.kernel, 16);
        write_page(&t, base, 0, &page(11, 0));
        t.pageout(base, PAGE).expect("pageout");
        let info = t.object_at(base).expect("object");
        let hint = info.create_size;
        assert_eq!(hint, 16 * PAGE as u64);
        // (The pager records the page in its map just after the store write.)
        assert!(wait_until(10, || s.objects().is_ok_and(|o| o.len() == 1
            && o[0].1 == PAGE as u64
            && o[0].2 == vec![0])));
        assert_eq!(s.info().expect("info").1, free0 - PAGE as u64);
        // Coalesce: the object grows past the hint, twice.
        let b2 = t
            .vm_allocate_at(base + 16 * PAGE, 48 * PAGE)
            .expect("coalesced");
        assert_eq!(b2, base + 16 * PAGE);
        let b3 = t
            .vm_allocate_at(base + 64 * PAGE, 16 * PAGE)
            .expect("coalesced");
        assert_eq!(b3, base + 64 * PAGE);
        let info = t.object_at(b3).expect("object");
        assert_eq!(info.id, t.object_at(base).expect("object").id);
        assert_eq!((info.size, info.create_size), (80 * PAGE, hint));
        let mut rng = Rng(0x000b_1ec7 + mode as u64);
        for round in 0..3 {
            let mut sums = Vec::new();
            for p in 0..64 {
                let d = rng.page();
                sums.push(checksum(&d));
                write_page(&t, base, p, &d);
            }
            let got = checksums_from_pager(&t, base, 64);
            assert_eq!(got, sums, "round {round}");
        }
        for p in 64..80 {
            assert_eq!(read_page(&t, base, p), vec![0u8; PAGE], "page {p}");
        }
        let objs = s.objects().expect("objects");
        let want: Vec<u64> = (0..64).map(|p| (p * PAGE) as u64).collect();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].2, want, "the block map grew past the hint");
        assert_eq!(objs[0].1, 64 * PAGE as u64, "dpo_size");
        let (total2, free, _) = s.info().expect("info");
        assert_eq!(total2, total);
        assert_eq!(free0 - free, 64 * PAGE as u64, "paging space in use grew");
        let replies = adm.replies.lock().unwrap().clone();
        let past =
            |k: fn(&ReplyKind) -> bool| replies.iter().filter(|r| k(&r.1) && r.2 >= hint).count();
        // Pages 16..64: the first round's writes fault on never-written pages (unavailable),
        // every read-back on stored ones (supply; later rounds write to the pages read back,
        // still resident); pages 64..80: read once, never written.
        assert_eq!(
            past(|k| *k == ReplyKind::Supply),
            3 * 48,
            "supplies past the hint"
        );
        assert_eq!(
            past(|k| *k == ReplyKind::Unavailable),
            48 + 16,
            "unavailable past the hint"
        );
        assert!(s
            .kernel
            .trace()
            .iter()
            .any(|e| e.kind == "object_coalesced"));
        assert_eq!(s.pager.stats().rejected, 0);
        assert_eq!(s.pager.stats().checksum_errors, 0);
    }
}

/// Issue 7, "`memory_object_create` needs no reply and no `memory_object_change_attributes`
/// confirmation: the manager must be ready for data requests as soon as it has accepted the
/// object". With the kernel's `eager_pager` knob (the pager is created at `vm_allocate`) and
/// the existence map off, the first touch of each of three objects — a read, a write, a
/// read of the last page — sends `data_request` right behind `memory_object_create`: it is the
/// object's first message (seqno 0), it is served (zero page; the write sticks and
/// round-trips), and no `ready`, `change_attributes` or any other confirmation is sent.
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
        // Each object is touched at once after vm_allocate (its memory_object_create):
        // object 0 with a read, object 1 with a write, object 2 with a read of its last page.
        let mut objs: Vec<(EmuTask, usize)> = Vec::new();
        for i in 0..3 {
            let (t, b) = alloc(&s.kernel, 32);
            match i {
                0 => assert_eq!(read_page(&t, b, 7), vec![0u8; PAGE]),
                1 => write_page(&t, b, 3, &page(14, 3)),
                _ => assert_eq!(read_page(&t, b, 31), vec![0u8; PAGE]),
            }
            objs.push((t, b));
        }
        {
            let log = adm.log.lock().unwrap();
            assert_eq!(log.len(), 3, "{log:?}");
            for v in log.values() {
                assert_eq!(v[0], (0, MsgKind::DataRequest), "{v:?}");
            }
        }
        let (t1, b1) = &objs[1];
        t1.pageout(*b1, 32 * PAGE).expect("pageout");
        assert_eq!(read_page(t1, *b1, 3), page(14, 3));
        let ks = s.kernel.stats();
        assert_eq!(ks.memory_object_create, 3);
        assert_eq!(ks.memory_object_data_unavailable, 3);
        assert_eq!(
            (
                ks.memory_object_ready,
                ks.memory_object_change_attributes,
                ks.memory_object_lock_request,
                ks.memory_object_data_error
            ),
            (0, 0, 0, 0),
            "no confirmation or other call from the pager"
        );
        assert_eq!(s.pager.stats().ready, 0);
        assert_eq!(s.pager.stats().rejected, 0);
    }
}

/// Issue 7, "the default memory manager … must not let unrelated tasks reach the memory
/// object, control or name port", nor its own `default_pager` port. A task that was given
/// nothing sends, to every name the pager's and the kernel's spaces use and every small
/// name besides, a data request, a data supply and the admin calls `default_pager_info` /
/// `default_pager_objects`: every send fails with `MACH_SEND_INVALID_DEST`, and neither the
/// pager nor the kernel sees anything. The admin interface answers only the holder of the
/// pager's port, and what it hands out are name ports: a task given one can neither call
/// the admin interface through it (the kernel, which holds it, answers `MIG_BAD_ID`) nor
/// use it as a control port (refused by the kernel); the object's contents are intact.
#[test]
fn unrelated_tasks_cannot_reach_pager_ports() {
    use default_pager_example::mig::default_pager::client as dp;
    use mig_runtime::wire::msg_return as mr;
    let _deadline = deadline("unrelated_tasks_cannot_reach_pager_ports", 240);
    for mode in modes("isolation") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let (t, base) = alloc(&s.kernel, 8);
        write_page(&t, base, 0, &page(13, 0));
        t.pageout(base, PAGE).expect("pageout");
        assert!(wait_until(10, || s.pager.stats().pages_out == 1));
        let intruder = s.kernel.new_task().expect("task");
        assert!(
            intruder.ipc().port_names().is_empty(),
            "the intruder holds nothing"
        );
        let mut names: Vec<u32> = s
            .pager_task
            .ipc()
            .port_names()
            .into_iter()
            .chain(s.kernel.ipc().kernel_task().port_names())
            .map(|(n, _)| n.0)
            .collect();
        let top = names.iter().map(|n| n & 0xff_ffff).max().unwrap_or(0) + 64;
        names.extend(1..=top);
        names.sort();
        names.dedup();
        let (ps0, ks0) = (s.pager.stats(), s.kernel.stats());
        for &n in &names {
            for id in [2203, 2093, 2276, 2277] {
                let r = probe(intruder.ipc(), mig_runtime::PortName(n), id);
                assert_eq!(r.0 as u32, mr::SEND_INVALID_DEST, "name {n:#x} id {id}");
            }
        }
        let (ps1, ks1) = (s.pager.stats(), s.kernel.stats());
        assert_eq!((ps1.messages, ps1.rejected), (ps0.messages, ps0.rejected));
        assert_eq!(
            (ks1.memory_object_data_supply, ks1.bad_pager_calls),
            (ks0.memory_object_data_supply, ks0.bad_pager_calls)
        );
        println!("{} names probed", names.len());
        // The admin holder gets the object's name port; a task given it gets nothing more.
        let r = dp::default_pager_objects(s.admin.ipc(), &s.admin_port, 16, 16).expect("objects");
        assert_eq!(r.ports.len(), 1);
        let ps2 = s.pager.stats();
        let holder = s.kernel.new_task().expect("task");
        let n = s
            .admin
            .ipc()
            .transfer_right(
                r.ports[0].name(),
                mig_runtime::wire::type_name::COPY_SEND,
                holder.ipc(),
            )
            .expect("give the name port");
        let name = mig_runtime::SendRight::from_raw(holder.ipc().space_id(), n);
        assert_eq!(
            dp::default_pager_objects(holder.ipc(), &name, 16, 16).map(|_| ()),
            Err(mig_runtime::RpcError::Server(
                mig_runtime::KernReturn::MIG_BAD_ID
            ))
        );
        assert_eq!(
            dp::default_pager_info(holder.ipc(), &name).map(|_| ()),
            Err(mig_runtime::RpcError::Server(
                mig_runtime::KernReturn::MIG_BAD_ID
            ))
        );
        let forged = vec![0x66u8; PAGE];
        let _ = default_pager_example::mig::mach::client::memory_object_data_supply(
            holder.ipc(),
            &name,
            0,
            mig_runtime::msg::OolData::Borrowed(&forged),
            0,
            0,
            &mig_runtime::ReceiveRight::null(),
        );
        assert!(wait_until(5, || s.kernel.stats().bad_pager_calls
            == ks1.bad_pager_calls + 1));
        assert!(wait_until(5, || s
            .kernel
            .errors()
            .iter()
            .any(|e| e.contains("the name port of object"))));
        assert_eq!(
            s.pager.stats().messages,
            ps2.messages,
            "the pager saw none of it"
        );
        assert_eq!(read_page(&t, base, 0), page(13, 0));
    }
}

/// Bad input, forged control port (the kernel's side): memory manager calls on ports that
/// are not control ports — the host-privileged port, an object's name port — are refused
/// by the kernel (`KERN_INVALID_ARGUMENT`, logged, counted) and install nothing: the page
/// the forged `data_supply` names still reads back as the pager stored it. (The pager's
/// side — a message on an object port carrying another object's control port — is
/// `bad_input_on_object_ports_corrupts_nothing`.)
#[test]
fn forged_control_port_is_refused() {
    use default_pager_example::mig::default_pager::client as dp;
    use default_pager_example::mig::mach::client as mach;
    let _deadline = deadline("forged_control_port_is_refused", 240);
    for mode in modes("forged_control") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(2));
        let k = &s.kernel;
        let (t, base) = alloc(k, 4);
        write_page(&t, base, 0, &page(16, 0));
        t.pageout(base, 4 * PAGE).expect("pageout");
        assert!(wait_until(10, || s.pager.stats().pages_out == 1));
        let task = k.new_task().expect("task");
        let host = k.host_priv_for(&task).expect("host");
        let r = dp::default_pager_objects(s.admin.ipc(), &s.admin_port, 16, 16).expect("objects");
        let n = s
            .admin
            .ipc()
            .transfer_right(
                r.ports[0].name(),
                mig_runtime::wire::type_name::COPY_SEND,
                task.ipc(),
            )
            .expect("name port");
        let name = mig_runtime::SendRight::from_raw(task.ipc().space_id(), n);
        let bad0 = k.stats().bad_pager_calls;
        let forged = vec![1u8; PAGE];
        let none = mig_runtime::ReceiveRight::null();
        for port in [&host, &name] {
            let r = mach::memory_object_data_supply(
                task.ipc(),
                port,
                0,
                mig_runtime::msg::OolData::Borrowed(&forged),
                0,
                0,
                &none,
            );
            assert!(r.is_ok(), "a one-way call: {r:?}");
            let r =
                mach::memory_object_data_unavailable(task.ipc(), port, PAGE as u64, PAGE as u64);
            assert!(r.is_ok(), "{r:?}");
        }
        // A routine gets the refusal as its reply.
        assert_eq!(
            mach::memory_object_get_attributes(task.ipc(), &name).map(|_| ()),
            Err(mig_runtime::RpcError::Server(
                mig_runtime::KernReturn::KERN_INVALID_ARGUMENT
            ))
        );
        assert!(wait_until(5, || k.stats().bad_pager_calls == bad0 + 5));
        // Each refusal is counted, then logged.
        wait_until(5, || {
            let errs = k.errors().join("\n");
            errs.contains("not a memory object control port")
                && errs.contains("the name port of object")
        });
        let errs = k.errors().join("\n");
        assert!(errs.contains("not a memory object control port"), "{errs}");
        assert!(errs.contains("the name port of object"), "{errs}");
        assert_eq!(read_page(&t, base, 0), page(16, 0), "nothing installed");
        assert_eq!(read_page(&t, base, 1), vec![0u8; PAGE]);
        assert_eq!(
            k.stats().memory_object_data_supply,
            1,
            "only the pager's supply"
        );
    }
}

/// Issue 7, "the contents of a kernel-created temporary object may be changed only in main
/// memory: the default memory manager must never alter them". 40 cycles over a 32-page
/// object with the emulated RAM smaller than the working set: each cycle rewrites a random
/// subset of pages (whole pages of random contents — zeros, ones, single bits among them —
/// or a single byte changed in place, which pages the page in first), pages everything out
/// and reads everything back from the pager: every page's checksum equals the model's, in
/// every cycle. The pager supplied only what was asked (no read-ahead installed, nothing
/// ignored), verified its own checksums without a mismatch, and never called the kernel
/// to change an object (`lock_request`, `change_attributes`, `destroy`, `data_error`).
#[test]
fn supplied_contents_equal_returned_contents_over_many_cycles() {
    let _deadline = deadline("supplied_equals_returned", 240);
    for mode in modes("supplied_equals_returned") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 24), 1024, pcfg(3));
        const N: usize = 32;
        let (t, base) = alloc(&s.kernel, N);
        let mut rng = Rng(0xc0ff_ee00 + mode as u64);
        let mut model: Vec<Vec<u8>> = vec![vec![0u8; PAGE]; N];
        for cycle in 0..40 {
            for (p, m) in model.iter_mut().enumerate() {
                match rng.below(4) {
                    0 | 1 => {
                        *m = rng.page();
                        write_page(&t, base, p, m);
                    }
                    2 => {
                        let off = rng.below(PAGE as u64) as usize;
                        let b = rng.next() as u8;
                        m[off] = b;
                        t.write(base + p * PAGE + off, &[b]).expect("write");
                    }
                    _ => {}
                }
            }
            let got = checksums_from_pager(&t, base, N);
            let want: Vec<u64> = model.iter().map(|m| checksum(m)).collect();
            assert_eq!(got, want, "cycle {cycle}");
        }
        let ks = s.kernel.stats();
        let ps = s.pager.stats();
        println!(
            "pageouts {} pageins {} supplies {}",
            ks.pageouts, ks.pageins, ps.data_supply
        );
        assert!(ks.pageins >= 40 * N as u64 / 2, "{ks:?}");
        // Every supplied page was a requested one (the kernel counts it just after waking
        // the faulting thread).
        assert!(
            wait_until(10, || s.kernel.stats().pageins == s.pager.stats().pages_in),
            "{:?}",
            s.kernel.stats()
        );
        let ks = s.kernel.stats();
        assert_eq!((ks.read_ahead_installed, ks.supply_ignored), (0, 0));
        assert_eq!((ps.checksum_errors, ps.data_error, ps.rejected), (0, 0, 0));
        assert_eq!(
            (
                ks.memory_object_lock_request,
                ks.memory_object_change_attributes,
                ks.memory_object_destroy,
                ks.memory_object_data_error
            ),
            (0, 0, 0, 0)
        );
    }
}

/// Bad input on object ports, through the kernel's test hook (`Kernel::inject`, with the
/// object's real ports; GNU Mach never sends these): data requests at offsets that are not
/// page-aligned or for lengths other than one page (0, a page − 1, two pages over a stored
/// page, `u64::MAX`, an overflowing end), data returns and initializes at unaligned offsets
/// or of partial pages, and a request and a return carrying the *other* object's control
/// port. Each is refused by the pager (`Unaligned`, `BadLength`, `ForgedControl`); the bad
/// requests are answered `data_error` for the range asked (the kernel, which has no fault
/// waiting there, refuses the ones it cannot even map), the forged ones get no answer. Both
/// objects' page lists (`default_pager_object_pages`) and every page's contents read back
/// from the pager are the same before and after; nothing was written. After the victim is
/// deallocated (terminated), the kernel holds none of its ports: nothing can be sent on it,
/// and the bystander is intact.
#[test]
fn bad_input_on_object_ports_corrupts_nothing() {
    use default_pager::Reason;
    use default_pager_example::kernel::Inject;
    let _deadline = deadline("bad_input_on_object_ports", 240);
    for mode in modes("bad_input") {
        println!("mode: {}", mode_name(mode));
        let s = boot(kcfg(mode, 64), 1024, pcfg(3));
        let k = &s.kernel;
        let mut rng = Rng(0xbad0 + mode as u64);
        let (ta, a) = alloc(k, 16);
        let (tb, b) = alloc(k, 16);
        for p in 0..16 {
            if p % 3 != 2 {
                write_page(&ta, a, p, &rng.page());
            }
            write_page(&tb, b, p, &rng.page());
        }
        let before = (
            checksums_from_pager(&ta, a, 16),
            checksums_from_pager(&tb, b, 16),
        );
        let lists = s.objects().expect("objects");
        assert_eq!(lists.len(), 2);
        let writes = s.pager.stats().pages_out;
        assert_eq!(s.pager.stats().rejected, 0);
        let p = PAGE as u64;
        let junk = vec![0xeeu8; 2 * PAGE];
        let req = |offset, length| Inject::DataRequest {
            offset,
            length,
            access: 1,
        };
        let bad = [
            (a, req(100, p), Reason::Unaligned),
            (a, req(2 * p + 1, p), Reason::Unaligned),
            (a, req(0, 0), Reason::BadLength),
            (a, req(p, p - 1), Reason::BadLength),
            (a, req(0, 2 * p), Reason::BadLength),
            (a, req(3 * p, u64::MAX), Reason::BadLength),
            (a, req(u64::MAX - p + 1, p), Reason::BadLength),
            (
                a,
                Inject::DataReturn {
                    offset: p + 1,
                    data: junk[..PAGE].to_vec(),
                },
                Reason::Unaligned,
            ),
            (
                a,
                Inject::DataReturn {
                    offset: 0,
                    data: junk[..100].to_vec(),
                },
                Reason::BadLength,
            ),
            (
                a,
                Inject::DataReturn {
                    offset: 3 * p,
                    data: junk[..PAGE + 1].to_vec(),
                },
                Reason::BadLength,
            ),
            (
                a,
                Inject::DataInitialize {
                    offset: 2 * p + 8,
                    data: junk[..PAGE].to_vec(),
                },
                Reason::Unaligned,
            ),
            (
                a,
                Inject::DataInitialize {
                    offset: 5 * p,
                    data: junk[..2 * PAGE - 1].to_vec(),
                },
                Reason::BadLength,
            ),
        ];
        for (addr, msg, _) in &bad {
            k.inject(*addr, *addr, msg.clone()).expect("inject");
        }
        // a's object port with b's control port.
        k.inject(a, b, req(0, p)).expect("inject");
        k.inject(
            a,
            b,
            Inject::DataReturn {
                offset: 0,
                data: junk[..PAGE].to_vec(),
            },
        )
        .expect("inject");
        let n = bad.len() as u64 + 2;
        assert!(
            // The log entry is pushed just after the counter moves: wait for the log.
            wait_until(10, || s.pager.rejections().len() as u64 == n),
            "{:?}",
            s.pager.rejections()
        );
        let reasons: Vec<Reason> = s.pager.rejections().iter().map(|r| r.reason).collect();
        for want in [Reason::Unaligned, Reason::BadLength, Reason::ForgedControl] {
            let expected = bad.iter().filter(|b| b.2 == want).count()
                + if want == Reason::ForgedControl { 2 } else { 0 };
            assert_eq!(
                reasons.iter().filter(|r| **r == want).count(),
                expected,
                "{want:?} in {reasons:?}"
            );
        }
        // One data_error per bad request (sent just after the rejection is logged), none for
        // the forged ones.
        assert!(
            wait_until(10, || s.pager.stats().data_error == 7),
            "{:?}",
            s.pager.stats()
        );
        assert_eq!(s.pager.stats().pages_out, writes, "nothing written");
        assert_eq!(s.objects().expect("objects"), lists, "page lists unchanged");
        let after = (
            checksums_from_pager(&ta, a, 16),
            checksums_from_pager(&tb, b, 16),
        );
        assert_eq!(after, before, "contents unchanged");
        assert_eq!(s.pager.stats().checksum_errors, 0);
        // Terminated: the kernel can send nothing more on the victim.
        ta.vm_deallocate(a, 16 * PAGE).expect("vm_deallocate");
        assert!(wait_until(10, || s.pager.stats().objects_freed == 1));
        assert!(k.inject(a, a, req(0, p)).is_err());
        assert!(k.inject(b, a, req(0, p)).is_err());
        assert_eq!(checksums_from_pager(&tb, b, 16), before.1);
        let b_only: Vec<_> = lists.iter().filter(|l| l.2.len() == 16).cloned().collect();
        assert_eq!(b_only.len(), 1);
        assert_eq!(s.objects().expect("objects"), b_only);
    }
}

/// The memory manager's other calls on a control port: `lock_request` (clean + flush, then
/// `lock_completed`), `change_attributes` (`change_completed`), `get_attributes`, `ready`,
/// and `destroy` (the kernel terminates the object; later faults are memory errors). Bad
/// input, messages on a terminated object (the manager's side): after terminate the
/// manager's calls on the dead control port fail with `MACH_SEND_INVALID_DEST`.
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
        // Messages on the terminated object: its control port went to the manager with
        // terminate and died there (this manager does not keep it), so the manager's calls
        // on it fail at the send with MACH_SEND_INVALID_DEST and never reach the kernel.
        assert!(wait_until(10, || ft.port_type(ctl.name())
            == Ok(mig_runtime::ipc::PortType::DEAD_NAME)));
        let dead = |r: Result<(), mig_runtime::RpcError>| match r {
            Err(mig_runtime::RpcError::Transport(c)) => {
                c.0 as u32 == mig_runtime::wire::msg_return::SEND_INVALID_DEST
            }
            _ => false,
        };
        assert!(dead(mach::memory_object_data_unavailable(
            ft,
            &ctl,
            2 * PAGE as u64,
            PAGE as u64
        )));
        assert!(dead(mach::memory_object_data_supply(
            ft,
            &ctl,
            2 * PAGE as u64,
            mig_runtime::msg::OolData::Borrowed(&page(15, 2)),
            0,
            0,
            &mig_runtime::ReceiveRight::null(),
        )));
        assert!(dead(mach::memory_object_data_error(
            ft,
            &ctl,
            0,
            PAGE as u64,
            1
        )));
        assert_eq!(
            k.stats().memory_object_data_supply,
            ks.memory_object_data_supply,
            "nothing reached the kernel"
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
