//! Semantic analysis: the syntax tree to the IR ([`crate::ir::Subsystem`]).
//!
//! Statements are processed in order, as GNU MIG's parser actions run: `subsystem` creates
//! the built-in types (so types used before it are errors), prefixes, `msgoption` and
//! `waittime` apply to later routines only, `skip` advances the routine counter, and every
//! routine's arguments go through [`routine::check_args`]. Diagnostics use GNU MIG's wording
//! where GNU MIG has a message, and never stop the pass early except where GNU MIG's own
//! behaviour is fatal (a second set of built-in types).

pub mod layout;
pub mod routine;
pub mod types;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{ArgKind, Import, Routine, RoutineKind as IrKind, Subsystem};
use crate::lex::{DefaultSize, FlagKw};
use crate::parse::ast::{
    self, Direction, PrimIpc, RoutineKind, StmtKind, TransClause, TypeSpecKind,
};
use crate::source::Loc;
use layout::{message_layout, Message};
use mig_runtime::wire::Target;
use routine::{check_args, RawArg, RoutineEnv};
use types::{Flags, TypeId, Types};

/// Options that change what a `.defs` file means.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    pub target: Target,
    /// `-prefix`: prepended to user, server and demux names.
    pub routine_prefix: String,
}

struct State<'o> {
    opts: &'o CheckOptions,
    types: Types,
    subsystem: Option<(String, u32, Loc)>,
    subsystem_seen: bool,
    msg_option: Option<String>,
    wait_time: Option<String>,
    server_prefix: String,
    user_prefix: String,
    server_demux: Option<String>,
    rcsid: Option<String>,
    imports: Vec<Import>,
    rt_number: u32,
    routines: Vec<Routine>,
    fatal: bool,
}

/// Checks a parsed file. Returns the subsystem if one was declared (callers must still look
/// at `diags` for errors before generating anything).
pub fn check(file: &ast::File, opts: &CheckOptions, diags: &mut Diagnostics) -> Option<Subsystem> {
    check_stmts(&file.stmts, opts, diags)
}

/// [`check`], consuming the syntax tree: each statement is freed once it is checked, so
/// the IR built from the next ones reuses that memory instead of touching new pages.
pub fn check_owned(
    file: ast::File,
    opts: &CheckOptions,
    diags: &mut Diagnostics,
) -> Option<Subsystem> {
    check_stmts(file.stmts, opts, diags)
}

fn check_stmts<S: std::borrow::Borrow<ast::Stmt>>(
    stmts: impl IntoIterator<Item = S, IntoIter: ExactSizeIterator>,
    opts: &CheckOptions,
    diags: &mut Diagnostics,
) -> Option<Subsystem> {
    let stmts = stmts.into_iter();
    let mut st = State {
        opts,
        // Roughly two types per statement (named types, arrays, counts); reserved at once
        // rather than grown by copying.
        types: Types::with_capacity(opts.target, stmts.len() * 2),
        subsystem: None,
        subsystem_seen: false,
        msg_option: None,
        wait_time: None,
        server_prefix: String::new(),
        user_prefix: String::new(),
        server_demux: None,
        rcsid: None,
        imports: Vec::new(),
        rt_number: 0,
        // About half the statements of a subsystem file are routines.
        routines: Vec::with_capacity(stmts.len() / 2 + 1),
        fatal: false,
    };
    for stmt in stmts {
        st.statement(stmt.borrow(), diags);
        if st.fatal {
            break;
        }
    }
    let Some((name, base, loc)) = st.subsystem.clone() else {
        if !st.fatal {
            diags.push(Diagnostic::error("no SubSystem declaration").note(
                "every .defs file needs `subsystem NAME BASE;` before its types and routines",
            ));
        }
        return None;
    };
    let demux = format!(
        "{}{}",
        opts.routine_prefix,
        st.server_demux
            .clone()
            .unwrap_or_else(|| format!("{name}_server"))
    );
    Some(Subsystem {
        name,
        base,
        kernel_user: st.types.kernel_user,
        kernel_server: st.types.kernel_server,
        target: opts.target,
        routines: st.routines,
        num_slots: st.rt_number,
        demux_name: demux,
        imports: st.imports,
        rcsid: st.rcsid,
        types: st.types,
        loc,
    })
}

fn flag_bits(f: FlagKw) -> u32 {
    match f {
        FlagKw::IsLong => Flags::LONG,
        FlagKw::IsNotLong => Flags::NOT_LONG,
        FlagKw::Dealloc => Flags::DEALLOC,
        FlagKw::NotDealloc => Flags::NOT_DEALLOC,
        FlagKw::ServerCopy => Flags::SERVER_COPY,
        FlagKw::CountInOut => Flags::COUNT_IN_OUT,
        FlagKw::RetCode => 0,
    }
}

/// Folds a flag list as GNU MIG's grammar actions do.
fn fold_flags(items: &[ast::FlagItem], diags: &mut Diagnostics) -> Flags {
    let mut acc = 0u32;
    for it in items {
        let bits = flag_bits(it.flag);
        if it.variable {
            if it.flag != FlagKw::Dealloc {
                diags.push(
                    Diagnostic::warning("only Dealloc is variable")
                        .at(it.loc)
                        .label("`[]` is ignored here"),
                );
            } else {
                acc |= Flags::MAYBE_DEALLOC;
            }
        } else if acc & bits != 0 {
            diags.push(Diagnostic::warning("redundant IPC flag ignored").at(it.loc));
        } else {
            acc |= bits;
        }
    }
    Flags(acc)
}

impl State<'_> {
    fn eval(&self, e: &ast::IntExpr, diags: &mut Diagnostics) -> u32 {
        match e.eval() {
            Ok(v) => v,
            Err(loc) => {
                diags.push(
                    Diagnostic::error("division by zero in an integer expression")
                        .at(loc)
                        .label("this divisor is zero")
                        .note("GNU MIG crashes on this"),
                );
                0
            }
        }
    }

    fn default_size(&self, d: DefaultSize) -> u32 {
        match d {
            DefaultSize::Bits(b) => b,
            DefaultSize::PortSize => self.types.port_size_bits(),
            DefaultSize::PortNameSize => 32,
        }
    }

    fn prim(&self, p: PrimIpc) -> (u32, u32, Option<&'static str>, Option<&'static str>, u32) {
        match p {
            PrimIpc::Number(n) => (n, n, None, None, 0),
            PrimIpc::Sym(s) => {
                let out_str = match s.out_name {
                    16 => "MACH_MSG_TYPE_PORT_RECEIVE",
                    17 => "MACH_MSG_TYPE_PORT_SEND",
                    18 => "MACH_MSG_TYPE_PORT_SEND_ONCE",
                    _ => s.spelling,
                };
                let in_str = if s.in_name == types::POLY {
                    "MACH_MSG_TYPE_POLYMORPHIC"
                } else {
                    s.spelling
                };
                (
                    s.in_name,
                    s.out_name,
                    Some(in_str),
                    Some(out_str),
                    self.default_size(s.default_size),
                )
            }
        }
    }

    /// `IPCType`: `name` or `in|out`, with the size rule for pairs.
    #[allow(clippy::type_complexity)]
    fn ipc_type(
        &self,
        ipc: &ast::IpcType,
        diags: &mut Diagnostics,
    ) -> (u32, Option<&'static str>, u32, Option<&'static str>, u32) {
        let (i1, _o1, is1, _os1, s1) = self.prim(ipc.first.0);
        let Some((second, loc2)) = ipc.second else {
            let (i, o, is, os, s) = self.prim(ipc.first.0);
            return (i, is, o, os, s);
        };
        let (_i2, o2, _is2, os2, s2) = self.prim(second);
        let size = if s1 == s2 {
            s1
        } else if s1 == 0 {
            s2
        } else if s2 == 0 {
            s1
        } else {
            diags.push(
                Diagnostic::error(format!("sizes in IPCTypes ({s1}, {s2}) aren't equal"))
                    .at(ipc.first.1.to(loc2)),
            );
            0
        };
        (i1, is1, o2, os2, size)
    }

    fn type_spec(&mut self, spec: &ast::TypeSpec, diags: &mut Diagnostics) -> TypeId {
        let loc = Some(spec.loc);
        match &spec.kind {
            TypeSpecKind::Basic { ipc, size, flags } => {
                let (i, is, o, os, dsize) = self.ipc_type(ipc, diags);
                match size {
                    None => self.types.short_decl(i, is, o, os, dsize, loc, diags),
                    Some(e) => {
                        let f = fold_flags(flags, diags);
                        let size = self.eval(e, diags);
                        self.types
                            .long_decl(i, is, o, os, dsize, size, f, loc, diags)
                    }
                }
            }
            TypeSpecKind::Prev(id) => self.types.prev_decl(&id.name, id.loc, diags),
            TypeSpecKind::VarArray { max, elem } => {
                let n = max.as_ref().map(|e| self.eval(e, diags)).unwrap_or(0);
                let e = self.type_spec(elem, diags);
                self.types.var_array_decl(n, e, loc, diags)
            }
            TypeSpecKind::Array { count, elem } => {
                let n = self.eval(count, diags);
                let e = self.type_spec(elem, diags);
                self.types.array_decl(n, e, loc, diags)
            }
            TypeSpecKind::Pointer(elem) => {
                let e = self.type_spec(elem, diags);
                self.types.ptr_decl(e, loc, diags)
            }
            TypeSpecKind::StructArray { count, elem } => {
                let n = self.eval(count, diags);
                let e = self.type_spec(elem, diags);
                self.types.struct_array_decl(n, e, loc, diags)
            }
            TypeSpecKind::Struct { members } => {
                let mut size = 0u32;
                let mut align = 0u32;
                let mut bad = false;
                for (i, (ty, name)) in members.iter().enumerate() {
                    let t = self.types.prev_decl(&ty.name, ty.loc, diags);
                    let t = self.types.get(t);
                    if t.poisoned {
                        bad = true;
                        continue;
                    }
                    if !t.inline {
                        diags.push(
                            Diagnostic::error(format!("Type {} must be inline", name.name))
                                .at(ty.loc)
                                .note(
                                    "struct members are data: out-of-line types cannot be members",
                                ),
                        );
                        bad = true;
                        continue;
                    }
                    let a = t.alignment.max(1);
                    if i == 0 {
                        size = t.type_size;
                        align = t.alignment;
                    } else {
                        align = align.max(t.alignment);
                        size = size.div_ceil(a) * a + t.type_size;
                    }
                }
                if bad {
                    return self.types.error_type(loc);
                }
                self.types.struct_decl(size, align, loc, diags)
            }
            TypeSpecKind::CString { max, varying } => {
                let n = self.eval(max, diags);
                self.types.cstring_decl(n, *varying, loc, diags)
            }
        }
    }

    /// `NamedTypeSpec`: spec, translation clauses, then the declaration checks.
    fn named_type(&mut self, nt: &ast::NamedType, diags: &mut Diagnostics) -> TypeId {
        let id = match &nt.spec.kind {
            // `itPrevDecl`, then `itResetType` below: the copy need not copy what is reset.
            TypeSpecKind::Prev(id) => self.types.prev_decl_reset(&id.name, id.loc, diags),
            _ => self.type_spec(&nt.spec, diags),
        };
        self.types.reset_type(id);
        for c in &nt.clauses {
            self.clause(id, c, nt.spec.loc, diags);
        }
        self.types.get_mut(id).loc = Some(nt.name.loc.to(nt.spec.loc));
        self.types.check_decl(&nt.name.name, id, diags);
        id
    }

    fn clause(&mut self, id: TypeId, c: &TransClause, loc: Loc, diags: &mut Diagnostics) {
        let t = self.types.get_mut(id);
        let set =
            |slot: &mut Option<String>, what: &str, v: &ast::Ident, diags: &mut Diagnostics| {
                if let Some(old) = slot.as_deref() {
                    if old != &*v.name {
                        diags.push(
                            Diagnostic::warning(format!("conflicting {what} ({old}, {})", v.name))
                                .at(v.loc),
                        );
                    }
                }
                *slot = Some(v.name.to_string());
            };
        let _ = loc;
        match c {
            TransClause::InTran {
                trans_type,
                func,
                server_type,
            } => {
                set(&mut t.trans_type, "translation types", trans_type, diags);
                set(&mut t.in_trans, "in-translation functions", func, diags);
                set(&mut t.server_type, "server types", server_type, diags);
            }
            TransClause::InTranPayload { trans_type, func } => {
                set(&mut t.trans_type, "translation types", trans_type, diags);
                set(
                    &mut t.in_trans_payload,
                    "in-translation functions",
                    func,
                    diags,
                );
            }
            TransClause::OutTran {
                server_type,
                func,
                trans_type,
            } => {
                set(&mut t.server_type, "server types", server_type, diags);
                set(&mut t.out_trans, "out-translation functions", func, diags);
                set(&mut t.trans_type, "translation types", trans_type, diags);
            }
            TransClause::Destructor { func, trans_type } => {
                set(&mut t.destructor, "destructor functions", func, diags);
                set(&mut t.trans_type, "translation types", trans_type, diags);
            }
            TransClause::CType(x) => {
                set(&mut t.user_type, "user types", x, diags);
                set(&mut t.server_type, "server types", x, diags);
            }
            TransClause::CUserType(x) => set(&mut t.user_type, "user types", x, diags),
            TransClause::CServerType(x) => set(&mut t.server_type, "server types", x, diags),
        }
    }

    fn statement(&mut self, stmt: &ast::Stmt, diags: &mut Diagnostics) {
        match &stmt.kind {
            StmtKind::Subsystem { mods, name, base } => {
                if let Some((old, _, _)) = &self.subsystem {
                    diags.push(
                        Diagnostic::warning(format!(
                            "previous Subsystem decl (of {old}) will be ignored"
                        ))
                        .at(stmt.loc),
                    );
                    self.types.kernel_user = false;
                    self.types.kernel_server = false;
                }
                for (m, loc) in mods {
                    let (flag, word) = match m {
                        ast::SubsystemMod::KernelUser => {
                            (&mut self.types.kernel_user, "KernelUser")
                        }
                        ast::SubsystemMod::KernelServer => {
                            (&mut self.types.kernel_server, "KernelServer")
                        }
                    };
                    if *flag {
                        diags.push(
                            Diagnostic::warning(format!("duplicate {word} keyword")).at(*loc),
                        );
                    }
                    *flag = true;
                }
                self.subsystem = Some((name.name.to_string(), base.0, stmt.loc));
                if self.subsystem_seen {
                    diags.push(
                        Diagnostic::error("Basic types were already initialized")
                            .at(stmt.loc)
                            .label("second `subsystem` statement")
                            .note("GNU MIG stops here: a file can declare only one subsystem"),
                    );
                    self.fatal = true;
                    return;
                }
                self.subsystem_seen = true;
                self.types.init_builtins();
            }
            StmtKind::WaitTime(w) => self.wait_time = w.as_ref().map(|(s, _)| s.clone()),
            StmtKind::MsgOption(s, _) => {
                self.msg_option = if s == "MACH_MSG_OPTION_NONE" {
                    None
                } else {
                    Some(s.clone())
                }
            }
            StmtKind::ServerPrefix(id) => self.server_prefix = id.name.to_string(),
            StmtKind::UserPrefix(id) => self.user_prefix = id.name.to_string(),
            StmtKind::ServerDemux(id) => self.server_demux = Some(id.name.to_string()),
            StmtKind::Type(nt) => {
                let id = self.named_type(nt, diags);
                if let Ok(Some(prev)) = self.types.lookup(&nt.name.name, nt.name.loc, diags) {
                    let mut d = Diagnostic::error(format!(
                        "overriding previous definition of {}",
                        nt.name.name
                    ))
                    .at(nt.name.loc)
                    .label("redefined here");
                    if let Some(l) = self.types.get(prev).loc {
                        d = d.with_secondary(l, "previous definition");
                    } else {
                        d = d.note(format!("`{}` is a built-in type", nt.name.name));
                    }
                    diags.push(d);
                }
                self.types.insert(&nt.name.name, id);
            }
            StmtKind::Routine(decl) => self.routine(decl, stmt.loc, diags),
            StmtKind::Skip(n) => {
                self.rt_number = self.rt_number.wrapping_add(n.map(|(n, _)| n).unwrap_or(1));
            }
            StmtKind::Import { kind, file } => self.imports.push(Import {
                kind: *kind,
                file: file.clone(),
            }),
            StmtKind::RcsId(s) => {
                if self.rcsid.is_some() {
                    diags.push(
                        Diagnostic::warning("previous RCS decl will be ignored").at(stmt.loc),
                    );
                }
                self.rcsid = Some(s.clone());
            }
            StmtKind::Empty => {}
        }
    }

    fn routine(&mut self, decl: &ast::RoutineDecl, loc: Loc, diags: &mut Diagnostics) {
        let number = self.rt_number;
        self.rt_number = self.rt_number.wrapping_add(1);
        if self.types.builtins.is_none() {
            diags.push(
                Diagnostic::error(format!(
                    "routine {} is declared before the subsystem: basic types not initialized",
                    decl.name.name
                ))
                .at(decl.name.loc)
                .note("GNU MIG crashes on this; put `subsystem NAME BASE;` first"),
            );
            return;
        }
        let mut raw = Vec::with_capacity(decl.args.len());
        for a in &decl.args {
            let kind = match a.direction.map(|d| d.0) {
                None => ArgKind(ArgKind::NONE),
                Some(Direction::In) => ArgKind::IN,
                Some(Direction::Out) => ArgKind::OUT,
                Some(Direction::InOut) => ArgKind::IN_OUT,
                Some(Direction::RequestPort) => ArgKind::AK_REQUEST_PORT,
                Some(Direction::ReplyPort) => ArgKind::AK_REPLY_PORT,
                Some(Direction::SReplyPort) => ArgKind::AK_SREPLY_PORT,
                Some(Direction::UReplyPort) => ArgKind::AK_UREPLY_PORT,
                Some(Direction::WaitTime) => ArgKind::AK_WAIT_TIME,
                Some(Direction::MsgOption) => ArgKind::AK_MSG_OPTION,
                Some(Direction::MsgSeqno) => ArgKind::AK_MSG_SEQNO,
            };
            let ty = match &a.ty {
                ast::ArgType::Named(id) => match self.types.lookup(&id.name, id.loc, diags) {
                    Ok(Some(t)) => Some(t),
                    Ok(None) => {
                        diags.push(
                            Diagnostic::error(format!("type '{}' not defined", id.name))
                                .at(id.loc)
                                .label("no type of this name is declared before this point"),
                        );
                        None
                    }
                    Err(()) => None,
                },
                ast::ArgType::Inline(nt) => Some(self.named_type(nt, diags)),
            };
            let flags = fold_flags(&a.flags, diags);
            raw.push(RawArg {
                name: &a.name.name,
                kind,
                ty,
                flags,
                loc: a.loc,
            });
        }
        let kind = match decl.kind {
            RoutineKind::Routine => IrKind::Routine,
            RoutineKind::SimpleRoutine => IrKind::SimpleRoutine,
        };
        let env = RoutineEnv {
            msg_option: self.msg_option.as_deref(),
            wait_time: self.wait_time.as_deref(),
            target: self.opts.target,
        };
        let Some(c) = check_args(
            kind,
            &decl.name.name,
            decl.name.loc,
            raw,
            &mut self.types,
            &env,
            diags,
        ) else {
            return;
        };
        let Some(request_port) = c.request_port else {
            return;
        };
        let request = message_layout(&c.args, &self.types, Message::Request);
        let reply = message_layout(&c.args, &self.types, Message::Reply);
        let base = self.subsystem.as_ref().map(|s| s.1).unwrap_or(0);
        let msg_id = base.wrapping_add(number) as i32;
        let no_reply_args = !c.args.iter().any(|a| a.kind.all(ArgKind::RETURN_SND));
        let prefix = &self.opts.routine_prefix;
        self.routines.push(Routine {
            name: decl.name.name.to_string(),
            kind,
            number,
            user_name: format!("{prefix}{}{}", self.user_prefix, decl.name.name),
            server_name: format!("{prefix}{}{}", self.server_prefix, decl.name.name),
            args: c.args,
            request_port,
            user_reply_port: c.user_reply_port,
            server_reply_port: c.server_reply_port,
            wait_time: c.wait_time,
            msg_option: c.msg_option,
            msg_seqno: c.msg_seqno,
            ret_code: c.ret_code,
            request,
            reply,
            msg_id,
            reply_id: msg_id.wrapping_add(100),
            no_reply_args,
            loc,
        });
    }
}

#[cfg(test)]
mod tests;
