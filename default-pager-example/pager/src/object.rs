//! Per-object state: the ports, the block map, the seqno counter and the I/O in flight.
//!
//! The seqno counter and the in-flight list implement the Hurd pager's admission rule:
//! messages on one object are admitted strictly in seqno order (one at a time, under the
//! object's lock), and the I/O they start runs in parallel once admitted. A request that
//! conflicts with I/O admitted earlier (a read of a page being written, a write of a page
//! being read or written) waits *while holding its seqno*, so nothing overtakes it; a
//! terminate or no-senders waits until nothing is in flight. The Hurd waits for every
//! writer of the object before a read; waiting only for writers of the same pages gives the
//! same guarantee (a read never sees data older than a write admitted before it) with more
//! parallelism.

use crate::map::BlockMap;
use crate::platform::Platform;
use crate::stats::Reason;
use alloc::vec::Vec;
use mig_runtime::PortName;

/// I/O admitted and not finished: pages `first .. first + count` (a zero `count` only holds
/// the object: its reply on the control port is still to be sent, so terminate waits).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inflight {
    pub token: u64,
    pub first: u64,
    pub count: u64,
    pub write: bool,
}

pub(crate) struct ObjState {
    /// The seqno the next admitted message must have.
    pub seqno: u32,
    pub inflight: Vec<Inflight>,
    /// The kernel's control port (a send right), null before init / after terminate.
    pub control: PortName,
    /// User references the pager holds on `control` (every request brings one).
    pub ctl_refs: u32,
    /// The kernel's name port (a send right), null before init / after terminate.
    pub name: PortName,
    pub name_refs: u32,
    /// Internal objects: the size hint of `memory_object_create` (requests past it are
    /// legal). External objects: the limit given to `default_pager_object_create`.
    pub size: u64,
    pub map: BlockMap,
    /// `memory_object_terminate` was handled (internal objects stay terminated).
    pub terminated: bool,
    /// Freed after no-senders.
    pub dead: bool,
}

impl ObjState {
    pub fn new(size: u64) -> ObjState {
        ObjState {
            seqno: 0,
            inflight: Vec::new(),
            control: PortName::NULL,
            ctl_refs: 0,
            name: PortName::NULL,
            name_refs: 0,
            size,
            map: BlockMap::new(),
            terminated: false,
            dead: false,
        }
    }

    /// Whether a message carrying control port `ctl` may act on this object.
    pub fn control_ok(&self, ctl: PortName) -> Result<(), Reason> {
        if self.dead || self.terminated {
            return Err(Reason::Terminated);
        }
        if self.control.is_null() {
            return Err(Reason::NotInitialized);
        }
        if ctl != self.control {
            return Err(Reason::ForgedControl);
        }
        Ok(())
    }

    /// Counts the user reference a request brought on the control port; returns how many
    /// to give back when there are more than `max` (the Hurd trims at 10000).
    pub fn count_ctl_ref(&mut self, max: u32) -> u32 {
        self.ctl_refs = self.ctl_refs.saturating_add(1);
        if self.ctl_refs > max.max(1) {
            let trim = self.ctl_refs - 1;
            self.ctl_refs = 1;
            trim
        } else {
            0
        }
    }

    /// Whether I/O on pages `first .. first + count` (a write if `write`) conflicts with
    /// I/O in flight.
    pub fn conflicts(&self, first: u64, count: u64, write: bool) -> bool {
        let end = first.saturating_add(count);
        self.inflight.iter().any(|i| {
            (write || i.write)
                && i.count > 0
                && count > 0
                && first < i.first.saturating_add(i.count)
                && i.first < end
        })
    }

    pub fn start_io(&mut self, token: u64, first: u64, count: u64, write: bool) {
        self.inflight.push(Inflight {
            token,
            first,
            count,
            write,
        });
    }

    pub fn end_io(&mut self, token: u64) {
        self.inflight.retain(|i| i.token != token);
    }
}

/// A memory object the pager serves.
pub(crate) struct Object<P: Platform> {
    /// A serial number (statistics, hooks, `dpo_object`).
    pub id: u64,
    /// The object port: the pager holds its receive right under this name.
    pub port: PortName,
    /// Created by the kernel (`memory_object_create`) rather than by
    /// `default_pager_object_create`.
    pub internal: bool,
    pub st: P::Lock<ObjState>,
}

/// `a` comes before `b` in wrapping seqno order.
pub(crate) fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_by_page_and_kind() {
        let mut s = ObjState::new(0);
        s.start_io(1, 10, 2, true);
        s.start_io(2, 20, 1, false);
        s.start_io(3, 0, 0, false);
        assert!(s.conflicts(11, 1, false));
        assert!(!s.conflicts(12, 5, true));
        assert!(s.conflicts(20, 1, true));
        assert!(!s.conflicts(20, 1, false));
        assert!(!s.conflicts(0, 0, true));
        s.end_io(1);
        assert!(!s.conflicts(11, 1, true));
        assert!(seq_before(u32::MAX, 0));
        assert!(!seq_before(3, 3));
        assert_eq!(s.count_ctl_ref(2), 0);
        assert_eq!(s.count_ctl_ref(2), 0);
        assert_eq!(s.count_ctl_ref(2), 2);
        assert_eq!(s.ctl_refs, 1);
    }
}
