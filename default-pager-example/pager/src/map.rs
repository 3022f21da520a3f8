//! An object's block map: for every page that was ever written, where it is stored (and its
//! checksum) or why it was lost. Pages not in the map were never written: the pager answers
//! `memory_object_data_unavailable` for them and never lists them.
//!
//! The map is sparse and two-level like the Hurd's (leaves of 64 pages, allocated on the
//! first write into their range), but its top level is an ordered map rather than an array,
//! so any offset the kernel sends is cheap: an object may grow far past its creation size
//! (the size given to `memory_object_create` is only a hint) without the pager reserving
//! anything for the gap.

use crate::space::BlockAddr;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mig_runtime::KernReturn;

/// Pages per leaf.
pub const LEAF_PAGES: u64 = 64;

/// What the map knows about one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Slot {
    /// Never written (or freed).
    #[default]
    Absent,
    /// Written and stored in `addr`; `sum` is the checksum of its contents.
    Stored { addr: BlockAddr, sum: u32 },
    /// Written, but the data could not be kept (no space, write error, bad checksum): the
    /// next request gets `memory_object_data_error` with this code, until the page is
    /// written again.
    Lost(KernReturn),
}

struct Leaf {
    slots: [Slot; LEAF_PAGES as usize],
    used: u32,
}

/// The block map of one object.
#[derive(Default)]
pub struct BlockMap {
    leaves: BTreeMap<u64, Box<Leaf>>,
    stored: u64,
    lost: u64,
}

impl BlockMap {
    pub fn new() -> BlockMap {
        BlockMap::default()
    }

    /// The slot of page `page` (page index = offset / page size).
    pub fn get(&self, page: u64) -> Slot {
        self.leaves
            .get(&(page / LEAF_PAGES))
            .map(|l| l.slots[(page % LEAF_PAGES) as usize])
            .unwrap_or(Slot::Absent)
    }

    /// Sets the slot of `page`; returns the previous one.
    pub fn set(&mut self, page: u64, slot: Slot) -> Slot {
        let key = page / LEAF_PAGES;
        let i = (page % LEAF_PAGES) as usize;
        let old = match self.leaves.get_mut(&key) {
            Some(leaf) => {
                let old = core::mem::replace(&mut leaf.slots[i], slot);
                match (old == Slot::Absent, slot == Slot::Absent) {
                    (true, false) => leaf.used += 1,
                    (false, true) => leaf.used -= 1,
                    _ => {}
                }
                if leaf.used == 0 {
                    self.leaves.remove(&key);
                }
                old
            }
            None if slot == Slot::Absent => Slot::Absent,
            None => {
                let mut leaf = Box::new(Leaf {
                    slots: [Slot::Absent; LEAF_PAGES as usize],
                    used: 1,
                });
                leaf.slots[i] = slot;
                self.leaves.insert(key, leaf);
                Slot::Absent
            }
        };
        self.account(old, -1);
        self.account(slot, 1);
        old
    }

    fn account(&mut self, s: Slot, d: i64) {
        match s {
            Slot::Stored { .. } => self.stored = self.stored.wrapping_add_signed(d),
            Slot::Lost(_) => self.lost = self.lost.wrapping_add_signed(d),
            Slot::Absent => {}
        }
    }

    /// Pages holding data.
    pub fn stored_pages(&self) -> u64 {
        self.stored
    }

    /// Pages whose data was lost.
    pub fn lost_pages(&self) -> u64 {
        self.lost
    }

    /// Indices of the pages holding data, in order.
    pub fn stored_page_indices(&self) -> Vec<u64> {
        let mut v = Vec::with_capacity(self.stored as usize);
        for (k, leaf) in &self.leaves {
            for (i, s) in leaf.slots.iter().enumerate() {
                if matches!(s, Slot::Stored { .. }) {
                    v.push(k * LEAF_PAGES + i as u64);
                }
            }
        }
        v
    }

    /// Empties the map, returning every block it held.
    pub fn take_blocks(&mut self) -> Vec<BlockAddr> {
        let mut v = Vec::with_capacity(self.stored as usize);
        for leaf in core::mem::take(&mut self.leaves).into_values() {
            for s in leaf.slots.iter() {
                if let Slot::Stored { addr, .. } = s {
                    v.push(*addr);
                }
            }
        }
        self.stored = 0;
        self.lost = 0;
        v
    }

    /// Leaves allocated (for footprint statistics).
    pub fn leaves(&self) -> usize {
        self.leaves.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(b: u64) -> Slot {
        Slot::Stored {
            addr: BlockAddr { part: 0, block: b },
            sum: b as u32,
        }
    }

    #[test]
    fn sparse_map_grows_and_shrinks() {
        let mut m = BlockMap::new();
        assert_eq!(m.get(u64::MAX / 4096), Slot::Absent);
        assert_eq!(m.set(5, st(1)), Slot::Absent);
        assert_eq!(m.set(1 << 40, st(2)), Slot::Absent);
        assert_eq!(
            m.set(70, Slot::Lost(KernReturn::KERN_FAILURE)),
            Slot::Absent
        );
        assert_eq!(m.leaves(), 3);
        assert_eq!((m.stored_pages(), m.lost_pages()), (2, 1));
        assert_eq!(m.stored_page_indices(), alloc::vec![5, 1 << 40]);
        assert_eq!(m.set(5, st(9)), st(1));
        assert_eq!(
            m.set(70, Slot::Absent),
            Slot::Lost(KernReturn::KERN_FAILURE)
        );
        assert_eq!(m.leaves(), 2);
        assert_eq!(m.set(71, Slot::Absent), Slot::Absent);
        assert_eq!(m.leaves(), 2);
        let mut b = m.take_blocks();
        b.sort();
        assert_eq!(
            b,
            alloc::vec![
                BlockAddr { part: 0, block: 2 },
                BlockAddr { part: 0, block: 9 }
            ]
        );
        assert_eq!((m.stored_pages(), m.leaves()), (0, 0));
    }
}
