//! Per-page fault costs of the full protocol path against raw userfaultfd handlers.
//!
//! `cargo bench -p default-pager-example --bench fault` (options after `--`:
//! `--pages N`, `--runs N`). Needs userfaultfd (root, or the sysctl); prints SKIP otherwise.
//!
//! * raw ZEROPAGE: a handler thread (blocking `poll` + `read`, as in the reference's
//!   measurements; and a spinning variant that never sleeps) answering each missing-page fault with `UFFDIO_ZEROPAGE`;
//! * raw COPY: … with a 4 KiB `UFFDIO_COPY`;
//! * raw 16-page COPY: … with one 64 KiB `UFFDIO_COPY` of the aligned 16-page cluster;
//! * zero fill via the pager: fault → `memory_object_data_request` → default pager →
//!   `memory_object_data_unavailable` → zero fill (pagemap off, object with a pager);
//!   (also with `zero_fill_copy`: a write-protected zero COPY instead of ZEROPAGE+WP+WAKE);
//! * pagein: fault → `data_request` → `data_supply` → `UFFDIO_COPY`, without and with
//!   read-ahead (15 pages supplied after the requested one).
//!
//! One task thread reads one byte of every page in order. Median of `--runs` runs.

use default_pager_example::kernel::uffd::{mem, Event, Uffd};
use default_pager_example::kernel::{self, ModeChoice};
use default_pager_example::system::{Paging, System};
use default_pager_example::PAGE;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Raw {
    Zero,
    Copy1,
    Copy16,
}

fn raw(kind: Raw, pages: usize, spin: bool) -> Result<Duration, String> {
    let u = Arc::new(Uffd::open()?);
    let len = pages * PAGE;
    let base = mem::reserve(len)?;
    mem::map_rw(base, len)?;
    u.register(base, len, false)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (u2, s2) = (Arc::clone(&u), Arc::clone(&stop));
    let h = std::thread::spawn(move || {
        let buf = vec![0x5au8; 16 * PAGE];
        let mut ev = Vec::new();
        while !s2.load(Ordering::Acquire) {
            if spin {
                if u2.read_events(&mut ev) == 0 {
                    std::hint::spin_loop();
                    continue;
                }
            } else if !u2.poll(20) || u2.read_events(&mut ev) == 0 {
                continue;
            }
            for e in &ev {
                if let Event::Fault { addr, .. } = *e {
                    let a = addr & !(PAGE - 1);
                    let _ = match kind {
                        Raw::Zero => u2.zeropage(a, PAGE, true),
                        Raw::Copy1 => u2.copy(a, &buf[..PAGE], false, true),
                        Raw::Copy16 => {
                            let c = base + (a - base) / (16 * PAGE) * 16 * PAGE;
                            let n = (base + len - c).min(16 * PAGE);
                            u2.copy(c, &buf[..n], false, true)
                        }
                    };
                }
            }
        }
    });
    let t0 = Instant::now();
    let mut sum = 0u64;
    for i in 0..pages {
        // SAFETY: reading our own registered mapping; the handler thread resolves the fault.
        sum += u64::from(unsafe { std::ptr::read_volatile((base + i * PAGE) as *const u8) });
    }
    let d = t0.elapsed();
    std::hint::black_box(sum);
    stop.store(true, Ordering::Release);
    let _ = h.join();
    mem::release(base, len);
    Ok(d)
}

#[derive(Clone, Copy, PartialEq)]
enum Full {
    ZeroFill,
    /// Zero fill answered with a write-protected COPY of zeros (`zero_fill_copy`).
    ZeroFillCopy,
    Pagein(u32),
}

fn full(kind: Full, pages: usize) -> Result<Duration, String> {
    let kcfg = kernel::Config {
        ram_bytes: (pages + 4096) * PAGE,
        pagemap: false,
        zero_fill_copy: kind == Full::ZeroFillCopy,
        mode: ModeChoice::Userfaultfd,
        log_errors: false,
        ..kernel::Config::default()
    };
    let pcfg = default_pager::Config {
        read_ahead: match kind {
            Full::Pagein(r) => r,
            Full::ZeroFill | Full::ZeroFillCopy => 0,
        },
        ..default_pager::Config::default()
    };
    let s = System::start(
        kcfg,
        &Paging::Memory {
            bytes: ((pages + 64) * PAGE) as u64,
        },
        pcfg,
    )?;
    let t = s.kernel.new_task()?;
    let base = t
        .vm_allocate((pages + 1) * PAGE)
        .map_err(|e| format!("{e:?}"))?;
    let data = vec![0xa5u8; PAGE];
    let first = match kind {
        Full::ZeroFill | Full::ZeroFillCopy => {
            // Give the object a pager: one page written and paged out.
            t.write(base, &data).map_err(|e| e.to_string())?;
            t.pageout(base, PAGE)?;
            1
        }
        Full::Pagein(_) => {
            for p in 0..=pages {
                t.write(base + p * PAGE, &data).map_err(|e| e.to_string())?;
            }
            t.pageout(base, (pages + 1) * PAGE)?;
            let want = ((pages + 1) * PAGE) as u64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while s.info().map(|i| i.0 - i.1).unwrap_or(0) < want {
                if Instant::now() > deadline {
                    return Err("the pager did not store the pages".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            0
        }
    };
    let t0 = Instant::now();
    let mut sum = 0u64;
    for i in first..first + pages {
        // SAFETY: reading the task's allocation; faults are served by the emulated kernel.
        sum += u64::from(unsafe { std::ptr::read_volatile((base + i * PAGE) as *const u8) });
    }
    let d = t0.elapsed();
    std::hint::black_box(sum);
    // Counters are updated just after the page is installed: let the last ones land.
    std::thread::sleep(Duration::from_millis(50));
    let ks = s.kernel.stats();
    let expect_msgs = match kind {
        Full::ZeroFill | Full::ZeroFillCopy => ks.memory_object_data_unavailable >= pages as u64,
        Full::Pagein(0) => ks.pageins >= pages as u64,
        Full::Pagein(_) => ks.pageins + ks.read_ahead_installed >= pages as u64,
    };
    if !expect_msgs {
        return Err(format!("unexpected path: {ks:?}"));
    }
    if std::env::var_os("DPX_STAGES").is_some() && ks.t_answered > 0 {
        let n = ks.t_answered as f64 * 1000.0;
        eprintln!(
            "    stages per request: kernel {:.1} µs, pager+IPC {:.1} µs, install {:.1} µs (total per page {:.1} µs)",
            ks.t_request_ns as f64 / n,
            ks.t_pager_ns as f64 / n,
            ks.t_install_ns as f64 / n,
            d.as_secs_f64() * 1e6 / pages as f64
        );
    }
    drop(t);
    Ok(d)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |f: &str, d: usize| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it: then only a quick smoke run.
    let smoke = !args.iter().any(|a| a == "--bench");
    let pages = get("--pages", if smoke { 256 } else { 16384 });
    let runs = get("--runs", if smoke { 1 } else { 3 }).max(1);
    if let Err(e) = Uffd::open() {
        println!("SKIP: fault benchmark needs userfaultfd: {e}");
        return;
    }
    println!(
        "fault benchmark: {pages} pages ({} MiB) per run, one task thread reading in order, median of {runs} runs, {} CPUs",
        (pages * PAGE) >> 20,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut results: Vec<(&str, f64)> = Vec::new();
    let mut run = |name: &'static str, f: &dyn Fn() -> Result<Duration, String>| -> Option<f64> {
        let mut v = Vec::new();
        for _ in 0..runs {
            match f() {
                Ok(d) => v.push(d),
                Err(e) => {
                    println!("  {name:<46} failed: {e}");
                    return None;
                }
            }
        }
        let us = median(v).as_secs_f64() * 1e6 / pages as f64;
        println!("  {name:<46} {us:>7.2} µs/page {:>9.0} pages/s", 1e6 / us);
        results.push((name, us));
        Some(us)
    };
    let rz = run("raw handler (poll+read): ZEROPAGE", &|| {
        raw(Raw::Zero, pages, false)
    });
    let rc = run("raw handler (poll+read): COPY 4 KiB", &|| {
        raw(Raw::Copy1, pages, false)
    });
    let r16 = run("raw handler (poll+read): COPY 16 pages", &|| {
        raw(Raw::Copy16, pages, false)
    });
    let rzs = run("raw handler (spinning): ZEROPAGE", &|| {
        raw(Raw::Zero, pages, true)
    });
    let rcs = run("raw handler (spinning): COPY 4 KiB", &|| {
        raw(Raw::Copy1, pages, true)
    });
    let r16s = run("raw handler (spinning): COPY 16 pages", &|| {
        raw(Raw::Copy16, pages, true)
    });
    let fz = run("pager: data_request -> data_unavailable", &|| {
        full(Full::ZeroFill, pages)
    });
    let fzc = run("pager: ... -> data_unavailable (zero COPY+WP)", &|| {
        full(Full::ZeroFillCopy, pages)
    });
    let fs = run("pager: data_request -> data_supply", &|| {
        full(Full::Pagein(0), pages)
    });
    let fr = run("pager: data_supply with read-ahead 15", &|| {
        full(Full::Pagein(15), pages)
    });
    println!("ratios (against the blocking raw handler, then the spinning one):");
    for (label, r) in [("poll+read", (rz, rc, r16)), ("spinning", (rzs, rcs, r16s))] {
        if let (Some(rz), Some(fz)) = (r.0, fz) {
            println!(
                "  zero fill via pager / raw ZEROPAGE ({label}): {:.2}x (goal <= 2x: {})",
                fz / rz,
                if fz / rz <= 2.0 { "met" } else { "not met" }
            );
        }
        if let (Some(rz), Some(fz)) = (r.0, fzc) {
            println!(
                "  zero fill via pager with zero COPY / raw ZEROPAGE ({label}): {:.2}x (goal <= 2x: {})",
                fz / rz,
                if fz / rz <= 2.0 { "met" } else { "not met" }
            );
        }
        if let (Some(rc), Some(fs)) = (r.1, fs) {
            println!(
                "  pagein via pager / raw COPY 4 KiB ({label}): {:.2}x",
                fs / rc
            );
        }
        if let (Some(r16), Some(fr)) = (r.2, fr) {
            let pct = r16 / fr * 100.0;
            println!(
                "  pagein with read-ahead throughput vs raw 16-page COPY ({label}): {pct:.0}% (goal >= 50%: {})",
                if pct >= 50.0 { "met" } else { "not met" }
            );
        }
    }
}
