//! Paging stores: full store, write and read errors, checksums, a file store, read-ahead.

mod common;

use common::*;
use default_pager::{BackingStore, Config, FileStore, MemStore, StoreError};
use mig_runtime::KernReturn;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A store the test can still reach after handing it to the pager.
struct Shared(Arc<MemStore>);

impl BackingStore for Shared {
    fn blocks(&self) -> u64 {
        self.0.blocks()
    }
    fn read_block(&self, b: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.0.read_block(b, buf)
    }
    fn write_block(&self, b: u64, d: &[u8]) -> Result<(), StoreError> {
        self.0.write_block(b, d)
    }
}

/// Paging space full: the data_return that finds no free block loses only that page; the
/// next data_request for it gets data_error (KERN_RESOURCE_SHORTAGE) while the object's
/// other pages are still supplied (per-page granularity, where the Hurd fails the whole
/// object). After a store is added at run time, the page is stored again by its next
/// data_return and comes back intact.
#[test]
fn full_store_loses_one_page_then_recovers_when_space_is_added() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(MemStore::new(4), cfg(2));
    let o = k.create(8 * PSU);
    for pg in 0..4u64 {
        k.data_return(&o, pg * PSU, &pattern(20, pg, 0));
    }
    // (Writes admitted together allocate in parallel: fill the store first so that the
    // page that finds it full is known.)
    wait_until("writes", || p.stats().pages_out == 4);
    k.data_return(&o, 4 * PSU, &pattern(20, 4, 0));
    k.data_request(&o, 4 * PSU, PSU);
    assert_eq!(
        k.expect_error(&o, 4 * PSU),
        (PSU, KernReturn::KERN_RESOURCE_SHORTAGE.0)
    );
    for pg in 0..4u64 {
        k.data_request(&o, pg * PSU, PSU);
        k.expect_supply(&o, pg * PSU, &pattern(20, pg, 0));
    }
    let s = p.stats();
    assert_eq!((s.no_space, s.pages_lost, s.paging_free), (1, 1, 0));
    // The lost page is not listed as stored.
    let port = p.core().object_ports()[0].1;
    assert_eq!(p.core().object_pages(port).unwrap().len(), 4);
    // Still lost until written again.
    k.data_request(&o, 4 * PSU, PSU);
    k.expect_error(&o, 4 * PSU);
    // Recovery: more space, then the page is paged out again.
    p.add_store(MemStore::new(4)).unwrap();
    assert_eq!(p.stats().paging_total, 8 * PSU);
    let again = pattern(20, 4, 1);
    k.data_return(&o, 4 * PSU, &again);
    k.data_request(&o, 4 * PSU, PSU);
    k.expect_supply(&o, 4 * PSU, &again);
    assert_eq!(p.stats().paging_free, 3 * PSU);
    k.terminate(o);
    wait_until("freed", || p.stats().objects_freed == 1);
    assert_eq!(p.stats().paging_free, p.stats().paging_total);
}

/// A store write error loses that page only (data_error KERN_FAILURE on its next request),
/// not the object's other pages nor other objects' pages; the failed block goes back to
/// the free pool.
#[test]
fn write_errors_are_per_page() {
    let k = Kern::new();
    let store = TestStore::new(MemStore::new(16));
    let fail = store.fail_writes.clone();
    let (_t, p, _rec) = k.pager(store, cfg(2));
    let a = k.create(4 * PSU);
    let b = k.create(4 * PSU);
    k.data_return(&a, 0, &pattern(21, 0, 0));
    k.data_return(&b, 0, &pattern(22, 0, 0));
    wait_until("writes", || p.stats().pages_out == 2);
    fail.store(true, Ordering::SeqCst);
    k.data_return(&a, PSU, &pattern(21, 1, 0));
    wait_until("failed write", || p.stats().write_errors == 1);
    fail.store(false, Ordering::SeqCst);
    k.data_request(&a, PSU, PSU);
    assert_eq!(k.expect_error(&a, PSU), (PSU, KernReturn::KERN_FAILURE.0));
    k.data_request(&a, 0, PSU);
    k.expect_supply(&a, 0, &pattern(21, 0, 0));
    k.data_request(&b, 0, PSU);
    k.expect_supply(&b, 0, &pattern(22, 0, 0));
    assert_eq!(p.stats().paging_free, 14 * PSU);
}

/// Checksums are verified at read-in: a block changed on the store behind the pager's back
/// is answered with data_error (KERN_MEMORY_ERROR), never supplied.
#[test]
fn corrupted_blocks_are_not_supplied() {
    let k = Kern::new();
    let mem = Arc::new(MemStore::new(8));
    let (_t, p, _rec) = k.pager(Shared(mem.clone()), cfg(2));
    let o = k.create(4 * PSU);
    k.data_return(&o, 0, &pattern(23, 0, 0));
    wait_until("write", || p.stats().pages_out == 1);
    assert!(mem.corrupt(0, 1234));
    k.data_request(&o, 0, PSU);
    assert_eq!(
        k.expect_error(&o, 0),
        (PSU, KernReturn::KERN_MEMORY_ERROR.0)
    );
    assert_eq!(p.stats().checksum_errors, 1);
}

/// The paging file (`FileStore`): round trips through a real file, and free space is back
/// after terminate.
#[test]
fn file_store_round_trip() {
    let path = std::env::temp_dir().join(format!("default-pager-test-{}.swap", std::process::id()));
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(FileStore::create(&path, 64 * PSU).unwrap(), cfg(3));
    let o = k.create(16 * PSU);
    for pg in 0..16u64 {
        k.data_return(&o, pg * PSU, &pattern(24, pg, 0));
    }
    for pg in (0..16u64).rev() {
        k.data_request(&o, pg * PSU, PSU);
        k.expect_supply(&o, pg * PSU, &pattern(24, pg, 0));
    }
    k.terminate(o);
    wait_until("freed", || p.stats().objects_freed == 1);
    assert_eq!(p.stats().paging_free, 64 * PSU);
    drop(p);
    let _ = std::fs::remove_file(&path);
}

/// Read-ahead (off by default): with `read_ahead = 3`, a request for a stored page is
/// answered with one data_supply covering it and up to three following stored pages,
/// stopping at the first page not stored; a page never written is still unavailable.
#[test]
fn read_ahead_supplies_following_stored_pages() {
    let k = Kern::new();
    let (_t, p, _rec) = k.pager(
        MemStore::new(16),
        Config {
            object_threads: 2,
            read_ahead: 3,
            ..Config::default()
        },
    );
    let o = k.create(16 * PSU);
    for pg in [1u64, 2, 3, 4, 5, 8, 9] {
        k.data_return(&o, pg * PSU, &pattern(25, pg, 0));
    }
    // Read-ahead takes only pages with no write in flight (it never waits for them).
    wait_until("writes", || p.stats().pages_out == 7);
    k.data_request(&o, PSU, PSU);
    let want: Vec<u8> = (1..5).flat_map(|pg| pattern(25, pg, 0)).collect();
    k.expect_supply(&o, PSU, &want);
    k.data_request(&o, 8 * PSU, PSU);
    let want: Vec<u8> = (8..10).flat_map(|pg| pattern(25, pg, 0)).collect();
    k.expect_supply(&o, 8 * PSU, &want);
    k.data_request(&o, 6 * PSU, PSU);
    k.expect_unavailable(&o, 6 * PSU);
    let s = p.stats();
    assert_eq!((s.pages_in, s.pages_read_ahead, s.data_supply), (6, 4, 2));
}
