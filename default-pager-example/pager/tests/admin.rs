//! Start-up rules and the `default_pager` admin interface; who can reach which port
//! (issue 7: "must not let unrelated tasks reach the memory object, control or name port").

mod common;

use common::*;
use default_pager::kernel_side::default_pager as dp;
use default_pager::{Error, MemStore, Reason};
use mig_runtime::ipc::PortType;
use mig_runtime::wire::{msg_return as mr, msgh_bits, option, type_name as tn, Target};
use mig_runtime::{KernReturn, MsgBuf, PortName, RpcError, SendRight};

/// A second pager is refused: it asks `vm_set_default_memory_manager` with a null port
/// first, sees the first pager registered, returns `Error::AlreadyRegistered` and leaves the
/// registration alone (new objects still go to the first pager). The refused pager gives
/// back the ports it allocated.
#[test]
fn a_second_pager_is_refused() {
    let k = Kern::new();
    let (_t1, p1, _rec) = k.pager(MemStore::new(16), cfg(2));
    let dmm = k.dmm().expect("registered");
    let (t2, r) = k.start_pager(MemStore::new(16), cfg(2));
    assert_eq!(r.err(), Some(Error::AlreadyRegistered));
    assert_eq!(k.dmm(), Some(dmm), "the first registration stays");
    let o = k.create(PSU);
    k.data_request(&o, 0, PSU);
    k.expect_unavailable(&o, 0);
    assert_eq!(p1.stats().messages.memory_object_create, 1);
    // The refused pager holds no port or port set any more (only rights it was given:
    // its task port, and the reply port of its calls).
    let left: Vec<PortType> = t2.port_names().into_iter().map(|(_, t)| t).collect();
    assert!(
        left.iter()
            .all(|t| *t == PortType::SEND || *t == PortType::RECEIVE),
        "{left:?}"
    );
    assert!(
        left.iter().filter(|t| **t == PortType::RECEIVE).count() <= 1,
        "{left:?}"
    );
}

/// `default_pager_info`, `default_pager_objects` and `default_pager_object_pages`:
/// total/free space and page size; one entry per object with `dpo_size` = bytes stored;
/// the pages listed are exactly the written offsets (never a page that was only
/// requested); the ports handed out are name ports (a message sent through one arrives on
/// the kernel's name port), never object or control ports.
#[test]
fn admin_reports_exactly_the_written_pages() {
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(MemStore::new(32), cfg(2));
    let a = k.create(32 * PSU);
    let b = k.create(4 * PSU);
    let written = [0u64, 3, 17, 40];
    for &pg in &written {
        k.data_return(&a, pg * PSU, &pattern(7, pg, 0));
    }
    for pg in [1u64, 2, 18] {
        k.data_request(&a, pg * PSU, PSU);
        k.expect_unavailable(&a, pg * PSU);
    }
    k.data_request(&b, 0, PSU);
    k.expect_unavailable(&b, 0);
    wait_until("writes", || p.stats().pages_out == 4);
    wait_stored(&p, 4);

    let (adm, dps) = admin_task(&k, &pt, p.admin_port());
    let info = dp::client::default_pager_info(&adm, &dps).unwrap();
    assert_eq!(info, [32 * PSU as i64, 28 * PSU as i64, PSU as i64]);

    let objs = dp::client::default_pager_objects(&adm, &dps, 16, 16).unwrap();
    assert_eq!(objs.objects.len(), 2);
    assert_eq!(objs.ports.len(), 2);
    let mut sizes: Vec<i64> = objs.objects.iter().map(|o| o[1]).collect();
    sizes.sort();
    assert_eq!(sizes, vec![0, 4 * PSU as i64]);
    let names: Vec<SendRight> = objs
        .ports
        .into_iter()
        .map(|r| SendRight::from_raw(adm.space_id(), r.into_raw()))
        .collect();
    // Which returned right is object a's name port: ask the pager.
    let mut found = 0;
    for n in &names {
        assert!(n.is_valid());
        let pages = dp::client::default_pager_object_pages(&adm, &dps, n, 64).unwrap();
        if pages.is_empty() {
            continue;
        }
        found += 1;
        let want: Vec<i64> = written.iter().map(|&pg| (pg * PSU) as i64).collect();
        assert_eq!(pages, want);
    }
    assert_eq!(found, 1);
    // The rights are the kernel's name ports: probes sent through them arrive there.
    for n in &names {
        let m = mig_runtime::build::MsgBuilder::new(Target::X86_64)
            .header(
                msgh_bits::make(tn::COPY_SEND, 0),
                n.name(),
                PortName::NULL,
                4242,
            )
            .finish();
        let mut mb = MsgBuf::from_bytes(&m);
        let r = adm.mach_msg(
            &mut mb,
            option::SEND_MSG,
            m.len() as u32,
            0,
            PortName::NULL,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
    }
    for o in [&a, &b] {
        let mut rb = MsgBuf::with_capacity(256);
        let r = k.kt.mach_msg(
            &mut rb,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            256,
            o.name.name(),
            5000,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS, "probe on the name port");
        assert_eq!(rb.header(Target::X86_64).unwrap().id, 4242);
    }
    // An unknown port: KERN_INVALID_ARGUMENT.
    let junk = adm.allocate_receive().unwrap();
    let junk_send = junk.make_send().unwrap();
    let e = dp::client::default_pager_object_pages(&adm, &dps, &junk_send, 64).unwrap_err();
    assert_eq!(e, RpcError::Server(KernReturn::KERN_INVALID_ARGUMENT));
    // Not implemented here (the Hurd's pager does not have it either).
    let e = dp::client::default_pager_paging_file(&adm, &dps, &junk_send, b"/dev/hd0s1", 1)
        .unwrap_err();
    assert_eq!(e, RpcError::Server(KernReturn::MIG_BAD_ID));
    assert!(p
        .rejections()
        .iter()
        .any(|r| r.reason == Reason::UnknownObject));
    // After terminate the name ports handed out are dead; the pager lists nothing more.
    k.terminate(a);
    k.terminate(b);
    wait_until("freed", || p.stats().objects_freed == 2);
    let objs = dp::client::default_pager_objects(&adm, &dps, 16, 16).unwrap();
    assert!(objs.objects.is_empty() && objs.ports.is_empty());
    for n in &names {
        assert_eq!(adm.port_type(n.name()), Ok(PortType::DEAD_NAME));
    }
}

/// Tasks that were never given the object, control or name ports — or the pager's port —
/// cannot send to them: every name of such a port, in the pager's space or the kernel's,
/// is invalid in an unrelated task (`MACH_SEND_INVALID_DEST`); the admin interface is only
/// reachable with the default-pager port; an admin call arriving on an object port (from
/// the kernel, which holds it) is refused and does not disturb the object's seqnos.
#[test]
fn unrelated_tasks_cannot_reach_pager_ports() {
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let o = k.create(4 * PSU);
    let d = pattern(8, 0, 0);
    k.data_return(&o, 0, &d);
    k.data_request(&o, 0, PSU);
    k.expect_supply(&o, 0, &d);
    let stranger = k.k.new_task();
    let mut names: Vec<PortName> = pt.port_names().into_iter().map(|(n, _)| n).collect();
    names.extend([o.obj.name(), o.ctl.name(), o.name.name(), p.admin_port()]);
    // And every small name (names are small indexes in every space).
    let top = names.iter().map(|n| n.0 & 0xff_ffff).max().unwrap_or(0) + 64;
    names.extend((1..=top).map(PortName));
    let before = p.stats();
    for n in names {
        // A memory object call, and the admin calls default_pager_info / _objects.
        for id in [2203, 2208, 2276, 2277] {
            let m = mig_runtime::build::MsgBuilder::new(Target::X86_64)
                .header(msgh_bits::make(tn::COPY_SEND, 0), n, PortName::NULL, id)
                .finish();
            let mut mb = MsgBuf::from_bytes(&m);
            let r = stranger.mach_msg(
                &mut mb,
                option::SEND_MSG,
                m.len() as u32,
                0,
                PortName::NULL,
                0,
                PortName::NULL,
            );
            assert_eq!(r.0 as u32, mr::SEND_INVALID_DEST, "name {n:?} id {id}");
        }
    }
    let after = p.stats();
    assert_eq!(
        (after.messages, after.rejected),
        (before.messages, before.rejected),
        "nothing reached the pager"
    );
    // Nothing the pager did gave the stranger a right.
    assert!(
        stranger
            .port_names()
            .iter()
            .all(|(_, t)| *t != PortType::SEND),
        "{:?}",
        stranger.port_names()
    );
    // The admin interface on an object port (only the kernel can send there): refused.
    let e = dp::client::default_pager_info(&k.kt, &o.obj).unwrap_err();
    assert_eq!(e, RpcError::Server(KernReturn::KERN_INVALID_ARGUMENT));
    assert!(p.rejections().iter().any(|r| r.reason == Reason::WrongPort));
    // …and the object's next message is still served (its seqno was consumed).
    k.data_request(&o, 0, PSU);
    k.expect_supply(&o, 0, &d);
}

/// Issue 7: "the admin interface exposes object ports only to holders of the privileged
/// default-pager port". The client of an external object holds a send right to the object
/// port (all `default_pager_object_create` hands out); each admin call it makes there —
/// `default_pager_info`, `_objects`, `_object_pages`, `_object_create` — is refused
/// (`KERN_INVALID_ARGUMENT`, a `WrongPort` rejection), gives it no right, and consumes the
/// object's seqno (the object then works normally). A task with no right at all cannot
/// send any admin call to any name (`MACH_SEND_INVALID_DEST`). Only the holder of the
/// pager's port gets answers — and for objects, name ports only (null for an external
/// object that is not mapped).
#[test]
fn admin_interface_only_for_holders_of_the_default_pager_port() {
    use default_pager::kernel_side::memory_object as mo;
    let k = Kern::new();
    let (pt, p, _rec) = k.pager(MemStore::new(16), cfg(2));
    let (adm, dps) = admin_task(&k, &pt, p.admin_port());
    let internal = k.create(4 * PSU);
    k.data_return(&internal, 0, &pattern(12, 0, 0));
    let ext = dp::client::default_pager_object_create(&adm, &dps, 4 * PSU).unwrap();
    let client = k.k.new_task();
    let cn = adm
        .transfer_right(ext.name(), tn::COPY_SEND, &client)
        .unwrap();
    let mine = SendRight::from_raw(client.space_id(), cn);
    let refused = Err(RpcError::Server(KernReturn::KERN_INVALID_ARGUMENT));
    assert_eq!(
        dp::client::default_pager_info(&client, &mine).map(|_| ()),
        refused
    );
    assert_eq!(
        dp::client::default_pager_objects(&client, &mine, 16, 16).map(|_| ()),
        refused
    );
    assert_eq!(
        dp::client::default_pager_object_pages(&client, &mine, &mine, 16).map(|_| ()),
        refused
    );
    assert_eq!(
        dp::client::default_pager_object_create(&client, &mine, PSU).map(|_| ()),
        refused
    );
    let wrong = p
        .rejections()
        .iter()
        .filter(|r| r.reason == Reason::WrongPort)
        .count();
    assert_eq!(wrong, 4);
    // The client holds its object right and its reply port, nothing else.
    let held: Vec<PortType> = client.port_names().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        held.iter().filter(|t| **t == PortType::SEND).count(),
        1,
        "{held:?}"
    );
    assert!(
        held.iter()
            .all(|t| *t == PortType::SEND || *t == PortType::RECEIVE),
        "{held:?}"
    );
    assert_eq!(p.stats().objects, 2, "no object created by the client");
    // The admin calls consumed the object's seqnos: the kernel maps it and it works.
    let kobj = SendRight::from_raw(
        k.kt.space_id(),
        adm.transfer_right(ext.name(), tn::COPY_SEND, &k.kt)
            .unwrap(),
    );
    let ctl = k.kt.allocate_receive().unwrap();
    k.kt.port_move_member(ctl.name(), k.set).unwrap();
    let name = k.kt.allocate_receive().unwrap();
    mo::client::memory_object_init(&k.kt, &kobj, &ctl, &name, PSU).unwrap();
    k.take_call("memory_object_ready", |c| c.ctl == ctl.name());
    let eo = KObj {
        obj: kobj,
        ctl,
        name,
    };
    k.data_request(&eo, 0, PSU);
    k.expect_unavailable(&eo, 0);
    // The holder of the pager's port: answers, and name ports only.
    let objs = dp::client::default_pager_objects(&adm, &dps, 16, 16).unwrap();
    assert_eq!(objs.objects.len(), 2);
    let valid: Vec<&SendRight> = objs.ports.iter().filter(|r| r.is_valid()).collect();
    assert_eq!(
        valid.len(),
        2,
        "both objects are mapped now: two name ports"
    );
    for r in valid {
        // A name port is not served by the pager: admin calls through it reach the kernel.
        assert_ne!(r.name(), ext.name(), "an object port was handed out");
    }
    let _ = (internal, eo);
}

/// Issue 7, run-time replacement: the query form (null port) returns the current manager —
/// before the replacement a right to the running pager (an admin call through it is
/// answered by the pager), after it the new one; objects created before stay with the old
/// pager, new ones go to the new manager; the old pager can take over again (it
/// re-registers its own port), and new objects then come back to it while the other
/// manager's object stays there.
#[test]
fn replacing_the_default_manager_keeps_old_objects_with_the_old_pager() {
    use default_pager::gen::mach::client::vm_set_default_memory_manager as set_dmm;
    use default_pager::kernel_side::memory_object_default as mod_;
    use mig_runtime::ReceiveRight;
    let k = Kern::new();
    let (t1, p1, _r1) = k.pager(MemStore::new(16), cfg(2));
    let host_for = |t: &mig_runtime::ipc::Task| {
        SendRight::from_raw(
            t.space_id(),
            k.kt.transfer_right(k.host, tn::MAKE_SEND, t).unwrap(),
        )
    };
    // The query, from another privileged task: a right to the running pager.
    let other = k.k.new_task();
    let host = host_for(&other);
    let cur = set_dmm(&other, &host, &ReceiveRight::null()).unwrap();
    assert!(cur.is_valid());
    let i = dp::client::default_pager_info(&other, &cur).expect("the pager answers");
    assert_eq!(i[0] as u64, p1.stats().paging_total);
    drop(cur);
    let old = k.create(4 * PSU);
    let d = pattern(10, 0, 0);
    k.data_return(&old, 0, &d);
    // Another manager takes over (as an administrator would with
    // vm_set_default_memory_manager); our pager would refuse to, so register by hand.
    let other_port = other.allocate_receive().unwrap();
    let prev = set_dmm(&other, &host, &other_port).unwrap();
    assert!(prev.is_valid(), "the old manager comes back");
    let q = set_dmm(&other, &host, &ReceiveRight::null()).unwrap();
    assert_eq!(
        q.name(),
        other_port.name(),
        "the query returns the current manager"
    );
    // The old object still pages with the old pager.
    k.data_request(&old, 0, PSU);
    k.expect_supply(&old, 0, &d);
    // A new object goes to the new manager's port.
    let create = || {
        let dmm = k.state_dmm_clone();
        let port = k.kt.allocate_receive().unwrap();
        let ctl = k.kt.allocate_receive().unwrap();
        let name = k.kt.allocate_receive().unwrap();
        mod_::client::memory_object_create(&k.kt, dmm, port, PSU, &ctl, &name, PSU).unwrap();
        (ctl, name)
    };
    let _mine = create();
    let mut rb = MsgBuf::with_capacity(512);
    let r = other.mach_msg(
        &mut rb,
        option::RCV_MSG | option::RCV_TIMEOUT,
        0,
        512,
        other_port.name(),
        5000,
        PortName::NULL,
    );
    assert_eq!(r, KernReturn::KERN_SUCCESS);
    assert_eq!(rb.header(Target::X86_64).unwrap().id, 2250);
    assert_eq!(p1.stats().messages.memory_object_create, 1);
    // The pager takes over again (its task re-registers its own port).
    let back = std::mem::ManuallyDrop::new(ReceiveRight::from_raw(t1.space_id(), p1.admin_port()));
    let replaced = set_dmm(&t1, &host_for(&t1), &back).unwrap();
    assert!(replaced.is_valid());
    let q2 = set_dmm(&other, &host, &ReceiveRight::null()).unwrap();
    assert_ne!(
        q2.name(),
        other_port.name(),
        "the query returns the pager again"
    );
    dp::client::default_pager_info(&other, &q2).expect("answered by the pager");
    let again = k.create(4 * PSU);
    k.data_request(&again, 0, PSU);
    k.expect_unavailable(&again, 0);
    assert_eq!(p1.stats().messages.memory_object_create, 2);
    // Nothing more arrived for the other manager.
    let r = other.mach_msg(
        &mut rb,
        option::RCV_MSG | option::RCV_TIMEOUT,
        0,
        512,
        other_port.name(),
        20,
        PortName::NULL,
    );
    assert_eq!(r.0 as u32, mr::RCV_TIMED_OUT);
    let _ = (prev.into_raw(), q.into_raw());
}
