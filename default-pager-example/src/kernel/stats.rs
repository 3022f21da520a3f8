//! The emulated kernel's counters (GNU Mach's `vm_statistics` names where there is one), a
//! fault-latency histogram, and the protocol trace.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

macro_rules! counters {
    ($( $(#[$m:meta])* $name:ident ),* $(,)?) => {
        /// Live counters (atomics).
        #[derive(Default)]
        pub struct Counters { $( $(#[$m])* pub $name: AtomicU64, )* }
        /// A snapshot of [`Counters`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct KernelStats { $( $(#[$m])* pub $name: u64, )* }
        impl Counters {
            pub fn snapshot(&self) -> KernelStats {
                KernelStats { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
        impl KernelStats {
            /// Every counter with its name.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
}

counters! {
    /// Page faults handled (missing-page and write-protect faults; software faults in the
    /// portable mode).
    faults,
    /// Write-protect faults (first write to a clean page: the page becomes dirty).
    wp_faults,
    /// Pages zero-filled by the kernel itself (no pager, or the existence map says the
    /// pager has nothing), GNU Mach's `zero_fill_count` without the pager's share.
    zero_fill_local,
    /// Pages zero-filled after `memory_object_data_unavailable`.
    zero_fill_unavailable,
    /// Pages installed from `memory_object_data_supply` for a fault (`pageins`).
    pageins,
    /// Unrequested pages installed from a `data_supply` (read-ahead).
    read_ahead_installed,
    /// Supplied pages not installed (already resident, stale read-ahead, over budget).
    supply_ignored,
    /// Supplied pages refused because the pager may have read them before a later
    /// `data_return` (the page was requested again).
    stale_rerequests,
    /// `data_return`s sent (`pageouts`).
    pageouts,
    /// Clean pages dropped without a message.
    clean_evictions,
    /// `EEXIST` from an install: the page was already there (`KERN_MEMORY_PRESENT`).
    eexist,
    /// Pages poisoned after `memory_object_data_error` (the task takes SIGBUS).
    data_errors,
    /// Faults that timed out waiting for the pager (watchdog).
    fault_timeouts,
    /// Faults failed because the pager's port is dead or a send failed.
    pager_failures,
    /// Calls from a pager the kernel refused (bad port, bad offset or size, malformed
    /// message).
    bad_pager_calls,
    /// Faults that waited for the pageout daemon (memory budget exhausted).
    memory_waits,
    // Messages the kernel sent.
    memory_object_create,
    memory_object_data_request,
    memory_object_data_return,
    memory_object_data_initialize,
    memory_object_terminate,
    memory_object_supply_completed,
    memory_object_lock_completed,
    memory_object_change_completed,
    // Calls the kernel received on control ports.
    memory_object_data_supply,
    memory_object_data_unavailable,
    memory_object_data_error,
    memory_object_ready,
    memory_object_change_attributes,
    memory_object_lock_request,
    memory_object_destroy,
    memory_object_get_attributes,
    // Host and task ports.
    vm_set_default_memory_manager,
    mach_port_calls,
    // Objects.
    objects_created,
    objects_terminated,
    objects_coalesced,
    /// Pages the emulated RAM held at most.
    resident_peak,
    /// Time (ns, summed over answered requests) from the fault to its `data_request` being
    /// queued: the kernel's own share.
    t_request_ns,
    /// … from the request queued to the pager's answer reaching a kernel thread: the pager
    /// and two IPC hops.
    t_pager_ns,
    /// … from the answer to the page installed (`UFFDIO_*`): the install's share.
    t_install_ns,
    /// Requests answered (the divisor of the three sums above).
    t_answered,
}

/// Fault latency (fault seen → page installed) in a log-linear histogram of microseconds.
pub struct Latency {
    buckets: Vec<AtomicU64>,
}

const SUB: usize = 8;
const BUCKETS: usize = 40 * SUB;

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    // 8 sub-buckets per power of two of nanoseconds.
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros() as usize; // >= 3
    let sub = ((ns >> (exp - 3)) & 7) as usize;
    ((exp - 2) * SUB + sub).min(BUCKETS - 1)
}

fn bucket_floor(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let exp = b / SUB + 2;
    let sub = (b % SUB) as u64;
    (8 + sub) << (exp - 3)
}

impl Latency {
    pub fn record_ns(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
    }
    pub fn clear(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }
    /// Count, p50, p90, p99, max (nanoseconds, bucket floors).
    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let q = |f: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let want = ((total as f64) * f).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (i, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= want {
                    return bucket_floor(i);
                }
            }
            0
        };
        let max = counts.iter().rposition(|&c| c > 0).map_or(0, bucket_floor);
        LatencySummary {
            count: total,
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            max_ns: max,
        }
    }
}

/// Quantiles of [`Latency`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Who sent a traced message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The kernel to a memory manager.
    ToPager,
    /// A memory manager to the kernel (control port, host port).
    ToKernel,
    /// Kernel-internal events worth showing (object created, coalesced, fault errors).
    Note,
}

/// One traced message.
#[derive(Clone, Debug)]
pub struct TraceEntry {
    /// Microseconds since the kernel started.
    pub t_us: u64,
    pub dir: Dir,
    pub kind: &'static str,
    /// The kernel's object id (0 if none).
    pub object: u64,
    pub text: String,
}

impl TraceEntry {
    pub fn line(&self) -> String {
        let arrow = match self.dir {
            Dir::ToPager => "kernel → pager ",
            Dir::ToKernel => "pager  → kernel",
            Dir::Note => "kernel note    ",
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "{:>10.3} ms  {arrow}  {:<34} obj {:<3} {}",
            self.t_us as f64 / 1000.0,
            self.kind,
            self.object,
            self.text
        );
        s
    }
}

/// The protocol trace: the first `per_kind` messages of each kind are kept; with `live`,
/// every message is also printed to standard error as it happens.
pub struct Trace {
    start: Instant,
    per_kind: usize,
    live: bool,
    inner: Mutex<TraceInner>,
}

#[derive(Default)]
struct TraceInner {
    kept: Vec<TraceEntry>,
    seen: Vec<(&'static str, usize)>,
}

impl Trace {
    pub fn new(start: Instant, per_kind: usize, live: bool) -> Trace {
        Trace {
            start,
            per_kind,
            live,
            inner: Mutex::new(TraceInner::default()),
        }
    }

    /// Whether `kind` still needs entries (cheap check before formatting).
    pub fn wants(&self, kind: &'static str) -> bool {
        if self.live {
            return true;
        }
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.seen
            .iter()
            .find(|(k, _)| *k == kind)
            .is_none_or(|(_, n)| *n < self.per_kind)
    }

    pub fn record(&self, dir: Dir, kind: &'static str, object: u64, text: impl FnOnce() -> String) {
        if !self.wants(kind) {
            return;
        }
        let e = TraceEntry {
            t_us: self.start.elapsed().as_micros() as u64,
            dir,
            kind,
            object,
            text: text(),
        };
        if self.live {
            eprintln!("[trace] {}", e.line());
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = match g.seen.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                g.seen.push((kind, 1));
                1
            }
        };
        if n <= self.per_kind {
            g.kept.push(e);
        }
    }

    /// The kept entries in time order.
    pub fn entries(&self) -> Vec<TraceEntry> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = g.kept.clone();
        v.sort_by_key(|e| e.t_us);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let l = Latency::default();
        for i in 1..=1000u64 {
            l.record_ns(i * 1000);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!(s.p50_ns >= 440_000 && s.p50_ns <= 512_000, "{s:?}");
        assert!(s.p99_ns >= 896_000 && s.p99_ns <= 1_000_000, "{s:?}");
        for ns in [0u64, 1, 7, 8, 9, 100, 12345, u64::MAX / 2] {
            let b = bucket_of(ns);
            assert!(bucket_floor(b) <= ns, "{ns} {b}");
        }
    }
}
