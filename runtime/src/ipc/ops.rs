//! The `mach_port_*` calls (gnumach `ipc/mach_port.c`, `ipc_right_dealloc`,
//! `ipc_right_delta`, `ipc_right_dnrequest`, `ipc_port_nsrequest`, …) on the kernel state.

use super::copyin::urefs_overflow;
use super::kmsg::KObj;
use super::state::{et, Entry, Obj, PortId, Receiver, State, QLIMIT_MAX, UREFS_MAX};
use super::{PortStatus, PortType};
use crate::rights::RightKind;
use crate::wire::{msg_return as mr, notify, type_name as tn, KernReturn, PortName};

type Kr<T> = Result<T, KernReturn>;

fn kr_code(c: u32) -> KernReturn {
    KernReturn(c as i32)
}

impl State {
    /// `ipc_right_lookup_write`.
    fn lookup(&self, slot: u32, name: PortName) -> Kr<Entry> {
        if !self.space_active(slot) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        match self.entry(slot, name) {
            Some(e) if e.ty != 0 => Ok(e),
            _ => Err(KernReturn::KERN_INVALID_NAME),
        }
    }

    /// `ipc_port_translate_receive`.
    fn translate_receive(&self, slot: u32, name: PortName) -> Kr<PortId> {
        let e = self.lookup(slot, name)?;
        match e.port() {
            Some(p) if e.ty & et::RECEIVE != 0 => Ok(p),
            _ => Err(KernReturn::KERN_INVALID_RIGHT),
        }
    }

    fn decrement_srights(&mut self, p: PortId) -> Option<(PortId, u32)> {
        let port = self.pm(p)?;
        port.srights = port.srights.saturating_sub(1);
        if port.srights == 0 {
            port.nsrequest.take().map(|n| (n, port.mscount))
        } else {
            None
        }
    }

    fn remove_reverse(&mut self, slot: u32, p: PortId, name: PortName) {
        if let Some(sp) = self.spm(slot) {
            if sp.reverse.get(&p) == Some(&name) {
                sp.reverse.remove(&p);
            }
        }
    }

    /// `mach_port_allocate`.
    pub(crate) fn op_allocate(&mut self, slot: u32, kind: RightKind) -> Kr<PortName> {
        if !self.space_active(slot) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        let (obj, ty, urefs) = match kind {
            RightKind::Receive => (Obj::None, et::RECEIVE, 0),
            RightKind::PortSet => (Obj::None, et::PORT_SET, 0),
            RightKind::DeadName => (Obj::None, et::DEAD_NAME, 1),
            _ => return Err(KernReturn::KERN_INVALID_VALUE),
        };
        let name = self.alloc_name(slot).ok_or(KernReturn::KERN_NO_SPACE)?;
        let obj = match kind {
            RightKind::Receive => Obj::Port(self.alloc_port(Receiver::Space { slot, name })),
            RightKind::PortSet => Obj::Pset(self.alloc_pset()),
            _ => obj,
        };
        self.set_entry(
            slot,
            name,
            Entry {
                obj,
                ty,
                urefs,
                request: false,
            },
        );
        Ok(name)
    }

    /// `mach_port_destroy`.
    pub(crate) fn op_destroy(&mut self, slot: u32, name: PortName) -> Kr<()> {
        self.lookup(slot, name)?;
        self.right_destroy(slot, name);
        Ok(())
    }

    fn dead_name_dec(&mut self, slot: u32, name: PortName) {
        if let Some(mut e) = self.entry(slot, name) {
            if e.urefs <= 1 {
                self.free_name(slot, name);
            } else {
                e.urefs -= 1;
                self.set_entry(slot, name, e);
            }
        }
    }

    /// `mach_port_deallocate` (`ipc_right_dealloc`).
    pub(crate) fn op_deallocate(&mut self, slot: u32, name: PortName) -> Kr<()> {
        self.lookup(slot, name)?;
        self.right_check(slot, name);
        let e = self.lookup(slot, name)?;
        let ty = e.ty & !et::PORT_SET;
        if ty == et::DEAD_NAME {
            self.dead_name_dec(slot, name);
            return Ok(());
        }
        let p = match e.port() {
            Some(p) if e.ty & et::PORT_SET == 0 => p,
            _ => return Err(KernReturn::KERN_INVALID_RIGHT),
        };
        match ty {
            et::SEND_ONCE => {
                let dn = self.dncancel(slot, p, name);
                self.free_name(slot, name);
                self.notify_send_once(p);
                if let Some(dn) = dn {
                    self.notify_port_deleted(dn, name);
                }
            }
            et::SEND => {
                let mut ns = None;
                let mut dn = None;
                if e.urefs <= 1 {
                    ns = self.decrement_srights(p);
                    dn = self.dncancel(slot, p, name);
                    self.remove_reverse(slot, p, name);
                    self.port_release(p);
                    self.free_name(slot, name);
                } else {
                    self.set_entry(
                        slot,
                        name,
                        Entry {
                            urefs: e.urefs - 1,
                            ..e
                        },
                    );
                }
                if let Some((n, c)) = ns {
                    self.notify_no_senders(n, c);
                }
                if let Some(dn) = dn {
                    self.notify_port_deleted(dn, name);
                }
            }
            t if t == et::SEND | et::RECEIVE => {
                let mut ns = None;
                if e.urefs <= 1 {
                    ns = self.decrement_srights(p);
                    self.set_entry(
                        slot,
                        name,
                        Entry {
                            ty: et::RECEIVE,
                            urefs: 0,
                            ..e
                        },
                    );
                } else {
                    self.set_entry(
                        slot,
                        name,
                        Entry {
                            urefs: e.urefs - 1,
                            ..e
                        },
                    );
                }
                if let Some((n, c)) = ns {
                    self.notify_no_senders(n, c);
                }
            }
            _ => return Err(KernReturn::KERN_INVALID_RIGHT),
        }
        Ok(())
    }

    /// `mach_port_mod_refs` (`ipc_right_delta`).
    pub(crate) fn op_mod_refs(
        &mut self,
        slot: u32,
        name: PortName,
        right: RightKind,
        delta: i32,
    ) -> Kr<()> {
        let e = self.lookup(slot, name)?;
        let delta = i64::from(delta);
        match right {
            RightKind::PortSet => {
                let s = match e.obj {
                    Obj::Pset(s) if e.ty & et::PORT_SET != 0 => s,
                    _ => return Err(KernReturn::KERN_INVALID_RIGHT),
                };
                if delta == 0 {
                    return Ok(());
                }
                if delta != -1 {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                self.free_name(slot, name);
                self.pset_destroy(s);
                Ok(())
            }
            RightKind::Receive => {
                let p = match e.port() {
                    Some(p) if e.ty & et::RECEIVE != 0 => p,
                    _ => return Err(KernReturn::KERN_INVALID_RIGHT),
                };
                if delta == 0 {
                    return Ok(());
                }
                if delta != -1 {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                let mut dn = None;
                if e.ty & et::SEND != 0 {
                    // The send right turns into a dead name right away.
                    let urefs = if e.request { e.urefs + 1 } else { e.urefs };
                    self.set_entry(
                        slot,
                        name,
                        Entry {
                            obj: Obj::None,
                            ty: et::DEAD_NAME,
                            urefs: urefs.min(UREFS_MAX),
                            request: false,
                        },
                    );
                    // Like GNU Mach, the dead-name request stays registered: the port's
                    // destruction below fires it, for the dead name's extra reference.
                } else {
                    dn = self.dncancel(slot, p, name);
                    self.free_name(slot, name);
                }
                self.clear_receiver(p);
                self.port_destroy(p);
                if let Some(dn) = dn {
                    self.notify_port_deleted(dn, name);
                }
                Ok(())
            }
            RightKind::SendOnce => {
                if e.ty & et::SEND_ONCE == 0 {
                    return Err(KernReturn::KERN_INVALID_RIGHT);
                }
                if !(-1..=0).contains(&delta) {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                if self.right_check(slot, name) {
                    return Err(KernReturn::KERN_INVALID_RIGHT);
                }
                if delta == 0 {
                    return Ok(());
                }
                let p = e.port().ok_or(KernReturn::KERN_INVALID_RIGHT)?;
                let dn = self.dncancel(slot, p, name);
                self.free_name(slot, name);
                self.notify_send_once(p);
                if let Some(dn) = dn {
                    self.notify_port_deleted(dn, name);
                }
                Ok(())
            }
            RightKind::DeadName => {
                if e.ty & et::SEND_RIGHTS != 0 {
                    if !self.right_check(slot, name) {
                        return Err(KernReturn::KERN_INVALID_RIGHT);
                    }
                } else if e.ty & et::DEAD_NAME == 0 {
                    return Err(KernReturn::KERN_INVALID_RIGHT);
                }
                let e = self.lookup(slot, name)?;
                let urefs = e.urefs;
                if delta < 0 && -delta > i64::from(urefs) {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                if urefs_overflow(urefs, delta) {
                    return Err(KernReturn::KERN_UREFS_OVERFLOW);
                }
                let n = (i64::from(urefs) + delta) as u32;
                if n == 0 {
                    self.free_name(slot, name);
                } else {
                    self.set_entry(slot, name, Entry { urefs: n, ..e });
                }
                Ok(())
            }
            RightKind::Send => {
                if e.ty & et::SEND == 0 {
                    return Err(KernReturn::KERN_INVALID_RIGHT);
                }
                let urefs = e.urefs;
                if delta < 0 && -delta > i64::from(urefs) {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                // The maximum for send rights is MACH_PORT_UREFS_MAX - 1.
                if urefs_overflow(urefs + 1, delta) {
                    return Err(KernReturn::KERN_UREFS_OVERFLOW);
                }
                if self.right_check(slot, name) {
                    return Err(KernReturn::KERN_INVALID_RIGHT);
                }
                let p = e.port().ok_or(KernReturn::KERN_INVALID_RIGHT)?;
                let n = (i64::from(urefs) + delta) as u32;
                if n == 0 {
                    let ns = self.decrement_srights(p);
                    let mut dn = None;
                    if e.ty & et::RECEIVE != 0 {
                        self.set_entry(
                            slot,
                            name,
                            Entry {
                                ty: e.ty & !et::SEND,
                                urefs: 0,
                                ..e
                            },
                        );
                    } else {
                        dn = self.dncancel(slot, p, name);
                        self.remove_reverse(slot, p, name);
                        self.port_release(p);
                        self.free_name(slot, name);
                    }
                    if let Some((n, c)) = ns {
                        self.notify_no_senders(n, c);
                    }
                    if let Some(dn) = dn {
                        self.notify_port_deleted(dn, name);
                    }
                } else {
                    self.set_entry(slot, name, Entry { urefs: n, ..e });
                }
                Ok(())
            }
        }
    }

    /// `mach_port_type` / `ipc_right_info`: type bits (with `MACH_PORT_TYPE_DNREQUEST`) and
    /// user references, after turning send rights to dead ports into dead names.
    pub(crate) fn op_info(&mut self, slot: u32, name: PortName) -> Kr<(PortType, u32)> {
        self.lookup(slot, name)?;
        self.right_check(slot, name);
        let e = self.lookup(slot, name)?;
        let mut t = PortType(u32::from(e.ty) << 16);
        if e.request {
            t.0 |= PortType::DNREQUEST.0;
        }
        Ok((t, e.urefs))
    }

    /// `mach_port_get_refs`.
    pub(crate) fn op_get_refs(&mut self, slot: u32, name: PortName, right: RightKind) -> Kr<u32> {
        let (t, urefs) = self.op_info(slot, name)?;
        let bit = 1u32 << (right.number() + 16);
        if t.0 & bit == 0 {
            return Ok(0);
        }
        Ok(match right {
            RightKind::SendOnce | RightKind::PortSet | RightKind::Receive => 1,
            RightKind::Send | RightKind::DeadName => urefs,
        })
    }

    /// Commits a rights-only transaction (no message).
    fn commit_rights(&mut self, slot: u32) {
        let mut k = super::kmsg::KMsg::empty();
        let mut dummy_storage = [0u8; 0];
        let mut dummy = crate::msg::MsgBuf::new(&mut dummy_storage);
        self.commit(slot, &mut dummy, &mut k);
        // Not a message: undo the message counter the commit bumped.
        self.counters.kmsgs -= 1;
    }

    /// Copies in one right as a MIG request carrying it would (`MACH_SEND_INVALID_RIGHT` on
    /// failure, as the calling stub would see).
    fn copyin_poly(&mut self, slot: u32, name: PortName, msgt: u32) -> Kr<KObj> {
        if !name.is_valid() {
            return Ok(if name.is_dead() {
                KObj::Dead
            } else {
                KObj::Null
            });
        }
        self.begin_txn();
        match self.copyin_right(slot, name, msgt, true) {
            Ok((o, so)) => {
                if let Some(so) = so {
                    self.txn.push_deleted(so, name);
                }
                self.commit_rights(slot);
                Ok(o)
            }
            Err(()) => {
                self.rollback(slot);
                Err(kr_code(mr::SEND_INVALID_RIGHT))
            }
        }
    }

    /// `ipc_object_copyout_name` without overflow: inserts a right under a chosen name.
    fn copyout_name(&mut self, slot: u32, o: KObj, ty: u32, name: PortName) -> Kr<()> {
        let p = match o {
            KObj::Port(p) => p,
            _ => return Err(KernReturn::KERN_INVALID_CAPABILITY),
        };
        if !self.space_active(slot) {
            self.destroy_obj(o, ty);
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        let oname = if ty != tn::PORT_SEND_ONCE {
            self.reverse(slot, p)
        } else {
            None
        };
        let existing = self.entry(slot, name).filter(|e| e.ty != 0);
        match oname {
            Some(on) if on != name => {
                self.destroy_obj(o, ty);
                return Err(KernReturn::KERN_RIGHT_EXISTS);
            }
            Some(_) => {}
            None => {
                if existing.is_some() {
                    self.destroy_obj(o, ty);
                    return Err(KernReturn::KERN_NAME_EXISTS);
                }
                if !self.port_active(p) {
                    self.destroy_obj(o, ty);
                    return Err(KernReturn::KERN_INVALID_CAPABILITY);
                }
            }
        }
        if ty == tn::PORT_SEND {
            if let Some(e) = existing {
                if e.ty & et::SEND != 0 && e.urefs + 1 >= UREFS_MAX {
                    self.destroy_obj(o, ty);
                    return Err(KernReturn::KERN_UREFS_OVERFLOW);
                }
            }
        }
        self.copyout_named(slot, name, p, ty);
        Ok(())
    }

    /// `mach_port_insert_right(task, name, poly, polyPoly)` where `poly` is a name in
    /// `src` (the calling task) and the right lands in `dst`.
    pub(crate) fn op_insert_right(
        &mut self,
        dst: u32,
        name: PortName,
        src: u32,
        poly: PortName,
        disposition: u32,
    ) -> Kr<()> {
        if !self.space_active(src) || !self.space_active(dst) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        if !tn::is_port_any(disposition) {
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        let o = self.copyin_poly(src, poly, disposition)?;
        let ty = tn::received_form(disposition);
        if !name.is_valid() {
            self.destroy_obj(o, ty);
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        self.copyout_name(dst, o, ty, name)
    }

    /// Moves or copies a right from `src` to `dst` exactly as a message carrying it would
    /// (copyin with `disposition`, copyout in received form).
    pub(crate) fn op_transfer(
        &mut self,
        src: u32,
        name: PortName,
        disposition: u32,
        dst: u32,
    ) -> Kr<PortName> {
        if !self.space_active(src) || !self.space_active(dst) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        if !tn::is_port_any(disposition) {
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        let o = self.copyin_poly(src, name, disposition)?;
        Ok(self.copyout_object(dst, o, tn::received_form(disposition)))
    }

    /// `mach_port_extract_right` (same space): the right and its received type, copied
    /// out again into the space.
    pub(crate) fn op_extract_right(
        &mut self,
        slot: u32,
        name: PortName,
        msgt: u32,
    ) -> Kr<(PortName, u32)> {
        if !tn::is_port_any(msgt) {
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        self.lookup(slot, name)?;
        self.begin_txn();
        let o = match self.copyin_right(slot, name, msgt, true) {
            Ok((o, so)) => {
                if let Some(so) = so {
                    self.txn.push_deleted(so, name);
                }
                self.commit_rights(slot);
                o
            }
            Err(()) => {
                self.rollback(slot);
                return Err(KernReturn::KERN_INVALID_RIGHT);
            }
        };
        let ty = tn::received_form(msgt);
        Ok((self.copyout_object(slot, o, ty), ty))
    }

    /// `mach_port_move_member`.
    pub(crate) fn op_move_member(
        &mut self,
        slot: u32,
        member: PortName,
        after: PortName,
    ) -> Kr<()> {
        let e = self.lookup(slot, member)?;
        let p = match e.port() {
            Some(p) if e.ty & et::RECEIVE != 0 => p,
            _ => return Err(KernReturn::KERN_INVALID_RIGHT),
        };
        let nset = if after.is_null() {
            None
        } else {
            let a = self.entry(slot, after).filter(|e| e.ty != 0);
            match a {
                None => return Err(KernReturn::KERN_INVALID_NAME),
                Some(Entry {
                    obj: Obj::Pset(s),
                    ty,
                    ..
                }) if ty & et::PORT_SET != 0 => Some(s),
                Some(_) => return Err(KernReturn::KERN_INVALID_RIGHT),
            }
        };
        let oset = self.p(p).and_then(|p| p.pset);
        if oset == nset {
            return if nset.is_none() {
                Err(KernReturn::KERN_NOT_IN_SET)
            } else {
                Ok(())
            };
        }
        if let Some(o) = oset {
            self.pset_remove(o, p);
        }
        if let Some(n) = nset {
            self.pset_add(n, p);
        }
        Ok(())
    }

    /// `mach_port_request_notification`. `notify` is a name in the caller's space with
    /// `MAKE_SEND_ONCE` or `MOVE_SEND_ONCE`; null cancels. Returns the previous send-once
    /// right, copied out into the caller's space (or `MACH_PORT_NULL`).
    pub(crate) fn op_request_notification(
        &mut self,
        slot: u32,
        name: PortName,
        id: i32,
        sync: u32,
        notify_name: PortName,
        disposition: u32,
    ) -> Kr<PortName> {
        if !self.space_active(slot) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        if !notify_name.is_null()
            && disposition != tn::MAKE_SEND_ONCE
            && disposition != tn::MOVE_SEND_ONCE
        {
            // What the kernel's MIG server stub answers for a bad descriptor.
            return Err(KernReturn::MIG_BAD_ARGUMENTS);
        }
        let notify = self.copyin_poly(slot, notify_name, disposition)?;
        let notify_port = match notify {
            KObj::Dead => return Err(KernReturn::KERN_INVALID_CAPABILITY),
            KObj::Null => None,
            KObj::Port(p) => Some(p),
        };
        let res = self.request_notification(slot, name, id, sync, notify_port);
        match res {
            Ok(prev) => Ok(match prev {
                Some(p) => self.copyout_object(slot, KObj::Port(p), tn::PORT_SEND_ONCE),
                None => PortName::NULL,
            }),
            Err(e) => {
                // The kernel destroys the request message, and with it the notify right.
                if let Some(n) = notify_port {
                    self.notify_send_once(n);
                }
                Err(e)
            }
        }
    }

    fn request_notification(
        &mut self,
        slot: u32,
        name: PortName,
        id: i32,
        sync: u32,
        notify_port: Option<PortId>,
    ) -> Kr<Option<PortId>> {
        match id {
            notify::PORT_DESTROYED => {
                if sync != 0 {
                    return Err(KernReturn::KERN_INVALID_VALUE);
                }
                let p = self.translate_receive(slot, name)?;
                let port = self.pm(p).ok_or(KernReturn::KERN_INVALID_RIGHT)?;
                Ok(core::mem::replace(&mut port.pdrequest, notify_port))
            }
            notify::NO_SENDERS => {
                let p = self.translate_receive(slot, name)?;
                let port = self.pm(p).ok_or(KernReturn::KERN_INVALID_RIGHT)?;
                let previous = port.nsrequest.take();
                let mscount = port.mscount;
                match notify_port {
                    Some(n) if port.srights == 0 && sync <= mscount => {
                        self.notify_no_senders(n, mscount);
                    }
                    other => port.nsrequest = other,
                }
                Ok(previous)
            }
            notify::DEAD_NAME => self.dnrequest(slot, name, sync != 0, notify_port),
            _ => Err(KernReturn::KERN_INVALID_VALUE),
        }
    }

    /// `ipc_right_dnrequest`.
    fn dnrequest(
        &mut self,
        slot: u32,
        name: PortName,
        immediate: bool,
        notify_port: Option<PortId>,
    ) -> Kr<Option<PortId>> {
        let e = self.lookup(slot, name)?;
        if e.ty & et::PORT_RIGHTS != 0 && !self.right_check(slot, name) {
            let p = e.port().ok_or(KernReturn::KERN_INVALID_RIGHT)?;
            let previous = self.dncancel(slot, p, name);
            let mut ne = e;
            match notify_port {
                None => ne.request = false,
                Some(n) => {
                    if let Some(port) = self.pm(p) {
                        port.dnrequests.insert((slot, name), n);
                    }
                    ne.request = true;
                }
            }
            self.set_entry(slot, name, ne);
            return Ok(previous);
        }
        let e = self.lookup(slot, name)?;
        if e.ty & et::DEAD_NAME != 0 && immediate {
            if let Some(n) = notify_port {
                if urefs_overflow(e.urefs, 1) {
                    return Err(KernReturn::KERN_UREFS_OVERFLOW);
                }
                self.set_entry(
                    slot,
                    name,
                    Entry {
                        urefs: e.urefs + 1,
                        ..e
                    },
                );
                self.notify_dead_name(n, name);
                return Ok(None);
            }
        }
        if e.ty & et::PORT_OR_DEAD != 0 {
            Err(KernReturn::KERN_INVALID_ARGUMENT)
        } else {
            Err(KernReturn::KERN_INVALID_RIGHT)
        }
    }

    /// `mach_port_get_receive_status`.
    pub(crate) fn op_receive_status(&mut self, slot: u32, name: PortName) -> Kr<PortStatus> {
        let p = self.translate_receive(slot, name)?;
        let port = self.p(p).ok_or(KernReturn::KERN_INVALID_RIGHT)?;
        let pset = port.pset;
        let mut st = PortStatus {
            pset: PortName::NULL,
            seqno: port.seqno,
            mscount: port.mscount,
            qlimit: port.qlimit,
            msgcount: port.msgcount,
            sorights: port.sorights,
            srights: port.srights > 0,
            pdrequest: port.pdrequest.is_some(),
            nsrequest: port.nsrequest.is_some(),
        };
        if let Some(s) = pset {
            if let Some(sp) = self.sp(slot) {
                st.pset = sp
                    .entries
                    .iter()
                    .find(|(_, e)| e.obj == Obj::Pset(s))
                    .map(|(n, _)| PortName(n))
                    .unwrap_or(PortName::NULL);
            }
        }
        Ok(st)
    }

    /// `mach_port_set_qlimit`.
    pub(crate) fn op_set_qlimit(&mut self, slot: u32, name: PortName, qlimit: u32) -> Kr<()> {
        if !self.space_active(slot) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        if qlimit > QLIMIT_MAX {
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        let p = self.translate_receive(slot, name)?;
        let mut woken = Vec::new();
        if let Some(port) = self.pm(p) {
            if qlimit > port.qlimit {
                for _ in 0..(qlimit - port.qlimit) {
                    match port.blocked.pop_front() {
                        Some(w) => woken.push(w),
                        None => break,
                    }
                }
            }
            port.qlimit = qlimit;
        }
        for w in woken {
            self.complete(w, None);
        }
        Ok(())
    }

    /// `mach_port_set_mscount`.
    pub(crate) fn op_set_mscount(&mut self, slot: u32, name: PortName, mscount: u32) -> Kr<()> {
        let p = self.translate_receive(slot, name)?;
        if let Some(port) = self.pm(p) {
            port.mscount = mscount;
        }
        Ok(())
    }

    /// `mach_port_set_seqno`.
    pub(crate) fn op_set_seqno(&mut self, slot: u32, name: PortName, seqno: u32) -> Kr<()> {
        let p = self.translate_receive(slot, name)?;
        if let Some(port) = self.pm(p) {
            port.seqno = seqno;
        }
        Ok(())
    }

    /// `mach_port_rename`.
    pub(crate) fn op_rename(&mut self, slot: u32, old: PortName, new: PortName) -> Kr<()> {
        if !self.space_active(slot) {
            return Err(KernReturn::KERN_INVALID_TASK);
        }
        if !new.is_valid() {
            return Err(KernReturn::KERN_INVALID_VALUE);
        }
        if self.entry(slot, new).is_some() {
            return Err(KernReturn::KERN_NAME_EXISTS);
        }
        self.lookup(slot, old)?;
        self.right_check(slot, old);
        let e = self.lookup(slot, old)?;
        if let Some(p) = e.port() {
            if e.request {
                if let Some(port) = self.pm(p) {
                    if let Some(so) = port.dnrequests.remove(&(slot, old)) {
                        port.dnrequests.insert((slot, new), so);
                    }
                }
            }
            if e.ty & et::RECEIVE != 0 {
                if let Some(port) = self.pm(p) {
                    port.receiver = Receiver::Space { slot, name: new };
                }
            } else if e.ty & et::SEND != 0 {
                if let Some(sp) = self.spm(slot) {
                    sp.reverse.insert(p, new);
                }
            }
        }
        self.free_name(slot, old);
        self.set_entry(slot, new, e);
        Ok(())
    }
}
