//! Random sequences of port operations and message transfers between several tasks. After
//! every step the kernel's bookkeeping must be consistent; a failed send must leave the
//! sender and the kernel exactly as they were; at the end, once every task is gone, nothing
//! may be left (no ports, messages or out-of-line bytes).

use super::*;
use crate::build::{port_array, MsgBuilder};
use crate::msg::OolBuffer;
use crate::wire::{msgh_bits as mb, notify, option as opt, type_name as tn, Target};
use proptest::prelude::*;

const X: Target = Target::X86_64;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
/// Successful sends, failed sends, successful receives, messages with rights received.
static STATS: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
const TASKS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Allocate {
        task: u8,
        kind: u8,
    },
    Dealloc {
        task: u8,
        pick: u16,
    },
    ModRefs {
        task: u8,
        pick: u16,
        kind: u8,
        delta: i8,
    },
    Destroy {
        task: u8,
        pick: u16,
    },
    MakeSend {
        task: u8,
        pick: u16,
    },
    Transfer {
        from: u8,
        pick: u16,
        disp: u8,
        to: u8,
    },
    Send(Box<SendOp>),
    Receive {
        task: u8,
        pick: u16,
        large: bool,
        small: bool,
    },
    MoveMember {
        task: u8,
        pick: u16,
        set: u16,
    },
    Notify {
        task: u8,
        pick: u16,
        which: u8,
        sync: u8,
        notify: u16,
        disp: u8,
    },
    Qlimit {
        task: u8,
        pick: u16,
        q: u8,
    },
    Terminate {
        task: u8,
    },
}

#[derive(Debug, Clone)]
struct SendOp {
    task: u8,
    dest: u16,
    dest_disp: u8,
    reply: u16,
    reply_disp: u8,
    complex: bool,
    ports: Vec<(u16, u8)>,
    ool: Vec<(u8, bool, bool, bool)>,
    ool_ports: Option<(Vec<u16>, u8, bool)>,
    corrupt: u8,
}

const DISPS: [u32; 8] = [
    tn::MOVE_RECEIVE,
    tn::MOVE_SEND,
    tn::MOVE_SEND_ONCE,
    tn::COPY_SEND,
    tn::MAKE_SEND,
    tn::MAKE_SEND_ONCE,
    0,
    22,
];

fn disp(d: u8) -> u32 {
    // Mostly valid dispositions, sometimes not.
    DISPS[(d as usize) % DISPS.len()]
}

fn kind(k: u8) -> RightKind {
    [
        RightKind::Receive,
        RightKind::Receive,
        RightKind::PortSet,
        RightKind::DeadName,
        RightKind::Send,
        RightKind::SendOnce,
    ][(k as usize) % 6]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let t = 0u8..TASKS as u8;
    let send = (
        t.clone(),
        any::<u16>(),
        any::<u8>(),
        any::<u16>(),
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec((any::<u16>(), any::<u8>()), 0..4),
        prop::collection::vec((0u8..40, any::<bool>(), any::<bool>(), any::<bool>()), 0..3),
        prop::option::of((
            prop::collection::vec(any::<u16>(), 0..4),
            any::<u8>(),
            any::<bool>(),
        )),
        any::<u8>(),
    )
        .prop_map(
            |(
                task,
                dest,
                dest_disp,
                reply,
                reply_disp,
                complex,
                ports,
                ool,
                ool_ports,
                corrupt,
            )| {
                Op::Send(Box::new(SendOp {
                    task,
                    dest,
                    dest_disp,
                    reply,
                    reply_disp,
                    complex,
                    ports,
                    ool,
                    ool_ports,
                    corrupt,
                }))
            },
        );
    prop_oneof![
        3 => (t.clone(), any::<u8>()).prop_map(|(task, kind)| Op::Allocate { task, kind }),
        2 => (t.clone(), any::<u16>()).prop_map(|(task, pick)| Op::Dealloc { task, pick }),
        2 => (t.clone(), any::<u16>(), any::<u8>(), -2i8..3).prop_map(|(task, pick, kind, delta)| Op::ModRefs { task, pick, kind, delta }),
        1 => (t.clone(), any::<u16>()).prop_map(|(task, pick)| Op::Destroy { task, pick }),
        2 => (t.clone(), any::<u16>()).prop_map(|(task, pick)| Op::MakeSend { task, pick }),
        4 => (t.clone(), any::<u16>(), any::<u8>(), t.clone()).prop_map(|(from, pick, disp, to)| Op::Transfer { from, pick, disp, to }),
        8 => send,
        9 => (t.clone(), any::<u16>(), any::<bool>(), any::<bool>()).prop_map(|(task, pick, large, small)| Op::Receive { task, pick, large, small }),
        2 => (t.clone(), any::<u16>(), any::<u16>()).prop_map(|(task, pick, set)| Op::MoveMember { task, pick, set }),
        2 => (t.clone(), any::<u16>(), any::<u8>(), 0u8..3, any::<u16>(), any::<u8>()).prop_map(|(task, pick, which, sync, notify, disp)| Op::Notify { task, pick, which, sync, notify, disp }),
        1 => (t.clone(), any::<u16>(), 0u8..20).prop_map(|(task, pick, q)| Op::Qlimit { task, pick, q }),
        1 => t.prop_map(|task| Op::Terminate { task }),
    ]
}

/// A name from the task's space (index `pick`), or now and then null, dead or garbage.
fn pick(t: &Task, pick: u16) -> PortName {
    let names: Vec<PortName> = t.space_snapshot().keys().copied().collect();
    let n = names.len() + 3;
    match pick as usize % n {
        i if i < names.len() => names[i],
        i if i == names.len() => PortName::NULL,
        i if i == names.len() + 1 => PortName::DEAD,
        _ => PortName(0x00ab_cdef ^ u32::from(pick)),
    }
}

/// Mostly a name whose type satisfies `want`; sometimes anything.
fn pick_where(t: &Task, p: u16, want: impl Fn(PortType) -> bool) -> PortName {
    if p % 10 == 9 {
        return pick(t, p / 10);
    }
    let names: Vec<PortName> = t
        .space_snapshot()
        .into_iter()
        .filter(|(_, (ty, _))| want(*ty))
        .map(|(n, _)| n)
        .collect();
    if names.is_empty() {
        pick(t, p)
    } else {
        names[(p / 10) as usize % names.len()]
    }
}

/// Mostly a disposition that fits the rights `name` has; sometimes any.
fn fitting_disp(t: &Task, name: PortName, d: u8) -> u32 {
    if d % 8 == 7 {
        return disp(d / 8);
    }
    let ty = t.port_type(name).unwrap_or(PortType::NONE);
    let mut ok = Vec::new();
    if ty.contains(PortType::RECEIVE) {
        ok.extend([tn::MAKE_SEND, tn::MAKE_SEND_ONCE, tn::MOVE_RECEIVE]);
    }
    if ty.contains(PortType::SEND) {
        ok.extend([tn::COPY_SEND, tn::MOVE_SEND]);
    }
    if ty.contains(PortType::SEND_ONCE) {
        ok.push(tn::MOVE_SEND_ONCE);
    }
    if ty.contains(PortType::DEAD_NAME) {
        ok.extend([tn::COPY_SEND, tn::MOVE_SEND]);
    }
    if ok.is_empty() {
        disp(d)
    } else {
        ok[(d / 8) as usize % ok.len()]
    }
}

fn is_port_right(t: PortType) -> bool {
    t.0 & (PortType::SEND.0 | PortType::RECEIVE.0 | PortType::SEND_ONCE.0) != 0
}

fn run_send(k: &Kernel, t: &Task, s: &SendOp) {
    let dest = pick_where(t, s.dest, is_port_right);
    let mut dd = fitting_disp(t, dest, s.dest_disp);
    if dd == tn::MOVE_RECEIVE && s.dest_disp % 8 != 7 {
        dd = tn::MAKE_SEND;
    }
    let (reply, rd) = if s.reply_disp % 3 == 0 {
        (PortName::NULL, 0)
    } else {
        let r = pick_where(t, s.reply, |ty| ty.contains(PortType::RECEIVE));
        let rd = if s.reply_disp % 8 == 7 {
            disp(s.reply_disp)
        } else if s.reply_disp % 2 == 0 {
            tn::MAKE_SEND_ONCE
        } else {
            tn::MAKE_SEND
        };
        (r, rd)
    };
    let mut bits = mb::make(dd, rd);
    if s.complex {
        bits |= mb::COMPLEX;
    }
    let keep: Vec<Vec<u8>> = s
        .ool
        .iter()
        .map(|&(len, ..)| vec![len; len as usize])
        .collect();
    let mut storage = vec![0u8; 1024];
    let mut buf = MsgBuf::new(&mut storage);
    let mut b = MsgBuilder::new(X).header(bits, dest, reply, 1).int32(7);
    for &(p, d) in &s.ports {
        let n = pick_where(t, p, |_| true);
        b = b.port(fitting_disp(t, n, d), n);
    }
    for (i, &(len, dealloc, owned, garbage)) in s.ool.iter().enumerate() {
        let garbage = garbage && len % 4 == 0;
        let addr = if garbage {
            0x10_0000 + u64::from(len)
        } else if owned {
            buf.attach_ool_owned(OolBuffer::copy_from(&keep[i]))
        } else {
            buf.attach_ool(&keep[i])
        };
        b = b.ool_bytes(u32::from(len), addr, dealloc);
    }
    if let Some((names, d, dealloc)) = &s.ool_ports {
        let ns: Vec<PortName> = names
            .iter()
            .map(|&p| pick_where(t, p, |ty| ty.contains(PortType::RECEIVE)))
            .collect();
        let a = buf.attach_ool_owned(OolBuffer::from_vec(port_array(&ns)));
        let d = if d % 4 == 3 {
            disp(*d)
        } else {
            [tn::MAKE_SEND, tn::MAKE_SEND_ONCE, tn::MAKE_SEND][*d as usize % 3]
        };
        b = b.ool_ports(d, ns.len() as u32, a, *dealloc);
    }
    let mut m = b.finish();
    let mut size = m.len() as u32;
    match s.corrupt % 32 {
        0 => size = size.saturating_sub(8),
        1 if m.len() > 40 => m[35] |= 0x1f, // reserved descriptor bits
        2 if m.len() > 44 => m[44] = 0xff,  // a wild count
        3 => size += 3,
        _ => {}
    }
    buf.bytes_mut()[..m.len()].copy_from_slice(&m);
    let before = (t.space_snapshot(), k.stats(), buf.ool_entries().len());
    let r = t.mach_msg(
        &mut buf,
        opt::SEND_MSG | opt::SEND_TIMEOUT,
        size,
        0,
        PortName::NULL,
        0,
        PortName::NULL,
    );
    STATS[usize::from(r != KernReturn::KERN_SUCCESS)].fetch_add(1, Relaxed);
    if r != KernReturn::KERN_SUCCESS {
        let after = (t.space_snapshot(), k.stats(), buf.ool_entries().len());
        assert_eq!(after, before, "failed send {r:?} changed something");
    }
}

fn run(k: &Kernel, tasks: &mut [Task], op: &Op) {
    let t = |i: &u8| tasks[*i as usize % TASKS].clone();
    match op {
        Op::Allocate { task, kind: kd } => {
            let _ = t(task).port_allocate(kind(*kd));
        }
        Op::Dealloc { task, pick: p } => {
            let t = t(task);
            let _ = t.port_deallocate(pick(&t, *p));
        }
        Op::ModRefs {
            task,
            pick: p,
            kind: kd,
            delta,
        } => {
            let t = t(task);
            let _ = t.port_mod_refs(pick(&t, *p), kind(*kd), i32::from(*delta));
        }
        Op::Destroy { task, pick: p } => {
            let t = t(task);
            let _ = t.port_destroy(pick(&t, *p));
        }
        Op::MakeSend { task, pick: p } => {
            let t = t(task);
            let n = pick(&t, *p);
            let _ = t.port_insert_right(n, n, tn::MAKE_SEND);
        }
        Op::Transfer {
            from,
            pick: p,
            disp: d,
            to,
        } => {
            let (f, to) = (t(from), t(to));
            let before = f.space_snapshot();
            let n = pick_where(&f, *p, is_port_right);
            if f.transfer_right(n, fitting_disp(&f, n, *d), &to).is_err() {
                assert_eq!(f.space_snapshot(), before);
            }
        }
        Op::Send(s) => run_send(k, &t(&s.task), s),
        Op::Receive {
            task,
            pick: p,
            large,
            small,
        } => {
            let t = t(task);
            let cap = if *small { 40 } else { 1024 };
            let mut b = MsgBuf::with_capacity(cap);
            let o = opt::RCV_MSG | opt::RCV_TIMEOUT | if *large { opt::RCV_LARGE } else { 0 };
            let name = pick_where(&t, *p, |ty| {
                ty.contains(PortType::RECEIVE) || ty.contains(PortType::PORT_SET)
            });
            let r = t.mach_msg(&mut b, o, 0, cap as u32, name, 0, PortName::NULL);
            if r == KernReturn::KERN_SUCCESS {
                STATS[2].fetch_add(1, Relaxed);
                if b.header(X).is_ok_and(|h| h.bits & mb::COMPLEX != 0) {
                    STATS[3].fetch_add(1, Relaxed);
                }
            }
        }
        Op::MoveMember { task, pick: p, set } => {
            let t = t(task);
            let m = pick_where(&t, *p, |ty| ty.contains(PortType::RECEIVE));
            let s = if set % 4 == 0 {
                PortName::NULL
            } else {
                pick_where(&t, *set, |ty| ty.contains(PortType::PORT_SET))
            };
            let _ = t.port_move_member(m, s);
        }
        Op::Notify {
            task,
            pick: p,
            which,
            sync,
            notify: n,
            disp: d,
        } => {
            let t = t(task);
            let id = [
                notify::DEAD_NAME,
                notify::NO_SENDERS,
                notify::PORT_DESTROYED,
                0o102,
            ][*which as usize % 4];
            let d = if d % 2 == 0 {
                tn::MAKE_SEND_ONCE
            } else {
                disp(*d)
            };
            let name = pick_where(&t, *p, |_| true);
            let np = pick_where(&t, *n, |ty| ty.contains(PortType::RECEIVE));
            let _ = t.port_request_notification(name, id, u32::from(*sync), np, d);
        }
        Op::Qlimit { task, pick: p, q } => {
            let t = t(task);
            let _ = t.port_set_qlimit(pick(&t, *p), u32::from(*q));
        }
        Op::Terminate { task } => {
            let i = *task as usize % TASKS;
            tasks[i].terminate();
            tasks[i] = k.new_task();
        }
    }
}

/// The generator is biased toward well-formed operations: check on a fixed seed that runs
/// do reach successful sends, receives, and messages carrying rights.
#[test]
fn random_operations_reach_the_interesting_paths() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(op_strategy(), 40..80);
    let before: Vec<usize> = STATS.iter().map(|a| a.load(Relaxed)).collect();
    for _ in 0..40 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let k = Kernel::new();
        let mut tasks: Vec<Task> = (0..TASKS).map(|_| k.new_task()).collect();
        for i in 0..TASKS {
            let p = tasks[i].port_allocate(RightKind::Receive).unwrap();
            let _ = tasks[i].transfer_right(p, tn::MAKE_SEND, &tasks[(i + 1) % TASKS]);
        }
        for op in &ops {
            run(&k, &mut tasks, op);
        }
    }
    let after: Vec<usize> = STATS.iter().map(|a| a.load(Relaxed)).collect();
    let d: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(d[0] > 100 && d[1] > 100 && d[2] > 30 && d[3] > 5, "{d:?}");
}

proptest! {
    #[test]
    fn random_operations_keep_the_books_and_leak_nothing(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let k = Kernel::new();
        let mut tasks: Vec<Task> = (0..TASKS).map(|_| k.new_task()).collect();
        // A starting point with some connections.
        for i in 0..TASKS {
            let p = tasks[i].port_allocate(RightKind::Receive).unwrap();
            let _ = tasks[i].transfer_right(p, tn::MAKE_SEND, &tasks[(i + 1) % TASKS]);
        }
        for (i, op) in ops.iter().enumerate() {
            run(&k, &mut tasks, op);
            if let Err(e) = k.check_consistency() {
                panic!("after op {i} {op:?}:\n{e}");
            }
        }
        for t in &tasks {
            t.terminate();
        }
        k.check_consistency().unwrap();
        let s = k.stats();
        prop_assert_eq!((s.ports, s.port_objects, s.port_sets, s.messages, s.queued, s.ool_bytes), (0, 0, 0, 0, 0, 0), "{:?}", s);
    }
}
