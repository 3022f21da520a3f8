//! The parser: tokens to [`ast::File`], written with nom combinators over a token slice.
//!
//! The grammar is GNU MIG's (mig-language.md §2). Like GNU MIG's yacc parser, a syntax error
//! is reported and the parser resumes after the next `;` at the statement level (here: the
//! next `;` outside parentheses and braces, which gives fewer cascading errors). Nesting of
//! type specs and parenthesised expressions is bounded ([`MAX_DEPTH`]) so hostile input
//! cannot overflow the stack.

pub mod ast;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::lex::{FlagKw, Kw, TokKind, Token};
use crate::source::Loc;
use ast::*;
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Needed, Parser as _};
use std::cell::Cell;

/// Maximum nesting of type specs and parentheses. Real `.defs` files nest a few levels; in
/// an unoptimised build one level of `struct[N] of` costs about 16 kB of stack (parser and
/// checker), so 32 levels stay well within a 1 MB thread stack.
pub const MAX_DEPTH: u32 = 32;

/// Parser state shared by all sub-parsers (the nesting depth).
#[derive(Default)]
struct Ctx {
    depth: Cell<u32>,
}

/// The parser's input: a window of the token vector.
#[derive(Clone, Copy)]
struct Toks<'a> {
    all: &'a [Token],
    start: usize,
    end: usize,
    ctx: &'a Ctx,
}

impl<'a> Toks<'a> {
    fn slice(&self) -> &'a [Token] {
        &self.all[self.start..self.end]
    }
    fn first(&self) -> Option<&'a Token> {
        self.slice().first()
    }
}

impl<'a> nom::Input for Toks<'a> {
    type Item = &'a Token;
    type Iter = std::slice::Iter<'a, Token>;
    type IterIndices = std::iter::Enumerate<std::slice::Iter<'a, Token>>;

    fn input_len(&self) -> usize {
        self.end - self.start
    }
    fn take(&self, index: usize) -> Self {
        Toks {
            end: self.start + index.min(self.input_len()),
            ..*self
        }
    }
    fn take_from(&self, index: usize) -> Self {
        Toks {
            start: self.start + index.min(self.input_len()),
            ..*self
        }
    }
    fn take_split(&self, index: usize) -> (Self, Self) {
        (self.take_from(index), self.take(index))
    }
    fn position<P>(&self, predicate: P) -> Option<usize>
    where
        P: Fn(Self::Item) -> bool,
    {
        self.slice().iter().position(predicate)
    }
    fn iter_elements(&self) -> Self::Iter {
        self.slice().iter()
    }
    fn iter_indices(&self) -> Self::IterIndices {
        self.slice().iter().enumerate()
    }
    fn slice_index(&self, count: usize) -> Result<usize, Needed> {
        if count <= self.input_len() {
            Ok(count)
        } else {
            Err(Needed::new(count - self.input_len()))
        }
    }
}

/// What a parse error expected. Usually one thing: the parser tries alternatives and most
/// of them fail, so that case must not allocate.
#[derive(Debug, Clone)]
enum Expected {
    One(&'static str),
    Many(Vec<&'static str>),
}

impl Expected {
    fn as_slice(&self) -> &[&'static str] {
        match self {
            Expected::One(s) => std::slice::from_ref(s),
            Expected::Many(v) => v,
        }
    }
    /// Adds `x` unless it is already there.
    fn add(&mut self, x: &'static str) {
        if !self.as_slice().contains(&x) {
            let mut v = self.as_slice().to_vec();
            v.push(x);
            *self = Expected::Many(v);
        }
    }
}

/// A parse error: where (token index) and what was expected there.
#[derive(Debug, Clone)]
struct PErr {
    pos: usize,
    expected: Expected,
    /// A non-syntax reason (nesting too deep).
    message: Option<String>,
}

impl<'a> ParseError<Toks<'a>> for PErr {
    fn from_error_kind(input: Toks<'a>, _kind: ErrorKind) -> Self {
        PErr {
            pos: input.start,
            expected: Expected::Many(Vec::new()),
            message: None,
        }
    }
    fn append(_input: Toks<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        if self.message.is_some() {
            return self;
        }
        if other.message.is_some() {
            return other;
        }
        match self.pos.cmp(&other.pos) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => {
                let mut e = self;
                for &x in other.expected.as_slice() {
                    e.expected.add(x);
                }
                e
            }
        }
    }
}

type R<'a, T> = IResult<Toks<'a>, T, PErr>;

fn fail<'a, T>(input: Toks<'a>, expected: &'static str) -> R<'a, T> {
    Err(nom::Err::Error(PErr {
        pos: input.start,
        expected: Expected::One(expected),
        message: None,
    }))
}

/// Matches one token with `f`.
fn tok<'a, T>(
    expected: &'static str,
    f: impl Fn(&'a Token) -> Option<T>,
) -> impl Fn(Toks<'a>) -> R<'a, T> {
    move |i: Toks<'a>| match i.first().and_then(&f) {
        Some(v) => Ok((
            Toks {
                start: i.start + 1,
                ..i
            },
            v,
        )),
        None => fail(i, expected),
    }
}

fn kw<'a>(k: Kw, expected: &'static str) -> impl Fn(Toks<'a>) -> R<'a, Loc> {
    tok(expected, move |t: &Token| {
        (t.kind == TokKind::Kw(k)).then_some(t.loc)
    })
}

fn punct<'a>(c: char, expected: &'static str) -> impl Fn(Toks<'a>) -> R<'a, Loc> {
    tok(expected, move |t: &Token| {
        (t.kind == TokKind::Punct(c)).then_some(t.loc)
    })
}

fn ident(i: Toks<'_>) -> R<'_, Ident> {
    tok("identifier", |t: &Token| match &t.kind {
        TokKind::Ident(s) => Some(Ident {
            name: s.clone(),
            loc: t.loc,
        }),
        _ => None,
    })(i)
}

fn number(i: Toks<'_>) -> R<'_, (u32, Loc)> {
    tok("number", |t: &Token| match t.kind {
        TokKind::Number(n) => Some((n, t.loc)),
        _ => None,
    })(i)
}

fn loc_of(i: &Toks<'_>) -> Option<Loc> {
    i.first().map(|t| t.loc)
}

/// Runs `f` one nesting level deeper, failing fatally past [`MAX_DEPTH`].
fn nested<'a, T>(i: Toks<'a>, f: impl FnOnce(Toks<'a>) -> R<'a, T>) -> R<'a, T> {
    let d = i.ctx.depth.get();
    if d >= MAX_DEPTH {
        return Err(nom::Err::Failure(PErr {
            pos: i.start,
            expected: Expected::Many(Vec::new()),
            message: Some(format!(
                "nesting deeper than {MAX_DEPTH} levels is not supported"
            )),
        }));
    }
    i.ctx.depth.set(d + 1);
    let r = f(i);
    i.ctx.depth.set(d);
    r
}

// ---------------------------------------------------------------------------------------
// Integer expressions

fn int_factor(i: Toks<'_>) -> R<'_, IntExpr> {
    if let Ok((r, (n, loc))) = number(i) {
        return Ok((
            r,
            IntExpr {
                kind: IntExprKind::Number(n),
                loc,
            },
        ));
    }
    let (r, open) = punct('(', "number or `(`")(i)?;
    let (r, mut e) = nested(r, int_expr)?;
    let (r, close) = punct(')', "`)`")(r)?;
    e.loc = open.to(close);
    Ok((r, e))
}

fn binop<'a>(ops: &'static [(char, BinOp)]) -> impl Fn(Toks<'a>) -> R<'a, BinOp> {
    move |i: Toks<'a>| {
        tok("operator", |t: &Token| match t.kind {
            TokKind::Punct(c) => ops.iter().find(|(o, _)| *o == c).map(|(_, b)| *b),
            _ => None,
        })(i)
    }
}

fn int_term(i: Toks<'_>) -> R<'_, IntExpr> {
    let (mut r, mut acc) = int_factor(i)?;
    while let Ok((r2, op)) = binop(&[('*', BinOp::Mul), ('/', BinOp::Div)])(r) {
        let (r3, rhs) = int_factor(r2)?;
        let loc = acc.loc.to(rhs.loc);
        acc = IntExpr {
            kind: IntExprKind::Binary(op, Box::new(acc), Box::new(rhs)),
            loc,
        };
        r = r3;
    }
    Ok((r, acc))
}

/// `intexp := intexp (+|-|*|/) intexp | NUMBER | ( intexp )`, `*` and `/` binding tighter,
/// all left-associative.
fn int_expr(i: Toks<'_>) -> R<'_, IntExpr> {
    let (mut r, mut acc) = int_term(i)?;
    while let Ok((r2, op)) = binop(&[('+', BinOp::Add), ('-', BinOp::Sub)])(r) {
        let (r3, rhs) = int_term(r2)?;
        let loc = acc.loc.to(rhs.loc);
        acc = IntExpr {
            kind: IntExprKind::Binary(op, Box::new(acc), Box::new(rhs)),
            loc,
        };
        r = r3;
    }
    Ok((r, acc))
}

// ---------------------------------------------------------------------------------------
// Types

fn prim_ipc(i: Toks<'_>) -> R<'_, (PrimIpc, Loc)> {
    tok("IPC type name or number", |t: &Token| match t.kind {
        TokKind::Number(n) => Some((PrimIpc::Number(n), t.loc)),
        TokKind::Sym(s) => Some((PrimIpc::Sym(s), t.loc)),
        _ => None,
    })(i)
}

fn ipc_type(i: Toks<'_>) -> R<'_, IpcType> {
    let (r, first) = prim_ipc(i)?;
    match punct('|', "`|`")(r) {
        Ok((r2, _)) => {
            let (r3, second) = prim_ipc(r2)?;
            Ok((
                r3,
                IpcType {
                    first,
                    second: Some(second),
                },
            ))
        }
        Err(_) => Ok((
            r,
            IpcType {
                first,
                second: None,
            },
        )),
    }
}

/// `{ , FLAG [ '[' ']' ] }`
fn ipc_flags(mut i: Toks<'_>) -> R<'_, Vec<FlagItem>> {
    let mut out = Vec::new();
    loop {
        let Ok((r, _)) = punct(',', "`,`")(i) else {
            return Ok((i, out));
        };
        let (r, (flag, loc)) = tok("IPC flag", |t: &Token| match t.kind {
            TokKind::Flag(f) => Some((f, t.loc)),
            _ => None,
        })(r)?;
        let (r, variable) = match (punct('[', "`[`"), punct(']', "`]`")).parse(r) {
            Ok((r2, (_, close))) => {
                out.push(FlagItem {
                    flag,
                    variable: true,
                    loc: loc.to(close),
                });
                i = r2;
                continue;
            }
            Err(_) => (r, false),
        };
        out.push(FlagItem {
            flag,
            variable,
            loc,
        });
        i = r;
    }
}

fn basic_type(i: Toks<'_>) -> R<'_, TypeSpec> {
    let start = loc_of(&i);
    if let Ok((r, ipc)) = ipc_type(i) {
        let loc = ipc
            .first
            .1
            .to(ipc.second.map(|s| s.1).unwrap_or(ipc.first.1));
        return Ok((
            r,
            TypeSpec {
                kind: TypeSpecKind::Basic {
                    ipc,
                    size: None,
                    flags: Vec::new(),
                },
                loc,
            },
        ));
    }
    let (r, _) = punct('(', "type")(i)?;
    let (r, ipc) = ipc_type(r)?;
    let (r, _) = punct(',', "`,`")(r)?;
    let (r, size) = int_expr(r)?;
    let (r, flags) = ipc_flags(r)?;
    let (r, close) = punct(')', "`,` or `)`")(r)?;
    let loc = start.map(|s| s.to(close)).unwrap_or(close);
    Ok((
        r,
        TypeSpec {
            kind: TypeSpecKind::Basic {
                ipc,
                size: Some(size),
                flags,
            },
            loc,
        },
    ))
}

fn array_head(i: Toks<'_>) -> R<'_, (TypeSpecKindHead, Loc)> {
    let (r, start) = kw(Kw::Array, "`array`")(i)?;
    let (r, _) = punct('[', "`[`")(r)?;
    let (r, head) = if let Ok((r2, _)) = punct(']', "`]`")(r) {
        (r2, TypeSpecKindHead::Var(None))
    } else if let Ok((r2, _)) = punct('*', "`*`")(r) {
        if let Ok((r3, _)) = punct(']', "`]`")(r2) {
            (r3, TypeSpecKindHead::Var(None))
        } else {
            let (r3, _) = punct(':', "`:` or `]`")(r2)?;
            let (r3, max) = int_expr(r3)?;
            let (r3, _) = punct(']', "`]`")(r3)?;
            (r3, TypeSpecKindHead::Var(Some(max)))
        }
    } else {
        let (r2, n) = int_expr(r)?;
        let (r2, _) = punct(']', "`]`")(r2)?;
        (r2, TypeSpecKindHead::Fixed(n))
    };
    let (r, _) = kw(Kw::Of, "`of`")(r)?;
    Ok((r, (head, start)))
}

enum TypeSpecKindHead {
    Var(Option<IntExpr>),
    Fixed(IntExpr),
}

fn struct_spec(i: Toks<'_>) -> R<'_, TypeSpec> {
    let (r, start) = kw(Kw::Struct, "`struct`")(i)?;
    if let Ok((r, _)) = punct('[', "`[`")(r) {
        let (r, count) = int_expr(r)?;
        let (r, _) = punct(']', "`]`")(r)?;
        let (r, _) = kw(Kw::Of, "`of`")(r)?;
        let (r, elem) = nested(r, type_spec)?;
        let loc = start.to(elem.loc);
        return Ok((
            r,
            TypeSpec {
                kind: TypeSpecKind::StructArray {
                    count,
                    elem: Box::new(elem),
                },
                loc,
            },
        ));
    }
    let (mut r, _) = punct('{', "`[` or `{`")(r)?;
    let mut members = Vec::new();
    loop {
        let (r2, ty) = ident(r)?;
        let (r2, name) = ident(r2)?;
        let (r2, _) = punct(';', "`;`")(r2)?;
        members.push((ty, name));
        r = r2;
        if let Ok((r3, close)) = punct('}', "`}`")(r) {
            return Ok((
                r3,
                TypeSpec {
                    kind: TypeSpecKind::Struct { members },
                    loc: start.to(close),
                },
            ));
        }
    }
}

fn cstring_spec(i: Toks<'_>) -> R<'_, TypeSpec> {
    let (r, start) = kw(Kw::CString, "`c_string`")(i)?;
    let (r, _) = punct('[', "`[`")(r)?;
    let (r, varying) = match (punct('*', "`*`"), punct(':', "`:`")).parse(r) {
        Ok((r2, _)) => (r2, true),
        Err(_) => (r, false),
    };
    let (r, max) = int_expr(r)?;
    let (r, close) = punct(']', "`]`")(r)?;
    Ok((
        r,
        TypeSpec {
            kind: TypeSpecKind::CString { max, varying },
            loc: start.to(close),
        },
    ))
}

fn type_spec(i: Toks<'_>) -> R<'_, TypeSpec> {
    let Some(first) = i.first() else {
        return fail(i, "type");
    };
    match &first.kind {
        TokKind::Ident(_) => {
            let (r, id) = ident(i)?;
            let loc = id.loc;
            Ok((
                r,
                TypeSpec {
                    kind: TypeSpecKind::Prev(id),
                    loc,
                },
            ))
        }
        TokKind::Kw(Kw::Array) => {
            let (r, (head, start)) = array_head(i)?;
            let (r, elem) = nested(r, type_spec)?;
            let loc = start.to(elem.loc);
            let elem = Box::new(elem);
            let kind = match head {
                TypeSpecKindHead::Var(max) => TypeSpecKind::VarArray { max, elem },
                TypeSpecKindHead::Fixed(count) => TypeSpecKind::Array { count, elem },
            };
            Ok((r, TypeSpec { kind, loc }))
        }
        TokKind::Punct('^') => {
            let (r, start) = punct('^', "`^`")(i)?;
            let (r, elem) = nested(r, type_spec)?;
            let loc = start.to(elem.loc);
            Ok((
                r,
                TypeSpec {
                    kind: TypeSpecKind::Pointer(Box::new(elem)),
                    loc,
                },
            ))
        }
        TokKind::Kw(Kw::Struct) => struct_spec(i),
        TokKind::Kw(Kw::CString) => cstring_spec(i),
        _ => basic_type(i).map_err(|e| {
            e.map(|mut e| {
                if e.pos == i.start {
                    e.expected = Expected::One("type");
                }
                e
            })
        }),
    }
}

fn trans_clause(i: Toks<'_>) -> R<'_, TransClause> {
    let Some(first) = i.first() else {
        return fail(i, "translation clause");
    };
    let TokKind::Kw(k) = first.kind else {
        return fail(i, "translation clause");
    };
    let r = Toks {
        start: i.start + 1,
        ..i
    };
    let (r, _) = match k {
        Kw::InTran
        | Kw::InTranPayload
        | Kw::OutTran
        | Kw::Destructor
        | Kw::CType
        | Kw::CUserType
        | Kw::CServerType => punct(':', "`:`")(r)?,
        _ => return fail(i, "translation clause"),
    };
    match k {
        Kw::InTran => {
            let (r, trans_type) = ident(r)?;
            let (r, func) = ident(r)?;
            let (r, _) = punct('(', "`(`")(r)?;
            let (r, server_type) = ident(r)?;
            let (r, _) = punct(')', "`)`")(r)?;
            Ok((
                r,
                TransClause::InTran {
                    trans_type,
                    func,
                    server_type,
                },
            ))
        }
        Kw::InTranPayload => {
            let (r, trans_type) = ident(r)?;
            let (r, func) = ident(r)?;
            Ok((r, TransClause::InTranPayload { trans_type, func }))
        }
        Kw::OutTran => {
            let (r, server_type) = ident(r)?;
            let (r, func) = ident(r)?;
            let (r, _) = punct('(', "`(`")(r)?;
            let (r, trans_type) = ident(r)?;
            let (r, _) = punct(')', "`)`")(r)?;
            Ok((
                r,
                TransClause::OutTran {
                    server_type,
                    func,
                    trans_type,
                },
            ))
        }
        Kw::Destructor => {
            let (r, func) = ident(r)?;
            let (r, _) = punct('(', "`(`")(r)?;
            let (r, trans_type) = ident(r)?;
            let (r, _) = punct(')', "`)`")(r)?;
            Ok((r, TransClause::Destructor { func, trans_type }))
        }
        Kw::CType => ident(r).map(|(r, t)| (r, TransClause::CType(t))),
        Kw::CUserType => ident(r).map(|(r, t)| (r, TransClause::CUserType(t))),
        _ => ident(r).map(|(r, t)| (r, TransClause::CServerType(t))),
    }
}

/// `IDENT = typespec { clause }`
fn named_type(i: Toks<'_>) -> R<'_, NamedType> {
    let (r, name) = ident(i)?;
    let (r, _) = punct('=', "`=`")(r)?;
    let (mut r, spec) = type_spec(r)?;
    let mut clauses = Vec::new();
    while let Ok((r2, c)) = trans_clause(r) {
        clauses.push(c);
        r = r2;
    }
    Ok((
        r,
        NamedType {
            name,
            spec,
            clauses,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Routines

fn direction(i: Toks<'_>) -> R<'_, (Direction, Loc)> {
    tok("argument direction", |t: &Token| {
        let d = match t.kind {
            TokKind::Kw(Kw::In) => Direction::In,
            TokKind::Kw(Kw::Out) => Direction::Out,
            TokKind::Kw(Kw::InOut) => Direction::InOut,
            TokKind::Kw(Kw::RequestPort) => Direction::RequestPort,
            TokKind::Kw(Kw::ReplyPort) => Direction::ReplyPort,
            TokKind::Kw(Kw::SReplyPort) => Direction::SReplyPort,
            TokKind::Kw(Kw::UReplyPort) => Direction::UReplyPort,
            TokKind::Kw(Kw::WaitTime) => Direction::WaitTime,
            TokKind::Kw(Kw::MsgOption) => Direction::MsgOption,
            TokKind::Kw(Kw::MsgSeqno) => Direction::MsgSeqno,
            _ => return None,
        };
        Some((d, t.loc))
    })(i)
}

fn argument(i: Toks<'_>) -> R<'_, Argument> {
    let (r, dir) = match direction(i) {
        Ok((r, d)) => (r, Some(d)),
        Err(_) => (i, None),
    };
    let (r, name) = ident(r).map_err(|e| {
        e.map(|mut e| {
            if dir.is_none() && e.pos == i.start {
                e.expected = Expected::One("argument direction or name");
            }
            e
        })
    })?;
    let (r, _) = punct(':', "`:`")(r)?;
    // `: IDENT` or `: IDENT = typespec…`
    let (r, ty) = match named_type(r) {
        Ok((r2, nt)) => (r2, ArgType::Inline(Box::new(nt))),
        Err(nom::Err::Failure(e)) => return Err(nom::Err::Failure(e)),
        Err(nom::Err::Error(e)) => {
            // Only a plain name if there was no `=` after it.
            let (r2, id) = match ident(r) {
                Ok(x) => x,
                Err(nom::Err::Error(e2)) => return Err(nom::Err::Error(e2.or(e))),
                Err(other) => return Err(other),
            };
            if let Ok((_, _)) = punct('=', "`=`")(r2) {
                return Err(nom::Err::Error(e));
            }
            (r2, ArgType::Named(id))
        }
        Err(nom::Err::Incomplete(n)) => return Err(nom::Err::Incomplete(n)),
    };
    let (r, flags) = ipc_flags(r)?;
    let start = dir.map(|d| d.1).unwrap_or(name.loc);
    let end = r
        .start
        .checked_sub(1)
        .and_then(|p| i.all.get(p))
        .map(|t| t.loc)
        .unwrap_or(name.loc);
    Ok((
        r,
        Argument {
            direction: dir,
            name,
            ty,
            flags,
            loc: start.to(end),
        },
    ))
}

fn routine_decl(i: Toks<'_>) -> R<'_, RoutineDecl> {
    let (r, kind) = tok("`routine` or `simpleroutine`", |t: &Token| match t.kind {
        TokKind::Kw(Kw::Routine) => Some(RoutineKind::Routine),
        TokKind::Kw(Kw::SimpleRoutine) => Some(RoutineKind::SimpleRoutine),
        _ => None,
    })(i)?;
    let (r, name) = ident(r)?;
    let (r, _) = punct('(', "`(`")(r)?;
    let mut args = Vec::new();
    if let Ok((r2, _)) = punct(')', "`)`")(r) {
        return Ok((r2, RoutineDecl { kind, name, args }));
    }
    let mut r = r;
    loop {
        let (r2, a) = argument(r)?;
        args.push(a);
        if let Ok((r3, _)) = punct(')', "`)`")(r2) {
            return Ok((r3, RoutineDecl { kind, name, args }));
        }
        let (r3, _) = punct(';', "`;` or `)`").parse(r2).map_err(|e| {
            e.map(|mut e| {
                e.expected = Expected::Many(vec!["`;`", "`)`", "`,` and an IPC flag"]);
                e
            })
        })?;
        r = r3;
    }
}

// ---------------------------------------------------------------------------------------
// Statements

fn stmt_kind(i: Toks<'_>) -> R<'_, StmtKind> {
    let Some(first) = i.first() else {
        return fail(i, "statement");
    };
    let next = Toks {
        start: i.start + 1,
        ..i
    };
    match &first.kind {
        TokKind::Punct(';') => Ok((i, StmtKind::Empty)),
        TokKind::Kw(Kw::Subsystem) => {
            let mut r = next;
            let mut mods = Vec::new();
            while let Ok((r2, m)) = tok("", |t: &Token| match t.kind {
                TokKind::Kw(Kw::KernelUser) => Some((SubsystemMod::KernelUser, t.loc)),
                TokKind::Kw(Kw::KernelServer) => Some((SubsystemMod::KernelServer, t.loc)),
                _ => None,
            })(r)
            {
                mods.push(m);
                r = r2;
            }
            let (r, name) = ident(r).map_err(|e| {
                e.map(|mut e| {
                    e.expected =
                        Expected::Many(vec!["subsystem name", "`KernelUser`", "`KernelServer`"]);
                    e
                })
            })?;
            let (r, base) = number(r)?;
            Ok((r, StmtKind::Subsystem { mods, name, base }))
        }
        TokKind::Kw(Kw::WaitTime) => {
            let (r, s) = tok("wait time", |t: &Token| match &t.kind {
                TokKind::Str(s) => Some((s.clone(), t.loc)),
                _ => None,
            })(next)?;
            Ok((r, StmtKind::WaitTime(Some(s))))
        }
        TokKind::Kw(Kw::NoWaitTime) => Ok((next, StmtKind::WaitTime(None))),
        TokKind::Kw(Kw::MsgOption) => {
            let (r, (s, loc)) = tok("message option", |t: &Token| match &t.kind {
                TokKind::Str(s) => Some((s.clone(), t.loc)),
                _ => None,
            })(next)?;
            Ok((r, StmtKind::MsgOption(s, loc)))
        }
        TokKind::Kw(Kw::ServerPrefix) => ident(next).map(|(r, x)| (r, StmtKind::ServerPrefix(x))),
        TokKind::Kw(Kw::UserPrefix) => ident(next).map(|(r, x)| (r, StmtKind::UserPrefix(x))),
        TokKind::Kw(Kw::ServerDemux) => ident(next).map(|(r, x)| (r, StmtKind::ServerDemux(x))),
        TokKind::Kw(Kw::Type) => named_type(next).map(|(r, t)| (r, StmtKind::Type(t))),
        TokKind::Kw(Kw::Routine | Kw::SimpleRoutine) => {
            routine_decl(i).map(|(r, d)| (r, StmtKind::Routine(d)))
        }
        TokKind::Kw(Kw::Skip) => match number(next) {
            Ok((r, n)) => Ok((r, StmtKind::Skip(Some(n)))),
            Err(_) => Ok((next, StmtKind::Skip(None))),
        },
        TokKind::Kw(k @ (Kw::Import | Kw::UImport | Kw::SImport)) => {
            let kind = match k {
                Kw::Import => ImportKind::Import,
                Kw::UImport => ImportKind::UImport,
                _ => ImportKind::SImport,
            };
            let (r, file) = tok("file name (`\"…\"` or `<…>`)", |t: &Token| {
                match &t.kind {
                    TokKind::FileName(s) => Some(s.clone()),
                    _ => None,
                }
            })(next)?;
            Ok((r, StmtKind::Import { kind, file }))
        }
        TokKind::Kw(Kw::RcsId) => {
            let (r, s) = tok("quoted string", |t: &Token| match &t.kind {
                TokKind::QString(s) => Some(s.clone()),
                _ => None,
            })(next)?;
            Ok((r, StmtKind::RcsId(s)))
        }
        _ => fail(i, "statement"),
    }
}

fn statement(i: Toks<'_>) -> R<'_, Stmt> {
    let start = loc_of(&i);
    let (r, kind) = stmt_kind(i)?;
    let (r, semi) = punct(';', "`;`")(r)?;
    let loc = start.map(|s| s.to(semi)).unwrap_or(semi);
    Ok((r, Stmt { kind, loc }))
}

fn describe_expected(expected: &[&'static str]) -> String {
    match expected {
        [] => "unexpected token".to_string(),
        [one] => format!("expected {one}"),
        many => {
            let (last, rest) = many.split_last().unwrap_or((&"", &[]));
            format!("expected {} or {last}", rest.join(", "))
        }
    }
}

/// Parses a token stream. Syntax errors are reported into `diags`; the returned file holds
/// every statement that parsed.
pub fn parse(tokens: &[Token], end_loc: Option<Loc>, diags: &mut Diagnostics) -> File {
    let ctx = Ctx::default();
    let mut input = Toks {
        all: tokens,
        start: 0,
        end: tokens.len(),
        ctx: &ctx,
    };
    // About one statement per eight tokens (a `;` ends each); reserved at once rather
    // than grown by copying.
    let mut file = File {
        stmts: Vec::with_capacity(tokens.len() / 8 + 1),
    };
    while input.start < input.end {
        match statement(input) {
            Ok((rest, stmt)) => {
                file.stmts.push(stmt);
                input = rest;
            }
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => {
                let (msg, label) = match &e.message {
                    Some(m) => (m.clone(), String::new()),
                    None => {
                        let found = tokens
                            .get(e.pos)
                            .map(|t| t.kind.to_string())
                            .unwrap_or_else(|| "end of input".to_string());
                        (
                            format!(
                                "syntax error: {}, found {found}",
                                describe_expected(e.expected.as_slice())
                            ),
                            describe_expected(e.expected.as_slice()),
                        )
                    }
                };
                let loc = tokens.get(e.pos).map(|t| t.loc).or(end_loc);
                let mut d = Diagnostic::error(msg).at_opt(loc).label(label);
                if let Some(TokKind::Kw(k)) = tokens.get(e.pos).map(|t| &t.kind) {
                    d = d.note(format!(
                        "`{}` is a reserved word in MIG (keywords are case-insensitive)",
                        k.as_str()
                    ));
                }
                if e.pos > 0
                    && matches!(
                        tokens.get(e.pos).map(|t| &t.kind),
                        Some(TokKind::Punct(')'))
                    )
                    && matches!(
                        tokens.get(e.pos - 1).map(|t| &t.kind),
                        Some(TokKind::Punct(';'))
                    )
                {
                    d = d.note("MIG argument lists have no `;` after the last argument");
                }
                if let Some(TokKind::Error(c)) = tokens.get(e.pos).map(|t| &t.kind) {
                    if *c == '"' || *c == '\'' || *c == '.' {
                        d = d.note(format!("MIG has no {c:?} token outside import/rcsid/msgoption/waittime statements"));
                    }
                }
                diags.push(d);
                // Resume after the next `;` outside parentheses and braces.
                let mut depth = 0i32;
                let mut p = e.pos.max(input.start);
                while p < input.end {
                    match tokens[p].kind {
                        TokKind::Punct('(' | '{') => depth += 1,
                        TokKind::Punct(')' | '}') => depth = (depth - 1).max(0),
                        TokKind::Punct(';') if depth == 0 => {
                            p += 1;
                            break;
                        }
                        _ => {}
                    }
                    p += 1;
                }
                input.start = p.max(input.start + 1).min(input.end);
            }
            Err(nom::Err::Incomplete(_)) => break,
        }
    }
    file
}

/// A flag's spelling, for messages.
pub fn flag_name(f: FlagKw) -> &'static str {
    match f {
        FlagKw::IsLong => "IsLong",
        FlagKw::IsNotLong => "IsNotLong",
        FlagKw::Dealloc => "Dealloc",
        FlagKw::NotDealloc => "NotDealloc",
        FlagKw::ServerCopy => "ServerCopy",
        FlagKw::CountInOut => "CountInOut",
        FlagKw::RetCode => "RetCode",
    }
}
