//! Blocking: every thread that waits in the kernel (a receive on an empty queue, a send to a
//! full queue) registers its [`Waiter`] with the queue under the kernel lock, drops the lock
//! and waits. Whoever completes the wait (a sender handing over a message, a port dying…)
//! takes the waiter out of its queue, puts the delivery into its slot and marks it woken, all
//! under the kernel lock, and unparks the thread after releasing the lock if it went to
//! sleep. A message handed to a receiver this way is already copied out into its space, so
//! the woken receiver never needs the kernel lock again.
//!
//! A waiting thread first polls its flag (a round trip between two threads is much shorter
//! than a futex sleep and wake-up), then yields a few times (so an oversubscribed machine can
//! run the thread it waits for), then parks.
//!
//! Each thread has one waiter for its whole life, handed around as a plain `&'static Waiter`:
//! no reference count is updated per wait (that count's cache line would travel between the
//! waiting thread and its waker). A waiter is allocated once and recycled when its thread
//! exits; a thread registers its waiter only while it is inside `mach_msg` and leaves no queue
//! holding it when it returns, so a recycled waiter is never still queued.
//!
//! What a waker touches — the state and the delivery — is one cache line, and completing a
//! wait costs one atomic operation on it. The delivery slot needs no lock of its own because
//! only one thread can access it at any time (see [`Waiter::complete`]).

use super::copyout::Prepared;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread::{self, Thread};
use std::time::Instant;

/// What a woken receiver finds.
pub(crate) enum Delivery {
    /// A message handed over directly: dequeued (sequence number assigned) and already
    /// copied out into the receiver's space.
    Msg(Prepared),
    /// `MACH_RCV_TOO_LARGE` with the size of the message that did not fit (`MACH_RCV_LARGE`).
    TooLarge(u32),
    /// Another `mach_msg` error (`MACH_RCV_PORT_DIED`, `MACH_RCV_PORT_CHANGED`).
    Error(u32),
}

/// [`Waiter::state`]: waiting (spinning or yielding).
const WAITING: u32 = 0;
/// Woken: the delivery, if any, is in the slot.
const WOKEN: u32 = 1;
/// Waiting, and asleep (or about to be) in `thread::park`: the waker must unpark it.
const PARKED: u32 = 2;

/// A waiting thread's mailbox. The first cache line holds everything a waker touches.
#[repr(C, align(64))]
pub(crate) struct Waiter {
    state: AtomicU32,
    /// Owned by the waiting thread while it is not registered in any queue and once it has
    /// seen `WOKEN`; owned by the one waker that took it out of its queue in between.
    slot: UnsafeCell<Option<Delivery>>,
    /// The owning thread (changes when the waiter is recycled); used only to unpark.
    thread: Line<Mutex<Option<Thread>>>,
}

// SAFETY: `slot` is the only field without its own synchronization. Exactly one thread at a
// time may access it, handed over through `state` and the kernel lock:
// * the owning thread, in `current` (under the kernel lock, before it registers the waiter in
//   a queue: no other thread can reach the waiter then) and in `take` (after it saw `WOKEN`
//   with an acquire load, or under the kernel lock after the waker released it);
// * the waker, in `complete`: it holds the kernel lock and has just removed the waiter from
//   the queue it was registered in (so no other waker can find it), and the owner does not
//   read the slot before it sees `WOKEN`, which the waker stores (release) after its write
//   and after which it never touches the slot again.
// A waiter is registered in at most one queue at a time, and it leaves its queue (popped by
// its waker, or removed by its owner under the kernel lock when the wait times out, which
// the owner does only if it still sees no `WOKEN` under the lock) before its owner returns
// from `mach_msg`.
unsafe impl Sync for Waiter {}

// The waker's half of a waiter is one cache line.
const _: () = assert!(core::mem::offset_of!(Waiter, thread) == 64);

/// Starts a value on its own cache line.
#[repr(align(64))]
struct Line<T>(T);

/// Before parking: SPINS rounds of POLLS checks of the flag and one busy-wait hint (a reply
/// usually comes within a microsecond or two), then YIELDS calls to `yield_now` (which let the
/// thread we wait for run when the machine is oversubscribed).
const SPINS: u32 = 64;
const POLLS: u32 = 16;
const YIELDS: u32 = 16;

/// Waiters of exited threads, for reuse.
static FREE: Mutex<Vec<&'static Waiter>> = Mutex::new(Vec::new());

/// Every waiter ever allocated (so they stay reachable: they are never freed).
static ALL: Mutex<Vec<&'static Waiter>> = Mutex::new(Vec::new());

/// The calling thread's claim on a waiter; gives it back when the thread exits.
struct Claim(&'static Waiter);

impl Claim {
    fn new() -> Claim {
        let reused = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let w = reused.unwrap_or_else(|| {
            let w: &'static Waiter = Box::leak(Box::new(Waiter {
                state: AtomicU32::new(WAITING),
                slot: UnsafeCell::new(None),
                thread: Line(Mutex::new(None)),
            }));
            ALL.lock().unwrap_or_else(|e| e.into_inner()).push(w);
            w
        });
        *w.thread.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread::current());
        Claim(w)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let w = self.0;
        *w.thread.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
        // The slot keeps whatever the last wait left (nothing, or an untaken delivery): the
        // next owner's `current` drops it. The mutex hands the waiter over to that owner.
        FREE.lock().unwrap_or_else(|e| e.into_inner()).push(w);
    }
}

thread_local! {
    static WAITER: Claim = Claim::new();
}

impl Waiter {
    /// The calling thread's waiter, reset for a new wait (an untaken delivery is dropped).
    /// Called under the kernel lock, before the waiter is registered in a queue.
    pub(crate) fn current() -> &'static Waiter {
        let w = WAITER.with(|c| c.0);
        // SAFETY: the waiter is in no queue (see `impl Sync`), so this thread owns the slot;
        // its last waker released the kernel lock before this thread took it.
        let old = unsafe { (*w.slot.get()).take() };
        drop(old);
        w.state.store(WAITING, Ordering::Relaxed);
        w
    }

    /// Marks the waiter woken with `d`. Called under the kernel lock by the thread that has
    /// just taken the waiter out of the queue it was registered in. Returns whether the thread
    /// may be parked, in which case the caller unparks it once the lock is released.
    pub(crate) fn complete(&self, d: Option<Delivery>) -> bool {
        if let Some(d) = d {
            // SAFETY: we took the waiter out of its queue under the kernel lock, so no other
            // waker can reach it, and its owner reads the slot only after seeing WOKEN, which
            // is stored below (see `impl Sync`).
            unsafe { *self.slot.get() = Some(d) };
        }
        self.state.swap(WOKEN, Ordering::AcqRel) == PARKED
    }

    pub(crate) fn is_woken(&self) -> bool {
        self.state.load(Ordering::Acquire) == WOKEN
    }

    /// Takes the delivery. Only for the owning thread, once it has seen [`Waiter::is_woken`].
    pub(crate) fn take(&self) -> Option<Delivery> {
        debug_assert!(self.is_woken());
        // SAFETY: the owner saw WOKEN (acquire), after which its waker never touches the
        // slot again and no other waker can reach the waiter (see `impl Sync`).
        unsafe { (*self.slot.get()).take() }
    }

    pub(crate) fn unpark(&self) {
        if let Some(t) = &*self.thread.0.lock().unwrap_or_else(|e| e.into_inner()) {
            t.unpark();
        }
    }

    /// Polls, yields, then parks until woken or `deadline`. Returns whether it was woken (the
    /// caller re-checks under the kernel lock if not).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        for _ in 0..SPINS {
            for _ in 0..POLLS {
                if self.is_woken() {
                    return true;
                }
            }
            std::hint::spin_loop();
        }
        for _ in 0..YIELDS {
            if self.is_woken() {
                return true;
            }
            thread::yield_now();
        }
        // From now on a waker must unpark us; if it already woke us, don't sleep.
        if self
            .state
            .compare_exchange(WAITING, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return self.is_woken();
        }
        loop {
            if self.is_woken() {
                return true;
            }
            match deadline {
                None => thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.is_woken();
                    }
                    thread::park_timeout(d - now);
                }
            }
        }
    }
}
