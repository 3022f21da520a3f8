//! Blocking: every thread that waits in the kernel (a receive on an empty queue, a send to a
//! full queue) registers its [`Waiter`] with the queue under the kernel lock, drops the lock
//! and parks. Whoever completes the wait (a sender handing over a message, a port dying…)
//! fills the waiter's slot under the kernel lock, sets its state and unparks the thread after
//! releasing the lock. A message handed to a receiver this way is already copied out into its
//! space, so the woken receiver never needs the kernel lock again. Before parking, a waiter
//! spins briefly on its flag (a round trip between two threads is usually shorter than a
//! futex sleep and wake-up), then yields a few times (so an oversubscribed machine can run the
//! thread it waits for).

use super::copyout::Prepared;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
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

/// Keeps the flag a waiter spins on away from the data its waker writes.
#[repr(align(64))]
struct Padded<T>(T);

pub(crate) struct Waiter {
    /// 0 while waiting, 1 once woken.
    state: Padded<AtomicU32>,
    /// Set (SeqCst) before the waiter parks; a waker that sees it clear after setting
    /// `state` (SeqCst) knows the waiter will see `state` before parking, so it need not
    /// unpark it.
    parking: AtomicU32,
    slot: Mutex<Option<Delivery>>,
    thread: Thread,
}

/// Before parking: SPINS busy-wait hints, checking the flag after each (a reply usually comes
/// within a microsecond or two), then YIELDS calls to `yield_now` (which let the thread we
/// wait for run when the machine is oversubscribed).
const SPINS: u32 = 64;
const YIELDS: u32 = 16;

thread_local! {
    static WAITER: Arc<Waiter> = Arc::new(Waiter {
        thread: thread::current(),
        state: Padded(AtomicU32::new(0)),
        parking: AtomicU32::new(0),
        slot: Mutex::new(None),
    });
}

impl Waiter {
    /// The calling thread's waiter, reset for a new wait.
    pub(crate) fn current() -> Arc<Waiter> {
        let w = WAITER.with(Arc::clone);
        w.state.0.store(0, Ordering::Relaxed);
        w.parking.store(0, Ordering::Relaxed);
        w
    }

    /// Marks the waiter woken with `d` (called under the kernel lock). Returns whether the
    /// thread may be parked, in which case the caller unparks it once the lock is released.
    pub(crate) fn complete(&self, d: Option<Delivery>) -> bool {
        if let Some(d) = d {
            *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
        }
        self.state.0.store(1, Ordering::SeqCst);
        self.parking.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn is_woken(&self) -> bool {
        self.state.0.load(Ordering::Acquire) != 0
    }

    pub(crate) fn take(&self) -> Option<Delivery> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(crate) fn unpark(&self) {
        self.thread.unpark();
    }

    /// Spins, then parks until woken or `deadline`. Returns whether it was woken (the caller
    /// re-checks under the kernel lock either way).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        for _ in 0..SPINS {
            if self.is_woken() {
                return true;
            }
            std::hint::spin_loop();
        }
        for _ in 0..YIELDS {
            if self.is_woken() {
                return true;
            }
            thread::yield_now();
        }
        self.parking.store(1, Ordering::SeqCst);
        if self.state.0.load(Ordering::SeqCst) != 0 {
            return true;
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
