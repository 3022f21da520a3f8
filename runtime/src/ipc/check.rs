//! A consistency check of the whole kernel state, for tests: every port's reference and
//! right counts are recomputed from the spaces, the queued messages and the stored
//! notification requests, and compared.

use super::kmsg::{KMsg, KObj};
use super::state::{et, Obj, PortId, Receiver, State};
use crate::wire::type_name as tn;
use std::collections::HashMap;
use std::fmt::Write;

#[derive(Default, Debug, PartialEq, Eq)]
struct Count {
    refs: u32,
    srights: u32,
    sorights: u32,
    receive_holders: u32,
    msgs: u32,
}

impl State {
    /// Checks every invariant; returns a description of the first violations found.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut err = String::new();
        let mut counts: HashMap<PortId, Count> = HashMap::new();
        let mut kmsgs = 0usize;
        let mut queued = 0usize;
        let mut ool = 0usize;
        // Spaces.
        for (slot, sp) in self.spaces.iter().enumerate() {
            let Some(sp) = sp else { continue };
            let slot = slot as u32;
            for (name, e) in sp.entries.iter() {
                if e.ty == 0 {
                    let _ = writeln!(err, "space {slot}: empty entry {name:#x}");
                }
                if e.ty & et::SEND != 0 && e.urefs == 0 {
                    let _ = writeln!(err, "space {slot}: send entry {name:#x} without urefs");
                }
                if e.ty & et::SEND_ONCE != 0 && e.urefs != 1 {
                    let _ = writeln!(
                        err,
                        "space {slot}: send-once entry {name:#x} urefs {}",
                        e.urefs
                    );
                }
                if e.ty & et::DEAD_NAME != 0 && (e.urefs == 0 || e.obj != Obj::None) {
                    let _ = writeln!(err, "space {slot}: bad dead name {name:#x}: {e:?}");
                }
                if let Obj::Port(p) = e.obj {
                    let c = counts.entry(p).or_default();
                    c.refs += 1;
                    if e.ty & et::SEND != 0 {
                        c.srights += 1;
                    }
                    if e.ty & et::SEND_ONCE != 0 {
                        c.sorights += 1;
                    }
                    if e.ty & et::RECEIVE != 0 {
                        c.receive_holders += 1;
                        let ok = self.p(p).is_some_and(|port| {
                            port.receiver
                                == Receiver::Space {
                                    slot,
                                    name: crate::wire::PortName(name),
                                }
                        });
                        if !ok {
                            let _ =
                                writeln!(err, "space {slot}: receive {name:#x} not the receiver");
                        }
                    }
                    let send_only = e.ty & et::SEND != 0 && e.ty & et::RECEIVE == 0;
                    let rev = sp.reverse.get(&p).map(|n| n.0);
                    if send_only && self.port_active(p) && rev != Some(name) {
                        let _ = writeln!(err, "space {slot}: reverse for {name:#x} is {rev:?}");
                    }
                    if e.request && self.port_active(p) {
                        let has = self.p(p).is_some_and(|port| {
                            port.dnrequests
                                .contains_key(&(slot, crate::wire::PortName(name)))
                        });
                        if !has {
                            let _ = writeln!(err, "space {slot}: {name:#x} request missing");
                        }
                    }
                }
            }
            for (p, n) in &sp.reverse {
                let ok = sp.entries.get(n.0).is_some_and(|e| {
                    e.obj == Obj::Port(*p) && e.ty & et::SEND != 0 && e.ty & et::RECEIVE == 0
                });
                if !ok && self.port_active(*p) {
                    let _ = writeln!(err, "space {slot}: stale reverse {p:?} -> {n:?}");
                }
            }
        }
        // Ports: queued messages and stored requests.
        let count_obj = |counts: &mut HashMap<PortId, Count>, o: KObj, ty: u32| {
            if let KObj::Port(p) = o {
                let c = counts.entry(p).or_default();
                c.refs += 1;
                match ty {
                    tn::PORT_SEND => c.srights += 1,
                    tn::PORT_SEND_ONCE => c.sorights += 1,
                    tn::PORT_RECEIVE => c.receive_holders += 1,
                    _ => {}
                }
            }
        };
        let mut count_msg = |counts: &mut HashMap<PortId, Count>, m: &KMsg| {
            kmsgs += 1;
            ool += m.ool_bytes();
            if let Some(d) = m.dest {
                count_obj(counts, KObj::Port(d), m.dest_type());
                counts.entry(d).or_default().msgs += 1;
            }
            count_obj(counts, m.reply, m.reply_type());
            for p in &m.ports {
                count_obj(counts, p.obj, p.ty);
            }
            for a in &m.arrays {
                for &o in &a.objs {
                    count_obj(counts, o, a.ty);
                }
            }
        };
        let mut active = 0usize;
        let mut objects = 0usize;
        for (p, port) in self.ports_iter() {
            objects += 1;
            if port.active {
                active += 1;
            }
            for m in &port.mq.msgs {
                queued += 1;
                count_msg(&mut counts, m);
                if m.dest != Some(p) {
                    let _ = writeln!(err, "{p:?}: queued message for {:?}", m.dest);
                }
            }
            for so in port
                .nsrequest
                .iter()
                .chain(port.pdrequest.iter())
                .chain(port.dnrequests.values())
            {
                let c = counts.entry(*so).or_default();
                c.refs += 1;
                c.sorights += 1;
            }
        }
        let mut sets = 0usize;
        for (_, set) in self.psets_iter() {
            sets += 1;
            for m in &set.mq.msgs {
                queued += 1;
                count_msg(&mut counts, m);
                let member = m.dest.is_some_and(|d| set.members.contains(&d));
                if !member {
                    let _ = writeln!(err, "set queue holds a message for a non-member");
                }
            }
        }
        for (p, port) in self.ports_iter() {
            let c = counts.remove(&p).unwrap_or_default();
            if c.refs != port.refs {
                let _ = writeln!(err, "{p:?}: refs {} expected {}", port.refs, c.refs);
            }
            if port.active {
                if c.srights != port.srights || c.sorights != port.sorights {
                    let _ = writeln!(
                        err,
                        "{p:?}: srights/sorights {}/{} expected {}/{}",
                        port.srights, port.sorights, c.srights, c.sorights
                    );
                }
                if c.receive_holders != 1 {
                    let _ = writeln!(err, "{p:?}: {} receive rights", c.receive_holders);
                }
                if c.msgs != port.msgcount {
                    let _ = writeln!(err, "{p:?}: msgcount {} expected {}", port.msgcount, c.msgs);
                }
                if let Some(s) = port.pset {
                    if !self.psm_ref(s).is_some_and(|set| set.members.contains(&p)) {
                        let _ = writeln!(err, "{p:?}: not a member of its set");
                    }
                }
            } else if c.receive_holders != 0 {
                let _ = writeln!(err, "{p:?}: dead port with a receive right");
            }
        }
        if !counts.is_empty() {
            let _ = writeln!(err, "references to freed ports: {counts:?}");
        }
        let k = &self.counters;
        if (
            k.active_ports,
            k.port_objects,
            k.port_sets,
            k.queued,
            k.kmsgs,
            k.ool_bytes,
        ) != (active, objects, sets, queued, kmsgs, ool)
        {
            let _ = writeln!(
                err,
                "counters {k:?} expected ports {active} objects {objects} sets {sets} queued {queued} kmsgs {kmsgs} ool {ool}"
            );
        }
        if err.is_empty() {
            Ok(())
        } else {
            Err(err)
        }
    }
}
