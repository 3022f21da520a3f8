//! The pager's demuxer: the generated servers chained like the Hurd's
//! (`memory_object` → `memory_object_default` → `notify` → `default_pager`), each tried in
//! turn through its generated demux function until one knows the message id.
//!
//! Every message that arrives on an object port consumes that object's seqno, whatever
//! happens to it: handlers consume it when they admit the message, and the demuxer consumes
//! it for messages that never reached a handler (a failed type check in the generated stub,
//! an unknown id) or that a handler refused before admission. Without that, one malformed
//! message would block every later message on its object forever (the pitfall of the Hurd
//! pager noted in the reference, §2.1 "Seqno ordering").

use crate::gen::default_pager::server::{
    default_pager_server, DefaultPagerObjectsReply, DefaultPagerServer,
};
use crate::gen::memory_object::server::{seqnos_memory_object_server, SeqnosMemoryObjectServer};
use crate::gen::memory_object_default::server::{
    seqnos_memory_object_default_server, SeqnosMemoryObjectDefaultServer,
};
use crate::gen::notify::server::{seqnos_notify_server, SeqnosNotifyServer};
use crate::pager::{Core, Cx};
use crate::platform::Platform;
use crate::stats::MsgKind;
use core::cell::Cell;
use mig_runtime::stub;
use mig_runtime::wire::Target;
use mig_runtime::{
    Demux, KernReturn, MsgBuf, OolBuffer, PortName, ReceiveRight, SendRight, Transport,
};

type R<V = ()> = Result<V, KernReturn>;
type VmSize = u64;

/// One message being handled: the core plus the message's context. The generated server
/// traits are implemented on it.
struct Ctx<'a, T: Transport, P: Platform> {
    core: &'a Core<T, P>,
    cx: Cx,
    /// A handler (a trait method) was called.
    reached: Cell<bool>,
}

impl<T: Transport, P: Platform> Ctx<'_, T, P> {
    fn enter(&self) -> &Core<T, P> {
        self.reached.set(true);
        self.core
    }
}

impl<T: Transport, P: Platform> Core<T, P> {
    /// Handles one received message (GNU MIG's demux signature): tries the pager's four
    /// generated servers in turn. Returns `false` (with `MIG_BAD_ID` in the reply) when none
    /// knows the id.
    pub fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool {
        let t = Target::X86_64;
        let b = request.bytes();
        let ctx = Ctx {
            core: self,
            cx: Cx {
                msg_id: stub::msgh_id(b, t),
                port: stub::msgh_local(b, t),
                seqno: stub::msgh_seqno(b, t),
                consumed: Cell::new(false),
                kind: Cell::new(None),
            },
            reached: Cell::new(false),
        };
        let handled = seqnos_memory_object_server(&ctx, request, reply)
            || seqnos_memory_object_default_server(&ctx, request, reply)
            || seqnos_notify_server(&ctx, request, reply)
            || default_pager_server(&ctx, request, reply);
        if !handled {
            self.unhandled(&ctx.cx, MsgKind::UnknownId);
        } else if !ctx.reached.get() {
            // The generated stub refused it (MIG_BAD_ARGUMENTS) before calling us.
            self.unhandled(&ctx.cx, MsgKind::Malformed);
        } else if !ctx.cx.consumed.get() {
            // Refused by a handler before admission (e.g. memory_object_create sent to an
            // object port): the object's seqno still moves on.
            if let Some(obj) = self.object(ctx.cx.port) {
                let kind = ctx.cx.kind.get().unwrap_or(MsgKind::Unexpected);
                self.skip(&ctx.cx, &obj, ctx.cx.seqno, kind);
            }
        }
        handled
    }
}

impl<T: Transport, P: Platform> Demux for Core<T, P> {
    fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool {
        Core::demux(self, request, reply)
    }
}

impl<T: Transport, P: Platform> SeqnosMemoryObjectDefaultServer for Ctx<'_, T, P> {
    fn seqnos_memory_object_create(
        &self,
        old_memory_object: PortName,
        _seqno: u32,
        new_memory_object: ReceiveRight,
        new_object_size: VmSize,
        new_control_port: SendRight,
        new_name: SendRight,
        new_page_size: VmSize,
    ) -> R {
        self.enter().on_create(
            &self.cx,
            old_memory_object,
            new_memory_object,
            new_object_size,
            new_control_port,
            new_name,
            new_page_size,
        )
    }

    fn seqnos_memory_object_data_initialize(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control_port: SendRight,
        offset: u64,
        data: OolBuffer,
    ) -> R {
        self.enter().on_data_initialize(
            &self.cx,
            memory_object,
            seqno,
            memory_control_port,
            offset,
            data,
        )
    }
}

impl<T: Transport, P: Platform> SeqnosMemoryObjectServer for Ctx<'_, T, P> {
    fn seqnos_memory_object_init(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        memory_object_name: SendRight,
        memory_object_page_size: VmSize,
    ) -> R {
        self.enter().on_init(
            &self.cx,
            memory_object,
            seqno,
            memory_control,
            memory_object_name,
            memory_object_page_size,
        )
    }

    fn seqnos_memory_object_terminate(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: ReceiveRight,
        memory_object_name: ReceiveRight,
    ) -> R {
        self.enter().on_terminate(
            &self.cx,
            memory_object,
            seqno,
            memory_control,
            memory_object_name,
        )
    }

    fn seqnos_memory_object_copy(
        &self,
        old_memory_object: PortName,
        seqno: u32,
        old_memory_control: SendRight,
        _offset: u64,
        _length: VmSize,
        new_memory_object: ReceiveRight,
    ) -> R {
        self.enter().on_unexpected(
            &self.cx,
            old_memory_object,
            seqno,
            Some(old_memory_control),
            Some(new_memory_object),
        )
    }

    fn seqnos_memory_object_data_request(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        offset: u64,
        length: VmSize,
        _desired_access: i32,
    ) -> R {
        self.enter().on_data_request(
            &self.cx,
            memory_object,
            seqno,
            memory_control,
            offset,
            length,
        )
    }

    fn seqnos_memory_object_data_unlock(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        _offset: u64,
        _length: VmSize,
        _desired_access: i32,
    ) -> R {
        self.enter()
            .on_unexpected(&self.cx, memory_object, seqno, Some(memory_control), None)
    }

    fn seqnos_memory_object_lock_completed(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        _offset: u64,
        _length: VmSize,
    ) -> R {
        self.enter()
            .on_unexpected(&self.cx, memory_object, seqno, Some(memory_control), None)
    }

    fn seqnos_memory_object_supply_completed(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        _offset: u64,
        _length: VmSize,
        _result: i32,
        _error_offset: u64,
    ) -> R {
        self.enter()
            .on_unexpected(&self.cx, memory_object, seqno, Some(memory_control), None)
    }

    fn seqnos_memory_object_data_return(
        &self,
        memory_object: PortName,
        seqno: u32,
        memory_control: SendRight,
        offset: u64,
        data: OolBuffer,
        _dirty: i32,
        _kernel_copy: i32,
    ) -> R {
        // `dirty` and `kernel_copy` do not matter to a default pager (the Hurd ignores them
        // too): the page is stored either way.
        self.enter()
            .on_data_return(&self.cx, memory_object, seqno, memory_control, offset, data)
    }

    fn seqnos_memory_object_change_completed(
        &self,
        memory_object: PortName,
        seqno: u32,
        _may_cache: i32,
        _copy_strategy: i32,
    ) -> R {
        self.enter()
            .on_unexpected(&self.cx, memory_object, seqno, None, None)
    }
}

impl<T: Transport, P: Platform> SeqnosNotifyServer for Ctx<'_, T, P> {
    fn do_seqnos_mach_notify_port_deleted(
        &self,
        notify: PortName,
        seqno: u32,
        _name: PortName,
    ) -> R {
        self.enter()
            .on_other_notification(&self.cx, notify, seqno, None)
    }

    fn do_seqnos_mach_notify_msg_accepted(
        &self,
        notify: PortName,
        seqno: u32,
        _name: PortName,
    ) -> R {
        self.enter()
            .on_other_notification(&self.cx, notify, seqno, None)
    }

    fn do_seqnos_mach_notify_port_destroyed(
        &self,
        notify: PortName,
        seqno: u32,
        rights: ReceiveRight,
    ) -> R {
        self.enter()
            .on_other_notification(&self.cx, notify, seqno, Some(rights))
    }

    fn do_seqnos_mach_notify_no_senders(&self, notify: PortName, seqno: u32, mscount: u32) -> R {
        self.enter().on_no_senders(&self.cx, notify, seqno, mscount)
    }

    fn do_seqnos_mach_notify_send_once(&self, notify: PortName, seqno: u32) -> R {
        self.enter()
            .on_other_notification(&self.cx, notify, seqno, None)
    }

    fn do_seqnos_mach_notify_dead_name(&self, notify: PortName, seqno: u32, _name: PortName) -> R {
        self.enter()
            .on_other_notification(&self.cx, notify, seqno, None)
    }
}

impl<T: Transport, P: Platform> DefaultPagerServer for Ctx<'_, T, P> {
    fn default_pager_object_create(
        &self,
        default_pager: PortName,
        object_size: VmSize,
    ) -> R<PortName> {
        self.enter()
            .admin_object_create(&self.cx, default_pager, object_size)
    }

    fn default_pager_info(&self, default_pager: PortName) -> R<[i64; 3]> {
        self.enter().admin_info(&self.cx, default_pager)
    }

    fn default_pager_objects(
        &self,
        default_pager: PortName,
        _objects_cnt: u32,
        _ports_cnt: u32,
    ) -> R<DefaultPagerObjectsReply> {
        let (objects, ports) = self.enter().admin_objects(&self.cx, default_pager)?;
        Ok(DefaultPagerObjectsReply { objects, ports })
    }

    fn default_pager_object_pages(
        &self,
        default_pager: PortName,
        memory_object: SendRight,
        _pages_cnt: u32,
    ) -> R<alloc::vec::Vec<i64>> {
        self.enter()
            .admin_object_pages(&self.cx, default_pager, memory_object)
    }

    fn default_pager_paging_file(
        &self,
        default_pager: PortName,
        master_device_port: SendRight,
        _filename: &[u8],
        _add: i32,
    ) -> R {
        self.enter().admin_unsupported(
            &self.cx,
            default_pager,
            &mut core::iter::once(master_device_port),
        )
    }

    fn default_pager_register_fileserver(
        &self,
        default_pager: PortName,
        fileserver_port: SendRight,
    ) -> R {
        self.enter().admin_unsupported(
            &self.cx,
            default_pager,
            &mut core::iter::once(fileserver_port),
        )
    }
}
