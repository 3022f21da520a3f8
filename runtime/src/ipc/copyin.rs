//! Send-side translation (`ipc_kmsg_copyin`): header rights, then (for complex messages)
//! every descriptor of the body, into a [`KMsg`].
//!
//! GNU Mach destroys whatever a failed copyin had already taken from the sender. Here a copyin
//! is a transaction instead: every change to the sender's space and to port counters is
//! journaled, and side effects (notifications, moving memory out of the sender's buffer,
//! freeing emptied names, the effects of moving a receive right) wait for the commit. A
//! failed send rolls the journal back, so the sender's rights and memory are exactly as
//! before. The same mechanism lets a send to a full queue back out, wait, and retry.
//!
//! Simple messages of the usual RPC shapes skip the journal: GNU Mach's header fast paths
//! ([`State::copyin_header_fast`]) check both rights and the destination queue before they
//! change anything, and fall back to the journaled path for anything unusual.

use super::kmsg::{KBox, KMsg, KObj, KOol, KPort, KPortArray};
use super::state::{et, Entry, Obj, PortId, Receiver, State, UREFS_MAX};
use crate::msg::{MsgBuf, OolData};
use crate::wire::{
    bytes, msg_return as mr, msgh_bits, type_name as tn, PortName, Target, TypeDesc,
};

/// Counters a journaled port can have changed.
#[derive(Clone, Copy)]
pub(crate) struct PortSnap {
    refs: u32,
    srights: u32,
    sorights: u32,
    mscount: u32,
    receiver: Receiver,
}

enum Undo {
    Entry(PortName, Option<Entry>),
    Reverse(PortId, Option<PortName>),
    Port(PortId, PortSnap),
    DnRequest(PortId, PortName, PortId),
}

/// A copyin in progress.
#[derive(Default)]
pub(crate) struct Txn {
    undo: Vec<Undo>,
    /// Port-deleted notifications to send on commit.
    deleted: Vec<(PortId, PortName)>,
    /// Receive rights moved into the message.
    moved_receive: Vec<PortId>,
    /// Names whose entries may have become empty.
    emptied: Vec<PortName>,
    /// Owned out-of-line regions moved into the message: (index in `KMsg::ool`, address).
    ool_moves: Vec<(usize, u64)>,
    /// Owned out-of-line port arrays consumed (`deallocate`): addresses to drop.
    ool_drops: Vec<u64>,
    /// Address ranges already given away by this message.
    gone: Vec<(u64, u64)>,
}

const HDR: usize = 32;

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Txn {
    fn clear(&mut self) {
        self.undo.clear();
        self.deleted.clear();
        self.moved_receive.clear();
        self.emptied.clear();
        self.ool_moves.clear();
        self.ool_drops.clear();
        self.gone.clear();
    }

    /// Whether nothing is journaled.
    fn is_clear(&self) -> bool {
        self.undo.is_empty()
            && self.deleted.is_empty()
            && self.moved_receive.is_empty()
            && self.emptied.is_empty()
            && self.ool_moves.is_empty()
            && self.ool_drops.is_empty()
            && self.gone.is_empty()
    }

    /// Queues a port-deleted notification for the commit.
    pub(crate) fn push_deleted(&mut self, so: PortId, name: PortName) {
        self.deleted.push((so, name));
    }
}

impl State {
    // ------------------------------------------------------------ journal helpers

    fn j_entry_was(&mut self, name: PortName, old: Entry) {
        self.txn.undo.push(Undo::Entry(name, Some(old)));
    }

    fn j_port(&mut self, p: PortId) {
        if let Some(port) = self.p(p) {
            self.txn.undo.push(Undo::Port(
                p,
                PortSnap {
                    refs: port.refs,
                    srights: port.srights,
                    sorights: port.sorights,
                    mscount: port.mscount,
                    receiver: port.receiver,
                },
            ));
        }
    }

    fn j_reverse_remove(&mut self, slot: u32, p: PortId) {
        if let Some(sp) = self.spm(slot) {
            let old = sp.reverse.remove(&p);
            self.txn.undo.push(Undo::Reverse(p, old));
        }
    }

    fn j_reverse_insert(&mut self, slot: u32, p: PortId, name: PortName) {
        if let Some(sp) = self.spm(slot) {
            let old = sp.reverse.insert(p, name);
            self.txn.undo.push(Undo::Reverse(p, old));
        }
    }

    fn j_dncancel(&mut self, slot: u32, p: PortId, name: PortName) -> Option<PortId> {
        let so = self.dncancel(slot, p, name)?;
        self.txn.undo.push(Undo::DnRequest(p, name, so));
        Some(so)
    }

    fn j_set_entry(&mut self, slot: u32, name: PortName, e: Entry) {
        self.set_entry(slot, name, e);
        if e.ty == 0 {
            self.txn.emptied.push(name);
        }
    }

    fn with_port(&mut self, p: PortId, f: impl FnOnce(&mut super::state::Port)) {
        if let Some(port) = self.pm(p) {
            f(port);
        }
    }

    /// Starts a transaction (the journal lives in the state; transactions do not nest).
    pub(crate) fn begin_txn(&mut self) {
        self.txn.clear();
    }

    /// Undoes everything the current transaction changed.
    pub(crate) fn rollback(&mut self, slot: u32) {
        while let Some(u) = self.txn.undo.pop() {
            match u {
                Undo::Entry(name, old) => match (old, self.spm(slot)) {
                    (Some(e), Some(sp)) => {
                        sp.entries.insert(name.0, e);
                    }
                    (None, Some(sp)) => {
                        sp.entries.remove(name.0);
                    }
                    _ => {}
                },
                Undo::Reverse(p, old) => {
                    if let Some(sp) = self.spm(slot) {
                        match old {
                            Some(n) => sp.reverse.insert(p, n),
                            None => sp.reverse.remove(&p),
                        };
                    }
                }
                Undo::Port(p, s) => self.with_port(p, |port| {
                    port.refs = s.refs;
                    port.srights = s.srights;
                    port.sorights = s.sorights;
                    port.mscount = s.mscount;
                    port.receiver = s.receiver;
                }),
                Undo::DnRequest(p, name, so) => self.with_port(p, |port| {
                    port.dnrequests.insert((slot, name), so);
                }),
            }
        }
        self.txn.clear();
    }

    /// Makes the transaction final: moves memory out of the sender's buffer, frees emptied
    /// names, applies the effects of moved receive rights and sends port-deleted
    /// notifications.
    pub(crate) fn commit(&mut self, slot: u32, msg: &mut MsgBuf<'_>, k: &mut KMsg) {
        if self.txn.is_clear() {
            // Nothing journaled (the fast path of the header copyin).
            self.counters.kmsgs += 1;
            self.counters.ool_bytes += k.ool_bytes();
            return;
        }
        for i in 0..self.txn.ool_moves.len() {
            let (idx, addr) = self.txn.ool_moves[i];
            if let Some(e) = msg.remove_ool(addr) {
                if let (OolData::Owned(b), Some(o)) = (e.data, k.ool.get_mut(idx)) {
                    o.data = b;
                }
            }
        }
        for i in 0..self.txn.ool_drops.len() {
            drop(msg.remove_ool(self.txn.ool_drops[i]));
        }
        for i in 0..self.txn.emptied.len() {
            let name = self.txn.emptied[i];
            if self.entry(slot, name).is_some_and(|e| e.ty == 0) {
                self.free_name(slot, name);
            }
        }
        for i in 0..self.txn.moved_receive.len() {
            let p = self.txn.moved_receive[i];
            self.clear_receiver(p);
        }
        for i in 0..self.txn.deleted.len() {
            let (so, name) = self.txn.deleted[i];
            self.notify_port_deleted(so, name);
        }
        self.txn.clear();
        self.counters.kmsgs += 1;
        self.counters.ool_bytes += k.ool_bytes();
    }

    // ------------------------------------------------------------ rights

    /// `ipc_right_copyin_check`: could `name` be copied in as `msgt`?
    fn copyin_check(&mut self, slot: u32, name: PortName, msgt: u32) -> bool {
        match self.checked_entry(slot, name) {
            Some(e) => Self::copyin_check_e(e, msgt),
            None => false,
        }
    }

    fn copyin_check_e(e: Entry, msgt: u32) -> bool {
        match msgt {
            tn::MAKE_SEND | tn::MAKE_SEND_ONCE | tn::MOVE_RECEIVE => e.ty & et::RECEIVE != 0,
            tn::COPY_SEND | tn::MOVE_SEND | tn::MOVE_SEND_ONCE => {
                if e.ty & et::DEAD_NAME != 0 {
                    return true;
                }
                if e.ty & et::SEND_RIGHTS == 0 {
                    return false;
                }
                if msgt == tn::MOVE_SEND_ONCE {
                    e.ty & et::SEND_ONCE != 0
                } else {
                    e.ty & et::SEND != 0
                }
            }
            _ => false,
        }
    }

    /// `ipc_right_copyin`: takes the right `msgt` for `name` out of the space. Returns the
    /// object and, when a dead-name request was cancelled, its send-once right (for a
    /// port-deleted notification).
    pub(crate) fn copyin_right(
        &mut self,
        slot: u32,
        name: PortName,
        msgt: u32,
        deadok: bool,
    ) -> Result<(KObj, Option<PortId>), ()> {
        let e = self.checked_entry(slot, name).ok_or(())?;
        self.copyin_right_e(slot, name, e, msgt, deadok)
    }

    /// [`State::copyin_right`] with the (checked) entry already looked up.
    fn copyin_right_e(
        &mut self,
        slot: u32,
        name: PortName,
        e: Entry,
        msgt: u32,
        deadok: bool,
    ) -> Result<(KObj, Option<PortId>), ()> {
        let port = e.port();
        match msgt {
            tn::MAKE_SEND | tn::MAKE_SEND_ONCE => {
                let p = port.filter(|_| e.ty & et::RECEIVE != 0).ok_or(())?;
                self.j_port(p);
                let make_send = msgt == tn::MAKE_SEND;
                self.with_port(p, |port| {
                    port.refs += 1;
                    if make_send {
                        port.mscount = port.mscount.wrapping_add(1);
                        port.srights += 1;
                    } else {
                        port.sorights += 1;
                    }
                });
                Ok((KObj::Port(p), None))
            }
            tn::MOVE_RECEIVE => {
                let p = port.filter(|_| e.ty & et::RECEIVE != 0).ok_or(())?;
                self.j_entry_was(name, e);
                self.j_port(p);
                let mut ne = e;
                let mut so = None;
                if e.ty & et::SEND != 0 {
                    self.j_reverse_insert(slot, p, name);
                    self.port_ref(p);
                } else {
                    so = self.j_dncancel(slot, p, name);
                    ne.obj = Obj::None;
                    ne.request = false;
                }
                ne.ty &= !et::RECEIVE;
                self.j_set_entry(slot, name, ne);
                self.with_port(p, |port| port.receiver = Receiver::Transit(None));
                self.txn.moved_receive.push(p);
                Ok((KObj::Port(p), so))
            }
            tn::COPY_SEND => {
                if e.ty & et::DEAD_NAME != 0 {
                    return if deadok {
                        Ok((KObj::Dead, None))
                    } else {
                        Err(())
                    };
                }
                if e.ty & et::SEND == 0 {
                    return Err(());
                }
                let p = port.ok_or(())?;
                self.j_port(p);
                self.with_port(p, |port| {
                    port.srights += 1;
                    port.refs += 1;
                });
                Ok((KObj::Port(p), None))
            }
            tn::MOVE_SEND | tn::MOVE_SEND_ONCE => {
                if e.ty & et::DEAD_NAME != 0 {
                    if !deadok {
                        return Err(());
                    }
                    self.j_entry_was(name, e);
                    let mut ne = e;
                    if e.urefs <= 1 {
                        ne.ty &= !et::DEAD_NAME;
                        ne.urefs = 0;
                    } else {
                        ne.urefs -= 1;
                    }
                    self.j_set_entry(slot, name, ne);
                    return Ok((KObj::Dead, None));
                }
                let p = port.ok_or(())?;
                if msgt == tn::MOVE_SEND_ONCE {
                    if e.ty & et::SEND_ONCE == 0 {
                        return Err(());
                    }
                    self.j_entry_was(name, e);
                    let so = self.j_dncancel(slot, p, name);
                    let ne = Entry {
                        obj: Obj::None,
                        ty: e.ty & !et::SEND_ONCE,
                        urefs: 0,
                        request: false,
                    };
                    self.j_set_entry(slot, name, ne);
                    return Ok((KObj::Port(p), so));
                }
                if e.ty & et::SEND == 0 {
                    return Err(());
                }
                self.j_entry_was(name, e);
                let mut ne = e;
                let mut so = None;
                if e.urefs <= 1 {
                    if e.ty & et::RECEIVE != 0 {
                        self.j_port(p);
                        self.port_ref(p);
                    } else {
                        so = self.j_dncancel(slot, p, name);
                        self.j_reverse_remove(slot, p);
                        ne.obj = Obj::None;
                        ne.request = false;
                    }
                    ne.ty &= !et::SEND;
                    ne.urefs = 0;
                } else {
                    self.j_port(p);
                    self.with_port(p, |port| {
                        port.srights += 1;
                        port.refs += 1;
                    });
                    ne.urefs -= 1;
                }
                self.j_set_entry(slot, name, ne);
                Ok((KObj::Port(p), so))
            }
            _ => Err(()),
        }
    }

    /// `ipc_right_copyin_two`: two send rights for one name (`MOVE_SEND` as both
    /// destination and reply).
    fn copyin_two(&mut self, slot: u32, name: PortName) -> Result<(PortId, Option<PortId>), ()> {
        let e = self.checked_entry(slot, name).ok_or(())?;
        if e.ty & et::SEND == 0 || e.urefs < 2 {
            return Err(());
        }
        let p = e.port().ok_or(())?;
        self.j_entry_was(name, e);
        self.j_port(p);
        let mut ne = e;
        let mut so = None;
        if e.urefs == 2 {
            if e.ty & et::RECEIVE != 0 {
                self.with_port(p, |port| {
                    port.srights += 1;
                    port.refs += 2;
                });
            } else {
                so = self.j_dncancel(slot, p, name);
                self.j_reverse_remove(slot, p);
                self.with_port(p, |port| {
                    port.srights += 1;
                    port.refs += 1;
                });
                ne.obj = Obj::None;
                ne.request = false;
            }
            ne.ty &= !et::SEND;
            ne.urefs = 0;
        } else {
            self.with_port(p, |port| {
                port.srights += 2;
                port.refs += 2;
            });
            ne.urefs -= 2;
        }
        self.j_set_entry(slot, name, ne);
        Ok((p, so))
    }

    /// `ipc_port_copy_send` on a port just copied in.
    fn copy_send(&mut self, o: KObj) -> KObj {
        match o {
            KObj::Port(p) if self.port_active(p) => {
                self.j_port(p);
                self.with_port(p, |port| {
                    port.srights += 1;
                    port.refs += 1;
                });
                KObj::Port(p)
            }
            KObj::Port(_) => KObj::Dead,
            other => other,
        }
    }

    // ------------------------------------------------------------ header

    /// `ipc_kmsg_copyin_header`. Returns (dest, reply) in kernel form and fills `k.bits`.
    fn copyin_header(
        &mut self,
        slot: u32,
        k: &mut KMsg,
        dest_name: PortName,
        reply_name: PortName,
        mbits: u32,
    ) -> Result<(), u32> {
        let dest_type = msgh_bits::remote(mbits);
        let reply_type = msgh_bits::local(mbits);
        if !tn::is_port_any_send(dest_type) {
            return Err(mr::SEND_INVALID_HEADER);
        }
        let bad_reply = if reply_type == 0 {
            !reply_name.is_null()
        } else {
            !tn::is_port_any_send(reply_type)
        };
        if bad_reply {
            return Err(mr::SEND_INVALID_HEADER);
        }
        if !self.space_active(slot) {
            return Err(mr::SEND_INVALID_DEST);
        }
        let dest: KObj;
        let reply: KObj;
        let mut dest_so = None;
        let mut reply_so = None;
        if dest_name == reply_name {
            let name = dest_name;
            if self.entry(slot, name).is_none() {
                return Err(mr::SEND_INVALID_DEST);
            }
            if !self.copyin_check(slot, name, reply_type) {
                return Err(mr::SEND_INVALID_REPLY);
            }
            if dest_type == tn::MOVE_SEND_ONCE || reply_type == tn::MOVE_SEND_ONCE {
                return Err(mr::SEND_INVALID_DEST);
            }
            let make = |x| x == tn::MAKE_SEND || x == tn::MAKE_SEND_ONCE;
            if make(dest_type) || make(reply_type) {
                let (d, _) = self
                    .copyin_right(slot, name, dest_type, false)
                    .map_err(|_| mr::SEND_INVALID_DEST)?;
                let (r, _) = self
                    .copyin_right(slot, name, reply_type, true)
                    .map_err(|_| mr::SEND_INVALID_REPLY)?;
                dest = d;
                reply = r;
            } else if dest_type == tn::COPY_SEND && reply_type == tn::COPY_SEND {
                let (d, _) = self
                    .copyin_right(slot, name, dest_type, false)
                    .map_err(|_| mr::SEND_INVALID_DEST)?;
                dest = d;
                reply = self.copy_send(d);
            } else if dest_type == tn::MOVE_SEND && reply_type == tn::MOVE_SEND {
                let (p, so) = self
                    .copyin_two(slot, name)
                    .map_err(|_| mr::SEND_INVALID_DEST)?;
                dest = KObj::Port(p);
                reply = KObj::Port(p);
                dest_so = so;
            } else {
                // One COPY_SEND and one MOVE_SEND.
                let (d, so) = self
                    .copyin_right(slot, name, tn::MOVE_SEND, false)
                    .map_err(|_| mr::SEND_INVALID_DEST)?;
                dest = d;
                reply = self.copy_send(d);
                if dest_type == tn::MOVE_SEND {
                    dest_so = so;
                } else {
                    reply_so = so;
                }
            }
        } else if !reply_name.is_valid() {
            let de = self
                .checked_entry(slot, dest_name)
                .ok_or(mr::SEND_INVALID_DEST)?;
            let (d, so) = self
                .copyin_right_e(slot, dest_name, de, dest_type, false)
                .map_err(|_| mr::SEND_INVALID_DEST)?;
            dest = d;
            dest_so = so;
            reply = if reply_name.is_dead() {
                KObj::Dead
            } else {
                KObj::Null
            };
        } else {
            let de = self
                .checked_entry(slot, dest_name)
                .ok_or(mr::SEND_INVALID_DEST)?;
            let re = self
                .checked_entry(slot, reply_name)
                .ok_or(mr::SEND_INVALID_REPLY)?;
            if !Self::copyin_check_e(re, reply_type) {
                return Err(mr::SEND_INVALID_REPLY);
            }
            // Different names: copying in the destination leaves the reply's entry alone.
            let (d, so) = self
                .copyin_right_e(slot, dest_name, de, dest_type, false)
                .map_err(|_| mr::SEND_INVALID_DEST)?;
            dest = d;
            dest_so = so;
            let (r, so) = self
                .copyin_right_e(slot, reply_name, re, reply_type, true)
                .map_err(|_| mr::SEND_INVALID_REPLY)?;
            reply = r;
            reply_so = so;
        }
        if let Some(so) = dest_so {
            self.txn.deleted.push((so, dest_name));
        }
        if let Some(so) = reply_so {
            self.txn.deleted.push((so, reply_name));
        }
        let dp = match dest {
            KObj::Port(p) => p,
            // Not possible with deadok == false, but never trust that blindly.
            _ => return Err(mr::SEND_INVALID_DEST),
        };
        k.dest = Some(dp);
        k.reply = reply;
        k.bits = msgh_bits::other(mbits) & !msgh_bits::CIRCULAR
            | msgh_bits::make(tn::received_form(dest_type), tn::received_form(reply_type));
        Ok(())
    }

    /// GNU Mach's fast paths of `ipc_kmsg_copyin_header` for the usual shapes of a simple
    /// message: a request (`COPY_SEND` destination, `MAKE_SEND_ONCE` reply), a one-way
    /// message (`COPY_SEND`, no reply) and a reply (`MOVE_SEND_ONCE`, no reply). Everything
    /// is checked before anything changes, and nothing after the changes can fail (the
    /// destination is alive and its queue has room), so no journal is needed. Returns false,
    /// having changed nothing, for any other shape or anything unusual (a dead port, a
    /// dead-name request, a full queue…): the general, journaled path then handles it with
    /// the same result as here.
    fn copyin_header_fast(
        &mut self,
        slot: u32,
        k: &mut KMsg,
        dest_name: PortName,
        reply_name: PortName,
        mbits: u32,
    ) -> bool {
        let dest_type = msgh_bits::remote(mbits);
        let reply_type = msgh_bits::local(mbits);
        let Some(sp) = self.sp(slot).filter(|sp| sp.active) else {
            return false;
        };
        let Some(de) = sp.entries.get(dest_name.0).copied() else {
            return false;
        };
        let Some(p) = de.port() else {
            return false;
        };
        match (dest_type, reply_type) {
            (tn::COPY_SEND, 0 | tn::MAKE_SEND_ONCE) => {
                if de.ty & et::SEND == 0 {
                    return false;
                }
                let r = if reply_type == 0 {
                    if !reply_name.is_null() {
                        return false;
                    }
                    None
                } else {
                    if reply_name == dest_name || !reply_name.is_valid() {
                        return false;
                    }
                    match sp.entries.get(reply_name.0) {
                        Some(re) if re.ty & et::RECEIVE != 0 => match re.port() {
                            Some(r) => Some(r),
                            None => return false,
                        },
                        _ => return false,
                    }
                };
                match self.p(p) {
                    Some(port) if port.active && port.msgcount < port.qlimit => {}
                    _ => return false,
                }
                self.with_port(p, |port| {
                    port.srights += 1;
                    port.refs += 1;
                });
                k.reply = match r {
                    Some(r) => {
                        self.with_port(r, |port| {
                            port.sorights += 1;
                            port.refs += 1;
                        });
                        KObj::Port(r)
                    }
                    None => KObj::Null,
                };
            }
            (tn::MOVE_SEND_ONCE, 0) => {
                if de.ty != et::SEND_ONCE || de.request || !reply_name.is_null() {
                    return false;
                }
                if !self.port_active(p) {
                    return false;
                }
                // The entry's reference moves into the message.
                self.free_name(slot, dest_name);
                k.reply = KObj::Null;
            }
            _ => return false,
        }
        k.dest = Some(p);
        k.bits = msgh_bits::other(mbits) & !msgh_bits::CIRCULAR
            | msgh_bits::make(tn::received_form(dest_type), tn::received_form(reply_type));
        true
    }

    // ------------------------------------------------------------ body

    fn region_gone(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        self.txn
            .gone
            .iter()
            .any(|&(a, l)| addr < a.saturating_add(l) && a < end)
    }

    /// Is the side-table entry at `addr` owned and exactly `len` bytes long?
    fn owned_exact(msg: &MsgBuf<'_>, addr: u64, len: usize) -> bool {
        msg.ool_entries()
            .iter()
            .any(|e| e.addr == addr && matches!(&e.data, OolData::Owned(b) if b.len() == len))
    }

    fn copyin_port_name(
        &mut self,
        slot: u32,
        k: &mut KMsg,
        name: PortName,
        msgt: u32,
        dest: PortId,
    ) -> Result<KObj, u32> {
        if !name.is_valid() {
            return Ok(if name.is_dead() {
                KObj::Dead
            } else {
                KObj::Null
            });
        }
        let (o, so) = self
            .copyin_right(slot, name, msgt, true)
            .map_err(|_| mr::SEND_INVALID_RIGHT)?;
        if let Some(so) = so {
            self.txn.deleted.push((so, name));
        }
        if msgt == tn::MOVE_RECEIVE {
            if let KObj::Port(r) = o {
                self.with_port(r, |port| port.receiver = Receiver::Transit(Some(dest)));
                if self.circular_from(r, dest) {
                    k.bits |= msgh_bits::CIRCULAR;
                }
            }
        }
        Ok(o)
    }

    /// Circularity of moving `r` to `dest`, where `r` already points at `dest`.
    fn circular_from(&self, r: PortId, dest: PortId) -> bool {
        if r == dest {
            return true;
        }
        match self.p(dest).map(|p| p.receiver) {
            Some(Receiver::Transit(Some(next))) => self.circular(r, next),
            _ => false,
        }
    }

    /// `ipc_kmsg_copyin_body` for the x86_64 layout.
    fn copyin_body(
        &mut self,
        slot: u32,
        msg: &MsgBuf<'_>,
        k: &mut KMsg,
        dest: PortId,
    ) -> Result<(), u32> {
        let size = k.size as usize;
        let mut off = HDR;
        let mut complex = false;
        while off < size {
            if size - off < 8 {
                return Err(mr::SEND_MSG_TOO_SMALL);
            }
            let d = TypeDesc::decode(Target::X86_64, &k.bytes, off)
                .map_err(|_| mr::SEND_MSG_TOO_SMALL)?
                .desc;
            let desc_off = off;
            let is_port = tn::is_port_any(d.name);
            // Inline ports are 8-byte slots, out-of-line port arrays 32-bit names.
            if (is_port && d.size != if d.inline { 64 } else { 32 })
                || d.unused != 0
                || (d.deallocate && d.inline)
            {
                return Err(mr::SEND_INVALID_TYPE);
            }
            off += 8;
            let length = (u64::from(d.number) * u64::from(d.size) + 7) >> 3;
            if d.inline {
                if ((size - off) as u64) < length {
                    return Err(mr::SEND_MSG_TOO_SMALL);
                }
                if is_port {
                    for i in 0..d.number as usize {
                        let so = off + 8 * i;
                        let name = PortName(bytes::get_u32(&k.bytes, so).unwrap_or(0));
                        let o = self.copyin_port_name(slot, k, name, d.name, dest)?;
                        k.ports.push(KPort {
                            off: so as u32,
                            obj: o,
                            ty: tn::received_form(d.name),
                        });
                    }
                    k.bytes[desc_off] = tn::received_form(d.name) as u8;
                    complex = true;
                }
                off += length as usize;
            } else {
                if size - off < 8 {
                    return Err(mr::SEND_MSG_TOO_SMALL);
                }
                let addr = bytes::get_u64(&k.bytes, off).unwrap_or(0);
                if is_port {
                    let len = u64::from(d.number) * 4;
                    let mut names = Vec::new();
                    if len > 0 {
                        let ulen = usize::try_from(len).map_err(|_| mr::SEND_INVALID_MEMORY)?;
                        if self.region_gone(addr, len) {
                            return Err(mr::SEND_INVALID_MEMORY);
                        }
                        let region = msg.find_ool(addr, ulen).ok_or(mr::SEND_INVALID_MEMORY)?;
                        names.extend(
                            region
                                .chunks_exact(4)
                                .map(|c| PortName(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
                        );
                        if d.deallocate && Self::owned_exact(msg, addr, ulen) {
                            self.txn.ool_drops.push(addr);
                            self.txn.gone.push((addr, len));
                        }
                    }
                    let mut objs = Vec::with_capacity(names.len());
                    for name in names {
                        objs.push(self.copyin_port_name(slot, k, name, d.name, dest)?);
                    }
                    k.arrays.push(KPortArray {
                        off: off as u32,
                        objs,
                        ty: tn::received_form(d.name),
                    });
                    k.bytes[desc_off] = tn::received_form(d.name) as u8;
                } else if length == 0 {
                    k.ool.push(KOol {
                        off: off as u32,
                        data: crate::msg::OolBuffer::empty(),
                    });
                } else {
                    let ulen = usize::try_from(length).map_err(|_| mr::SEND_INVALID_MEMORY)?;
                    if self.region_gone(addr, length) {
                        return Err(mr::SEND_INVALID_MEMORY);
                    }
                    if d.deallocate && Self::owned_exact(msg, addr, ulen) {
                        self.txn.ool_moves.push((k.ool.len(), addr));
                        self.txn.gone.push((addr, length));
                        k.ool.push(KOol {
                            off: off as u32,
                            data: crate::msg::OolBuffer::empty(),
                        });
                    } else {
                        let region = msg.find_ool(addr, ulen).ok_or(mr::SEND_INVALID_MEMORY)?;
                        k.ool.push(KOol {
                            off: off as u32,
                            data: crate::msg::OolBuffer::copy_from(region),
                        });
                    }
                }
                // Received out-of-line data always has msgt_deallocate set.
                k.bytes[desc_off + 3] |= 0x80;
                off += 8;
                complex = true;
            }
            off = align8(off);
        }
        if !complex {
            k.bits &= !msgh_bits::COMPLEX;
        }
        Ok(())
    }

    /// Copies in a user message (`ipc_kmsg_get` + `ipc_kmsg_copyin`) inside a new
    /// transaction, which the caller commits or rolls back. On error everything is rolled
    /// back already.
    pub(crate) fn copyin(
        &mut self,
        slot: u32,
        msg: &MsgBuf<'_>,
        send_size: u32,
    ) -> Result<KBox, u32> {
        let n = send_size as usize;
        if n < HDR || n % 8 != 0 {
            return Err(mr::SEND_MSG_TOO_SMALL);
        }
        if n > msg.capacity() {
            return Err(mr::SEND_INVALID_DATA);
        }
        if n > super::MAX_MSG_SIZE {
            return Err(mr::SEND_NO_BUFFER);
        }
        let src = &msg.bytes()[..n];
        let mbits = bytes::get_u32(src, 0).unwrap_or(0);
        let dest_name = PortName(bytes::get_u32(src, 8).unwrap_or(0));
        let reply_name = PortName(bytes::get_u32(src, 16).unwrap_or(0));
        let id = bytes::get_u32(src, 28).unwrap_or(0) as i32;
        let mut k = self.new_kmsg();
        k.bytes.extend_from_slice(src);
        k.size = send_size;
        k.id = id;
        if mbits & msgh_bits::COMPLEX == 0
            && self.copyin_header_fast(slot, &mut k, dest_name, reply_name, mbits)
        {
            return Ok(k);
        }
        self.begin_txn();
        let res = self.copyin_header(slot, &mut k, dest_name, reply_name, mbits);
        let res = match (res, k.dest) {
            (Ok(()), Some(dest)) if mbits & msgh_bits::COMPLEX != 0 => {
                self.copyin_body(slot, msg, &mut k, dest)
            }
            (r, _) => r,
        };
        match res {
            Ok(()) => Ok(k),
            Err(c) => {
                self.rollback(slot);
                self.recycle_kmsg(k);
                Err(c)
            }
        }
    }

    /// Puts a copied-in message back: the sender keeps everything.
    pub(crate) fn abort_copyin(&mut self, slot: u32, k: KBox) {
        self.rollback(slot);
        self.recycle_kmsg(k);
    }
}

/// Saturating helper used by port calls.
pub(crate) fn urefs_overflow(urefs: u32, delta: i64) -> bool {
    delta > 0 && (i64::from(urefs) + delta) > i64::from(UREFS_MAX)
}
