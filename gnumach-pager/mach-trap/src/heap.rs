//! [`VmHeap`]: a small global allocator over `vm_allocate` (generated stub).
//!
//! Requests up to 64 KiB come from power-of-two size classes (16 B … 64 KiB), each a free
//! list refilled 64 KiB (or four blocks) at a time and never given back, so a page-sized
//! buffer allocated and freed per message costs no kernel call; larger requests are whole
//! pages from `vm_allocate` given back with `vm_deallocate`. A spin lock makes it safe to share between threads; the
//! allocator never allocates while holding it (the `vm_allocate` stub and the trap
//! transport do not allocate for replies without out-of-line data).
//!
//! Use it in a program with `#[global_allocator] static HEAP: VmHeap = VmHeap::new();`.

use crate::env::task_self;
use crate::kernel::mach;
use crate::transport::TrapTransport;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const PAGE: usize = 4096;
const MIN_CLASS: usize = 16;
const CLASSES: usize = 13; // 16 << 12 = 64 KiB
const MAX_SMALL: usize = MIN_CLASS << (CLASSES - 1);
/// Refill size of class `size`: 64 KiB, or four blocks for the largest classes.
const fn chunk_of(size: usize) -> usize {
    if size * 4 > 64 * 1024 {
        size * 4
    } else {
        64 * 1024
    }
}

/// A global allocator over `vm_allocate`. See the module docs.
pub struct VmHeap {
    lock: AtomicBool,
    free: UnsafeCell<[usize; CLASSES]>,
    /// Bytes obtained from the kernel and not given back.
    mapped: AtomicUsize,
}

// SAFETY: `free` is only accessed with `lock` held (acquire/release spin lock).
unsafe impl Sync for VmHeap {}

impl Default for VmHeap {
    fn default() -> Self {
        VmHeap::new()
    }
}

fn vm_allocate(len: usize) -> *mut u8 {
    match mach::client::vm_allocate(&TrapTransport, &task_self(), 0, len as u64, 1) {
        Ok(addr) => ptr::with_exposed_provenance_mut(addr as usize),
        Err(_) => ptr::null_mut(),
    }
}

fn vm_deallocate(p: *mut u8, len: usize) {
    let _ = mach::client::vm_deallocate(
        &TrapTransport,
        &task_self(),
        p.expose_provenance() as u64,
        len as u64,
    );
}

fn class_of(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align()).max(MIN_CLASS);
    if need > MAX_SMALL {
        return None;
    }
    let size = need.next_power_of_two();
    Some(size.trailing_zeros() as usize - MIN_CLASS.trailing_zeros() as usize)
}

impl VmHeap {
    /// An empty heap.
    pub const fn new() -> VmHeap {
        VmHeap {
            lock: AtomicBool::new(false),
            free: UnsafeCell::new([0; CLASSES]),
            mapped: AtomicUsize::new(0),
        }
    }

    /// Forgets every free block: for a task created as a copy of its parent's *image* only
    /// (the parent's heap regions do not exist in it), before it allocates anything.
    pub fn reset_after_fork(&self) {
        self.with_lock(|free| *free = [0; CLASSES]);
        self.mapped.store(0, Ordering::Relaxed);
    }

    /// Bytes currently obtained from the kernel.
    pub fn mapped_bytes(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    fn with_lock<R>(&self, f: impl FnOnce(&mut [usize; CLASSES]) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: we hold the lock, so this is the only reference to the free lists.
        let r = f(unsafe { &mut *self.free.get() });
        self.lock.store(false, Ordering::Release);
        r
    }
}

// SAFETY: small blocks are handed out at most once until freed (free-list discipline under
// the lock) and are aligned to at least min(class size, page size), which covers the
// layout's alignment (chunks are page-aligned, classes up to a page divide the page size,
// larger classes are page multiples; `alloc` refuses alignments above a page);
// large blocks are fresh page-aligned `vm_allocate` regions of at least `size` bytes.
unsafe impl GlobalAlloc for VmHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > PAGE {
            return ptr::null_mut();
        }
        let Some(class) = class_of(layout) else {
            let len = layout.size().div_ceil(PAGE) * PAGE;
            let p = vm_allocate(len);
            if !p.is_null() {
                self.mapped.fetch_add(len, Ordering::Relaxed);
            }
            return p;
        };
        let size = MIN_CLASS << class;
        self.with_lock(|free| {
            if free[class] == 0 {
                let chunk_len = chunk_of(size);
                let chunk = vm_allocate(chunk_len);
                if chunk.is_null() {
                    return ptr::null_mut();
                }
                self.mapped.fetch_add(chunk_len, Ordering::Relaxed);
                // Thread the chunk's blocks into the free list, last block first.
                let mut head = 0usize;
                for i in (0..chunk_len / size).rev() {
                    // SAFETY: `i * size` is inside the fresh chunk.
                    let b = unsafe { chunk.add(i * size) };
                    // SAFETY: `b` is aligned to `size` >= 16 and inside the chunk.
                    unsafe { (b as *mut usize).write(head) };
                    head = b.expose_provenance();
                }
                free[class] = head;
            }
            let b: *mut u8 = ptr::with_exposed_provenance_mut(free[class]);
            // SAFETY: `b` is a free block of this class; its first word links the list.
            free[class] = unsafe { (b as *const usize).read() };
            b
        })
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            let len = layout.size().div_ceil(PAGE) * PAGE;
            vm_deallocate(p, len);
            self.mapped.fetch_sub(len, Ordering::Relaxed);
            return;
        };
        self.with_lock(|free| {
            // SAFETY: `p` was allocated from this class (same layout), so it is aligned
            // and large enough for the link word, and nobody uses it any more.
            unsafe { (p as *mut usize).write(free[class]) };
            free[class] = p.expose_provenance();
        })
    }
}
