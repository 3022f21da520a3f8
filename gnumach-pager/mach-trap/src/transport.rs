//! [`TrapTransport`]: the runtime's [`Transport`] over the real `mach_msg` trap.
//!
//! * **Sending.** The kernel reads the message and every out-of-line region from this
//!   task's memory itself, so the [`MsgBuf`] side table is not consulted for the data. It
//!   matters for ownership only: a region a stub *gives away* (an owned [`OolBuffer`], sent
//!   with `msgt_deallocate`) may be heap memory sharing pages with other objects, which the
//!   kernel must not unmap. For every such region the transport clears the descriptor's
//!   deallocate bit, so the kernel copies (copy-on-write for whole pages), and releases the
//!   buffer itself after the trap (heap: freed; mapped: `vm_deallocate`). The receiver sees
//!   the same data either way. Deallocate bits on regions the side table does not own are
//!   left to the kernel.
//! * **Receiving.** The kernel maps each out-of-line region into this task and writes its
//!   address into the descriptor; the transport records each one as an
//!   [`OolBuffer::from_mapped`] whose release is a `vm_deallocate` (generated stub), so a
//!   stub that takes it owns it and a region nobody takes is deallocated with the buffer.
//! * **Reply ports** come from the `mach_reply_port` trap, one per task, cached (the
//!   programs this is for are single-threaded per task).

use crate::env::{task_self, REPLY_PORT};
use crate::kernel::{mach, mach_port};
use crate::trap;
use core::sync::atomic::{AtomicUsize, Ordering};
use mig_runtime::msg::{OolData, OolRelease};
use mig_runtime::wire::{msg_return, option, Target, TypeDesc};
use mig_runtime::{stub, KernReturn, MsgBuf, OolBuffer, PortName, SpaceId, Transport};

/// `MACH_PORT_RIGHT_SEND`.
pub const MACH_PORT_RIGHT_SEND: u32 = 0;
/// `MACH_PORT_RIGHT_RECEIVE`.
pub const MACH_PORT_RIGHT_RECEIVE: u32 = 1;
/// `MACH_PORT_RIGHT_SEND_ONCE`.
pub const MACH_PORT_RIGHT_SEND_ONCE: u32 = 2;
/// `MACH_PORT_RIGHT_PORT_SET`.
pub const MACH_PORT_RIGHT_PORT_SET: u32 = 3;
/// `MACH_PORT_RIGHT_DEAD_NAME`.
pub const MACH_PORT_RIGHT_DEAD_NAME: u32 = 4;

const T: Target = Target::X86_64;

/// The function [`observe_sends`] installed (0: none).
static SEND_OBSERVER: AtomicUsize = AtomicUsize::new(0);

/// Makes every `mach_msg` with `MACH_SEND_MSG` through [`TrapTransport`] call `f` with the
/// message id first (for statistics: which calls a program made, and how often).
pub fn observe_sends(f: fn(msgh_id: i32)) {
    SEND_OBSERVER.store(f as usize, Ordering::Release);
}

fn note_send(id: i32) {
    let f = SEND_OBSERVER.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: the only non-zero value ever stored is a `fn(i32)` (in `observe_sends`).
        let f: fn(i32) = unsafe { core::mem::transmute::<usize, fn(i32)>(f) };
        f(id);
    }
}

/// The `mach_msg` trap as a [`Transport`] (x86_64 layout, the calling task's space).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapTransport;

/// The release hook of received out-of-line regions: `vm_deallocate` on this task.
fn release_mapped(addr: usize, len: usize) {
    let _ = mach::client::vm_deallocate(&TrapTransport, &task_self(), addr as u64, len as u64);
}

/// How received out-of-line regions are given back (`vm_deallocate`).
pub const VM_DEALLOCATE_RELEASE: OolRelease = OolRelease {
    release: release_mapped,
};

/// One out-of-line descriptor of a message: where its address field is, and what it says.
struct OolDesc {
    desc_off: usize,
    addr: u64,
    len: usize,
    dealloc: bool,
}

/// Calls `f` for every out-of-line descriptor of the (x86_64) message in `bytes`. Stops
/// quietly at the first descriptor that does not fit.
fn for_each_ool(bytes: &[u8], mut f: impl FnMut(OolDesc)) {
    if stub::msgh_bits(bytes) & mig_runtime::wire::msgh_bits::COMPLEX == 0 {
        return;
    }
    let size = (stub::msgh_size(bytes) as usize).min(bytes.len());
    let align = |n: usize| n.div_ceil(8) * 8;
    let mut off = T.header_size() as usize;
    while off < size {
        let Ok(d) = TypeDesc::decode(T, &bytes[..size], off) else {
            return;
        };
        let desc_off = off;
        off = align(off + d.wire_size);
        let len = (u64::from(d.desc.size) * u64::from(d.desc.number)).div_ceil(8) as usize;
        if d.desc.inline {
            off = match off.checked_add(len) {
                Some(o) => align(o),
                None => return,
            };
        } else {
            if off + 8 > size {
                return;
            }
            f(OolDesc {
                desc_off,
                addr: stub::rd_u64(bytes, off),
                len,
                dealloc: d.desc.deallocate,
            });
            off = align(off + 8);
        }
    }
}

/// Before sending: regions the side table owns are released by us, not by the kernel.
fn keep_owned_regions(msg: &mut MsgBuf<'_>) {
    let mut owned = [0usize; 16];
    let mut n = 0;
    for_each_ool(msg.bytes(), |d| {
        if d.dealloc && n < owned.len() {
            let is_owned = msg
                .ool_entries()
                .iter()
                .any(|e| e.addr == d.addr && matches!(e.data, OolData::Owned(_)));
            if is_owned {
                owned[n] = d.desc_off;
                n += 1;
            }
        }
    });
    for &off in &owned[..n] {
        stub::desc_set_dealloc(msg.bytes_mut(), off, T, false);
    }
}

/// After receiving: every region the kernel mapped becomes an owned buffer of the message.
fn record_received_regions(msg: &mut MsgBuf<'_>) {
    let mut regions = [(0u64, 0usize); 16];
    let mut n = 0;
    let mut overflow = false;
    for_each_ool(msg.bytes(), |d| {
        if d.addr != 0 && d.len != 0 {
            if n < regions.len() {
                regions[n] = (d.addr, d.len);
                n += 1;
            } else {
                overflow = true;
            }
        }
    });
    for &(addr, len) in &regions[..n] {
        // SAFETY: the kernel has just mapped `len` bytes at `addr` into this task for this
        // message; nothing else knows the region, and `vm_deallocate` is how it is freed.
        let b = unsafe { OolBuffer::from_mapped(addr as usize, len, VM_DEALLOCATE_RELEASE) };
        msg.push_received_ool(b);
    }
    if overflow {
        // More regions than we track (no GNU Mach interface we use has that many): free
        // the rest right away rather than leak them.
        let mut i = 0;
        for_each_ool(msg.bytes(), |d| {
            if d.addr != 0 && d.len != 0 {
                if i >= regions.len() {
                    release_mapped(d.addr as usize, d.len);
                }
                i += 1;
            }
        });
    }
}

impl Transport for TrapTransport {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        opt: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn {
        let cap = msg.capacity();
        if opt & option::SEND_MSG != 0 {
            if (send_size as usize) < T.header_size() as usize {
                return KernReturn(msg_return::SEND_MSG_TOO_SMALL as i32);
            }
            if send_size as usize > cap {
                return KernReturn(msg_return::SEND_INVALID_DATA as i32);
            }
            keep_owned_regions(msg);
            note_send(stub::msgh_id(msg.bytes(), T));
        }
        let rcv_size = if opt & option::RCV_MSG != 0 {
            rcv_size.min(cap as u32)
        } else {
            0
        };
        let ptr = msg.bytes_mut().as_mut_ptr();
        // SAFETY: `ptr` is the buffer's start (8-byte aligned for `AlignedBuf` and heap
        // buffers), valid for `cap` bytes; we send at most `send_size <= cap` bytes and
        // receive at most `rcv_size <= cap`. Out-of-line regions named by the message are
        // either attached to it (alive until the trap returns) or the caller's business.
        let r = unsafe { trap::mach_msg(ptr, opt, send_size, rcv_size, rcv_name, timeout, notify) };
        // The kernel has copied what we sent (or refused it): release the attachments.
        msg.clear_ool();
        if opt & option::RCV_MSG != 0 && r == msg_return::SUCCESS {
            msg.set_space(SpaceId::SELF);
            record_received_regions(msg);
        }
        KernReturn(r as i32)
    }

    fn get_reply_port(&self) -> PortName {
        let mut n = REPLY_PORT.load(Ordering::Relaxed);
        if n == 0 {
            n = trap::mach_reply_port().0;
            REPLY_PORT.store(n, Ordering::Relaxed);
        }
        PortName(n)
    }

    fn dealloc_reply_port(&self, port: PortName) {
        let cached = REPLY_PORT.load(Ordering::Relaxed);
        if cached == port.0 {
            REPLY_PORT.store(0, Ordering::Relaxed);
        }
        if port.is_valid() {
            let _ = mach_port::client::mach_port_mod_refs(
                self,
                &task_self(),
                port,
                MACH_PORT_RIGHT_RECEIVE,
                -1,
            );
        }
    }

    fn space(&self) -> SpaceId {
        SpaceId::SELF
    }
}
