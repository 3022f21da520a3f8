//! The calling task's well-known ports: its own task port, and the privileged host and
//! device-master ports the boot script hands the first tasks (`${host-port}`,
//! `${device-port}`).
//!
//! Names are cached in statics: `mach_task_self()` adds a user reference on every call, so
//! it is called once. A task created with `task_create(…, inherit_memory = TRUE)` starts
//! with a *copy* of these statics but an empty IPC space: it must call
//! [`reset_after_fork`] before anything else.

use crate::trap;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::sync::atomic::{AtomicU32, Ordering};
use mig_runtime::{PortName, SendRight, SpaceId};

static TASK_SELF: AtomicU32 = AtomicU32::new(0);
static HOST_PRIV: AtomicU32 = AtomicU32::new(0);
static DEVICE_MASTER: AtomicU32 = AtomicU32::new(0);
pub(crate) static REPLY_PORT: AtomicU32 = AtomicU32::new(0);

/// A send right this module keeps: borrowed as a `&SendRight` for stubs, never released.
pub struct Borrowed(ManuallyDrop<SendRight>);

impl Borrowed {
    /// Borrows `name` (a right someone else keeps alive) as a [`SendRight`].
    pub fn new(name: PortName) -> Borrowed {
        Borrowed(ManuallyDrop::new(SendRight::from_raw(SpaceId::SELF, name)))
    }
}

impl Deref for Borrowed {
    type Target = SendRight;
    fn deref(&self) -> &SendRight {
        &self.0
    }
}

/// The calling task's own port (`mach_task_self()`, cached).
pub fn task_self() -> Borrowed {
    let mut n = TASK_SELF.load(Ordering::Relaxed);
    if n == 0 {
        n = trap::mach_task_self().0;
        TASK_SELF.store(n, Ordering::Relaxed);
    }
    Borrowed::new(PortName(n))
}

/// Records the privileged ports this task was given (from its boot arguments).
pub fn set_privileged_ports(host_priv: PortName, device_master: PortName) {
    HOST_PRIV.store(host_priv.0, Ordering::Relaxed);
    DEVICE_MASTER.store(device_master.0, Ordering::Relaxed);
}

/// The privileged host port, if this task was given one.
pub fn host_priv() -> Option<Borrowed> {
    match HOST_PRIV.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Borrowed::new(PortName(n))),
    }
}

/// The device master port, if this task was given one.
pub fn device_master() -> Option<Borrowed> {
    match DEVICE_MASTER.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Borrowed::new(PortName(n))),
    }
}

/// Forgets every cached name and fetches this task's own port again: the first call of a
/// task created as a copy of its parent (`task_create(…, TRUE)`), whose statics still hold
/// the parent's names. Names the parent inserted into the child under the same name (e.g.
/// the console) stay valid and are not touched.
pub fn reset_after_fork() {
    TASK_SELF.store(0, Ordering::Relaxed);
    HOST_PRIV.store(0, Ordering::Relaxed);
    DEVICE_MASTER.store(0, Ordering::Relaxed);
    REPLY_PORT.store(0, Ordering::Relaxed);
    let _ = task_self();
}
