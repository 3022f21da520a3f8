//! Message counts seen at the trap: every message this task sends (by request id, through
//! `mach_trap`'s send observer) and receives on its server ports (by id), independently of
//! the pager core's own counters.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

const SLOTS: usize = 128;

/// A small id → count table (open addressing; ids never 0 here… 0 is "empty").
pub struct IdCounts {
    ids: [AtomicI32; SLOTS],
    counts: [AtomicU64; SLOTS],
}

impl IdCounts {
    pub const fn new() -> IdCounts {
        IdCounts {
            ids: [const { AtomicI32::new(0) }; SLOTS],
            counts: [const { AtomicU64::new(0) }; SLOTS],
        }
    }

    pub fn bump(&self, id: i32) {
        let key = if id == 0 { i32::MIN } else { id };
        let mut i = (key as u32 as usize).wrapping_mul(2654435761) % SLOTS;
        for _ in 0..SLOTS {
            match self.ids[i].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.counts[i].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(k) if k == key => {
                    self.counts[i].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(_) => i = (i + 1) % SLOTS,
            }
        }
    }

    pub fn get(&self, id: i32) -> u64 {
        let key = if id == 0 { i32::MIN } else { id };
        (0..SLOTS)
            .find(|&i| self.ids[i].load(Ordering::Acquire) == key)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Every (id, count), sorted by id.
    pub fn entries(&self) -> alloc::vec::Vec<(i32, u64)> {
        let mut v: alloc::vec::Vec<(i32, u64)> = (0..SLOTS)
            .filter_map(|i| match self.ids[i].load(Ordering::Acquire) {
                0 => None,
                k => Some((
                    if k == i32::MIN { 0 } else { k },
                    self.counts[i].load(Ordering::Relaxed),
                )),
            })
            .collect();
        v.sort_unstable();
        v
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Messages this task sent, by id.
pub static SENT: IdCounts = IdCounts::new();
/// Messages this task received on its server ports, by id.
pub static RECEIVED: IdCounts = IdCounts::new();

/// Counts a sent message (installed with `mach_trap::transport::observe_sends`).
pub fn note_sent(id: i32) {
    SENT.bump(id);
}
