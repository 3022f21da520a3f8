//! Running task code that may take a memory fault (SIGBUS after `memory_object_data_error`
//! or a fault timeout, SIGSEGV after `vm_deallocate`), without fork: the code runs in a
//! fresh thread; a process-wide handler for SIGBUS and SIGSEGV recognises that thread,
//! records the signal and the faulting address, and ends *only that thread* (the `exit`
//! system call, not `exit_group`). Signals from any other thread go to the handler that was
//! installed before (Rust's stack-overflow handler, or the default action).
//!
//! The thread that faulted never unwinds: whatever it owned is leaked (its stack, its
//! closure). Task code run this way should hold no locks while it touches task memory.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// A memory fault caught in a guarded thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caught {
    /// `SIGBUS` or `SIGSEGV`.
    pub signal: i32,
    /// The faulting address (`si_addr`).
    pub addr: usize,
}

impl Caught {
    pub fn signal_name(&self) -> &'static str {
        match self.signal {
            libc::SIGBUS => "SIGBUS",
            libc::SIGSEGV => "SIGSEGV",
            _ => "signal",
        }
    }
}

/// How a guarded run ended.
#[derive(Debug)]
pub enum Outcome<R> {
    /// The code returned.
    Completed(R),
    /// The thread took a memory fault and was ended.
    Fault(Caught),
    /// Neither within the time limit (the thread is left running).
    TimedOut,
    /// The code panicked.
    Panicked,
}

#[derive(Default)]
struct Slot {
    fired: AtomicBool,
    signal: AtomicI32,
    addr: AtomicUsize,
}

thread_local! {
    static ARMED: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

struct Old {
    bus: libc::sigaction,
    segv: libc::sigaction,
}

// SAFETY: plain C structures written once before any handler runs, then only read.
unsafe impl Sync for Old {}
unsafe impl Send for Old {}

static OLD: OnceLock<Old> = OnceLock::new();

extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let slot = ARMED.with(|a| a.get());
    if !slot.is_null() {
        // SAFETY: `slot` points into an `Arc<Slot>` the guarded closure keeps alive (it is
        // never dropped once the thread ends here); `info` is the kernel's siginfo.
        unsafe {
            let addr = (*info).si_addr() as usize;
            (*slot).signal.store(sig, Ordering::SeqCst);
            (*slot).addr.store(addr, Ordering::SeqCst);
            (*slot).fired.store(true, Ordering::SeqCst);
            // End this thread only: async-signal-safe, no unwinding.
            libc::syscall(libc::SYS_exit, 0);
        }
    }
    // Not a guarded thread: chain to the previous handler.
    let Some(old) = OLD.get() else { return };
    let prev = if sig == libc::SIGBUS {
        &old.bus
    } else {
        &old.segv
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // SAFETY: restoring the default action; returning re-executes the faulting
        // instruction, which now kills the process as it would have without us.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this type.
        let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler of type `fn(i32)`.
        let f: extern "C" fn(i32) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

fn install() {
    OLD.get_or_init(|| {
        // SAFETY: sigaction with a valid handler; the old actions are saved for chaining.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut bus: libc::sigaction = std::mem::zeroed();
            let mut segv: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGBUS, &sa, &mut bus);
            libc::sigaction(libc::SIGSEGV, &sa, &mut segv);
            Old { bus, segv }
        }
    });
}

/// Runs `f` in a new thread; a SIGBUS or SIGSEGV in that thread ends it and is reported as
/// [`Outcome::Fault`]. Waits at most `timeout`.
pub fn run_guarded<R, F>(timeout: Duration, f: F) -> Outcome<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    install();
    let slot = Arc::new(Slot::default());
    let (tx, rx) = mpsc::channel();
    let s2 = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("guarded-task".into())
        .spawn(move || {
            ARMED.with(|a| a.set(Arc::as_ptr(&s2)));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            ARMED.with(|a| a.set(std::ptr::null()));
            let _ = tx.send(r.ok());
            drop(s2);
        });
    if spawned.is_err() {
        return Outcome::Panicked;
    }
    let deadline = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(Some(r)) => return Outcome::Completed(r),
            Ok(None) => return Outcome::Panicked,
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if slot.fired.load(Ordering::SeqCst) {
            return Outcome::Fault(Caught {
                signal: slot.signal.load(Ordering::SeqCst),
                addr: slot.addr.load(Ordering::SeqCst),
            });
        }
        if Instant::now() >= deadline {
            return Outcome::TimedOut;
        }
    }
}
