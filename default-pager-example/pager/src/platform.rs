//! What the pager core needs from its environment to synchronise threads: a lock with
//! condition waiting. The core is written against [`Platform`] only, so the same code runs
//! with `std::sync` (feature `std`, [`StdPlatform`]), with a spin lock ([`SpinPlatform`],
//! `no_std`), or with whatever a bare GNU Mach program provides (issue 8: e.g. a spin lock
//! that yields with `thread_switch`).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A family of locks.
pub trait Platform: Send + Sync + 'static {
    /// A lock protecting a `V`, with waiting.
    type Lock<V: Send>: Lock<V>;
    /// Called by the core before I/O on a store that may block
    /// ([`crate::BackingStore::may_block`]) (and by [`Lock::wait`] implementations before
    /// they wait): the std layer then lets another object thread receive.
    fn before_block() {}
}

/// A mutual-exclusion lock around a value, with condition waiting (a mutex plus a condition
/// variable).
pub trait Lock<V>: Send + Sync {
    /// A lock holding `v`.
    fn new(v: V) -> Self;
    /// Runs `f` with the value locked.
    fn with<R>(&self, f: impl FnOnce(&mut V) -> R) -> R;
    /// Runs `f` with the value locked, again each time the lock is notified, until it
    /// returns `Some`. Gives up after about `timeout_ms` milliseconds (`None` when it did;
    /// implementations without a clock may wait forever).
    fn wait<R>(&self, timeout_ms: Option<u32>, f: impl FnMut(&mut V) -> Option<R>) -> Option<R>;
    /// Wakes every waiter so it re-evaluates its condition.
    fn notify_all(&self);
}

/// A test-and-set spin lock, usable without `std`.
pub struct SpinLock<V> {
    locked: AtomicBool,
    value: UnsafeCell<V>,
}

// SAFETY: the value is only reached through a `SpinGuard`, and at most one guard exists at a
// time (the `locked` flag is taken with Acquire and released with Release), so sharing the lock
// between threads is as safe as sending the value: `V: Send` suffices, as for `std::sync::Mutex`.
unsafe impl<V: Send> Sync for SpinLock<V> {}
// SAFETY: moving the lock moves the value; `V: Send` makes that safe.
unsafe impl<V: Send> Send for SpinLock<V> {}

/// Exclusive access to a [`SpinLock`]'s value; unlocks when dropped.
pub struct SpinGuard<'a, V> {
    lock: &'a SpinLock<V>,
}

impl<V> SpinLock<V> {
    /// A lock holding `v`.
    pub const fn new(v: V) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(v),
        }
    }

    /// Spins until the lock is free, then takes it.
    pub fn lock(&self) -> SpinGuard<'_, V> {
        loop {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return SpinGuard { lock: self };
            }
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }
}

impl<V> Deref for SpinGuard<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        // SAFETY: this guard is the only one (the flag was taken with Acquire), so no other
        // reference to the value exists while it lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<V> DerefMut for SpinGuard<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        // SAFETY: as for `deref`; `&mut self` makes this reference unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<V> Drop for SpinGuard<'_, V> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

impl<V: Send> Lock<V> for SpinLock<V> {
    fn new(v: V) -> Self {
        SpinLock::new(v)
    }
    fn with<R>(&self, f: impl FnOnce(&mut V) -> R) -> R {
        let mut g = self.lock();
        f(&mut g)
    }
    /// Spins (re-evaluating `f` between short pauses); there is no clock, so no timeout.
    fn wait<R>(
        &self,
        _timeout_ms: Option<u32>,
        mut f: impl FnMut(&mut V) -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(r) = self.with(&mut f) {
                return Some(r);
            }
            for _ in 0..64 {
                core::hint::spin_loop();
            }
        }
    }
    fn notify_all(&self) {}
}

/// Spin locks only: for `no_std` builds and single-threaded servers (where waits are always
/// satisfied at once, since messages are handled in seqno order).
pub struct SpinPlatform;

impl Platform for SpinPlatform {
    type Lock<V: Send> = SpinLock<V>;
}

#[cfg(feature = "std")]
pub use self::std_impl::{StdLock, StdPlatform};

#[cfg(feature = "std")]
mod std_impl {
    use super::{Lock, Platform};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    /// `std::sync::Mutex` plus a `Condvar`. A poisoned lock is used as is (the pager's state
    /// stays consistent at every unlock, and a panicking handler must not stop the others).
    /// `notify_all` makes no system call when no thread waits (the common case: every
    /// message notifies its object's lock once admitted and once done).
    pub struct StdLock<V> {
        m: Mutex<V>,
        cv: Condvar,
        /// Threads in `wait` between finding their condition false and waking up. Changed
        /// only with the mutex held, so a notifier that changed the state under the mutex
        /// (and so after a waiter released it) sees the waiter counted.
        waiters: AtomicUsize,
    }

    impl<V> StdLock<V> {
        fn guard(&self) -> MutexGuard<'_, V> {
            self.m.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<V: Send> Lock<V> for StdLock<V> {
        fn new(v: V) -> Self {
            StdLock {
                m: Mutex::new(v),
                cv: Condvar::new(),
                waiters: AtomicUsize::new(0),
            }
        }
        fn with<R>(&self, f: impl FnOnce(&mut V) -> R) -> R {
            f(&mut self.guard())
        }
        fn wait<R>(
            &self,
            timeout_ms: Option<u32>,
            mut f: impl FnMut(&mut V) -> Option<R>,
        ) -> Option<R> {
            let mut g = self.guard();
            if let Some(r) = f(&mut g) {
                return Some(r);
            }
            // About to wait: let another object thread receive meanwhile (the message we
            // wait for may still be queued).
            drop(g);
            crate::std_pager::before_block();
            g = self.guard();
            if let Some(r) = f(&mut g) {
                return Some(r);
            }
            let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms.into()));
            loop {
                self.waiters.fetch_add(1, Ordering::SeqCst);
                let (g2, timed_out) = match deadline {
                    None => (self.cv.wait(g).unwrap_or_else(|e| e.into_inner()), false),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            (g, true)
                        } else {
                            (
                                self.cv
                                    .wait_timeout(g, d - now)
                                    .unwrap_or_else(|e| e.into_inner())
                                    .0,
                                false,
                            )
                        }
                    }
                };
                g = g2;
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                if timed_out {
                    return None;
                }
                if let Some(r) = f(&mut g) {
                    return Some(r);
                }
            }
        }
        fn notify_all(&self) {
            if self.waiters.load(Ordering::SeqCst) != 0 {
                self.cv.notify_all();
            }
        }
    }

    /// `std::sync` locks and condition variables.
    pub struct StdPlatform;

    impl Platform for StdPlatform {
        type Lock<V: Send> = StdLock<V>;
        fn before_block() {
            crate::std_pager::before_block();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_lock_waits_and_counts() {
        let l: SpinLock<u32> = Lock::new(0);
        l.with(|v| *v += 2);
        assert_eq!(l.wait(None, |v| (*v == 2).then_some(7)), Some(7));
    }

    #[cfg(feature = "std")]
    #[test]
    fn std_lock_times_out_and_wakes() {
        let l: StdLock<u32> = Lock::new(0);
        assert_eq!(l.wait(Some(10), |v| (*v == 1).then_some(())), None);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                l.with(|v| *v = 1);
                l.notify_all();
            });
            assert_eq!(l.wait(None, |v| (*v == 1).then_some(3)), Some(3));
        });
    }
}
