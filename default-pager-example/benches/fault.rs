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
        object_threads: std::env::var("DPX_OBJECT_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(default_pager::default_object_threads),
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
    let faults_before = s.kernel.stats().faults;
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
            "    stages per request: kernel {:.1} µs, pager+IPC {:.1} µs, install {:.1} µs (total per page {:.1} µs; {:.2} faults per page)",
            ks.t_request_ns as f64 / n,
            ks.t_pager_ns as f64 / n,
            ks.t_install_ns as f64 / n,
            d.as_secs_f64() * 1e6 / pages as f64,
            (ks.faults - faults_before) as f64 / pages as f64
        );
    }
    drop(t);
    Ok(d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

type Case = (&'static str, Box<dyn Fn(usize) -> Result<Duration, String>>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |f: &str, d: usize| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it: then only a quick smoke run.
    let smoke = !args.iter().any(|a| a == "--bench");
    let pages = get("--pages", if smoke { 256 } else { 16384 });
    let runs = get("--runs", if smoke { 1 } else { 7 }).max(1);
    if let Err(e) = Uffd::open() {
        println!("SKIP: fault benchmark needs userfaultfd: {e}");
        return;
    }
    println!(
        "fault benchmark: {pages} pages ({} MiB) per run, one task thread reading one byte of each page in order; \
         {runs} rounds, each running every case once (interleaved, starting case rotated), after one warm-up round; \
         medians; {} CPUs; load average {}",
        (pages * PAGE) >> 20,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg()
    );
    let cases: Vec<Case> = vec![
        (
            "raw handler (poll+read): ZEROPAGE",
            Box::new(|n| raw(Raw::Zero, n, false)),
        ),
        (
            "raw handler (poll+read): COPY 4 KiB",
            Box::new(|n| raw(Raw::Copy1, n, false)),
        ),
        (
            "raw handler (poll+read): COPY 16 pages",
            Box::new(|n| raw(Raw::Copy16, n, false)),
        ),
        (
            "raw handler (spinning): ZEROPAGE",
            Box::new(|n| raw(Raw::Zero, n, true)),
        ),
        (
            "raw handler (spinning): COPY 4 KiB",
            Box::new(|n| raw(Raw::Copy1, n, true)),
        ),
        (
            "raw handler (spinning): COPY 16 pages",
            Box::new(|n| raw(Raw::Copy16, n, true)),
        ),
        (
            "pager: data_request -> data_unavailable",
            Box::new(|n| full(Full::ZeroFill, n)),
        ),
        (
            "pager: ... -> data_unavailable (zero COPY+WP)",
            Box::new(|n| full(Full::ZeroFillCopy, n)),
        ),
        (
            "pager: data_request -> data_supply",
            Box::new(|n| full(Full::Pagein(0), n)),
        ),
        (
            "pager: data_supply with read-ahead 15",
            Box::new(|n| full(Full::Pagein(15), n)),
        ),
    ];
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|(name, _)| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|o| name.contains(o)))
        })
        .collect();
    // µs/page per case and round (None: failed).
    let mut samples: Vec<Vec<Option<f64>>> = vec![Vec::new(); cases.len()];
    if !smoke {
        for (name, f) in &cases {
            if let Err(e) = f(pages / 4) {
                println!("  warm-up {name}: failed: {e}");
            }
        }
    }
    for round in 0..runs {
        for j in 0..cases.len() {
            let i = (j + round) % cases.len();
            let (name, f) = &cases[i];
            let r = f(pages);
            if let Err(e) = &r {
                println!("  {name:<46} round {round} failed: {e}");
            }
            samples[i].push(r.ok().map(|d| d.as_secs_f64() * 1e6 / pages as f64));
        }
    }
    let mut med: Vec<Option<f64>> = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let ok: Vec<f64> = samples[i].iter().flatten().copied().collect();
        if ok.is_empty() {
            println!("  {name:<46}  failed");
            med.push(None);
            continue;
        }
        let (lo, hi) = ok
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        let us = median(ok);
        println!(
            "  {name:<46} {us:>7.2} µs/page {:>9.0} pages/s  (min {lo:.2}, max {hi:.2})",
            1e6 / us
        );
        med.push(Some(us));
    }
    let idx = |n: &str| cases.iter().position(|(name, _)| *name == n);
    // The ratio of medians, and the median of the per-round ratios (both runs of a pair ran
    // within the same round, so the load they saw was closer).
    let ratio = |a: &str, b: &str| -> Option<(f64, f64)> {
        let (ia, ib) = (idx(a)?, idx(b)?);
        let rm = med[ia]? / med[ib]?;
        let per: Vec<f64> = samples[ia]
            .iter()
            .zip(&samples[ib])
            .filter_map(|(x, y)| Some((*x)? / (*y)?))
            .collect();
        if per.is_empty() {
            return None;
        }
        Some((rm, median(per)))
    };
    println!("ratios (ratio of medians; median of per-round ratios):");
    for label in ["poll+read", "spinning"] {
        let raw = |what: &str| format!("raw handler ({label}): {what}");
        for (full_name, short) in [
            (
                "pager: data_request -> data_unavailable",
                "zero fill via pager",
            ),
            (
                "pager: ... -> data_unavailable (zero COPY+WP)",
                "zero fill via pager with zero COPY",
            ),
        ] {
            if let Some((m, p)) = ratio(full_name, &raw("ZEROPAGE")) {
                println!(
                    "  {short} / raw ZEROPAGE ({label}): {m:.2}x; {p:.2}x (goal <= 2x: {})",
                    if m.max(p) <= 2.0 { "met" } else { "not met" }
                );
            }
        }
        if let Some((m, p)) = ratio("pager: data_request -> data_supply", &raw("COPY 4 KiB")) {
            println!("  pagein via pager / raw COPY 4 KiB ({label}): {m:.2}x; {p:.2}x");
        }
        if let Some((m, p)) = ratio(
            &raw("COPY 16 pages"),
            "pager: data_supply with read-ahead 15",
        ) {
            let (m, p) = (m * 100.0, p * 100.0);
            println!(
                "  pagein with read-ahead throughput vs raw 16-page COPY ({label}): {m:.0}%; {p:.0}% (goal >= 50%: {})",
                if m.min(p) >= 50.0 { "met" } else { "not met" }
            );
        }
    }
    println!("load average after: {}", loadavg());
}
