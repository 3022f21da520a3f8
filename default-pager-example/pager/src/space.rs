//! The paging space: every store the pager was given (a "partition" in the Hurd's words),
//! each with a bitmap of free blocks. Blocks are allocated first-fit, starting from a hint
//! that moves back whenever a block below it is freed, so allocation stays cheap on average
//! and the lowest free block is always found.
//!
//! Stores can be added at any time ([`PagingSpace::add`]): that is how the pager recovers
//! from "paging space full".

use crate::platform::{Lock, Platform};
use crate::store::BackingStore;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A block on a store: `(store index, block number)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockAddr {
    pub part: u16,
    pub block: u64,
}

/// Blocks per store are limited to 2^48 (an exabyte of 4 KiB pages).
pub const MAX_BLOCKS: u64 = 1 << 48;
/// At most this many stores.
pub const MAX_PARTS: usize = u16::MAX as usize;

struct Part {
    store: Arc<dyn BackingStore>,
    bits: Vec<u64>,
    blocks: u64,
    free: u64,
    /// No free block below word `hint`.
    hint: usize,
}

impl Part {
    fn new(store: Arc<dyn BackingStore>) -> Part {
        let blocks = store.blocks().min(MAX_BLOCKS);
        let words = blocks.div_ceil(64) as usize;
        let mut bits = alloc::vec![0u64; words];
        // Blocks past the end of the last word are marked used.
        let tail = blocks % 64;
        if tail != 0 {
            if let Some(last) = bits.last_mut() {
                *last = !0u64 << tail;
            }
        }
        Part {
            store,
            bits,
            blocks,
            free: blocks,
            hint: 0,
        }
    }

    fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        for w in self.hint..self.bits.len() {
            let word = self.bits[w];
            if word != !0 {
                let bit = (!word).trailing_zeros() as u64;
                self.bits[w] |= 1 << bit;
                self.free -= 1;
                self.hint = w;
                return Some(w as u64 * 64 + bit);
            }
        }
        None
    }

    fn release(&mut self, block: u64) -> bool {
        if block >= self.blocks {
            return false;
        }
        let (w, b) = ((block / 64) as usize, block % 64);
        if self.bits[w] & (1 << b) == 0 {
            return false;
        }
        self.bits[w] &= !(1 << b);
        self.free += 1;
        self.hint = self.hint.min(w);
        true
    }
}

struct Inner {
    parts: Vec<Part>,
}

/// Total and free space, in blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceInfo {
    pub total_blocks: u64,
    pub free_blocks: u64,
    pub stores: usize,
}

/// Why a store could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddStoreError {
    /// Its block size is not the pager's page size.
    BlockSize { store: usize, pager: usize },
    /// The pager has [`MAX_PARTS`] stores already.
    TooMany,
}

/// All paging stores and their free-block bitmaps.
pub struct PagingSpace<P: Platform> {
    inner: P::Lock<Inner>,
    page_size: usize,
}

impl<P: Platform> PagingSpace<P> {
    pub fn new(page_size: usize) -> Self {
        PagingSpace {
            inner: Lock::new(Inner { parts: Vec::new() }),
            page_size,
        }
    }

    /// Adds a store; returns its index.
    pub fn add(&self, store: Arc<dyn BackingStore>) -> Result<u16, AddStoreError> {
        if store.block_size() != self.page_size {
            return Err(AddStoreError::BlockSize {
                store: store.block_size(),
                pager: self.page_size,
            });
        }
        self.inner.with(|i| {
            if i.parts.len() >= MAX_PARTS {
                return Err(AddStoreError::TooMany);
            }
            i.parts.push(Part::new(store));
            Ok((i.parts.len() - 1) as u16)
        })
    }

    /// Allocates a free block (first store with space, lowest block).
    pub fn alloc(&self) -> Option<BlockAddr> {
        self.inner.with(|i| {
            i.parts.iter_mut().enumerate().find_map(|(n, p)| {
                p.alloc().map(|block| BlockAddr {
                    part: n as u16,
                    block,
                })
            })
        })
    }

    /// Frees a block. Returns `false` if it was not allocated (a bug, reported by callers).
    pub fn release(&self, a: BlockAddr) -> bool {
        self.inner.with(|i| {
            i.parts
                .get_mut(a.part as usize)
                .is_some_and(|p| p.release(a.block))
        })
    }

    /// The store holding `a`.
    pub fn store(&self, a: BlockAddr) -> Option<Arc<dyn BackingStore>> {
        self.inner
            .with(|i| i.parts.get(a.part as usize).map(|p| Arc::clone(&p.store)))
    }

    pub fn info(&self) -> SpaceInfo {
        self.inner.with(|i| SpaceInfo {
            total_blocks: i.parts.iter().map(|p| p.blocks).sum(),
            free_blocks: i.parts.iter().map(|p| p.free).sum(),
            stores: i.parts.len(),
        })
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::SpinPlatform;
    use crate::store::MemStore;

    #[test]
    fn first_fit_alloc_release_and_growth() {
        let s: PagingSpace<SpinPlatform> = PagingSpace::new(4096);
        assert_eq!(s.alloc(), None);
        s.add(Arc::new(MemStore::new(70))).unwrap();
        let got: Vec<_> = (0..70).map(|_| s.alloc().unwrap()).collect();
        assert_eq!(got[69], BlockAddr { part: 0, block: 69 });
        assert_eq!(s.alloc(), None);
        assert!(s.release(BlockAddr { part: 0, block: 5 }));
        assert!(!s.release(BlockAddr { part: 0, block: 5 }));
        assert!(!s.release(BlockAddr { part: 0, block: 70 }));
        assert!(!s.release(BlockAddr { part: 3, block: 0 }));
        assert_eq!(s.alloc(), Some(BlockAddr { part: 0, block: 5 }));
        s.add(Arc::new(MemStore::new(1))).unwrap();
        assert_eq!(s.alloc(), Some(BlockAddr { part: 1, block: 0 }));
        assert_eq!(
            s.info(),
            SpaceInfo {
                total_blocks: 71,
                free_blocks: 0,
                stores: 2
            }
        );
        assert_eq!(
            s.add(Arc::new(MemStore::with_block_size(1, 512))),
            Err(AddStoreError::BlockSize {
                store: 512,
                pager: 4096
            })
        );
    }
}
