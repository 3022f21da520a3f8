//! The demo: a task allocates more memory than the emulated RAM, writes a pattern to every
//! other page, reads everything back and verifies it, then deallocates; the default pager
//! pages it out and in through the real protocol. See `--help`.

use crate::kernel::{self, Dir, KernelStats, ModeChoice};
use crate::system::{Paging, System};
use crate::{EmuTask, PAGE};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Demo options (`--help` lists them).
#[derive(Clone, Debug)]
pub struct Options {
    pub ram_mib: usize,
    pub size_mib: usize,
    pub threads: usize,
    pub pager_threads: usize,
    pub pagemap: bool,
    pub paging_file: Option<std::path::PathBuf>,
    pub paging_mib: u64,
    pub read_ahead: u32,
    pub trace_per_kind: usize,
    pub trace_full: bool,
    pub coalesce: bool,
    pub portable: bool,
    pub json: bool,
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ram_mib: 64,
            size_mib: 512,
            threads: 2,
            pager_threads: default_pager::default_object_threads(),
            pagemap: true,
            paging_file: None,
            paging_mib: 1024,
            read_ahead: 0,
            trace_per_kind: 3,
            trace_full: false,
            coalesce: false,
            portable: false,
            json: false,
            quiet: false,
        }
    }
}

pub const USAGE: &str = "\
usage: default-pager-example [options]

The reference default pager over an emulated GNU Mach kernel whose page faults are real
(userfaultfd; a portable software mode where it is not permitted).

  --ram MIB            emulated physical memory (default 64)
  --size MIB           the task's allocation (default 512)
  --threads N          task threads touching memory (default 2)
  --pager-threads N    default pager object threads (default: the Hurd's cpus/4+3)
  --pagemap on|off     on: GNU Mach's existence map, stock behaviour (no data_request for
                       pages known never paged out, in the first 32 MiB of an object);
                       off: every never-written page is data_request -> data_unavailable
                       (default on)
  --paging-file PATH   paging file (default: a temporary file, removed at exit)
  --paging-size MIB    paging file size (default 1024)
  --read-ahead N       the pager supplies up to N stored pages after each requested one
  --trace N            keep the first N messages of each kind for the trace (default 3)
  --trace-full         print every message as it happens (standard error)
  --coalesce           also allocate right after the first allocation: the kernel coalesces
                       it into the same object, which grows past memory_object_create's size
  --portable           force the portable mode (no userfaultfd)
  --json               print one JSON object with the results as the last line
  --quiet              no progress indicator
  -h, --help           this text";

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    fn num<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse()
            .map_err(|_| format!("{flag}: `{v}` is not a valid number"))
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ram" => o.ram_mib = num(a, it.next())?,
            "--size" => o.size_mib = num(a, it.next())?,
            "--threads" => o.threads = num(a, it.next())?,
            "--pager-threads" => o.pager_threads = num(a, it.next())?,
            "--pagemap" => {
                o.pagemap = match it.next().map(String::as_str) {
                    Some("on") => true,
                    Some("off") => false,
                    other => return Err(format!("--pagemap takes on or off, not {other:?}")),
                }
            }
            "--paging-file" => {
                o.paging_file = Some(it.next().ok_or("--paging-file needs a path")?.into())
            }
            "--paging-size" => o.paging_mib = num(a, it.next())?,
            "--read-ahead" => o.read_ahead = num(a, it.next())?,
            "--trace" => o.trace_per_kind = num(a, it.next())?,
            "--trace-full" => o.trace_full = true,
            "--coalesce" => o.coalesce = true,
            "--portable" => o.portable = true,
            "--json" => o.json = true,
            "--quiet" => o.quiet = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.ram_mib == 0 || o.size_mib == 0 || o.threads == 0 || o.paging_mib == 0 {
        return Err("sizes and thread counts must be positive".into());
    }
    if o.threads > 64 || o.pager_threads > 64 {
        return Err("at most 64 threads".into());
    }
    Ok(o)
}

/// The content of page `i` of the pattern (distinct per page and per word).
pub fn pattern(i: u64, out: &mut [u8]) {
    for (w, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut z = i
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(w as u64)
            .wrapping_add(0x1234_5678);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
}

struct Progress {
    label: &'static str,
    done: Arc<AtomicUsize>,
    total: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(label: &'static str, total: usize, quiet: bool) -> Progress {
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = if quiet {
            None
        } else {
            let (d, s) = (Arc::clone(&done), Arc::clone(&stop));
            let tty = std::io::stderr().is_terminal();
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    let t0 = Instant::now();
                    let mut last_q = 0;
                    while !s.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(if tty { 200 } else { 100 }));
                        let n = d.load(Ordering::Relaxed);
                        let pct = n * 100 / total.max(1);
                        if tty {
                            let bar = "#".repeat(pct / 4) + &".".repeat(25 - pct / 4);
                            eprint!(
                                "\r  {label:<6} [{bar}] {pct:>3}% {n}/{total} pages {:.1}s ",
                                t0.elapsed().as_secs_f64()
                            );
                        } else if pct / 25 > last_q && pct < 100 {
                            last_q = pct / 25;
                            eprintln!("  {label:<6} {pct:>3}% {n}/{total} pages");
                        }
                    }
                    if tty {
                        eprint!("\r{:80}\r", "");
                    }
                })
                .ok()
        };
        Progress {
            label,
            done,
            total,
            stop,
            h,
        }
    }
    fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
        let _ = (self.label, self.total);
    }
}

/// Runs `f(page)` for pages `0..pages` on `threads` threads (contiguous chunks).
fn parallel<F>(threads: usize, pages: usize, done: &AtomicUsize, f: F) -> Result<(), String>
where
    F: Fn(usize) -> Result<(), String> + Sync,
{
    let chunk = pages.div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || -> Result<(), String> {
                    let lo = t * chunk;
                    let hi = ((t + 1) * chunk).min(pages);
                    for p in lo..hi {
                        f(p)?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| "a task thread panicked".to_string())??;
        }
        Ok(())
    })
}

/// The demo's results.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub mode: String,
    pub kernel: KernelStats,
    pub pager: Option<default_pager::Stats>,
    pub pages_verified: u64,
    pub mismatches: u64,
    pub paging_total: u64,
    pub paging_free_before: u64,
    pub paging_free_after: u64,
    pub elapsed: Duration,
    /// The run coalesced an allocation into the first object (`--coalesce`).
    pub coalesce: bool,
    /// With `--coalesce`: the size hint of `memory_object_create` and how many pages the
    /// pager stored at offsets past it.
    pub grew_past_hint: Option<(u64, u64)>,
    /// The trace shows the kernel coalescing the object.
    pub trace_coalesced: bool,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// Runs the demo; writes the story to `out`.
pub fn run(o: &Options, out: &mut dyn std::io::Write) -> Result<Report, String> {
    let t_start = Instant::now();
    let kcfg = kernel::Config {
        ram_bytes: o.ram_mib << 20,
        pagemap: o.pagemap,
        coalesce: o.coalesce,
        mode: if o.portable {
            ModeChoice::Portable
        } else {
            ModeChoice::Auto
        },
        trace_per_kind: o.trace_per_kind,
        trace_live: o.trace_full,
        ..kernel::Config::default()
    };
    let tmp_path;
    let paging_path = match &o.paging_file {
        Some(p) => p.clone(),
        None => {
            tmp_path = std::env::temp_dir()
                .join(format!("default-pager-example-{}.swap", std::process::id()));
            tmp_path.clone()
        }
    };
    // A temporary paging file goes away however the run ends.
    struct Remove(Option<std::path::PathBuf>);
    impl Drop for Remove {
        fn drop(&mut self) {
            if let Some(p) = self.0.take() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _remove = Remove(o.paging_file.is_none().then(|| paging_path.clone()));
    let paging = Paging::File {
        path: paging_path.clone(),
        bytes: o.paging_mib << 20,
    };
    let pcfg = default_pager::Config {
        object_threads: o.pager_threads.max(1),
        read_ahead: o.read_ahead,
        ..default_pager::Config::default()
    };
    let w = |out: &mut dyn std::io::Write, s: String| {
        let _ = writeln!(out, "{s}");
    };
    w(
        out,
        "== The reference default pager over an emulated GNU Mach kernel ==".into(),
    );
    let sys = System::start(kcfg, &paging, pcfg)?;
    let k = &sys.kernel;
    w(out, format!("mode: {}", k.mode_note()));
    w(out, format!(
        "emulated RAM {} MiB ({} pages; pageout daemon between {}% and {}%), pagemap={} ({}), coalescing {}",
        o.ram_mib,
        k.ram_pages(),
        k.config().low_water_pct,
        k.config().high_water_pct,
        if o.pagemap { "on" } else { "off" },
        if o.pagemap {
            "stock GNU Mach: existence map over the first 32 MiB of each object"
        } else {
            "not stock: every never-written page is data_request -> data_unavailable"
        },
        if o.coalesce { "on" } else { "off" }
    ));
    w(out, format!(
        "default pager: {} object threads, read-ahead {}, paging file {} ({} MiB); registered with vm_set_default_memory_manager",
        o.pager_threads.max(1),
        o.read_ahead,
        paging_path.display(),
        o.paging_mib
    ));
    // A second default memory manager is refused (the Hurd's main.c behaviour).
    match crate::system::start_pager(
        k,
        Arc::new(default_pager::MemStore::new(16)),
        default_pager::Config {
            object_threads: 1,
            ..default_pager::Config::default()
        },
    ) {
        Err(e) => w(out, format!("a second default pager is refused: {e}")),
        Ok(_) => return Err("a second default pager was accepted".into()),
    }
    let (total, free_before, psz) = sys.info().map_err(|e| format!("default_pager_info: {e}"))?;
    w(
        out,
        format!(
            "default_pager_info: total {:.0} MiB, free {:.0} MiB, page size {psz}",
            mib(total),
            mib(free_before)
        ),
    );

    let task = sys.kernel.new_task()?;
    let size = o.size_mib << 20;
    let pages = size / PAGE;
    let base = task
        .vm_allocate(size)
        .map_err(|e| format!("vm_allocate: {e:?}"))?;
    w(out, format!(
        "\ntask: vm_allocate {} MiB at {base:#x} ({pages} pages, {}x the emulated RAM); {} thread(s)",
        o.size_mib,
        o.size_mib / o.ram_mib.max(1),
        o.threads
    ));
    // Phase 1: write every other page.
    let t_write = Instant::now();
    let prog = Progress::start("write", pages.div_ceil(2), o.quiet);
    let written = AtomicU64::new(0);
    let write_pages = |lo: usize, hi: usize, done: &AtomicUsize| {
        let task = &task;
        let written = &written;
        parallel(o.threads, hi - lo, &AtomicUsize::new(0), |i| {
            let p = lo + i;
            if p % 2 == 0 {
                let mut buf = vec![0u8; PAGE];
                pattern(p as u64, &mut buf);
                task.write(base + p * PAGE, &buf)
                    .map_err(|e| format!("write page {p}: {e}"))?;
                written.fetch_add(1, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    write_pages(0, pages, &prog.done)?;
    prog.finish();
    // Coalescing: an allocation right after the first one, once its object has a pager,
    // extends that object past the size memory_object_create announced.
    let mut extra = None;
    if o.coalesce {
        let add = (size / 8).max(PAGE);
        let a = task
            .vm_allocate_at(base + size, add)
            .map_err(|e| format!("vm_allocate (coalesced): {e:?}"))?;
        extra = Some((a, add));
        let info = task
            .object_at(a)
            .ok_or("coalesced allocation has no object")?;
        w(out, format!(
            "coalescing: vm_allocate {} MiB at {a:#x} joined object {} (now {} MiB; memory_object_create said {} MiB); writing its even pages",
            add >> 20,
            info.id,
            info.size >> 20,
            info.create_size >> 20
        ));
        write_pages(pages, pages + add / PAGE, &AtomicUsize::new(0))?;
    }
    let total_pages = pages + extra.map_or(0, |(_, l)| l / PAGE);
    let write_time = t_write.elapsed();
    let after_write = k.stats();
    w(
        out,
        format!(
            "write phase: {} pages written in {:.2}s ({:.0} MiB/s); {} pageouts so far",
            written.load(Ordering::Relaxed),
            write_time.as_secs_f64(),
            mib(written.load(Ordering::Relaxed) * PAGE as u64) / write_time.as_secs_f64().max(1e-9),
            after_write.pageouts
        ),
    );

    // Phase 2: read and verify every page.
    k.reset_latency();
    let t_read = Instant::now();
    let prog = Progress::start("verify", total_pages, o.quiet);
    let mismatches = AtomicU64::new(0);
    let first_bad = std::sync::Mutex::new(None);
    {
        let done = Arc::clone(&prog.done);
        let task = &task;
        parallel(o.threads, total_pages, &done, |p| {
            let mut got = vec![0u8; PAGE];
            let mut want = vec![0u8; PAGE];
            task.read(base + p * PAGE, &mut got)
                .map_err(|e| format!("read page {p}: {e}"))?;
            if p % 2 == 0 {
                pattern(p as u64, &mut want);
            }
            if got != want {
                mismatches.fetch_add(1, Ordering::Relaxed);
                let mut g = first_bad.lock().unwrap_or_else(|e| e.into_inner());
                if g.is_none() {
                    *g = Some(p);
                }
            }
            Ok(())
        })?;
    }
    prog.finish();
    let read_time = t_read.elapsed();
    let lat = k.latency();
    let mism = mismatches.load(Ordering::Relaxed);
    w(out, format!(
        "read phase: {total_pages} pages read and verified in {:.2}s ({:.0} MiB/s): {mism} mismatches{}",
        read_time.as_secs_f64(),
        mib((total_pages * PAGE) as u64) / read_time.as_secs_f64().max(1e-9),
        match *first_bad.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(p) => format!(" (first at page {p})"),
            None => String::new(),
        }
    ));

    // What the pager holds now.
    let (_, free_mid, _) = sys.info().map_err(|e| format!("default_pager_info: {e}"))?;
    w(
        out,
        format!(
            "\ndefault_pager_info: free {:.1} MiB of {:.0} MiB ({} pages in use)",
            mib(free_mid),
            mib(total),
            (free_before - free_mid) / PAGE as u64
        ),
    );
    let mut grew = None;
    match sys.objects() {
        Ok(objs) => {
            for (obj, bytes, offs) in objs.iter().take(4) {
                let odd = offs.iter().filter(|&&o| (o / PAGE as u64) % 2 == 1).count();
                w(out, format!(
                    "default_pager_objects: object {obj:#x}: dpo_size {:.1} MiB; default_pager_object_pages lists {} offsets, {} of them never-written (odd) pages",
                    mib(*bytes),
                    offs.len(),
                    odd
                ));
            }
            // The coalesced object: the pager's block map grew past the size hint.
            if let (Some(_), Some(info)) = (extra, task.object_at(base)) {
                let hint = info.create_size;
                let past: Vec<u64> = objs
                    .iter()
                    .flat_map(|o| o.2.iter().copied())
                    .filter(|&o| o >= hint)
                    .collect();
                let top = past.iter().max().copied().unwrap_or(0);
                w(out, format!(
                    "the object grew past its size hint: memory_object_create said {:.1} MiB, the object is now {:.1} MiB, and the pager stores {} pages at offsets from {hint:#x} up to {top:#x} (requests and returns there are served like any other)",
                    mib(hint),
                    mib(info.size as u64),
                    past.len()
                ));
                grew = Some((hint, past.len() as u64));
            }
        }
        Err(e) => w(out, format!("default_pager_objects: {e}")),
    }

    // Phase 3: deallocate; the pager gets terminate, then no-senders, and frees everything.
    let t_dealloc = Instant::now();
    if let Some((a, l)) = extra {
        let _ = a;
        task.vm_deallocate(base, size + l)
            .map_err(|e| format!("vm_deallocate: {e:?}"))?;
    } else {
        task.vm_deallocate(base, size)
            .map_err(|e| format!("vm_deallocate: {e:?}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut free_after = 0;
    while Instant::now() < deadline {
        let s = sys.pager.stats();
        free_after = sys.info().map(|i| i.1).unwrap_or(0);
        if s.objects == 0 && free_after == free_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    w(out, format!(
        "vm_deallocate: memory_object_terminate sent; after no-senders the pager's free space is {:.0} MiB of {:.0} MiB ({}) in {:.0} ms",
        mib(free_after),
        mib(total),
        if free_after == free_before { "all back" } else { "NOT all back" },
        t_dealloc.elapsed().as_secs_f64() * 1000.0
    ));
    drop(task);

    let ks = k.stats();
    let ps = sys.pager.stats();
    let report = Report {
        mode: k.mode().to_string(),
        kernel: ks,
        pager: Some(ps),
        pages_verified: total_pages as u64,
        mismatches: mism,
        paging_total: total,
        paging_free_before: free_before,
        paging_free_after: free_after,
        elapsed: t_start.elapsed(),
        coalesce: o.coalesce,
        grew_past_hint: grew,
        trace_coalesced: k.trace().iter().any(|e| e.kind == "object_coalesced"),
    };

    // The trace.
    w(
        out,
        format!(
            "\n-- protocol trace (first {} messages of each kind; --trace-full for all) --",
            o.trace_per_kind
        ),
    );
    for e in k.trace() {
        if e.dir == Dir::Note && e.kind == "memory_error" {
            continue;
        }
        w(out, format!("  {}", e.line()));
    }
    let ns = ps.messages.no_senders;
    w(
        out,
        format!("  (pager side) no-senders notifications received on object ports: {ns}"),
    );

    // Statistics.
    let mut t = String::new();
    let row = |t: &mut String, a: &str, b: String| {
        let _ = writeln!(t, "  {a:<44} {b:>14}");
    };
    let _ = writeln!(t, "\n-- statistics --");
    row(&mut t, "mode", report.mode.clone());
    row(
        &mut t,
        "faults (missing + write-protect)",
        ks.faults.to_string(),
    );
    row(
        &mut t,
        "  write-protect faults (page became dirty)",
        ks.wp_faults.to_string(),
    );
    row(
        &mut t,
        "zero fills in the kernel (no message)",
        ks.zero_fill_local.to_string(),
    );
    row(
        &mut t,
        "zero fills after data_unavailable",
        ks.zero_fill_unavailable.to_string(),
    );
    row(
        &mut t,
        "pageins (data_supply for a fault)",
        ks.pageins.to_string(),
    );
    row(
        &mut t,
        "read-ahead pages installed",
        ks.read_ahead_installed.to_string(),
    );
    row(&mut t, "pageouts (data_return)", ks.pageouts.to_string());
    row(
        &mut t,
        "clean pages dropped without a message",
        ks.clean_evictions.to_string(),
    );
    row(&mut t, "EEXIST (already present)", ks.eexist.to_string());
    row(
        &mut t,
        "peak resident pages (RAM pages)",
        format!("{} ({})", ks.resident_peak, k.ram_pages()),
    );
    let _ = writeln!(t, "  messages:");
    for (name, n) in messages(&ks, Some(&ps)) {
        row(&mut t, &format!("  {name}"), n.to_string());
    }
    row(
        &mut t,
        "  memory_object_data_error",
        ks.memory_object_data_error.to_string(),
    );
    row(
        &mut t,
        "fault latency p50 / p99 (read phase)",
        format!(
            "{:.1} / {:.1} µs",
            lat.p50_ns as f64 / 1000.0,
            lat.p99_ns as f64 / 1000.0
        ),
    );
    row(
        &mut t,
        "write throughput",
        format!(
            "{:.0} MiB/s",
            mib(written.load(Ordering::Relaxed) * PAGE as u64) / write_time.as_secs_f64().max(1e-9)
        ),
    );
    row(
        &mut t,
        "read+verify throughput",
        format!(
            "{:.0} MiB/s",
            mib((total_pages * PAGE) as u64) / read_time.as_secs_f64().max(1e-9)
        ),
    );
    row(
        &mut t,
        "paging space free before / after",
        format!("{:.0} / {:.0} MiB", mib(free_before), mib(free_after)),
    );
    row(
        &mut t,
        "pages verified / mismatches",
        format!("{total_pages} / {mism}"),
    );
    row(
        &mut t,
        "pager: pages in / out / unavailable",
        format!(
            "{} / {} / {}",
            ps.pages_in, ps.pages_out, ps.pages_unavailable
        ),
    );
    row(
        &mut t,
        "pager: seqno waits / rejected",
        format!("{} / {}", ps.wait_seqno, ps.rejected),
    );
    row(
        &mut t,
        "total time",
        format!("{:.2} s", report.elapsed.as_secs_f64()),
    );
    let _ = write!(out, "{t}");
    drop(sys);
    if o.json {
        w(out, json(&report));
    }
    let _ = out.flush();
    Ok(report)
}

/// The message counts of the JSON output: what the kernel sent and received, and the
/// no-senders notifications the pager received.
pub fn messages(ks: &KernelStats, ps: Option<&default_pager::Stats>) -> Vec<(&'static str, u64)> {
    vec![
        ("memory_object_create", ks.memory_object_create),
        ("memory_object_data_request", ks.memory_object_data_request),
        (
            "memory_object_data_unavailable",
            ks.memory_object_data_unavailable,
        ),
        ("memory_object_data_supply", ks.memory_object_data_supply),
        ("memory_object_data_return", ks.memory_object_data_return),
        (
            "memory_object_data_initialize",
            ks.memory_object_data_initialize,
        ),
        ("memory_object_terminate", ks.memory_object_terminate),
        ("no_senders", ps.map_or(0, |p| p.messages.no_senders)),
    ]
}

/// The report as one JSON object (no dependencies: the fields are numbers and plain words).
pub fn json(r: &Report) -> String {
    let mut s = String::from("{");
    let _ = write!(s, "\"mode\":\"{}\",\"messages\":{{", r.mode);
    let m = messages(&r.kernel, r.pager.as_ref());
    for (i, (k, v)) in m.iter().enumerate() {
        let _ = write!(s, "{}\"{k}\":{v}", if i > 0 { "," } else { "" });
    }
    let _ = write!(
        s,
        "}},\"pages_verified\":{},\"mismatches\":{},\"paging_total\":{},\"paging_free_before\":{},\"paging_free_after\":{},\"faults\":{},\"zero_fills\":{},\"pageins\":{},\"pageouts\":{},\"pages_past_size_hint\":{},\"elapsed_ms\":{}}}",
        r.pages_verified,
        r.mismatches,
        r.paging_total,
        r.paging_free_before,
        r.paging_free_after,
        r.kernel.faults,
        r.kernel.zero_fill_local + r.kernel.zero_fill_unavailable,
        r.kernel.pageins,
        r.kernel.pageouts,
        r.grew_past_hint.map_or(0, |g| g.1),
        r.elapsed.as_millis()
    );
    s
}

/// Checks the default run's promises (used by the binary's exit status and the tests).
pub fn check(r: &Report) -> Result<(), String> {
    let mut bad = Vec::new();
    for (k, v) in messages(&r.kernel, r.pager.as_ref()) {
        if v == 0 && k != "memory_object_data_initialize" {
            bad.push(format!("no {k}"));
        }
    }
    if r.mismatches != 0 {
        bad.push(format!("{} mismatches", r.mismatches));
    }
    if r.paging_free_after != r.paging_free_before {
        bad.push("paging space not all back".into());
    }
    if r.coalesce {
        if !r.trace_coalesced {
            bad.push("no object_coalesced in the trace".into());
        }
        match r.grew_past_hint {
            Some((_, n)) if n > 0 => {}
            _ => bad.push("the object did not grow past its size hint in the pager".into()),
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join(", "))
    }
}

#[allow(dead_code)]
fn _uses(_: &EmuTask) {}
