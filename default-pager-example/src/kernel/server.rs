//! The kernel's servers, generated from `defs/`: `mach` (host-privileged port and control
//! ports) and `mach_port` (task ports), chained in one demux over the kernel port set.
//!
//! The request port of every call is looked up in the kernel object table: a call on the
//! wrong kind of port gets the error GNU Mach's intran conversion gives (`KERN_INVALID_HOST`,
//! `KERN_INVALID_TASK`, `KERN_INVALID_ARGUMENT`).

use super::stats::Dir;
use super::vm::{self, VmObject};
use super::{krecv, lock, KInner, KObject, PAGE};
use crate::mig::mach::server::{mach_server, MachServer, MemoryObjectGetAttributesReply};
use crate::mig::mach_port::server::{mach_port_server, MachPortNamesReply, MachPortServer};
use crate::mig::memory_object as mo_client;
use mig_runtime::ipc;
use mig_runtime::rights::RightKind;
use mig_runtime::wire::{type_name, Target};
use mig_runtime::{
    Demux, KernReturn, MsgBuf, OolBuffer, Poly, PortName, ReceivedRight, SendOnceRight, SendRight,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) struct KernelServer {
    pub k: Arc<KInner>,
}

impl Demux for KernelServer {
    fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool {
        let t = Target::X86_64;
        let (id, local) = match request.header(t) {
            Ok(h) => (h.id, h.local),
            Err(_) => (0, PortName::NULL),
        };
        let handled = mach_server(self, request, reply) || mach_port_server(self, request, reply);
        let code = mig_runtime::stub::retcode(reply.bytes(), t);
        if code == KernReturn::MIG_BAD_ARGUMENTS || code == KernReturn::MIG_BAD_ID {
            let on_control = matches!(self.k.kobject(local), Some(KObject::Control(_)));
            if on_control {
                self.k
                    .counters
                    .bad_pager_calls
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.k.error(format!(
                "refused message id {id} on kernel port {local:?}{}: {}",
                if on_control { " (a control port)" } else { "" },
                if code == KernReturn::MIG_BAD_ID {
                    "no such call on this port (MIG_BAD_ID)"
                } else {
                    "malformed message (MIG_BAD_ARGUMENTS)"
                }
            ));
        }
        handled
    }
}

impl KernelServer {
    fn object(&self, ctl: PortName, call: &str) -> Result<Arc<VmObject>, KernReturn> {
        match self.k.kobject(ctl) {
            Some(KObject::Control(w)) => match w.upgrade() {
                Some(o) => Ok(o),
                None => Err(self.refuse(ctl, call, "the object is gone")),
            },
            Some(KObject::Name(w)) => {
                let id = w.upgrade().map_or(0, |o| o.id);
                Err(self.refuse(
                    ctl,
                    call,
                    &format!("the name port of object {id}, not a memory object control port"),
                ))
            }
            _ => Err(self.refuse(ctl, call, "not a memory object control port")),
        }
    }

    fn refuse(&self, port: PortName, call: &str, why: &str) -> KernReturn {
        self.k
            .counters
            .bad_pager_calls
            .fetch_add(1, Ordering::Relaxed);
        self.k
            .error(format!("{call} on kernel port {port:?} refused: {why}"));
        KernReturn::KERN_INVALID_ARGUMENT
    }

    fn bad_args(&self, obj: &VmObject, e: String) -> KernReturn {
        self.k
            .counters
            .bad_pager_calls
            .fetch_add(1, Ordering::Relaxed);
        self.k.error(format!(
            "object {}: refused a call from its pager: {e}",
            obj.id
        ));
        KernReturn::KERN_INVALID_ARGUMENT
    }

    fn task(&self, port: PortName) -> Result<ipc::Task, KernReturn> {
        self.k
            .counters
            .mach_port_calls
            .fetch_add(1, Ordering::Relaxed);
        match self.k.kobject(port) {
            Some(KObject::Task(t)) => Ok(t),
            _ => Err(KernReturn::KERN_INVALID_TASK),
        }
    }

    /// Sends a `*_completed` message to `reply_to` (a send-once right), if there is one.
    fn completed(
        &self,
        obj: &VmObject,
        reply_to: ReceivedRight,
        kind: &'static str,
        f: impl FnOnce(
            &KInner,
            Poly<'static>,
            &mig_runtime::ReceiveRight,
        ) -> Result<(), mig_runtime::RpcError>,
    ) {
        let so = match reply_to {
            ReceivedRight::SendOnce(so) => so,
            ReceivedRight::Send(s) => {
                drop(s);
                return;
            }
            other => {
                let _ = other.into_raw();
                return;
            }
        };
        let ctl_name = lock(&obj.st).ctl_name;
        let ctl = std::mem::ManuallyDrop::new(krecv(&self.k, ctl_name));
        let r = f(&self.k, Poly::MoveSendOnce(so), &ctl);
        if let Err(e) = r {
            self.k.error(format!("{kind} for object {}: {e}", obj.id));
        }
        self.k.trace.record(Dir::ToPager, kind, obj.id, String::new);
    }
}

fn move_disposition(received: u32) -> u32 {
    match received {
        type_name::PORT_SEND_ONCE => type_name::MOVE_SEND_ONCE,
        type_name::PORT_RECEIVE => type_name::MOVE_RECEIVE,
        _ => type_name::MOVE_SEND,
    }
}

fn right_kind(n: u32) -> Result<RightKind, KernReturn> {
    Ok(match n {
        0 => RightKind::Send,
        1 => RightKind::Receive,
        2 => RightKind::SendOnce,
        3 => RightKind::PortSet,
        4 => RightKind::DeadName,
        _ => return Err(KernReturn::KERN_INVALID_VALUE),
    })
}

impl MachServer for KernelServer {
    fn vm_set_default_memory_manager(
        &self,
        host_priv: PortName,
        default_manager: SendRight,
    ) -> Result<SendRight, KernReturn> {
        if !matches!(self.k.kobject(host_priv), Some(KObject::Host)) {
            return Err(KernReturn::KERN_INVALID_HOST);
        }
        self.k
            .counters
            .vm_set_default_memory_manager
            .fetch_add(1, Ordering::Relaxed);
        let mut dmm = lock(&self.k.dmm);
        if default_manager.is_valid() {
            let new = default_manager.name();
            let old = dmm.replace(default_manager);
            let replaced = old.as_ref().is_some_and(|o| o.is_valid());
            self.k.trace.record(
                Dir::ToKernel,
                "vm_set_default_memory_manager",
                0,
                || {
                    if replaced {
                        format!("replaced the default memory manager (new port {new:?}); objects created before keep theirs")
                    } else {
                        format!("registered the default memory manager (port {new:?})")
                    }
                },
            );
            Ok(old.unwrap_or_else(SendRight::null))
        } else {
            drop(default_manager);
            self.k
                .trace
                .record(Dir::ToKernel, "vm_set_default_memory_manager", 0, || {
                    "query (null port)".into()
                });
            match dmm.as_ref() {
                Some(d) if d.is_valid() => d.try_clone().map_err(|_| KernReturn::KERN_FAILURE),
                _ => Ok(SendRight::null()),
            }
        }
    }

    fn memory_object_data_supply(
        &self,
        memory_control: PortName,
        offset: u64,
        data: OolBuffer,
        lock_value: i32,
        precious: i32,
        reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_data_supply")?;
        self.k
            .counters
            .memory_object_data_supply
            .fetch_add(1, Ordering::Relaxed);
        self.k
            .trace
            .record(Dir::ToKernel, "memory_object_data_supply", obj.id, || {
                format!(
                    "offset {offset:#x} {} bytes ({} page(s)) lock {lock_value} precious {precious}",
                    data.len(),
                    data.len() / PAGE
                )
            });
        vm::note_past_hint(&self.k, &obj, "past hint: data_supply", offset);
        let r = vm::supply(&self.k, &obj, offset, &data, precious != 0);
        let (result, err_off) = match &r {
            Ok(()) => (KernReturn::KERN_SUCCESS, 0),
            Err(_) => (KernReturn::KERN_INVALID_ARGUMENT, offset),
        };
        let len = data.len() as u64;
        self.completed(
            &obj,
            reply_to,
            "memory_object_supply_completed",
            |k, so, ctl| {
                k.counters
                    .memory_object_supply_completed
                    .fetch_add(1, Ordering::Relaxed);
                mo_client::client::memory_object_supply_completed(
                    &k.sender(),
                    so,
                    ctl,
                    offset,
                    len,
                    result.0,
                    err_off,
                )
            },
        );
        r.map_err(|e| self.bad_args(&obj, e))
    }

    fn memory_object_data_unavailable(
        &self,
        memory_control: PortName,
        offset: u64,
        size: u64,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_data_unavailable")?;
        self.k
            .counters
            .memory_object_data_unavailable
            .fetch_add(1, Ordering::Relaxed);
        self.k.trace.record(
            Dir::ToKernel,
            "memory_object_data_unavailable",
            obj.id,
            || format!("offset {offset:#x} size {size:#x} → zero fill"),
        );
        vm::note_past_hint(&self.k, &obj, "past hint: data_unavailable", offset);
        vm::unavailable(&self.k, &obj, offset, size).map_err(|e| self.bad_args(&obj, e))
    }

    fn memory_object_data_error(
        &self,
        memory_control: PortName,
        offset: u64,
        size: u64,
        error_value: i32,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_data_error")?;
        self.k
            .counters
            .memory_object_data_error
            .fetch_add(1, Ordering::Relaxed);
        self.k
            .trace
            .record(Dir::ToKernel, "memory_object_data_error", obj.id, || {
                format!(
                    "offset {offset:#x} size {size:#x} error {:?} → UFFDIO_POISON (SIGBUS)",
                    KernReturn(error_value)
                )
            });
        vm::data_error(&self.k, &obj, offset, size, error_value).map_err(|e| self.bad_args(&obj, e))
    }

    fn memory_object_ready(
        &self,
        memory_control: PortName,
        may_cache: i32,
        copy_strategy: i32,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_ready")?;
        self.k
            .counters
            .memory_object_ready
            .fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&obj.st);
        st.ready = true;
        st.may_cache = may_cache != 0;
        st.copy_strategy = copy_strategy;
        Ok(())
    }

    fn memory_object_change_attributes(
        &self,
        memory_control: PortName,
        may_cache: i32,
        copy_strategy: i32,
        reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_change_attributes")?;
        self.k
            .counters
            .memory_object_change_attributes
            .fetch_add(1, Ordering::Relaxed);
        {
            let mut st = lock(&obj.st);
            st.may_cache = may_cache != 0;
            st.copy_strategy = copy_strategy;
        }
        self.completed(
            &obj,
            reply_to,
            "memory_object_change_completed",
            |k, so, _| {
                k.counters
                    .memory_object_change_completed
                    .fetch_add(1, Ordering::Relaxed);
                mo_client::client::memory_object_change_completed(
                    &k.sender(),
                    so,
                    may_cache,
                    copy_strategy,
                )
            },
        );
        Ok(())
    }

    fn memory_object_get_attributes(
        &self,
        memory_control: PortName,
    ) -> Result<MemoryObjectGetAttributesReply, KernReturn> {
        let obj = self.object(memory_control, "memory_object_get_attributes")?;
        self.k
            .counters
            .memory_object_get_attributes
            .fetch_add(1, Ordering::Relaxed);
        let st = lock(&obj.st);
        Ok(MemoryObjectGetAttributesReply {
            object_ready: i32::from(st.ready),
            may_cache: i32::from(st.may_cache),
            copy_strategy: st.copy_strategy,
        })
    }

    fn memory_object_lock_request(
        &self,
        memory_control: PortName,
        offset: u64,
        size: u64,
        should_return: i32,
        should_flush: i32,
        lock_value: i32,
        reply_to: ReceivedRight,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_lock_request")?;
        self.k
            .counters
            .memory_object_lock_request
            .fetch_add(1, Ordering::Relaxed);
        self.k
            .trace
            .record(Dir::ToKernel, "memory_object_lock_request", obj.id, || {
                format!("offset {offset:#x} size {size:#x} return {should_return} flush {should_flush} lock {lock_value}")
            });
        let pages = obj.pages.load(Ordering::Acquire) as u64;
        let first = offset / PAGE as u64;
        let n = size.div_ceil(PAGE as u64);
        if offset % PAGE as u64 != 0 || first.saturating_add(n) > pages {
            return Err(self.bad_args(
                &obj,
                format!("memory_object_lock_request: range {offset:#x}+{size:#x} is outside the object or unaligned"),
            ));
        }
        // Cleaning sends data_return to the pager: do it off the server threads, which must
        // never wait for a pager (the pager may be waiting for them).
        let k = Arc::clone(&self.k);
        let srv = KernelServer { k: Arc::clone(&k) };
        let spawned = std::thread::Builder::new()
            .name("kernel-lock-request".into())
            .spawn(move || {
                for idx in first..first + n {
                    let force = should_return == 2;
                    let ret = should_return != 0;
                    let r = if ret || should_flush != 0 {
                        vm::clean_page(&k, &obj, idx as usize, should_flush != 0, force && ret)
                    } else {
                        Ok(false)
                    };
                    if let Err(e) = r {
                        k.error(format!("lock_request on object {}: {e}", obj.id));
                    }
                }
                srv.completed(
                    &obj,
                    reply_to,
                    "memory_object_lock_completed",
                    |k, so, ctl| {
                        k.counters
                            .memory_object_lock_completed
                            .fetch_add(1, Ordering::Relaxed);
                        mo_client::client::memory_object_lock_completed(
                            &k.sender(),
                            so,
                            ctl,
                            offset,
                            size,
                        )
                    },
                );
            });
        spawned
            .map(|_| ())
            .map_err(|_| KernReturn::KERN_RESOURCE_SHORTAGE)
    }

    fn memory_object_destroy(
        &self,
        memory_control: PortName,
        reason: i32,
    ) -> Result<(), KernReturn> {
        let obj = self.object(memory_control, "memory_object_destroy")?;
        self.k
            .counters
            .memory_object_destroy
            .fetch_add(1, Ordering::Relaxed);
        self.k
            .trace
            .record(Dir::ToKernel, "memory_object_destroy", obj.id, || {
                format!("reason {:?}", KernReturn(reason))
            });
        let k = Arc::clone(&self.k);
        std::thread::Builder::new()
            .name("kernel-destroy".into())
            .spawn(move || vm::terminate(&k, &obj, false))
            .map(|_| ())
            .map_err(|_| KernReturn::KERN_RESOURCE_SHORTAGE)
    }
}

impl MachPortServer for KernelServer {
    fn mach_port_names(&self, task: PortName) -> Result<MachPortNamesReply, KernReturn> {
        let t = self.task(task)?;
        let (names, types) = t
            .port_names()
            .into_iter()
            .map(|(n, ty)| (n.0, ty.0))
            .unzip();
        Ok(MachPortNamesReply { names, types })
    }

    fn mach_port_type(&self, task: PortName, name: PortName) -> Result<u32, KernReturn> {
        Ok(self.task(task)?.port_type(name)?.0)
    }

    fn mach_port_rename(
        &self,
        task: PortName,
        old_name: PortName,
        new_name: PortName,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_rename(old_name, new_name)
    }

    fn mach_port_allocate(&self, task: PortName, right: u32) -> Result<PortName, KernReturn> {
        self.task(task)?.port_allocate(right_kind(right)?)
    }

    fn mach_port_destroy(&self, task: PortName, name: PortName) -> Result<(), KernReturn> {
        self.task(task)?.port_destroy(name)
    }

    fn mach_port_deallocate(&self, task: PortName, name: PortName) -> Result<(), KernReturn> {
        self.task(task)?.port_deallocate(name)
    }

    fn mach_port_get_refs(
        &self,
        task: PortName,
        name: PortName,
        right: u32,
    ) -> Result<u32, KernReturn> {
        self.task(task)?.port_get_refs(name, right_kind(right)?)
    }

    fn mach_port_mod_refs(
        &self,
        task: PortName,
        name: PortName,
        right: u32,
        delta: i32,
    ) -> Result<(), KernReturn> {
        self.task(task)?
            .port_mod_refs(name, right_kind(right)?, delta)
    }

    fn mach_port_set_qlimit(
        &self,
        task: PortName,
        name: PortName,
        qlimit: u32,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_set_qlimit(name, qlimit)
    }

    fn mach_port_set_mscount(
        &self,
        task: PortName,
        name: PortName,
        mscount: u32,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_set_mscount(name, mscount)
    }

    fn mach_port_move_member(
        &self,
        task: PortName,
        member: PortName,
        after: PortName,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_move_member(member, after)
    }

    fn mach_port_request_notification(
        &self,
        task: PortName,
        name: PortName,
        id: i32,
        sync: u32,
        notify: SendOnceRight,
    ) -> Result<SendOnceRight, KernReturn> {
        let t = self.task(task)?;
        let kt = &self.k.ktask;
        // The send-once right came into the kernel's space; move it into the target task so
        // the request is registered exactly as if the task had made it itself.
        let n = if notify.is_valid() {
            kt.transfer_right(notify.into_raw(), type_name::MOVE_SEND_ONCE, &t)?
        } else {
            let _ = notify.into_raw();
            PortName::NULL
        };
        let prev = t.port_request_notification(name, id, sync, n, type_name::MOVE_SEND_ONCE)?;
        if prev.is_valid() {
            let kn = t.transfer_right(prev, type_name::MOVE_SEND_ONCE, kt)?;
            Ok(SendOnceRight::from_raw(self.k.kspace(), kn))
        } else {
            Ok(SendOnceRight::null())
        }
    }

    fn mach_port_insert_right(
        &self,
        task: PortName,
        name: PortName,
        poly: ReceivedRight,
    ) -> Result<(), KernReturn> {
        let t = self.task(task)?;
        let (kn, ty) = poly.into_raw();
        let r = self
            .k
            .ktask
            .port_insert_right_into(&t, name, kn, move_disposition(ty));
        if r.is_err() && kn.is_valid() {
            let _ = self.k.ktask.port_deallocate(kn);
        }
        r
    }

    fn mach_port_extract_right(
        &self,
        task: PortName,
        name: PortName,
        msgt_name: u32,
    ) -> Result<Poly<'static>, KernReturn> {
        let t = self.task(task)?;
        let (n, ty) = t.port_extract_right(name, msgt_name)?;
        let kn = t.transfer_right(n, move_disposition(ty), &self.k.ktask)?;
        let space = self.k.kspace();
        Ok(match ty {
            type_name::PORT_SEND_ONCE => Poly::MoveSendOnce(SendOnceRight::from_raw(space, kn)),
            type_name::PORT_RECEIVE => {
                Poly::MoveReceive(mig_runtime::ReceiveRight::from_raw(space, kn))
            }
            _ => Poly::MoveSend(SendRight::from_raw(space, kn)),
        })
    }

    fn mach_port_get_receive_status(
        &self,
        task: PortName,
        name: PortName,
    ) -> Result<[i32; 9], KernReturn> {
        let s = self.task(task)?.port_get_receive_status(name)?;
        Ok([
            s.pset.0 as i32,
            s.seqno as i32,
            s.mscount as i32,
            s.qlimit as i32,
            s.msgcount as i32,
            s.sorights as i32,
            i32::from(s.srights),
            i32::from(s.pdrequest),
            i32::from(s.nsrequest),
        ])
    }

    fn mach_port_set_seqno(
        &self,
        task: PortName,
        name: PortName,
        seqno: u32,
    ) -> Result<(), KernReturn> {
        self.task(task)?.port_set_seqno(name, seqno)
    }
}
