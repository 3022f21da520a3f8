//! Macro definitions and expansion (`#define`, `#undef`, argument collection,
//! pre-expansion, `#`, `##`, `__VA_ARGS__`, built-in macros).
//!
//! Expansion follows GCC's model: each expansion is a context on a stack; a macro is
//! disabled while its context is active, and an identifier read while its macro is
//! disabled is painted [`NO_EXPAND`](super::token::NO_EXPAND) for good.

use super::engine::{after, Engine, MAX_ARG_NESTING};
use super::lexer::{single_token, RawKind};
use super::token::{Anchor, Kind, Sym, Token, BARRIER, PASTE_LEFT, STRINGIFY, SYNTH, WS};
use crate::diagnostics::Diagnostic;
use crate::source::{Expansion, ExpansionId, Loc};
use std::rc::Rc;

/// Macros whose expansion is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Builtin {
    File,
    Line,
    Counter,
    Date,
    Time,
    BaseFile,
    IncludeLevel,
}

#[derive(Clone, Debug)]
pub(super) struct Macro {
    pub func: bool,
    pub params: Vec<Sym>,
    pub variadic: bool,
    /// Replacement list; parameters are `Kind::Param`.
    pub body: Rc<[Token]>,
    /// The macro name in its `#define`.
    pub def_loc: Option<Loc>,
    pub builtin: Option<Builtin>,
    /// Number of active expansions of this macro (it is not expanded while > 0).
    pub disabled: u32,
}

impl Macro {
    pub fn builtin(b: Builtin) -> Macro {
        Macro {
            func: false,
            params: Vec::new(),
            variadic: false,
            body: Rc::from(Vec::new()),
            def_loc: None,
            builtin: Some(b),
            disabled: 0,
        }
    }

    /// Whether two definitions are the same (C's rules for benign redefinition).
    fn same_as(&self, other: &Macro) -> bool {
        const CMP: u8 = PASTE_LEFT | STRINGIFY;
        self.func == other.func
            && self.variadic == other.variadic
            && self.params == other.params
            && self.builtin.is_none()
            && other.builtin.is_none()
            && self.body.len() == other.body.len()
            && self
                .body
                .iter()
                .zip(other.body.iter())
                .enumerate()
                .all(|(i, (a, b))| {
                    a.kind == b.kind
                        && a.sym == b.sym
                        && a.flags & CMP == b.flags & CMP
                        && (i == 0 || (a.flags & WS) == (b.flags & WS))
                })
    }
}

/// What `substitute` needs to know about a function-like macro and its invocation.
#[derive(Clone, Copy)]
struct Shape {
    variadic: bool,
    nparams: usize,
    /// The variable arguments were left out entirely (not just empty).
    va_omitted: bool,
}

fn reloc(t: &Token, exp: ExpansionId, anchor: Anchor) -> Token {
    Token {
        loc: Loc {
            expansion: Some(exp),
            ..t.loc
        },
        anchor,
        ..*t
    }
}

impl Engine<'_> {
    // ----------------------------------------------------------------------------------
    // #define / #undef

    pub(super) fn do_define(&mut self, dloc: Loc) {
        let Some(name) = self.dir_raw() else {
            self.error("no macro name given in #define directive", after(dloc));
            return;
        };
        if name.kind != Kind::Ident {
            self.error("macro names must be identifiers", name.loc);
            return;
        }
        if name.sym == self.k.defined {
            self.error("\"defined\" cannot be used as a macro name", name.loc);
            return;
        }
        let mut params: Vec<Sym> = Vec::new();
        let mut variadic = false;
        let mut func = false;
        let mut cur = self.dir_raw();
        if let Some(lp) = cur.filter(|t| self.is_punct(t, self.k.lparen) && !t.has(WS)) {
            func = true;
            if !self.parse_params(lp, &mut params, &mut variadic) {
                return;
            }
            cur = self.dir_raw();
        } else if let Some(t) = cur.filter(|t| !t.has(WS)) {
            self.warning("missing whitespace after the macro name", t.loc);
        }
        let mut body: Vec<Token> = Vec::new();
        let va_ok = variadic && params.last() == Some(&self.k.va_args);
        while let Some(mut t) = cur {
            cur = self.dir_raw();
            if t.kind == Kind::Ident {
                if let Some(i) = params.iter().position(|&p| p == t.sym).filter(|_| func) {
                    t.kind = Kind::Param(i as u16);
                } else if t.sym == self.k.va_args && !va_ok {
                    self.warning(
                        "__VA_ARGS__ can only appear in the expansion of a C99 variadic macro",
                        t.loc,
                    );
                }
            }
            if t.kind == Kind::Punct && (t.sym == self.k.paste || t.sym == self.k.paste_alt) {
                match body.last_mut() {
                    Some(l) => l.flags |= PASTE_LEFT,
                    None => {
                        self.error(
                            "'##' cannot appear at either end of a macro expansion",
                            t.loc,
                        );
                        return;
                    }
                }
                if cur.is_none() {
                    self.error(
                        "'##' cannot appear at either end of a macro expansion",
                        t.loc,
                    );
                    return;
                }
                continue;
            }
            if func && t.kind == Kind::Punct && (t.sym == self.k.hash || t.sym == self.k.hash_alt) {
                let param = cur.and_then(|n| {
                    params
                        .iter()
                        .position(|&p| p == n.sym && n.kind == Kind::Ident)
                        .map(|i| (n, i))
                });
                match param {
                    Some((n, i)) => {
                        let mut p = n;
                        p.kind = Kind::Param(i as u16);
                        p.flags = (n.flags & !WS) | (t.flags & WS) | STRINGIFY;
                        p.loc = t.loc.to(n.loc);
                        body.push(p);
                        cur = self.dir_raw();
                        continue;
                    }
                    None => {
                        self.error("'#' is not followed by a macro parameter", t.loc);
                        return;
                    }
                }
            }
            body.push(t);
        }
        let new = Macro {
            func,
            params,
            variadic,
            body: Rc::from(body),
            def_loc: Some(name.loc),
            builtin: None,
            disabled: 0,
        };
        self.install(name, new);
    }

    fn install(&mut self, name: Token, mut new: Macro) {
        if let Some(old) = self.macros.get(&name.sym) {
            new.disabled = old.disabled;
            if !new.same_as(old) {
                let mut d =
                    Diagnostic::warning(format!("\"{}\" redefined", self.syms.get(name.sym)))
                        .at(name.loc);
                if let Some(prev) = old.def_loc {
                    d = d.with_secondary(prev, "this is the location of the previous definition");
                }
                self.diags.push(d);
            }
        }
        self.macros.insert(name.sym, new);
    }

    /// Parses a parameter list after its `(`; false after an error.
    fn parse_params(&mut self, lp: Token, params: &mut Vec<Sym>, variadic: &mut bool) -> bool {
        let mut first = true;
        loop {
            let Some(p) = self.dir_raw() else {
                self.error("missing ')' in macro parameter list", lp.loc);
                return false;
            };
            if first && self.is_punct(&p, self.k.rparen) {
                return true;
            }
            first = false;
            if p.kind == Kind::Punct && p.sym == self.k.ellipsis {
                *variadic = true;
                params.push(self.k.va_args);
                return match self.dir_raw() {
                    Some(t) if self.is_punct(&t, self.k.rparen) => true,
                    other => {
                        let loc = other.map_or(p.loc, |t| t.loc);
                        self.error("expected ')' after \"...\"", loc);
                        false
                    }
                };
            }
            if p.kind != Kind::Ident {
                let s = self.syms.get(p.sym).to_string();
                self.error(format!("expected parameter name, found \"{s}\""), p.loc);
                return false;
            }
            if p.sym == self.k.va_args {
                self.error("__VA_ARGS__ can not be used as a parameter name", p.loc);
                return false;
            }
            if params.contains(&p.sym) {
                let s = self.syms.get(p.sym).to_string();
                self.error(format!("duplicate macro parameter \"{s}\""), p.loc);
                return false;
            }
            params.push(p.sym);
            match self.dir_raw() {
                Some(t) if self.is_punct(&t, self.k.comma) => {}
                Some(t) if self.is_punct(&t, self.k.rparen) => return true,
                Some(t) if t.kind == Kind::Punct && t.sym == self.k.ellipsis => {
                    *variadic = true;
                    return match self.dir_raw() {
                        Some(t) if self.is_punct(&t, self.k.rparen) => true,
                        other => {
                            let loc = other.map_or(t.loc, |t| t.loc);
                            self.error("expected ')' after \"...\"", loc);
                            false
                        }
                    };
                }
                Some(t) => {
                    let s = self.syms.get(t.sym).to_string();
                    self.error(format!("expected ',' or ')', found \"{s}\""), t.loc);
                    return false;
                }
                None => {
                    self.error("missing ')' in macro parameter list", lp.loc);
                    return false;
                }
            }
        }
    }

    pub(super) fn do_undef(&mut self, dloc: Loc) {
        let Some(name) = self.dir_raw() else {
            self.error("no macro name given in #undef directive", after(dloc));
            return;
        };
        if name.kind != Kind::Ident {
            self.error("macro names must be identifiers", name.loc);
            return;
        }
        if name.sym == self.k.defined {
            self.error("\"defined\" cannot be used as a macro name", name.loc);
            return;
        }
        if let Some(t) = self.dir_raw() {
            self.warning("extra tokens at end of #undef directive", t.loc);
        }
        if self
            .macros
            .get(&name.sym)
            .is_some_and(|m| m.builtin.is_some())
        {
            let s = self.syms.get(name.sym).to_string();
            self.warning(format!("undefining \"{s}\""), name.loc);
        }
        self.macros.remove(&name.sym);
    }

    // ----------------------------------------------------------------------------------
    // Expansion

    /// Expands the macro named by `tok` (known to be an enabled macro) by pushing a context.
    /// Returns false if it is not invoked (a function-like macro without arguments) or the
    /// invocation was bad; the caller then passes `tok` through.
    pub(super) fn enter_macro(&mut self, tok: Token) -> bool {
        let Some(m) = self.macros.get(&tok.sym) else {
            return false;
        };
        let (func, nparams, variadic, body, def_loc, builtin) = (
            m.func,
            m.params.len(),
            m.variadic,
            m.body.clone(),
            m.def_loc,
            m.builtin,
        );
        if let Some(b) = builtin {
            if !self.spend(1, tok.loc) {
                return true;
            }
            let t = self.builtin_token(b, tok);
            self.push_context(vec![t], None);
            return true;
        }
        let args = if func {
            self.prevent_expansion += 1;
            self.parsing_args += 1;
            let was_peeking = std::mem::replace(&mut self.peeking, true);
            let peek = self.get_token();
            self.peeking = was_peeking;
            let res = if self.is_punct(&peek, self.k.lparen) {
                self.collect_args(tok, nparams, variadic, def_loc)
            } else {
                if peek.kind != Kind::Eof || peek.has(BARRIER) {
                    self.lookahead.push(peek);
                }
                None
            };
            self.prevent_expansion -= 1;
            self.parsing_args -= 1;
            match res {
                Some(a) => Some(a),
                None => return false,
            }
        } else {
            None
        };
        if !self.spend(body.len() as u64 + 1, tok.loc) {
            return true;
        }
        let exp = self.map.add_expansion(Expansion {
            name: self.syms.get(tok.sym).to_string(),
            call_site: tok.loc,
            def_site: def_loc,
        });
        let mut toks = match args {
            Some((args, omitted)) => self.substitute(
                &body,
                &args,
                Shape {
                    variadic,
                    nparams,
                    va_omitted: omitted,
                },
                exp,
                tok,
            ),
            None => body.iter().map(|b| reloc(b, exp, tok.anchor)).collect(),
        };
        if toks.iter().any(|t| t.has(PASTE_LEFT)) {
            toks = self.paste_all(toks);
        }
        if let Some(first) = toks.first_mut() {
            first.flags = (first.flags & !WS) | (tok.flags & WS);
        }
        if self.fatal {
            return true;
        }
        self.push_context(toks, Some(tok.sym));
        true
    }

    /// Collects the arguments of a function-like macro after its `(`. None (after an
    /// error) if the invocation is unterminated or has the wrong number of arguments.
    fn collect_args(
        &mut self,
        name: Token,
        nparams: usize,
        variadic: bool,
        def_loc: Option<Loc>,
    ) -> Option<(Vec<Vec<Token>>, bool)> {
        let mut omitted = false;
        let mut args: Vec<Vec<Token>> = vec![Vec::new()];
        let mut depth = 0u32;
        let mname = self.syms.get(name.sym).to_string();
        loop {
            let t = self.get_token();
            if self.fatal {
                return None;
            }
            match t.kind {
                Kind::Eof => {
                    if t.has(BARRIER) {
                        self.lookahead.push(t);
                    }
                    self.diags.push(
                        Diagnostic::error(format!(
                            "unterminated argument list invoking macro \"{mname}\""
                        ))
                        .at(name.loc),
                    );
                    return None;
                }
                Kind::Punct if t.sym == self.k.lparen => depth += 1,
                Kind::Punct if t.sym == self.k.rparen => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                Kind::Punct
                    if t.sym == self.k.comma
                        && depth == 0
                        && !(variadic && args.len() == nparams) =>
                {
                    args.push(Vec::new());
                    continue;
                }
                _ => {}
            }
            if let Some(a) = args.last_mut() {
                a.push(t);
            }
        }
        let n = args.len();
        let bad = if nparams == 0 {
            if n == 1 && args[0].is_empty() {
                args.clear();
                None
            } else {
                Some(format!(
                    "macro \"{mname}\" passed {n} arguments, but takes just 0"
                ))
            }
        } else if n < nparams {
            if variadic && n == nparams - 1 {
                args.push(Vec::new());
                omitted = true;
                None
            } else {
                Some(format!(
                    "macro \"{mname}\" requires {nparams} arguments, but only {n} given"
                ))
            }
        } else if n > nparams {
            Some(format!(
                "macro \"{mname}\" passed {n} arguments, but takes just {nparams}"
            ))
        } else {
            None
        };
        if let Some(msg) = bad {
            let mut d = Diagnostic::error(msg).at(name.loc);
            if let Some(dl) = def_loc {
                d = d.with_secondary(dl, "macro defined here");
            }
            self.diags.push(d);
            return None;
        }
        Some((args, omitted))
    }

    /// Replaces parameters in a function-like macro's body.
    fn substitute(
        &mut self,
        body: &[Token],
        args: &[Vec<Token>],
        shape: Shape,
        exp: ExpansionId,
        call: Token,
    ) -> Vec<Token> {
        let Shape {
            variadic,
            nparams,
            va_omitted,
        } = shape;
        let anchor = call.anchor;
        let va_idx = if variadic {
            nparams.checked_sub(1)
        } else {
            None
        };
        let mut expanded: Vec<Option<Vec<Token>>> = vec![None; args.len()];
        let mut out: Vec<Token> = Vec::with_capacity(body.len());
        for (i, bt) in body.iter().enumerate() {
            if self.fatal {
                break;
            }
            let prev_paste = i > 0 && body.get(i - 1).is_some_and(|p| p.has(PASTE_LEFT));
            match bt.kind {
                Kind::Param(p) => {
                    let p = p as usize;
                    let Some(arg) = args.get(p) else { continue };
                    if bt.has(STRINGIFY) {
                        let s = self.stringify(arg);
                        if !self.spend_bytes(s.len(), call.loc) {
                            break;
                        }
                        let sym = self.syms.intern(&s);
                        out.push(Token {
                            kind: Kind::Str,
                            flags: SYNTH | (bt.flags & (WS | PASTE_LEFT)),
                            sym,
                            loc: Loc {
                                expansion: Some(exp),
                                ..bt.loc
                            },
                            anchor,
                        });
                    } else if bt.has(PASTE_LEFT) || prev_paste {
                        if !self.spend(arg.len() as u64, call.loc) {
                            break;
                        }
                        if arg.is_empty() {
                            out.push(Token {
                                kind: Kind::Placemarker,
                                flags: bt.flags & PASTE_LEFT,
                                loc: Loc {
                                    expansion: Some(exp),
                                    ..bt.loc
                                },
                                anchor,
                                ..*bt
                            });
                        } else {
                            let last = arg.len() - 1;
                            for (j, a) in arg.iter().enumerate() {
                                let mut t = *a;
                                t.anchor = anchor;
                                if j == 0 {
                                    t.flags = (t.flags & !WS) | (bt.flags & WS);
                                }
                                if j == last && bt.has(PASTE_LEFT) {
                                    t.flags |= PASTE_LEFT;
                                } else {
                                    t.flags &= !PASTE_LEFT;
                                }
                                out.push(t);
                            }
                        }
                    } else {
                        if expanded.get(p).is_some_and(Option::is_none) {
                            let e = self.expand_arg(arg);
                            expanded[p] = Some(e);
                        }
                        let e = expanded
                            .get(p)
                            .and_then(Option::as_ref)
                            .map_or(&[][..], |v| &v[..]);
                        if !self.spend(e.len() as u64, call.loc) {
                            break;
                        }
                        for (j, a) in e.iter().enumerate() {
                            let mut t = *a;
                            t.anchor = anchor;
                            t.flags &= !PASTE_LEFT;
                            if j == 0 {
                                t.flags = (t.flags & !WS) | (bt.flags & WS);
                            }
                            out.push(t);
                        }
                    }
                }
                Kind::Punct
                    if bt.sym == self.k.comma
                        && bt.has(PASTE_LEFT)
                        && va_idx.is_some()
                        && matches!(body.get(i + 1), Some(n) if n.kind == Kind::Param(va_idx.unwrap_or(0) as u16) && !n.has(STRINGIFY)) =>
                {
                    // GNU `, ## __VA_ARGS__`: drop the comma when the variable arguments
                    // are omitted (or empty, if they are the only parameter); otherwise
                    // keep it and do not paste.
                    let empty = va_idx
                        .and_then(|v| args.get(v))
                        .is_none_or(|a| a.is_empty());
                    if !(va_omitted || (empty && nparams == 1)) {
                        let mut t = reloc(bt, exp, anchor);
                        t.flags &= !PASTE_LEFT;
                        out.push(t);
                    }
                }
                _ => out.push(reloc(bt, exp, anchor)),
            }
        }
        out
    }

    /// Fully macro-expands one argument (in isolation, as C requires).
    fn expand_arg(&mut self, arg: &[Token]) -> Vec<Token> {
        if arg.is_empty() {
            return Vec::new();
        }
        if self.arg_depth >= MAX_ARG_NESTING {
            let loc = arg[0].loc;
            self.fatal_error(
                Diagnostic::error(format!(
                    "macro invocations nested too deeply in macro arguments (more than {MAX_ARG_NESTING} levels)"
                ))
                .at(loc),
            );
            return arg.to_vec();
        }
        if !self.spend(arg.len() as u64, arg[0].loc) {
            return arg.to_vec();
        }
        self.arg_depth += 1;
        let saved_la = std::mem::take(&mut self.lookahead);
        let mut toks = arg.to_vec();
        let mut end = arg[arg.len() - 1];
        end.kind = Kind::Eof;
        end.flags = BARRIER;
        toks.push(end);
        self.contexts.push(super::engine::MacroCtx {
            toks,
            pos: 0,
            mac: None,
        });
        let base = self.contexts.len();
        let mut out = Vec::new();
        loop {
            let t = self.get_token();
            if t.kind == Kind::Eof {
                break;
            }
            out.push(t);
        }
        while self.contexts.len() >= base {
            self.pop_context();
        }
        self.lookahead = saved_la;
        self.arg_depth -= 1;
        out
    }

    /// `#arg`: the argument's spelling as a string literal.
    fn stringify(&self, arg: &[Token]) -> String {
        let mut s = String::from("\"");
        for (i, t) in arg.iter().enumerate() {
            if i > 0 && t.has(WS) {
                s.push(' ');
            }
            let sp = self.syms.get(t.sym);
            if matches!(t.kind, Kind::Str | Kind::Char) {
                for c in sp.chars() {
                    if c == '"' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
            } else {
                s.push_str(sp);
            }
        }
        s.push('"');
        s
    }

    /// Performs the `##` operations of an expansion.
    fn paste_all(&mut self, toks: Vec<Token>) -> Vec<Token> {
        let mut out: Vec<Token> = Vec::with_capacity(toks.len());
        let mut it = toks.into_iter();
        while let Some(mut t) = it.next() {
            while t.has(PASTE_LEFT) {
                let Some(rhs) = it.next() else {
                    t.flags &= !PASTE_LEFT;
                    break;
                };
                if t.kind == Kind::Placemarker {
                    let ws = t.flags & WS;
                    t = rhs;
                    if t.kind != Kind::Placemarker {
                        t.flags = (t.flags & !WS) | ws;
                    }
                    continue;
                }
                if rhs.kind == Kind::Placemarker {
                    t.flags = (t.flags & !PASTE_LEFT) | (rhs.flags & PASTE_LEFT);
                    continue;
                }
                let l = self.syms.get(t.sym).to_string();
                let r = self.syms.get(rhs.sym).to_string();
                let joined = format!("{l}{r}");
                if !self.spend_bytes(joined.len(), t.loc) {
                    return out;
                }
                match single_token(&joined) {
                    Some(kind) => {
                        let kind = match kind {
                            RawKind::Ident => Kind::Ident,
                            RawKind::Number => Kind::Number,
                            RawKind::Str => Kind::Str,
                            RawKind::Char => Kind::Char,
                            RawKind::Punct => Kind::Punct,
                            _ => Kind::Other,
                        };
                        let sym = self.syms.intern(&joined);
                        t = Token {
                            kind,
                            flags: SYNTH | (t.flags & WS) | (rhs.flags & PASTE_LEFT),
                            sym,
                            ..t
                        };
                    }
                    None => {
                        let msg = format!(
                            "pasting \"{l}\" and \"{r}\" does not give a valid preprocessing token"
                        );
                        self.error(msg, t.loc);
                        t.flags &= !PASTE_LEFT;
                        out.push(t);
                        t = rhs;
                    }
                }
            }
            if t.kind != Kind::Placemarker {
                out.push(t);
            }
        }
        out
    }

    /// The token a built-in macro expands to.
    fn builtin_token(&mut self, b: Builtin, tok: Token) -> Token {
        let quote = |s: &str| {
            let mut q = String::from("\"");
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        };
        let (kind, text) = match b {
            Builtin::File => {
                let name = self
                    .frames
                    .last()
                    .map(|f| f.name.clone())
                    .unwrap_or_else(|| Rc::from(""));
                (Kind::Str, quote(&name))
            }
            Builtin::BaseFile => (Kind::Str, quote(&self.main_name)),
            Builtin::Line => (Kind::Number, tok.anchor.line.to_string()),
            Builtin::Counter => {
                let c = self.counter;
                self.counter += 1;
                (Kind::Number, c.to_string())
            }
            Builtin::IncludeLevel => (
                Kind::Number,
                self.frames.len().saturating_sub(1).to_string(),
            ),
            Builtin::Date => (Kind::Str, "\"Jan  1 1970\"".to_string()),
            Builtin::Time => (Kind::Str, "\"00:00:00\"".to_string()),
        };
        let _ = self.spend_bytes(text.len(), tok.loc);
        let exp = self.map.add_expansion(Expansion {
            name: self.syms.get(tok.sym).to_string(),
            call_site: tok.loc,
            def_site: None,
        });
        let sym = self.syms.intern(&text);
        Token {
            kind,
            flags: SYNTH | (tok.flags & WS),
            sym,
            loc: Loc {
                expansion: Some(exp),
                ..tok.loc
            },
            anchor: tok.anchor,
        }
    }
}
