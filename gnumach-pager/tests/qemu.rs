//! The default pager on the real kernel: boots Debian 13's GNU Mach in qemu (TCG) with the
//! program as its first task, and checks what the serial console says.
//!
//! Without `qemu-system-x86_64` or the kernel package these tests print `SKIP:` and pass,
//! unless `CI` is set: then they fail. Boots run one at a time (TCG on a small machine).

use gnumach_pager::{boot, prepare, Boot, Machine, Outcome};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn machine(test: &str) -> Option<Machine> {
    match prepare() {
        Ok(m) => Some(m),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: {e} (CI is set)"),
        Err(e) => {
            eprintln!("SKIP: {test}: {e}");
            None
        }
    }
}

fn run(test: &str, args: &[&str], timeout: Duration) -> Option<Outcome> {
    let m = machine(test)?;
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b = Boot {
        args: args.iter().map(|s| s.to_string()).collect(),
        timeout,
        ..Boot::default()
    };
    let o = boot(&m, &b).expect("cannot run qemu");
    if o.timed_out {
        panic!(
            "{test}: no end after {} s; the program's last line: {}\nlast console lines:\n{}",
            timeout.as_secs(),
            o.last_program_line().unwrap_or("(none)"),
            o.tail(20)
        );
    }
    Some(o)
}

/// Asserts the program failed with a cause containing `cause`, and halted the machine.
fn assert_fails_with(test: &str, o: &Outcome, cause: &str) {
    match o.result() {
        Some(Err(c)) => assert!(
            c.contains(cause),
            "{test}: failed for another reason: {c}\n{}",
            o.tail(15)
        ),
        Some(Ok(())) => panic!(
            "{test}: passed, but should have failed with {cause:?}\n{}",
            o.tail(15)
        ),
        None => panic!("{test}: printed no result\n{}", o.tail(20)),
    }
    assert!(
        o.halted(),
        "{test}: the machine did not halt\n{}",
        o.tail(10)
    );
}

#[test]
fn pager_serves_the_real_kernel_through_pageout_and_pagein() {
    let test = "pager_serves_the_real_kernel_through_pageout_and_pagein";
    let Some(o) = run(test, &[], Duration::from_secs(600)) else {
        return;
    };
    let tail = o.tail(25);
    assert!(
        o.saw("registered as the default memory manager"),
        "the pager never registered\n{tail}"
    );
    assert_eq!(o.result(), Some(Ok(())), "the program did not pass\n{tail}");
    let s = o
        .summary()
        .unwrap_or_else(|| panic!("no SUMMARY line\n{tail}"));
    for kind in [
        "create",
        "data_request",
        "data_return",
        "terminate",
        "no_senders",
        "data_supply",
        "data_unavailable",
    ] {
        assert!(o.count(kind) > 0, "no {kind} message: {s:?}\n{tail}");
    }
    assert_eq!(o.count("data_error"), 0, "{s:?}");
    let pages = o.count("pages");
    assert_eq!(pages, 192 * 256, "{s:?}");
    assert_eq!(o.count("verified"), pages, "not every page verified: {s:?}");
    assert_eq!(o.count("mismatches"), 0, "{s:?}");
    assert_eq!(
        o.count("objects_live"),
        0,
        "objects left after the worker ended: {s:?}"
    );
    assert_eq!(
        o.count("paging_free_after"),
        o.count("paging_free_before"),
        "paging space not all free again: {s:?}"
    );
    assert!(o.halted(), "no clean halt\n{tail}");
    eprintln!(
        "boot to registration {:.2} s, run {} ms, {} protocol messages ({} per second), qemu {:.2} s",
        o.time_of("registered as the default memory manager")
            .unwrap_or_default()
            .as_secs_f64(),
        o.count("run_ms"),
        o.count("protocol_messages"),
        o.count("msgs_per_s"),
        o.elapsed.as_secs_f64()
    );
}

#[test]
fn worker_touching_deallocated_memory_is_reported() {
    let test = "worker_touching_deallocated_memory_is_reported";
    let Some(o) = run(
        test,
        &["mem=16", "fault=touch-after-free"],
        Duration::from_secs(300),
    ) else {
        return;
    };
    assert_fails_with(test, &o, "touched memory it had deallocated");
}

#[test]
fn second_default_memory_manager_is_refused() {
    let test = "second_default_memory_manager_is_refused";
    let Some(o) = run(
        test,
        &["mem=16", "fault=second-dmm"],
        Duration::from_secs(300),
    ) else {
        return;
    };
    assert_fails_with(test, &o, "already registered");
    assert!(!o.saw("registered as the default memory manager"));
}

#[test]
fn full_backing_store_is_reported() {
    let test = "full_backing_store_is_reported";
    let Some(o) = run(
        test,
        &["mem=192", "store-limit=8"],
        Duration::from_secs(300),
    ) else {
        return;
    };
    assert_fails_with(test, &o, "backing store full");
}

#[test]
fn kernel_refusing_a_call_is_reported() {
    let test = "kernel_refusing_a_call_is_reported";
    // This kernel has no disk driver: device_open of a disk is refused.
    let Some(o) = run(
        test,
        &["mem=16", "store=device:hd0"],
        Duration::from_secs(300),
    ) else {
        return;
    };
    assert_fails_with(test, &o, "kernel refused device_open(\"hd0\")");
    assert!(o.saw("D_NO_SUCH_DEVICE"), "{}", o.tail(5));
}
