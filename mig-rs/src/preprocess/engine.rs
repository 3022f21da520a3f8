//! The preprocessing engine: include frames, the token stream with macro expansion
//! contexts, directives and output.
//!
//! Everything is iterative: include frames, macro contexts and conditional groups live in
//! explicit stacks. The only recursion is the pre-expansion of macro arguments
//! (bounded by [`MAX_ARG_NESTING`]) and `#if` expression parsing (bounded by
//! [`super::expr::MAX_DEPTH`]).

use super::expr::{self, ETok};
use super::lexer::{FileData, Lexer, Problem, RawKind, RawTok};
use super::macros::{Builtin, Macro};
use super::output::{Last, Output};
use super::token::{Anchor, FxMap, FxSet, Interner, Kind, Sym, Token, NO_EXPAND, SYNTH, WS};
use super::{FileLoader, PpOptions};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::source::{CtxId, FileId, Loc, SourceFile, SourceMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Maximum `#include` nesting (GCC's default).
pub(super) const MAX_INCLUDE_DEPTH: usize = 200;
/// Maximum nesting of macro invocations inside macro arguments.
pub(super) const MAX_ARG_NESTING: u32 = 200;
/// Maximum number of tokens macro expansion may produce in one run.
pub(super) const MAX_EXPANSION_TOKENS: u64 = 2_000_000;
/// Maximum bytes of spellings created by `#`, `##` and built-in macros.
pub(super) const MAX_SYNTH_BYTES: u64 = 64 << 20;
/// Maximum number of file inclusions in one run.
pub(super) const MAX_INCLUDES: u32 = 20_000;
/// Maximum total size of all included file instances.
pub(super) const MAX_INCLUDED_BYTES: u64 = 256 << 20;
/// Output size limit: this plus 8 times the input read.
pub(super) const OUTPUT_BASE_LIMIT: usize = 64 << 20;
/// Largest file accepted (offsets are `u32`).
pub(super) const MAX_FILE_SIZE: usize = 1 << 30;

/// Frequently compared spellings, interned once.
pub(super) struct Known {
    pub lparen: Sym,
    pub rparen: Sym,
    pub comma: Sym,
    pub hash: Sym,
    pub hash_alt: Sym,
    pub paste: Sym,
    pub paste_alt: Sym,
    pub ellipsis: Sym,
    pub lt: Sym,
    pub gt: Sym,
    pub defined: Sym,
    pub va_args: Sym,
}

impl Known {
    fn new(i: &mut Interner) -> Known {
        Known {
            lparen: i.intern("("),
            rparen: i.intern(")"),
            comma: i.intern(","),
            hash: i.intern("#"),
            hash_alt: i.intern("%:"),
            paste: i.intern("##"),
            paste_alt: i.intern("%:%:"),
            ellipsis: i.intern("..."),
            lt: i.intern("<"),
            gt: i.intern(">"),
            defined: i.intern("defined"),
            va_args: i.intern("__VA_ARGS__"),
        }
    }
}

/// Multiple-include optimization state of a file being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mi {
    /// Nothing significant seen yet.
    Start,
    /// Inside the `#ifndef GUARD` group that starts the file.
    InGuard(Sym),
    /// After its `#endif`, with nothing else since.
    After(Sym),
    /// Not a guarded file.
    No,
}

/// One open conditional group.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cond {
    /// The `#if`/`#ifdef`/`#ifndef` (or later `#elif`/`#else`) directive.
    pub loc: Loc,
    pub kind: &'static str,
    /// The enclosing group is skipped.
    pub parent_skipping: bool,
    /// A branch of this group was taken (or must never be).
    pub taken: bool,
    pub else_seen: bool,
    /// The current branch is skipped.
    pub skipping: bool,
}

/// One file being read (the main file, an include, an -imacros file, or the built-in
/// definitions).
pub(super) struct Frame {
    pub data: Rc<FileData>,
    pub lexer: Lexer,
    pub file: FileId,
    pub ctx: CtxId,
    /// Directory searched first for `#include "…"`.
    pub dir: PathBuf,
    /// Index in the search path where this file was found (for `#include_next`).
    pub found_in: Option<usize>,
    pub system: bool,
    pub conds: Vec<Cond>,
    /// Presumed line = physical line + `line_delta` (`#line`).
    pub line_delta: i64,
    /// Presumed file name (for line markers and `__FILE__`).
    pub name: Rc<str>,
    /// Incremented by `#line`, so that the output writes a new marker.
    pub name_gen: u32,
    pub mi: Mi,
    pub is_main: bool,
    /// The line of the last token made (lines only move forward, mostly).
    pub line_hint: usize,
}

impl Frame {
    pub fn skipping(&self) -> bool {
        self.conds.last().is_some_and(|c| c.skipping)
    }
}

/// How [`Engine::emit`] places a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Emit {
    /// On its presumed line, indented like the source.
    Normal,
    /// At the start of a new output line, unindented (`#pragma`).
    LineStart,
    /// On the current output line, whatever its source line.
    SameLine,
}

/// Tokens being rescanned: a macro's expansion, or a macro argument being pre-expanded.
pub(super) struct MacroCtx {
    pub toks: Vec<Token>,
    pub pos: usize,
    /// The macro disabled while this context is active.
    pub mac: Option<Sym>,
}

/// An `#include` resolved, to enter once its directive line is finished.
pub(super) struct PendingInclude {
    pub path: PathBuf,
    pub file: FileId,
    pub found_in: Option<usize>,
    pub system: bool,
    pub at: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    If,
    Ifdef,
    Ifndef,
    Elif,
    Elifdef,
    Elifndef,
    Else,
    Endif,
    Define,
    Undef,
    Include,
    IncludeNext,
    Import,
    Line,
    Error,
    Warning,
    Pragma,
    Ident,
    Assert,
    Unknown,
}

fn directive_kind(s: &str) -> Dir {
    match s {
        "if" => Dir::If,
        "ifdef" => Dir::Ifdef,
        "ifndef" => Dir::Ifndef,
        "elif" => Dir::Elif,
        "elifdef" => Dir::Elifdef,
        "elifndef" => Dir::Elifndef,
        "else" => Dir::Else,
        "endif" => Dir::Endif,
        "define" => Dir::Define,
        "undef" => Dir::Undef,
        "include" => Dir::Include,
        "include_next" => Dir::IncludeNext,
        "import" => Dir::Import,
        "line" => Dir::Line,
        "error" => Dir::Error,
        "warning" => Dir::Warning,
        "pragma" => Dir::Pragma,
        "ident" | "sccs" => Dir::Ident,
        "assert" | "unassert" => Dir::Assert,
        _ => Dir::Unknown,
    }
}

/// Lexically normalizes a path (drops `.`, resolves `..` against preceding components).
pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

pub(super) struct Engine<'a> {
    pub opts: &'a PpOptions,
    pub loader: &'a mut dyn FileLoader,
    pub map: &'a mut SourceMap,
    pub diags: &'a mut Diagnostics,
    pub syms: Interner,
    pub k: Known,
    pub macros: FxMap<Sym, Macro>,
    pub frames: Vec<Frame>,
    pub contexts: Vec<MacroCtx>,
    pub lookahead: Vec<Token>,
    pub out: Output,
    file_cache: FxMap<PathBuf, FileId>,
    pub file_data: FxMap<FileId, Rc<FileData>>,
    entered: FxSet<FileId>,
    pub files_read: Vec<PathBuf>,
    once: FxSet<PathBuf>,
    guards: FxMap<FileId, Sym>,
    pub in_directive: bool,
    pub directive_ended: bool,
    pub prevent_expansion: u32,
    pub parsing_args: u32,
    /// Looking for the `(` after a function-like macro's name: a directive ends the search
    /// (and is handled right after, from `pending_hash`).
    pub peeking: bool,
    pending_hash: Option<RawTok>,
    pub arg_depth: u32,
    pub tokens_spent: u64,
    pub synth_bytes: u64,
    includes: u32,
    included_bytes: u64,
    input_bytes: u64,
    pub fatal: bool,
    pub counter: u64,
    pub discard: bool,
    pub main_name: Rc<str>,
    /// A location for problems with nowhere better to point.
    pub fallback: Option<Loc>,
    /// Macros saved by `#pragma push_macro`.
    pushed_macros: FxMap<Sym, Vec<Option<Macro>>>,
}

impl<'a> Engine<'a> {
    pub fn new(
        opts: &'a PpOptions,
        loader: &'a mut dyn FileLoader,
        map: &'a mut SourceMap,
        diags: &'a mut Diagnostics,
    ) -> Engine<'a> {
        // A .defs file and its includes have a few hundred distinct spellings.
        let mut syms = Interner::with_capacity(512);
        let k = Known::new(&mut syms);
        Engine {
            opts,
            loader,
            map,
            diags,
            syms,
            k,
            macros: FxMap::default(),
            frames: Vec::new(),
            contexts: Vec::new(),
            lookahead: Vec::new(),
            out: Output::default(),
            file_cache: FxMap::default(),
            file_data: FxMap::default(),
            entered: FxSet::default(),
            files_read: Vec::new(),
            once: FxSet::default(),
            guards: FxMap::default(),
            in_directive: false,
            directive_ended: false,
            prevent_expansion: 0,
            parsing_args: 0,
            peeking: false,
            pending_hash: None,
            arg_depth: 0,
            tokens_spent: 0,
            synth_bytes: 0,
            includes: 0,
            included_bytes: 0,
            input_bytes: 0,
            fatal: false,
            counter: 0,
            discard: true,
            main_name: Rc::from(""),
            fallback: None,
            pushed_macros: FxMap::default(),
        }
    }

    // ----------------------------------------------------------------------------------
    // Diagnostics helpers

    pub fn error(&mut self, msg: impl Into<String>, loc: Loc) {
        self.diags.push(Diagnostic::error(msg).at(loc));
    }

    pub fn warning(&mut self, msg: impl Into<String>, loc: Loc) {
        self.diags.push(Diagnostic::warning(msg).at(loc));
    }

    /// Reports an error that stops preprocessing.
    pub fn fatal_error(&mut self, d: Diagnostic) {
        if !self.fatal {
            self.diags.push(d);
        }
        self.fatal = true;
    }

    /// Counts `n` tokens of macro-expansion work; false (and a fatal error) past the limit.
    pub fn spend(&mut self, n: u64, loc: Loc) -> bool {
        self.tokens_spent = self.tokens_spent.saturating_add(n);
        if self.tokens_spent > MAX_EXPANSION_TOKENS {
            self.fatal_error(
                Diagnostic::error(format!(
                    "macro expansion produces too many tokens (more than {MAX_EXPANSION_TOKENS})"
                ))
                .at(loc)
                .label("while expanding this"),
            );
            return false;
        }
        true
    }

    /// Counts `n` bytes of synthesized spellings; false (and a fatal error) past the limit.
    pub fn spend_bytes(&mut self, n: usize, loc: Loc) -> bool {
        self.synth_bytes = self.synth_bytes.saturating_add(n as u64);
        if self.synth_bytes > MAX_SYNTH_BYTES {
            self.fatal_error(
                Diagnostic::error(format!(
                    "macro expansion creates too much text (more than {MAX_SYNTH_BYTES} bytes from # and ##)"
                ))
                .at(loc),
            );
            return false;
        }
        true
    }

    /// The current position (for end-of-input tokens and problems without a token).
    pub fn here(&self) -> Loc {
        match self.frames.last() {
            Some(f) => {
                let off = f.data.orig(f.lexer.pos() as u32);
                Loc {
                    file: f.file,
                    start: off,
                    end: off,
                    ctx: f.ctx,
                    expansion: None,
                }
            }
            None => self.fallback.unwrap_or(Loc {
                file: FileId(0),
                start: 0,
                end: 0,
                ctx: CtxId(0),
                expansion: None,
            }),
        }
    }

    fn anchor_of(&self, loc: Loc) -> Anchor {
        let line = match self.frames.last() {
            Some(f) => (f.data.line_of(loc.start) as i64 + 1 + f.line_delta)
                .clamp(0, u32::MAX as i64) as u32,
            None => 1,
        };
        Anchor {
            file: loc.file,
            ctx: loc.ctx,
            off: loc.start,
            line,
        }
    }

    /// An end-of-input token at the current position.
    pub fn eof_token(&self) -> Token {
        let loc = self.here();
        Token {
            kind: Kind::Eof,
            flags: 0,
            sym: self.k.comma,
            loc,
            anchor: self.anchor_of(loc),
        }
    }

    // ----------------------------------------------------------------------------------
    // Files

    /// Loads a file (once) and returns its id.
    pub fn load(&mut self, path: &Path) -> Result<FileId, String> {
        if let Some(&id) = self.file_cache.get(path) {
            return Ok(id);
        }
        let bytes = self.loader.load(path).map_err(|e| e.to_string())?;
        if !self.files_read.iter().any(|p| p == path) {
            self.files_read.push(path.to_path_buf());
        }
        if bytes.len() > MAX_FILE_SIZE {
            return Err(format!("file too large ({} bytes)", bytes.len()));
        }
        self.input_bytes += bytes.len() as u64;
        // The buffer read becomes the text, shared by the source map and the lexer (no copy).
        let (text, bad) = match String::from_utf8(bytes) {
            Ok(s) => (s, None),
            Err(e) => {
                let pos = e.utf8_error().valid_up_to() as u32;
                (
                    String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    Some(pos),
                )
            }
        };
        let name = path.to_string_lossy().into_owned();
        let id = self
            .map
            .add_file(SourceFile::new(name, Some(path.to_path_buf()), text));
        let f = self.map.file(id);
        let data = FileData::new(f.text.clone(), f.line_starts().to_vec(), bad);
        self.file_data.insert(id, Rc::new(data));
        self.file_cache.insert(path.to_path_buf(), id);
        Ok(id)
    }

    /// Adds a file that is not on disk (`<built-in>`, `<command-line>`).
    pub fn add_pseudo_file(&mut self, name: &str, text: String) -> FileId {
        let id = self.map.add_file(SourceFile::new(name, None, text));
        let f = self.map.file(id);
        let data = FileData::new(f.text.clone(), f.line_starts().to_vec(), None);
        self.file_data.insert(id, Rc::new(data));
        id
    }

    /// Starts reading `file` as a new frame.
    pub fn push_frame(
        &mut self,
        file: FileId,
        included_at: Option<Loc>,
        dir: PathBuf,
        found_in: Option<usize>,
        system: bool,
    ) -> CtxId {
        let ctx = self.map.add_ctx(file, included_at);
        let data = match self.file_data.get(&file) {
            Some(d) => d.clone(),
            None => Rc::new(FileData::new(Rc::default(), vec![0], None)),
        };
        let name: Rc<str> = Rc::from(self.map.file(file).name.as_str());
        let is_main = self.frames.is_empty() && !self.discard;
        self.frames.push(Frame {
            lexer: Lexer::new(data.clean.clone()),
            data: data.clone(),
            file,
            ctx,
            dir,
            found_in,
            system,
            conds: Vec::new(),
            line_delta: 0,
            name,
            name_gen: 0,
            mi: Mi::Start,
            is_main,
            line_hint: 0,
        });
        if self.fallback.is_none() {
            self.fallback = Some(self.here());
        }
        if self.entered.insert(file) {
            let loc = |off: u32| Loc {
                file,
                start: off,
                end: off,
                ctx,
                expansion: None,
            };
            if let Some(off) = data.bad_utf8 {
                self.diags.push(
                    Diagnostic::error("invalid UTF-8 in source file")
                        .at(loc(off).with_len(3))
                        .label("not UTF-8; replaced by U+FFFD")
                        .note("only the first invalid sequence of a file is reported"),
                );
            }
            for &off in data.splice_ws.iter().take(20) {
                self.warning(
                    "backslash and newline separated by space",
                    loc(off).with_len(1),
                );
            }
        }
        ctx
    }

    /// Finishes the top frame at its end of file.
    fn end_of_file(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        if !self.fatal {
            for c in frame.conds.iter().rev() {
                self.diags.push(
                    Diagnostic::error(format!("unterminated #{}", c.kind))
                        .at(c.loc)
                        .label("this conditional has no #endif"),
                );
            }
        }
        if let Mi::After(g) = frame.mi {
            self.guards.insert(frame.file, g);
        }
        if self.discard {
            return;
        }
        if let Some(parent) = self.frames.last() {
            let off = parent.data.orig(parent.lexer.pos() as u32);
            let line = (parent.data.line_of(off) as i64 + 1 + parent.line_delta)
                .clamp(0, u32::MAX as i64) as u32;
            let key = (parent.ctx, parent.name_gen);
            let name = parent.name.clone();
            self.out.marker(line, &name, " 2", key);
        }
    }

    /// Reports problems the top frame's lexer found.
    fn report_lex_problems(&mut self, fi: usize) {
        let Some(f) = self.frames.get_mut(fi) else {
            return;
        };
        let problems = std::mem::take(&mut f.lexer.problems);
        let skipping = f.skipping();
        let (file, ctx, data) = (f.file, f.ctx, f.data.clone());
        for (p, at) in problems {
            let off = data.orig(at);
            let loc = Loc {
                file,
                start: off,
                end: off + 1,
                ctx,
                expansion: None,
            };
            let d = match p {
                Problem::UnterminatedComment => Diagnostic::error("unterminated comment")
                    .at(loc.with_len(2))
                    .label("comment starts here"),
                Problem::UnterminatedLiteral(q) => {
                    let msg = format!("missing terminating {} character", q as char);
                    if skipping {
                        Diagnostic::warning(msg).at(loc)
                    } else {
                        Diagnostic::error(msg).at(loc)
                    }
                }
                Problem::Nul => Diagnostic::warning("null character(s) ignored").at(loc),
                Problem::NulInLiteral => {
                    Diagnostic::warning("null character(s) preserved in literal").at(loc)
                }
            };
            self.diags.push(d);
        }
    }

    /// Makes a token from a raw token of frame `fi`.
    fn make_token(&mut self, fi: usize, raw: &RawTok) -> Token {
        let Some(f) = self.frames.get_mut(fi) else {
            return self.eof_token();
        };
        let spelling = f
            .data
            .clean
            .get(raw.start as usize..raw.end as usize)
            .unwrap_or("");
        let start = f.data.orig(raw.start);
        let end = f.data.orig_end(raw.end).max(start);
        let mut flags = if raw.ws { WS } else { 0 };
        if (end - start) as usize != spelling.len() {
            flags |= SYNTH;
        }
        let kind = match raw.kind {
            RawKind::Ident => Kind::Ident,
            RawKind::Number => Kind::Number,
            RawKind::Str => Kind::Str,
            RawKind::Char => Kind::Char,
            RawKind::Punct => Kind::Punct,
            RawKind::HeaderName => Kind::Other,
            RawKind::Other => Kind::Other,
            RawKind::Newline | RawKind::Eof => Kind::Eof,
        };
        f.line_hint = f.data.line_of_hint(start, f.line_hint);
        let line = (f.line_hint as i64 + 1 + f.line_delta).clamp(0, u32::MAX as i64) as u32;
        let loc = Loc {
            file: f.file,
            start,
            end,
            ctx: f.ctx,
            expansion: None,
        };
        let anchor = Anchor {
            file: f.file,
            ctx: f.ctx,
            off: start,
            line,
        };
        let sym = self.syms.intern(spelling);
        Token {
            kind,
            flags,
            sym,
            loc,
            anchor,
        }
    }

    pub fn is_punct(&self, t: &Token, sym: Sym) -> bool {
        t.kind == Kind::Punct && t.sym == sym
    }

    // ----------------------------------------------------------------------------------
    // The token stream

    /// The next token from the files, handling directives and skipped groups. Returns an
    /// `Eof` token at the end of a directive line, at the end of a file while collecting
    /// macro arguments, and at the end of the last frame.
    fn lex_file_token(&mut self) -> Token {
        loop {
            if self.fatal {
                return self.eof_token();
            }
            let Some(fi) = self.frames.len().checked_sub(1) else {
                return self.eof_token();
            };
            if self.in_directive && self.directive_ended {
                return self.eof_token();
            }
            if !self.in_directive && !self.peeking {
                if let Some(raw) = self.pending_hash.take() {
                    let hash = self.make_token(fi, &raw);
                    self.handle_directive(hash);
                    continue;
                }
            }
            let raw = self.frames[fi].lexer.next();
            if !self.frames[fi].lexer.problems.is_empty() {
                self.report_lex_problems(fi);
            }
            match raw.kind {
                RawKind::Newline => {
                    if self.in_directive {
                        self.directive_ended = true;
                        return self.eof_token();
                    }
                    continue;
                }
                RawKind::Eof => {
                    if self.in_directive {
                        self.directive_ended = true;
                        return self.eof_token();
                    }
                    if self.parsing_args > 0 {
                        return self.eof_token();
                    }
                    self.end_of_file();
                    if self.frames.is_empty() {
                        return self.eof_token();
                    }
                    continue;
                }
                _ => {}
            }
            if !self.in_directive && raw.bol && raw.kind == RawKind::Punct {
                let is_hash = matches!(
                    self.frames[fi]
                        .data
                        .clean
                        .get(raw.start as usize..raw.end as usize),
                    Some("#" | "%:")
                );
                if is_hash && self.peeking {
                    self.pending_hash = Some(raw);
                    return self.eof_token();
                }
                if is_hash {
                    let hash = self.make_token(fi, &raw);
                    self.handle_directive(hash);
                    continue;
                }
            }
            if !self.in_directive {
                let f = &mut self.frames[fi];
                if f.skipping() {
                    continue;
                }
                if f.conds.is_empty() {
                    f.mi = Mi::No;
                }
            }
            return self.make_token(fi, &raw);
        }
    }

    /// The next token after macro expansion.
    pub fn get_token(&mut self) -> Token {
        loop {
            if self.fatal {
                return self.eof_token();
            }
            let mut tok = if let Some(t) = self.lookahead.pop() {
                t
            } else if let Some(c) = self.contexts.last_mut() {
                match c.toks.get(c.pos) {
                    Some(&t) => {
                        c.pos += 1;
                        t
                    }
                    None => {
                        self.pop_context();
                        continue;
                    }
                }
            } else {
                self.lex_file_token()
            };
            if tok.kind != Kind::Ident || tok.has(NO_EXPAND) {
                return tok;
            }
            let Some(m) = self.macros.get(&tok.sym) else {
                return tok;
            };
            if m.disabled > 0 {
                tok.flags |= NO_EXPAND;
                return tok;
            }
            if self.prevent_expansion > 0 {
                return tok;
            }
            if self.enter_macro(tok) {
                continue;
            }
            return tok;
        }
    }

    pub fn push_context(&mut self, toks: Vec<Token>, mac: Option<Sym>) {
        if let Some(m) = mac.and_then(|m| self.macros.get_mut(&m)) {
            m.disabled += 1;
        }
        self.contexts.push(MacroCtx { toks, pos: 0, mac });
    }

    pub fn pop_context(&mut self) {
        if let Some(c) = self.contexts.pop() {
            if let Some(m) = c.mac.and_then(|m| self.macros.get_mut(&m)) {
                m.disabled = m.disabled.saturating_sub(1);
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Output

    /// Writes a token to the output.
    pub fn emit(&mut self, tok: Token, mode: Emit) {
        let at_line_start = mode == Emit::LineStart;
        if self.discard || matches!(tok.kind, Kind::Eof | Kind::Placemarker) {
            return;
        }
        let a = tok.anchor;
        let (gen, name) = match self.frames.iter().rev().find(|f| f.ctx == a.ctx) {
            Some(f) => (f.name_gen, f.name.clone()),
            None => (0, Rc::from(self.map.file(a.file).name.as_str())),
        };
        if at_line_start && !self.out.at_line_start() {
            self.out.newline();
        }
        if mode != Emit::SameLine {
            self.out.sync((a.ctx, gen), a.line, &name);
        }
        let spelling = self.syms.get(tok.sym);
        let verbatim = !tok.has(SYNTH)
            && (tok.loc.end.saturating_sub(tok.loc.start)) as usize == spelling.len();
        if self.out.at_line_start() {
            if !at_line_start {
                // Indent like the source line.
                if let Some(d) = self.file_data.get(&a.file) {
                    let ls = d.line_start_of(a.off) as usize;
                    let prefix = d.orig.get(ls..a.off as usize).unwrap_or("");
                    self.out.push_blanks_like(prefix, 1000);
                }
            }
        } else if let Some(last) = self.out.last {
            let l = last.loc;
            let t = tok.loc;
            let same_src = l.file == t.file && l.ctx == t.ctx && l.expansion == t.expansion;
            if same_src && last.verbatim && verbatim && l.end == t.start {
                // Contiguous in the source: no space.
            } else if same_src && l.end <= t.start && t.start - l.end <= 64 {
                let gap = self
                    .file_data
                    .get(&t.file)
                    .and_then(|d| d.orig.get(l.end as usize..t.start as usize))
                    .unwrap_or(" ");
                if gap.is_empty() || gap.contains('\n') {
                    self.out.push_plain(" ");
                } else if last.verbatim && verbatim && gap.bytes().all(|b| b == b' ' || b == b'\t')
                {
                    let gap_loc = Loc {
                        start: l.end,
                        end: t.start,
                        ..l
                    };
                    self.out.push(gap, gap_loc, false);
                } else {
                    self.out.push_blanks_like(gap, usize::MAX);
                }
            } else {
                self.out.push_plain(" ");
            }
        }
        let spelling = self.syms.get(tok.sym);
        self.out.push(spelling, tok.loc, !verbatim);
        self.out.last = Some(Last {
            loc: tok.loc,
            verbatim,
        });
        let limit = OUTPUT_BASE_LIMIT
            .saturating_add((self.input_bytes as usize).saturating_mul(8))
            .min(1 << 31);
        if self.out.text.len() > limit {
            self.fatal_error(
                Diagnostic::error(format!(
                    "preprocessed output too large (more than {limit} bytes)"
                ))
                .at(tok.loc),
            );
        }
    }

    // ----------------------------------------------------------------------------------
    // Directives

    /// The next raw token of the current directive line, or None at its end.
    pub fn dir_raw(&mut self) -> Option<Token> {
        if let Some(t) = self.lookahead.pop() {
            if t.kind == Kind::Eof {
                return None;
            }
            return Some(t);
        }
        if self.directive_ended {
            return None;
        }
        let fi = self.frames.len().checked_sub(1)?;
        let raw = self.frames[fi].lexer.next();
        if !self.frames[fi].lexer.problems.is_empty() {
            self.report_lex_problems(fi);
        }
        match raw.kind {
            RawKind::Newline | RawKind::Eof => {
                self.directive_ended = true;
                None
            }
            _ => Some(self.make_token(fi, &raw)),
        }
    }

    /// The rest of the directive line, macro-expanded.
    fn dir_expanded(&mut self) -> Vec<Token> {
        let mut v = Vec::new();
        loop {
            let t = self.get_token();
            if t.kind == Kind::Eof {
                break;
            }
            v.push(t);
        }
        v
    }

    /// Warns about tokens left on a directive line.
    fn check_eol(&mut self, dir: &str) {
        if let Some(t) = self.dir_raw() {
            self.warning(format!("extra tokens at end of #{dir} directive"), t.loc);
        }
    }

    fn handle_directive(&mut self, hash: Token) {
        let saved_prevent = std::mem::replace(&mut self.prevent_expansion, 0);
        let in_args = self.parsing_args > 0;
        let saved_args = std::mem::replace(&mut self.parsing_args, 0);
        let saved_peeking = std::mem::replace(&mut self.peeking, false);
        let saved_la = std::mem::take(&mut self.lookahead);
        let saved_contexts = std::mem::take(&mut self.contexts);
        self.in_directive = true;
        self.directive_ended = false;
        let skipping = self.frames.last().is_some_and(|f| f.skipping());
        let depth0 = self.frames.last().is_some_and(|f| f.conds.is_empty());
        let mut pending = None;
        let name = self.dir_raw();
        let dir = match &name {
            None => None,
            Some(t) if t.kind == Kind::Ident => Some(directive_kind(self.syms.get(t.sym))),
            Some(_) => Some(Dir::Unknown),
        };
        if depth0 && !matches!(dir, Some(Dir::Ifndef)) {
            if let Some(f) = self.frames.last_mut() {
                f.mi = Mi::No;
            }
        }
        if let (Some(name), Some(dir)) = (name, dir) {
            let dloc = hash.loc.to(name.loc);
            match dir {
                Dir::If | Dir::Ifdef | Dir::Ifndef => self.do_if(dir, dloc, name, skipping, depth0),
                Dir::Elif | Dir::Elifdef | Dir::Elifndef => self.do_elif(dir, dloc, name),
                Dir::Else => self.do_else(dloc),
                Dir::Endif => self.do_endif(dloc),
                _ if skipping => {}
                Dir::Define => self.do_define(dloc),
                Dir::Undef => self.do_undef(dloc),
                Dir::Include | Dir::IncludeNext | Dir::Import => {
                    pending = self.do_include(dir, hash, name, in_args);
                }
                Dir::Line => self.do_line(None, dloc),
                Dir::Error | Dir::Warning => {
                    let mut msg = String::new();
                    while let Some(t) = self.dir_raw() {
                        if !msg.is_empty() && t.has(WS) {
                            msg.push(' ');
                        }
                        msg.push_str(self.syms.get(t.sym));
                    }
                    let text = format!("#{} {msg}", self.syms.get(name.sym));
                    let d = if dir == Dir::Error {
                        Diagnostic::error(text.trim_end())
                    } else {
                        Diagnostic::warning(text.trim_end())
                    };
                    self.diags.push(d.at(dloc));
                }
                Dir::Pragma => self.do_pragma(hash, name),
                Dir::Ident => {}
                Dir::Assert => {
                    let n = self.syms.get(name.sym).to_string();
                    self.warning(format!("#{n} is a deprecated GCC extension; ignored"), dloc);
                }
                Dir::Unknown => {
                    if name.kind == Kind::Number {
                        self.do_line(Some(name), dloc);
                    } else if name.kind == Kind::Ident {
                        let n = self.syms.get(name.sym).to_string();
                        self.error(format!("invalid preprocessing directive #{n}"), dloc);
                    } else {
                        self.error("invalid preprocessing directive", dloc);
                    }
                }
            }
        }
        // Finish the line.
        self.lookahead.clear();
        while self.dir_raw().is_some() {}
        while !self.contexts.is_empty() {
            self.pop_context();
        }
        self.contexts = saved_contexts;
        self.lookahead = saved_la;
        self.prevent_expansion = saved_prevent;
        self.parsing_args = saved_args;
        self.peeking = saved_peeking;
        self.in_directive = false;
        if let Some(p) = pending {
            self.enter_include(p);
        }
    }

    // --- conditionals

    fn eval_condition(&mut self, dloc: Loc) -> bool {
        let mut toks: Vec<Token> = Vec::new();
        loop {
            let t = self.get_token();
            if t.kind == Kind::Eof {
                break;
            }
            if t.kind == Kind::Ident && t.sym == self.k.defined {
                self.prevent_expansion += 1;
                let mut n = self.get_token();
                let paren = self.is_punct(&n, self.k.lparen);
                if paren {
                    n = self.get_token();
                }
                let result = if n.kind == Kind::Ident {
                    let d = self.macros.contains_key(&n.sym);
                    if paren {
                        let c = self.get_token();
                        if !self.is_punct(&c, self.k.rparen) {
                            let loc = if c.kind == Kind::Eof { n.loc } else { c.loc };
                            self.error("missing ')' after \"defined\"", loc);
                            None
                        } else {
                            Some(d)
                        }
                    } else {
                        Some(d)
                    }
                } else {
                    let loc = if n.kind == Kind::Eof { t.loc } else { n.loc };
                    self.error("operator \"defined\" requires an identifier", loc);
                    None
                };
                self.prevent_expansion -= 1;
                let Some(d) = result else { return false };
                let sym = if d {
                    self.syms.intern("1")
                } else {
                    self.syms.intern("0")
                };
                toks.push(Token {
                    kind: Kind::Number,
                    flags: SYNTH,
                    sym,
                    ..t
                });
                continue;
            }
            toks.push(t);
        }
        if self.fatal {
            return false;
        }
        let end = toks
            .last()
            .map(|t| Loc {
                start: t.loc.end,
                ..t.loc
            })
            .unwrap_or(dloc);
        let etoks: Vec<ETok<'_>> = toks
            .iter()
            .map(|t| ETok {
                kind: t.kind,
                text: self.syms.get(t.sym),
                loc: t.loc,
            })
            .collect();
        let (r, warnings) = expr::evaluate(&etoks, end);
        let r = match r {
            Err(mut d) if toks.is_empty() => {
                d.primary = Some(after(dloc));
                Err(d)
            }
            r => r,
        };
        for w in warnings {
            self.diags.push(w);
        }
        match r {
            Ok(v) => v,
            Err(d) => {
                self.diags.push(d);
                false
            }
        }
    }

    /// `#ifdef NAME` / `#ifndef NAME` operand; None after an error.
    fn defined_operand(&mut self, dir: &str, dloc: Loc) -> Option<Sym> {
        match self.dir_raw() {
            None => {
                self.error(
                    format!("no macro name given in #{dir} directive"),
                    after(dloc),
                );
                None
            }
            Some(t) if t.kind == Kind::Ident => {
                self.check_eol(dir);
                Some(t.sym)
            }
            Some(t) => {
                self.error("macro names must be identifiers", t.loc);
                None
            }
        }
    }

    fn do_if(&mut self, dir: Dir, dloc: Loc, name: Token, skipping: bool, depth0: bool) {
        let kind = match dir {
            Dir::Ifdef => "ifdef",
            Dir::Ifndef => "ifndef",
            _ => "if",
        };
        let mut guard = None;
        let value = if skipping {
            false
        } else {
            match dir {
                Dir::If => self.eval_condition(dloc),
                _ => match self.defined_operand(kind, dloc) {
                    Some(s) => {
                        if dir == Dir::Ifndef {
                            guard = Some(s);
                        }
                        self.macros.contains_key(&s) == (dir == Dir::Ifdef)
                    }
                    None => false,
                },
            }
        };
        let _ = name;
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        f.conds.push(Cond {
            loc: dloc,
            kind,
            parent_skipping: skipping,
            taken: value || skipping,
            else_seen: false,
            skipping: skipping || !value,
        });
        if depth0 {
            f.mi = match (f.mi, guard) {
                (Mi::Start, Some(g)) => Mi::InGuard(g),
                _ => Mi::No,
            };
        }
    }

    fn do_elif(&mut self, dir: Dir, dloc: Loc, _name: Token) {
        let kind = match dir {
            Dir::Elifdef => "elifdef",
            Dir::Elifndef => "elifndef",
            _ => "elif",
        };
        let Some(top) = self.frames.last().and_then(|f| f.conds.last().copied()) else {
            self.error(format!("#{kind} without #if"), dloc);
            return;
        };
        if top.else_seen {
            self.diags.push(
                Diagnostic::error(format!("#{kind} after #else"))
                    .at(dloc)
                    .with_secondary(top.loc, "the conditional began here"),
            );
        }
        let (taken, skipping) = if top.parent_skipping || top.taken {
            (true, true)
        } else {
            let v = match dir {
                Dir::Elif => self.eval_condition(dloc),
                _ => match self.defined_operand(kind, dloc) {
                    Some(s) => self.macros.contains_key(&s) == (dir == Dir::Elifdef),
                    None => false,
                },
            };
            (v, !v)
        };
        if let Some(f) = self.frames.last_mut() {
            if f.conds.len() == 1 {
                f.mi = Mi::No;
            }
            if let Some(c) = f.conds.last_mut() {
                c.taken = taken;
                c.skipping = skipping;
                c.kind = kind;
            }
        }
    }

    fn do_else(&mut self, dloc: Loc) {
        let Some(top) = self.frames.last().and_then(|f| f.conds.last().copied()) else {
            self.error("#else without #if", dloc);
            return;
        };
        if top.else_seen {
            self.diags.push(
                Diagnostic::error("#else after #else")
                    .at(dloc)
                    .with_secondary(top.loc, "the conditional began here"),
            );
        }
        if !top.parent_skipping {
            self.check_eol("else");
        }
        if let Some(f) = self.frames.last_mut() {
            if f.conds.len() == 1 {
                f.mi = Mi::No;
            }
            if let Some(c) = f.conds.last_mut() {
                c.else_seen = true;
                c.skipping = c.parent_skipping || c.taken;
                c.taken = true;
                c.kind = "else";
            }
        }
    }

    fn do_endif(&mut self, dloc: Loc) {
        let Some(top) = self.frames.last().and_then(|f| f.conds.last().copied()) else {
            self.error("#endif without #if", dloc);
            return;
        };
        if !top.parent_skipping {
            self.check_eol("endif");
        }
        if let Some(f) = self.frames.last_mut() {
            f.conds.pop();
            if f.conds.is_empty() {
                f.mi = match f.mi {
                    Mi::InGuard(g) => Mi::After(g),
                    _ => Mi::No,
                };
            }
        }
    }

    // --- #line

    /// `#line N ["file"]`, or the GNU form `# N "file" flags` (`number` given).
    fn do_line(&mut self, number: Option<Token>, dloc: Loc) {
        let toks = match number {
            Some(n) => {
                let mut v = vec![n];
                while let Some(t) = self.dir_raw() {
                    v.push(t);
                }
                v
            }
            None => self.dir_expanded(),
        };
        let gnu = number.is_some();
        let dir = if gnu { "" } else { "line" };
        let Some(first) = toks.first().copied() else {
            self.error("unexpected end of line after #line", after(dloc));
            return;
        };
        let text = self.syms.get(first.sym);
        let value = if first.kind == Kind::Number && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<u64>().ok()
        } else {
            None
        };
        let Some(value) = value else {
            let msg = format!("\"{text}\" after #{dir} is not a positive integer");
            self.error(msg, first.loc);
            return;
        };
        if value > 2_147_483_647 {
            self.warning("line number out of range", first.loc);
        }
        let mut new_name = None;
        if let Some(t) = toks.get(1) {
            let s = self.syms.get(t.sym);
            if t.kind == Kind::Str && s.starts_with('"') {
                new_name = Some(unescape_string(s));
            } else {
                self.error(format!("invalid filename \"{s}\""), t.loc);
                return;
            }
            if let Some(extra) = toks.get(2) {
                if !gnu {
                    self.warning("extra tokens at end of #line directive", extra.loc);
                }
            }
        }
        // Finish the line so that the lexer is at the start of the next one.
        while self.dir_raw().is_some() {}
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        let off = f.data.orig(f.lexer.pos() as u32);
        let next_phys = f.data.line_of(off) as i64 + 1;
        let at_eof = f.lexer.pos() >= f.data.clean.len();
        let next_phys = if at_eof && !f.data.clean.ends_with('\n') {
            next_phys + 1
        } else {
            next_phys
        };
        f.line_delta = value.min(u32::MAX as u64) as i64 - next_phys;
        if let Some(n) = new_name {
            f.name = Rc::from(n.as_str());
        }
        f.name_gen = f.name_gen.wrapping_add(1);
    }

    // --- #pragma

    fn do_pragma(&mut self, hash: Token, name: Token) {
        let mut toks = Vec::new();
        while let Some(t) = self.dir_raw() {
            toks.push(t);
        }
        let first = toks.first().map(|t| self.syms.get(t.sym).to_string());
        match first.as_deref() {
            Some("once") => {
                let Some((is_main, file)) = self.frames.last().map(|f| (f.is_main, f.file)) else {
                    return;
                };
                if is_main {
                    let loc = toks.first().map_or(name.loc, |t| t.loc);
                    self.warning("#pragma once in main file", loc);
                }
                if let Some(p) = self.map.file(file).path.clone() {
                    self.once.insert(normalize(&p));
                }
                return;
            }
            Some("push_macro") | Some("pop_macro") => {
                let push = first.as_deref() == Some("push_macro");
                let arg = toks
                    .get(2)
                    .filter(|t| t.kind == Kind::Str)
                    .map(|t| self.syms.get(t.sym));
                if let Some(s) = arg {
                    let mname = unescape_string(s);
                    let sym = self.syms.intern(&mname);
                    if push {
                        let cur = self.macros.get(&sym).cloned();
                        self.pushed_macros.entry(sym).or_default().push(cur);
                    } else if let Some(saved) =
                        self.pushed_macros.get_mut(&sym).and_then(|v| v.pop())
                    {
                        match saved {
                            Some(m) => {
                                self.macros.insert(sym, m);
                            }
                            None => {
                                self.macros.remove(&sym);
                            }
                        }
                    }
                }
            }
            Some("GCC")
                if toks
                    .get(1)
                    .is_some_and(|t| self.syms.get(t.sym) == "system_header") =>
            {
                if let Some(f) = self.frames.last_mut() {
                    if !f.is_main {
                        f.system = true;
                    }
                }
                return;
            }
            _ => {}
        }
        // Pass the line through.
        if self.discard {
            return;
        }
        if !self.out.at_line_start() {
            self.out.newline();
        }
        let mut h = hash;
        h.flags &= !WS;
        self.emit(h, Emit::LineStart);
        let mut n = name;
        // Adjacent to the `#` in the output even if not in the source.
        if n.loc.start != h.loc.end {
            n.flags |= SYNTH;
        }
        let spelling = self.syms.get(n.sym).to_string();
        self.out.push(&spelling, n.loc, n.loc.start != h.loc.end);
        self.out.last = Some(Last {
            loc: n.loc,
            verbatim: true,
        });
        for t in toks {
            self.emit(t, Emit::SameLine);
        }
        self.out.newline();
    }

    // --- #include

    fn do_include(
        &mut self,
        dir: Dir,
        hash: Token,
        dname: Token,
        in_args: bool,
    ) -> Option<PendingInclude> {
        let dloc = hash.loc.to(dname.loc);
        let fi = self.frames.len().checked_sub(1)?;
        let header = self.frames[fi].lexer.header_name();
        let (name, angled, name_loc) = match header {
            Some(raw) => {
                let t = self.make_token(fi, &raw);
                let s = self.syms.get(t.sym);
                let inner = s
                    .get(1..s.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_string();
                let angled = s.starts_with('<');
                self.check_eol(self.syms.get(dname.sym).to_string().as_str());
                (inner, angled, t.loc)
            }
            None => {
                let toks = self.dir_expanded();
                let Some(first) = toks.first().copied() else {
                    self.error(
                        format!(
                            "#{} expects \"FILENAME\" or <FILENAME>",
                            self.syms.get(dname.sym)
                        ),
                        dloc,
                    );
                    return None;
                };
                let s = self.syms.get(first.sym);
                if first.kind == Kind::Str && s.starts_with('"') {
                    let inner = s
                        .get(1..s.len().saturating_sub(1))
                        .unwrap_or("")
                        .to_string();
                    if let Some(extra) = toks.get(1) {
                        self.warning("extra tokens at end of #include directive", extra.loc);
                    }
                    (inner, false, first.loc)
                } else if self.is_punct(&first, self.k.lt) {
                    let mut inner = String::new();
                    let mut closed = false;
                    let mut last_loc = first.loc;
                    for (i, t) in toks.iter().enumerate().skip(1) {
                        if self.is_punct(t, self.k.gt) {
                            closed = true;
                            last_loc = t.loc;
                            if let Some(extra) = toks.get(i + 1) {
                                self.warning(
                                    "extra tokens at end of #include directive",
                                    extra.loc,
                                );
                            }
                            break;
                        }
                        if i > 1 && t.has(WS) {
                            inner.push(' ');
                        }
                        inner.push_str(self.syms.get(t.sym));
                    }
                    if !closed {
                        self.error("missing terminating > character", first.loc);
                        return None;
                    }
                    (inner, true, first.loc.to(last_loc))
                } else {
                    self.error(
                        format!(
                            "#{} expects \"FILENAME\" or <FILENAME>",
                            self.syms.get(dname.sym)
                        ),
                        first.loc,
                    );
                    return None;
                }
            }
        };
        if name.is_empty() {
            self.error(
                format!("empty filename in #{}", self.syms.get(dname.sym)),
                name_loc,
            );
            return None;
        }
        if in_args {
            self.error("#include inside macro arguments is not supported", dloc);
            return None;
        }
        let at = hash.loc.to(name_loc);
        let mut next_start = None;
        if dir == Dir::IncludeNext {
            let f = &self.frames[fi];
            if f.is_main || self.frames.len() == 1 {
                self.warning("#include_next in primary source file", dloc);
            } else {
                next_start = Some(f.found_in.map_or(0, |i| i + 1));
            }
        }
        if dir == Dir::Import {
            self.warning("#import is a deprecated GCC extension", dloc);
        }
        let Some((path, found_in, system)) = self.resolve(&name, angled, next_start) else {
            let mut searched: Vec<String> = Vec::new();
            if !angled && next_start.is_none() {
                let d = &self.frames[fi].dir;
                searched.push(if d.as_os_str().is_empty() {
                    ".".to_string()
                } else {
                    d.display().to_string()
                });
            }
            let dirs: Vec<&PathBuf> = self
                .opts
                .include_dirs
                .iter()
                .chain(&self.opts.system_dirs)
                .collect();
            for d in dirs.iter().skip(next_start.unwrap_or(0)) {
                searched.push(d.display().to_string());
            }
            let shown = if angled {
                format!("<{name}>")
            } else {
                format!("\"{name}\"")
            };
            let note = if searched.is_empty() {
                "the search path is empty (add -I directories)".to_string()
            } else {
                format!("searched in: {}", searched.join(", "))
            };
            self.diags.push(
                Diagnostic::error(format!("{shown}: No such file or directory"))
                    .at(name_loc)
                    .label("include file not found")
                    .note(note),
            );
            return None;
        };
        let key = normalize(&path);
        if self.once.contains(&key) {
            return None;
        }
        if dir == Dir::Import {
            self.once.insert(key);
        }
        let file = match self.load(&path) {
            Ok(id) => id,
            Err(e) => {
                self.error(format!("cannot read {}: {e}", path.display()), name_loc);
                return None;
            }
        };
        if let Some(g) = self.guards.get(&file) {
            if self.macros.contains_key(g) {
                return None;
            }
        }
        Some(PendingInclude {
            path,
            file,
            found_in,
            system,
            at,
        })
    }

    /// Finds an include file as GCC does.
    fn resolve(
        &mut self,
        name: &str,
        angled: bool,
        next_start: Option<usize>,
    ) -> Option<(PathBuf, Option<usize>, bool)> {
        let p = Path::new(name);
        if p.is_absolute() {
            return self
                .loader
                .exists(p)
                .then(|| (p.to_path_buf(), None, false));
        }
        if !angled && next_start.is_none() {
            if let Some(f) = self.frames.last() {
                let cand = f.dir.join(name);
                let system = f.system;
                if self.loader.exists(&cand) {
                    return Some((cand, None, system));
                }
            }
        }
        let ni = self.opts.include_dirs.len();
        let dirs: Vec<PathBuf> = self
            .opts
            .include_dirs
            .iter()
            .chain(&self.opts.system_dirs)
            .cloned()
            .collect();
        for (i, d) in dirs.iter().enumerate().skip(next_start.unwrap_or(0)) {
            let cand = d.join(name);
            if self.loader.exists(&cand) {
                return Some((cand, Some(i), i >= ni));
            }
        }
        None
    }

    fn enter_include(&mut self, p: PendingInclude) {
        if self.fatal {
            return;
        }
        if self.frames.len() >= MAX_INCLUDE_DEPTH {
            let mut d = Diagnostic::error(format!(
                "#include nested depth {} exceeds maximum of {MAX_INCLUDE_DEPTH}",
                self.frames.len()
            ))
            .at(p.at);
            if self.frames.iter().any(|f| f.file == p.file) {
                d = d.note(format!(
                    "\"{}\" includes itself recursively",
                    p.path.display()
                ));
            }
            self.fatal_error(d);
            return;
        }
        let size = self
            .file_data
            .get(&p.file)
            .map_or(0, |d| d.orig.len() as u64);
        self.includes += 1;
        self.included_bytes += size;
        if self.includes > MAX_INCLUDES || self.included_bytes > MAX_INCLUDED_BYTES {
            self.fatal_error(
                Diagnostic::error(format!(
                    "too much included text (more than {MAX_INCLUDES} inclusions or {MAX_INCLUDED_BYTES} bytes)"
                ))
                .at(p.at),
            );
            return;
        }
        if !self.discard {
            // Make sure the including file has its marker first.
            if let Some(parent) = self.frames.last() {
                if self.out.cur.is_none() {
                    let line = (parent.data.line_of(p.at.start) as i64 + 1 + parent.line_delta)
                        .max(0) as u32;
                    let key = (parent.ctx, parent.name_gen);
                    let name = parent.name.clone();
                    self.out.sync(key, line, &name);
                }
            }
        }
        let dir = p.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let ctx = self.push_frame(p.file, Some(p.at), dir, p.found_in, p.system);
        if !self.discard {
            let flags = if p.system { " 1 3" } else { " 1" };
            let name = self
                .frames
                .last()
                .map(|f| f.name.clone())
                .unwrap_or_else(|| Rc::from(""));
            self.out.marker(1, &name, flags, (ctx, 0));
        }
    }

    // ----------------------------------------------------------------------------------
    // Driving

    /// Reads the top frame (and everything it includes) to its end, writing the output
    /// unless `discard`.
    pub fn run_frames(&mut self) {
        let mut stray_eofs = 0;
        loop {
            let t = self.get_token();
            if t.kind == Kind::Eof {
                if self.frames.is_empty() || self.fatal {
                    break;
                }
                // An end-of-argument or end-of-directive marker cannot reach this level;
                // guard against looping on one anyway.
                stray_eofs += 1;
                if stray_eofs > 16 {
                    break;
                }
                continue;
            }
            stray_eofs = 0;
            self.emit(t, Emit::Normal);
        }
        self.frames.clear();
        while !self.contexts.is_empty() {
            self.pop_context();
        }
        self.lookahead.clear();
    }

    /// Defines the built-in dynamic macros.
    pub fn define_builtins(&mut self) {
        for (name, b) in [
            ("__FILE__", Builtin::File),
            ("__LINE__", Builtin::Line),
            ("__COUNTER__", Builtin::Counter),
            ("__DATE__", Builtin::Date),
            ("__TIME__", Builtin::Time),
            ("__BASE_FILE__", Builtin::BaseFile),
            ("__INCLUDE_LEVEL__", Builtin::IncludeLevel),
        ] {
            let sym = self.syms.intern(name);
            self.macros.insert(sym, Macro::builtin(b));
        }
    }
}

/// The empty location just after `loc`.
pub(super) fn after(loc: Loc) -> Loc {
    Loc {
        start: loc.end,
        ..loc
    }
}

/// The contents of a string literal with `\\`, `\"` and octal escapes undone (for
/// `#line` file names and `_Pragma`-like strings).
pub(super) fn unescape_string(s: &str) -> String {
    let inner = s
        .find('"')
        .and_then(|q| s.get(q + 1..s.len().saturating_sub(1)))
        .unwrap_or("");
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match it.peek().and_then(|c| c.to_digit(8)) {
                        Some(x) => {
                            v = v * 8 + x;
                            it.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(c) => out.push(c),
            None => out.push('\\'),
        }
    }
    out
}
