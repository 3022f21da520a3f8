//! Port rights as types.
//!
//! A Mach right is a name in one task's IPC space plus a user reference the task holds. Here
//! each owned right is a value of its own type — [`SendRight`], [`SendOnceRight`],
//! [`ReceiveRight`], [`PortSet`], [`DeadName`] — that is neither `Copy` nor `Clone`:
//! passing it *by value* to a stub moves it into the message (`MOVE_SEND`, `MOVE_SEND_ONCE`,
//! `MOVE_RECEIVE`), so the compiler rejects any later use; passing it *by reference* copies
//! or makes a right (`COPY_SEND` from `&SendRight`, `MAKE_SEND`/`MAKE_SEND_ONCE` from
//! `&ReceiveRight`) and the caller keeps it.
//!
//! Dropping an owned right releases its user reference in the space it belongs to
//! (`mach_port_deallocate`, or `mach_port_mod_refs(…, -1)` for receive rights and port sets).
//! Rights know their space by a [`SpaceId`]; the environment (the userspace IPC, or a
//! program on a real kernel) installs the [`PortSpaces`] that carries out releases, once per
//! process, with [`install_port_spaces`]. Null and dead names release nothing.

use crate::wire::{type_name, KernReturn, PortName};
use core::cell::UnsafeCell;
use core::fmt;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicU8, Ordering};

/// Identifies an IPC space (a task's port name space). A real kernel has one per process
/// (use [`SpaceId::SELF`]); the userspace IPC gives every emulated task its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpaceId(pub u32);

impl SpaceId {
    /// The calling task's own space on a real kernel.
    pub const SELF: SpaceId = SpaceId(0);
}

/// The kind of right a name denotes (`MACH_PORT_RIGHT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RightKind {
    Send,
    Receive,
    SendOnce,
    PortSet,
    DeadName,
}

impl RightKind {
    /// The `MACH_PORT_RIGHT_*` number.
    pub const fn number(self) -> u32 {
        match self {
            RightKind::Send => 0,
            RightKind::Receive => 1,
            RightKind::SendOnce => 2,
            RightKind::PortSet => 3,
            RightKind::DeadName => 4,
        }
    }
    /// The kind a received descriptor name (`MACH_MSG_TYPE_PORT_*`) denotes.
    pub const fn from_received(name: u32) -> Option<RightKind> {
        match name {
            type_name::PORT_RECEIVE => Some(RightKind::Receive),
            type_name::PORT_SEND => Some(RightKind::Send),
            type_name::PORT_SEND_ONCE => Some(RightKind::SendOnce),
            _ => None,
        }
    }
}

/// What rights need from their environment: releasing a reference and copying a send right.
pub trait PortSpaces: Sync {
    /// Releases one user reference of `kind` on `name` in `space`. Must tolerate names that
    /// died meanwhile (a send right turned dead name).
    fn release(&self, space: SpaceId, name: PortName, kind: RightKind);
    /// Adds a user reference to the send right `name` (for [`SendRight::try_clone`]).
    fn add_send_ref(&self, space: SpaceId, name: PortName) -> Result<(), KernReturn>;
    /// Makes a send right for the receive right `name` (`mach_port_insert_right(…,
    /// MACH_MSG_TYPE_MAKE_SEND)`), adding a send reference under the same name.
    fn make_send(&self, space: SpaceId, name: PortName) -> Result<(), KernReturn>;
    /// Makes a send-once right for the receive right `name` under a new name
    /// (`mach_port_extract_right(…, MACH_MSG_TYPE_MAKE_SEND_ONCE)`), for
    /// [`crate::destroy::mach_msg_destroy`]. The default cannot.
    fn make_send_once(&self, _space: SpaceId, _name: PortName) -> Result<PortName, KernReturn> {
        Err(KernReturn::KERN_FAILURE)
    }
}

/// A write-once global cell usable without `std`.
struct Once<T: Copy> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

// SAFETY: `value` is written exactly once, by the thread that moved `state` from EMPTY to
// WRITING, and read only after `state` is READY (Release/Acquire pairs the write with reads).
unsafe impl<T: Copy + Send + Sync> Sync for Once<T> {}

impl<T: Copy> Once<T> {
    const fn new() -> Self {
        Once {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }
    fn set(&self, v: T) -> bool {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        // SAFETY: we won the EMPTY→WRITING transition, so no other thread writes, and
        // readers wait for READY.
        unsafe { *self.value.get() = Some(v) };
        self.state.store(READY, Ordering::Release);
        true
    }
    fn get(&self) -> Option<T> {
        if self.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY is stored after the only write (Release), observed here (Acquire).
            unsafe { *self.value.get() }
        } else {
            None
        }
    }
}

static SPACES: Once<&'static dyn PortSpaces> = Once::new();

/// Installs the process-wide [`PortSpaces`]. Returns `false` if one was installed already
/// (the first one stays).
pub fn install_port_spaces(spaces: &'static dyn PortSpaces) -> bool {
    SPACES.set(spaces)
}

/// The installed [`PortSpaces`], if any.
pub fn port_spaces() -> Option<&'static dyn PortSpaces> {
    SPACES.get()
}

fn release(space: SpaceId, name: PortName, kind: RightKind) {
    if !name.is_valid() {
        return;
    }
    if let Some(s) = SPACES.get() {
        s.release(space, name, kind);
    }
}

macro_rules! owned_right {
    ($(#[$m:meta])* $ty:ident, $kind:expr) => {
        $(#[$m])*
        #[must_use = "dropping a right releases it"]
        pub struct $ty {
            name: PortName,
            space: SpaceId,
        }

        impl $ty {
            /// Takes ownership of one reference on `name` in `space`.
            pub const fn from_raw(space: SpaceId, name: PortName) -> $ty {
                $ty { name, space }
            }
            /// The null right (`MACH_PORT_NULL`): valid in messages, releases nothing.
            pub const fn null() -> $ty {
                $ty { name: PortName::NULL, space: SpaceId(0) }
            }
            /// The name in the owning space.
            pub const fn name(&self) -> PortName {
                self.name
            }
            /// The owning space.
            pub const fn space(&self) -> SpaceId {
                self.space
            }
            /// Gives up ownership without releasing: the caller now owns the reference.
            pub fn into_raw(self) -> PortName {
                ManuallyDrop::new(self).name
            }
            /// Neither null nor dead.
            pub const fn is_valid(&self) -> bool {
                self.name.is_valid()
            }
            /// The kind of right this type holds.
            pub const KIND: RightKind = $kind;
        }

        impl Drop for $ty {
            fn drop(&mut self) {
                release(self.space, self.name, $kind);
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?} in space {})", stringify!($ty), self.name, self.space.0)
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &$ty) -> bool {
                self.name == other.name && self.space == other.space
            }
        }
    };
}

owned_right!(
    /// A send right (`MACH_PORT_RIGHT_SEND`), with one user reference.
    SendRight,
    RightKind::Send
);
owned_right!(
    /// A send-once right (`MACH_PORT_RIGHT_SEND_ONCE`). Dropping it unused makes the kernel
    /// send a send-once notification to the receiver.
    SendOnceRight,
    RightKind::SendOnce
);
owned_right!(
    /// A receive right (`MACH_PORT_RIGHT_RECEIVE`). Dropping it destroys the port.
    ReceiveRight,
    RightKind::Receive
);
owned_right!(
    /// A port set (`MACH_PORT_RIGHT_PORT_SET`).
    PortSet,
    RightKind::PortSet
);
owned_right!(
    /// A dead name (`MACH_PORT_RIGHT_DEAD_NAME`), with one user reference.
    DeadName,
    RightKind::DeadName
);

impl SendRight {
    /// Adds a user reference and returns it as a second `SendRight` (same name).
    pub fn try_clone(&self) -> Result<SendRight, KernReturn> {
        if self.name.is_valid() {
            let s = SPACES.get().ok_or(KernReturn::KERN_FAILURE)?;
            s.add_send_ref(self.space, self.name)?;
        }
        Ok(SendRight {
            name: self.name,
            space: self.space,
        })
    }
}

impl ReceiveRight {
    /// Makes a send right to this port in the same space (same name).
    pub fn make_send(&self) -> Result<SendRight, KernReturn> {
        let s = SPACES.get().ok_or(KernReturn::KERN_FAILURE)?;
        s.make_send(self.space, self.name)?;
        Ok(SendRight {
            name: self.name,
            space: self.space,
        })
    }
}

/// A right as a message delivers it: its kind comes from the descriptor
/// (`MACH_MSG_TYPE_PORT_RECEIVE/SEND/SEND_ONCE`), e.g. for polymorphic arguments.
#[derive(Debug, PartialEq)]
pub enum ReceivedRight {
    Send(SendRight),
    SendOnce(SendOnceRight),
    Receive(ReceiveRight),
    /// A name with no right attached: `MACH_PORT_NULL` or `MACH_PORT_DEAD`, or a
    /// `MACH_MSG_TYPE_PORT_NAME`.
    Name(PortName),
}

impl ReceivedRight {
    /// Wraps a name received with descriptor type `msgt_name` in `space`.
    pub fn from_received(space: SpaceId, name: PortName, msgt_name: u32) -> ReceivedRight {
        if !name.is_valid() {
            return ReceivedRight::Name(name);
        }
        match RightKind::from_received(msgt_name) {
            Some(RightKind::Send) => ReceivedRight::Send(SendRight::from_raw(space, name)),
            Some(RightKind::SendOnce) => {
                ReceivedRight::SendOnce(SendOnceRight::from_raw(space, name))
            }
            Some(RightKind::Receive) => ReceivedRight::Receive(ReceiveRight::from_raw(space, name)),
            _ => ReceivedRight::Name(name),
        }
    }
    /// The name, whatever the kind.
    pub fn name(&self) -> PortName {
        match self {
            ReceivedRight::Send(r) => r.name(),
            ReceivedRight::SendOnce(r) => r.name(),
            ReceivedRight::Receive(r) => r.name(),
            ReceivedRight::Name(n) => *n,
        }
    }
    /// The received descriptor name of this right (`MACH_MSG_TYPE_PORT_*`), or
    /// `MACH_MSG_TYPE_PORT_NAME` for bare names.
    pub fn msgt_name(&self) -> u32 {
        match self {
            ReceivedRight::Send(_) => type_name::PORT_SEND,
            ReceivedRight::SendOnce(_) => type_name::PORT_SEND_ONCE,
            ReceivedRight::Receive(_) => type_name::PORT_RECEIVE,
            ReceivedRight::Name(_) => type_name::PORT_NAME,
        }
    }
    /// Gives up ownership: the name and its received descriptor type.
    pub fn into_raw(self) -> (PortName, u32) {
        let t = self.msgt_name();
        let n = match self {
            ReceivedRight::Send(r) => r.into_raw(),
            ReceivedRight::SendOnce(r) => r.into_raw(),
            ReceivedRight::Receive(r) => r.into_raw(),
            ReceivedRight::Name(n) => n,
        };
        (n, t)
    }
}

/// A right with its disposition chosen at run time, for polymorphic arguments
/// (`MACH_MSG_TYPE_POLYMORPHIC`): what to put in a message, and how.
#[derive(Debug)]
pub enum Poly<'a> {
    /// `MACH_MSG_TYPE_MOVE_SEND`.
    MoveSend(SendRight),
    /// `MACH_MSG_TYPE_COPY_SEND`.
    CopySend(&'a SendRight),
    /// `MACH_MSG_TYPE_MAKE_SEND`.
    MakeSend(&'a ReceiveRight),
    /// `MACH_MSG_TYPE_MOVE_SEND_ONCE`.
    MoveSendOnce(SendOnceRight),
    /// `MACH_MSG_TYPE_MAKE_SEND_ONCE`.
    MakeSendOnce(&'a ReceiveRight),
    /// `MACH_MSG_TYPE_MOVE_RECEIVE`.
    MoveReceive(ReceiveRight),
    /// Any name with an explicit disposition, ownership handled by the caller.
    Raw(PortName, u32),
}

impl Poly<'_> {
    /// `MACH_PORT_NULL` (sent with `MACH_MSG_TYPE_COPY_SEND`'s received form is irrelevant
    /// for null; GNU MIG callers pass a null name with any disposition).
    pub const fn null(disposition: u32) -> Poly<'static> {
        Poly::Raw(PortName::NULL, disposition)
    }
    /// The name and disposition to write into a message; moved rights are given up (the
    /// message now carries them).
    pub fn into_wire(self) -> (PortName, u32) {
        match self {
            Poly::MoveSend(r) => (r.into_raw(), type_name::MOVE_SEND),
            Poly::CopySend(r) => (r.name(), type_name::COPY_SEND),
            Poly::MakeSend(r) => (r.name(), type_name::MAKE_SEND),
            Poly::MoveSendOnce(r) => (r.into_raw(), type_name::MOVE_SEND_ONCE),
            Poly::MakeSendOnce(r) => (r.name(), type_name::MAKE_SEND_ONCE),
            Poly::MoveReceive(r) => (r.into_raw(), type_name::MOVE_RECEIVE),
            Poly::Raw(n, d) => (n, d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_cell_sets_once() {
        let o: Once<u32> = Once::new();
        assert_eq!(o.get(), None);
        assert!(o.set(1));
        assert!(!o.set(2));
        assert_eq!(o.get(), Some(1));
    }

    #[test]
    fn null_rights_release_nothing_and_into_raw_forgets() {
        let r = SendRight::null();
        assert!(!r.is_valid());
        drop(r);
        let r = SendRight::from_raw(SpaceId(77), PortName(5));
        assert_eq!(r.into_raw(), PortName(5));
        let p = Poly::MoveSend(SendRight::from_raw(SpaceId(77), PortName(6)));
        assert_eq!(p.into_wire(), (PortName(6), type_name::MOVE_SEND));
    }

    #[test]
    fn received_rights_by_descriptor() {
        let r = ReceivedRight::from_received(SpaceId(1), PortName(3), type_name::PORT_SEND_ONCE);
        assert!(matches!(r, ReceivedRight::SendOnce(_)));
        assert_eq!(r.into_raw(), (PortName(3), type_name::PORT_SEND_ONCE));
        let r = ReceivedRight::from_received(SpaceId(1), PortName::DEAD, type_name::PORT_SEND);
        assert_eq!(r, ReceivedRight::Name(PortName::DEAD));
    }
}
