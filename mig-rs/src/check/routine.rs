//! Routines: argument kinds, implicit arguments and their checks (mig-language.md §3.2).
//!
//! Arguments are processed in a list exactly as GNU MIG does: implicit arguments are
//! inserted right after the argument they belong to and processed in later iterations, the
//! return code comes first, dummy reply ports follow the request port, the msgoption and
//! waittime dummies follow msgseqno. The resulting order and [`ArgKind`] bits are what the
//! layout and code generation read.

use super::types::{Dealloc, Flags, TypeId, Types, POLY};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{Arg, ArgId, ArgKind, HeaderPort, RoutineKind};
use crate::source::Loc;
use mig_runtime::wire::{type_name, Target};

/// An argument as written, with its resolved type (None after a type error).
pub struct RawArg<'a> {
    pub name: &'a str,
    pub kind: ArgKind,
    pub ty: Option<TypeId>,
    pub flags: Flags,
    pub loc: Loc,
}

/// A routine's arguments after GNU MIG's `rtCheckRoutine`, before layout.
pub struct CheckedArgs {
    pub args: Vec<Arg>,
    pub request_port: Option<ArgId>,
    pub user_reply_port: ArgId,
    pub server_reply_port: ArgId,
    pub wait_time: Option<ArgId>,
    pub msg_option: ArgId,
    pub msg_seqno: Option<ArgId>,
    pub ret_code: ArgId,
}

/// Arguments in a linked list by index, so insertion after the current one is cheap and
/// indices stay stable while processing.
struct ArgList {
    nodes: Vec<Node>,
    order: Vec<usize>,
}

struct Node {
    arg: Arg,
    ty: Option<TypeId>,
    flags: Flags,
}

impl ArgList {
    fn push_back(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        let i = self.nodes.len() - 1;
        self.order.push(i);
        i
    }
    fn insert_after(&mut self, after: Option<usize>, n: Node) -> usize {
        self.nodes.push(n);
        let i = self.nodes.len() - 1;
        let pos = match after {
            Some(a) => self
                .order
                .iter()
                .position(|&x| x == a)
                .map(|p| p + 1)
                .unwrap_or(self.order.len()),
            None => 0,
        };
        self.order.insert(pos, i);
        i
    }
}

fn blank_arg(name: &str, kind: ArgKind, ty: TypeId) -> Arg {
    Arg {
        name: name.to_string(),
        kind,
        ty,
        var_name: name.to_string(),
        dealloc: Dealloc::No,
        long_form: false,
        server_copy: false,
        count_in_out: false,
        count: None,
        c_in_out: None,
        poly: None,
        dealloc_arg: None,
        scopy: None,
        parent: None,
        multiplier: 1,
        request_pos: 0,
        reply_pos: 0,
        by_ref_user: false,
        by_ref_server: false,
        header_poly: None,
        loc: None,
    }
}

/// Global statement state a routine picks up when it is declared.
pub struct RoutineEnv<'a> {
    pub msg_option: Option<&'a str>,
    pub wait_time: Option<&'a str>,
    pub target: Target,
}

/// GNU MIG's `rtCheckRoutine` minus the naming. Returns `None` when the routine has errors
/// (they are reported).
pub fn check_args(
    kind: RoutineKind,
    name: &str,
    name_loc: Loc,
    raw: Vec<RawArg<'_>>,
    types: &mut Types,
    env: &RoutineEnv<'_>,
    diags: &mut Diagnostics,
) -> Option<CheckedArgs> {
    let errors_before = diags.error_count();
    let builtins = types.builtins?;
    let one_way = kind == RoutineKind::SimpleRoutine;
    let kind_str = if one_way { "SimpleRoutine" } else { "Routine" };
    // Room for the return code, the dummy ports and options, and a few implicit arguments.
    let room = raw.len() * 2 + 6;
    let mut list = ArgList {
        nodes: Vec::with_capacity(room),
        order: Vec::with_capacity(room),
    };

    // rtAddRetCode: first.
    let ret_code = list.push_back(Node {
        arg: blank_arg("RetCode", ArgKind::AK_RET_CODE, builtins.ret_code),
        ty: Some(builtins.ret_code),
        flags: Flags::NONE,
    });
    for r in raw {
        let mut a = blank_arg(r.name, r.kind, r.ty.unwrap_or(builtins.ret_code));
        a.loc = Some(r.loc);
        list.push_back(Node {
            arg: a,
            ty: r.ty,
            flags: r.flags,
        });
    }

    let mut request_port: Option<usize> = None;
    let mut ureply: Option<usize> = None;
    let mut sreply: Option<usize> = None;
    let mut wait_time: Option<usize> = None;
    let mut msg_option: Option<usize> = None;
    let mut msg_seqno: Option<usize> = None;

    // rtCheckRoutineArgs: the list grows while we walk it.
    let mut pos = 0;
    while pos < list.order.len() {
        let i = list.order[pos];
        pos += 1;
        // rtDefaultArgKind
        if list.nodes[i].arg.kind.0 == ArgKind::NONE {
            list.nodes[i].arg.kind = if request_port.is_none() {
                ArgKind::AK_REQUEST_PORT
            } else {
                ArgKind::IN
            };
        }
        // rtCheckRoutineArg
        let k = list.nodes[i].arg.kind;
        let warn_multi = |diags: &mut Diagnostics, what: &str, old: usize, list: &ArgList| {
            diags.push(
                Diagnostic::warning(format!(
                    "multiple {what} args in {name}; {} won't be used",
                    list.nodes[old].arg.name
                ))
                .at_opt(list.nodes[i].arg.loc),
            );
        };
        match k.ident() {
            ArgKind::REQUEST_PORT => {
                if let Some(old) = request_port {
                    warn_multi(diags, "RequestPort", old, &list);
                }
                request_port = Some(i);
            }
            ArgKind::REPLY_PORT => {
                if k.any(ArgKind::USER_ARG) {
                    if let Some(old) = ureply {
                        warn_multi(diags, "UserReplyPort", old, &list);
                    }
                    ureply = Some(i);
                }
                if k.any(ArgKind::SERVER_ARG) {
                    if let Some(old) = sreply {
                        warn_multi(diags, "ServerReplyPort", old, &list);
                    }
                    sreply = Some(i);
                }
            }
            ArgKind::WAIT_TIME => {
                if let Some(old) = wait_time {
                    warn_multi(diags, "WaitTime", old, &list);
                }
                wait_time = Some(i);
            }
            ArgKind::MSG_OPTION => {
                if let Some(old) = msg_option {
                    warn_multi(diags, "MsgOption", old, &list);
                }
                msg_option = Some(i);
            }
            ArgKind::MSG_SEQNO => {
                if let Some(old) = msg_seqno {
                    warn_multi(diags, "MsgSeqno", old, &list);
                }
                msg_seqno = Some(i);
            }
            _ => {}
        }
        // rtSetArgDefaults (header poly fields are marked when the poly arg is processed).
        set_arg_defaults(&mut list, i, request_port, ureply, sreply);

        let Some(ty) = list.nodes[i].ty else { continue };
        if types.get(ty).poisoned {
            continue;
        }
        process_flags(&mut list.nodes[i], types, diags);
        augment_kind(&mut list.nodes[i], types, diags);

        // Implicit arguments, inserted in reverse so the final order is
        // arg, poly, countinout, count, dealloc, scopy.
        let (server_copy, dealloc, count_in_out) = {
            let a = &list.nodes[i].arg;
            (a.server_copy, a.dealloc, a.count_in_out)
        };
        let (var_array, poly) = {
            let t = types.get(ty);
            (t.var_array, t.in_name == POLY || t.out_name == POLY)
        };
        if server_copy {
            add_scopy(&mut list, i, types);
        }
        if dealloc == Dealloc::Maybe {
            add_dealloc(&mut list, i, types);
        }
        if var_array {
            add_count(&mut list, i, types);
        }
        if count_in_out {
            add_count_in_out(&mut list, i, types);
        }
        if poly {
            add_poly(&mut list, i, types);
        }
    }

    // Dummy reply ports, msgoption and waittime.
    if ureply.is_none() {
        let ty = if one_way {
            builtins.zero_reply_port
        } else {
            builtins.real_reply_port
        };
        let n = list.insert_after(
            request_port,
            Node {
                arg: blank_arg("dummy ReplyPort arg", ArgKind(ArgKind::REPLY_PORT), ty),
                ty: Some(ty),
                flags: Flags::NONE,
            },
        );
        ureply = Some(n);
    }
    if sreply.is_none() {
        let ty = if one_way {
            builtins.zero_reply_port
        } else {
            builtins.real_reply_port
        };
        let n = list.insert_after(
            request_port,
            Node {
                arg: blank_arg("dummy ReplyPort arg", ArgKind(ArgKind::REPLY_PORT), ty),
                ty: Some(ty),
                flags: Flags::NONE,
            },
        );
        sreply = Some(n);
    }
    if msg_option.is_none() {
        let mut a = blank_arg(
            "dummy MsgOption arg",
            ArgKind(ArgKind::MSG_OPTION),
            builtins.msg_option,
        );
        a.var_name = env.msg_option.unwrap_or("MACH_MSG_OPTION_NONE").to_string();
        let n = list.insert_after(
            msg_seqno,
            Node {
                arg: a,
                ty: Some(builtins.msg_option),
                flags: Flags::NONE,
            },
        );
        msg_option = Some(n);
    }
    if wait_time.is_none() {
        if let Some(w) = env.wait_time {
            let mut a = blank_arg(
                "dummy WaitTime arg",
                ArgKind(ArgKind::WAIT_TIME),
                builtins.wait_time,
            );
            a.var_name = w.to_string();
            let n = list.insert_after(
                msg_option,
                Node {
                    arg: a,
                    ty: Some(builtins.wait_time),
                    flags: Flags::NONE,
                },
            );
            wait_time = Some(n);
        }
    }

    // rtCheckArgTypes
    let Some(request_port) = request_port else {
        diags.push(
            Diagnostic::error(format!("{kind_str} {name} doesn't have a server port argument"))
                .at(name_loc)
                .note("the first argument without a direction (or a `requestport` argument) is the port the request is sent to"),
        );
        return None;
    };
    check_port_type(&list, request_port, types, PortRole::Request, diags);
    if let Some(u) = ureply {
        check_port_type(&list, u, types, PortRole::Reply, diags);
    }
    if let Some(s) = sreply {
        if Some(s) != ureply {
            check_port_type(&list, s, types, PortRole::Reply, diags);
        }
    }
    for x in [wait_time, msg_option, msg_seqno].into_iter().flatten() {
        check_natural(&list, x, types, diags);
    }

    // rtCheckArgTrans
    for &i in &list.order {
        let n = &list.nodes[i];
        let Some(ty) = n.ty else { continue };
        let t = types.get(ty);
        if t.server_type != t.trans_type {
            if n.arg.kind.any(ArgKind::SEND_RCV) && t.in_trans.is_none() {
                diags.push(
                    Diagnostic::warning(format!(
                        "{}: argument has no in-translation function",
                        n.arg.name
                    ))
                    .at_opt(n.arg.loc),
                );
            }
            if n.arg.kind.any(ArgKind::RETURN_SND) && t.out_trans.is_none() {
                diags.push(
                    Diagnostic::warning(format!(
                        "{}: argument has no out-translation function",
                        n.arg.name
                    ))
                    .at_opt(n.arg.loc),
                );
            }
        }
    }

    if one_way {
        if let Some(&i) = list
            .order
            .iter()
            .find(|&&i| list.nodes[i].arg.kind.any(ArgKind::RETURN_BITS_BASE))
        {
            diags.push(
                Diagnostic::error(format!("{kind_str} {name} has OUT argument"))
                    .at_opt(list.nodes[i].arg.loc.or(Some(name_loc)))
                    .label("a simpleroutine has no reply")
                    .note("use `routine` for calls that return values"),
            );
        }
    }

    if diags.error_count() > errors_before
        || list.order.iter().any(|&i| {
            list.nodes[i]
                .ty
                .map(|t| types.get(t).poisoned)
                .unwrap_or(true)
        })
    {
        return None;
    }

    // Flatten: node index -> position.
    let mut pos_of = vec![0u32; list.nodes.len()];
    for (p, &i) in list.order.iter().enumerate() {
        pos_of[i] = p as u32;
    }
    let map = |x: Option<ArgId>| x.map(|ArgId(i)| ArgId(pos_of[i as usize]));
    let mut args: Vec<Arg> = Vec::with_capacity(list.order.len());
    let order = std::mem::take(&mut list.order);
    let mut nodes: Vec<Option<Arg>> = list.nodes.into_iter().map(|n| Some(n.arg)).collect();
    for &i in &order {
        // Every node is in the order exactly once.
        let Some(mut a) = nodes[i].take() else {
            continue;
        };
        a.count = map(a.count);
        a.c_in_out = map(a.c_in_out);
        a.poly = map(a.poly);
        a.dealloc_arg = map(a.dealloc_arg);
        a.scopy = map(a.scopy);
        a.parent = map(a.parent);
        args.push(a);
    }
    let id = |i: usize| ArgId(pos_of[i]);
    let mut out = CheckedArgs {
        args,
        request_port: Some(id(request_port)),
        user_reply_port: id(ureply?),
        server_reply_port: id(sreply?),
        wait_time: wait_time.map(id),
        msg_option: id(msg_option?),
        msg_seqno: msg_seqno.map(id),
        ret_code: id(ret_code),
    };
    finish(&mut out, types, env.target);
    Some(out)
}

#[derive(Clone, Copy)]
enum PortRole {
    Request,
    Reply,
}

fn check_port_type(
    list: &ArgList,
    i: usize,
    types: &Types,
    role: PortRole,
    diags: &mut Diagnostics,
) {
    let n = &list.nodes[i];
    let Some(ty) = n.ty else { return };
    let t = types.get(ty);
    let name_ok = match role {
        PortRole::Request => matches!(
            t.out_name,
            type_name::PORT_SEND | type_name::PORT_SEND_ONCE | POLY
        ),
        PortRole::Reply => matches!(
            t.out_name,
            type_name::PORT_SEND | type_name::PORT_SEND_ONCE | POLY | 0
        ),
    };
    if !name_ok
        || t.number != 1
        || t.size != types.port_size_bits()
        || !t.inline
        || t.dealloc != Dealloc::No
        || !t.is_struct
        || t.var_array
    {
        let what = match role {
            PortRole::Request => "request",
            PortRole::Reply => "reply",
        };
        diags.push(
            Diagnostic::error(format!(
                "argument {} isn't a proper {what} port",
                n.arg.name
            ))
            .at_opt(n.arg.loc)
            .note(format!(
                "a {what} port must be a single inline send or send-once right of {} bits",
                types.port_size_bits()
            )),
        );
    }
}

fn check_natural(list: &ArgList, i: usize, types: &Types, diags: &mut Diagnostics) {
    let n = &list.nodes[i];
    let Some(ty) = n.ty else { return };
    let t = types.get(ty);
    if t.in_name != type_name::INTEGER_32
        || t.out_name != type_name::INTEGER_32
        || t.number != 1
        || t.size != 32
        || !t.inline
        || t.dealloc != Dealloc::No
        || !t.is_struct
        || t.var_array
    {
        diags.push(
            Diagnostic::error(format!(
                "argument {} should have been a MACH_MSG_TYPE_INTEGER_32",
                n.arg.name
            ))
            .at_opt(n.arg.loc)
            .note("msgseqno, msgoption and waittime arguments must be 32-bit integers"),
        );
    }
}

/// `rtSetArgDefaults`: field names, and the poly arguments of header ports.
fn set_arg_defaults(
    list: &mut ArgList,
    i: usize,
    request_port: Option<usize>,
    ureply: Option<usize>,
    sreply: Option<usize>,
) {
    let mut header = None;
    if let Some(rp) = request_port {
        if list.nodes[rp].arg.poly == Some(ArgId(i as u32)) {
            header = Some(HeaderPort::Request);
        }
    }
    for p in [ureply, sreply].into_iter().flatten() {
        if list.nodes[p].arg.poly == Some(ArgId(i as u32)) {
            header = Some(HeaderPort::Reply);
        }
    }
    if header.is_some() {
        list.nodes[i].arg.header_poly = header;
    }
}

/// `rtProcessArgFlags`.
fn process_flags(n: &mut Node, types: &Types, diags: &mut Diagnostics) {
    let Some(ty) = n.ty else { return };
    let t = types.get(ty);
    let name = n.arg.name.as_str();
    let loc = n.arg.loc;
    let flags = Types::check_flags(n.flags, name, loc, diags);
    n.flags = flags;
    let k = n.arg.kind;
    n.arg.dealloc = if ((types.kernel_server && k.any(ArgKind::RETURN_BITS_BASE))
        || (types.kernel_user && k.any(ArgKind::SEND)))
        && flags.has(Flags::DEALLOC)
        && t.dealloc == Dealloc::No
    {
        Dealloc::Yes
    } else {
        Types::check_dealloc(t, flags, t.dealloc, name, loc, diags)
    };
    n.arg.long_form = Types::check_is_long(t, flags, t.long_form, name, loc, diags);
    if flags.has(Flags::SERVER_COPY) {
        if t.indefinite && k.any(ArgKind::SEND) {
            n.arg.server_copy = true;
        } else {
            diags.push(
                Diagnostic::warning(format!("{name}: ServerCopy on argument is meaningless"))
                    .at_opt(loc),
            );
        }
    }
    if flags.has(Flags::COUNT_IN_OUT) {
        if t.var_array && t.inline && k.any(ArgKind::REPLY) {
            n.arg.count_in_out = true;
        } else {
            diags.push(
                Diagnostic::warning(format!("{name}: CountInOut on argument is meaningless"))
                    .at_opt(loc),
            );
        }
    }
}

/// `rtAugmentArgKind`.
fn augment_kind(n: &mut Node, types: &Types, diags: &mut Diagnostics) {
    let Some(ty) = n.ty else { return };
    let t = types.get(ty);
    let mut k = n.arg.kind;
    if t.var_array && t.inline {
        if k.all(ArgKind::REQUEST | ArgKind::REPLY) {
            diags.push(
                Diagnostic::error(format!(
                    "{}: Inline variable-sized arguments can't be InOut",
                    n.arg.name
                ))
                .at_opt(n.arg.loc),
            );
        }
        k = k.add(ArgKind::VARIABLE);
        if t.indefinite {
            k = k.add(ArgKind::INDEFINITE);
        }
    }
    if k.any(ArgKind::REQUEST)
        && !n.arg.long_form
        && t.out_name != POLY
        && !t.var_array
        && !(types.kernel_server && (!t.inline || type_name::is_port_any(t.out_name)))
    {
        k = k.add(ArgKind::REQUEST_QC);
    }
    if k.any(ArgKind::REPLY) && !n.arg.long_form && t.out_name != POLY && !t.var_array {
        k = k.add(ArgKind::REPLY_QC);
    }
    let ident = k.ident();
    if (t.out_trans.is_some() && k.any(ArgKind::RETURN_SND))
        || (t.in_trans.is_some() && k.all(ArgKind::SEND_RCV | ArgKind::RETURN_SND))
        || (t.destructor.is_some()
            && k.any(ArgKind::SEND_RCV)
            && !k.any(ArgKind::RETURN_SND)
            && t.in_trans.is_some())
        || (ident == ArgKind::COUNT && k.any(ArgKind::RETURN_SND))
        || (ident == ArgKind::POLY && k.any(ArgKind::RETURN_SND))
        || (ident == ArgKind::DEALLOC && k.any(ArgKind::RETURN_SND))
        || t.in_trans_payload.is_some()
    {
        k = k.remove(ArgKind::REPLY_COPY).add(ArgKind::VAR_NEEDED);
    }
    if t.indefinite && k.any(ArgKind::RETURN_SND) {
        k = k.add(ArgKind::POINTER);
    }
    if k.any(ArgKind::SEND_RCV)
        && types.target == Target::X86_64
        && t.userland_port
        && k.any(ArgKind::INDEFINITE)
    {
        k = k.add(ArgKind::POINTER);
    }
    n.arg.kind = k;
}

fn implicit(list: &mut ArgList, parent: usize, name: String, kind: ArgKind, ty: TypeId) -> usize {
    let mut a = blank_arg(&name, kind, ty);
    a.parent = Some(ArgId(parent as u32));
    list.insert_after(
        Some(parent),
        Node {
            arg: a,
            ty: Some(ty),
            flags: Flags::NONE,
        },
    )
}

fn add_count(list: &mut ArgList, i: usize, types: &mut Types) {
    let ty = types.make_count_type();
    let parent_ty = types.get(list.nodes[i].ty.unwrap_or(ty));
    let is_string = parent_ty.is_string;
    let multiplier = parent_ty.element.map(|e| types.get(e).number).unwrap_or(1);
    let pk = list.nodes[i].arg.kind;
    let kind = if is_string {
        ArgKind(ArgKind::COUNT)
    } else {
        ArgKind::AK_COUNT.add(pk.0 & (ArgKind::SEND_BITS | ArgKind::RETURN_BITS))
    };
    let name = format!("{}Cnt", list.nodes[i].arg.name);
    let c = implicit(list, i, name, kind, ty);
    list.nodes[c].arg.multiplier = multiplier;
    list.nodes[i].arg.count = Some(ArgId(c as u32));
}

fn add_count_in_out(list: &mut ArgList, i: usize, types: &mut Types) {
    let ty = types.make_count_type();
    let name = format!("{}Cnt", list.nodes[i].arg.name);
    let c = implicit(list, i, name, ArgKind::AK_COUNT_IN_OUT, ty);
    // The count-in-out argument has no parent (it is in the request).
    list.nodes[c].arg.parent = None;
    if let Some(ArgId(cnt)) = list.nodes[i].arg.count {
        list.nodes[c].arg.c_in_out = Some(ArgId(cnt));
        list.nodes[cnt as usize].arg.c_in_out = Some(ArgId(c as u32));
    }
}

fn add_poly(list: &mut ArgList, i: usize, types: &mut Types) {
    let ty = types.make_poly_type();
    let Some(pty) = list.nodes[i].ty else { return };
    let t = types.get(pty);
    let (in_name, out_name) = (t.in_name, t.out_name);
    let ks = types.kernel_server;
    let mut send = ArgKind::SEND | ArgKind::SEND_BODY;
    let mut ret = ArgKind::RETURN_BITS_BASE | ArgKind::RETURN_BODY;
    if in_name == POLY {
        send |= ArgKind::USER_ARG | ArgKind::SEND_SND;
        if !ks {
            ret |= ArgKind::SERVER_ARG | ArgKind::RETURN_SND;
        }
    }
    if out_name == POLY {
        send |= ArgKind::SERVER_ARG | ArgKind::SEND_RCV;
        ret |= ArgKind::USER_ARG | ArgKind::RETURN_RCV;
        if ks {
            ret |= ArgKind::SERVER_ARG | ArgKind::RETURN_SND;
        }
    }
    let pk = list.nodes[i].arg.kind;
    let mut kind = ArgKind::AK_POLY;
    if pk.any(ArgKind::SEND) {
        kind = kind.add(pk.0 & send);
    }
    if pk.any(ArgKind::RETURN_BITS_BASE) {
        kind = kind.add(pk.0 & ret);
    }
    let name = format!("{}Poly", list.nodes[i].arg.name);
    let p = implicit(list, i, name, kind, ty);
    list.nodes[i].arg.poly = Some(ArgId(p as u32));
}

fn add_dealloc(list: &mut ArgList, i: usize, types: &mut Types) {
    let ty = types.make_dealloc_type();
    let Some(pty) = list.nodes[i].ty else { return };
    let indefinite = types.get(pty).indefinite;
    let pk = list.nodes[i].arg.kind;
    let mut kind = ArgKind(ArgKind::DEALLOC);
    if pk.any(ArgKind::SEND) {
        kind = kind.add(
            pk.0 & (ArgKind::USER_ARG
                | ArgKind::SEND
                | ArgKind::SEND_BODY
                | if indefinite { 0 } else { ArgKind::SEND_SND }),
        );
    }
    let mut by_ref_server = false;
    if pk.any(ArgKind::RETURN_BITS_BASE) {
        kind = kind.add(
            pk.0 & (ArgKind::SERVER_ARG
                | ArgKind::RETURN_BITS_BASE
                | ArgKind::RETURN_BODY
                | if indefinite { 0 } else { ArgKind::RETURN_SND }),
        );
        if indefinite {
            kind = kind.add(ArgKind::VAR_NEEDED);
            by_ref_server = true;
        }
    }
    let name = format!("{}Dealloc", list.nodes[i].arg.name);
    let d = implicit(list, i, name, kind, ty);
    list.nodes[d].arg.by_ref_server = by_ref_server;
    list.nodes[i].arg.dealloc_arg = Some(ArgId(d as u32));
}

fn add_scopy(list: &mut ArgList, i: usize, types: &mut Types) {
    let ty = types.make_dealloc_type();
    let name = format!("{}SCopy", list.nodes[i].arg.name);
    let s = implicit(list, i, name, ArgKind::AK_SERVER_COPY, ty);
    list.nodes[i].arg.scopy = Some(ArgId(s as u32));
}

/// `rtCheckVariable`, `rtCheckDestroy`, `rtAddByReference`.
fn finish(out: &mut CheckedArgs, types: &Types, _target: Target) {
    let mut num_req = 0i32;
    let mut num_rep = 0i32;
    let n = out.args.len();
    for idx in 0..n {
        let (parent, kind) = (out.args[idx].parent, out.args[idx].kind);
        if let Some(ArgId(p)) = parent {
            let (rq, rp) = (
                out.args[p as usize].request_pos,
                out.args[p as usize].reply_pos,
            );
            out.args[idx].request_pos = rq;
            out.args[idx].reply_pos = rp;
        } else {
            if kind.any(ArgKind::REQUEST | ArgKind::SEND) {
                out.args[idx].request_pos = num_req;
                if kind.any(ArgKind::VARIABLE) {
                    num_req += 1;
                }
            } else {
                out.args[idx].request_pos = -1;
            }
            if kind.any(ArgKind::REPLY | ArgKind::RETURN_BITS_BASE) {
                out.args[idx].reply_pos = num_rep;
                if kind.any(ArgKind::VARIABLE) {
                    num_rep += 1;
                }
            } else {
                out.args[idx].reply_pos = -1;
            }
        }
        let a = &mut out.args[idx];
        if a.kind.any(ArgKind::RETURN_SND)
            && !a.kind.any(ArgKind::REPLY_COPY | ArgKind::VAR_NEEDED)
            && a.reply_pos > 0
        {
            a.kind = a.kind.add(ArgKind::VAR_NEEDED);
        }
    }
    for a in out.args.iter_mut() {
        let t = types.get(a.ty);
        if a.kind.any(ArgKind::SEND_RCV)
            && !a.kind.any(ArgKind::RETURN_SND)
            && (t.destructor.is_some() || (a.kind.any(ArgKind::INDEFINITE) && !a.server_copy))
        {
            a.kind = a.kind.add(ArgKind::DESTROY);
        }
    }
    for idx in 0..n {
        let (kind, ty, cio) = (out.args[idx].kind, out.args[idx].ty, out.args[idx].c_in_out);
        let t = types.get(ty);
        if kind.any(ArgKind::RETURN_RCV) && (t.is_struct || t.indefinite) {
            out.args[idx].by_ref_user = true;
            if let Some(ArgId(c)) = cio {
                out.args[c as usize].by_ref_user = true;
            }
        }
        if kind.any(ArgKind::RETURN_SND) && (t.is_struct || t.indefinite) {
            out.args[idx].by_ref_server = true;
        }
    }
}
